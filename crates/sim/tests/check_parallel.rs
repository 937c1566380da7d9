//! The parallel search gives the same answer whatever the number of
//! workers, and its shards together give the answer of one search.
//!
//! On random models (`random_models/models.rs`, shared with `check_soundness.rs`:
//! ports and mailboxes of every capacity, every `OnFull` policy, receives,
//! selects, timeouts, pauses, choices, a server, failing and panicking
//! processes), with the partial-order reduction on and off:
//! * 1, 2 and 4 workers store the same states, take the same transitions,
//!   reach the same end states and report the same failures with the same
//!   trails, in the same order;
//! * the parallel search (whose cycle proviso works by levels) reaches the
//!   failures and terminal states of the sequential full search;
//! * the shards of a split search, merged, reach the failures and terminal
//!   states of one unsplit search.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{Capacity, Message, OnFull, PortName, ReceiveError, SendError, Sent, Wait};
use mkipc_sim::check::{
    CheckOutcome, Checker, Encode, Encoder, EndState, ProcStatus, Shard, World,
};
use mkipc_sim::machine::{Ctx, Machine, MailboxUse, Op as COp, Step};
use mkipc_sim::{ms, Dist, ExitStatus, FailureReason, Inherit, ProcError};
use proptest::prelude::*;

include!("random_models/models.rs");

/// Builds model `m` in a checker's world.
fn build(m: &Model, w: &mut World<Prog>) {
    let ports: Vec<PortName> = m
        .ports
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if c >= 8 {
                w.mailbox(&format!("p{i}"), capacity(c)).unwrap()
            } else {
                w.port(&format!("p{i}"), capacity(c)).unwrap()
            }
        })
        .collect();
    for me in 0..m.procs.len() {
        let (inherit, make) = plan(m, me, &ports);
        let id = w.spawn_with(&format!("q{me}"), &inherit, make).unwrap();
        if m.server && me == 0 {
            w.server(id);
        }
    }
}

/// An end state as text: its failure kind, each process's status and log.
fn end_text(end: &EndState<'_, Prog>) -> String {
    let v = &end.view;
    let procs: Vec<String> = (0..v.procs())
        .map(|i| {
            let id = mkipc_sim::ProcId(i as u32);
            let status = match v.status(id).unwrap() {
                ProcStatus::Ended(s) => status_text(&s),
                _ => "Stuck".into(),
            };
            format!("{status} {:?}", v.machine(id).unwrap().log)
        })
        .collect();
    format!("{} {procs:?}", kind(end.failure))
}

/// What a search found.
#[derive(Debug, PartialEq, Eq, Clone, Default)]
struct Seen {
    /// Distinct failure kinds.
    kinds: BTreeSet<String>,
    /// End states where nobody can step.
    terminal: BTreeSet<String>,
    /// Every end state (valid or failing) shown.
    ends: BTreeSet<String>,
}

impl Seen {
    fn union(mut self, other: Seen) -> Seen {
        self.kinds.extend(other.kinds);
        self.terminal.extend(other.terminal);
        self.ends.extend(other.ends);
        self
    }
}

fn record(seen: &Mutex<Seen>, end: &EndState<'_, Prog>) {
    let text = end_text(end);
    let mut s = seen.lock().unwrap();
    s.kinds.insert(kind(end.failure));
    if end.terminal {
        s.terminal.insert(text.clone());
    }
    s.ends.insert(text);
}

fn checker(reduction: bool) -> Checker {
    Checker::new().keep_going().reduction(reduction)
}

/// The parallel search of `m` with `jobs` workers (and a shard).
fn parallel(m: &Model, reduction: bool, jobs: usize, shard: Option<Shard>) -> (Seen, CheckOutcome) {
    let seen = Mutex::new(Seen::default());
    let mut par = checker(reduction).parallel(jobs);
    if let Some(s) = shard {
        par = par.shard(s);
    }
    let out = par.run_with_ends(|w| build(m, w), |end| record(&seen, end));
    (seen.into_inner().unwrap(), out)
}

/// The sequential depth-first search of `m`.
fn sequential(m: &Model, reduction: bool) -> (Seen, CheckOutcome) {
    let seen = Mutex::new(Seen::default());
    let out = checker(reduction).run_with_ends(|w| build(m, w), |end| record(&seen, end));
    (seen.into_inner().unwrap(), out)
}

