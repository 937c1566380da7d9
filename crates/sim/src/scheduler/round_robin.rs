//! Round robin: the process that has been runnable longest runs next.
//!
//! A process that yields goes to the back of the ready queue, so with this
//! policy processes take turns at every scheduling point. It uses no
//! randomness at all: the seed only matters for drawn durations and faults.

use std::collections::VecDeque;

use super::Scheduler;
use crate::rng::SimRng;
use crate::ProcId;

/// First in, first out.
#[derive(Debug, Default)]
pub struct RoundRobinScheduler;

impl RoundRobinScheduler {
    /// The round-robin policy.
    pub fn new() -> RoundRobinScheduler {
        RoundRobinScheduler
    }
}

impl Scheduler for RoundRobinScheduler {
    fn choose(&mut self, _ready: &VecDeque<ProcId>, _rng: &mut SimRng) -> usize {
        0
    }
    fn name(&self) -> &'static str {
        "round-robin"
    }
    fn restart(&mut self, kind: &super::SchedulerKind, _rng: &mut SimRng) -> bool {
        // Stateless, and `build` draws nothing for it.
        matches!(kind, super::SchedulerKind::RoundRobin)
    }
}
