//! Threaded mode: the same process closures on real OS threads.
//!
//! [`Threaded`] runs each process on its own OS thread with a kernel
//! [`Task`]: real concurrency, real time, no determinism — for embedding
//! where the parallelism is the point, and to check that a model behaves the
//! same outside the simulator. The closures are the ones given to
//! [`Sim::spawn`](crate::Sim::spawn) (they must be `Send` here); `work` and
//! `sleep` sleep the thread, `now` reads the wall clock since the start, and
//! [`Proc::kill`] exits the victim's kernel task, so its next IPC operation
//! fails with `TaskExited` (a thread cannot be stopped from outside).
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{Inherit, Threaded};
//!
//! let world = Threaded::new();
//! let port = world.port(Capacity::Bounded(1)).unwrap();
//! let rx = world.spawn_with("rx", &[Inherit::receive(port)], |p| {
//!     assert_eq!(p.receive(p.right(0))?.as_u64(), Some(9));
//!     Ok(())
//! }).unwrap();
//! world.spawn_with("tx", &[Inherit::send(port)], |p| {
//!     p.send(p.right(0), Message::from_u64(1, 9))?;
//!     Ok(())
//! }).unwrap();
//! assert!(world.join(rx).is_success());
//! assert!(world.join_all().iter().all(|(_, s)| s.is_success()));
//! ```

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mkipc_kernel::{Capacity, CarriedRight, Ipc, IpcError, Kernel, Pid, PortName, Task};
use parking_lot::{Condvar, Mutex};

use crate::process::{run_threaded, ExitStatus, Proc, ProcResult};
use crate::rng::SimRng;
use crate::ProcId;

struct Entry {
    name: String,
    pid: Pid,
    status: Option<ExitStatus>,
    handle: Option<JoinHandle<()>>,
}

struct Shared {
    kernel: Kernel,
    init: Task,
    start: Instant,
    procs: Mutex<Vec<Entry>>,
    ended: Condvar,
}

/// Runs processes on OS threads (see the [module docs](crate::threaded)).
pub struct Threaded {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Threaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threaded")
            .field("procs", &self.shared.procs.lock().len())
            .finish()
    }
}

impl Default for Threaded {
    fn default() -> Self {
        Threaded::new()
    }
}

/// The threaded backend of a [`Proc`].
pub(crate) struct ThreadCtx {
    pub task: Task,
    pub name: String,
    pub start: Instant,
    pub rng: RefCell<SimRng>,
    shared: Arc<Shared>,
}

impl Threaded {
    /// A new kernel with no processes.
    pub fn new() -> Threaded {
        Threaded::with_kernel(Kernel::new())
    }

    /// Processes on an existing kernel.
    pub fn with_kernel(kernel: Kernel) -> Threaded {
        let init = kernel.spawn_task();
        Threaded {
            shared: Arc::new(Shared {
                kernel,
                init,
                start: Instant::now(),
                procs: Mutex::default(),
                ended: Condvar::new(),
            }),
        }
    }

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.shared.kernel
    }

    /// Creates a port held by the setup task, for processes to inherit
    /// ([`Inherit::receive`](crate::Inherit::receive),
    /// [`Inherit::send`](crate::Inherit::send)). The setup task keeps a send
    /// right until the `Threaded` is joined.
    pub fn port(&self, capacity: Capacity) -> Result<PortName, IpcError> {
        let name = self.shared.init.port_allocate(capacity)?;
        self.shared.init.make_send(name)?;
        Ok(name)
    }

    /// Spawns a process that inherits nothing.
    pub fn spawn<F>(&self, name: &str, f: F) -> ProcId
    where
        F: FnOnce(&Proc) -> ProcResult + Send + 'static,
    {
        spawn(&self.shared, name, None, &[], f)
            .expect("spawning without inherited rights cannot fail")
    }

    /// Spawns a process inheriting rights held by the setup task.
    pub fn spawn_with<F>(
        &self,
        name: &str,
        inherit: &[CarriedRight],
        f: F,
    ) -> Result<ProcId, IpcError>
    where
        F: FnOnce(&Proc) -> ProcResult + Send + 'static,
    {
        spawn(&self.shared, name, None, inherit, f)
    }

    /// Waits for a process to end.
    pub fn join(&self, id: ProcId) -> ExitStatus {
        join(&self.shared, id)
    }

    /// Waits for every process (including ones spawned meanwhile) and returns
    /// `(name, status)` in spawn order.
    pub fn join_all(self) -> Vec<(String, ExitStatus)> {
        loop {
            let handle = self
                .shared
                .procs
                .lock()
                .iter_mut()
                .find_map(|e| e.handle.take());
            match handle {
                Some(h) => {
                    let _ = h.join();
                }
                None => break,
            }
        }
        self.shared
            .procs
            .lock()
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.status.clone().unwrap_or(ExitStatus::Stuck),
                )
            })
            .collect()
    }
}

