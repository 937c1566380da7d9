//! `mkipc check`: the deadlocks a scenario's topology allows, before any run.
//!
//! Hubris rules out IPC deadlock by construction: a task may only send
//! "uphill", to a task of higher priority, so no chain of blocked senders
//! can close on itself. A scenario has no such rule, but the same question
//! can be asked of it without running it: who can wait on whom?
//! [`check_topology`] reads every script and builds the *wait-for graph
//! the topology allows*: an edge `P -> Q` when `P` has a statement that may
//! block with no deadline and that `Q` could end:
//!
//! | `P`'s statement | waits on |
//! |---|---|
//! | `send Q` (policy `block`, capacity 0 or bounded) | the processes that receive from `Q` |
//! | `receive Q` (no timeout) | the processes that send to `Q` |
//! | `call Q` | the processes that receive from `Q` (the server replies) |
//! | `send-to R`, `receive-from R` | `R` (a direct link is unbounded in the kernel, but a pipe on the os backend, so `send-to` counts) |
//! | `receive-any` | every process with a `send-to P` |
//! | `select` (no unguarded `on timeout`) | the union of its arms' |
//!
//! Who sends to or receives from a queue is read from the scripts (the
//! parser has checked the rights); a send to a variable may reach the
//! queues that variable can hold (followed from the literals that name them
//! through assignments, messages and receive patterns, `values.rs`) and
//! that the process may send to (a port right it holds, its own or one it
//! hands on). The owner of a mailbox (and whoever may `destroy` a queue)
//! can end every wait on it. Sends that cannot block (to an
//! unbounded queue, with `fail` or a drop policy, `try-send`) and timed
//! waits (`receive Q timeout D`, a `select` with an `on timeout` arm) are no
//! edges: they cannot wait forever; the report lists the timed ones.
//!
//! A `select` waits on the union of its arms: it is blocked only when every
//! enabled arm is, so in a stuck state it has a successor among the stuck
//! processes as soon as one of its arms does. Treating it as an OR over its
//! arms' successors keeps every real cycle; the AND part (all its
//! unguarded arms blocked at once) is used only to drop cycles that cannot
//! happen (see below), never to add edges.
//!
//! Each elementary cycle (Johnson's algorithm) is then kept only if its
//! waits can all hold at once: no channel may be both full (a send blocked
//! on it) and empty (a receive blocked on it; a selective receive sets
//! aside what does not match, so it too blocks only on an empty queue;
//! one `select` may still offer both ends of a rendezvous queue). A
//! producer and a consumer of one bounded queue may each wait on the other,
//! but never at the same time: an edge whose every labelling clashes with
//! every way its target can be blocked is left out of the graph at once
//! (the report's edge count is of the edges kept). The search is bounded
//! (a million edges, 100,000 cycles, 20 million steps); when a bound cuts
//! it, the answer is "cycles possible", never "deadlock-free".
//!
//! **Soundness.** A stuck run is a set `D` of processes all blocked, every
//! other process ended. Each `P` in `D` either waits on some other member
//! of `D` (follow those waits and a feasible cycle closes, which the search
//! lists) or waits on processes that have all ended. That second kind, a
//! deadlock with no cycle, is about how many messages are sent, not about
//! who talks to whom: the report lists those waits as *stuck waits* unless
//! a counting argument rules them out (`counts.rs`). So "deadlock-free" is
//! said only when there is no feasible cycle and no stuck wait; a listed
//! cycle or stuck wait is *possible*, not proven reachable: `mkipc explore
//! --exhaustive` says whether one is.
//!
//! ```
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
//! let scenario = mkipc::scenario::parse("cross.toml", text).unwrap();
//! let report = mkipc::scenario::check_topology(&scenario);
//! assert_eq!(report.verdict, mkipc::scenario::Verdict::CyclesPossible);
//! assert_eq!(report.cycles[0].processes(), ["a", "b"]);
//! assert_eq!(report.exit_code(), 1);
//! ```

mod counts;
mod cycles;
mod values;
mod waits;

use std::fmt;

use serde::Serialize;

use super::Scenario;
use waits::Topology;

/// How many cycles (and stuck waits) the text report lists.
pub const LISTED: usize = 10;

/// What the topology allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No process can wait on a cycle, and none can be left waiting on
    /// processes that have all ended.
    DeadlockFree,
    /// Some wait-for cycle is possible (reachable or not).
    CyclesPossible,
    /// No cycle, but a wait may outlive everyone who could end it.
    StuckWaitsPossible,
}

