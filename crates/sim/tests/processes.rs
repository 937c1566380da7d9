//! Process lifecycle: spawn with inherited rights, exit codes, join, panics.

use mkipc_kernel::{Capacity, Ipc, Message, SendErrorKind};
use mkipc_sim::{ms, ExitStatus, FailureReason, Inherit, ProcError, Sim};

#[test]
fn smoke() {
    let mut sim = Sim::builder().build();
    let id = sim.spawn("p", |_| Ok(()));
    let r = sim.run().unwrap();
    assert_eq!(r.procs[id.0 as usize].status, ExitStatus::Exited(0));
}

#[test]
fn children_inherit_rights_like_fork_and_report_exit_codes() {
    for seed in 0..5 {
        let mut sim = Sim::builder().seed(seed).build();
        sim.spawn("parent", |p| {
            let port = p.port_allocate(Capacity::Bounded(1))?;
            p.make_send(port)?;
            // The child gets the receive right (moved) and exits with the value it receives.
            let child = p.spawn("child", &[Inherit::receive(port)], |c| {
                let v = c.receive(c.right(0))?.as_u64().unwrap_or(0);
                Err(ProcError::exit(v as i32))
            })?;
            // The parent keeps the send right under the same name.
            p.send(port, Message::from_u64(1, 7))?;
            assert_eq!(p.join(child), ExitStatus::Exited(7));
            // The child has exited: its receive right died with it.
            let err = p.send(port, Message::from_u64(1, 8)).unwrap_err();
            assert_eq!(err.kind(), SendErrorKind::DestinationDead);
            Ok(())
        });
        let r = sim.run().unwrap();
        assert_eq!(r.proc("child").unwrap().status, ExitStatus::Exited(7));
        assert!(r.proc("parent").unwrap().status.is_success());
        assert!(r.kernel_is_clean());
    }
}

