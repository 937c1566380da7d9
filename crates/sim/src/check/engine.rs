//! One transition of the model: restore a state's kernel, step one process,
//! let time pass if nobody can run, and judge the state reached.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mkipc_kernel::introspect::KernelStats;
use mkipc_kernel::runtime::WaitOutcome;
use mkipc_kernel::{Kernel, Pid};

use super::ctx::{describe_outcome, CheckCtx};
use super::encode::{Encode, Encoder};
use super::por;
use super::snap;
use super::world::{CheckView, Part, Slot, State, Status, World};
use crate::deadlock::{queue_label, report, Stuck, StuckOn};
use crate::driver::panic_message;
use crate::machine::{Machine, Step};
use crate::process::ExitStatus;
use crate::report::FailureReason;
use crate::time::{to_nanos, Dist};
use crate::trace::Target;
use crate::ProcId;

/// A state just reached, before the search looks it up: the kernel is in
/// it; [`Engine::freeze`] snapshots it if it is to be kept.
pub(crate) struct Succ<M> {
    pub slots: Vec<Slot<M>>,
    pub now: u64,
    /// The processes that can step in it (empty: an end state).
    pub enabled: Vec<u32>,
    /// A failure of the step itself (panic, invariant).
    pub fail: Option<FailureReason>,
    /// The step did something the checker cannot explore.
    pub unsupported: Option<String>,
    /// What the step did (when logging).
    pub log: Vec<String>,
    /// The choices the step made ([`Ctx::choose`](crate::machine::Ctx::choose)):
    /// (alternatives, the one taken), in order.
    pub made: Vec<(u32, u32)>,
    /// A choice asked for was out of range (replaying a trail that does
    /// not fit).
    pub bad_choice: bool,
    /// The step is safe for the partial-order reduction (module `por`;
    /// computed only when asked).
    pub safe: bool,
    /// What the step touched, for the partial-order reduction (module
    /// `por`; computed only when asked, else global).
    pub foot: por::Foot,
    /// With [`Engine::lazy_blocking`]: the step only blocked, in a receive
    /// on a buffered mailbox (module `por`): not a transition.
    pub blocked: bool,
    /// The wait the step left (or, when [`Succ::blocked`], would leave):
    /// a send (else a receive), on this object (`None`: several or
    /// unknown).
    pub waits: Option<(bool, Option<(u8, u64)>)>,
    /// The sender of the message the stepping process received in the
    /// step (from its completed wait or a receive that completed at once).
    pub got_from: Option<Pid>,
    /// The (last) step was local: it started no operation, used nothing
    /// through `Ctx::ipc`, spawned nothing, made no choice, did not fail,
    /// took no right and no place in a bounded queue with its completed
    /// wait's outcome, and left its process
    /// runnable (`Step::Yield`). Nobody else can see it; with
    /// [`Engine::merge_local`] the process's next local steps are merged
    /// into the same transition (statement merging, [`Engine::step`]).
    pub local: bool,
    /// How many local steps were merged into this transition after its
    /// first (the states between them not stored).
    pub merged: u32,
}

/// The most local steps merged into one transition after its first
/// ([`Engine::step`]): a process that only ever steps locally (a loop of
/// assignments) still ends its transition, and the state reached is
/// stored, so a cycle of local steps closes on the visited set as any
/// other cycle does.
pub(crate) const MAX_MERGED_STEPS: u32 = 64;

