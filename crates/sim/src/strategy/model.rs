//! A random model as data: queues, processes with straight-line programs,
//! faults. What the strategies generate, what shrinking makes smaller, and
//! what the runners build (module `run`).
//!
//! Names are positional: queue `i` is `q{i}`, process `i` is `p{i}`, and
//! every process holds the value it last received (or the reply its last
//! call got) in one variable, `x`, which starts at -1. Every message
//! carries a small integer.

use std::fmt;
use std::ops::RangeInclusive;

use mkipc_kernel::{Capacity, OnFull};

/// A whole model: its queues, its processes, the faults injected.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Model {
    /// The queues, `q0`, `q1`, ...
    pub queues: Vec<Queue>,
    /// The processes, `p0`, `p1`, ...
    pub procs: Vec<Program>,
    /// Kills at points of virtual time (the simulator runs them; the
    /// stateful checker has no faults, so a model with any is refused by
    /// [`Model::check`](crate::strategy::Model::check)).
    pub faults: Vec<Kill>,
}

/// A queue of a model.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Queue {
    /// A port (one receiver) or a system mailbox (anyone sends and receives).
    pub kind: QueueKind,
    /// Its capacity: 0 (rendezvous), 1, 2 or unbounded.
    pub capacity: Capacity,
}

/// What a queue is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum QueueKind {
    /// A system mailbox, opened by name by every process.
    Mailbox,
    /// A Mach port: process `receiver` holds its receive right, every other
    /// process a send right. It dies with its receiver.
    Port {
        /// The process holding the receive right.
        receiver: usize,
    },
}

/// One process: a straight-line program, or a server's loop.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Program {
    /// A server runs its actions forever (its first is a blocking receive);
    /// waiting at a receive is a valid end for it, and a receive or call
    /// that fails ends its loop (and the process, cleanly).
    pub server: bool,
    /// The actions, in order.
    pub actions: Vec<Action>,
}

/// What a send does when the queue is full (a rendezvous queue is full
/// unless a receiver waits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Policy {
    /// Wait for room.
    Block,
    /// Give up: the send is skipped (not an error).
    Fail,
    /// Drop the message sent.
    DropNewest,
    /// Drop the oldest message queued.
    DropOldest,
}

/// One action of a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Action {
    /// Send `value` to queue `queue`. Any error but a full queue under
    /// [`Policy::Fail`] (a dead port) fails the process.
    Send {
        /// The queue.
        queue: usize,
        /// The message's value.
        value: u8,
        /// When the queue is full.
        policy: Policy,
    },
    /// Receive from `queue` (a mailbox, or a port this process receives
    /// on) into `x`, waiting forever or `timeout` ms. A receive that fails
    /// (timed out) fails the process, or ends a server's loop.
    Receive {
        /// The queue.
        queue: usize,
        /// Give up after this many milliseconds.
        timeout: Option<u8>,
    },
    /// RPC: send `value` to `queue` with a send-once reply right (a fresh
    /// reply port), wait for the reply, its value into `x`. A call that
    /// fails (the request could not go, the server dropped the right)
    /// fails the process, or ends a server's loop.
    Call {
        /// The queue.
        queue: usize,
        /// The request's value.
        value: u8,
    },
    /// Reply `value` to the last message received, through the send-once
    /// right it carried. No message, or one without a reply right, fails
    /// the process.
    Reply {
        /// The reply's value.
        value: u8,
    },
    /// Fails the process if `x` is `value`.
    AssertNot {
        /// The value `x` must not be.
        value: u8,
    },
    /// Sleep this many milliseconds of virtual time.
    Sleep {
        /// Milliseconds.
        ms: u8,
    },
    /// A nondeterministic choice: `x` becomes any of `0..n`
    /// ([`Ctx::choose`](crate::machine::Ctx::choose): the checker explores
    /// each, the simulator draws one from the run's seed). Not in a
    /// server's loop (the scenario's `select any` that says it sends to a
    /// mailbox each time: a loop would fill it without end).
    Choose {
        /// How many alternatives (2 or 3).
        n: u8,
    },
}

