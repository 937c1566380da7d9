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
//! order, and the smallest failing seed is the one reported. With
//! `--exhaustive`, `--jobs N` runs the stateful checker's parallel search
//! ([`mkipc_sim::check::parallel`]), whose answer does not depend on N
//! either. `--shard i/n` runs one part of the search (every `n`-th seed,
//! or a share of the checker's states), for other machines to run the
//! rest; [`merge`] (`explore --merge`) puts the parts' reports together.
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

use mkipc_sim::check::{Checker, Replay, Trail};
pub use mkipc_sim::check::{Shard, Storage};
use mkipc_sim::{Explorer, FailureReason, SchedulerKind, Sim};

use crate::scenario::{
    build_sim, builder_for, check_refusal, check_scenario, check_scenario_parallel,
    replay_scenario, setup_sim, RunOptions, Scenario,
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
    /// The stateful checker's parallel search (`--jobs` given with
    /// `--exhaustive`): its worker threads (0: one per core). `None`: the
    /// sequential depth-first search. The parallel search's states, end
    /// states and failures do not depend on the number.
    pub checker_jobs: Option<usize>,
    /// Only this shard of the search (`--shard i/n`): every `n`-th seed
    /// from offset `i`, or the stateful checker's states split at a level
    /// (module [`mkipc_sim::check::parallel`]); `explore --merge` puts the
    /// shards' reports back together ([`merge`]).
    pub shard: Option<Shard>,
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
            checker_jobs: None,
            shard: None,
        }
    }
}

/// The first failing run found.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The stateful checker: the failure's key (hex; the same failing
    /// state and reason in every search of the model, so that merged
    /// shards count it once). `None` for seeds (the seed is the key).
    #[serde(default)]
    pub key: Option<String>,
}

/// `Debug` as derived, with `key` only when there is one: the explorations
/// `tests/sim_pins.rs` pins (seeds, the stateless search) print as they
/// did before keys existed.
impl std::fmt::Debug for FoundFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FoundFailure");
        d.field("seed", &self.seed)
            .field("reason", &self.reason)
            .field("deadlock", &self.deadlock)
            .field("schedule", &self.schedule)
            .field("replay_command", &self.replay_command);
        if let Some(key) = &self.key {
            d.field("key", key);
        }
        d.finish()
    }
}

/// What the stateful checker's partial-order reduction did
/// (`mkipc explore --exhaustive`; off with `--no-reduction` and for a model
/// with invariants that read the whole state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReductionFigures {
    /// Whether the reduction was on.
    pub on: bool,
    /// States expanded (stored, not an end, not at the depth limit).
    pub expanded: u64,
    /// Expanded states whose expansion was reduced to one step.
    pub reduced: u64,
    /// Local steps merged into the transition of the local step of their
    /// process before them, the states between not stored (statement
    /// merging; 0 in reports written before it was counted, and in the
    /// parallel search's, which merges but does not count).
    #[serde(default)]
    pub merged: u64,
}

/// What an exploration did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Which search ran: `"seeds"`, `"stateful"` or `"stateless"`
    /// (`"merged"` prefixes none: a merge keeps the shards' engine).
    pub engine: String,
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
    /// The command that runs this search on one machine (no `--shard`,
    /// `--jobs` or `--json`): shards merge only with shards of the same.
    pub command: String,
    /// The stateful checker: end states reached (valid or failing).
    pub end_states: Option<u64>,
    /// The stateful checker: states reached again and not explored again.
    pub matched: Option<u64>,
    /// The stateful checker's parallel search: its worker threads.
    pub workers: Option<usize>,
    /// Which shard this is (`--shard`), and what it covered.
    pub shard: Option<ShardReport>,
    /// A merge (`explore --merge`): how many shards' reports it combined.
    #[serde(default)]
    pub merged_shards: Option<u32>,
}

/// A report of `mkipc explore --json` (schema `mkipc-explore/1`), as
/// `explore --merge` reads it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// `mkipc-explore/1`.
    pub schema: String,
    /// The scenario's file.
    pub scenario: String,
    /// What the search did.
    #[serde(flatten)]
    pub result: ExploreResult,
}

/// The schema of `mkipc explore --json`.
pub const REPORT_SCHEMA: &str = "mkipc-explore/1";

