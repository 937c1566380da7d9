//! Threaded mode: the same process closures on real OS threads.
//!
//! [`Threaded`] runs each process on its own OS thread with a kernel
//! [`Task`](mkipc_kernel::Task): real concurrency, real time, no determinism — for embedding
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

use std::sync::Arc;
use std::time::Instant;

use mkipc_kernel::{Capacity, CarriedRight, Ipc, IpcError, Kernel, PortName};
use parking_lot::{Condvar, Mutex};

use crate::process::thread::{join, spawn, Shared};
use crate::process::{ExitStatus, Proc, ProcResult};
use crate::ProcId;

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
