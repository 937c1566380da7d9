//! Async processes ([`Sim::spawn_async`]: a future the loop polls, no
//! coroutine) against the reference, the closure making the same calls:
//! for random programs, seeds, schedulers and faults the two runs are the
//! same run (same schedule, same trace event for event, same report, same
//! failure), also when closures and async processes share a run. Then what
//! only an async process can get wrong: panics, misuse (two operations at
//! once), futures from elsewhere, deadlock reports naming it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use mkipc_kernel::{
    Capacity, Filter, Ipc, Message, OnFull, PortName, ReceiveError, SendErrorKind, Wait,
};
use mkipc_sim::{
    ms, AsyncIpc, AsyncProc, Dist, ExitStatus, Failure, FailureReason, Inherit, Proc, ProcResult,
    Report, SchedulerKind, Sim,
};
use proptest::prelude::*;

/// What a step of a program does.
#[derive(Clone, Debug)]
enum Act {
    /// Sends to port `k` (mode: block, fail, drop oldest, time out).
    Send(usize, u8),
    /// Receives on its own port (mode: forever, no wait, for a while);
    /// answers a call it receives.
    Receive(u8),
    /// Selects its own port (mode: for a while, no wait).
    Select(u8),
    /// Calls port `k` (waiting for the reply for a while).
    Call(usize),
    /// Works or sleeps (random durations draw from the run's stream).
    Pause(u8, bool),
    /// Just a scheduling point.
    Yield,
    /// A nondeterministic choice.
    Choose(usize),
    /// Allocates a port, sends itself a message through it, destroys it
    /// (operations that never wait).
    Scratch,
    /// Spawns a child (of the same kind) that sends twice to port `k`;
    /// joins it when the flag says so.
    Spawn(usize, bool),
    /// A priority select of its own port (mode as `Select`).
    SelectFirst(u8),
    /// A selective receive on its own port of messages with this id
    /// (mode as `Receive`), after a peek.
    Matching(u32, u8),
    /// Sends to itself over its direct link (mode as `Send`).
    SendSelf(u8),
    /// Receives from any direct link (mode as `Receive`).
    ReceiveDirect(u8),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (0..3usize, 0..4u8).prop_map(|(k, m)| Act::Send(k, m)),
        3 => (0..3u8).prop_map(Act::Receive),
        1 => (0..2u8).prop_map(Act::Select),
        1 => (0..3usize).prop_map(Act::Call),
        1 => (0..4u8, any::<bool>()).prop_map(|(d, b)| Act::Pause(d, b)),
        1 => Just(Act::Yield),
        1 => (0..4usize).prop_map(Act::Choose),
        1 => Just(Act::Scratch),
        1 => (0..3usize, any::<bool>()).prop_map(|(k, j)| Act::Spawn(k, j)),
        1 => (0..2u8).prop_map(Act::SelectFirst),
        1 => (1..4u32, 0..3u8).prop_map(|(id, m)| Act::Matching(id, m)),
        1 => (0..4u8).prop_map(Act::SendSelf),
        1 => (0..3u8).prop_map(Act::ReceiveDirect),
    ]
}

fn dist(d: u8) -> Dist {
    match d {
        0 => Dist::Fixed(Duration::ZERO),
        1 => Dist::Fixed(Duration::from_micros(300)),
        2 => Dist::Uniform(Duration::from_micros(100), Duration::from_millis(2)),
        _ => Dist::Exponential(Duration::from_millis(1)),
    }
}

fn on_full(mode: u8) -> OnFull {
    match mode {
        0 => OnFull::Block,
        1 => OnFull::Fail,
        2 => OnFull::DropOldest,
        _ => OnFull::Timeout(Duration::from_millis(1)),
    }
}

fn wait(mode: u8) -> Wait {
    match mode {
        0 => Wait::Forever,
        1 => Wait::NoWait,
        _ => Wait::For(Duration::from_millis(2)),
    }
}

