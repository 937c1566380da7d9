//! A bounded port's capacity, shared by every process holding the port: the
//! *capacity page*.
//!
//! A POSIX queue's `mq_maxmsg` is fixed when it is created, and every holder
//! of a send right has its own descriptor of that one queue, so neither a
//! new queue nor a changed attribute can give a port a new capacity. What
//! can change is a word every sender reads before it sends. So each bounded
//! port has one page of shared memory beside its queue (an unnamed, sealed
//! `memfd` of mode 0600: nothing to guess, nothing left in `/dev/shm`),
//! which travels with every right to the port as one more descriptor (wire
//! liveness bit [`LIVE_CAPACITY`](crate::wire::LIVE_CAPACITY), the last
//! descriptor of the right; a start-up `right` line's seventh field):
//!
//! * `capacity`: the port's capacity now, `1..=mq_maxmsg`
//!   ([`Ipc::set_capacity`](mkipc_kernel::Ipc::set_capacity) moves it; a
//!   larger one than the queue holds is `Limit::MqMsgMax` naming the queue's
//!   `mq_maxmsg`);
//! * `queued`: messages in the queue plus sends under way. A sender
//!   *reserves* a place (compare-and-swap while `queued < capacity`) before
//!   its `mq_send` and gives it back if the send fails; a receive gives one
//!   back for each frame it takes out of the queue. A port whose queue holds
//!   `queued >= capacity` is full as the kernel's is: `try_send` fails with
//!   the message given back, `send` waits, `send_timeout` waits until its
//!   deadline. Shrinking keeps what is queued (new sends wait until the
//!   queue drains below the new capacity), growing wakes the waiting
//!   senders: the kernel's `set_capacity`.
//! * `seq`/`waiters`: a sender that must wait says so in `waiters` and
//!   sleeps on `seq` with `FUTEX_WAIT` (shared, not private: the page is in
//!   several processes); whoever frees a place or grows the capacity bumps
//!   `seq` and wakes it. It sleeps in slices of [`SLICE`] and looks at the
//!   port's liveness pipe between them, so a receiver killed by a signal
//!   (it wakes nobody) ends the wait with `DestinationDead` within a slice;
//!   an orderly close or destruction wakes the sleepers at once. At the
//!   capacity the queue was made with (no `set_capacity` below it), the
//!   queue decides and the page only counts: a sender takes its place even
//!   when the count says full (a receive that has taken its frame but not
//!   yet given the place back) and waits for room in `poll` on the queue
//!   and the liveness pipe as it would without a page, holding no place
//!   while it waits (`docs/perf/2026-12-03-oscap.md` has what each costs).
//!
//! A bounded *mailbox* has a page too; its senders open it by name, so the
//! run's broker keeps the page by the mailbox's POSIX name and gives every
//! mkipc opener a copy (`OsProcess::mailbox_page`); a mailbox right carried
//! in a message brings its page as a port right does.
//!
//! Kernel notifications (and a close's wake-up frames) bypass the capacity,
//! as in the kernel, but are counted, so their receipt gives nothing away.
//! What the page cannot see: a frame written by a program other than mkipc
//! (it reserves nothing, and its receipt gives back a place an mkipc sender
//! reserved: the port may then hold one message more than its capacity
//! until it drains), and a holder killed between its reservation and its
//! `mq_send` (a few instructions, no wait), which leaves the port one place
//! short until the next `set_capacity` (which recounts from the queue; a
//! send between its reservation and its `mq_send` at that very instant, or
//! blocked inside `mq_send` on its own port, then loses its place, and the
//! port may hold one message more, once).
//!
//! A mailbox's page also says when it is destroyed (`gone`) and counts the
//! senders blocked in `mq_send` on it (`in_send`): a blocking send into a
//! bounded mailbox waits in one `mq_send` with no timer (no watch slice),
//! and whoever destroys the mailbox sets `gone`, then makes room until no
//! sender is left inside `mq_send` (`Queue::wake_gone`). A sender counts
//! itself in before it looks at `gone`, the destroyer sets `gone` before it
//! reads the count (both `SeqCst`), so either the sender sees `gone` or the
//! destroyer sees the sender.
//!
//! Layout (little-endian, offsets in bytes): 0 magic `MKIPCCAP` (u64), 8
//! `capacity` (u32), 12 `queued` (u32), 16 `seq` (u32), 20 `waiters` (u32),
//! 24 `gone` (u32, a mailbox's: 1 once destroyed), 28 `in_send` (u32);
//! the page is [`PAGE_LEN`] bytes.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, IpcError, Message};
//! use mkipc_kernel::error::Limit;
//! let os = mkipc_os::OsProcess::new().unwrap();
//! let port = os.port_allocate(Capacity::Bounded(3)).unwrap();
//! os.set_capacity(port, Capacity::Bounded(1)).unwrap();
//! os.send(port, Message::new(1, b"a")).unwrap();
//! assert!(os.try_send(port, Message::new(2, b"b")).is_err()); // full at 1
//! os.set_capacity(port, Capacity::Bounded(2)).unwrap();
//! os.try_send(port, Message::new(2, b"b")).unwrap();
//! // The queue was made for 3 messages: no more.
//! assert_eq!(
//!     os.set_capacity(port, Capacity::Bounded(4)),
//!     Err(IpcError::Limit(Limit::MqMsgMax { max: 3 }))
//! );
//! ```

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::sys::Errno;
use crate::sys_shm::{self, SealedPage};

