//! Bounded capacity: at most `n` messages wait in the queue (Mach's queue limit).
//!
//! A send completes at once while fewer than `n` messages are queued; when `n`
//! are queued the sender's [`OnFull`](crate::OnFull) policy decides: wait,
//! fail, time out, or drop. When a receiver frees a slot the longest-waiting
//! sender's message moves into the queue and that sender is woken: wake-up
//! order is blocking order.
//!
//! As in Mach, a message sent with a send-once right (a reply) bypasses the
//! limit, so a server replying to a client can never deadlock on a full reply
//! port.

use super::{Admission, QueueLoad};

/// Admit while below the limit, or always for send-once messages.
pub(crate) fn admit(limit: usize, load: QueueLoad) -> Admission {
    if load.len < limit || load.send_once {
        Admission::Enqueue
    } else {
        Admission::Full
    }
}
