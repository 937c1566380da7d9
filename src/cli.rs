//! The `mkipc` command line: argument definitions and dispatch.
//!
//! Exit codes: 0 success; 1 the run failed (deadlock, broken invariant,
//! panic) or exploration found a failing schedule; 2 bad input (a scenario
//! file with errors, an unusable option).
//!
//! ```
//! use clap::Parser;
//! use mkipc::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["mkipc", "run", "pipeline", "--json"]).unwrap();
//! assert!(matches!(cli.command, Command::Run { .. }));
//! // The manual page comes from the same definitions.
//! assert!(mkipc::cli::man_page().contains("mkipc"));
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use mkipc_sim::{Schedule, SchedulerKind};

use crate::explore::{explore, replay_trail, Engine, ExploreOptions, Storage};
use crate::scenario::{self, Backend as _, RunOptions};

/// mkipc: Mach-like message passing you can simulate, explore and run.
#[derive(Parser, Debug)]
#[command(version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Which runtime runs a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The deterministic simulator (virtual time, replayable).
    Sim,
    /// Kernel tasks on OS threads (real time, not deterministic).
    Threads,
    /// Real Linux processes.
    Os,
}

/// The search behind `explore --exhaustive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// The stateful checker when the scenario allows it, else the stateless search.
    Auto,
    /// The stateful model checker: every reachable state once.
    Stateful,
    /// The stateless search (partial-order reduction, schedules re-run from the start).
    Stateless,
}

/// The stateful checker's visited set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StorageArg {
    /// Every state's encoding kept: no state missed.
    Exact,
    /// 64-bit hashes (SPIN's -DHC): the probability of a missed state is printed.
    Hash,
    /// A bit array of `--bits` bits, three per state (SPIN's -DBITSTATE): constant memory.
    Bitstate,
}

