//! Running a scenario on real Linux processes (`mkipc run --backend os`).
//!
//! The `mkipc` process is the *coordinator*: it checks that the scenario
//! uses only what the os backend can give ([`check_os`]), creates the
//! system mailboxes and the ports, and starts every process that starts
//! with the run as a child playing the role [`ROLE`] (a re-execution of the
//! `mkipc` binary, which calls [`mkipc_os::child_main`] with [`OS_ROLES`]
//! first thing in `main`). Each child, and every process a script `spawn`s
//! (a grandchild started the same way by its spawner), goes through:
//!
//! 1. **setup**: one message on the direct link from its parent, carrying
//!    the scenario's source text, which process to play, the seed, the time
//!    scale and the pids of the processes started with the run, plus its
//!    port rights as descriptors (`SCM_RIGHTS`: receive rights moved, send
//!    rights copied). The child parses the text again and creates the
//!    mailboxes it owns;
//! 2. **ready** / **go**: it tells its parent it is ready and waits for the
//!    go, which carries the run's start on `CLOCK_MONOTONIC` (one clock for
//!    every process, so message latencies compare times taken in different
//!    processes). Every process of the run starts its script at once;
//! 3. **script**: the same interpreter as the simulator's, on
//!    [`OsProcess`]; `work` and `sleep` are real sleeps (times the time
//!    scale);
//! 4. **report**: it waits for the processes it spawned, then sends its
//!    parent one report with its counters and theirs (with their exit
//!    statuses).
//!
//! The coordinator polls its children's links for reports, samples the
//! length of every system mailbox about every millisecond, kills processes
//! when a `[[fault]]` with `at` says so, and kills everything still running
//! when `--timeout` passes (a deadlock cannot be told from a slow process).
//! Every child sets `PR_SET_PDEATHSIG` so that its own children die with it.
//! The run id of the os crate names every queue; when the coordinator's
//! `OsProcess` drops, the run is cleaned up, and the coordinator checks with
//! [`mkipc_os::leftovers`] that nothing remains.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mkipc_kernel::ipc::Owner;
use mkipc_kernel::runtime::{Destination, Source};
use mkipc_kernel::CallError;
use mkipc_kernel::{
    Capacity, CarriedRight, Disposition, Ipc, IpcError, MailboxConfig, Message, OnFull, Pid,
    PortName, ReceiveError, SendError, Sent, Wait,
};
use mkipc_os::{Child, OsProcess, Role, Spawn};
use mkipc_sim::machine::{
    receive_blocking, run_blocking, send_blocking, CallStart, Ctx, Op as MachineOp,
};
use mkipc_sim::trace::{EventKind, Target};
use mkipc_sim::{ExitStatus, ProcError, SimRng};

use super::record;

use super::backend::{BackendKind, RunError};
use super::interp::{ScriptMachine, Shared, ASSERT_FAILED, EXPECT_FAILED};
use super::report::{InvariantResult, MessageTotals, ProcessResult, QueueResult, RunResult};
use super::{FaultWhen, Op, QueueKind, Right, Scenario, Stmt};

/// The role a scenario process plays in a re-executed `mkipc`.
pub const ROLE: &str = "scenario-process";

/// The roles `main` hands to [`mkipc_os::child_main`].
pub const OS_ROLES: &[(&str, Role)] = &[(ROLE, role)];

const SETUP: u32 = 0x4D4B_5301;
const READY: u32 = 0x4D4B_5302;
const GO: u32 = 0x4D4B_5303;
const REPORT: u32 = 0x4D4B_5304;

/// How long a child may take to start (exec, parse, create its mailboxes).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a scenario on real processes.
#[derive(Clone, Debug)]
pub struct OsOptions {
    /// Seed of the drawn durations (default: the scenario's).
    pub seed: Option<u64>,
    /// Every `work` and `sleep` lasts this many times its duration (wall clock).
    pub time_scale: f64,
    /// Processes still running after this long are killed and the run fails.
    pub timeout: Duration,
}

impl Default for OsOptions {
    fn default() -> Self {
        OsOptions {
            seed: None,
            time_scale: 1.0,
            timeout: Duration::from_secs(60),
        }
    }
}

mod check;
mod child;
mod coordinator;
mod protocol;
mod trace_file;

pub use check::check_os;
use check::*;
use child::*;
use coordinator::*;
pub use coordinator::{run_os, run_os_traced};
use protocol::*;
