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
//! schedule, so a failure found in CI is debugged with the same test.
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
use crate::report::{Failure, FailureReason};
use crate::schedule::{Schedule, REPLAY_ENV};
use crate::scheduler::{DfsTrail, SchedulerKind};
use crate::sim::Sim;

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
    pub fn run(&self, setup: impl Fn(&mut Sim)) -> ExploreOutcome {
        if let Ok(s) = std::env::var(REPLAY_ENV) {
            if let Ok(schedule) = s.parse::<Schedule>() {
                let failure = self.one(self.base.clone().replay(schedule), &setup).err();
                return ExploreOutcome {
                    runs: 1,
                    failure,
                    complete: false,
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

impl FailureReason {
    /// Whether this is a deadlock.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, FailureReason::Deadlock(_))
    }
}
