//! Scheduling policies: who runs next at each choice point.
//!
//! Only one simulated process runs at a time. At every scheduling point (the
//! start of each IPC operation, `yield_now`, the end of `work`/`sleep`, a
//! block, an exit) the running process hands control back and the simulator
//! asks its [`Scheduler`] to pick among the runnable processes. When only one
//! process is runnable there is nothing to choose and the scheduler is not
//! asked; every real choice is recorded, which is the [`Schedule`] a run can
//! be replayed from.
//!
//! One policy per file, as in shuttle:
//! * [`random`](RandomScheduler): uniform choice from the seeded RNG;
//! * [`pct`](PctScheduler): probabilistic concurrency testing (priorities with
//!   `depth - 1` random change points), good at shallow ordering bugs;
//! * [`round_robin`](RoundRobinScheduler): oldest runnable first, no randomness;
//! * [`replay`](ReplayScheduler): follows a recorded schedule;
//! * [`dfs`](DfsScheduler): enumerates schedules, used by exhaustive exploration
//!   without reduction;
//! * [`dpor`](DporScheduler): enumerates one schedule per class of equivalent
//!   ones (dynamic partial-order reduction), exhaustive exploration's default.
//!
//! ```
//! use mkipc_sim::scheduler::{RandomScheduler, Scheduler};
//! use mkipc_sim::{ProcId, SimRng};
//! use std::collections::VecDeque;
//! let ready: VecDeque<ProcId> = [ProcId(0), ProcId(1), ProcId(2)].into();
//! let mut s = RandomScheduler::new();
//! let i = s.choose(&ready, &mut SimRng::new(1));
//! assert!(i < 3);
//! ```

mod dfs;
pub(crate) mod dpor;
mod pct;
mod random;
mod replay;
mod round_robin;

use std::collections::VecDeque;

pub use dfs::{DfsScheduler, DfsTrail};
pub use dpor::{DporScheduler, DporTrail};
pub use pct::{PctScheduler, MAX_CHANGE_POINTS};
pub use random::RandomScheduler;
pub use replay::ReplayScheduler;
pub use round_robin::RoundRobinScheduler;

use crate::rng::SimRng;
use crate::schedule::Schedule;
use crate::ProcId;

/// A scheduling policy.
pub trait Scheduler {
    /// Picks the index (into `ready`) of the process to run next. `ready` holds
    /// at least two processes, in an order that is itself deterministic
    /// (the order in which they became runnable, perturbed only by earlier
    /// choices). `rng` is the scheduler's own stream of the run's seed.
    fn choose(&mut self, ready: &VecDeque<ProcId>, rng: &mut SimRng) -> usize;
    /// A process was created (PCT gives it a priority).
    fn on_spawn(&mut self, _proc: ProcId, _rng: &mut SimRng) {}
    /// Whether a replay left the recorded schedule (the program changed).
    fn diverged(&self) -> bool {
        false
    }
    /// The policy's name, for reports.
    fn name(&self) -> &'static str;
    /// Puts the policy back into the state `kind.build(rng)` gives (drawing
    /// from `rng` exactly what that draws), reusing its memory, and returns
    /// `true`; or returns `false`, drawing nothing, if this policy is not
    /// `kind` (the caller then builds one). A reset `Sim` calls it between
    /// runs, so an exploration does not make its scheduler anew each run.
    fn restart(&mut self, _kind: &SchedulerKind, _rng: &mut SimRng) -> bool {
        false
    }
}

/// Which policy a [`Sim`](crate::Sim) uses; the builder's `scheduler` option.
#[derive(Clone, Debug, Default)]
pub enum SchedulerKind {
    /// [`RandomScheduler`].
    #[default]
    Random,
    /// [`PctScheduler`] with this bug depth and expected number of steps.
    Pct {
        /// Bug depth `d`: `d - 1` priority change points.
        depth: usize,
        /// Expected length of a run in scheduling steps.
        max_steps: u64,
    },
    /// [`RoundRobinScheduler`].
    RoundRobin,
    /// [`ReplayScheduler`] following this schedule (its seed becomes the run's seed).
    Replay(Schedule),
    /// [`DfsScheduler`] following this prefix, recording into the trail.
    Dfs(DfsTrail),
    /// [`DporScheduler`] following this trail's next run (the run also
    /// records each step's footprint into it).
    Dpor(DporTrail),
}

impl SchedulerKind {
    /// PCT with the usual settings (depth 3, 1,000 steps).
    pub fn pct() -> SchedulerKind {
        SchedulerKind::Pct {
            depth: 3,
            max_steps: 1000,
        }
    }

    pub(crate) fn build(&self, rng: &mut SimRng) -> Box<dyn Scheduler> {
        match self {
            SchedulerKind::Random => Box::new(RandomScheduler::new()),
            SchedulerKind::Pct { depth, max_steps } => {
                Box::new(PctScheduler::new(*depth, *max_steps, rng))
            }
            SchedulerKind::RoundRobin => Box::new(RoundRobinScheduler::new()),
            SchedulerKind::Replay(s) => Box::new(ReplayScheduler::new(s.clone())),
            SchedulerKind::Dfs(trail) => Box::new(DfsScheduler::new(trail.clone())),
            SchedulerKind::Dpor(trail) => Box::new(DporScheduler::new(trail.clone())),
        }
    }

    /// The DPOR trail a run records its steps into, if any.
    pub(crate) fn dpor(&self) -> Option<DporTrail> {
        match self {
            SchedulerKind::Dpor(trail) => Some(trail.clone()),
            _ => None,
        }
    }
}