fn spawn<F>(
    shared: &Arc<Shared>,
    name: &str,
    parent: Option<Pid>,
    inherit: &[CarriedRight],
    f: F,
) -> Result<ProcId, IpcError>
where
    F: FnOnce(&Proc) -> ProcResult + Send + 'static,
{
    let task = shared.kernel.spawn_task();
    let from = parent.unwrap_or(shared.init.pid());
    let inherited = if inherit.is_empty() {
        Vec::new()
    } else {
        shared.kernel.transfer_rights(from, task.pid(), inherit)?
    };
    let mut procs = shared.procs.lock();
    let id = ProcId(procs.len() as u32);
    let pid = task.pid();
    let shared2 = Arc::clone(shared);
    let name2 = name.to_string();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let ctx = ThreadCtx {
                task,
                name: name2,
                start: shared2.start,
                rng: RefCell::new(SimRng::new(u64::from(id.0))),
                shared: Arc::clone(&shared2),
            };
            let status =
                match catch_unwind(AssertUnwindSafe(|| run_threaded(ctx, id, inherited, f))) {
                    Ok(Ok(())) => ExitStatus::Exited(0),
                    Ok(Err(e)) => e.into_status(),
                    Err(_) => ExitStatus::Panicked("process thread panicked".to_string()),
                };
            let mut procs = shared2.procs.lock();
            if procs[id.0 as usize].status.is_none() {
                procs[id.0 as usize].status = Some(status);
            }
            shared2.ended.notify_all();
        })
        .map_err(|e| IpcError::Os(e.raw_os_error().unwrap_or(0)))?;
    procs.push(Entry {
        name: name.to_string(),
        pid,
        status: None,
        handle: Some(handle),
    });
    Ok(id)
}

fn join(shared: &Shared, id: ProcId) -> ExitStatus {
    let mut procs = shared.procs.lock();
    loop {
        match procs.get(id.0 as usize) {
            None => return ExitStatus::Stuck,
            Some(e) => {
                if let Some(s) = &e.status {
                    return s.clone();
                }
            }
        }
        shared.ended.wait(&mut procs);
    }
}

impl ThreadCtx {
    pub(crate) fn spawn<F>(
        &self,
        name: &str,
        parent: Option<Pid>,
        inherit: &[CarriedRight],
        f: F,
    ) -> Result<ProcId, IpcError>
    where
        F: FnOnce(&Proc) -> ProcResult + Send + 'static,
    {
        spawn(&self.shared, name, parent, inherit, f)
    }

    pub(crate) fn join(&self, id: ProcId) -> ExitStatus {
        join(&self.shared, id)
    }

    pub(crate) fn kill(&self, id: ProcId) {
        let pid = {
            let mut procs = self.shared.procs.lock();
            let Some(e) = procs.get_mut(id.0 as usize) else {
                return;
            };
            if e.status.is_none() {
                e.status = Some(ExitStatus::Killed);
            }
            e.pid
        };
        // Outside the table lock: exiting wakes the victim's waits.
        self.shared.kernel.exit_task(pid);
        self.shared.ended.notify_all();
    }
}
