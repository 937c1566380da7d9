//! A handed message keeps its place (the capacity module's rule): a message
//! handed to a receiver that was already waiting counts against the queue's
//! capacity until that receiver takes it. So whether the receiver waited
//! first or asked only when it took the message makes no difference to
//! anyone else, which is what the stateful checker's lazy blocking relies
//! on (DESIGN.md, "A handed message keeps its place").
//!
//! The property drives two kernels through the same operations on one port
//! or mailbox with one to three receivers: in the *waiting* kernel a
//! receiver blocks in a receive as soon as it wants a message and later
//! takes the outcome; in the *asking* kernel it only tries a receive when
//! it takes. Every send (tries, drops, blocking sends, timed sends with a
//! zero timeout) must end the same way in both, every take must bring the
//! same message (with several receivers, the group hand-off: whoever takes
//! first takes the oldest), and blocked senders must be let in at the same
//! moments.

use mkipc_kernel::runtime::{Begin, Destination, Source, WaitOutcome, WaitToken, Waker};
use mkipc_kernel::{Capacity, Ipc, Kernel, MailboxConfig, Message, OnFull, PortName, Sent, Task};

use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Sender `s` sends its next message with this policy (if it is not
    /// blocked in a send already).
    Send(usize, OnFull),
    /// Receiver `r` takes a message if one is there for it.
    Take(usize),
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
        2 => (0..RECEIVERS).prop_map(Op::Take),
    ]
}

/// At most this many receivers.
const RECEIVERS: usize = 3;

fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        (1..4usize).prop_map(Capacity::Bounded),
        Just(Capacity::Unbounded)
    ]
}

/// Where the messages go: a port (its receivers are threads of the task
/// holding the receive right) or a mailbox (each receiver a task of its own).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Port,
    Mailbox,
}