/// Scheduling policy of the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchedulerArg {
    /// Uniformly random choice at each step.
    Random,
    /// Probabilistic concurrency testing.
    Pct,
    /// Oldest runnable first.
    RoundRobin,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The capacity-model experiment: zero, bounded(1), bounded(8), unbounded.
    #[command(
        after_help = "Examples:\n  mkipc demo                   # tables and diagrams on stdout, SVG chart in ./mkipc-demo/\n  mkipc demo --out /tmp/demo   # the chart in /tmp/demo\n  mkipc demo --json            # the figures as JSON (schema mkipc-demo/1)"
    )]
    Demo {
        /// Directory for the demo's files (the SVG chart), made if missing;
        /// relative to the current directory.
        #[arg(long, value_name = "DIR", default_value = "mkipc-demo")]
        out: PathBuf,
        /// Seed of the drawn work times and the scheduler.
        #[arg(long, default_value_t = 2024)]
        seed: u64,
        /// Print the figures as one JSON document instead of the tables
        /// (schema `mkipc-demo/1`, see README).
        #[arg(long)]
        json: bool,
    },
    /// Run a scenario file once.
    #[command(
        after_help = "Examples:\n  mkipc run examples/scenarios/pipeline.toml\n  mkipc run examples/scenarios/deadlock.toml --seed 3 --mermaid deadlock.mmd\n  mkipc run examples/scenarios/rpc.toml --json --trace rpc.jsonl --perfetto rpc.json\n  mkipc run examples/scenarios/pipeline.toml --backend os --time-scale 0.5   # real processes\n  mkipc run examples/scenarios/deadlock.toml --backend threads --timeout 2\n  mkipc run examples/scenarios/rpc.toml --backend threads --mermaid rpc.md   # real timestamps\n  mkipc run capacity-zero --sweep capacity=0,1,8,unbounded --svg sweep.svg\n  mkipc run pipeline --backend sim --compare os   # where the real run differs from the model"
    )]
    Run {
        /// The scenario: a TOML file (see examples/scenarios/README.md), or
        /// the name of a bundled one when no such file exists (`mkipc scenarios`).
        scenario: PathBuf,
        /// Override a `[params]` value, e.g. `--set NJOBS=11` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = scenario::parse_override)]
        set: Vec<(String, i64)>,
        /// Seed (default: the scenario's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Which runtime runs it.
        #[arg(long, value_enum, default_value_t = Backend::Sim)]
        backend: Backend,
        /// Scheduling policy (simulator).
        #[arg(long, value_enum, default_value_t = SchedulerArg::Random)]
        scheduler: SchedulerArg,
        /// Replay a recorded schedule, as printed by a failure (`seed=..;choices=..`).
        #[arg(long)]
        replay: Option<String>,
        /// Write the trace as JSON lines.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Write the trace as a Mermaid sequence diagram.
        #[arg(long, value_name = "FILE")]
        mermaid: Option<PathBuf>,
        /// Write the trace for Perfetto / chrome://tracing.
        #[arg(long, value_name = "FILE")]
        perfetto: Option<PathBuf>,
        /// Write an SVG chart of every queue's length over time.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Print every process and queue row: a run of more than 40
        /// processes or queues prints a summary instead (totals, the top
        /// ten by messages and by time blocked); `--json` has every row.
        #[arg(long)]
        all_rows: bool,
        /// `--backend os`: every `work` and `sleep` lasts this many times its
        /// duration, in real time (0.1 runs ten times faster).
        #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
        time_scale: f64,
        /// `--backend os` and `threads`: stop whatever still runs after this
        /// many seconds (default: 60 on os, 10 on threads); the run then
        /// fails, naming what each process still waited for (a deadlock
        /// looks like a slow process).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        /// Run once per capacity, same seed, and print the runs side by side:
        /// `capacity=0,1,8,unbounded` (every queue) or `QUEUE.capacity=...`
        /// (one queue); with `--svg`, one chart of every run (simulator only).
        #[arg(long, value_name = "SPEC", value_parser = crate::sweep::parse_spec)]
        sweep: Option<crate::sweep::SweepSpec>,
        /// Also run it on this backend and report where the outcomes differ
        /// (verdict, messages per queue, each process's end, order of
        /// deliveries); `--backend` is the other side (default sim).
        #[arg(long, value_enum, value_name = "BACKEND")]
        compare: Option<Backend>,
    },
    /// Run a scenario under many schedules; stop at the first failure.
    #[command(
        after_help = "Examples:\n  mkipc explore examples/scenarios/deadlock.toml --seeds 1000\n  mkipc explore examples/scenarios/deadlock.toml --exhaustive\n  mkipc explore master-worker-select --exhaustive --set NJOBS=6 --set NWORKERS=3 --set CAP=2\n  mkipc explore dining-philosophers --exhaustive --keep-going --shortest\n  mkipc explore ring-rpc --exhaustive --jobs 0   # the parallel search, every core\n  mkipc explore ring-rpc --exhaustive --keep-going --shard 0/4 --json > shard-0.json   # ... 3/4\n  mkipc explore --merge shard-*.json   # the shards' reports as one"
    )]
    Explore {
        /// The scenario: a file, or a bundled scenario's name (as for `run`).
        #[arg(required_unless_present = "merge")]
        scenario: Option<PathBuf>,
        /// Override a `[params]` value, e.g. `--set NJOBS=11` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = scenario::parse_override)]
        set: Vec<(String, i64)>,
        /// How many seeds.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        first_seed: u64,
        /// Worker threads (0: every core). Seeds: default every core.
        /// `--exhaustive`: given, the stateful checker's parallel search
        /// (breadth-first by levels; the same states, end states and
        /// failures for every N); not given, its depth-first search.
        #[arg(long)]
        jobs: Option<usize>,
        /// Only shard I of N of the search: every N-th seed from offset I,
        /// or the stateful checker's states split at a level (write each
        /// shard's report with `--json`; `--merge` combines them).
        #[arg(long, value_name = "I/N")]
        shard: Option<mkipc_sim::check::Shard>,
        /// Combine the `--json` reports of the shards of one search into
        /// its verdict, statistics and every failure's replay line.
        #[arg(long, num_args = 1.., value_name = "REPORT", conflicts_with_all = ["scenario", "shard", "trail"])]
        merge: Vec<PathBuf>,
        /// Use the PCT scheduler.
        #[arg(long)]
        pct: bool,
        /// Every reachable state (the stateful checker) or every schedule
        /// up to `--bound` choice points (the stateless search), instead of seeds.
        #[arg(long)]
        exhaustive: bool,
        /// `--exhaustive`: which search (auto: the stateful checker when the
        /// scenario allows it, and the reason when it does not).
        #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
        engine: EngineArg,
        /// The stateless search: choice points branched on.
        #[arg(long, default_value_t = 10)]
        bound: usize,
        /// The stateless search: at most this many runs.
        #[arg(long, default_value_t = 100_000)]
        max_runs: u64,
        /// The stateful checker's visited set.
        #[arg(long, value_enum, default_value_t = StorageArg::Exact)]
        storage: StorageArg,
        /// `--storage bitstate`: the bit array's size, in bits.
        #[arg(long, default_value_t = 1 << 32)]
        bits: u64,
        /// The stateful checker stops, saying so, when its visited set and
        /// frontier reach this much memory (e.g. 512M, 4G; default: half of
        /// the memory available).
        #[arg(long, value_parser = parse_size)]
        max_memory: Option<usize>,
        /// The stateful checker's depth limit (steps from the start).
        #[arg(long)]
        max_depth: Option<usize>,
        /// Go on after a failure and report each distinct failure.
        #[arg(long)]
        keep_going: bool,
        /// Breadth-first: each failure's trail is a shortest one.
        #[arg(long)]
        shortest: bool,
        /// The stateful checker without its partial-order reduction (every
        /// enabled process expanded at every state), for comparing.
        #[arg(long)]
        no_reduction: bool,
        /// Replay a trail the stateful checker printed, step by step.
        #[arg(long, value_name = "TRAIL")]
        trail: Option<String>,
        /// Print the result as JSON (schema `mkipc-explore/1`).
        #[arg(long)]
        json: bool,
    },
    /// Report the wait-for cycles the topology allows, without running.
    ///
    /// Who can wait on whom (a blocking send on the receivers, a receive on
    /// the senders, a call on the server), each possible cycle named with
    /// its processes, queues, capacities and lines; or "deadlock-free by
    /// topology". Exits 0 when deadlock-free, 1 when a cycle (or a wait
    /// that may outlive its counterparts) is possible, 2 on a bad file.
    #[command(
        after_help = "Examples:\n  mkipc check examples/scenarios/deadlock.toml\n  mkipc check dining-philosophers --set ORDERED=1 --json"
    )]
    Check {
        /// The scenario: a file, or a bundled scenario's name (as for `run`).
        scenario: PathBuf,
        /// Override a `[params]` value, e.g. `--set NJOBS=11` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = scenario::parse_override)]
        set: Vec<(String, i64)>,
        /// Print the report as JSON (schema `mkipc-check/1`).
        #[arg(long)]
        json: bool,
    },
    /// Quick benchmarks with baselines measured in the same run.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  cargo run --release -- bench\n  cargo run --release -- bench --runs 11 --json > bench.json\n  cargo run --release -- bench explore --limit 20   # against SPIN"
    )]
    Bench {
        /// Another bench instead of the quick suite.
        #[command(subcommand)]
        what: Option<crate::bench_explore::BenchWhat>,
        /// Multiply the message counts (0.1 for a smoke run; at most 1000).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Run the whole suite this many times; the table shows medians,
        /// and each ratio to its peer as median [min-max].
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Print the figures as one JSON document instead of the table
        /// (schema `mkipc-bench/1`, see README).
        #[arg(long)]
        json: bool,
    },
    /// List the scenarios bundled in this binary, with their titles.
    ///
    /// `run` and `explore` take a bundled scenario's name where no file of
    /// that name exists (a path always wins).
    #[command(after_help = "Example:\n  mkipc scenarios\n  mkipc run capacity-zero")]
    Scenarios,
    /// Remove POSIX queues, FIFOs and run directories left by crashed os-backend runs.
    ///
    /// Prints each object removed and each found and left, with the reason
    /// (an object the system would not remove, a registry record it cannot
    /// read, a file that is no run's); exits 1 if anything was left.
    #[command(after_help = "Example:\n  mkipc cleanup")]
    Cleanup,
    /// Print the manual (roff), generated from these command definitions.
    ///
    /// Prints `mkipc(1)` and then one page per command, in one stream; with
    /// `--dir`, writes instead `mkipc.1` and `mkipc-run.1`, ... into that
    /// directory, for `man`.
    #[command(
        after_help = "Examples:\n  mkipc man | man -l -\n  mkipc man --dir ~/.local/share/man/man1   # then: man mkipc-run"
    )]
    Man {
        /// Write `mkipc.1` and a page per command into this directory (made if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  mkipc completions bash > ~/.local/share/bash-completion/completions/mkipc"
    )]
    Completions {
        /// The shell.
        shell: Shell,
    },
}

