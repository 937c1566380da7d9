//! [`Sim`]: one deterministic run of simulated processes on a kernel.
//!
//! Build a run with [`Sim::builder`], create the ports and mailboxes the
//! processes share ([`Sim::port`], [`Sim::mailbox`]), spawn processes with
//! the rights they inherit, plan faults, add invariants, then [`Sim::run`].
//!
//! [`Sim::run`] runs the scheduler loop (the crate's private module
//! `driver`, below the process kinds and this set-up API): it moves woken
//! processes to the ready queue, applies planned faults, asks the
//! [`Scheduler`] which ready process runs next when there is a choice, and
//! resumes it until its next scheduling point; this module checks the
//! invariants after each step. When nobody is ready the loop moves the
//! virtual clock to the next timer; when there is no timer either, the run
//! is over — finished if every process ended, deadlocked otherwise (module
//! [`deadlock`] tells a valid end from a deadlock) — and
//! this module makes the [`Report`], or the [`Failure`] with it.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{ms, Inherit, Sim};
//!
//! let mut sim = Sim::builder().seed(42).build();
//! let jobs = sim.port("jobs", Capacity::Bounded(2)).unwrap();
//! sim.spawn_with("consumer", &[Inherit::receive(jobs)], |p| {
//!     for _ in 0..10 {
//!         p.receive(p.right(0))?;
//!         p.work(ms(3));
//!     }
//!     Ok(())
//! }).unwrap();
//! sim.spawn_with("producer", &[Inherit::send(jobs)], |p| {
//!     for i in 0..10 {
//!         p.send(p.right(0), Message::from_u64(1, i))?;
//!         p.work(ms(1));
//!     }
//!     Ok(())
//! }).unwrap();
//! let report = sim.run().unwrap();
//! assert_eq!(report.port("jobs").unwrap().messages, 10);
//! assert_eq!(report.end_time, ms(30)); // the consumer is the bottleneck
//! assert!(report.kernel_is_clean());
//! ```
//!
//! [`Scheduler`]: crate::scheduler::Scheduler

use std::rc::Rc;
use std::time::Duration;

use mkipc_kernel::introspect::{KernelStats, QueueStats};
use mkipc_kernel::ipc::Owner;
use mkipc_kernel::{
    Capacity, CarriedRight, Disposition, IpcError, Kernel, MailboxConfig, Pid, PortName,
};

use crate::deadlock;
use crate::driver::{Driver, Stop};
use crate::process::spawn::{spawn_failed, spawn_process};
use crate::process::{ExitStatus, Proc, ProcResult};
use crate::report::{Failure, FailureReason, PortReport, ProcReport, ProcStats, Report};
use crate::runtime::{Core, PState};
use crate::schedule::Schedule;
use crate::time::to_nanos;
use crate::trace::{ProcLabel, Trace};
use crate::ProcId;

/// Default stack size of a simulated process.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

pub(crate) type Invariant = Box<dyn Fn(&SimView<'_>) -> Result<(), String>>;
pub(crate) type FinalCheck = Box<dyn Fn(&Report) -> Result<(), String>>;

/// A run being set up, then run (see the [module docs](crate::sim)).
pub struct Sim {
    /// The scheduler loop, the process bodies it owns and the run's state
    /// ([`Driver`]); first, so that it is dropped (its bodies unwound)
    /// before the checks below.
    pub(crate) driver: Driver,
    pub(crate) seed: u64,
    pub(crate) setup_send_rights: Vec<PortName>,
    /// Invariants, and whether each is a queue invariant ([`Sim::queue_invariant`]).
    pub(crate) invariants: Vec<(String, Invariant, bool)>,
    pub(crate) final_checks: Vec<(String, FinalCheck)>,
    /// After the final checks, fail a run that leaves anything in the
    /// kernel (the explorer's leak check, [`LEAK_CHECK`]).
    pub(crate) check_leaks: bool,
}

/// The name of the explorer's final check that the kernel holds nothing.
pub(crate) const LEAK_CHECK: &str = "no leaks";

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("procs", &self.driver.core.procs.borrow().len())
            .finish()
    }
}

