//! A large run's report in one screen: the totals, and the top processes
//! and queues, instead of one row per process.
//!
//! A run of 100,000 processes has a report of 100,000 rows, which nobody
//! reads. Printed ([`Report`]'s `Display`), a report with more than
//! [`FULL_TABLE_ROWS`] processes or queues is a [`Summary`]: how many
//! processes ended how, the message totals over every row, then the
//! [`TOP_ROWS`] processes that exchanged the most messages and those
//! blocked the longest, and the queues that carried the most messages and
//! held the most at once. Every row is still in the [`Report`]
//! ([`Report::procs`], [`Report::ports`]), and [`Report::full_table`] prints
//! them all. The totals are sums over every row, so they add up whatever
//! the top lists leave out.
//!
//! The top lists are deterministic: ties go to the lower index (the process
//! spawned first, the queue made first).
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{Inherit, Sim};
//!
//! let mut sim = Sim::builder().seed(1).build();
//! for i in 0..100u64 {
//!     let q = sim.port(&format!("q{i}"), Capacity::Bounded(1)).unwrap();
//!     sim.spawn_with(&format!("tx{i}"), &[Inherit::send(q)], move |p| {
//!         for _ in 0..=i % 3 {
//!             p.send(p.right(0), Message::from_u64(1, 7))?;
//!         }
//!         Ok(())
//!     }).unwrap();
//!     sim.spawn_with(&format!("rx{i}"), &[Inherit::receive(q)], move |p| {
//!         for _ in 0..=i % 3 {
//!             p.receive(p.right(0))?;
//!         }
//!         Ok(())
//!     }).unwrap();
//! }
//! let report = sim.run().unwrap();
//! let summary = report.summary(5);
//! assert_eq!(summary.processes, 200);
//! assert_eq!(summary.sent, 34 + 2 * 33 + 3 * 33);
//! assert_eq!(summary.received, summary.sent);
//! assert_eq!(summary.top_by_messages.len(), 5);
//! // The busiest first: a pair that sent three messages.
//! assert_eq!(report.procs[summary.top_by_messages[0]].stats.sent, 3);
//! let text = report.to_string();
//! assert!(text.contains("top 10 processes by messages"), "{text}");
//! assert!(text.lines().count() < 60);
//! ```

use std::fmt;
use std::time::Duration;

use crate::process::ExitStatus;
use crate::report::{PortReport, ProcReport, Report};

/// A report with at most this many processes and at most this many
/// queues prints every row; a larger one prints its [`Summary`].
pub const FULL_TABLE_ROWS: usize = 40;

/// How many rows each top list of a printed summary has.
pub const TOP_ROWS: usize = 10;

/// How a report prints: the report's data are module [`report`](crate::report)'s,
/// the ways of showing them this module's.
impl Report {
    /// What the report adds up to, with top lists of `top` rows
    /// ([`Summary`]).
    pub fn summary(&self, top: usize) -> Summary {
        Summary::of(self, top)
    }
    /// The report's rows, printed as its summary with top lists of `top`
    /// rows (what `Display` prints for a large run).
    pub fn summary_table(&self, top: usize) -> SummaryTable<'_> {
        SummaryTable { report: self, top }
    }
    /// The report's rows, printed every one (what `Display` prints for a
    /// run of at most [`FULL_TABLE_ROWS`]
    /// processes and queues).
    pub fn full_table(&self) -> FullTable<'_> {
        FullTable { report: self }
    }
}

/// The run's line, then every row, or for a large run its summary
/// (this module).
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run: seed {} ({}), {} steps, virtual time {:?}",
            self.seed, self.scheduler, self.steps, self.end_time
        )?;
        if self.procs.len() <= FULL_TABLE_ROWS && self.ports.len() <= FULL_TABLE_ROWS {
            write!(f, "{}", self.full_table())?;
        } else {
            write!(f, "{}", self.summary_table(TOP_ROWS))?;
        }
        if let Some(note) = self.trace.truncation_note() {
            writeln!(f, "{note}")?;
        }
        Ok(())
    }
}

