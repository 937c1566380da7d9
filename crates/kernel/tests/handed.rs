//! A handed message keeps its place (the capacity module's rule): a message
//! handed to a receiver that was already waiting counts against the queue's
//! capacity until that receiver takes it. So whether the receiver waited
//! first or asked only when it took the message makes no difference to
//! anyone else, which is what the stateful checker's lazy blocking relies
//! on (DESIGN.md, "A handed message keeps its place").
//!
//! The property drives two kernels through the same operations on one port
//! with one receiver: in the *waiting* kernel the receiver blocks in a
//! receive as soon as it wants a message and later takes the outcome; in
//! the *asking* kernel it only tries a receive when it takes. Every send
//! (tries, drops, blocking sends, timed sends with a zero timeout) must
//! end the same way in both, every take must bring the same message, and
//! blocked senders must be let in at the same moments.

use mkipc_kernel::runtime::{Begin, Destination, Source, WaitOutcome, WaitToken, Waker};
use mkipc_kernel::{Capacity, Ipc, Kernel, Message, OnFull, PortName, Sent, Task};

use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Sender `s` sends its next message with this policy (if it is not
    /// blocked in a send already).
    Send(usize, OnFull),
    /// The receiver takes a message if one is there for it.
    Take,
}

fn op() -> impl Strategy<Value = Op> {
    let policy = prop_oneof![
        Just(OnFull::Fail),
        Just(OnFull::DropNewest),
        Just(OnFull::Block),
        Just(OnFull::Timeout(Duration::ZERO)),
    ];
    prop_oneof![
        3 => (0..2usize, policy).prop_map(|(s, p)| Op::Send(s, p)),
        2 => Just(Op::Take),
    ]
}

fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        (1..4usize).prop_map(Capacity::Bounded),
        Just(Capacity::Unbounded)
    ]
}

/// One kernel of the pair: a receiver task holding the port, two senders.
struct Side {
    kernel: Kernel,
    rx: Task,
    port: PortName,
    senders: Vec<(Task, PortName)>,
    /// The receiver's pending receive (the waiting side only).
    waiting: Option<WaitToken>,
    /// Each sender's blocked send.
    blocked: Vec<Option<WaitToken>>,
}

/// How a send ended, as both sides must agree on.
#[derive(Debug, PartialEq, Eq)]
enum SendEnd {
    Done(Result<Sent, String>),
    Blocked,
}

impl Side {
    fn new(capacity: Capacity) -> Side {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let port = rx.port_allocate(capacity).unwrap();
        rx.register("rx", port).unwrap();
        let senders = (0..2)
            .map(|_| {
                let t = kernel.spawn_task();
                let name = t.look_up("rx").unwrap();
                (t, name)
            })
            .collect();
        Side {
            kernel,
            rx,
            port,
            senders,
            waiting: None,
            blocked: vec![None, None],
        }
    }

    /// Sender `s`'s blocked send, if it completed: taken now. Whether it
    /// completed is part of what both sides must agree on.
    fn settle_sender(&mut self, s: usize) -> Option<Result<Sent, String>> {
        let token = self.blocked[s]?;
        let pid = self.senders[s].0.pid();
        let outcome = self.kernel.wait_take(pid, token)?;
        self.blocked[s] = None;
        match outcome {
            WaitOutcome::Sent(r) => Some(r.map_err(|e| format!("{:?}", e.kind()))),
            other => panic!("a send ended as {other:?}"),
        }
    }

    fn send(&mut self, s: usize, value: u64, on_full: OnFull) -> Option<SendEnd> {
        if self.blocked[s].is_some() {
            return None;
        }
        let (task, name) = &self.senders[s];
        let begin = self.kernel.send_begin(
            task.pid(),
            Destination::Name(*name),
            Message::from_u64(1, value),
            on_full,
            &|| Waker::Id(s as u64),
        );
        Some(match begin {
            Begin::Done(r) => SendEnd::Done(r.map_err(|e| format!("{:?}", e.kind()))),
            Begin::Blocked(token) => {
                self.blocked[s] = Some(token);
                SendEnd::Blocked
            }
        })
    }

    /// The waiting receiver: takes its completed receive if there is one;
    /// otherwise starts a receive, which either completes at once or waits
    /// (and is taken at a later take).
    fn take_waiting(&mut self) -> Option<u64> {
        let pid = self.rx.pid();
        if let Some(token) = self.waiting {
            let outcome = self.kernel.wait_take(pid, token)?;
            self.waiting = None;
            return match outcome {
                WaitOutcome::Received(Ok(m)) => m.as_u64(),
                other => panic!("the receive ended as {other:?}"),
            };
        }
        match self
            .kernel
            .receive_begin(pid, Source::Name(self.port), true, &|| Waker::Id(9))
        {
            Begin::Done(r) => r.unwrap().as_u64(),
            Begin::Blocked(token) => {
                self.waiting = Some(token);
                None
            }
        }
    }

    /// The asking receiver: a try at the moment it takes.
    fn take_asking(&mut self) -> Option<u64> {
        self.rx.try_receive(self.port).ok().and_then(|m| m.as_u64())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_waiting_receiver_changes_nothing_for_the_others(
        capacity in capacity(),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let mut waiting = Side::new(capacity);
        let mut asking = Side::new(capacity);
        // The waiting side's receiver waits from the start.
        prop_assert_eq!(waiting.take_waiting(), None);
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Send(s, on_full) => {
                    let a = waiting.send(s, i as u64, on_full);
                    let b = asking.send(s, i as u64, on_full);
                    prop_assert_eq!(a, b, "send {} by sender {} ({:?})", i, s, on_full);
                }
                Op::Take => {
                    let a = waiting.take_waiting();
                    let b = asking.take_asking();
                    prop_assert_eq!(a, b, "take {}", i);
                }
            }
            for s in 0..2 {
                let a = waiting.settle_sender(s);
                let b = asking.settle_sender(s);
                prop_assert_eq!(a, b, "sender {} after op {}", s, i);
            }
        }
        for side in [&waiting, &asking] {
            side.kernel.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}

/// The rule on one example: a bounded(1) port whose waiting receiver was
/// handed a message is full until the receiver takes it.
#[test]
fn a_handed_message_keeps_its_place_until_taken() {
    let mut side = Side::new(Capacity::Bounded(1));
    assert_eq!(side.take_waiting(), None, "the receiver waits");
    assert_eq!(
        side.send(0, 1, OnFull::Fail),
        Some(SendEnd::Done(Ok(Sent::Delivered)))
    );
    assert_eq!(
        side.send(1, 2, OnFull::Fail),
        Some(SendEnd::Done(Err("Full".into()))),
        "the handed message still holds the only place"
    );
    assert_eq!(side.send(1, 3, OnFull::Block), Some(SendEnd::Blocked));
    assert_eq!(side.settle_sender(1), None);
    assert_eq!(side.take_waiting(), Some(1));
    assert_eq!(
        side.settle_sender(1),
        Some(Ok(Sent::Delivered)),
        "taking it let the blocked sender in"
    );
    assert_eq!(side.take_waiting(), Some(3));
    side.kernel.check_invariants().unwrap();
}
