//! Setting a run up: [`SimBuilder`] options and [`Inherit`] rights.
//!
//! ```
//! use mkipc_sim::{SchedulerKind, Sim};
//! let sim = Sim::builder().seed(7).scheduler(SchedulerKind::pct()).trace(false).build();
//! assert_eq!(sim.kernel().stats().tasks, 1); // the setup task
//! ```

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::rc::Rc;

use mkipc_kernel::runtime::KernelSnapshot;
use mkipc_kernel::{CarriedRight, Disposition, Kernel, KernelConfig, PortName};

use crate::driver::Driver;
use crate::rng::SimRng;
use crate::runtime::Core;
use crate::schedule::{Schedule, ScheduleParseError, REPLAY_ENV};
use crate::scheduler::{Scheduler, SchedulerKind};
use crate::sim::{Sim, DEFAULT_STACK_SIZE};
use crate::stack::StackPool;
use crate::trace::{TraceBuffer, DEFAULT_TRACE_LIMIT};

/// Rights a spawned process inherits, by the creator's names.
///
/// ```
/// use mkipc_kernel::{Disposition, PortName};
/// use mkipc_sim::Inherit;
/// let port = PortName::from_parts(1, 1);
/// assert_eq!(Inherit::receive(port).disposition, Disposition::MoveReceive);
/// ```
#[derive(Debug)]
pub struct Inherit;

impl Inherit {
    /// Moves the receive right (the child becomes the port's receiver).
    pub fn receive(name: PortName) -> CarriedRight {
        CarriedRight {
            name,
            disposition: Disposition::MoveReceive,
        }
    }
    /// A send right to a port made by [`Sim::port`] (copied from the send
    /// right the setup task keeps until the run starts), or to any port whose
    /// send right the creator holds.
    pub fn send(name: PortName) -> CarriedRight {
        CarriedRight {
            name,
            disposition: Disposition::CopySend,
        }
    }
    /// Makes a new send right from a receive right the creator holds.
    pub fn make_send(name: PortName) -> CarriedRight {
        CarriedRight {
            name,
            disposition: Disposition::MakeSend,
        }
    }
    /// Copies a send right the creator holds.
    pub fn copy_send(name: PortName) -> CarriedRight {
        CarriedRight {
            name,
            disposition: Disposition::CopySend,
        }
    }
    /// Moves a send right the creator holds.
    pub fn move_send(name: PortName) -> CarriedRight {
        CarriedRight {
            name,
            disposition: Disposition::MoveSend,
        }
    }
}

/// Options of a run; see [`Sim::builder`].
#[derive(Clone, Debug)]
pub struct SimBuilder {
    pub(crate) seed: u64,
    pub(crate) scheduler: SchedulerKind,
    pub(crate) stack_size: usize,
    pub(crate) trace: bool,
    pub(crate) trace_limit: usize,
    pub(crate) max_steps: u64,
    pub(crate) kernel_config: KernelConfig,
}

impl SimBuilder {
    /// The seed every random choice of the run derives from.
    pub fn seed(mut self, seed: u64) -> SimBuilder {
        self.seed = seed;
        self
    }
    /// The scheduling policy (random by default).
    pub fn scheduler(mut self, kind: SchedulerKind) -> SimBuilder {
        self.scheduler = kind;
        self
    }
    /// Replays a recorded schedule (its seed becomes the run's seed).
    pub fn replay(mut self, schedule: Schedule) -> SimBuilder {
        self.seed = schedule.seed;
        self.scheduler = SchedulerKind::Replay(schedule);
        self
    }
    /// Replays a schedule given as text (as printed by a failure).
    pub fn replay_str(self, schedule: &str) -> Result<SimBuilder, ScheduleParseError> {
        Ok(self.replay(schedule.parse()?))
    }
    /// Replays the schedule in `MKIPC_SIM_REPLAY`, if that variable is set.
    pub fn replay_from_env(self) -> Result<SimBuilder, ScheduleParseError> {
        match std::env::var(REPLAY_ENV) {
            Ok(s) if !s.trim().is_empty() => self.replay_str(&s),
            _ => Ok(self),
        }
    }
    /// Stack size of each process (default [`DEFAULT_STACK_SIZE`]).
    pub fn stack_size(mut self, bytes: usize) -> SimBuilder {
        self.stack_size = bytes;
        self
    }
    /// Whether to record the trace (default on; off for large benchmarks).
    pub fn trace(mut self, on: bool) -> SimBuilder {
        self.trace = on;
        self
    }
    /// The most events a trace keeps (default
    /// [`DEFAULT_TRACE_LIMIT`], 100,000). A run
    /// that records more keeps its first `max_events - max_events / 2` events
    /// and its last `max_events / 2`, and leaves out the ones in between:
    /// [`Trace::gap`](crate::Trace::gap) says where and how many, the
    /// report and the exporters say so too. Memory for the trace stays
    /// within `max_events` events (88 bytes each) however long the run, so
    /// a livelock stopped by [`max_steps`](SimBuilder::max_steps) does not
    /// fill the machine. The schedule is never cut, so replaying a cut run
    /// reproduces all of it. `usize::MAX` keeps every event (memory then
    /// grows with the run).
    ///
    /// ```
    /// use mkipc_sim::{ms, Sim};
    /// let mut sim = Sim::builder().trace_limit(10).max_steps(1_000).build();
    /// sim.spawn("spinner", |p| loop { p.work(ms(1)); });
    /// let failure = sim.run().unwrap_err(); // the step limit
    /// let trace = &failure.report.trace;
    /// assert_eq!(trace.events.len(), 10);
    /// assert_eq!(trace.gap.unwrap().index, 5); // first 5, last 5
    /// assert_eq!(trace.events_dropped(), 1_001 - 10);
    /// ```
    pub fn trace_limit(mut self, max_events: usize) -> SimBuilder {
        self.trace_limit = max_events;
        self
    }
    /// Stops a run that takes more scheduling steps (default 10 million).
    pub fn max_steps(mut self, steps: u64) -> SimBuilder {
        self.max_steps = steps;
        self
    }
    /// The kernel's settings.
    pub fn kernel_config(mut self, config: KernelConfig) -> SimBuilder {
        self.kernel_config = config;
        self
    }

