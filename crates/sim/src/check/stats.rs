//! What a search did, printed as SPIN prints it.

use std::fmt;
use std::time::Duration;

/// The statistics of a search (module [`check`](super) docs).
#[derive(Clone, PartialEq, Debug, Default)]
pub struct CheckStats {
    /// The storage mode, by name.
    pub storage: String,
    /// Distinct states stored (explored).
    pub states_stored: u64,
    /// States reached again and not explored again.
    pub states_matched: u64,
    /// Transitions taken (steps of one process).
    pub transitions: u64,
    /// Whether the partial-order reduction was on
    /// ([`Checker::reduction`](super::Checker::reduction); off for a model
    /// with invariants).
    pub reduction: bool,
    /// States expanded (stored, not an end, not at the depth limit).
    pub states_expanded: u64,
    /// Expanded states with two moves or more whose first was judged for
    /// the reduction.
    pub states_probed: u64,
    /// Expanded states whose expansion was reduced to one step.
    pub states_reduced: u64,
    /// Expanded states whose expansion was a stubborn set of several
    /// processes, not all of them
    /// ([`Checker::stubborn_sets`](super::Checker::stubborn_sets)).
    pub states_stubborn: u64,
    /// Local steps merged into the transition of the local steps their
    /// process took just before them (statement merging, part of the
    /// partial-order reduction): the states between them were not stored. Counted by the depth-first
    /// and breadth-first searches (0 in the parallel search, which merges
    /// alike but does not count).
    pub local_steps_merged: u64,
    /// The deepest state reached (steps from the initial state).
    pub max_depth: usize,
    /// The depth limit.
    pub depth_limit: usize,
    /// States at the depth limit whose successors were not explored.
    pub depth_cuts: u64,
    /// End states reached (valid or failing).
    pub end_states: u64,
    /// Failures found (each distinct by reason and end state).
    pub failures: u64,
    /// Wall-clock time of the search.
    pub elapsed: Duration,
    /// Memory of the visited set, in bytes.
    pub memory: usize,
    /// Memory of the states waiting to be explored (the search stack or
    /// queue), estimated from their encodings, in bytes.
    pub frontier_memory: usize,
    /// The memory limit of the two.
    pub memory_limit: usize,
    /// The probability that a state was missed (hash compaction, bitstate);
    /// `None` for exact storage.
    pub omission: Option<f64>,
    /// Bitstate's bits per state (best if > 100, as SPIN says).
    pub hash_factor: Option<f64>,
    /// The whole reachable space was explored: no depth cut, no memory
    /// stop, no stop at a failure, nothing unsupported. (With hash
    /// compaction or bitstate, up to [`CheckStats::omission`].)
    pub complete: bool,
    /// Why the search stopped early, if it did.
    pub stopped: Option<String>,
    /// The parallel search ([`Checker::parallel`](super::Checker::parallel)):
    /// its worker threads; 0 for the sequential search.
    pub workers: usize,
    /// The parallel search run as one shard of several
    /// ([`Parallel::shard`](super::Parallel::shard)): which, and what every
    /// shard explored alike before the split.
    pub shard: Option<ShardStats>,
}

/// What one shard of a split search did (module [`parallel`](super::parallel)).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ShardStats {
    /// This shard's index, from 0.
    pub index: u32,
    /// How many shards the search was split into.
    pub count: u32,
    /// The level (depth) whose states were dealt out among the shards;
    /// `None` if the search ended before one was large enough (then every
    /// shard explored everything).
    pub split_depth: Option<usize>,
    /// The states of that level this shard took (each `count`-th).
    pub roots: u64,
    /// States stored before the split (every shard stores them alike).
    pub prefix_states: u64,
    /// States matched before the split.
    pub prefix_matched: u64,
    /// Transitions taken before the split.
    pub prefix_transitions: u64,
    /// End states reached before the split.
    pub prefix_end_states: u64,
    /// States of the split level dealt to another shard that this one
    /// reached again later and so explored too.
    pub reclaimed: u64,
}

impl CheckStats {
    /// Stored states per second of wall-clock time.
    pub fn states_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.states_stored as f64 / s
        } else {
            0.0
        }
    }
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for CheckStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stateful search, storage: {}", self.storage)?;
        writeln!(
            f,
            "depth reached {} (limit {})",
            self.max_depth, self.depth_limit
        )?;
        writeln!(f, "{:>12} states, stored", self.states_stored)?;
        writeln!(f, "{:>12} states, matched", self.states_matched)?;
        writeln!(f, "{:>12} transitions (= stored+matched)", self.transitions)?;
        writeln!(
            f,
            "{:>12} end states ({} failing)",
            self.end_states, self.failures
        )?;
        writeln!(
            f,
            "{:>12.3} s elapsed, {:.0} states/s",
            self.elapsed.as_secs_f64(),
            self.states_per_sec()
        )?;
        writeln!(
            f,
            "{:>12.3} MB visited set, {:.3} MB frontier (limit {:.0} MB)",
            mb(self.memory),
            mb(self.frontier_memory),
            mb(self.memory_limit)
        )?;
        if self.reduction {
            writeln!(
                f,
                "partial-order reduction: {} of {} expanded states reduced to one step ({:.1}%)",
                self.states_reduced,
                self.states_expanded,
                if self.states_expanded > 0 {
                    self.states_reduced as f64 * 100.0 / self.states_expanded as f64
                } else {
                    0.0
                }
            )?;
            if self.local_steps_merged > 0 {
                writeln!(
                    f,
                    "  and {} local step(s) merged into the transition of the local steps before them",
                    self.local_steps_merged
                )?;
            }
            if self.states_stubborn > 0 {
                writeln!(
                    f,
                    "  and {} to a stubborn set of several processes",
                    self.states_stubborn
                )?;
            }
        } else {
            writeln!(f, "partial-order reduction: off")?;
        }
        if let Some(h) = self.hash_factor {
            writeln!(f, "hash factor {h:.1} (best if > 100.)")?;
        }
        if let Some(p) = self.omission {
            writeln!(
                f,
                "probability of a missed state {p:.3e} (expected coverage {:.4}%)",
                (1.0 - p) * 100.0
            )?;
        }
        if self.workers > 0 {
            writeln!(
                f,
                "parallel search: {} worker(s), breadth-first by levels (states, end states \
                 and failures are the same for every number of workers)",
                self.workers
            )?;
        }
        if let Some(s) = &self.shard {
            match s.split_depth {
                Some(d) => writeln!(
                    f,
                    "shard {}/{}: {} of the states at depth {d} ({} stored before the split, \
                     by every shard; {} reclaimed)",
                    s.index, s.count, s.roots, s.prefix_states, s.reclaimed
                )?,
                None => writeln!(
                    f,
                    "shard {}/{}: the search ended before a level was large enough to split: \
                     every shard explored everything",
                    s.index, s.count
                )?,
            }
        }
        if self.depth_cuts > 0 {
            writeln!(
                f,
                "{} state(s) at the depth limit not expanded",
                self.depth_cuts
            )?;
        }
        match (&self.stopped, self.complete) {
            (Some(why), _) => write!(f, "search incomplete: {why}"),
            (None, true) => write!(f, "search complete"),
            (None, false) => write!(f, "search incomplete: depth limit reached"),
        }
    }
}
