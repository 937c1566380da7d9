//! The runtime surface: what a *backend* needs to run tasks on the kernel.
//!
//! Code that only sends and receives never opens this module: it writes
//! against [`Ipc`](crate::Ipc) and gets a runner from a backend (the
//! thread-backed [`Task`](crate::Task), the simulator's processes, real OS
//! processes). This module is for whoever writes such a runner, or a tool
//! that drives the kernel directly (the simulator, the explorer, the model
//! tests), as crossbeam keeps its `select!` machinery out of its root.
//!
//! The kernel's core never waits. Every operation either completes or
//! registers a wait and returns [`Begin::Blocked`] with a [`WaitToken`]; the
//! wait's [`Waker`] is called (or its id listed) when it completes, and the
//! runner collects the result, a [`WaitOutcome`], with
//! [`Kernel::wait_take`](crate::Kernel::wait_take) or gives up with
//! [`Kernel::wait_cancel`](crate::Kernel::wait_cancel). A runner says how it
//! waits by implementing [`Blocker`] (four methods), and then gets the whole
//! [`Ipc`](crate::Ipc) API: threads and simulated processes share every line
//! of IPC behaviour.
//!
//! What lives here:
//!
//! * [`Blocker`]: how a runner waits; `impl<B: Blocker> Ipc for B`.
//! * [`Begin`], [`WaitToken`], [`WaitOutcome`]: starting an operation on the
//!   non-blocking core and collecting its result.
//! * [`Waker`] and [`Wake`]: how the kernel tells a runner a wait completed
//!   (a call after the lock is released, or an id in a list).
//! * [`Destination`] and [`Source`]: where a core send goes and where a core
//!   receive takes from, for the pid-taking operations on
//!   [`Kernel`](crate::Kernel) (`send_begin`, `receive_begin`, `peek`...).
//!   Those operations are methods of `Kernel`, beside the ones a user calls
//!   (`new`, `spawn_task`, `stats`); each takes the acting task's
//!   [`Pid`](crate::Pid) first, and [`Ipc`](crate::Ipc) calls them for its
//!   own task.
//! * [`KernelSnapshot`] and [`CanonicalOptions`]: a copy of the whole kernel
//!   state and its canonical encoding (the explorer restores and hashes
//!   states with them).
//! * [`KernelHold`]: the lock taken once by one thread for a whole run (the
//!   simulator's loop holds it, so its operations skip the mutex).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mkipc_kernel::runtime::{Blocker, WaitOutcome, WaitToken, Wake, Waker};
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message, Pid};
//!
//! /// A runner that waits by polling its wait, yielding the thread between polls.
//! struct Polling {
//!     kernel: Kernel,
//!     pid: Pid,
//! }
//!
//! /// Polling needs no wake-up: the waker does nothing.
//! struct Nothing;
//! impl Wake for Nothing {
//!     fn wake(&self) {}
//! }
//!
//! impl Blocker for Polling {
//!     fn kernel(&self) -> &Kernel {
//!         &self.kernel
//!     }
//!     fn task_pid(&self) -> Pid {
//!         self.pid
//!     }
//!     fn waker(&self) -> Waker {
//!         Waker::call(Nothing)
//!     }
//!     fn block(&self, token: WaitToken, timeout: Option<Duration>) -> WaitOutcome {
//!         let deadline = timeout.map(|t| Instant::now() + t);
//!         loop {
//!             if let Some(outcome) = self.kernel.wait_take(self.pid, token) {
//!                 return outcome;
//!             }
//!             if deadline.is_some_and(|d| Instant::now() >= d) {
//!                 return self.kernel.wait_cancel(self.pid, token);
//!             }
//!             std::thread::yield_now();
//!         }
//!     }
//! }
//!
//! impl Drop for Polling {
//!     fn drop(&mut self) {
//!         self.kernel.exit_task(self.pid);
//!     }
//! }
//!
//! // Every `Blocker` is an `Ipc`: the producer blocks (by polling) on the
//! // full bounded(1) port until the consumer takes a message.
//! let kernel = Kernel::new();
//! let consumer = Polling { kernel: kernel.clone(), pid: kernel.create_task() };
//! let producer = Polling { kernel: kernel.clone(), pid: kernel.create_task() };
//! let port = consumer.port_allocate(Capacity::Bounded(1)).unwrap();
//! consumer.register("consumer", port).unwrap();
//! let to_consumer = producer.look_up("consumer").unwrap();
//! let t = std::thread::spawn(move || {
//!     for i in 0..3 {
//!         producer.send(to_consumer, Message::from_u64(1, i)).unwrap();
//!     }
//! });
//! let got: Vec<u64> = (0..3).map(|_| consumer.receive(port).unwrap().as_u64().unwrap()).collect();
//! assert_eq!(got, [0, 1, 2]);
//! t.join().unwrap();
//! ```

pub use crate::blocking::Blocker;
pub use crate::core::{
    Begin, CanonicalOptions, Destination, FastReceive, KernelHold, KernelSnapshot, Source,
    WaitOutcome, WaitToken, Wake, Waker,
};
