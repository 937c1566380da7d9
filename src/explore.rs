//! `mkipc explore`: one scenario under many schedules.
//!
//! A concurrency bug often hides in one interleaving out of thousands. The
//! explorer runs the scenario once per seed (each seed gives the scheduler a
//! different series of choices), or, with `--exhaustive`, every schedule that
//! branches on the first `K` choice points, and stops at the first run that
//! deadlocks, breaks an invariant or panics. It prints that run's seed and
//! the exact command that replays it, so the bug can be watched with
//! `--trace` and `--mermaid`.
//!
//! Seeds are explored in parallel (`--jobs`, every core by default). The
//! answer does not depend on the number of jobs: seeds are handed out in
//! order, and the smallest failing seed is the one reported.
//!
//! ```
//! use mkipc::explore::{explore, ExploreOptions};
//! let text = r#"
//! [[port]]
//! name = "p"
//! capacity = 0
//! receiver = "b"
//! senders = ["a"]
//! [[port]]
//! name = "q"
//! capacity = 0
//! receiver = "a"
//! senders = ["b"]
//! [[process]]
//! name = "a"
//! script = "send p\nreceive q"
//! [[process]]
//! name = "b"
//! script = "send q\nreceive p"
//! "#;
//! let scenario = mkipc::scenario::parse("deadlock.toml", text).unwrap();
//! let found = explore(&scenario, &ExploreOptions { seeds: 10, jobs: 1, ..Default::default() }).unwrap();
//! let failure = found.failure.unwrap();
//! assert!(failure.deadlock);
//! assert!(failure.replay_command.starts_with("mkipc run deadlock.toml"));
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use mkipc_sim::check::Storage;
use mkipc_sim::check::{Checker, Replay, Trail};
use mkipc_sim::{Explorer, FailureReason, SchedulerKind, Sim};

use crate::scenario::{
    build_sim, builder_for, check_refusal, check_scenario, replay_scenario, setup_sim, RunOptions,
    Scenario,
};

/// How to explore.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// First seed.
    pub first_seed: u64,
    /// How many seeds.
    pub seeds: u64,
    /// Worker threads (0: one per core).
    pub jobs: usize,
    /// Use the PCT scheduler instead of the random one.
    pub pct: bool,
    /// Exhaustive exploration; for the stateless search, branching on this
    /// many choice points (the stateful checker has no such bound).
    pub exhaustive: Option<usize>,
    /// Upper limit on exhaustive runs (stateless search).
    pub max_runs: u64,
    /// Print progress on stderr.
    pub progress: bool,
    /// Which search `exhaustive` runs.
    pub engine: Engine,
    /// The stateful checker's visited set.
    pub storage: Storage,
    /// The stateful checker's memory limit for its visited set and
    /// frontier (`None`: half of the memory available).
    pub max_memory: Option<usize>,
    /// The stateful checker's depth limit (`None`: its default).
    pub max_depth: Option<usize>,
    /// The stateful checker goes on after a failure and reports each
    /// distinct one.
    pub keep_going: bool,
    /// The stateful checker searches breadth-first: each failure's trail is
    /// a shortest one.
    pub shortest: bool,
    /// The stateful checker's partial-order reduction (default on;
    /// `--no-reduction` turns it off, for comparing).
    pub reduction: bool,
}

/// The search behind `--exhaustive`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The stateful checker when the scenario allows it; otherwise the
    /// stateless search, saying why.
    #[default]
    Auto,
    /// The stateful model checker ([`mkipc_sim::check`]): every reachable
    /// state once; an error for a scenario it cannot run.
    Stateful,
    /// The stateless search with partial-order reduction: schedules re-run
    /// from the start ([`mkipc_sim::Explorer::exhaustive`]).
    Stateless,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            first_seed: 0,
            seeds: 1000,
            jobs: 0,
            pct: false,
            exhaustive: None,
            max_runs: 100_000,
            progress: false,
            engine: Engine::Auto,
            storage: Storage::Exact,
            max_memory: None,
            max_depth: None,
            keep_going: false,
            shortest: false,
            reduction: true,
        }
    }
}

