//! Virtual time against numbers worked out by hand.

use std::time::Duration;

use mkipc_kernel::{Capacity, Ipc, Message, ReceiveError};
use mkipc_sim::{ms, Dist, Inherit, SchedulerKind, Sim};

#[test]
fn smoke() {
    let mut sim = Sim::builder().build();
    sim.spawn("p", |p| {
        p.work(ms(3));
        p.sleep(ms(2));
        assert_eq!(p.now(), ms(5));
        Ok(())
    });
    let r = sim.run().unwrap();
    assert_eq!(r.end_time, ms(5));
    let s = r.proc("p").unwrap().stats;
    assert_eq!(
        (s.working, s.sleeping, s.blocked),
        (ms(3), ms(2), Duration::ZERO)
    );
}

#[test]
fn receive_timeout_fires_at_exactly_the_deadline() {
    let mut sim = Sim::builder().build();
    sim.spawn("p", |p| {
        let port = p.port_allocate(Capacity::Bounded(1))?;
        p.sleep(ms(1));
        assert_eq!(p.receive_timeout(port, ms(7)), Err(ReceiveError::TimedOut));
        assert_eq!(p.now(), ms(8));
        Ok(())
    });
    let r = sim.run().unwrap();
    assert_eq!(r.end_time, ms(8));
    assert_eq!(r.proc("p").unwrap().stats.blocked, ms(7));
    assert!(r
        .trace
        .events
        .iter()
        .any(|e| e.kind == mkipc_sim::EventKind::TimedOut && e.time == ms(8)));
}

#[test]
fn rpc_latency_is_the_service_time() {
    // The server takes 2 ms per request; the client calls 5 times, sleeping
    // 1 ms after each reply. Each iteration lasts 2 + 1 = 3 ms: 15 ms in all.
    // The client is blocked 5 x 2 = 10 ms; the server waits 1 ms between
    // requests 4 times (its first receive finds or meets the request at t=0).
    for seed in 0..5 {
        let mut sim = Sim::builder().seed(seed).build();
        let svc = sim.port("svc", Capacity::Zero).unwrap();
        sim.spawn_with("server", &[Inherit::receive(svc)], |p| {
            for _ in 0..5 {
                let req = p.receive(p.right(0))?;
                p.work(ms(2));
                p.reply(&req, Message::new(2, b"done"))?;
            }
            Ok(())
        })
        .unwrap();
        sim.spawn_with("client", &[Inherit::send(svc)], |p| {
            for _ in 0..5 {
                p.call(p.right(0), Message::new(1, b"job"))?;
                p.sleep(ms(1));
            }
            Ok(())
        })
        .unwrap();
        let r = sim.run().unwrap();
        assert_eq!(r.end_time, ms(15), "seed {seed}");
        assert_eq!(
            r.proc("client").unwrap().stats.blocked,
            ms(10),
            "seed {seed}"
        );
        assert_eq!(
            r.proc("server").unwrap().stats.blocked,
            ms(4),
            "seed {seed}"
        );
        assert!(r.kernel_is_clean());
    }
}

