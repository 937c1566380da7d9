//! Direct links as things to make and hand out: [`LinkKind`] (pipes, shared
//! memory, or a Unix or TCP stream socket), [`new_link_of`] for a pair of
//! [`LinkEnd`]s, and what an end becomes once a process adopts it
//! (`LinkEnds`: the halves [`crate::link`] reads and writes). Socket ends
//! also come from a listener or a connect ([`crate::socket`]).
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

use mkipc_kernel::{IpcError, Pid};

use crate::errno;
use crate::link::{LinkRx, LinkTx};
use crate::shm::ShmEnd;
use crate::socket::{Family, PeerId, SocketEnd};
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
    /// A Unix-domain stream socket (one socket, both ways): rights ride on
    /// it with `SCM_RIGHTS`. Made as a pair here, or by
    /// [`crate::socket::Listener`] and [`crate::socket::connect`] between
    /// processes that meet by a path.
    UnixSocket,
    /// A TCP stream: as a pair here, over the loopback; between machines
    /// through [`crate::socket`]. Carries no rights (a send with rights is
    /// `Unsupported(RightsHere)`, the message given back), and its sender is
    /// the peer's claim unless the pair was made here.
    Tcp,
}

/// One process's end of a two-way direct link made by [`new_link`] or
/// [`new_link_of`] (or a socket link's, [`crate::socket`]): what its bytes
/// travel through (two pipes, a shared-memory file and its two doorbells,
/// or a stream socket), and the Unix socket rights travel on (a socket link
/// has none beside it: a Unix socket carries them itself, TCP carries none).
#[derive(Debug)]
pub struct LinkEnd {
    pub(crate) way: EndWay,
    pub(crate) rights: Option<std::os::fd::OwnedFd>,
}

#[derive(Debug)]
pub(crate) enum EndWay {
    Pipe {
        rx: std::os::fd::OwnedFd,
        tx: std::os::fd::OwnedFd,
    },
    Shm(ShmEnd),
    Socket(SocketEnd),
}

impl LinkEnd {
    /// Its descriptors (a pipe link: read pipe, write pipe, socket; a
    /// shared-memory link: the memfd, the two doorbells, the socket; a
    /// socket link: its socket).
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let mut v = match &self.way {
            EndWay::Pipe { rx, tx } => vec![rx.as_raw_fd(), tx.as_raw_fd()],
            EndWay::Shm(end) => end.fds().to_vec(),
            EndWay::Socket(end) => vec![end.fd.as_raw_fd()],
        };
        v.extend(self.rights.as_ref().map(|r| r.as_raw_fd()));
        v
    }

    /// What its bytes travel through.
    pub fn kind(&self) -> LinkKind {
        match &self.way {
            EndWay::Pipe { .. } => LinkKind::Pipe,
            EndWay::Shm(_) => LinkKind::SharedMemory,
            EndWay::Socket(s) if s.family == Family::Unix => LinkKind::UnixSocket,
            EndWay::Socket(_) => LinkKind::Tcp,
        }
    }

    /// The peer's pid, for an end from a [`crate::socket::Listener`] or
    /// [`crate::socket::connect`]: the one the OS names on a Unix socket
    /// (`SO_PEERCRED`), the one the peer claims in its hello on TCP. `None`
    /// for ends made by [`new_link_of`] (the pair's creator hands them out).
    pub fn peer_pid(&self) -> Option<Pid> {
        match &self.way {
            EndWay::Socket(s) => match s.peer {
                PeerId::Cred(p) | PeerId::Claimed(p) => Some(Pid(p)),
                PeerId::Pair => None,
            },
            _ => None,
        }
    }

    /// Whether the link is sealed with the encrypted overlay
    /// ([`crate::socket::SocketOptions::sealed`]).
    pub fn is_sealed(&self) -> bool {
        matches!(&self.way, EndWay::Socket(s) if s.seal.is_some())
    }

    /// An end from a listener or a connect.
    pub(crate) fn from_socket(end: SocketEnd) -> LinkEnd {
        LinkEnd {
            way: EndWay::Socket(end),
            rights: None,
        }
    }

    /// Both directions, as this process uses them, with `peer` watched
    /// (shared memory) for its death.
    pub(crate) fn into_ends(self, peer: u32) -> Result<LinkEnds, IpcError> {
        let limit = crate::ipc::LINK_BODY_LIMIT;
        let (way, sock) = match (self.way, self.rights) {
            (EndWay::Socket(end), _) => {
                let (tx, rx) = crate::socket::halves(end, peer).map_err(errno::ipc_error)?;
                return Ok(LinkEnds {
                    tx: Some(Arc::new(LinkTx::socket(tx))),
                    rx: Some(Arc::new(LinkRx::socket(rx, limit))),
                });
            }
            (way, Some(rights)) => (way, Arc::new(rights)),
            // Pipes and rings always get their rights socket.
            (_, None) => return Err(IpcError::InvalidValue),
        };
        Ok(match way {
            EndWay::Pipe { rx, tx } => LinkEnds {
                tx: Some(Arc::new(LinkTx::new(tx, Some(Arc::clone(&sock))))),
                rx: Some(Arc::new(LinkRx::new(rx, Some(sock), limit))),
            },
            EndWay::Socket(_) => unreachable!("socket ends returned above"),
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
            rights: Some(rights),
        }
    }

    /// A socket end rebuilt from a start-up descriptor (a pair made by the
    /// spawning process, so the peer is the one it was made for).
    pub(crate) fn from_socket_fd(fd: std::os::fd::OwnedFd, tcp: bool) -> LinkEnd {
        LinkEnd::from_socket(SocketEnd {
            fd,
            family: if tcp { Family::Tcp } else { Family::Unix },
            peer: PeerId::Pair,
            seal: None,
        })
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
    let pair = match kind {
        LinkKind::UnixSocket => Some(crate::socket::unix_pair()),
        LinkKind::Tcp => Some(crate::socket::tcp_pair()),
        _ => None,
    };
    if let Some(pair) = pair {
        let (a, b) = pair.map_err(errno::ipc_error)?;
        return Ok((LinkEnd::from_socket(a), LinkEnd::from_socket(b)));
    }
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
        LinkKind::UnixSocket | LinkKind::Tcp => unreachable!("socket pairs returned above"),
    };
    Ok((
        LinkEnd {
            way: a,
            rights: Some(a_s),
        },
        LinkEnd {
            way: b,
            rights: Some(b_s),
        },
    ))
}

/// The two directions of the direct link with one peer.
#[derive(Default, Clone)]
pub(crate) struct LinkEnds {
    pub tx: Option<Arc<LinkTx>>,
    pub rx: Option<Arc<LinkRx>>,
}
