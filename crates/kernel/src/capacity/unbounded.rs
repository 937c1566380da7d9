//! Unbounded capacity: a sender never waits.
//!
//! Every message is queued at once. So that a runaway producer becomes an error
//! rather than an out-of-memory crash, each queue has a memory ceiling
//! ([`KernelConfig::queue_memory_limit`](crate::KernelConfig)): a send that would
//! take the memory the queue's messages cost (each message's entry, body and
//! rights, not its body alone) past it fails with
//! [`SendErrorKind::MemoryLimit`](crate::SendErrorKind::MemoryLimit), message returned.

use super::{Admission, QueueLoad};

/// Admit unless the memory ceiling would be crossed.
pub(crate) fn admit(load: QueueLoad) -> Admission {
    if load.bytes.saturating_add(load.incoming_bytes) > load.memory_limit {
        Admission::OverMemoryLimit
    } else {
        Admission::Enqueue
    }
}
