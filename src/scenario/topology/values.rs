//! Which queues a variable can hold: where `send v ...` may go.
//!
//! A queue value starts as a literal in some expression (`forks = (f0,
//! f1)`, `send f0 (ACQ, r0)`) and moves only through assignments, message
//! values and the variables a receive pattern binds. The analysis follows
//! exactly those moves, as sets (any queue anywhere inside a value), to a
//! fixed point: `may_hold[p][v]` for each variable `v` of process `p`, and
//! `carries[q]` for the messages that can sit in queue `q`. Every real flow
//! is one of these moves, so the sets can only be too large, never too
//! small: a send to a variable never reaches a queue outside them.

use std::collections::BTreeSet;

use crate::scenario::expr::ExprOp;
use crate::scenario::{walk, ArmKind, Dest, Expr, Op, Pattern, QueueKind, Right, Scenario, Value};

/// Passes of the fixed point before giving up on precision.
const MAX_PASSES: usize = 64;

/// The queues each variable may hold.
pub(super) struct QueueValues {
    /// `may_hold[process][slot]`.
    may_hold: Vec<Vec<BTreeSet<usize>>>,
}

/// Whether `proc` may send to `queue`: holds a send right to the port (its
/// own, or one it hands on to a process it spawns), or may open the mailbox.
pub(super) fn may_send(scn: &Scenario, proc: usize, queue: usize) -> bool {
    match &scn.queues[queue].kind {
        QueueKind::Port { senders, .. } => {
            senders.contains(&proc) || scn.processes[proc].rights.contains(&(queue, Right::Send))
        }
        QueueKind::Mailbox { owner, senders, .. } => {
            *owner == Some(proc) || senders.as_ref().is_none_or(|l| l.contains(&proc))
        }
    }
}

/// Whether `proc` may receive from `queue` (its receiver, or a reader of
/// the mailbox).
pub(super) fn may_receive(scn: &Scenario, proc: usize, queue: usize) -> bool {
    match &scn.queues[queue].kind {
        QueueKind::Port { receiver, .. } => {
            *receiver == proc
                || scn.processes[proc]
                    .rights
                    .contains(&(queue, Right::Receive))
        }
        QueueKind::Mailbox {
            owner, receivers, ..
        } => *owner == Some(proc) || receivers.as_ref().is_none_or(|l| l.contains(&proc)),
    }
}

/// The queues inside a constant value (an explicit stack: no recursion).
fn queues_in(v: &Value, out: &mut BTreeSet<usize>) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Queue(q) => {
                out.insert(*q as usize);
            }
            Value::Tuple(parts) => stack.extend(parts),
            Value::Int(_) | Value::Sym(_) => {}
        }
    }
}

/// The variables a pattern binds.
fn binds(p: &Pattern) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![p];
    while let Some(p) = stack.pop() {
        match p {
            Pattern::Bind(slot) => out.push(*slot),
            Pattern::Tuple(parts) => stack.extend(parts),
            Pattern::Any | Pattern::Const(_) => {}
        }
    }
    out
}

