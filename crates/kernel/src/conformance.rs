//! The conformance suite: the executable definition of the [`Ipc`] API.
//!
//! Every backend — the kernel's threads ([`ThreadBackend`]), the simulator's
//! processes, real OS processes — runs these same cases, so the backends cannot
//! drift apart (the idea ipc-channel applies to its platforms). A backend
//! implements [`Backend`]: "run this setup, then these roles concurrently, each
//! as its own process, and tell me how each ended". Roles use nothing but the
//! [`Ipc`] trait; they meet through *system-owned* mailboxes the setup role
//! creates (a mailbox is the only rendezvous every backend has), and hand each
//! other pids and rights in messages.
//!
//! Instantiate the whole suite for a backend with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! mkipc_kernel::conformance_tests!(mkipc_kernel::conformance::ThreadBackend);
//! ```
//!
//! A backend that cannot give a semantic returns the reason from
//! [`Backend::skip`]; the case is then reported as skipped, not passed, and the
//! backend's docs say the same.

use std::thread;
use std::time::Duration;

use crate::{
    Access, CallError, Capacity, Disposition, Ipc, IpcError, Kernel, MailboxConfig, Message,
    Notification, NotifyKind, OnFull, Owner, Pid, ReceiveError, RightKind, SendErrorKind, Sent,
    Wait,
};

/// What a role returns: `Err` with an explanation when an expectation failed.
pub type Outcome = Result<(), String>;

/// One role: code run as its own process.
pub type Role<P> = Box<dyn FnOnce(&P) -> Outcome + Send + 'static>;

/// A way to run roles as processes.
pub trait Backend {
    /// The process handle roles get.
    type Process: Ipc;
    /// Runs `setup` to completion in its own process (which stays alive until
    /// every role has ended), then runs `roles` concurrently, each in its own
    /// process; returns how each role ended, in order. A role that panicked or
    /// was killed ends in `Err`.
    fn run(&self, setup: Role<Self::Process>, roles: Vec<Role<Self::Process>>) -> Vec<Outcome>;
    /// A prefix for mailbox names, unique to this run (OS backends share one
    /// system-wide namespace between concurrent test runs).
    fn mailbox_prefix(&self) -> String {
        "conformance".to_owned()
    }
    /// Why this backend cannot run `case`, if it cannot.
    fn skip(&self, _case: &str) -> Option<&'static str> {
        None
    }
}

/// Fails the role with a message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}

/// Unwraps a result or fails the role with the error.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => {
                return Err(format!(
                    "{}:{}: `{}` failed: {:?}",
                    file!(),
                    line!(),
                    stringify!($e),
                    err
                ))
            }
        }
    };
}

fn role<P: Ipc, F: FnOnce(&P) -> Outcome + Send + 'static>(f: F) -> Role<P> {
    Box::new(f)
}

fn system_mailbox(capacity: Capacity) -> MailboxConfig {
    MailboxConfig::new(capacity).owner(Owner::System)
}

/// Runs a case and panics with every failing role's explanation.
pub fn run_case<B: Backend>(
    backend: &B,
    case: &str,
    setup: Role<B::Process>,
    roles: Vec<Role<B::Process>>,
) {
    if let Some(reason) = backend.skip(case) {
        eprintln!("conformance case `{case}` skipped on this backend: {reason}");
        return;
    }
    let results = backend.run(setup, roles);
    let failures: Vec<String> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| format!("role {i}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "conformance case `{case}` failed:\n{}",
        failures.join("\n")
    );
}

fn nothing<P: Ipc>() -> Role<P> {
    role(|_| Ok(()))
}

// ----- single-process cases -------------------------------------------------------

