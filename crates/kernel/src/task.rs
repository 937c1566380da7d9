//! [`Task`]: a task of the kernel driven by OS threads.
//!
//! A `Task` is the thread-backed runner of the non-blocking core: when an
//! operation must wait, the calling thread parks until the kernel's waker
//! unparks it or its deadline passes. A `Task` is `Send + Sync`, so several
//! threads may use one task at once (like threads of one Mach task). Dropping
//! the `Task` (or calling [`Task::exit`]) ends the task: its receive rights
//! die, its send rights are released, its owned mailboxes are destroyed.
//!
//! ```
//! use std::thread;
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
//!
//! let kernel = Kernel::new();
//! let server = kernel.spawn_task();
//! let client = kernel.spawn_task();
//! let port = server.port_allocate(Capacity::Zero).unwrap();
//! server.register("echo", port).unwrap();
//! let echo = client.look_up("echo").unwrap();
//!
//! let t = thread::spawn(move || {
//!     let request = server.receive(port).unwrap();
//!     server.reply(&request, Message::new(2, request.body.clone())).unwrap();
//! });
//! let reply = client.call(echo, Message::new(1, b"ping")).unwrap();
//! assert_eq!(&reply.body[..], b"ping");
//! t.join().unwrap();
//! ```

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::blocking::Blocker;
use crate::core::{Kernel, WaitOutcome, WaitToken, Wake, Waker};
use crate::name::Pid;
use crate::sync::{thread, thread_local, AtomicBool, Ordering};

/// A task whose operations block the calling OS thread.
pub struct Task {
    kernel: Kernel,
    pid: Pid,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("pid", &self.pid).finish()
    }
}

/// Unparks one thread.
struct ThreadWaker {
    thread: thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(not(loom))]
thread_local! {
    static WAKER: RefCell<Option<Arc<ThreadWaker>>> = const { RefCell::new(None) };
}

#[cfg(loom)]
thread_local! {
    static WAKER: RefCell<Option<Arc<ThreadWaker>>> = RefCell::new(None);
}

fn this_thread_waker() -> Arc<ThreadWaker> {
    WAKER.with(|w| {
        w.borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(ThreadWaker {
                    thread: thread::current(),
                    woken: AtomicBool::new(false),
                })
            })
            .clone()
    })
}

impl Kernel {
    /// Creates a task driven by OS threads.
    pub fn spawn_task(&self) -> Task {
        Task {
            kernel: self.clone(),
            pid: self.create_task(),
        }
    }
}

impl Task {
    /// The kernel this task belongs to.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Creates a child task that starts with the given rights of this task
    /// (moved or copied per their dispositions, like descriptors inherited
    /// across `fork`). Returns the child and its names for those rights, in order.
    pub fn spawn_child(
        &self,
        inherit: &[crate::CarriedRight],
    ) -> Result<(Task, Vec<crate::CarriedRight>), crate::IpcError> {
        let child = self.kernel.spawn_task();
        let names = self.kernel.transfer_rights(self.pid, child.pid, inherit)?;
        Ok((child, names))
    }

    /// Ends the task now (what dropping it does).
    pub fn exit(self) {}
}

impl Drop for Task {
    fn drop(&mut self) {
        self.kernel.exit_task(self.pid);
    }
}

impl Blocker for Task {
    fn kernel(&self) -> &Kernel {
        &self.kernel
    }
    fn task_pid(&self) -> Pid {
        self.pid
    }
    fn uses_lanes(&self) -> bool {
        true
    }
    fn waker(&self) -> Waker {
        let w = this_thread_waker();
        w.woken.store(false, Ordering::Relaxed);
        Waker::Call(w)
    }
    fn block(&self, token: WaitToken, timeout: Option<Duration>) -> WaitOutcome {
        let waker = this_thread_waker();
        // A deadline past what an `Instant` can hold is no deadline: the
        // wait is as long as a blocking one (it saturates, never panics).
        let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
        // Yield a few times before parking, watching the waker's flag (no
        // lock): on one CPU this lets the peer run and complete our wait
        // without a futex wake and a context switch per message.
        let mut yields_left = SPIN_YIELDS;
        let mut check = true;
        loop {
            if check || waker.woken.swap(false, Ordering::Acquire) {
                if let Some(outcome) = self.kernel.wait_take(self.pid, token) {
                    return outcome;
                }
                check = false;
            }
            let now = deadline.map(|_| Instant::now());
            if let (Some(deadline), Some(now)) = (deadline, now) {
                if now >= deadline {
                    return self.kernel.wait_cancel(self.pid, token);
                }
            }
            if yields_left > 0 {
                yields_left -= 1;
                thread::yield_now();
                continue;
            }
            match (deadline, now) {
                (Some(deadline), Some(now)) => thread::park_timeout(deadline - now),
                _ => thread::park(),
            }
            check = true;
        }
    }
}

/// How many times a blocked thread yields before it parks.
#[cfg(not(loom))]
const SPIN_YIELDS: u32 = 16;

/// No spinning under loom: it only multiplies the interleavings to explore.
#[cfg(loom)]
const SPIN_YIELDS: u32 = 0;
