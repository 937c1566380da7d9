//! Dynamic partial-order reduction (DPOR) for exhaustive exploration.
//!
//! Plain depth-first search ([`DfsTrail`](super::DfsTrail)) branches at every
//! choice point. Most of those branches only reorder steps that cannot
//! affect each other — two sends to different ports, a `yield_now`, a failed
//! `try_send` next to a receive elsewhere — and every reordering of such
//! steps ends in the same state. DPOR runs one order of each class of
//! equivalent schedules (Mazurkiewicz traces) and branches only where two
//! *dependent* steps of different processes could have run the other way
//! round.
//!
//! Each step (from one scheduling point of a process to its next) records a
//! [`Footprint`]: the kernel objects its operation touched, read or written,
//! or "global" when the step does something not classified (spawn, exit,
//! kill, a call, rights in a message...; see DESIGN.md, "Exploration").
//! Two steps are dependent when one is global, or both touch an object and
//! one writes it. Virtual time advancing is a global pseudo-step ("tick") of
//! no process: it happens only when no process can run, so it is no choice,
//! and it orders everything before it before everything after it.
//!
//! The algorithm is source-set DPOR with sleep sets (Abdulla, Aronis,
//! Jonsson, Sagonas, "Optimal dynamic partial order reduction", POPL 2014,
//! Algorithm 1), stateless: every run replays a prefix of the exploration
//! tree from the start and then extends it, as the plain DFS does. After a
//! run, vector clocks give the happens-before order of its steps; for each
//! pair of dependent steps of different processes with no step ordered
//! between them (a race), the tree gets a backtrack point before the first
//! one, for a process that can start the reversed order. When none of those
//! processes can run there (it was blocked and the first step is what woke
//! it), every process that can run there is added, as in Flanagan and
//! Godefroid's DPOR: conservative, and what keeps blocking sound. Sleep sets
//! carry the processes already explored from a state down the branches
//! where their next step stays independent, so no class is run twice to its
//! end; a run that can only continue with a sleeping process is redundant
//! from there on (counted as such, and not analysed further).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::Scheduler;
use crate::rng::SimRng;
use crate::ProcId;

/// The pseudo-process of a virtual-time advance.
const TICK: u32 = u32::MAX;

/// An object a step touches.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Obj {
    /// A kernel object: `(kind, id)` from `Kernel::object_key` (port,
    /// port set, mailbox).
    Kernel(u8, u64),
    /// The table of mailbox names (`mailbox_open` reads it).
    MailboxNames,
    /// The run's shared random stream (`random_below`, random durations).
    Rng,
    /// The completion of a process's blocked operation: written by the step
    /// that completed it (and woke the process), read by the step that
    /// resumes the process.
    Wait(u32),
    /// The kernel's global arrival order of messages: written by every send
    /// once the run has shown a receive from several queues at once, which
    /// picks the oldest message by it.
    Stamp,
}

/// What one step touched (module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Dependent with every other step.
    pub global: bool,
    /// Objects touched, and whether written.
    pub access: Vec<(Obj, bool)>,
}

impl Footprint {
    fn global() -> Footprint {
        Footprint {
            global: true,
            access: Vec::new(),
        }
    }

    pub(crate) fn touch(&mut self, obj: Obj, write: bool) {
        if self.global {
            return;
        }
        match self.access.iter_mut().find(|(o, _)| *o == obj) {
            Some(entry) => entry.1 |= write,
            None => self.access.push((obj, write)),
        }
    }

    pub(crate) fn set_global(&mut self) {
        self.global = true;
        self.access.clear();
    }

    /// Whether the two steps may not commute.
    pub(crate) fn dependent(&self, other: &Footprint) -> bool {
        if self.global || other.global {
            return true;
        }
        self.access
            .iter()
            .any(|(a, wa)| other.access.iter().any(|(b, wb)| a == b && (*wa || *wb)))
    }
}

/// One step of a run, as recorded.
#[derive(Clone, Debug)]
struct Ev {
    /// The process that ran ([`TICK`] for a time advance).
    proc: u32,
    /// The processes that could run at this point (sorted).
    enabled: Vec<u32>,
    /// The sleep set here (only for steps past the replayed prefix).
    sleep: Vec<(u32, Footprint)>,
    fp: Footprint,
    /// Processes that could run and that this step killed: their next step
    /// never ran (module docs).
    killed: Vec<u32>,
    /// Processes whose blocked operation this step completed (woke).
    woke: Vec<u32>,
}

