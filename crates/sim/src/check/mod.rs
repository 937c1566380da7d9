//! The stateful model checker: every reachable state of a model of
//! [`Machine`]s, each explored once.
//!
//! [`Explorer::exhaustive`](crate::Explorer::exhaustive) re-runs closure
//! processes from the start for every schedule, because a coroutine cannot be
//! copied. A [`Machine`] keeps its whole state in a value, so the checker can
//! do what SPIN does: take a *state* — the kernel's snapshot, each process's
//! machine and status, the clock — step one process from it, and store the
//! state reached by its canonical encoding; a state reached again by another
//! interleaving is not explored again. A loop that returns to where it was
//! (a server's `forever`, a producer's next round) closes, so a model with a
//! finite state space is checked completely, however long its runs.
//!
//! * **Transitions.** From a state, each *enabled* process (runnable, its
//!   wait completed, or its deadline passed) is stepped once on a copy:
//!   [`Machine::step`] runs with a [`Ctx`](crate::machine::Ctx) on the
//!   kernel's non-blocking core; an operation that would block leaves a wait
//!   in the kernel and the process waits on it.
//! * **Choices.** A step that calls [`Ctx::choose`](crate::machine::Ctx::choose)
//!   is a transition per alternative (per vector of alternatives, for
//!   several choices in one step); trails record them (`2/1`).
//! * **Partial-order reduction** ([`Checker::reduction`], on by default):
//!   a state whose first move tried is safe (a local step, a plain send by
//!   a mailbox's sole sender, a plain receive by its sole receiver, as
//!   machines declare with [`Machine::may_use_mailbox`]) and reaches a new
//!   state is expanded by that move alone, and a step that would only
//!   block on a buffered mailbox is not a transition until it can go on.
//!   A local step is merged with the local steps its process takes next
//!   into one transition, the states in between not stored
//!   ([`Checker::statement_merging`]).
//!   Every end state and every failure of the full search is still found.
//!   Moves are tried highest process index first, as SPIN does.
//! * **Time** is the simulator's: it moves only when nobody can step, to the
//!   earliest timer (a pause's end, a timed wait's deadline); states store
//!   timers relative to now, so `work 1ms` in a loop does not make every
//!   state new. Random pauses ([`Dist`](crate::Dist) other than `Fixed`) are
//!   refused ("unsupported by the stateful checker").
//! * **Verdicts** are the simulator's ([`FailureReason`]): a deadlock (nobody
//!   can step, no timer, someone alive who is not a server waiting at a
//!   receive) with its wait-for cycle; a process that ended with an error it
//!   was not declared to expect; a panic in a step; an invariant failing in
//!   some state; a leak at a valid end. Each failure carries its [`Trail`],
//!   which [`Checker::replay`] turns back into the steps that led there.
//! * **Counters.** The kernel's sequence numbers and queue statistics only
//!   count up; states do not differ by them unless [`Checker::counters`] is
//!   on, so loops close. A model that reads them (`port_status`,
//!   `queue_stats`, trailers' `seqno`) must turn it on.
//! * **Storage** ([`Storage`]): exact, hash compaction or bitstate, with the
//!   probability of a missed state reported ([`CheckStats`]); the visited
//!   set's memory is bounded ([`Checker::max_memory`]).
//!
//! ```
//! use mkipc_kernel::{Capacity, Message, OnFull, PortName, Wait};
//! use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
//! use mkipc_sim::check::{Checker, Encode, Encoder};
//! use mkipc_sim::machine::{Ctx, Machine, Op, Step};
//! use mkipc_sim::{FailureReason, Inherit};
//!
//! /// Sends on `out`, then receives on `inbox`: two of them on rendezvous
//! /// ports deadlock.
//! #[derive(Clone, PartialEq, Eq, Hash, Debug)]
//! struct Polite { inbox: PortName, out: PortName, sent: bool }
//!
//! impl Machine for Polite {
//!     fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
//!         if self.sent {
//!             return Step::Exit(Ok(())); // the receive completed
//!         }
//!         if resumed.is_none() {
//!             let msg = Message::from_u64(1, 1);
//!             if let Op::Pending = cx.send(Destination::Name(self.out), msg, OnFull::Block) {
//!                 return Step::Wait;
//!             }
//!         }
//!         self.sent = true; // the send completed, now or as `resumed`
//!         match cx.receive(Source::Name(self.inbox), Wait::Forever) {
//!             Op::Pending => Step::Wait,
//!             Op::Done(_) => Step::Exit(Ok(())),
//!         }
//!     }
//! }
//!
//! impl Encode for Polite {
//!     fn encode(&self, e: &mut Encoder<'_>) {
//!         e.name(self.inbox);
//!         e.name(self.out);
//!         e.value(&self.sent);
//!     }
//! }
//!
//! let outcome = Checker::new().run(|w| {
//!     let p = w.port("p", Capacity::Zero).unwrap();
//!     let q = w.port("q", Capacity::Zero).unwrap();
//!     w.spawn_with("a", &[Inherit::receive(p), Inherit::send(q)], |n| Polite { inbox: n[0].name, out: n[1].name, sent: false }).unwrap();
//!     w.spawn_with("b", &[Inherit::receive(q), Inherit::send(p)], |n| Polite { inbox: n[0].name, out: n[1].name, sent: false }).unwrap();
//! });
//! let failure = outcome.failure().expect("the deadlock");
//! assert!(matches!(failure.reason, FailureReason::Deadlock(_)));
//! println!("{failure}\n{}", outcome.stats);
//! ```
//!
//! DESIGN.md ("The stateful checker") explains the state, its encoding and
//! why the search is sound.