/// A fault: kill process `proc` at `at_ms` of virtual time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Kill {
    /// The process killed.
    pub proc: usize,
    /// When, in milliseconds.
    pub at_ms: u8,
}

impl Policy {
    /// The kernel's policy.
    pub fn on_full(self) -> OnFull {
        match self {
            Policy::Block => OnFull::Block,
            Policy::Fail => OnFull::Fail,
            Policy::DropNewest => OnFull::DropNewest,
            Policy::DropOldest => OnFull::DropOldest,
        }
    }

    /// Its name in scenario files (`send Q POLICY`).
    pub fn keyword(self) -> &'static str {
        match self {
            Policy::Block => "block",
            Policy::Fail => "fail",
            Policy::DropNewest => "drop-newest",
            Policy::DropOldest => "drop-oldest",
        }
    }
}

impl Queue {
    /// Whether process `proc` may receive from it.
    pub fn receivable_by(&self, proc: usize) -> bool {
        match self.kind {
            QueueKind::Mailbox => true,
            QueueKind::Port { receiver } => receiver == proc,
        }
    }

    /// Whether process `proc` may send to it (every process but a port's
    /// receiver, which holds no send right to its own port).
    pub fn sendable_by(&self, proc: usize) -> bool {
        match self.kind {
            QueueKind::Mailbox => true,
            QueueKind::Port { receiver } => receiver != proc,
        }
    }
}

impl Action {
    /// The queue the action uses, if any.
    pub fn queue(&self) -> Option<usize> {
        match *self {
            Action::Send { queue, .. }
            | Action::Receive { queue, .. }
            | Action::Call { queue, .. } => Some(queue),
            _ => None,
        }
    }

    /// Whether it puts a message into a queue (a send, a call's request,
    /// a reply).
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Action::Send { .. } | Action::Call { .. } | Action::Reply { .. }
        )
    }
}

impl Model {
    /// The messages the model's straight-line programs send (one round of
    /// each server's loop): what shrinking makes fewer.
    pub fn messages(&self) -> usize {
        self.procs
            .iter()
            .flat_map(|p| &p.actions)
            .filter(|a| a.is_message())
            .count()
    }

