//! Bounded capacity: at most `n` messages wait in the queue (Mach's queue limit).
//!
//! A send completes at once while fewer than `n` messages are queued (a
//! message handed to a waiting receiver counts as queued until the receiver
//! takes it: [module docs](super)); when `n` are queued the sender's [`OnFull`](crate::OnFull) policy decides: wait,
//! fail, time out, or drop. When a receiver frees a slot the longest-waiting
//! sender's message moves into the queue and that sender is woken: wake-up
//! order is blocking order.
//!
//! As in Mach, a message sent with a send-once right (a reply) bypasses the
//! limit, so a server replying to a client can never deadlock on a full reply
//! port.
//!
//! The kernel's memory ceiling applies here too, as on an unbounded queue:
//! a capacity as large as `Bounded(usize::MAX)` is a count limit that never
//! bites, and must not let a producer run the process out of memory. A send
//! that has room by count but would cross the ceiling fails with
//! [`SendErrorKind::MemoryLimit`](crate::SendErrorKind::MemoryLimit).

use super::{unbounded, Admission, QueueLoad};

/// Admit while below the limit (or always for send-once messages) and
/// under the memory ceiling (which a hand-off does not fill).
pub(crate) fn admit(limit: usize, load: QueueLoad) -> Admission {
    if load.len < limit || load.send_once {
        unbounded::admit(load)
    } else {
        Admission::Full
    }
}

/// A receive takes the buffer's head while there is one: a parked sender's
/// message moves into the buffer (behind the head) when a slot frees, so
/// the head is older than any parked message. A parked sender is taken
/// straight only when the buffer is empty and no place is `held` by a
/// message handed to a waiting receiver: such a message is, to everyone
/// else, still in the queue ahead of the parked one, which waits for its
/// place as it would behind a queued message.
pub(crate) fn next_message<T>(
    queued: Option<(u64, T)>,
    parked: impl FnOnce() -> Option<(u64, T)>,
    held: bool,
) -> Option<(u64, T)> {
    match queued {
        Some(head) => Some(head),
        None if held => None,
        None => parked(),
    }
}
