//! Helpers shared by the thread tests (`zero.rs`, `bounded.rs`, `unbounded.rs`, `threads.rs`).
//!
//! Sleeps never decide an outcome: a test waits (with a bounded deadline)
//! until `port_status` shows the threads it expects to be blocked, then acts.

#![allow(dead_code)] // each test file uses its own subset

use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::introspect::KernelStats;
use mkipc_kernel::{Capacity, Ipc, Kernel, PortName, Task};

/// Polls `cond` until it holds; fails the test after 5 s.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A receiving task with a port of `capacity`, and a sending task with a send
/// right to it: `(receiver, its port, sender, sender's name for the port)`.
pub fn pair(k: &Kernel, capacity: Capacity) -> (Task, PortName, Task, PortName) {
    let rx = k.spawn_task();
    let port = rx.port_allocate(capacity).unwrap();
    rx.register("rx", port).unwrap();
    let tx = k.spawn_task();
    let to_rx = tx.look_up("rx").unwrap();
    (rx, port, tx, to_rx)
}

/// Runs a closure when dropped, also while unwinding: releases threads that
/// wait for a stop message or loop until a port dies, so a failed assertion
/// fails the test instead of leaving the thread scope waiting forever.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// No message is queued or parked, and nobody is blocked.
pub fn assert_clean(k: &Kernel) {
    let s = k.stats();
    assert_eq!(
        (s.messages, s.blocked_senders, s.blocked_receivers),
        (0, 0, 0),
        "{s:?}"
    );
}

/// After every task has exited, the kernel holds nothing.
pub fn assert_empty(k: &Kernel) {
    assert_eq!(k.stats(), KernelStats::default());
}

/// Several senders on their own threads push `per_sender` messages each into
/// one port of `capacity`: each sender's messages must arrive in its order,
/// tagged with its pid, every message exactly once, and nothing may remain.
pub fn fifo_per_sender(capacity: Capacity, senders: usize, per_sender: u64) {
    use mkipc_kernel::{Message, ReceiveError};
    let k = Kernel::new();
    let rx = k.spawn_task();
    let port = rx.port_allocate(capacity).unwrap();
    rx.register("rx", port).unwrap();
    let tasks: Vec<Task> = (0..senders).map(|_| k.spawn_task()).collect();
    thread::scope(|s| {
        for (i, t) in tasks.iter().enumerate() {
            s.spawn(move || {
                let to_rx = t.look_up("rx").unwrap();
                for j in 0..per_sender {
                    t.send(to_rx, Message::from_u64(i as u32, j)).unwrap();
                }
            });
        }
        let mut next = vec![0u64; senders];
        for _ in 0..senders as u64 * per_sender {
            let m = rx.receive(port).unwrap();
            let i = m.id as usize;
            assert_eq!(m.as_u64(), Some(next[i]), "sender {i} out of order");
            assert_eq!(m.sender(), Some(tasks[i].pid()));
            next[i] += 1;
        }
        assert_eq!(next, vec![per_sender; senders]);
    });
    assert_eq!(rx.try_receive(port).unwrap_err(), ReceiveError::Empty);
    assert_clean(&k);
}

/// How [`mailbox_each_message_once`] ends its receivers.
pub enum StopReceivers {
    /// The owner sends one "stop" message (id 2) per receiver.
    StopMessages,
    /// The owner destroys the mailbox once every receiver waits again.
    DestroyMailbox,
}

/// `senders` threads each send `per_sender` distinct values through one
/// mailbox made with `config`; `receivers` threads take them. Every value
/// must arrive exactly once. Returns the kernel, the owner task and its name
/// for the mailbox, for the caller's own checks.
pub fn mailbox_each_message_once(
    config: mkipc_kernel::MailboxConfig,
    senders: u64,
    receivers: usize,
    per_sender: u64,
    stop: StopReceivers,
) -> (Kernel, Task, PortName) {
    use mkipc_kernel::Message;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let k = Kernel::new();
    let owner = k.spawn_task();
    let mb = owner.mailbox_create("mb", config).unwrap();
    let sending: Vec<Task> = (0..senders).map(|_| k.spawn_task()).collect();
    let receiving: Vec<Task> = (0..receivers).map(|_| k.spawn_task()).collect();
    let seen = Mutex::new(vec![0u8; (senders * per_sender) as usize]);
    let received = AtomicUsize::new(0);
    thread::scope(|s| {
        let _release = OnDrop(|| {
            if thread::panicking() {
                let _ = owner.mailbox_destroy(mb);
            }
        });
        for (i, t) in sending.iter().enumerate() {
            s.spawn(move || {
                let mb = t.mailbox_open("mb").unwrap();
                for j in 0..per_sender {
                    t.send(mb, Message::from_u64(1, i as u64 * per_sender + j))
                        .unwrap();
                }
            });
        }
        for t in &receiving {
            let (seen, received) = (&seen, &received);
            s.spawn(move || {
                let mb = t.mailbox_open("mb").unwrap();
                // Ends on a stop message, or when the mailbox is destroyed.
                while let Ok(m) = t.receive(mb) {
                    if m.id == 2 {
                        break;
                    }
                    seen.lock().unwrap()[m.as_u64().unwrap() as usize] += 1;
                    received.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        wait_until("every message is received", || {
            received.load(Ordering::SeqCst) == (senders * per_sender) as usize
        });
        match stop {
            StopReceivers::StopMessages => {
                for _ in 0..receivers {
                    owner.send(mb, Message::new(2, b"stop")).unwrap();
                }
            }
            StopReceivers::DestroyMailbox => {
                wait_until("all receivers wait again", || {
                    owner.port_status(mb).unwrap().blocked_receivers == receivers
                });
                owner.mailbox_destroy(mb).unwrap();
            }
        }
    });
    let seen = seen.into_inner().unwrap();
    assert!(seen.iter().all(|&n| n == 1), "lost or duplicated messages");
    (k, owner, mb)
}

/// A waker that does nothing, for driving the non-blocking core
/// (`send_begin`, `receive_begin`) from one thread.
#[allow(dead_code)]
pub fn noop_waker() -> mkipc_kernel::runtime::Waker {
    struct Noop;
    impl mkipc_kernel::runtime::Wake for Noop {
        fn wake(&self) {}
    }
    std::sync::Arc::new(Noop).into()
}
