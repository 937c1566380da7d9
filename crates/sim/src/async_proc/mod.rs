//! Async processes: a process is a future, polled by the scheduler loop,
//! with no thread and no stack of its own.
//!
//! [`Sim::spawn_async`](crate::Sim::spawn_async) takes a closure that gets
//! the process's handle, an [`AsyncProc`], and returns the future the
//! process runs:
//!
//! ```
//! use mkipc_kernel::{Capacity, Message};
//! use mkipc_sim::{ms, AsyncIpc, Inherit, Sim};
//!
//! let mut sim = Sim::builder().seed(42).build();
//! let jobs = sim.port("jobs", Capacity::Bounded(2)).unwrap();
//! sim.spawn_async("producer", &[Inherit::send(jobs)], |p| async move {
//!     for i in 0..10 {
//!         p.send(p.right(0), Message::from_u64(1, i)).await?;
//!         p.work(ms(1)).await;
//!     }
//!     Ok(())
//! })
//! .unwrap();
//! sim.spawn_async("consumer", &[Inherit::receive(jobs)], |p| async move {
//!     for _ in 0..10 {
//!         p.receive(p.right(0)).await?;
//!         p.work(ms(3)).await;
//!     }
//!     Ok(())
//! })
//! .unwrap();
//! let report = sim.run().unwrap();
//! assert_eq!(report.port("jobs").unwrap().messages, 10);
//! assert_eq!(report.end_time, ms(30)); // the consumer is the bottleneck
//! ```
//!
//! Every operation of the kernel's API is a future ([`AsyncIpc`], the
//! mirror of [`Ipc`](mkipc_kernel::Ipc)), and so are
//! [`work`](AsyncProc::work), [`sleep`](AsyncProc::sleep),
//! [`yield_now`](AsyncProc::yield_now), [`join`](AsyncProc::join) and the
//! spawns. An async process is scheduled exactly as the closure that makes
//! the same calls without `.await`: its operations take the same
//! scheduling points, in the same places (in place when the process goes
//! on, handing over when someone else is picked), record the same trace
//! events and figures, block in the kernel the same way, so the same seed
//! gives the same schedule and trace (`tests/async_processes.rs` checks
//! random programs against their closure twins). Kills, planned faults,
//! panics, deadlock reports (a blocked async process is named in the
//! wait-for cycle), statistics and traces are the closure's too: to the
//! loop an async process is one more stackless body (module `stackless`).
//!
//! How it is woken: an operation that has to wait leaves a wait in the
//! kernel and hands over with `Suspend::Block`, registered by the process's
//! id; the kernel lists the id as woken when the wait completes, and the
//! loop moves it to the ready queue, in wake order. The `Waker` the future
//! is polled with lists that same id (`Kernel::wake_id`), so a future from elsewhere
//! (a channel between two async processes of the run, say) wakes the
//! process the same way; it must be woken from the run's own thread, by
//! another process of the run, for the run to stay deterministic.
//!
//! Under DPOR exploration an async process's steps are taken as dependent
//! with every other (sound, but no reduction).

mod handle;
pub mod ipc;
mod runner;

use std::future::Future;
use std::rc::Rc;

use mkipc_kernel::{CarriedRight, IpcError, Pid};

pub use self::handle::AsyncProc;
pub use self::ipc::AsyncIpc;
use crate::exit::ProcResult;
use crate::runtime::Core;
use crate::ProcId;

/// Creates an async process: a kernel task, its inherited rights, its
/// bookkeeping, and the runner that makes and polls its future.
pub(crate) fn spawn_async_process<F, Fut>(
    core: &Rc<Core>,
    name: &str,
    parent: Option<(ProcId, Pid)>,
    inherit: &[CarriedRight],
    make: F,
) -> Result<ProcId, IpcError>
where
    F: FnOnce(AsyncProc) -> Fut + 'static,
    Fut: Future<Output = ProcResult> + 'static,
{
    crate::process::spawn::spawn_stackless(core, name, parent, inherit, |p| {
        Box::new(runner::AsyncRunner::new(p, make))
    })
}