/// The transition function over a world's states.
pub(crate) struct Engine<M> {
    pub world: World<M>,
    pub check_leaks: bool,
    /// What the kernel's encoding counts (counters or not).
    pub canonical: mkipc_kernel::runtime::CanonicalOptions,
    /// The id of the frozen state the working kernel is in (0: none).
    pub holds: u64,
    /// The last id given.
    pub last_id: u64,
    /// Whether a step that blocks in a plain receive on a buffered mailbox
    /// (`por::lazy_mailbox`, `por::lazy_sources`) is reported as
    /// [`Succ::blocked`] (module `por`).
    pub lazy_blocking: bool,
    /// The initial state, its enabled processes and its failure, kept by
    /// [`Engine::initial`] (for walking a trail again after the search:
    /// module `explain`).
    pub root: Option<(State<M>, Vec<u32>, Option<FailureReason>)>,
    /// Whether a local step is merged with its process's next local steps
    /// into one transition ([`Engine::step`]; the partial-order
    /// reduction's statement merging). Off with invariants, which read the
    /// states in between.
    pub merge_local: bool,
    /// Where the parts of the last encoding ([`Engine::encode`]) end.
    pub cuts: Vec<usize>,
    /// Per part of the last encoding, its number in the collapsed visited
    /// set if known (else `u32::MAX`); the last ones are the processes'.
    pub known: Vec<u32>,
}

impl<M: Machine + Clone + Encode> Engine<M> {
    /// The initial state: the world as set up, the set-up task's send
    /// rights released (as [`Sim::run`](crate::Sim::run) does).
    pub fn initial(&mut self) -> Succ<M> {
        let w = &mut self.world;
        for name in std::mem::take(&mut w.setup_send_rights) {
            let _ = w.kernel.deallocate(w.init, name);
        }
        let mut slots = std::mem::take(&mut w.slots);
        let mut now = 0;
        let fail = self.check_invariants(&slots, now, 0);
        let enabled = settle(&self.world.kernel, &mut slots, &mut now);
        let root = self.freeze(slots.clone(), now);
        self.root = Some((root, enabled.clone(), fail.clone()));
        Succ {
            slots,
            now,
            enabled,
            fail,
            unsupported: None,
            log: Vec::new(),
            made: Vec::new(),
            bad_choice: false,
            safe: false,
            foot: por::Foot::Global,
            blocked: false,
            waits: None,
            got_from: None,
            local: false,
            merged: 0,
        }
    }

    fn check_invariants(&self, slots: &[Slot<M>], now: u64, depth: usize) -> Option<FailureReason> {
        if self.world.invariants.is_empty() {
            return None;
        }
        let view = CheckView {
            kernel: &self.world.kernel,
            slots,
            now,
        };
        for (name, check) in &self.world.invariants {
            if let Err(message) = check(&view) {
                return Some(FailureReason::Invariant {
                    name: name.clone(),
                    message,
                    step: depth as u64,
                });
            }
        }
        None
    }

    /// Steps process `i` from `parent`, making the choices `choices` (then
    /// 0s); `depth` is the new state's depth. With `judge`, says whether
    /// the step is safe for the partial-order reduction ([`Succ::safe`]).
    ///
    /// With [`Engine::merge_local`] (and no invariants), a step that is
    /// *local* ([`Succ::local`]) is followed in the same transition by the
    /// process's next steps while they are local too (statement merging;
    /// DESIGN.md, "Partial-order reduction", says why that is sound): the
    /// states in between are not returned, so not stored. The chain ends
    /// before the first step that is not local (or that only blocks), so
    /// the transition is local as a whole and the reduction's ample set of
    /// one still applies to it; and after [`MAX_MERGED_STEPS`] merged
    /// steps, so that a cycle of local steps ends at a stored state.
    pub fn step(
        &mut self,
        parent: &State<M>,
        i: usize,
        choices: &[u32],
        depth: usize,
        log: bool,
        judge: bool,
    ) -> Succ<M> {
        self.step_chain(parent, i, choices, depth, log, judge, MAX_MERGED_STEPS)
    }

