//! The search: depth-first with an explicit stack (or breadth-first for
//! shortest trails) over the visited set.
//!
//! A state's moves are its enabled processes, tried highest index first
//! (as SPIN's pan does: in a model written as servers then clients, the
//! last processes started are the ones that drive it, and trying them
//! first reaches a deadlock along the first path far more often). A move
//! that makes choices ([`Ctx::choose`](crate::machine::Ctx::choose)) is
//! followed by its siblings: the same process again with the next vector
//! of choices, until the step's tree of alternatives is covered. The first
//! move from a state may be its whole expansion (module `por`).

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

/// One transition from a state: a process and the choices its step makes
/// (then 0s).
#[derive(Clone, Debug, Default)]
pub(crate) struct Move {
    pub proc: u32,
    /// The choices (for [`BLOCK_ALL`]: the processes).
    pub choices: Vec<u32>,
    /// Block as the step does, even on a buffered mailbox (module `por`).
    pub eager: bool,
}

/// The process of the move that lets every process whose step only
/// blocked block ([`Move::choices`] lists them), when nothing else can step.
pub(super) const BLOCK_ALL: u32 = u32::MAX;

impl Move {
    /// Appends the steps of this move to a trail.
    pub(super) fn push_to(&self, t: &mut Trail) {
        if self.proc == BLOCK_ALL {
            for &p in &self.choices {
                t.push(p, &[]);
            }
        } else {
            t.push(self.proc, &self.choices);
        }
    }
}

/// What is left to do at a state whose moves have all been taken, when
/// some only blocked (module `por`): if no move got anywhere, the state
/// where they all wait (one move; or, when a timer is set, so that their
/// order in the queues matters once it fires, each one's blocking as a
/// move of its own); else the blocking of each whose wait a successor's
/// wait on the same mailbox, the same way, would have overtaken.
pub(super) fn after_blocked<M>(top: &mut Frame<M>) -> Option<Move> {
    if top.blocked.is_empty() {
        return None;
    }
    let eager = |proc| Move {
        proc,
        choices: Vec::new(),
        eager: true,
    };
    if !top.produced {
        let procs: Vec<u32> = top.blocked.drain(..).map(|(p, _, _)| p).collect();
        if !has_timers(&top.state.slots) {
            return Some(Move {
                proc: BLOCK_ALL,
                choices: procs,
                eager: true,
            });
        }
        top.todo.extend(procs.into_iter().map(eager));
        return top.todo.pop();
    }
    let registered = &top.registered;
    let mut promoted = Vec::new();
    top.blocked.retain(|&(p, send, key)| {
        let overtaken = registered
            .iter()
            .any(|&(s, k)| s == send && (k.is_none() || key.is_none() || k == key));
        if overtaken {
            promoted.push(p);
        }
        !overtaken
    });
    top.todo.extend(promoted.into_iter().map(eager));
    top.todo.pop()
}

/// Whether some process waits for a timer (a pause, a timed wait).
fn has_timers<M>(slots: &[super::world::Slot<M>]) -> bool {
    use super::world::Status;
    slots.iter().any(|s| {
        matches!(
            s.status,
            Status::Paused { .. }
                | Status::Waiting {
                    deadline: Some(_),
                    ..
                }
                | Status::TimedOut { .. }
        )
    })
}

/// Whether looking for stubborn sets still pays: judging every move of a
/// state costs a step each, so once [`SetBudget::TRIAL`] states have been
/// tried and fewer than one in [`SetBudget::RATE`] had a set, the search
/// stops looking (master-worker: the master's select conflicts with every
/// worker, and the probing would cost 15 % more time for 1 % fewer
/// states). Sound either way: a state not tried is expanded in full.
#[derive(Default)]
pub(super) struct SetBudget {
    tried: u64,
    found: u64,
}

impl SetBudget {
    const TRIAL: u64 = 1024;
    const RATE: u64 = 10;

    pub(super) fn worth_trying(&self) -> bool {
        self.tried < Self::TRIAL || self.found * Self::RATE >= self.tried
    }

    pub(super) fn tried(&mut self, found: bool) {
        self.tried += 1;
        self.found += u64::from(found);
    }
}

