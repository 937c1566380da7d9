//! # mkipc-sim: deterministic, replayable runs of simulated processes
//!
//! The simulator turns the mkipc kernel into an embeddable simulation engine
//! and a model explorer. Processes are ordinary Rust closures written against
//! the kernel's [`Ipc`](mkipc_kernel::Ipc) trait — the same code runs on the
//! kernel's threads, on real OS processes, and here — and each runs on its
//! own stackful coroutine, so blocking calls are plain function calls.
//!
//! * **Deterministic.** One process runs at a time; at every IPC operation
//!   the [`scheduler`] picks who runs next from a seeded policy (random, PCT,
//!   round robin), or follows a recorded [`Schedule`]. Same seed, same
//!   program: the same [`Trace`], byte for byte.
//! * **Virtual time.** [`Proc::work`], [`Proc::sleep`] and timeouts move a
//!   virtual clock ([`time`]), so latencies and throughputs are exact.
//! * **Faults.** Kill a process at a step, at a time, or at random; the
//!   kernel cleans up as for a real exit.
//! * **Deadlocks** stop the run with the wait-for cycle named ([`deadlock`]).
//! * **Exploration** over seeds or exhaustively ([`Explorer`]), with
//!   invariants after every step and proptest [`strategy`]s for models.
//! * **Stateful model checking** of processes written as state machines
//!   ([`machine`], [`check::Checker`]): every reachable state once, SPIN-style
//!   verdicts, statistics and trails.
//! * **Scale.** Stacks are carved from a few large mappings ([`stack`]), so a
//!   run holds hundreds of thousands of processes.
//! * **Threaded mode** ([`Threaded`]) runs the same closures on OS threads.
//! * **Async processes** ([`Sim::spawn_async`], [`async_proc`]): a future
//!   whose every operation ([`AsyncIpc`], `work`, `sleep`) is awaited, polled
//!   by the same loop with no stack of its own, scheduled as the closure
//!   making the same calls.
//!
//! Examples: `cargo run -p mkipc-sim --example deadlock` (exploration finds
//! and explains the classic rendezvous deadlock), `--example capacity_trace`
//! (a capacity experiment with the report and all three trace formats),
//! `--release --example scale -- 100000` (memory per idle process). The
//! benchmark is `cargo bench -p mkipc-sim --bench sim`; DESIGN.md (section "The simulator")
//! explains the design and records the measurements.
//!
//! ## Where to start
//!
//! * [`Sim`] ([`mod@sim`]): set up ports, mailboxes and processes, then
//!   [`Sim::run`]; [`SimBuilder`] ([`mod@builder`]) for the seed, scheduler
//!   and limits, [`Inherit`] for the rights a process starts with.
//! * [`Proc`] ([`mod@process`]): what a process's closure gets; it implements
//!   [`Ipc`](mkipc_kernel::Ipc) and adds `work`, `sleep`, `now`, `spawn`.
//! * [`Report`] ([`report`]) and [`Trace`] ([`trace`]: JSON lines, Mermaid,
//!   Perfetto) are what a run gives back; a [`Failure`] prints the line that
//!   replays it.
//! * [`Explorer`] ([`mod@explore`]) runs a model under many schedules;
//!   [`check::Checker`] checks every state of a model written as
//!   [`machine::Machine`]s.
//! * [`Threaded`] ([`mod@threaded`]) runs the same closures on OS threads.
//!
//! ## Layers
//!
//! The modules have one direction: each uses only its own layer and those
//! below it, so a reader can find where a step is taken and what it may
//! touch. From the bottom (DESIGN.md, "Layers, one concept per file", has
//! every file; `python3 crates/sim/tools/modgraph.py` prints the graph):
//!
//! 1. **Vocabulary**, plain data every layer shares: [`ProcId`], [`exit`]
//!    ([`ExitStatus`], [`ProcError`]), [`ProcStats`], [`time`], [`rng`],
//!    [`schedule`], [`stack`], the trace's events and its exporters
//!    ([`trace`], which read only a [`Trace`]).
//! 2. **Scheduling policies**: [`scheduler`], who runs next given the
//!    ready queue, and the DPOR footprints.
//! 3. **The loop and its state** (private modules `runtime` and `driver`):
//!    the kernel, the clock, the ready queue and each process's
//!    bookkeeping; the loop that takes a step (picks a ready process and
//!    resumes its body until it hands control back) and ends processes.
//! 4. **Process kinds**, what a step runs: a closure on a stackful
//!    coroutine with its [`Proc`] handle ([`mod@process`]; also the
//!    threaded backend), a [`machine::Machine`] stepped stackless by the
//!    loop, an async process ([`async_proc`]).
//! 5. **Set-up API and what a run gives back**: [`Sim`] ([`mod@sim`]),
//!    [`SimBuilder`] ([`mod@builder`]), [`Threaded`] ([`mod@threaded`]);
//!    the [`Report`] ([`report`], printed by [`summary`]) and the
//!    [`deadlock`] explanation. They run before the loop or after it
//!    stopped, never inside a step (but for invariants, after one).
//! 6. **Built on runs**: [`Explorer`] ([`mod@explore`]), the stateful
//!    checker ([`check`]), model [`strategy`]s, the [`conformance`]
//!    backends, the benchmarks' [`workload`].
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{ms, Sim};
//!
//! let mut sim = Sim::builder().seed(42).build();
//! sim.mailbox("jobs", Capacity::Bounded(2)).unwrap();
//! sim.spawn("producer", |p| {
//!     let jobs = p.mailbox_open("jobs")?;
//!     for i in 0..10 {
//!         p.send(jobs, Message::from_u64(1, i))?;
//!         p.work(ms(1));
//!     }
//!     Ok(())
//! });
//! sim.spawn("consumer", |p| {
//!     let jobs = p.mailbox_open("jobs")?;
//!     for _ in 0..10 {
//!         p.receive(jobs)?;
//!         p.work(ms(3));
//!     }
//!     Ok(())
//! });
//! let report = sim.run().unwrap();
//! let jobs = report.port("jobs").unwrap();
//! assert_eq!((jobs.messages, jobs.max_occupancy), (10, 2));
//! println!("{report}");
//! ```