    /// Whether the model is well formed: every index in range, every
    /// receive on a queue its process may receive from, every send or call
    /// to one it may send to, at most one server, whose first action is a
    /// blocking receive and which sends and calls only to ports. The
    /// strategies only generate such models ([`Model::normalized`]), and
    /// the runners refuse others.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.procs.len();
        for (i, q) in self.queues.iter().enumerate() {
            if let QueueKind::Port { receiver } = q.kind {
                if receiver >= n {
                    return Err(format!("q{i}: receiver p{receiver} does not exist"));
                }
            }
        }
        if self.procs.iter().filter(|p| p.server).count() > 1 {
            return Err("more than one server".into());
        }
        for (me, p) in self.procs.iter().enumerate() {
            for (k, a) in p.actions.iter().enumerate() {
                let bad = |why: &str| Err(format!("p{me} action {k} ({a:?}): {why}"));
                if let Some(q) = a.queue() {
                    let Some(queue) = self.queues.get(q) else {
                        return bad("no such queue");
                    };
                    match a {
                        Action::Receive { .. } if !queue.receivable_by(me) => {
                            return bad("receives from a port it does not receive on")
                        }
                        Action::Send { .. } | Action::Call { .. } if !queue.sendable_by(me) => {
                            return bad("sends to its own port")
                        }
                        Action::Send { .. } | Action::Call { .. }
                            if p.server && queue.kind == QueueKind::Mailbox =>
                        {
                            return bad("a server sends only to ports")
                        }
                        _ => {}
                    }
                }
                if let Action::Choose { n } = *a {
                    if p.server {
                        return bad("a server makes no choices");
                    }
                    if !(2..=3).contains(&n) {
                        return bad("a choice is among 2 or 3");
                    }
                }
            }
            if p.server
                && !matches!(
                    p.actions.first(),
                    Some(Action::Receive { timeout: None, .. })
                )
            {
                return Err(format!("p{me}: a server starts with a blocking receive"));
            }
        }
        for f in &self.faults {
            if f.proc >= n {
                return Err(format!("kill of p{}: no such process", f.proc));
            }
        }
        Ok(())
    }

    /// The model made well formed (what the strategies generate): indices
    /// are taken modulo the counts (so shrinking a list never leaves one
    /// dangling), actions a process may not do are dropped, only the first
    /// server stays one, and a server's first action becomes a blocking
    /// receive (or it stops being a server if it can receive from nothing).
    pub fn normalized(mut self) -> Model {
        let n = self.procs.len().max(1);
        if self.procs.is_empty() {
            self.procs.push(Program::default());
        }
        for q in &mut self.queues {
            if let QueueKind::Port { receiver } = &mut q.kind {
                *receiver %= n;
            }
        }
        let queues = self.queues.clone();
        let mut server_seen = false;
        for (me, p) in self.procs.iter_mut().enumerate() {
            if p.server && server_seen {
                p.server = false;
            }
            if queues.is_empty() {
                p.actions.retain(|a| a.queue().is_none());
            }
            let nq = queues.len().max(1);
            for a in &mut p.actions {
                match a {
                    Action::Send { queue, .. }
                    | Action::Receive { queue, .. }
                    | Action::Call { queue, .. } => *queue %= nq,
                    _ => {}
                }
            }
            let server = p.server;
            p.actions.retain(|a| match *a {
                Action::Receive { queue, .. } => queues[queue].receivable_by(me),
                Action::Send { queue, .. } | Action::Call { queue, .. } => {
                    queues[queue].sendable_by(me)
                        && !(server && queues[queue].kind == QueueKind::Mailbox)
                }
                Action::Choose { .. } => !server,
                _ => true,
            });
            for a in &mut p.actions {
                if let Action::Choose { n } = a {
                    *n = (*n).clamp(2, 3);
                }
            }
            if p.server {
                match p.actions.first() {
                    Some(Action::Receive { timeout: None, .. }) => {}
                    _ => match (0..queues.len()).find(|&q| queues[q].receivable_by(me)) {
                        Some(queue) => p.actions.insert(
                            0,
                            Action::Receive {
                                queue,
                                timeout: None,
                            },
                        ),
                        None => p.server = false,
                    },
                }
            }
            server_seen |= p.server;
        }
        for f in &mut self.faults {
            f.proc %= n;
        }
        self
    }
}

fn capacity_text(c: Capacity) -> String {
    match c {
        Capacity::Zero => "0".into(),
        Capacity::Bounded(n) => n.to_string(),
        Capacity::Unbounded => "unbounded".into(),
    }
}

impl fmt::Display for Action {
    /// The action as a statement of the scenario language (a choice, which
    /// is a `select any` block there, as `x = any of 0..n`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Send {
                queue,
                value,
                policy,
            } => write!(f, "send q{queue} {} {value}", policy.keyword()),
            Action::Receive {
                queue,
                timeout: None,
            } => write!(f, "receive q{queue} x"),
            Action::Receive {
                queue,
                timeout: Some(t),
            } => write!(f, "receive q{queue} x timeout {t}ms"),
            Action::Call { queue, value } => write!(f, "call q{queue} {value} -> x"),
            Action::Reply { value } => write!(f, "reply {value}"),
            Action::AssertNot { value } => write!(f, "assert x != {value}"),
            Action::Sleep { ms } => write!(f, "sleep {ms}ms"),
            Action::Choose { n } => write!(f, "x = any of 0..{n}"),
        }
    }
}

