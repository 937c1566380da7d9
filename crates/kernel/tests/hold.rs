//! Two things a single-threaded runner (the simulator) leans on:
//!
//! * [`Kernel::hold`]: the lock taken once by one thread for a whole run.
//!   The holder's operations go on as before; every other thread waits for
//!   the hold to end; a hold inside a hold of the same thread does nothing.
//! * The fast paths of the common wait (a receive on an empty port that
//!   has to wait, `receive_begin`) and of the common hand-off (a send to a
//!   port whose receiver waits there, `send_begin`) do what the general
//!   paths do. Compared step by step with the same program whose receives
//!   go through the general path (`select_first_begin` with one source
//!   registers the same wait, and its sends still take the fast hand-off;
//!   `receive_matching_begin` with a filter that takes anything makes both
//!   the wait and its hand-off general): the same results, woken ids and
//!   messages received (ids, bodies, trailers), and the same canonical
//!   state (always for the first; for the second whenever no wait is
//!   pending, as a waiting filter is state of its own).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mkipc_kernel::runtime::{Begin, Destination, Source, WaitOutcome, WaitToken, Waker};
use mkipc_kernel::{Capacity, Filter, Ipc, Kernel, Message, OnFull, PortName, Task};
use proptest::prelude::*;

#[test]
fn smoke() {
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task.port_allocate(Capacity::Bounded(1)).unwrap();
    let hold = kernel.hold();
    task.send(port, Message::from_u64(1, 7)).unwrap();
    assert_eq!(task.receive(port).unwrap().as_u64(), Some(7));
    drop(hold);
    task.send(port, Message::from_u64(1, 8)).unwrap();
    assert_eq!(task.receive(port).unwrap().as_u64(), Some(8));
}

#[test]
fn other_threads_wait_for_the_hold_to_end() {
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task.port_allocate(Capacity::Unbounded).unwrap();
    let other = kernel.spawn_task();
    task.register("port", port).unwrap();
    let to_port = other.look_up("port").unwrap();
    let sent = Arc::new(AtomicBool::new(false));
    let hold = kernel.hold();
    let thread = std::thread::spawn({
        let sent = Arc::clone(&sent);
        move || {
            other.send(to_port, Message::from_u64(2, 1)).unwrap();
            sent.store(true, Ordering::SeqCst);
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!sent.load(Ordering::SeqCst), "a send went through the hold");
    // The holder's own operations go on.
    task.send(port, Message::from_u64(1, 0)).unwrap();
    assert_eq!(task.receive(port).unwrap().id, 1);
    drop(hold);
    thread.join().unwrap();
    assert!(sent.load(Ordering::SeqCst));
    assert_eq!(task.receive(port).unwrap().id, 2);
}

#[test]
fn a_hold_inside_a_hold_does_nothing() {
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task.port_allocate(Capacity::Bounded(1)).unwrap();
    let outer = kernel.hold();
    {
        let _inner = kernel.hold();
        task.send(port, Message::from_u64(1, 1)).unwrap();
    }
    // Still held by the outer hold, and still usable.
    assert_eq!(task.receive(port).unwrap().as_u64(), Some(1));
    drop(outer);
    // Released: another thread gets in.
    let k = kernel.clone();
    std::thread::spawn(move || k.spawn_task()).join().unwrap();
}

/// What the equivalence test does next.
#[derive(Clone, Debug)]
enum Step {
    /// Receiver `r` starts a receive on its port (it may complete at once).
    Receive(usize),
    /// A message to receiver `r`'s port (may complete its wait).
    Send(usize, u64),
    /// Take the woken ids and the outcomes of the completed waits.
    Take,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize).prop_map(Step::Receive),
        3 => ((0..3usize), 0..100u64).prop_map(|(r, v)| Step::Send(r, v)),
        2 => Just(Step::Take),
    ]
}

/// How a world's receives start.
#[derive(Clone, Copy, Debug)]
enum How {
    /// `receive_begin`: the fast wait, and the fast hand-off to it.
    Fast,
    /// `select_first_begin`: a general wait, the same record.
    Select,
    /// `receive_matching_begin`, taking anything: a general wait (with a
    /// filter) and a general hand-off.
    Matching,
}

/// A received message as the comparison sees it: id, body, trailer.
fn shown(m: Result<Message, mkipc_kernel::ReceiveError>) -> String {
    format!("{:?}", m.map(|m| (m.id, m.as_u64(), m.trailer())))
}

