//! Which statements can leave a process waiting forever, and on whom.
//!
//! A *wait* is a statement that may block with no deadline: a blocking
//! `send` to a queue that can be full, a `receive` without a timeout, a
//! `call` (its reply comes from the server), the direct `send-to`,
//! `receive-from` and `receive-any`, and a `select` with no unguarded
//! `on timeout` arm. Each wait has *alternatives*: what it may be blocked on
//! (one for a plain statement, one per arm of a `select`, one per possible
//! target of a send to a variable), each with the processes that could end
//! it (its *counterparts*) and the state the channel must be in while it
//! stays blocked (its [`Mode`]: full for a send, empty for a receive).

use std::collections::BTreeSet;
use std::rc::Rc;

use mkipc_kernel::{Capacity, OnFull};

use super::values::QueueValues;
use crate::scenario::{walk, ArmKind, Dest, MechOp, Op, QueueKind, Scenario, Stmt};

/// A channel a wait can be blocked on: a declared queue or the direct link
/// from one process to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Chan {
    /// A port or mailbox, by index.
    Queue(usize),
    /// The direct link `from` -> `to`.
    Link { from: usize, to: usize },
}

/// What a blocked alternative implies about its channel, in a state where
/// nothing can move any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Mode {
    /// A blocked send: the channel is full (capacity 0: no receiver waits).
    Full(Chan),
    /// A blocked receive: the channel's kernel queue is empty (a selective
    /// receive sets aside what does not match before it blocks).
    Empty(Chan),
}

impl Mode {
    /// Whether the two cannot hold at once.
    pub(super) fn conflicts(self, other: Mode) -> bool {
        matches!((self, other), (Mode::Full(a), Mode::Empty(b)) | (Mode::Empty(a), Mode::Full(b)) if a == b)
    }
}

/// One thing a wait may be blocked on.
#[derive(Clone, Debug)]
pub(super) struct Alt {
    /// Its line (an arm's `on` line in a `select`).
    pub line: usize,
    /// `send`, `receive`, `call`, `send-to`, `receive-from`, `receive-any`.
    pub op: &'static str,
    /// The queue or process it names, for the report.
    pub on: String,
    /// The capacity, for a queue (`0`, `4`, `unbounded`).
    pub capacity: Option<String>,
    /// The channel state it implies while blocked (`None`: nothing known,
    /// e.g. a call waiting for its reply).
    pub mode: Option<Mode>,
    /// The processes that could end it, shared by every alternative on the
    /// same queue and direction (so a family of thousands costs one set per
    /// queue, not one per statement); the waiting process itself, if in
    /// it, does not count ([`Alt::ended_by`]).
    pub parties: Rc<BTreeSet<usize>>,
}

impl Alt {
    /// Whether process `q` could end this alternative of `me`'s wait.
    pub(super) fn ended_by(&self, me: usize, q: usize) -> bool {
        q != me && self.parties.contains(&q)
    }
}

/// A statement that can block with no deadline.
#[derive(Clone, Debug)]
pub(super) struct Wait {
    /// The waiting process.
    pub proc: usize,
    /// The statement's line.
    pub line: usize,
    /// `select`, or the single alternative's op.
    pub op: &'static str,
    /// What it may be blocked on.
    pub alts: Vec<Alt>,
    /// Modes that hold whenever it is blocked at all: a plain statement's
    /// own, a `select`'s unguarded arms' (a `select` is blocked only when
    /// every enabled arm is).
    pub always: Vec<Mode>,
}

/// A receive with a deadline, or a `select` with an `on timeout` arm: it
/// cannot wait forever, so it is no edge.
#[derive(Clone, Debug)]
pub(super) struct Timed {
    pub proc: usize,
    pub line: usize,
    pub what: String,
}

/// Who may send to and receive from each queue, and each process's waits.
pub(super) struct Topology {
    /// Per process: the processes with a `send-to` it.
    pub direct_senders: Vec<Rc<BTreeSet<usize>>>,
    /// Per queue: who could end a send blocked on it (its receivers, and
    /// whoever can make it die).
    send_parties: Vec<Rc<BTreeSet<usize>>>,
    /// Per queue: who could end a receive blocked on it.
    receive_parties: Vec<Rc<BTreeSet<usize>>>,
    /// Every wait, by process then line.
    pub waits: Vec<Wait>,
    /// Per queue: whether its capacity is 0.
    zero: Vec<bool>,
    /// Waits that have a deadline.
    pub timed: Vec<Timed>,
}

