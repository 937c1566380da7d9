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
