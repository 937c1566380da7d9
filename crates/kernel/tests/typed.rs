//! The typed small-body operations (`send_small`, `send_u64`,
//! `receive_small`) against the `Message` ones they stand for.
//!
//! * `smoke`: a stream, the trailer, a message that is not small, a failed
//!   typed send giving its `Message` back.
//! * `typed_and_message_operations_agree`: one random sequence of
//!   operations applied to two kernels, typed where the sequence says so on
//!   the first and always with `Message`s on the second; every result must be
//!   the same. Single-threaded and with no observing operation between steps
//!   (unlike `tests/model.rs`, whose per-step state comparison fences every
//!   lane), so the lane stays open across steps and typed pushes and pops
//!   meet untyped ones in it.
//! * `typed_and_message_senders_and_receivers_mixed_across_threads`:
//!   several threads mixing typed and untyped sends (and messages with
//!   rights, which take the locked path) into one port, receivers mixing
//!   typed and untyped receives: per-sender FIFO at each receiver, sequence
//!   numbers rising, nothing lost or twice, as `tests/lane.rs` checks for
//!   `Message`s alone.

use std::sync::Arc;
use std::thread;

use mkipc_kernel::message::INLINE_BODY;
use mkipc_kernel::{
    Capacity, Disposition, Ipc, Kernel, Message, OnFull, PortName, ReceiveError, SendErrorKind,
    SmallReceiveError, Task,
};
use proptest::prelude::*;

/// A typed receive, as the `Message` `receive` would have returned; checks
/// that `NotSmall` comes only with a message that is not small.
fn as_message(
    r: Result<mkipc_kernel::SmallMessage, SmallReceiveError>,
) -> Result<Message, ReceiveError> {
    match r {
        Ok(small) => Ok(small.into_message()),
        Err(SmallReceiveError::NotSmall(m)) => {
            assert!(
                m.carries_rights() || m.body.len() > INLINE_BODY,
                "a small message came back as not small: {m:?}"
            );
            Ok(*m)
        }
        Err(SmallReceiveError::Receive(e)) => Err(e),
    }
}

#[test]
fn smoke() {
    let kernel = Kernel::new();
    let rx = kernel.spawn_task();
    let tx = kernel.spawn_task();
    let port = rx.port_allocate(Capacity::Bounded(1024)).unwrap();
    rx.register("rx", port).unwrap();
    let to = tx.look_up("rx").unwrap();
    for i in 0..3000u64 {
        tx.send_u64(to, 3, i).unwrap();
        let got = rx.receive_small(port).unwrap();
        assert_eq!((got.id, got.as_u64(), got.sender()), (3, Some(i), tx.pid()));
        assert_eq!((got.trailer().seqno, got.trailer().received_on), (i, port));
    }
    // Bodies of every small length, typed and untyped, in one order.
    for len in 0..=INLINE_BODY {
        let body: Vec<u8> = (0..len as u8).collect();
        tx.send_small(to, len as u32, &body).unwrap();
        tx.send(to, Message::new(100 + len as u32, body)).unwrap();
    }
    for len in 0..=INLINE_BODY {
        let body: Vec<u8> = (0..len as u8).collect();
        let a = rx.receive(port).unwrap();
        assert_eq!((a.id, &a.body[..]), (len as u32, &body[..]));
        let b = rx.receive_small(port).unwrap();
        assert_eq!((b.id, b.body()), (100 + len as u32, &body[..]));
        assert_eq!(b.trailer().seqno, a.trailer().unwrap().seqno + 1);
    }
    // Larger than a lane entry: the locked path, same message.
    tx.send_small(to, 9, &[7; 100]).unwrap();
    match rx.receive_small(port) {
        Err(SmallReceiveError::NotSmall(m)) => assert_eq!((m.id, &m.body[..]), (9, &[7; 100][..])),
        other => panic!("{other:?}"),
    }
    // A message with a right is received whole.
    let own = tx.port_allocate(Capacity::Unbounded).unwrap();
    tx.send(
        to,
        Message::from_u64(4, 1).with_right(own, Disposition::MakeSend),
    )
    .unwrap();
    match rx.receive_small(port) {
        Err(SmallReceiveError::NotSmall(m)) => assert_eq!(m.rights().len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rx.try_receive_small(port),
        Err(SmallReceiveError::Receive(ReceiveError::Empty))
    );
    // A failed typed send gives back the `Message` it stands for.
    tx.deallocate(to).unwrap();
    let e = tx.send_u64(to, 5, 77).unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::InvalidDestination);
    assert_eq!(e.into_message(), Message::from_u64(5, 77));
    // Full: the same error as `try_send`, the message back.
    let small = rx.port_allocate(Capacity::Bounded(2)).unwrap();
    let to_small = rx.make_send(small).unwrap();
    rx.send_u64(to_small, 1, 1).unwrap();
    rx.send_u64(to_small, 1, 2).unwrap();
    let e = rx.try_send_small(to_small, 1, b"x").unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::Full);
    assert_eq!(e.into_message(), Message::new(1, b"x"));
    assert_eq!(rx.port_status(small).unwrap().queue_len, 2);
}