/// What an invariant sees after each step.
pub struct SimView<'a> {
    core: &'a Core,
}

impl SimView<'_> {
    /// Virtual time now.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.core.now())
    }
    /// Steps taken so far.
    pub fn step(&self) -> u64 {
        self.core.step.get()
    }
    /// The kernel (for [`Kernel::stats`], [`Kernel::task_rights`], ...).
    pub fn kernel(&self) -> &Kernel {
        &self.core.kernel
    }
    /// [`Kernel::queue_stats`], with each port made by [`Sim::port`]
    /// labelled as it was made (the kernel itself calls it `port#N`).
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.core.queue_stats()
    }
    /// How many processes have been spawned.
    pub fn procs(&self) -> usize {
        self.core.procs.borrow().len()
    }
    /// How a process ended, or `None` while it lives.
    pub fn status(&self, id: ProcId) -> Option<ExitStatus> {
        self.core
            .procs
            .borrow()
            .get(id.0 as usize)
            .and_then(|m| m.status())
    }
    /// A process's counters so far.
    pub fn stats(&self, id: ProcId) -> ProcStats {
        self.core
            .procs
            .borrow()
            .get(id.0 as usize)
            .map(|m| m.stats())
            .unwrap_or_default()
    }
    /// A process's kernel pid.
    pub fn pid(&self, id: ProcId) -> Option<Pid> {
        self.core.procs.borrow().get(id.0 as usize).map(|m| m.pid)
    }
}

