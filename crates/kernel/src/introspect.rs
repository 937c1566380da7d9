//! Introspection: what the kernel holds, what it costs, and who waits on whom.
//!
//! Nothing here changes the kernel. Tests use it to assert that nothing
//! leaked ([`Kernel::stats`](crate::Kernel::stats),
//! [`Kernel::task_rights`](crate::Kernel::task_rights)); reports use it to
//! show queues ([`Kernel::queue_stats`](crate::Kernel::queue_stats)) and to
//! explain a deadlock ([`Kernel::blocked_on`](crate::Kernel::blocked_on):
//! what each blocked task waits for, and who could end the wait);
//! [`queue_cost`] says what a queued message costs against
//! [`KernelConfig::queue_memory_limit`](crate::KernelConfig::queue_memory_limit),
//! to size that limit.
//!
//! ```
//! use mkipc_kernel::introspect::{KernelStats, TaskRights};
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
//!
//! let kernel = Kernel::new();
//! let task = kernel.spawn_task();
//! let port = task.port_allocate(Capacity::Unbounded).unwrap();
//! let to_port = task.make_send(port).unwrap();
//! task.send(to_port, Message::from_u64(1, 7)).unwrap();
//!
//! let stats: KernelStats = kernel.stats();
//! assert_eq!((stats.tasks, stats.ports, stats.messages), (1, 1, 1));
//! let rights: TaskRights = kernel.task_rights(task.pid()).unwrap();
//! assert_eq!((rights.receive, rights.send), (1, 1));
//! assert_eq!(kernel.queue_stats()[0].len, 1);
//!
//! drop(task); // exit: the receive right, the send right and the queued message go
//! assert_eq!(kernel.stats(), KernelStats::default());
//! ```

pub use crate::core::queue_cost;
pub use crate::core::{BlockedOn, KernelStats, QueueStats, TaskRights};
