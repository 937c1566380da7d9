//! Model checks of the blocking layer with loom: every interleaving (up to
//! a bounded number of preemptions) of a few threads using `Task`s, with the
//! kernel lock, the wakers' flags and park/unpark all modelled.
//!
//! Compiled only under `--cfg loom`, where `crate::sync` switches to loom's
//! primitives; run with `.ci/loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p mkipc-kernel --test loom --release
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` overrides the bound (2 by default here).
#![cfg(loom)]

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use mkipc_kernel::{Capacity, Ipc, IpcError, Kernel, Message, ReceiveError};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// A blocking send meets a blocking receive on a zero-capacity port,
/// whichever arrives first.
#[test]
fn zero_port_rendezvous() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Zero).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        let sender = thread::spawn(move || {
            tx.send(to_rx, Message::from_u64(1, 7)).unwrap();
        });
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(7));
        sender.join().unwrap();
    });
}

/// Two senders on a bounded(1) port: one waits while the other's message
/// is queued; both messages arrive, each once.
#[test]
fn bounded_one_with_two_senders() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Bounded(1)).unwrap();
        rx.register("rx", port).unwrap();
        let senders: Vec<_> = (0..2u64)
            .map(|i| {
                let tx = kernel.spawn_task();
                let to_rx = tx.look_up("rx").unwrap();
                thread::spawn(move || tx.send(to_rx, Message::from_u64(1, i)).unwrap())
            })
            .collect();
        let mut got: Vec<u64> = (0..2)
            .map(|_| rx.receive(port).unwrap().as_u64().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(rx.try_receive(port), Err(ReceiveError::Empty));
    });
}

/// A try receive and a zero-timeout receive race a send: each either gets
/// the message or reports that none is there (never both, never lost).
#[test]
fn try_and_timed_receive_race_a_send() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Bounded(1)).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        let sender = thread::spawn(move || {
            tx.send(to_rx, Message::from_u64(1, 9)).unwrap();
        });
        let mut got = 0;
        match rx.try_receive(port) {
            Ok(m) => {
                assert_eq!(m.as_u64(), Some(9));
                got += 1;
            }
            Err(e) => assert_eq!(e, ReceiveError::Empty),
        }
        match rx.receive_timeout(port, Duration::ZERO) {
            Ok(m) => {
                assert_eq!(m.as_u64(), Some(9));
                got += 1;
            }
            Err(e) => assert_eq!(e, ReceiveError::TimedOut),
        }
        sender.join().unwrap();
        if got == 0 {
            assert_eq!(rx.receive(port).unwrap().as_u64(), Some(9));
            got = 1;
        }
        assert_eq!(got, 1);
        assert_eq!(rx.try_receive(port), Err(ReceiveError::Empty));
    });
}

/// Destroying a port wakes a receiver blocked on it (another thread of the
/// same task): it gets an error, never sleeps on.
#[test]
fn port_destruction_wakes_a_blocked_receiver() {
    model(|| {
        let kernel = Kernel::new();
        let task = Arc::new(kernel.spawn_task());
        let port = task.port_allocate(Capacity::Unbounded).unwrap();
        let receiver = {
            let task = Arc::clone(&task);
            thread::spawn(move || task.receive(port))
        };
        task.destroy(port).unwrap();
        let r = receiver.join().unwrap();
        // Blocked first: the port died under it. Arrived after: the name is gone.
        assert!(
            matches!(r, Err(ReceiveError::SourceDead | ReceiveError::InvalidName)),
            "{r:?}"
        );
    });
}

/// `deallocate` racing the death of the port: the last reference is always
/// released and its name freed (it once looked up and released under two
/// lock acquisitions, failing with `DeadName` in between).
#[test]
fn deallocate_racing_port_death() {
    model(|| {
        let kernel = Kernel::new();
        let owner = Arc::new(kernel.spawn_task());
        let holder = kernel.spawn_task();
        let port = owner.port_allocate(Capacity::Unbounded).unwrap();
        owner.register("p", port).unwrap();
        let send = holder.look_up("p").unwrap();
        owner.unregister("p").unwrap();
        let killer = {
            let owner = Arc::clone(&owner);
            thread::spawn(move || owner.destroy(port).unwrap())
        };
        assert_eq!(holder.deallocate(send), Ok(()));
        assert_eq!(holder.rights(send), Err(IpcError::InvalidName));
        killer.join().unwrap();
    });
}
