//! Every timed call of a simulated process saturates its deadline in
//! virtual time (u64 nanoseconds): `Duration::MAX` behaves as a blocking
//! call (it returns when another process supplies what it waits for, however
//! late), `Duration::ZERO` as a try (it returns at once, timed out, the clock
//! unmoved), and a deadline past the end of virtual time is the end of
//! virtual time, never a panic.
//!
//! Driven by the kernel's one list of timed calls
//! (`mkipc_kernel::conformance::deadlines`), as the kernel's own test is.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mkipc_kernel::conformance::deadlines::{timed_calls, Call, Names, Outcome, Unblock};
use mkipc_kernel::*;
use mkipc_sim::{ms, Proc, Sim};

/// The message id that tells b that a is done.
const DONE: u32 = 99;

/// The longest timeouts there are: each must wait like a blocking call.
const HUGE: [Duration; 2] = [Duration::MAX, Duration::from_secs(u64::MAX)];

/// Runs one case: `a` makes the call at 1 ms with `timeout`; `b` unblocks it
/// at `unblock_at` (or never). Returns the outcome and `a`'s clock after it.
fn run_case(
    tag: usize,
    call: Call<Proc>,
    unblock: Unblock<Proc>,
    timeout: Duration,
    unblock_at: Option<Duration>,
) -> (Outcome, Duration) {
    let mut sim = Sim::builder().seed(tag as u64).build();
    let a_pid: Rc<Cell<Option<Pid>>> = Rc::default();
    let b_pid: Rc<Cell<Option<Pid>>> = Rc::default();
    let names: Rc<Cell<Option<Names>>> = Rc::default();
    let result: Rc<Cell<Option<(Outcome, Duration)>>> = Rc::default();
    // Names are set up in a process that plays both roles' set-up halves
    // through the name service: a registers at 0, b at 0, and each looks the
    // other up at 1 ms.
    {
        let (a_pid, b_pid, names, result) =
            (a_pid.clone(), b_pid.clone(), names.clone(), result.clone());
        sim.spawn("a", move |a| {
            a_pid.set(Some(a.pid()));
            let a_port = a.port_allocate(Capacity::Unbounded)?;
            let a_port2 = a.port_allocate(Capacity::Unbounded)?;
            a.register("a1", a_port)?;
            a.register("a2", a_port2)?;
            a.sleep(ms(1));
            let b = b_pid.get().expect("b started");
            let n = Names {
                a_pid: a.pid(),
                b_pid: b,
                a_port,
                a_port2,
                to_a_port: PortName::NULL,
                to_a_port2: PortName::NULL,
                b_zero: PortName::NULL,
                to_b_zero: a.look_up("bz")?,
                b_server: PortName::NULL,
                to_b_server: a.look_up("bs")?,
            };
            names.set(Some(n));
            let outcome = call(a, &n, timeout);
            result.set(Some((outcome, a.now())));
            // b waits for this only when it answers nothing.
            let _ = a.try_send(n.to_b_server, Message::new(DONE, b""));
            Ok(())
        });
    }
    {
        let (a_pid, b_pid, names) = (a_pid.clone(), b_pid.clone(), names.clone());
        sim.spawn("b", move |b| {
            b_pid.set(Some(b.pid()));
            let b_zero = b.port_allocate(Capacity::Zero)?;
            let b_server = b.port_allocate(Capacity::Unbounded)?;
            b.register("bz", b_zero)?;
            b.register("bs", b_server)?;
            b.yield_now();
            let a = a_pid.get().expect("a started");
            b.set_link_capacity(a, Capacity::Zero)?;
            b.sleep(ms(1));
            let Some(at) = unblock_at else {
                // Nobody answers, but b's ports live on until a is done
                // (b keeps what it receives, so a call's reply right lives too).
                let mut kept = Vec::new();
                loop {
                    let m = b.receive(b_server)?;
                    if m.id == DONE {
                        return Ok(());
                    }
                    kept.push(m);
                }
            };
            b.sleep(at);
            let mut n = names.get().expect("a set up");
            n.b_zero = b_zero;
            n.b_server = b_server;
            n.to_a_port = b.look_up("a1")?;
            n.to_a_port2 = b.look_up("a2")?;
            unblock(b, &n);
            Ok(())
        });
    }
    let report = sim.run().expect("the run succeeds");
    assert!(
        report.procs.iter().all(|p| p.status.is_success()),
        "{report:?}"
    );
    result.take().expect("a made its call")
}

#[test]
fn a_huge_timeout_waits_like_a_blocking_call() {
    for (i, (name, call, unblock)) in timed_calls::<Proc>().into_iter().enumerate() {
        for (j, timeout) in HUGE.into_iter().enumerate() {
            let late = Duration::from_secs(3600 * 24 * 365);
            let (outcome, at) = run_case(i * 10 + j, call, unblock, timeout, Some(late));
            assert_eq!(outcome, Outcome::Done, "{name} with {timeout:?}");
            assert!(
                at >= late,
                "{name}: returned at {at:?}, before it was unblocked"
            );
        }
    }
}

#[test]
fn a_zero_timeout_behaves_like_a_try() {
    for (i, (name, call, unblock)) in timed_calls::<Proc>().into_iter().enumerate() {
        let (outcome, at) = run_case(i, call, unblock, Duration::ZERO, None);
        assert_eq!(outcome, Outcome::TimedOut, "{name} with a zero timeout");
        assert_eq!(at, ms(1), "{name}: a zero timeout moved the clock");
    }
}

/// Nobody unblocks: a huge timeout runs to the end of virtual time (the
/// deadline saturates at u64::MAX ns) and times out there, without panicking.
#[test]
fn a_huge_timeout_with_nobody_to_answer_ends_at_the_end_of_time() {
    for (i, (name, call, unblock)) in timed_calls::<Proc>().into_iter().enumerate() {
        let (outcome, at) = run_case(i, call, unblock, Duration::MAX, None);
        assert_eq!(outcome, Outcome::TimedOut, "{name}");
        assert_eq!(at, Duration::from_nanos(u64::MAX), "{name}");
    }
}

/// At the very end of virtual time, sleeps and timed calls saturate too.
#[test]
fn sleeping_past_the_end_of_time_saturates() {
    let mut sim = Sim::builder().seed(1).build();
    sim.spawn("sleeper", |p| {
        p.sleep(Duration::MAX);
        p.sleep(Duration::MAX);
        p.work(Duration::MAX);
        assert_eq!(p.now(), Duration::from_nanos(u64::MAX));
        let port = p.port_allocate(Capacity::Unbounded)?;
        assert_eq!(
            p.receive_timeout(port, Duration::MAX),
            Err(ReceiveError::TimedOut)
        );
        assert_eq!(p.receive_timeout(port, ms(1)), Err(ReceiveError::TimedOut));
        Ok(())
    });
    let report = sim.run().expect("the run succeeds");
    assert!(report.procs[0].status.is_success(), "{report:?}");
}
