//! Who still holds a send right to a port: the OS counts it for us.
//!
//! A POSIX queue descriptor does not say how many processes hold it, so a
//! port also has a *senders pipe*: every send right holds a write end, the
//! receive right holds the read end. When the last write end is closed — its
//! right released, moved into a process that released it, or its process
//! gone, even by `SIGKILL` — the read end hangs up (`POLLHUP`), and the
//! receiver's no-senders notification comes from that, never from a timeout
//! or a count one process keeps for all (DESIGN.md, "Notifications").
//!
//! The rule that keeps it simple: a write end is never made from a read end
//! (the OS cannot), so the receive right makes a new pipe — a new
//! *generation* — whenever a send right must be made while this process
//! holds no write end of its own; it keeps the read end of every generation
//! that may still have a writer and drops the ones that hung up. "No
//! senders" is: this process holds no write end, and every read end it
//! keeps has hung up.
//!
//! ```text
//! receive right (read ends: gen 1, gen 2)
//!   ├── this process's send references: one write end of gen 2 (while > 0)
//!   ├── process B's send right: a write end of gen 1 (SCM_RIGHTS)
//!   └── the broker's copy (name service, or a right queued in a message)
//! ```
//!
//! On the wire a send right carries its write end (`wire::LIVE_SENDER`), a
//! receive right its read ends (their count in the right descriptor's
//! access byte). A right from a foreign program carries none: its holder is
//! not counted (only mkipc processes can reach a port at all).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::sys::{self, Errno};

/// One process's ends of one port's senders pipes, shared by its receive
/// and send descriptors of the port (like `Queue::closed`).
#[derive(Default)]
pub(crate) struct Senders {
    /// The write end this process's own send references stand on, while it
    /// has any (or the one a received send right came with).
    hold: Mutex<Option<OwnedFd>>,
    /// With the receive right: a read end of each generation that may
    /// still have a writer.
    watch: Mutex<Vec<OwnedFd>>,
}

/// Whether every write end of the pipe whose read end is `fd` is closed
/// (no data is ever written, so readable means hung up).
fn hung_up(fd: &OwnedFd) -> bool {
    match sys::poll_revents(fd.as_fd(), libc::POLLIN) {
        Ok(r) => r & (libc::POLLHUP | libc::POLLERR | libc::POLLIN) != 0,
        Err(_) => true,
    }
}

impl Senders {
    /// The ends a send right arrived with (its write end, if it had one).
    pub(crate) fn holding(end: Option<OwnedFd>) -> Senders {
        Senders {
            hold: Mutex::new(end),
            watch: Mutex::new(Vec::new()),
        }
    }

    /// The ends a receive right arrived with (its read ends).
    pub(crate) fn watching(ends: Vec<OwnedFd>) -> Senders {
        Senders {
            hold: Mutex::new(None),
            watch: Mutex::new(ends),
        }
    }

    /// A new generation: its read end is kept, its write end returned.
    fn new_generation(&self) -> Result<OwnedFd, Errno> {
        let (read, write) = sys::pipe()?;
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        watch.retain(|fd| !hung_up(fd));
        watch.push(read);
        Ok(write)
    }

    /// This process's send references went from none to some while it holds
    /// the receive right: they get a write end (a new generation if this
    /// process holds none). `true` if a generation was made.
    pub(crate) fn hold_local(&self) -> Result<bool, Errno> {
        let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        if hold.is_some() {
            return Ok(false);
        }
        *hold = Some(self.new_generation()?);
        Ok(true)
    }

    /// This process's last send reference to the port is gone.
    pub(crate) fn release_local(&self) {
        self.hold.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// A write end for a send right that leaves this process: a duplicate
    /// of this process's own, else (with the receive right here) one of a
    /// new generation; `None` for a right that came without one. The `bool`
    /// says whether a generation was made.
    pub(crate) fn end_for_right(&self, receiver: bool) -> Result<(Option<OwnedFd>, bool), Errno> {
        if let Some(h) = self.hold.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok((Some(sys::dup(h.as_fd())?), false));
        }
        if !receiver {
            return Ok((None, false));
        }
        Ok((Some(self.new_generation()?), true))
    }

    /// Duplicates of the read ends that may still have a writer, for a
    /// receive right leaving this process or for the notifier's `epoll`.
    pub(crate) fn dup_watch(&self) -> Result<Vec<OwnedFd>, Errno> {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        watch.retain(|fd| !hung_up(fd));
        watch.iter().map(|fd| sys::dup(fd.as_fd())).collect()
    }

    /// The receive right moved away: its read ends went with it.
    pub(crate) fn forget_watch(&self) {
        self.watch.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// No send right is left anywhere: this process holds no write end and
    /// every generation it watches has hung up.
    pub(crate) fn none_left(&self) -> bool {
        if self
            .hold
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return false;
        }
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        watch.retain(|fd| !hung_up(fd));
        watch.is_empty()
    }
}