/// The first failing run found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FoundFailure {
    /// Its seed.
    pub seed: u64,
    /// What went wrong.
    pub reason: String,
    /// Whether it is a deadlock.
    pub deadlock: bool,
    /// Its recorded schedule.
    pub schedule: String,
    /// The command that replays it.
    pub replay_command: String,
}

/// What the stateful checker's partial-order reduction did
/// (`mkipc explore --exhaustive`; off with `--no-reduction` and for a model
/// with invariants that read the whole state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReductionFigures {
    /// Whether the reduction was on.
    pub on: bool,
    /// States expanded (stored, not an end, not at the depth limit).
    pub expanded: u64,
    /// Expanded states whose expansion was reduced to one step.
    pub reduced: u64,
}

/// What an exploration did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExploreResult {
    /// Runs performed; after a failure found by seeds, the seeds up to and
    /// including the first failing one (all of them were run), so that the
    /// figure does not depend on how parallel jobs interleaved.
    pub runs: u64,
    /// The first failure, if any.
    pub failure: Option<FoundFailure>,
    /// Exhaustive mode: the whole space was covered (every schedule, or one
    /// of each class of equivalent ones under partial-order reduction), no
    /// choice point cut by the bound, no stop at `--max-runs`.
    pub complete: bool,
    /// Exhaustive mode: one line on what was covered, or how the search
    /// was cut and by how much (`ExploreOutcome::coverage`).
    pub coverage: Option<String>,
    /// Which search ran: `"seeds"`, `"stateful"` or `"stateless"`.
    pub engine: &'static str,
    /// The stateful checker: states stored.
    pub states: Option<u64>,
    /// The stateful checker: transitions taken.
    pub transitions: Option<u64>,
    /// The stateful checker's statistics, as SPIN prints them.
    pub stats: Option<String>,
    /// The stateful checker: what its partial-order reduction did.
    pub reduction: Option<ReductionFigures>,
    /// Every failure found (the stateful checker with `keep_going`: each
    /// distinct one; otherwise the first), `failure` being the first.
    pub failures: Vec<FoundFailure>,
    /// What the reader must know about this search: invariants it did not
    /// check, why the stateless search ran instead of the checker.
    pub notes: Vec<String>,
}

fn scheduler(opts: &ExploreOptions) -> Option<SchedulerKind> {
    opts.pct.then(SchedulerKind::pct)
}

/// `mkipc run FILE` with the scenario's `--set` overrides.
fn run_command(scn: &Scenario) -> String {
    command("run", scn)
}

/// `mkipc VERB FILE` with the scenario's `--set` overrides.
fn command(verb: &str, scn: &Scenario) -> String {
    let mut cmd = format!("mkipc {verb} {}", quote(&scn.file));
    for (name, value) in &scn.overrides {
        cmd.push_str(&format!(" --set {}", quote(&format!("{name}={value}"))));
    }
    cmd
}

