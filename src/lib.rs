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
//! helpers [`svg`] and [`sampler`].

pub use mkipc_kernel as kernel;
pub use mkipc_os as os;
pub use mkipc_sim as sim;

pub use mkipc_kernel::{Capacity, Ipc, Kernel, Message, OnFull, PortName, Task};

pub mod bench;
pub mod bench_explore;
pub mod bundled;
pub mod cli;
pub mod demo;
pub mod explore;
pub mod sampler;
pub mod scenario;
pub mod svg;