/// A bounded port keeps FIFO order and reports `Full` with the message back.
pub fn bounded_fifo_and_full<B: Backend>(b: &B) {
    run_case(
        b,
        "bounded_fifo_and_full",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(3)));
            for i in 0..3 {
                check!(p.try_send(port, Message::from_u64(1, i)));
            }
            let err = p
                .try_send(port, Message::from_u64(9, 99))
                .expect_err("4th send into bounded(3)");
            ensure!(
                err.kind() == SendErrorKind::Full,
                "expected Full, got {:?}",
                err.kind()
            );
            ensure!(
                err.into_message().as_u64() == Some(99),
                "the failed send must return the message"
            );
            for i in 0..3 {
                let m = check!(p.receive(port));
                ensure!(
                    m.as_u64() == Some(i),
                    "FIFO: expected {i}, got {:?}",
                    m.as_u64()
                );
            }
            ensure!(
                p.try_receive(port) == Err(ReceiveError::Empty),
                "queue should be empty"
            );
            Ok(())
        })],
    );
}

/// Zero capacity: with no receiver waiting, a send cannot complete.
pub fn zero_needs_a_receiver<B: Backend>(b: &B) {
    run_case(
        b,
        "zero_needs_a_receiver",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Zero));
            let err = p
                .try_send(port, Message::new(1, b"x"))
                .expect_err("rendezvous without receiver");
            ensure!(
                err.kind() == SendErrorKind::Full,
                "expected Full, got {:?}",
                err.kind()
            );
            let err = p
                .send_timeout(port, Message::new(1, b"y"), Duration::from_millis(20))
                .expect_err("timed");
            ensure!(
                err.kind() == SendErrorKind::TimedOut,
                "expected TimedOut, got {:?}",
                err.kind()
            );
            ensure!(&err.into_message().body[..] == b"y", "message returned");
            ensure!(
                check!(p.port_status(port)).queue_len == 0,
                "nothing buffered"
            );
            Ok(())
        })],
    );
}

/// Unbounded: a sender never waits.
pub fn unbounded_never_full<B: Backend>(b: &B) {
    run_case(
        b,
        "unbounded_never_full",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Unbounded));
            for i in 0..1000 {
                check!(p.try_send(port, Message::from_u64(1, i)));
            }
            ensure!(check!(p.port_status(port)).queue_len == 1000, "all queued");
            for i in 0..1000 {
                ensure!(check!(p.try_receive(port)).as_u64() == Some(i), "FIFO");
            }
            Ok(())
        })],
    );
}

/// Timed receive on an empty queue times out; `try_receive` reports `Empty`.
pub fn receive_timeouts<B: Backend>(b: &B) {
    run_case(
        b,
        "receive_timeouts",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(1)));
            ensure!(p.try_receive(port) == Err(ReceiveError::Empty), "empty");
            ensure!(
                p.receive_timeout(port, Duration::from_millis(10)) == Err(ReceiveError::TimedOut),
                "timed out"
            );
            Ok(())
        })],
    );
}

/// Full-queue policies: drop newest, drop oldest.
pub fn drop_policies<B: Backend>(b: &B) {
    run_case(
        b,
        "drop_policies",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(2)));
            check!(p.try_send(port, Message::from_u64(1, 1)));
            check!(p.try_send(port, Message::from_u64(1, 2)));
            ensure!(
                check!(p.send_with(port, Message::from_u64(1, 3), OnFull::DropNewest))
                    == Sent::Dropped,
                "dropped"
            );
            ensure!(
                check!(p.send_with(port, Message::from_u64(1, 4), OnFull::DropOldest))
                    == Sent::Displaced,
                "displaced"
            );
            ensure!(
                check!(p.receive(port)).as_u64() == Some(2),
                "1 was displaced"
            );
            ensure!(check!(p.receive(port)).as_u64() == Some(4), "3 was dropped");
            ensure!(
                check!(p.port_status(port)).messages_dropped == 2,
                "two drops counted"
            );
            Ok(())
        })],
    );
}