/// A state of the exploration tree: one step of the current run.
#[derive(Clone, Debug)]
struct Node {
    proc: u32,
    enabled: Vec<u32>,
    sleep: Vec<(u32, Footprint)>,
    /// Processes explored from here already, with their step's footprint.
    done: Vec<(u32, Footprint)>,
    /// Processes still to explore from here.
    backtrack: Vec<u32>,
    fp: Footprint,
    /// Whether this was a real choice (two or more could run).
    asked: bool,
    /// Real choices before this one.
    depth: usize,
}

impl Node {
    fn covers(&self, p: u32) -> bool {
        p == self.proc
            || self.backtrack.contains(&p)
            || self.done.iter().any(|(q, _)| *q == p)
            || self.sleep.iter().any(|(q, _)| *q == p)
    }
}

#[derive(Debug, Default)]
struct Inner {
    // ----- set by the explorer for the next run
    prefix: Vec<u32>,
    branch_sleep: Vec<(u32, Footprint)>,
    /// Every step is global (invariants, per-step faults).
    all_global: bool,
    /// Sends write [`Obj::Stamp`].
    stamps: bool,
    // ----- recorded by the run
    events: Vec<Ev>,
    nodes: usize,
    cur_sleep: Vec<(u32, Footprint)>,
    settled: bool,
    blocked_at: Option<usize>,
    diverged: bool,
    multi_queue: bool,
    /// The run is over: nothing more is recorded.
    ended: bool,
    /// Processes still alive when a failure cut the run short.
    cut_short: Vec<u32>,
    // ----- the exploration tree
    tree: Vec<Node>,
}

impl Inner {
    /// Applies the last finished step to the sleep set (once).
    fn settle(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let Some(last) = self.events.last() else {
            return;
        };
        let fp = &last.fp;
        self.cur_sleep.retain(|(_, f)| !f.dependent(fp));
    }

    fn begin(&mut self, proc: u32, enabled: Vec<u32>) {
        self.settle();
        let k = self.nodes;
        let mut sleep = Vec::new();
        if k + 1 == self.prefix.len() {
            self.cur_sleep = self.branch_sleep.clone();
        } else if k >= self.prefix.len() {
            if self.blocked_at.is_none() && self.cur_sleep.iter().any(|(q, _)| *q == proc) {
                self.blocked_at = Some(k);
            }
            sleep = self.cur_sleep.clone();
        }
        if k < self.prefix.len() && self.prefix[k] != proc {
            self.diverged = true;
        }
        let mut fp = Footprint::default();
        if self.all_global {
            fp.set_global();
        }
        self.events.push(Ev {
            proc,
            enabled,
            sleep,
            fp,
            killed: Vec::new(),
            woke: Vec::new(),
        });
        self.nodes += 1;
        self.settled = false;
    }
}

/// The shared record of a DPOR exploration: the tree, the prefix of the next
/// run, and what the current run does. The explorer owns it; each run's
/// [`Scheduler`] and its core hold clones.
#[derive(Clone, Debug, Default)]
pub struct DporTrail {
    inner: Rc<RefCell<Inner>>,
}

/// What [`DporTrail::advance`] learned from a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunInfo {
    /// The run was redundant from some point on (sleep-set blocked).
    pub redundant: bool,
    /// The model did not repeat the replayed prefix (it is not deterministic).
    pub diverged: bool,
    /// Backtrack points not added because of the depth bound.
    pub cut: u64,
    /// The run showed a receive from several queues at once while sends
    /// were not ordered by arrival stamps: the exploration must start over
    /// with [`DporTrail::with_stamps`].
    pub restart_with_stamps: bool,
}

impl DporTrail {
    /// A fresh exploration.
    pub(crate) fn new(all_global: bool, stamps: bool) -> DporTrail {
        let t = DporTrail::default();
        {
            let mut i = t.inner.borrow_mut();
            i.all_global = all_global;
            i.stamps = stamps;
        }
        t
    }

    /// Whether sends are ordered by arrival stamps in this exploration.
    pub(crate) fn stamps(&self) -> bool {
        self.inner.borrow().stamps
    }

    /// Starts recording a run (called when a run's scheduler is built).
    fn start_run(&self) {
        let mut i = self.inner.borrow_mut();
        i.events.clear();
        i.nodes = 0;
        i.cur_sleep.clear();
        i.settled = true;
        i.blocked_at = None;
        i.diverged = false;
        i.multi_queue = false;
        i.ended = false;
        i.cut_short.clear();
    }