/// The indices of the (at most) `k` items with the largest `key`, largest
/// first; among equal keys the lower index first.
pub fn top_by<T, K: Ord>(items: &[T], k: usize, key: impl Fn(&T) -> K) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    let by = |a: &usize, b: &usize| key(&items[*b]).cmp(&key(&items[*a])).then(a.cmp(b));
    if k < order.len() {
        // Partition around the k-th, then sort only the k kept.
        order.select_nth_unstable_by(k, by);
        order.truncate(k);
    }
    order.sort_unstable_by(by);
    order
}

/// What a report adds up to, and its busiest rows (module docs).
#[derive(Clone, PartialEq, Debug)]
pub struct Summary {
    /// Processes in the run.
    pub processes: usize,
    /// How they ended: `(status kind, count)`, most common first (the kind
    /// is `exited(CODE)`, `failed(CODE)`, `killed`, `panicked` or `stuck`;
    /// a failure's text is in its row).
    pub ended: Vec<(String, usize)>,
    /// Messages sent, over every process.
    pub sent: u64,
    /// Messages received, over every process.
    pub received: u64,
    /// Sends a drop policy discarded, over every process.
    pub drops: u64,
    /// Sends that failed, over every process.
    pub send_failures: u64,
    /// Time blocked in the kernel, over every process.
    pub blocked: Duration,
    /// The processes that sent and received the most messages (indices
    /// into [`Report::procs`]).
    pub top_by_messages: Vec<usize>,
    /// The processes blocked the longest (indices into [`Report::procs`]).
    pub top_by_blocked: Vec<usize>,
    /// Watched queues in the run.
    pub queues: usize,
    /// Messages the queues accepted, over every queue.
    pub queue_messages: u64,
    /// Messages the queues' drop policies discarded, over every queue.
    pub queue_drops: u64,
    /// The queues that accepted the most messages (indices into
    /// [`Report::ports`]).
    pub top_queues_by_messages: Vec<usize>,
    /// The queues that held the most messages at once (indices into
    /// [`Report::ports`]).
    pub top_queues_by_length: Vec<usize>,
}

/// The kind of an exit status, without a failure's text.
fn kind_of(status: &ExitStatus) -> String {
    match status {
        ExitStatus::Exited(c) => format!("exited({c})"),
        ExitStatus::Failed { code, .. } => format!("failed({code})"),
        ExitStatus::Killed => "killed".into(),
        ExitStatus::Panicked(_) => "panicked".into(),
        ExitStatus::Stuck => "stuck".into(),
    }
}

impl Summary {
    /// The summary of `report`, with top lists of `top` rows.
    pub fn of(report: &Report, top: usize) -> Summary {
        let procs = &report.procs;
        let mut ended: Vec<(String, usize)> = Vec::new();
        for p in procs {
            let kind = kind_of(&p.status);
            match ended.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => ended.push((kind, 1)),
            }
        }
        // Most common first; a stable sort keeps first-seen order on ties.
        ended.sort_by_key(|e| std::cmp::Reverse(e.1));
        let sum = |f: fn(&ProcReport) -> u64| procs.iter().map(f).sum::<u64>();
        Summary {
            processes: procs.len(),
            ended,
            sent: sum(|p| p.stats.sent),
            received: sum(|p| p.stats.received),
            drops: sum(|p| p.stats.drops),
            send_failures: sum(|p| p.stats.send_failures),
            blocked: procs.iter().map(|p| p.stats.blocked).sum(),
            top_by_messages: top_by(procs, top, |p| p.stats.sent + p.stats.received),
            top_by_blocked: top_by(procs, top, |p| p.stats.blocked),
            queues: report.ports.len(),
            queue_messages: report.ports.iter().map(|q| q.messages).sum(),
            queue_drops: report.ports.iter().map(|q| q.drops).sum(),
            top_queues_by_messages: top_by(&report.ports, top, |q| q.messages),
            top_queues_by_length: top_by(&report.ports, top, |q| q.max_occupancy),
        }
    }
}

/// Writes the process table's header.
pub(crate) fn proc_header(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:<16} {:>6} {:>8} {:>8} {:>6} {:>12}  status",
        "process", "pid", "sent", "recv", "drops", "blocked"
    )
}

/// Writes one process row.
pub(crate) fn proc_row(f: &mut fmt::Formatter<'_>, p: &ProcReport) -> fmt::Result {
    writeln!(
        f,
        "{:<16} {:>6} {:>8} {:>8} {:>6} {:>12?}  {}",
        p.name, p.pid, p.stats.sent, p.stats.received, p.stats.drops, p.stats.blocked, p.status
    )
}

