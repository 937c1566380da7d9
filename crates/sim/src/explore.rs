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
//! The setup function runs on the explorer's thread, and may run with the
//! run's kernel held ([`Kernel::hold`](mkipc_kernel::Kernel::hold); runs on
//! a reused `Sim` do, so their set-up takes no lock), as the processes do:
//! it must not wait for another thread that calls into that kernel.
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

use mkipc_kernel::introspect::KernelStats;
use mkipc_kernel::runtime::KernelSnapshot;
use mkipc_kernel::Kernel;

use crate::report::{Failure, FailureReason, Report};
use crate::schedule::{Schedule, ScheduleParseError, REPLAY_ENV};
use crate::scheduler::{DfsTrail, DporTrail, SchedulerKind};
use crate::sim::Sim;
use crate::trace::Trace;

#[derive(Clone, Debug)]
enum Mode {
    Seeds(Range<u64>),
    Exhaustive {
        max_depth: usize,
        max_runs: u64,
        reduction: Reduction,
    },
}

/// What sees each run's result ([`Explorer::run_all`]).
type Visitor<'a> = dyn FnMut(&Result<Report, Failure>) + 'a;

/// Which schedules an exhaustive search runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Every schedule: plain depth-first search, branching at every choice
    /// point. For comparison and for models whose processes share state
    /// outside the kernel.
    None,
    /// One schedule per class of equivalent schedules: dynamic
    /// partial-order reduction with sleep sets (the default; see
    /// [`scheduler`](crate::scheduler) and DESIGN.md, "Exploration").
    /// Sound for processes that communicate only through the kernel.
    #[default]
    Dpor,
}

/// Why an exhaustive search did not cover the whole space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchCut {
    /// Alternatives not branched on because their choice point was past
    /// the bound, summed over the runs (a lower bound on the schedules left
    /// out; 0 when the bound cut nothing).
    pub past_bound: u64,
    /// The search stopped at `max_runs` with branches left.
    pub max_runs: bool,
    /// Branches still to explore when it stopped (0 unless `max_runs`).
    pub pending: u64,
}

