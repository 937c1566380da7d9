//! Faults: killing a process at any step leaks nothing and strands no peer.

use std::cell::Cell;
use std::rc::Rc;

use mkipc_kernel::{Capacity, Ipc, Message, Notification, NotifyKind, Pid, ReceiveError};
use mkipc_sim::{ms, ExitStatus, Inherit, ProcId, Report, Sim};

/// producer -> relay -> consumer over direct links, each reading until end of stream.
fn direct_pipeline(sim: &mut Sim) -> [ProcId; 3] {
    let relay_pid = Rc::new(Cell::new(Pid(0)));
    let consumer_pid = Rc::new(Cell::new(Pid(0)));
    let producer_pid = Rc::new(Cell::new(Pid(0)));
    let (r1, c1, p1, r2) = (
        relay_pid.clone(),
        consumer_pid.clone(),
        producer_pid.clone(),
        relay_pid.clone(),
    );
    let producer = sim.spawn("producer", move |p| {
        for i in 0..4 {
            p.send_to(r1.get(), Message::from_u64(1, i))?;
        }
        Ok(())
    });
    let relay = sim.spawn("relay", move |p| loop {
        match p.receive_from(p1.get()) {
            Ok(m) => p.send_to(c1.get(), m)?,
            Err(ReceiveError::SourceDead) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    });
    let consumer = sim.spawn("consumer", move |p| loop {
        match p.receive_from(r2.get()) {
            Ok(_) => p.work(ms(1)),
            Err(ReceiveError::SourceDead) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    });
    // Pids are known once spawned; the closures read them when they run.
    producer_pid.set(sim.pid(producer).unwrap());
    relay_pid.set(sim.pid(relay).unwrap());
    consumer_pid.set(sim.pid(consumer).unwrap());
    // Under a kill, a peer's send or receive meets a dead destination: that
    // error is what these models are about, not a failure of the run.
    for id in [producer, relay, consumer] {
        sim.expect_error(id);
    }
    [producer, relay, consumer]
}

/// A client calls a server three times; the server ends when the client's
/// send right is gone (no-senders notification).
fn rpc(sim: &mut Sim) -> [ProcId; 2] {
    let svc = sim.port("svc", Capacity::Bounded(1)).unwrap();
    let server = sim
        .spawn_with("server", &[Inherit::receive(svc)], |p| {
            let port = p.right(0);
            p.request_notification(port, NotifyKind::NoSenders, port)?;
            loop {
                let req = p.receive(port)?;
                if let Some(Notification::NoSenders(_)) = req.notification() {
                    return Ok(());
                }
                p.work(ms(1));
                p.reply(&req, Message::new(2, b"ok"))?;
            }
        })
        .unwrap();
    let client = sim
        .spawn_with("client", &[Inherit::send(svc)], |p| {
            for _ in 0..3 {
                p.call(p.right(0), Message::new(1, b"req"))?;
            }
            Ok(())
        })
        .unwrap();
    // The client's call fails once the server is killed, the server's reply
    // once the client is: expected here.
    sim.expect_error(client);
    sim.expect_error(server);
    [server, client]
}

fn assert_clean(r: &Report, what: &str) {
    assert!(
        r.kernel_is_clean(),
        "{what}: kernel not empty: {:?}",
        r.kernel_at_end
    );
    assert!(
        r.procs.iter().all(|p| p.status != ExitStatus::Stuck),
        "{what}: someone stuck"
    );
}

fn kill_everywhere(model: fn(&mut Sim) -> Vec<ProcId>, seeds: std::ops::Range<u64>) -> usize {
    let mut runs = 0;
    for seed in seeds {
        let clean = {
            let mut sim = Sim::builder().seed(seed).build();
            model(&mut sim);
            sim.run()
                .unwrap_or_else(|f| panic!("clean run failed: {f}"))
        };
        assert_clean(&clean, "clean run");
        let victims = {
            let mut sim = Sim::builder().seed(seed).build();
            model(&mut sim)
        };
        for victim in victims {
            for step in 0..=clean.steps {
                let mut sim = Sim::builder().seed(seed).build();
                model(&mut sim);
                sim.kill_at_step(victim, step);
                let what = format!("seed {seed}, kill {victim} at step {step}");
                let r = sim.run().unwrap_or_else(|f| panic!("{what}: {f}"));
                assert_clean(&r, &what);
                runs += 1;
            }
        }
    }
    runs
}

#[test]
fn smoke() {
    let mut sim = Sim::builder().build();
    let [server, _] = rpc(&mut sim);
    sim.kill_at_step(server, 3);
    let r = sim.run().unwrap();
    assert_eq!(r.procs[server.0 as usize].status, ExitStatus::Killed);
    assert!(matches!(
        r.proc("client").unwrap().status,
        ExitStatus::Failed { .. }
    ));
    assert_clean(&r, "smoke");
}

#[test]
fn killing_any_pipeline_process_at_any_step_leaks_nothing() {
    let runs = kill_everywhere(|sim| direct_pipeline(sim).to_vec(), 0..3);
    assert!(runs > 50, "only {runs} runs");
}

#[test]
fn killing_client_or_server_at_any_step_leaks_nothing() {
    let runs = kill_everywhere(|sim| rpc(sim).to_vec(), 0..3);
    assert!(runs > 30, "only {runs} runs");
}

#[test]
fn kill_at_a_virtual_time() {
    let mut sim = Sim::builder().seed(1).build();
    let [_, _, consumer] = direct_pipeline(&mut sim);
    sim.kill_at_time(consumer, ms(2));
    let r = sim.run().unwrap();
    assert_eq!(r.procs[consumer.0 as usize].status, ExitStatus::Killed);
    let kill = r
        .trace
        .events
        .iter()
        .find(|e| matches!(e.kind, mkipc_sim::EventKind::Killed { .. }))
        .unwrap();
    assert_eq!(kill.time, ms(2));
    assert_clean(&r, "kill at 2 ms");
}

#[test]
fn random_kills_never_leak() {
    let mut killed = 0;
    for seed in 0..40 {
        let mut sim = Sim::builder().seed(seed).build();
        let ids = direct_pipeline(&mut sim);
        for id in ids {
            sim.kill_randomly(id, 0.05);
        }
        let r = sim.run().unwrap_or_else(|f| panic!("seed {seed}: {f}"));
        killed += r
            .procs
            .iter()
            .filter(|p| p.status == ExitStatus::Killed)
            .count();
        assert_clean(&r, &format!("seed {seed}"));
    }
    assert!(killed > 5, "random faults struck only {killed} times");
}

#[test]
fn a_process_can_kill_and_join_another() {
    let mut sim = Sim::builder().build();
    let victim = sim.spawn("victim", |p| {
        p.sleep(ms(100));
        Ok(())
    });
    sim.spawn("killer", move |p| {
        p.sleep(ms(1));
        p.kill(victim);
        assert_eq!(p.join(victim), ExitStatus::Killed);
        assert_eq!(p.now(), ms(1));
        Ok(())
    });
    let r = sim.run().unwrap();
    assert_eq!(
        r.end_time,
        ms(1),
        "the victim's sleep no longer moves the clock"
    );
}