/// Parses the process arguments and runs the command; returns the exit code.
pub fn main() -> i32 {
    dispatch(Cli::parse())
}

/// Runs a parsed command; returns the exit code.
pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Demo { out, seed, json } => demo(&out, seed, json),
        Command::Run {
            scenario,
            set,
            seed,
            backend,
            scheduler,
            replay,
            trace,
            mermaid,
            perfetto,
            svg,
            json,
            all_rows,
            time_scale,
            timeout,
            sweep,
            compare,
        } => {
            if let Some(other) = compare {
                let others = trace.is_some() || mermaid.is_some() || perfetto.is_some();
                if sweep.is_some() || replay.is_some() || others || svg.is_some() {
                    eprintln!("error: --compare prints its own table: drop --sweep, --replay, --trace, --mermaid, --perfetto and --svg");
                    return 2;
                }
                let timeouts = (timeout, time_scale);
                return compare_cmd(&scenario, &set, seed, backend, other, timeouts, json);
            }
            if let Some(spec) = sweep {
                let others = trace.is_some() || mermaid.is_some() || perfetto.is_some();
                if backend != Backend::Sim || replay.is_some() || others {
                    eprintln!("error: --sweep runs the simulator, one run per capacity: drop --backend, --replay, --trace, --mermaid and --perfetto");
                    return 2;
                }
                return sweep_cmd(
                    &scenario,
                    &set,
                    seed,
                    scheduler,
                    &spec,
                    svg.as_deref(),
                    json,
                );
            }
            let outputs = Outputs {
                trace,
                mermaid,
                perfetto,
                svg,
                json,
                all_rows,
                time_scale,
                timeout,
            };
            run(
                &scenario,
                &set,
                seed,
                backend,
                scheduler,
                replay.as_deref(),
                &outputs,
            )
        }
        Command::Explore {
            scenario,
            set,
            seeds,
            first_seed,
            jobs,
            shard,
            merge,
            pct,
            exhaustive,
            engine,
            bound,
            max_runs,
            storage,
            bits,
            max_memory,
            max_depth,
            keep_going,
            shortest,
            no_reduction,
            trail,
            json,
        } => {
            if !merge.is_empty() {
                return merge_cmd(&merge, json);
            }
            let Some(scenario) = scenario else {
                eprintln!("error: explore needs a scenario (or --merge REPORTS...)");
                return 2;
            };
            let opts = ExploreOptions {
                first_seed,
                seeds,
                jobs: jobs.unwrap_or(0),
                pct,
                exhaustive: (exhaustive || trail.is_some()).then_some(bound),
                max_runs,
                progress: !json,
                engine: match engine {
                    EngineArg::Auto => Engine::Auto,
                    EngineArg::Stateful => Engine::Stateful,
                    EngineArg::Stateless => Engine::Stateless,
                },
                storage: match storage {
                    StorageArg::Exact => Storage::Exact,
                    StorageArg::Hash => Storage::HashCompact,
                    StorageArg::Bitstate => Storage::Bitstate { bits },
                },
                max_memory,
                max_depth,
                keep_going,
                shortest,
                reduction: !no_reduction,
                checker_jobs: jobs.filter(|_| exhaustive),
                shard,
            };
            match trail {
                Some(t) => replay_trail_cmd(&scenario, &set, &opts, &t),
                None => explore_cmd(&scenario, &set, &opts, json),
            }
        }
        Command::Check {
            scenario,
            set,
            json,
        } => check(&scenario, &set, json),
        Command::Bench { what: Some(w), .. } => crate::bench_explore::cli(w),
        Command::Bench {
            scale, runs, json, ..
        } => bench(scale, runs as usize, json),
        Command::Scenarios => {
            let width = crate::bundled::SCENARIOS
                .iter()
                .map(|b| b.name.len())
                .max()
                .unwrap_or(0);
            for b in crate::bundled::SCENARIOS {
                println!("{:<width$}  {}", b.name, b.title());
            }
            0
        }
        Command::Cleanup => {
            let r = mkipc_os::cleanup_stale();
            for q in &r.queues {
                println!("removed queue {}", q.escape_debug());
            }
            for f in &r.fifos {
                println!("removed FIFO {}", f.escape_debug());
            }
            for d in &r.runs {
                println!("removed run {d}");
            }
            for k in &r.kept {
                println!("kept {k}");
            }
            println!(
                "cleanup: {} queue(s), {} FIFO(s), {} run(s) removed; {} kept",
                r.queues.len(),
                r.fifos.len(),
                r.runs.len(),
                r.kept.len()
            );
            i32::from(!r.is_complete())
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "mkipc", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(&script);
            0
        }
    }
}

