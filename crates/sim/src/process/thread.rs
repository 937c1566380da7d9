//! The threaded backend of a [`Proc`]: the process runs on its own OS
//! thread with a kernel [`Task`], in a world of such processes ([`Shared`])
//! that [`Threaded`](crate::Threaded) sets up. A process spawns, joins and
//! kills its peers through its [`ThreadCtx`]; the user-facing set-up API is
//! module [`threaded`](crate::threaded).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mkipc_kernel::{CarriedRight, Ipc, IpcError, Kernel, Pid, Task};
use parking_lot::{Condvar, Mutex};

use super::{run_threaded, Proc};
use crate::exit::{ExitStatus, ProcResult};
use crate::rng::SimRng;
use crate::ProcId;

/// One process of a threaded world.
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) pid: Pid,
    pub(crate) status: Option<ExitStatus>,
    pub(crate) handle: Option<JoinHandle<()>>,
}

/// A threaded world: its kernel, its setup task, its processes.
pub(crate) struct Shared {
    pub(crate) kernel: Kernel,
    pub(crate) init: Task,
    pub(crate) start: Instant,
    pub(crate) procs: Mutex<Vec<Entry>>,
    pub(crate) ended: Condvar,
}

/// The threaded backend of a [`Proc`].
pub(crate) struct ThreadCtx {
    pub task: Task,
    pub name: String,
    pub start: Instant,
    pub rng: RefCell<SimRng>,
    shared: Arc<Shared>,
}

/// Spawns a process of `shared`'s world on its own thread, with the
/// rights it inherits from `parent` (the setup task if none).
pub(crate) fn spawn<F>(
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

/// Waits until process `id` of `shared`'s world has ended.
pub(crate) fn join(shared: &Shared, id: ProcId) -> ExitStatus {
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
