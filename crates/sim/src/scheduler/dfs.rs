//! Depth-first enumeration of schedules, for exhaustive exploration.
//!
//! Stateless model checking: a run follows a *prefix* of choice indices and
//! then always picks the first runnable process, recording at each choice
//! point how many options there were. The explorer then backtracks: it drops
//! trailing choices that have no untried sibling and bumps the last one that
//! has. Choices past `max_depth` are not branched on, which bounds the search.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::Scheduler;
use crate::rng::SimRng;
use crate::ProcId;

/// The shared record of one DFS run: the prefix to follow and what happened.
#[derive(Clone, Debug, Default)]
pub struct DfsTrail {
    inner: Rc<RefCell<TrailInner>>,
}

#[derive(Debug, Default)]
struct TrailInner {
    prefix: Vec<u32>,
    /// `(choice, options)` per choice point of the last run.
    taken: Vec<(u32, u32)>,
    max_depth: usize,
    /// Alternatives not branched on because they were past `max_depth`,
    /// over all runs so far.
    skipped: u64,
}

impl DfsTrail {
    /// A trail starting at the first schedule, branching on at most `max_depth` choices.
    pub fn new(max_depth: usize) -> DfsTrail {
        let t = DfsTrail::default();
        t.inner.borrow_mut().max_depth = max_depth;
        t
    }

    /// Alternatives left out so far because their choice point was past
    /// the bound (0 means the bound cut nothing).
    pub fn skipped(&self) -> u64 {
        self.inner.borrow().skipped
    }

    /// Moves to the next unexplored schedule; `false` when all are done.
    pub fn advance(&self) -> bool {
        let mut t = self.inner.borrow_mut();
        let mut taken = std::mem::take(&mut t.taken);
        while let Some((choice, options)) = taken.pop() {
            if choice + 1 < options {
                let mut prefix: Vec<u32> = taken.iter().map(|&(c, _)| c).collect();
                prefix.push(choice + 1);
                t.prefix = prefix;
                return true;
            }
        }
        false
    }
}

/// Follows a [`DfsTrail`]'s prefix, then takes the first option.
#[derive(Debug)]
pub struct DfsScheduler {
    trail: DfsTrail,
}

impl DfsScheduler {
    /// A scheduler for one run of the trail.
    pub fn new(trail: DfsTrail) -> DfsScheduler {
        trail.inner.borrow_mut().taken.clear();
        DfsScheduler { trail }
    }
}

impl Scheduler for DfsScheduler {
    fn choose(&mut self, ready: &VecDeque<ProcId>, _rng: &mut SimRng) -> usize {
        let mut t = self.trail.inner.borrow_mut();
        let depth = t.taken.len();
        let options = if depth < t.max_depth {
            ready.len() as u32
        } else {
            t.skipped += ready.len() as u64 - 1;
            1
        };
        let choice = t.prefix.get(depth).copied().unwrap_or(0).min(options - 1);
        t.taken.push((choice, options));
        choice as usize
    }
    fn name(&self) -> &'static str {
        "dfs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the scheduler through a fixed tree: 2 options, then 3.
    fn one_run(trail: &DfsTrail) -> Vec<usize> {
        let mut s = DfsScheduler::new(trail.clone());
        let mut rng = SimRng::new(0);
        let two: VecDeque<ProcId> = [ProcId(0), ProcId(1)].into();
        let three: VecDeque<ProcId> = [ProcId(0), ProcId(1), ProcId(2)].into();
        vec![s.choose(&two, &mut rng), s.choose(&three, &mut rng)]
    }

    #[test]
    fn enumerates_every_leaf_once() {
        let trail = DfsTrail::new(10);
        let mut seen = vec![one_run(&trail)];
        while trail.advance() {
            seen.push(one_run(&trail));
        }
        assert_eq!(seen, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]);
    }

    #[test]
    fn depth_bound_stops_branching() {
        let trail = DfsTrail::new(1);
        let mut runs = 1;
        one_run(&trail);
        while trail.advance() {
            one_run(&trail);
            runs += 1;
        }
        assert_eq!(runs, 2, "only the first choice point branches");
        assert_eq!(trail.skipped(), 2 * 2, "each run left 2 options out");
    }
}
