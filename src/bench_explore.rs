//! `mkipc bench explore`: mkipc's exhaustive search against the SPIN model
//! checker, on the same models, in the same run.
//!
//! Every model lives twice in `bench/models/`: a scenario file
//! (`NAME.toml`, its size a `[params]` value) and its Promela twin
//! (`NAME.pml`, the same processes, capacities and checks, its size a
//! `-DPARAM=...` macro). Both are carried in the binary, so the bench runs
//! from any directory. For each model and each checker the bench tries
//! increasing sizes (doubling from the model's first size, then bisecting
//! between the largest size verified and the first that was not) and
//! reports the largest size verified within the time limit.
//!
//! Each try is a child process, pinned to CPU 0 with `taskset -c 0` when
//! `taskset` is there (the bench itself need not be started pinned), in a
//! process group of its own, killed (the whole group) when it outlives the
//! limit, and killed by the kernel if the bench dies first
//! (`PR_SET_PDEATHSIG`). mkipc's side is `mkipc bench explore --child NAME
//! --size N`, which calls [`mkipc_search`], the one library function the
//! bench measures. SPIN's side is `spin -a`, `gcc -O2 -DSAFETY` and `./pan`
//! in a temporary directory that is removed at the end, also on a timeout
//! and on Ctrl-C (the CLI catches SIGINT/SIGTERM, kills the child and
//! cleans up). Without `spin` on `PATH` the bench says "spin not installed"
//! and measures mkipc alone.
//!
//! What counts as verified: the checker finished within the limit, covered
//! the whole space, and gave the model's expected verdict ("ok" for a
//! correct model, "deadlock" for one whose deadlock is reachable). SPIN's
//! limit covers `./pan` only (its compile is timed apart, capped by the
//! same limit); mkipc's covers the child's search.
//!
//! ```
//! use mkipc::bench_explore::MODELS;
//!
//! // Every model is a scenario file and its Promela twin, carried in the binary.
//! for m in MODELS {
//!     assert!(!m.toml.is_empty() && !m.pml.is_empty(), "{}", m.name);
//! }
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::explore::{explore, ExploreOptions};
use crate::scenario::{self, Scenario};

/// The JSON schema name of [`BenchReport`].
pub const SCHEMA: &str = "mkipc-bench-explore/1";

/// SPIN's `-DMEMLIM` (megabytes): a state space larger than this ends
/// the try as "incomplete (memory)" instead of filling a shared machine.
pub const SPIN_MEMLIM_MB: u64 = 4096;

/// What a model is expected to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// No deadlock, no failed assertion, on every schedule.
    Ok,
    /// A deadlock is reachable.
    Deadlock,
}

/// One benchmark model: a scenario file and its Promela twin at one
/// setting of their fixed parameters, grown along one size parameter.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// The name `--models` takes.
    pub name: &'static str,
    /// The file stem in `bench/models/`.
    pub file: &'static str,
    /// The scenario file's text.
    pub toml: &'static str,
    /// The Promela twin's text.
    pub pml: &'static str,
    /// The parameter the bench grows.
    pub param: &'static str,
    /// The other parameters, held at these values.
    pub fixed: &'static [(&'static str, i64)],
    /// The first size tried.
    pub start: i64,
    /// The largest size tried.
    pub max: i64,
    /// The verdict both checkers should give at every size.
    pub expect: Expect,
}

const PC_TOML: &str = include_str!("../bench/models/producer-consumer.toml");
const PC_PML: &str = include_str!("../bench/models/producer-consumer.pml");
const PIPE_TOML: &str = include_str!("../bench/models/pipeline.toml");
const PIPE_PML: &str = include_str!("../bench/models/pipeline.pml");
const MW_TOML: &str = include_str!("../bench/models/master-worker.toml");
const MW_PML: &str = include_str!("../bench/models/master-worker.pml");
const MWB_TOML: &str = include_str!("../bench/models/master-worker-buggy.toml");
const MWB_PML: &str = include_str!("../bench/models/master-worker-buggy.pml");
const RING_TOML: &str = include_str!("../bench/models/ring.toml");
const RING_PML: &str = include_str!("../bench/models/ring.pml");
const DINING_TOML: &str = include_str!("../bench/models/dining.toml");
const DINING_PML: &str = include_str!("../bench/models/dining.pml");

/// Sizes of a model that deadlocks stop here: past the first, a larger
/// size only shows how fast the deadlock is found again.
const DEADLOCK_MAX: i64 = 1 << 10;

