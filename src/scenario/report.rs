//! What `mkipc run` prints: a [`RunResult`], as a table or as JSON.

use std::fmt;

use serde::Serialize;

use mkipc_sim::summary::{top_by, FULL_TABLE_ROWS, TOP_ROWS};

/// Gives the instances of one script their own names: where a name
/// stands for several rows (the workers a master spawns from one
/// `[[process]]`), they become `name#1`, `name#2`, ... in the order the
/// rows come (the order the backend started them). Names of one row are
/// left alone. Traces keep the script's name; only the report tells the
/// instances apart.
pub(crate) fn name_instances(processes: &mut [ProcessResult]) {
    let mut count = std::collections::HashMap::<String, usize>::new();
    for p in processes.iter() {
        *count.entry(p.name.clone()).or_default() += 1;
    }
    let mut next = std::collections::HashMap::<String, usize>::new();
    for p in processes.iter_mut() {
        if count.get(&p.name).is_some_and(|&n| n > 1) {
            let k = next.entry(p.name.clone()).or_default();
            *k += 1;
            p.name = format!("{}#{k}", p.name);
        }
    }
}

/// The script an instance's report name belongs to: `worker#2` is a
/// `worker`. Where one script has several rows in a report (the workers a
/// master spawns from one `[[process]]`), they are named `name#1`,
/// `name#2`, ... in the order the backend started them.
pub fn instance_of(name: &str) -> &str {
    match name.rsplit_once('#') {
        Some((base, k))
            if !base.is_empty() && !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => name,
    }
}

/// One process at the end of a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProcessResult {
    /// Its name.
    pub name: String,
    /// How it ended (`exited(0)`, `failed(1): ...`, `killed`, `stuck`).
    pub status: String,
    /// Messages it sent.
    pub sent: u64,
    /// Messages it received.
    pub received: u64,
    /// Its sends that a drop policy discarded (or that displaced another).
    pub drops: u64,
    /// Time blocked in the kernel, ms (virtual; `None` on threads).
    pub blocked_ms: Option<f64>,
    /// Time in `work`, ms (virtual; `None` on threads).
    pub working_ms: Option<f64>,
    /// Why its figures are not known (the os backend: it was killed before
    /// it could report them); its counts then read 0 and count nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// One port or mailbox at the end of a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QueueResult {
    /// Its name.
    pub name: String,
    /// `port` or `mailbox`.
    pub kind: String,
    /// Its capacity model.
    pub capacity: String,
    /// Successful sends to it (delivered or dropped by its policy).
    pub sent: u64,
    /// Messages its drop policies discarded.
    pub dropped: u64,
    /// Messages received from it.
    pub received: u64,
    /// Largest length (simulator and threads: exact; os: sampled).
    pub max_len: Option<usize>,
    /// Mean length over virtual time (simulator only).
    pub mean_len: Option<f64>,
    /// Mean time from offer to receipt, ms.
    pub mean_latency_ms: Option<f64>,
}

/// Message totals over every queue and link.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct MessageTotals {
    /// Successful sends (including those a drop policy then discarded).
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Messages discarded by drop policies.
    pub dropped: u64,
    /// Sends that failed.
    pub send_failures: u64,
    /// Sent but never received: dropped, or still queued when the queue died.
    pub lost: u64,
    /// Set when some process's figures are unknown (see
    /// [`ProcessResult::unknown`]): the totals and the queue rows count only
    /// the processes that reported, so `lost` is an upper bound, not a count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// One declared invariant and whether it held.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InvariantResult {
    /// Its name.
    pub name: String,
    /// `true` if it held (or the run stopped before it could fail).
    pub held: bool,
    /// Why it failed.
    pub message: Option<String>,
}

/// Everything `mkipc run` reports (and `--json` prints).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunResult {
    /// The scenario's title.
    pub scenario: String,
    /// Its file.
    pub file: String,
    /// `sim`, `threads` or `os`.
    pub backend: String,
    /// The seed (simulator).
    pub seed: Option<u64>,
    /// The scheduling policy (simulator).
    pub scheduler: Option<String>,
    /// Scheduling steps (simulator).
    pub steps: Option<u64>,
    /// Virtual time at the end, ms (simulator) or wall time (threads).
    pub time_ms: f64,
    /// The run ended without deadlock, failed invariant or panic.
    pub ok: bool,
    /// Why it did not.
    pub failure: Option<String>,
    /// Whether the failure is a deadlock.
    pub deadlock: bool,
    /// The schedule that replays the run (simulator).
    pub schedule: Option<String>,
    /// Processes in spawn order.
    pub processes: Vec<ProcessResult>,
    /// Queues in declaration order.
    pub queues: Vec<QueueResult>,
    /// Totals.
    pub messages: MessageTotals,
    /// Declared invariants.
    pub invariants: Vec<InvariantResult>,
    /// The os backend's run id (its queues are named `/mkipc-<run id>-...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The os backend's time scale (`work` and `sleep` last this many times longer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// The simulator kept only the first and last events of a long run's
    /// trace: how many it left out (the exported traces mark the gap too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_note: Option<String>,
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"))
}

