//! A mistyped `MKIPC_SIM_REPLAY` is reported, not silently ignored.
//! (Its own test binary, with one test: the variable is process-wide.)

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Explorer, FailureReason, Inherit, Sim};

/// A model that never fails: an exploration of it finds nothing.
fn fine(sim: &mut Sim) {
    let p = sim.port("p", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("producer", &[Inherit::send(p)], |me| {
        me.send(me.right(0), Message::new(1, b"x"))?;
        Ok(())
    })
    .unwrap();
    sim.spawn_with("consumer", &[Inherit::receive(p)], |me| {
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_malformed_replay_variable_is_reported_not_ignored() {
    // This binary has one test, so no other thread reads the environment meanwhile.
    std::env::set_var("MKIPC_SIM_REPLAY", "seed=7;choices=0,1*x");
    let bad = Explorer::new().seeds(0..5).run(fine);
    std::env::set_var("MKIPC_SIM_REPLAY", "  ");
    let blank = Explorer::new().seeds(0..5).run(fine);
    std::env::remove_var("MKIPC_SIM_REPLAY");

    let failure = bad
        .failure
        .expect("a value that is not a schedule must not look like a clean exploration");
    assert_eq!(bad.runs, 0, "nothing runs under a schedule nobody meant");
    let FailureReason::BadReplay { value, error } = &failure.reason else {
        panic!("{failure}")
    };
    assert_eq!(value, "seed=7;choices=0,1*x");
    assert_eq!(
        error,
        &"seed=7;choices=0,1*x"
            .parse::<mkipc_sim::Schedule>()
            .unwrap_err()
    );
    let text = failure.to_string();
    assert!(
        text.contains("MKIPC_SIM_REPLAY='seed=7;choices=0,1*x'"),
        "{text}"
    );
    assert!(text.contains("bad repeat count"), "{text}");
    assert!(
        !text.contains("replay with"),
        "no replay line for a run that never happened: {text}"
    );

    // A blank value means "not set", as for SimBuilder::replay_from_env.
    blank.assert_ok();
    assert_eq!(blank.runs, 5);
}
