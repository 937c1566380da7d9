//! The body of an async process: its future, polled by the scheduler loop
//! (no coroutine, no stack of its own).
//!
//! [`AsyncRunner::resume`] polls the future once. The future ends
//! (`Ready`: the process returns), or it is `Pending` and has left the
//! hand-over a coroutine would have suspended with: the owed switch of a
//! scheduling point, or a request in [`Shared::handover`] (block, timer,
//! join, yield). A future that is pending for a reason of its own (a future
//! not of this simulator) blocks the process until the `Waker` in its
//! `Context` is woken: waking it lists the process's id among the kernel's
//! woken ids ([`Kernel::wake_id`](mkipc_kernel::Kernel::wake_id)), so it
//! is made ready in wake order like any kernel wait completing.
//!
//! The `Waker` costs nothing until a future keeps it. Each poll's `Context`
//! holds a waker that points at a [`PollWake`] on the runner's stack (no
//! allocation); the simulator's own futures never touch it. A future that
//! keeps the waker clones it, and the clone is the shared [`ProcWake`]
//! (an `Arc`), made at the first clone and kept by the runner for the
//! next ones: so an idle process holds no `Arc` and no waker of its own.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::handle::{AsyncProc, Shared};
use crate::exit::{ProcError, ProcResult};
use crate::process::Proc;
use crate::runtime::{Resumed, Stackless, Suspend};

/// The `Waker` an async process's future is polled with: it wakes the
/// process through the kernel's waker (the run's wake queue), and says that
/// it was woken during a poll (a wake the process may not otherwise see).
struct ProcWake {
    kernel: mkipc_kernel::Kernel,
    /// The id the process's kernel waits are registered by.
    id: u64,
    woken: AtomicBool,
}

impl std::task::Wake for ProcWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
        self.kernel.wake_id(self.id);
    }
}

/// The waker of one poll (module docs): borrowed by the poll's `Context`
/// only, so it may live on the stack. Everything in it is `Sync`, as a
/// `Waker` may be used from any thread while the poll lasts.
struct PollWake<'a> {
    kernel: &'a mkipc_kernel::Kernel,
    id: u64,
    /// Woken (through this waker, not a clone) during the poll.
    woken: AtomicBool,
    /// The runner's shared waker, made at the first clone.
    shared: &'a OnceLock<Arc<ProcWake>>,
}

impl PollWake<'_> {
    /// A `Waker` pointing at this one, valid while `self` is borrowed.
    fn waker(&self) -> std::mem::ManuallyDrop<Waker> {
        let raw = RawWaker::new(std::ptr::from_ref(self).cast(), &POLL_WAKE);
        // SAFETY: the functions of `POLL_WAKE` take the data pointer as a
        // `&PollWake` and only read it or call `Sync` methods on what it
        // holds; the waker is only lent to the poll's `Context` (for less
        // than `self` lives: `resume` ends the context's block before it),
        // and whoever wants to keep it must clone it, which gives a waker
        // on an `Arc` instead (`poll_clone`). It is never dropped (the
        // drop function does nothing anyway).
        std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
    }
}

static POLL_WAKE: RawWakerVTable = RawWakerVTable::new(poll_clone, poll_wake, poll_wake, poll_drop);

/// Clones a poll's waker: the shared `Arc` waker, made once per process.
unsafe fn poll_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is the `&PollWake` of `PollWake::waker`, borrowed for
    // as long as the waker may be used.
    let w = unsafe { &*data.cast::<PollWake<'_>>() };
    let shared = w.shared.get_or_init(|| {
        Arc::new(ProcWake {
            kernel: w.kernel.clone(),
            id: w.id,
            woken: AtomicBool::new(false),
        })
    });
    let waker = std::mem::ManuallyDrop::new(Waker::from(Arc::clone(shared)));
    // The clone's reference moves into the returned raw waker (not dropped).
    RawWaker::new(waker.data(), waker.vtable())
}