    /// [`Engine::step`] merging at most `limit` local steps.
    #[allow(clippy::too_many_arguments)]
    fn step_chain(
        &mut self,
        parent: &State<M>,
        i: usize,
        choices: &[u32],
        depth: usize,
        log: bool,
        judge: bool,
        limit: u32,
    ) -> Succ<M> {
        // One thread drives this kernel: take its lock once for the whole
        // transition, so that the dozens of kernel calls in it (the
        // restore, the step's operations, the polls of every wait) go
        // straight to the state (the simulator holds its kernel so too).
        let kernel = self.world.kernel.clone();
        let _hold = kernel.hold();
        if self.holds != parent.id {
            snap::restore(&self.world.kernel, &parent.kernel);
        }
        // The kernel leaves the parent's state: the step changes it.
        self.holds = 0;
        let mut succ = self.step_here(&parent.slots, parent.now, i, choices, depth, log, judge);
        let merging = self.merge_local && self.world.invariants.is_empty();
        while merging && succ.local && succ.merged < limit {
            let mut next = self.step_here(&succ.slots, succ.now, i, choices, depth, log, judge);
            if !next.local {
                // The transition ends before this step, which is not local
                // (or only blocks). The kernel is past it: take the local
                // steps again from the parent, without it (steps are
                // deterministic, so the same chain comes out).
                let merged = succ.merged;
                snap::restore(&self.world.kernel, &parent.kernel);
                return self.step_chain(parent, i, choices, depth, log, judge, merged);
            }
            next.merged = succ.merged + 1;
            // A merged step is local: it received nothing.
            next.got_from = next.got_from.or(succ.got_from);
            if log {
                let mut lines = std::mem::take(&mut succ.log);
                lines.append(&mut next.log);
                next.log = lines;
            }
            succ = next;
        }
        succ
    }

