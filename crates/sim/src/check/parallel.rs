//! The parallel search: every core of one machine ([`Checker::parallel`])
//! and, split into shards, many machines ([`Parallel::shard`]).
//!
//! The sequential search ([`Checker::run`]) is depth-first, and its
//! partial-order reduction keeps a reduced expansion only when it reaches a
//! state never visited before: which states count as "visited" depends on
//! the order the search went, so two threads racing over a shared visited
//! set would store different states, and could even break the cycle
//! proviso (the classic pitfall: SPIN's multi-core mode restricts its
//! reduction for this reason). This search is built so that its result
//! does not depend on how many threads run it:
//!
//! * **Breadth-first by levels.** Level `d` is every state first reached
//!   in `d` steps. The workers expand the states of level `d` in parallel
//!   (each takes a few at a time from a shared list), inserting the
//!   successors into one shared visited set (the sequential search's
//!   [`Storage`](super::Storage), behind a lock) and into the next level.
//!   When the level is done, the next one is put in a fixed order: by the
//!   first state of level `d`, in that level's order, that reached it, and
//!   the index of the move it was reached by. That order, the parent each
//!   state is reported with, and so every trail, are the same whatever the
//!   number of workers.
//! * **The cycle proviso by levels.** A state's first move may be its whole
//!   expansion (module `por`) only if the state it reaches is not in a
//!   level up to the state's own: it is new, or already in the next level.
//!   The set of states in levels `0..=d` is fixed before level `d` is
//!   expanded, so the decision depends on the state alone, not on which
//!   worker got there first; and along a reduced step the level goes up by
//!   exactly one, so no cycle of the reduced graph is made of reduced
//!   states only (condition C3: every cycle has a fully expanded state).
//!   The states stored, the end states, the failures (and the transitions:
//!   each state's expansion is a function of the state) are therefore the
//!   same for 1, 2 or 64 workers. They may differ from the sequential
//!   depth-first search's with the reduction on (both are sound, and both
//!   reach the same end states and failures of the full search).
//! * **The first failure.** Without [`Checker::keep_going`], the search
//!   finishes the level where a failure was found, then reports the first
//!   one in the level's order: the same one whatever the number of
//!   workers, at the least depth (a shortest trail, as `shortest()`).
//! * **Shards.** [`Parallel::shard`] runs one of `n` shards: each explores
//!   the levels alike until one has at least [`SPLIT_PER_SHARD`] states per
//!   shard, takes every `n`-th state of that level (by its position in the
//!   fixed order, from its own index), and explores what those states
//!   reach. A state of the split level dealt to another shard that this
//!   one reaches again later is explored here too (*reclaimed*), so that
//!   each shard's graph is closed: the union of the shards' graphs is a
//!   reduced graph in which every state is expanded, by a single move
//!   (the same one in every shard: the first move of a state is a function
//!   of the state) or in full, and each shard's levels keep the cycle
//!   proviso, so the union finds every end state and every failure of the
//!   full search. States reached by several shards are explored by each.
//!
//! ```
//! use mkipc_kernel::{Capacity, Message, OnFull, PortName, Wait};
//! use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
//! use mkipc_sim::check::{Checker, Encode, Encoder};
//! use mkipc_sim::machine::{Ctx, Machine, Op, Step};
//! use mkipc_sim::Inherit;
//!
//! /// Sends `left` messages on `out`, then ends.
//! #[derive(Clone, PartialEq, Eq, Hash, Debug)]
//! struct Sender { out: PortName, left: u8 }
//!
//! impl Machine for Sender {
//!     fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
//!         if resumed.is_none() && self.left > 0 {
//!             if let Op::Pending = cx.send(Destination::Name(self.out), Message::from_u64(1, 1), OnFull::Block) {
//!                 return Step::Wait;
//!             }
//!         }
//!         if self.left == 0 {
//!             return Step::Exit(Ok(()));
//!         }
//!         self.left -= 1;
//!         Step::Yield
//!     }
//! }
//! impl Encode for Sender {
//!     fn encode(&self, e: &mut Encoder<'_>) {
//!         e.name(self.out);
//!         e.value(&self.left);
//!     }
//! }
//!
//! let model = |w: &mut mkipc_sim::check::World<Sender>| {
//!     let p = w.port("p", Capacity::Unbounded).unwrap();
//!     for i in 0..3 {
//!         w.spawn_with(&format!("s{i}"), &[Inherit::send(p)], |n| Sender { out: n[0].name, left: 2 }).unwrap();
//!     }
//! };
//! let checker = || Checker::new().check_leaks(false);
//! let one = checker().parallel(1).run(model);
//! let two = checker().parallel(2).run(model);
//! assert!(one.is_verified() && two.is_verified());
//! assert_eq!(one.stats.states_stored, two.stats.states_stored);
//! assert_eq!(one.stats.transitions, two.stats.transitions);
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::encode::{hash64, Encode, FoldBuild};
use super::engine::{Engine, Succ};
use super::search::{after_blocked, next_choices, record_failure, Frame, Move, BLOCK_ALL};
use super::stats::{CheckStats, ShardStats};
use super::store::{Insert, Visited};
use super::trail::Trail;
use super::world::{CheckView, State, World};
use super::{CheckFailure, CheckOutcome, Checker, EndState, EngineOptions};
use crate::machine::Machine;
use crate::report::FailureReason;

