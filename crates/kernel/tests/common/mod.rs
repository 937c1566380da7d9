//! Helpers shared by the thread tests (`zero.rs`, `bounded.rs`, `unbounded.rs`, `threads.rs`).
//!
//! Sleeps never decide an outcome: a test waits (with a bounded deadline)
//! until `port_status` shows the threads it expects to be blocked, then acts.

#![allow(dead_code)] // each test file uses its own subset

use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::{Capacity, Ipc, Kernel, KernelStats, PortName, Task};

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