#[test]
fn bounded_pipeline_is_paced_by_the_slow_consumer() {
    // Producer: send, then 1 ms of work, 10 times. Consumer: receive, then
    // 3 ms of work. The consumer takes item k at 3k ms and ends at 30 ms.
    // With capacity 2, item k + 2 enters when item k leaves, so the producer's
    // last send (item 9) completes at 3 x 7 = 21 ms and it ends at 22 ms.
    for kind in [
        SchedulerKind::Random,
        SchedulerKind::RoundRobin,
        SchedulerKind::pct(),
    ] {
        let mut sim = Sim::builder().seed(11).scheduler(kind.clone()).build();
        let jobs = sim.port("jobs", Capacity::Bounded(2)).unwrap();
        sim.spawn_with("producer", &[Inherit::send(jobs)], |p| {
            for i in 0..10 {
                p.send(p.right(0), Message::from_u64(1, i))?;
                p.work(ms(1));
            }
            assert_eq!(p.now(), ms(22));
            Ok(())
        })
        .unwrap();
        sim.spawn_with("consumer", &[Inherit::receive(jobs)], |p| {
            for i in 0..10 {
                assert_eq!(p.receive(p.right(0))?.as_u64(), Some(i));
                assert_eq!(p.now(), ms(3 * i));
                p.work(ms(3));
            }
            Ok(())
        })
        .unwrap();
        let r = sim.run().unwrap();
        assert_eq!(r.end_time, ms(30), "{kind:?}");
        let q = r.port("jobs").unwrap();
        assert_eq!(
            (q.messages, q.drops, q.max_occupancy),
            (10, 0, 2),
            "{kind:?}"
        );
        // Producer work 10 ms; the rest of its 22 ms it was blocked.
        assert_eq!(
            r.proc("producer").unwrap().stats.blocked,
            ms(12),
            "{kind:?}"
        );
        assert_eq!(
            r.proc("consumer").unwrap().stats.blocked,
            Duration::ZERO,
            "{kind:?}"
        );
    }
}

#[test]
fn mean_occupancy_is_weighted_by_time() {
    // Two messages queued for 10 ms, then one for 10 ms: mean 1.5, max 2.
    let mut sim = Sim::builder().build();
    let q = sim.port("q", Capacity::Unbounded).unwrap();
    sim.spawn_with("p", &[Inherit::receive(q)], |p| {
        let send = p.make_send(p.right(0))?;
        p.send(send, Message::new(1, b"a"))?;
        p.send(send, Message::new(2, b"b"))?;
        p.sleep(ms(10));
        p.receive(p.right(0))?;
        p.sleep(ms(10));
        p.receive(p.right(0))?;
        Ok(())
    })
    .unwrap();
    let r = sim.run().unwrap();
    let q = r.port("q").unwrap();
    assert_eq!(r.end_time, ms(20));
    assert_eq!((q.messages, q.max_occupancy), (2, 2));
    assert!(
        (q.mean_occupancy.unwrap() - 1.5).abs() < 1e-9,
        "{:?}",
        q.mean_occupancy
    );
}

