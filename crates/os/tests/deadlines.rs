//! Deadlines: every timed call of `OsProcess`, driven by one list
//! ([`TIMED`]), with the two extreme timeouts.
//!
//! * `Duration::MAX` is a wait too long to represent: it behaves as the
//!   blocking call (it completes when the peer acts), never an overflow panic
//!   (before the fix each of these panicked "overflow when adding duration to
//!   instant" in deliver.rs).
//! * `Duration::ZERO` behaves as the try call: it takes what is there, and
//!   fails at once when nothing is.

mod common;
role_entry!();

use std::time::{Duration, Instant};

use mkipc_kernel::{Capacity, Ipc, Message, Pid, PortName};
use mkipc_os::{LinkKind, OsProcess};

/// Every public timed call of `OsProcess` (the `Ipc` trait's `*_timeout`).
#[derive(Clone, Copy, Debug)]
enum Timed {
    Send,
    Receive,
    Call,
    Select,
    SendTo,
    ReceiveFrom,
    ReceiveFromAny,
}

const TIMED: [Timed; 7] = [
    Timed::Send,
    Timed::Receive,
    Timed::Call,
    Timed::Select,
    Timed::SendTo,
    Timed::ReceiveFrom,
    Timed::ReceiveFromAny,
];

/// Two `OsProcess`es of one run in this process, joined by a real link:
/// `a` knows `b` as pid 2, `b` knows `a` as pid 1 (both always alive, so a
/// shared-memory link's watcher never closes the link).
fn linked_pair(kind: LinkKind) -> (OsProcess, OsProcess) {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link_of(kind).unwrap();
    a.adopt_link(Pid(2), near).unwrap();
    b.adopt_link(Pid(1), far).unwrap();
    (a, b)
}

/// How long the peer waits before it acts: the call must still be waiting.
const PEER_DELAY: Duration = Duration::from_millis(100);

/// Runs `call` with `timeout` on `a` while `b` (and a thread of `a`) plays
/// the peer, which acts after [`PEER_DELAY`]. Returns whether the call
/// completed, and how long it took.
fn run(call: Timed, timeout: Duration, peer_acts: bool, kind: LinkKind) -> (bool, Duration) {
    let (a, b) = linked_pair(kind);
    // A port of `a` with room for one message; full for the send case.
    let port = a.port_allocate(Capacity::Bounded(1)).unwrap();
    let to_port = a.make_send(port).unwrap();
    if matches!(call, Timed::Send) {
        a.send(to_port, Message::from_u64(1, 0)).unwrap();
    }
    let started = Instant::now();
    let done = std::thread::scope(|s| {
        if peer_acts {
            s.spawn(|| {
                std::thread::sleep(PEER_DELAY);
                peer(call, &a, &b, port, to_port);
            });
        }
        let done = match call {
            Timed::Send => a
                .send_timeout(to_port, Message::from_u64(1, 1), timeout)
                .is_ok(),
            Timed::Receive => a.receive_timeout(port, timeout).is_ok(),
            Timed::Select => a.select_timeout(&[port], timeout).is_ok(),
            Timed::Call => a
                .call_timeout(to_port, Message::from_u64(1, 2), timeout)
                .is_ok_and(|r| r.as_u64() == Some(4)),
            Timed::SendTo => {
                // Fill the pipe (or ring) first, so the timed send has to wait for the peer.
                let big = vec![0u8; 4000];
                while a
                    .try_send_to(Pid(2), Message::new(9, big.as_slice()))
                    .is_ok()
                {}
                // A ring takes a small frame where a big one no longer fits
                // (a pipe wants a free page for either).
                while a.try_send_to(Pid(2), Message::from_u64(9, 0)).is_ok() {}
                a.send_to_timeout(Pid(2), Message::from_u64(1, 3), timeout)
                    .is_ok()
            }
            Timed::ReceiveFrom => a.receive_from_timeout(Pid(2), timeout).is_ok(),
            Timed::ReceiveFromAny => a.receive_from_any_timeout(timeout).is_ok(),
        };
        if !peer_acts && matches!(call, Timed::Call) {
            // Nobody served the request: take it out so the port drains.
            let _ = a.try_receive(port);
        }
        done
    });
    let took = started.elapsed();
    drop(b);
    common::finish(a);
    (done, took)
}

