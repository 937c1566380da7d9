//! Deadlock detection: the report names the wait-for cycle.

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Deadlock, Explorer, FailureReason, Inherit, ProcId, Sim};

/// Two processes, two zero-capacity ports, each sending first.
fn classic(sim: &mut Sim) {
    let p = sim.port("p", Capacity::Zero).unwrap();
    let q = sim.port("q", Capacity::Zero).unwrap();
    sim.spawn_with("alice", &[Inherit::receive(p), Inherit::send(q)], |me| {
        me.send(me.right(1), Message::new(1, b"to bob"))?;
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    sim.spawn_with("bob", &[Inherit::receive(q), Inherit::send(p)], |me| {
        me.send(me.right(1), Message::new(2, b"to alice"))?;
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn smoke() {
    let mut sim = Sim::builder().seed(0).build();
    classic(&mut sim);
    let failure = sim.run().unwrap_err();
    assert!(failure.reason.is_deadlock());
}

#[test]
fn classic_deadlock_is_found_quickly_and_named() {
    let outcome = Explorer::new().seeds(0..10).run(classic);
    let failure = outcome.failure.expect("a deadlock in 10 seeds");
    assert!(outcome.runs <= 3, "took {} seeds", outcome.runs);
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("not a deadlock: {failure}")
    };
    let mut names = d.cycle_names();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);
    let mut ports = d.cycle_queues();
    ports.sort_unstable();
    assert_eq!(ports, ["p", "q"]);
    let text = failure.to_string();
    assert!(
        text.contains("alice waits sending to q (receive right held by bob)"),
        "{text}"
    );
    assert!(
        text.contains("bob waits sending to p (receive right held by alice)"),
        "{text}"
    );
    assert!(text.contains("MKIPC_SIM_REPLAY='seed="), "{text}");
    // The stuck processes were unwound and everything released.
    assert!(
        failure.report.kernel_is_clean(),
        "{:?}",
        failure.report.kernel_at_end
    );
    assert!(failure
        .report
        .procs
        .iter()
        .all(|p| p.status == mkipc_sim::ExitStatus::Stuck));
}

#[test]
fn exhaustive_search_finds_it_too() {
    let outcome = Explorer::new().exhaustive(10, 1000).run(classic);
    assert!(outcome.failure.is_some_and(|f| f.reason.is_deadlock()));
}

#[test]
fn a_replayed_failure_fails_the_same_way() {
    let failure = Explorer::new().seeds(0..10).run(classic).failure.unwrap();
    let mut sim = Sim::builder()
        .replay_str(&failure.replay_line())
        .unwrap()
        .build();
    classic(&mut sim);
    let again = sim.run().unwrap_err();
    assert_eq!(again.reason, failure.reason);
    assert_eq!(again.report.trace, failure.report.trace);
}

#[test]
fn receive_deadlock_names_the_senders() {
    // Both receive first: each waits for a message only the other could send.
    let mut sim = Sim::builder().seed(1).build();
    let p = sim.port("p", Capacity::Bounded(1)).unwrap();
    let q = sim.port("q", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("alice", &[Inherit::receive(p), Inherit::send(q)], |me| {
        me.receive(me.right(0))?;
        me.send(me.right(1), Message::new(1, b"x"))?;
        Ok(())
    })
    .unwrap();
    sim.spawn_with("bob", &[Inherit::receive(q), Inherit::send(p)], |me| {
        me.receive(me.right(0))?;
        me.send(me.right(1), Message::new(2, b"y"))?;
        Ok(())
    })
    .unwrap();
    let failure = sim.run().unwrap_err();
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}")
    };
    assert_eq!(d.cycle.len(), 2, "{d}");
    let text = d.to_string();
    assert!(
        text.contains("alice waits receiving from p (send right held by bob)"),
        "{text}"
    );
}

#[test]
fn join_cycles_are_deadlocks_too() {
    let mut sim = Sim::builder().seed(0).build();
    let a = mkipc_sim::ProcId(0);
    let b = mkipc_sim::ProcId(1);
    sim.spawn("a", move |p| {
        p.join(b);
        Ok(())
    });
    sim.spawn("b", move |p| {
        p.join(a);
        Ok(())
    });
    let failure = sim.run().unwrap_err();
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}")
    };
    assert_eq!(d.cycle.len(), 2);
    assert!(d.to_string().contains("a waits joining b"));
}