/// Combines the reports of the `n` shards of one search (`--shard i/n`,
/// each `i` once) into the report of the whole search: one verdict, the
/// statistics summed (what every shard explored alike before the split
/// counted once), and every distinct failure with its replay line.
///
/// Seeds: the failure is the smallest failing seed of all, and the runs
/// the seeds up to it, as one unsplit run reports them. The stateful
/// checker: the failures of every shard, each distinct one (by its key:
/// failing state and reason) once, the shortest trail first.
pub fn merge(reports: &[Report]) -> Result<Report, String> {
    let first = reports.first().ok_or("--merge: no report given")?;
    let shard_of = |r: &Report| {
        r.result.shard.clone().ok_or_else(|| {
            format!(
                "{}: not a shard's report (run with --shard i/n)",
                r.result.command
            )
        })
    };
    let lead = shard_of(first)?;
    let n = lead.count;
    // The shards given, by index: a set, not a table of `n` entries, since
    // `n` comes from a file and may be anything up to `u32::MAX`.
    let mut have = std::collections::BTreeSet::new();
    for r in reports {
        if r.schema != REPORT_SCHEMA {
            return Err(format!(
                "--merge: schema {:?}, expected {REPORT_SCHEMA:?}",
                r.schema
            ));
        }
        let s = shard_of(r)?;
        if r.result.command != first.result.command
            || s.count != n
            || r.result.engine != first.result.engine
        {
            return Err(format!(
                "--merge: shard {}/{} is of another search:\n  {}\nnot\n  {}",
                s.index, s.count, r.result.command, first.result.command
            ));
        }
        if s.index >= n {
            return Err(format!("--merge: shard {}/{n} out of range", s.index));
        }
        if !have.insert(s.index) {
            return Err(format!("--merge: shard {}/{n} given twice", s.index));
        }
        if s.split_depth != lead.split_depth || s.prefix_states != lead.prefix_states {
            return Err(format!(
                "--merge: shard {}/{n} split the search elsewhere than shard {}/{n} (not the \
                 same model or options)",
                s.index, lead.index
            ));
        }
    }
    // `have` holds distinct indices below `n`, so at most `n` of them.
    let missing_count = u64::from(n) - have.len() as u64;
    if missing_count > 0 {
        // Name the first few (found among the first `have.len() + 8`
        // indices, however large `n` is).
        const SHOWN: usize = 8;
        let missing: Vec<String> = (0..n)
            .filter(|i| !have.contains(i))
            .take(SHOWN)
            .map(|i| format!("{i}/{n}"))
            .collect();
        let more = match missing_count - missing.len() as u64 {
            0 => String::new(),
            k => format!(" and {k} more"),
        };
        return Err(format!(
            "--merge: missing the report of shard(s) {}{more}: the others do not cover the whole \
             search",
            missing.join(", ")
        ));
    }
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by_key(|r| r.result.shard.as_ref().map_or(0, |s| s.index));
    let results: Vec<&ExploreResult> = sorted.iter().map(|r| &r.result).collect();
    let mut notes: Vec<String> = Vec::new();
    for r in &results {
        for note in &r.notes {
            if !notes.contains(note) {
                notes.push(note.clone());
            }
        }
    }
    // The figures come from files: a sum that overflows is refused, not
    // wrapped (nor a panic).
    let overflow = |what: &str| {
        format!("--merge: the shards' {what} overflow when summed (not the reports of one search)")
    };
    let sum =
        |what: &str, f: &dyn Fn(&ExploreResult) -> Option<u64>| -> Result<Option<u64>, String> {
            let mut total = Some(0u64);
            for r in &results {
                total = match (total, f(r)) {
                    (Some(t), Some(v)) => Some(t.checked_add(v).ok_or_else(|| overflow(what))?),
                    _ => None,
                };
            }
            Ok(total)
        };
    let mut merged = ExploreResult {
        runs: sum("runs", &|r| Some(r.runs))?.unwrap_or_default(),
        failure: None,
        complete: results.iter().all(|r| r.complete),
        coverage: None,
        engine: first.result.engine.clone(),
        states: None,
        transitions: None,
        stats: None,
        reduction: None,
        failures: Vec::new(),
        notes,
        command: first.result.command.clone(),
        end_states: None,
        matched: None,
        workers: None,
        shard: None,
        merged_shards: Some(n),
    };
    if merged.engine == "seeds" {
        let failure = results
            .iter()
            .filter_map(|r| r.failure.as_ref())
            .min_by_key(|f| f.seed)
            .cloned();
        if let (Some(f), Some((first_seed, count))) = (&failure, lead.seeds) {
            // Every seed below the first failing one was run by its shard.
            merged.runs = f
                .seed
                .checked_sub(first_seed)
                .filter(|&offset| offset < count)
                .map(|offset| offset + 1)
                .ok_or_else(|| {
                    format!(
                        "--merge: failing seed {} is not one of the search's {count} seeds from \
                         {first_seed}",
                        f.seed
                    )
                })?;
        }
        merged.failures = failure.iter().cloned().collect();
        merged.failure = failure;
        return Ok(Report {
            schema: REPORT_SCHEMA.into(),
            scenario: first.scenario.clone(),
            result: merged,
        });
    }
    // The stateful checker: every distinct failure once, shortest first.
    let mut failures: Vec<(usize, u32, FoundFailure)> = Vec::new();
    for (k, r) in results.iter().enumerate() {
        for f in &r.failures {
            let dup = failures.iter().any(|(_, _, g)| match (&f.key, &g.key) {
                (Some(a), Some(b)) => a == b,
                _ => f.reason == g.reason && f.schedule == g.schedule,
            });
            if !dup {
                let steps = f.schedule.parse::<Trail>().map_or(usize::MAX, |t| t.len());
                failures.push((steps, k as u32, f.clone()));
            }
        }
    }
    failures.sort_by_key(|(steps, k, _)| (*steps, *k));
    merged.failures = failures.into_iter().map(|(_, _, f)| f).collect();
    merged.failure = merged.failures.first().cloned();
    let split = lead.split_depth.is_some();
    // `n >= 1`: every report's index is below it.
    let once = |what: &str, total: Option<u64>, prefix: u64| -> Result<Option<u64>, String> {
        let Some(t) = total else { return Ok(None) };
        if !split {
            // No split: every shard explored everything.
            return Ok(Some(t / u64::from(n)));
        }
        prefix
            .checked_mul(u64::from(n - 1))
            .and_then(|counted_again| t.checked_sub(counted_again))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "--merge: the shards' {what} ({t} in all) are fewer than the {prefix} every \
                     shard counts before the split (not the reports of one search)"
                )
            })
    };
    merged.states = once("states", sum("states", &|r| r.states)?, lead.prefix_states)?;
    merged.transitions = once(
        "transitions",
        sum("transitions", &|r| r.transitions)?,
        lead.prefix_transitions,
    )?;
    merged.end_states = once(
        "end states",
        sum("end states", &|r| r.end_states)?,
        lead.prefix_end_states,
    )?;
    merged.matched = once(
        "matched states",
        sum("matched states", &|r| r.matched)?,
        lead.prefix_matched,
    )?;
    let mut reduction: Option<ReductionFigures> = None;
    for r in &results {
        let Some(f) = r.reduction else {
            reduction = None;
            break;
        };
        reduction = Some(match reduction {
            None => f,
            Some(a) => {
                let add = |x: u64, y: u64| {
                    x.checked_add(y)
                        .ok_or_else(|| overflow("reduction figures"))
                };
                ReductionFigures {
                    on: a.on && f.on,
                    expanded: add(a.expanded, f.expanded)?,
                    reduced: add(a.reduced, f.reduced)?,
                    merged: add(a.merged, f.merged)?,
                }
            }
        });
    }
    merged.reduction = reduction;
    let incomplete: Vec<String> = results
        .iter()
        .filter(|r| {
            !r.coverage
                .as_deref()
                .is_some_and(|c| c.starts_with("complete"))
        })
        .map(|r| {
            let s = r.shard.as_ref().map_or(0, |s| s.index);
            format!(
                "shard {s}/{n}: {}",
                r.coverage.as_deref().unwrap_or("incomplete")
            )
        })
        .collect();
    merged.coverage = Some(if incomplete.is_empty() {
        format!(
            "complete: the {n} shards together explored every reachable state (stateful search)"
        )
    } else {
        format!("search incomplete: {}", incomplete.join("; "))
    });
    let fig = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    let mut stats = format!(
        "merged {n} shard report(s) of: {}\n{:>12} states, stored (summed over the shards; what \
         they explored alike before the split counted once; a state that several shards reached \
         after it counts once per shard)\n{:>12} states, matched\n{:>12} transitions\n{:>12} end \
         states\n{:>12} distinct failure(s)",
        merged.command,
        fig(merged.states),
        fig(merged.matched),
        fig(merged.transitions),
        fig(merged.end_states),
        merged.failures.len()
    );
    match lead.split_depth {
        Some(d) => {
            let roots: Vec<String> = results
                .iter()
                .map(|r| r.shard.as_ref().map_or(0, |s| s.roots).to_string())
                .collect();
            stats.push_str(&format!(
                "\nsplit at depth {d} ({} states stored before it); states taken per shard: {}",
                lead.prefix_states,
                roots.join(", ")
            ));
        }
        None => stats.push_str(
            "\nno split: the search ended before a level was large enough, every shard \
             explored everything",
        ),
    }
    stats.push_str(&format!(
        "\n{}",
        merged.coverage.as_deref().unwrap_or_default()
    ));
    merged.stats = Some(stats);
    merged.complete = merged.complete && merged.failures.is_empty();
    Ok(Report {
        schema: REPORT_SCHEMA.into(),
        scenario: first.scenario.clone(),
        result: merged,
    })
}

