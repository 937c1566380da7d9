//! Traces: every event of a run, with its virtual time and process.
//!
//! The simulator appends an [`Event`] for each IPC operation as it starts,
//! blocks and completes, for each right inherited, each message dropped by a
//! drop policy, each `work`/`sleep`, kill and exit. Events carry task-local
//! names; the [`Trace`] keeps the labels given to ports (`Sim::port`,
//! `Proc::label`) so exporters can print "jobs" rather than "3.1".
//!
//! Three exporters, one file each:
//! * [`Trace::to_json_lines`] (`jsonl.rs`): one JSON object per line; the
//!   canonical byte form, which [`Trace::hash`] digests;
//! * [`Trace::to_mermaid`] (`mermaid.rs`): a Mermaid sequence diagram;
//! * [`Trace::to_chrome_json`] (`chrome.rs`): Chrome trace-event JSON, which
//!   Perfetto (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Same seed, same program: the same trace, byte for byte.
//!
//! A trace is bounded: past [`SimBuilder::trace_limit`] events (default
//! [`DEFAULT_TRACE_LIMIT`]) a run keeps its first half-limit events and its
//! last half-limit ones, and counts the events in between ([`Trace::gap`]),
//! so a livelock that runs into the step limit does not fill the memory.
//! The exporters mark the gap. The schedule is never cut: a cut run replays
//! in full.
//!
//! [`SimBuilder::trace_limit`]: crate::SimBuilder::trace_limit
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{EventKind, Inherit, Sim};
//!
//! let mut sim = Sim::builder().seed(3).build();
//! let jobs = sim.port("jobs", Capacity::Zero).unwrap();
//! sim.spawn_with("tx", &[Inherit::send(jobs)], |p| {
//!     p.send(p.right(0), Message::from_u64(1, 1))?;
//!     Ok(())
//! }).unwrap();
//! sim.spawn_with("rx", &[Inherit::receive(jobs)], |p| {
//!     p.receive(p.right(0))?;
//!     Ok(())
//! }).unwrap();
//! let trace = sim.run().unwrap().trace;
//! assert_eq!(trace.count(|e| matches!(e, EventKind::SendCompleted { .. })), 1);
//! // The three exporters: JSON lines, Mermaid, Perfetto (Chrome trace events).
//! assert!(trace.to_json_lines().lines().all(|l| l.starts_with('{')));
//! assert!(trace.to_mermaid().starts_with("sequenceDiagram"));
//! assert!(trace.to_chrome_json().contains("traceEvents"));
//! ```

pub mod chrome;
pub mod jsonl;
pub mod mermaid;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use mkipc_kernel::{PortName, ReceiveError, SendErrorKind};

use crate::process::ExitStatus;
use crate::ProcId;

/// What an operation addressed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// A port, port set or mailbox, by the acting task's name for it.
    Name(PortName),
    /// A select over this many names.
    AnyOf(usize),
    /// A task over the direct link.
    Task(u32),
    /// Any direct link into the acting task.
    AnyTask,
}

/// How a send ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendOutcome {
    /// Queued or handed to a receiver.
    Delivered,
    /// Discarded by the drop-newest policy.
    Dropped,
    /// Queued after discarding the oldest queued message.
    Displaced,
    /// Failed; the message went back to the sender.
    Failed(SendErrorKind),
}

/// Why a process was killed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KillCause {
    /// A fault planned at a scheduling step.
    AtStep(u64),
    /// A fault planned at a virtual time.
    AtTime(Duration),
    /// A random fault.
    Random,
    /// Another process (or the test) asked for it.
    Requested,
}

