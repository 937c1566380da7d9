//! The lane and the locked path mixed, from several threads: per-sender
//! FIFO, nothing lost, nothing twice, and the counts the kernel reports.
//!
//! Senders send plain messages (which take the port's lane when it is
//! open), messages carrying a right (which always take the locked path),
//! and try-sends; an observer thread takes statistics and port status
//! (locked operations, which fence and drain the lane) and may change the
//! capacity; one or two receivers take everything. Every interleaving the
//! OS picks must keep each sender's messages in order at each receiver.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use mkipc_kernel::{Capacity, Disposition, Ipc, Kernel, Message, SendErrorKind};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A rights-free message (the lane's case).
    Plain,
    /// A message carrying a send right to the sender's own port (locked path).
    WithRight,
    /// A rights-free try-send, resent with a blocking send if the port is full.
    Try,
    /// A 1 KiB rights-free message (too big for the lane: locked path).
    Big,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Plain),
        1 => Just(Op::WithRight),
        2 => Just(Op::Try),
        1 => Just(Op::Big),
    ]
}

fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        (1usize..8).prop_map(Capacity::Bounded),
        Just(Capacity::Bounded(64)),
        Just(Capacity::Unbounded),
    ]
}

/// Body: sender index and sequence number; `big` pads it to 1 KiB.
fn body(sender: u32, seq: u32, big: bool) -> Vec<u8> {
    let mut b = [sender.to_le_bytes(), seq.to_le_bytes()].concat();
    if big {
        b.resize(1024, 0);
    }
    b
}

