//! Shrinking that knows what a model is.
//!
//! proptest's own shrinking works on the generated lists and numbers: it
//! drops list elements and moves each `prop_oneof!` toward its first
//! alternative. On a model that is not enough: dropping process 1 of 3
//! renumbers process 2, so the ports it received on (taken modulo the
//! count) change hands and the failure may vanish, and a `prop_oneof!`
//! only falls back to alternatives generated with the case, which may not
//! fail. So [`Shrinking`] runs proptest's shrinking first, then its own
//! passes on the smallest failing model found, until none applies (the
//! result is minimal for each of them):
//!
//! 1. remove a process (its ports with it; the others keep their numbers
//!    relative to one another);
//! 2. remove a queue, a fault, an action;
//! 3. make a queue simpler: a port a mailbox, a capacity smaller (0 is the
//!    smallest);
//! 4. make a server an ordinary process;
//! 5. make an action simpler: a send, to the same queue, of 0, blocking;
//!    a policy `block`, no timeout, value 0, a sleep of 1 ms, a choice
//!    among 2.
//!
//! Each candidate is made well formed ([`Model::normalized`]), kept only
//! if the strategy's [`ModelConfig`] allows it, and tried once; the first that still fails is kept and the passes start again
//! from it.

use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use super::model::{Action, Kill, Model, ModelConfig, Policy, QueueKind};
use mkipc_kernel::Capacity;

/// A strategy for models whose shrinking ends with the model passes of
/// the module docs.
#[derive(Debug)]
pub struct Shrinking<S> {
    inner: S,
    config: ModelConfig,
}

impl<S> Shrinking<S> {
    /// `inner`'s models, shrunk further by the model passes, which keep to
    /// `config` ([`ModelConfig::allows`]).
    pub fn new(inner: S, config: ModelConfig) -> Shrinking<S> {
        Shrinking { inner, config }
    }
}

impl<S: Strategy<Value = Model>> Strategy for Shrinking<S> {
    type Tree = ModelTree<S::Tree>;
    type Value = Model;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let inner = self.inner.new_tree(runner)?;
        let current = inner.current();
        Ok(ModelTree {
            inner,
            config: self.config.clone(),
            own: false,
            last_fail: current.clone(),
            current,
            pending: false,
            candidates: Vec::new(),
            next: 0,
        })
    }
}

/// The value tree of [`Shrinking`].
#[derive(Debug)]
pub struct ModelTree<T> {
    inner: T,
    config: ModelConfig,
    /// Whether proptest's shrinking is done and the model passes run.
    own: bool,
    /// The smallest model known to fail.
    last_fail: Model,
    /// The model the test runs next.
    current: Model,
    /// Whether `current` is a candidate not yet judged.
    pending: bool,
    /// The model passes' candidates from `last_fail`.
    candidates: Vec<Model>,
    next: usize,
}

impl<T: ValueTree<Value = Model>> ModelTree<T> {
    /// The next candidate of the model passes, or `false` (then the
    /// current model is the smallest failing one).
    fn next_candidate(&mut self) -> bool {
        if !self.own {
            self.own = true;
            self.candidates = candidates(&self.last_fail, &self.config);
            self.next = 0;
        }
        while let Some(c) = self.candidates.get(self.next) {
            self.next += 1;
            if *c != self.last_fail {
                self.current = c.clone();
                self.pending = true;
                return true;
            }
        }
        self.current = self.last_fail.clone();
        self.pending = false;
        false
    }
}

impl<T: ValueTree<Value = Model>> ValueTree for ModelTree<T> {
    type Value = Model;

    fn current(&self) -> Model {
        self.current.clone()
    }

    /// Called when the model last tested failed.
    fn simplify(&mut self) -> bool {
        if self.pending {
            self.last_fail = self.current.clone();
            if self.own {
                self.candidates = candidates(&self.last_fail, &self.config);
                self.next = 0;
            }
        }
        if !self.own && self.inner.simplify() {
            self.current = self.inner.current();
            self.pending = true;
            return true;
        }
        self.next_candidate()
    }

    /// Called when the model last tested passed.
    fn complicate(&mut self) -> bool {
        if !self.own && self.inner.complicate() {
            self.current = self.inner.current();
            self.pending = true;
            return true;
        }
        self.next_candidate()
    }
}