fn demo(out: &Path, seed: u64, json: bool) -> i32 {
    // Bad input, before the work: `create_dir_all` of a file said only
    // "File exists", naming the chart's path.
    if out.exists() && !out.is_dir() {
        eprintln!(
            "mkipc demo: --out {}: not a directory (the demo writes its chart into a directory, made if missing)",
            out.display()
        );
        return 2;
    }
    let exp = crate::demo::Experiment {
        seed,
        ..Default::default()
    };
    let results = match exp.run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mkipc demo: the simulation failed: {e}");
            return 1;
        }
    };
    if !json {
        print!("{}", crate::demo::render(&exp, &results));
    }
    let path = out.join("queue-length.svg");
    if let Err(e) = std::fs::create_dir_all(out)
        .and_then(|()| std::fs::write(&path, crate::demo::chart(&results)))
    {
        eprintln!("mkipc demo: cannot write {}: {e}", path.display());
        return 1;
    }
    if json {
        print_json(&crate::demo::json(&exp, &results, Some(&path)))
    } else {
        println!("\nChart of queue length over time: {}", path.display());
        0
    }
}

/// The manual pages: `mkipc(1)`, then one per command (`mkipc-run(1)`, ...).
fn man_pages() -> Vec<clap_mangen::Man> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("mkipc {}", env!("CARGO_PKG_VERSION"));
    let subs = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect::<Vec<_>>();
    std::iter::once(cmd)
        .chain(subs)
        .map(|c| clap_mangen::Man::new(c).source(source.clone()))
        .collect()
}