    /// The run is over; `cut_short` lists the processes still alive if a
    /// failure stopped it before it could end.
    pub(crate) fn end_run(&self, cut_short: Vec<u32>) {
        let mut i = self.inner.borrow_mut();
        i.ended = true;
        i.cut_short = cut_short;
    }

    /// Every step from now on is global (the run has per-step checks or
    /// faults, under which no two steps commute).
    pub(crate) fn set_all_global(&self) {
        self.inner.borrow_mut().all_global = true;
    }

    /// Whether the exploration treats every step as global.
    pub(crate) fn all_global(&self) -> bool {
        self.inner.borrow().all_global
    }

    /// A step of `proc` starts; `ready` could run (including `proc`).
    pub(crate) fn begin(&self, proc: ProcId, ready: &VecDeque<ProcId>) {
        let mut enabled: Vec<u32> = ready.iter().map(|p| p.0).collect();
        enabled.sort_unstable();
        self.inner.borrow_mut().begin(proc.0, enabled);
    }

    /// A step of `proc` starts and nobody else could run.
    pub(crate) fn begin_alone(&self, proc: ProcId) {
        self.inner.borrow_mut().begin(proc.0, vec![proc.0]);
    }

    /// Virtual time advances (nobody could run).
    pub(crate) fn tick(&self) {
        let mut i = self.inner.borrow_mut();
        i.settle();
        i.events.push(Ev {
            proc: TICK,
            enabled: Vec::new(),
            sleep: Vec::new(),
            fp: Footprint::global(),
            killed: Vec::new(),
            woke: Vec::new(),
        });
        i.settled = false;
    }

    /// The current step touches `obj`.
    pub(crate) fn touch(&self, obj: Obj, write: bool) {
        let mut i = self.inner.borrow_mut();
        if i.ended {
            return;
        }
        if let Some(e) = i.events.last_mut() {
            e.fp.touch(obj, write);
        }
    }

    /// The current step is dependent with every other.
    pub(crate) fn touch_global(&self) {
        let mut i = self.inner.borrow_mut();
        if i.ended {
            return;
        }
        if let Some(e) = i.events.last_mut() {
            e.fp.set_global();
        }
    }

    /// The current step completed `proc`'s blocked operation.
    pub(crate) fn woke(&self, proc: u32) {
        let mut i = self.inner.borrow_mut();
        if i.ended {
            return;
        }
        if let Some(e) = i.events.last_mut() {
            e.fp.touch(Obj::Wait(proc), true);
            e.woke.push(proc);
        }
    }

    /// The current step killed `proc`, which could run: its next step,
    /// never run, is taken to be dependent with everything.
    pub(crate) fn killed_ready(&self, proc: ProcId) {
        let mut i = self.inner.borrow_mut();
        if i.ended {
            return;
        }
        if let Some(e) = i.events.last_mut() {
            e.killed.push(proc.0);
        }
    }

    /// The current step receives from several queues at once.
    pub(crate) fn multi_queue(&self) {
        let mut i = self.inner.borrow_mut();
        if i.ended {
            return;
        }
        i.multi_queue = true;
        if let Some(e) = i.events.last_mut() {
            e.fp.set_global();
        }
    }