/// Every model of the bench, in the order it runs them.
pub const MODELS: &[Model] = &[
    Model {
        name: "producer-consumer",
        file: "producer-consumer",
        toml: PC_TOML,
        pml: PC_PML,
        param: "N",
        fixed: &[("CAP", 2)],
        start: 1,
        max: 1 << 22,
        expect: Expect::Ok,
    },
    Model {
        name: "producer-consumer-cap0",
        file: "producer-consumer",
        toml: PC_TOML,
        pml: PC_PML,
        param: "N",
        fixed: &[("CAP", 0)],
        start: 1,
        max: 1 << 22,
        expect: Expect::Ok,
    },
    Model {
        name: "producer-consumer-cap10",
        file: "producer-consumer",
        toml: PC_TOML,
        pml: PC_PML,
        param: "N",
        fixed: &[("CAP", 10)],
        start: 1,
        max: 1 << 22,
        expect: Expect::Ok,
    },
    Model {
        name: "pipeline",
        file: "pipeline",
        toml: PIPE_TOML,
        pml: PIPE_PML,
        param: "N",
        fixed: &[("CAP", 2)],
        start: 1,
        max: 1 << 22,
        expect: Expect::Ok,
    },
    Model {
        name: "master-worker",
        file: "master-worker",
        toml: MW_TOML,
        pml: MW_PML,
        param: "NJOBS",
        fixed: &[("NW", 3), ("CAP", 2)],
        start: 1,
        max: 1 << 12,
        expect: Expect::Ok,
    },
    Model {
        name: "master-worker-buggy",
        file: "master-worker-buggy",
        toml: MWB_TOML,
        pml: MWB_PML,
        param: "NJOBS",
        fixed: &[("NW", 1), ("CAP", 1)],
        start: 4,
        max: DEADLOCK_MAX,
        expect: Expect::Deadlock,
    },
    Model {
        name: "ring",
        file: "ring",
        toml: RING_TOML,
        pml: RING_PML,
        param: "ROUNDS",
        fixed: &[],
        start: 1,
        max: DEADLOCK_MAX,
        expect: Expect::Deadlock,
    },
    Model {
        name: "dining-naive",
        file: "dining",
        toml: DINING_TOML,
        pml: DINING_PML,
        param: "MEALS",
        fixed: &[("ORDERED", 0)],
        start: 1,
        max: DEADLOCK_MAX,
        expect: Expect::Deadlock,
    },
    Model {
        name: "dining-ordered",
        file: "dining",
        toml: DINING_TOML,
        pml: DINING_PML,
        param: "MEALS",
        fixed: &[("ORDERED", 1)],
        start: 1,
        max: 1 << 12,
        expect: Expect::Ok,
    },
];

impl Model {
    /// The model named `name`, if there is one.
    pub fn find(name: &str) -> Option<&'static Model> {
        MODELS.iter().find(|m| m.name == name)
    }

    /// The `--set` / `-D` values at `size`: the fixed ones, then the size.
    pub fn params(&self, size: i64) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .fixed
            .iter()
            .map(|&(k, v)| (k.to_string(), v))
            .collect();
        v.push((self.param.to_string(), size));
        v
    }

    /// The scenario at `size`.
    pub fn scenario(&self, size: i64) -> Result<Scenario, String> {
        let file = format!("bench/models/{}.toml", self.file);
        scenario::parse_with(&file, self.toml, &self.params(size)).map_err(|e| e.to_string())
    }
}

/// A checker's answer on one model at one size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum Verdict {
    /// The whole space was covered: no deadlock, no failed assertion.
    Ok,
    /// A deadlock (SPIN: an invalid end state).
    Deadlock,
    /// A failed assertion.
    Assertion,
    /// Another failure (the text says which).
    Error(String),
    /// Finished without covering the whole space (why).
    Incomplete(String),
    /// Killed at the time limit.
    Timeout,
    /// The checker could not be run (why).
    Failed(String),
}

impl Verdict {
    fn short(&self) -> String {
        match self {
            Verdict::Ok => "ok".into(),
            Verdict::Deadlock => "deadlock".into(),
            Verdict::Assertion => "assert".into(),
            Verdict::Error(_) => "error".into(),
            Verdict::Incomplete(why) => format!("cut ({why})"),
            Verdict::Timeout => "timeout".into(),
            Verdict::Failed(_) => "failed".into(),
        }
    }

    fn is(&self, expect: Expect) -> bool {
        matches!(
            (self, expect),
            (Verdict::Ok, Expect::Ok) | (Verdict::Deadlock, Expect::Deadlock)
        )
    }
}

/// Which checker a try ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// SPIN's compiled `pan`.
    Spin,
    /// mkipc's exhaustive search ([`mkipc_search`]).
    Mkipc,
}

