//! Replay: follow a recorded [`Schedule`] choice by choice.
//!
//! A schedule lists, for every real choice of a run, which process ran. The
//! same program given the same seed reaches the same choice points, so
//! following the list reproduces the run event for event. If the program has
//! changed and a recorded process is not runnable where expected, the replay
//! has *diverged*: it continues with the oldest runnable process and the
//! report says so.

use std::collections::VecDeque;

use super::Scheduler;
use crate::rng::SimRng;
use crate::schedule::Schedule;
use crate::ProcId;

/// Follows a recorded schedule.
#[derive(Debug)]
pub struct ReplayScheduler {
    schedule: Schedule,
    next: usize,
    diverged: bool,
}

impl ReplayScheduler {
    /// Replays `schedule`.
    pub fn new(schedule: Schedule) -> ReplayScheduler {
        ReplayScheduler {
            schedule,
            next: 0,
            diverged: false,
        }
    }
}

impl Scheduler for ReplayScheduler {
    fn choose(&mut self, ready: &VecDeque<ProcId>, _rng: &mut SimRng) -> usize {
        let want = self.schedule.choices.get(self.next).copied();
        self.next += 1;
        match want.and_then(|w| ready.iter().position(|&p| p == w)) {
            Some(i) => i,
            None => {
                self.diverged = true;
                0
            }
        }
    }
    fn diverged(&self) -> bool {
        self.diverged
    }
    fn name(&self) -> &'static str {
        "replay"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_and_reports_divergence() {
        let schedule = Schedule {
            seed: 0,
            choices: vec![ProcId(2), ProcId(0), ProcId(7)],
        };
        let mut s = ReplayScheduler::new(schedule);
        let mut rng = SimRng::new(0);
        let ready: VecDeque<ProcId> = [ProcId(0), ProcId(1), ProcId(2)].into();
        assert_eq!(s.choose(&ready, &mut rng), 2);
        assert_eq!(s.choose(&ready, &mut rng), 0);
        assert!(!s.diverged());
        assert_eq!(
            s.choose(&ready, &mut rng),
            0,
            "process 7 is not ready: fall back"
        );
        assert!(s.diverged());
    }
}