    /// After a run: grows the tree, adds backtrack points for its races
    /// (at most `max_depth` real choices deep), and sets up the next run.
    /// Returns what it learned and whether there is a next run.
    pub(crate) fn advance(&self, max_depth: usize) -> (RunInfo, bool) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let mut info = RunInfo {
            redundant: inner.blocked_at.is_some(),
            diverged: inner.diverged,
            ..RunInfo::default()
        };
        if inner.multi_queue && !inner.stamps {
            info.restart_with_stamps = true;
            return (info, false);
        }
        let prefix_len = inner.prefix.len();
        let events = std::mem::take(&mut inner.events);
        // Steps past the point where the run became redundant are not
        // part of the tree.
        let mut ev_node: Vec<Option<usize>> = Vec::with_capacity(events.len());
        let mut kept = events.len();
        let mut k = 0usize;
        for (j, ev) in events.iter().enumerate() {
            if ev.proc == TICK {
                ev_node.push(None);
                continue;
            }
            if inner.blocked_at.is_some_and(|b| k >= b) {
                kept = j;
                break;
            }
            if k + 1 < prefix_len {
                // Replayed: the tree has it already.
            } else if k + 1 == prefix_len {
                if let Some(n) = inner.tree.get_mut(k) {
                    n.fp = ev.fp.clone();
                }
            } else {
                let depth = inner
                    .tree
                    .last()
                    .map_or(0, |n| n.depth + usize::from(n.asked));
                inner.tree.push(Node {
                    proc: ev.proc,
                    enabled: ev.enabled.clone(),
                    sleep: ev.sleep.clone(),
                    done: Vec::new(),
                    backtrack: Vec::new(),
                    fp: ev.fp.clone(),
                    asked: ev.enabled.len() > 1,
                    depth,
                });
            }
            ev_node.push(Some(k));
            k += 1;
        }
        // The steps to analyse: the run's, plus a global pseudo-step for
        // each process killed while it could run (right after the kill),
        // and for each process alive when a failure cut the run short (at
        // the end). Those are the next steps the run never ran.
        let pseudo = |p: u32| Ev {
            proc: p,
            enabled: Vec::new(),
            sleep: Vec::new(),
            fp: Footprint::global(),
            killed: Vec::new(),
            woke: Vec::new(),
        };
        let mut analysed: Vec<Ev> = Vec::with_capacity(kept);
        let mut analysed_node: Vec<Option<usize>> = Vec::with_capacity(kept);
        for (ev, node) in events.into_iter().take(kept).zip(ev_node) {
            let killed = ev.killed.clone();
            analysed.push(ev);
            analysed_node.push(node);
            for p in killed {
                analysed.push(pseudo(p));
                analysed_node.push(None);
            }
        }
        if inner.blocked_at.is_none() {
            for &p in &inner.cut_short {
                analysed.push(pseudo(p));
                analysed_node.push(None);
            }
        }
        let (events, ev_node) = (analysed, analysed_node);
        if !info.diverged {
            // The first step that is new in this run.
            let from = ev_node
                .iter()
                .position(|n| n.is_some_and(|k| k + 1 >= prefix_len))
                .unwrap_or(events.len());
            info.cut = add_backtracks(&mut inner.tree, &events, &ev_node, from, max_depth);
        }
        // The next branch: the deepest node with a process left to explore.
        while let Some(n) = inner.tree.last_mut() {
            let next = n.backtrack.iter().position(|&p| {
                p != n.proc
                    && n.enabled.contains(&p)
                    && !n.done.iter().any(|(q, _)| *q == p)
                    && !n.sleep.iter().any(|(q, _)| *q == p)
            });
            match next {
                Some(i) => {
                    let p = n.backtrack.swap_remove(i);
                    let old = std::mem::replace(&mut n.proc, p);
                    let fp = std::mem::take(&mut n.fp);
                    n.done.push((old, fp));
                    let mut sleep = n.sleep.clone();
                    sleep.extend(n.done.iter().cloned());
                    inner.branch_sleep = sleep;
                    inner.prefix = inner.tree.iter().map(|n| n.proc).collect();
                    return (info, true);
                }
                None => {
                    inner.tree.pop();
                }
            }
        }
        (info, false)
    }

    /// Branches still to explore in the tree (for a search cut short).
    pub(crate) fn pending(&self) -> u64 {
        let inner = self.inner.borrow();
        inner
            .tree
            .iter()
            .map(|n| {
                n.backtrack
                    .iter()
                    .filter(|&&p| p != n.proc && !n.done.iter().any(|(q, _)| *q == p))
                    .count() as u64
            })
            .sum::<u64>()
            + u64::from(!inner.prefix.is_empty())
    }
}