/// The failures as (reason, trail), in the order reported.
fn failures(out: &CheckOutcome) -> Vec<(String, String)> {
    out.failures
        .iter()
        .map(|f| (f.reason.to_string(), f.trail.to_string()))
        .collect()
}

/// The counts that must not depend on the number of workers.
fn counts(out: &CheckOutcome) -> [u64; 7] {
    let s = &out.stats;
    [
        s.states_stored,
        s.states_matched,
        s.transitions,
        s.end_states,
        s.failures,
        s.states_reduced,
        u64::from(s.complete),
    ]
}

/// Compares 1, 2 and 4 workers on `m`; `None` if the model is too big.
fn same_for_every_job_count(
    m: &Model,
    reduction: bool,
    max_states: u64,
) -> Option<Result<(), String>> {
    let (one, out1) = parallel(m, reduction, 1, None);
    if out1.stats.states_stored > max_states {
        return None;
    }
    if !out1.stats.complete {
        return Some(Err(format!("incomplete: {}", out1.stats)));
    }
    for jobs in [2, 4] {
        let (many, out) = parallel(m, reduction, jobs, None);
        if many != one {
            return Some(Err(format!(
                "{jobs} workers found\n{many:#?}\n1 worker\n{one:#?}"
            )));
        }
        if counts(&out) != counts(&out1) {
            return Some(Err(format!(
                "{jobs} workers:\n{}\n1 worker:\n{}",
                out.stats, out1.stats
            )));
        }
        if failures(&out) != failures(&out1) {
            return Some(Err(format!(
                "{jobs} workers' failures {:#?}\n1 worker's {:#?}",
                failures(&out),
                failures(&out1)
            )));
        }
        if out.stats.workers != jobs {
            return Some(Err(format!(
                "{} workers ran, not {jobs}",
                out.stats.workers
            )));
        }
    }
    Some(Ok(()))
}

/// The parallel search (proviso by levels), reduced or not, finds the
/// failures and terminal states of the sequential full search; unreduced,
/// it stores the same states.
fn agrees_with_sequential(m: &Model, max_states: u64) -> Option<Result<(), String>> {
    let (full, full_out) = sequential(m, false);
    if full_out.stats.states_stored > max_states {
        return None;
    }
    for reduction in [false, true] {
        let (par, out) = parallel(m, reduction, 2, None);
        if par.kinds != full.kinds || par.terminal != full.terminal {
            return Some(Err(format!(
                "parallel (reduction {reduction}) found\n{par:#?}\nthe sequential full search\n{full:#?}"
            )));
        }
        if !reduction
            && (out.stats.states_stored != full_out.stats.states_stored || par.ends != full.ends)
        {
            return Some(Err(format!(
                "parallel:\n{}\nsequential:\n{}",
                out.stats, full_out.stats
            )));
        }
    }
    Some(Ok(()))
}

/// The shards of an `n`-way split, merged, find what one search finds.
fn shards_cover(m: &Model, reduction: bool, n: u32, max_states: u64) -> Option<Result<(), String>> {
    let (whole, out) = parallel(m, reduction, 1, None);
    if out.stats.states_stored > max_states {
        return None;
    }
    let mut merged = Seen::default();
    for i in 0..n {
        let (part, out) = parallel(m, reduction, 2, Some(Shard::new(i, n).unwrap()));
        let s = out.stats.shard.clone().expect("shard stats");
        if (s.index, s.count) != (i, n) || !out.stats.complete {
            return Some(Err(format!("shard {i}/{n}: {}", out.stats)));
        }
        merged = merged.union(part);
    }
    if merged.kinds != whole.kinds || merged.terminal != whole.terminal {
        return Some(Err(format!(
            "{n} shards merged found\n{merged:#?}\none search\n{whole:#?}"
        )));
    }
    if !reduction && merged.ends != whole.ends {
        return Some(Err(format!(
            "{n} shards' ends {merged:#?}\none search's {whole:#?}"
        )));
    }
    Some(Ok(()))
}