/// One step of a cycle: a process, the statement it waits at, and what on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CycleStep {
    /// The waiting process.
    pub process: String,
    /// `send`, `receive`, `call`, `send-to`, `receive-from`, `receive-any`.
    pub op: String,
    /// The queue (or process) it waits on.
    pub on: String,
    /// The queue's capacity (`0`, `4`, `unbounded`), for a queue.
    pub capacity: Option<String>,
    /// The line of the operation (of the arm, in a `select`).
    pub line: usize,
    /// The line of the `select`, when the operation is one of its arms.
    pub select_line: Option<usize>,
}

/// A wait-for cycle: each process waits on the next, the last on the first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WaitCycle {
    /// The steps, starting at the process declared first.
    pub steps: Vec<CycleStep>,
}

impl WaitCycle {
    /// The processes, in order.
    pub fn processes(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.process.as_str()).collect()
    }
}

/// A wait that may be left with no process able to end it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StuckWait {
    /// The waiting process.
    pub process: String,
    /// `send`, `receive`, `call`, ..., or `select`.
    pub op: String,
    /// What it waits on (several for a `select`).
    pub on: Vec<String>,
    /// Its line.
    pub line: usize,
}

/// A wait with a deadline: no edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimedWait {
    /// The process.
    pub process: String,
    /// The statement, e.g. ``receive `buffer` timeout``.
    pub what: String,
    /// Its line.
    pub line: usize,
}

/// What [`check_topology`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopologyReport {
    /// `mkipc-check/1`; the number changes on anything but an added field.
    pub schema: &'static str,
    /// The scenario file.
    pub file: String,
    /// The answer.
    pub verdict: Verdict,
    /// Processes (a family's members counted one by one).
    pub processes: usize,
    /// Statements that may wait forever.
    pub waits: usize,
    /// Edges of the wait-for graph (pairs of processes); `None` when there
    /// were too many to build (over a million: the search was not run).
    pub edges: Option<usize>,
    /// Elementary cycles looked at.
    pub cycles_examined: usize,
    /// The feasible cycles, shortest first (at most 1000).
    pub cycles: Vec<WaitCycle>,
    /// Every cycle was looked at (the search was not cut by a limit).
    pub complete: bool,
    /// Waits that may outlive every process that could end them.
    pub stuck_waits: Vec<StuckWait>,
    /// Why message counts do not rule those out (`None` when they do).
    pub counts: Option<String>,
    /// Waits with a deadline, which cannot wait forever.
    pub timed_waits: Vec<TimedWait>,
    /// The command that searches the schedules for a reachable deadlock
    /// (with the scenario's `--set` overrides).
    pub explore_command: String,
}

impl TopologyReport {
    /// 0 when deadlock-free, 1 when a cycle or a stuck wait is possible.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.verdict != Verdict::DeadlockFree)
    }
}

/// The wait-for cycles (and stuck waits) `scn`'s topology allows; see the
/// module docs for what is an edge and why the answer is sound.
pub fn check_topology(scn: &Scenario) -> TopologyReport {
    let n = scn.processes.len();
    let topo = Topology::of(scn);
    let found = cycles::find(&topo, n);
    let name = |p: usize| scn.processes[p].name.clone();
    let cycles: Vec<WaitCycle> = found
        .cycles
        .iter()
        .map(|steps| WaitCycle {
            steps: steps
                .iter()
                .map(|s| {
                    let w = &topo.waits[s.wait];
                    let a = &w.alts[s.alt];
                    CycleStep {
                        process: name(s.proc),
                        op: a.op.to_string(),
                        on: a.on.clone(),
                        capacity: a.capacity.clone(),
                        line: a.line,
                        select_line: (w.op == "select").then_some(w.line),
                    }
                })
                .collect(),
        })
        .collect();
    // With no wait at all, nothing can be left waiting: no need to count.
    let counts = if topo.waits.is_empty() {
        None
    } else {
        counts::balanced(scn).err()
    };
    let stuck_waits = match &counts {
        None => Vec::new(),
        Some(_) => topo
            .waits
            .iter()
            .map(|w| {
                let mut on: Vec<String> = w
                    .alts
                    .iter()
                    .map(|a| format!("{} `{}`", a.op, a.on))
                    .collect();
                on.dedup();
                StuckWait {
                    process: name(w.proc),
                    op: w.op.to_string(),
                    on,
                    line: w.line,
                }
            })
            .collect(),
    };
    let verdict = if !cycles.is_empty() || !found.complete {
        Verdict::CyclesPossible
    } else if !stuck_waits.is_empty() {
        Verdict::StuckWaitsPossible
    } else {
        Verdict::DeadlockFree
    };
    let mut explore_command = format!("mkipc explore --exhaustive {}", quote(&scn.file));
    for (name, value) in &scn.overrides {
        explore_command.push_str(&format!(" --set {}", quote(&format!("{name}={value}"))));
    }
    TopologyReport {
        explore_command,
        schema: "mkipc-check/1",
        file: scn.file.clone(),
        verdict,
        processes: n,
        waits: topo.waits.len(),
        edges: found.edges,
        cycles_examined: found.examined,
        cycles,
        complete: found.complete,
        stuck_waits,
        counts,
        timed_waits: topo
            .timed
            .iter()
            .map(|t| TimedWait {
                process: name(t.proc),
                what: t.what.clone(),
                line: t.line,
            })
            .collect(),
    }
}

