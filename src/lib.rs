//! # mkipc
//!
//! The facade over mkipc's crates: [`kernel`] (Mach-like IPC in one process),
//! [`sim`] (deterministic simulation of processes) and [`os`] (the same API on
//! real Linux processes). Most users want [`kernel::Ipc`] and a backend.

pub use mkipc_kernel as kernel;
pub use mkipc_os as os;
pub use mkipc_sim as sim;

pub use mkipc_kernel::{Capacity, Ipc, Kernel, Message, OnFull, PortName, Task};
