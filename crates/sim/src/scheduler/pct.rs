//! PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).
//!
//! Each process gets a random priority when it is created; the highest
//! priority runnable process always runs. At `depth - 1` change points, drawn
//! uniformly from the first `max_steps` steps, the process that just ran drops
//! below every initial priority. A bug that needs `d` ordering constraints is
//! found with probability at least `1 / (n * k^(d-1))` per run — far better
//! than uniform random choice for shallow bugs in long runs.

use std::collections::VecDeque;

use super::Scheduler;
use crate::rng::SimRng;
use crate::ProcId;

/// The most change points a [`PctScheduler`] draws (bug depth 65,537).
pub const MAX_CHANGE_POINTS: usize = 1 << 16;

/// The PCT policy.
#[derive(Debug)]
pub struct PctScheduler {
    /// The depth and expected steps it was made with (what `restart` checks).
    asked: (usize, u64),
    depth: usize,
    priorities: Vec<u64>,
    /// The change points, ascending, without repeats.
    change_points: Vec<u64>,
    step: u64,
    last: Option<ProcId>,
}

impl PctScheduler {
    /// PCT with bug depth `depth` (>= 1) for runs of about `max_steps` choices.
    ///
    /// There are at most `max_steps` change points (one per step) and at
    /// most [`MAX_CHANGE_POINTS`], so a huge `depth` cannot overflow the
    /// priorities or exhaust memory.
    pub fn new(depth: usize, max_steps: u64, rng: &mut SimRng) -> PctScheduler {
        let mut s = PctScheduler {
            asked: (depth, max_steps),
            depth: 1,
            priorities: Vec::new(),
            change_points: Vec::new(),
            step: 0,
            last: None,
        };
        s.draw(rng);
        s
    }

    /// Draws the change points for the depth and steps asked, and starts
    /// from the first step with no process known.
    fn draw(&mut self, rng: &mut SimRng) {
        let (depth, max_steps) = self.asked;
        let wanted = depth.max(1).saturating_sub(1).min(MAX_CHANGE_POINTS);
        let points = &mut self.change_points;
        points.clear();
        while points.len() < wanted && (points.len() as u64) < max_steps {
            let c = 1 + rng.below(max_steps.max(1));
            if let Err(i) = points.binary_search(&c) {
                points.insert(i, c);
            }
        }
        // The depth actually used: change points plus one. Initial
        // priorities start above it, change-point priorities below.
        self.depth = points.len() + 1;
        self.priorities.clear();
        self.step = 0;
        self.last = None;
    }

    fn priority(&self, p: ProcId) -> u64 {
        self.priorities.get(p.0 as usize).copied().unwrap_or(0)
    }
}

impl Scheduler for PctScheduler {
    fn on_spawn(&mut self, proc: ProcId, rng: &mut SimRng) {
        let i = proc.0 as usize;
        if self.priorities.len() <= i {
            self.priorities.resize(i + 1, 0);
        }
        // Initial priorities sit above every change-point priority (1..depth).
        self.priorities[i] = self.depth as u64 + 1 + (rng.next_u64() >> 2);
    }

    fn choose(&mut self, ready: &VecDeque<ProcId>, _rng: &mut SimRng) -> usize {
        self.step += 1;
        if let Some(last) = self.last {
            if let Ok(k) = self.change_points.binary_search(&self.step) {
                if let Some(p) = self.priorities.get_mut(last.0 as usize) {
                    *p = 1 + k as u64;
                }
            }
        }
        // Highest priority wins; ties go to the lower process id.
        let mut best = 0;
        for (i, &p) in ready.iter().enumerate() {
            let (bp, pp) = (self.priority(ready[best]), self.priority(p));
            if pp > bp || (pp == bp && p < ready[best]) {
                best = i;
            }
        }
        self.last = Some(ready[best]);
        best
    }

    fn name(&self) -> &'static str {
        "pct"
    }

    fn restart(&mut self, kind: &super::SchedulerKind, rng: &mut SimRng) -> bool {
        match *kind {
            super::SchedulerKind::Pct { depth, max_steps } if (depth, max_steps) == self.asked => {
                self.draw(rng);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_runs_until_a_change_point() {
        let mut rng = SimRng::new(5);
        let mut s = PctScheduler::new(1, 100, &mut rng); // depth 1: no change points
        for p in 0..3 {
            s.on_spawn(ProcId(p), &mut rng);
        }
        let ready: VecDeque<ProcId> = [ProcId(0), ProcId(1), ProcId(2)].into();
        let first = s.choose(&ready, &mut rng);
        for _ in 0..20 {
            assert_eq!(
                s.choose(&ready, &mut rng),
                first,
                "no change point: always the same"
            );
        }
    }

    /// The choices of a scheduler over a fixed sequence of ready sets.
    fn choices(s: &mut PctScheduler, rng: &mut SimRng) -> Vec<usize> {
        for p in 0..4 {
            s.on_spawn(ProcId(p), rng);
        }
        let ready: VecDeque<ProcId> = (0..4).map(ProcId).collect();
        (0..60).map(|_| s.choose(&ready, rng)).collect()
    }

    /// A restarted scheduler is the one `new` makes from the same stream:
    /// same change points, same choices, same draws left in the stream.
    #[test]
    fn a_restart_is_a_new_scheduler() {
        let kind = crate::SchedulerKind::Pct {
            depth: 4,
            max_steps: 50,
        };
        let (mut a, mut b) = (SimRng::new(3), SimRng::new(3));
        let mut used = PctScheduler::new(4, 50, &mut SimRng::new(99));
        let _ = choices(&mut used, &mut SimRng::new(98));
        assert!(used.restart(&kind, &mut a));
        let mut fresh = PctScheduler::new(4, 50, &mut b);
        assert_eq!(used.change_points, fresh.change_points);
        assert_eq!(used.change_points.len(), 3);
        assert_eq!(choices(&mut used, &mut a), choices(&mut fresh, &mut b));
        assert_eq!(a.next_u64(), b.next_u64(), "the same draws were taken");
    }

    #[test]
    fn a_restart_as_another_kind_changes_nothing() {
        let mut rng = SimRng::new(5);
        let mut s = PctScheduler::new(3, 100, &mut rng);
        let before = s.change_points.clone();
        let mut probe = SimRng::new(7);
        for kind in [
            crate::SchedulerKind::Random,
            crate::SchedulerKind::Pct {
                depth: 3,
                max_steps: 99,
            },
        ] {
            assert!(!s.restart(&kind, &mut probe));
        }
        assert_eq!(s.change_points, before);
        assert_eq!(probe.next_u64(), SimRng::new(7).next_u64(), "nothing drawn");
    }

    #[test]
    fn a_change_point_demotes_the_running_process() {
        let mut rng = SimRng::new(9);
        let mut s = PctScheduler::new(2, 1, &mut rng); // one change point, at step 1
        s.on_spawn(ProcId(0), &mut rng);
        s.on_spawn(ProcId(1), &mut rng);
        let ready: VecDeque<ProcId> = [ProcId(0), ProcId(1)].into();
        s.last = Some(ready[0]);
        s.priorities[0] = u64::MAX; // process 0 would win...
        let i = s.choose(&ready, &mut rng); // ...but step 1 demotes it
        assert_eq!(ready[i], ProcId(1));
    }
}
