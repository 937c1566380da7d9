//! Unbounded capacity: a sender never waits.
//!
//! Every message is queued at once. So that a runaway producer becomes an error
//! rather than an out-of-memory crash, each queue has a memory ceiling
//! ([`KernelConfig::queue_memory_limit`](crate::KernelConfig)): a send that would
//! take the memory the queue's messages cost (each message's entry, body and
//! rights, not its body alone) past it fails with
//! [`SendErrorKind::MemoryLimit`](crate::SendErrorKind::MemoryLimit), message returned.

use super::{Admission, QueueLoad};

/// Admit unless the memory ceiling would be crossed (a hand-off buffers
/// nothing).
pub(crate) fn admit(load: QueueLoad) -> Admission {
    if load.handoff {
        Admission::Enqueue
    } else if load.bytes.saturating_add(load.incoming_bytes) > load.memory_limit {
        Admission::OverMemoryLimit
    } else {
        Admission::Enqueue
    }
}

/// A receive takes the buffer's head, as on a bounded queue (a sender
/// parks here only if the queue was bounded when it sent, and moves into
/// the buffer when the capacity grows).
pub(crate) fn next_message<T>(
    queued: Option<(u64, T)>,
    parked: impl FnOnce() -> Option<(u64, T)>,
    held: bool,
) -> Option<(u64, T)> {
    super::bounded::next_message(queued, parked, held)
}
