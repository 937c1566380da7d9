//! The stateful checker on classic models with known answers, and its
//! options (storage modes, limits, trails, replay).

mod check_models;

use std::time::Duration;

use check_models::{master_worker, producer_consumer, rendezvous_pair, server_loop, Classic};
use mkipc_kernel::runtime::{Source, WaitOutcome};
use mkipc_kernel::{Capacity, Ipc, Message, Wait};
use mkipc_sim::check::{Checker, Encode, Encoder, ProcStatus, Storage, Trail};
use mkipc_sim::machine::{Ctx, Machine, Step};
use mkipc_sim::{ms, Dist, FailureReason};

#[test]
fn smoke_producer_consumer_is_verified() {
    let out = Checker::new().run(|w| producer_consumer(w, 3, Capacity::Bounded(2)));
    out.assert_verified();
    assert!(out.stats.end_states >= 1);
    println!("{out}");
}

/// Counted by hand (states are (producer, consumer, queue)): for one
/// message, initial; sent and queued; consumer waiting; handed to the
/// waiting consumer; both ended. For two, 11 states and 14 transitions.
#[test]
fn producer_consumer_state_counts_are_the_hand_counts() {
    for (n, stored, transitions) in [(1, 5, 5), (2, 11, 14)] {
        let out = Checker::new()
            .reduction(false)
            .run(|w| producer_consumer(w, n, Capacity::Bounded(2)));
        out.assert_verified();
        assert_eq!(
            (out.stats.states_stored, out.stats.transitions),
            (stored, transitions),
            "n = {n}\n{}",
            out.stats
        );
        assert_eq!(out.stats.states_matched, transitions - (stored - 1));
        assert_eq!(out.stats.end_states, 1);
    }
    // With the kernel's counters in the state, paths that queued the
    // messages differently (longest length 1 or 2) no longer meet.
    let out = Checker::new()
        .counters(true)
        .reduction(false)
        .run(|w| producer_consumer(w, 2, Capacity::Bounded(2)));
    out.assert_verified();
    assert!(out.stats.states_stored > 11, "{}", out.stats);
    // The consumer's step that takes a message handed to it while it
    // waited is local on an unbounded port: the reduction steps it alone.
    let full = Checker::new()
        .reduction(false)
        .run(|w| producer_consumer(w, 2, Capacity::Unbounded));
    let reduced = Checker::new().run(|w| producer_consumer(w, 2, Capacity::Unbounded));
    reduced.assert_verified();
    assert!(reduced.stats.states_reduced > 0, "{}", reduced.stats);
    assert!(
        reduced.stats.states_stored < full.stats.states_stored,
        "{}",
        reduced.stats
    );
    // On a bounded port the taking frees the message's place (the kernel
    // keeps a handed message's place until it is taken), which may let the
    // producer in: not local, and the port is no mailbox the reduction
    // can judge, so nothing is reduced.
    let bounded = Checker::new().run(|w| producer_consumer(w, 2, Capacity::Bounded(2)));
    bounded.assert_verified();
    assert_eq!(bounded.stats.states_reduced, 0, "{}", bounded.stats);
}

/// State caching makes the space linear in the number of messages (the
/// stateless search's grows exponentially).
#[test]
fn producer_consumer_grows_linearly() {
    let count = |n| {
        let out = Checker::new().run(|w| producer_consumer(w, n, Capacity::Bounded(2)));
        out.assert_verified();
        out.stats.states_stored
    };
    let (a, b, c) = (count(10), count(20), count(40));
    assert_eq!(c - b, 2 * (b - a), "{a} {b} {c}");
}

