//! The search: depth-first with an explicit stack (or breadth-first for
//! shortest trails) over the visited set.

use std::collections::VecDeque;
use std::time::Instant;

use super::encode::{hash64, Encode};
use super::engine::{Engine, Succ};
use super::stats::CheckStats;
use super::store::{Insert, Visited};
use super::trail::Trail;
use super::world::{CheckView, State};
use super::{CheckFailure, CheckOutcome, Checker, EndState};
use crate::machine::Machine;
use crate::report::FailureReason;

/// A state waiting to be expanded.
struct Frame<M> {
    state: State<M>,
    enabled: Vec<u32>,
    next: usize,
    /// Bytes its encoding took (the frontier's memory estimate).
    size: usize,
    /// Breadth-first: its node in the trail tree.
    node: u32,
    depth: usize,
}

/// A new state to expand: the state, its enabled processes, the size of
/// its encoding.
type Expand<M> = (State<M>, Vec<u32>, usize);

/// Records a failure reached at a state whose encoding hashed to `key`,
/// once per reason and state (at most `max_failures` kept); returns whether
/// the search stops there.
fn record_failure(
    cfg: &Checker,
    failures: &mut Vec<CheckFailure>,
    seen: &mut std::collections::HashSet<u64>,
    stats: &mut CheckStats,
    reason: FailureReason,
    key: u64,
    trail: impl FnOnce() -> Trail,
) -> bool {
    if !seen.insert(key ^ hash64(reason.to_string().as_bytes(), 3)) {
        return false;
    }
    stats.failures += 1;
    if failures.len() < cfg.max_failures {
        failures.push(CheckFailure {
            reason,
            trail: trail(),
        });
    }
    !cfg.keep_going
}

/// Puts a state just reached on the frontier (the stack, or the queue for
/// a breadth-first search) if it is to be expanded; returns why the search
/// stops, if reaching it stopped it.
fn admit<M>(
    cfg: &Checker,
    stack: &mut Vec<Frame<M>>,
    queue: &mut VecDeque<Frame<M>>,
    frontier: &mut usize,
    reached: Result<Option<Expand<M>>, String>,
    node: u32,
    depth: usize,
) -> Option<String> {
    match reached {
        Err(why) => Some(why),
        Ok(Some((state, enabled, size))) => {
            *frontier += size;
            let f = Frame {
                state,
                enabled,
                next: 0,
                size,
                node,
                depth,
            };
            if cfg.shortest {
                queue.push_back(f);
            } else {
                stack.push(f);
            }
            None
        }
        Ok(None) => None,
    }
}

