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

/// Zero never admits a user message into its buffer.
pub(crate) fn admit(_load: QueueLoad) -> Admission {
    Admission::Full
}