/// A run's report as text: every row, or (a run of more than
/// [`FULL_TABLE_ROWS`] processes or queues, unless asked for every row) the
/// summary: how the processes ended, the rows' sums, and the top
/// [`TOP_ROWS`] processes by messages and by time blocked and queues by
/// messages and by largest length. `--json` always has every row.
pub struct RunText<'a> {
    result: &'a RunResult,
    all_rows: bool,
}

impl RunResult {
    /// The report as text (`all_rows`: every row, however many: `mkipc run
    /// --all-rows`); `Display` is `text(false)`.
    pub fn text(&self, all_rows: bool) -> RunText<'_> {
        RunText {
            result: self,
            all_rows,
        }
    }

    /// Whether the text prints a summary rather than every row.
    pub fn is_summarised(&self, all_rows: bool) -> bool {
        !all_rows && (self.processes.len() > FULL_TABLE_ROWS || self.queues.len() > FULL_TABLE_ROWS)
    }
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text(false).fmt(f)
    }
}

/// A time in ms as an ordered key (the top lists).
struct Ms(f64);
impl PartialEq for Ms {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Ms {}
impl PartialOrd for Ms {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ms {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn process_header(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:<14} {:>6} {:>6} {:>6} {:>12} {:>12}  status",
        "process", "sent", "recv", "drops", "blocked ms", "working ms"
    )
}

fn process_row(f: &mut fmt::Formatter<'_>, p: &ProcessResult) -> fmt::Result {
    if p.unknown.is_some() {
        return writeln!(
            f,
            "{:<14} {:>6} {:>6} {:>6} {:>12} {:>12}  {}",
            p.name, "-", "-", "-", "-", "-", p.status
        );
    }
    writeln!(
        f,
        "{:<14} {:>6} {:>6} {:>6} {:>12} {:>12}  {}",
        p.name,
        p.sent,
        p.received,
        p.drops,
        opt_ms(p.blocked_ms),
        opt_ms(p.working_ms),
        p.status
    )
}

fn queue_header(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:<12} {:<8} {:>11} {:>8} {:>7} {:>6} {:>5} {:>7} {:>11}",
        "queue", "kind", "capacity", "sent", "dropped", "recv", "max", "mean", "latency ms"
    )
}

fn queue_row(f: &mut fmt::Formatter<'_>, q: &QueueResult) -> fmt::Result {
    writeln!(
        f,
        "{:<12} {:<8} {:>11} {:>8} {:>7} {:>6} {:>5} {:>7} {:>11}",
        q.name,
        q.kind,
        q.capacity,
        q.sent,
        q.dropped,
        q.received,
        q.max_len.map_or("-".into(), |m| m.to_string()),
        q.mean_len.map_or("-".into(), |m| format!("{m:.3}")),
        opt_ms(q.mean_latency_ms)
    )
}

