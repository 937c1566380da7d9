//! # mkipc
//!
//! The facade over mkipc's crates: [`kernel`] (Mach-like IPC in one process),
//! [`sim`] (deterministic simulation of processes) and [`os`] (the same API on
//! real Linux processes). Most users want [`kernel::Ipc`] and a backend.
//!
//! The `mkipc` command is built from the modules below, which tests and
//! other programs can call in-process: [`demo`] (the capacity-model
//! experiment), [`scenario`] (TOML scenario files: parse, check, run),
//! [`explore`] (many schedules of one scenario), [`bundled`] (the
//! example scenarios carried in the binary), [`bench`](mod@bench),
//! [`bench_explore`] (the exhaustive search against SPIN), and the output
//! helpers [`svg`] and [`sampler`]; [`sweep`] runs a scenario under several
//! capacities (`mkipc run --sweep`), [`compare`] on two backends
//! (`mkipc run --compare`).
//!
//! ## Where to start
//!
//! * Writing a program: [`kernel::Kernel`] and [`kernel::Task`] for threads
//!   in one process, [`sim::Sim`] for a deterministic simulation,
//!   [`os::OsProcess`] for real processes. Each crate's front page has a
//!   runnable example and its own "Where to start".
//! * Using the command: `mkipc --help`, `mkipc scenarios` (the bundled
//!   examples), `mkipc demo`, then `mkipc run NAME`; the scenario language is
//!   described in [`scenario`].
//!
//! ```
//! use mkipc::{Capacity, Ipc, Kernel, Message};
//!
//! let kernel = Kernel::new();
//! let task = kernel.spawn_task();
//! let port = task.port_allocate(Capacity::Bounded(1)).unwrap();
//! let to_port = task.make_send(port).unwrap();
//! task.send(to_port, Message::from_u64(1, 42)).unwrap();
//! assert_eq!(task.receive(port).unwrap().as_u64(), Some(42));
//! ```

pub use mkipc_kernel as kernel;
pub use mkipc_os as os;
pub use mkipc_sim as sim;

pub use mkipc_kernel::{Capacity, Ipc, Kernel, Message, OnFull, PortName, Task};

pub mod bench;
pub mod bench_explore;
pub mod bundled;
pub mod cli;
pub mod compare;
pub mod demo;
pub mod explore;
pub mod sampler;
pub mod scenario;
pub mod svg;
pub mod sweep;