/// Names: a deallocated name is invalid; a destroyed port's send right is a dead name.
pub fn names_and_dead_names<B: Backend>(b: &B) {
    run_case(
        b,
        "names_and_dead_names",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(1)));
            let once = check!(p.make_right(port, Disposition::MakeSendOnce));
            ensure!(check!(p.rights(once)).send_once, "send-once right");
            check!(p.deallocate(once));
            ensure!(
                p.rights(once) == Err(IpcError::InvalidName),
                "stale name must be invalid"
            );
            check!(p.make_send(port));
            ensure!(
                check!(p.rights(port)).send == 1 && check!(p.rights(port)).receive,
                "receive + send"
            );
            check!(p.mod_refs(port, RightKind::Receive, -1));
            let r = check!(p.rights(port));
            ensure!(
                r.dead == 1 && !r.receive && r.send == 0,
                "send right became a dead name: {r:?}"
            );
            let err = p
                .send(port, Message::new(1, b""))
                .expect_err("send to dead name");
            ensure!(
                err.kind() == SendErrorKind::DestinationDead,
                "expected DestinationDead, got {:?}",
                err.kind()
            );
            check!(p.deallocate(port));
            ensure!(
                p.rights(port) == Err(IpcError::InvalidName),
                "dead name released"
            );
            Ok(())
        })],
    );
}

/// A failed send leaves the carried rights with the sender.
pub fn failed_send_keeps_rights<B: Backend>(b: &B) {
    run_case(
        b,
        "failed_send_keeps_rights",
        nothing(),
        vec![role(|p: &B::Process| {
            let full = check!(p.port_allocate(Capacity::Bounded(1)));
            check!(p.try_send(full, Message::new(0, b"")));
            let carried = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.make_send(carried));
            let msg = Message::new(1, b"").with_right(carried, Disposition::MoveSend);
            let err = p.try_send(full, msg).expect_err("full");
            ensure!(err.kind() == SendErrorKind::Full, "Full");
            ensure!(
                check!(p.rights(carried)).send == 1,
                "the moved send right is still ours"
            );
            ensure!(
                err.into_message().rights[0].name == carried,
                "returned message names it"
            );
            Ok(())
        })],
    );
}

/// Select and port sets receive the oldest message among several ports.
pub fn select_and_port_sets<B: Backend>(b: &B) {
    run_case(
        b,
        "select_and_port_sets",
        nothing(),
        vec![role(|p: &B::Process| {
            let a = check!(p.port_allocate(Capacity::Unbounded));
            let c = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.send(c, Message::new(1, b"first")));
            check!(p.send(a, Message::new(2, b"second")));
            let m = check!(p.select(&[a, c]));
            ensure!(
                m.id == 1 && m.received_on() == Some(c),
                "oldest first, from c: {m:?}"
            );
            let set = check!(p.port_set_allocate());
            check!(p.port_set_insert(set, a));
            check!(p.port_set_insert(set, c));
            let m = check!(p.receive(set));
            ensure!(
                m.id == 2 && m.received_on() == Some(a),
                "from the set's member a: {m:?}"
            );
            ensure!(p.try_receive(set) == Err(ReceiveError::Empty), "set empty");
            Ok(())
        })],
    );
}

/// A no-senders notification arrives when the last send right goes away.
pub fn no_senders_notification<B: Backend>(b: &B) {
    run_case(
        b,
        "no_senders_notification",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Unbounded));
            let notify = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.make_send(port));
            check!(p.request_notification(port, NotifyKind::NoSenders, notify));
            ensure!(p.try_receive(notify) == Err(ReceiveError::Empty), "not yet");
            check!(p.deallocate(port));
            let n = check!(p.receive_timeout(notify, Duration::from_secs(5)));
            ensure!(
                n.notification() == Some(Notification::NoSenders(port)),
                "got {:?}",
                n.notification()
            );
            Ok(())
        })],
    );
}

// ----- cases across processes -------------------------------------------------------

