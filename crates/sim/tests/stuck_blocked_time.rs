//! A process still blocked when the run ends is credited its wait up to
//! the end, not 0.

use mkipc_kernel::{Capacity, Ipc};
use mkipc_sim::{ms, ExitStatus, Inherit, Sim};

#[test]
fn a_stuck_wait_counts_up_to_the_end_of_the_run() {
    let mut sim = Sim::builder().seed(0).build();
    let p = sim.port("p", Capacity::Bounded(1)).unwrap();
    let q = sim.port("q", Capacity::Bounded(1)).unwrap();
    // Waits on `p` from t = 0 for good.
    sim.spawn_with("waiter", &[Inherit::receive(p), Inherit::send(q)], |me| {
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    // Sleeps 5 s, then waits on `q` for good: the run ends stuck at 5 s.
    sim.spawn_with("sleeper", &[Inherit::receive(q), Inherit::send(p)], |me| {
        me.sleep(ms(5000));
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    let failure = sim.run().unwrap_err();
    assert!(failure.reason.is_deadlock(), "{}", failure.reason);
    let waiter = failure.report.proc("waiter").unwrap();
    assert_eq!(waiter.status, ExitStatus::Stuck);
    assert_eq!(waiter.stats.blocked, ms(5000));
    let sleeper = failure.report.proc("sleeper").unwrap();
    assert_eq!(sleeper.stats.blocked, ms(0));
}
