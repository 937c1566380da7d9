//! Exploration: invariants after every step, exhaustive search, proptest.

use std::cell::Cell;
use std::rc::Rc;

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::strategy::{scenario, Scenario, Topology};
use mkipc_sim::{Explorer, FailureReason, Inherit, SchedulerKind, Sim};
use proptest::prelude::*;

/// A lost-update race: two clients read a shared counter from a server,
/// then write back value + 1. Correct only if the two read-modify-write
/// sequences do not interleave.
fn lost_update(sim: &mut Sim) {
    let svc = sim.port("counter", Capacity::Unbounded).unwrap();
    let value = Rc::new(Cell::new(0u64));
    let v = value.clone();
    sim.spawn_with("server", &[Inherit::receive(svc)], move |p| {
        for _ in 0..4 {
            let req = p.receive(p.right(0))?;
            match req.id {
                1 => p.reply(&req, Message::from_u64(1, v.get()))?, // read
                _ => v.set(req.as_u64().unwrap_or(0)),              // write
            }
        }
        Ok(())
    })
    .unwrap();
    for k in 0..2 {
        sim.spawn_with(&format!("client{k}"), &[Inherit::send(svc)], |p| {
            let read = p
                .call(p.right(0), Message::new(1, b""))?
                .as_u64()
                .unwrap_or(0);
            p.send(p.right(0), Message::from_u64(2, read + 1))?;
            Ok(())
        })
        .unwrap();
    }
    sim.check_at_end("both increments count", move |_| {
        if value.get() == 2 {
            Ok(())
        } else {
            Err(format!("counter is {}, expected 2", value.get()))
        }
    });
}

#[test]
fn smoke() {
    Explorer::new()
        .seeds(0..5)
        .run(|sim| {
            Scenario {
                topology: Topology::Ring { size: 3 },
                capacity: Capacity::Zero,
                messages: 2,
            }
            .install(sim)
        })
        .assert_ok();
}

#[test]
fn random_search_finds_the_lost_update_and_replays_it() {
    let outcome = Explorer::new().seeds(0..200).run(lost_update);
    let failure = outcome.failure.expect("the race is found");
    assert!(
        matches!(failure.reason, FailureReason::FinalCheck { .. }),
        "{failure}"
    );
    let mut sim = Sim::builder()
        .replay_str(&failure.replay_line())
        .unwrap()
        .build();
    lost_update(&mut sim);
    let again = sim.run().unwrap_err();
    assert_eq!(again.reason, failure.reason);
}

#[test]
fn pct_finds_it_too() {
    let outcome = Explorer::new()
        .scheduler(SchedulerKind::Pct {
            depth: 2,
            max_steps: 30,
        })
        .seeds(0..200)
        .run(lost_update);
    assert!(outcome.failure.is_some());
}

#[test]
fn exhaustive_search_finds_it_and_covers_a_correct_model() {
    let found = Explorer::new().exhaustive(40, 100_000).run(lost_update);
    assert!(found.failure.is_some());
    let ring = Explorer::new().exhaustive(40, 100_000).run(|sim| {
        Scenario {
            topology: Topology::Ring { size: 2 },
            capacity: Capacity::Zero,
            messages: 1,
        }
        .install(sim)
    });
    ring.assert_ok();
    assert!(ring.complete);
    assert!(ring.runs > 1);
}