/// The manual of `mkipc` as roff text, from the clap definitions: the page
/// `mkipc(1)`, then one page per command (`mkipc-run(1)`, ...), in one
/// stream (`man -l -` shows them in turn).
pub fn man_page() -> String {
    let mut text = Vec::new();
    for page in man_pages() {
        // Rendering into a Vec cannot fail but for a bug in the renderer.
        let _ = page.render(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn man(dir: Option<&Path>) -> i32 {
    let Some(dir) = dir else {
        let _ = std::io::stdout().write_all(man_page().as_bytes());
        return 0;
    };
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        man_pages()
            .iter()
            .map(|page| page.generate_to(dir))
            .collect::<Result<Vec<_>, _>>()
    });
    match written {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            0
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the manual pages into {}: {e}",
                dir.display()
            );
            2
        }
    }
}

/// `mkipc bench --scale` at most: a thousand times the suite's message
/// counts already runs for hours; past it the counts saturate at `u64::MAX`
/// and the suite would never end.
const MAX_BENCH_SCALE: f64 = 1000.0;

fn bench(scale: f64, runs: usize, json: bool) -> i32 {
    if !(scale.is_finite() && scale > 0.0 && scale <= MAX_BENCH_SCALE) {
        eprintln!(
            "error: --scale must be a number > 0 and at most {MAX_BENCH_SCALE}, not {scale:?}"
        );
        return 2;
    }
    eprintln!("running the benchmark suite {runs} time(s) (a few seconds each)...");
    let rows = crate::bench::summarize(&crate::bench::run_many(scale, runs));
    if json {
        print_json(&crate::bench::json(scale, runs, rows))
    } else {
        print!("{}", crate::bench::render(&rows));
        0
    }
}