impl std::fmt::Display for SearchCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.max_runs {
            parts.push(format!(
                "stopped at the run limit with at least {} branch(es) unexplored",
                self.pending.max(1)
            ));
        }
        if self.past_bound > 0 {
            parts.push(format!(
                "{} alternative(s) past the bound not branched on",
                self.past_bound
            ));
        }
        if parts.is_empty() {
            parts.push("cut".to_string());
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// Runs a model under many schedules (see the [module docs](crate::explore)).
#[derive(Clone, Debug)]
pub struct Explorer {
    base: SimBuilder,
    mode: Mode,
    check_leaks: bool,
}

/// What an exploration found.
#[derive(Debug)]
pub struct ExploreOutcome {
    /// Runs performed (a stopped search counts the runs it did).
    pub runs: u64,
    /// Scheduling steps over all runs.
    pub steps: u64,
    /// The first failing run, if any.
    pub failure: Option<Failure>,
    /// For exhaustive exploration: the whole space was covered — every
    /// schedule, or (under [`Reduction::Dpor`]) one of every class of
    /// equivalent schedules — with no choice point cut by the bound, no
    /// stop at the run limit, and no failure ending it early.
    pub complete: bool,
    /// For an exhaustive search that was not complete for lack of bound or
    /// runs: by how much it was cut.
    pub cut: Option<SearchCut>,
    /// The reduction an exhaustive search used (`None` for seeded runs).
    pub reduction: Option<Reduction>,
    /// Under DPOR: runs found redundant partway (their continuation was
    /// already covered); they count in `runs`.
    pub redundant_runs: u64,
    /// Under DPOR: why the reduction could not reduce, if it could not
    /// (per-step invariants or faults make every step dependent; a model
    /// that did not repeat a replayed prefix is not deterministic).
    pub reduction_note: Option<&'static str>,
}

impl ExploreOutcome {
    fn new(runs: u64) -> ExploreOutcome {
        ExploreOutcome {
            runs,
            steps: 0,
            failure: None,
            complete: false,
            cut: None,
            reduction: None,
            redundant_runs: 0,
            reduction_note: None,
        }
    }

    /// Panics with the failure (and its replay line) if there was one.
    pub fn assert_ok(&self) {
        if let Some(f) = &self.failure {
            panic!("exploration failed after {} runs:\n{f}", self.runs);
        }
    }

    /// One line on what an exhaustive search covered: complete, or cut and
    /// by how much.
    pub fn coverage(&self) -> String {
        let how = match self.reduction {
            Some(Reduction::Dpor) => "partial-order reduction",
            Some(Reduction::None) => "no reduction",
            None => "seeded",
        };
        if self.complete {
            format!("complete: the whole space was covered ({how})")
        } else if let Some(cut) = &self.cut {
            format!("incomplete ({how}): {cut}")
        } else if self.failure.is_some() {
            format!("stopped at the first failure ({how})")
        } else {
            format!("incomplete ({how})")
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
    /// most `max_runs` runs; with partial-order reduction unless
    /// [`Explorer::reduction`] says otherwise.
    pub fn exhaustive(mut self, max_depth: usize, max_runs: u64) -> Explorer {
        self.mode = Mode::Exhaustive {
            max_depth,
            max_runs,
            reduction: Reduction::default(),
        };
        self
    }
    /// The reduction of an exhaustive search (call after
    /// [`Explorer::exhaustive`]; no effect on seeded runs).
    pub fn reduction(mut self, r: Reduction) -> Explorer {
        if let Mode::Exhaustive { reduction, .. } = &mut self.mode {
            *reduction = r;
        }
        self
    }
    /// Whether a run that leaves anything in the kernel fails (default on).
    pub fn check_leaks(mut self, on: bool) -> Explorer {
        self.check_leaks = on;
        self
    }

    /// One run on a `Sim` of its own, built from `builder`.
    fn one(&self, builder: SimBuilder, setup: &dyn Fn(&mut Sim)) -> Result<Report, Failure> {
        let mut sim = builder.build();
        setup(&mut sim);
        self.add_leak_check(&mut sim);
        sim.run()
    }

    /// After the model's own final checks, the run fails if it left
    /// anything in the kernel (unless turned off).
    fn add_leak_check(&self, sim: &mut Sim) {
        sim.check_leaks = self.check_leaks;
    }

    /// The runs of one exploration, on one reused `Sim`, traced as the
    /// base builder says.
    fn runs<'a>(&'a self, setup: &'a dyn Fn(&mut Sim)) -> Runs<'a> {
        Runs {
            explorer: self,
            setup,
            trace: self.base.trace,
            reports: true,
            reused: None,
        }
    }

    /// Explores; stops at the first failure.
    ///
    /// With `MKIPC_SIM_REPLAY` set (and not blank), runs only that schedule;
    /// if it is not a schedule, runs nothing and returns a failure with
    /// [`FailureReason::BadReplay`] (and `runs == 0`).
    pub fn run(&self, setup: impl Fn(&mut Sim)) -> ExploreOutcome {
        self.drive(&setup, None)
    }

    /// Explores to the end, failures or not, showing every run's result to
    /// `visit` (the outcome's `failure` is the first one). For comparing
    /// searches: the distinct failures and end states they reach.
    pub fn run_all(
        &self,
        setup: impl Fn(&mut Sim),
        mut visit: impl FnMut(&Result<Report, Failure>),
    ) -> ExploreOutcome {
        self.drive(&setup, Some(&mut visit))
    }

    /// Explores, showing every run's result to `visit`; with no `visit`,
    /// stops at the first failure.
    fn drive(
        &self,
        setup: &dyn Fn(&mut Sim),
        mut visit: Option<&mut Visitor<'_>>,
    ) -> ExploreOutcome {
        let stop = visit.is_none();
        let mut show = |r: &Result<Report, Failure>| {
            if let Some(v) = visit.as_mut() {
                v(r);
            }
        };
        let visit = &mut show;
        if let Some(value) = std::env::var_os(REPLAY_ENV) {
            // Blank means unset, as for `SimBuilder::replay_from_env`; a value
            // that is not a schedule is reported, never explored past.
            let value = value.to_string_lossy().into_owned();
            if !value.trim().is_empty() {
                return match value.parse::<Schedule>() {
                    Ok(schedule) => {
                        let r = self.one(self.base.clone().replay(schedule), setup);
                        visit(&r);
                        let mut out = ExploreOutcome::new(1);
                        out.failure = r.err();
                        out
                    }
                    Err(error) => {
                        let mut out = ExploreOutcome::new(0);
                        out.failure = Some(bad_replay(value, error));
                        out
                    }
                };
            }
        }
        match &self.mode {
            Mode::Seeds(seeds) => {
                let mut out = ExploreOutcome::new(0);
                let mut runs = self.runs(setup);
                // Stopping at the first failure, nobody sees the runs that
                // pass: they run untraced and assemble no report, and a
                // failing seed runs again as the base builder says (traced
                // unless turned off), so it is reported as it always was.
                let again = stop && runs.trace;
                runs.trace &= !stop;
                runs.reports = !stop;
                let scheduler = self.base.scheduler.clone();
                for seed in seeds.clone() {
                    out.runs += 1;
                    let (steps, r) = runs.run(seed, &scheduler);
                    out.steps += steps;
                    let r = match r {
                        Ok(Some(report)) => Ok(report),
                        Ok(None) => continue,
                        // A model that does not fail again (it is not
                        // deterministic) keeps the untraced failure.
                        Err(f) if again => match self.one(self.base.clone().seed(seed), setup) {
                            Err(traced) => Err(traced),
                            Ok(_) => Err(f),
                        },
                        Err(f) => Err(f),
                    };
                    visit(&r);
                    if let Err(f) = r {
                        out.failure.get_or_insert(f);
                        if stop {
                            return out;
                        }
                    }
                }
                out
            }
            Mode::Exhaustive {
                max_depth,
                max_runs,
                reduction: Reduction::None,
            } => self.dfs(*max_depth, *max_runs, setup, visit, stop),
            Mode::Exhaustive {
                max_depth,
                max_runs,
                reduction: Reduction::Dpor,
            } => self.dpor(*max_depth, *max_runs, setup, visit, stop),
        }
    }

    fn dfs(
        &self,
        max_depth: usize,
        max_runs: u64,
        setup: &dyn Fn(&mut Sim),
        visit: &mut dyn FnMut(&Result<Report, Failure>),
        stop: bool,
    ) -> ExploreOutcome {
        let trail = DfsTrail::new(max_depth);
        let mut out = ExploreOutcome::new(0);
        out.reduction = Some(Reduction::None);
        let mut runs = self.runs(setup);
        let scheduler = SchedulerKind::Dfs(trail.clone());
        loop {
            out.runs += 1;
            let r = runs.run_reported(self.base.seed, &scheduler);
            out.steps += steps_of(&r);
            visit(&r);
            if let Err(f) = r {
                out.failure.get_or_insert(f);
                if stop {
                    return out;
                }
            }
            let more = trail.advance();
            if !more || out.runs >= max_runs {
                let cut = SearchCut {
                    past_bound: trail.skipped(),
                    max_runs: more,
                    pending: u64::from(more),
                };
                out.complete = cut == SearchCut::default();
                out.cut = (cut != SearchCut::default()).then_some(cut);
                return out;
            }
        }
    }

    fn dpor(
        &self,
        max_depth: usize,
        max_runs: u64,
        setup: &dyn Fn(&mut Sim),
        visit: &mut dyn FnMut(&Result<Report, Failure>),
        stop: bool,
    ) -> ExploreOutcome {
        let mut out = ExploreOutcome::new(0);
        out.reduction = Some(Reduction::Dpor);
        let mut stamps = false;
        let mut past_bound = 0;
        let mut diverged = false;
        let mut runs = self.runs(setup);
        'restart: loop {
            let trail = DporTrail::new(false, stamps);
            let scheduler = SchedulerKind::Dpor(trail.clone());
            loop {
                out.runs += 1;
                let r = runs.run_reported(self.base.seed, &scheduler);
                out.steps += steps_of(&r);
                visit(&r);
                let failed = r.is_err();
                if let Err(f) = r {
                    out.failure.get_or_insert(f);
                }
                let (info, more) = trail.advance(max_depth);
                if trail.all_global() {
                    out.reduction_note =
                        Some("per-step invariants or faults: every step is dependent");
                }
                if info.restart_with_stamps {
                    // The run received from several queues at once, which
                    // makes the arrival order of sends observable: what was
                    // explored treated sends to different queues as
                    // independent. Start over, with sends ordered.
                    stamps = true;
                    past_bound = 0;
                    if failed && stop {
                        return out;
                    }
                    continue 'restart;
                }
                out.redundant_runs += u64::from(info.redundant);
                past_bound += info.cut;
                diverged |= info.diverged;
                if failed && stop {
                    return out;
                }
                if !more || out.runs >= max_runs {
                    let cut = SearchCut {
                        past_bound,
                        max_runs: more,
                        pending: if more { trail.pending() } else { 0 },
                    };
                    if diverged {
                        out.reduction_note = Some(
                            "the model did not repeat a replayed schedule: it is not deterministic",
                        );
                    }
                    out.complete = cut == SearchCut::default() && !diverged;
                    out.cut = (cut != SearchCut::default()).then_some(cut);
                    return out;
                }
            }
        }
    }
}

/// The runs of one exploration on one `Sim`, reset between runs instead of
/// built anew (`Sim::reset`: the kernel restored from its snapshot taken
/// after `build`, every table emptied with its memory kept), which is what
/// makes many short runs cheap. A run is the one a new `Sim` of the same
/// seed and scheduler gives (`tests/explore.rs`).
struct Runs<'a> {
    explorer: &'a Explorer,
    setup: &'a dyn Fn(&mut Sim),
    /// Whether runs record their trace.
    trace: bool,
    /// Whether a run that passes assembles its report.
    reports: bool,
    /// The last run's `Sim`, and its kernel as `build` left it.
    reused: Option<(Sim, KernelSnapshot)>,
}

impl Runs<'_> {
    /// A run with its report.
    fn run_reported(&mut self, seed: u64, scheduler: &SchedulerKind) -> Result<Report, Failure> {
        let reports = std::mem::replace(&mut self.reports, true);
        let (_, r) = self.run(seed, scheduler);
        self.reports = reports;
        r.map(|r| r.expect("a report was asked for"))
    }

    /// A run: its steps, and its result (`Ok(None)` for a run that passed,
    /// when `reports` is off and no final check of the model needs one).
    fn run(
        &mut self,
        seed: u64,
        scheduler: &SchedulerKind,
    ) -> (u64, Result<Option<Report>, Failure>) {
        // The kernel is held (`Kernel::hold`) from the reset to the end of
        // the run, set-up included, as `Sim::run` holds it for the loop:
        // the set-up's operations take no lock. A `Sim` built anew below
        // (the reset failed) takes its own locks.
        let kernel = self.reused.as_ref().map(|(sim, _)| sim.kernel().clone());
        let _hold = kernel.as_ref().map(Kernel::hold);
        // In place: a `Sim` and a kernel snapshot are large to move.
        let reset = match &mut self.reused {
            Some((sim, initial)) => sim.reset(initial, seed, scheduler),
            None => false,
        };
        if !reset {
            self.reused = None;
        }
        let (explorer, trace) = (self.explorer, self.trace);
        let (sim, _) = self.reused.get_or_insert_with(|| {
            let sim = explorer
                .base
                .clone()
                .seed(seed)
                .scheduler(scheduler.clone())
                .trace(trace)
                .build();
            let initial = sim.kernel().snapshot();
            (sim, initial)
        });
        (self.setup)(sim);
        self.explorer.add_leak_check(sim);
        let r = sim.run_here_with(self.reports);
        (sim.driver.core.step.get(), r)
    }
}

fn steps_of(r: &Result<Report, Failure>) -> u64 {
    match r {
        Ok(report) => report.steps,
        Err(f) => f.report.steps,
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