/// `text` as one shell word.
fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for CycleStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}` (", self.op, self.on)?;
        if let Some(c) = &self.capacity {
            write!(f, "capacity {c}, ")?;
        }
        match self.select_line {
            Some(s) => write!(f, "line {}, in the select of line {s})", self.line),
            None => write!(f, "line {})", self.line),
        }
    }
}

impl fmt::Display for WaitCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            write!(f, "`{}` → {s} → ", s.process)?;
        }
        match self.steps.first() {
            Some(s) => write!(f, "`{}`", s.process),
            None => Ok(()),
        }
    }
}

impl fmt::Display for TopologyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "topology of {}: {}, {} that may wait forever, {} wait-for {}",
            self.file,
            plural(self.processes, "process", "processes"),
            plural(self.waits, "statement", "statements"),
            match self.edges {
                Some(e) => e.to_string(),
                None => "too many".to_string(),
            },
            if self.edges == Some(1) {
                "edge"
            } else {
                "edges"
            }
        )?;
        if !self.timed_waits.is_empty() {
            let list: Vec<String> = self
                .timed_waits
                .iter()
                .map(|t| format!("`{}` {} (line {})", t.process, t.what, t.line))
                .collect();
            writeln!(
                f,
                "timed waits, no edges (they cannot wait forever): {}",
                list.join(", ")
            )?;
        }
        match self.verdict {
            Verdict::DeadlockFree => {
                writeln!(
                    f,
                    "deadlock-free by topology: no process can wait on a cycle"
                )?;
                if self.waits > 0 {
                    writeln!(
                        f,
                        "(and the message counts leave no wait without a process to end it)"
                    )?;
                }
                return Ok(());
            }
            Verdict::CyclesPossible if self.edges.is_none() => {
                writeln!(
                    f,
                    "wait-for cycles possible: the graph has over {} edges, too many to search",
                    cycles::MAX_EDGES
                )?;
            }
            Verdict::CyclesPossible => {
                let more = if self.complete { "" } else { " at least" };
                writeln!(
                    f,
                    "wait-for cycles possible:{more} {} (of {} looked at)",
                    self.cycles.len(),
                    plural(
                        self.cycles_examined,
                        "elementary cycle",
                        "elementary cycles"
                    )
                )?;
                for (i, c) in self.cycles.iter().take(LISTED).enumerate() {
                    writeln!(f, "  {}. {c}", i + 1)?;
                }
                if self.cycles.len() > LISTED {
                    writeln!(
                        f,
                        "  ... {} more (`--json` lists them)",
                        self.cycles.len() - LISTED
                    )?;
                }
                if !self.complete {
                    writeln!(f, "  (the search stopped at a limit: there may be more)")?;
                }
            }
            Verdict::StuckWaitsPossible => {
                writeln!(f, "no wait-for cycle is possible")?;
            }
        }
        if let Some(why) = &self.counts {
            let n = self.stuck_waits.len();
            if self.verdict == Verdict::CyclesPossible {
                writeln!(
                    f,
                    "also {} may outlive every process that could end them (`--json` lists them)",
                    plural(n, "wait", "waits")
                )?;
            } else {
                writeln!(
                    f,
                    "but {} may outlive every process that could end them (a deadlock with no \
                     cycle, which message counts do not rule out here: {why}):",
                    plural(n, "wait", "waits")
                )?;
                for w in self.stuck_waits.iter().take(LISTED) {
                    writeln!(
                        f,
                        "  `{}` {} (line {}): {}",
                        w.process,
                        w.op,
                        w.line,
                        w.on.join(" or ")
                    )?;
                }
                if n > LISTED {
                    writeln!(f, "  ... {} more (`--json` lists them)", n - LISTED)?;
                }
            }
        }
        writeln!(
            f,
            "possible; run `{}` to see whether one is reachable",
            self.explore_command
        )
    }
}
