//! Capacity sensitivity for any scenario: `mkipc run FILE --sweep
//! capacity=0,1,8,unbounded` runs the scenario on the simulator once per
//! capacity, with the same seed and scheduler, and prints the runs side by
//! side, as `mkipc demo` does for its built-in model; `--svg` draws every
//! run's queue lengths in one chart, `--json` prints one document (schema
//! `mkipc-sweep/1`).
//!
//! `capacity=...` changes every queue; `NAME.capacity=...` only queue
//! `NAME`, the others keep what the file says. Each value is `0`
//! (rendezvous), a number (bounded) or `unbounded`.
//!
//! ```
//! use mkipc::sweep::{parse_spec, sweep};
//! use mkipc_kernel::Capacity;
//!
//! let spec = parse_spec("capacity=0,2,unbounded").unwrap();
//! assert_eq!(spec.capacities, [Capacity::Zero, Capacity::Bounded(2), Capacity::Unbounded]);
//! let text = mkipc::bundled::find("pipeline").unwrap().text;
//! let scn = mkipc::scenario::parse("pipeline.toml", text).unwrap();
//! let runs = sweep(&scn, &spec, None, None).unwrap();
//! assert_eq!(runs.len(), 3);
//! assert!(runs.iter().all(|r| r.outcome.result.seed == runs[0].outcome.result.seed));
//! ```

use mkipc_kernel::Capacity;
use mkipc_sim::SchedulerKind;
use serde::Serialize;

use crate::scenario::{self, RunOptions, RunResult, Scenario, SimOutcome};

/// What to sweep: which queue (every one when `None`) and the capacities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepSpec {
    /// The queue whose capacity changes; `None`: every queue's.
    pub queue: Option<String>,
    /// The capacities, in the order given.
    pub capacities: Vec<Capacity>,
}

/// At most this many runs in one sweep.
pub const MAX_RUNS: usize = 64;

/// Parses `capacity=0,1,8,unbounded` or `NAME.capacity=...`.
pub fn parse_spec(s: &str) -> Result<SweepSpec, String> {
    let (key, values) = s
        .split_once('=')
        .ok_or_else(|| format!("--sweep `{s}`: expected capacity=LIST or QUEUE.capacity=LIST"))?;
    let queue = match key.strip_suffix("capacity") {
        Some("") => None,
        Some(q) => match q.strip_suffix('.') {
            Some(q) if !q.is_empty() => Some(q.to_string()),
            _ => return Err(format!("--sweep `{s}`: expected QUEUE.capacity=LIST")),
        },
        None => {
            return Err(format!(
                "--sweep `{s}`: only capacity can be swept (capacity=LIST or QUEUE.capacity=LIST)"
            ))
        }
    };
    let mut capacities = Vec::new();
    for v in values.split(',') {
        let v = v.trim();
        let c = match v {
            "unbounded" => Capacity::Unbounded,
            "0" => Capacity::Zero,
            n => match n.parse::<usize>() {
                Ok(n) => Capacity::Bounded(n),
                Err(_) => {
                    return Err(format!(
                        "--sweep: `{v}` is not a capacity (0, a number, or unbounded)"
                    ))
                }
            },
        };
        capacities.push(c);
    }
    if capacities.len() > MAX_RUNS {
        return Err(format!("--sweep: at most {MAX_RUNS} capacities"));
    }
    Ok(SweepSpec { queue, capacities })
}

/// One run of a sweep.
#[derive(Debug)]
pub struct SweepRun {
    /// The capacity it ran with.
    pub capacity: Capacity,
    /// What it gave.
    pub outcome: SimOutcome,
}

/// Runs `scn` once per capacity of `spec`, on the simulator, each with the
/// same seed (`seed`, else the scenario's) and scheduler.
pub fn sweep(
    scn: &Scenario,
    spec: &SweepSpec,
    seed: Option<u64>,
    scheduler: Option<SchedulerKind>,
) -> Result<Vec<SweepRun>, String> {
    if let Some(q) = &spec.queue {
        if !scn.queues.iter().any(|x| &x.name == q) {
            let names: Vec<&str> = scn.queues.iter().map(|q| q.name.as_str()).collect();
            return Err(format!(
                "--sweep: no queue `{q}` in {} (its queues: {})",
                scn.file,
                names.join(", ")
            ));
        }
    }
    if scn.queues.is_empty() {
        return Err(format!("--sweep: {} has no queue to sweep", scn.file));
    }
    let opts = RunOptions {
        seed: Some(seed.unwrap_or(scn.seed)),
        scheduler,
        replay: None,
    };
    spec.capacities
        .iter()
        .map(|&capacity| {
            let mut s = scn.clone();
            for q in &mut s.queues {
                if spec.queue.as_ref().is_none_or(|n| n == &q.name) {
                    q.capacity = capacity;
                }
            }
            let outcome = scenario::run_sim(&s, &opts)?;
            Ok(SweepRun { capacity, outcome })
        })
        .collect()
}

fn ms(v: f64) -> String {
    format!("{v:.3}")
}