    /// One step of process `i` from the processes `parent` at time `now`,
    /// the working kernel in the state they go with ([`Engine::step`]).
    #[allow(clippy::too_many_arguments)]
    fn step_here(
        &mut self,
        parent: &[Slot<M>],
        now: u64,
        i: usize,
        choices: &[u32],
        depth: usize,
        log: bool,
        judge: bool,
    ) -> Succ<M> {
        let kernel = &self.world.kernel;
        let mut slots = parent.to_vec();
        let pid = slots[i].pid;
        let mut lines = Vec::new();
        let timed_out = matches!(slots[i].status, Status::TimedOut { .. });
        // Taking a message handed over while the process waited frees its
        // place in a bounded queue, which may let a sender in: a step on
        // that queue, not a local one (module `por`).
        // `Some(key)`: the step frees a place in the mailbox `key` (`None`
        // inside when that is not one mailbox the reduction knows).
        let freed = match slots[i].status {
            Status::Waiting { token, .. } if kernel.wait_holds_place(pid, token) => {
                Some(match slots[i].op {
                    Some((false, Target::Name(n))) => kernel.object_key(pid, n),
                    _ => None,
                })
            }
            _ => None,
        };
        let resumed: Option<WaitOutcome> = match slots[i].status {
            Status::Waiting { token, .. } => kernel.wait_take(pid, token),
            Status::TimedOut { token } => {
                if log {
                    lines.push("times out".to_string());
                }
                Some(kernel.wait_cancel(pid, token))
            }
            _ => None,
        };
        if log {
            if let Some(o) = &resumed {
                lines.push(describe_outcome(o));
            }
        }
        // Taking a completed wait's outcome is local, unless it brings
        // rights (module `por`).
        let resumed_rights =
            matches!(&resumed, Some(WaitOutcome::Received(Ok(m))) if m.carries_rights());
        let resumed_from = match &resumed {
            Some(WaitOutcome::Received(Ok(m))) => m.sender(),
            _ => None,
        };
        slots[i].op = None;
        slots[i].part = None;
        let mut cx: CheckCtx<'_, M> =
            CheckCtx::new(kernel, pid, &self.world.waker, now, choices, log);
        let slot = &mut slots[i];
        let machine = Arc::make_mut(&mut slot.machine);
        let result = catch_unwind(AssertUnwindSafe(|| machine.step(&mut cx, resumed)));
        let spawned = std::mem::take(&mut cx.spawned);
        let mut pending = cx.pending.take();
        let pending_sources = pending.as_mut().map(|p| std::mem::take(&mut p.sources));
        let missed = std::mem::take(&mut cx.missed);
        let chose = cx.unsupported.take();
        let misuse = cx.misuse.take().or_else(|| {
            cx.blocked_outside().then(|| {
                "the machine blocked in an operation of Ctx::ipc (a machine waits only in \
                 Ctx::send and Ctx::receive)"
                    .to_string()
            })
        });
        if let Some(l) = cx.log.take() {
            lines.extend(l);
        }
        let made = std::mem::take(&mut cx.made);
        let bad_choice = cx.bad_choice;
        let opened = std::mem::take(&mut cx.opened);
        let local_ops = !cx.ipc_used.get()
            && made.is_empty()
            && spawned.is_empty()
            && opened
                .iter()
                .all(|&n| opens_locally(&self.world, parent, i, pid, n));
        let local = local_ops && freed.is_none();
        let started = cx.started;
        let got_from = cx.got_from.or(resumed_from);
        drop(cx);
        let stepped = matches!(result, Ok(Step::Yield | Step::Wait));
        let name = slots[i].name.clone();
        let mut fail = None;
        let mut unsupported = chose;
        let failed = |error: String| {
            kernel.exit_task(pid);
            Status::Ended(ExitStatus::Failed { code: 1, error })
        };
        let status = match result {
            Err(payload) => {
                let message = panic_message(&*payload);
                kernel.exit_task(pid);
                fail = Some(FailureReason::Panicked {
                    proc: name.to_string(),
                    message: message.clone(),
                });
                Status::Ended(ExitStatus::Panicked(message))
            }
            Ok(_) if misuse.is_some() => {
                if let Some(p) = &pending {
                    kernel.wait_cancel(pid, p.token);
                }
                failed(misuse.unwrap_or_default())
            }
            Ok(Step::Exit(r)) => {
                kernel.exit_task(pid);
                Status::Ended(match r {
                    Ok(()) => ExitStatus::Exited(0),
                    Err(e) => e.into_status(),
                })
            }
            Ok(Step::Wait) => match pending {
                Some(p) => {
                    slots[i].op = Some(p.op);
                    Status::Waiting {
                        token: p.token,
                        deadline: p.deadline,
                    }
                }
                None => failed("the machine waits, but none of its operations is pending".into()),
            },
            Ok(_) if pending.is_some() => {
                if let Some(p) = &pending {
                    kernel.wait_cancel(pid, p.token);
                }
                failed("the machine left an operation pending without returning Step::Wait".into())
            }
            Ok(Step::Yield) => Status::Runnable,
            Ok(Step::Pause { time, .. }) => match time {
                Dist::Fixed(d) => Status::Paused {
                    until: now.saturating_add(to_nanos(d)),
                },
                other => {
                    unsupported = Some(format!(
                        "{name} pauses for {other:?}: a random duration is unsupported by the \
                         stateful checker (use Dist::Fixed)"
                    ));
                    Status::Runnable
                }
            },
        };
        if log {
            lines.push(format!("then {}", describe_status(&status, now)));
        }
        let waits_or_runs = matches!(status, Status::Runnable | Status::Waiting { .. });
        let waits = match (&status, slots[i].op) {
            (Status::Waiting { .. }, Some((send, Target::Name(n)))) => {
                Some((send, kernel.object_key(pid, n)))
            }
            (Status::Waiting { .. }, Some((send, Target::AnyOf(_)))) => Some((send, None)),
            _ => None,
        };
        let blocked = self.lazy_blocking
            && local
            && !timed_out
            && fail.is_none()
            && unsupported.is_none()
            && match (&status, slots[i].op) {
                // A receive only: a blocked send is admitted inside the
                // receiver's step and goes on later in one of its own, where
                // a retry would do both at once (module `por`).
                // Its tries that did not go must be among what it waits for
                // (`Missed::covered_by`).
                (Status::Waiting { deadline: None, .. }, Some((false, Target::Name(n)))) => {
                    missed.covered_by(&[n])
                        && kernel
                            .object_key(pid, n)
                            .is_some_and(|k| por::lazy_mailbox(&self.world, &slots, i, k))
                }
                (Status::Waiting { deadline: None, .. }, Some((false, Target::AnyOf(_)))) => {
                    pending_sources.as_deref().is_some_and(|names| {
                        missed.covered_by(names) && por::lazy_sources(&self.world, &slots, i, names)
                    })
                }
                _ => false,
            };
        slots[i].status = status;
        slots.extend(spawned);
        if fail.is_none() {
            fail = self.check_invariants(&slots, now, depth);
        }
        let candidate = judge
            && local_ops
            && stepped
            && waits_or_runs
            && !timed_out
            && !resumed_rights
            && fail.is_none()
            && unsupported.is_none();
        let foot = if candidate {
            let foot = por::footprint(&self.world, &slots, i, started);
            match freed {
                None => foot,
                Some(key) => por::freeing_place(&self.world, foot, key),
            }
        } else {
            por::Foot::Global
        };
        let safe = candidate && por::step_is_safe(&self.world, &slots, i, foot);
        // Nothing another process can see (statement merging): what makes
        // a step safe alone as a local step (module `por`), and its
        // process runnable after it.
        let merges = local
            && started.is_none()
            && matches!(slots[i].status, Status::Runnable)
            && !timed_out
            && !resumed_rights
            && fail.is_none()
            && unsupported.is_none();
        let mut now = now;
        let enabled = settle(&self.world.kernel, &mut slots, &mut now);
        Succ {
            slots,
            now,
            enabled,
            fail,
            unsupported,
            log: lines,
            made,
            bad_choice,
            safe,
            foot,
            blocked,
            waits,
            got_from,
            local: merges,
            merged: 0,
        }
    }

