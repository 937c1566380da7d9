//! Soundness of `check_topology` on random small scenarios: 2-4 processes,
//! 1-3 ports or mailboxes of capacity 0, 1, 2 or unbounded, sends,
//! receives, calls (answered by `reply`), plus a few unmatched or timed
//! operations. Each is run on a few seeds and exhaustively with a small
//! bound; whenever a run deadlocks, the check must not have called the
//! scenario deadlock-free, and must name a cycle among the stuck processes
//! or a stuck wait of one of them.
//!
//! Transfers are generated in matched pairs (a sender's `send q` and a
//! receiver's `receive q`), then each script is shuffled, so that many
//! scenarios are balanced (and can be proven deadlock-free) while their
//! order still can close a cycle.

use std::collections::BTreeSet;
use std::sync::Arc;

use mkipc::explore::{explore, ExploreOptions};
use mkipc::scenario::{self, check_topology, Scenario, TopologyReport, Verdict};
use mkipc::sim::{FailureReason, Sim};
use proptest::prelude::*;

/// One queue: a port (receiver: process `index % procs`, every process a
/// sender) or a system mailbox; capacity code 0 -> 0, 1 -> 1, 2 -> 2, 3 ->
/// unbounded.
#[derive(Clone, Debug)]
struct QueueGen {
    port: bool,
    capacity: u8,
}

/// `count` messages on `queue` from `from` to `to` (a port's receiver
/// replaces `to`), as calls if `call` and the queue is a port. `value`: 0
/// none, 1 `A`, 2 `(A, 1)`; `pattern`: 0 none, 1 `x`, 2 `A`, 3 `(A, n)`, 4
/// `_`, so that some receives set messages aside.
#[derive(Clone, Debug)]
struct Transfer {
    queue: usize,
    from: usize,
    to: usize,
    count: u8,
    call: bool,
    value: u8,
    pattern: u8,
}

#[derive(Clone, Debug)]
struct Gen {
    procs: usize,
    queues: Vec<QueueGen>,
    transfers: Vec<Transfer>,
    /// (process, queue, kind): 0 an unmatched send, 1 an unmatched
    /// receive, 2 a timed receive, 3 work, 4 a dropping send.
    extra: Vec<(usize, usize, u8)>,
    /// Sort keys that shuffle each script's units.
    keys: Vec<u16>,
    /// Whether transfers carry their values and patterns, and calls and
    /// extras are used (half the cases: the others stay countable, so that
    /// the cycle part alone must explain their deadlocks).
    values: bool,
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        2..=4usize,
        prop::collection::vec(
            (any::<bool>(), prop_oneof![2 => Just(0u8), 1 => 1..4u8])
                .prop_map(|(port, capacity)| QueueGen { port, capacity }),
            1..=3,
        ),
        prop::collection::vec(
            (
                (
                    0..3usize,
                    0..4usize,
                    0..4usize,
                    1..=2u8,
                    prop::bool::weighted(0.2),
                ),
                prop_oneof![1 => Just(0u8), 1 => 1..3u8],
                prop_oneof![1 => Just(0u8), 1 => 1..5u8],
            )
                .prop_map(|((queue, from, to, count, call), value, pattern)| {
                    Transfer {
                        queue,
                        from,
                        to,
                        count,
                        call,
                        value,
                        pattern,
                    }
                }),
            1..=6,
        ),
        prop::collection::vec((0..4usize, 0..3usize, 0..5u8), 0..=2),
        prop::collection::vec(any::<u16>(), 32),
        any::<bool>(),
    )
        .prop_map(|(procs, queues, transfers, extra, keys, values)| Gen {
            procs,
            queues,
            transfers,
            extra,
            keys,
            values,
        })
}

impl Gen {
    fn receiver_of(&self, q: usize) -> usize {
        q % self.procs
    }

    fn text(&self) -> String {
        let nq = self.queues.len();
        let mut out = String::new();
        let everyone: Vec<String> = (0..self.procs).map(|p| format!("\"P{p}\"")).collect();
        for (i, q) in self.queues.iter().enumerate() {
            let capacity = match q.capacity {
                0 => "0".to_string(),
                1 => "1".to_string(),
                2 => "2".to_string(),
                _ => "\"unbounded\"".to_string(),
            };
            if q.port {
                out.push_str(&format!(
                    "[[port]]\nname = \"q{i}\"\ncapacity = {capacity}\nreceiver = \"P{}\"\nsenders = [{}]\n\n",
                    self.receiver_of(i),
                    everyone.join(", ")
                ));
            } else {
                out.push_str(&format!(
                    "[[mailbox]]\nname = \"q{i}\"\ncapacity = {capacity}\n\n"
                ));
            }
        }
        // Units of lines per process, kept together when shuffled.
        let mut units: Vec<Vec<Vec<String>>> = vec![Vec::new(); self.procs];
        for t in &self.transfers {
            let q = t.queue % nq;
            let from = t.from % self.procs;
            let port = self.queues[q].port;
            let to = if port {
                self.receiver_of(q)
            } else {
                t.to % self.procs
            };
            // A plain case stays countable: no calls, no process on both
            // ends of a queue.
            let call = t.call && port && self.values;
            if !self.values && from == to {
                continue;
            }
            for _ in 0..t.count {
                if call {
                    units[from].push(vec![format!("call q{q}")]);
                    units[to].push(vec![format!("receive q{q}"), "reply".into()]);
                } else {
                    let (value, pattern) = if self.values {
                        (t.value % 3, t.pattern % 5)
                    } else {
                        (0, 0)
                    };
                    let value = ["", " A", " (A, 1)"][usize::from(value)];
                    let pattern = ["", " x", " A", " (A, n)", " _"][usize::from(pattern)];
                    units[from].push(vec![format!("send q{q}{value}")]);
                    units[to].push(vec![format!("receive q{q}{pattern}")]);
                }
            }
        }
        let extra = if self.values { &self.extra[..] } else { &[] };
        for &(p, q, kind) in extra {
            let q = q % nq;
            let receiver = if self.queues[q].port {
                self.receiver_of(q)
            } else {
                p % self.procs
            };
            let (p, line) = match kind {
                0 => (p % self.procs, format!("send q{q}")),
                1 => (receiver, format!("receive q{q}")),
                2 => (receiver, format!("receive q{q} timeout 1ms")),
                3 => (p % self.procs, "work 1ms".to_string()),
                _ => (p % self.procs, format!("send q{q} drop-newest")),
            };
            units[p].push(vec![line]);
        }
        let mut k = 0usize;
        for (p, mut us) in units.into_iter().enumerate() {
            let mut keyed: Vec<(u16, usize, Vec<String>)> = us
                .drain(..)
                .enumerate()
                .map(|(i, u)| {
                    k += 1;
                    (self.keys[k % self.keys.len()], i, u)
                })
                .collect();
            keyed.sort();
            let mut lines: Vec<String> = keyed.into_iter().flat_map(|(_, _, u)| u).collect();
            if lines.is_empty() {
                lines.push("work 1ms".into());
            }
            out.push_str(&format!(
                "[[process]]\nname = \"P{p}\"\nscript = \"\"\"\n{}\n\"\"\"\n\n",
                lines.join("\n")
            ));
        }
        out
    }
}