mod ctx;
pub mod encode;
mod engine;
mod explain;
pub mod parallel;
mod por;
mod search;
mod snap;
mod stats;
mod store;
pub mod trail;
mod world;

use std::cell::RefCell;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use mkipc_kernel::runtime::CanonicalOptions;
use mkipc_kernel::KernelConfig;

pub use self::ctx::{CheckCtx, CheckIpc};
pub use self::encode::{Encode, Encoder};
pub use self::parallel::{Parallel, Shard, ShardParseError};
pub use self::stats::{CheckStats, ShardStats};
pub use self::store::Storage;
pub use self::trail::{Replay, ReplayError, ReplayStep, Trail, TrailParseError};
pub use self::world::{CheckView, ProcStatus, World};

use self::engine::Engine;
use crate::machine::Machine;
use crate::report::FailureReason;
use crate::ProcId;

/// The default depth limit (steps from the initial state).
pub const DEFAULT_MAX_DEPTH: usize = 10_000_000;

/// A progress callback and how often it is called.
type Progress = (Duration, RefCell<Box<dyn FnMut(&CheckStats)>>);

/// The stateful model checker's options (see the [module docs](crate::check)). Builder style:
/// `Checker::new().storage(Storage::HashCompact).keep_going().run(setup)`.
pub struct Checker {
    storage: Storage,
    max_depth: usize,
    max_memory: Option<usize>,
    keep_going: bool,
    max_failures: usize,
    shortest: bool,
    check_leaks: bool,
    counters: bool,
    reduction: bool,
    stubborn: bool,
    merging: bool,
    kernel_config: KernelConfig,
    progress: Option<Progress>,
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("storage", &self.storage)
            .field("max_depth", &self.max_depth)
            .field("max_memory", &self.max_memory)
            .field("keep_going", &self.keep_going)
            .field("shortest", &self.shortest)
            .field("check_leaks", &self.check_leaks)
            .field("reduction", &self.reduction)
            .field("stubborn", &self.stubborn)
            .field("merging", &self.merging)
            .finish_non_exhaustive()
    }
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

/// A failure the search found.
#[derive(Clone, Debug)]
pub struct CheckFailure {
    /// Why (the simulator's reasons).
    pub reason: FailureReason,
    /// The processes stepped from the initial state to the failing state.
    pub trail: Trail,
    /// The failure's key: a hash of the failing state's canonical encoding
    /// and of the reason. The same failure in the same state has the same
    /// key in every search of the model, on any machine, whatever the
    /// trail: merging the reports of shards counts it once by it.
    pub key: u64,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.reason)?;
        write!(
            f,
            "  after {} step(s); replay: trail={} (Checker::replay)",
            self.trail.len(),
            self.trail
        )
    }
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct CheckOutcome {
    /// Its statistics (whether it was complete among them).
    pub stats: CheckStats,
    /// The failures, in the order found: the first only, unless
    /// [`Checker::keep_going`].
    pub failures: Vec<CheckFailure>,
}

impl CheckOutcome {
    /// The first failure.
    pub fn failure(&self) -> Option<&CheckFailure> {
        self.failures.first()
    }
    /// No failure and the whole space explored.
    pub fn is_verified(&self) -> bool {
        self.failures.is_empty() && self.stats.complete
    }
    /// Panics with the first failure, or if the search was incomplete.
    pub fn assert_verified(&self) {
        if let Some(f) = self.failure() {
            panic!("model check failed:\n{f}\n{}", self.stats);
        }
        assert!(
            self.stats.complete,
            "model check incomplete:\n{}",
            self.stats
        );
    }
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fail in &self.failures {
            writeln!(f, "{fail}")?;
        }
        if self.failures.is_empty() {
            writeln!(f, "no failure")?;
        }
        write!(f, "{}", self.stats)
    }
}

