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

use crate::ipc::Owner;
use crate::{Capacity, Ipc, Kernel, MailboxConfig};

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

mod across;
mod changes;
pub mod deadlines;
mod single;

pub use across::*;
pub use changes::*;
pub use single::*;

/// Every case, by name.
pub const CASES: &[&str] = &[
    "bounded_fifo_and_full",
    "zero_needs_a_receiver",
    "unbounded_never_full",
    "receive_timeouts",
    "drop_policies",
    "names_and_dead_names",
    "mailbox_and_service_names",
    "failed_send_keeps_rights",
    "select_and_port_sets",
    "no_senders_notification",
    "mailbox_producer_consumer",
    "mailbox_each_message_once",
    "zero_capacity_rendezvous",
    "direct_addressing_and_end_of_stream",
    "rights_transfer_and_rpc",
    "owned_mailbox_dies_with_owner",
    "send_possible_notification",
    "select_wakes_on_send_possible",
    "peek_leaves_the_message",
    "selective_receive",
    "close_but_drain",
    "priority_select",
    "selective_receive_waits_for_a_match",
    "no_senders_across_processes",
    "port_destroyed_notification",
    "mailbox_grants",
    "set_capacity_across_processes",
    "link_capacity_across_processes",
    "dead_name_request_lapses_when_the_right_moves",
    "notification_requests_travel_with_the_receive_right",
    "mailbox_capacity_across_processes",
    "mailbox_grant_taken_back",
    "no_senders_request_moves_with_port_destroyed",
];

/// Instantiates every conformance case as a `#[test]` for a backend expression.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@cases $backend;
            bounded_fifo_and_full, zero_needs_a_receiver, unbounded_never_full, receive_timeouts,
            drop_policies, names_and_dead_names, mailbox_and_service_names, failed_send_keeps_rights, select_and_port_sets,
            no_senders_notification, mailbox_producer_consumer, mailbox_each_message_once,
            zero_capacity_rendezvous, direct_addressing_and_end_of_stream, rights_transfer_and_rpc,
            owned_mailbox_dies_with_owner, send_possible_notification,
            select_wakes_on_send_possible, peek_leaves_the_message, selective_receive,
            close_but_drain, priority_select, selective_receive_waits_for_a_match,
            no_senders_across_processes, port_destroyed_notification, mailbox_grants,
            set_capacity_across_processes, link_capacity_across_processes,
            dead_name_request_lapses_when_the_right_moves,
            notification_requests_travel_with_the_receive_right,
            mailbox_capacity_across_processes, mailbox_grant_taken_back,
            no_senders_request_moves_with_port_destroyed);
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