/// What the peer does so that `call` can complete.
fn peer(call: Timed, a: &OsProcess, b: &OsProcess, port: PortName, to_port: PortName) {
    match call {
        Timed::Send => {
            a.receive(port).unwrap();
        }
        Timed::Receive | Timed::Select => a.send(to_port, Message::from_u64(1, 5)).unwrap(),
        Timed::Call => {
            let req = a.receive(port).unwrap();
            let x = req.as_u64().unwrap();
            a.reply(&req, Message::from_u64(1, x * x)).unwrap();
        }
        Timed::SendTo => {
            // Drain everything `a` wrote, including the timed send's message.
            while let Ok(m) = b.receive_from_timeout(Pid(1), Duration::from_millis(500)) {
                if m.id == 1 {
                    break;
                }
            }
        }
        Timed::ReceiveFrom | Timed::ReceiveFromAny => {
            b.send_to(Pid(1), Message::from_u64(1, 6)).unwrap()
        }
    }
}

#[test]
fn duration_max_behaves_as_blocking() {
    for (call, kind) in calls() {
        let (done, took) = run(call, Duration::MAX, true, kind);
        assert!(
            done,
            "{call:?} on {kind:?} with Duration::MAX did not complete"
        );
        assert!(
            took >= PEER_DELAY,
            "{call:?} on {kind:?} with Duration::MAX returned before the peer acted ({took:?})"
        );
    }
}

#[test]
fn duration_zero_behaves_as_try() {
    for (call, kind) in calls() {
        // Nothing to take (or no room): fails at once.
        let (done, took) = run(call, Duration::ZERO, false, kind);
        assert!(
            !done,
            "{call:?} on {kind:?} with Duration::ZERO completed with no peer"
        );
        assert!(
            took < Duration::from_secs(1),
            "{call:?} on {kind:?} with Duration::ZERO waited {took:?}"
        );
    }
}

/// Every link kind the calls run over.
const KINDS: [LinkKind; 4] = [
    LinkKind::Pipe,
    LinkKind::SharedMemory,
    LinkKind::UnixSocket,
    LinkKind::Tcp,
];

/// Every timed call over a pipe link, then every one over a shared-memory
/// link, a Unix socket link and a TCP link (the calls that do not use the
/// link run the same either way).
fn calls() -> impl Iterator<Item = (Timed, LinkKind)> {
    KINDS
        .into_iter()
        .flat_map(|kind| TIMED.into_iter().map(move |call| (call, kind)))
}

#[test]
fn duration_zero_takes_what_is_there() {
    for kind in KINDS {
        zero_takes_what_is_there(kind);
    }
}

fn zero_takes_what_is_there(kind: LinkKind) {
    let (a, b) = linked_pair(kind);
    let port = a.port_allocate(Capacity::Bounded(2)).unwrap();
    let to_port = a.make_send(port).unwrap();
    a.send_timeout(to_port, Message::from_u64(1, 1), Duration::ZERO)
        .unwrap();
    assert!(a.receive_timeout(port, Duration::ZERO).is_ok());
    a.send(to_port, Message::from_u64(1, 1)).unwrap();
    assert!(a.select_timeout(&[port], Duration::ZERO).is_ok());
    b.send_to_timeout(Pid(1), Message::from_u64(1, 1), Duration::ZERO)
        .unwrap();
    assert!(a.receive_from_timeout(Pid(2), Duration::ZERO).is_ok());
    b.send_to(Pid(1), Message::from_u64(1, 1)).unwrap();
    assert!(a.receive_from_any_timeout(Duration::ZERO).is_ok());
    drop(b);
    common::finish(a);
}