    /// Steps each of `procs` in turn from `parent`, each blocking as it
    /// does without [`Engine::lazy_blocking`]: the state where all of them
    /// wait (module `por`). Stops at a step that fails.
    pub fn block_all(&mut self, parent: &State<M>, procs: &[u32], depth: usize) -> Succ<M> {
        if procs.is_empty() {
            // Not reached: the search blocks at least one.
            return self.step(parent, 0, &[], depth, false, false);
        }
        let lazy = std::mem::replace(&mut self.lazy_blocking, false);
        let mut succ = self.step(parent, procs[0] as usize, &[], depth, false, false);
        for &p in &procs[1..] {
            if succ.fail.is_some() || succ.unsupported.is_some() || !succ.enabled.contains(&p) {
                break;
            }
            let state = self.freeze(succ.slots, succ.now);
            succ = self.step(&state, p as usize, &[], depth, false, false);
        }
        self.lazy_blocking = lazy;
        succ
    }

    /// A failing state reached with [`Engine::lazy_blocking`]: if every
    /// process that could step there would only block, the state where
    /// they all wait (as the search without it stops at); else the state
    /// itself. The kernel is left in the state returned.
    pub fn settle_failing(&mut self, mut succ: Succ<M>, depth: usize) -> Succ<M> {
        if !self.lazy_blocking || succ.fail.is_none() || succ.enabled.is_empty() {
            return succ;
        }
        let fail = succ.fail.take();
        let enabled = std::mem::take(&mut succ.enabled);
        let state = self.freeze(succ.slots, succ.now);
        let all_block = enabled.iter().all(|&p| {
            self.step(&state, p as usize, &[], depth, false, false)
                .blocked
        });
        let mut out = if all_block {
            self.block_all(&state, &enabled, depth)
        } else {
            snap::restore(&self.world.kernel, &state.kernel);
            self.holds = state.id;
            Succ {
                slots: state.slots.clone(),
                now: state.now,
                enabled,
                fail: None,
                unsupported: None,
                log: Vec::new(),
                made: Vec::new(),
                bad_choice: false,
                safe: false,
                foot: por::Foot::Global,
                blocked: false,
                waits: None,
                got_from: None,
                local: false,
                merged: 0,
            }
        };
        out.fail = fail;
        out
    }

    /// [`Engine::step`] with [`Engine::lazy_blocking`] off: the step
    /// blocks as it does.
    pub fn step_eager(&mut self, parent: &State<M>, i: usize, depth: usize) -> Succ<M> {
        let lazy = std::mem::replace(&mut self.lazy_blocking, false);
        let succ = self.step(parent, i, &[], depth, false, false);
        self.lazy_blocking = lazy;
        succ
    }