/// Producer and consumer through a bounded system mailbox: all messages, in order.
pub fn mailbox_producer_consumer<B: Backend>(b: &B) {
    let name = format!("{}-pc", b.mailbox_prefix());
    let (n1, n2, n3) = (name.clone(), name.clone(), name);
    run_case(
        b,
        "mailbox_producer_consumer",
        role(move |p: &B::Process| {
            p.mailbox_create(&n1, system_mailbox(Capacity::Bounded(2)))
                .map(drop)
                .map_err(|e| format!("{e}"))
        }),
        vec![
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&n2));
                for i in 0..20 {
                    check!(p.send(mb, Message::from_u64(1, i)));
                }
                Ok(())
            }),
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&n3));
                for i in 0..20 {
                    let m = check!(p.receive(mb));
                    ensure!(m.as_u64() == Some(i), "expected {i}, got {:?}", m.as_u64());
                }
                Ok(())
            }),
        ],
    );
}

/// Several receivers on one mailbox: each message is delivered exactly once.
pub fn mailbox_each_message_once<B: Backend>(b: &B) {
    let jobs = format!("{}-jobs", b.mailbox_prefix());
    let done = format!("{}-done", b.mailbox_prefix());
    let (j0, d0) = (jobs.clone(), done.clone());
    let setup = role(move |p: &B::Process| {
        check!(p.mailbox_create(&j0, system_mailbox(Capacity::Bounded(4))));
        check!(p.mailbox_create(&d0, system_mailbox(Capacity::Unbounded)));
        Ok(())
    });
    const N: u64 = 30;
    let producer = {
        let jobs = jobs.clone();
        role(move |p: &B::Process| {
            let mb = check!(p.mailbox_open(&jobs));
            for i in 0..N {
                check!(p.send(mb, Message::from_u64(1, i)));
            }
            for _ in 0..2 {
                check!(p.send(mb, Message::from_u64(2, 0))); // stop
            }
            Ok(())
        })
    };
    let worker = |jobs: String, done: String| {
        role(move |p: &B::Process| {
            let mb = check!(p.mailbox_open(&jobs));
            let out = check!(p.mailbox_open(&done));
            loop {
                let m = check!(p.receive(mb));
                if m.id == 2 {
                    return p
                        .send(out, Message::from_u64(2, 0))
                        .map_err(|e| format!("{e}"));
                }
                check!(p.send(out, m));
            }
        })
    };
    let checker = {
        let done = done.clone();
        role(move |p: &B::Process| {
            let out = check!(p.mailbox_open(&done));
            let mut seen = vec![0u32; N as usize];
            let mut stops = 0;
            while stops < 2 {
                let m = check!(p.receive(out));
                match m.id {
                    2 => stops += 1,
                    _ => seen[m.as_u64().unwrap_or(u64::MAX).min(N - 1) as usize] += 1,
                }
            }
            ensure!(
                seen.iter().all(|&c| c == 1),
                "each job exactly once: {seen:?}"
            );
            Ok(())
        })
    };
    run_case(
        b,
        "mailbox_each_message_once",
        setup,
        vec![
            producer,
            worker(jobs.clone(), done.clone()),
            worker(jobs, done),
            checker,
        ],
    );
}

/// Zero capacity across processes: the sender returns only after the receiver took the message.
pub fn zero_capacity_rendezvous<B: Backend>(b: &B) {
    let zero = format!("{}-zero", b.mailbox_prefix());
    let acks = format!("{}-acks", b.mailbox_prefix());
    let (z0, a0, z1, a1, z2, a2) = (
        zero.clone(),
        acks.clone(),
        zero.clone(),
        acks.clone(),
        zero,
        acks,
    );
    run_case(
        b,
        "zero_capacity_rendezvous",
        role(move |p: &B::Process| {
            check!(p.mailbox_create(&z0, system_mailbox(Capacity::Zero)));
            check!(p.mailbox_create(&a0, system_mailbox(Capacity::Unbounded)));
            Ok(())
        }),
        vec![
            role(move |p: &B::Process| {
                let z = check!(p.mailbox_open(&z1));
                let a = check!(p.mailbox_open(&a1));
                for i in 0..5 {
                    check!(p.send(z, Message::from_u64(1, i)));
                    check!(p.send(a, Message::from_u64(2, i))); // "my send of i returned"
                }
                Ok(())
            }),
            role(move |p: &B::Process| {
                let z = check!(p.mailbox_open(&z2));
                let a = check!(p.mailbox_open(&a2));
                for i in 0..5 {
                    // The sender cannot have finished sending i before we take it.
                    ensure!(
                        p.try_receive(a) == Err(ReceiveError::Empty),
                        "sender returned before rendezvous {i}"
                    );
                    ensure!(check!(p.receive(z)).as_u64() == Some(i), "message {i}");
                    ensure!(check!(p.receive(a)).as_u64() == Some(i), "ack {i}");
                }
                Ok(())
            }),
        ],
    );
}

