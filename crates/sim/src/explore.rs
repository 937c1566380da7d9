//! Exploration: one model, many schedules, invariants checked all along.
//!
//! An [`Explorer`] runs a *setup* function (which spawns the model's
//! processes, plans faults and adds invariants on a fresh [`Sim`]) once per
//! schedule:
//! * [`Explorer::seeds`]: one run per seed with a randomized scheduler
//!   (random or PCT), as shuttle's `check_random` does;
//! * [`Explorer::exhaustive`]: every schedule up to a bound on the number of
//!   choice points branched on (stateless depth-first model checking), for
//!   small models.
//!
//! Every run checks the invariants after each step, fails on deadlock, panic
//! and the step limit, and (unless turned off) checks that the kernel holds
//! nothing at the end — no leaked right, port or message. The first failure
//! stops the exploration; its [`Failure`] prints the seed and schedule that
//! replay it. Setting `MKIPC_SIM_REPLAY` makes the explorer run only that
//! schedule, so a failure found in CI is debugged with the same test; a value
//! that is not a schedule runs nothing and fails with
//! [`FailureReason::BadReplay`].
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{Explorer, Inherit};
//!
//! // The classic deadlock: each process sends first on a rendezvous port.
//! let outcome = Explorer::new().seeds(0..20).run(|sim| {
//!     let p = sim.port("p", Capacity::Zero).unwrap();
//!     let q = sim.port("q", Capacity::Zero).unwrap();
//!     sim.spawn_with("a", &[Inherit::receive(p), Inherit::send(q)], |me| {
//!         me.send(me.right(1), Message::new(1, b"hi"))?;
//!         me.receive(me.right(0))?;
//!         Ok(())
//!     }).unwrap();
//!     sim.spawn_with("b", &[Inherit::receive(q), Inherit::send(p)], |me| {
//!         me.send(me.right(1), Message::new(2, b"hi"))?;
//!         me.receive(me.right(0))?;
//!         Ok(())
//!     }).unwrap();
//! });
//! let failure = outcome.failure.expect("found");
//! assert!(failure.to_string().contains("deadlock"));
//! ```

use std::ops::Range;

use crate::builder::SimBuilder;
use std::time::Duration;

use mkipc_kernel::KernelStats;

use crate::report::{Failure, FailureReason, Report};
use crate::schedule::{Schedule, ScheduleParseError, REPLAY_ENV};
use crate::scheduler::{DfsTrail, SchedulerKind};
use crate::sim::Sim;
use crate::trace::Trace;

#[derive(Clone, Debug)]
enum Mode {
    Seeds(Range<u64>),
    Exhaustive { max_depth: usize, max_runs: u64 },
}

/// Runs a model under many schedules (module docs).
#[derive(Clone, Debug)]
pub struct Explorer {
    base: SimBuilder,
    mode: Mode,
    check_leaks: bool,
}

/// What an exploration found.
#[derive(Debug)]
pub struct ExploreOutcome {
    /// Runs performed.
    pub runs: u64,
    /// The first failing run, if any.
    pub failure: Option<Failure>,
    /// For exhaustive exploration: every schedule within the bound was run.
    pub complete: bool,
}

impl ExploreOutcome {
    /// Panics with the failure (and its replay line) if there was one.
    pub fn assert_ok(&self) {
        if let Some(f) = &self.failure {
            panic!("exploration failed after {} runs:\n{f}", self.runs);
        }
    }
}

impl Default for Explorer {
    fn default() -> Self {
        Explorer::new()
    }
}

impl Explorer {
    /// Seeds 0..100 with the random scheduler, leak checks on.
    pub fn new() -> Explorer {
        Explorer {
            base: Sim::builder(),
            mode: Mode::Seeds(0..100),
            check_leaks: true,
        }
    }
    /// The options every run starts from (scheduler, stack size, tracing...).
    pub fn builder(mut self, base: SimBuilder) -> Explorer {
        self.base = base;
        self
    }
    /// One run per seed in `seeds`.
    pub fn seeds(mut self, seeds: Range<u64>) -> Explorer {
        self.mode = Mode::Seeds(seeds);
        self
    }
    /// Uses this scheduler for seeded runs.
    pub fn scheduler(mut self, kind: SchedulerKind) -> Explorer {
        self.base = self.base.scheduler(kind);
        self
    }
    /// Every schedule, branching on the first `max_depth` choice points, at
    /// most `max_runs` runs.
    pub fn exhaustive(mut self, max_depth: usize, max_runs: u64) -> Explorer {
        self.mode = Mode::Exhaustive {
            max_depth,
            max_runs,
        };
        self
    }
    /// Whether a run that leaves anything in the kernel fails (default on).
    pub fn check_leaks(mut self, on: bool) -> Explorer {
        self.check_leaks = on;
        self
    }