impl RunText<'_> {
    /// The summary in place of the two tables (see [`RunText`]).
    fn summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.result;
        let procs = &r.processes;
        let mut ended: Vec<(&str, usize)> = Vec::new();
        for p in procs {
            let kind = p.status.split(':').next().unwrap_or("");
            match ended.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => ended.push((kind, 1)),
            }
        }
        ended.sort_by_key(|e| std::cmp::Reverse(e.1));
        let ended: Vec<String> = ended.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let known = || procs.iter().filter(|p| p.unknown.is_none());
        let blocked: f64 = known().filter_map(|p| p.blocked_ms).sum();
        writeln!(
            f,
            "\nprocesses: {} ({}); their rows add up to {} sent, {} received, {} drops, \
             {} ms blocked",
            procs.len(),
            ended.join(", "),
            known().map(|p| p.sent).sum::<u64>(),
            known().map(|p| p.received).sum::<u64>(),
            known().map(|p| p.drops).sum::<u64>(),
            opt_ms(Some(blocked))
        )?;
        if !procs.is_empty() {
            writeln!(
                f,
                "\ntop {TOP_ROWS} processes by messages (sent + received):"
            )?;
            process_header(f)?;
            for i in top_by(procs, TOP_ROWS, |p| p.sent + p.received) {
                process_row(f, &procs[i])?;
            }
            writeln!(f, "\ntop {TOP_ROWS} processes by time blocked:")?;
            process_header(f)?;
            for i in top_by(procs, TOP_ROWS, |p| Ms(p.blocked_ms.unwrap_or(0.0))) {
                process_row(f, &procs[i])?;
            }
        }
        let queues = &r.queues;
        if !queues.is_empty() {
            writeln!(
                f,
                "\nqueues: {}; their rows add up to {} sent, {} dropped, {} received",
                queues.len(),
                queues.iter().map(|q| q.sent).sum::<u64>(),
                queues.iter().map(|q| q.dropped).sum::<u64>(),
                queues.iter().map(|q| q.received).sum::<u64>()
            )?;
            writeln!(f, "\ntop {TOP_ROWS} queues by messages (sent):")?;
            queue_header(f)?;
            for i in top_by(queues, TOP_ROWS, |q| q.sent) {
                queue_row(f, &queues[i])?;
            }
            writeln!(f, "\ntop {TOP_ROWS} queues by largest length:")?;
            queue_header(f)?;
            for i in top_by(queues, TOP_ROWS, |q| q.max_len.unwrap_or(0)) {
                queue_row(f, &queues[i])?;
            }
        }
        writeln!(
            f,
            "\n(a summary of {} processes and {} queues: every row with --all-rows, or in --json)",
            procs.len(),
            queues.len()
        )
    }
}

impl fmt::Display for RunText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this = self.result;
        writeln!(f, "scenario: {} ({})", this.scenario, this.file)?;
        match (this.seed, &this.scheduler, this.steps) {
            (Some(seed), Some(s), Some(steps)) => writeln!(
                f,
                "backend sim, seed {seed}, {s} scheduler, {steps} steps, virtual time {:.3} ms",
                this.time_ms
            )?,
            _ if this.backend == "os" => {
                writeln!(
                    f,
                    "backend os: real Linux processes (run {}), time scale {}, wall time {:.3} ms",
                    this.run_id.as_deref().unwrap_or("?"),
                    this.time_scale.unwrap_or(1.0),
                    this.time_ms
                )?;
                writeln!(
                    f,
                    "not deterministic: times, latencies and queue lengths change from run to run; \
                     queue lengths are sampled about every millisecond (system mailboxes only), \
                     blocked ms is wall time inside IPC calls"
                )?
            }
            _ => writeln!(
                f,
                "backend {}, wall time {:.3} ms",
                this.backend, this.time_ms
            )?,
        }
        if this.is_summarised(self.all_rows) {
            self.summary(f)?;
        } else {
            writeln!(f)?;
            process_header(f)?;
            for p in &this.processes {
                process_row(f, p)?;
            }
            if !this.queues.is_empty() {
                writeln!(f)?;
                queue_header(f)?;
                for q in &this.queues {
                    queue_row(f, q)?;
                }
            }
        }
        let m = &this.messages;
        match &m.incomplete {
            None => writeln!(
                f,
                "\nmessages: {} sent, {} received, {} dropped, {} failed sends, {} lost",
                m.sent, m.received, m.dropped, m.send_failures, m.lost
            )?,
            Some(why) => writeln!(
                f,
                "\nmessages: {} sent, {} received, {} dropped, {} failed sends, lost unknown \
                 (the queue rows and these totals count only the processes that reported: {why})",
                m.sent, m.received, m.dropped, m.send_failures
            )?,
        }
        for inv in &this.invariants {
            match &inv.message {
                None => writeln!(f, "invariant `{}`: held", inv.name)?,
                Some(msg) => writeln!(f, "invariant `{}`: FAILED: {msg}", inv.name)?,
            }
        }
        if let Some(note) = &this.trace_note {
            writeln!(f, "{note}")?;
        }
        match &this.failure {
            None => writeln!(f, "result: ok"),
            Some(why) => {
                writeln!(f, "result: FAILED: {why}")?;
                if let Some(s) = &this.schedule {
                    writeln!(f, "schedule: {s}")?;
                }
                Ok(())
            }
        }
    }
}
