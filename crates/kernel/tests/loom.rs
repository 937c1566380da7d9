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
    model_bounded(2, f);
}

/// As [`model`], with at most `bound` preemptions unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise (for models of three threads
/// that do not finish in minutes at 2).
fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
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

// ---------------------------------------------------------------------------
// The lane (`mkipc_kernel::lane`, the lock-free ring a port's rights-free
// messages take outside the kernel lock), first alone, then through `Task`s.
// ---------------------------------------------------------------------------

use loom::sync::Mutex;
use mkipc_kernel::lane::{Lane, PopError, PushError};
use mkipc_kernel::{Disposition, SendErrorKind};

/// Pops one value, yielding while the lane is empty.
fn pop_spin<T>(lane: &Lane<T>, gen: u32) -> T {
    loop {
        match lane.pop(gen) {
            Ok((v, _)) => return v,
            Err(PopError::Empty) => thread::yield_now(),
            Err(PopError::Fenced) => panic!("fenced"),
        }
    }
}

/// One producer, one consumer: values arrive once each, in order, with
/// their positions; a full lane says so and hands the value back.
#[test]
fn lane_spsc_order_and_full() {
    model(|| {
        let lane = Arc::new(Lane::<u32>::new(2));
        lane.enable(0, 0);
        let producer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || {
                for v in 1..=3 {
                    let mut v = v;
                    loop {
                        match lane.push(0, v) {
                            Ok(()) => break,
                            Err(PushError::Full(back)) => {
                                v = back;
                                thread::yield_now();
                            }
                            Err(PushError::Fenced(_)) => panic!("fenced"),
                        }
                    }
                }
            })
        };
        let got: Vec<u32> = (0..3).map(|_| pop_spin(&lane, 0)).collect();
        assert_eq!(got, [1, 2, 3]);
        producer.join().unwrap();
        assert_eq!(lane.pop(0).unwrap_err(), PopError::Empty);
    });
}

/// Two producers and two consumers at once, each consumer trying one pop
/// (no spinning: loom explores every interleaving of the reservations):
/// every value is taken exactly once, by a consumer or by the drain after.
#[test]
fn lane_mpmc_each_value_once() {
    model(|| {
        let lane = Arc::new(Lane::<u32>::new(2));
        lane.enable(0, 0);
        let producers: Vec<_> = [10, 20]
            .into_iter()
            .map(|v| {
                let lane = Arc::clone(&lane);
                thread::spawn(move || lane.push(0, v).unwrap())
            })
            .collect();
        let other = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.pop(0).ok().map(|(v, _)| v))
        };
        let mine = lane.pop(0).ok().map(|(v, _)| v);
        let theirs = other.join().unwrap();
        for p in producers {
            p.join().unwrap();
        }
        lane.fence();
        let mut all: Vec<u32> = mine.into_iter().chain(theirs).collect();
        lane.drain(|v, _| all.push(v));
        all.sort_unstable();
        assert_eq!(all, [10, 20]);
    });
}

/// A switch to the locked path while a push is in flight: the kernel (a
/// mutex here) fences the lane and drains it; a push that lost the race
/// fails and appends under the lock. Either way the locked queue ends in
/// push order, with nothing lost and nothing twice.
#[test]
fn lane_fence_keeps_fifo_across_the_switch() {
    model(|| {
        let lane = Arc::new(Lane::<u32>::new(4));
        lane.enable(0, 0);
        let locked = Arc::new(Mutex::new(Vec::new()));
        let producer = {
            let (lane, locked) = (Arc::clone(&lane), Arc::clone(&locked));
            thread::spawn(move || {
                for v in [1, 2] {
                    if let Err(e) = lane.push(0, v) {
                        assert!(matches!(e, PushError::Fenced(_)));
                        locked.lock().unwrap().push(e.into_inner());
                    }
                }
            })
        };
        {
            let mut q = locked.lock().unwrap();
            lane.fence();
            lane.drain(|v, _| q.push(v));
        }
        producer.join().unwrap();
        assert_eq!(*locked.lock().unwrap(), [1, 2]);
        assert_eq!(lane.pop(0).unwrap_err(), PopError::Fenced);
    });
}