// ----- one sequence, two kernels ------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Send `len` bytes (typed on the first kernel if `typed`), `on_full`
    /// `Fail` or `DropOldest`.
    Send { typed: bool, len: usize, fail: bool },
    /// Send a message carrying a right (both kernels: `Message`).
    SendWithRight,
    /// `try_receive` (typed on the first kernel if `typed`).
    Receive { typed: bool },
    /// `port_status` (a locked operation: fences the lane).
    Status,
    /// Change the port's capacity.
    SetCapacity(Capacity),
    /// The sender drops its send right and looks the port up again.
    Reconnect,
    /// The sender drops its send right (later sends fail until `Reconnect`).
    Drop,
}

fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        (2usize..6).prop_map(Capacity::Bounded),
        Just(Capacity::Bounded(64)),
        Just(Capacity::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<bool>(), prop_oneof![8 => Just(8usize), 2 => 0..=INLINE_BODY, 1 => Just(40usize)], any::<bool>())
            .prop_map(|(typed, len, fail)| Op::Send { typed, len, fail: fail || len != 8 }),
        1 => Just(Op::SendWithRight),
        10 => any::<bool>().prop_map(|typed| Op::Receive { typed }),
        1 => Just(Op::Status),
        1 => capacity().prop_map(Op::SetCapacity),
        1 => Just(Op::Reconnect),
        1 => Just(Op::Drop),
    ]
}

/// One kernel of the pair: a receiver and a sender task.
struct Side {
    _kernel: Kernel,
    rx: Task,
    tx: Task,
    port: PortName,
    to: PortName,
    own: PortName,
    typed: bool,
}

impl Side {
    fn new(capacity: Capacity, typed: bool) -> Side {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(capacity).unwrap();
        rx.register("rx", port).unwrap();
        let to = tx.look_up("rx").unwrap();
        let own = tx.port_allocate(Capacity::Unbounded).unwrap();
        Side {
            _kernel: kernel,
            rx,
            tx,
            port,
            to,
            own,
            typed,
        }
    }