/// One kernel of the pair: the receivers and two senders.
struct Side {
    kernel: Kernel,
    /// The receiving tasks (one for a port, one per receiver for a mailbox).
    tasks: Vec<Task>,
    /// Each receiver: its task (an index into `tasks`) and the name it
    /// receives on.
    receivers: Vec<(usize, PortName)>,
    senders: Vec<(Task, PortName)>,
    /// Each receiver's pending receive (the waiting side only).
    waiting: Vec<Option<WaitToken>>,
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
    fn new(kind: Kind, capacity: Capacity, receivers: usize) -> Side {
        let kernel = Kernel::new();
        let owner = kernel.spawn_task();
        let (tasks, receivers, target) = match kind {
            Kind::Port => {
                let port = owner.port_allocate(capacity).unwrap();
                owner.register("rx", port).unwrap();
                (vec![owner], vec![(0, port); receivers], None)
            }
            Kind::Mailbox => {
                owner
                    .mailbox_create("box", MailboxConfig::new(capacity))
                    .unwrap();
                let mut tasks = vec![owner];
                let mut names = Vec::new();
                for r in 0..receivers {
                    if r > 0 {
                        tasks.push(kernel.spawn_task());
                    }
                    names.push((r, tasks[r].mailbox_open("box").unwrap()));
                }
                (tasks, names, Some("box"))
            }
        };
        let senders = (0..2)
            .map(|_| {
                let t = kernel.spawn_task();
                let name = match target {
                    None => t.look_up("rx").unwrap(),
                    Some(mailbox) => t.mailbox_open(mailbox).unwrap(),
                };
                (t, name)
            })
            .collect();
        Side {
            kernel,
            waiting: vec![None; receivers.len()],
            tasks,
            receivers,
            senders,
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

    /// Waiting receiver `r`: takes its completed receive if there is one
    /// (`Some`); if it has a receive still pending, it cannot step (`None`);
    /// otherwise it starts a receive, which either completes at once
    /// (`Some`) or waits (`None`: it takes the outcome at a later take).
    fn take_waiting(&mut self, r: usize) -> Option<Option<u64>> {
        let (task, name) = self.receivers[r];
        let pid = self.tasks[task].pid();
        if let Some(token) = self.waiting[r] {
            let outcome = self.kernel.wait_take(pid, token)?;
            self.waiting[r] = None;
            return match outcome {
                WaitOutcome::Received(Ok(m)) => Some(m.as_u64()),
                other => panic!("the receive ended as {other:?}"),
            };
        }
        match self
            .kernel
            .receive_begin(pid, Source::Name(name), true, &|| Waker::Id(9))
        {
            Begin::Done(r) => Some(r.unwrap().as_u64()),
            Begin::Blocked(token) => {
                self.waiting[r] = Some(token);
                None
            }
        }
    }

    /// Asking receiver `r`: a try at the moment it takes.
    fn take_asking(&mut self, r: usize) -> Option<u64> {
        let (task, name) = self.receivers[r];
        self.tasks[task]
            .try_receive(name)
            .ok()
            .and_then(|m| m.as_u64())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// With several receivers, the waiting ones wait in receiver order from
    /// the start but take in the order the operations say: each that can
    /// step (its receive completed, or it starts one that completes at
    /// once) must get what the asking side's try gets, the oldest message;
    /// with messages handed to several, that is the group hand-off
    /// (`take_handed` in the kernel). A receiver whose receive waits (or
    /// still waits) does not step on either side: lazily it only intends
    /// to receive.
    #[test]
    fn a_waiting_receiver_changes_nothing_for_the_others(
        kind in prop_oneof![Just(Kind::Port), Just(Kind::Mailbox)],
        capacity in capacity(),
        receivers in 1..=RECEIVERS,
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let mut waiting = Side::new(kind, capacity, receivers);
        let mut asking = Side::new(kind, capacity, receivers);
        // The waiting side's receivers wait from the start.
        for r in 0..receivers {
            prop_assert_eq!(waiting.take_waiting(r), None, "receiver {} waits", r);
        }
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Send(s, on_full) => {
                    let a = waiting.send(s, i as u64, on_full);
                    let b = asking.send(s, i as u64, on_full);
                    prop_assert_eq!(a, b, "send {} by sender {} ({:?})", i, s, on_full);
                }
                Op::Take(r) if r < receivers => {
                    if let Some(a) = waiting.take_waiting(r) {
                        let b = asking.take_asking(r);
                        prop_assert_eq!(a, b, "take {} by receiver {}", i, r);
                    }
                }
                Op::Take(_) => {}
            }
            for s in 0..2 {
                let a = waiting.settle_sender(s);
                let b = asking.settle_sender(s);
                prop_assert_eq!(a, b, "sender {} after op {}", s, i);
            }
            waiting.kernel.check_invariants().map_err(TestCaseError::fail)?;
        }
        asking.kernel.check_invariants().map_err(TestCaseError::fail)?;
    }
}

/// The rule on one example: a bounded(1) port whose waiting receiver was
/// handed a message is full until the receiver takes it.
#[test]
fn a_handed_message_keeps_its_place_until_taken() {
    let mut side = Side::new(Kind::Port, Capacity::Bounded(1), 1);
    assert_eq!(side.take_waiting(0), None, "the receiver waits");
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
    assert_eq!(side.take_waiting(0), Some(Some(1)));
    assert_eq!(
        side.settle_sender(1),
        Some(Ok(Sent::Delivered)),
        "taking it let the blocked sender in"
    );
    assert_eq!(side.take_waiting(0), Some(Some(3)));
    side.kernel.check_invariants().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the mix of plain messages, messages carrying a right (which
    /// keep the waiter they were handed to) and receives begun while
    /// others hold handed messages, no receiver takes a message older than
    /// one it took before, and each message is taken once.
    #[test]
    fn no_receiver_goes_back_in_time(
        kind in prop_oneof![Just(Kind::Port), Just(Kind::Mailbox)],
        capacity in capacity(),
        receivers in 1..=RECEIVERS,
        ops in proptest::collection::vec((op(), any::<bool>()), 0..60),
    ) {
        let mut side = Side::new(kind, capacity, receivers);
        let right = side.senders[0].0.port_allocate(Capacity::Unbounded).unwrap();
        let mut last = vec![None; receivers];
        let mut taken = std::collections::BTreeSet::new();
        for (i, (op, with_right)) in ops.into_iter().enumerate() {
            match op {
                Op::Send(s, on_full) if side.blocked[s].is_none() => {
                    let mut msg = Message::from_u64(1, i as u64);
                    if with_right && s == 0 {
                        msg = msg.with_right(right, mkipc_kernel::Disposition::MakeSend);
                    }
                    let (task, name) = &side.senders[s];
                    if let Begin::Blocked(token) = side.kernel.send_begin(
                        task.pid(),
                        Destination::Name(*name),
                        msg,
                        on_full,
                        &|| Waker::Id(s as u64),
                    ) {
                        side.blocked[s] = Some(token);
                    }
                }
                Op::Send(..) => {}
                Op::Take(r) if r < receivers => {
                    if let Some(Some(v)) = side.take_waiting(r) {
                        prop_assert!(last[r] < Some(v), "receiver {} took {} after {:?}", r, v, last[r]);
                        prop_assert!(taken.insert(v), "message {} taken twice", v);
                        last[r] = Some(v);
                    }
                }
                Op::Take(_) => {}
            }
            for s in 0..2 {
                side.settle_sender(s);
            }
            side.kernel.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}
