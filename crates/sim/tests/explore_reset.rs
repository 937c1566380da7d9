//! The explorer runs every schedule on one `Sim`, reset between runs instead
//! of built anew: each run must be exactly the one a fresh `Sim` of that seed
//! and scheduler gives (report, trace, schedule, failure), whatever the run
//! before it left behind — a deadlock with stuck processes, a kill, a panic,
//! timers still armed, spawned children, machines and async processes.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mkipc_kernel::ipc::Owner;
use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Message};
use mkipc_sim::{
    ms, workload, AsyncIpc, Dist, Explorer, Failure, FailureReason, Inherit, Report, SchedulerKind,
    Sim,
};

type Model = fn(&mut Sim);

/// A producer sends 10 messages through a `Bounded(2)` port to a consumer
/// (the benchmark's model).
fn ten_messages(sim: &mut Sim) {
    let port = sim.port("q", Capacity::Bounded(2)).unwrap();
    sim.spawn_with("producer", &[Inherit::send(port)], |p| {
        for i in 0..10 {
            p.send(p.right(0), Message::from_u64(1, i))?;
        }
        Ok(())
    })
    .unwrap();
    sim.spawn_with("consumer", &[Inherit::receive(port)], |p| {
        for _ in 0..10 {
            p.receive(p.right(0))?;
        }
        Ok(())
    })
    .unwrap();
}

/// A lost update through a server (calls and replies): fails its final
/// check on the seeds where the two read-modify-writes interleave.
fn lost_update(sim: &mut Sim) {
    let svc = sim.port("counter", Capacity::Unbounded).unwrap();
    let value = Rc::new(Cell::new(0u64));
    let v = Rc::clone(&value);
    sim.spawn_with("server", &[Inherit::receive(svc)], move |p| {
        for _ in 0..4 {
            let req = p.receive(p.right(0))?;
            match req.id {
                1 => p.reply(&req, Message::from_u64(1, v.get()))?,
                _ => v.set(req.as_u64().unwrap_or(0)),
            }
        }
        Ok(())
    })
    .unwrap();
    for k in 0..2 {
        sim.spawn_with(&format!("client{k}"), &[Inherit::send(svc)], |p| {
            let read = p
                .call(p.right(0), Message::new(1, b""))?
                .as_u64()
                .unwrap_or(0);
            p.send(p.right(0), Message::from_u64(2, read + 1))?;
            Ok(())
        })
        .unwrap();
    }
    sim.check_at_end("both increments count", move |_| {
        if value.get() == 2 {
            Ok(())
        } else {
            Err(format!("counter is {}, expected 2", value.get()))
        }
    });
}

/// Faults and timeouts: a worker that may be killed at random or at a
/// virtual time, a client waiting for its answers with a timeout and
/// random pauses (the world's random stream), a child spawned and joined,
/// and a pair that deadlocks on rendezvous ports when a coin says so. Some
/// seeds pass, some deadlock (stuck processes unwound at the end), some end
/// with a process failed.
fn faults_and_timeouts(sim: &mut Sim) {
    let jobs = sim.port("jobs", Capacity::Bounded(1)).unwrap();
    let answers = sim.port("answers", Capacity::Unbounded).unwrap();
    let worker = sim
        .spawn_with(
            "worker",
            &[Inherit::receive(jobs), Inherit::send(answers)],
            |p| loop {
                let job = p.receive_timeout(p.right(0), ms(5))?;
                p.work(Dist::uniform(ms(1), ms(3)));
                p.send(p.right(1), job)?;
            },
        )
        .unwrap();
    let client = sim
        .spawn_with(
            "client",
            &[Inherit::send(jobs), Inherit::receive(answers)],
            |p| {
                let child = p.spawn("helper", &[], |c| {
                    c.sleep(Dist::exponential(ms(1)));
                    Ok(())
                })?;
                for i in 0..3 {
                    p.send(p.right(0), Message::from_u64(1, i))?;
                    let _ = p.receive_timeout(p.right(1), ms(4));
                }
                p.join(child);
                Ok(())
            },
        )
        .unwrap();
    sim.expect_error(worker);
    sim.expect_error(client);
    sim.kill_randomly(worker, 0.05);
    sim.kill_at_time(client, ms(40));
    let a = sim.port("a", Capacity::Zero).unwrap();
    let b = sim.port("b", Capacity::Zero).unwrap();
    for (name, inherit) in [
        ("left", [Inherit::receive(a), Inherit::send(b)]),
        ("right", [Inherit::receive(b), Inherit::send(a)]),
    ] {
        sim.spawn_with(name, &inherit, |p| {
            if p.random_below(3) == 0 {
                // Both may send first: the classic rendezvous deadlock.
                p.send(p.right(1), Message::new(1, b"x"))?;
                p.receive(p.right(0))?;
            } else {
                // A port of its own, labelled on some seeds only: the
                // labels of one run must not show in the next.
                let own = p.port_allocate(Capacity::Bounded(1))?;
                if p.random_below(2) == 0 {
                    p.label(own, "extra");
                }
                p.send(own, Message::new(2, b"y"))?;
                p.receive(own)?;
                p.sleep(ms(1));
            }
            Ok(())
        })
        .unwrap();
    }
}