#[test]
fn no_false_alarm_on_a_correct_model() {
    // Alice sends first, Bob receives first: fine in every interleaving.
    let outcome = Explorer::new().exhaustive(20, 10_000).run(|sim| {
        let p = sim.port("p", Capacity::Zero).unwrap();
        let q = sim.port("q", Capacity::Zero).unwrap();
        sim.spawn_with("alice", &[Inherit::receive(p), Inherit::send(q)], |me| {
            me.send(me.right(1), Message::new(1, b"ping"))?;
            me.receive(me.right(0))?;
            Ok(())
        })
        .unwrap();
        sim.spawn_with("bob", &[Inherit::receive(q), Inherit::send(p)], |me| {
            me.receive(me.right(0))?;
            me.send(me.right(1), Message::new(2, b"pong"))?;
            Ok(())
        })
        .unwrap();
    });
    outcome.assert_ok();
    assert!(outcome.complete, "the model is small enough to finish");
}

#[test]
fn ring_of_nested_calls_names_the_servers() {
    // a serves a-svc by calling b; b serves b-svc by calling a; one client each.
    let outcome = Explorer::new().seeds(0..20).run(|sim| {
        let a = sim.port("a-svc", Capacity::Bounded(4)).unwrap();
        let b = sim.port("b-svc", Capacity::Bounded(4)).unwrap();
        for (name, own, other) in [("a", a, b), ("b", b, a)] {
            sim.spawn_with(name, &[Inherit::receive(own), Inherit::send(other)], |p| {
                let req = p.receive(p.right(0))?;
                let r = p.call(p.right(1), Message::new(1, b"nested"))?;
                p.reply(&req, r)?;
                Ok(())
            })
            .unwrap();
        }
        for (name, svc) in [("client1", a), ("client2", b)] {
            sim.spawn_with(name, &[Inherit::send(svc)], |p| {
                p.call(p.right(0), Message::new(2, b"go"))?;
                Ok(())
            })
            .unwrap();
        }
    });
    let failure = outcome.failure.expect("the ring deadlocks");
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}")
    };
    let mut names = d.cycle_names();
    names.sort_unstable();
    assert_eq!(names, ["a", "b"], "{d}");
    assert!(
        d.to_string()
            .contains("a waits for the reply to its call to b-svc (send-once right held by b)"),
        "{d}"
    );
}

#[test]
fn dining_philosophers_with_fork_servers() {
    const N: usize = 3;
    let outcome = Explorer::new().seeds(0..200).run(|sim| {
        let acquire: Vec<_> = (0..N)
            .map(|i| {
                sim.port(&format!("fork{i}-acquire"), Capacity::Bounded(4))
                    .unwrap()
            })
            .collect();
        let release: Vec<_> = (0..N)
            .map(|i| {
                sim.port(&format!("fork{i}-release"), Capacity::Bounded(4))
                    .unwrap()
            })
            .collect();
        for i in 0..N {
            sim.spawn_with(
                &format!("fork{i}"),
                &[Inherit::receive(acquire[i]), Inherit::receive(release[i])],
                |p| {
                    for _ in 0..2 {
                        let req = p.receive(p.right(0))?;
                        p.reply(&req, Message::new(1, b"yours"))?;
                        let rel = p.receive(p.right(1))?;
                        p.reply(&rel, Message::new(2, b"thanks"))?;
                    }
                    Ok(())
                },
            )
            .unwrap();
        }
        for i in 0..N {
            let (l, r) = (i, (i + 1) % N);
            let inherit = [
                Inherit::send(acquire[l]),
                Inherit::send(release[l]),
                Inherit::send(acquire[r]),
                Inherit::send(release[r]),
            ];
            sim.spawn_with(&format!("philosopher{i}"), &inherit, |p| {
                p.call(p.right(0), Message::new(3, b"left"))?;
                p.call(p.right(2), Message::new(3, b"right"))?;
                p.work(mkipc_sim::ms(1));
                p.call(p.right(1), Message::new(4, b"done"))?;
                p.call(p.right(3), Message::new(4, b"done"))?;
                Ok(())
            })
            .unwrap();
        }
    });
    let failure = outcome
        .failure
        .expect("everyone takes the left fork in some schedule");
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}")
    };
    // The whole ring: every philosopher and every fork server.
    assert_eq!(d.cycle.len(), 2 * N, "{d}");
    assert!(
        d.cycle_names().iter().any(|n| n.starts_with("philosopher")),
        "{d}"
    );
    assert!(d.cycle_names().iter().any(|n| n.starts_with("fork")), "{d}");
}

