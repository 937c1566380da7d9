//! Honest verdicts: valid end states (servers may wait forever at a
//! receive) and processes that end with an error fail the run unless the
//! model declares the error expected.

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{ExitStatus, Explorer, FailureReason, Inherit, Reduction, Sim};

/// A server that loops forever on its port, and `clients` clients that
/// each call it once and end.
fn forever_server(sim: &mut Sim, clients: usize, server: bool) {
    let svc = sim.port("svc", Capacity::Bounded(1)).unwrap();
    let id = sim
        .spawn_with("server", &[Inherit::receive(svc)], |p| loop {
            let req = p.receive(p.right(0))?;
            p.reply(&req, Message::from_u64(1, 7))?;
        })
        .unwrap();
    if server {
        sim.server(id);
    }
    for k in 0..clients {
        sim.spawn_with(&format!("client{k}"), &[Inherit::send(svc)], |p| {
            p.call(p.right(0), Message::new(1, b""))?;
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn a_server_waiting_at_its_receive_when_the_rest_is_done_is_a_valid_end() {
    let mut sim = Sim::builder().seed(3).build();
    forever_server(&mut sim, 2, true);
    let report = sim.run().expect("a server left waiting is not a deadlock");
    assert_eq!(report.proc("server").unwrap().status, ExitStatus::Stuck);
    assert!(report.proc("client0").unwrap().status.is_success());
    assert!(report.kernel_is_clean());
}

#[test]
fn the_same_server_undeclared_is_still_a_deadlock() {
    let mut sim = Sim::builder().seed(3).build();
    forever_server(&mut sim, 2, false);
    let failure = sim.run().expect_err("an undeclared waiter is a deadlock");
    assert!(failure.reason.is_deadlock(), "{failure}");
}

#[test]
fn the_explorer_respects_servers_seeded_and_exhaustive() {
    let seeded = Explorer::new()
        .seeds(0..50)
        .run(|sim| forever_server(sim, 2, true));
    assert!(seeded.failure.is_none(), "{:?}", seeded.failure);
    assert_eq!(seeded.runs, 50);
    for r in [Reduction::Dpor, Reduction::None] {
        let ex = Explorer::new()
            .exhaustive(40, 100_000)
            .reduction(r)
            .run(|sim| forever_server(sim, 2, true));
        assert!(ex.failure.is_none(), "{r:?}: {:?}", ex.failure);
        assert!(ex.complete, "{r:?}: {}", ex.coverage());
        let undeclared = Explorer::new()
            .exhaustive(40, 100_000)
            .reduction(r)
            .run(|sim| forever_server(sim, 2, false));
        assert!(
            undeclared
                .failure
                .as_ref()
                .is_some_and(|f| f.reason.is_deadlock()),
            "{r:?}"
        );
    }
}

/// A server blocked anywhere but at a receive is not at a valid end: here
/// it sends to a full queue nobody reads.
#[test]
fn a_server_blocked_sending_is_a_deadlock() {
    let mut sim = Sim::builder().build();
    let q = sim.port("q", Capacity::Bounded(1)).unwrap();
    let keep = sim.port("keep", Capacity::Bounded(1)).unwrap();
    let id = sim
        .spawn_with(
            "server",
            &[
                Inherit::send(q),
                Inherit::receive(q),
                Inherit::receive(keep),
            ],
            |p| loop {
                p.send(p.right(0), Message::new(1, b""))?;
            },
        )
        .unwrap();
    sim.server(id);
    let failure = sim.run().expect_err("blocked sending");
    assert!(failure.reason.is_deadlock(), "{failure}");
}

/// A non-server still blocked next to a waiting server is a deadlock.
#[test]
fn a_blocked_client_next_to_a_server_is_a_deadlock() {
    let mut sim = Sim::builder().build();
    forever_server(&mut sim, 1, true);
    let lonely = sim.port("lonely", Capacity::Bounded(1)).unwrap();
    let keep = sim.port("keep2", Capacity::Bounded(1)).unwrap();
    sim.spawn_with(
        "waiter",
        &[
            Inherit::receive(lonely),
            Inherit::send(keep),
            Inherit::receive(keep),
        ],
        |p| {
            p.receive(p.right(0))?;
            Ok(())
        },
    )
    .unwrap();
    let failure = sim.run().expect_err("the waiter is stuck");
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}");
    };
    assert!(d.waiting.iter().any(|w| w.name == "waiter"), "{d}");
}

/// One extra rendezvous send: the receiver takes two messages and ends,
/// the sender's third send finds its destination dead.
fn extra_send(sim: &mut Sim, expected: bool) {
    let q = sim.port("q", Capacity::Zero).unwrap();
    sim.spawn_with("receiver", &[Inherit::receive(q)], |p| {
        for _ in 0..2 {
            p.receive(p.right(0))?;
        }
        Ok(())
    })
    .unwrap();
    let sender = sim
        .spawn_with("sender", &[Inherit::send(q)], |p| {
            for i in 0..3 {
                p.send(p.right(0), Message::from_u64(1, i))?;
            }
            Ok(())
        })
        .unwrap();
    if expected {
        sim.expect_error(sender);
    }
}

#[test]
fn a_process_ending_with_an_error_fails_the_run() {
    let mut sim = Sim::builder().build();
    extra_send(&mut sim, false);
    let failure = sim.run().expect_err("the extra send fails");
    let FailureReason::ProcessFailed { proc, error } = &failure.reason else {
        panic!("{failure}");
    };
    assert_eq!(proc, "sender");
    assert!(!error.is_empty());
    let text = failure.to_string();
    assert!(text.contains("ended with an error"), "{text}");
    assert!(text.contains("replay with"), "{text}");
}

#[test]
fn the_explorer_finds_the_failed_process_and_an_expected_error_passes() {
    for r in [Reduction::Dpor, Reduction::None] {
        let out = Explorer::new()
            .exhaustive(40, 100_000)
            .reduction(r)
            .run(|sim| extra_send(sim, false));
        let f = out.failure.expect("found");
        assert!(
            matches!(f.reason, FailureReason::ProcessFailed { .. }),
            "{r:?}: {f}"
        );
        let ok = Explorer::new()
            .exhaustive(40, 100_000)
            .reduction(r)
            .run(|sim| extra_send(sim, true));
        assert!(ok.failure.is_none(), "{r:?}: {:?}", ok.failure);
        assert!(ok.complete, "{r:?}");
    }
    let seeded = Explorer::new()
        .seeds(0..20)
        .run(|sim| extra_send(sim, false));
    assert!(seeded.failure.is_some());
}

/// Processes spawned by processes declare themselves.
#[test]
fn spawned_processes_declare_themselves() {
    let mut sim = Sim::builder().build();
    let svc = sim.port("svc", Capacity::Bounded(1)).unwrap();
    sim.spawn_with(
        "parent",
        &[Inherit::receive(svc), Inherit::send(svc)],
        |p| {
            let (rx, tx) = (p.right(0), p.right(1));
            p.spawn("server", &[Inherit::receive(rx)], |c| {
                c.declare_server();
                loop {
                    c.receive(c.right(0))?;
                }
            })?;
            p.spawn("failing", &[Inherit::send(tx)], |c| {
                c.declare_expect_error();
                c.send(c.right(0), Message::new(1, b""))?;
                c.receive(mkipc_kernel::PortName::from_parts(9, 9))?;
                Ok(())
            })?;
            Ok(())
        },
    )
    .unwrap();
    let report = sim.run().expect("a declared server and a declared error");
    assert!(matches!(
        report.proc("failing").unwrap().status,
        ExitStatus::Failed { .. }
    ));
    assert_eq!(report.proc("server").unwrap().status, ExitStatus::Stuck);
}
