//! The body of an async process: its future, polled by the scheduler loop
//! (no coroutine, no stack of its own).
//!
//! [`AsyncRunner::resume`] polls the future once. The future ends
//! (`Ready`: the process returns), or it is `Pending` and has left the
//! hand-over a coroutine would have suspended with: the owed switch of a
//! scheduling point, or a request in [`Shared::handover`] (block, timer,
//! join, yield). A future that is pending for a reason of its own (a future
//! not of this simulator) blocks the process until the `Waker` in its
//! `Context` is woken: that waker is the kernel's, wrapped, so waking it
//! marks the process ready through the run's wake queue like any kernel
//! wait completing.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::handle::{AsyncProc, Shared};
use crate::exit::{ProcError, ProcResult};
use crate::process::Proc;
use crate::runtime::{Resumed, Suspend};
use crate::stackless::Stackless;

/// The `Waker` an async process's future is polled with: it wakes the
/// process through the kernel's waker (the run's wake queue), and says that
/// it was woken during a poll (a wake the process may not otherwise see).
struct ProcWake {
    kernel: mkipc_kernel::Waker,
    woken: AtomicBool,
}

impl std::task::Wake for ProcWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
        self.kernel.wake();
    }
}

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
    wake: Arc<ProcWake>,
    waker: Waker,
}

impl<F, Fut> AsyncRunner<F, Fut>
where
    F: FnOnce(AsyncProc) -> Fut + 'static,
    Fut: Future<Output = ProcResult> + 'static,
{
    pub(crate) fn new(proc: Proc, make: F) -> AsyncRunner<F, Fut> {
        let shared = Rc::new(Shared::new(proc));
        let wake = Arc::new(ProcWake {
            kernel: shared.sim().waker.clone(),
            woken: AtomicBool::new(false),
        });
        let waker = Waker::from(Arc::clone(&wake));
        AsyncRunner {
            shared,
            state: State::Unmade(Some(make)),
            wake,
            waker,
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
        self.wake.woken.store(false, Ordering::Relaxed);
        let mut cx = Context::from_waker(&self.waker);
        match future.poll(&mut cx) {
            Poll::Ready(r) => Resumed::Return(r),
            Poll::Pending => {
                if let Some(why) = self.shared.misuse.take() {
                    return Resumed::Return(Err(ProcError::msg(why)));
                }
                if let Some(switch) = s.owed_switch.take() {
                    return Resumed::Yield(switch);
                }
                let woken = self.wake.woken.load(Ordering::Relaxed);
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