fn run(capacity: Capacity, senders: Vec<Vec<Op>>, receivers: usize, observe: bool) {
    let kernel = Kernel::new();
    let rx = Arc::new(kernel.spawn_task());
    let port = rx.port_allocate(capacity).unwrap();
    rx.register("rx", port).unwrap();
    let total: usize = senders.iter().map(Vec::len).sum();
    let done = Arc::new(AtomicBool::new(false));
    let mut sender_pids = Vec::new();
    let handles: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(s, ops)| {
            let tx = kernel.spawn_task();
            sender_pids.push(tx.pid());
            let to_rx = tx.look_up("rx").unwrap();
            let own = tx.port_allocate(Capacity::Unbounded).unwrap();
            thread::spawn(move || {
                for (seq, op) in ops.into_iter().enumerate() {
                    let b = body(s as u32, seq as u32, matches!(op, Op::Big));
                    let msg = Message::new(seq as u32, b);
                    match op {
                        Op::Plain | Op::Big => tx.send(to_rx, msg).unwrap(),
                        Op::WithRight => tx
                            .send(to_rx, msg.with_right(own, Disposition::MakeSend))
                            .unwrap(),
                        Op::Try => match tx.try_send(to_rx, msg) {
                            Ok(()) => {}
                            Err(e) => {
                                assert_eq!(e.kind(), SendErrorKind::Full, "{e:?}");
                                tx.send(to_rx, e.into_message()).unwrap();
                            }
                        },
                    }
                }
                tx
            })
        })
        .collect();
    let observer = observe.then(|| {
        let (rx, done) = (Arc::clone(&rx), Arc::clone(&done));
        let kernel = kernel.clone();
        thread::spawn(move || {
            let mut grown = false;
            while !done.load(Ordering::Relaxed) {
                let status = rx.port_status(port).unwrap();
                assert!(status.queue_len <= status.max_queue_len);
                let stats = kernel.stats();
                assert!(stats.messages <= total);
                if !grown && capacity != Capacity::Unbounded {
                    // Growing never breaks order or loses a message.
                    rx.set_capacity(port, Capacity::Bounded(128)).unwrap();
                    grown = true;
                }
                thread::yield_now();
            }
        })
    });
    let per_receiver = total / receivers;
    let receiver_handles: Vec<_> = (0..receivers)
        .map(|r| {
            let rx = Arc::clone(&rx);
            let count = if r == 0 {
                total - per_receiver * (receivers - 1)
            } else {
                per_receiver
            };
            thread::spawn(move || {
                (0..count)
                    .map(|_| {
                        let m = rx.receive(port).unwrap();
                        let s = u32::from_le_bytes(m.body[0..4].try_into().unwrap());
                        let seq = u32::from_le_bytes(m.body[4..8].try_into().unwrap());
                        assert_eq!(seq, m.id);
                        (s, seq, m.sender().unwrap(), m.trailer().unwrap().seqno)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let got: Vec<Vec<_>> = receiver_handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let tasks: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    if let Some(o) = observer {
        o.join().unwrap();
    }
    // Per receiver, each sender's messages in the order sent, with its pid.
    for (r, received) in got.iter().enumerate() {
        for (s, pid) in sender_pids.iter().enumerate() {
            let seqs: Vec<u32> = received
                .iter()
                .filter(|m| m.0 == s as u32)
                .map(|m| {
                    assert_eq!(m.2, *pid);
                    m.1
                })
                .collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sender {s}: {seqs:?}");
        }
        // Sequence numbers rise in the order one receiver took them.
        if let Some(i) = received.windows(2).position(|w| w[0].3 >= w[1].3) {
            let around = &received[i.saturating_sub(3)..(i + 5).min(received.len())];
            panic!(
                "{capacity:?}: receiver {r}'s sequence numbers fall at message {i}; \
                 (sender, seq, pid, seqno) around it: {around:?}"
            );
        }
    }
    // Nothing lost, nothing twice; sequence numbers 0..total, each once.
    let mut all: Vec<(u32, u32)> = got.iter().flatten().map(|m| (m.0, m.1)).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total);
    let mut seqnos: Vec<u64> = got.iter().flatten().map(|m| m.3).collect();
    seqnos.sort_unstable();
    assert_eq!(seqnos, (0..total as u64).collect::<Vec<_>>());
    let status = rx.port_status(port).unwrap();
    let expected = (0, total as u64, total as u64);
    assert_eq!(
        (status.queue_len, status.seqno, status.messages_sent),
        expected,
        "{capacity:?}: {status:?}"
    );
    drop(tasks);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lane_and_locked_path_keep_per_sender_fifo_and_lose_nothing(
        capacity in capacity(),
        senders in prop::collection::vec(prop::collection::vec(op(), 1..300), 1..4),
        receivers in 1usize..3,
        observe in any::<bool>(),
    ) {
        run(capacity, senders, receivers, observe);
    }
}

/// A long stream, plain messages only, two senders and two receivers, on
/// each capacity the lane serves (the lane's own steady state, with
/// unbounded lanes growing).
#[test]
fn long_streams_through_the_lane() {
    for capacity in [
        Capacity::Bounded(2),
        Capacity::Bounded(1024),
        Capacity::Unbounded,
    ] {
        run(
            capacity,
            vec![vec![Op::Plain; 20_000], vec![Op::Plain; 20_000]],
            2,
            false,
        );
    }
}

/// A receive without a deadline on an open, empty lane sleeps on the lane
/// (not registered under the lock); an observer that polls `port_status`
/// still sees it as a blocked receiver within a few looks (its fence wakes
/// the receiver, which then waits on the locked path), and a send reaches
/// it either way.
#[test]
fn a_receiver_sleeping_on_the_lane_shows_up_as_blocked() {
    for capacity in [Capacity::Bounded(8), Capacity::Unbounded] {
        let kernel = Kernel::new();
        let rx = Arc::new(kernel.spawn_task());
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(capacity).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        let receiver = {
            let rx = Arc::clone(&rx);
            thread::spawn(move || {
                // The first takes the lane's grant; the second sleeps on it.
                let first = rx.receive(port).unwrap().as_u64();
                let second = rx.receive(port).unwrap().as_u64();
                (first, second)
            })
        };
        tx.send(to_rx, Message::from_u64(1, 1)).unwrap();
        let start = std::time::Instant::now();
        while rx.port_status(port).unwrap().blocked_receivers != 1 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the sleeping receiver never showed as blocked ({capacity:?})"
            );
            thread::sleep(std::time::Duration::from_millis(1));
        }
        tx.send(to_rx, Message::from_u64(1, 2)).unwrap();
        assert_eq!(receiver.join().unwrap(), (Some(1), Some(2)));
        let status = rx.port_status(port).unwrap();
        assert_eq!(
            (status.blocked_receivers, status.queue_len, status.seqno),
            (0, 0, 2)
        );
    }
}