/// The size of a capacity page's file.
pub const PAGE_LEN: usize = crate::sys_shm::PAGE_LEN;
const MAGIC: u64 = u64::from_le_bytes(*b"MKIPCCAP");
const OFF_CAPACITY: usize = 8;
const OFF_QUEUED: usize = 12;
const OFF_SEQ: usize = 16;
const OFF_WAITERS: usize = 20;
const OFF_GONE: usize = 24;
const OFF_IN_SEND: usize = 28;

/// How long a sender waiting for room sleeps before it looks at the port's
/// liveness pipe again.
pub const SLICE: Duration = Duration::from_millis(50);

/// One port's capacity page, mapped in this process.
pub(crate) struct CapacityPage {
    page: SealedPage,
}

impl std::fmt::Debug for CapacityPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapacityPage")
            .field("capacity", &self.capacity())
            .field("queued", &self.queued().load(SeqCst))
            .finish()
    }
}

impl CapacityPage {
    /// A new page for a port of `capacity` messages, none queued.
    pub(crate) fn new(capacity: usize) -> Result<CapacityPage, Errno> {
        let capacity = u32::try_from(capacity).map_err(|_| libc::EINVAL)?;
        let page = SealedPage::create(c"mkipc-capacity", MAGIC, |p| {
            p.u32_at(OFF_CAPACITY).store(capacity, SeqCst);
        })?;
        Ok(CapacityPage { page })
    }

    /// The page another process passed: refused (`EPROTO`) unless it is a
    /// sealed memfd of [`PAGE_LEN`] bytes holding the magic.
    pub(crate) fn adopt(fd: OwnedFd) -> Result<CapacityPage, Errno> {
        let page = SealedPage::adopt(fd, MAGIC)?;
        Ok(CapacityPage { page })
    }

    /// A duplicate of the page's descriptor, to pass with a right.
    pub(crate) fn dup_fd(&self) -> Result<OwnedFd, Errno> {
        self.page.dup_fd()
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.page.u32_at(off)
    }

    fn queued(&self) -> &AtomicU32 {
        self.u32_at(OFF_QUEUED)
    }

    /// The port's capacity now (at least 1: a page another process wrote 0
    /// into still lets one message through, as `Bounded(1)`).
    pub(crate) fn capacity(&self) -> usize {
        self.u32_at(OFF_CAPACITY).load(SeqCst).max(1) as usize
    }

    /// Whether a send would find room now.
    pub(crate) fn has_room(&self) -> bool {
        (self.queued().load(SeqCst) as usize) < self.capacity()
    }