    /// Creates the run (and its kernel).
    pub fn build(self) -> Sim {
        let kernel = Kernel::with_config(self.kernel_config);
        let init = kernel.create_task();
        let (sched_rng, world_rng, sched) = streams(self.seed, &self.scheduler);
        let dpor = self.scheduler.dpor();
        let core = Core {
            kernel,
            init,
            clock: Cell::new(0),
            step: Cell::new(0),
            max_steps: self.max_steps,
            fast_path: Cell::new(true),
            procs: RefCell::default(),
            ready: RefCell::new(VecDeque::new()),
            timers: RefCell::new(BinaryHeap::new()),
            timer_seq: Cell::new(0),
            spawned: RefCell::default(),
            choices: RefCell::default(),
            woken: RefCell::default(),
            kill_requests: RefCell::default(),
            tracing: self.trace,
            trace: RefCell::new(TraceBuffer::new(self.trace_limit)),
            names: RefCell::default(),
            labels: RefCell::default(),
            port_labels: RefCell::default(),
            watched: RefCell::default(),
            queue_of: RefCell::default(),
            services: RefCell::default(),
            mailboxes: RefCell::default(),
            world_rng: RefCell::new(world_rng),
            sched: RefCell::new(sched),
            sched_rng: RefCell::new(sched_rng),
            stacks: StackPool::cached(self.stack_size),
            dpor,
        };
        Sim {
            driver: Driver::new(Rc::new(core)),
            seed: self.seed,
            setup_send_rights: Vec::new(),
            invariants: Vec::new(),
            final_checks: Vec::new(),
            check_leaks: false,
        }
    }
}

/// Empties a map that usually is empty already.
impl Sim {
    /// Options: seed 0, random scheduler, tracing on (up to
    /// [`DEFAULT_TRACE_LIMIT`] events), at most 10 million steps.
    pub fn builder() -> SimBuilder {
        SimBuilder {
            seed: 0,
            scheduler: SchedulerKind::Random,
            stack_size: DEFAULT_STACK_SIZE,
            trace: true,
            trace_limit: DEFAULT_TRACE_LIMIT,
            max_steps: 10_000_000,
            kernel_config: KernelConfig::default(),
        }
    }
}

impl Default for Sim {
    fn default() -> Self {
        Sim::builder().build()
    }
}

fn clear_map<K, V>(map: &mut BTreeMap<K, V>) {
    if !map.is_empty() {
        map.clear();
    }
}

/// The most process names and labels a reset `Sim` keeps for its next run
/// (`Core::names`): a model that names things after its seed makes new ones
/// every run, and the table is emptied past this.
const MAX_KEPT_NAMES: usize = 4096;

/// The scheduler's random stream, the world's, and the scheduler, as a run
/// of `seed` starts with them (`build`; `Sim::reset` makes the same ones,
/// restarting the scheduler in place when it can).
fn streams(seed: u64, kind: &SchedulerKind) -> (SimRng, SimRng, Box<dyn Scheduler>) {
    let (mut sched_rng, world_rng) = rngs(seed);
    let sched = kind.build(&mut sched_rng);
    (sched_rng, world_rng, sched)
}

/// The scheduler's random stream and the world's, before the scheduler draws.
fn rngs(seed: u64) -> (SimRng, SimRng) {
    let mut root = SimRng::new(seed);
    let sched_rng = root.fork();
    let world_rng = root.fork();
    (sched_rng, world_rng)
}

