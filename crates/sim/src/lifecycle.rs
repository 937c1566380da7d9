//! The end of simulated processes: ending, killing, winding the run up,
//! and assembling the report when the run is over (spawning is
//! `process::spawn`).
//!
//! Ending a process always goes the same way, whether it returned, panicked,
//! was killed or was still stuck when the run stopped: its kernel task exits
//! (the kernel destroys its receive rights, releases its send rights, wakes
//! blocked peers with the documented errors), then its coroutine is unwound
//! so its destructors run. IPC from those destructors fails with
//! `TaskExited`, and their scheduling points do nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use crate::process::ExitStatus;
use crate::report::{PortReport, ProcReport, Report};
use crate::runtime::PState;
use crate::schedule::Schedule;
use crate::sim::Sim;
use crate::stack::StackPool;
use crate::trace::{EventKind, KillCause, ProcLabel, Trace};
use crate::ProcId;

impl Sim {
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
            m.status = Some(status);
            std::mem::take(&mut m.joiners)
        };
        let mut procs = core.procs.borrow_mut();
        for j in joiners {
            if procs[j.0 as usize].state == PState::Joining(id) {
                procs[j.0 as usize].state = PState::Ready;
                core.ready.borrow_mut().push_back(j);
            }
        }
    }

    pub(crate) fn trace_names(&self) -> Trace {
        Trace {
            events: Vec::new(),
            procs: self
                .core
                .procs
                .borrow()
                .iter()
                .map(|m| ProcLabel {
                    name: m.name.to_string(),
                    pid: m.pid.0,
                })
                .collect(),
            labels: self.core.labels.borrow().to_labels(),
            gap: None,
        }
    }

    /// Ends what is left (stuck processes are unwound) and releases the
    /// setup task's rights: the kernel is as the run leaves it, for the
    /// report ([`Sim::report`]) or a leak check.
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
                    m.stats.blocked = m
                        .stats
                        .blocked
                        .saturating_add(Duration::from_nanos(end.saturating_sub(since)));
                }
            }
            let pid = core.procs.borrow()[id.0 as usize].pid;
            core.kernel.exit_task(pid);
            {
                let mut procs = core.procs.borrow_mut();
                let m = &mut procs[id.0 as usize];
                m.state = PState::Done;
                m.status = Some(ExitStatus::Stuck);
            }
            self.adopt_spawned();
            if self.stack_overflowed {
                continue; // `Drop for Sim` leaks the coroutines instead
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

    /// The report of a run [`Sim::wind_up`] ended.
    pub(crate) fn report(&mut self) -> Report {
        let core = Rc::clone(&self.core);
        let end = core.now();
        let mut trace = self.trace_names();
        (trace.events, trace.gap) = core.trace.borrow_mut().take();
        let procs = core
            .procs
            .borrow()
            .iter()
            .enumerate()
            .map(|(i, m)| ProcReport {
                id: ProcId(i as u32),
                name: m.name.to_string(),
                pid: m.pid.0,
                status: m.status.clone().unwrap_or(ExitStatus::Stuck),
                stats: m.stats,
            })
            .collect();
        let ports = core
            .watched
            .borrow()
            .iter()
            .map(|w| PortReport {
                label: w.label.to_string(),
                mailbox: w.is_mailbox,
                capacity: w.capacity,
                messages: w.messages,
                drops: w.drops,
                max_occupancy: w.max_len,
                mean_occupancy: (end > 0).then(|| w.area as f64 / end as f64),
            })
            .collect();
        // A copy: the run's vector keeps its memory for the next run
        // (`Sim::reset`), instead of growing again from nothing.
        let choices = core.choices.borrow().clone();
        let sched = core.sched.borrow();
        Report {
            seed: self.seed,
            scheduler: sched.name(),
            steps: core.step.get(),
            end_time: Duration::from_nanos(end),
            procs,
            ports,
            schedule: Schedule {
                seed: self.seed,
                choices,
            },
            replay_diverged: sched.diverged(),
            kernel_at_end: core.kernel.stats(),
            trace,
        }
    }
}

impl Drop for Sim {
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