#[test]
fn the_rendezvous_deadlock_is_found_named_and_replays() {
    let out = Checker::new().run(rendezvous_pair);
    let f = out.failure().expect("a deadlock");
    let FailureReason::Deadlock(d) = &f.reason else {
        panic!("{f}")
    };
    let mut names = d.cycle_names();
    names.sort_unstable();
    assert_eq!(names, ["a", "b"], "{d}");
    assert!(f.to_string().contains("trail="), "{f}");
    assert!(!out.stats.complete);
    // The trail replays to the same deadlock, step by step.
    let trail: Trail = f.trail.to_string().parse().unwrap();
    let replay = Checker::new().replay(&trail, rendezvous_pair).unwrap();
    assert_eq!(replay.steps.len(), trail.len());
    assert!(
        matches!(replay.failure, Some(FailureReason::Deadlock(_))),
        "{replay}"
    );
    assert!(replay
        .steps
        .iter()
        .all(|s| s.did.iter().any(|d| d.contains("send"))));
    println!("{replay}");
    // The shortest trail: each sends and blocks.
    let out = Checker::new().shortest().run(rendezvous_pair);
    assert_eq!(out.failure().unwrap().trail.len(), 2);
}

#[test]
fn a_trail_that_does_not_fit_the_model_is_refused() {
    let trail: Trail = "0,0,0,0,0".parse().unwrap();
    assert!(Checker::new().replay(&trail, rendezvous_pair).is_err());
}

#[test]
fn master_worker_is_verified() {
    let out = Checker::new().run(|w| master_worker(w, 3, 2, Capacity::Bounded(2), false));
    out.assert_verified();
    println!("{}", out.stats);
}

#[test]
fn master_worker_all_jobs_first_deadlocks_at_capacity_1_not_2() {
    let out = Checker::new().run(|w| master_worker(w, 5, 2, Capacity::Bounded(1), true));
    let f = out.failure().expect("deadlock at capacity 1");
    assert!(matches!(f.reason, FailureReason::Deadlock(_)), "{f}");
    let out = Checker::new().run(|w| master_worker(w, 5, 2, Capacity::Bounded(2), true));
    out.assert_verified();
}

#[test]
fn a_server_loop_closes_and_the_search_is_complete() {
    let out = Checker::new().run(|w| server_loop(w, 2, 3, Capacity::Bounded(1)));
    out.assert_verified();
    assert!(out.stats.states_matched > 0);
    // Valid end states only: the server waits at its receive.
    assert!(out.stats.end_states >= 1);
}

#[test]
fn keep_going_collects_distinct_failures() {
    let out = Checker::new()
        .keep_going()
        .run(|w| master_worker(w, 5, 2, Capacity::Bounded(1), true));
    assert!(out.failures.len() > 1, "{out}");
    assert_eq!(out.stats.failures as usize, out.failures.len());
    let mut trails: Vec<_> = out.failures.iter().map(|f| f.trail.clone()).collect();
    trails.dedup();
    assert_eq!(trails.len(), out.failures.len());
    // Going on after failures, the whole space is still covered.
    assert!(out.stats.complete, "{}", out.stats);
}

#[test]
fn storage_modes_agree_and_state_their_omission() {
    let run = |s| {
        Checker::new()
            .storage(s)
            .run(|w| producer_consumer(w, 30, Capacity::Bounded(2)))
    };
    let exact = run(Storage::Exact);
    let hc = run(Storage::HashCompact);
    let bits = run(Storage::Bitstate { bits: 1 << 22 });
    exact.assert_verified();
    assert_eq!(exact.stats.omission, None);
    assert_eq!(hc.stats.states_stored, exact.stats.states_stored);
    assert!(hc.stats.omission.unwrap() < 1e-12);
    assert_eq!(bits.stats.states_stored, exact.stats.states_stored);
    assert!(bits.stats.hash_factor.unwrap() > 100.0);
    assert!(bits.stats.to_string().contains("hash factor"));
    assert!(hc
        .stats
        .to_string()
        .contains("probability of a missed state"));
}

#[test]
fn the_memory_limit_stops_the_search_incomplete() {
    let out = Checker::new()
        .max_memory(64 * 1024)
        .run(|w| producer_consumer(w, 2000, Capacity::Bounded(2)));
    assert!(!out.stats.complete);
    assert!(out.failures.is_empty());
    let text = out.stats.to_string();
    assert!(
        text.contains("search incomplete: visited set reached --max-memory"),
        "{text}"
    );
    assert!(out.stats.memory + out.stats.frontier_memory <= 64 * 1024);
}