proptest! {
    #![proptest_config(model_cases(96))]

    #[test]
    fn every_number_of_workers_finds_the_same(m in por_model(), reduction in any::<bool>()) {
        let verdict = same_for_every_job_count(&m, reduction, 3_000);
        prop_assume!(verdict.is_some());
        if let Some(Err(e)) = verdict {
            prop_assert!(false, "{}\n{:#?}", e, m);
        }
    }

    #[test]
    fn the_parallel_search_finds_what_the_full_search_finds(m in prop_oneof![model(), por_model(), shared_model()]) {
        let verdict = agrees_with_sequential(&m, 3_000);
        prop_assume!(verdict.is_some());
        if let Some(Err(e)) = verdict {
            prop_assert!(false, "{}\n{:#?}", e, m);
        }
    }

    #[test]
    fn merged_shards_find_what_one_search_finds(m in por_model(), reduction in any::<bool>(), n in 2..=3u32) {
        let verdict = shards_cover(&m, reduction, n, 3_000);
        prop_assume!(verdict.is_some());
        if let Some(Err(e)) = verdict {
            prop_assert!(false, "{}\n{:#?}", e, m);
        }
    }
}

/// Without `keep_going`, the first failure (and its trail) is the same for
/// every number of workers, and its trail replays to it.
#[test]
fn the_first_failure_is_the_same_and_replays() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut failing = 0;
    for _ in 0..200 {
        let m = por_model().new_tree(&mut runner).unwrap().current();
        let first = |jobs| Checker::new().parallel(jobs).run(|w| build(&m, w));
        let one = first(1);
        if one.stats.states_stored > 3_000 {
            continue;
        }
        let Some(f) = one.failure() else { continue };
        failing += 1;
        let four = first(4);
        assert_eq!(failures(&one), failures(&four), "{m:#?}");
        assert_eq!(counts(&one), counts(&four), "{m:#?}");
        let replay = Checker::new().replay(&f.trail, |w| build(&m, w)).unwrap();
        assert_eq!(
            replay.failure.as_ref().map(kind_of),
            Some(kind_of(&f.reason)),
            "{m:#?}"
        );
    }
    assert!(failing >= 20, "only {failing} failing models");
}

fn kind_of(r: &FailureReason) -> String {
    kind(Some(r))
}

/// A model big enough to split: the shards take disjoint roots at the same
/// depth and each is smaller than the whole.
#[test]
fn a_big_model_splits_into_smaller_shards() {
    let m = Model {
        ports: vec![11, 11],
        procs: vec![
            vec![
                MOp::Send {
                    port: 0,
                    value: 1,
                    policy: 0,
                },
                MOp::Send {
                    port: 0,
                    value: 2,
                    policy: 0,
                },
                MOp::Receive { port: 1, wait: 0 },
            ],
            vec![
                MOp::Send {
                    port: 1,
                    value: 1,
                    policy: 0,
                },
                MOp::Receive { port: 0, wait: 0 },
                MOp::Send {
                    port: 1,
                    value: 2,
                    policy: 0,
                },
            ],
            vec![
                MOp::Choose(3),
                MOp::Receive { port: 0, wait: 0 },
                MOp::Yield,
            ],
            vec![
                MOp::Choose(2),
                MOp::Receive { port: 1, wait: 0 },
                MOp::Choose(2),
            ],
        ],
        server: false,
    };
    let (whole, out) = parallel(&m, false, 2, None);
    assert!(out.stats.complete);
    let mut merged = Seen::default();
    let mut depth = None;
    for i in 0..3 {
        let (part, o) = parallel(&m, false, 2, Some(Shard::new(i, 3).unwrap()));
        let s = o.stats.shard.clone().unwrap();
        assert!(s.split_depth.is_some(), "{}", o.stats);
        assert!(depth.is_none() || depth == s.split_depth);
        depth = s.split_depth;
        assert!(
            o.stats.states_stored < out.stats.states_stored,
            "{}",
            o.stats
        );
        assert!(s.roots > 0);
        merged = merged.union(part);
    }
    assert_eq!(merged, whole);
}

#[test]
fn shard_parses_and_refuses_bad_input() {
    let s: Shard = "2/5".parse().unwrap();
    assert_eq!((s.index(), s.count()), (2, 5));
    assert_eq!(s.to_string(), "2/5");
    assert!(s.owns(7) && !s.owns(8));
    for bad in ["5/5", "1/0", "x/2", "3", "-1/2", ""] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

/// A set-up that builds another model for another worker is refused, not
/// searched.
#[test]
fn a_set_up_that_is_not_deterministic_stops_the_search() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let m = Model {
        ports: vec![1],
        procs: vec![
            vec![MOp::Send {
                port: 0,
                value: 1,
                policy: 0,
            }],
            vec![MOp::Receive { port: 0, wait: 0 }],
        ],
        server: false,
    };
    let out = Checker::new().parallel(2).run(|w| {
        build(&m, w);
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            w.port("extra", Capacity::Unbounded).unwrap();
        }
    });
    assert!(!out.stats.complete);
    let why = out.stats.stopped.unwrap_or_default();
    assert!(why.contains("not deterministic"), "{why}");
}