/// Wakes through a poll's waker (by value or by reference: it owns nothing).
unsafe fn poll_wake(data: *const ()) {
    // SAFETY: as in `poll_clone`.
    let w = unsafe { &*data.cast::<PollWake<'_>>() };
    w.woken.store(true, Ordering::Relaxed);
    w.kernel.wake_id(w.id);
}

/// A poll's waker owns nothing.
unsafe fn poll_drop(_: *const ()) {}

/// The future, or what makes it when the process first runs. The future
/// lives inline, in the runner's own box (one allocation per process, not
/// two), and is pinned there from its first poll on.
enum State<F, Fut> {
    Unmade(Option<F>),
    Running(Fut),
}

/// An async process's body (module docs).
pub(crate) struct AsyncRunner<F, Fut> {
    shared: Rc<Shared>,
    state: State<F, Fut>,
    /// The waker a future keeps, once one did (module docs).
    wake: OnceLock<Arc<ProcWake>>,
}

impl<F, Fut> AsyncRunner<F, Fut>
where
    F: FnOnce(AsyncProc) -> Fut + 'static,
    Fut: Future<Output = ProcResult> + 'static,
{
    pub(crate) fn new(proc: Proc, make: F) -> AsyncRunner<F, Fut> {
        AsyncRunner {
            shared: Rc::new(Shared::new(proc)),
            state: State::Unmade(Some(make)),
            wake: OnceLock::new(),
        }
    }
}

impl<F, Fut> Stackless for AsyncRunner<F, Fut>
where
    F: FnOnce(AsyncProc) -> Fut + 'static,
    Fut: Future<Output = ProcResult> + 'static,
{
    fn resume(&mut self) -> Resumed {
        let s = self.shared.sim();
        if !s.take_owed() {
            return Resumed::Yield(s.owed_switch.take().unwrap_or(Suspend::Yield));
        }
        // Under DPOR exploration an async step is dependent with every
        // other (footprints are recorded on the coroutine path only).
        s.core.touch_global();
        if let State::Unmade(make) = &mut self.state {
            let Some(make) = make.take() else {
                return Resumed::Return(Err(ProcError::msg("the future could not be made")));
            };
            let p = AsyncProc {
                shared: Rc::clone(&self.shared),
            };
            self.state = State::Running(make(p));
        }
        let State::Running(future) = &mut self.state else {
            unreachable!("made above");
        };
        // SAFETY: the future is never moved once polled. A runner is boxed
        // before it is first resumed (`spawn_async_process`: the loop owns
        // it as a `Box<dyn Stackless>`, whose contents cannot be moved out),
        // the future is made in place above, before its first poll, and
        // after that `state` is never assigned again: the future stays
        // where it is until the runner, and so the future, is dropped.
        let future = unsafe { Pin::new_unchecked(future) };
        if let Some(kept) = self.wake.get() {
            kept.woken.store(false, Ordering::Relaxed);
        }
        let poll_wake = PollWake {
            kernel: &s.core.kernel,
            id: u64::from(s.id.0),
            woken: AtomicBool::new(false),
            shared: &self.wake,
        };
        let waker = poll_wake.waker();
        // The context (and the lent waker with it) lives only in this block.
        let polled = {
            let mut cx = Context::from_waker(&waker);
            future.poll(&mut cx)
        };
        let woken = poll_wake.woken.load(Ordering::Relaxed)
            || self
                .wake
                .get()
                .is_some_and(|kept| kept.woken.load(Ordering::Relaxed));
        match polled {
            Poll::Ready(r) => Resumed::Return(r),
            Poll::Pending => {
                if let Some(why) = self.shared.misuse.take() {
                    return Resumed::Return(Err(ProcError::msg(why)));
                }
                if let Some(switch) = s.owed_switch.take() {
                    return Resumed::Yield(switch);
                }
                Resumed::Yield(match self.shared.handover.take() {
                    // Woken while it ran: it must run again to see it.
                    Some(Suspend::Block { .. }) | None if woken => Suspend::Yield,
                    Some(request) => request,
                    // Pending on something else: until its waker is woken.
                    None => Suspend::Block { deadline: None },
                })
            }
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;
    use crate::AsyncIpc;
    use mkipc_kernel::Capacity;

    /// The sizes of the future `make` returns and of its runner.
    fn sizes<F, Fut>(_: &F) -> (usize, usize)
    where
        F: FnOnce(AsyncProc) -> Fut,
    {
        (
            std::mem::size_of::<Fut>(),
            std::mem::size_of::<AsyncRunner<F, Fut>>(),
        )
    }

    /// An idle async process (a port, a receive with a timeout: the
    /// bench's) is its runner, its shared state and the bookkeeping every
    /// process has; a million of them make each byte here a megabyte
    /// (docs/perf/2026-12-03-pp2-s17.md has the breakdown).
    #[test]
    fn an_idle_async_process_stays_small() {
        let make = |p: AsyncProc| async move {
            let own = p.port_allocate(Capacity::Bounded(1)).await?;
            let _ = p
                .receive_timeout(own, std::time::Duration::from_secs(1))
                .await;
            ProcResult::Ok(())
        };
        let (future, runner) = sizes(&make);
        assert!(future <= 192, "the future is {future} B");
        assert!(runner <= 224, "the runner is {runner} B");
        let shared = std::mem::size_of::<Shared>();
        assert!(shared <= 152, "Shared is {shared} B");
        let meta = std::mem::size_of::<crate::runtime::ProcMeta>();
        assert!(meta <= 112, "ProcMeta is {meta} B");
    }
}