/// One shard's part of a split search (`--shard i/n`), in its report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardReport {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
    /// Seeds: the first seed and how many seeds the whole search has
    /// (this shard ran every `count`-th from offset `index`).
    #[serde(default)]
    pub seeds: Option<(u64, u64)>,
    /// The stateful checker: the depth whose states were dealt out
    /// (`None`: the search ended before a level was large enough, and
    /// every shard explored everything).
    #[serde(default)]
    pub split_depth: Option<usize>,
    /// The states of that level this shard took.
    #[serde(default)]
    pub roots: u64,
    /// States stored before the split (by every shard alike).
    #[serde(default)]
    pub prefix_states: u64,
    /// States matched before the split.
    #[serde(default)]
    pub prefix_matched: u64,
    /// Transitions before the split.
    #[serde(default)]
    pub prefix_transitions: u64,
    /// End states before the split.
    #[serde(default)]
    pub prefix_end_states: u64,
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

/// The command that runs the search `opts` describe on one machine, as a
/// report names it (no `--shard`, `--jobs`, `--json`): shards of one
/// search have the same.
pub fn search_command(scn: &Scenario, opts: &ExploreOptions) -> String {
    let mut cmd = command("explore", scn);
    match opts.exhaustive {
        None => {
            cmd.push_str(&format!(
                " --seeds {} --first-seed {}",
                opts.seeds, opts.first_seed
            ));
            if opts.pct {
                cmd.push_str(" --pct");
            }
        }
        Some(bound) => {
            cmd.push_str(" --exhaustive");
            match opts.engine {
                Engine::Auto => {}
                Engine::Stateful => cmd.push_str(" --engine stateful"),
                Engine::Stateless => cmd.push_str(&format!(
                    " --engine stateless --bound {bound} --max-runs {}",
                    opts.max_runs
                )),
            }
            match opts.storage {
                Storage::Exact | Storage::ExactFlat => {}
                Storage::HashCompact => cmd.push_str(" --storage hash"),
                Storage::Bitstate { bits } => {
                    cmd.push_str(&format!(" --storage bitstate --bits {bits}"))
                }
            }
            if let Some(d) = opts.max_depth {
                cmd.push_str(&format!(" --max-depth {d}"));
            }
            if opts.keep_going {
                cmd.push_str(" --keep-going");
            }
            if opts.shortest {
                cmd.push_str(" --shortest");
            }
            if !opts.reduction {
                cmd.push_str(" --no-reduction");
            }
            if opts.checker_jobs.is_some() || opts.shard.is_some() {
                cmd.push_str(" --jobs 0");
            }
        }
    }
    cmd
}

