//! Every timed call saturates its deadline: `Duration::MAX` behaves as a
//! blocking call (it returns when another thread supplies what it waits
//! for, and never panics computing its deadline) and `Duration::ZERO` as a
//! try (it returns at once, timed out).
//!
//! Driven by one list, [`timed_calls`]: a new timed call of the [`Ipc`]
//! trait gets one entry (how to call it, and how the peer unblocks it).

use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::*;

/// The names both sides use (set up by [`setup`]).
#[derive(Clone, Copy)]
pub struct Names {
    a_pid: Pid,
    b_pid: Pid,
    /// `a`'s receive rights, and `b`'s send rights to them.
    a_port: PortName,
    a_port2: PortName,
    to_a_port: PortName,
    to_a_port2: PortName,
    /// `b`'s zero-capacity port, and `a`'s send right to it.
    b_zero: PortName,
    to_b_zero: PortName,
    /// `b`'s server port (unbounded), and `a`'s send right to it.
    b_server: PortName,
    to_b_server: PortName,
}

/// How a timed call ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    Done,
    TimedOut,
    Other(String),
}

fn send_outcome<T>(r: Result<T, SendError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Done,
        Err(e) if e.kind() == SendErrorKind::TimedOut => Outcome::TimedOut,
        Err(e) => Outcome::Other(format!("{:?}", e.kind())),
    }
}

fn receive_outcome(r: Result<Message, ReceiveError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Done,
        Err(ReceiveError::TimedOut) => Outcome::TimedOut,
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

fn call_outcome(r: Result<Message, CallError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Done,
        Err(CallError::Receive(e)) => receive_outcome(Err(e)),
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

type Call<P> = fn(&P, &Names, Duration) -> Outcome;
type Unblock<P> = fn(&P, &Names);

/// Every timed call of the `Ipc` trait: its name, how `a` makes it, and
/// how `b` lets it complete once it waits.
fn timed_calls<P: Ipc>() -> Vec<(&'static str, Call<P>, Unblock<P>)> {
    vec![
        entry(
            "send_timeout",
            |a, n, d| send_outcome(a.send_timeout(n.to_b_zero, Message::from_u64(1, 42), d)),
            |b, n| drop(b.receive(n.b_zero).unwrap()),
        ),
        entry(
            "send_with(OnFull::Timeout)",
            |a, n, d| {
                send_outcome(a.send_with(n.to_b_zero, Message::from_u64(1, 42), OnFull::Timeout(d)))
            },
            |b, n| drop(b.receive(n.b_zero).unwrap()),
        ),
        entry(
            "send_to_timeout",
            |a, n, d| send_outcome(a.send_to_timeout(n.b_pid, Message::from_u64(1, 42), d)),
            |b, n| drop(b.receive_from(n.a_pid).unwrap()),
        ),
        entry(
            "send_to_with(OnFull::Timeout)",
            |a, n, d| {
                send_outcome(a.send_to_with(n.b_pid, Message::from_u64(1, 42), OnFull::Timeout(d)))
            },
            |b, n| drop(b.receive_from(n.a_pid).unwrap()),
        ),
        entry(
            "receive_timeout",
            |a, n, d| receive_outcome(a.receive_timeout(n.a_port, d)),
            |b, n| b.send(n.to_a_port, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_with(Wait::For)",
            |a, n, d| receive_outcome(a.receive_with(n.a_port, Wait::For(d))),
            |b, n| b.send(n.to_a_port, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "select_timeout",
            |a, n, d| receive_outcome(a.select_timeout(&[n.a_port, n.a_port2], d)),
            |b, n| b.send(n.to_a_port2, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "select_with(Wait::For)",
            |a, n, d| receive_outcome(a.select_with(&[n.a_port, n.a_port2], Wait::For(d))),
            |b, n| b.send(n.to_a_port2, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "call_timeout",
            |a, n, d| call_outcome(a.call_timeout(n.to_b_server, Message::from_u64(1, 42), d)),
            |b, n| {
                let request = b.receive(n.b_server).unwrap();
                b.reply(&request, Message::from_u64(2, 43)).unwrap();
            },
        ),
        entry(
            "call_with(Wait::For)",
            |a, n, d| {
                call_outcome(a.call_with(n.to_b_server, Message::from_u64(1, 42), Wait::For(d)))
            },
            |b, n| {
                let request = b.receive(n.b_server).unwrap();
                b.reply(&request, Message::from_u64(2, 43)).unwrap();
            },
        ),
        entry(
            "receive_from_timeout",
            |a, n, d| receive_outcome(a.receive_from_timeout(n.b_pid, d)),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_from_with(Wait::For)",
            |a, n, d| receive_outcome(a.receive_from_with(n.b_pid, Wait::For(d))),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_from_any_timeout",
            |a, _, d| receive_outcome(a.receive_from_any_timeout(d)),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_from_any_with(Wait::For)",
            |a, _, d| receive_outcome(a.receive_from_any_with(Wait::For(d))),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
    ]
}

fn entry<P: Ipc>(
    name: &'static str,
    call: Call<P>,
    unblock: Unblock<P>,
) -> (&'static str, Call<P>, Unblock<P>) {
    (name, call, unblock)
}

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