/// Direct addressing: receive_from_any names the sender; receive_from sees end of stream.
pub fn direct_addressing_and_end_of_stream<B: Backend>(b: &B) {
    let pids = format!("{}-pids", b.mailbox_prefix());
    let (p0, p1, p2) = (pids.clone(), pids.clone(), pids);
    run_case(
        b,
        "direct_addressing_and_end_of_stream",
        role(move |p: &B::Process| {
            p.mailbox_create(&p0, system_mailbox(Capacity::Unbounded))
                .map(drop)
                .map_err(|e| format!("{e}"))
        }),
        vec![
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&p1));
                let receiver = Pid(check!(p.receive(mb)).as_u64().unwrap_or(0) as u32);
                for i in 0..3 {
                    check!(p.send_to(receiver, Message::from_u64(1, i)));
                }
                Ok(()) // exiting closes the link: the receiver sees end of stream
            }),
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&p2));
                check!(p.send(mb, Message::from_u64(0, u64::from(p.pid().0))));
                let first = check!(p.receive_from_any());
                let sender = check!(first.sender().ok_or("no sender"));
                ensure!(first.as_u64() == Some(0), "first message");
                for i in 1..3 {
                    ensure!(
                        check!(p.receive_from(sender)).as_u64() == Some(i),
                        "message {i}"
                    );
                }
                let end = p.receive_from_with(sender, Wait::For(Duration::from_secs(10)));
                ensure!(
                    end == Err(ReceiveError::SourceDead),
                    "end of stream, got {end:?}"
                );
                Ok(())
            }),
        ],
    );
}

/// Rights travel in messages: a send right handed over lets the peer send; RPC works.
pub fn rights_transfer_and_rpc<B: Backend>(b: &B) {
    let svc = format!("{}-svc", b.mailbox_prefix());
    let (s0, s1, s2) = (svc.clone(), svc.clone(), svc);
    run_case(
        b,
        "rights_transfer_and_rpc",
        role(move |p: &B::Process| {
            p.mailbox_create(&s0, system_mailbox(Capacity::Unbounded))
                .map(drop)
                .map_err(|e| format!("{e}"))
        }),
        vec![
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&s1));
                let port = check!(p.port_allocate(Capacity::Bounded(4)));
                check!(p.send(
                    mb,
                    Message::new(1, b"").with_right(port, Disposition::MakeSend)
                ));
                let request = check!(p.receive(port));
                ensure!(&request.body[..] == b"ping", "request body");
                check!(p.reply(&request, Message::new(2, b"pong")));
                let dropped = check!(p.receive(port));
                if let Some(r) = dropped.reply {
                    check!(p.deallocate(r.name)); // refuse to answer
                }
                Ok(())
            }),
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&s2));
                let m = check!(p.receive(mb));
                let server = check!(m.rights.first().ok_or("no right")).name;
                ensure!(check!(p.rights(server)).send == 1, "received a send right");
                let reply = check!(p.call(server, Message::new(1, b"ping")));
                ensure!(&reply.body[..] == b"pong", "reply body");
                let refused = p.call(server, Message::new(1, b"again"));
                ensure!(
                    refused == Err(CallError::NoReply),
                    "dropped reply right => NoReply, got {refused:?}"
                );
                Ok(())
            }),
        ],
    );
}

