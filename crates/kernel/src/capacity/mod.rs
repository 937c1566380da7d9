//! Capacity models: how many messages a queue holds before a sender must wait.
//!
//! | model | a send completes when | a receive completes when |
//! |---|---|---|
//! | [`Capacity::Zero`] | a receiver takes the message (rendezvous) | a sender offers one |
//! | [`Capacity::Bounded`]`(n)` | fewer than `n` messages are queued | a message is queued |
//! | [`Capacity::Unbounded`] | always (up to the kernel's memory ceiling) | a message is queued |
//!
//! One file per model holds its admission rule: [`zero`], [`bounded`], [`unbounded`].
//!
//! **A handed message keeps its place.** A message handed to a receiver that
//! was waiting counts against the capacity until that receiver takes it (its
//! process runs again), as data written to a pipe fills the pipe until it is
//! read, and as a message stays in a Promela channel until its receive
//! executes: on a bounded(1) queue whose receiver was just handed a message,
//! a second send finds the queue full. So whether a receiver was already
//! waiting when a message came, or asked for it only after, makes no
//! difference to anyone else: what the stateful checker's reduction relies
//! on (DESIGN.md, "A handed message keeps its place"). A hand-off is
//! therefore admitted as a queued message is, except on a rendezvous queue,
//! where handing over is the only way in. With several receivers waiting,
//! whoever takes first takes the oldest plain message handed over (the
//! group hand-off, DESIGN.md), so the order receivers take in decides who
//! gets which, as if each had asked only when it took.
//! The queue itself (FIFO of messages, lists of blocked senders and receivers)
//! is the same for every model; only the question "may this message enter now?"
//! differs, which is what makes a capacity experiment a one-word change.
//!
//! ```
//! use mkipc_kernel::Capacity;
//! assert!(Capacity::Bounded(2).validate().is_ok());
//! assert!(Capacity::Bounded(0).validate().is_err()); // say Zero for a rendezvous
//! ```

pub mod bounded;
pub mod unbounded;
pub mod zero;

use std::fmt;
use std::time::Duration;

use crate::error::IpcError;

/// How many messages a port, mailbox or direct link can hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Capacity {
    /// No buffer: sender and receiver meet (rendezvous).
    Zero,
    /// At most `n` (n >= 1) queued messages; Mach's queue limit.
    Bounded(usize),
    /// No count limit; a per-queue memory ceiling turns runaway growth into an error.
    Unbounded,
}

impl Capacity {
    /// Rejects `Bounded(0)` (ambiguous: use `Zero` for a rendezvous).
    pub fn validate(self) -> Result<Capacity, IpcError> {
        match self {
            Capacity::Bounded(0) => Err(IpcError::InvalidValue),
            other => Ok(other),
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capacity::Zero => f.write_str("zero"),
            Capacity::Bounded(n) => write!(f, "bounded({n})"),
            Capacity::Unbounded => f.write_str("unbounded"),
        }
    }
}

/// What a send does when the destination cannot take the message now.
///
/// `send`, `try_send` and `send_timeout` are [`OnFull::Block`], [`OnFull::Fail`]
/// and [`OnFull::Timeout`]; the two drop policies let loss be studied against
/// blocking (a full bounded queue under `DropOldest` behaves like a ring buffer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OnFull {
    /// Wait until the message can be taken.
    Block,
    /// Fail at once with [`SendErrorKind::Full`](crate::SendErrorKind::Full), message returned.
    Fail,
    /// Wait at most this long, then fail with [`SendErrorKind::TimedOut`](crate::SendErrorKind::TimedOut).
    Timeout(Duration),
    /// Discard the new message (its rights are destroyed); the send reports [`Sent::Dropped`].
    DropNewest,
    /// Discard the oldest queued message to make room; the send reports [`Sent::Displaced`].
    /// On a zero-capacity queue nothing is buffered, so the new message is dropped.
    /// Messages sent through send-once rights (replies, kernel notifications)
    /// bypass the limit and are never displaced; when only such messages are
    /// queued, the new message is dropped ([`Sent::Dropped`]).
    DropOldest,
}

/// How long a receive (or the receive half of a call) may wait.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Wait {
    /// Do not wait: fail with `Empty` if nothing is there.
    NoWait,
    /// Wait as long as it takes.
    Forever,
    /// Wait at most this long, then fail with `TimedOut`.
    For(Duration),
}

/// How a successful send ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Sent {
    /// The message is queued or was handed to a receiver.
    Delivered,
    /// The queue was full and [`OnFull::DropNewest`] (or `DropOldest` on a zero queue)
    /// discarded this message.
    Dropped,
    /// The queue was full and [`OnFull::DropOldest`] discarded the oldest message to
    /// make room for this one.
    Displaced,
}

/// The admission decision a capacity model makes for one message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Admission {
    /// Put it in the queue now.
    Enqueue,
    /// The queue is full: apply the sender's [`OnFull`] policy.
    Full,
    /// Unbounded queue over its memory ceiling: an error, never a wait.
    OverMemoryLimit,
}

/// Facts about one queue the admission rules look at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueLoad {
    /// Messages queued now, and those handed to waiting receivers that have
    /// not taken them yet (they keep their places: module docs).
    pub len: usize,
    /// Memory the queued messages cost now (entries, bodies, rights).
    pub bytes: usize,
    /// Memory the new message would add.
    pub incoming_bytes: usize,
    /// The kernel's per-queue memory ceiling (unbounded and bounded queues).
    pub memory_limit: usize,
    /// The message is sent with a send-once right (Mach lets these bypass the queue limit).
    pub send_once: bool,
    /// The message is a kernel notification (never blocks, never dropped).
    pub kernel: bool,
    /// The message would be handed to a waiting receiver, not buffered.
    pub handoff: bool,
}

impl Capacity {
    /// May a message enter the queue now, into its buffer or (`handoff`)
    /// into the hands of a waiting receiver?
    #[inline]
    pub(crate) fn admit(self, load: QueueLoad) -> Admission {
        if load.kernel {
            return Admission::Enqueue;
        }
        match self {
            Capacity::Zero => zero::admit(load),
            Capacity::Bounded(n) => bounded::admit(n, load),
            Capacity::Unbounded => unbounded::admit(load),
        }
    }

    /// Which message a receive takes next from a queue of this capacity:
    /// the head of its buffer (`queued`) or the message of its
    /// longest-parked sender (`parked`, asked only when needed). Each is
    /// the message's global stamp (its age) and where it is. `held`: some
    /// place is held by a message handed over and not yet taken.
    #[inline]
    pub(crate) fn next_message<T>(
        self,
        queued: Option<(u64, T)>,
        parked: impl FnOnce() -> Option<(u64, T)>,
        held: bool,
    ) -> Option<(u64, T)> {
        match self {
            Capacity::Zero => zero::next_message(queued, parked),
            Capacity::Bounded(_) => bounded::next_message(queued, parked, held),
            Capacity::Unbounded => unbounded::next_message(queued, parked, held),
        }
    }

    /// Whether [`OnFull::DropOldest`] may displace a buffered message to
    /// make room on a full queue of this capacity; when it may not, the new
    /// message is dropped instead ([`Sent::Dropped`]).
    #[inline]
    pub(crate) fn displaces(self) -> bool {
        match self {
            Capacity::Zero => zero::DISPLACES,
            Capacity::Bounded(_) | Capacity::Unbounded => true,
        }
    }
}
