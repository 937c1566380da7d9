//! Differential runs: `mkipc run FILE --backend sim --compare os` (or
//! `threads`) runs a scenario on the simulator and on a real-time backend
//! and reports where the outcomes differ, so a student sees what the OS adds
//! (real timing, POSIX semantics) and an engineer sees whether the model
//! matches the system.
//!
//! Compared, in this order: the verdict (ok, deadlock, other failure), the
//! messages delivered (totals and per queue: sent, received, dropped), each
//! process's end (status, sent, received), and the order of the messages
//! each queue delivered (by sender and message id, from the two traces;
//! a process killed on the os backend keeps its events up to the kill). Times,
//! latencies and queue lengths are shown side by side but never count as a
//! difference: a real backend's timing is its own. The outcome is "same"
//! only if nothing compared differs.
//!
//! ```
//! use mkipc::compare::{compare, Side};
//!
//! let text = mkipc::bundled::find("pipeline").unwrap().text;
//! let scn = mkipc::scenario::parse("pipeline.toml", text).unwrap();
//! let sim = Side::sim(&scn, None).unwrap();
//! let threads = Side::threads(&scn, std::time::Duration::from_secs(10)).unwrap();
//! let c = compare(&sim, &threads);
//! assert!(c.same, "{}", c.render());
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use mkipc_sim::trace::{EventKind, Target};
use mkipc_sim::Trace;
use serde::Serialize;

use crate::scenario::{self, instance_of, RunOptions, RunResult, Scenario};

/// One backend's run: its report, and its trace where the backend records one.
#[derive(Debug)]
pub struct Side {
    /// The report.
    pub result: RunResult,
    /// The trace (every backend records one; `None` for a report alone).
    pub trace: Option<Trace>,
}

impl Side {
    /// The run on the simulator, with the scenario's seed unless `seed`.
    pub fn sim(scn: &Scenario, seed: Option<u64>) -> Result<Side, String> {
        let opts = RunOptions {
            seed,
            ..RunOptions::default()
        };
        let out = scenario::run_sim(scn, &opts)?;
        Ok(Side {
            result: out.result,
            trace: Some(out.report.trace),
        })
    }

    /// The run on kernel threads, stopped at `timeout`.
    pub fn threads(scn: &Scenario, timeout: Duration) -> Result<Side, String> {
        let (result, trace) = scenario::run_threads_traced(scn, timeout)?;
        Ok(Side {
            result,
            trace: Some(trace),
        })
    }

    /// The run on real processes.
    pub fn os(scn: &Scenario, opts: &scenario::OsOptions) -> Result<Side, String> {
        let (result, trace) = scenario::run_os_traced(scn, opts)?;
        Ok(Side {
            result,
            trace: Some(trace),
        })
    }
}

/// One compared figure.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Row {
    /// What it is.
    pub what: String,
    /// Its value on the first backend.
    pub left: String,
    /// Its value on the second.
    pub right: String,
    /// Whether it counts: a difference in a compared row makes the outcome differ.
    pub compared: bool,
    /// Whether the two differ.
    pub differs: bool,
}

/// The comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// `mkipc-compare/1`.
    pub schema: &'static str,
    /// The backends, in order.
    pub backends: [String; 2],
    /// True when no compared row differs.
    pub same: bool,
    /// Every row, compared or shown.
    pub rows: Vec<Row>,
    /// Where the order of deliveries could not be compared, and why.
    pub notes: Vec<String>,
}

/// The schema name of [`Comparison`].
pub const SCHEMA: &str = "mkipc-compare/1";

fn verdict(r: &RunResult) -> String {
    if r.ok {
        "ok".into()
    } else if r.deadlock {
        "deadlock".into()
    } else {
        "failed".into()
    }
}

