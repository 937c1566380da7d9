//! `queue_stats` names each port made with `Sim::port` by its label, before
//! the run and while it runs (after the receive right moved to a process).

use std::cell::RefCell;
use std::rc::Rc;

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Inherit, Sim};

#[test]
fn ports_are_labelled_in_queue_stats() {
    let mut sim = Sim::builder().seed(0).build();
    let jobs = sim.port("jobs", Capacity::Bounded(2)).unwrap();
    let done = sim.port("done", Capacity::Unbounded).unwrap();
    let labels = |stats: Vec<mkipc_kernel::introspect::QueueStats>| -> Vec<String> {
        let mut l: Vec<String> = stats
            .into_iter()
            .filter(|q| q.kind == "port")
            .map(|q| q.label)
            .collect();
        l.sort();
        l
    };
    assert_eq!(labels(sim.queue_stats()), ["done", "jobs"]);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = Rc::clone(&seen);
    sim.queue_invariant("labels", move |view| {
        s.borrow_mut().extend(
            view.queue_stats()
                .into_iter()
                .filter(|q| q.kind == "port")
                .map(|q| q.label),
        );
        Ok(())
    });
    sim.spawn_with(
        "worker",
        &[Inherit::receive(jobs), Inherit::send(done)],
        |me| {
            me.receive(me.right(0))?;
            me.send(me.right(1), Message::new(1, b"done"))?;
            Ok(())
        },
    )
    .unwrap();
    sim.spawn_with(
        "boss",
        &[Inherit::send(jobs), Inherit::receive(done)],
        |me| {
            me.send(me.right(0), Message::new(2, b"job"))?;
            me.receive(me.right(1))?;
            Ok(())
        },
    )
    .unwrap();
    sim.run().unwrap();
    let seen = seen.borrow();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|l| l == "jobs" || l == "done"), "{seen:?}");
}