/// One kernel of the comparison: three receivers with a port each (of
/// the given capacities), and a sender holding send rights to them all.
struct World {
    kernel: Kernel,
    receivers: Vec<(Task, PortName)>,
    sender: Task,
    to: Vec<PortName>,
    /// Pending waits: (receiver, token).
    waits: Vec<(usize, WaitToken)>,
}

impl World {
    fn new(capacities: &[Capacity]) -> World {
        let kernel = Kernel::new();
        let sender = kernel.spawn_task();
        let mut receivers = Vec::new();
        let mut to = Vec::new();
        for &c in capacities {
            let task = kernel.spawn_task();
            let port = task.port_allocate(c).unwrap();
            task.register(&format!("r{}", receivers.len()), port)
                .unwrap();
            to.push(sender.look_up(&format!("r{}", receivers.len())).unwrap());
            receivers.push((task, port));
        }
        World {
            kernel,
            receivers,
            sender,
            to,
            waits: Vec::new(),
        }
    }

    /// Starts a receive, the way `how` says; what completed at once, or
    /// `None` when it waits.
    fn receive(&mut self, r: usize, how: How) -> Option<String> {
        let (task, port) = &self.receivers[r];
        let waker = || Waker::Id(r as u64);
        let begin = match how {
            How::Fast => self
                .kernel
                .receive_begin(task.pid(), Source::Name(*port), true, &waker),
            How::Select => self
                .kernel
                .select_first_begin(task.pid(), &[*port], true, &waker),
            How::Matching => self.kernel.receive_matching_begin(
                task.pid(),
                Source::Name(*port),
                &Filter::any(),
                true,
                &waker,
            ),
        };
        match begin {
            Begin::Done(m) => Some(shown(m)),
            Begin::Blocked(token) => {
                self.waits.push((r, token));
                None
            }
        }
    }

    fn send(&self, r: usize, v: u64) -> String {
        // Straight to the core (a thread's `Task` could take a lane).
        let sent = self.kernel.send_begin(
            self.sender.pid(),
            Destination::Name(self.to[r]),
            Message::from_u64(1, v),
            OnFull::Fail,
            &|| Waker::Id(99),
        );
        match sent {
            Begin::Done(r) => format!("{:?}", r.map_err(|e| e.kind())),
            Begin::Blocked(_) => "blocked".to_string(),
        }
    }

    /// The woken ids, then the outcomes of the completed waits, in order.
    fn take(&mut self) -> String {
        let mut woken = Vec::new();
        self.kernel.take_woken(&mut woken);
        let mut out = format!("{woken:?}");
        let mut left = Vec::new();
        for (r, token) in std::mem::take(&mut self.waits) {
            let pid = self.receivers[r].0.pid();
            match self.kernel.wait_take(pid, token) {
                Some(WaitOutcome::Received(m)) => out += &format!(" {r}:{}", shown(m)),
                Some(WaitOutcome::Sent(s)) => out += &format!(" {r}:sent {:?}", s.is_ok()),
                None => left.push((r, token)),
            }
        }
        self.waits = left;
        out
    }

    fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.kernel.canonical(&mut out);
        out
    }
}

proptest! {
    #[test]
    fn the_fast_wait_and_hand_off_do_what_the_general_paths_do(
        capacities in proptest::collection::vec(
            prop_oneof![
                Just(Capacity::Zero),
                Just(Capacity::Bounded(1)),
                Just(Capacity::Bounded(2)),
                Just(Capacity::Unbounded),
            ],
            3,
        ),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let mut fast = World::new(&capacities);
        let mut select = World::new(&capacities);
        let mut matching = World::new(&capacities);
        for s in steps {
            let (a, b, c) = match s {
                Step::Receive(r) => (
                    format!("{:?}", fast.receive(r, How::Fast)),
                    format!("{:?}", select.receive(r, How::Select)),
                    format!("{:?}", matching.receive(r, How::Matching)),
                ),
                Step::Send(r, v) => (fast.send(r, v), select.send(r, v), matching.send(r, v)),
                Step::Take => (fast.take(), select.take(), matching.take()),
            };
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(&a, &c);
            prop_assert_eq!(fast.canonical(), select.canonical());
            if fast.waits.is_empty() && matching.waits.is_empty() {
                prop_assert_eq!(fast.canonical(), matching.canonical());
            }
        }
        let last = fast.take();
        prop_assert_eq!(&last, &select.take());
        prop_assert_eq!(&last, &matching.take());
    }
}