impl Sim {
    /// The run's kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.driver.core.kernel
    }

    /// [`Kernel::queue_stats`], with each port made by [`Sim::port`]
    /// labelled as it was made (the kernel itself calls it `port#N`).
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.driver.core.queue_stats()
    }

    /// The kernel pid of a spawned process.
    pub fn pid(&self, id: ProcId) -> Option<Pid> {
        self.driver
            .core
            .procs
            .borrow()
            .get(id.0 as usize)
            .map(|m| m.pid)
    }

    /// The pid of the simulator's setup task, which holds the rights created
    /// by [`Sim::port`] and [`Sim::mailbox`] until processes inherit them.
    pub fn init_pid(&self) -> Pid {
        self.driver.core.init
    }

    /// Creates a port, held by the setup task, labelled and watched for the
    /// report. Hand it to processes with [`Sim::spawn_with`]:
    /// [`Inherit::receive`](crate::Inherit::receive) moves the receive right, [`Inherit::send`](crate::Inherit::send) gives
    /// a send right, in any order. The setup task keeps one send right while
    /// the run is set up and releases it when [`Sim::run`] starts, so
    /// no-senders and dead-port behaviour during the run depend only on the
    /// processes.
    pub fn port(&mut self, label: &str, capacity: Capacity) -> Result<PortName, IpcError> {
        let name = self
            .driver
            .core
            .kernel
            .port_allocate(self.driver.core.init, capacity)?;
        let label = self.driver.core.intern(label);
        if let Some(id) = self
            .driver
            .core
            .kernel
            .port_queue_id(self.driver.core.init, name)
        {
            self.driver
                .core
                .port_labels
                .borrow_mut()
                .push((id, Rc::clone(&label)));
        }
        self.driver
            .core
            .kernel
            .make_right(self.driver.core.init, name, Disposition::MakeSend)?;
        self.setup_send_rights.push(name);
        self.watch(label, name, false);
        Ok(name)
    }

    /// Creates a system-owned named mailbox (open to every process), labelled
    /// and watched for the report. Processes reach it with `mailbox_open(label)`.
    pub fn mailbox(&mut self, label: &str, capacity: Capacity) -> Result<PortName, IpcError> {
        let config = MailboxConfig::new(capacity).owner(Owner::System);
        let name = self
            .driver
            .core
            .kernel
            .mailbox_create(self.driver.core.init, label, config)?;
        let queue = self.watch(self.driver.core.intern(label), name, true);
        self.driver
            .core
            .mailboxes
            .borrow_mut()
            .insert(label.to_string(), queue);
        Ok(name)
    }

    fn watch(&mut self, label: Rc<str>, name: PortName, is_mailbox: bool) -> usize {
        self.driver
            .core
            .set_label(self.driver.core.init, name, Rc::clone(&label));
        self.driver
            .core
            .watch(label, self.driver.core.init, name, is_mailbox)
    }

    /// Spawns a process that inherits nothing.
    ///
    /// A process that cannot start (no memory left for its stack, say for
    /// an absurd [`SimBuilder::stack_size`](crate::SimBuilder::stack_size)) still gets its id; it ends at
    /// once with [`ExitStatus::Failed`], as the report shows.
    pub fn spawn<F>(&mut self, name: &str, f: F) -> ProcId
    where
        F: FnOnce(&Proc) -> ProcResult + 'static,
    {
        match spawn_process(&self.driver.core, name, None, &[], f) {
            Ok(id) => id,
            Err(e) => spawn_failed(&self.driver.core, name, &e),
        }
    }

    /// Spawns a process that inherits rights held by the setup task.
    pub fn spawn_with<F>(
        &mut self,
        name: &str,
        inherit: &[CarriedRight],
        f: F,
    ) -> Result<ProcId, IpcError>
    where
        F: FnOnce(&Proc) -> ProcResult + 'static,
    {
        spawn_process(&self.driver.core, name, None, inherit, f)
    }

    /// Spawns a process that runs a [`Machine`](crate::machine::Machine)
    /// (module [`machine`](crate::machine)): `make` builds it from the
    /// rights the process inherited, under its own names, in order. Its
    /// [`Step::Yield`](crate::machine::Step) is a scheduling point.
    ///
    /// The process is stackless: the loop steps the machine itself, with no
    /// coroutine, and the run is the one [`run_on_proc`](crate::machine::run_on_proc)
    /// on a coroutine gives (DESIGN.md, "Process kinds"). Under DPOR
    /// exploration it runs on a coroutine.
    pub fn spawn_machine<M, F>(
        &mut self,
        name: &str,
        inherit: &[CarriedRight],
        make: F,
    ) -> Result<ProcId, IpcError>
    where
        M: crate::machine::Machine + Send,
        F: FnOnce(&[CarriedRight]) -> M + 'static,
    {
        self.spawn_machine_with(
            name,
            inherit,
            crate::machine::YieldIs::SchedulingPoint,
            make,
        )
    }

    /// [`Sim::spawn_machine`], with the machine's `Step::Yield` a
    /// scheduling point or not ([`YieldIs`](crate::machine::YieldIs)); the
    /// processes it spawns get the same.
    pub fn spawn_machine_with<M, F>(
        &mut self,
        name: &str,
        inherit: &[CarriedRight],
        yields: crate::machine::YieldIs,
        make: F,
    ) -> Result<ProcId, IpcError>
    where
        M: crate::machine::Machine + Send,
        F: FnOnce(&[CarriedRight]) -> M + 'static,
    {
        if self.driver.core.dpor.is_some() {
            return self.spawn_with(name, inherit, move |p| {
                crate::machine::run_on_proc_with(p, make(p.inherited()), yields)
            });
        }
        crate::process::spawn::spawn_stackless(&self.driver.core, name, None, inherit, |p| {
            Box::new(crate::stackless::Runner::new(p, make, yields))
        })
    }

    /// Spawns an async process (module [`async_proc`](crate::async_proc)):
    /// `make` gets the process's [`AsyncProc`](crate::AsyncProc) handle and
    /// returns the future it runs, which the loop polls with no thread and
    /// no stack of its own. It inherits `inherit` as
    /// [`Sim::spawn_with`]'s closure would, and is scheduled as that
    /// closure, making the same calls, would be.
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Message};
    /// use mkipc_sim::{AsyncIpc, Sim};
    /// let mut sim = Sim::builder().seed(1).build();
    /// sim.spawn_async("echo", &[], |p| async move {
    ///     let port = p.port_allocate(Capacity::Bounded(1)).await?;
    ///     p.send(port, Message::from_u64(1, 7)).await?;
    ///     assert_eq!(p.receive(port).await?.as_u64(), Some(7));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert!(sim.run().is_ok());
    /// ```
    pub fn spawn_async<F, Fut>(
        &mut self,
        name: &str,
        inherit: &[CarriedRight],
        make: F,
    ) -> Result<ProcId, IpcError>
    where
        F: FnOnce(crate::AsyncProc) -> Fut + 'static,
        Fut: std::future::Future<Output = ProcResult> + 'static,
    {
        crate::async_proc::spawn_async_process(&self.driver.core, name, None, inherit, make)
    }

    /// Declares `proc` a server: a process that may wait forever for its
    /// next request. A run where every other process has ended and each
    /// server still alive is blocked receiving (not sending, not waiting for
    /// the reply to a call, not joining) ends normally (a *valid end
    /// state*); the servers are then unwound and their status is
    /// [`ExitStatus::Stuck`]. Any other process still blocked at the end is
    /// a deadlock, as is a server blocked anywhere but at a receive. An id
    /// no process has is ignored.
    pub fn server(&mut self, proc: ProcId) {
        if let Some(m) = self.driver.core.procs.borrow_mut().get_mut(proc.0 as usize) {
            m.server = true;
        }
    }

    /// Declares that `proc` may end with an error ([`ExitStatus::Failed`]):
    /// the run does not fail for it. Without this, a process that returns
    /// an error (a send to a dead destination, a failed receive, `?` on any
    /// error) fails the run with [`FailureReason::ProcessFailed`]. A panic
    /// always fails the run. An id no process has is ignored.
    pub fn expect_error(&mut self, proc: ProcId) {
        if let Some(m) = self.driver.core.procs.borrow_mut().get_mut(proc.0 as usize) {
            m.expect_error = true;
        }
    }

    /// Kills `proc` when the run reaches scheduling step `step`.
    pub fn kill_at_step(&mut self, proc: ProcId, step: u64) {
        self.driver.step_kills.add(step, proc);
    }

    /// Kills `proc` at virtual time `at`.
    pub fn kill_at_time(&mut self, proc: ProcId, at: Duration) {
        self.driver.time_kills.add(to_nanos(at), proc);
    }

    /// At every step, kills `proc` with probability `p` (while it lives).
    pub fn kill_randomly(&mut self, proc: ProcId, p: f64) {
        self.driver.random_kills.push((proc, p));
    }

    /// Checks `check` after every step; a failure stops the run.
    pub fn invariant(
        &mut self,
        name: &str,
        check: impl Fn(&SimView<'_>) -> Result<(), String> + 'static,
    ) {
        self.invariants
            .push((name.to_string(), Box::new(check), false));
    }

    /// Like [`Sim::invariant`], for a check that is a conjunction of
    /// conditions on one queue each (a bound on a queue's length, a record
    /// of each queue's series), never combining two queues or a queue and
    /// anything else. Every schedule of a class of equivalent ones takes
    /// each queue through the same states at the same virtual times, so
    /// such a check keeps partial-order reduction on, where a general
    /// invariant (which may see any intermediate state) makes every step
    /// dependent (DESIGN.md, "Exploration").
    pub fn queue_invariant(
        &mut self,
        name: &str,
        check: impl Fn(&SimView<'_>) -> Result<(), String> + 'static,
    ) {
        self.invariants
            .push((name.to_string(), Box::new(check), true));
    }

    /// Checks `check` on the report at the end of a run that otherwise succeeded.
    pub fn check_at_end(
        &mut self,
        name: &str,
        check: impl Fn(&Report) -> Result<(), String> + 'static,
    ) {
        self.final_checks.push((name.to_string(), Box::new(check)));
    }

    /// Runs to the end: every process ended (`Ok`; servers may be left
    /// waiting, see [`Sim::server`]), or a deadlock, failed invariant,
    /// panic, process that ended with an error it did not declare
    /// ([`Sim::expect_error`]) or step limit (`Err`, with the report and
    /// the schedule that replays it).
    pub fn run(mut self) -> Result<Report, Failure> {
        self.run_here()
    }

    /// [`Sim::run`], leaving the `Sim` in place: ended, its processes gone,
    /// ready for [`Sim::reset`](crate::builder) (the explorer runs every
    /// schedule on one `Sim`).
    pub(crate) fn run_here(&mut self) -> Result<Report, Failure> {
        self.run_here_with(true)
            .map(|r| r.expect("a report was asked for"))
    }

    /// [`Sim::run_here`]; with `want_report` false, a run that passes gives
    /// `Ok(None)` and no report is assembled, unless a final check needs it.
    pub(crate) fn run_here_with(&mut self, want_report: bool) -> Result<Option<Report>, Failure> {
        // One process runs at a time, all on this thread: the kernel lock
        // is taken once for the run and its winding up, not once per
        // operation (`Kernel::hold`).
        let core = Rc::clone(&self.driver.core);
        let _hold = core.kernel.hold();
        let failure = self.run_loop();
        if let Some(d) = &self.driver.core.dpor {
            // A run stopped by a failure before it could end (a panic, a
            // failed invariant, the step limit) is cut short: what the
            // processes still alive would have done is unknown, so each of
            // them is taken to do something dependent with everything next.
            // A deadlock or a normal end is not cut short.
            let cut_short = failure
                .as_ref()
                .is_some_and(|f| !matches!(f, FailureReason::Deadlock(_)));
            let live: Vec<u32> = if cut_short {
                let procs = self.driver.core.procs.borrow();
                (0..procs.len() as u32)
                    .filter(|&i| procs[i as usize].state != PState::Done)
                    .collect()
            } else {
                Vec::new()
            };
            d.end_run(live);
        }
        let failure = failure.or_else(|| self.failed_process());
        self.driver.wind_up();
        if failure.is_none()
            && !want_report
            && self.final_checks.is_empty()
            && (!self.check_leaks || self.driver.core.kernel.stats() == KernelStats::default())
        {
            return Ok(None);
        }
        let report = self.report();
        if let Some(reason) = failure {
            return Err(Failure {
                reason,
                report: Box::new(report),
            });
        }
        let leaks = self.check_leaks.then(|| {
            let check: &dyn Fn(&Report) -> Result<(), String> = &|r: &Report| {
                if r.kernel_is_clean() {
                    Ok(())
                } else {
                    Err(format!(
                        "kernel not empty at the end: {:?}",
                        r.kernel_at_end
                    ))
                }
            };
            (LEAK_CHECK, check)
        });
        let checks = self.final_checks.iter().map(|(n, c)| (n.as_str(), &**c));
        for (name, check) in checks.chain(leaks) {
            if let Err(message) = check(&report) {
                let reason = FailureReason::FinalCheck {
                    name: name.to_string(),
                    message,
                };
                return Err(Failure {
                    reason,
                    report: Box::new(report),
                });
            }
        }
        Ok(Some(report))
    }

    /// The first process (by id) that ended with an error it did not
    /// declare expected.
    fn failed_process(&self) -> Option<FailureReason> {
        let procs = self.driver.core.procs.borrow();
        procs.iter().find_map(|m| match m.status.as_deref() {
            Some(ExitStatus::Failed { error, .. }) if !m.expect_error => {
                Some(FailureReason::ProcessFailed {
                    proc: m.name.to_string(),
                    error: error.clone(),
                })
            }
            _ => None,
        })
    }

    /// The run's process names and labels, as a trace without events.
    pub(crate) fn trace_names(&self) -> Trace {
        Trace {
            events: Vec::new(),
            procs: self
                .driver
                .core
                .procs
                .borrow()
                .iter()
                .map(|m| ProcLabel {
                    name: m.name.to_string(),
                    pid: m.pid.0,
                })
                .collect(),
            labels: self.driver.core.labels.borrow().to_labels(),
            gap: None,
        }
    }

    /// The report of a run [`Driver::wind_up`] ended.
    pub(crate) fn report(&mut self) -> Report {
        let core = Rc::clone(&self.driver.core);
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
                status: m.status().unwrap_or(ExitStatus::Stuck),
                stats: m.stats(),
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

    /// The loop ([`Driver::run`]), set up for this run, with the
    /// invariants checked after every step; how it ended, as a failure or
    /// none. The caller holds the kernel (`Sim::run_here_with`).
    fn run_loop(&mut self) -> Option<FailureReason> {
        let core = Rc::clone(&self.driver.core);
        for name in self.setup_send_rights.drain(..) {
            let _ = core.kernel.deallocate(core.init, name);
        }
        let faults = self.driver.has_faults();
        core.fast_path.set(!faults && self.invariants.is_empty());
        if let Some(d) = &core.dpor {
            // Invariants see the state after every step, and faults strike
            // at a step count or at random per step: under either, no two
            // steps commute (DESIGN.md, "Exploration").
            let per_step = self.invariants.iter().any(|i| !i.2)
                || !self.driver.step_kills.is_empty()
                || !self.driver.random_kills.is_empty();
            if per_step {
                d.set_all_global();
            }
        }
        let invariants = &self.invariants;
        let stop = self.driver.run(|core| {
            if invariants.is_empty() {
                return Ok(());
            }
            let view = SimView { core };
            for (name, check, _) in invariants {
                if let Err(message) = check(&view) {
                    return Err(FailureReason::Invariant {
                        name: name.clone(),
                        message,
                        step: core.step.get(),
                    });
                }
            }
            Ok(())
        });
        match stop {
            Stop::Finished => None,
            Stop::Stuck => {
                // The names once, not per stuck process (a copy of every
                // label each time made big reports quadratic).
                let names = self.trace_names();
                let d = deadlock::analyse(&core, |p, t| names.target_name(p, t));
                if d.is_valid_end(&core.procs.borrow()) {
                    None
                } else {
                    Some(FailureReason::Deadlock(d))
                }
            }
            Stop::StepLimit(limit) => Some(FailureReason::StepLimit(limit)),
            Stop::StackOverflow { proc } => Some(FailureReason::StackOverflow { proc }),
            Stop::Panicked { proc, message } => Some(FailureReason::Panicked { proc, message }),
            Stop::AfterStep(reason) => Some(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::stack::Canary;

    /// A process that smashes its canary and returns before its next
    /// scheduling point overflowed all the same: the run must say so, and
    /// the dirty slot must not be handed to a later, innocent process.
    #[test]
    fn a_canary_smashed_just_before_returning_is_reported() {
        // A stack size of its own, so this test's pool is not shared.
        let builder = Sim::builder().stack_size(3 * crate::stack::MIN_STACK);
        let mut sim = builder.clone().build();
        let canary: Rc<Cell<Option<Canary>>> = Rc::default();
        let c = Rc::clone(&canary);
        sim.spawn("deep", move |_| {
            let canary = c.get().expect("set before the run");
            // SAFETY: this process's stack is alive (we run on it) and its
            // lowest bytes are far below the frames in use.
            unsafe { canary.smash() };
            Ok(())
        });
        let spawned = sim.driver.core.spawned.borrow().last().and_then(|s| s.2);
        canary.set(spawned);
        let failure = sim.run().expect_err("the overflow is reported");
        assert_eq!(
            failure.reason,
            FailureReason::StackOverflow {
                proc: "deep".into()
            }
        );
        // The next run on this thread reuses the pool.
        let mut sim = builder.build();
        sim.spawn("innocent", |p| {
            p.sleep(std::time::Duration::from_millis(1)); // back to the loop
            Ok(())
        });
        let report = sim.run().expect("nobody overflowed in this run");
        assert!(report.procs[0].status.is_success());
    }
}