/// Expands `top` by a stubborn set (module `por`) if one leaves a process
/// out: judges the step of every process left to try (the first, `first`
/// of footprint `foot`, has been taken and reached a new state), keeps in
/// `top.todo` only the moves of the smallest stubborn set and puts the
/// others in `top.left_out`. Returns whether it did. A process whose step
/// only blocks is no transition there, so it is in no set.
pub(super) fn stubborn_expansion<M: Machine + Clone + Encode>(
    engine: &mut Engine<M>,
    top: &mut Frame<M>,
    first: u32,
    foot: super::por::Foot,
    depth: usize,
) -> bool {
    let mut moves = vec![(first, foot)];
    for mv in &top.todo {
        if mv.proc == first {
            continue; // the first move's other choices
        }
        if mv.eager || mv.proc == BLOCK_ALL || !mv.choices.is_empty() {
            return false;
        }
        let succ = engine.step(&top.state, mv.proc as usize, &[], depth, false, true);
        if succ.unsupported.is_some() {
            return false;
        }
        if !succ.blocked {
            moves.push((mv.proc, succ.foot));
        }
    }
    engine.hold(&top.state);
    let Some(set) = super::por::stubborn_set(&engine.world, &top.state.slots, &moves, first) else {
        return false;
    };
    let (keep, out): (Vec<Move>, Vec<Move>) = std::mem::take(&mut top.todo)
        .into_iter()
        .partition(|mv| mv.proc != first && set.contains(&mv.proc));
    top.todo = keep;
    top.left_out = out;
    true
}

/// The choices of the step after one that made `made` (alternatives, the
/// one taken) in the depth-first order of its tree of alternatives.
pub(super) fn next_choices(made: &[(u32, u32)]) -> Option<Vec<u32>> {
    let j = made.iter().rposition(|&(n, c)| c + 1 < n)?;
    let mut next: Vec<u32> = made[..j].iter().map(|&(_, c)| c).collect();
    next.push(made[j].1 + 1);
    Some(next)
}

/// A process whose step only blocked (module `por`): it, and the wait it
/// would leave, a send (else a receive) on this mailbox (`None`: on
/// several names).
pub(super) type BlockedStep = (u32, bool, Option<(u8, u64)>);

/// A state waiting to be expanded.
pub(super) struct Frame<M> {
    pub(super) state: State<M>,
    /// Moves still to take, the last first.
    pub(super) todo: Vec<Move>,
    /// The move taken last (depth-first: the one the trail goes through).
    pub(super) last: Move,
    /// No move taken yet: the first may be its whole expansion.
    pub(super) fresh: bool,
    /// A move led to a successor (one that did not only block).
    pub(super) produced: bool,
    /// The processes whose step only blocked (module `por`), with the
    /// wait they would leave.
    pub(super) blocked: Vec<BlockedStep>,
    /// The waits the successors left (as [`Succ::waits`]).
    pub(super) registered: Vec<(bool, Option<(u8, u64)>)>,
    /// Expanded by a stubborn set (module `por`): the moves left out, to
    /// take after all if a move of the set reaches a state already seen
    /// (the cycle proviso).
    pub(super) left_out: Vec<Move>,
    /// Bytes its encoding took (the frontier's memory estimate).
    pub(super) size: usize,
    /// Breadth-first: its node in the trail tree.
    pub(super) node: u32,
    pub(super) depth: usize,
}

/// A new state to expand: the state, its enabled processes, the size of
/// its encoding.
type Expand<M> = (State<M>, Vec<u32>, usize);