/// The runs side by side: one column per capacity.
pub fn render(scn: &Scenario, spec: &SweepSpec, runs: &[SweepRun]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let col = |f: &dyn Fn(&RunResult) -> String| -> Vec<String> {
        runs.iter().map(|r| f(&r.outcome.result)).collect()
    };
    rows.push((
        "result".into(),
        col(&|r| {
            if r.ok {
                "ok".into()
            } else if r.deadlock {
                "deadlock".into()
            } else {
                "failed".into()
            }
        }),
    ));
    rows.push(("virtual time ms".into(), col(&|r| ms(r.time_ms))));
    rows.push((
        "steps".into(),
        col(&|r| r.steps.map_or("-".into(), |s| s.to_string())),
    ));
    rows.push(("sent".into(), col(&|r| r.messages.sent.to_string())));
    rows.push(("received".into(), col(&|r| r.messages.received.to_string())));
    rows.push(("dropped".into(), col(&|r| r.messages.dropped.to_string())));
    rows.push((
        "failed sends".into(),
        col(&|r| r.messages.send_failures.to_string()),
    ));
    for (i, q) in scn.queues.iter().enumerate() {
        let cell = |f: &dyn Fn(&scenario::QueueResult) -> String| -> Vec<String> {
            runs.iter()
                .map(|r| r.outcome.result.queues.get(i).map_or("-".into(), f))
                .collect()
        };
        rows.push((
            format!("{} max", q.name),
            cell(&|x| x.max_len.map_or("-".into(), |m| m.to_string())),
        ));
        rows.push((
            format!("{} mean len", q.name),
            cell(&|x| x.mean_len.map_or("-".into(), |m| format!("{m:.3}"))),
        ));
        rows.push((
            format!("{} latency ms", q.name),
            cell(&|x| x.mean_latency_ms.map_or("-".into(), ms)),
        ));
    }
    let heads: Vec<String> = runs.iter().map(|r| r.capacity.to_string()).collect();
    let first = rows
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max("capacity".len());
    let widths: Vec<usize> = (0..runs.len())
        .map(|c| {
            rows.iter()
                .map(|(_, v)| v[c].len())
                .chain([heads[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let seed = runs
        .first()
        .and_then(|r| r.outcome.result.seed)
        .unwrap_or(scn.seed);
    let which = match &spec.queue {
        Some(q) => format!("queue `{q}`"),
        None => "every queue".to_string(),
    };
    let mut out = format!(
        "sweep: the capacity of {which}, seed {seed}, the same for every run ({})\n\n",
        scn.name
    );
    let line = |name: &str, cells: &[String]| {
        let mut l = format!("{name:<first$}");
        for (c, w) in cells.iter().zip(&widths) {
            l.push_str(&format!("  {c:>w$}"));
        }
        l.push('\n');
        l
    };
    out.push_str(&line("capacity", &heads));
    for (name, cells) in &rows {
        out.push_str(&line(name, cells));
    }
    for r in runs {
        if let Some(f) = &r.outcome.result.failure {
            out.push_str(&format!("\n{}: {f}", r.capacity));
        }
    }
    if runs.iter().any(|r| r.outcome.result.failure.is_some()) {
        out.push('\n');
    }
    out
}

/// The sweep as one JSON document.
#[derive(Serialize)]
pub struct SweepJson<'a> {
    /// `mkipc-sweep/1`.
    pub schema: &'static str,
    /// The scenario's title.
    pub scenario: &'a str,
    /// The swept queue (`null`: every queue).
    pub queue: Option<&'a str>,
    /// Each run, in the order of the capacities.
    pub runs: Vec<SweepJsonRun<'a>>,
}

/// One run in [`SweepJson`].
#[derive(Serialize)]
pub struct SweepJsonRun<'a> {
    /// `0`, a number, or `unbounded`.
    pub capacity: String,
    /// The run's report, as `mkipc run --json` prints it.
    pub result: &'a RunResult,
}

/// The schema name of [`SweepJson`].
pub const SCHEMA: &str = "mkipc-sweep/1";

/// The document `--json` prints.
pub fn json<'a>(scn: &'a Scenario, spec: &'a SweepSpec, runs: &'a [SweepRun]) -> SweepJson<'a> {
    SweepJson {
        schema: SCHEMA,
        scenario: &scn.name,
        queue: spec.queue.as_deref(),
        runs: runs
            .iter()
            .map(|r| SweepJsonRun {
                capacity: match r.capacity {
                    Capacity::Zero => "0".into(),
                    Capacity::Bounded(n) => n.to_string(),
                    Capacity::Unbounded => "unbounded".into(),
                },
                result: &r.outcome.result,
            })
            .collect(),
    }
}

/// One SVG: a panel per run and swept queue, queue length over virtual time.
pub fn svg(scn: &Scenario, spec: &SweepSpec, runs: &[SweepRun]) -> String {
    let mut panels = Vec::new();
    for r in runs {
        for (i, q) in scn.queues.iter().enumerate() {
            if spec.queue.as_ref().is_some_and(|n| n != &q.name) {
                continue;
            }
            let Some(s) = r.outcome.series.get(i) else {
                continue;
            };
            panels.push(crate::svg::Panel {
                title: format!("{} with capacity {}: max {}", q.name, r.capacity, s.max),
                samples: s.samples_ms(),
                end_ms: r.outcome.report.end_time.as_secs_f64() * 1e3,
            });
        }
    }
    crate::svg::queue_chart(
        &format!("{}: queue length over virtual time, per capacity", scn.name),
        &panels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_spec("jobs.capacity=1,unbounded").unwrap(),
            SweepSpec {
                queue: Some("jobs".into()),
                capacities: vec![Capacity::Bounded(1), Capacity::Unbounded]
            }
        );
        for bad in [
            "capacity",
            "speed=1",
            ".capacity=1",
            "capacity=x",
            "capacity=-1",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        let many = format!("capacity={}", vec!["1"; MAX_RUNS + 1].join(","));
        assert!(parse_spec(&many).is_err());
    }
}