fn stuck_of(sim: Sim) -> Option<BTreeSet<String>> {
    match sim.run() {
        Err(f) => match f.reason {
            FailureReason::Deadlock(d) => Some(d.waiting.iter().map(|w| w.name.clone()).collect()),
            _ => None,
        },
        Ok(_) => None,
    }
}

fn explains(report: &TopologyReport, stuck: &BTreeSet<String>) -> Result<(), String> {
    if report.verdict == Verdict::DeadlockFree {
        return Err(format!("called deadlock-free, but {stuck:?} deadlock"));
    }
    let cycle_inside = report
        .cycles
        .iter()
        .any(|c| c.steps.iter().all(|s| stuck.contains(&s.process)));
    let stuck_wait = report
        .stuck_waits
        .iter()
        .any(|w| stuck.contains(&w.process));
    if cycle_inside || stuck_wait || !report.complete {
        Ok(())
    } else {
        Err(format!(
            "no cycle among the stuck {stuck:?} and no stuck wait of theirs"
        ))
    }
}

/// Every deadlock found on 8 seeds and by an exhaustive search of bound 4.
fn deadlocks(scn: &Scenario) -> Vec<BTreeSet<String>> {
    let shared = Arc::new(scn.clone());
    let mut out = Vec::new();
    for seed in 0..8 {
        if let Ok((sim, _h)) = scenario::build_sim(&shared, Sim::builder().seed(seed)) {
            out.extend(stuck_of(sim));
        }
    }
    let opts = ExploreOptions {
        jobs: 1,
        exhaustive: Some(4),
        // The simulator's own search: its schedules replay on the simulator.
        engine: mkipc::explore::Engine::Stateless,
        max_runs: 120,
        ..Default::default()
    };
    if let Ok(r) = explore(scn, &opts) {
        if let Some(f) = r.failure.filter(|f| f.deadlock) {
            let builder = Sim::builder().replay_str(&f.schedule).unwrap();
            if let Ok((sim, _h)) = scenario::build_sim(&shared, builder) {
                out.extend(stuck_of(sim));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn deadlock_free_means_no_deadlock(g in gen()) {
        let text = g.text();
        let Ok(scn) = scenario::parse("random.toml", &text) else {
            // Not every combination is a valid file (e.g. a call on a
            // port answered by its caller); those are not the point here.
            return Ok(());
        };
        let report = check_topology(&scn);
        for stuck in deadlocks(&scn) {
            if let Err(e) = explains(&report, &stuck) {
                prop_assert!(false, "{e}\n{text}\n{report}");
            }
        }
    }
}

/// The generator reaches every verdict, deadlocks included (the property
/// above would be empty otherwise).
#[test]
fn the_generator_reaches_every_verdict() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let mut free_runs = 0;
    let mut deadlocked = 0;
    let mut counted_deadlocks = 0;
    let mut counted_cycles = 0;
    for _ in 0..200 {
        let g = gen().new_tree(&mut runner).unwrap().current();
        let Ok(scn) = scenario::parse("random.toml", &g.text()) else {
            continue;
        };
        let r = check_topology(&scn);
        seen.insert(format!("{:?}", r.verdict));
        if r.verdict == Verdict::DeadlockFree {
            free_runs += 1;
        }
        if r.counts.is_none() && r.verdict == Verdict::CyclesPossible {
            counted_cycles += 1;
        }
        if !deadlocks(&scn).is_empty() {
            deadlocked += 1;
            // Deadlocks the counting argument does not excuse: only the
            // cycles explain them.
            if r.counts.is_none() {
                counted_deadlocks += 1;
            }
        }
    }
    eprintln!("{free_runs} deadlock-free, {deadlocked} deadlocking ({counted_deadlocks} countable), {counted_cycles} countable with cycles");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(free_runs >= 10, "only {free_runs} deadlock-free scenarios");
    assert!(deadlocked >= 10, "only {deadlocked} deadlocking scenarios");
    assert!(
        counted_deadlocks >= 10,
        "only {counted_deadlocks} deadlocks among countable scenarios"
    );
}
