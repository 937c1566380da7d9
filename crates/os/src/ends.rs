//! Direct links as things to make and hand out: [`LinkKind`] (pipes or
//! shared memory), [`new_link_of`] for a pair of [`LinkEnd`]s, and what an
//! end becomes once a process adopts it (`LinkEnds`: the halves
//! [`crate::link`] reads and writes).
//!
//! A link made at spawn ([`crate::Spawn::link_kind`]) is built the same
//! way: the child's end travels in the start-up message as descriptors.
//!
//! ```
//! use mkipc_kernel::{Ipc, Message, Pid};
//! use mkipc_os::{new_link_of, LinkKind, OsProcess};
//!
//! let a = OsProcess::new().unwrap();
//! let b = OsProcess::join(a.run_id()).unwrap();
//! let (near, far) = new_link_of(LinkKind::SharedMemory).unwrap();
//! // Both ends in this process: the peer each watches is this process.
//! let me = Pid(std::process::id());
//! a.adopt_link(me, near).unwrap();
//! b.adopt_link(me, far).unwrap();
//! a.send_to(me, Message::new(1, b"through shared memory")).unwrap();
//! assert_eq!(&b.receive_from(me).unwrap().body[..], b"through shared memory");
//! ```

use std::sync::Arc;

use mkipc_kernel::IpcError;

use crate::errno;
use crate::link::{LinkRx, LinkTx};
use crate::shm::ShmEnd;
use crate::sys;

/// What a direct link's bytes travel through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkKind {
    /// A pipe each way (the default): every message is a `write` and a
    /// `read`; capacity 65536 bytes each way.
    #[default]
    Pipe,
    /// A ring each way in shared memory (an unnamed `memfd`), with futex
    /// wake-ups: no system call while the other side is awake; capacity
    /// 65536 bytes each way ([`crate::shm`]).
    SharedMemory,
}

/// One process's end of a two-way direct link made by [`new_link`] or
/// [`new_link_of`]: what its bytes travel through (two pipes, or a
/// shared-memory file and its two doorbells), and the Unix socket rights
/// travel on.
#[derive(Debug)]
pub struct LinkEnd {
    pub(crate) way: EndWay,
    pub(crate) rights: std::os::fd::OwnedFd,
}

#[derive(Debug)]
pub(crate) enum EndWay {
    Pipe {
        rx: std::os::fd::OwnedFd,
        tx: std::os::fd::OwnedFd,
    },
    Shm(ShmEnd),
}

impl LinkEnd {
    /// Its descriptors (a pipe link: read pipe, write pipe, socket; a
    /// shared-memory link: the memfd, the two doorbells, the socket).
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let mut v = match &self.way {
            EndWay::Pipe { rx, tx } => vec![rx.as_raw_fd(), tx.as_raw_fd()],
            EndWay::Shm(end) => end.fds().to_vec(),
        };
        v.push(self.rights.as_raw_fd());
        v
    }

    /// What its bytes travel through.
    pub fn kind(&self) -> LinkKind {
        match self.way {
            EndWay::Pipe { .. } => LinkKind::Pipe,
            EndWay::Shm(_) => LinkKind::SharedMemory,
        }
    }

    /// Both directions, as this process uses them, with `peer` watched
    /// (shared memory) for its death.
    pub(crate) fn into_ends(self, peer: u32) -> Result<LinkEnds, IpcError> {
        let sock = Arc::new(self.rights);
        let limit = crate::ipc::LINK_BODY_LIMIT;
        Ok(match self.way {
            EndWay::Pipe { rx, tx } => LinkEnds {
                tx: Some(Arc::new(LinkTx::new(tx, Some(Arc::clone(&sock))))),
                rx: Some(Arc::new(LinkRx::new(rx, Some(sock), limit))),
            },
            EndWay::Shm(end) => {
                let (tx, rx) = crate::shm::halves(end, peer).map_err(|e| match e {
                    // Not a sealed memfd of a link's size, or not mkipc rings.
                    libc::EINVAL => IpcError::InvalidValue,
                    e => errno::ipc_error(e),
                })?;
                LinkEnds {
                    tx: Some(Arc::new(LinkTx::shm(tx, Some(Arc::clone(&sock))))),
                    rx: Some(Arc::new(LinkRx::shm(rx, Some(sock), limit))),
                }
            }
        })
    }

    /// A shared-memory end rebuilt from start-up descriptors.
    pub(crate) fn from_shm(end: ShmEnd, rights: std::os::fd::OwnedFd) -> LinkEnd {
        LinkEnd {
            way: EndWay::Shm(end),
            rights,
        }
    }
}

/// Makes a two-way pipe link (two pipes and a socket pair) whose ends are
/// handed to two processes with [`OsProcess::adopt_link`](crate::OsProcess::adopt_link).
pub fn new_link() -> Result<(LinkEnd, LinkEnd), IpcError> {
    new_link_of(LinkKind::Pipe)
}

/// Makes a two-way direct link of `kind`, whose ends are handed to two
/// processes with [`OsProcess::adopt_link`](crate::OsProcess::adopt_link) (after a `fork`, or passed by
/// descriptor). A shared-memory link's file has no name: it exists only as
/// these descriptors and the mappings made from them.
pub fn new_link_of(kind: LinkKind) -> Result<(LinkEnd, LinkEnd), IpcError> {
    let (a_s, b_s) = sys::socketpair().map_err(errno::ipc_error)?;
    let (a, b) = match kind {
        LinkKind::Pipe => {
            let (a_rx, b_tx) = sys::pipe().map_err(errno::ipc_error)?;
            let (b_rx, a_tx) = sys::pipe().map_err(errno::ipc_error)?;
            (
                EndWay::Pipe { rx: a_rx, tx: a_tx },
                EndWay::Pipe { rx: b_rx, tx: b_tx },
            )
        }
        LinkKind::SharedMemory => {
            let (a, b) = crate::shm::new_pair().map_err(errno::ipc_error)?;
            (EndWay::Shm(a), EndWay::Shm(b))
        }
    };
    Ok((
        LinkEnd {
            way: a,
            rights: a_s,
        },
        LinkEnd {
            way: b,
            rights: b_s,
        },
    ))
}

/// The two directions of the direct link with one peer.
#[derive(Default, Clone)]
pub(crate) struct LinkEnds {
    pub tx: Option<Arc<LinkTx>>,
    pub rx: Option<Arc<LinkRx>>,
}