pub mod async_proc;
pub mod builder;
pub mod check;
pub mod conformance;
pub mod deadlock;
mod driver;
pub mod exit;
pub mod explore;
pub mod machine;
pub mod process;
pub mod report;
pub mod rng;
mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod sim;
pub mod stack;
mod stackless;
mod stats;
pub mod strategy;
pub mod summary;
mod tables;
pub mod threaded;
pub mod time;
pub mod trace;
pub mod workload;

pub use crate::async_proc::{AsyncIpc, AsyncProc};
pub use crate::builder::{Inherit, SimBuilder};
pub use crate::deadlock::Deadlock;
pub use crate::explore::{ExploreOutcome, Explorer, Reduction, SearchCut};
pub use crate::process::{ExitStatus, Proc, ProcError, ProcResult};
pub use crate::report::{Failure, FailureReason, PortReport, ProcReport, ProcStats, Report};
pub use crate::rng::SimRng;
pub use crate::schedule::Schedule;
pub use crate::scheduler::SchedulerKind;
pub use crate::sim::{Sim, SimView, DEFAULT_STACK_SIZE};
pub use crate::threaded::Threaded;
pub use crate::time::{ms, us, Dist};
pub use crate::trace::{Event, EventKind, Trace, TraceGap, DEFAULT_TRACE_LIMIT};

/// A simulated process's id within its run: spawn order, from 0. Stable
/// across runs of the same program, which is what schedules record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProcId(pub u32);

impl std::fmt::Display for ProcId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proc {}", self.0)
    }
}