/// An end state (nobody can step; or a failing state), shown to the
/// callback of [`Checker::run_with_ends`].
pub struct EndState<'a, M> {
    /// The processes (their machines and statuses).
    pub view: CheckView<'a, M>,
    /// The failure there, if any.
    pub failure: Option<&'a FailureReason>,
    /// Nobody can step here (else a failure stopped the search at a state
    /// where some process could still step). The partial-order reduction
    /// reaches every end state of the full search, and every failure, but
    /// not every state at which a failure can happen: the processes that
    /// did not fail may be further along.
    pub terminal: bool,
}

/// Half of `MemAvailable` in /proc/meminfo (1 GiB if unreadable).
pub fn default_max_memory() -> usize {
    let avail = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<usize>().ok())
    });
    match avail {
        Some(kb) => kb.saturating_mul(1024) / 2,
        None => 1 << 30,
    }
}

impl Checker {
    /// Exact storage, stop at the first failure, depth-first, leak checks on.
    pub fn new() -> Checker {
        Checker {
            storage: Storage::Exact,
            max_depth: DEFAULT_MAX_DEPTH,
            max_memory: None,
            keep_going: false,
            max_failures: 1000,
            shortest: false,
            check_leaks: true,
            counters: false,
            reduction: true,
            stubborn: true,
            merging: true,
            kernel_config: KernelConfig::default(),
            progress: None,
        }
    }
    /// How visited states are stored.
    pub fn storage(mut self, storage: Storage) -> Checker {
        self.storage = storage;
        self
    }
    /// The deepest state explored (steps from the initial state); a search
    /// that reaches it is not complete.
    pub fn max_depth(mut self, depth: usize) -> Checker {
        self.max_depth = depth;
        self
    }
    /// The memory the visited set (and the states waiting to be explored)
    /// may take; reaching it ends the search, incomplete. Default: half of
    /// the machine's available memory.
    pub fn max_memory(mut self, bytes: usize) -> Checker {
        self.max_memory = Some(bytes);
        self
    }
    /// Goes on after a failure and reports every distinct one (by reason
    /// and end state), each with its trail (at most `max_failures` kept,
    /// all counted).
    pub fn keep_going(mut self) -> Checker {
        self.keep_going = true;
        self
    }
    /// The most failures kept under [`Checker::keep_going`] (default 1000).
    pub fn max_failures(mut self, n: usize) -> Checker {
        self.max_failures = n.max(1);
        self
    }
    /// Breadth-first search: every reported trail is a shortest one (as
    /// SPIN's `-i`), at the cost of keeping the whole frontier.
    pub fn shortest(mut self) -> Checker {
        self.shortest = true;
        self
    }
    /// Whether a valid end that leaves anything in the kernel fails
    /// (default on, as [`Explorer`](crate::Explorer)).
    pub fn check_leaks(mut self, on: bool) -> Checker {
        self.check_leaks = on;
        self
    }
    /// Whether states differ by the kernel's counters: each queue's next
    /// sequence number (message trailers' `seqno`) and its statistics
    /// (messages accepted and dropped, longest length, as `port_status`
    /// and `queue_stats` report them). Off by default, so that a loop
    /// that returns to where it was closes; that is sound for every model
    /// whose processes and invariants never read them. Turn it on for one
    /// that does (its loops then never close).
    pub fn counters(mut self, on: bool) -> Checker {
        self.counters = on;
        self
    }
    /// Whether the search uses partial-order reduction (default on): a
    /// state whose first step tried is *safe* (a local step, a plain send
    /// by a mailbox's sole sender, a plain receive by its sole receiver)
    /// and reaches a new state is expanded by that step alone. It finds
    /// the same end states and failures as the full search (DESIGN.md,
    /// "The stateful checker"); off is the full search, for comparing.
    /// Models with invariants are always searched in full.
    pub fn reduction(mut self, on: bool) -> Checker {
        self.reduction = on;
        self
    }
    /// Whether the partial-order reduction, when a state's first step is
    /// not safe alone, looks for a *stubborn set* of several processes
    /// (default on): the steps of every process whose step is a
    /// transition are judged, and the smallest set closed under conflict
    /// (every process that may do something dependent with a step in it
    /// is in it, and can step) expands the state, if it leaves any
    /// process out (DESIGN.md, "The stateful checker"). Off: only ample
    /// sets of one, for comparing. The depth-first and breadth-first
    /// searches use it; the parallel search ([`Checker::parallel`]) keeps
    /// to sets of one.
    pub fn stubborn_sets(mut self, on: bool) -> Checker {
        self.stubborn = on;
        self
    }
    /// Whether the partial-order reduction merges a *local* step (one that
    /// starts no operation, uses nothing through `Ctx::ipc`, spawns
    /// nothing, makes no choice and ends in `Step::Yield`) with the local
    /// steps its process takes next into one transition, without storing
    /// the states in between (default on; SPIN's statement merging). Local
    /// steps commute with every step of every other process, so nothing
    /// is lost (DESIGN.md, "Partial-order reduction"); at most 64 steps
    /// are merged after the first, then the state is stored. Off: each
    /// step a transition, for comparing. Nothing is merged without
    /// [`Checker::reduction`], or in a model with invariants. A trail
    /// replays with the setting it was found with.
    pub fn statement_merging(mut self, on: bool) -> Checker {
        self.merging = on;
        self
    }
    /// The kernel's settings.
    pub fn kernel_config(mut self, config: KernelConfig) -> Checker {
        self.kernel_config = config;
        self
    }
    /// Calls `f` with the statistics so far about every `every` of a long
    /// search.
    pub fn progress(mut self, every: Duration, f: impl FnMut(&CheckStats) + 'static) -> Checker {
        self.progress = Some((every, RefCell::new(Box::new(f))));
        self
    }