/// One checker on one model at one size.
#[derive(Clone, Debug, Serialize)]
pub struct Try {
    /// Which checker.
    pub tool: Tool,
    /// The size.
    pub size: i64,
    /// Its answer.
    pub verdict: Verdict,
    /// States stored (SPIN; mkipc once its engine stores states).
    pub states: Option<u64>,
    /// Transitions (SPIN).
    pub transitions: Option<u64>,
    /// Complete runs of the model (mkipc's stateless search).
    pub runs: Option<u64>,
    /// Seconds the search took (SPIN: `pan` as it reports it; mkipc: the
    /// search in the child; a timeout: the limit).
    pub secs: f64,
    /// SPIN: seconds for `spin -a` and `gcc`.
    pub compile_secs: Option<f64>,
}

impl Try {
    /// States (else runs) per second, when the search took measurable time.
    pub fn rate(&self) -> Option<f64> {
        let n = self.states.or(self.runs)?;
        (self.secs >= 0.005 && self.verdict != Verdict::Timeout).then(|| n as f64 / self.secs)
    }
}

/// One model's tries and what they showed.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// The size parameter.
    pub param: String,
    /// The fixed parameters.
    pub fixed: Vec<(String, i64)>,
    /// The expected verdict.
    pub expect: Expect,
    /// Every try, in the order run.
    pub tries: Vec<Try>,
    /// SPIN's largest size verified within the limit (`None`: none, or
    /// SPIN not run).
    pub spin_largest: Option<i64>,
    /// mkipc's largest size verified within the limit.
    pub mkipc_largest: Option<i64>,
    /// The largest size the bench would try (the model's, or `--max-size`).
    pub max_size: i64,
    /// `mkipc_largest / spin_largest`.
    pub ratio: Option<f64>,
    /// Sizes where the two checkers gave different final verdicts (both
    /// finished).
    pub disagree: Vec<i64>,
}

/// The whole bench.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The time limit of one try, in seconds.
    pub limit_secs: f64,
    /// Whether each try was pinned with `taskset -c 0`.
    pub pinned: bool,
    /// SPIN's version line, or `None` when it is not installed.
    pub spin: Option<String>,
    /// What measured mkipc's side.
    pub engine: &'static str,
    /// One entry per model.
    pub models: Vec<ModelReport>,
}

/// What the mkipc side measures (printed with the results).
pub const ENGINE: &str =
    "mkipc::bench_explore::mkipc_search -> mkipc::explore::explore, exhaustive (the stateful checker, exact storage; the stateless DPOR search where the checker refuses a model)";

/// How to run the bench.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The time limit of one try.
    pub limit: Duration,
    /// The models to run (empty: all of [`MODELS`]).
    pub models: Vec<String>,
    /// No size past this one (on top of each model's own maximum).
    pub max_size: Option<i64>,
    /// The `mkipc` binary that runs mkipc's tries.
    pub mkipc_exe: PathBuf,
    /// Skip SPIN even if it is installed.
    pub no_spin: bool,
    /// Print each try on stderr as it ends.
    pub progress: bool,
}

/// Why the bench stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum BenchError {
    /// An unknown model name (with the known ones).
    UnknownModel(String),
    /// Bad options.
    Usage(String),
    /// The temporary directory could not be made.
    TempDir(String),
    /// Ctrl-C (or SIGTERM): the child was killed, the files removed.
    Interrupted,
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::UnknownModel(m) => {
                let known: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
                write!(f, "unknown model `{m}` (known: {})", known.join(", "))
            }
            BenchError::Usage(s) => write!(f, "{s}"),
            BenchError::TempDir(s) => write!(f, "cannot make a temporary directory: {s}"),
            BenchError::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for BenchError {}

/// The search the bench measures on mkipc's side, and the only call into
/// the engine: [`explore`] with `--exhaustive --bound 1000000`, no run
/// limit, one job. Switching the bench to another engine is a change here.
pub fn mkipc_search(scn: &Scenario) -> Result<Try, String> {
    let opts = ExploreOptions {
        exhaustive: Some(1_000_000),
        max_runs: u64::MAX,
        jobs: 1,
        progress: false,
        ..ExploreOptions::default()
    };
    let start = Instant::now();
    let r = explore(scn, &opts)?;
    let secs = start.elapsed().as_secs_f64();
    let verdict = match &r.failure {
        Some(f) if f.deadlock => Verdict::Deadlock,
        Some(f) if f.reason.contains("assertion failed") => Verdict::Assertion,
        Some(f) => Verdict::Error(f.reason.clone()),
        None if r.complete => Verdict::Ok,
        None => Verdict::Incomplete(r.coverage.clone().unwrap_or_default()),
    };
    Ok(Try {
        tool: Tool::Mkipc,
        size: 0,
        verdict,
        states: r.states,
        transitions: r.transitions,
        runs: (r.engine != "stateful").then_some(r.runs),
        secs,
        compile_secs: None,
    })
}