#[test]
fn invariants_are_checked_after_every_step() {
    // A bounded(2) port never holds more than 2 messages: true after every step.
    let steps = Rc::new(Cell::new(0u64));
    let s2 = steps.clone();
    let outcome = Explorer::new().seeds(0..5).run(move |sim| {
        Scenario {
            topology: Topology::FanIn { producers: 3 },
            capacity: Capacity::Bounded(2),
            messages: 3,
        }
        .install(sim);
        let s3 = s2.clone();
        sim.invariant("at most 2 queued", move |v| {
            s3.set(s3.get() + 1);
            let queued = v.kernel().stats().messages;
            // Queued plus parked with blocked senders: at most 2 + 3 producers.
            if queued <= 5 {
                Ok(())
            } else {
                Err(format!("{queued} messages in the kernel"))
            }
        });
    });
    outcome.assert_ok();
    assert!(steps.get() > 50, "checked {} times", steps.get());

    // A false invariant fails at a step and names it.
    let outcome = Explorer::new().seeds(0..1).run(|sim| {
        Scenario {
            topology: Topology::FanIn { producers: 2 },
            capacity: Capacity::Bounded(2),
            messages: 3,
        }
        .install(sim);
        sim.invariant("nothing ever queued", |v| {
            if v.kernel().stats().messages == 0 {
                Ok(())
            } else {
                Err("a message is queued".into())
            }
        });
    });
    let failure = outcome.failure.unwrap();
    assert!(
        matches!(failure.reason, FailureReason::Invariant { ref name, .. } if name == "nothing ever queued")
    );
    assert!(failure
        .to_string()
        .contains("replay with: MKIPC_SIM_REPLAY="));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn every_scenario_runs_clean_under_any_seed(s in scenario(), seed in 0u64..10_000) {
        let mut sim = Sim::builder().seed(seed).build();
        s.install(&mut sim);
        let report = sim.run().map_err(|f| TestCaseError::fail(f.to_string()))?;
        prop_assert!(report.kernel_is_clean());
        let received: u64 = report.procs.iter().map(|p| p.stats.received).sum();
        prop_assert_eq!(received, s.expected_receives());
    }
}

/// Two processes sending to one port each, then a consumer of both: the
/// first two steps commute, so DPOR needs fewer runs than plain DFS and both
/// cover the space.
#[test]
fn dpor_runs_independent_sends_once() {
    let model = |sim: &mut Sim| {
        let a = sim.port("a", Capacity::Unbounded).unwrap();
        let b = sim.port("b", Capacity::Unbounded).unwrap();
        for (name, port) in [("to-a", a), ("to-b", b)] {
            sim.spawn_with(name, &[Inherit::send(port)], |p| {
                for i in 0..2 {
                    p.send(p.right(0), Message::from_u64(1, i))?;
                }
                Ok(())
            })
            .unwrap();
        }
        sim.spawn_with("sink", &[Inherit::receive(a), Inherit::receive(b)], |p| {
            for _ in 0..2 {
                p.receive(p.right(0))?;
                p.receive(p.right(1))?;
            }
            Ok(())
        })
        .unwrap();
    };
    let plain = Explorer::new()
        .exhaustive(usize::MAX, 1_000_000)
        .reduction(mkipc_sim::Reduction::None)
        .run(model);
    let reduced = Explorer::new().exhaustive(usize::MAX, 1_000_000).run(model);
    plain.assert_ok();
    reduced.assert_ok();
    assert!(plain.complete && reduced.complete);
    eprintln!("{} runs reduced, {} plain", reduced.runs, plain.runs);
    assert!(
        reduced.runs * 5 < plain.runs,
        "{} runs reduced, {} plain",
        reduced.runs,
        plain.runs
    );
}

/// A search cut by the bound says so (it used to report "every schedule
/// within the bound" as complete): the lost update needs no failure here,
/// only a model with more choice points than the bound.
#[test]
fn a_search_cut_by_the_bound_is_not_complete() {
    let model = |sim: &mut Sim| {
        Scenario {
            topology: Topology::Ring { size: 3 },
            capacity: Capacity::Bounded(1),
            messages: 2,
        }
        .install(sim)
    };
    for reduction in [mkipc_sim::Reduction::None, mkipc_sim::Reduction::Dpor] {
        let cut = Explorer::new()
            .exhaustive(2, 1_000_000)
            .reduction(reduction)
            .run(model);
        cut.assert_ok();
        assert!(!cut.complete, "{reduction:?}: {}", cut.coverage());
        let how = cut.cut.expect("says how it was cut");
        assert!(how.past_bound > 0, "{how:?}");
        assert!(
            cut.coverage().contains("past the bound"),
            "{}",
            cut.coverage()
        );
        let stopped = Explorer::new()
            .exhaustive(usize::MAX, 3)
            .reduction(reduction)
            .run(model);
        assert_eq!(stopped.runs, 3);
        assert!(!stopped.complete);
        assert!(
            stopped.cut.is_some_and(|c| c.max_runs),
            "{}",
            stopped.coverage()
        );
    }
}