/// A mailbox owned by a task dies with it; a receiver waiting on it gets `SourceDead`.
pub fn owned_mailbox_dies_with_owner<B: Backend>(b: &B) {
    let to_user = format!("{}-to-user", b.mailbox_prefix());
    let to_owner = format!("{}-to-owner", b.mailbox_prefix());
    let owned = format!("{}-owned", b.mailbox_prefix());
    let (u0, w0) = (to_user.clone(), to_owner.clone());
    let setup = role(move |p: &B::Process| {
        check!(p.mailbox_create(&u0, system_mailbox(Capacity::Unbounded)));
        check!(p.mailbox_create(&w0, system_mailbox(Capacity::Unbounded)));
        Ok(())
    });
    let owner = {
        let (to_user, to_owner, owned) = (to_user.clone(), to_owner.clone(), owned.clone());
        role(move |p: &B::Process| {
            let tell = check!(p.mailbox_open(&to_user));
            let hear = check!(p.mailbox_open(&to_owner));
            check!(p.mailbox_create(
                &owned,
                MailboxConfig::new(Capacity::Bounded(1)).default_access(Access::ALL)
            ));
            check!(p.send(tell, Message::new(1, b"created")));
            ensure!(check!(p.receive(hear)).id == 2, "user opened it");
            Ok(()) // exit: the mailbox is destroyed
        })
    };
    let user = role(move |p: &B::Process| {
        let hear = check!(p.mailbox_open(&to_user));
        let tell = check!(p.mailbox_open(&to_owner));
        ensure!(check!(p.receive(hear)).id == 1, "owner created it");
        let mb = check!(p.mailbox_open(&owned));
        check!(p.send(tell, Message::new(2, b"opened")));
        let r = p.receive_with(mb, Wait::For(Duration::from_secs(10)));
        ensure!(
            r == Err(ReceiveError::SourceDead),
            "owner exit must end the mailbox: {r:?}"
        );
        Ok(())
    });
    run_case(b, "owned_mailbox_dies_with_owner", setup, vec![owner, user]);
}

/// Every case, by name.
pub const CASES: &[&str] = &[
    "bounded_fifo_and_full",
    "zero_needs_a_receiver",
    "unbounded_never_full",
    "receive_timeouts",
    "drop_policies",
    "names_and_dead_names",
    "failed_send_keeps_rights",
    "select_and_port_sets",
    "no_senders_notification",
    "mailbox_producer_consumer",
    "mailbox_each_message_once",
    "zero_capacity_rendezvous",
    "direct_addressing_and_end_of_stream",
    "rights_transfer_and_rpc",
    "owned_mailbox_dies_with_owner",
];

/// Instantiates every conformance case as a `#[test]` for a backend expression.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@cases $backend;
            bounded_fifo_and_full, zero_needs_a_receiver, unbounded_never_full, receive_timeouts,
            drop_policies, names_and_dead_names, failed_send_keeps_rights, select_and_port_sets,
            no_senders_notification, mailbox_producer_consumer, mailbox_each_message_once,
            zero_capacity_rendezvous, direct_addressing_and_end_of_stream, rights_transfer_and_rpc,
            owned_mailbox_dies_with_owner);
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$backend);
            }
        )*
    };
}

/// The kernel's own backend: each role is a [`Task`](crate::Task) on its own OS thread,
/// in a fresh [`Kernel`] per run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadBackend;

impl Backend for ThreadBackend {
    type Process = crate::Task;

    fn run(&self, setup: Role<crate::Task>, roles: Vec<Role<crate::Task>>) -> Vec<Outcome> {
        let kernel = Kernel::new();
        let setup_task = kernel.spawn_task();
        if let Err(e) = setup(&setup_task) {
            return vec![Err(format!("setup failed: {e}"))];
        }
        let handles: Vec<_> = roles
            .into_iter()
            .map(|role| {
                let task = kernel.spawn_task();
                thread::spawn(move || role(&task))
            })
            .collect();
        let results = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("role panicked".to_owned())))
            .collect();
        drop(setup_task);
        results
    }
}

#[cfg(test)]
mod thread_backend {
    crate::conformance_tests!(super::ThreadBackend);
}
