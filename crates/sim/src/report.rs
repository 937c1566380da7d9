//! What a run reports: per-process and per-queue statistics, the schedule,
//! the trace, and — when it failed — why, with the line that replays it.
//!
//! Queue statistics cover the ports and mailboxes the run was set up with
//! ([`Sim::port`](crate::Sim::port), [`Sim::mailbox`](crate::Sim::mailbox)),
//! mailboxes processes create, and receive rights processes label
//! ([`Proc::label`](crate::Proc::label)): messages accepted, messages dropped
//! by a drop policy, the largest queue length, and the mean queue length
//! weighted by virtual time. A queue is followed through its holder; once the
//! holder moves the receive right away in a message, its figures freeze.
//!
//! This module is the report's data; how a report prints (its `Display`,
//! [`Report::summary`], [`Report::full_table`]) is module
//! [`summary`](crate::summary)'s, which reads it.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{ms, Inherit, Sim};
//!
//! let mut sim = Sim::builder().seed(1).build();
//! let jobs = sim.port("jobs", Capacity::Bounded(1)).unwrap();
//! sim.spawn_with("tx", &[Inherit::send(jobs)], |p| {
//!     p.send(p.right(0), Message::from_u64(1, 7))?;
//!     Ok(())
//! }).unwrap();
//! sim.spawn_with("rx", &[Inherit::receive(jobs)], |p| {
//!     p.work(ms(2));
//!     p.receive(p.right(0))?;
//!     Ok(())
//! }).unwrap();
//! let report = sim.run().unwrap();
//! assert_eq!(report.port("jobs").unwrap().messages, 1);
//! assert_eq!(report.end_time, ms(2));
//! assert!(report.procs.iter().all(|p| p.status.is_success()));
//! ```

use std::fmt;
use std::time::Duration;

use mkipc_kernel::introspect::KernelStats;
use mkipc_kernel::Capacity;

use crate::deadlock::Deadlock;
use crate::process::ExitStatus;
use crate::schedule::{Schedule, ScheduleParseError, REPLAY_ENV};
pub use crate::stats::ProcStats;
use crate::trace::Trace;
use crate::ProcId;

/// One process in the report.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProcReport {
    /// Its id in the run.
    pub id: ProcId,
    /// Its name.
    pub name: String,
    /// Its kernel pid.
    pub pid: u32,
    /// How it ended.
    pub status: ExitStatus,
    /// Its counters.
    pub stats: ProcStats,
}

/// One watched port or mailbox in the report.
#[derive(Clone, PartialEq, Debug)]
pub struct PortReport {
    /// The label given at creation.
    pub label: String,
    /// Whether it is a mailbox (else a port).
    pub mailbox: bool,
    /// Its capacity when last seen.
    pub capacity: Option<Capacity>,
    /// Messages accepted.
    pub messages: u64,
    /// Messages discarded by drop policies.
    pub drops: u64,
    /// Largest queue length seen.
    pub max_occupancy: usize,
    /// Mean queue length over virtual time (`None` if no virtual time passed).
    pub mean_occupancy: Option<f64>,
}

/// Everything a run produced.
#[derive(Clone, PartialEq, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The scheduling policy's name.
    pub scheduler: &'static str,
    /// Scheduling steps taken.
    pub steps: u64,
    /// Virtual time at the end.
    pub end_time: Duration,
    /// Processes, by id.
    pub procs: Vec<ProcReport>,
    /// Watched ports and mailboxes, in creation order.
    pub ports: Vec<PortReport>,
    /// The choices made: replays this run.
    pub schedule: Schedule,
    /// A replay left its recorded schedule.
    pub replay_diverged: bool,
    /// Kernel counts after every process ended and the simulator released its
    /// own rights: all zero unless something leaked.
    pub kernel_at_end: KernelStats,
    /// The events (empty when tracing was off; cut in the middle past
    /// [`SimBuilder::trace_limit`](crate::SimBuilder::trace_limit) events,
    /// see [`Report::events_dropped`]).
    pub trace: Trace,
}

impl Report {
    /// The report line of a process by name.
    pub fn proc(&self, name: &str) -> Option<&ProcReport> {
        self.procs.iter().find(|p| p.name == name)
    }
    /// The report line of a watched port or mailbox by label.
    pub fn port(&self, label: &str) -> Option<&PortReport> {
        self.ports.iter().find(|p| p.label == label)
    }
    /// Whether the kernel held nothing at the end (no task, port, message...).
    pub fn kernel_is_clean(&self) -> bool {
        self.kernel_at_end == KernelStats::default()
    }
    /// How many events the trace left out: 0 unless the run recorded more
    /// than [`SimBuilder::trace_limit`](crate::SimBuilder::trace_limit)
    /// events ([`Trace::gap`] says where). The schedule is always whole.
    pub fn events_dropped(&self) -> u64 {
        self.trace.events_dropped()
    }
}