/// A grant of an older generation can never complete once the lane is
/// enabled again under a new one: its push landed before the fence (and
/// was drained) or fails.
#[test]
fn lane_stale_generation_never_lands() {
    model(|| {
        let lane = Arc::new(Lane::<u32>::new(2));
        lane.enable(0, 0);
        let stale = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.push(0, 7).is_ok())
        };
        lane.fence();
        let mut drained = Vec::new();
        lane.drain(|v, _| drained.push(v));
        lane.enable(1, 0);
        let pushed = stale.join().unwrap();
        let mut rest = Vec::new();
        while let Ok((v, _)) = lane.pop(1) {
            rest.push(v);
        }
        assert!(rest.is_empty(), "a stale push landed: {rest:?}");
        assert_eq!(drained == [7], pushed);
    });
}

/// Pops racing the kernel's fence, drain and re-open with a new numbering
/// (what a locked operation and a grant do): each pop's number is the one
/// its value had when it was taken, whichever period the pop fell in. Value
/// `v` is numbered `99 + v` throughout: the kernel renumbers from what the
/// consumer took and moves the drained values back in, with a new one.
#[test]
fn lane_pop_numbers_survive_a_reopen() {
    model(|| {
        let lane = Arc::new(Lane::<u64>::new(4));
        lane.reopen(0, 0, 100, [1, 2]).unwrap();
        let consumer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || [lane.pop(0).ok(), lane.pop(0).ok()])
        };
        lane.fence();
        let taken = lane.positions().0;
        let mut drained = Vec::new();
        lane.drain(|v, _| drained.push(v));
        let next = drained.last().map_or(3, |v| v + 1);
        drained.push(next);
        lane.reopen(0, 0, 100 + taken, drained).unwrap();
        let mut got: Vec<(u64, u64)> = consumer.join().unwrap().into_iter().flatten().collect();
        while let Ok(p) = lane.pop(0) {
            got.push(p);
        }
        for &(v, n) in &got {
            assert_eq!(n, 99 + v, "{got:?}");
        }
        // Each value once, in order (the consumer's first, then the rest).
        let values: Vec<u64> = got.iter().map(|p| p.0).collect();
        assert_eq!(values, (1..=next).collect::<Vec<_>>());
    });
}

/// An empty lane re-opened with a refilled value and a new numbering: a
/// pop that read the head before the fence and the slot after the refill
/// (the same head word, so its reservation succeeds) gets the new number.
#[test]
fn lane_pop_of_a_refill_gets_the_new_number() {
    model(|| {
        let lane = Arc::new(Lane::<u64>::new(2));
        lane.reopen(0, 0, 0, []).unwrap();
        let consumer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.pop(0).ok())
        };
        lane.fence();
        lane.drain(|_, _| unreachable!("empty"));
        lane.reopen(0, 0, 50, [7]).unwrap();
        let got = consumer.join().unwrap().or_else(|| lane.pop(0).ok());
        assert_eq!(got, Some((7, 50)));
    });
}

/// Through `Task`s: a bounded(2) port streams three messages; the
/// sender finds the lane full and blocks on the locked path, the receiver
/// finds it empty and blocks there: no wake-up is lost, order is kept.
#[test]
fn lane_port_full_and_empty_wake_ups() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Bounded(2)).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        let sender = thread::spawn(move || {
            for i in 0..3 {
                tx.send(to_rx, Message::from_u64(1, i)).unwrap();
            }
        });
        let got: Vec<_> = (0..3)
            .map(|_| rx.receive(port).unwrap().as_u64().unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2]);
        sender.join().unwrap();
        let status = rx.port_status(port).unwrap();
        assert_eq!(
            (status.queue_len, status.seqno, status.messages_sent),
            (0, 3, 3)
        );
    });
}