impl fmt::Display for Model {
    /// One line per queue, process and fault:
    ///
    /// ```text
    /// q0: mailbox, capacity 0
    /// p0: send q0 block 0
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, q) in self.queues.iter().enumerate() {
            let cap = capacity_text(q.capacity);
            match q.kind {
                QueueKind::Mailbox => writeln!(f, "q{i}: mailbox, capacity {cap}")?,
                QueueKind::Port { receiver } => {
                    writeln!(f, "q{i}: port received by p{receiver}, capacity {cap}")?
                }
            }
        }
        for (i, p) in self.procs.iter().enumerate() {
            let actions: Vec<String> = p.actions.iter().map(ToString::to_string).collect();
            let body = if actions.is_empty() {
                "(nothing)".to_string()
            } else {
                actions.join("; ")
            };
            if p.server {
                writeln!(f, "p{i} (server, forever): {body}")?;
            } else {
                writeln!(f, "p{i}: {body}")?;
            }
        }
        for k in &self.faults {
            writeln!(f, "fault: kill p{} at {}ms", k.proc, k.at_ms)?;
        }
        Ok(())
    }
}

/// A capacity as scenario files write it: `0`, `2`, `"unbounded"`.
pub fn capacity_toml(c: Capacity) -> String {
    match c {
        Capacity::Unbounded => "\"unbounded\"".into(),
        c => capacity_text(c),
    }
}

/// What a generated model may contain, and how big it may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// Processes (at least one).
    pub procs: RangeInclusive<usize>,
    /// Queues.
    pub queues: RangeInclusive<usize>,
    /// Actions per process.
    pub actions: RangeInclusive<usize>,
    /// System mailboxes (else only ports).
    pub mailboxes: bool,
    /// Ports (else only mailboxes).
    pub ports: bool,
    /// RPC: `call` and `reply` (the request carries a send-once reply right).
    pub rpc: bool,
    /// Receives with a timeout and sleeps (virtual time).
    pub time: bool,
    /// Sends that fail or drop when the queue is full.
    pub policies: bool,
    /// Assertions on the value received.
    pub asserts: bool,
    /// A server (a process looping forever, a valid end at its receive).
    pub servers: bool,
    /// Nondeterministic choices ([`Action::Choose`]).
    pub choices: bool,
    /// Faults: up to this many kills at a virtual time (the stateful
    /// checker refuses models with any; the simulator runs them).
    pub faults: usize,
}

impl Default for ModelConfig {
    /// Every feature the stateful checker and the scenario language both
    /// have (no faults), up to 3 processes, 2 queues, 3 actions each.
    fn default() -> ModelConfig {
        ModelConfig {
            procs: 1..=3,
            queues: 1..=2,
            actions: 0..=3,
            mailboxes: true,
            ports: true,
            rpc: true,
            time: true,
            policies: true,
            asserts: true,
            servers: true,
            choices: true,
            faults: 0,
        }
    }
}

impl ModelConfig {
    /// Whether `m` is within this configuration: its counts in the ranges,
    /// only the features it allows (what the model passes of
    /// [`Shrinking`](super::Shrinking)
    /// keep to, so a shrunk model is one the strategy could have made).
    pub fn allows(&self, m: &Model) -> bool {
        let counts = self.procs.contains(&m.procs.len())
            && self.queues.contains(&m.queues.len())
            && m.faults.len() <= self.faults
            && m.procs.iter().all(|p| {
                // A server's receive may have been put first.
                let n = p.actions.len();
                self.actions.contains(&n) || (p.server && n <= self.actions.end() + 1)
            });
        let queues = m.queues.iter().all(|q| match q.kind {
            QueueKind::Mailbox => self.mailboxes,
            QueueKind::Port { .. } => self.ports,
        });
        let servers = self.servers || m.procs.iter().all(|p| !p.server);
        let actions = m.procs.iter().flat_map(|p| &p.actions).all(|a| match *a {
            Action::Send { policy, .. } => self.policies || policy == Policy::Block,
            Action::Receive { timeout, .. } => self.time || timeout.is_none(),
            Action::Call { .. } | Action::Reply { .. } => self.rpc,
            Action::AssertNot { .. } => self.asserts,
            Action::Sleep { .. } => self.time,
            Action::Choose { .. } => self.choices,
        });
        counts && queues && servers && actions
    }
}