/// A panic on the seeds where the consumer runs first, beside stackless
/// machines and async processes (bodies the loop steps itself).
fn panics_machines_async(sim: &mut Sim) {
    workload::ping_pong_machines(sim, 3).unwrap();
    let port = sim.port("box", Capacity::Bounded(1)).unwrap();
    let first = Rc::new(Cell::new(None::<&'static str>));
    let (f1, f2) = (Rc::clone(&first), Rc::clone(&first));
    sim.spawn_async("sender", &[Inherit::send(port)], move |p| async move {
        f1.set(f1.get().or(Some("sender")));
        p.send(p.right(0), Message::from_u64(1, 1)).await?;
        p.sleep(Duration::from_micros(10)).await;
        Ok(())
    })
    .unwrap();
    sim.spawn_with("receiver", &[Inherit::receive(port)], move |p| {
        p.yield_now();
        if f2.get().is_none() {
            panic!("the receiver ran first");
        }
        p.receive(p.right(0))?;
        Ok(())
    })
    .unwrap();
}

/// A mailbox owned by the system (so it outlives its creator), made on some
/// seeds: those runs leave it in the kernel and fail the leak check.
fn leaks_on_some_seeds(sim: &mut Sim) {
    ten_messages(sim);
    sim.spawn("leaker", |p| {
        if p.random_below(2) == 0 {
            let config = MailboxConfig::new(Capacity::Bounded(1)).owner(Owner::System);
            p.mailbox_create("left-behind", config)?;
        }
        Ok(())
    });
}

const MODELS: [(&str, Model); 5] = [
    ("ten_messages", ten_messages),
    ("lost_update", lost_update),
    ("faults_and_timeouts", faults_and_timeouts),
    ("panics_machines_async", panics_machines_async),
    ("leaks_on_some_seeds", leaks_on_some_seeds),
];

fn schedulers() -> [SchedulerKind; 2] {
    [
        SchedulerKind::Random,
        SchedulerKind::Pct {
            depth: 2,
            max_steps: 40,
        },
    ]
}

/// The run of `seed` on a `Sim` of its own, with the explorer's leak check.
fn fresh(
    model: Model,
    seed: u64,
    scheduler: &SchedulerKind,
    trace: bool,
) -> Result<Report, Failure> {
    let mut sim = Sim::builder()
        .seed(seed)
        .scheduler(scheduler.clone())
        .trace(trace)
        .build();
    model(&mut sim);
    sim.check_at_end("no leaks", |r| {
        if r.kernel_is_clean() {
            Ok(())
        } else {
            Err(format!(
                "kernel not empty at the end: {:?}",
                r.kernel_at_end
            ))
        }
    });
    sim.run()
}

fn hash(r: &Result<Report, Failure>) -> u64 {
    match r {
        Ok(report) => report.trace.hash(),
        Err(f) => f.report.trace.hash(),
    }
}

const SEEDS: u64 = 60;

/// Every run `run_all` shows is the fresh run of its seed, whole: report,
/// trace (and its hash), schedule, failure — traced and not.
#[test]
fn each_seed_of_an_exploration_is_the_run_of_a_fresh_sim() {
    for (name, model) in MODELS {
        for scheduler in schedulers() {
            for trace in [true, false] {
                let mut seen = Vec::new();
                let outcome = Explorer::new()
                    .builder(Sim::builder().trace(trace))
                    .scheduler(scheduler.clone())
                    .seeds(0..SEEDS)
                    .run_all(model, |r| seen.push(r.clone()));
                assert_eq!(outcome.runs, SEEDS);
                assert_eq!(seen.len() as u64, SEEDS);
                let mut failures = 0;
                for (seed, got) in (0..SEEDS).zip(&seen) {
                    let want = fresh(model, seed, &scheduler, trace);
                    failures += u64::from(want.is_err());
                    assert_eq!(
                        hash(got),
                        hash(&want),
                        "{name}, {scheduler:?}, seed {seed}: trace hash"
                    );
                    assert!(
                        *got == want,
                        "{name}, {scheduler:?}, trace {trace}, seed {seed}: \
                         the explorer's run differs from a fresh Sim's\n\
                         explorer: {got:#?}\nfresh: {want:#?}"
                    );
                }
                // The failing models fail on some seeds and pass on others,
                // so resets after failures are exercised.
                if name != "ten_messages" {
                    assert!(
                        failures > 0 && failures < SEEDS,
                        "{name}, {scheduler:?}: {failures} of {SEEDS} seeds failed"
                    );
                }
            }
        }
    }
}

/// `run`, which runs untraced and runs a failing seed again traced, stops at
/// the first failing seed and reports exactly what a fresh traced run of
/// that seed reports; the steps it counts are the fresh runs' steps.
#[test]
fn the_first_failure_is_reported_as_a_fresh_traced_run_reports_it() {
    for (name, model) in MODELS {
        for scheduler in schedulers() {
            let outcome = Explorer::new()
                .scheduler(scheduler.clone())
                .seeds(0..SEEDS)
                .run(model);
            let mut steps = 0;
            let mut first = None;
            for seed in 0..SEEDS {
                let want = fresh(model, seed, &scheduler, true);
                steps += match &want {
                    Ok(r) => r.steps,
                    Err(f) => f.report.steps,
                };
                if let Err(f) = want {
                    first = Some((seed, f));
                    break;
                }
            }
            assert_eq!(outcome.steps, steps, "{name}, {scheduler:?}: steps");
            match (first, outcome.failure) {
                (None, None) => assert_eq!(outcome.runs, SEEDS),
                (Some((seed, want)), Some(got)) => {
                    assert_eq!(outcome.runs, seed + 1, "{name}: stopped at seed {seed}");
                    assert!(
                        got == want,
                        "{name}, {scheduler:?}, seed {seed}: reported\n{got:#?}\nfresh:\n{want:#?}"
                    );
                    // The report is the traced one.
                    assert!(!got.report.trace.events.is_empty());
                    if name == "leaks_on_some_seeds" {
                        assert!(
                            matches!(&got.reason, FailureReason::FinalCheck { name, .. } if name == "no leaks"),
                            "{got}"
                        );
                    }
                }
                (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

/// The exhaustive searches run on one reset `Sim` too: the plain DFS sees
/// each schedule as a fresh `Sim` replaying it does.
#[test]
fn exhaustive_runs_are_the_runs_of_fresh_sims() {
    for (name, model) in [
        ("ten_messages", ten_messages as Model),
        ("lost_update", lost_update),
    ] {
        let mut seen = Vec::new();
        let outcome = Explorer::new()
            .exhaustive(6, 200)
            .reduction(mkipc_sim::Reduction::None)
            .run_all(model, |r| seen.push(r.clone()));
        assert_eq!(outcome.runs, seen.len() as u64);
        assert!(seen.len() > 1, "{name}: more than one schedule");
        for got in &seen {
            let report = match got {
                Ok(r) => r,
                Err(f) => &f.report,
            };
            let mut sim = Sim::builder().replay(report.schedule.clone()).build();
            model(&mut sim);
            sim.check_at_end("no leaks", |r| {
                if r.kernel_is_clean() {
                    Ok(())
                } else {
                    Err(format!(
                        "kernel not empty at the end: {:?}",
                        r.kernel_at_end
                    ))
                }
            });
            let again = sim.run();
            let (a, b) = (hash(got), hash(&again));
            assert_eq!(a, b, "{name}: schedule {}", report.schedule);
            let reason = |r: &Result<Report, Failure>| r.as_ref().err().map(|f| f.reason.clone());
            assert_eq!(reason(got), reason(&again), "{name}");
        }
    }
}

/// A model that keeps a handle to its run (an async process's handle
/// stashed outside, which holds the run's core) cannot be reset: the
/// explorer builds a new `Sim` for the next run, with the same results.
#[test]
fn a_run_that_cannot_be_reset_is_built_anew() {
    let kept: Rc<Cell<Option<mkipc_sim::AsyncProc>>> = Rc::default();
    let k = Rc::clone(&kept);
    let model = move |sim: &mut Sim| {
        let k = Rc::clone(&k);
        ten_messages(sim);
        sim.spawn_async("keeper", &[], move |p| {
            // Replaces (and drops) the previous run's handle.
            k.set(Some(p));
            async { Ok(()) }
        })
        .unwrap();
    };
    let mut seen = Vec::new();
    let outcome = Explorer::new()
        .seeds(0..10)
        .run_all(&model, |r| seen.push(r.clone()));
    assert_eq!(outcome.runs, 10);
    for (seed, got) in (0..10).zip(&seen) {
        let mut sim = Sim::builder().seed(seed).build();
        model(&mut sim);
        let want = sim.run();
        assert!(got.is_ok() && want.is_ok(), "seed {seed}");
        assert_eq!(hash(got), hash(&want), "seed {seed}");
    }
    drop(kept);
}