#[test]
fn drop_policies_are_counted() {
    let mut sim = Sim::builder().build();
    let q = sim.port("lossy", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("p", &[Inherit::send(q)], |p| {
        for i in 0..5 {
            p.send_with(
                p.right(0),
                Message::from_u64(1, i),
                mkipc_kernel::OnFull::DropNewest,
            )?;
        }
        Ok(())
    })
    .unwrap();
    sim.spawn_with("sink", &[Inherit::receive(q)], |p| {
        p.sleep(ms(1));
        assert_eq!(p.receive(p.right(0))?.as_u64(), Some(0));
        Ok(())
    })
    .unwrap();
    let r = sim.run().unwrap();
    let q = r.port("lossy").unwrap();
    assert_eq!((q.messages, q.drops), (1, 4), "{q:?}");
    assert_eq!(r.proc("p").unwrap().stats.drops, 4);
}

#[test]
fn drawn_durations_are_reproducible() {
    let run = |seed| {
        let mut sim = Sim::builder().seed(seed).build();
        sim.spawn("p", |p| {
            for _ in 0..100 {
                p.work(Dist::exponential(ms(2)));
            }
            Ok(())
        });
        sim.run().unwrap().end_time
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    let t = run(3);
    assert!(
        t > ms(120) && t < ms(300),
        "100 draws of mean 2 ms took {t:?}"
    );
}

#[test]
fn queues_created_inside_processes_are_reported_when_labelled() {
    let mut sim = Sim::builder().build();
    sim.spawn("p", |p| {
        let q = p.port_allocate(Capacity::Bounded(4))?;
        p.label(q, "private");
        let send = p.make_send(q)?;
        for i in 0..3 {
            p.send(send, Message::from_u64(1, i))?;
        }
        p.sleep(ms(4));
        for _ in 0..3 {
            p.receive(q)?;
        }
        let mb = p.mailbox_create(
            "scratch",
            mkipc_kernel::MailboxConfig::new(Capacity::Unbounded),
        )?;
        p.send(mb, Message::new(2, b"x"))?;
        p.receive(mb)?;
        Ok(())
    });
    let r = sim.run().unwrap();
    let private = r.port("private").unwrap();
    assert_eq!((private.messages, private.max_occupancy), (3, 3));
    assert!(
        (private.mean_occupancy.unwrap() - 3.0).abs() < 1e-9,
        "3 queued for the whole 4 ms"
    );
    let scratch = r.port("scratch").unwrap();
    assert!(scratch.mailbox);
    assert_eq!(scratch.messages, 1);
}

mod planned_kills_and_drawn_durations {
    use std::time::Duration;

    use mkipc_kernel::{Capacity, Ipc, Message};
    use mkipc_sim::{ms, Dist, ExitStatus, Inherit, ProcId, Sim, SimRng};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Processes work for drawn times; one of them is killed at a planned
        /// time, which may come after it (or everyone) has ended. A kill that
        /// strikes nobody must not move the clock: the run ends when its
        /// last process does.
        #[test]
        fn a_planned_kill_moves_the_clock_only_if_it_strikes(
            works in prop::collection::vec(1u64..50, 1..5),
            victim in 0usize..5,
            kill_at in 0u64..120,
            seed in 0u64..100,
        ) {
            let victim = victim % works.len();
            let mut sim = Sim::builder().seed(seed).build();
            for (k, &w) in works.iter().enumerate() {
                sim.spawn(&format!("worker{k}"), move |p| {
                    p.work(ms(w));
                    Ok(())
                });
            }
            sim.kill_at_time(ProcId(victim as u32), ms(kill_at));
            let r = sim.run().unwrap();
            // A kill at the very instant the work ends strikes first (faults
            // apply before the woken process runs).
            let strikes = kill_at <= works[victim];
            let ends = works.iter().enumerate().map(|(k, &w)| {
                if k == victim && strikes { kill_at } else { w }
            });
            prop_assert_eq!(r.end_time, ms(ends.max().unwrap()));
            let status = &r.procs[victim].status;
            prop_assert_eq!(strikes, *status == ExitStatus::Killed, "{}", status);
        }

        /// Any uniform range, up to the whole of virtual time, draws inside
        /// its bounds (and never panics).
        #[test]
        fn uniform_draws_stay_within_any_bounds(
            lo in any::<u64>(),
            hi in prop_oneof![any::<u64>(), Just(u64::MAX)],
            seed in any::<u64>(),
        ) {
            let (lo, hi) = (Duration::from_nanos(lo), Duration::from_nanos(hi));
            let mut rng = SimRng::new(seed);
            for _ in 0..8 {
                let d = Dist::uniform(lo, hi).sample(&mut rng);
                prop_assert!(d >= lo && (d <= hi || hi < lo), "{:?} not in [{:?}, {:?}]", d, lo, hi);
            }
            let whole = Dist::uniform(Duration::ZERO, Duration::MAX).sample(&mut rng);
            prop_assert!(whole <= Duration::from_nanos(u64::MAX));
        }
    }

    /// A deadlock is reported at the time it happened, not at the time of a
    /// planned kill of a process that had already ended.
    #[test]
    fn a_kill_of_an_ended_process_does_not_delay_a_deadlock() {
        let mut sim = Sim::builder().build();
        let port = sim.port("p", Capacity::Zero).unwrap();
        let early = sim.spawn("early", |p| {
            p.work(ms(1));
            Ok(())
        });
        sim.spawn_with(
            "stuck",
            &[Inherit::receive(port), Inherit::send(port)],
            |p| {
                p.work(ms(2));
                p.send(p.right(1), Message::new(1, b"to myself"))?;
                Ok(())
            },
        )
        .unwrap();
        sim.kill_at_time(early, Duration::from_secs(3600));
        let f = sim.run().unwrap_err();
        assert!(f.reason.is_deadlock(), "{f}");
        assert_eq!(f.report.end_time, ms(2));
    }
}