/// A shard splits once a level has at least this many states per shard.
pub const SPLIT_PER_SHARD: usize = 8;

/// One shard of a search split `count` ways: `index` in `0..count`
/// (written `index/count`, as `mkipc explore --shard 2/8`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard that is not `i/n` with `i < n`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ShardParseError(pub String);

impl fmt::Display for ShardParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShardParseError {}

impl Shard {
    /// Shard `index` of `count` (`index < count`, `count >= 1`).
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardParseError> {
        if count == 0 || index >= count {
            return Err(ShardParseError(format!(
                "shard {index}/{count}: the index must be below the count (0/{count} to {}/{count})",
                count.saturating_sub(1)
            )));
        }
        Ok(Shard { index, count })
    }
    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }
    /// How many shards.
    pub fn count(&self) -> u32 {
        self.count
    }
    /// Whether the item at `position` (a seed's offset, a state's place in
    /// its level) belongs to this shard: every `count`-th from `index`.
    pub fn owns(&self, position: u64) -> bool {
        position % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardParseError;
    fn from_str(s: &str) -> Result<Shard, ShardParseError> {
        let bad = || {
            ShardParseError(format!(
                "not a shard: {s:?} (expected INDEX/COUNT, e.g. 0/4)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: u32 = i.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }
}

/// The parallel search's options (module docs): a [`Checker`]'s, the
/// number of workers and the shard. Built by [`Checker::parallel`].
#[derive(Debug)]
pub struct Parallel {
    checker: Checker,
    jobs: usize,
    shard: Option<Shard>,
}

impl Checker {
    /// The parallel search (module [`parallel`](super::parallel)) with
    /// these options and `jobs` worker threads (0: one per core). Its
    /// states, end states and failures do not depend on `jobs`. It is
    /// breadth-first, so [`Checker::shortest`] makes no difference.
    pub fn parallel(self, jobs: usize) -> Parallel {
        Parallel {
            checker: self,
            jobs,
            shard: None,
        }
    }
}

impl Parallel {
    /// Runs only `shard` of the search (module docs).
    pub fn shard(mut self, shard: Shard) -> Parallel {
        self.shard = Some(shard);
        self
    }

    /// The options of the search (for [`Checker::replay`]).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The number of worker threads it starts (the machine's cores for 0).
    pub fn workers(&self) -> usize {
        match self.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .clamp(1, 1024)
    }

    /// Checks the model `setup` builds. Every worker builds its own copy
    /// with `setup`, which must build the same model each time (the search
    /// stops, saying so, if one differs).
    pub fn run<M>(&self, setup: impl Fn(&mut World<M>) + Sync) -> CheckOutcome
    where
        M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
    {
        self.run_with_ends(setup, |_| {})
    }

    /// [`Parallel::run`], showing every end state reached (valid or
    /// failing, each once, from whichever worker reached it) to `on_end`.
    pub fn run_with_ends<M>(
        &self,
        setup: impl Fn(&mut World<M>) + Sync,
        mut on_end: impl FnMut(&EndState<'_, M>) + Send,
    ) -> CheckOutcome
    where
        M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
    {
        let mut out = search(self, &setup, &mut on_end);
        if out
            .failures
            .iter()
            .any(|f| matches!(f.reason, FailureReason::Deadlock(_)))
        {
            let mut engine = new_engine(&self.checker.engine_options(), &setup, 0);
            super::explain::explain_deadlocks(&mut engine, &mut out.failures);
        }
        out
    }
}

/// How a state of the next level was first reached, in the fixed order.
struct Meta {
    /// (position of the parent in its level, index of the move there).
    key: (u32, u32),
    /// The parent's node (for trails).
    parent: u32,
    /// The move from the parent.
    mv: Move,
    /// Where its [`Kind`] is: (worker, index in its list for the level).
    owner: (u32, u32),
}

/// What a state new in the next level is. (`Expand` is the large one and
/// the common one: boxing it would cost an allocation per state.)
#[allow(clippy::large_enum_variant)]
enum Kind<M> {
    /// To expand: the state, its enabled processes, its encoding's size.
    Expand(State<M>, Vec<u32>, usize),
    /// A failure there, and the state's key.
    Fail(FailureReason, u64),
    /// An end state without failure, or a state at the depth limit.
    Leaf,
}

/// The next level's states: their encodings one after another in one
/// arena (no allocation per state), found by hash.
#[derive(Default)]
struct NextLevel {
    /// Encodings, one after another.
    arena: Vec<u8>,
    /// Per state: where its encoding is in the arena, how it was reached,
    /// and the next state with the same hash (`u32::MAX`: none).
    entries: Vec<(usize, usize, Meta, u32)>,
    /// The first state of each hash.
    heads: HashMap<u64, u32, FoldBuild>,
}

impl NextLevel {
    fn find(&self, hash: u64, enc: &[u8]) -> Option<usize> {
        let mut at = *self.heads.get(&hash)?;
        while let Some((start, len, _, next)) = self.entries.get(at as usize) {
            if self.arena.get(*start..start + len) == Some(enc) {
                return Some(at as usize);
            }
            at = *next;
        }
        None
    }
    fn insert(&mut self, hash: u64, enc: &[u8], meta: Meta) {
        let at = self.entries.len() as u32;
        let next = self.heads.insert(hash, at).unwrap_or(u32::MAX);
        self.entries.push((self.arena.len(), enc.len(), meta, next));
        self.arena.extend_from_slice(enc);
    }
    fn bytes(&self) -> usize {
        self.arena.len()
    }
}

/// The shared visited set and the next level's index.
struct Store {
    visited: Visited,
    /// The next level's states.
    next: NextLevel,
    /// The split level's states dealt to other shards (their encodings):
    /// reached again, they are explored here too.
    foreign: HashSet<Box<[u8]>, FoldBuild>,
}

/// What a worker found in one level.
struct Local<M> {
    kinds: Vec<Option<Kind<M>>>,
    stats: CheckStats,
}

impl<M> Default for Local<M> {
    fn default() -> Self {
        Local {
            kinds: Vec::new(),
            stats: CheckStats::default(),
        }
    }
}

/// Level hand-over between the coordinator and the helpers.
#[derive(Default)]
struct Ctl {
    /// Bumped for each level.
    generation: u64,
    /// Helpers still working on the current level.
    running: usize,
    /// No more levels.
    done: bool,
    /// Helpers that panicked (they take no more levels).
    dead: usize,
}

/// The search's end-state callback, shared by the workers.
type OnEnd<'a, M> = Mutex<&'a mut (dyn FnMut(&EndState<'_, M>) + Send)>;

/// What every worker shares.
struct Shared<'a, M> {
    store: Mutex<Store>,
    /// The current level's states still to expand, with their positions.
    work: Mutex<Vec<(u32, Frame<M>)>>,
    /// How many states a worker takes at a time.
    chunk: AtomicUsize,
    /// Per worker, what it found in the level just done.
    locals: Vec<Mutex<Local<M>>>,
    stop: AtomicBool,
    stopped: Mutex<Option<String>>,
    /// Bytes of the states waiting (the current level's and the next's).
    frontier: AtomicUsize,
    ctl: Mutex<Ctl>,
    cv: Condvar,
    on_end: OnEnd<'a, M>,
    /// The initial state's encoding (every worker's model must match it).
    init: Mutex<Option<Vec<u8>>>,
    reduce: bool,
    max_depth: usize,
    limit: usize,
}

impl<M> Shared<'_, M> {
    fn halt(&self, why: String) {
        let mut s = self.stopped.lock();
        if s.is_none() {
            *s = Some(why);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Ends the level hand-over even if its holder panics, so no thread waits
/// forever: a helper counts itself done, the coordinator ends the search.
struct Release<'s, 'a, M> {
    shared: &'s Shared<'a, M>,
    helper: bool,
    /// A helper inside a level (counted in [`Ctl::running`]).
    in_level: std::cell::Cell<bool>,
}

impl<M> Drop for Release<'_, '_, M> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut c = self.shared.ctl.lock();
        if self.helper {
            c.dead += 1;
            if self.in_level.get() {
                c.running = c.running.saturating_sub(1);
            }
        } else {
            c.done = true;
        }
        self.shared.cv.notify_all();
    }
}

fn search<M>(
    par: &Parallel,
    setup: &(dyn Fn(&mut World<M>) + Sync),
    on_end: &mut (dyn FnMut(&EndState<'_, M>) + Send),
) -> CheckOutcome
where
    M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
{
    let cfg = &par.checker;
    let start = Instant::now();
    let limit = cfg.memory_limit();
    let workers = par.workers();
    let mut stats = CheckStats {
        storage: cfg.storage.name(),
        depth_limit: cfg.max_depth,
        memory_limit: limit,
        workers,
        shard: par.shard.map(|s| ShardStats {
            index: s.index,
            count: s.count,
            ..ShardStats::default()
        }),
        ..CheckStats::default()
    };
    let Some(visited) = Visited::new(cfg.storage, limit) else {
        stats.stopped = Some("visited set reached --max-memory (the bit array alone)".into());
        return CheckOutcome {
            stats,
            failures: Vec::new(),
        };
    };
    let opts = cfg.engine_options();
    let mut engine = new_engine(&opts, setup, 0);
    let reduce = cfg.reduction && engine.world.invariants.is_empty();
    engine.lazy_blocking = reduce;
    stats.reduction = reduce;
    let shared = Shared {
        store: Mutex::new(Store {
            visited,
            next: NextLevel::default(),
            foreign: HashSet::default(),
        }),
        work: Mutex::new(Vec::new()),
        chunk: AtomicUsize::new(1),
        locals: (0..workers).map(|_| Mutex::new(Local::default())).collect(),
        stop: AtomicBool::new(false),
        stopped: Mutex::new(None),
        frontier: AtomicUsize::new(0),
        ctl: Mutex::new(Ctl::default()),
        cv: Condvar::new(),
        on_end: Mutex::new(on_end),
        init: Mutex::new(None),
        reduce,
        max_depth: cfg.max_depth,
        limit,
    };
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        let sh = &shared;
        let opts = &opts;
        let helpers = (1..workers)
            .map_while(|w| {
                std::thread::Builder::new()
                    .name(format!("mkipc-check-{w}"))
                    .spawn_scoped(s, move || helper(w, sh, opts, setup))
                    .ok()
            })
            .count();
        failures = coordinate(cfg, sh, &mut engine, helpers, &mut stats, start);
    });
    stats.elapsed = start.elapsed();
    let store = shared.store.into_inner();
    stats.memory = store.visited.memory();
    stats.omission = store.visited.omission(stats.states_stored);
    stats.hash_factor = store.visited.hash_factor(stats.states_stored);
    let stopped = shared.stopped.into_inner();
    stats.complete = stopped.is_none() && stats.depth_cuts == 0;
    stats.stopped = stopped;
    CheckOutcome { stats, failures }
}

/// A worker's engine over its own copy of the model, with its own range
/// of state ids (the engine skips restoring a state it holds, by id).
fn new_engine<M>(
    opts: &EngineOptions,
    setup: &(dyn Fn(&mut World<M>) + Sync),
    worker: usize,
) -> Engine<M> {
    let mut engine = opts.build(|w| setup(w));
    engine.last_id = (worker as u64 + 1) << 40;
    engine
}

/// The initial state's encoding, straight after set-up.
fn initial_encoding<M: Machine + Clone + Encode>(engine: &mut Engine<M>) -> (Succ<M>, Vec<u8>) {
    let mut init = engine.initial();
    let mut enc = Vec::new();
    engine.encode(&mut init.slots, init.now, &mut enc);
    (init, enc)
}

/// A helper thread: builds its model, then expands its share of each
/// level until told there are no more.
fn helper<M>(
    w: usize,
    sh: &Shared<'_, M>,
    opts: &EngineOptions,
    setup: &(dyn Fn(&mut World<M>) + Sync),
) where
    M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
{
    let release = Release {
        shared: sh,
        helper: true,
        in_level: std::cell::Cell::new(false),
    };
    let mut engine = new_engine(opts, setup, w);
    engine.lazy_blocking = sh.reduce;
    let (_, mine) = initial_encoding(&mut engine);
    let mut checked = false;
    let mut generation = 0;
    let mut enc = Vec::new();
    loop {
        {
            let mut c = sh.ctl.lock();
            while c.generation == generation && !c.done {
                sh.cv.wait(&mut c);
            }
            if c.done {
                return;
            }
            generation = c.generation;
            release.in_level.set(true);
        }
        if !checked {
            checked = true;
            if sh.init.lock().as_deref() != Some(mine.as_slice()) {
                sh.halt(format!(
                    "the model's set-up is not deterministic: worker {w} built another initial \
                     state (the parallel search builds the model once per worker)"
                ));
            }
        }
        let local = expand_level(w as u32, &mut engine, sh, &mut enc);
        *sh.locals[w].lock() = local;
        let mut c = sh.ctl.lock();
        release.in_level.set(false);
        c.running = c.running.saturating_sub(1);
        if c.running == 0 {
            sh.cv.notify_all();
        }
    }
}

/// Expands states of the current level until none is left (or the search
/// stops); returns what this worker found.
fn expand_level<M>(
    w: u32,
    engine: &mut Engine<M>,
    sh: &Shared<'_, M>,
    enc: &mut Vec<u8>,
) -> Local<M>
where
    M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
{
    let mut local = Local::default();
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let batch = {
            let mut q = sh.work.lock();
            let n = sh.chunk.load(Ordering::Relaxed).min(q.len());
            let at = q.len() - n;
            q.split_off(at)
        };
        if batch.is_empty() {
            break;
        }
        for (pos, frame) in batch {
            let size = frame.size;
            expand(w, engine, sh, &mut local, pos, frame, enc);
            sh.frontier.fetch_sub(size, Ordering::Relaxed);
        }
    }
    local
}

/// Where a state just reached is.
enum Reach {
    /// New: in the next level from now on.
    New,
    /// Already in the next level.
    Next,
    /// In a level up to the current one.
    Old,
    /// The search stops.
    Stop,
}

/// Expands one state: every move, as the sequential search does, with
/// the cycle proviso by levels (module docs).
fn expand<M>(
    w: u32,
    engine: &mut Engine<M>,
    sh: &Shared<'_, M>,
    local: &mut Local<M>,
    pos: u32,
    mut frame: Frame<M>,
    enc: &mut Vec<u8>,
) where
    M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
{
    let depth = frame.depth + 1;
    let mut index = 0u32;
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            return;
        }
        let mv = match frame.todo.pop() {
            Some(mv) => mv,
            None => match after_blocked(&mut frame) {
                Some(mv) => mv,
                None => return,
            },
        };
        let judge = sh.reduce && !mv.eager && frame.fresh && !frame.todo.is_empty();
        if !mv.eager {
            frame.fresh = false;
        }
        if judge {
            local.stats.states_probed += 1;
        }
        let succ = if mv.proc == BLOCK_ALL {
            engine.block_all(&frame.state, &mv.choices, depth)
        } else if mv.eager {
            engine.step_eager(&frame.state, mv.proc as usize, depth)
        } else {
            engine.step(
                &frame.state,
                mv.proc as usize,
                &mv.choices,
                depth,
                false,
                judge,
            )
        };
        if succ.blocked {
            if let Some((send, key)) = succ.waits {
                frame.blocked.push((mv.proc, send, key));
            }
            if judge {
                local.stats.states_probed -= 1;
                frame.fresh = true;
            }
            continue;
        }
        frame.produced = true;
        if let Some(wt) = succ.waits {
            frame.registered.push(wt);
        }
        if let Some(choices) = next_choices(&succ.made) {
            frame.todo.push(Move {
                proc: mv.proc,
                choices,
                eager: false,
            });
        }
        let safe = judge && succ.safe;
        local.stats.transitions += 1;
        let key = (pos, index);
        index += 1;
        match reach(w, engine, sh, local, succ, depth, key, frame.node, mv, enc) {
            Reach::Stop => return,
            Reach::New | Reach::Next if safe => {
                // A safe step to a state not in a level up to this one:
                // the whole expansion.
                frame.todo.clear();
                local.stats.states_reduced += 1;
            }
            _ => {}
        }
    }
}

/// Handles a state just reached from the state at `key.0` (node
/// `parent`) by `mv`: looks it up, and if it is new, judges it and keeps
/// what it is for the level's end.
#[allow(clippy::too_many_arguments)]
fn reach<M>(
    w: u32,
    engine: &mut Engine<M>,
    sh: &Shared<'_, M>,
    local: &mut Local<M>,
    succ: Succ<M>,
    depth: usize,
    key: (u32, u32),
    parent: u32,
    mv: Move,
    enc: &mut Vec<u8>,
) -> Reach
where
    M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
{
    if let Some(why) = succ.unsupported {
        sh.halt(why);
        return Reach::Stop;
    }
    let mut succ = engine.settle_failing(succ, depth);
    engine.encode(&mut succ.slots, succ.now, enc);
    let procs = succ.slots.len();
    let owner = (w, local.kinds.len() as u32);
    let meta = |mv| Meta {
        key,
        parent,
        mv,
        owner,
    };
    let hash = hash64(enc, 11);
    // `Some(reclaimed)`: new in the next level.
    let found: Result<Option<bool>, Reach> = {
        let mut st = sh.store.lock();
        let frontier = sh.frontier.load(Ordering::Relaxed);
        let room = sh
            .limit
            .saturating_sub(frontier + st.next.bytes() + enc.len());
        match st
            .visited
            .insert(enc, &engine.cuts, &mut engine.known, procs, room)
        {
            Insert::Full => Err(Reach::Stop),
            Insert::New => {
                st.next.insert(hash, enc, meta(mv));
                Ok(Some(false))
            }
            Insert::Seen => {
                if let Some(at) = st.next.find(hash, enc) {
                    let m = &mut st.next.entries[at].2;
                    if key < m.key {
                        m.key = key;
                        m.parent = parent;
                        m.mv = mv;
                    }
                    Err(Reach::Next)
                } else if !st.foreign.is_empty() && st.foreign.remove(enc.as_slice()) {
                    st.next.insert(hash, enc, meta(mv));
                    Ok(Some(true))
                } else {
                    Err(Reach::Old)
                }
            }
        }
    };
    engine.remember_parts(&succ.slots);
    let reclaimed = match found {
        Err(Reach::Stop) => {
            sh.halt("visited set reached --max-memory".into());
            return Reach::Stop;
        }
        Err(r) => {
            local.stats.states_matched += 1;
            return r;
        }
        Ok(Some(reclaimed)) => reclaimed,
        Ok(None) => return Reach::Old,
    };
    let stats = &mut local.stats;
    if reclaimed {
        // Stored at the split level already (as another shard's).
        stats.states_matched += 1;
        if let Some(s) = &mut stats.shard {
            s.reclaimed += 1;
        } else {
            stats.shard = Some(ShardStats {
                reclaimed: 1,
                ..ShardStats::default()
            });
        }
    } else {
        stats.states_stored += 1;
    }
    stats.max_depth = stats.max_depth.max(depth);
    let failure = match succ.fail.take() {
        Some(f) => Some(f),
        None if succ.enabled.is_empty() => {
            stats.end_states += 1;
            engine.judge_end(&succ.slots)
        }
        None => None,
    };
    let kind = if failure.is_some() || succ.enabled.is_empty() {
        if failure.is_some() && !succ.enabled.is_empty() {
            stats.end_states += 1;
        }
        (sh.on_end.lock())(&EndState {
            view: CheckView {
                kernel: &engine.world.kernel,
                slots: &succ.slots,
                now: succ.now,
            },
            failure: failure.as_ref(),
            terminal: succ.enabled.is_empty(),
        });
        match failure {
            Some(f) => Kind::Fail(f, hash64(enc, 7)),
            None => Kind::Leaf,
        }
    } else if depth >= sh.max_depth {
        stats.depth_cuts += 1;
        Kind::Leaf
    } else {
        stats.states_expanded += 1;
        let size = enc.len();
        sh.frontier.fetch_add(size, Ordering::Relaxed);
        // The order the moves are tried in, as the sequential search.
        let mut enabled = succ.enabled;
        if engine.lazy_blocking {
            super::por::probe_first(&mut enabled, &succ.slots);
        }
        Kind::Expand(engine.freeze(succ.slots, succ.now), enabled, size)
    };
    local.kinds.push(Some(kind));
    Reach::New
}

/// Adds a worker's counts of one level to the totals.
fn add_counts(total: &mut CheckStats, part: &CheckStats) {
    total.states_stored += part.states_stored;
    total.states_matched += part.states_matched;
    total.transitions += part.transitions;
    total.states_expanded += part.states_expanded;
    total.states_probed += part.states_probed;
    total.states_reduced += part.states_reduced;
    total.max_depth = total.max_depth.max(part.max_depth);
    total.depth_cuts += part.depth_cuts;
    total.end_states += part.end_states;
    if let (Some(t), Some(p)) = (&mut total.shard, &part.shard) {
        t.reclaimed += p.reclaimed;
    }
}

/// The trail to `node`: the moves from the initial state's node.
fn trail_to(nodes: &[(u32, Move)], node: u32) -> Trail {
    let mut path = Vec::new();
    let mut n = node;
    while let Some((parent, mv)) = nodes.get(n as usize) {
        if *parent == u32::MAX {
            break;
        }
        path.push(mv);
        n = *parent;
    }
    let mut t = Trail::default();
    for mv in path.into_iter().rev() {
        mv.push_to(&mut t);
    }
    t
}

/// The coordinator (the calling thread, worker 0): reaches the initial
/// state, then runs the levels, putting each next one in order between
/// them; returns the failures.
fn coordinate<M>(
    cfg: &Checker,
    sh: &Shared<'_, M>,
    engine: &mut Engine<M>,
    helpers: usize,
    stats: &mut CheckStats,
    start: Instant,
) -> Vec<CheckFailure>
where
    M: Machine + Clone + Eq + Hash + Encode + Send + Sync,
{
    let _release = Release {
        shared: sh,
        helper: false,
        in_level: std::cell::Cell::new(false),
    };
    let shard = stats.shard.as_ref().map(|s| (s.index, s.count));
    let mut failures = Vec::new();
    let mut seen_failures: HashSet<u64> = HashSet::new();
    let mut nodes: Vec<(u32, Move)> = Vec::new();
    let mut enc = Vec::new();
    let mut stop_first = false;
    let mut split = false;
    let mut last_progress = Instant::now();
    let (init, init_enc) = initial_encoding(engine);
    *sh.init.lock() = Some(init_enc);
    // The initial state, as a level of its own reached by nobody.
    let mut first = Local::default();
    reach(
        0,
        engine,
        sh,
        &mut first,
        init,
        0,
        (0, 0),
        u32::MAX,
        Move::default(),
        &mut enc,
    );
    *sh.locals[0].lock() = first;
    let mut level = 0usize;
    loop {
        // The level just found, in order.
        let mut locals: Vec<Local<M>> = sh
            .locals
            .iter()
            .map(|l| std::mem::take(&mut *l.lock()))
            .collect();
        for l in &locals {
            add_counts(stats, &l.stats);
        }
        let mut next = std::mem::take(&mut sh.store.lock().next);
        next.heads.clear();
        let arena = std::mem::take(&mut next.arena);
        let mut found = std::mem::take(&mut next.entries);
        found.sort_unstable_by_key(|(_, _, m, _)| m.key);
        // The encodings are kept only for the split (the states dealt to
        // other shards); the positions are into `arena`.
        let mut frames: Vec<((usize, usize), Frame<M>)> = Vec::new();
        for (start, len, meta, _) in found {
            let enc = (start, len);
            let kind = locals
                .get_mut(meta.owner.0 as usize)
                .and_then(|l| l.kinds.get_mut(meta.owner.1 as usize))
                .and_then(Option::take);
            match kind {
                Some(Kind::Expand(state, enabled, size)) => {
                    nodes.push((meta.parent, meta.mv));
                    let node = (nodes.len() - 1) as u32;
                    frames.push((enc, frame(state, enabled, size, node, level)));
                }
                Some(Kind::Fail(reason, key)) => {
                    nodes.push((meta.parent, meta.mv));
                    let node = (nodes.len() - 1) as u32;
                    if record_failure(
                        cfg,
                        &mut failures,
                        &mut seen_failures,
                        stats,
                        reason,
                        key,
                        || trail_to(&nodes, node),
                    ) {
                        stop_first = true;
                    }
                }
                Some(Kind::Leaf) | None => {}
            }
        }
        drop(locals);
        if let (Some((index, count)), false) = (shard, split) {
            if frames.len() >= SPLIT_PER_SHARD * count as usize {
                split = true;
                let s = stats.shard.get_or_insert_with(ShardStats::default);
                s.split_depth = Some(level);
                s.prefix_states = stats.states_stored;
                s.prefix_matched = stats.states_matched;
                s.prefix_transitions = stats.transitions;
                s.prefix_end_states = stats.end_states;
                let all = std::mem::take(&mut frames);
                let mut st = sh.store.lock();
                for (pos, ((start, len), f)) in all.into_iter().enumerate() {
                    if pos as u64 % u64::from(count) == u64::from(index) {
                        frames.push(((start, len), f));
                    } else {
                        sh.frontier.fetch_sub(f.size, Ordering::Relaxed);
                        stats.states_expanded -= 1;
                        st.foreign.insert(arena[start..start + len].into());
                    }
                }
                s.roots = frames.len() as u64;
            }
        }
        if let Some((every, f)) = &cfg.progress {
            if last_progress.elapsed() >= *every {
                last_progress = Instant::now();
                let mut s = stats.clone();
                s.elapsed = start.elapsed();
                s.memory = sh.store.lock().visited.memory();
                s.frontier_memory = sh.frontier.load(Ordering::Relaxed);
                (f.borrow_mut())(&s);
            }
        }
        if stop_first {
            sh.halt("stopped at the first failure".into());
        }
        if frames.is_empty() || sh.stop.load(Ordering::SeqCst) {
            break;
        }
        // Hand out the level: positions in order, taken from the end.
        let n = frames.len();
        stats.frontier_memory = stats
            .frontier_memory
            .max(sh.frontier.load(Ordering::Relaxed));
        {
            let mut q = sh.work.lock();
            q.clear();
            q.extend(
                frames
                    .into_iter()
                    .enumerate()
                    .map(|(pos, (_, f))| (pos as u32, f))
                    .rev(),
            );
        }
        sh.chunk
            .store((n / ((helpers + 1) * 16)).clamp(1, 64), Ordering::Relaxed);
        {
            let mut c = sh.ctl.lock();
            c.generation += 1;
            c.running = helpers.saturating_sub(c.dead);
            sh.cv.notify_all();
        }
        let mine = expand_level(0, engine, sh, &mut enc);
        *sh.locals[0].lock() = mine;
        {
            let mut c = sh.ctl.lock();
            while c.running > 0 {
                sh.cv.wait(&mut c);
            }
        }
        level += 1;
    }
    let mut c = sh.ctl.lock();
    c.done = true;
    sh.cv.notify_all();
    drop(c);
    sh.work.lock().clear();
    failures
}

/// A frame for a state of the next level.
fn frame<M>(state: State<M>, enabled: Vec<u32>, size: usize, node: u32, depth: usize) -> Frame<M> {
    Frame {
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
    }
}