/// Explores `scn`; an error only if the scenario cannot be set up (or
/// `--shard` asks to split the stateless search, which cannot be split).
pub fn explore(scn: &Scenario, opts: &ExploreOptions) -> Result<ExploreResult, String> {
    let scn = Arc::new(scn.clone());
    // Setting up is deterministic: fail early, once, if it cannot be done.
    build_sim(&scn, Sim::builder())?;
    let mut r = explore_set_up(&scn, opts)?;
    r.command = search_command(&scn, opts);
    if let Some(shard) = opts.shard {
        let s = r.shard.get_or_insert_with(ShardReport::default);
        s.index = shard.index();
        s.count = shard.count();
        if opts.exhaustive.is_none() {
            s.seeds = Some((opts.first_seed, opts.seeds));
        }
    }
    Ok(r)
}

fn explore_set_up(scn: &Arc<Scenario>, opts: &ExploreOptions) -> Result<ExploreResult, String> {
    let Some(bound) = opts.exhaustive else {
        return Ok(seeds(scn, opts));
    };
    let refused = check_refusal(scn);
    let stateless_shard = || {
        opts.shard.map_or(Ok(()), |s| {
            Err(format!(
                "--shard {s}: the stateless search cannot be split (only seeds and the \
                 stateful checker can){}",
                refused
                    .as_ref()
                    .map_or(String::new(), |why| format!("; here: {why}"))
            ))
        })
    };
    let one_thread = |mut r: ExploreResult| {
        if let Some(j) = opts.checker_jobs {
            r.notes.push(format!(
                "--jobs {j}: the stateless search runs on one thread (only seeds and the \
                 stateful checker run in parallel)"
            ));
        }
        r
    };
    match (opts.engine, &refused) {
        (Engine::Stateless, _) => {
            stateless_shard()?;
            Ok(one_thread(exhaustive(scn, opts, bound)))
        }
        (Engine::Stateful, Some(why)) => Err(why.clone()),
        (Engine::Auto, Some(why)) => {
            stateless_shard()?;
            let mut r = exhaustive(scn, opts, bound);
            r.notes.insert(0, format!("stateless search: {why}"));
            Ok(one_thread(r))
        }
        (_, None) => stateful(scn, opts),
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
    let check = if opts.checker_jobs.is_some() || opts.shard.is_some() {
        let mut par = checker_of(opts).parallel(opts.checker_jobs.unwrap_or(0));
        if let Some(shard) = opts.shard {
            par = par.shard(shard);
        }
        check_scenario_parallel(scn, &par)?
    } else {
        check_scenario(scn, &checker_of(opts))?
    };
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
            key: Some(format!("{:016x}", f.key)),
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
    let mut notes: Vec<String> = check
        .unchecked
        .iter()
        .map(|i| format!("not checked by the stateful search: {i} (it counts over a whole run)"))
        .collect();
    let st = &out.stats;
    if st.workers > 0 {
        notes.push(format!(
            "parallel search with {} worker(s): breadth-first by levels; the states, end states \
             and failures do not depend on --jobs (they may differ from the sequential \
             depth-first search's with the reduction on)",
            st.workers
        ));
    }
    let shard = st.shard.as_ref().map(|s| ShardReport {
        index: s.index,
        count: s.count,
        seeds: None,
        split_depth: s.split_depth,
        roots: s.roots,
        prefix_states: s.prefix_states,
        prefix_matched: s.prefix_matched,
        prefix_transitions: s.prefix_transitions,
        prefix_end_states: s.prefix_end_states,
    });
    Ok(ExploreResult {
        runs: 0,
        failure: failures.first().cloned(),
        complete: st.complete && failures.is_empty(),
        coverage: Some(coverage),
        engine: "stateful".into(),
        states: Some(st.states_stored),
        transitions: Some(st.transitions),
        stats: Some(st.to_string()),
        reduction: Some(ReductionFigures {
            on: st.reduction,
            expanded: st.states_expanded,
            reduced: st.states_reduced,
            merged: st.local_steps_merged,
        }),
        failures,
        notes,
        command: String::new(),
        end_states: Some(st.end_states),
        matched: Some(st.states_matched),
        workers: (st.workers > 0).then_some(st.workers),
        shard,
        merged_shards: None,
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
                if !opts.shard.is_none_or(|s| s.owns(offset)) {
                    continue;
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
                            key: None,
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
    let runs = match (best.load(Ordering::SeqCst), opts.shard) {
        (u64::MAX, _) => runs.load(Ordering::SeqCst),
        (first_failing, None) => first_failing + 1,
        // This shard's seeds up to the first failing one.
        (first_failing, Some(s)) => {
            (first_failing - u64::from(s.index())) / u64::from(s.count()) + 1
        }
    };
    ExploreResult {
        runs,
        failures: failure.iter().cloned().collect(),
        failure,
        complete: false,
        coverage: None,
        engine: "seeds".into(),
        states: None,
        transitions: None,
        stats: None,
        reduction: None,
        notes: Vec::new(),
        command: String::new(),
        end_states: None,
        matched: None,
        workers: None,
        shard: None,
        merged_shards: None,
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
            key: None,
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
        engine: "stateless".into(),
        states: None,
        transitions: None,
        stats: None,
        reduction: None,
        notes: Vec::new(),
        command: String::new(),
        end_states: None,
        matched: None,
        workers: None,
        shard: None,
        merged_shards: None,
    }
}