/// Writes the queue table's header.
pub(crate) fn queue_header(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:<16} {:>12} {:>8} {:>6} {:>6} {:>8}",
        "queue", "capacity", "msgs", "drops", "max", "mean"
    )
}

/// Writes one queue row.
pub(crate) fn queue_row(f: &mut fmt::Formatter<'_>, q: &PortReport) -> fmt::Result {
    let cap = q.capacity.map(|c| c.to_string()).unwrap_or_default();
    let mean = q
        .mean_occupancy
        .map(|m| format!("{m:.3}"))
        .unwrap_or_else(|| "-".into());
    writeln!(
        f,
        "{:<16} {:>12} {:>8} {:>6} {:>6} {:>8}",
        q.label, cap, q.messages, q.drops, q.max_occupancy, mean
    )
}

/// A report printed as its summary ([`Report::summary_table`]).
pub struct SummaryTable<'a> {
    pub(crate) report: &'a Report,
    pub(crate) top: usize,
}

impl fmt::Display for SummaryTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        let s = Summary::of(r, self.top);
        let ended: Vec<String> = s.ended.iter().map(|(k, n)| format!("{n} {k}")).collect();
        writeln!(
            f,
            "processes: {} ({}); messages: {} sent, {} received, {} dropped, {} failed sends; \
             blocked {:?} in all",
            s.processes,
            ended.join(", "),
            s.sent,
            s.received,
            s.drops,
            s.send_failures,
            s.blocked
        )?;
        if !s.top_by_messages.is_empty() {
            writeln!(
                f,
                "top {} processes by messages (sent + received):",
                self.top
            )?;
            proc_header(f)?;
            for &i in &s.top_by_messages {
                proc_row(f, &r.procs[i])?;
            }
            writeln!(f, "top {} processes by time blocked:", self.top)?;
            proc_header(f)?;
            for &i in &s.top_by_blocked {
                proc_row(f, &r.procs[i])?;
            }
        }
        if s.queues > 0 {
            writeln!(
                f,
                "queues: {}; {} messages accepted, {} dropped",
                s.queues, s.queue_messages, s.queue_drops
            )?;
            writeln!(f, "top {} queues by messages:", self.top)?;
            queue_header(f)?;
            for &i in &s.top_queues_by_messages {
                queue_row(f, &r.ports[i])?;
            }
            writeln!(f, "top {} queues by largest length:", self.top)?;
            queue_header(f)?;
            for &i in &s.top_queues_by_length {
                queue_row(f, &r.ports[i])?;
            }
        }
        writeln!(
            f,
            "({} processes and {} queues in all: every row is in the report, `Report::full_table` prints them)",
            s.processes, s.queues
        )
    }
}

/// A report printed with every row ([`Report::full_table`]).
pub struct FullTable<'a> {
    pub(crate) report: &'a Report,
}

impl fmt::Display for FullTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        proc_header(f)?;
        for p in &r.procs {
            proc_row(f, p)?;
        }
        if !r.ports.is_empty() {
            queue_header(f)?;
            for q in &r.ports {
                queue_row(f, q)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::top_by;

    #[test]
    fn top_by_keeps_the_largest_in_order_ties_by_index() {
        let v = [3, 9, 1, 9, 4, 0, 7];
        assert_eq!(top_by(&v, 3, |x| *x), [1, 3, 6]);
        assert_eq!(top_by(&v, 0, |x| *x), Vec::<usize>::new());
        assert_eq!(top_by(&v, 10, |x| *x), [1, 3, 6, 4, 0, 2, 5]);
        // Against a full sort, on many sizes.
        for n in 0..60usize {
            let v: Vec<u64> = (0..n as u64).map(|i| (i * 7919) % 13).collect();
            let mut all: Vec<usize> = (0..n).collect();
            all.sort_by(|a, b| v[*b].cmp(&v[*a]).then(a.cmp(b)));
            for k in [0, 1, 5, 13, n] {
                let want: Vec<usize> = all.iter().copied().take(k).collect();
                assert_eq!(top_by(&v, k, |x| *x), want, "n {n} k {k}");
            }
        }
    }
}
