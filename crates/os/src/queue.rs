//! Ports and mailboxes as POSIX message queues.
//!
//! A POSIX queue already is a kernel-held FIFO of whole messages with a
//! maximum count (`mq_maxmsg`), a maximum size (`mq_msgsize`), blocking,
//! non-blocking and timed operations, and file-like permissions. So:
//!
//! * a **port** is a queue that is created and `mq_unlink`ed at once: only the
//!   descriptors remain, so only processes holding one (the receive right, or
//!   a send right passed to them) can reach it, and nothing is left behind
//!   when they exit, even after `SIGKILL`;
//! * a **mailbox** keeps its name (`/mkipc-<run>-m-<name>`), so unrelated
//!   processes meet through it; its mode bits are the access list.
//!
//! The capacity model is written into the queue itself, so that a sender who
//! only opened the queue by name knows how to behave: `mq_msgsize & 3` is
//! `0` for [`Capacity::Bounded`] (`mq_maxmsg` = n), `3` for [`Capacity::Zero`]
//! (`mq_maxmsg` = 1, the sender waits for an acknowledgement) and `2` for
//! [`Capacity::Unbounded`] (the sender spools what the queue cannot take, see
//! [`crate::spool`]).
//!
//! A POSIX queue does not know who holds it, so a port also has a
//! *liveness pipe*: the receive right holds its write end, every send right
//! a read end. When every holder of the receive right is gone (it exited,
//! even by `SIGKILL`), the read ends see `POLLHUP`; when the receive right
//! is destroyed in order (the port destroyed, its holder's `OsProcess`
//! dropped) one byte is written into the pipe first, so the read ends see
//! `POLLIN` at once, even while a `fork` in flight elsewhere in the process
//! holds a copy of the write end. Either way a send fails with
//! `DestinationDead` instead of filling a queue nobody will read
//! (`Queue::send`): a read end that is readable means death. A receive
//! right that *moves* writes nothing (it lives on elsewhere).
//!
//! ```
//! use mkipc_kernel::Capacity;
//! use mkipc_os::queue::{Model, msgsize_for};
//! let size = msgsize_for(Capacity::Zero);
//! assert_eq!(Model::from_msgsize(size), Model::Zero);
//! assert_eq!(Model::from_msgsize(msgsize_for(Capacity::Bounded(3))), Model::Bounded);
//! ```

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use mkipc_kernel::{Capacity, Message};

use crate::capacity::CapacityPage;
use crate::spool::Spool;
use crate::sys::{self, Errno, MqWait};
use crate::wire::HEADER_LEN;

/// The capacity model a queue was created with, read back from its attributes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Model {
    /// `mq_maxmsg` messages at most.
    Bounded,
    /// Rendezvous: the sender waits for the receiver's acknowledgement.
    Zero,
    /// The sender spools what the queue cannot take.
    Unbounded,
}

impl Model {
    /// Decodes the model from `mq_msgsize` (its two low bits).
    pub fn from_msgsize(msgsize: usize) -> Model {
        match msgsize & 3 {
            3 => Model::Zero,
            2 => Model::Unbounded,
            _ => Model::Bounded,
        }
    }
}

/// The largest message a queue may be created with:
/// `/proc/sys/fs/mqueue/msgsize_max` (8192 by default), rounded down to a
/// multiple of 4 so the low two bits can carry the model.
pub fn msgsize_limit() -> usize {
    sys::mqueue_limit("msgsize_max").unwrap_or(8192) & !3
}

/// `mq_msgsize` for a queue of the given capacity.
pub fn msgsize_for(capacity: Capacity) -> usize {
    let base = msgsize_limit();
    match capacity {
        Capacity::Bounded(_) => base,
        Capacity::Zero => base - 1,
        Capacity::Unbounded => base - 2,
    }
}

/// `mq_maxmsg` for a queue of the given capacity (unbounded queues take
/// `/proc/sys/fs/mqueue/msg_max`, 10 by default).
pub fn maxmsg_for(capacity: Capacity) -> usize {
    match capacity {
        Capacity::Bounded(n) => n,
        Capacity::Zero => 1,
        Capacity::Unbounded => sys::mqueue_limit("msg_max").unwrap_or(10),
    }
}

