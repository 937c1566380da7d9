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
//! never parks a thread; [`runtime`] is what a backend needs to run tasks on
//! it, and `DESIGN.md` says how the blocking layer and the simulator sit on it.
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
//! * [`introspect`] counts what the kernel holds ([`Kernel::stats`]) and
//!   says who waits on whom ([`Kernel::blocked_on`]).
//! * [`runtime`] ([`runtime::Blocker`]) is how a backend waits, and
//!   [`mod@task`] ([`Task`]) the thread-backed one; [`conformance`] is the
//!   suite every backend passes.
//!
//! ## The root
//!
//! The crate's root holds what code written against [`Ipc`] names: the
//! kernel and its tasks ([`Kernel`], [`KernelConfig`], [`Task`], [`Ipc`],
//! [`Pid`]), messages and rights ([`Message`], [`PortName`],
//! [`CarriedRight`], [`Disposition`], [`Notification`], [`NotifyKind`],
//! [`Filter`], [`MailboxConfig`]), capacities and outcomes ([`Capacity`],
//! [`OnFull`], [`Wait`], [`Sent`]) and the errors ([`SendError`],
//! [`SendErrorKind`], [`ReceiveError`], [`CallError`], [`IpcError`]).
//! Rarer vocabulary stays in its module ([`error::Limit`],
//! [`message::Body`], [`name::Access`], [`ipc::Owner`], ...); a backend's
//! machinery is in [`runtime`], statistics are in [`introspect`].

#[macro_use]
mod reuse;
mod arena;
mod blocking;
pub mod capacity;
pub mod conformance;
mod core;
pub mod error;
pub mod filter;
pub mod introspect;
pub mod ipc;
#[doc(hidden)]
pub mod lane;
pub mod message;
pub mod name;
pub mod name_rules;
pub mod runtime;
mod sync;
pub mod task;

// The root: what code written against `Ipc` names. Adding a name here is a
// decision (`tests/surface.rs` lists them); a backend's names go in
// `runtime`, statistics in `introspect`, the rarer vocabulary stays in its
// own module (`error::Limit`, `message::Body`, `name::Access`, `ipc::Owner`).
pub use crate::capacity::{Capacity, OnFull, Sent, Wait};
pub use crate::core::{Kernel, KernelConfig};
pub use crate::error::{
    CallError, IpcError, ReceiveError, SendError, SendErrorKind, SmallReceiveError,
};
pub use crate::filter::Filter;
pub use crate::ipc::{Ipc, MailboxConfig};
pub use crate::message::{
    CarriedRight, Disposition, Message, Notification, NotifyKind, SmallMessage,
};
pub use crate::name::{Pid, PortName};
pub use crate::task::Task;