fn capacity_text(c: Capacity) -> String {
    match c {
        Capacity::Zero => "0".into(),
        Capacity::Bounded(n) => n.to_string(),
        Capacity::Unbounded => "unbounded".into(),
    }
}

/// Whether a send with this policy to this queue can block.
/// The channel state a wait implies whichever alternative blocks it: that
/// of its one alternative, nothing when it has several (a queue held in a
/// variable may be any of them).
fn always_of(alts: &[Alt]) -> Vec<Mode> {
    match alts {
        [one] => one.mode.into_iter().collect(),
        _ => Vec::new(),
    }
}

fn send_blocks(scn: &Scenario, queue: usize, on_full: OnFull) -> bool {
    on_full == OnFull::Block && scn.queues[queue].capacity != Capacity::Unbounded
}

impl Topology {
    /// Whether `m` is about a queue of capacity 0.
    pub(super) fn rendezvous(&self, m: Mode) -> bool {
        match m {
            Mode::Full(Chan::Queue(q)) | Mode::Empty(Chan::Queue(q)) => {
                self.zero.get(q).copied().unwrap_or(false)
            }
            Mode::Full(Chan::Link { .. }) | Mode::Empty(Chan::Link { .. }) => false,
        }
    }

    /// The indices of each process's waits, for processes `0..n`.
    pub(super) fn by_proc(&self, n: usize) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); n];
        for (i, w) in self.waits.iter().enumerate() {
            if let Some(v) = out.get_mut(w.proc) {
                v.push(i);
            }
        }
        out
    }

    /// Reads who talks to whom, then every wait, from the scripts.
    pub(super) fn of(scn: &Scenario) -> Topology {
        let n = scn.processes.len();
        let nq = scn.queues.len();
        let values = QueueValues::of(scn);
        let mut senders = vec![BTreeSet::new(); nq];
        let mut receivers = vec![BTreeSet::new(); nq];
        let mut direct_senders = vec![BTreeSet::new(); n];
        for (p, proc) in scn.processes.iter().enumerate() {
            for s in walk(&proc.script) {
                let mut send = |dest: &Dest| {
                    for q in values.targets(scn, p, dest) {
                        senders[q].insert(p);
                    }
                };
                match &s.op {
                    Op::Send { queue, .. } | Op::Call { queue, .. } => send(&Dest::Queue(*queue)),
                    Op::SendVia { var, .. } | Op::CallVia { var, .. } => send(&Dest::Var(*var)),
                    Op::TrySend { dest, .. } => send(dest),
                    Op::Receive { queue, .. } => {
                        receivers[*queue].insert(p);
                    }
                    Op::ReceiveVia { var, .. } => {
                        for q in values.sources(scn, p, *var) {
                            receivers[q].insert(p);
                        }
                    }
                    Op::SendTo { proc: to } => {
                        direct_senders[*to].insert(p);
                    }
                    Op::Select(arms) | Op::SelectAny(arms) => {
                        for a in arms {
                            match &a.kind {
                                ArmKind::Send { dest, .. } => send(dest),
                                ArmKind::Receive { queue, .. } => {
                                    receivers[*queue].insert(p);
                                }
                                ArmKind::ReceiveVia { var, .. } => {
                                    for q in values.sources(scn, p, *var) {
                                        receivers[q].insert(p);
                                    }
                                }
                                ArmKind::Timeout(_) => {}
                            }
                        }
                    }
                    // A cell's or lock's message is taken and put back by
                    // the same process: it receives and sends there.
                    Op::Mech(
                        m @ (MechOp::Load { .. }
                        | MechOp::Store { .. }
                        | MechOp::Lock(_)
                        | MechOp::Unlock(_)),
                    ) => {
                        receivers[m.queue()].insert(p);
                        senders[m.queue()].insert(p);
                    }
                    _ => {}
                }
            }
        }
        // The owner of a mailbox ends every wait on it when it exits (the
        // mailbox dies), and so does whoever may destroy a queue.
        let mut enders: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nq];
        for (q, queue) in scn.queues.iter().enumerate() {
            if let QueueKind::Mailbox { owner: Some(o), .. } = queue.kind {
                enders[q].insert(o);
            }
        }
        for (p, proc) in scn.processes.iter().enumerate() {
            for s in walk(&proc.script) {
                if let Op::Destroy(q) = s.op {
                    enders[q].insert(p);
                }
            }
        }
        let union = |a: &BTreeSet<usize>, b: &BTreeSet<usize>| Rc::new(a | b);
        let mut topo = Topology {
            send_parties: receivers
                .iter()
                .zip(&enders)
                .map(|(r, e)| union(r, e))
                .collect(),
            receive_parties: senders
                .iter()
                .zip(&enders)
                .map(|(s, e)| union(s, e))
                .collect(),
            direct_senders: direct_senders.into_iter().map(Rc::new).collect(),
            waits: Vec::new(),
            timed: Vec::new(),
            zero: scn
                .queues
                .iter()
                .map(|q| q.capacity == Capacity::Zero)
                .collect(),
        };
        for (p, proc) in scn.processes.iter().enumerate() {
            for s in walk(&proc.script) {
                topo.wait_of(scn, p, s, &values);
            }
        }
        topo
    }

    /// A send alternative to `queue`, if that send can block.
    fn send_alt(&self, scn: &Scenario, line: usize, queue: usize) -> Alt {
        let q = &scn.queues[queue];
        Alt {
            line,
            op: "send",
            on: q.name.clone(),
            capacity: Some(capacity_text(q.capacity)),
            mode: Some(Mode::Full(Chan::Queue(queue))),
            parties: Rc::clone(&self.send_parties[queue]),
        }
    }

    fn receive_alt(&self, scn: &Scenario, line: usize, queue: usize) -> Alt {
        let q = &scn.queues[queue];
        Alt {
            line,
            op: "receive",
            on: q.name.clone(),
            capacity: Some(capacity_text(q.capacity)),
            mode: Some(Mode::Empty(Chan::Queue(queue))),
            parties: Rc::clone(&self.receive_parties[queue]),
        }
    }

    fn timed(&mut self, p: usize, line: usize, what: String) {
        self.timed.push(Timed {
            proc: p,
            line,
            what,
        });
    }

    /// Records the wait (or timed wait) statement `s` of process `p` is, if any.
    fn wait_of(&mut self, scn: &Scenario, p: usize, s: &Stmt, values: &QueueValues) {
        let line = s.line;
        let name = |i: usize| scn.processes[i].name.clone();
        let (op, alts, always): (&'static str, Vec<Alt>, Vec<Mode>) = match &s.op {
            Op::Send { queue, on_full, .. } => {
                if let OnFull::Timeout(_) = on_full {
                    let what = format!("send `{}` with a timeout", scn.queues[*queue].name);
                    return self.timed(p, line, what);
                }
                if !send_blocks(scn, *queue, *on_full) {
                    return;
                }
                let alt = self.send_alt(scn, line, *queue);
                let always = alt.mode.into_iter().collect();
                ("send", vec![alt], always)
            }
            Op::SendVia {
                on_full: OnFull::Timeout(_),
                ..
            } => {
                return self.timed(p, line, "send with a timeout".into());
            }
            Op::SendVia { var, on_full, .. } => {
                let alts: Vec<Alt> = values
                    .targets(scn, p, &Dest::Var(*var))
                    .into_iter()
                    .filter(|&q| send_blocks(scn, q, *on_full))
                    .map(|q| self.send_alt(scn, line, q))
                    .collect();
                if alts.is_empty() {
                    return;
                }
                let always = always_of(&alts);
                ("send", alts, always)
            }
            Op::Receive { queue, timeout, .. } => {
                if timeout.is_some() {
                    let what = format!("receive `{}` timeout", scn.queues[*queue].name);
                    return self.timed(p, line, what);
                }
                let alt = self.receive_alt(scn, line, *queue);
                let always = alt.mode.into_iter().collect();
                ("receive", vec![alt], always)
            }
            Op::ReceiveVia { var, timeout, .. } => {
                if timeout.is_some() {
                    return self.timed(p, line, "receive with a timeout".into());
                }
                let alts: Vec<Alt> = values
                    .sources(scn, p, *var)
                    .into_iter()
                    .map(|q| self.receive_alt(scn, line, q))
                    .collect();
                if alts.is_empty() {
                    return;
                }
                let always = always_of(&alts);
                ("receive", alts, always)
            }
            Op::Call { queue, .. } => {
                // Blocked sending the request (the port full) or waiting
                // for the reply: either way the server ends it, and the
                // reply wait says nothing about the port's state.
                let mut alt = self.send_alt(scn, line, *queue);
                alt.op = "call";
                alt.mode = None;
                ("call", vec![alt], Vec::new())
            }
            Op::CallVia { var, .. } => {
                let alts: Vec<Alt> = values
                    .targets(scn, p, &Dest::Var(*var))
                    .into_iter()
                    .map(|q| {
                        let mut alt = self.send_alt(scn, line, q);
                        alt.op = "call";
                        alt.mode = None;
                        alt
                    })
                    .collect();
                if alts.is_empty() {
                    return;
                }
                ("call", alts, Vec::new())
            }
            Op::SendTo { proc: to } => {
                let chan = Chan::Link { from: p, to: *to };
                let alt = Alt {
                    line,
                    op: "send-to",
                    on: name(*to),
                    capacity: None,
                    mode: Some(Mode::Full(chan)),
                    parties: Rc::new(BTreeSet::from([*to])),
                };
                ("send-to", vec![alt], vec![Mode::Full(chan)])
            }
            Op::ReceiveFrom {
                proc: from,
                timeout,
            } => {
                if timeout.is_some() {
                    return self.timed(p, line, format!("receive-from `{}` timeout", name(*from)));
                }
                let chan = Chan::Link { from: *from, to: p };
                let alt = Alt {
                    line,
                    op: "receive-from",
                    on: name(*from),
                    capacity: None,
                    mode: Some(Mode::Empty(chan)),
                    parties: Rc::new(BTreeSet::from([*from])),
                };
                ("receive-from", vec![alt], vec![Mode::Empty(chan)])
            }
            Op::ReceiveAny { timeout } => {
                if timeout.is_some() {
                    return self.timed(p, line, "receive-any timeout".into());
                }
                let from = &Rc::clone(&self.direct_senders[p]);
                let always = from
                    .iter()
                    .map(|&f| Mode::Empty(Chan::Link { from: f, to: p }))
                    .collect();
                let alt = Alt {
                    line,
                    op: "receive-any",
                    on: "any process".into(),
                    capacity: None,
                    mode: None,
                    parties: Rc::clone(from),
                };
                ("receive-any", vec![alt], always)
            }
            Op::Select(arms) | Op::SelectAny(arms) => {
                if arms
                    .iter()
                    .any(|a| a.guard.is_none() && matches!(a.kind, ArmKind::Timeout(_)))
                {
                    return self.timed(p, line, "select with `on timeout`".into());
                }
                let mut alts = Vec::new();
                let mut always = Vec::new();
                for a in arms {
                    let arm_alts: Vec<Alt> = match &a.kind {
                        ArmKind::Receive { queue, .. } => {
                            vec![self.receive_alt(scn, a.line, *queue)]
                        }
                        ArmKind::ReceiveVia { var, .. } => values
                            .sources(scn, p, *var)
                            .into_iter()
                            .map(|q| self.receive_alt(scn, a.line, q))
                            .collect(),
                        // A send arm waits for room, whatever the queue's
                        // `on_full` (`select` never drops); an unbounded
                        // queue always has room.
                        ArmKind::Send { dest, .. } => values
                            .targets(scn, p, dest)
                            .into_iter()
                            .filter(|&q| send_blocks(scn, q, OnFull::Block))
                            .map(|q| self.send_alt(scn, a.line, q))
                            .collect(),
                        ArmKind::Timeout(_) => Vec::new(),
                    };
                    if arm_alts.is_empty() && a.guard.is_none() {
                        // An unguarded arm that can always proceed: the
                        // select never blocks.
                        return;
                    }
                    if let ([one], None) = (arm_alts.as_slice(), &a.guard) {
                        always.extend(one.mode);
                    }
                    alts.extend(arm_alts);
                }
                ("select", alts, always)
            }
            // Taking a cell's value or a lock's token waits like a receive
            // (a lock held forever is a stuck wait); putting never waits.
            Op::Mech(m @ (MechOp::Load { .. } | MechOp::Store { .. } | MechOp::Lock(_))) => {
                let alt = self.receive_alt(scn, line, m.queue());
                let always = alt.mode.into_iter().collect();
                (m.keyword(), vec![alt], always)
            }
            _ => return,
        };
        self.waits.push(Wait {
            proc: p,
            line,
            op,
            alts,
            always,
        });
    }
}
