//! Traces are bounded: a run that goes on and on (a livelock stopped by the
//! step limit) keeps the first and last events and says how many it left
//! out, while its schedule stays whole and replays the run exactly.

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{
    ms, EventKind, FailureReason, Inherit, Report, Sim, SimBuilder, TraceGap, DEFAULT_TRACE_LIMIT,
};

/// A livelock of a million steps (one `Work` event per step) keeps at most
/// the default number of events: before the limit it kept all 1,000,001.
#[test]
fn a_livelock_keeps_a_bounded_trace() {
    let steps = 1_000_000;
    let mut sim = Sim::builder().seed(1).max_steps(steps).build();
    sim.spawn("spinner", |p| loop {
        p.work(ms(1));
    });
    let failure = sim.run().expect_err("a livelock reaches the step limit");
    assert_eq!(failure.reason, FailureReason::StepLimit(steps));
    let report = &failure.report;
    let trace = &report.trace;
    assert_eq!(trace.events.len(), DEFAULT_TRACE_LIMIT);
    // `Spawned` plus one `Work` per step were recorded.
    let recorded = 1 + steps;
    assert_eq!(
        trace.gap,
        Some(TraceGap {
            index: DEFAULT_TRACE_LIMIT / 2,
            dropped: recorded - DEFAULT_TRACE_LIMIT as u64,
        })
    );
    assert_eq!(
        report.events_dropped(),
        recorded - DEFAULT_TRACE_LIMIT as u64
    );
    // The first events are the run's first, the last its last.
    assert!(matches!(trace.events[0].kind, EventKind::Spawned { .. }));
    assert_eq!(trace.events[1].step, 1);
    assert_eq!(trace.events.last().unwrap().step, steps);
    assert!(report.to_string().contains("trace truncated"));
}

/// Two processes sending to each other forever: real choices every round.
fn livelock(builder: SimBuilder) -> Sim {
    let mut sim = builder.build();
    let a = sim.port("a", Capacity::Bounded(1)).unwrap();
    let b = sim.port("b", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("ping", &[Inherit::receive(a), Inherit::send(b)], |p| loop {
        p.send(p.right(1), Message::from_u64(1, 0))?;
        p.receive(p.right(0))?;
    })
    .unwrap();
    sim.spawn_with("pong", &[Inherit::receive(b), Inherit::send(a)], |p| loop {
        p.receive(p.right(0))?;
        p.send(p.right(1), Message::from_u64(1, 0))?;
    })
    .unwrap();
    sim
}

fn run_to_limit(builder: SimBuilder) -> Report {
    let failure = livelock(builder)
        .run()
        .expect_err("runs into the step limit");
    assert_eq!(failure.reason, FailureReason::StepLimit(5_000));
    *failure.report
}

/// A cut trace is the whole trace's first and last events, its schedule is
/// the whole schedule, and replaying it gives the same cut trace.
#[test]
fn a_cut_trace_is_the_ends_of_the_whole_one_and_replays() {
    let builder = Sim::builder().seed(9).max_steps(5_000);
    let whole = run_to_limit(builder.clone().trace_limit(usize::MAX));
    assert_eq!(whole.trace.gap, None);
    let cut = run_to_limit(builder.clone().trace_limit(100));
    let n = whole.trace.events.len();
    assert!(n > 5_000, "{n} events");
    assert_eq!(cut.trace.events.len(), 100);
    assert_eq!(cut.trace.events[..50], whole.trace.events[..50]);
    assert_eq!(cut.trace.events[50..], whole.trace.events[n - 50..]);
    assert_eq!(cut.events_dropped(), (n - 100) as u64);
    assert!(cut.schedule.choices.len() > 1_000);
    assert_eq!(cut.schedule, whole.schedule);
    assert_eq!((cut.steps, cut.end_time), (whole.steps, whole.end_time));

    let replayed = run_to_limit(builder.trace_limit(100).replay(cut.schedule.clone()));
    assert!(!replayed.replay_diverged);
    assert_eq!(replayed.trace, cut.trace);
    assert_eq!(replayed.trace.hash(), cut.trace.hash());
}

/// Every exporter marks the gap, once, between the first and last events;
/// a whole trace has no mark.
#[test]
fn exporters_mark_the_gap() {
    let builder = Sim::builder().seed(3).max_steps(5_000);
    let cut = run_to_limit(builder.clone().trace_limit(7));
    assert_eq!(cut.trace.gap.map(|g| g.index), Some(4));
    let jsonl = cut.trace.to_json_lines();
    let lines: Vec<&str> = jsonl.lines().collect();
    assert_eq!(lines.len(), 8);
    assert!(lines[4].starts_with(&format!(
        "{{\"ev\":\"trace_truncated\",\"dropped\":{},",
        cut.events_dropped()
    )));
    let mermaid = cut.trace.to_mermaid();
    assert_eq!(mermaid.matches("trace truncated").count(), 1);
    assert!(mermaid.contains("Note over p0_ping,p1_pong: trace truncated"));
    let chrome = cut.trace.to_chrome_json();
    assert_eq!(chrome.matches("trace truncated").count(), 1);
    // Slices are balanced: each begin has its end.
    assert_eq!(
        chrome.matches("\"ph\":\"B\"").count(),
        chrome.matches("\"ph\":\"E\"").count() + open_at_end(&cut),
    );

    // Only the first event kept (a limit of 1 keeps no last events).
    let one = run_to_limit(builder.clone().trace_limit(1));
    assert_eq!(one.trace.events.len(), 1);
    assert_eq!(one.trace.gap.map(|g| g.index), Some(1));
    assert!(one
        .trace
        .to_json_lines()
        .lines()
        .nth(1)
        .unwrap()
        .contains("trace_truncated"));

    let whole = run_to_limit(builder.trace_limit(usize::MAX));
    for text in [
        whole.trace.to_json_lines(),
        whole.trace.to_mermaid(),
        whole.trace.to_chrome_json(),
        whole.to_string(),
    ] {
        assert!(!text.contains("truncated"));
    }
}

/// Blocked slices the chrome exporter leaves open at the end of the trace
/// (processes still blocked when the run stopped).
fn open_at_end(r: &Report) -> usize {
    let mut open = vec![false; r.trace.procs.len()];
    let start = r.trace.gap.map_or(0, |g| g.index);
    for e in &r.trace.events[start..] {
        let i = e.proc.0 as usize;
        match e.kind {
            EventKind::SendBlocked { .. } | EventKind::ReceiveBlocked { .. } => open[i] = true,
            EventKind::SendCompleted { .. }
            | EventKind::Received { .. }
            | EventKind::ReceiveFailed { .. }
            | EventKind::Killed { .. }
            | EventKind::Exited { .. } => open[i] = false,
            _ => {}
        }
    }
    open.iter().filter(|&&b| b).count()
}