/// Every candidate of the model passes from `m`, in the order tried.
fn candidates(m: &Model, config: &ModelConfig) -> Vec<Model> {
    let mut out = Vec::new();
    let mut push = |c: Model| {
        let c = c.normalized();
        if c != *m && c.validate().is_ok() && config.allows(&c) && !out.contains(&c) {
            out.push(c);
        }
    };
    if m.procs.len() > 1 {
        for p in 0..m.procs.len() {
            push(without_process(m, p));
        }
    }
    for q in 0..m.queues.len() {
        push(without_queue(m, q));
    }
    for f in 0..m.faults.len() {
        let mut c = m.clone();
        c.faults.remove(f);
        push(c);
    }
    for (p, prog) in m.procs.iter().enumerate() {
        for k in 0..prog.actions.len() {
            let mut c = m.clone();
            c.procs[p].actions.remove(k);
            push(c);
        }
    }
    for (q, queue) in m.queues.iter().enumerate() {
        if queue.kind != QueueKind::Mailbox {
            let mut c = m.clone();
            c.queues[q].kind = QueueKind::Mailbox;
            push(c);
        }
        for smaller in [Capacity::Zero, Capacity::Bounded(1), Capacity::Bounded(2)] {
            if rank(smaller) < rank(queue.capacity) {
                let mut c = m.clone();
                c.queues[q].capacity = smaller;
                push(c);
            }
        }
    }
    for (p, prog) in m.procs.iter().enumerate() {
        if prog.server {
            let mut c = m.clone();
            c.procs[p].server = false;
            push(c);
        }
    }
    for (p, prog) in m.procs.iter().enumerate() {
        for (k, a) in prog.actions.iter().enumerate() {
            for simpler in simpler_actions(a) {
                let mut c = m.clone();
                c.procs[p].actions[k] = simpler;
                push(c);
            }
        }
    }
    for (f, k) in m.faults.iter().enumerate() {
        if k.at_ms > 0 {
            let mut c = m.clone();
            c.faults[f] = Kill { at_ms: 0, ..*k };
            push(c);
        }
    }
    out
}

fn rank(c: Capacity) -> usize {
    match c {
        Capacity::Zero => 0,
        Capacity::Bounded(n) => n,
        Capacity::Unbounded => usize::MAX,
    }
}

/// Simpler actions in place of `a`, simplest first.
fn simpler_actions(a: &Action) -> Vec<Action> {
    let send = |queue| Action::Send {
        queue,
        value: 0,
        policy: Policy::Block,
    };
    let mut out = Vec::new();
    match *a {
        Action::Send {
            queue,
            value,
            policy,
        } => {
            if policy != Policy::Block {
                out.push(Action::Send {
                    queue,
                    value,
                    policy: Policy::Block,
                });
            }
            if value != 0 {
                out.push(Action::Send {
                    queue,
                    value: 0,
                    policy,
                });
            }
        }
        Action::Receive { queue, timeout } => {
            out.push(send(queue));
            if timeout.is_some() {
                out.push(Action::Receive {
                    queue,
                    timeout: None,
                });
            }
            if timeout.is_some_and(|t| t > 1) {
                out.push(Action::Receive {
                    queue,
                    timeout: Some(1),
                });
            }
        }
        Action::Call { queue, value } => {
            out.push(send(queue));
            if value != 0 {
                out.push(Action::Call { queue, value: 0 });
            }
        }
        Action::Reply { value } => {
            out.push(send(0));
            if value != 0 {
                out.push(Action::Reply { value: 0 });
            }
        }
        Action::AssertNot { value } => {
            out.push(send(0));
            if value != 0 {
                out.push(Action::AssertNot { value: 0 });
            }
        }
        Action::Sleep { ms } => {
            out.push(send(0));
            if ms > 1 {
                out.push(Action::Sleep { ms: 1 });
            }
        }
        Action::Choose { n } => {
            out.push(send(0));
            if n > 2 {
                out.push(Action::Choose { n: 2 });
            }
        }
    }
    out
}

/// `m` without process `p`: the ports it received on go too, and the
/// others keep their numbers relative to one another.
fn without_process(m: &Model, p: usize) -> Model {
    let mut c = m.clone();
    let gone: Vec<usize> = (0..m.queues.len())
        .filter(|&q| m.queues[q].kind == QueueKind::Port { receiver: p })
        .collect();
    for &q in gone.iter().rev() {
        c = without_queue(&c, q);
    }
    c.procs.remove(p);
    for q in &mut c.queues {
        if let QueueKind::Port { receiver } = &mut q.kind {
            if *receiver > p {
                *receiver -= 1;
            }
        }
    }
    c.faults.retain(|k| k.proc != p);
    for k in &mut c.faults {
        if k.proc > p {
            k.proc -= 1;
        }
    }
    c
}

/// `m` without queue `q`: the actions on it go too, the others' queue
/// numbers above it move down by one.
fn without_queue(m: &Model, q: usize) -> Model {
    let mut c = m.clone();
    c.queues.remove(q);
    for prog in &mut c.procs {
        prog.actions.retain(|a| a.queue() != Some(q));
        for a in &mut prog.actions {
            match a {
                Action::Send { queue, .. }
                | Action::Receive { queue, .. }
                | Action::Call { queue, .. }
                    if *queue > q =>
                {
                    *queue -= 1;
                }
                _ => {}
            }
        }
    }
    c
}