/// One open POSIX queue descriptor, with what it allows and what it is.
pub struct Queue {
    fd: OwnedFd,
    /// The POSIX name (it may already be unlinked).
    pub(crate) name: String,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) model: Model,
    pub(crate) maxmsg: usize,
    pub(crate) msgsize: usize,
    /// The receive buffer (one `mq_msgsize`), reused by every receive.
    rx: Mutex<Vec<u8>>,
    /// Frames this process could not put into an unbounded queue yet.
    pub(crate) spool: Spool,
    /// Messages this process received from the queue (its trailer seqno).
    pub(crate) seq: AtomicU64,
    /// Messages this process's sends discarded under a drop policy.
    pub(crate) dropped: AtomicU64,
    /// A named mailbox another process may destroy: long waits are cut into
    /// [`WATCH_SLICE`] slices, and between slices the name is checked, so a
    /// waiter learns the mailbox is gone (`EIDRM`) instead of waiting forever
    /// (`mq_unlink` does not wake anyone).
    pub(crate) watch: bool,
    /// A mailbox with an access list kept by the broker (`crate::grants`):
    /// its descriptors never leave this process in a message or at spawn.
    pub(crate) granted: bool,
    /// The port's liveness pipe, write end: held with the receive right.
    pub(crate) live_hold: Option<OwnedFd>,
    /// The port's liveness pipe, read end: held with a send right, to learn
    /// that the receiver is gone (also for a right inherited at spawn).
    /// `None` where unknown (a mailbox, a right from a foreign program).
    pub(crate) live_watch: Option<OwnedFd>,
    /// Messages this process took out of the queue and has not delivered
    /// yet: a `peek`'s head, the messages a selective receive passed over,
    /// the heads a `select` over ports compared. Receives take these first.
    pub(crate) held: Mutex<VecDeque<Held>>,
    /// `held.len()`, read without the lock on the receive fast path.
    pub(crate) held_len: AtomicUsize,
    /// Receives of this process blocked on the queue now (a close wakes them).
    pub(crate) blocked: AtomicUsize,
    /// Closed by the receiver (`Ipc::close`): shared by this process's
    /// descriptors of one port, so its own sends see it at once.
    pub(crate) closed: Arc<AtomicBool>,
    /// This process's ends of the port's senders pipes (`crate::senders`):
    /// who still holds a send right, counted by the OS. Shared like `closed`.
    pub(crate) senders: Arc<crate::senders::Senders>,
    /// The port set this receive right is in, if any (`crate::port_set`).
    pub(crate) in_set: Mutex<Weak<crate::port_set::PortSet>>,
    /// A port-destroyed request on this receive right: where it goes
    /// instead of dying (`crate::port_destroyed`).
    port_destroyed: Mutex<Option<crate::travel::PortDestroyed>>,
    /// The no-senders request on this receive right, taken off the
    /// notifier as the right is about to move to its port-destroyed notify
    /// port (it goes with it, as in the kernel: `crate::travel`).
    moving_no_senders: Mutex<Option<crate::travel::NotifyTo>>,
    /// A bounded port's capacity page ([`crate::capacity`]), shared by every
    /// holder of the port: the capacity every sender keeps to. `None` for
    /// other models, mailboxes and rights from programs other than mkipc.
    pub(crate) cap: Option<Arc<CapacityPage>>,
    /// A granted mailbox's access page (`crate::access_page`): what this
    /// process may still do with the descriptor after a grant shrank.
    pub(crate) allowed: Option<crate::access_page::Allowed>,
}

/// A message taken out of a queue by this process, not yet delivered.
pub(crate) struct Held {
    /// The message, accepted (its rendezvous acknowledged, its reply right
    /// installed); its trailer's seqno is set when it is delivered.
    pub(crate) msg: Message,
    /// When it was sent, if the sender stamped it (`wire::FLAG_STAMPED`).
    pub(crate) stamp: Option<u64>,
}

/// What a port's liveness pipe says about its receiver.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Receiver {
    /// Alive and taking messages (or unknown: no liveness pipe).
    Open,
    /// Alive, but it closed the port (`Ipc::close`): one byte in the pipe.
    Closed,
    /// Gone: hung up, or the two bytes of an orderly destruction.
    Gone,
}

