//! `MKIPC_SIM_REPLAY` makes an explorer run exactly the given schedule.
//! (Its own test binary: the variable is process-wide.)

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Explorer, Inherit, Sim};

fn classic(sim: &mut Sim) {
    let p = sim.port("p", Capacity::Zero).unwrap();
    let q = sim.port("q", Capacity::Zero).unwrap();
    sim.spawn_with("alice", &[Inherit::receive(p), Inherit::send(q)], |me| {
        me.send(me.right(1), Message::new(1, b"x"))?;
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    sim.spawn_with("bob", &[Inherit::receive(q), Inherit::send(p)], |me| {
        me.send(me.right(1), Message::new(2, b"y"))?;
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_environment_variable_replays_one_schedule() {
    let found = Explorer::new().seeds(0..10).run(classic).failure.unwrap();
    // This binary has one test, so no other thread reads the environment meanwhile.
    std::env::set_var("MKIPC_SIM_REPLAY", found.replay_line());
    let outcome = Explorer::new().seeds(1000..2000).run(classic);
    std::env::remove_var("MKIPC_SIM_REPLAY");
    assert_eq!(outcome.runs, 1);
    let again = outcome
        .failure
        .expect("the replayed schedule deadlocks again");
    assert_eq!(again.reason, found.reason);
    assert_eq!(again.report.trace, found.report.trace);
}