/// One thing that happened.
#[derive(Clone, PartialEq, Debug)]
pub enum EventKind {
    /// The process was created (by `parent`, or by the test when `None`).
    Spawned {
        /// The creating process.
        parent: Option<ProcId>,
    },
    /// Rights were copied or moved into the process at creation.
    RightsInherited {
        /// How many.
        count: usize,
    },
    /// A send began.
    SendStarted {
        /// Destination.
        to: Target,
        /// Message id.
        msg_id: u32,
        /// Rights carried (reply right included).
        rights: usize,
    },
    /// The send must wait.
    SendBlocked {
        /// Destination.
        to: Target,
    },
    /// The send finished.
    SendCompleted {
        /// Destination.
        to: Target,
        /// Message id.
        msg_id: u32,
        /// How it ended.
        outcome: SendOutcome,
    },
    /// A receive began.
    ReceiveStarted {
        /// Source.
        from: Target,
    },
    /// The receive must wait.
    ReceiveBlocked {
        /// Source.
        from: Target,
    },
    /// A message arrived.
    Received {
        /// Source.
        from: Target,
        /// Message id.
        msg_id: u32,
        /// Sending task's pid, if known.
        sender: Option<u32>,
        /// Rights carried (reply right included).
        rights: usize,
    },
    /// The receive failed.
    ReceiveFailed {
        /// Source.
        from: Target,
        /// Why.
        error: ReceiveError,
    },
    /// Another IPC operation (port allocation, rights, mailboxes, names).
    Op {
        /// Its name.
        op: &'static str,
        /// Whether it succeeded.
        ok: bool,
    },
    /// Busy for this long (virtual).
    Work {
        /// Duration.
        duration: Duration,
    },
    /// Asleep for this long (virtual).
    Sleep {
        /// Duration.
        duration: Duration,
    },
    /// A timed wait ran out.
    TimedOut,
    /// The process was killed.
    Killed {
        /// Why.
        cause: KillCause,
    },
    /// The process ended.
    Exited {
        /// How.
        status: ExitStatus,
    },
}

/// An event with its place in the run.
#[derive(Clone, PartialEq, Debug)]
pub struct Event {
    /// Scheduling step at which it happened.
    pub step: u64,
    /// Virtual time.
    pub time: Duration,
    /// The acting process.
    pub proc: ProcId,
    /// What happened.
    pub kind: EventKind,
}

/// A process as the trace names it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProcLabel {
    /// The name given at spawn.
    pub name: String,
    /// The kernel pid.
    pub pid: u32,
}

/// How many events a run's trace keeps by default (see
/// [`SimBuilder::trace_limit`](crate::SimBuilder::trace_limit)): about 9 MB
/// of events; the longest trace of the workspace's examples and tests has
/// about 4,000.
pub const DEFAULT_TRACE_LIMIT: usize = 100_000;

/// Where a bounded trace left events out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TraceGap {
    /// Index in [`Trace::events`] of the first event after the gap: the
    /// events before it are the run's first ones, the events from it on are
    /// its last ones (it equals `events.len()` when none of the last were kept).
    pub index: usize,
    /// How many events were left out.
    pub dropped: u64,
}

/// The events of a run, with the names needed to print them.
#[derive(Clone, Default, PartialEq, Debug)]
pub struct Trace {
    /// Events in order (with a gap if [`Trace::gap`] says so).
    pub events: Vec<Event>,
    /// Processes, indexed by [`ProcId`].
    pub procs: Vec<ProcLabel>,
    /// Labels of names: `(pid, name) -> label`.
    pub labels: BTreeMap<(u32, PortName), String>,
    /// `Some` when the run recorded more events than
    /// [`SimBuilder::trace_limit`](crate::SimBuilder::trace_limit) allows and
    /// the middle of the trace was left out; `None` for a whole trace.
    pub gap: Option<TraceGap>,
}

impl Trace {
    /// The name of a process.
    pub fn proc_name(&self, p: ProcId) -> &str {
        self.procs
            .get(p.0 as usize)
            .map(|l| l.name.as_str())
            .unwrap_or("?")
    }

    /// A printable name for a target as seen by process `p`.
    pub fn target_name(&self, p: ProcId, t: Target) -> String {
        let pid = self.procs.get(p.0 as usize).map(|l| l.pid).unwrap_or(0);
        match t {
            Target::Name(n) => match self.labels.get(&(pid, n)) {
                Some(l) => l.clone(),
                None => format!("{}:{}", self.proc_name(p), n),
            },
            Target::AnyOf(k) => format!("any of {k}"),
            Target::Task(t) => match self.procs.iter().find(|l| l.pid == t) {
                Some(l) => l.name.clone(),
                None => format!("pid {t}"),
            },
            Target::AnyTask => "any task".to_string(),
        }
    }

    /// A 64-bit FNV-1a digest of [`Trace::to_json_lines`]: equal traces,
    /// equal hashes, on every machine and Rust version.
    pub fn hash(&self) -> u64 {
        fnv1a(self.to_json_lines().as_bytes())
    }

    /// How many events of a kind satisfy `f` (among the events kept).
    pub fn count(&self, f: impl Fn(&EventKind) -> bool) -> usize {
        self.events.iter().filter(|e| f(&e.kind)).count()
    }

    /// How many events the trace left out (0 for a whole trace).
    pub fn events_dropped(&self) -> u64 {
        self.gap.map_or(0, |g| g.dropped)
    }