fn quote(path: &str) -> String {
    if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-=".contains(c))
    {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}

/// Explores `scn`; an error only if the scenario cannot be set up.
pub fn explore(scn: &Scenario, opts: &ExploreOptions) -> Result<ExploreResult, String> {
    let scn = Arc::new(scn.clone());
    // Setting up is deterministic: fail early, once, if it cannot be done.
    build_sim(&scn, Sim::builder())?;
    let Some(bound) = opts.exhaustive else {
        return Ok(seeds(&scn, opts));
    };
    let refused = check_refusal(&scn);
    match (opts.engine, refused) {
        (Engine::Stateless, _) => Ok(exhaustive(&scn, opts, bound)),
        (Engine::Stateful, Some(why)) => Err(why),
        (Engine::Auto, Some(why)) => {
            let mut r = exhaustive(&scn, opts, bound);
            r.notes.insert(0, format!("stateless search: {why}"));
            Ok(r)
        }
        (_, None) => stateful(&scn, opts),
    }
}

/// The checker `opts` describe.
pub fn checker_of(opts: &ExploreOptions) -> Checker {
    let mut c = Checker::new()
        .storage(opts.storage)
        .reduction(opts.reduction);
    if let Some(bytes) = opts.max_memory {
        c = c.max_memory(bytes);
    }
    if let Some(depth) = opts.max_depth {
        c = c.max_depth(depth);
    }
    if opts.keep_going {
        c = c.keep_going();
    }
    if opts.shortest {
        c = c.shortest();
    }
    if opts.progress {
        c = c.progress(Duration::from_secs(2), |stats| {
            eprintln!(
                "  ... {} states, {} transitions, depth {}, {:.0} states/s",
                stats.states_stored,
                stats.transitions,
                stats.max_depth,
                stats.states_per_sec()
            );
        });
    }
    c
}

/// `mkipc explore FILE --exhaustive --trail TRAIL`: the command that
/// replays a trail of the stateful checker, step by step.
fn trail_command(scn: &Scenario, trail: &Trail) -> String {
    format!("{} --exhaustive --trail '{trail}'", command("explore", scn))
}

fn stateful(scn: &Arc<Scenario>, opts: &ExploreOptions) -> Result<ExploreResult, String> {
    let check = check_scenario(scn, &checker_of(opts))?;
    let out = &check.outcome;
    let failures: Vec<FoundFailure> = out
        .failures
        .iter()
        .map(|f| FoundFailure {
            seed: 0,
            reason: f.reason.to_string(),
            deadlock: f.reason.is_deadlock(),
            schedule: f.trail.to_string(),
            replay_command: trail_command(scn, &f.trail),
        })
        .collect();
    let coverage = if out.stats.complete {
        "complete: every reachable state was explored (stateful search)".to_string()
    } else if let Some(why) = &out.stats.stopped {
        format!("search incomplete: {why}")
    } else if !failures.is_empty() {
        "stopped at the first failure (stateful search)".to_string()
    } else {
        "search incomplete".to_string()
    };
    let notes = check
        .unchecked
        .iter()
        .map(|i| format!("not checked by the stateful search: {i} (it counts over a whole run)"))
        .collect();
    Ok(ExploreResult {
        runs: 0,
        failure: failures.first().cloned(),
        complete: out.stats.complete && failures.is_empty(),
        coverage: Some(coverage),
        engine: "stateful",
        states: Some(out.stats.states_stored),
        transitions: Some(out.stats.transitions),
        stats: Some(out.stats.to_string()),
        reduction: Some(ReductionFigures {
            on: out.stats.reduction,
            expanded: out.stats.states_expanded,
            reduced: out.stats.states_reduced,
        }),
        failures,
        notes,
    })
}

/// Replays a trail the stateful checker printed for `scn`: each step
/// (its `Display` is one line per step, then the verdict).
pub fn replay_trail(scn: &Scenario, opts: &ExploreOptions, trail: &str) -> Result<Replay, String> {
    let trail: Trail = trail.parse().map_err(|e| format!("{e}"))?;
    let quiet = ExploreOptions {
        progress: false,
        ..opts.clone()
    };
    replay_scenario(scn, &checker_of(&quiet), &trail)
}

fn seeds(scn: &Arc<Scenario>, opts: &ExploreOptions) -> ExploreResult {
    const CHUNK: u64 = 4;
    let start = opts.first_seed;
    // Seeds are handed out as offsets from `start`, so that a first seed
    // near `u64::MAX` cannot wrap around (the last seed is `u64::MAX`).
    let count = opts.seeds.min((u64::MAX - start).saturating_add(1));
    let chunks = count.div_ceil(CHUNK);
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    };
    // No more workers than chunks of seeds, nor than a machine can start.
    let jobs = jobs.clamp(1, usize::try_from(chunks.clamp(1, 1024)).unwrap_or(1024));
    let next = AtomicU64::new(0);
    let best = AtomicU64::new(u64::MAX);
    let runs = AtomicU64::new(0);
    let failure: Mutex<Option<FoundFailure>> = Mutex::new(None);
    std::thread::scope(|s| {
        let work = || loop {
            let offset = next.fetch_add(CHUNK, Ordering::SeqCst);
            if offset >= count {
                break;
            }
            if offset >= best.load(Ordering::SeqCst) {
                break;
            }
            for offset in offset..offset.saturating_add(CHUNK).min(count) {
                // The offset of the smallest failing seed so far (`u64::MAX`: none).
                if offset >= best.load(Ordering::SeqCst) {
                    break;
                }
                let seed = start + offset;
                let run_opts = RunOptions {
                    seed: Some(seed),
                    scheduler: scheduler(opts),
                    replay: None,
                };
                runs.fetch_add(1, Ordering::SeqCst);
                let Ok((sim, _h)) = build_sim(scn, builder_for(scn, &run_opts)) else {
                    continue;
                };
                if let Err(f) = sim.run() {
                    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                    if offset < best.load(Ordering::SeqCst) {
                        best.store(offset, Ordering::SeqCst);
                        let mut cmd = format!("{} --seed {seed}", run_command(scn));
                        if opts.pct {
                            cmd.push_str(" --scheduler pct");
                        }
                        *slot = Some(FoundFailure {
                            seed,
                            deadlock: f.reason.is_deadlock(),
                            reason: f.reason.to_string(),
                            schedule: f.report.schedule.to_string(),
                            replay_command: cmd,
                        });
                    }
                }
            }
        };
        // A thread the system refuses is one worker fewer, not a panic; if
        // none starts, this thread does the work.
        let workers: Vec<_> = (0..jobs)
            .map_while(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        if workers.is_empty() {
            work();
        }
        if opts.progress {
            while !workers.iter().all(|w| w.is_finished()) {
                let done = runs.load(Ordering::SeqCst);
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\rexplored {done}/{} seeds", opts.seeds);
                let _ = err.flush();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    if opts.progress {
        eprintln!(
            "\rexplored {}/{} seeds",
            runs.load(Ordering::SeqCst),
            opts.seeds
        );
    }
    let failure = failure.into_inner().unwrap_or_else(|p| p.into_inner());
    // With a failure, count the seeds up to the first failing one: every
    // earlier seed was run (a worker only skips seeds past a failure), so
    // this is the same whatever the jobs did in parallel, unlike the number
    // of runs that happened to start before the failure was known.
    let runs = match best.load(Ordering::SeqCst) {
        u64::MAX => runs.load(Ordering::SeqCst),
        first_failing => first_failing + 1,
    };
    ExploreResult {
        runs,
        failures: failure.iter().cloned().collect(),
        failure,
        complete: false,
        coverage: None,
        engine: "seeds",
        states: None,
        transitions: None,
        stats: None,
        reduction: None,
        notes: Vec::new(),
    }
}

fn exhaustive(scn: &Arc<Scenario>, opts: &ExploreOptions, bound: usize) -> ExploreResult {
    let base = builder_for(scn, &RunOptions::default());
    let outcome = Explorer::new()
        .builder(base)
        .check_leaks(false)
        .exhaustive(bound, opts.max_runs)
        .run(|sim| {
            // Setup succeeded once already; it is deterministic.
            let _ = setup_sim(scn, sim);
        });
    let mut coverage = outcome.coverage();
    if let Some(note) = outcome.reduction_note {
        coverage = format!("{coverage}; {note}");
    }
    let failure = outcome.failure.map(|f| {
        let schedule = f.report.schedule.to_string();
        FoundFailure {
            seed: f.report.seed,
            deadlock: matches!(f.reason, FailureReason::Deadlock(_)),
            reason: f.reason.to_string(),
            replay_command: format!("{} --replay '{schedule}'", run_command(scn)),
            schedule,
        }
    });
    if opts.progress {
        eprintln!("explored {} schedules", outcome.runs);
    }
    ExploreResult {
        runs: outcome.runs,
        failures: failure.iter().cloned().collect(),
        failure,
        complete: outcome.complete,
        coverage: Some(coverage),
        engine: "stateless",
        states: None,
        transitions: None,
        stats: None,
        reduction: None,
        notes: Vec::new(),
    }
}