/// The deadlock report of one run of `setup` (seed 0).
fn deadlock_of(setup: impl FnOnce(&mut Sim) -> Vec<ProcId>) -> (Deadlock, Vec<ProcId>) {
    let mut sim = Sim::builder().seed(0).build();
    let ids = setup(&mut sim);
    let failure = sim.run().unwrap_err();
    let FailureReason::Deadlock(d) = failure.reason else {
        panic!("not a deadlock: {failure}")
    };
    (d, ids)
}

fn cycle_procs(d: &Deadlock) -> Vec<ProcId> {
    let mut procs: Vec<ProcId> = d.cycle.iter().map(|&i| d.waiting[i].proc).collect();
    procs.sort_unstable();
    procs
}

#[test]
fn a_call_blames_the_server_of_its_own_port_not_one_with_the_same_label() {
    // Two ports labelled "svc", served by two processes both named "server".
    // The client calls the first; its server waits sending to the client's
    // port: the real cycle is client -> server#1 -> client. The other server
    // (spawned first, so it has the lower pid) also waits on the client, but
    // nobody waits on it.
    let (d, ids) = deadlock_of(|sim| {
        let svc1 = sim.port("svc", Capacity::Bounded(4)).unwrap();
        let svc2 = sim.port("svc", Capacity::Bounded(4)).unwrap();
        let back = sim.port("back", Capacity::Zero).unwrap();
        let serve = |p: &mkipc_sim::Proc| -> mkipc_sim::ProcResult {
            p.send(p.right(1), Message::new(1, b"to the client"))?;
            Ok(())
        };
        let other = sim
            .spawn_with(
                "server",
                &[Inherit::receive(svc2), Inherit::send(back)],
                serve,
            )
            .unwrap();
        let real = sim
            .spawn_with(
                "server",
                &[Inherit::receive(svc1), Inherit::send(back)],
                serve,
            )
            .unwrap();
        let client = sim
            .spawn_with(
                "client",
                &[Inherit::send(svc1), Inherit::receive(back)],
                |p| {
                    p.call(p.right(0), Message::new(2, b"request"))?;
                    Ok(())
                },
            )
            .unwrap();
        vec![other, real, client]
    });
    let (real, client) = (ids[1], ids[2]);
    let mut expected = vec![client, real];
    expected.sort_unstable();
    assert_eq!(cycle_procs(&d), expected, "{d}");
    let call = d.waiting.iter().find(|w| w.proc == client).unwrap();
    assert_eq!(call.op, "call", "{d}");
    assert_eq!(
        call.held_by,
        ["server"],
        "only one server serves svc#1: {d}"
    );
}

#[test]
fn a_shared_label_does_not_invent_a_cycle() {
    // The client calls svc#1, whose server waits on a port nobody can send
    // to. The server of the other "svc" waits on the client, but the client
    // does not wait on it: there is no cycle.
    let (d, ids) = deadlock_of(|sim| {
        let svc1 = sim.port("svc", Capacity::Bounded(4)).unwrap();
        let svc2 = sim.port("svc", Capacity::Bounded(4)).unwrap();
        let back = sim.port("back", Capacity::Zero).unwrap();
        let nowhere = sim.port("nowhere", Capacity::Zero).unwrap();
        let stuck = sim
            .spawn_with(
                "server",
                &[Inherit::receive(svc1), Inherit::receive(nowhere)],
                |p| {
                    p.receive(p.right(1))?;
                    Ok(())
                },
            )
            .unwrap();
        let other = sim
            .spawn_with(
                "server",
                &[Inherit::receive(svc2), Inherit::send(back)],
                |p| {
                    p.send(p.right(1), Message::new(1, b"to the client"))?;
                    Ok(())
                },
            )
            .unwrap();
        let client = sim
            .spawn_with(
                "client",
                &[Inherit::send(svc1), Inherit::receive(back)],
                |p| {
                    p.call(p.right(0), Message::new(2, b"request"))?;
                    Ok(())
                },
            )
            .unwrap();
        vec![stuck, other, client]
    });
    let (stuck, other, client) = (ids[0], ids[1], ids[2]);
    assert!(
        d.cycle.is_empty(),
        "the client does not wait on the other server, so nothing is a ring: {d}"
    );
    let call = d.waiting.iter().find(|w| w.proc == client).unwrap();
    assert_eq!(
        call.held_by,
        ["server"],
        "only the stuck server serves svc#1: {d}"
    );
    let ids: Vec<ProcId> = d.waiting.iter().map(|w| w.proc).collect();
    assert_eq!(ids, [stuck, other, client], "{d}");
}
