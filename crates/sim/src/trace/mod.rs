//! Traces: every event of a run, with its virtual time and process.
//!
//! The simulator appends an [`Event`] for each IPC operation as it starts,
//! blocks and completes, for each right inherited, each message dropped by a
//! drop policy, each `work`/`sleep`, kill and exit. Events carry task-local
//! names; the [`Trace`] keeps the labels given to ports (`Sim::port`,
//! `Proc::label`) so exporters can print "jobs" rather than "3.1".
//!
//! Three exporters, one file each:
//! * [`Trace::to_json_lines`] (`jsonl.rs`): one JSON object per line; the
//!   canonical byte form, which [`Trace::hash`] digests;
//! * [`Trace::to_mermaid`] (`mermaid.rs`): a Mermaid sequence diagram;
//! * [`Trace::to_chrome_json`] (`chrome.rs`): Chrome trace-event JSON, which
//!   Perfetto (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Same seed, same program: the same trace, byte for byte.

mod chrome;
mod jsonl;
mod mermaid;

use std::collections::BTreeMap;
use std::time::Duration;

use mkipc_kernel::{PortName, ReceiveError, SendErrorKind};

use crate::process::ExitStatus;
use crate::ProcId;

/// What an operation addressed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// A port, port set or mailbox, by the acting task's name for it.
    Name(PortName),
    /// A select over this many names.
    AnyOf(usize),
    /// A task over the direct link.
    Task(u32),
    /// Any direct link into the acting task.
    AnyTask,
}

/// How a send ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendOutcome {
    /// Queued or handed to a receiver.
    Delivered,
    /// Discarded by the drop-newest policy.
    Dropped,
    /// Queued after discarding the oldest queued message.
    Displaced,
    /// Failed; the message went back to the sender.
    Failed(SendErrorKind),
}

/// Why a process was killed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KillCause {
    /// A fault planned at a scheduling step.
    AtStep(u64),
    /// A fault planned at a virtual time.
    AtTime(Duration),
    /// A random fault.
    Random,
    /// Another process (or the test) asked for it.
    Requested,
}

/// One thing that happened.
#[derive(Clone, PartialEq, Debug)]
pub enum EventKind {
    /// The process was created (by `parent`, or by the test when `None`).
    Spawned {
        /// The creating process.
        parent: Option<ProcId>,
    },
    /// Rights were copied or moved into the process at creation.
    RightsInherited {
        /// How many.
        count: usize,
    },
    /// A send began.
    SendStarted {
        /// Destination.
        to: Target,
        /// Message id.
        msg_id: u32,
        /// Rights carried (reply right included).
        rights: usize,
    },
    /// The send must wait.
    SendBlocked {
        /// Destination.
        to: Target,
    },
    /// The send finished.
    SendCompleted {
        /// Destination.
        to: Target,
        /// Message id.
        msg_id: u32,
        /// How it ended.
        outcome: SendOutcome,
    },
    /// A receive began.
    ReceiveStarted {
        /// Source.
        from: Target,
    },
    /// The receive must wait.
    ReceiveBlocked {
        /// Source.
        from: Target,
    },
    /// A message arrived.
    Received {
        /// Source.
        from: Target,
        /// Message id.
        msg_id: u32,
        /// Sending task's pid, if known.
        sender: Option<u32>,
        /// Rights carried (reply right included).
        rights: usize,
    },
    /// The receive failed.
    ReceiveFailed {
        /// Source.
        from: Target,
        /// Why.
        error: ReceiveError,
    },
    /// Another IPC operation (port allocation, rights, mailboxes, names).
    Op {
        /// Its name.
        op: &'static str,
        /// Whether it succeeded.
        ok: bool,
    },
    /// Busy for this long (virtual).
    Work {
        /// Duration.
        duration: Duration,
    },
    /// Asleep for this long (virtual).
    Sleep {
        /// Duration.
        duration: Duration,
    },
    /// A timed wait ran out.
    TimedOut,
    /// The process was killed.
    Killed {
        /// Why.
        cause: KillCause,
    },
    /// The process ended.
    Exited {
        /// How.
        status: ExitStatus,
    },
}

/// An event with its place in the run.
#[derive(Clone, PartialEq, Debug)]
pub struct Event {
    /// Scheduling step at which it happened.
    pub step: u64,
    /// Virtual time.
    pub time: Duration,
    /// The acting process.
    pub proc: ProcId,
    /// What happened.
    pub kind: EventKind,
}

/// A process as the trace names it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProcLabel {
    /// The name given at spawn.
    pub name: String,
    /// The kernel pid.
    pub pid: u32,
}

/// The events of a run, with the names needed to print them.
#[derive(Clone, Default, PartialEq, Debug)]
pub struct Trace {
    /// Events in order.
    pub events: Vec<Event>,
    /// Processes, indexed by [`ProcId`].
    pub procs: Vec<ProcLabel>,
    /// Labels of names: `(pid, name) -> label`.
    pub labels: BTreeMap<(u32, PortName), String>,
}

impl Trace {
    /// The name of a process.
    pub fn proc_name(&self, p: ProcId) -> &str {
        self.procs
            .get(p.0 as usize)
            .map(|l| l.name.as_str())
            .unwrap_or("?")
    }

    /// A printable name for a target as seen by process `p`.
    pub fn target_name(&self, p: ProcId, t: Target) -> String {
        let pid = self.procs.get(p.0 as usize).map(|l| l.pid).unwrap_or(0);
        match t {
            Target::Name(n) => match self.labels.get(&(pid, n)) {
                Some(l) => l.clone(),
                None => format!("{}:{}", self.proc_name(p), n),
            },
            Target::AnyOf(k) => format!("any of {k}"),
            Target::Task(t) => match self.procs.iter().find(|l| l.pid == t) {
                Some(l) => l.name.clone(),
                None => format!("pid {t}"),
            },
            Target::AnyTask => "any task".to_string(),
        }
    }

    /// A 64-bit FNV-1a digest of [`Trace::to_json_lines`]: equal traces,
    /// equal hashes, on every machine and Rust version.
    pub fn hash(&self) -> u64 {
        fnv1a(self.to_json_lines().as_bytes())
    }

    /// How many events of a kind satisfy `f`.
    pub fn count(&self, f: impl Fn(&EventKind) -> bool) -> usize {
        self.events.iter().filter(|e| f(&e.kind)).count()
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Appends `s` to `out` as a JSON string literal.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