/// A message carrying a right takes the locked path; sent after a lane
/// message, it is received after it.
#[test]
fn lane_then_locked_path_keeps_order() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Unbounded).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        let extra = tx.port_allocate(Capacity::Unbounded).unwrap();
        // Warm the sender's grant so the first send takes the lane.
        tx.send(to_rx, Message::from_u64(1, 0)).unwrap();
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(0));
        let sender = thread::spawn(move || {
            tx.send(to_rx, Message::from_u64(1, 1)).unwrap();
            tx.send(
                to_rx,
                Message::from_u64(2, 2).with_right(extra, Disposition::MakeSend),
            )
            .unwrap();
            tx
        });
        let first = rx.receive(port).unwrap();
        let second = rx.receive(port).unwrap();
        assert_eq!((first.id, second.id), (1, 2));
        assert_eq!(second.rights().len(), 1);
        drop(sender.join().unwrap());
    });
}

/// The port dies (its receive right destroyed) while a sender streams
/// through its lane: each send either was delivered before (and the
/// message is destroyed with the port) or fails; nothing is left behind.
#[test]
fn lane_port_death_with_messages_in_flight() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Unbounded).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        tx.send(to_rx, Message::from_u64(1, 0)).unwrap();
        let sender = thread::spawn(move || {
            let r = tx.send(to_rx, Message::from_u64(1, 1));
            (tx, r)
        });
        rx.destroy(port).unwrap();
        let (tx, r) = sender.join().unwrap();
        if let Err(e) = r {
            assert!(
                matches!(
                    e.kind(),
                    SendErrorKind::DestinationDead | SendErrorKind::InvalidDestination
                ),
                "{e:?}"
            );
        }
        assert_eq!(kernel.stats().messages, 0);
        drop(tx);
    });
}

/// The receiver closes the port while a sender streams through its lane:
/// what was sent before the close is still received, then `Closed`.
#[test]
fn lane_close_drains_then_says_closed() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Bounded(4)).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        tx.send(to_rx, Message::from_u64(1, 0)).unwrap();
        let sender = thread::spawn(move || {
            let r = tx.send(to_rx, Message::from_u64(1, 1)).is_ok();
            (tx, r)
        });
        rx.close(port).unwrap();
        let (tx, delivered) = sender.join().unwrap();
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(0));
        if delivered {
            assert_eq!(rx.receive(port).unwrap().as_u64(), Some(1));
        }
        assert_eq!(rx.try_receive(port), Err(ReceiveError::Closed));
        drop(tx);
    });
}

/// A receiver's lane pop races a fence, a drain and a re-open: its
/// sequence number is the one its ring position had when it took it. (The
/// number was once read after the reserving compare-and-swap, from a base
/// the kernel rewrites while the lane is fenced: a pop preempted between
/// the two, while a locked operation drained a message and a send's grant
/// moved it back into the ring, got the new base, one too small, and the
/// receiver saw 0 then 0.)
#[test]
fn lane_pop_racing_a_reopen_keeps_its_seqno() {
    model(|| {
        let kernel = Kernel::new();
        let rx = Arc::new(kernel.spawn_task());
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Unbounded).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        // The first send is granted (the lane opens), the second takes it.
        for i in 0..2 {
            tx.send(to_rx, Message::from_u64(1, i)).unwrap();
        }
        let receiver = {
            let rx = Arc::clone(&rx);
            // The first receive is locked and granted, the second pops.
            thread::spawn(move || {
                (0..2)
                    .map(|_| {
                        let m = rx.receive(port).unwrap();
                        (m.as_u64().unwrap(), m.trailer().unwrap().seqno)
                    })
                    .collect::<Vec<_>>()
            })
        };
        // A push, a locked operation (it fences and drains the lane), and a
        // send whose grant moves the drained message back into the ring.
        tx.send(to_rx, Message::from_u64(1, 2)).unwrap();
        let status = rx.port_status(port).unwrap();
        assert!(status.seqno <= 2, "{status:?}");
        tx.send(to_rx, Message::from_u64(1, 3)).unwrap();
        let got = receiver.join().unwrap();
        assert_eq!(got, [(0, 0), (1, 1)]);
        for i in 2..4 {
            let m = rx.receive(port).unwrap();
            assert_eq!((m.as_u64(), m.trailer().unwrap().seqno), (Some(i), i));
        }
        let status = rx.port_status(port).unwrap();
        assert_eq!((status.queue_len, status.seqno), (0, 4));
    });
}

