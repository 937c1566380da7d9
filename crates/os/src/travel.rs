//! Notification requests that travel with a receive right.
//!
//! In the kernel a no-senders or port-destroyed request is kept *on the
//! port*: a send-once right to the requester's notify port, which moves
//! with the receive right, so the notification reaches the requester
//! whoever holds the right when it fires. Here a request is where the
//! receive right is (the notifier of its process, or the receive
//! [`Queue`]), so when the right moves to another process its requests go
//! with it, as three more descriptors after the right's own (wire bits
//! [`LIVE_NO_SENDERS`](crate::wire::LIVE_NO_SENDERS) and
//! [`LIVE_PORT_DESTROYED`](crate::wire::LIVE_PORT_DESTROYED)):
//!
//! 1. a pipe's read end holding the request's 4-byte *token* (written
//!    before the right leaves, so it is there when the right arrives);
//! 2. a send descriptor of the notify port's queue;
//! 3. a read end of the notify port's liveness pipe, so the new holder
//!    knows when the notify port is gone (a port-destroyed request then
//!    destroys the port, as the kernel does, instead of moving it into a
//!    queue nobody reads).
//!
//! A notification is vouched for only when it carries the key of the
//! process that reads it (`crate::notify`). The new holder must not learn
//! the requester's key (it could forge any notification to any of its
//! ports), so a request that leaves the process it was made in gets a
//! *token* of its own: random, registered here for the one notification id
//! it may carry ([`mint`]), and consumed when that notification is received
//! ([`vouch`]). A request that moves on again keeps its token; the holder
//! that fires it posts the frame with the token, and the requester, reading
//! it from its notify port, finds the token in its table.
//!
//! A receive right with a port-destroyed request from another process is
//! also put in *escrow* with the run's broker (`crate::broker`): if its
//! holder is killed by a signal, the broker sees its connection close and
//! moves the right to the notify port itself.
//!
//! What does not travel: a request whose notify port has no liveness pipe
//! (a right from a program other than mkipc) lapses, logged; and the
//! notify port's own receive right, when it moves, carries no table, so
//! notifications for it are not vouched for by the new holder (they arrive
//! as claimed messages).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use crate::queue::Queue;
use crate::sys::{self, Errno};

/// Where a notification goes and the token its frame carries.
#[derive(Clone)]
pub(crate) struct NotifyTo {
    /// The queue to post into: the notify port's receive queue when the
    /// request was made here, a send descriptor of it when it came with a
    /// receive right.
    pub(crate) queue: Arc<Queue>,
    /// A send descriptor of the notify port with its liveness pipe, to
    /// carry the request on (`None`: it cannot travel).
    pub(crate) send: Option<Arc<Queue>>,
    /// This process's notification key, or the request's own token.
    pub(crate) token: u32,
}

impl std::fmt::Debug for NotifyTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTo").finish_non_exhaustive()
    }
}

impl NotifyTo {
    /// A request made in this process: its notify port's receive queue and
    /// this process's send descriptor of it.
    pub(crate) fn here(receive: &Arc<Queue>, send: &Arc<Queue>) -> NotifyTo {
        NotifyTo {
            queue: Arc::clone(receive),
            send: Some(Arc::clone(send)),
            token: crate::notify::key(),
        }
    }

    /// Whether the notify port is known to be gone.
    pub(crate) fn gone(&self) -> bool {
        self.send.as_ref().unwrap_or(&self.queue).receiver_gone()
    }

    /// The request's descriptors for a receive right leaving this process
    /// (see the module docs): a request made here gets a token of its own
    /// for notification `id`.
    pub(crate) fn carry(&self, id: u32) -> Result<Vec<OwnedFd>, Errno> {
        let send = self.send.as_ref().ok_or(libc::EPROTO)?;
        let watch = send.live_watch.as_ref().ok_or(libc::EPROTO)?;
        let token = if self.token == crate::notify::key() {
            mint(id)
        } else {
            self.token
        };
        let (read, write) = sys::pipe()?;
        let written = sys::writev(
            write.as_fd(),
            &[std::io::IoSlice::new(&token.to_le_bytes())],
        )?;
        if written != 4 {
            return Err(libc::EIO);
        }
        Ok(vec![read, send.dup_fd()?, sys::dup(watch.as_fd())?])
    }

    /// A request that came with a receive right: its three descriptors in
    /// the order [`carry`](Self::carry) made them.
    pub(crate) fn adopt(token: OwnedFd, queue: OwnedFd, watch: OwnedFd) -> Result<NotifyTo, Errno> {
        // The token is in the pipe before the right leaves: never wait for it.
        if sys::pipe_pending(token.as_fd())? < 4 {
            return Err(libc::EPROTO);
        }
        let mut b = [0u8; 4];
        if sys::read(token.as_fd(), &mut b)? != 4 {
            return Err(libc::EPROTO);
        }
        let mut q = Queue::from_fd(queue, String::new(), false, true)?;
        q.live_watch = Some(watch);
        let q = Arc::new(q);
        Ok(NotifyTo {
            queue: Arc::clone(&q),
            send: Some(q),
            token: u32::from_le_bytes(b),
        })
    }
}

/// A port-destroyed request on a receive right (`crate::port_destroyed`).
pub(crate) enum PortDestroyed {
    /// Made here: the notify port's receive and send queues, weakly (a
    /// request does not keep its notify port alive).
    Here {
        receive: Weak<Queue>,
        send: Weak<Queue>,
    },
    /// Came with the receive right; `escrow` is the id of its copy in the
    /// broker's escrow (`crate::broker`), which moves it if this process is
    /// killed.
    There { to: NotifyTo, escrow: Option<u64> },
}

impl PortDestroyed {
    /// Where the notification goes, if the notify port is still there.
    pub(crate) fn target(&self) -> Option<NotifyTo> {
        match self {
            PortDestroyed::Here { receive, send } => {
                Some(NotifyTo::here(&receive.upgrade()?, &send.upgrade()?))
            }
            PortDestroyed::There { to, .. } => (!to.gone()).then(|| to.clone()),
        }
    }
}

/// The tokens of requests that left this process, with the notification
/// id each may carry.
static DELEGATED: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());

/// A fresh token for a request of this process that leaves it, for
/// notification `id` (never 0, never this process's key).
pub(crate) fn mint(id: u32) -> u32 {
    let key = crate::notify::key();
    let mut table = DELEGATED.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let mut b = [0u8; 4];
        if sys::getrandom(&mut b).is_err() {
            b = (key ^ (table.len() as u32 + 1).wrapping_mul(0x9E37_79B9)).to_le_bytes();
        }
        let t = u32::from_le_bytes(b);
        if t != 0 && t != key && !table.iter().any(|&(k, _)| k == t) {
            table.push((t, id));
            return t;
        }
    }
}

/// Whether `token` is a travelling request's token for notification `id`;
/// if so it is used up (a request is one-shot).
pub(crate) fn vouch(token: u32, id: u32) -> bool {
    let mut table = DELEGATED.lock().unwrap_or_else(|p| p.into_inner());
    match table.iter().position(|&e| e == (token, id)) {
        Some(i) => {
            table.swap_remove(i);
            true
        }
        None => false,
    }
}