    /// Puts the working kernel in `state`'s kernel.
    pub fn hold(&mut self, state: &State<M>) {
        if self.holds != state.id {
            snap::restore(&self.world.kernel, &state.kernel);
            self.holds = state.id;
        }
    }

    /// Keeps the state the kernel is in, with these processes.
    pub fn freeze(&mut self, slots: Vec<Slot<M>>, now: u64) -> State<M> {
        self.last_id += 1;
        self.holds = self.last_id;
        State {
            id: self.last_id,
            kernel: snap::take(&self.world.kernel),
            slots,
            now,
        }
    }

    /// Writes the canonical encoding of the state the kernel is in, with
    /// these processes at this time: the kernel's own, then each process's
    /// status (timers relative to now) and machine; and in
    /// [`Engine::cuts`] where its parts end (the kernel's parts, then one
    /// per process). A process's part is written again only if its cached
    /// one ([`Part`]) no longer holds; the slot keeps the new one.
    pub fn encode(&mut self, slots: &mut [Slot<M>], now: u64, out: &mut Vec<u8>) {
        let kernel = &self.world.kernel;
        // A lock for the whole encoding, not one per process and name.
        let _hold = kernel.hold();
        out.clear();
        self.cuts.clear();
        self.known.clear();
        // The order of arrivals across queues counts only while some
        // process may compare it (`Machine::may_compare_arrivals`).
        let mut opts = self.canonical;
        opts.cross_queue_order &= slots
            .iter()
            .any(|s| !matches!(s.status, Status::Ended(_)) && s.machine.may_compare_arrivals());
        snap::canonical_parts(kernel, opts, out, &mut self.cuts);
        self.known.resize(self.cuts.len(), u32::MAX);
        out.extend_from_slice(&(slots.len() as u32).to_le_bytes());
        for s in slots.iter_mut() {
            let version = snap::space_version(kernel, s.pid);
            let timed = matches!(
                s.status,
                Status::Paused { .. }
                    | Status::Waiting {
                        deadline: Some(_),
                        ..
                    }
            );
            let valid = s
                .part
                .as_ref()
                .is_some_and(|p| p.space_version == version && (!timed || p.now == now));
            if !valid {
                let start = out.len();
                encode_slot(kernel, s, now, out);
                s.part = Some(Arc::new(Part {
                    bytes: smallvec::SmallVec::from_slice(&out[start..]),
                    space_version: version,
                    now,
                    number: AtomicU32::new(u32::MAX),
                }));
                self.known.push(u32::MAX);
            } else if let Some(p) = &s.part {
                out.extend_from_slice(&p.bytes);
                self.known.push(p.number.load(Ordering::Relaxed));
            }
            self.cuts.push(out.len());
        }
        if slots.is_empty() {
            self.cuts.push(out.len());
            self.known.push(u32::MAX);
        }
    }

    /// Keeps in each process's cached part the number the visited set
    /// gave it ([`Engine::known`], filled in by the insertion).
    pub fn remember_parts(&self, slots: &[Slot<M>]) {
        let first = self.known.len().saturating_sub(slots.len());
        for (s, &n) in slots.iter().zip(&self.known[first..]) {
            if let Some(p) = &s.part {
                if n != u32::MAX {
                    p.number.store(n, Ordering::Relaxed);
                }
            }
        }
    }

    /// The verdict on an end state (nobody can step, no timer), with the
    /// kernel in that state: a deadlock unless every process still alive
    /// waits at a receive where it may (a declared server, or
    /// [`Machine::at_valid_end`]); else a process that failed
    /// unexpectedly; else a leak. (The simulator's order: `Sim::run`.)
    /// Leaves the kernel changed (the leak check ends every task).
    pub fn judge_end(&mut self, slots: &[Slot<M>]) -> Option<FailureReason> {
        self.judge_end_hinted(slots, &[])
    }