/// A receiver pops through its grant while another thread's grant re-opens
/// the lane: the pop is counted in the port's sequence number and the
/// re-open's message in its messages sent. (The kernel once read the
/// positions it counts from after opening the ring, so a pop or push
/// through another grant in between was never counted.)
#[test]
fn lane_pop_racing_a_regrant_is_counted() {
    model(|| {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Unbounded).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        // This thread's grants: sending (the lane opens) and receiving.
        tx.send(to_rx, Message::from_u64(1, 0)).unwrap();
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(0));
        tx.send(to_rx, Message::from_u64(1, 1)).unwrap();
        // Another thread holds no grant: its send fences the lane, queues,
        // and re-opens it with a grant of its own.
        let sender = thread::spawn(move || {
            tx.send(to_rx, Message::from_u64(1, 2)).unwrap();
            tx
        });
        for i in 1..3 {
            let m = rx.receive(port).unwrap();
            assert_eq!((m.as_u64(), m.trailer().unwrap().seqno), (Some(i), i));
        }
        drop(sender.join().unwrap());
        let status = rx.port_status(port).unwrap();
        assert_eq!(
            (status.queue_len, status.seqno, status.messages_sent),
            (0, 3, 3),
            "{status:?}"
        );
    });
}

// ---------------------------------------------------------------------------
// Receivers sleeping on an open lane (`core/lane.rs`, "Waiting on an open
// lane"): a receive without a deadline that finds its open lane empty
// announces itself, looks once more and sleeps there, without fencing the
// lane; a push or a fence wakes it.
// ---------------------------------------------------------------------------

/// A port whose sender and receiver both hold grants (one message sent and
/// received through the lane), in a fresh kernel.
fn warmed(
    capacity: Capacity,
) -> (
    Kernel,
    mkipc_kernel::Task,
    mkipc_kernel::PortName,
    mkipc_kernel::Task,
    mkipc_kernel::PortName,
) {
    let kernel = Kernel::new();
    let rx = kernel.spawn_task();
    let tx = kernel.spawn_task();
    let port = rx.port_allocate(capacity).unwrap();
    rx.register("rx", port).unwrap();
    let to_rx = tx.look_up("rx").unwrap();
    tx.send(to_rx, Message::from_u64(1, 100)).unwrap();
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(100));
    (kernel, rx, port, tx, to_rx)
}

/// The receiver sleeps on the open empty lane; the sender's pushes (the
/// first may land before the receiver looks, after it announced itself, or
/// after it slept) wake it: nothing is lost, order and numbers are kept,
/// and the lane stayed open (the receiver never registered under the lock).
#[test]
fn lane_sleeper_woken_by_a_push() {
    for capacity in [Capacity::Bounded(4), Capacity::Unbounded] {
        model(move || {
            let (kernel, rx, port, tx, to_rx) = warmed(capacity);
            let sender = thread::spawn(move || {
                for i in 0..2 {
                    tx.send(to_rx, Message::from_u64(1, i)).unwrap();
                }
                tx
            });
            for i in 0..2 {
                let m = rx.receive(port).unwrap();
                assert_eq!((m.as_u64(), m.trailer().unwrap().seqno), (Some(i), i + 1));
            }
            drop(sender.join().unwrap());
            let status = rx.port_status(port).unwrap();
            assert_eq!(
                (
                    status.queue_len,
                    status.seqno,
                    status.messages_sent,
                    status.blocked_receivers
                ),
                (0, 3, 3, 0)
            );
            drop(kernel);
        });
    }
}

/// Two receiving threads (one task) sleep on the lane; two pushes wake
/// them: each message is taken once, nobody sleeps on. (One sending thread
/// and one preemption: with two senders, or two preemptions, the model
/// does not finish in ten minutes.)
#[test]
fn lane_two_sleepers_two_pushes() {
    model_bounded(1, || {
        let (_kernel, rx, port, tx, to_rx) = warmed(Capacity::Unbounded);
        let rx = Arc::new(rx);
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rx = Arc::clone(&rx);
                thread::spawn(move || rx.receive(port).unwrap().as_u64().unwrap())
            })
            .collect();
        for i in 1..3 {
            tx.send(to_rx, Message::from_u64(1, i)).unwrap();
        }
        let mut got: Vec<u64> = receivers.into_iter().map(|r| r.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(rx.try_receive(port), Err(ReceiveError::Empty));
    });
}

