//! The scheduler loop, which with its state ([`Core`], module `runtime`)
//! is the layer every process kind runs on.
//!
//! A [`Driver`] owns every process's body (a coroutine, or a
//! [`Stackless`](crate::runtime::Stackless) body the loop resumes itself)
//! and takes the steps: each turn it adopts the bodies spawned since the
//! last one, applies kill requests and planned faults, moves woken
//! processes to the ready queue, then — if nobody is ready — advances the
//! virtual clock to the next timer (or planned kill), or stops: [`Stop::Finished`]
//! if every process ended, [`Stop::Stuck`] otherwise (whether that is a
//! deadlock or a valid end is the caller's to tell, `deadlock::analyse`).
//! With someone ready, the scheduler picks ([`Core::pick`]), and the chosen
//! body is resumed until it hands back a [`Suspend`] request or ends.
//!
//! A step may touch the [`Core`] (through the process's handle), the
//! kernel, and the bodies here; nothing above this module (set-up API,
//! reports, deadlock explanation) runs during a step, except the caller's
//! `after_step` check (the invariants). Ending a process goes the same way
//! whether it returned, panicked, was killed or was still stuck when the
//! run stopped: its kernel task exits (the kernel destroys its receive
//! rights, releases its send rights, wakes blocked peers with the
//! documented errors), then its body is dropped, which unwinds a coroutine
//! so its destructors run. IPC from those destructors fails with
//! `TaskExited`, and their scheduling points do nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use corosensei::CoroutineResult;

use crate::exit::ExitStatus;
use crate::runtime::{Body, Core, PState, Suspend};
use crate::stack::{Canary, StackPool};
use crate::tables::KillPlan;
use crate::time::Nanos;
use crate::trace::{EventKind, KillCause};
use crate::ProcId;

/// The most bodies [`Driver::adopt_spawned`]'s scratch vector keeps room for
/// between calls.
const ADOPTING_KEPT: usize = 1024;

/// How a run's loop stopped ([`Driver::run`]).
#[derive(Debug)]
pub(crate) enum Stop<E> {
    /// Every process ended.
    Finished,
    /// Nobody is ready and no timer or planned kill is pending, but some
    /// process has not ended: a deadlock, or a valid end state.
    Stuck,
    /// The step limit was reached.
    StepLimit(u64),
    /// A process's stack overflowed (its canary was found smashed).
    StackOverflow { proc: String },
    /// A process panicked (it has ended, `ExitStatus::Panicked`).
    Panicked { proc: String, message: String },
    /// The caller's check after a step failed.
    AfterStep(E),
}

/// The scheduler loop and what it owns (module docs).
pub(crate) struct Driver {
    pub core: Rc<Core>,
    /// Each process's body (coroutine or stackless machine) while it lives.
    pub coroutines: Vec<Option<Body>>,
    pub canaries: Vec<Option<Canary>>,
    /// Scratch for [`Driver::adopt_spawned`]: always empty between calls.
    pub adopting: Vec<(ProcId, Body, Option<Canary>)>,
    pub step_kills: KillPlan<u64>,
    pub time_kills: KillPlan<Nanos>,
    pub random_kills: Vec<(ProcId, f64)>,
    pub stack_overflowed: bool,
}

impl Driver {
    /// A loop with no process yet, on `core`.
    pub(crate) fn new(core: Rc<Core>) -> Driver {
        Driver {
            core,
            coroutines: Vec::new(),
            canaries: Vec::new(),
            adopting: Vec::new(),
            step_kills: KillPlan::default(),
            time_kills: KillPlan::default(),
            random_kills: Vec::new(),
            stack_overflowed: false,
        }
    }

    /// Whether faults are planned (at a step, at a time, or at random).
    pub(crate) fn has_faults(&self) -> bool {
        !self.step_kills.is_empty() || !self.time_kills.is_empty() || !self.random_kills.is_empty()
    }

