//! Every timed call of the [`Ipc`] trait, as one list a backend's test
//! drives: `a` makes the call with a timeout, `b` lets it complete. With
//! `Duration::MAX` each must behave as a blocking call (it returns when `b`
//! acts, and never panics computing its deadline); with `Duration::ZERO`
//! as a try (it returns at once, timed out). A new timed call of the trait
//! gets one entry here, and every backend's deadline test covers it
//! (`crates/kernel/tests/deadlines.rs`, `crates/sim/tests/deadlines.rs`).
//!
//! The backend sets up the [`Names`] its own way (threads, simulated
//! processes), since how two processes meet differs between backends.
//!
//! ```
//! use mkipc_kernel::conformance::deadlines::timed_calls;
//! use mkipc_kernel::Task;
//!
//! let calls = timed_calls::<Task>();
//! assert!(calls.iter().any(|(name, _, _)| name.contains("receive")));
//! ```

use std::time::Duration;

use crate::{
    CallError, Ipc, Message, OnFull, Pid, PortName, ReceiveError, SendError, SendErrorKind, Wait,
};

/// The names both sides use, set up by the backend's test.
#[derive(Clone, Copy, Debug)]
pub struct Names {
    /// The waiting side.
    pub a_pid: Pid,
    /// The side that lets it complete.
    pub b_pid: Pid,
    /// `a`'s receive rights, and `b`'s send rights to them.
    pub a_port: PortName,
    /// A second receive right of `a` (for select).
    pub a_port2: PortName,
    /// `b`'s send right to `a_port`.
    pub to_a_port: PortName,
    /// `b`'s send right to `a_port2`.
    pub to_a_port2: PortName,
    /// `b`'s zero-capacity port, and `a`'s send right to it.
    pub b_zero: PortName,
    /// `a`'s send right to `b_zero`.
    pub to_b_zero: PortName,
    /// `b`'s server port (unbounded), and `a`'s send right to it.
    pub b_server: PortName,
    /// `a`'s send right to `b_server`.
    pub to_b_server: PortName,
}

/// How a timed call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It completed.
    Done,
    /// It timed out.
    TimedOut,
    /// It failed otherwise (the error, printed).
    Other(String),
}

fn send_outcome<T>(r: Result<T, SendError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Done,
        Err(e) if e.kind() == SendErrorKind::TimedOut => Outcome::TimedOut,
        Err(e) => Outcome::Other(format!("{:?}", e.kind())),
    }
}

fn receive_outcome(r: Result<Message, ReceiveError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Done,
        Err(ReceiveError::TimedOut) => Outcome::TimedOut,
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

fn call_outcome(r: Result<Message, CallError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Done,
        Err(CallError::Receive(e)) => receive_outcome(Err(e)),
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

/// How `a` makes a timed call with a timeout.
pub type Call<P> = fn(&P, &Names, Duration) -> Outcome;
/// How `b` lets the call complete once `a` waits.
pub type Unblock<P> = fn(&P, &Names);

/// Every timed call of the `Ipc` trait: its name, how `a` makes it, and
/// how `b` lets it complete once it waits.
pub fn timed_calls<P: Ipc>() -> Vec<(&'static str, Call<P>, Unblock<P>)> {
    vec![
        entry(
            "send_timeout",
            |a, n, d| send_outcome(a.send_timeout(n.to_b_zero, Message::from_u64(1, 42), d)),
            |b, n| drop(b.receive(n.b_zero).unwrap()),
        ),
        entry(
            "send_with(OnFull::Timeout)",
            |a, n, d| {
                send_outcome(a.send_with(n.to_b_zero, Message::from_u64(1, 42), OnFull::Timeout(d)))
            },
            |b, n| drop(b.receive(n.b_zero).unwrap()),
        ),
        entry(
            "send_to_timeout",
            |a, n, d| send_outcome(a.send_to_timeout(n.b_pid, Message::from_u64(1, 42), d)),
            |b, n| drop(b.receive_from(n.a_pid).unwrap()),
        ),
        entry(
            "send_to_with(OnFull::Timeout)",
            |a, n, d| {
                send_outcome(a.send_to_with(n.b_pid, Message::from_u64(1, 42), OnFull::Timeout(d)))
            },
            |b, n| drop(b.receive_from(n.a_pid).unwrap()),
        ),
        entry(
            "receive_timeout",
            |a, n, d| receive_outcome(a.receive_timeout(n.a_port, d)),
            |b, n| b.send(n.to_a_port, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_with(Wait::For)",
            |a, n, d| receive_outcome(a.receive_with(n.a_port, Wait::For(d))),
            |b, n| b.send(n.to_a_port, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "select_timeout",
            |a, n, d| receive_outcome(a.select_timeout(&[n.a_port, n.a_port2], d)),
            |b, n| b.send(n.to_a_port2, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "select_with(Wait::For)",
            |a, n, d| receive_outcome(a.select_with(&[n.a_port, n.a_port2], Wait::For(d))),
            |b, n| b.send(n.to_a_port2, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "call_timeout",
            |a, n, d| call_outcome(a.call_timeout(n.to_b_server, Message::from_u64(1, 42), d)),
            |b, n| {
                let request = b.receive(n.b_server).unwrap();
                b.reply(&request, Message::from_u64(2, 43)).unwrap();
            },
        ),
        entry(
            "call_with(Wait::For)",
            |a, n, d| {
                call_outcome(a.call_with(n.to_b_server, Message::from_u64(1, 42), Wait::For(d)))
            },
            |b, n| {
                let request = b.receive(n.b_server).unwrap();
                b.reply(&request, Message::from_u64(2, 43)).unwrap();
            },
        ),
        entry(
            "receive_from_timeout",
            |a, n, d| receive_outcome(a.receive_from_timeout(n.b_pid, d)),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_from_with(Wait::For)",
            |a, n, d| receive_outcome(a.receive_from_with(n.b_pid, Wait::For(d))),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_from_any_timeout",
            |a, _, d| receive_outcome(a.receive_from_any_timeout(d)),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
        entry(
            "receive_from_any_with(Wait::For)",
            |a, _, d| receive_outcome(a.receive_from_any_with(Wait::For(d))),
            |b, n| b.send_to(n.a_pid, Message::from_u64(1, 42)).unwrap(),
        ),
    ]
}

fn entry<P: Ipc>(
    name: &'static str,
    call: Call<P>,
    unblock: Unblock<P>,
) -> (&'static str, Call<P>, Unblock<P>) {
    (name, call, unblock)
}