    /// [`Engine::judge_end`], with the sender of the last message each
    /// process received (by process index; `None`: none, or unknown): a
    /// deadlock's cycle search tries first, for a stuck process, the
    /// processes that took its latest message (as the simulator's report
    /// does; module `explain`).
    pub fn judge_end_hinted(
        &mut self,
        slots: &[Slot<M>],
        last_from: &[Option<Pid>],
    ) -> Option<FailureReason> {
        self.holds = 0;
        let w = &self.world;
        let kernel = &w.kernel;
        if slots.iter().any(|s| !matches!(s.status, Status::Ended(_))) {
            let blocked: Vec<Pid> = slots
                .iter()
                .filter(|s| matches!(s.status, Status::Waiting { .. } | Status::TimedOut { .. }))
                .map(|s| s.pid)
                .collect();
            let mut answers = kernel.blocked_on_all(&blocked).into_iter();
            let mut stuck = Vec::new();
            for (k, s) in slots.iter().enumerate() {
                if !matches!(s.status, Status::Waiting { .. } | Status::TimedOut { .. }) {
                    continue;
                }
                let waits = answers.next().unwrap_or_default();
                let label = match s.op {
                    Some((_, t)) => target_label(w, kernel, s.pid, t),
                    None => waits.first().map_or_else(|| "?".to_string(), queue_label),
                };
                stuck.push(Stuck {
                    proc: ProcId(k as u32),
                    name: s.name.to_string(),
                    pid: s.pid,
                    wait: StuckOn::Kernel {
                        call: matches!(s.op, Some((true, _))),
                        label,
                        waits,
                    },
                    likely: slots
                        .iter()
                        .zip(last_from)
                        .filter(|(r, from)| r.pid != s.pid && **from == Some(s.pid))
                        .map(|(r, _)| r.pid)
                        .collect(),
                });
            }
            let table: Vec<(Pid, &str)> = slots.iter().map(|s| (s.pid, &*s.name)).collect();
            let d = report(&stuck, &table, w.init);
            let valid = |id: ProcId| {
                w.servers.contains(&id.0)
                    || slots
                        .get(id.0 as usize)
                        .is_some_and(|s| s.machine.at_valid_end())
            };
            if !d.is_valid_end_with(valid) {
                return Some(FailureReason::Deadlock(d));
            }
        }
        for (k, s) in slots.iter().enumerate() {
            if let Status::Ended(ExitStatus::Failed { error, .. }) = &s.status {
                if !w.expect_error.contains(&(k as u32)) {
                    return Some(FailureReason::ProcessFailed {
                        proc: s.name.to_string(),
                        error: error.clone(),
                    });
                }
            }
        }
        if self.check_leaks {
            let stats = leftovers(w, kernel, slots);
            if stats != KernelStats::default() {
                return Some(FailureReason::FinalCheck {
                    name: "no leaks".to_string(),
                    message: format!("kernel not empty at the end: {stats:?}"),
                });
            }
        }
        None
    }
}

/// Whether process `i`'s open of a mailbox, which gave it the name `name`,
/// was local (DESIGN.md, "Partial-order reduction"): the mailbox is one of
/// the world's, open to all ([`World::mailbox`]), and no other process
/// still alive may destroy it or change who may use it
/// ([`MailboxUse::Manage`](crate::machine::MailboxUse::Manage)). The open
/// then only adds a name to `i`'s own space, which no other process's
/// step reads or writes while `i` can step, so it commutes with every
/// step of every other process.
fn opens_locally<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    i: usize,
    pid: Pid,
    name: mkipc_kernel::PortName,
) -> bool {
    let Some(key) = world.kernel.object_key(pid, name) else {
        return false;
    };
    let Some(label) = world.label_of(key) else {
        return false;
    };
    world.open_mailboxes.contains(&key)
        && slots.iter().enumerate().all(|(j, s)| {
            j == i
                || matches!(s.status, Status::Ended(_))
                || !s
                    .machine
                    .may_use_mailbox(label, crate::machine::MailboxUse::Manage)
        })
}

