//! Zero capacity: the textbook rendezvous.
//!
//! Nothing is ever buffered for a user send. A send completes only by handing
//! the message to a receiver that is already waiting; otherwise the sender
//! waits (with its message parked in the kernel) until a receiver arrives and
//! takes it. A receiver that finds no parked sender waits for one. Both sides
//! therefore leave the operation together: that is the synchronisation a
//! zero-capacity channel buys.
//!
//! Unlike Mach's queue limit 0 (which still lets send-once messages through),
//! every user send waits here, send-once included. Only kernel notifications
//! are queued, because the kernel never blocks.

use super::{Admission, QueueLoad};

/// Zero never admits a user message into its buffer; handing one to a
/// waiting receiver is how a rendezvous completes.
pub(crate) fn admit(load: QueueLoad) -> Admission {
    if load.handoff {
        Admission::Enqueue
    } else {
        Admission::Full
    }
}

/// [`OnFull::DropOldest`](crate::OnFull::DropOldest) has nothing to
/// displace: no user message is buffered, so the new one is dropped.
pub(crate) const DISPLACES: bool = false;

/// A receive takes the oldest of the buffer's head and the first parked
/// sender's message. On a rendezvous queue the parked senders *are* the
/// queue; the only messages buffered are kernel notifications, which must
/// not overtake a sender that parked before they arrived.
pub(crate) fn next_message<T>(
    queued: Option<(u64, T)>,
    parked: impl FnOnce() -> Option<(u64, T)>,
) -> Option<(u64, T)> {
    match queued {
        Some(head) => match parked() {
            Some(p) if p.0 < head.0 => Some(p),
            _ => Some(head),
        },
        None => parked(),
    }
}