/// Prints a JSON document on stdout; returns the exit code.
fn print_json<T: serde::Serialize>(doc: &T) -> i32 {
    match serde_json::to_string_pretty(doc) {
        Ok(j) => {
            println!("{j}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Where `run` writes its outputs.
#[derive(Debug)]
struct Outputs {
    trace: Option<PathBuf>,
    mermaid: Option<PathBuf>,
    perfetto: Option<PathBuf>,
    svg: Option<PathBuf>,
    json: bool,
    /// `--all-rows`: every row of a large run's report, not its summary.
    all_rows: bool,
    time_scale: f64,
    timeout: Option<f64>,
}

/// `--timeout` on `--backend os` when not given, in seconds.
const OS_TIMEOUT: f64 = 60.0;
/// `--timeout` on `--backend threads` when not given, in seconds: every
/// example scenario ends in well under a second there.
const THREADS_TIMEOUT: f64 = 10.0;

/// The `--timeout` to apply, or the error to print.
fn timeout_of(given: Option<f64>, default: f64) -> Result<std::time::Duration, String> {
    let t = given.unwrap_or(default);
    if t.is_finite() && t > 0.0 && t < 1e9 {
        Ok(std::time::Duration::from_secs_f64(t))
    } else {
        Err("--timeout must be a number of seconds > 0 and below 1e9 (about 31 years)".to_string())
    }
}

/// A Mermaid diagram as a file's text: a fenced block in a Markdown file
/// (`.md`, `.markdown`), which GitHub and most editors render; the bare
/// diagram otherwise (`.mmd`, what `mmdc` and mermaid.live read).
fn mermaid_text(path: Option<&Path>, diagram: String) -> String {
    let markdown = path
        .and_then(Path::extension)
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"));
    if markdown {
        format!("```mermaid\n{diagram}```\n")
    } else {
        diagram
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Loads `mkipc run ARG`'s scenario: the file if there is one, else the
/// bundled scenario of that name (saying so on stderr).
fn load_scenario(arg: &Path, set: &[(String, i64)]) -> Result<scenario::Scenario, String> {
    use crate::bundled::{find, resolve, Source};
    match resolve(arg) {
        Source::Bundled(b) => {
            eprintln!(
                "mkipc: no file {}: running the bundled scenario {} (`mkipc scenarios` lists them)",
                arg.display(),
                b.name
            );
            scenario::parse_with(&b.file(), b.text, set).map_err(|e| e.to_string())
        }
        Source::File => {
            let bundled = arg.to_str().and_then(find);
            if let (Some(b), true) = (bundled, arg.exists()) {
                eprintln!(
                    "mkipc: running the file {}, not the bundled scenario {} (a path wins)",
                    arg.display(),
                    b.name
                );
            }
            scenario::load_with(arg, set).map_err(|e| {
                if bundled.is_none() && !arg.exists() {
                    format!(
                        "{e}\n(nor is it a bundled scenario's name: `mkipc scenarios` lists them)"
                    )
                } else {
                    e.to_string()
                }
            })
        }
    }
}

/// `mkipc run FILE --sweep SPEC` (see [`crate::sweep`]).
fn sweep_cmd(
    path: &Path,
    set: &[(String, i64)],
    seed: Option<u64>,
    scheduler: SchedulerArg,
    spec: &crate::sweep::SweepSpec,
    svg: Option<&Path>,
    json: bool,
) -> i32 {
    let scn = match load_scenario(path, set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let scheduler = match scheduler {
        SchedulerArg::Random => None,
        SchedulerArg::Pct => Some(SchedulerKind::pct()),
        SchedulerArg::RoundRobin => Some(SchedulerKind::RoundRobin),
    };
    let runs = match crate::sweep::sweep(&scn, spec, seed, scheduler) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Some(p) = svg {
        if let Err(e) = write_file(p, &crate::sweep::svg(&scn, spec, &runs)) {
            eprintln!("error: {e}");
            return 2;
        }
    }
    let text = if json {
        match serde_json::to_string_pretty(&crate::sweep::json(&scn, spec, &runs)) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        crate::sweep::render(&scn, spec, &runs)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    i32::from(runs.iter().any(|r| !r.outcome.result.ok))
}

/// `mkipc run FILE --backend A --compare B` (see [`crate::compare`]).
fn compare_cmd(
    path: &Path,
    set: &[(String, i64)],
    seed: Option<u64>,
    left: Backend,
    right: Backend,
    (timeout, time_scale): (Option<f64>, f64),
    json: bool,
) -> i32 {
    use crate::compare::Side;
    if left == right {
        eprintln!("error: --compare needs two different backends (--backend is the other side)");
        return 2;
    }
    let scn = match load_scenario(path, set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut sides = Vec::new();
    for b in [left, right] {
        let side = match b {
            Backend::Sim => Side::sim(&scn, seed),
            Backend::Threads => match timeout_of(timeout, THREADS_TIMEOUT) {
                Ok(t) => Side::threads(&scn, t),
                Err(e) => Err(e),
            },
            Backend::Os => match timeout_of(timeout, OS_TIMEOUT) {
                Ok(t) if time_scale.is_finite() && time_scale >= 0.0 => {
                    let opts = scenario::OsOptions {
                        seed,
                        time_scale,
                        timeout: t,
                    };
                    let guard = CleanupGuard::start();
                    let r = Side::os(&scn, &opts);
                    guard.finish();
                    r
                }
                Ok(_) => Err("--time-scale must be a number >= 0".into()),
                Err(e) => Err(e),
            },
        };
        match side {
            Ok(s) => sides.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    let c = crate::compare::compare(&sides[0], &sides[1]);
    let text = if json {
        match serde_json::to_string_pretty(&c) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        c.render()
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    i32::from(!c.same)
}

/// Whether any trace export was asked for.
fn wants_trace(out: &Outputs) -> bool {
    out.trace.is_some() || out.mermaid.is_some() || out.perfetto.is_some()
}

/// Writes the trace exports asked for; `Err(exit code)` when one fails.
fn write_traces(out: &Outputs, trace: &mkipc_sim::Trace) -> Result<(), i32> {
    let files = [
        (
            &out.trace,
            mkipc_sim::Trace::to_json_lines as fn(&mkipc_sim::Trace) -> String,
        ),
        (&out.mermaid, mkipc_sim::Trace::to_mermaid),
        (&out.perfetto, mkipc_sim::Trace::to_chrome_json),
    ];
    for (file, export) in files {
        if let Some(p) = file {
            let mut text = export(trace);
            if std::ptr::eq(file, &out.mermaid) {
                text = mermaid_text(Some(p), text);
            }
            if let Err(e) = write_file(p, &text) {
                eprintln!("error: {e}");
                return Err(2);
            }
        }
    }
    Ok(())
}

fn run(
    path: &Path,
    set: &[(String, i64)],
    seed: Option<u64>,
    backend: Backend,
    scheduler: SchedulerArg,
    replay: Option<&str>,
    out: &Outputs,
) -> i32 {
    let scn = match load_scenario(path, set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let result = match backend {
        Backend::Os | Backend::Threads if out.svg.is_some() => {
            eprintln!("error: the queue chart samples every queue after every step, which only the simulator can: drop --svg or use --backend sim (--trace, --mermaid and --perfetto work on every backend)");
            return 2;
        }
        Backend::Os => {
            if !(out.time_scale.is_finite() && out.time_scale >= 0.0) {
                eprintln!("error: --time-scale must be a number >= 0");
                return 2;
            }
            let timeout = match timeout_of(out.timeout, OS_TIMEOUT) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let opts = scenario::OsOptions {
                seed,
                time_scale: out.time_scale,
                timeout,
            };
            let guard = CleanupGuard::start();
            let result = if wants_trace(out) {
                scenario::run_os_traced(&scn, &opts).map(|(r, trace)| (r, Some(trace)))
            } else {
                scenario::OsBackend.run(&scn, &opts).map(|r| (r, None))
            };
            guard.finish();
            match result {
                Ok((r, trace)) => {
                    if let Some(trace) = trace {
                        if let Err(code) = write_traces(out, &trace) {
                            return code;
                        }
                    }
                    r
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            }
        }
        Backend::Threads => {
            let timeout = match timeout_of(out.timeout, THREADS_TIMEOUT) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            if wants_trace(out) {
                match scenario::run_threads_traced(&scn, timeout) {
                    Ok((r, trace)) => {
                        if let Err(code) = write_traces(out, &trace) {
                            return code;
                        }
                        r
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return 2;
                    }
                }
            } else {
                match scenario::ThreadsBackend.run(&scn, &scenario::ThreadsOptions { timeout }) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return 2;
                    }
                }
            }
        }
        Backend::Sim => {
            let replay = match replay.map(str::parse::<Schedule>).transpose() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: --replay: {e}");
                    return 2;
                }
            };
            let scheduler = match scheduler {
                SchedulerArg::Random => None,
                SchedulerArg::Pct => Some(SchedulerKind::pct()),
                SchedulerArg::RoundRobin => Some(SchedulerKind::RoundRobin),
            };
            let opts = RunOptions {
                seed,
                scheduler,
                replay,
            };
            let outcome = match scenario::SimBackend.run(&scn, &opts) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            if let Err(code) = write_traces(out, &outcome.report.trace) {
                return code;
            }
            if let Some(p) = &out.svg {
                let panels: Vec<_> = outcome
                    .series
                    .iter()
                    .zip(&scn.queues)
                    .map(|(s, q)| crate::svg::Panel {
                        title: format!("{} ({}): max {}", q.name, q.capacity, s.max),
                        samples: s.samples_ms(),
                        end_ms: outcome.report.end_time.as_secs_f64() * 1e3,
                    })
                    .collect();
                let svg = crate::svg::queue_chart(
                    &format!("{}: queue length over virtual time", scn.name),
                    &panels,
                );
                if let Err(e) = write_file(p, &svg) {
                    eprintln!("error: {e}");
                    return 2;
                }
            }
            outcome.result
        }
    };
    let mut stdout = std::io::stdout().lock();
    if out.json {
        match serde_json::to_string_pretty(&result) {
            Ok(j) => {
                let _ = writeln!(stdout, "{j}");
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        if !scn.description.is_empty() {
            for line in crate::demo::wrap(&scn.description, 88) {
                let _ = writeln!(stdout, "{line}");
            }
            let _ = writeln!(stdout);
        }
        let _ = write!(stdout, "{}", result.text(out.all_rows));
        if let (false, Some(s)) = (result.ok, &result.schedule) {
            let sets: String = set
                .iter()
                .map(|(name, value)| format!(" --set {name}={value}"))
                .collect();
            let _ = writeln!(
                stdout,
                "replay: mkipc run {}{sets} --replay '{s}'",
                path.display()
            );
        }
    }
    if result.ok {
        0
    } else {
        1
    }
}

/// The environment variable that makes a re-executed `mkipc` the cleanup
/// guard of the coordinator whose pid it holds (see [`guard_main`]).
pub const GUARD_ENV: &str = "MKIPC_CLEANUP_GUARD";

/// A helper process that removes what an os-backend run left behind when
/// this process dies without cleaning up: killed by `SIGTERM`, `SIGKILL`,
/// or by a Ctrl-C (the guard has its own process group, so the terminal's
/// `SIGINT` does not reach it). It waits for the end of its standard
/// input, which comes when this process exits, however it exits.
struct CleanupGuard(Option<std::process::Child>);

impl CleanupGuard {
    fn start() -> CleanupGuard {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let child = std::env::current_exe().ok().and_then(|exe| {
            Command::new(exe)
                .env(GUARD_ENV, std::process::id().to_string())
                .env_remove("MKIPC_OS_ROLE")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .ok()
        });
        CleanupGuard(child)
    }

    /// The run cleaned up after itself: tell the guard, and wait for it.
    fn finish(mut self) {
        if let Some(mut child) = self.0.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = child.wait();
        }
    }
}

/// Runs the cleanup guard if this process is one (the `mkipc` binary calls
/// this first thing in `main`); returns its exit code, or `None`.
pub fn guard_main() -> Option<i32> {
    use std::io::Read;
    let coordinator: u32 = std::env::var(GUARD_ENV).ok()?.parse().ok()?;
    let mut said = String::new();
    let _ = std::io::stdin().read_to_string(&mut said);
    if said == "done\n" {
        return Some(0);
    }
    // The coordinator died: its processes die with it (PR_SET_PDEATHSIG);
    // give them a moment, then remove every object of its runs (twice, for
    // a straggler that was still creating one).
    for pause in [200, 500] {
        std::thread::sleep(std::time::Duration::from_millis(pause));
        mkipc_os::cleanup_runs_of(coordinator);
    }
    Some(0)
}

/// `--max-memory`: bytes, with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("not a size: {s:?} (expected e.g. 512M or 4G)"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// The JSON of `mkipc explore --json`.
#[derive(serde::Serialize)]
struct ExploreJson<'a> {
    schema: &'static str,
    scenario: &'a str,
    #[serde(flatten)]
    result: &'a crate::explore::ExploreResult,
}

fn explore_cmd(path: &Path, set: &[(String, i64)], opts: &ExploreOptions, json: bool) -> i32 {
    let scn = match load_scenario(path, set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let r = match explore(&scn, opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    print_explore(&scn.file, &r, json)
}

/// `mkipc explore --merge REPORTS...`: the shards' reports as one.
fn merge_cmd(paths: &[PathBuf], json: bool) -> i32 {
    let mut reports = Vec::new();
    // A report is a few KiB per failure; the bound is for `/dev/zero`.
    const MAX_REPORT_SIZE: u64 = 256 << 20;
    for p in paths {
        let text = match scenario::read_bounded(p, MAX_REPORT_SIZE) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return 2;
            }
        };
        match serde_json::from_str::<crate::explore::Report>(&text) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!(
                    "error: {}: not a report of `mkipc explore --json`: {e}",
                    p.display()
                );
                return 2;
            }
        }
    }
    match crate::explore::merge(&reports) {
        Ok(m) => print_explore(&m.scenario, &m.result, json),
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Prints what `explore` found (text or JSON); its exit code.
fn print_explore(file: &str, r: &crate::explore::ExploreResult, json: bool) -> i32 {
    let code = i32::from(r.failure.is_some());
    if json {
        let doc = ExploreJson {
            schema: crate::explore::REPORT_SCHEMA,
            scenario: file,
            result: r,
        };
        return if print_json(&doc) == 0 { code } else { 2 };
    }
    if let (Some(n), false) = (r.merged_shards, r.engine == "stateful") {
        println!("merged {n} shard report(s) of: {}", r.command);
    }
    for note in &r.notes {
        println!("note: {note}");
    }
    if r.engine == "stateful" {
        // Distinct failing end states often share one reason (the same
        // deadlock reached with other messages in flight): one entry per
        // reason, with the first trail found (the shortest under
        // `--shortest`) and how many end states share it.
        let mut kinds: Vec<(&str, &crate::explore::FoundFailure, usize)> = Vec::new();
        for f in &r.failures {
            match kinds.iter_mut().find(|(reason, _, _)| *reason == f.reason) {
                Some(k) => k.2 += 1,
                None => kinds.push((&f.reason, f, 1)),
            }
        }
        match (kinds.len(), r.failures.len()) {
            (0, _) => println!("no failure ({})", r.coverage.as_deref().unwrap_or("")),
            (1, 1) => println!("found a failure:"),
            (k, n) => println!("found {n} failing end state(s), {k} distinct failure(s):"),
        }
        for (i, (reason, f, count)) in kinds.iter().enumerate() {
            if r.failures.len() > 1 {
                println!("{}. ({count} end state(s))", i + 1);
            }
            println!("  {}", reason.replace('\n', "\n  "));
            println!("trail: {}", f.schedule);
            println!("replay it step by step with:\n  {}", f.replay_command);
            if r.merged_shards.is_some() && *count > 1 {
                // A merge: every failure's replay line (from any shard).
                let same: Vec<_> = r.failures.iter().filter(|g| g.reason == *reason).collect();
                for g in same.iter().skip(1).take(19) {
                    println!("  {}", g.replay_command);
                }
                if same.len() > 20 {
                    println!(
                        "  ... and {} more (--json lists every one)",
                        same.len() - 20
                    );
                }
            }
        }
        if let Some(stats) = &r.stats {
            println!("{stats}");
        }
        return code;
    }
    match &r.failure {
        None => {
            let what = match &r.coverage {
                Some(coverage) => coverage.as_str(),
                None => "seeds",
            };
            println!("no failure in {} runs ({what})", r.runs);
        }
        Some(f) => {
            println!(
                "found a failing schedule after {} runs, seed {}:",
                r.runs, f.seed
            );
            println!("  {}", f.reason.replace('\n', "\n  "));
            println!("schedule: {}", f.schedule);
            println!("replay it with:\n  {}", f.replay_command);
        }
    }
    code
}

fn replay_trail_cmd(path: &Path, set: &[(String, i64)], opts: &ExploreOptions, trail: &str) -> i32 {
    let scn = match load_scenario(path, set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match replay_trail(&scn, opts, trail) {
        Ok(replay) => {
            println!("{replay}");
            i32::from(replay.failure.is_some())
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn check(path: &Path, set: &[(String, i64)], json: bool) -> i32 {
    let scn = match load_scenario(path, set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let report = scenario::check_topology(&scn);
    if json {
        if print_json(&report) != 0 {
            return 2;
        }
    } else {
        print!("{report}");
    }
    report.exit_code()
}