/// Appends a process's part of the encoding: its pid, status (timers
/// relative to `now`) and machine.
fn encode_slot<M: Encode>(kernel: &Kernel, s: &Slot<M>, now: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&s.pid.0.to_le_bytes());
    match &s.status {
        Status::Runnable => out.push(0),
        Status::Waiting { token, deadline } => {
            out.push(1);
            out.push(u8::from(token.is_send()));
            let rel = deadline.map_or(u64::MAX, |d| d.saturating_sub(now));
            out.extend_from_slice(&rel.to_le_bytes());
        }
        Status::TimedOut { token } => {
            out.push(2);
            out.push(u8::from(token.is_send()));
        }
        Status::Paused { until } => {
            out.push(3);
            out.extend_from_slice(&until.saturating_sub(now).to_le_bytes());
        }
        Status::Ended(e) => {
            out.push(4);
            out.extend_from_slice(&e.code().to_le_bytes());
            if let ExitStatus::Failed { error, .. } | ExitStatus::Panicked(error) = e {
                out.extend_from_slice(&(error.len() as u32).to_le_bytes());
                out.extend_from_slice(error.as_bytes());
            }
            // An ended machine's value has no future, but invariants and
            // end states may read it: encoded too.
        }
    }
    let mut e = Encoder::new(kernel, s.pid, out);
    s.machine.encode(&mut e);
}

/// What the kernel still holds once every task has ended and the world's
/// mailboxes are gone (what the simulator's leak check sees).
fn leftovers<M>(w: &World<M>, kernel: &Kernel, slots: &[Slot<M>]) -> KernelStats {
    for s in slots {
        if !matches!(s.status, Status::Ended(_)) {
            kernel.exit_task(s.pid);
        }
    }
    for &m in &w.mailboxes {
        let _ = kernel.mailbox_destroy(w.init, m);
    }
    kernel.exit_task(w.init);
    kernel.stats()
}

/// How a deadlock report names what a process waits on.
fn target_label<M>(w: &World<M>, kernel: &Kernel, pid: Pid, t: Target) -> String {
    match t {
        Target::Name(n) => match kernel.object_key(pid, n).and_then(|k| w.label_of(k)) {
            Some(l) => l.to_string(),
            None => format!("{n}"),
        },
        Target::AnyOf(k) => format!("any of {k}"),
        Target::Task(p) => format!("pid {p}"),
        Target::AnyTask => "any task".to_string(),
    }
}

fn describe_status(s: &Status, now: u64) -> String {
    match s {
        Status::Runnable => "runnable".into(),
        Status::Waiting { token, .. } => {
            format!(
                "waits ({})",
                if token.is_send() { "send" } else { "receive" }
            )
        }
        Status::TimedOut { .. } => "timed out".into(),
        Status::Paused { until } => format!(
            "pauses {:?}",
            std::time::Duration::from_nanos(until.saturating_sub(now))
        ),
        Status::Ended(e) => format!("ends: {e}"),
    }
}

/// The processes that can step; when there are none, moves time to the
/// earliest timer (ending pauses there and timing out waits, as the
/// simulator's loop does) and looks again. Empty: an end state.
pub(crate) fn settle<M>(kernel: &Kernel, slots: &mut [Slot<M>], now: &mut u64) -> Vec<u32> {
    loop {
        let enabled: Vec<u32> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| match s.status {
                Status::Runnable | Status::TimedOut { .. } => true,
                Status::Waiting { token, .. } => snap::wait_done(kernel, s.pid, token),
                _ => false,
            })
            .map(|(k, _)| k as u32)
            .collect();
        if !enabled.is_empty() {
            return enabled;
        }
        let next = slots
            .iter()
            .filter_map(|s| match s.status {
                Status::Paused { until } => Some(until),
                Status::Waiting {
                    deadline: Some(d), ..
                } => Some(d),
                _ => None,
            })
            .min();
        let Some(t) = next else {
            return enabled;
        };
        *now = (*now).max(t);
        for s in slots.iter_mut() {
            match s.status {
                Status::Paused { until } if until <= *now => {
                    s.status = Status::Runnable;
                    s.part = None;
                }
                Status::Waiting {
                    token,
                    deadline: Some(d),
                } if d <= *now => {
                    s.status = Status::TimedOut { token };
                    s.part = None;
                }
                _ => {}
            }
        }
    }
}