#[test]
fn the_depth_limit_makes_the_search_incomplete() {
    let out = Checker::new()
        .max_depth(5)
        .run(|w| producer_consumer(w, 10, Capacity::Bounded(2)));
    assert!(!out.stats.complete);
    assert!(out.stats.depth_cuts > 0);
    assert_eq!(out.stats.max_depth, 5);
    assert!(out.stats.to_string().contains("depth limit"));
}

#[test]
fn progress_is_reported() {
    use std::cell::Cell;
    use std::rc::Rc;
    let calls = Rc::new(Cell::new(0));
    let c2 = Rc::clone(&calls);
    Checker::new()
        .progress(Duration::ZERO, move |_| c2.set(c2.get() + 1))
        .run(|w| producer_consumer(w, 300, Capacity::Bounded(2)))
        .assert_verified();
    assert!(calls.get() > 0);
}

/// Small machines for the rules of a step.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Rule {
    /// Pauses for a random time: unsupported.
    RandomPause,
    /// Panics in its first step.
    Panics,
    /// Blocks in a receive through `Ctx::ipc`.
    BlocksInIpc(mkipc_kernel::PortName),
    /// Ticks forever: a 1 ms timed receive that times out, in a loop.
    Ticker(mkipc_kernel::PortName, u8),
    /// Spawns a `Child` with a send right to its port, then receives once.
    Parent(mkipc_kernel::PortName, bool),
    /// Sends once and exits.
    Child(mkipc_kernel::PortName),
}

impl Machine for Rule {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        match self {
            Rule::RandomPause => Step::Pause {
                time: Dist::uniform(ms(1), ms(2)),
                busy: true,
            },
            Rule::Panics => panic!("boom"),
            Rule::BlocksInIpc(p) => match cx.ipc().receive(*p) {
                Ok(_) => Step::Exit(Ok(())),
                Err(e) => Step::Exit(Err(e.into())),
            },
            Rule::Parent(p, spawned) => {
                if resumed.is_some() {
                    return Step::Exit(Ok(()));
                }
                if !*spawned {
                    *spawned = true;
                    let r = cx.spawn("child", &[mkipc_sim::Inherit::make_send(*p)], |n| {
                        Rule::Child(n[0].name)
                    });
                    if let Err(e) = r {
                        return Step::Exit(Err(e.into()));
                    }
                    return Step::Yield;
                }
                match cx.receive(Source::Name(*p), Wait::Forever) {
                    mkipc_sim::machine::Op::Pending => Step::Wait,
                    mkipc_sim::machine::Op::Done(_) => Step::Exit(Ok(())),
                }
            }
            Rule::Child(p) => {
                let msg = Message::from_u64(1, 7);
                match cx.send(
                    mkipc_kernel::runtime::Destination::Name(*p),
                    msg,
                    mkipc_kernel::OnFull::Block,
                ) {
                    mkipc_sim::machine::Op::Pending => Step::Wait,
                    mkipc_sim::machine::Op::Done(_) => Step::Exit(Ok(())),
                }
            }
            Rule::Ticker(p, ticks) => {
                if let Some(WaitOutcome::Received(Err(_))) = resumed {
                    *ticks = (*ticks + 1) % 3;
                }
                match cx.receive(Source::Name(*p), Wait::For(ms(1))) {
                    mkipc_sim::machine::Op::Pending => Step::Wait,
                    mkipc_sim::machine::Op::Done(_) => Step::Yield,
                }
            }
        }
    }
}

impl Encode for Rule {
    fn encode(&self, e: &mut Encoder<'_>) {
        match self {
            Rule::BlocksInIpc(p) => e.name(*p),
            Rule::Ticker(p, t) => {
                e.name(*p);
                e.value(t);
            }
            Rule::Parent(p, spawned) => {
                e.name(*p);
                e.value(spawned);
            }
            Rule::Child(p) => e.name(*p),
            other => e.value(other),
        }
    }
}

