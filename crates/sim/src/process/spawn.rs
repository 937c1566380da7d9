//! Spawning a simulated process of any kind: its kernel task, the rights
//! it inherits (with their labels and watched queues), its bookkeeping in
//! the loop's [`Core`], and its body, which the loop adopts at its next
//! turn: a coroutine running a closure on a [`Proc`] ([`spawn_process`]),
//! or a [`Stackless`] body built around a stackless `Proc`
//! ([`spawn_stackless`]: machines, async processes).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use corosensei::{Coroutine, Yielder};
use mkipc_kernel::{CarriedRight, Disposition, IpcError, Pid};

use super::{Backend, Proc, SimCtx};
use crate::exit::{ExitStatus, ProcResult};
use crate::runtime::{Body, Co, Core, ProcMeta, Stackless, Suspend};
use crate::stack::Canary;
use crate::trace::EventKind;
use crate::ProcId;

/// Records a process that could not be created (`error`): it gets an id and
/// a kernel pid like any other, and has already ended, failed.
pub(crate) fn spawn_failed(core: &Rc<Core>, name: &str, error: &IpcError) -> ProcId {
    let pid = core.kernel.create_task();
    core.kernel.exit_task(pid);
    let status = ExitStatus::Failed {
        code: 1,
        error: format!("could not start: {error}"),
    };
    let id = ProcId(core.procs.borrow().len() as u32);
    let name = core.intern(name);
    core.procs
        .borrow_mut()
        .push(ProcMeta::new(name, pid, Some(status.clone())));
    core.emit(id, EventKind::Spawned { parent: None });
    core.emit(id, EventKind::Exited { status });
    id
}

/// Creates a simulated process: a kernel task, its inherited rights, its
/// bookkeeping and its coroutine (adopted by the loop at its next step).
pub(crate) fn spawn_process<F>(
    core: &Rc<Core>,
    name: &str,
    parent: Option<(ProcId, Pid)>,
    inherit: &[CarriedRight],
    f: F,
) -> Result<ProcId, IpcError>
where
    F: FnOnce(&Proc) -> ProcResult + 'static,
{
    // A new process (and its inherited rights): dependent with every step.
    core.touch_global();
    let stack = core.stacks.take().map_err(|_| IpcError::OutOfMemory)?;
    let (id, pid, names) = new_process(core, name, parent, inherit)?;
    let canary = stack.canary();
    let core2 = Rc::clone(core);
    let inherited_count = names.len();
    let co: Co = Coroutine::with_stack(stack, move |yielder: &Yielder<(), Suspend>, ()| {
        let ctx = SimCtx {
            core: core2,
            id,
            pid,
            yielder: std::ptr::from_ref(yielder),
            owed_points: Cell::new(0),
            owed_switch: Cell::new(None),
            granted: Cell::new(false),
            op: Cell::new(None),
            redo: RefCell::default(),
        };
        let p = Proc {
            backend: Backend::Sim(ctx),
            id,
            inherited: names.into_boxed_slice(),
        };
        f(&p)
    });
    start_process(
        core,
        id,
        Body::Co(Box::new(co)),
        Some(canary),
        parent,
        inherited_count,
    );
    Ok(id)
}

/// Creates a stackless process (module `stackless`): a kernel task, its
/// inherited rights, its bookkeeping, and the body `make` builds from its
/// handle, which has no coroutine (its scheduling points are taken in
/// place or owed, never suspended in).
pub(crate) fn spawn_stackless(
    core: &Rc<Core>,
    name: &str,
    parent: Option<(ProcId, Pid)>,
    inherit: &[CarriedRight],
    make: impl FnOnce(Proc) -> Box<dyn Stackless>,
) -> Result<ProcId, IpcError> {
    core.touch_global();
    let (id, pid, names) = new_process(core, name, parent, inherit)?;
    let inherited_count = names.len();
    let ctx = SimCtx {
        core: Rc::clone(core),
        id,
        pid,
        yielder: std::ptr::null(),
        owed_points: Cell::new(0),
        owed_switch: Cell::new(None),
        granted: Cell::new(false),
        op: Cell::new(None),
        redo: RefCell::default(),
    };
    let p = Proc {
        backend: Backend::Sim(ctx),
        id,
        inherited: names.into_boxed_slice(),
    };
    start_process(
        core,
        id,
        Body::Machine(make(p)),
        None,
        parent,
        inherited_count,
    );
    Ok(id)
}

/// The first half of a spawn: the kernel task, the inherited rights (and
/// their labels and watched queues), the bookkeeping.
fn new_process(
    core: &Rc<Core>,
    name: &str,
    parent: Option<(ProcId, Pid)>,
    inherit: &[CarriedRight],
) -> Result<(ProcId, Pid, Vec<CarriedRight>), IpcError> {
    let pid = core.kernel.create_task();
    let from = parent.map_or(core.init, |p| p.1);
    let names = if inherit.is_empty() {
        Vec::new()
    } else {
        match core.kernel.transfer_rights(from, pid, inherit) {
            Ok(n) => n,
            Err(e) => {
                core.kernel.exit_task(pid);
                return Err(e);
            }
        }
    };
    for (given, got) in inherit.iter().zip(&names) {
        if let Some(label) = core.label_of(from, given.name) {
            core.set_label(pid, got.name, label);
        }
        if let Some(queue) = core.queue_of(from, given.name) {
            core.set_queue_of(pid, got.name, queue);
        }
        if given.disposition == Disposition::MoveReceive {
            for w in core.watched.borrow_mut().iter_mut() {
                if w.holder == from && w.name == given.name {
                    w.holder = pid;
                    w.name = got.name;
                }
            }
        }
    }
    let id = ProcId(core.procs.borrow().len() as u32);
    let name = core.intern(name);
    core.procs.borrow_mut().push(ProcMeta::new(name, pid, None));
    Ok((id, pid, names))
}

/// The second half of a spawn: the body waits for the loop, the process is
/// ready, the scheduler and the trace hear of it.
fn start_process(
    core: &Rc<Core>,
    id: ProcId,
    body: Body,
    canary: Option<Canary>,
    parent: Option<(ProcId, Pid)>,
    inherited_count: usize,
) {
    core.spawned.borrow_mut().push((id, body, canary));
    core.ready.borrow_mut().push_back(id);
    core.sched
        .borrow_mut()
        .on_spawn(id, &mut core.sched_rng.borrow_mut());
    core.emit(
        id,
        EventKind::Spawned {
            parent: parent.map(|p| p.0),
        },
    );
    if inherited_count > 0 {
        core.emit(
            id,
            EventKind::RightsInherited {
                count: inherited_count,
            },
        );
    }
}