/// Searches from the engine's initial state.
pub(crate) fn search<M: Machine + Clone + Encode>(
    cfg: &Checker,
    engine: &mut Engine<M>,
    on_end: &mut dyn FnMut(&EndState<'_, M>),
) -> CheckOutcome {
    let start = Instant::now();
    let limit = cfg.memory_limit();
    let mut stats = CheckStats {
        storage: cfg.storage.name(),
        depth_limit: cfg.max_depth,
        memory_limit: limit,
        ..CheckStats::default()
    };
    let mut failures: Vec<CheckFailure> = Vec::new();
    let mut seen_failures: std::collections::HashSet<u64> = Default::default();
    let Some(mut visited) = Visited::new(cfg.storage, limit) else {
        stats.stopped = Some("visited set reached --max-memory (the bit array alone)".into());
        return CheckOutcome { stats, failures };
    };
    let mut enc = Vec::new();
    // Breadth-first: (parent node, process) per stored state, for trails.
    let mut nodes: Vec<(u32, u32)> = Vec::new();
    let mut stack: Vec<Frame<M>> = Vec::new();
    let mut queue: VecDeque<Frame<M>> = VecDeque::new();
    let mut frontier = 0usize;
    let mut last_progress = Instant::now();
    let mut stop_first = false;

    let trail_of = |stack: &[Frame<M>], nodes: &[(u32, u32)], node: u32, shortest: bool| {
        if shortest {
            let mut t = Vec::new();
            let mut n = node;
            while n != u32::MAX {
                let (parent, proc) = nodes[n as usize];
                if parent == u32::MAX && proc == u32::MAX {
                    break;
                }
                t.push(proc);
                n = parent;
            }
            t.reverse();
            Trail(t)
        } else {
            Trail(stack.iter().map(|f| f.enabled[f.next - 1]).collect())
        }
    };

    // Handles a state just reached: returns it as a frame to expand, if it
    // is new and not an end.
    #[allow(clippy::too_many_arguments)]
    fn reached<M: Machine + Clone + Encode>(
        cfg: &Checker,
        engine: &mut Engine<M>,
        succ: Succ<M>,
        depth: usize,
        enc: &mut Vec<u8>,
        visited: &mut Visited,
        limit: usize,
        frontier: usize,
        stats: &mut CheckStats,
        on_end: &mut dyn FnMut(&EndState<'_, M>),
        mut record: impl FnMut(FailureReason, &[u8]),
    ) -> Result<Option<Expand<M>>, String> {
        let mut succ = succ;
        if let Some(why) = succ.unsupported {
            return Err(why);
        }
        engine.encode(&mut succ.slots, succ.now, enc);
        let inserted = visited.insert(
            enc,
            &engine.cuts,
            &mut engine.known,
            succ.slots.len(),
            limit.saturating_sub(frontier + enc.len()),
        );
        engine.remember_parts(&succ.slots);
        match inserted {
            Insert::Seen => {
                stats.states_matched += 1;
                return Ok(None);
            }
            Insert::Full => return Err("visited set reached --max-memory".into()),
            Insert::New => {}
        }
        stats.states_stored += 1;
        stats.max_depth = stats.max_depth.max(depth);
        let failure = match succ.fail {
            Some(f) => Some(f),
            None if succ.enabled.is_empty() => {
                stats.end_states += 1;
                engine.judge_end(&succ.slots)
            }
            None => None,
        };
        if failure.is_some() || succ.enabled.is_empty() {
            if failure.is_some() && !succ.enabled.is_empty() {
                stats.end_states += 1;
            }
            // The kernel may have been changed by the leak check: the view
            // shows machines and statuses, not the kernel.
            on_end(&EndState {
                view: CheckView {
                    kernel: &engine.world.kernel,
                    slots: &succ.slots,
                    now: succ.now,
                },
                failure: failure.as_ref(),
            });
            if let Some(f) = failure {
                record(f, enc);
            }
            return Ok(None);
        }
        if depth >= cfg.max_depth {
            stats.depth_cuts += 1;
            return Ok(None);
        }
        let size = enc.len();
        Ok(Some((
            engine.freeze(succ.slots, succ.now),
            succ.enabled,
            size,
        )))
    }

    let init = engine.initial();
    let mut pending_failure: Option<(FailureReason, u64)> = None;
    let first = reached(
        cfg,
        engine,
        init,
        0,
        &mut enc,
        &mut visited,
        limit,
        0,
        &mut stats,
        on_end,
        |f, e| pending_failure = Some((f, hash64(e, 7))),
    );
    if cfg.shortest {
        nodes.push((u32::MAX, u32::MAX));
    }
    if let Some((reason, key)) = pending_failure.take() {
        stop_first = record_failure(
            cfg,
            &mut failures,
            &mut seen_failures,
            &mut stats,
            reason,
            key,
            Trail::default,
        );
    }
    let mut stopped = admit(cfg, &mut stack, &mut queue, &mut frontier, first, 0, 0);

    while stopped.is_none() && !stop_first {
        // The next transition: the top frame's next process.
        let (proc, depth, node) = if cfg.shortest {
            let Some(top) = queue.front_mut() else { break };
            if top.next == top.enabled.len() {
                frontier -= top.size;
                queue.pop_front();
                continue;
            }
            top.next += 1;
            (top.enabled[top.next - 1], top.depth + 1, top.node)
        } else {
            let Some(top) = stack.last_mut() else { break };
            if top.next == top.enabled.len() {
                frontier -= top.size;
                stack.pop();
                continue;
            }
            top.next += 1;
            (top.enabled[top.next - 1], top.depth + 1, top.node)
        };
        let parent = if cfg.shortest {
            &queue.front().expect("frame").state
        } else {
            &stack.last().expect("frame").state
        };
        let succ = engine.step(parent, proc as usize, depth, false);
        stats.transitions += 1;
        let result = reached(
            cfg,
            engine,
            succ,
            depth,
            &mut enc,
            &mut visited,
            limit,
            frontier,
            &mut stats,
            on_end,
            |f, e| pending_failure = Some((f, hash64(e, 7))),
        );
        let new_node = if cfg.shortest && !matches!(result, Ok(None) if pending_failure.is_none()) {
            nodes.push((node, proc));
            (nodes.len() - 1) as u32
        } else {
            u32::MAX
        };
        if let Some((reason, key)) = pending_failure.take() {
            let trail = || {
                if cfg.shortest {
                    trail_of(&stack, &nodes, new_node, true)
                } else {
                    trail_of(&stack, &nodes, 0, false)
                }
            };
            if record_failure(
                cfg,
                &mut failures,
                &mut seen_failures,
                &mut stats,
                reason,
                key,
                trail,
            ) {
                stop_first = true;
            }
        }
        stopped = admit(
            cfg,
            &mut stack,
            &mut queue,
            &mut frontier,
            result,
            new_node,
            depth,
        );
        if stats.transitions % 1024 == 0 {
            if let Some((every, f)) = &cfg.progress {
                if last_progress.elapsed() >= *every {
                    last_progress = Instant::now();
                    let mut s = stats.clone();
                    s.elapsed = start.elapsed();
                    s.memory = visited.memory();
                    s.frontier_memory = frontier;
                    (f.borrow_mut())(&s);
                }
            }
        }
    }
    if stop_first && stopped.is_none() {
        stopped = Some("stopped at the first failure".into());
    }
    stats.elapsed = start.elapsed();
    stats.memory = visited.memory();
    stats.frontier_memory = frontier;
    stats.omission = visited.omission(stats.states_stored);
    stats.hash_factor = visited.hash_factor(stats.states_stored);
    stats.complete = stopped.is_none() && stats.depth_cuts == 0;
    stats.stopped = stopped;
    CheckOutcome { stats, failures }
}