/// How often a process blocked on a mailbox checks that it still exists,
/// where it cannot rely on a gone frame (see [`GONE_ID`]): a send waiting
/// for room, a receive with a deadline, any wait on a granted mailbox.
pub const WATCH_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// The id of a *gone frame*: an empty frame from sender 0 that whoever
/// destroys a mailbox (`mailbox_destroy`, its owner's end, the reaper of a
/// killed owner, `mkipc.py`'s `Mailbox.destroy`) puts into it right after
/// the `mq_unlink`, after emptying it, until it is full. `mq_unlink` wakes
/// nobody; a gone frame wakes a receive blocked in `mq_receive`, which then
/// checks the name: gone, the receive is `SourceDead` and puts the frame
/// back for the next waiter; still there, the frame was forged or stale and
/// is dropped. So a blocking receive from a mailbox waits in one
/// `mq_receive`, with no timer (DESIGN.md, os "Mailboxes").
pub const GONE_ID: u32 = 0xFFFF_FFF1;

/// Whether a queue frame's header is a gone frame ([`GONE_ID`]).
pub(crate) fn is_gone(h: &crate::wire::Header) -> bool {
    h.sender == 0 && h.id == GONE_ID && h.body_len == 0 && h.nrights == 0
}

/// The bytes of a gone frame ([`GONE_ID`]).
pub(crate) fn gone_frame() -> Vec<u8> {
    let mut frame = Vec::with_capacity(crate::wire::HEADER_LEN);
    crate::wire::encode_into(&mut frame, GONE_ID, &[], 0, 0, 0, &[]);
    frame
}

/// Unlinks the mailbox queue `name` and wakes whoever waits on it (see
/// [`GONE_ID`]): for a destruction of a mailbox this process does not hold
/// open (the reaper's). A queue it cannot open read-write is only unlinked.
pub(crate) fn unlink_waking(name: &str) -> Result<(), Errno> {
    let held = Queue::open(name, true, true).ok();
    sys::mq_unlink(name)?;
    if let Some(q) = held {
        q.wake_gone();
    }
    Ok(())
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("model", &self.model)
            .finish()
    }
}

impl Queue {
    /// Creates a queue with `O_EXCL`, then sets its mode exactly (`mq_open`
    /// applies the umask). `readable`/`writable` choose the descriptor's mode.
    pub(crate) fn create(
        name: &str,
        capacity: Capacity,
        mode: u32,
        readable: bool,
        writable: bool,
    ) -> Result<Queue, Errno> {
        validate_name(name)?;
        let fd = sys::mq_open(
            name,
            oflag(readable, writable),
            Some((
                mode as libc::mode_t,
                maxmsg_for(capacity),
                msgsize_for(capacity),
            )),
        )?;
        sys::fchmod(fd.as_fd(), mode as libc::mode_t)?;
        Queue::from_fd(fd, name.to_string(), readable, writable)
    }

    /// Opens an existing queue.
    pub(crate) fn open(name: &str, readable: bool, writable: bool) -> Result<Queue, Errno> {
        validate_name(name)?;
        let fd = sys::mq_open(name, oflag(readable, writable), None)?;
        Queue::from_fd(fd, name.to_string(), readable, writable)
    }

    /// Wraps a descriptor (e.g. one received with `SCM_RIGHTS`).
    pub(crate) fn from_fd(
        fd: OwnedFd,
        name: String,
        readable: bool,
        writable: bool,
    ) -> Result<Queue, Errno> {
        let attr = sys::mq_getattr(fd.as_fd())?;
        Ok(Queue {
            fd,
            name,
            readable,
            writable,
            model: Model::from_msgsize(attr.msgsize),
            maxmsg: attr.maxmsg,
            msgsize: attr.msgsize,
            rx: Mutex::new(Vec::new()),
            spool: Spool::default(),
            seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            watch: false,
            granted: false,
            live_hold: None,
            live_watch: None,
            held: Mutex::new(VecDeque::new()),
            held_len: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            closed: Arc::new(AtomicBool::new(false)),
            senders: Arc::default(),
            in_set: Mutex::new(Weak::new()),
            port_destroyed: Mutex::new(None),
            moving_no_senders: Mutex::new(None),
            cap: None,
            allowed: None,
        })
    }

    /// Puts a port-destroyed request on this receive right (replacing one).
    pub(crate) fn set_port_destroyed(&self, request: crate::travel::PortDestroyed) {
        *self
            .port_destroyed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(request);
    }

