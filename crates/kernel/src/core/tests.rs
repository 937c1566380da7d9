//! Unit tests of the core's internals: its counters, for cases too large to
//! build through the public API in a test's time (65,537 tasks x 65,534
//! references); `wait_take`'s short path against its general one.

use super::space::Obj;
use super::{Begin, Destination, Kernel, Source, WaitOutcome, WaitToken, Waker};
use crate::name::RightKind;
use crate::{Capacity, Ipc, Message, NotifyKind, OnFull, Pid, PortName, Task};

/// Regression: a port's total of send rights was a `u32`; 65,537 tasks with
/// 65,534 references each wrapped it (a debug panic, and in release a
/// spurious no-senders notification). The total now has room for any count
/// of tasks; here it is set just below where a `u32` ends, as that many
/// tasks would leave it.
#[test]
fn send_right_total_does_not_wrap_past_u32() {
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task.port_allocate(Capacity::Unbounded).unwrap();
    let notify = task.port_allocate(Capacity::Unbounded).unwrap();
    let send = task.make_send(port).unwrap();
    task.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    {
        let mut st = kernel.lock();
        let id = st.receive_right(task.pid(), port).unwrap();
        // As if 65,537 other tasks held 65,534 references each (minus the
        // one this task holds, already counted).
        st.ports.get_mut(id).unwrap().send_rights = u32::MAX.into();
    }
    // One more reference, then one fewer: the total crosses 2^32 and back.
    task.mod_refs(send, RightKind::Send, 1).unwrap();
    task.mod_refs(send, RightKind::Send, -1).unwrap();
    assert!(
        task.try_receive(notify).is_err(),
        "no-senders fired while senders remain"
    );
    {
        let mut st = kernel.lock();
        let id = st.receive_right(task.pid(), port).unwrap();
        assert_eq!(st.ports.get(id).unwrap().send_rights, u64::from(u32::MAX));
    }
    // The status saturates instead of wrapping.
    assert_eq!(task.port_status(port).unwrap().send_rights, u32::MAX);
    let Ok(Obj::Port { send: refs, .. }) = kernel.lock().resolve(task.pid(), send) else {
        panic!("the name still holds the send right");
    };
    assert_eq!(refs, 1);
}

/// What a kernel shows of itself after a step: the woken ids and the
/// canonical state.
fn seen(kernel: &Kernel) -> (Vec<u64>, Vec<u8>) {
    let mut woken = Vec::new();
    kernel.take_woken(&mut woken);
    let mut state = Vec::new();
    kernel.canonical(&mut state);
    (woken, state)
}

fn shown(outcome: Option<WaitOutcome>) -> String {
    match outcome {
        Some(WaitOutcome::Received(m)) => {
            format!("{:?}", m.map(|m| (m.id, m.as_u64(), m.trailer())))
        }
        other => format!("{other:?}"),
    }
}

/// A receiver with a port of capacity `c` and waits on it, a sender with a
/// send right to it.
struct Waits {
    kernel: Kernel,
    receiver: Task,
    port: PortName,
    sender: Task,
    to: PortName,
    tokens: Vec<WaitToken>,
}

impl Waits {
    fn new(c: Capacity) -> Waits {
        let kernel = Kernel::new();
        let receiver = kernel.spawn_task();
        let port = receiver.port_allocate(c).unwrap();
        receiver.register("r", port).unwrap();
        let sender = kernel.spawn_task();
        let to = sender.look_up("r").unwrap();
        Waits {
            kernel,
            receiver,
            port,
            sender,
            to,
            tokens: Vec::new(),
        }
    }

    fn wait(&mut self) {
        let pid = self.receiver.pid();
        match self
            .kernel
            .receive_begin(pid, Source::Name(self.port), true, &|| Waker::Id(1))
        {
            Begin::Blocked(token) => self.tokens.push(token),
            Begin::Done(_) => panic!("the queue is empty"),
        }
    }

    fn send(&self, v: u64, on_full: OnFull) {
        let pid: Pid = self.sender.pid();
        let _ = self.kernel.send_begin(
            pid,
            Destination::Name(self.to),
            Message::from_u64(1, v),
            on_full,
            &|| Waker::Id(2),
        );
    }
}

/// `wait_take` of a wait handed the one message held from its port takes
/// a short path (`State::take_lone_handed`); here every program below is
/// run to its takes, then each take is made on two copies of the kernel,
/// one by the short path where it applies and one by the general path:
/// the same outcomes, woken ids and canonical state after each. The
/// programs include the cases the short path must leave alone (several
/// handed messages held, a sender parked behind the place, a
/// send-possible request) and the ones it takes (one wait, any capacity).
#[test]
fn the_lone_handed_take_does_what_the_general_path_does() {
    let capacities = [
        Capacity::Zero,
        Capacity::Bounded(1),
        Capacity::Bounded(2),
        Capacity::Unbounded,
    ];
    // (waits, sends that may block, sends that fail when full, a
    // send-possible request)
    let programs = [
        (1, 1, 0, false),
        (2, 2, 0, false),
        (2, 1, 0, false),
        (1, 1, 1, false),
        (1, 2, 0, false),
        (3, 3, 1, false),
        (1, 1, 0, true),
        (2, 2, 0, true),
    ];
    for c in capacities {
        for (waits, sends, failing, request) in programs {
            let mut w = Waits::new(c);
            for _ in 0..waits {
                w.wait();
            }
            if request {
                let notify = w.sender.port_allocate(Capacity::Unbounded).unwrap();
                let _ = w
                    .sender
                    .request_notification(w.to, NotifyKind::SendPossible, notify);
            }
            for v in 0..sends {
                w.send(v, OnFull::Timeout(std::time::Duration::from_secs(60)));
            }
            for v in 0..failing {
                w.send(100 + v, OnFull::Fail);
            }
            let _ = seen(&w.kernel);
            let general = Kernel::from_snapshot(&w.kernel.snapshot());
            let pid = w.receiver.pid();
            for &token in &w.tokens {
                let a = shown(w.kernel.wait_take_with(pid, token, true));
                let b = shown(general.wait_take_with(pid, token, false));
                let case = format!("{c:?}, program {waits}/{sends}/{failing}/{request}");
                assert_eq!(a, b, "{case}: outcome");
                assert_eq!(seen(&w.kernel), seen(&general), "{case}: state");
            }
        }
    }
}