/// A process that spins forever (a local step back and forth between two
/// states), or one that panics on its first step.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Spin {
    Bomb,
    Spinner(bool),
}

impl Machine for Spin {
    fn step<C: Ctx<Self>>(&mut self, _: &mut C, _: Option<WaitOutcome>) -> Step {
        match self {
            Spin::Bomb => panic!("boom"),
            Spin::Spinner(b) => {
                *b = !*b;
                Step::Yield
            }
        }
    }
}

impl Encode for Spin {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.value(self);
    }
}

/// The cycle proviso at work: the spinner's step is safe (local) and is
/// tried first (highest index); reduced to it at every state, the search
/// would go round its two states forever and never let the bomb go off.
/// The state whose reduced step returns to an earlier level is expanded in
/// full, so the panic is found, by every number of workers and shard.
#[test]
fn the_cycle_proviso_keeps_a_spinning_process_from_hiding_the_others() {
    let setup = |w: &mut World<Spin>| {
        w.spawn("bomb", |_| Spin::Bomb);
        w.spawn("spinner", |_| Spin::Spinner(false));
    };
    for jobs in [1, 2, 4] {
        let out = Checker::new().keep_going().parallel(jobs).run(setup);
        let whole = out.clone();
        assert!(out.stats.complete, "{}", out.stats);
        assert!(out.stats.states_reduced > 0, "{}", out.stats);
        assert!(
            matches!(
                out.failure().map(|f| &f.reason),
                Some(FailureReason::Panicked { .. })
            ),
            "{out}"
        );
        for i in 0..2 {
            let shard = Shard::new(i, 2).unwrap();
            let out = Checker::new()
                .keep_going()
                .parallel(jobs)
                .shard(shard)
                .run(setup);
            assert!(out.stats.complete);
            assert_eq!(failures(&out), failures(&whole), "{out}");
        }
    }
}

/// Bad input and limits: a visited set that would pass `max_memory` stops
/// the search with the statistics so far, a depth limit cuts it, and both
/// say the search was incomplete; the same for every number of workers.
#[test]
fn limits_stop_the_parallel_search_and_say_so() {
    let m = Model {
        ports: vec![11, 11],
        procs: vec![
            vec![
                MOp::Send {
                    port: 0,
                    value: 1,
                    policy: 0,
                },
                MOp::Send {
                    port: 0,
                    value: 2,
                    policy: 0,
                },
                MOp::Receive { port: 1, wait: 0 },
            ],
            vec![
                MOp::Send {
                    port: 1,
                    value: 1,
                    policy: 0,
                },
                MOp::Receive { port: 0, wait: 0 },
                MOp::Send {
                    port: 1,
                    value: 2,
                    policy: 0,
                },
            ],
            vec![
                MOp::Choose(3),
                MOp::Receive { port: 0, wait: 0 },
                MOp::Yield,
            ],
        ],
        server: false,
    };
    let full = Checker::new()
        .keep_going()
        .parallel(2)
        .run(|w| build(&m, w));
    assert!(full.stats.complete);
    for jobs in [1, 2] {
        let out = Checker::new()
            .keep_going()
            .max_memory(16 << 10)
            .parallel(jobs)
            .run(|w| build(&m, w));
        assert!(!out.stats.complete);
        assert_eq!(
            out.stats.stopped.as_deref(),
            Some("visited set reached --max-memory"),
            "{}",
            out.stats
        );
        assert!(out.stats.states_stored < full.stats.states_stored);
        assert!(out
            .to_string()
            .contains("search incomplete: visited set reached --max-memory"));
        let out = Checker::new()
            .keep_going()
            .max_depth(3)
            .parallel(jobs)
            .run(|w| build(&m, w));
        assert!(!out.stats.complete);
        assert!(out.stats.depth_cuts > 0);
        assert_eq!(out.stats.max_depth, 3);
    }
}