    /// Runs the loop until the run ends (module docs); `after_step` is
    /// called after every step, and an error it returns stops the run. The
    /// caller holds the kernel (`Sim::run_here_with`).
    pub(crate) fn run<E>(&mut self, mut after_step: impl FnMut(&Core) -> Result<(), E>) -> Stop<E> {
        let core = Rc::clone(&self.core);
        // A process that chose its successor at a scheduling point (see
        // `SimCtx::point`) hands it over here; the step is already counted.
        let mut chosen: Option<ProcId> = None;
        loop {
            let id = match chosen.take() {
                Some(id) => id,
                None => match self.next_to_run(&core) {
                    Ok(id) => id,
                    Err(end) => return end,
                },
            };
            let body = self.coroutines[id.0 as usize]
                .as_mut()
                .expect("a ready process has a body");
            let result = catch_unwind(AssertUnwindSafe(|| match body {
                Body::Co(co) => co.resume(()),
                Body::Machine(m) => m.resume(),
            }));
            // Also when the process returned: an overflow just before the end
            // must not pass, nor its dirty slot go back to the pool (whose
            // next user, maybe in a later run, would be blamed for it).
            if let (Ok(CoroutineResult::Yield(_) | CoroutineResult::Return(_)), Some(canary)) =
                (&result, self.canaries[id.0 as usize])
            {
                // SAFETY: the coroutine that owns this stack is alive (it just
                // yielded or returned and sits in `self.coroutines`, which
                // keeps the stack) and nothing runs on it.
                if !unsafe { canary.intact() } {
                    self.stack_overflowed = true;
                    let proc = core.procs.borrow()[id.0 as usize].name.to_string();
                    return Stop::StackOverflow { proc };
                }
            }
            match result {
                Ok(CoroutineResult::Yield(Suspend::SwitchTo(next))) => chosen = Some(next),
                Ok(CoroutineResult::Yield(s)) => self.on_suspend(id, s),
                Ok(CoroutineResult::Return(r)) => {
                    self.coroutines[id.0 as usize] = None;
                    let status = match r {
                        Ok(()) => ExitStatus::Exited(0),
                        Err(e) => e.into_status(),
                    };
                    self.end_process(id, status);
                }
                Err(payload) => {
                    // The panic stops the run: dependent with everything.
                    core.touch_global();
                    self.coroutines[id.0 as usize] = None;
                    let message = panic_message(&*payload);
                    self.end_process(id, ExitStatus::Panicked(message.clone()));
                    let proc = core.procs.borrow()[id.0 as usize].name.to_string();
                    return Stop::Panicked { proc, message };
                }
            }
            if let Err(e) = after_step(&core) {
                return Stop::AfterStep(e);
            }
        }
    }

    /// One turn of the loop's bookkeeping: spawns, kills, faults, wakes,
    /// timers; then the process to run next (marked running, step counted),
    /// or how the run ends.
    fn next_to_run<E>(&mut self, core: &Rc<Core>) -> Result<ProcId, Stop<E>> {
        loop {
            self.adopt_spawned();
            self.apply_kill_requests();
            self.apply_faults();
            // After kills: a killed task's exit wakes its peers.
            core.apply_wakes();
            if core.ready.borrow().is_empty() {
                match self.next_event_time() {
                    Some(t) => {
                        if let Some(d) = &core.dpor {
                            d.tick();
                        }
                        core.advance_clock(t);
                        self.fire_timers();
                        continue;
                    }
                    None => {
                        if core.procs.borrow().iter().all(|m| m.state == PState::Done) {
                            return Err(Stop::Finished);
                        }
                        return Err(Stop::Stuck);
                    }
                }
            }
            if core.step.get() >= core.max_steps {
                return Err(Stop::StepLimit(core.max_steps));
            }
            let id = core.pick();
            core.step.set(core.step.get() + 1);
            core.procs.borrow_mut()[id.0 as usize].state = PState::Running;
            return Ok(id);
        }
    }

    pub(crate) fn adopt_spawned(&mut self) {
        if self.core.spawned.borrow().is_empty() {
            return;
        }
        // Swapped with an empty vector of the loop's, so both keep their
        // memory from one run to the next (and no borrow is held while the
        // bodies move).
        let mut spawned = std::mem::take(&mut self.adopting);
        std::mem::swap(&mut spawned, &mut *self.core.spawned.borrow_mut());
        for (id, co, canary) in spawned.drain(..) {
            let i = id.0 as usize;
            if self.coroutines.len() <= i {
                self.coroutines.resize_with(i + 1, || None);
                self.canaries.resize(i + 1, None);
            }
            self.coroutines[i] = Some(co);
            self.canaries[i] = canary;
        }
        // Kept for the next run unless it held a whole population (a
        // million processes spawned before the run): that much memory,
        // written once, would stay resident for nothing.
        if spawned.capacity() > ADOPTING_KEPT {
            spawned = Vec::new();
        }
        self.adopting = spawned;
    }