/// Finds the races of a run's steps `events` (those ending at or after
/// `from`) and adds backtrack points to `tree`; returns how many were left
/// out by the depth bound.
fn add_backtracks(
    tree: &mut [Node],
    events: &[Ev],
    ev_node: &[Option<usize>],
    from: usize,
    max_depth: usize,
) -> u64 {
    let max_proc = events
        .iter()
        .filter(|e| e.proc != TICK)
        .map(|e| e.proc as usize)
        .max()
        .unwrap_or(0);
    let width = max_proc + 2;
    let slot = |e: &Ev| {
        if e.proc == TICK {
            max_proc + 1
        } else {
            e.proc as usize
        }
    };
    let n = events.len();
    let mut clocks: Vec<Vec<u32>> = Vec::with_capacity(n);
    let mut seq: Vec<u32> = Vec::with_capacity(n);
    let mut last_of: Vec<Option<usize>> = vec![None; width];
    let mut races: Vec<(usize, usize)> = Vec::new();
    // A pseudo-step (a next step that never ran) races with what came
    // before it but orders nothing after it: it did not happen.
    let pseudo = |k: usize| ev_node[k].is_none() && events[k].proc != TICK;
    for j in 0..n {
        let s = slot(&events[j]);
        let mut c = match last_of[s] {
            Some(l) => clocks[l].clone(),
            None => vec![0; width],
        };
        let my_seq = c[s] + 1;
        for i in (0..j).rev() {
            let si = slot(&events[i]);
            if si == s || pseudo(i) || c[si] >= seq[i] || !events[i].fp.dependent(&events[j].fp) {
                continue;
            }
            // Not a race: the step that woke a blocked process and the
            // step resuming it (the first of that process since), which
            // cannot run first. The other steps that could have woken it
            // touch the same queue, so they race with the waker directly.
            let enabling = !pseudo(j)
                && events[i].woke.contains(&events[j].proc)
                && last_of[s].is_none_or(|l| l < i);
            if j >= from && events[i].proc != TICK && events[j].proc != TICK && !enabling {
                races.push((i, j));
            }
            for (a, b) in c.iter_mut().zip(&clocks[i]) {
                *a = (*a).max(*b);
            }
        }
        c[s] = my_seq;
        clocks.push(c);
        seq.push(my_seq);
        if !pseudo(j) {
            last_of[s] = Some(j);
        }
    }
    let mut cut = 0;
    for (i, j) in races {
        let Some(pre) = ev_node[i] else { continue };
        let (si, qi) = (slot(&events[i]), seq[i]);
        // v = the steps after i not ordered after it, then j.
        let mut v: Vec<usize> = (i + 1..j).filter(|&k| clocks[k][si] < qi).collect();
        v.push(j);
        // Initials of v: processes whose first step in v has no
        // predecessor in v.
        let mut initials: Vec<u32> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        for (x_at, &x) in v.iter().enumerate() {
            let px = events[x].proc;
            if seen.contains(&px) {
                continue;
            }
            seen.push(px);
            let first = v[..x_at]
                .iter()
                .all(|&y| clocks[x][slot(&events[y])] < seq[y]);
            if first {
                initials.push(px);
            }
        }
        let node = &mut tree[pre];
        if initials.iter().any(|&p| node.covers(p)) {
            continue;
        }
        let add: Vec<u32> = match initials.iter().find(|p| node.enabled.contains(p)) {
            Some(&p) => vec![p],
            None => node
                .enabled
                .iter()
                .copied()
                .filter(|&q| !node.covers(q))
                .collect(),
        };
        if add.is_empty() {
            continue;
        }
        if node.asked && node.depth >= max_depth {
            cut += add.len() as u64;
            continue;
        }
        node.backtrack.extend(add);
    }
    cut
}

/// Follows the trail's prefix by process, then runs the first process not
/// in the sleep set.
#[derive(Debug)]
pub struct DporScheduler {
    trail: DporTrail,
}

impl DporScheduler {
    /// A scheduler for one run of the trail.
    pub fn new(trail: DporTrail) -> DporScheduler {
        trail.start_run();
        DporScheduler { trail }
    }
}

impl Scheduler for DporScheduler {
    fn choose(&mut self, ready: &VecDeque<ProcId>, _rng: &mut SimRng) -> usize {
        let mut i = self.trail.inner.borrow_mut();
        i.settle();
        let k = i.nodes;
        if let Some(&want) = i.prefix.get(k) {
            return match ready.iter().position(|p| p.0 == want) {
                Some(at) => at,
                None => {
                    i.diverged = true;
                    0
                }
            };
        }
        ready
            .iter()
            .position(|p| !i.cur_sleep.iter().any(|(q, _)| *q == p.0))
            .unwrap_or(0)
    }
    fn diverged(&self) -> bool {
        self.trail.inner.borrow().diverged
    }
    fn name(&self) -> &'static str {
        "dpor"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(objs: &[(u64, bool)]) -> Footprint {
        let mut f = Footprint::default();
        for &(o, w) in objs {
            f.touch(Obj::Kernel(0, o), w);
        }
        f
    }

    #[test]
    fn dependency_follows_reads_and_writes() {
        assert!(!fp(&[(1, true)]).dependent(&fp(&[(2, true)])));
        assert!(fp(&[(1, true)]).dependent(&fp(&[(1, false)])));
        assert!(!fp(&[(1, false)]).dependent(&fp(&[(1, false)])));
        assert!(Footprint::global().dependent(&Footprint::default()));
        assert!(!Footprint::default().dependent(&fp(&[(1, true)])));
    }
}