#[test]
fn errors_become_failed_statuses() {
    let mut sim = Sim::builder().build();
    sim.spawn("bad", |p| {
        p.receive(mkipc_kernel::PortName::from_parts(9, 9))?;
        Ok(())
    });
    // The error also fails the run (the process did not declare it expected).
    let f = sim.run().unwrap_err();
    assert!(
        matches!(&f.reason, mkipc_sim::FailureReason::ProcessFailed { proc, .. } if proc == "bad"),
        "{f}"
    );
    let r = f.report;
    match &r.proc("bad").unwrap().status {
        ExitStatus::Failed { code: 1, error } => assert!(error.contains("invalid"), "{error}"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_panicking_process_fails_the_run_with_its_message() {
    let mut sim = Sim::builder().seed(3).build();
    sim.spawn("ok", |p| {
        p.sleep(ms(5));
        Ok(())
    });
    sim.spawn("boom", |p| {
        p.sleep(ms(1));
        panic!("model bug at {:?}", p.now());
    });
    let failure = sim.run().unwrap_err();
    match &failure.reason {
        FailureReason::Panicked { proc, message } => {
            assert_eq!(proc, "boom");
            assert!(message.contains("model bug at 1ms"), "{message}");
        }
        other => panic!("{other}"),
    }
    // The other process was unwound, the kernel emptied.
    assert_eq!(failure.report.proc("ok").unwrap().status, ExitStatus::Stuck);
    assert!(failure.report.kernel_is_clean());
}

#[test]
fn the_step_limit_stops_livelocks() {
    let mut sim = Sim::builder().max_steps(1000).build();
    sim.spawn("spinner", |p| loop {
        p.yield_now();
    });
    let failure = sim.run().unwrap_err();
    assert_eq!(failure.reason, FailureReason::StepLimit(1000));
}

#[test]
fn dropping_an_unrun_sim_unwinds_its_processes() {
    let guard = std::rc::Rc::new(());
    let g = guard.clone();
    let mut sim = Sim::builder().build();
    sim.spawn("never runs", move |_| {
        let _keep = &g;
        Ok(())
    });
    assert_eq!(std::rc::Rc::strong_count(&guard), 2);
    drop(sim);
    assert_eq!(
        std::rc::Rc::strong_count(&guard),
        1,
        "the closure was dropped"
    );
}

#[test]
fn a_process_can_kill_itself() {
    let mut sim = Sim::builder().build();
    let guard = std::rc::Rc::new(());
    let g = guard.clone();
    sim.spawn("quitter", move |p| {
        let _held = g; // dropped by the unwinding
        let port = p.port_allocate(Capacity::Unbounded)?;
        p.send(port, Message::new(1, b"left behind"))?;
        p.kill(p.id());
        unreachable!("a killed process does not run on");
    });
    let r = sim.run().unwrap();
    assert_eq!(r.proc("quitter").unwrap().status, ExitStatus::Killed);
    assert_eq!(std::rc::Rc::strong_count(&guard), 1);
    assert!(r.kernel_is_clean(), "the queued message died with the port");
}

#[test]
fn ipc_in_destructors_during_a_panic_does_not_switch() {
    struct SayGoodbye<'a>(&'a mkipc_sim::Proc, mkipc_kernel::PortName);
    impl Drop for SayGoodbye<'_> {
        fn drop(&mut self) {
            // A rendezvous nobody will meet: must not block while panicking.
            let _ = self.0.send(self.1, Message::new(9, b"bye"));
        }
    }
    let mut sim = Sim::builder().build();
    sim.spawn("panicky", |p| {
        let port = p.port_allocate(Capacity::Zero)?;
        let _bye = SayGoodbye(p, port);
        p.sleep(ms(1));
        panic!("boom");
    });
    let failure = sim.run().unwrap_err();
    assert!(matches!(failure.reason, FailureReason::Panicked { .. }));
    assert!(failure.report.kernel_is_clean());
}

/// Joining an id no process has returns `Stuck` at once, as in threaded
/// mode, instead of panicking the joiner.
#[test]
fn joining_an_unknown_process_returns_stuck() {
    for id in [1, 2, 77, u32::MAX] {
        let mut sim = Sim::builder().build();
        sim.spawn("joiner", move |p| {
            assert_eq!(p.join(mkipc_sim::ProcId(id)), ExitStatus::Stuck);
            Ok(())
        });
        let r = sim.run().unwrap_or_else(|f| panic!("join of {id}: {f}"));
        assert!(r.procs[0].status.is_success());
    }
    let threaded = mkipc_sim::Threaded::new();
    let joiner = threaded.spawn("joiner", |p| {
        assert_eq!(p.join(mkipc_sim::ProcId(77)), ExitStatus::Stuck);
        Ok(())
    });
    assert_eq!(threaded.join(joiner), ExitStatus::Exited(0));
}

mod stack_sizes {
    use mkipc_kernel::Ipc;
    use mkipc_sim::{ExitStatus, Sim};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any stack size either runs the process or reports that it could
        /// not start; building the run, spawning and running never panic.
        #[test]
        fn any_stack_size_runs_or_fails_cleanly(
            size in prop_oneof![
                Just(0usize),
                Just(usize::MAX),
                (1usize << 40)..=usize::MAX,
                0usize..(1 << 20),
            ],
        ) {
            let mut sim = Sim::builder().stack_size(size).build();
            let id = sim.spawn("p", |p| {
                p.yield_now();
                let _ = p.pid();
                Ok(())
            });
            // A process that could not start ended with an error: the run
            // fails for it, and says which.
            let r = match sim.run() {
                Ok(r) => r,
                Err(f) => {
                    prop_assert!(
                        matches!(&f.reason, mkipc_sim::FailureReason::ProcessFailed { proc, .. } if proc == "p"),
                        "{}", f
                    );
                    *f.report
                }
            };
            match &r.procs[id.0 as usize].status {
                ExitStatus::Exited(0) => {}
                ExitStatus::Failed { error, .. } => {
                    prop_assert!(size >= 1 << 40, "{} bytes: {}", size, error);
                    prop_assert!(error.contains("could not start"), "{}", error);
                }
                other => prop_assert!(false, "{} bytes: {}", size, other),
            }
            prop_assert!(r.kernel_is_clean(), "{:?}", r.kernel_at_end);
        }
    }
}