/// The child a `Spawn` makes: two sends to the right it inherits.
const CHILD: [Act; 2] = [Act::Send(0, 0), Act::Send(0, 3)];

/// Runs `acts` on a closure's handle: `own` is its receive right, `to`
/// the ports it may send to.
fn run_closure(p: &Proc, own: PortName, to: &[PortName], acts: &[Act]) -> ProcResult {
    let mut got = 0u64;
    for (pc, a) in acts.iter().enumerate() {
        match *a {
            Act::Send(k, mode) => {
                let _ = p.send_with(to[k], Message::from_u64(1, pc as u64), on_full(mode));
            }
            Act::Receive(mode) => {
                if let Ok(m) = p.receive_with(own, wait(mode)) {
                    got += m.as_u64().unwrap_or(0);
                    if m.reply().is_some() {
                        let _ = p.reply(&m, Message::from_u64(2, got));
                    }
                }
            }
            Act::Select(mode) => {
                let w = if mode == 0 {
                    Wait::For(ms(1))
                } else {
                    Wait::NoWait
                };
                let _ = p.select_with(&[own], w);
            }
            Act::Call(k) => {
                let _ = p.call_with(to[k], Message::from_u64(3, pc as u64), Wait::For(ms(3)));
            }
            Act::Pause(d, true) => p.work(dist(d)),
            Act::Pause(d, false) => p.sleep(dist(d)),
            Act::Yield => p.yield_now(),
            Act::Choose(n) => got += p.choose(n) as u64,
            Act::Scratch => {
                let port = p.port_allocate(Capacity::Bounded(1))?;
                let _ = p.try_send(port, Message::from_u64(4, got));
                let _ = p.try_receive(port);
                p.destroy(port)?;
            }
            Act::SelectFirst(mode) => {
                let w = if mode == 0 {
                    Wait::For(ms(1))
                } else {
                    Wait::NoWait
                };
                let _ = p.select_first_with(&[own], w);
            }
            Act::Matching(id, mode) => {
                let _ = p.peek(own);
                let _ = p.receive_matching_with(own, &Filter::any().id(id), wait(mode));
            }
            Act::SendSelf(mode) => {
                let _ = p.send_to_with(p.pid(), Message::from_u64(1, pc as u64), on_full(mode));
            }
            Act::ReceiveDirect(mode) => {
                let _ = p.receive_from_any_with(wait(mode));
            }
            Act::Spawn(k, join) => {
                let right = to[k];
                let id = p.spawn("child", &[Inherit::copy_send(right)], move |c| {
                    let r = c.right(0);
                    run_closure(c, r, &[r], &CHILD)
                })?;
                if join {
                    p.join(id);
                }
            }
        }
    }
    Ok(())
}