/// `mkipc bench explore --child NAME --size N`: one mkipc try, printed as
/// one JSON line; returns the exit code.
pub fn child_main(name: &str, size: i64) -> i32 {
    let Some(model) = Model::find(name) else {
        eprintln!("error: {}", BenchError::UnknownModel(name.into()));
        return 2;
    };
    let result = model.scenario(size).and_then(|scn| mkipc_search(&scn));
    match result {
        Ok(mut t) => {
            t.size = size;
            match serde_json::to_string(&t) {
                Ok(line) => {
                    println!("{line}");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP stop the bench cleanly: the running
/// child is killed and the temporary files removed before [`run`] returns
/// [`BenchError::Interrupted`]. For the CLI; a library caller that wants
/// the same calls it once.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `on_signal` only stores to an atomic, which is
        // async-signal-safe; `signal` has no other precondition.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, BenchError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("mkipc-bench-explore-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)
            .map_err(|e| BenchError::TempDir(format!("{}: {e}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a child ended.
enum Ended {
    /// It exited (its status).
    Exited(ExitStatus, Duration),
    /// It outlived the limit and was killed.
    TimedOut,
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A command for `program`, pinned to CPU 0 when `pin`.
fn command(pin: bool, program: &Path) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `cmd` with stdout and stderr to `out`, killing its whole process
/// group at `limit` or on an interrupt.
fn run_limited(mut cmd: Command, out: &Path, limit: Duration) -> Result<Ended, String> {
    use std::os::unix::process::CommandExt;
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0);
    // SAFETY: between fork and exec the closure only calls `prctl`, which
    // is async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let pid = child.id() as libc::pid_t;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Ended::Exited(status, start.elapsed())),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let interrupted = INTERRUPTED.load(Ordering::SeqCst);
        if interrupted || start.elapsed() >= limit {
            // SAFETY: `pid` is our child, not yet waited for, so its
            // process group (of which it is the leader) is still ours.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
            let _ = child.wait();
            if interrupted {
                return Err("interrupted".into());
            }
            return Ok(Ended::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// One mkipc try at `size`, in a child.
fn mkipc_try(model: &Model, size: i64, limit: Duration, exe: &Path, pin: bool, dir: &Path) -> Try {
    let mut cmd = command(pin, exe);
    cmd.args(["bench", "explore", "--child", model.name, "--size"])
        .arg(size.to_string());
    let out = dir.join("mkipc.out");
    let timeout = |verdict| Try {
        tool: Tool::Mkipc,
        size,
        verdict,
        states: None,
        transitions: None,
        runs: None,
        secs: limit.as_secs_f64(),
        compile_secs: None,
    };
    match run_limited(cmd, &out, limit) {
        Err(e) => timeout(Verdict::Failed(e)),
        Ok(Ended::TimedOut) => timeout(Verdict::Timeout),
        Ok(Ended::Exited(status, _)) => {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let parsed = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
            match parsed.and_then(|v| parse_child(&v)) {
                Some(mut t) if status.success() => {
                    t.size = size;
                    t
                }
                _ => timeout(Verdict::Failed(format!(
                    "{status}: {}",
                    text.trim().lines().last().unwrap_or("")
                ))),
            }
        }
    }
}

fn parse_child(v: &serde_json::Value) -> Option<Try> {
    let verdict = match v["verdict"]["kind"].as_str()? {
        "ok" => Verdict::Ok,
        "deadlock" => Verdict::Deadlock,
        "assertion" => Verdict::Assertion,
        "error" => Verdict::Error(v["verdict"]["detail"].as_str()?.into()),
        "incomplete" => Verdict::Incomplete(v["verdict"]["detail"].as_str()?.into()),
        "timeout" => Verdict::Timeout,
        _ => Verdict::Failed(v["verdict"]["detail"].as_str().unwrap_or("").into()),
    };
    Some(Try {
        tool: Tool::Mkipc,
        size: v["size"].as_i64()?,
        verdict,
        states: v["states"].as_u64(),
        transitions: v["transitions"].as_u64(),
        runs: v["runs"].as_u64(),
        secs: v["secs"].as_f64()?,
        compile_secs: None,
    })
}

/// What `pan` printed, read back.
#[derive(Debug, Default, PartialEq)]
pub struct PanOutput {
    /// `errors: N`.
    pub errors: Option<u64>,
    /// `N states, stored`.
    pub states: Option<u64>,
    /// `N transitions`.
    pub transitions: Option<u64>,
    /// `pan: elapsed time S seconds`.
    pub elapsed: Option<f64>,
    /// An invalid end state was found.
    pub invalid_end: bool,
    /// An assertion was violated.
    pub assertion: bool,
    /// `max search depth too small`.
    pub depth_cut: bool,
    /// The memory limit stopped it.
    pub memory_cut: bool,
    /// The first `pan:N:` error line.
    pub first_error: Option<String>,
}

/// Reads `pan`'s output.
pub fn parse_pan(text: &str) -> PanOutput {
    let mut p = PanOutput::default();
    let number_before = |line: &str, word: &str| -> Option<u64> {
        let i = line.find(word)?;
        line[..i].split_whitespace().last()?.parse().ok()
    };
    for line in text.lines() {
        if let Some(i) = line.find("errors: ") {
            p.errors = line[i + 8..].trim().parse().ok();
        }
        if line.contains("states, stored") {
            p.states = number_before(line, "states, stored");
        }
        if line.contains("transitions (=") {
            p.transitions = number_before(line, "transitions (=");
        }
        if let Some(rest) = line.trim().strip_prefix("pan: elapsed time ") {
            p.elapsed = rest.split_whitespace().next().and_then(|s| s.parse().ok());
        }
        let pan_says = line.starts_with("pan:");
        if pan_says && line.contains("invalid end state") {
            p.invalid_end = true;
        }
        if pan_says && line.contains("assertion violated") {
            p.assertion = true;
        }
        if line.contains("max search depth too small") {
            p.depth_cut = true;
        }
        if line.contains("MEMLIM") || line.contains("out of memory") {
            p.memory_cut = true;
        }
        if p.first_error.is_none()
            && line.starts_with("pan:")
            && line[4..].starts_with(|c: char| c.is_ascii_digit())
        {
            p.first_error = Some(line.trim().to_string());
        }
    }
    p
}

impl PanOutput {
    /// The verdict this output means.
    pub fn verdict(&self) -> Verdict {
        if self.invalid_end {
            Verdict::Deadlock
        } else if self.assertion {
            Verdict::Assertion
        } else if let Some(e) = &self.first_error {
            Verdict::Error(e.clone())
        } else if self.memory_cut {
            Verdict::Incomplete(format!("-DMEMLIM={SPIN_MEMLIM_MB}"))
        } else if self.depth_cut {
            Verdict::Incomplete("depth".into())
        } else if self.errors == Some(0) && self.states.is_some() {
            Verdict::Ok
        } else {
            Verdict::Failed("pan printed no result".into())
        }
    }
}

/// `pan -m` depths tried in turn while pan says the depth was too small.
const PAN_DEPTHS: [u64; 3] = [1_000_000, 10_000_000, 50_000_000];

/// One SPIN try at `size`: compile, then run `pan`, in `dir`.
fn spin_try(model: &Model, size: i64, limit: Duration, pin: bool, dir: &Path) -> Try {
    let mut t = Try {
        tool: Tool::Spin,
        size,
        verdict: Verdict::Failed(String::new()),
        states: None,
        transitions: None,
        runs: None,
        secs: 0.0,
        compile_secs: None,
    };
    let fail = |mut t: Try, why: String| {
        t.verdict = Verdict::Failed(why);
        t
    };
    let work = dir.join(format!("spin-{}-{size}", model.name));
    if let Err(e) = std::fs::create_dir_all(&work) {
        return fail(t, e.to_string());
    }
    let pml = work.join("model.pml");
    if let Err(e) = std::fs::write(&pml, model.pml) {
        return fail(t, e.to_string());
    }
    let defines: Vec<String> = model
        .params(size)
        .iter()
        .map(|(k, v)| format!("-D{k}={v}"))
        .collect();
    let compile_start = Instant::now();
    let mut spin = command(pin, Path::new("spin"));
    spin.current_dir(&work)
        .args(&defines)
        .args(["-a", "model.pml"]);
    let mut gcc = command(pin, Path::new("gcc"));
    gcc.current_dir(&work).args([
        "-O2",
        "-DSAFETY",
        &format!("-DMEMLIM={SPIN_MEMLIM_MB}"),
        "-o",
        "pan",
        "pan.c",
    ]);
    for (what, cmd) in [("spin -a", spin), ("gcc", gcc)] {
        let out = work.join(format!("{}.out", what.replace(' ', "")));
        match run_limited(cmd, &out, limit.max(Duration::from_secs(60))) {
            Ok(Ended::Exited(s, _)) if s.success() => {}
            Ok(Ended::Exited(s, _)) => {
                let text = std::fs::read_to_string(&out).unwrap_or_default();
                return fail(t, format!("{what}: {s}: {}", text.trim()));
            }
            Ok(Ended::TimedOut) => return fail(t, format!("{what} timed out")),
            Err(e) => return fail(t, format!("{what}: {e}")),
        }
    }
    t.compile_secs = Some(compile_start.elapsed().as_secs_f64());
    for depth in PAN_DEPTHS {
        let mut pan = command(pin, &work.join("pan"));
        pan.current_dir(&work).arg(format!("-m{depth}"));
        let out = work.join("pan.out");
        match run_limited(pan, &out, limit) {
            Err(e) => return fail(t, e),
            Ok(Ended::TimedOut) => {
                // Nothing of an earlier run cut by its depth is kept.
                t.verdict = Verdict::Timeout;
                t.states = None;
                t.transitions = None;
                t.secs = limit.as_secs_f64();
                return t;
            }
            Ok(Ended::Exited(_, wall)) => {
                let text = std::fs::read_to_string(&out).unwrap_or_default();
                let p = parse_pan(&text);
                t.states = p.states;
                t.transitions = p.transitions;
                t.secs = p.elapsed.unwrap_or(wall.as_secs_f64());
                t.verdict = p.verdict();
                if !(p.depth_cut && t.verdict == Verdict::Incomplete("depth".into())) {
                    break;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    t
}

/// One SPIN try of `model` at `size` (compile, then `pan` capped at
/// `limit`), pinned when `taskset` is there, in a temporary directory
/// removed before it returns. `None` when `spin` is not installed.
pub fn spin_one(model: &Model, size: i64, limit: Duration) -> Result<Option<Try>, BenchError> {
    if on_path("spin").is_none() {
        return Ok(None);
    }
    let dir = TempDir::new()?;
    let t = spin_try(model, size, limit, on_path("taskset").is_some(), &dir.0);
    Ok(Some(t))
}

/// One mkipc try of `model` at `size`, run by the binary `exe` as a child
/// (`exe bench explore --child ...`) capped at `limit`.
pub fn mkipc_one(model: &Model, size: i64, limit: Duration, exe: &Path) -> Result<Try, BenchError> {
    let dir = TempDir::new()?;
    Ok(mkipc_try(
        model,
        size,
        limit,
        exe,
        on_path("taskset").is_some(),
        &dir.0,
    ))
}

/// Whether a try verified its model (finished, complete, expected verdict).
fn verified(t: &Try, expect: Expect) -> bool {
    t.verdict.is(expect)
}

/// Doubles from the model's first size while tries verify, then bisects
/// between the largest verified size and the first that was not, to
/// within a quarter.
fn grow(
    model: &Model,
    max: i64,
    mut one: impl FnMut(i64) -> Result<Try, BenchError>,
    tries: &mut Vec<Try>,
) -> Result<Option<i64>, BenchError> {
    let mut lo: Option<i64> = None;
    let mut size = model.start.min(max);
    let mut hi = loop {
        let t = one(size)?;
        let ok = verified(&t, model.expect);
        let hopeless = matches!(t.verdict, Verdict::Failed(_) | Verdict::Error(_))
            || (!ok
                && matches!(
                    t.verdict,
                    Verdict::Ok | Verdict::Deadlock | Verdict::Assertion
                ));
        tries.push(t);
        if hopeless {
            // A wrong verdict or a checker that cannot run: growing shows
            // nothing more.
            return Ok(lo);
        }
        if !ok {
            break Some(size);
        }
        lo = Some(size);
        if size >= max {
            return Ok(lo);
        }
        size = size.saturating_mul(2).min(max);
    };
    while let (Some(l), Some(h)) = (lo, hi) {
        if h - l <= (l / 4).max(1) {
            break;
        }
        let mid = l + (h - l) / 2;
        let t = one(mid)?;
        let ok = verified(&t, model.expect);
        tries.push(t);
        if ok {
            lo = Some(mid);
        } else {
            hi = Some(mid);
        }
    }
    Ok(lo)
}

/// Runs the bench.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    if opts.limit.is_zero() {
        return Err(BenchError::Usage(
            "--limit must be more than 0 seconds".into(),
        ));
    }
    let models: Vec<&Model> = if opts.models.is_empty() {
        MODELS.iter().collect()
    } else {
        opts.models
            .iter()
            .map(|n| Model::find(n).ok_or_else(|| BenchError::UnknownModel(n.clone())))
            .collect::<Result<_, _>>()?
    };
    let pin = on_path("taskset").is_some();
    let spin = if opts.no_spin { None } else { spin_version() };
    let dir = TempDir::new()?;
    let mut reports = Vec::new();
    for model in models {
        let max = opts.max_size.map_or(model.max, |m| m.min(model.max)).max(1);
        let mut tries = Vec::new();
        let say = |t: &Try| {
            if opts.progress {
                eprintln!(
                    "{} {}={}: {:?} {} in {:.2} s",
                    model.name,
                    model.param,
                    t.size,
                    t.tool,
                    t.verdict.short(),
                    t.secs
                );
            }
        };
        let spin_largest = if spin.is_some() {
            grow(
                model,
                max,
                |size| {
                    let t = spin_try(model, size, opts.limit, pin, &dir.0);
                    if interrupted() {
                        return Err(BenchError::Interrupted);
                    }
                    say(&t);
                    Ok(t)
                },
                &mut tries,
            )?
        } else {
            None
        };
        let mkipc_largest = grow(
            model,
            max,
            |size| {
                let t = mkipc_try(model, size, opts.limit, &opts.mkipc_exe, pin, &dir.0);
                if interrupted() {
                    return Err(BenchError::Interrupted);
                }
                say(&t);
                Ok(t)
            },
            &mut tries,
        )?;
        let ratio = match (mkipc_largest, spin_largest) {
            (Some(m), Some(s)) if s > 0 => Some(m as f64 / s as f64),
            (None, Some(_)) => Some(0.0),
            _ => None,
        };
        let finished = |t: &&Try| {
            matches!(
                t.verdict,
                Verdict::Ok | Verdict::Deadlock | Verdict::Assertion | Verdict::Error(_)
            )
        };
        let mut disagree: Vec<i64> = tries
            .iter()
            .filter(|t| t.tool == Tool::Mkipc)
            .filter(finished)
            .filter(|m| {
                tries
                    .iter()
                    .filter(|t| t.tool == Tool::Spin && t.size == m.size)
                    .filter(finished)
                    .any(|s| s.verdict.short() != m.verdict.short())
            })
            .map(|t| t.size)
            .collect();
        disagree.dedup();
        reports.push(ModelReport {
            name: model.name.into(),
            param: model.param.into(),
            fixed: model.fixed.iter().map(|&(k, v)| (k.into(), v)).collect(),
            expect: model.expect,
            tries,
            spin_largest,
            mkipc_largest,
            ratio,
            disagree,
            max_size: max,
        });
    }
    drop(dir);
    Ok(BenchReport {
        schema: SCHEMA,
        limit_secs: opts.limit.as_secs_f64(),
        pinned: pin,
        spin,
        engine: ENGINE,
        models: reports,
    })
}

/// SPIN's version line, if `spin` is installed.
pub fn spin_version() -> Option<String> {
    on_path("spin")?;
    let out = Command::new("spin")
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("spin").trim().to_string())
}

fn opt_u(v: Option<u64>) -> String {
    v.map_or("—".into(), |n| n.to_string())
}

fn rate(t: &Try) -> String {
    t.rate().map_or("—".into(), |r| {
        if r >= 1e6 {
            format!("{:.2} M", r / 1e6)
        } else if r >= 1e3 {
            format!("{:.1} k", r / 1e3)
        } else {
            format!("{r:.0}")
        }
    })
}

fn secs(t: &Try) -> String {
    if t.verdict == Verdict::Timeout {
        format!(">{:.0} s", t.secs)
    } else {
        format!("{:.2} s", t.secs)
    }
}

fn largest(v: Option<i64>, max_tried: bool) -> String {
    match v {
        None => "none".into(),
        Some(n) if max_tried => format!("≥{n} (cap)"),
        Some(n) => n.to_string(),
    }
}

fn ratio(x: f64) -> String {
    if x == 0.0 || x >= 0.01 {
        format!("{x:.3}x")
    } else {
        format!("{x:.1e}x")
    }
}

/// The report as Markdown tables: every size tried, then each model's
/// largest size verified by each checker.
pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "limit {} s per try; {}; SPIN: {}; mkipc: {}",
        r.limit_secs,
        if r.pinned {
            "each try pinned (taskset -c 0)"
        } else {
            "not pinned (no taskset)"
        },
        r.spin.as_deref().unwrap_or("spin not installed"),
        r.engine
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| model | size | SPIN verdict | states | states/s | time | mkipc verdict | states (runs) | per s | time |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---|---:|---:|---:|");
    for m in &r.models {
        let mut sizes: Vec<i64> = m.tries.iter().map(|t| t.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for size in sizes {
            let of = |tool| m.tries.iter().find(|t| t.tool == tool && t.size == size);
            // States stored, or, for the stateless search (which stores
            // none), complete runs in parentheses.
            let cells = |t: Option<&Try>| match t {
                None => "— | — | — | —".to_string(),
                Some(t) => format!(
                    "{} | {} | {} | {}",
                    t.verdict.short(),
                    match (t.states, t.runs) {
                        (None, Some(runs)) => format!("({runs})"),
                        (states, _) => opt_u(states),
                    },
                    rate(t),
                    secs(t)
                ),
            };
            let _ = writeln!(
                s,
                "| {} | {}={} | {} | {} |",
                m.name,
                m.param,
                size,
                cells(of(Tool::Spin)),
                cells(of(Tool::Mkipc))
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| model | expected | SPIN largest in {0} s | mkipc largest in {0} s | mkipc / SPIN | verdicts |",
        r.limit_secs
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---|");
    for m in &r.models {
        let capped = |v: Option<i64>| v.is_some_and(|v| v >= m.max_size);
        let spin = if r.spin.is_some() {
            largest(m.spin_largest, capped(m.spin_largest))
        } else {
            "not run".into()
        };
        let verdicts = if m.disagree.is_empty() {
            "agree".to_string()
        } else {
            format!("DISAGREE at {:?}", m.disagree)
        };
        let fixed: Vec<String> = m.fixed.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {} | {} | {} |",
            m.name,
            if fixed.is_empty() {
                String::new()
            } else {
                format!(" ({})", fixed.join(", "))
            },
            match m.expect {
                Expect::Ok => "ok",
                Expect::Deadlock => "deadlock",
            },
            spin,
            largest(m.mkipc_largest, capped(m.mkipc_largest)),
            m.ratio.map_or("—".into(), ratio),
            verdicts
        );
    }
    if r.spin.is_none() {
        let _ = writeln!(
            s,
            "\nspin not installed: mkipc only (`apt-get install spin`)"
        );
    }
    s
}

/// `mkipc bench explore`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ExploreBenchArgs {
    /// Seconds one try may take (each size, each checker).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub limit: f64,
    /// Only these models, comma-separated (default: all): producer-consumer,
    /// producer-consumer-cap0, producer-consumer-cap10, pipeline,
    /// master-worker, master-worker-buggy, ring, dining-naive,
    /// dining-ordered.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub models: Vec<String>,
    /// No size past this one.
    #[arg(long, value_name = "N")]
    pub max_size: Option<i64>,
    /// Measure mkipc only, even if spin is installed.
    #[arg(long)]
    pub no_spin: bool,
    /// Print the report as JSON (schema `mkipc-bench-explore/1`).
    #[arg(long)]
    pub json: bool,
    /// Internal: run one mkipc try of this model and print it as JSON.
    #[arg(long, hide = true, requires = "size")]
    pub child: Option<String>,
    /// Internal: the size of the `--child` try.
    #[arg(long, hide = true)]
    pub size: Option<i64>,
}

/// What `mkipc bench` can run besides its default suite.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchWhat {
    /// mkipc's exhaustive search against SPIN on the models of
    /// bench/models/ (the largest size each verifies within --limit).
    #[command(
        after_help = "Examples:\n  cargo run --release -- bench explore --limit 20\n  mkipc bench explore --models producer-consumer,ring --json"
    )]
    Explore(ExploreBenchArgs),
}

/// Runs `mkipc bench explore`; returns the exit code.
pub fn cli(what: BenchWhat) -> i32 {
    let BenchWhat::Explore(a) = what;
    if let (Some(name), Some(size)) = (&a.child, a.size) {
        return child_main(name, size);
    }
    let limit = match Duration::try_from_secs_f64(a.limit) {
        Ok(d) if d > Duration::ZERO => d,
        _ => {
            eprintln!(
                "error: --limit must be a number of seconds > 0, not {}",
                a.limit
            );
            return 2;
        }
    };
    let mkipc_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find this program's path: {e}");
            return 2;
        }
    };
    catch_interrupts();
    let opts = BenchOptions {
        limit,
        models: a.models,
        max_size: a.max_size,
        mkipc_exe,
        no_spin: a.no_spin,
        progress: true,
    };
    if !opts.no_spin && spin_version().is_none() {
        eprintln!("spin not installed: running mkipc only (apt-get install spin)");
    }
    match run(&opts) {
        Ok(r) if a.json => match serde_json::to_string_pretty(&r) {
            Ok(j) => {
                println!("{j}");
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
        Ok(r) => {
            print!("{}", render(&r));
            0
        }
        Err(BenchError::Interrupted) => {
            eprintln!("interrupted: the running try was killed and its files removed");
            130
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