    fn one(&self, builder: SimBuilder, setup: &dyn Fn(&mut Sim)) -> Result<(), Failure> {
        let mut sim = builder.build();
        setup(&mut sim);
        if self.check_leaks {
            sim.check_at_end("no leaks", |r| {
                if r.kernel_is_clean() {
                    Ok(())
                } else {
                    Err(format!(
                        "kernel not empty at the end: {:?}",
                        r.kernel_at_end
                    ))
                }
            });
        }
        sim.run().map(drop)
    }

    /// Explores; stops at the first failure.
    ///
    /// With `MKIPC_SIM_REPLAY` set (and not blank), runs only that schedule;
    /// if it is not a schedule, runs nothing and returns a failure with
    /// [`FailureReason::BadReplay`] (and `runs == 0`).
    pub fn run(&self, setup: impl Fn(&mut Sim)) -> ExploreOutcome {
        if let Some(value) = std::env::var_os(REPLAY_ENV) {
            // Blank means unset, as for `SimBuilder::replay_from_env`; a value
            // that is not a schedule is reported, never explored past.
            let value = value.to_string_lossy().into_owned();
            if !value.trim().is_empty() {
                return match value.parse::<Schedule>() {
                    Ok(schedule) => ExploreOutcome {
                        runs: 1,
                        failure: self.one(self.base.clone().replay(schedule), &setup).err(),
                        complete: false,
                    },
                    Err(error) => ExploreOutcome {
                        runs: 0,
                        failure: Some(bad_replay(value, error)),
                        complete: false,
                    },
                };
            }
        }
        match &self.mode {
            Mode::Seeds(seeds) => {
                let mut runs = 0;
                for seed in seeds.clone() {
                    runs += 1;
                    if let Err(f) = self.one(self.base.clone().seed(seed), &setup) {
                        return ExploreOutcome {
                            runs,
                            failure: Some(f),
                            complete: false,
                        };
                    }
                }
                ExploreOutcome {
                    runs,
                    failure: None,
                    complete: false,
                }
            }
            Mode::Exhaustive {
                max_depth,
                max_runs,
            } => {
                let trail = DfsTrail::new(*max_depth);
                let mut runs = 0;
                loop {
                    runs += 1;
                    let builder = self
                        .base
                        .clone()
                        .scheduler(SchedulerKind::Dfs(trail.clone()));
                    if let Err(f) = self.one(builder, &setup) {
                        return ExploreOutcome {
                            runs,
                            failure: Some(f),
                            complete: false,
                        };
                    }
                    if !trail.advance() {
                        return ExploreOutcome {
                            runs,
                            failure: None,
                            complete: true,
                        };
                    }
                    if runs >= *max_runs {
                        return ExploreOutcome {
                            runs,
                            failure: None,
                            complete: false,
                        };
                    }
                }
            }
        }
    }
}

/// The failure of an exploration that ran nothing because `MKIPC_SIM_REPLAY`
/// is not a schedule: an empty report.
fn bad_replay(value: String, error: ScheduleParseError) -> Failure {
    Failure {
        reason: FailureReason::BadReplay { value, error },
        report: Box::new(Report {
            seed: 0,
            scheduler: "replay",
            steps: 0,
            end_time: Duration::ZERO,
            procs: Vec::new(),
            ports: Vec::new(),
            schedule: Schedule::default(),
            replay_diverged: false,
            kernel_at_end: KernelStats::default(),
            trace: Trace::default(),
        }),
    }
}

impl FailureReason {
    /// Whether this is a deadlock.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, FailureReason::Deadlock(_))
    }
}