/// The same program on an async process's handle: the same calls, awaited.
fn run_async<'a>(
    p: &'a AsyncProc,
    own: PortName,
    to: &'a [PortName],
    acts: &'a [Act],
) -> Pin<Box<dyn Future<Output = ProcResult> + 'a>> {
    Box::pin(async move {
        let mut got = 0u64;
        for (pc, a) in acts.iter().enumerate() {
            match *a {
                Act::Send(k, mode) => {
                    let msg = Message::from_u64(1, pc as u64);
                    let _ = p.send_with(to[k], msg, on_full(mode)).await;
                }
                Act::Receive(mode) => {
                    if let Ok(m) = p.receive_with(own, wait(mode)).await {
                        got += m.as_u64().unwrap_or(0);
                        if m.reply().is_some() {
                            let _ = p.reply(&m, Message::from_u64(2, got)).await;
                        }
                    }
                }
                Act::Select(mode) => {
                    let w = if mode == 0 {
                        Wait::For(ms(1))
                    } else {
                        Wait::NoWait
                    };
                    let _ = p.select_with(&[own], w).await;
                }
                Act::Call(k) => {
                    let msg = Message::from_u64(3, pc as u64);
                    let _ = p.call_with(to[k], msg, Wait::For(ms(3))).await;
                }
                Act::Pause(d, true) => p.work(dist(d)).await,
                Act::Pause(d, false) => p.sleep(dist(d)).await,
                Act::Yield => p.yield_now().await,
                Act::Choose(n) => got += p.choose(n) as u64,
                Act::Scratch => {
                    let port = p.port_allocate(Capacity::Bounded(1)).await?;
                    let _ = p.try_send(port, Message::from_u64(4, got)).await;
                    let _ = p.try_receive(port).await;
                    p.destroy(port).await?;
                }
                Act::SelectFirst(mode) => {
                    let w = if mode == 0 {
                        Wait::For(ms(1))
                    } else {
                        Wait::NoWait
                    };
                    let _ = p.select_first_with(&[own], w).await;
                }
                Act::Matching(id, mode) => {
                    let _ = p.peek(own).await;
                    let filter = Filter::any().id(id);
                    let _ = p.receive_matching_with(own, &filter, wait(mode)).await;
                }
                Act::SendSelf(mode) => {
                    let msg = Message::from_u64(1, pc as u64);
                    let _ = p.send_to_with(p.pid(), msg, on_full(mode)).await;
                }
                Act::ReceiveDirect(mode) => {
                    let _ = p.receive_from_any_with(wait(mode)).await;
                }
                Act::Spawn(k, join) => {
                    let right = to[k];
                    let id = p
                        .spawn_async("child", &[Inherit::copy_send(right)], |c| async move {
                            let r = c.right(0);
                            run_async(&c, r, &[r], &CHILD).await
                        })
                        .await?;
                    if join {
                        p.join(id).await;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Faults a run may plan.
#[derive(Clone, Debug)]
enum Fault {
    None,
    AtStep(usize, u64),
    AtTime(usize, u64),
    Randomly(usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        2 => Just(Fault::None),
        1 => (0..3usize, 1..40u64).prop_map(|(p, s)| Fault::AtStep(p, s)),
        1 => (0..3usize, 0..3000u64).prop_map(|(p, us)| Fault::AtTime(p, us)),
        1 => (0..3usize).prop_map(Fault::Randomly),
    ]
}

/// Runs a model: process `i` receives on port `i` and may send to every
/// port; process `i` is async when `asyncs[i]`.
fn run(
    programs: &[Vec<Act>],
    caps: &[usize],
    asyncs: &[bool],
    fault: &Fault,
    mut sim: Sim,
) -> Result<Report, Failure> {
    let ports: Vec<PortName> = caps
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let cap = if c == 0 {
                Capacity::Zero
            } else {
                Capacity::Bounded(c)
            };
            sim.port(&format!("p{i}"), cap).unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for (i, acts) in programs.iter().enumerate() {
        let mut inherit = vec![Inherit::receive(ports[i])];
        inherit.extend(ports.iter().map(|&p| Inherit::send(p)));
        let acts = acts.clone();
        let name = format!("m{i}");
        let id = if asyncs[i] {
            sim.spawn_async(&name, &inherit, move |p| async move {
                let own = p.right(0);
                let to: Vec<PortName> = p.inherited()[1..].iter().map(|c| c.name).collect();
                run_async(&p, own, &to, &acts).await
            })
        } else {
            sim.spawn_with(&name, &inherit, move |p| {
                let own = p.right(0);
                let to: Vec<PortName> = p.inherited()[1..].iter().map(|c| c.name).collect();
                run_closure(p, own, &to, &acts)
            })
        }
        .unwrap();
        ids.push(id);
    }
    sim.server(ids[0]);
    match *fault {
        Fault::None => {}
        Fault::AtStep(p, s) => sim.kill_at_step(ids[p], s),
        Fault::AtTime(p, us) => sim.kill_at_time(ids[p], Duration::from_micros(us)),
        Fault::Randomly(p) => sim.kill_randomly(ids[p], 0.05),
    }
    sim.run()
}

fn digest(r: &Result<Report, Failure>) -> String {
    match r {
        Ok(report) => format!("ok\n{report:#?}\n{}", report.trace.to_json_lines()),
        Err(f) => format!("err\n{f}\n{f:#?}\n{}", f.report.trace.to_json_lines()),
    }
}

fn hash(r: &Result<Report, Failure>) -> u64 {
    match r {
        Ok(report) => report.trace.hash(),
        Err(f) => f.report.trace.hash(),
    }
}

fn programs() -> impl Strategy<Value = (Vec<Vec<Act>>, Vec<usize>)> {
    (
        prop::collection::vec(prop::collection::vec(act(), 0..12), 3),
        prop::collection::vec(0..3usize, 3),
    )
}

fn scheduler() -> impl Strategy<Value = SchedulerKind> {
    prop_oneof![
        Just(SchedulerKind::Random),
        Just(SchedulerKind::RoundRobin),
        Just(SchedulerKind::Pct {
            depth: 2,
            max_steps: 100
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every process async, or some: the run is the all-closure run.
    #[test]
    fn async_processes_run_as_their_closure_twins(
        (programs, caps) in programs(),
        asyncs in prop::collection::vec(any::<bool>(), 3),
        all_async in any::<bool>(),
        seed in 0..1000u64,
        sched in scheduler(),
        fault in fault(),
    ) {
        let asyncs = if all_async { vec![true; 3] } else { asyncs };
        let builder = Sim::builder().seed(seed).scheduler(sched);
        let twin = run(&programs, &caps, &asyncs, &fault, builder.clone().build());
        let closures = run(&programs, &caps, &[false; 3], &fault, builder.build());
        prop_assert_eq!(hash(&twin), hash(&closures));
        prop_assert_eq!(digest(&twin), digest(&closures));
    }
}

/// The bench's ping-pong, as async processes and as closures: the same
/// trace hash for several seeds, and the exchange complete.
#[test]
fn the_async_ping_pong_is_the_closure_one() {
    let mut hashes = std::collections::BTreeSet::new();
    for seed in 0..6 {
        let mut a = Sim::builder().seed(seed).build();
        mkipc_sim::workload::ping_pong(&mut a, 50).unwrap();
        let a = a.run().unwrap();
        let mut b = Sim::builder().seed(seed).build();
        mkipc_sim::workload::ping_pong_async(&mut b, 50).unwrap();
        let b = b.run().unwrap();
        assert_eq!(a.trace.hash(), b.trace.hash(), "seed {seed}");
        assert_eq!(a.schedule, b.schedule, "seed {seed}");
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "seed {seed}");
        assert!(b.kernel_is_clean());
        assert_eq!(b.port("ping").unwrap().messages, 50);
        hashes.insert(b.trace.hash());
    }
    // The seeds do make different runs: the comparison is not vacuous.
    assert!(hashes.len() > 1);
}

/// The classic deadlock, each side receiving before it sends, as async
/// processes: the report names both in the wait-for cycle, as it does
/// the closures.
#[test]
fn a_deadlock_of_async_processes_names_them() {
    fn model(sim: &mut Sim, asynchronous: bool) {
        let a = sim.port("a", Capacity::Bounded(1)).unwrap();
        let b = sim.port("b", Capacity::Bounded(1)).unwrap();
        for (name, own, other) in [("alice", a, b), ("bob", b, a)] {
            let inherit = [Inherit::receive(own), Inherit::send(other)];
            if asynchronous {
                sim.spawn_async(name, &inherit, |p| async move {
                    p.receive(p.right(0)).await?;
                    p.send(p.right(1), Message::from_u64(1, 1)).await?;
                    Ok(())
                })
                .unwrap();
            } else {
                sim.spawn_with(name, &inherit, |p| {
                    p.receive(p.right(0))?;
                    p.send(p.right(1), Message::from_u64(1, 1))?;
                    Ok(())
                })
                .unwrap();
            }
        }
    }
    let mut sim = Sim::builder().seed(5).build();
    model(&mut sim, true);
    let failure = sim.run().unwrap_err();
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("expected a deadlock, got {failure}");
    };
    let text = d.to_string();
    assert!(text.contains("alice") && text.contains("bob"), "{text}");
    let mut twin = Sim::builder().seed(5).build();
    model(&mut twin, false);
    let twin = twin.run().unwrap_err();
    assert_eq!(failure.to_string(), twin.to_string());
    assert_eq!(failure.report.trace.hash(), twin.report.trace.hash());
}

/// A panic in an async process fails the run, naming it, as a closure's does.
#[test]
fn a_panic_in_an_async_process_fails_the_run() {
    let mut sim = Sim::builder().seed(1).build();
    sim.spawn_async("fine", &[], |p| async move {
        p.sleep(ms(5)).await;
        Ok(())
    })
    .unwrap();
    sim.spawn_async("doomed", &[], |p| async move {
        p.work(ms(1)).await;
        if p.now() == ms(1) {
            panic!("boom at {:?}", p.now());
        }
        Ok(())
    })
    .unwrap();
    let failure = sim.run().unwrap_err();
    assert_eq!(
        failure.reason,
        FailureReason::Panicked {
            proc: "doomed".into(),
            message: "boom at 1ms".into()
        }
    );
    let doomed = failure.report.proc("doomed").unwrap();
    assert!(matches!(doomed.status, ExitStatus::Panicked(_)));
}

/// An error returned from an async process fails the run unless declared.
#[test]
fn an_error_from_an_async_process_is_reported() {
    let mut sim = Sim::builder().seed(1).build();
    let port = sim.port("closed", Capacity::Bounded(1)).unwrap();
    sim.spawn_async("sender", &[Inherit::send(port)], |p| async move {
        p.sleep(ms(1)).await;
        p.send(p.right(0), Message::from_u64(1, 1)).await?;
        Ok(())
    })
    .unwrap();
    // The receive right goes with a process that ends at once.
    sim.spawn_async("gone", &[Inherit::receive(port)], |_| async { Ok(()) })
        .unwrap();
    let failure = sim.run().unwrap_err();
    let FailureReason::ProcessFailed { proc, error } = &failure.reason else {
        panic!("expected a failed process, got {failure}");
    };
    assert_eq!(proc, "sender");
    assert!(error.contains("dead") || error.contains("Dead"), "{error}");
}

/// A killed async process's pending send leaves the kernel: the peer sees
/// the documented error, the kernel ends clean.
#[test]
fn killing_an_async_process_cancels_its_wait() {
    let mut sim = Sim::builder().seed(2).build();
    let port = sim.port("full", Capacity::Zero).unwrap();
    let victim = sim
        .spawn_async("victim", &[Inherit::send(port)], |p| async move {
            p.send(p.right(0), Message::from_u64(1, 1)).await?;
            Ok(())
        })
        .unwrap();
    sim.spawn_async("receiver", &[Inherit::receive(port)], |p| async move {
        p.sleep(ms(5)).await;
        // The only sender is gone: nobody will ever send.
        let r = p.receive_timeout(p.right(0), ms(1)).await;
        assert!(r.is_err());
        Ok(())
    })
    .unwrap();
    sim.kill_at_time(victim, ms(2));
    let report = sim.run().unwrap();
    assert_eq!(report.proc("victim").unwrap().status, ExitStatus::Killed);
    assert!(report.kernel_is_clean());
}

/// Two operations of one process polled side by side end it with an
/// error (not a hang, not a panic).
#[test]
fn two_operations_at_once_end_the_process_with_an_error() {
    let mut sim = Sim::builder().seed(1).build();
    let id = sim
        .spawn_async("greedy", &[], |p| async move {
            let port = p.port_allocate(Capacity::Bounded(1)).await?;
            let mut a = Box::pin(p.receive(port));
            let mut b = Box::pin(p.receive(port));
            std::future::poll_fn(|cx| {
                let _ = a.as_mut().poll(cx);
                let _ = b.as_mut().poll(cx);
                Poll::<()>::Pending
            })
            .await;
            Ok(())
        })
        .unwrap();
    sim.expect_error(id);
    let report = sim.run().unwrap();
    let ExitStatus::Failed { error, .. } = &report.procs[0].status else {
        panic!("expected a failure, got {:?}", report.procs[0].status);
    };
    assert!(error.contains("while another"), "{error}");
    assert!(report.kernel_is_clean());
}

/// A one-shot channel that is no part of the simulator, with a waker slot.
#[derive(Default)]
struct Slot {
    value: Option<u64>,
    waker: Option<Waker>,
}

/// A future from elsewhere wakes its process through the `Waker` it was
/// polled with; one never woken leaves the process blocked, and the run
/// reports it.
#[test]
fn futures_from_elsewhere_wake_their_process() {
    for fill in [true, false] {
        let slot = Rc::new(RefCell::new(Slot::default()));
        let mut sim = Sim::builder().seed(1).build();
        let s2 = Rc::clone(&slot);
        sim.spawn_async("waiter", &[], move |p| async move {
            let v = std::future::poll_fn(|cx| {
                let mut s = s2.borrow_mut();
                match s.value.take() {
                    Some(v) => Poll::Ready(v),
                    None => {
                        s.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            })
            .await;
            assert_eq!(v, 42);
            assert_eq!(p.now(), ms(3));
            Ok(())
        })
        .unwrap();
        let s3 = Rc::clone(&slot);
        sim.spawn_async("filler", &[], move |p| async move {
            p.sleep(ms(3)).await;
            if fill {
                let mut s = s3.borrow_mut();
                s.value = Some(42);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
            Ok(())
        })
        .unwrap();
        let r = sim.run();
        if fill {
            let report = r.unwrap();
            assert!(report.procs.iter().all(|p| p.status.is_success()));
        } else {
            let failure = r.unwrap_err();
            let FailureReason::Deadlock(d) = &failure.reason else {
                panic!("expected a deadlock, got {failure}");
            };
            assert!(d.to_string().contains("waiter"), "{d}");
        }
    }
}

/// A future that wakes its own process while it is polled (through the
/// waker it was lent, or a clone of it, and by value or by reference) is
/// polled again, not left blocked: the wake came before the process
/// blocked, so only the runner can see it. A clone of a clone wakes the
/// same process.
#[test]
fn a_future_woken_during_its_own_poll_runs_again() {
    for how in 0..4 {
        let mut sim = Sim::builder().seed(3).build();
        let id = sim
            .spawn_async("self-waker", &[], move |p| async move {
                let mut polls = 0;
                std::future::poll_fn(|cx| {
                    polls += 1;
                    if polls == 3 {
                        return Poll::Ready(());
                    }
                    match how {
                        0 => cx.waker().wake_by_ref(),
                        1 => {
                            // A clone (the shared waker), woken by value.
                            let kept = cx.waker().clone();
                            kept.wake();
                        }
                        2 => cx.waker().clone().wake_by_ref(),
                        _ => {
                            let a = cx.waker().clone();
                            let b = a.clone();
                            assert!(a.will_wake(&b));
                            drop(a);
                            b.wake();
                        }
                    }
                    Poll::Pending
                })
                .await;
                p.sleep(ms(1)).await;
                Ok(())
            })
            .unwrap();
        let report = sim.run().unwrap_or_else(|f| panic!("way {how}: {f}"));
        assert!(report.procs[id.0 as usize].status.is_success(), "way {how}");
        assert_eq!(report.end_time, ms(1), "way {how}");
    }
}

/// Every kind of operation works on an async process: direct addressing,
/// port sets, mailboxes and the name service, rights in messages, peek,
/// selective receive, close, priority select.
#[test]
fn the_whole_api_on_an_async_process() {
    use mkipc_kernel::ipc::Owner;
    use mkipc_kernel::MailboxConfig;
    let mut sim = Sim::builder().seed(9).build();
    let server = sim
        .spawn_async("server", &[], |p| async move {
            let svc = p.port_allocate(Capacity::Bounded(4)).await?;
            let send = p.make_send(svc).await?;
            p.register("echo", send).await?;
            // Requests: calls, answered with the value + 1.
            for _ in 0..2 {
                let req = p.receive(svc).await?;
                let v = req.as_u64().unwrap_or(0);
                p.reply(&req, Message::from_u64(2, v + 1)).await?;
            }
            // Direct addressing: a message from any task.
            let m = p.receive_from_any().await?;
            assert_eq!(m.as_u64(), Some(7));
            Ok(())
        })
        .unwrap();
    let server_pid = sim.pid(server).unwrap();
    sim.spawn_async("client", &[], move |p| async move {
        p.sleep(ms(1)).await;
        let echo = p.look_up("echo").await?;
        assert_eq!(
            p.call(echo, Message::from_u64(1, 10)).await?.as_u64(),
            Some(11)
        );
        let reply = p
            .call_timeout(echo, Message::from_u64(1, 20), ms(5))
            .await?;
        assert_eq!(reply.as_u64(), Some(21));
        p.send_to(server_pid, Message::from_u64(1, 7)).await?;
        // Port sets, peek, selective receive, priority select, close.
        let a = p.port_allocate(Capacity::Unbounded).await?;
        let b = p.port_allocate(Capacity::Unbounded).await?;
        p.make_send(a).await?;
        p.make_send(b).await?;
        let set = p.port_set_allocate().await?;
        p.port_set_insert(set, a).await?;
        p.send(a, Message::new(5, b"five")).await?;
        p.send(b, Message::new(6, b"six")).await?;
        assert_eq!(p.peek(a).await?.id, 5);
        assert_eq!(p.receive(set).await?.id, 5);
        p.send(a, Message::new(8, b"eight")).await?;
        p.send(a, Message::new(9, b"nine")).await?;
        let nine = p.receive_matching(a, &Filter::any().id(9)).await?;
        assert_eq!(nine.id, 9);
        assert_eq!(p.try_select_first(&[b, a]).await?.id, 6);
        assert_eq!(p.select(&[a, b]).await?.id, 8);
        p.close(a).await?;
        let refused = p.try_send(a, Message::new(1, b"late")).await.unwrap_err();
        assert_eq!(refused.kind(), SendErrorKind::Closed);
        assert_eq!(p.try_receive(a).await, Err(ReceiveError::Closed));
        assert!(p.rights(b).await?.receive);
        assert_eq!(p.port_status(b).await?.queue_len, 0);
        // A mailbox of its own.
        let mb = p
            .mailbox_create(
                "box",
                MailboxConfig::new(Capacity::Bounded(2)).owner(Owner::System),
            )
            .await?;
        let opened = p.mailbox_open("box").await?;
        p.send(opened, Message::from_u64(1, 3)).await?;
        assert_eq!(p.receive(mb).await?.as_u64(), Some(3));
        p.mailbox_destroy(mb).await?;
        p.unregister("echo").await.ok();
        p.port_set_remove(a).await.ok();
        p.destroy(set).await?;
        Ok(())
    })
    .unwrap();
    let report = match sim.run() {
        Ok(r) => r,
        Err(f) => panic!("{f}\n{}", f.report.trace.to_json_lines()),
    };
    assert!(
        report.procs.iter().all(|p| p.status.is_success()),
        "{report}"
    );
    let client = report.proc("client").unwrap();
    // Two calls, a direct send, five sends; the send after the close failed.
    assert_eq!(client.stats.sent, 2 + 1 + 5);
    assert_eq!(client.stats.send_failures, 1);
}

/// Idle async processes (the memory bench's): each allocates a port and
/// waits on it; all time out at a virtual second and end.
#[test]
fn many_idle_async_processes_time_out_together() {
    let mut sim = Sim::builder().seed(1).trace(false).build();
    for _ in 0..2000 {
        sim.spawn_async("idle", &[], |p| async move {
            let own = p.port_allocate(Capacity::Bounded(1)).await?;
            let r = p.receive_timeout(own, Duration::from_secs(1)).await;
            assert_eq!(r, Err(ReceiveError::TimedOut));
            Ok(())
        })
        .unwrap();
    }
    let report = sim.run().unwrap();
    assert_eq!(report.end_time, Duration::from_secs(1));
    assert!(report.kernel_is_clean());
    assert_eq!(report.procs.len(), 2000);
}

/// Closures and async processes spawn each other.
#[test]
fn closures_and_async_processes_spawn_each_other() {
    let mut sim = Sim::builder().seed(4).build();
    let port = sim.port("results", Capacity::Unbounded).unwrap();
    sim.spawn_with("closure", &[Inherit::send(port)], |p| {
        p.spawn("x", &[Inherit::copy_send(p.right(0))], |c| {
            c.send(c.right(0), Message::from_u64(1, 1))?;
            Ok(())
        })?;
        Ok(())
    })
    .unwrap();
    sim.spawn_async("async", &[Inherit::send(port)], |p| async move {
        let id = p
            .spawn("closure child", &[Inherit::copy_send(p.right(0))], |c| {
                c.send(c.right(0), Message::from_u64(1, 2))?;
                Ok(())
            })
            .await?;
        assert!(p.join(id).await.is_success());
        Ok(())
    })
    .unwrap();
    sim.spawn_with("reader", &[Inherit::receive(port)], |p| {
        let a = p.receive(p.right(0))?.as_u64().unwrap_or(0);
        let b = p.receive(p.right(0))?.as_u64().unwrap_or(0);
        assert_eq!(a + b, 3);
        Ok(())
    })
    .unwrap();
    let report = sim.run().unwrap();
    assert_eq!(report.procs.len(), 5);
    assert!(report.procs.iter().all(|p| p.status.is_success()));
}

/// Exhaustive exploration (DPOR by default, and without reduction) of a
/// race between two senders reaches every arrival order with async
/// processes, as with closures.
#[test]
fn exhaustive_exploration_covers_async_processes() {
    use mkipc_sim::{Explorer, Reduction};
    fn model(sim: &mut Sim, asynchronous: bool) {
        let port = sim.port("inbox", Capacity::Bounded(1)).unwrap();
        for k in 0..2u64 {
            let name = format!("sender{k}");
            if asynchronous {
                sim.spawn_async(&name, &[Inherit::send(port)], move |p| async move {
                    p.send(p.right(0), Message::from_u64(1, k)).await?;
                    Ok(())
                })
                .unwrap();
            } else {
                sim.spawn_with(&name, &[Inherit::send(port)], move |p| {
                    p.send(p.right(0), Message::from_u64(1, k))?;
                    Ok(())
                })
                .unwrap();
            }
        }
        let inherit = [Inherit::receive(port)];
        if asynchronous {
            sim.spawn_async("receiver", &inherit, |p| async move {
                p.receive(p.right(0)).await?;
                p.receive(p.right(0)).await?;
                Ok(())
            })
            .unwrap();
        } else {
            sim.spawn_with("receiver", &inherit, |p| {
                p.receive(p.right(0))?;
                p.receive(p.right(0))?;
                Ok(())
            })
            .unwrap();
        }
    }
    let orders = |asynchronous: bool, reduction: Reduction| {
        let mut seen = std::collections::BTreeSet::new();
        let outcome = Explorer::new()
            .exhaustive(50, 10_000)
            .reduction(reduction)
            .run_all(
                |sim| model(sim, asynchronous),
                |r| {
                    let report = r.as_ref().expect("no failure in this model");
                    let order: Vec<Option<u32>> = report
                        .trace
                        .events
                        .iter()
                        .filter_map(|e| match e.kind {
                            mkipc_sim::EventKind::Received { sender, .. } => Some(sender),
                            _ => None,
                        })
                        .collect();
                    seen.insert(order);
                },
            );
        assert!(outcome.failure.is_none());
        seen
    };
    for reduction in [Reduction::Dpor, Reduction::None] {
        let a = orders(true, reduction);
        let c = orders(false, reduction);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(a, c);
    }
}