/// A receive from two ports takes the older message: the order of two sends
/// to different ports shows. DPOR must find both outcomes, as DFS does.
#[test]
fn dpor_sees_arrival_order_across_ports() {
    use std::collections::BTreeSet;
    for reduction in [mkipc_sim::Reduction::None, mkipc_sim::Reduction::Dpor] {
        let outcomes = Rc::new(std::cell::RefCell::new(BTreeSet::new()));
        let o = outcomes.clone();
        Explorer::new()
            .exhaustive(usize::MAX, 100_000)
            .reduction(reduction)
            .run(move |sim| {
                let a = sim.port("a", Capacity::Unbounded).unwrap();
                let b = sim.port("b", Capacity::Unbounded).unwrap();
                sim.spawn_with("to-a", &[Inherit::send(a)], |p| {
                    p.send(p.right(0), Message::from_u64(1, 1))?;
                    Ok(())
                })
                .unwrap();
                sim.spawn_with("to-b", &[Inherit::send(b)], |p| {
                    p.send(p.right(0), Message::from_u64(1, 2))?;
                    Ok(())
                })
                .unwrap();
                let o = o.clone();
                sim.spawn_with(
                    "sink",
                    &[Inherit::receive(a), Inherit::receive(b)],
                    move |p| {
                        p.sleep(std::time::Duration::from_millis(1));
                        let first = p.select(&[p.right(0), p.right(1)])?;
                        p.receive(if first.as_u64() == Some(1) {
                            p.right(1)
                        } else {
                            p.right(0)
                        })?;
                        o.borrow_mut().insert(first.as_u64());
                        Ok(())
                    },
                )
                .unwrap();
            })
            .assert_ok();
        assert_eq!(
            outcomes.borrow().len(),
            2,
            "{reduction:?}: {:?}",
            outcomes.borrow()
        );
    }
}

/// A queue invariant (one queue at a time) keeps the reduction on and is
/// still checked in every state the queue goes through.
#[test]
fn a_queue_invariant_keeps_dpor_on_and_is_found() {
    let model = |sim: &mut Sim| {
        let q = sim.port("q", Capacity::Unbounded).unwrap();
        for name in ["a", "b"] {
            sim.spawn_with(name, &[Inherit::send(q)], |p| {
                p.send(p.right(0), Message::from_u64(1, 0))?;
                Ok(())
            })
            .unwrap();
        }
        sim.spawn_with("sink", &[Inherit::receive(q)], |p| {
            p.receive(p.right(0))?;
            p.receive(p.right(0))?;
            Ok(())
        })
        .unwrap();
        sim.queue_invariant("q holds at most one", |v| {
            // One condition per queue: each holds at most one message.
            match v.kernel().queue_stats().iter().find(|s| s.len > 1) {
                None => Ok(()),
                Some(s) => Err(format!("{} queued", s.len)),
            }
        });
    };
    let found = Explorer::new().exhaustive(usize::MAX, 10_000).run(model);
    assert!(found.reduction_note.is_none(), "{:?}", found.reduction_note);
    assert!(
        matches!(
            found.failure.as_ref().map(|f| &f.reason),
            Some(FailureReason::Invariant { .. })
        ),
        "{:?}",
        found.failure
    );
}