    /// Applies `op`; its outcome, as text that names everything compared.
    fn apply(&mut self, op: &Op, step: usize) -> String {
        match *op {
            Op::Send { typed, len, fail } => {
                let body: Vec<u8> = (0..len).map(|i| (step + i) as u8).collect();
                let on_full = if fail {
                    OnFull::Fail
                } else {
                    OnFull::DropOldest
                };
                let id = step as u32;
                let r = if typed && self.typed {
                    self.tx.send_small_with(self.to, id, &body, on_full)
                } else {
                    self.tx.send_with(self.to, Message::new(id, body), on_full)
                };
                format!("{:?}", r.map_err(|e| (e.kind(), e.into_message())))
            }
            Op::SendWithRight => {
                let m = Message::from_u64(step as u32, step as u64)
                    .with_right(self.own, Disposition::MakeSend);
                let r = self.tx.try_send(self.to, m);
                format!("{:?}", r.map_err(|e| e.kind()))
            }
            Op::Receive { typed } => {
                let r = if typed && self.typed {
                    as_message(self.rx.try_receive_small(self.port))
                } else {
                    self.rx.try_receive(self.port)
                };
                // The carried right's name is the receiver's; compare the count.
                format!(
                    "{:?}",
                    r.map(|m| (m.id, m.body.to_vec(), m.rights().len(), m.trailer()))
                )
            }
            Op::Status => format!("{:?}", self.rx.port_status(self.port)),
            Op::SetCapacity(c) => format!("{:?}", self.rx.set_capacity(self.port, c)),
            Op::Reconnect => {
                let _ = self.tx.deallocate(self.to);
                self.to = self.tx.look_up("rx").unwrap();
                String::new()
            }
            Op::Drop => format!("{:?}", self.tx.deallocate(self.to)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn typed_and_message_operations_agree(
        capacity in capacity(),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let mut typed = Side::new(capacity, true);
        let mut plain = Side::new(capacity, false);
        for (step, op) in ops.iter().enumerate() {
            let a = typed.apply(op, step);
            let b = plain.apply(op, step);
            prop_assert_eq!(a, b, "step {}: {:?}", step, op);
        }
        let a = typed.rx.port_status(typed.port);
        let b = plain.rx.port_status(plain.port);
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

// ----- threads --------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum TOp {
    /// `send_small` of (sender, seq).
    Typed,
    /// `send` of the same `Message`.
    Plain,
    /// `try_send_small`, then a blocking typed send of what came back.
    TryTyped,
    /// A `Message` with a right (the locked path).
    WithRight,
}

fn top() -> impl Strategy<Value = TOp> {
    prop_oneof![
        5 => Just(TOp::Typed),
        3 => Just(TOp::Plain),
        2 => Just(TOp::TryTyped),
        1 => Just(TOp::WithRight),
    ]
}

/// (sender, seq, sender pid, seqno) of each message a receiver took.
type Got = Vec<(u32, u32, u32, u64)>;

fn run_threads(capacity: Capacity, senders: Vec<Vec<TOp>>, receivers: Vec<bool>) {
    let kernel = Kernel::new();
    let rx = Arc::new(kernel.spawn_task());
    let port = rx.port_allocate(capacity).unwrap();
    rx.register("rx", port).unwrap();
    let total: usize = senders.iter().map(Vec::len).sum();
    let mut pids = Vec::new();
    let handles: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(s, ops)| {
            let tx = kernel.spawn_task();
            pids.push(tx.pid().0);
            let to = tx.look_up("rx").unwrap();
            let own = tx.port_allocate(Capacity::Unbounded).unwrap();
            thread::spawn(move || {
                for (seq, op) in ops.into_iter().enumerate() {
                    let body = [(s as u32).to_le_bytes(), (seq as u32).to_le_bytes()].concat();
                    let id = seq as u32;
                    match op {
                        TOp::Typed => tx.send_small(to, id, &body).unwrap(),
                        TOp::Plain => tx.send(to, Message::new(id, body)).unwrap(),
                        TOp::TryTyped => {
                            if let Err(e) = tx.try_send_small(to, id, &body) {
                                assert_eq!(e.kind(), SendErrorKind::Full, "{e:?}");
                                let back = e.into_message();
                                assert_eq!(back, Message::new(id, body));
                                tx.send_small(to, back.id, &back.body).unwrap();
                            }
                        }
                        TOp::WithRight => tx
                            .send(
                                to,
                                Message::new(id, body).with_right(own, Disposition::MakeSend),
                            )
                            .unwrap(),
                    }
                }
                tx
            })
        })
        .collect();
    let n = receivers.len();
    let per = total / n;
    let rhandles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(r, typed)| {
            let rx = Arc::clone(&rx);
            let count = if r == 0 { total - per * (n - 1) } else { per };
            thread::spawn(move || -> Got {
                (0..count)
                    .map(|i| {
                        // A typed receiver also takes every third message untyped.
                        let m = if typed && i % 3 != 0 {
                            as_message(rx.receive_small(port)).unwrap()
                        } else {
                            rx.receive(port).unwrap()
                        };
                        let s = u32::from_le_bytes(m.body[0..4].try_into().unwrap());
                        let seq = u32::from_le_bytes(m.body[4..8].try_into().unwrap());
                        assert_eq!(seq, m.id);
                        let t = m.trailer().unwrap();
                        (s, seq, t.sender.0, t.seqno)
                    })
                    .collect()
            })
        })
        .collect();
    let got: Vec<Got> = rhandles.into_iter().map(|h| h.join().unwrap()).collect();
    let tasks: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (r, received) in got.iter().enumerate() {
        for (s, pid) in pids.iter().enumerate() {
            let seqs: Vec<u32> = received
                .iter()
                .filter(|m| m.0 == s as u32)
                .map(|m| {
                    assert_eq!(m.2, *pid);
                    m.1
                })
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "receiver {r}, sender {s}: {seqs:?}"
            );
        }
        assert!(
            received.windows(2).all(|w| w[0].3 < w[1].3),
            "{capacity:?}: receiver {r}'s sequence numbers fall"
        );
    }
    let mut all: Vec<(u32, u32)> = got.iter().flatten().map(|m| (m.0, m.1)).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total);
    let mut seqnos: Vec<u64> = got.iter().flatten().map(|m| m.3).collect();
    seqnos.sort_unstable();
    assert_eq!(seqnos, (0..total as u64).collect::<Vec<_>>());
    let status = rx.port_status(port).unwrap();
    assert_eq!(
        (status.queue_len, status.seqno, status.messages_sent),
        (0, total as u64, total as u64)
    );
    drop(tasks);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn typed_and_message_senders_and_receivers_mixed_across_threads(
        capacity in capacity(),
        senders in prop::collection::vec(prop::collection::vec(top(), 1..400), 1..4),
        receivers in prop::collection::vec(any::<bool>(), 1..3),
    ) {
        run_threads(capacity, senders, receivers);
    }
}

/// Long typed streams, two senders and two receivers, on each capacity the
/// lane serves.
#[test]
fn long_typed_streams() {
    for capacity in [
        Capacity::Bounded(2),
        Capacity::Bounded(1024),
        Capacity::Unbounded,
    ] {
        run_threads(
            capacity,
            vec![vec![TOp::Typed; 20_000], vec![TOp::Typed; 20_000]],
            vec![true, true],
        );
    }
}