impl Sim {
    /// Puts a run that has ended back into the state
    /// `builder.seed(seed).scheduler(scheduler).build()` gives, reusing its
    /// memory: the kernel goes back to `initial` (its snapshot taken right
    /// after `build`, allocations kept), and every table, queue and buffer
    /// of the run is emptied, keeping its capacity. The builder's other
    /// options stay the ones this `Sim` was built with. The explorer calls it
    /// between runs (DESIGN.md, "Exploration").
    ///
    /// Returns `false`, changing nothing, when the run cannot be reset: a
    /// stack overflowed (its coroutines were leaked), or something outside
    /// still holds the run's core (a handle a process gave away) or a body.
    /// The caller then builds a new `Sim`.
    pub(crate) fn reset(
        &mut self,
        initial: &KernelSnapshot,
        seed: u64,
        scheduler: &SchedulerKind,
    ) -> bool {
        if self.driver.stack_overflowed || self.driver.coroutines.iter().any(Option::is_some) {
            return false;
        }
        let Some(core) = Rc::get_mut(&mut self.driver.core) else {
            return false;
        };
        if !core.spawned.get_mut().is_empty() {
            return false;
        }
        core.kernel.restore(initial);
        // Ids of waits completed after the loop last looked (the exits of
        // processes stuck at the end): a new kernel has none.
        let woken = core.woken.get_mut();
        core.kernel.take_woken(woken);
        woken.clear();
        core.clock.set(0);
        core.step.set(0);
        core.fast_path.set(true);
        core.procs.get_mut().clear();
        core.ready.get_mut().clear();
        core.timers.get_mut().clear();
        core.timer_seq.set(0);
        core.choices.get_mut().clear();
        core.kill_requests.get_mut().clear();
        core.trace.get_mut().clear();
        core.names.get_mut().trim(MAX_KEPT_NAMES);
        core.labels.get_mut().clear();
        core.port_labels.get_mut().clear();
        core.watched.get_mut().clear();
        core.queue_of.get_mut().clear();
        // Emptying an empty `BTreeMap` is not free: most runs have none.
        clear_map(core.services.get_mut());
        clear_map(core.mailboxes.get_mut());
        // As `streams` makes them, the scheduler restarted in place when it
        // is of the same kind (no new box, its vectors kept).
        let (mut sched_rng, world_rng) = rngs(seed);
        let sched = core.sched.get_mut();
        if !sched.restart(scheduler, &mut sched_rng) {
            *sched = scheduler.build(&mut sched_rng);
        }
        *core.sched_rng.get_mut() = sched_rng;
        *core.world_rng.get_mut() = world_rng;
        core.dpor = scheduler.dpor();
        self.seed = seed;
        self.driver.coroutines.clear();
        self.driver.canaries.clear();
        self.driver.step_kills.clear();
        self.driver.time_kills.clear();
        self.driver.random_kills.clear();
        self.setup_send_rights.clear();
        self.invariants.clear();
        self.final_checks.clear();
        self.check_leaks = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use mkipc_kernel::{Capacity, Ipc, Message};

    use super::*;
    use crate::Inherit;

    /// Both processes send first on rendezvous ports: a deadlock, whose
    /// stuck processes are ended after the loop stopped looking, so their
    /// exits leave woken ids behind.
    fn deadlock(sim: &mut Sim) {
        let a = sim.port("a", Capacity::Zero).unwrap();
        let b = sim.port("b", Capacity::Zero).unwrap();
        for (name, inherit) in [
            ("left", [Inherit::receive(a), Inherit::send(b)]),
            ("right", [Inherit::receive(b), Inherit::send(a)]),
        ] {
            sim.spawn_with(name, &inherit, |p| {
                p.send(p.right(1), Message::new(1, b"x"))?;
                p.receive(p.right(0))?;
                Ok(())
            })
            .unwrap();
        }
    }

    /// A reset run starts as a built one: nothing woken, the kernel as
    /// `build` left it, the same run again.
    #[test]
    fn a_reset_after_a_deadlock_starts_clean() {
        let mut sim = Sim::builder().seed(3).build();
        let initial = sim.kernel().snapshot();
        deadlock(&mut sim);
        let first = sim.run_here().expect_err("a deadlock");
        assert!(
            sim.kernel().has_woken(),
            "the stuck processes' exits woke someone nobody took"
        );
        assert!(sim.reset(&initial, 3, &SchedulerKind::Random));
        assert!(!sim.kernel().has_woken());
        assert_eq!(
            sim.kernel().stats(),
            Sim::builder().build().kernel().stats()
        );
        deadlock(&mut sim);
        let again = sim.run_here().expect_err("the same deadlock");
        assert!(again == first, "{again:#?}\n{first:#?}");
    }
}