    pub(crate) fn memory_limit(&self) -> usize {
        self.max_memory.unwrap_or_else(default_max_memory)
    }

    fn engine<M>(&self, setup: impl FnOnce(&mut World<M>)) -> Engine<M> {
        self.engine_options().build(setup)
    }

    /// What building an engine takes (shareable with worker threads).
    pub(crate) fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            kernel_config: self.kernel_config.clone(),
            check_leaks: self.check_leaks,
            counters: self.counters,
            merge_local: self.reduction && self.merging,
        }
    }
}

/// The options an [`Engine`] is built with: what a worker thread of the
/// parallel search needs to build its own.
#[derive(Clone, Debug)]
pub(crate) struct EngineOptions {
    kernel_config: KernelConfig,
    check_leaks: bool,
    counters: bool,
    /// Statement merging ([`Checker::reduction`]; the engine leaves it
    /// off for a model with invariants).
    merge_local: bool,
}

impl EngineOptions {
    /// The engine over the world `setup` builds.
    pub(crate) fn build<M>(&self, setup: impl FnOnce(&mut World<M>)) -> Engine<M> {
        let mut world = World::new(self.kernel_config.clone());
        setup(&mut world);
        Engine {
            world,
            check_leaks: self.check_leaks,
            canonical: if self.counters {
                CanonicalOptions::EXACT
            } else {
                CanonicalOptions::WITHOUT_COUNTERS
            },
            holds: 0,
            last_id: 0,
            lazy_blocking: false,
            root: None,
            merge_local: self.merge_local,
            cuts: Vec::new(),
            known: Vec::new(),
        }
    }
}

impl Checker {
    /// Checks the model `setup` builds (see the [module docs](crate::check)).
    pub fn run<M>(&self, setup: impl FnOnce(&mut World<M>)) -> CheckOutcome
    where
        M: Machine + Clone + Eq + Hash + Encode,
    {
        self.run_with_ends(setup, |_| {})
    }

    /// [`Checker::run`], showing every end state reached (valid or
    /// failing, each once) to `on_end`: for comparing with other searches.
    pub fn run_with_ends<M>(
        &self,
        setup: impl FnOnce(&mut World<M>),
        mut on_end: impl FnMut(&EndState<'_, M>),
    ) -> CheckOutcome
    where
        M: Machine + Clone + Eq + Hash + Encode,
    {
        let mut engine = self.engine(setup);
        let mut out = search::search(self, &mut engine, &mut on_end);
        explain::explain_deadlocks(&mut engine, &mut out.failures);
        out
    }

    /// Replays `trail` on the model `setup` builds: each step, which process
    /// did what, and the verdict on the state it reaches (for printing a
    /// counterexample).
    pub fn replay<M>(
        &self,
        trail: &Trail,
        setup: impl FnOnce(&mut World<M>),
    ) -> Result<Replay, ReplayError>
    where
        M: Machine + Clone + Eq + Hash + Encode,
    {
        let mut engine = self.engine(setup);
        let mut steps = Vec::new();
        let walked = explain::walk(&mut engine, trail, true, |index, proc, now, succ| {
            let slot = &succ.slots[proc as usize];
            steps.push(ReplayStep {
                index,
                proc: ProcId(proc),
                name: slot.name.to_string(),
                time: Duration::from_nanos(now),
                did: succ.log.clone(),
                status: slot.status.public(succ.now),
            });
        })?;
        let failure = walked.verdict(&mut engine);
        Ok(Replay { steps, failure })
    }
}
