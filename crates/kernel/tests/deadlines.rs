//! Every timed call saturates its deadline: `Duration::MAX` behaves as a
//! blocking call (it returns when another thread supplies what it waits
//! for, and never panics computing its deadline) and `Duration::ZERO` as a
//! try (it returns at once, timed out).
//!
//! Driven by one list, `mkipc_kernel::conformance::deadlines::timed_calls`: a new timed call of the [`Ipc`]
//! trait gets one entry (how to call it, and how the peer unblocks it).

use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::conformance::deadlines::{timed_calls, Names, Outcome};
use mkipc_kernel::*;

/// Ports and rights for one case: `a` waits, `b` unblocks it.
fn setup<P: Ipc>(a: &P, b: &P, tag: usize) -> Names {
    let service = |s: &str| format!("{s}-{tag}");
    let a_port = a.port_allocate(Capacity::Unbounded).unwrap();
    let a_port2 = a.port_allocate(Capacity::Unbounded).unwrap();
    a.register(&service("a1"), a_port).unwrap();
    a.register(&service("a2"), a_port2).unwrap();
    let b_zero = b.port_allocate(Capacity::Zero).unwrap();
    let b_server = b.port_allocate(Capacity::Unbounded).unwrap();
    b.register(&service("bz"), b_zero).unwrap();
    b.register(&service("bs"), b_server).unwrap();
    // The link a -> b is a rendezvous, so a timed send_to waits.
    b.set_link_capacity(a.pid(), Capacity::Zero).unwrap();
    Names {
        a_pid: a.pid(),
        b_pid: b.pid(),
        a_port,
        a_port2,
        to_a_port: b.look_up(&service("a1")).unwrap(),
        to_a_port2: b.look_up(&service("a2")).unwrap(),
        b_zero,
        to_b_zero: a.look_up(&service("bz")).unwrap(),
        b_server,
        to_b_server: a.look_up(&service("bs")).unwrap(),
    }
}

/// Whether some task waits (a blocked sender or receiver anywhere).
fn blocked(k: &Kernel) -> bool {
    let s = k.stats();
    s.blocked_senders + s.blocked_receivers > 0
}

/// The longest timeouts there are: each must wait like a blocking call.
const HUGE: [Duration; 2] = [Duration::MAX, Duration::from_secs(u64::MAX)];

#[test]
fn a_huge_timeout_waits_like_a_blocking_call() {
    for (i, (name, call, unblock)) in timed_calls::<Task>().into_iter().enumerate() {
        for (j, timeout) in HUGE.into_iter().enumerate() {
            let k = Kernel::new();
            let a = k.spawn_task();
            let b = k.spawn_task();
            let names = setup(&a, &b, i * 10 + j);
            let outcome = thread::scope(|s| {
                s.spawn(|| {
                    // Unblock once `a` waits (or after 5 s all the same, so a
                    // failure fails the assertion below instead of hanging).
                    let give_up = Instant::now() + Duration::from_secs(5);
                    while !blocked(&k) && Instant::now() < give_up {
                        thread::sleep(Duration::from_millis(1));
                    }
                    unblock(&b, &names);
                });
                call(&a, &names, timeout)
            });
            assert_eq!(outcome, Outcome::Done, "{name} with {timeout:?}");
        }
    }
}

#[test]
fn a_zero_timeout_behaves_like_a_try() {
    for (i, (name, call, _)) in timed_calls::<Task>().into_iter().enumerate() {
        let k = Kernel::new();
        let a = k.spawn_task();
        let b = k.spawn_task();
        let names = setup(&a, &b, i);
        let t0 = Instant::now();
        let outcome = call(&a, &names, Duration::ZERO);
        assert_eq!(outcome, Outcome::TimedOut, "{name} with a zero timeout");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{name}: a zero timeout waited"
        );
        assert!(!blocked(&k), "{name} left a wait behind");
    }
}