/// Why a run failed.
#[derive(Clone, PartialEq, Debug)]
pub enum FailureReason {
    /// No process could run, and some were blocked.
    Deadlock(Deadlock),
    /// An invariant checked after a step did not hold.
    Invariant {
        /// The invariant's name.
        name: String,
        /// What it said.
        message: String,
        /// The step after which it failed.
        step: u64,
    },
    /// A check at the end of the run did not hold.
    FinalCheck {
        /// The check's name.
        name: String,
        /// What it said.
        message: String,
    },
    /// A process panicked.
    Panicked {
        /// Which.
        proc: String,
        /// The panic message.
        message: String,
    },
    /// A process ended with an error ([`ExitStatus::Failed`]: a send to a
    /// dead destination, a failed receive, any `Err` it returned) that the
    /// model did not declare expected with
    /// [`Sim::expect_error`](crate::Sim::expect_error). The first such
    /// process by id is named.
    ProcessFailed {
        /// Which.
        proc: String,
        /// Its error, as text.
        error: String,
    },
    /// A process overflowed its stack (the canary was overwritten).
    StackOverflow {
        /// Which.
        proc: String,
    },
    /// The run took more steps than allowed (a livelock, or a long model).
    StepLimit(u64),
    /// [`Explorer::run`](crate::Explorer::run) found `MKIPC_SIM_REPLAY` set
    /// to something that is not a schedule, and ran nothing: exploring as
    /// if it were unset would hide the mistake behind a clean outcome. (A
    /// blank value counts as unset, as for
    /// [`SimBuilder::replay_from_env`](crate::SimBuilder::replay_from_env),
    /// which returns the same error.) The failure's report is empty.
    BadReplay {
        /// The variable's value (lossily decoded if it was not UTF-8).
        value: String,
        /// Why it is not a schedule.
        error: ScheduleParseError,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Deadlock(d) => write!(f, "{d}"),
            FailureReason::Invariant {
                name,
                message,
                step,
            } => {
                write!(f, "invariant `{name}` failed after step {step}: {message}")
            }
            FailureReason::FinalCheck { name, message } => {
                write!(f, "final check `{name}` failed: {message}")
            }
            FailureReason::Panicked { proc, message } => {
                write!(f, "process {proc} panicked: {message}")
            }
            FailureReason::ProcessFailed { proc, error } => write!(
                f,
                "process {proc} ended with an error: {error} \
                 (declare it expected if it is the point: Sim::expect_error, \
                 `expect_error = true` in a scenario)"
            ),
            FailureReason::StackOverflow { proc } => {
                write!(
                    f,
                    "process {proc} overflowed its stack (raise SimBuilder::stack_size)"
                )
            }
            FailureReason::StepLimit(n) => write!(f, "step limit of {n} reached"),
            FailureReason::BadReplay { value, error } => write!(
                f,
                "{REPLAY_ENV}='{value}' is not a schedule ({error}); nothing was run: \
                 give a line a failure printed (like `seed=42;choices=0,1*3,0`) or unset it"
            ),
        }
    }
}

/// A failed run: the reason, the full report, and how to replay it.
///
/// `Display` and `Debug` are a few lines: what failed (the cycle, the
/// assertion, the panic) and the replay line, so `sim.run().unwrap()`
/// panics with a readable message however long the run was. The whole run
/// is in [`Failure::report`]; `{:#?}` prints all of it.
#[derive(Clone, PartialEq)]
pub struct Failure {
    /// What went wrong.
    pub reason: FailureReason,
    /// Everything the run produced up to the failure.
    pub report: Box<Report>,
}

impl Failure {
    /// The line to give in `MKIPC_SIM_REPLAY` (or to `SimBuilder::replay`).
    pub fn replay_line(&self) -> String {
        self.report.schedule.to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let FailureReason::BadReplay { .. } = self.reason {
            // No run happened, so there is no schedule to replay.
            return write!(f, "simulation not run: {}", self.reason);
        }
        writeln!(f, "simulation failed: {}", self.reason)?;
        let line = self.replay_line();
        if line.len() <= REPLAY_LINE_SHOWN {
            return write!(
                f,
                "replay with: {REPLAY_ENV}='{line}' (read by Explorer and SimBuilder::replay_from_env), \
                 or Sim::builder().replay_str(\"{line}\")"
            );
        }
        // A long run's schedule is too long to read: the seed replays it with
        // the same scheduler, and the schedule itself is one call away.
        write!(
            f,
            "replay with: the same model and scheduler with seed {}, or the schedule \
             (Failure::replay_line(), {} characters) in {REPLAY_ENV}",
            self.report.schedule.seed,
            line.len()
        )
    }
}

/// The longest replay line a failure's `Display` prints in full.
const REPLAY_LINE_SHOWN: usize = 400;

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("Failure")
                .field("reason", &self.reason)
                .field("report", &self.report)
                .finish();
        }
        write!(
            f,
            "{self}\n(the whole run, {} steps and {} trace events, is in Failure::report)",
            self.report.steps,
            self.report.trace.events.len()
        )
    }
}

impl std::error::Error for Failure {}