    /// Takes the port-destroyed request off this receive right.
    pub(crate) fn take_port_destroyed(&self) -> Option<crate::travel::PortDestroyed> {
        self.port_destroyed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Whether a port-destroyed request is on this receive right.
    pub(crate) fn has_port_destroyed(&self) -> bool {
        self.port_destroyed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Keeps the no-senders request `to` with this receive right while it
    /// moves to its port-destroyed notify port.
    pub(crate) fn keep_moving_no_senders(&self, to: crate::travel::NotifyTo) {
        *self
            .moving_no_senders
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    /// The no-senders request kept by [`keep_moving_no_senders`](Self::keep_moving_no_senders).
    pub(crate) fn take_moving_no_senders(&self) -> Option<crate::travel::NotifyTo> {
        self.moving_no_senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Where this receive right's port-destroyed request would send it now,
    /// leaving the request in place (for a right about to move).
    pub(crate) fn port_destroyed_target(&self) -> Option<crate::travel::NotifyTo> {
        self.port_destroyed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|r| r.target())
    }

    /// Whether a grant taken back forbids this process to send (`send`) or
    /// receive on this granted mailbox now (`crate::access_page`).
    pub(crate) fn revoked(&self, send: bool) -> bool {
        self.allowed.as_ref().is_some_and(|a| !a.may(send))
    }

    /// Whether this process closed the port (`Ipc::close`).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Takes the oldest held message, if any.
    pub(crate) fn pop_held(&self) -> Option<Held> {
        if self.held_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let h = held.pop_front();
        self.held_len.store(held.len(), Ordering::Release);
        h
    }

    /// The descriptor.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The largest body a message to this queue can have.
    pub(crate) fn body_limit(&self) -> usize {
        self.msgsize.saturating_sub(HEADER_LEN)
    }

    /// The port's capacity now: its capacity page's, else what the queue
    /// was created with.
    pub(crate) fn capacity(&self) -> Capacity {
        match self.model {
            Model::Bounded => {
                Capacity::Bounded(self.cap.as_ref().map_or(self.maxmsg, |p| p.capacity()))
            }
            Model::Zero => Capacity::Zero,
            Model::Unbounded => Capacity::Unbounded,
        }
    }

    /// Messages queued now, counting those in this process's spool and
    /// those it holds (taken out but not delivered).
    pub(crate) fn len(&self) -> usize {
        sys::mq_getattr(self.fd.as_fd())
            .map(|a| a.curmsgs)
            .unwrap_or(0)
            + crate::spool::len(self)
            + self.held_len.load(Ordering::Acquire)
    }

    /// Whether the queue's name still exists (a mailbox another process may
    /// destroy). Unnamed queues (ports) always "exist".
    pub(crate) fn still_named(&self) -> bool {
        !self.watch
            || !matches!(
                sys::mq_open(&self.name, libc::O_RDONLY, None),
                Err(libc::ENOENT)
            )
    }

    /// Empties this mailbox, which the caller has just unlinked, and fills
    /// it with gone frames ([`GONE_ID`]), as far as this descriptor may
    /// read and write: every receive blocked on it, in any process, wakes.
    /// The messages it held die with the mailbox anyway.
    ///
    /// A bounded mailbox's senders blocked inside `mq_send` (no timer: see
    /// `crate::capacity`) are let in: the page says `gone` (their next send
    /// fails with `EIDRM`), and a place is made for each until none is left
    /// inside, for at most [`WATCH_SLICE`] (a sender killed in there is never
    /// counted out).
    pub(crate) fn wake_gone(&self) {
        let frame = gone_frame();
        let mut blocked = self.cap.as_ref().map_or(0, |page| page.set_gone());
        let until = std::time::Instant::now() + WATCH_SLICE;
        loop {
            if self.readable {
                while self.receive(MqWait::NoWait, |_| ()).is_ok() {}
            }
            if self.writable {
                while self.post_frame(&frame).is_ok() {}
            }
            if blocked == 0 || !self.readable || std::time::Instant::now() >= until {
                return;
            }
            // Let the senders the drain woke take their places and count
            // themselves out, then look again.
            std::thread::sleep(std::time::Duration::from_micros(200));
            blocked = self.cap.as_ref().map_or(0, |page| page.in_send());
        }
    }

    /// Puts a gone frame this process took back, for the next waiter (see
    /// [`GONE_ID`]); nothing if this descriptor may not write or it is full.
    pub(crate) fn repost_gone(&self) {
        if self.writable {
            let _ = self.post_frame(&gone_frame());
        }
    }

    /// Runs a blocking queue operation; on a watched mailbox the wait is cut
    /// into slices with an existence check between them (`EIDRM` once gone).
    ///
    /// Except on the fast paths, which read no clock and arm no timer: a
    /// send that expects room (`try_first`: its capacity page gave it a
    /// place) first tries without waiting, so only a send that has to sleep
    /// anyway pays for slices (trying first where the queue is full would
    /// cost a second system call), and a receive with no deadline from a mailbox without grants blocks
    /// in one `mq_receive`: a destruction wakes it with a gone frame
    /// ([`GONE_ID`]). A granted mailbox keeps its slices: between them a
    /// waiter also checks its access page (a grant taken back).
    fn watched<R>(
        &self,
        wait: MqWait,
        send: bool,
        try_first: bool,
        mut op: impl FnMut(MqWait) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        if !self.watch || matches!(wait, MqWait::NoWait) {
            return op(wait);
        }
        if send && try_first {
            match op(MqWait::NoWait) {
                Err(libc::EAGAIN) => {}
                other => return other,
            }
        } else if matches!(wait, MqWait::Forever) && !self.granted {
            return op(wait);
        }
        loop {
            let slice_end =
                sys::deadline_after(WATCH_SLICE).unwrap_or_else(std::time::Instant::now);
            let (step, last) = match wait {
                MqWait::Until(d) if d <= slice_end => (MqWait::Until(d), true),
                _ => (MqWait::Until(slice_end), false),
            };
            match op(step) {
                Err(libc::ETIMEDOUT) if !last => {
                    if !self.still_named() {
                        return Err(libc::EIDRM);
                    }
                    // A grant taken back while this call waited.
                    if self.revoked(send) {
                        return Err(libc::EACCES);
                    }
                }
                other => return other,
            }
        }
    }

    /// Says the port is destroyed (see the module docs): one byte into the
    /// liveness pipe, which its senders' read ends then see at once. For a
    /// receive right ending in order, never for one that moves.
    pub(crate) fn signal_destroyed(&self) {
        if let Some(hold) = &self.live_hold {
            // Two bytes in all mean destroyed (one was written already if the
            // port was closed). A few bytes into a pipe nobody reads from
            // never block; EPIPE means no sender is left to tell.
            let bytes: &[u8] = if self.is_closed() { &[2] } else { &[2, 2] };
            let _ = sys::writev(hold.as_fd(), &[std::io::IoSlice::new(bytes)]);
        }
        // Senders waiting for room look at the liveness pipe again now.
        if let Some(page) = &self.cap {
            page.wake_all();
        }
    }

    /// Says the port is closed (`Ipc::close`): one byte into the liveness
    /// pipe, so other processes' sends fail with `Closed`. The first close
    /// only; returns whether this one closed it.
    pub(crate) fn signal_closed(&self) -> bool {
        if self.closed.swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Some(hold) = &self.live_hold {
            let _ = sys::writev(hold.as_fd(), &[std::io::IoSlice::new(&[1])]);
        }
        if let Some(page) = &self.cap {
            page.wake_all();
        }
        true
    }

    /// What the port's liveness pipe says (see the module docs): one `poll`
    /// while nothing was written; then the bytes waiting in it tell a close
    /// (one) from a destruction (two), and a hang-up is a death.
    pub(crate) fn receiver(&self) -> Receiver {
        let Some(w) = &self.live_watch else {
            return Receiver::Open;
        };
        match sys::poll_revents(w.as_fd(), libc::POLLIN) {
            Ok(0) | Err(_) => Receiver::Open,
            Ok(r) if r & (libc::POLLHUP | libc::POLLERR) != 0 => Receiver::Gone,
            Ok(_) => match sys::pipe_pending(w.as_fd()) {
                Ok(1) => Receiver::Closed,
                _ => Receiver::Gone,
            },
        }
    }

    /// Whether the port's receiver is known to be gone (see the module docs).
    pub(crate) fn receiver_gone(&self) -> bool {
        self.receiver() == Receiver::Gone
    }

    /// Puts one frame into the queue. On a port whose receiver is known to
    /// be gone it fails with `EIDRM` (`DestinationDead`), also while it waits
    /// for room: the wait is a `poll` on the queue and the liveness pipe. A
    /// port with a capacity page also keeps to the capacity there
    /// ([`crate::capacity`], [`send_paged`](Self::send_paged)).
    pub(crate) fn send(&self, frame: &[u8], wait: MqWait) -> Result<(), Errno> {
        match &self.cap {
            Some(page) => self.send_paged(page, frame, wait),
            None => self.send_os(frame, wait),
        }
    }

    /// [`send`](Self::send) into a port with a capacity page: a place in
    /// the page, then the `mq_send`, waiting as `wait` says. `EAGAIN` when
    /// full and it may not wait, `ETIMEDOUT` at the deadline,
    /// `EIDRM`/`ESHUTDOWN` when the receiver is gone or closed the port.
    ///
    /// At the capacity the queue was made with, the queue decides and the
    /// page only counts: the sender takes its place even if the count says
    /// full (a receive between its `mq_receive` and giving its place back),
    /// and waits for room in `poll` on the queue and the liveness pipe, as
    /// without a page (the receive that makes room wakes it, with no system
    /// call of its own; no place is held while it waits, so a sender killed
    /// there takes none with it); on its own port (no liveness pipe to
    /// watch) it waits inside `mq_send`, holding its place (its death ends
    /// the port too). Below it (a shrunk port) the page decides:
    /// the sender sleeps on it in slices of [`crate::capacity::SLICE`],
    /// looking at the liveness pipe between them.
    fn send_paged(&self, page: &CapacityPage, frame: &[u8], wait: MqWait) -> Result<(), Errno> {
        let deadline = match wait {
            MqWait::Until(d) => Some(d),
            _ => None,
        };
        loop {
            match self.receiver() {
                Receiver::Gone => return Err(libc::EIDRM),
                Receiver::Closed => return Err(libc::ESHUTDOWN),
                Receiver::Open if self.is_closed() => return Err(libc::ESHUTDOWN),
                Receiver::Open => {}
            }
            if self.watch && page.gone() {
                return Err(libc::EIDRM);
            }
            let at_queue_limit = page.capacity() >= self.maxmsg;
            let placed = page.try_reserve();
            if placed || at_queue_limit {
                if !placed {
                    page.force_reserve();
                }
                if self.live_watch.is_none() {
                    // Our own port (we hold its receive right, so no death
                    // to watch for) or a mailbox (no liveness pipe; its
                    // destruction is watched in slices): wait inside
                    // `mq_send`, one system call, which the receive hands
                    // the freed slot to directly.
                    let sent = if self.watch && !self.granted && matches!(wait, MqWait::Forever) {
                        // A bounded mailbox: one `mq_send` with no timer,
                        // counted so that a destruction lets it in
                        // (`crate::capacity`, `wake_gone`).
                        self.send_counted(page, frame, placed)
                    } else {
                        self.watched(wait, true, placed, |w| {
                            sys::mq_send(self.fd.as_fd(), frame, w)
                        })
                    };
                    if sent.is_err() {
                        page.release();
                    }
                    return sent;
                }
                match sys::mq_send(self.fd.as_fd(), frame, MqWait::NoWait) {
                    Ok(()) => return Ok(()),
                    Err(libc::EAGAIN) => page.release(),
                    Err(e) => {
                        page.release();
                        return Err(e);
                    }
                }
                if matches!(wait, MqWait::NoWait) {
                    return Err(libc::EAGAIN);
                }
                // The queue itself is full: wait for room as without a page.
                let mut fds = vec![(self.fd.as_raw_fd(), libc::POLLOUT)];
                if let Some(live) = &self.live_watch {
                    fds.push((live.as_raw_fd(), libc::POLLIN));
                }
                if sys::poll_events(&fds, deadline)?.is_empty() {
                    return Err(libc::ETIMEDOUT);
                }
                continue;
            }
            if matches!(wait, MqWait::NoWait) {
                return Err(libc::EAGAIN);
            }
            let now = std::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(libc::ETIMEDOUT);
            }
            let slice = now + crate::capacity::SLICE;
            page.wait_for_room(deadline.map_or(slice, |d| d.min(slice)))?;
            // A mailbox another process may destroy: its name, between slices.
            if self.watch && !self.still_named() {
                return Err(libc::EIDRM);
            }
        }
    }

    /// A blocking send into a bounded mailbox without grants: first
    /// without waiting if the page gave a place (`try_first`), then one
    /// `mq_send` with no deadline, counted in the page's `in_send`.
    fn send_counted(
        &self,
        page: &CapacityPage,
        frame: &[u8],
        try_first: bool,
    ) -> Result<(), Errno> {
        if try_first {
            match sys::mq_send(self.fd.as_fd(), frame, MqWait::NoWait) {
                Err(libc::EAGAIN) => {}
                other => return other,
            }
        }
        page.counted_send(|| sys::mq_send(self.fd.as_fd(), frame, MqWait::Forever))
    }

    /// Puts a frame the capacity does not hold back (a kernel
    /// notification, a close's wake-up) into the queue without waiting; it
    /// is counted in the capacity page all the same, as its receipt gives a
    /// place back.
    pub(crate) fn post_frame(&self, frame: &[u8]) -> Result<(), Errno> {
        if let Some(page) = &self.cap {
            page.force_reserve();
        }
        let sent = sys::mq_send(self.fd.as_fd(), frame, MqWait::NoWait);
        if sent.is_err() {
            if let Some(page) = &self.cap {
                page.release();
            }
        }
        sent
    }

    /// [`send`](Self::send) without the capacity page: the OS queue alone.
    fn send_os(&self, frame: &[u8], wait: MqWait) -> Result<(), Errno> {
        let Some(live) = &self.live_watch else {
            return self.watched(wait, true, false, |w| {
                sys::mq_send(self.fd.as_fd(), frame, w)
            });
        };
        let deadline = match wait {
            MqWait::NoWait => None,
            MqWait::Forever => None,
            MqWait::Until(d) => Some(d),
        };
        loop {
            match self.receiver() {
                Receiver::Gone => return Err(libc::EIDRM),
                Receiver::Closed => return Err(libc::ESHUTDOWN),
                Receiver::Open => {}
            }
            match sys::mq_send(self.fd.as_fd(), frame, MqWait::NoWait) {
                Err(libc::EAGAIN) if !matches!(wait, MqWait::NoWait) => {}
                other => return other,
            }
            let fds = [
                (self.fd.as_raw_fd(), libc::POLLOUT),
                (live.as_raw_fd(), libc::POLLIN),
            ];
            match sys::poll_events(&fds, deadline) {
                Ok(ready) if ready.is_empty() => return Err(libc::ETIMEDOUT),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes one frame out of the queue and hands its bytes to `f`.
    pub(crate) fn receive<R>(&self, wait: MqWait, f: impl FnOnce(&[u8]) -> R) -> Result<R, Errno> {
        let mut buf = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        if buf.len() < self.msgsize {
            buf.resize(self.msgsize, 0);
        }
        let n = self.watched(wait, false, false, |w| {
            sys::mq_receive(self.fd.as_fd(), &mut buf, w)
        })?;
        // A frame left the queue: its place in the capacity page is free.
        if let Some(page) = &self.cap {
            page.release();
        }
        Ok(f(&buf[..n]))
    }

    /// A duplicate of the descriptor, to pass to another process.
    pub(crate) fn dup_fd(&self) -> Result<OwnedFd, Errno> {
        sys::dup(self.fd.as_fd())
    }
}

/// Checks a POSIX queue name: one leading slash, no other, 1 to 255
/// characters after it. Linux itself answers `EACCES` for a second slash,
/// which would read as a permission problem, so the rule is checked here and
/// every malformed name is `EINVAL` (`ENAMETOOLONG` when too long).
///
/// ```
/// use mkipc_os::queue::validate_name;
/// assert!(validate_name("/mkipc-ok").is_ok());
/// assert_eq!(validate_name("no-slash"), Err(libc::EINVAL));
/// assert_eq!(validate_name("/a/b"), Err(libc::EINVAL));
/// assert_eq!(validate_name("/"), Err(libc::EINVAL));
/// ```
pub fn validate_name(name: &str) -> Result<(), i32> {
    let Some(rest) = name.strip_prefix('/') else {
        return Err(libc::EINVAL);
    };
    if rest.is_empty() || rest.contains('/') || rest.contains('\0') {
        return Err(libc::EINVAL);
    }
    if rest.len() > 255 {
        return Err(libc::ENAMETOOLONG);
    }
    Ok(())
}

fn oflag(readable: bool, writable: bool) -> libc::c_int {
    match (readable, writable) {
        (true, true) => libc::O_RDWR,
        (true, false) => libc::O_RDONLY,
        _ => libc::O_WRONLY,
    }
}
