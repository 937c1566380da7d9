//! Threaded mode: the same process code on OS threads and in the simulator.

use mkipc_kernel::{Capacity, Ipc, Message, PortName};
use mkipc_sim::{ms, ExitStatus, Inherit, Proc, ProcResult, Sim, Threaded};

/// One piece of process code, used by both backends.
fn producer(p: &Proc) -> ProcResult {
    for i in 0..20 {
        p.send(p.right(0), Message::from_u64(1, i))?;
    }
    Ok(())
}

fn consumer(p: &Proc) -> ProcResult {
    let mut sum = 0;
    for _ in 0..20 {
        sum += p.receive(p.right(0))?.as_u64().unwrap_or(0);
        p.work(ms(0));
    }
    if sum == 190 {
        Ok(())
    } else {
        Err(mkipc_sim::ProcError::msg(format!("sum {sum}")))
    }
}

#[test]
fn smoke() {
    let world = Threaded::new();
    let id = world.spawn("p", |p| {
        let port: PortName = p.port_allocate(Capacity::Unbounded)?;
        p.send(port, Message::new(1, b"x"))?;
        p.receive(port)?;
        Ok(())
    });
    assert!(world.join(id).is_success());
}

#[test]
fn same_code_on_threads_and_in_the_simulator() {
    let world = Threaded::new();
    let port = world.port(Capacity::Bounded(2)).unwrap();
    world
        .spawn_with("consumer", &[Inherit::receive(port)], consumer)
        .unwrap();
    world
        .spawn_with("producer", &[Inherit::send(port)], producer)
        .unwrap();
    let statuses = world.join_all();
    assert!(statuses.iter().all(|(_, s)| s.is_success()), "{statuses:?}");

    let mut sim = Sim::builder().seed(3).build();
    let port = sim.port("q", Capacity::Bounded(2)).unwrap();
    sim.spawn_with("consumer", &[Inherit::receive(port)], consumer)
        .unwrap();
    sim.spawn_with("producer", &[Inherit::send(port)], producer)
        .unwrap();
    let report = sim.run().unwrap();
    assert!(report.procs.iter().all(|p| p.status.is_success()));
}

#[test]
fn spawn_join_and_errors_on_threads() {
    let world = Threaded::new();
    let parent = world.spawn("parent", |p| {
        let child = p.spawn("child", &[], |_| Err(mkipc_sim::ProcError::exit(3)))?;
        match p.join(child) {
            ExitStatus::Exited(3) => Ok(()),
            other => Err(mkipc_sim::ProcError::msg(format!("child ended {other}"))),
        }
    });
    assert!(world.join(parent).is_success());
}

#[test]
fn killing_a_thread_process_ends_its_blocked_receive() {
    let world = Threaded::new();
    let port = world.port(Capacity::Bounded(1)).unwrap();
    let victim = world
        .spawn_with("victim", &[Inherit::receive(port)], |p| {
            p.receive(p.right(0))?; // nobody sends: only the kill ends this
            Ok(())
        })
        .unwrap();
    world.spawn("killer", move |p| {
        p.sleep(ms(20));
        p.kill(victim);
        Ok(())
    });
    assert_eq!(world.join(victim), ExitStatus::Killed);
    let all = world.join_all();
    assert_eq!(all[0].1, ExitStatus::Killed);
    assert!(all[1].1.is_success());
}