#[test]
fn a_random_pause_is_refused_clearly() {
    let out = Checker::new().run(|w| {
        w.spawn("r", |_| Rule::RandomPause);
    });
    let why = out.stats.stopped.clone().unwrap();
    assert!(why.contains("unsupported by the stateful checker"), "{why}");
    assert!(!out.stats.complete);
}

#[test]
fn a_panic_in_a_step_is_caught_and_fails() {
    let out = Checker::new().run(|w| {
        w.spawn("p", |_| Rule::Panics);
    });
    let f = out.failure().unwrap();
    assert!(
        matches!(&f.reason, FailureReason::Panicked { proc, message } if proc == "p" && message == "boom"),
        "{f}"
    );
}

#[test]
fn a_machine_blocking_in_ipc_fails() {
    let out = Checker::new().run(|w| {
        let p = w.port("p", Capacity::Bounded(1)).unwrap();
        w.spawn_with("b", &[mkipc_sim::Inherit::receive(p)], |n| {
            Rule::BlocksInIpc(n[0].name)
        })
        .unwrap();
    });
    let f = out.failure().unwrap();
    assert!(
        matches!(&f.reason, FailureReason::ProcessFailed { error, .. } if error.contains("Ctx::ipc")),
        "{f}"
    );
}

/// Timers are stored relative to now: a process that times out forever
/// has three states (its tick counter), not one per millisecond.
#[test]
fn a_timer_loop_closes() {
    let out = Checker::new().run(|w| {
        let p = w.port("p", Capacity::Bounded(1)).unwrap();
        w.spawn_with("t", &[mkipc_sim::Inherit::receive(p)], |n| {
            Rule::Ticker(n[0].name, 0)
        })
        .unwrap();
    });
    out.assert_verified();
    assert!(out.stats.states_stored <= 8, "{}", out.stats);
    assert_eq!(out.stats.end_states, 0);
}

/// `Ctx::spawn` adds a process that inherits rights: the child's send
/// reaches the parent, and nothing leaks.
#[test]
fn a_spawned_child_runs_and_inherits() {
    let setup = |w: &mut mkipc_sim::check::World<Rule>| {
        let p = w.port("p", Capacity::Bounded(1)).unwrap();
        w.spawn_with("parent", &[mkipc_sim::Inherit::receive(p)], |n| {
            Rule::Parent(n[0].name, false)
        })
        .unwrap();
    };
    let out = Checker::new().run(setup);
    out.assert_verified();
    assert!(out.stats.end_states >= 1);
    let mut procs = 0;
    Checker::new().run_with_ends(setup, |end| procs = end.view.procs());
    assert_eq!(procs, 2);
}

#[test]
fn invariants_are_checked_at_every_state() {
    let out = Checker::new().run(|w| {
        producer_consumer(w, 4, Capacity::Bounded(2));
        w.invariant("at most one message queued", |v| {
            let queued: usize = v.queue_stats().iter().map(|q| q.len).sum();
            if queued > 1 {
                Err(format!("{queued} queued"))
            } else {
                Ok(())
            }
        });
    });
    let f = out.failure().expect("two messages get queued");
    assert!(matches!(f.reason, FailureReason::Invariant { .. }), "{f}");
    let replay = Checker::new()
        .replay(&f.trail, |w| {
            producer_consumer(w, 4, Capacity::Bounded(2));
            w.invariant("at most one message queued", |v| {
                let queued: usize = v.queue_stats().iter().map(|q| q.len).sum();
                if queued > 1 {
                    Err(format!("{queued} queued"))
                } else {
                    Ok(())
                }
            });
        })
        .unwrap();
    // The last step is the producer's send that queued the second message
    // (its last one, after which it ends, on the first path tried).
    let last = replay.steps.last().expect("steps");
    assert_eq!(last.name, "producer");
    assert!(
        matches!(
            last.status,
            ProcStatus::Runnable | ProcStatus::Ended(mkipc_sim::ExitStatus::Exited(0))
        ),
        "{replay}"
    );
    assert!(
        matches!(replay.failure, Some(FailureReason::Invariant { .. })),
        "{replay}"
    );
    let _ = Message::default();
    let _: Option<Classic> = None;
}
