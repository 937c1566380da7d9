//! The random policy: every runnable process is equally likely to run next.

use std::collections::VecDeque;

use super::Scheduler;
use crate::rng::SimRng;
use crate::ProcId;

/// Uniformly random choice among runnable processes.
#[derive(Debug, Default)]
pub struct RandomScheduler;

impl RandomScheduler {
    /// The random policy.
    pub fn new() -> RandomScheduler {
        RandomScheduler
    }
}

impl Scheduler for RandomScheduler {
    fn choose(&mut self, ready: &VecDeque<ProcId>, rng: &mut SimRng) -> usize {
        rng.below(ready.len() as u64) as usize
    }
    fn name(&self) -> &'static str {
        "random"
    }
    fn restart(&mut self, kind: &super::SchedulerKind, _rng: &mut SimRng) -> bool {
        // Stateless, and `build` draws nothing for it.
        matches!(kind, super::SchedulerKind::Random)
    }
}