impl QueueValues {
    /// Runs the analysis to its fixed point.
    pub(super) fn of(scn: &Scenario) -> QueueValues {
        let nq = scn.queues.len();
        let mut me = QueueValues {
            may_hold: scn
                .processes
                .iter()
                .map(|p| vec![BTreeSet::new(); p.vars.len()])
                .collect(),
        };
        let mut carries: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nq];
        // The queues any `reply VALUE` may carry (a `call`'s reply comes
        // from whoever answers it).
        let mut replies: BTreeSet<usize> = BTreeSet::new();
        // Each pass only adds, and the sets are bounded by the queue count,
        // so this ends; but a long chain of copies written backwards takes
        // a pass per link. Past `MAX_PASSES`, every variable is taken to
        // hold every queue: too large, never too small.
        for _ in 0..MAX_PASSES {
            let mut changed = false;
            for (p, proc) in scn.processes.iter().enumerate() {
                for s in walk(&proc.script) {
                    let mut flows: Vec<(Option<&Expr>, Vec<usize>)> = Vec::new();
                    let mut binding: Vec<(usize, &Pattern)> = Vec::new();
                    let mut assign: Option<(usize, &Expr)> = None;
                    let mut reply_binding: Option<&Pattern> = None;
                    match &s.op {
                        Op::Assign { var, value, .. } => assign = Some((*var, value)),
                        Op::Call {
                            queue,
                            value,
                            reply,
                        } => {
                            flows.push((value.as_ref(), vec![*queue]));
                            reply_binding = reply.as_ref();
                        }
                        Op::CallVia { var, value, reply } => {
                            flows.push((value.as_ref(), me.targets(scn, p, &Dest::Var(*var))));
                            reply_binding = reply.as_ref();
                        }
                        Op::Reply { value: Some(v) } => {
                            let before = replies.len();
                            replies.extend(me.queues(scn, p, v));
                            changed |= replies.len() != before;
                        }
                        Op::Send { queue, value, .. } => flows.push((value.as_ref(), vec![*queue])),
                        Op::SendVia { var, value, .. } => {
                            flows.push((value.as_ref(), me.targets(scn, p, &Dest::Var(*var))))
                        }
                        Op::TrySend { dest, value, .. } => {
                            flows.push((value.as_ref(), me.targets(scn, p, dest)))
                        }
                        Op::Receive {
                            queue,
                            pattern: Some(pat),
                            ..
                        } => binding.push((*queue, pat)),
                        Op::ReceiveVia {
                            var,
                            pattern: Some(pat),
                            ..
                        } => {
                            for q in me.sources(scn, p, *var) {
                                binding.push((q, pat));
                            }
                        }
                        Op::Select(arms) | Op::SelectAny(arms) => {
                            for a in arms {
                                match &a.kind {
                                    ArmKind::Send { dest, value } => {
                                        flows.push((value.as_ref(), me.targets(scn, p, dest)))
                                    }
                                    ArmKind::Receive {
                                        queue,
                                        pattern: Some(pat),
                                    } => binding.push((*queue, pat)),
                                    ArmKind::ReceiveVia {
                                        var,
                                        pattern: Some(pat),
                                    } => {
                                        for q in me.sources(scn, p, *var) {
                                            binding.push((q, pat));
                                        }
                                    }
                                    ArmKind::Receive { pattern: None, .. }
                                    | ArmKind::ReceiveVia { pattern: None, .. }
                                    | ArmKind::Timeout(_) => {}
                                }
                            }
                        }
                        _ => {}
                    }
                    if let Some((var, value)) = assign {
                        let qs = me.queues(scn, p, value);
                        if let Some(set) = me.may_hold[p].get_mut(var) {
                            let before = set.len();
                            set.extend(qs);
                            changed |= set.len() != before;
                        }
                    }
                    for (value, to) in flows {
                        let Some(value) = value else { continue };
                        let qs = me.queues(scn, p, value);
                        for q in to {
                            let before = carries[q].len();
                            carries[q].extend(qs.iter().copied());
                            changed |= carries[q].len() != before;
                        }
                    }
                    if let Some(pat) = reply_binding {
                        for slot in binds(pat) {
                            if let Some(set) = me.may_hold[p].get_mut(slot) {
                                let before = set.len();
                                set.extend(replies.iter().copied());
                                changed |= set.len() != before;
                            }
                        }
                    }
                    for (queue, pat) in binding {
                        for slot in binds(pat) {
                            if let Some(set) = me.may_hold[p].get_mut(slot) {
                                let before = set.len();
                                set.extend(carries[queue].iter().copied());
                                changed |= set.len() != before;
                            }
                        }
                    }
                }
            }
            if !changed {
                return me;
            }
        }
        let all: BTreeSet<usize> = (0..nq).collect();
        for sets in &mut me.may_hold {
            for set in sets {
                set.clone_from(&all);
            }
        }
        me
    }

    /// The queues inside what `e` evaluates to, in process `p`.
    fn queues(&self, scn: &Scenario, p: usize, e: &Expr) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        // An expression of constants and the process's `id` (`f[id]`,
        // `req[(id + 1) % 3]`) has one value per process: that one.
        if e.reads.iter().all(|&slot| slot == 0) {
            let proc = &scn.processes[p];
            let mut vars = vec![None; proc.vars.len().max(1)];
            vars[0] = Some(Value::Int(proc.id));
            if let Ok(v) = e.eval(&vars, &proc.vars) {
                queues_in(&v, &mut out);
                return out;
            }
        }
        for op in &e.code {
            match op {
                ExprOp::Push(v) => queues_in(v, &mut out),
                ExprOp::Var(slot) => {
                    if let Some(set) = self.may_hold[p].get(*slot) {
                        out.extend(set.iter().copied());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The queues a send to `dest` by `p` may reach.
    pub(super) fn targets(&self, scn: &Scenario, p: usize, dest: &Dest) -> Vec<usize> {
        match dest {
            Dest::Queue(q) => vec![*q],
            Dest::Var(slot) => self.may_hold[p]
                .get(*slot)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&q| q < scn.queues.len() && may_send(scn, p, q))
                .collect(),
        }
    }

    /// The queues a receive by `p` from the queue variable `slot` holds may
    /// take from.
    pub(super) fn sources(&self, scn: &Scenario, p: usize, slot: usize) -> Vec<usize> {
        self.may_hold[p]
            .get(slot)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&q| q < scn.queues.len() && may_receive(scn, p, q))
            .collect()
    }
}
