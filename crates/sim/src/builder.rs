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

use mkipc_kernel::{CarriedRight, Disposition, Kernel, KernelConfig, PortName};

use crate::rng::SimRng;
use crate::runtime::Core;
use crate::schedule::{Schedule, ScheduleParseError, REPLAY_ENV};
use crate::scheduler::SchedulerKind;
use crate::sim::Sim;
use crate::stack::StackPool;
use crate::trace::TraceBuffer;

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
    /// Stack size of each process (default [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)).
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
    /// [`DEFAULT_TRACE_LIMIT`](crate::DEFAULT_TRACE_LIMIT), 100,000). A run
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
        let mut root = SimRng::new(self.seed);
        let mut sched_rng = root.fork();
        let world_rng = root.fork();
        let sched = self.scheduler.build(&mut sched_rng);
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
            core: Rc::new(core),
            seed: self.seed,
            coroutines: Vec::new(),
            canaries: Vec::new(),
            step_kills: BTreeMap::new(),
            time_kills: BTreeMap::new(),
            random_kills: Vec::new(),
            stack_overflowed: false,
            setup_send_rights: Vec::new(),
            invariants: Vec::new(),
            final_checks: Vec::new(),
        }
    }
}
