//! Traces of the real-time backends: the simulator's [`Trace`], recorded by
//! the hosts that run scripts on threads and on OS processes, with real
//! timestamps (time since the run started, on `CLOCK_MONOTONIC`), so the
//! same exporters (JSON lines, Mermaid, Perfetto) work on every backend.
//!
//! A host records around each operation it makes: the start before the
//! system call, the completion after it, so a blocked receive shows as the
//! gap between its `receive_started` and `received`. The `step` of an
//! event is its place in the recorded order (one lock, so the order is the
//! order of the timestamps). What no host can see on a real backend (when a
//! send or receive started to wait) is not invented: there are no
//! `*_blocked` events. Queue labels come from each process's names for its
//! queues, written down when it ends.
//!
//! ```
//! use std::time::Instant;
//! use mkipc::scenario::Recorder;
//! use mkipc_sim::trace::EventKind;
//! use mkipc_sim::ProcId;
//!
//! let rec = Recorder::new(Instant::now());
//! rec.proc(ProcId(0), "producer", 7);
//! rec.emit(ProcId(0), EventKind::TimedOut);
//! let trace = rec.finish();
//! assert_eq!(trace.events.len(), 1);
//! assert_eq!(trace.proc_name(ProcId(0)), "producer");
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mkipc_kernel::runtime::{Destination, Source};
use mkipc_kernel::{Message, PortName, ReceiveError, SendError, Sent};
use mkipc_sim::trace::{EventKind, ProcLabel, SendOutcome, Target, TraceGap};
use mkipc_sim::{Event, ProcId, Trace, DEFAULT_TRACE_LIMIT};

/// Collects one run's events from every thread that records into it.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    events: Vec<Event>,
    procs: Vec<ProcLabel>,
    labels: BTreeMap<(u32, PortName), String>,
    dropped: u64,
}

impl Recorder {
    /// A recorder whose times count from `start`, keeping at most
    /// [`DEFAULT_TRACE_LIMIT`] events (the rest are counted in the gap).
    pub fn new(start: Instant) -> Recorder {
        Recorder::with_limit(start, DEFAULT_TRACE_LIMIT)
    }

    /// As [`Recorder::new`], keeping at most `limit` events.
    pub fn with_limit(start: Instant, limit: usize) -> Recorder {
        Recorder {
            start,
            limit,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names process `id` (its kernel or OS pid is `pid`).
    pub fn proc(&self, id: ProcId, name: &str, pid: u32) {
        let mut g = self.lock();
        let i = id.0 as usize;
        if g.procs.len() <= i {
            g.procs.resize(
                i + 1,
                ProcLabel {
                    name: "?".into(),
                    pid: 0,
                },
            );
        }
        g.procs[i] = ProcLabel {
            name: name.to_string(),
            pid,
        };
    }

    /// Labels process `pid`'s name `name` (a queue of the scenario).
    pub fn label(&self, pid: u32, name: PortName, label: &str) {
        self.lock().labels.insert((pid, name), label.to_string());
    }

    /// Records `kind` for `proc`, now.
    pub fn emit(&self, proc: ProcId, kind: EventKind) {
        let mut g = self.lock();
        let time = self.start.elapsed();
        push(&mut g, self.limit, proc, time, kind);
    }

    /// Records `kind` for `proc` at `time` since the start (for events
    /// recorded elsewhere, in another process, and merged here).
    pub fn emit_at(&self, proc: ProcId, time: Duration, kind: EventKind) {
        let mut g = self.lock();
        push(&mut g, self.limit, proc, time, kind);
    }

    /// The trace so far, in time order.
    pub fn finish(&self) -> Trace {
        let g = self.lock();
        let mut events = g.events.clone();
        // Events merged from other processes come in per process: put
        // everything in time order (stable, so one process's order stays).
        events.sort_by_key(|e| e.time);
        for (i, e) in events.iter_mut().enumerate() {
            e.step = i as u64;
        }
        let gap = (g.dropped > 0).then_some(TraceGap {
            index: events.len(),
            dropped: g.dropped,
        });
        Trace {
            events,
            procs: g.procs.clone(),
            labels: g.labels.clone(),
            gap,
        }
    }
}

fn push(g: &mut Inner, limit: usize, proc: ProcId, time: Duration, kind: EventKind) {
    if g.events.len() >= limit {
        g.dropped = g.dropped.saturating_add(1);
        return;
    }
    let step = g.events.len() as u64;
    g.events.push(Event {
        step,
        time,
        proc,
        kind,
    });
}

/// The trace's target for a send's destination.
pub(crate) fn dest_target(dest: Destination) -> Target {
    match dest {
        Destination::Name(n) => Target::Name(n),
        Destination::Task(pid) => Target::Task(pid.0),
    }
}

/// The trace's target for a receive's source.
pub(crate) fn source_target(source: &Source<'_>) -> Target {
    match source {
        Source::Name(n) => Target::Name(*n),
        Source::Any(names) => Target::AnyOf(names.len()),
        Source::Task(pid) => Target::Task(pid.0),
        Source::AnyTask => Target::AnyTask,
    }
}

/// A send's start, as the simulator records it.
pub(crate) fn send_started(to: Target, msg: &Message) -> EventKind {
    EventKind::SendStarted {
        to,
        msg_id: msg.id,
        rights: msg.rights().len() + usize::from(msg.reply().is_some()),
    }
}

/// A send's end, as the simulator records it.
pub(crate) fn send_completed(to: Target, msg_id: u32, r: &Result<Sent, SendError>) -> EventKind {
    let outcome = match r {
        Ok(Sent::Delivered) => SendOutcome::Delivered,
        Ok(Sent::Dropped) => SendOutcome::Dropped,
        Ok(Sent::Displaced) => SendOutcome::Displaced,
        Err(e) => SendOutcome::Failed(e.kind()),
    };
    EventKind::SendCompleted {
        to,
        msg_id,
        outcome,
    }
}

/// A receive's end, as the simulator records it.
pub(crate) fn receive_done(from: Target, r: Result<&Message, ReceiveError>) -> EventKind {
    match r {
        Ok(m) => EventKind::Received {
            from,
            msg_id: m.id,
            sender: m.sender().map(|p| p.0),
            rights: m.rights().len() + usize::from(m.reply().is_some()),
        },
        Err(error) => EventKind::ReceiveFailed { from, error },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_beyond_the_limit_are_counted_in_the_gap() {
        let rec = Recorder::with_limit(Instant::now(), 2);
        for _ in 0..5 {
            rec.emit(ProcId(0), EventKind::TimedOut);
        }
        let t = rec.finish();
        assert_eq!(t.events.len(), 2);
        assert_eq!(t.gap.map(|g| (g.index, g.dropped)), Some((2, 3)));
    }

    #[test]
    fn merged_events_come_out_in_time_order_with_steps_renumbered() {
        let rec = Recorder::new(Instant::now());
        rec.emit_at(ProcId(1), Duration::from_millis(5), EventKind::TimedOut);
        rec.emit_at(ProcId(0), Duration::from_millis(1), EventKind::TimedOut);
        let t = rec.finish();
        let order: Vec<(u64, u32)> = t.events.iter().map(|e| (e.step, e.proc.0)).collect();
        assert_eq!(order, [(0, 0), (1, 1)]);
    }
}