    /// Sets the capacity, with `queued` recounted as `in_queue` (what the
    /// queue holds now: this heals a place lost to a holder killed
    /// mid-send), and wakes every waiting sender.
    pub(crate) fn set_capacity(&self, capacity: usize, in_queue: usize) {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        let in_queue = u32::try_from(in_queue).unwrap_or(u32::MAX);
        self.u32_at(OFF_CAPACITY).store(capacity, SeqCst);
        // Only ever lowered, to what the queue holds: a place a killed holder
        // reserved comes back (a send under way this instant loses its
        // place, and the port may hold one message more, once).
        let _ = self
            .queued()
            .fetch_update(SeqCst, SeqCst, |q| (q > in_queue).then_some(in_queue));
        self.wake_all();
    }

    /// Reserves a place if there is room; whether it did.
    pub(crate) fn try_reserve(&self) -> bool {
        let cap = self.capacity() as u32;
        self.queued()
            .fetch_update(SeqCst, SeqCst, |q| (q < cap).then_some(q + 1))
            .is_ok()
    }

    /// Takes a place whether or not there is room (a kernel notification,
    /// which the capacity does not hold back).
    pub(crate) fn force_reserve(&self) {
        let _ = self
            .queued()
            .fetch_update(SeqCst, SeqCst, |q| Some(q.saturating_add(1)));
    }

    /// Gives a place back (a frame left the queue, or a reserved send
    /// failed) and wakes a waiting sender.
    pub(crate) fn release(&self) {
        let _ = self
            .queued()
            .fetch_update(SeqCst, SeqCst, |q| Some(q.saturating_sub(1)));
        if self.u32_at(OFF_WAITERS).load(SeqCst) > 0 {
            self.wake_all();
        }
    }

    /// Whether the mailbox was destroyed (see the module docs).
    pub(crate) fn gone(&self) -> bool {
        self.u32_at(OFF_GONE).load(SeqCst) != 0
    }

    /// Says the mailbox is destroyed; how many senders are inside
    /// `mq_send` on it now (see the module docs).
    pub(crate) fn set_gone(&self) -> u32 {
        self.u32_at(OFF_GONE).store(1, SeqCst);
        self.wake_all();
        self.in_send()
    }

    /// Senders inside a blocking `mq_send` on the mailbox now.
    pub(crate) fn in_send(&self) -> u32 {
        self.u32_at(OFF_IN_SEND).load(SeqCst)
    }

    /// Runs a blocking `send` counted in `in_send`, unless the mailbox is
    /// gone (`EIDRM`): see the module docs.
    pub(crate) fn counted_send(
        &self,
        send: impl FnOnce() -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let count = self.u32_at(OFF_IN_SEND);
        count.fetch_add(1, SeqCst);
        let sent = if self.gone() {
            Err(libc::EIDRM)
        } else {
            send()
        };
        count.fetch_sub(1, SeqCst);
        sent
    }

    /// Wakes every sender waiting for room (the capacity grew, or the port
    /// closed or died: they look again).
    pub(crate) fn wake_all(&self) {
        let seq = self.u32_at(OFF_SEQ);
        seq.fetch_add(1, SeqCst);
        sys_shm::futex_wake(seq);
    }

    /// Sleeps until room may have come or `until` passes. The caller looks
    /// again either way.
    pub(crate) fn wait_for_room(&self, until: Instant) -> Result<(), Errno> {
        let seq = self.u32_at(OFF_SEQ);
        let waiters = self.u32_at(OFF_WAITERS);
        let seen = seq.load(SeqCst);
        waiters.fetch_add(1, SeqCst);
        // Registered before this look, so a release after it sees the
        // waiter and bumps `seq` (the futex then does not sleep).
        let r = if self.has_room() {
            Ok(true)
        } else {
            sys_shm::futex_wait(seq, seen, Some(until))
        };
        waiters.fetch_sub(1, SeqCst);
        r.map(drop)
    }
}