    fn on_suspend(&mut self, id: ProcId, s: Suspend) {
        let core = &self.core;
        let i = id.0 as usize;
        match s {
            Suspend::Yield => {
                core.procs.borrow_mut()[i].state = PState::Ready;
                core.ready.borrow_mut().push_back(id);
            }
            Suspend::Block { deadline } => {
                core.procs.borrow_mut()[i].state = PState::Blocked;
                if let Some(d) = deadline {
                    core.add_timer(id, d);
                }
            }
            Suspend::Timer { until } => {
                core.procs.borrow_mut()[i].state = PState::Timer;
                core.add_timer(id, until);
            }
            Suspend::SwitchTo(_) => unreachable!("handled by the loop"),
            Suspend::Join(target) => {
                let mut procs = core.procs.borrow_mut();
                if procs
                    .get(target.0 as usize)
                    .is_none_or(|t| t.state == PState::Done)
                {
                    procs[i].state = PState::Ready;
                    core.ready.borrow_mut().push_back(id);
                } else {
                    procs[i].state = PState::Joining(target);
                    procs[target.0 as usize]
                        .joiners
                        .get_or_insert_with(Box::default)
                        .push(id);
                }
            }
        }
    }

    fn next_event_time(&self) -> Option<Nanos> {
        let procs = self.core.procs.borrow();
        let mut timers = self.core.timers.borrow_mut();
        // Drop stale timers so they neither move the clock nor hide a deadlock.
        while let Some(std::cmp::Reverse((_, _, id, epoch))) = timers.peek() {
            if procs[*id as usize].epoch == *epoch {
                break;
            }
            timers.pop();
        }
        let timer = timers.peek().map(|r| r.0 .0);
        // A planned kill moves the clock only if it can still strike someone:
        // a kill of processes that have all ended must neither stretch the
        // run's end time nor delay the deadlock report.
        let alive = |p: &ProcId| {
            procs
                .get(p.0 as usize)
                .is_some_and(|m| m.state != PState::Done)
        };
        let kill = self
            .time_kills
            .iter()
            .find(|(_, p)| alive(p))
            .map(|&(t, _)| t);
        match (timer, kill) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_timers(&mut self) {
        let now = self.core.now();
        let mut procs = self.core.procs.borrow_mut();
        let mut timers = self.core.timers.borrow_mut();
        let mut ready = self.core.ready.borrow_mut();
        while let Some(std::cmp::Reverse((when, _, id, epoch))) = timers.peek().copied() {
            if when > now {
                break;
            }
            timers.pop();
            let m = &mut procs[id as usize];
            if m.epoch != epoch {
                continue;
            }
            match m.state {
                PState::Blocked => m.timed_out = true,
                PState::Timer => {}
                _ => continue,
            }
            m.state = PState::Ready;
            m.epoch += 1;
            ready.push_back(ProcId(id));
        }
    }

    fn apply_faults(&mut self) {
        if self.step_kills.is_empty() && self.time_kills.is_empty() && self.random_kills.is_empty()
        {
            return;
        }
        let step = self.core.step.get();
        let now = self.core.now();
        let mut due: Vec<(ProcId, KillCause)> = Vec::new();
        while let Some((s, p)) = self.step_kills.take_due(step) {
            due.push((p, KillCause::AtStep(s)));
        }
        while let Some((t, p)) = self.time_kills.take_due(now) {
            due.push((p, KillCause::AtTime(Duration::from_nanos(t))));
        }
        for &(p, prob) in &self.random_kills {
            let alive = self
                .core
                .procs
                .borrow()
                .get(p.0 as usize)
                .is_some_and(|m| m.state != PState::Done);
            if alive && self.core.world_rng.borrow_mut().chance(prob) {
                due.push((p, KillCause::Random));
            }
        }
        for (p, cause) in due {
            self.kill(p, cause);
        }
    }

    fn apply_kill_requests(&mut self) {
        if self.core.kill_requests.borrow().is_empty() {
            return;
        }
        let requests = std::mem::take(&mut *self.core.kill_requests.borrow_mut());
        for p in requests {
            self.kill(p, KillCause::Requested);
        }
    }

    /// Kills a process that is not running: its task exits in the kernel,
    /// then its coroutine is unwound (destructors run; IPC from them fails
    /// with `TaskExited`, and scheduling points do nothing).
    pub(crate) fn kill(&mut self, id: ProcId, cause: KillCause) {
        let core = Rc::clone(&self.core);
        {
            let mut procs = core.procs.borrow_mut();
            let Some(m) = procs.get_mut(id.0 as usize) else {
                return;
            };
            if m.state == PState::Done {
                return;
            }
            if m.state == PState::Ready {
                if let Some(d) = &core.dpor {
                    d.killed_ready(id);
                }
            }
            m.killed = true;
        }
        core.emit(id, EventKind::Killed { cause });
        core.ready.borrow_mut().retain(|&p| p != id);
        self.end_process(id, ExitStatus::Killed);
        self.adopt_spawned();
        if let Some(co) = self
            .coroutines
            .get_mut(id.0 as usize)
            .and_then(Option::take)
        {
            // Unwinding runs user destructors; a panic there must not take the
            // simulator down with it.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(co)));
        }
    }

    /// Marks a process ended: samples the queues it may hold, exits its
    /// kernel task (peers get the documented errors), wakes its joiners.
    pub(crate) fn end_process(&mut self, id: ProcId, status: ExitStatus) {
        let core = &self.core;
        // An exit releases every right and wakes peers: dependent with all.
        core.touch_global();
        core.sample_watched();
        let pid = core.procs.borrow()[id.0 as usize].pid;
        core.kernel.exit_task(pid);
        if status != ExitStatus::Killed {
            core.emit(
                id,
                EventKind::Exited {
                    status: status.clone(),
                },
            );
        }
        let joiners = {
            let mut procs = core.procs.borrow_mut();
            let m = &mut procs[id.0 as usize];
            m.state = PState::Done;
            m.epoch += 1;
            m.status = Some(Box::new(status));
            m.joiners.take().map_or_else(Vec::new, |j| *j)
        };
        let mut procs = core.procs.borrow_mut();
        for j in joiners {
            if procs[j.0 as usize].state == PState::Joining(id) {
                procs[j.0 as usize].state = PState::Ready;
                core.ready.borrow_mut().push_back(j);
            }
        }
    }

    /// Ends what is left (stuck processes are unwound) and releases the
    /// setup task's rights: the kernel is as the run leaves it, for the
    /// report (`Sim`'s) or a leak check.
    pub(crate) fn wind_up(&mut self) {
        let core = Rc::clone(&self.core);
        core.sample_watched();
        let end = core.now();
        let stuck: Vec<ProcId> = core
            .procs
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state != PState::Done)
            .map(|(i, _)| ProcId(i as u32))
            .collect();
        for id in stuck {
            {
                let mut procs = core.procs.borrow_mut();
                let m = &mut procs[id.0 as usize];
                m.killed = true;
                // Its wait never completes (the coroutine is unwound): it
                // lasted until the end of the run.
                if let Some(since) = m.blocked_since.take() {
                    m.add_blocked(end.saturating_sub(since));
                }
            }
            let pid = core.procs.borrow()[id.0 as usize].pid;
            core.kernel.exit_task(pid);
            {
                let mut procs = core.procs.borrow_mut();
                let m = &mut procs[id.0 as usize];
                m.state = PState::Done;
                m.status = Some(Box::new(ExitStatus::Stuck));
            }
            self.adopt_spawned();
            if self.stack_overflowed {
                continue; // `Drop for Driver` leaks the coroutines instead
            }
            if let Some(co) = self
                .coroutines
                .get_mut(id.0 as usize)
                .and_then(Option::take)
            {
                let _ = catch_unwind(AssertUnwindSafe(move || drop(co)));
            }
        }
        // System-owned mailboxes outlive their creator; the run's are the
        // run's to remove, so a leak check sees only what processes left.
        for w in core.watched.borrow().iter().filter(|w| w.is_mailbox) {
            let _ = core.kernel.mailbox_destroy(core.init, w.name);
        }
        core.kernel.exit_task(core.init);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.stack_overflowed {
            // A stack overflowed into a neighbour's: unwinding the suspended
            // coroutines could run through smashed frames. Leak them (and so
            // their stacks and the pool) instead.
            for co in self.coroutines.drain(..).flatten() {
                std::mem::forget(co);
            }
            for (_, co, _) in std::mem::take(&mut *self.core.spawned.borrow_mut()) {
                std::mem::forget(co);
            }
            return;
        }
        // Unwind coroutines that never ran to the end (a `Sim` dropped without
        // `run`), while the core they point to is still alive.
        for co in self.coroutines.drain(..).flatten() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(co)));
        }
        for (_, co, _) in std::mem::take(&mut *self.core.spawned.borrow_mut()) {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(co)));
        }
        StackPool::trim_cache(self.core.stacks.stack_size(), KEEP_CACHED_SLOTS);
    }
}

/// Runs that used more stacks than this give their stack memory back when
/// they end; smaller ones leave their pool cached for the next run.
const KEEP_CACHED_SLOTS: usize = 4 * crate::stack::CHUNK_SLOTS;

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