/// A receiver sleeping on the lane is woken by a fence: a message with a
/// right (the locked path, which fences every open lane first) reaches it,
/// as does one sent through the lane after; a locked observer in between
/// never sees a message lost.
#[test]
fn lane_sleeper_woken_by_a_fence() {
    model(|| {
        let (_kernel, rx, port, tx, to_rx) = warmed(Capacity::Unbounded);
        let extra = tx.port_allocate(Capacity::Unbounded).unwrap();
        let sender = thread::spawn(move || {
            let with_right = Message::from_u64(2, 1).with_right(extra, Disposition::MakeSend);
            tx.send(to_rx, with_right).unwrap();
            tx.send(to_rx, Message::from_u64(1, 2)).unwrap();
            tx
        });
        let first = rx.receive(port).unwrap();
        assert_eq!((first.id, first.rights().len()), (2, 1));
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(2));
        drop(sender.join().unwrap());
        let status = rx.port_status(port).unwrap();
        assert_eq!((status.queue_len, status.seqno), (0, 3));
    });
}

/// The port dies while its receiver sleeps on its lane: the death (a
/// locked operation, so a fence) wakes it and it gets an error.
#[test]
fn lane_sleeper_woken_by_port_death() {
    model(|| {
        let kernel = Kernel::new();
        let task = Arc::new(kernel.spawn_task());
        let port = task.port_allocate(Capacity::Bounded(4)).unwrap();
        let to = task.make_send(port).unwrap();
        task.send(to, Message::from_u64(1, 0)).unwrap();
        assert_eq!(task.receive(port).unwrap().as_u64(), Some(0));
        let receiver = {
            let task = Arc::clone(&task);
            thread::spawn(move || task.receive(port))
        };
        task.destroy(port).unwrap();
        let r = receiver.join().unwrap();
        assert!(
            matches!(r, Err(ReceiveError::SourceDead | ReceiveError::InvalidName)),
            "{r:?}"
        );
    });
}

/// The typed path (`send_u64`, `receive_small`) shares the lane with
/// `Message`s: a typed push, a message with a right (the locked path, which
/// fences the lane), a typed push again, while the receiver takes them
/// typed (sleeping on the lane when empty) and untyped. Order, numbers and
/// the counts are kept whatever the interleaving.
#[test]
fn lane_typed_stream_mixed_with_the_locked_path() {
    model(|| {
        let (kernel, rx, port, tx, to_rx) = warmed(Capacity::Bounded(4));
        let extra = tx.port_allocate(Capacity::Unbounded).unwrap();
        let sender = thread::spawn(move || {
            tx.send_u64(to_rx, 1, 1).unwrap();
            tx.send(
                to_rx,
                Message::from_u64(2, 2).with_right(extra, mkipc_kernel::Disposition::MakeSend),
            )
            .unwrap();
            tx.send_u64(to_rx, 3, 3).unwrap();
            tx
        });
        let first = rx.receive_small(port).unwrap();
        assert_eq!(
            (first.id, first.as_u64(), first.trailer().seqno),
            (1, Some(1), 1)
        );
        match rx.receive_small(port) {
            Err(mkipc_kernel::SmallReceiveError::NotSmall(m)) => {
                assert_eq!(
                    (m.id, m.rights().len(), m.trailer().unwrap().seqno),
                    (2, 1, 2)
                )
            }
            other => panic!("{other:?}"),
        }
        let third = rx.receive(port).unwrap();
        assert_eq!(
            (third.as_u64(), third.trailer().unwrap().seqno),
            (Some(3), 3)
        );
        drop(sender.join().unwrap());
        let status = rx.port_status(port).unwrap();
        assert_eq!(
            (status.queue_len, status.seqno, status.messages_sent),
            (0, 4, 4)
        );
        drop(kernel);
    });
}
