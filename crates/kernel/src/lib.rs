//! # mkipc-kernel: Mach-like IPC in one process
//!
//! Tasks talk by sending [`Message`]s to *ports*. A port is a queue with one
//! receiver; to send to it you need a *send right*, and rights live in each
//! task's own name space, so a [`PortName`] means nothing outside its task and
//! cannot be forged. Rights travel inside messages (moved or copied), which is
//! how a capability is handed from one task to another.
//!
//! * Ports, port sets, rights and notifications follow Mach.
//! * Every queue has a [`Capacity`]: [`Capacity::Zero`] (rendezvous),
//!   [`Capacity::Bounded`] or [`Capacity::Unbounded`], changeable at run time.
//! * Every send and receive exists as blocking, non-blocking (`try_`) and
//!   timed (`_timeout`), and a full queue can block, fail, time out or drop
//!   ([`OnFull`]).
//! * Indirect addressing goes through ports and named [`mailboxes`](Ipc::mailbox_create)
//!   with owners and access lists; direct addressing ([`Ipc::send_to`],
//!   [`Ipc::receive_from`], [`Ipc::receive_from_any`]) names the process.
//! * [`Ipc::call`] is an RPC with a send-once reply right.
//! * Beyond Mach: [`Ipc::peek`], selective receive ([`Ipc::receive_matching`]
//!   with a [`Filter`]), priority select ([`Ipc::select_first`]),
//!   close-but-drain ([`Ipc::close`]) and send-possible notifications
//!   ([`Ipc::request_send_possible`]).
//!
//! User code is written against the [`Ipc`] trait, which the thread-backed
//! [`Task`], the simulator's processes (`mkipc-sim`) and real OS processes
//! (`mkipc-os`) all implement; [`conformance`] is the test suite that defines it.
//!
//! ```
//! use std::thread;
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
//!
//! let kernel = Kernel::new();
//! let producer = kernel.spawn_task();
//! let consumer = kernel.spawn_task();
//!
//! // The consumer owns a bounded port and publishes a send right to it.
//! let inbox = consumer.port_allocate(Capacity::Bounded(2)).unwrap();
//! consumer.register("consumer", inbox).unwrap();
//! let to_consumer = producer.look_up("consumer").unwrap();
//!
//! let t = thread::spawn(move || {
//!     for i in 0..5 {
//!         producer.send(to_consumer, Message::from_u64(1, i)).unwrap(); // blocks while 2 are queued
//!     }
//! });
//! let got: Vec<u64> = (0..5).map(|_| consumer.receive(inbox).unwrap().as_u64().unwrap()).collect();
//! assert_eq!(got, [0, 1, 2, 3, 4]);
//! t.join().unwrap();
//! ```
//!
//! The non-blocking core ([`Kernel::send_begin`], [`Kernel::receive_begin`])
//! never parks a thread; see `DESIGN.md` for how the blocking layer and the
//! simulator sit on it.
//!
//! ## Where to start
//!
//! * [`Kernel`] makes an IPC world; [`Kernel::spawn_task`] gives a [`Task`],
//!   one thread's handle, which implements [`Ipc`].
//! * [`Ipc`] ([`mod@ipc`]) is the whole API: ports, rights, mailboxes,
//!   direct links, calls, notifications. Each method says what it does on
//!   every capacity.
//! * [`Message`] ([`mod@message`]) and [`PortName`] ([`mod@name`]) are the
//!   vocabulary; [`mod@error`] the errors, which give a failed send's message
//!   back ([`SendError::into_message`]).
//! * [`capacity`] has one file per capacity model and the rules of each.
//! * [`mod@task`] ([`Task`]) and [`mod@blocking`] ([`Blocker`]) are how a
//!   backend waits; [`conformance`] is the suite every backend passes.

#[macro_use]
mod reuse;
mod arena;
pub mod blocking;
pub mod capacity;
pub mod conformance;
mod core;
pub mod error;
pub mod filter;
pub mod ipc;
#[doc(hidden)]
pub mod lane;
pub mod message;
pub mod name;
pub mod name_rules;
mod sync;
pub mod task;

pub use crate::blocking::Blocker;
pub use crate::capacity::{Capacity, OnFull, Sent, Wait};
pub use crate::core::queue_cost;
pub use crate::core::{
    Begin, BlockedOn, CanonicalOptions, Destination, Kernel, KernelConfig, KernelHold,
    KernelSnapshot, KernelStats, QueueStats, Source, TaskRights, WaitOutcome, WaitToken, Wake,
    Waker,
};
pub use crate::error::{
    CallError, IpcError, Limit, MalformedFrame, ReceiveError, SendError, SendErrorKind, Unsupported,
};
pub use crate::filter::Filter;
pub use crate::ipc::{notification_of, Ipc, MailboxConfig, Owner, PortStatus};
pub use crate::message::{
    Body, CarriedRight, Disposition, Message, Notification, NotifyKind, Trailer, INLINE_BODY,
};
pub use crate::name::{Access, Pid, PortName, RightKind, RightSet};
pub use crate::task::Task;