    /// Whether events were left out (see [`Trace::gap`]).
    pub fn is_truncated(&self) -> bool {
        self.gap.is_some()
    }

    /// For a cut trace, the one line the exporters and [`Report`]'s display
    /// print at the gap (how many events were left out, how many kept, and
    /// the option that sets the limit); `None` for a whole trace.
    ///
    /// [`Report`]: crate::Report
    pub fn truncation_note(&self) -> Option<String> {
        self.gap.map(|g| {
            format!(
                "trace truncated: {} events after the first {} left out, the last {} kept \
                 (SimBuilder::trace_limit)",
                g.dropped,
                g.index,
                self.events.len() - g.index
            )
        })
    }
}

/// The events of a run as it goes: the first `head_cap` events, then a ring
/// of the last `tail_cap`, counting the events pushed out of the ring.
/// Memory stays within `head_cap + tail_cap` events however long the run.
#[derive(Debug)]
pub(crate) struct TraceBuffer {
    head: Vec<Event>,
    tail: VecDeque<Event>,
    head_cap: usize,
    tail_cap: usize,
    dropped: u64,
}

impl TraceBuffer {
    /// A buffer keeping at most `limit` events: the first `limit - limit / 2`
    /// and the last `limit / 2`.
    pub(crate) fn new(limit: usize) -> TraceBuffer {
        let tail_cap = limit / 2;
        TraceBuffer {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap: limit - tail_cap,
            tail_cap,
            dropped: 0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, e: Event) {
        let n = self.head.len();
        if n < self.head_cap {
            if n == self.head.capacity() {
                // Doubling, but never past the cap.
                self.head.reserve_exact(n.max(16).min(self.head_cap - n));
            }
            self.head.push(e);
            return;
        }
        let n = self.tail.len();
        if n == self.tail_cap {
            self.dropped += 1;
            if self.tail.pop_front().is_none() {
                return; // no tail kept at all
            }
        } else if n == self.tail.capacity() {
            self.tail.reserve_exact(n.max(16).min(self.tail_cap - n));
        }
        self.tail.push_back(e);
    }

    /// Forgets every event (keeping the memory), as a new buffer of the
    /// same limit would be.
    pub(crate) fn clear(&mut self) {
        self.head.clear();
        self.tail.clear();
        self.dropped = 0;
    }

    /// The events kept, in order, and the gap if some were left out.
    pub(crate) fn take(&mut self) -> (Vec<Event>, Option<TraceGap>) {
        let mut events = std::mem::take(&mut self.head);
        let index = events.len();
        events.extend(std::mem::take(&mut self.tail));
        let dropped = std::mem::take(&mut self.dropped);
        (events, (dropped > 0).then_some(TraceGap { index, dropped }))
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Appends `s` to `out` as a JSON string literal.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: u64) -> Event {
        Event {
            step,
            time: Duration::ZERO,
            proc: ProcId(0),
            kind: EventKind::TimedOut,
        }
    }

    fn steps(buffer: &mut TraceBuffer) -> (Vec<u64>, Option<(usize, u64)>) {
        let (events, gap) = buffer.take();
        (
            events.iter().map(|e| e.step).collect(),
            gap.map(|g| (g.index, g.dropped)),
        )
    }

    #[test]
    fn keeps_the_first_and_the_last_half_in_order() {
        // limit 7: the first 4 and the last 3.
        let mut b = TraceBuffer::new(7);
        for step in 0..6 {
            b.push(event(step));
        }
        assert_eq!(steps(&mut b), (vec![0, 1, 2, 3, 4, 5], None));
        for n in [7, 8, 9, 10, 11, 25] {
            b.clear();
            for step in 0..n {
                b.push(event(step));
            }
            let last: Vec<u64> = (n - 3..n).collect();
            let kept: Vec<u64> = (0..4).chain(last).collect();
            assert_eq!(
                steps(&mut b),
                (kept, (n > 7).then_some((4, n - 7))),
                "{n} events"
            );
        }
    }

    #[test]
    fn without_a_ring_later_events_are_counted_only() {
        let mut b = TraceBuffer::new(1);
        for step in 0..5 {
            b.push(event(step));
        }
        assert_eq!(steps(&mut b), (vec![0], Some((1, 4))));
        let mut b = TraceBuffer::new(0);
        b.push(event(0));
        assert_eq!(steps(&mut b), (vec![], Some((0, 1))));
    }
}