/// Records a failure reached at a state whose encoding hashed to `key`,
/// once per reason and state (at most `max_failures` kept); returns whether
/// the search stops there.
pub(super) fn record_failure(
    cfg: &Checker,
    failures: &mut Vec<CheckFailure>,
    seen: &mut std::collections::HashSet<u64>,
    stats: &mut CheckStats,
    reason: FailureReason,
    key: u64,
    trail: impl FnOnce() -> Trail,
) -> bool {
    let key = key ^ hash64(reason.to_string().as_bytes(), 3);
    if !seen.insert(key) {
        return false;
    }
    stats.failures += 1;
    if failures.len() < cfg.max_failures {
        failures.push(CheckFailure {
            reason,
            trail: trail(),
            key,
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
                todo: enabled
                    .into_iter()
                    .map(|proc| Move {
                        proc,
                        choices: Vec::new(),
                        eager: false,
                    })
                    .collect(),
                last: Move::default(),
                fresh: true,
                produced: false,
                blocked: Vec::new(),
                registered: Vec::new(),
                left_out: Vec::new(),
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
    // Breadth-first: (parent node, move) per stored state, for trails.
    let mut nodes: Vec<(u32, Move)> = Vec::new();
    let reduce = cfg.reduction && engine.world.invariants.is_empty();
    stats.reduction = reduce;
    engine.lazy_blocking = reduce;
    let mut stack: Vec<Frame<M>> = Vec::new();
    let mut queue: VecDeque<Frame<M>> = VecDeque::new();
    let mut frontier = 0usize;
    let mut last_progress = Instant::now();
    let mut stop_first = false;
    let mut sets = SetBudget::default();

    let trail_of = |stack: &[Frame<M>], nodes: &[(u32, Move)], node: u32, shortest: bool| {
        let mut t = Trail::default();
        if shortest {
            let mut path = Vec::new();
            let mut n = node;
            while n != u32::MAX {
                let (parent, mv) = &nodes[n as usize];
                if *parent == u32::MAX {
                    break;
                }
                path.push(mv);
                n = *parent;
            }
            for mv in path.into_iter().rev() {
                mv.push_to(&mut t);
            }
        } else {
            for f in stack {
                f.last.push_to(&mut t);
            }
        }
        t
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
        new: &mut bool,
        mut record: impl FnMut(FailureReason, &[u8]),
    ) -> Result<Option<Expand<M>>, String> {
        if let Some(why) = succ.unsupported {
            return Err(why);
        }
        let mut succ = engine.settle_failing(succ, depth);
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
            Insert::New => *new = true,
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
                terminal: succ.enabled.is_empty(),
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
        stats.states_expanded += 1;
        let mut enabled = succ.enabled;
        if engine.lazy_blocking {
            super::por::probe_first(&mut enabled, &succ.slots);
        }
        Ok(Some((engine.freeze(succ.slots, succ.now), enabled, size)))
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
        &mut false,
        |f, e| pending_failure = Some((f, hash64(e, 7))),
    );
    if cfg.shortest {
        nodes.push((u32::MAX, Move::default()));
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
        // The next transition: the top frame's next move.
        let top = if cfg.shortest {
            queue.front_mut()
        } else {
            stack.last_mut()
        };
        let Some(top) = top else { break };
        let mv = match top.todo.pop() {
            Some(mv) => mv,
            None => match after_blocked(top) {
                Some(mv) => mv,
                None => {
                    frontier -= top.size;
                    if cfg.shortest {
                        queue.pop_front();
                    } else {
                        stack.pop();
                    }
                    continue;
                }
            },
        };
        // Only the first move of a state with others to take may be its
        // whole expansion.
        let judge = reduce && !mv.eager && top.fresh && !top.todo.is_empty();
        if !mv.eager {
            top.fresh = false;
        }
        if judge {
            stats.states_probed += 1;
        }
        let (depth, node) = (top.depth + 1, top.node);
        let succ = if mv.proc == BLOCK_ALL {
            engine.block_all(&top.state, &mv.choices, depth)
        } else if mv.eager {
            engine.step_eager(&top.state, mv.proc as usize, depth)
        } else {
            engine.step(
                &top.state,
                mv.proc as usize,
                &mv.choices,
                depth,
                false,
                judge,
            )
        };
        if succ.blocked {
            // Not a transition (module `por`): the process steps once its
            // operation can complete (or see `after_blocked`).
            if let Some((send, key)) = succ.waits {
                top.blocked.push((mv.proc, send, key));
            }
            if judge {
                stats.states_probed -= 1;
                top.fresh = true;
            }
            continue;
        }
        top.produced = true;
        if let Some(w) = succ.waits {
            top.registered.push(w);
        }
        if let Some(choices) = next_choices(&succ.made) {
            top.todo.push(Move {
                proc: mv.proc,
                choices,
                eager: false,
            });
        }
        let safe = judge && succ.safe;
        let foot = succ.foot;
        top.last = mv.clone();
        let proc = mv;
        stats.transitions += 1;
        stats.local_steps_merged += u64::from(succ.merged);
        let mut new = false;
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
            &mut new,
            |f, e| pending_failure = Some((f, hash64(e, 7))),
        );
        let top = if cfg.shortest {
            queue.front_mut()
        } else {
            stack.last_mut()
        };
        if let Some(top) = top {
            if safe && new {
                // A safe step to a state never seen: the whole expansion.
                top.todo.clear();
                stats.states_reduced += 1;
            } else if judge && new && cfg.stubborn && sets.worth_trying() {
                // Not safe alone: a stubborn set of several, if one leaves
                // a process out.
                let found = stubborn_expansion(engine, top, proc.proc, foot, depth);
                sets.tried(found);
                if found {
                    stats.states_stubborn += 1;
                }
            } else if !new && !proc.eager && !top.left_out.is_empty() {
                // A move of the set reached a state already seen: the
                // cycle proviso wants the whole expansion.
                let rest = std::mem::take(&mut top.left_out);
                top.todo.extend(rest);
                stats.states_stubborn -= 1;
            }
        }
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