/// Each queue's deliveries in order, as `sender:message id`, from a trace.
fn deliveries(t: &Trace) -> BTreeMap<String, Vec<String>> {
    let mut by_pid: BTreeMap<u32, &str> = BTreeMap::new();
    for p in &t.procs {
        by_pid.insert(p.pid, &p.name);
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &t.events {
        if let EventKind::Received {
            from: Target::Name(n),
            msg_id,
            sender,
            ..
        } = &e.kind
        {
            let pid = t.procs.get(e.proc.0 as usize).map_or(0, |p| p.pid);
            let Some(queue) = t.labels.get(&(pid, *n)) else {
                continue;
            };
            let from = sender.and_then(|s| by_pid.get(&s).copied()).unwrap_or("?");
            out.entry(queue.clone())
                .or_default()
                .push(format!("{from}:{msg_id}"));
        }
    }
    out
}

/// Compares two runs of one scenario.
pub fn compare(left: &Side, right: &Side) -> Comparison {
    let (a, b) = (&left.result, &right.result);
    let mut rows = Vec::new();
    let mut row = |what: String, l: String, r: String, compared: bool| {
        let differs = l != r;
        rows.push(Row {
            what,
            left: l,
            right: r,
            compared,
            differs,
        });
    };
    row("result".into(), verdict(a), verdict(b), true);
    row(
        "time ms (not compared)".into(),
        format!("{:.3}", a.time_ms),
        format!("{:.3}", b.time_ms),
        false,
    );
    let (ma, mb) = (&a.messages, &b.messages);
    row(
        "messages sent".into(),
        ma.sent.to_string(),
        mb.sent.to_string(),
        true,
    );
    row(
        "messages received".into(),
        ma.received.to_string(),
        mb.received.to_string(),
        true,
    );
    row(
        "messages dropped".into(),
        ma.dropped.to_string(),
        mb.dropped.to_string(),
        true,
    );
    row(
        "failed sends".into(),
        ma.send_failures.to_string(),
        mb.send_failures.to_string(),
        true,
    );
    for qa in &a.queues {
        let qb = b.queues.iter().find(|q| q.name == qa.name);
        let get = |f: &dyn Fn(&scenario::QueueResult) -> String| qb.map_or("-".into(), f);
        row(
            format!("{} sent / received / dropped", qa.name),
            format!("{} / {} / {}", qa.sent, qa.received, qa.dropped),
            get(&|q| format!("{} / {} / {}", q.sent, q.received, q.dropped)),
            true,
        );
        row(
            format!("{} max length (not compared)", qa.name),
            qa.max_len.map_or("-".into(), |m| m.to_string()),
            get(&|q| q.max_len.map_or("-".into(), |m| m.to_string())),
            false,
        );
    }
    // Processes by name and instance: the n-th `worker` on one side with
    // the n-th on the other (instances of one family end in any order, so
    // each side's instances are sorted by what they did).
    let mut seen = std::collections::BTreeSet::new();
    for name in a.processes.iter().map(|p| instance_of(&p.name)) {
        if !seen.insert(name) {
            continue;
        }
        let side = |r: &RunResult| {
            let mut v: Vec<(String, String)> = r
                .processes
                .iter()
                .filter(|p| instance_of(&p.name) == name)
                .map(|p| {
                    (
                        p.status.clone(),
                        if p.unknown.is_some() {
                            "- / -".to_string()
                        } else {
                            format!("{} / {}", p.sent, p.received)
                        },
                    )
                })
                .collect();
            v.sort();
            v
        };
        let (pa, pb) = (side(a), side(b));
        let n = pa.len().max(pb.len());
        for i in 0..n {
            let label = if n > 1 {
                format!("{name} #{}", i + 1)
            } else {
                name.to_string()
            };
            let cell = |v: &Vec<(String, String)>, k: usize| {
                v.get(i).map_or(
                    "-".into(),
                    |p| if k == 0 { p.0.clone() } else { p.1.clone() },
                )
            };
            row(format!("{label} status"), cell(&pa, 0), cell(&pb, 0), true);
            row(
                format!("{label} sent / received"),
                cell(&pa, 1),
                cell(&pb, 1),
                true,
            );
        }
    }
    let mut notes = Vec::new();
    match (&left.trace, &right.trace) {
        (Some(ta), Some(tb)) => {
            let (da, db) = (deliveries(ta), deliveries(tb));
            for q in a.queues.iter().map(|q| &q.name) {
                let (oa, ob) = (
                    da.get(q).cloned().unwrap_or_default(),
                    db.get(q).cloned().unwrap_or_default(),
                );
                let first = oa.iter().zip(&ob).position(|(x, y)| x != y);
                let say = |o: &[String], at: Option<usize>| match at {
                    Some(i) => format!("differs at delivery {}: {}", i + 1, o[i]),
                    None => format!("{} deliveries", o.len()),
                };
                row(
                    format!("{q} order of deliveries"),
                    say(&oa, first),
                    say(&ob, first),
                    true,
                );
            }
            for (t, b) in [(ta, &a.backend), (tb, &b.backend)] {
                if t.gap.is_some() {
                    notes.push(format!(
                        "the {b} trace was cut: the order covers only its kept events"
                    ));
                }
            }
        }
        _ => notes.push("order of deliveries not compared: a side has no trace".into()),
    }
    for (r, b) in [(a, &a.backend), (b, &b.backend)] {
        if let Some(f) = &r.failure {
            notes.push(format!("{b}: {f}"));
        }
    }
    let same = rows.iter().all(|r| !r.compared || !r.differs);
    Comparison {
        schema: SCHEMA,
        backends: [a.backend.clone(), b.backend.clone()],
        same,
        rows,
        notes,
    }
}

impl Comparison {
    /// The comparison as a table: one row per figure, `<>` where a compared
    /// figure differs.
    pub fn render(&self) -> String {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.what.len())
            .chain(["figure".len()])
            .max()
            .unwrap_or(0);
        let w1 = self
            .rows
            .iter()
            .map(|r| r.left.len())
            .chain([self.backends[0].len()])
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "{:<w0$}  {:<w1$}     {}\n",
            "figure", self.backends[0], self.backends[1]
        );
        for r in &self.rows {
            let mark = if r.compared && r.differs { "<>" } else { "  " };
            out.push_str(&format!(
                "{:<w0$}  {:<w1$}  {mark} {}\n",
                r.what, r.left, r.right
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        let differing = self.rows.iter().filter(|r| r.compared && r.differs).count();
        if self.same {
            out.push_str(&format!(
                "outcome: the same on {} and {} (times and queue lengths aside)\n",
                self.backends[0], self.backends[1]
            ));
        } else {
            out.push_str(&format!(
                "outcome: {differing} figure(s) differ between {} and {} (marked <>)\n",
                self.backends[0], self.backends[1]
            ));
        }
        out
    }
}
