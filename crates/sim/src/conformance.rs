//! The kernel's conformance suite, run on simulated processes.
//!
//! [`SimBackend`] implements [`mkipc_kernel::conformance::Backend`]: the
//! setup role runs as a simulated process, which then spawns every role as
//! its own simulated process and joins them. Instantiating the suite for
//! several seeds and schedulers checks the API's semantics under many
//! interleavings, not only the ones OS threads happen to produce; a failing
//! role's error names its seed.
//!
//! [`ThreadedBackend`] runs the same cases with the same `Proc` handle on OS
//! threads ([`Threaded`]); [`AsyncBackend`] runs them on async processes
//! ([`Sim::spawn_async`]), each role's operations made by its process's
//! futures.
//!
//! ```text
//! mod seed_7 {
//!     mkipc_kernel::conformance_tests!(mkipc_sim::conformance::SimBackend::seed(7));
//! }
//! ```
//!
//! ```
//! use mkipc_sim::conformance::{SimBackend, ThreadedBackend};
//!
//! // One case of the kernel's suite, on a simulated run and on threads.
//! mkipc_kernel::conformance::bounded_fifo_and_full(&SimBackend::seed(7));
//! mkipc_kernel::conformance::bounded_fifo_and_full(&ThreadedBackend);
//! mkipc_kernel::conformance::bounded_fifo_and_full(&mkipc_sim::conformance::AsyncBackend::seed(7));
//! ```

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use corosensei::{Coroutine, CoroutineResult, Yielder};
use mkipc_kernel::conformance::{Backend, Outcome, Role};
use mkipc_kernel::ipc::PortStatus;
use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::{
    CallError, Capacity, Disposition, Filter, Ipc, IpcError, MailboxConfig, Message, NotifyKind,
    OnFull, Pid, PortName, ReceiveError, SendError, Sent, Wait,
};
use parking_lot::Mutex;

use crate::async_proc::{AsyncIpc, AsyncProc};
use crate::process::{Proc, ProcResult};
use crate::scheduler::SchedulerKind;
use crate::sim::Sim;
use crate::threaded::Threaded;

/// Runs conformance cases as simulated processes.
#[derive(Clone, Debug, Default)]
pub struct SimBackend {
    /// The run's seed.
    pub seed: u64,
    /// The scheduling policy.
    pub scheduler: SchedulerKind,
}

impl SimBackend {
    /// The random scheduler with this seed.
    pub fn seed(seed: u64) -> SimBackend {
        SimBackend {
            seed,
            scheduler: SchedulerKind::Random,
        }
    }
    /// This scheduler with this seed.
    pub fn with_scheduler(seed: u64, scheduler: SchedulerKind) -> SimBackend {
        SimBackend { seed, scheduler }
    }
}

/// Cases whose roles race in a way some interleavings lose, with the reason.
/// The simulator explores those interleavings; threads rarely hit them.
/// Empty today: the one case it caught (`owned_mailbox_dies_with_owner`,
/// a role reading back its own sync message) was fixed in the suite.
pub const RACY_CASES: &[(&str, &str)] = &[];

/// Why `case` is listed in [`RACY_CASES`], if it is.
fn racy_reason(case: &str) -> Option<&'static str> {
    RACY_CASES
        .iter()
        .find(|(c, _)| *c == case)
        .map(|(_, why)| *why)
}

impl Backend for SimBackend {
    type Process = Proc;

    fn skip(&self, case: &str) -> Option<&'static str> {
        racy_reason(case)
    }

    fn run(&self, setup: Role<Proc>, roles: Vec<Role<Proc>>) -> Vec<Outcome> {
        run_once(self.seed, self.scheduler.clone(), setup, roles)
    }
}

/// The setup role as a process that then spawns every role as its own
/// process and joins them; each role's outcome lands in `results`.
fn setup_then_roles(
    setup: Role<Proc>,
    roles: Vec<Role<Proc>>,
    setup_result: Arc<Mutex<Option<Outcome>>>,
    results: Arc<Mutex<Vec<Option<Outcome>>>>,
) -> impl FnOnce(&Proc) -> ProcResult + Send + 'static {
    move |p| {
        let r = setup(p);
        let ok = r.is_ok();
        *setup_result.lock() = Some(r);
        if !ok {
            return Ok(());
        }
        let mut ids = Vec::new();
        for (i, role) in roles.into_iter().enumerate() {
            let results = Arc::clone(&results);
            let id = p.spawn(&format!("role{i}"), &[], move |p| {
                let r = role(p);
                results.lock()[i] = Some(r);
                Ok(())
            })?;
            ids.push(id);
        }
        for id in ids {
            p.join(id);
        }
        Ok(())
    }
}

fn collect(
    what: &str,
    setup_result: &Mutex<Option<Outcome>>,
    results: &Mutex<Vec<Option<Outcome>>>,
    failure: Option<String>,
) -> Vec<Outcome> {
    if let Some(Err(e)) = setup_result.lock().take() {
        return vec![Err(format!("setup failed ({what}): {e}"))];
    }
    let results = std::mem::take(&mut *results.lock());
    results
        .into_iter()
        .map(|r| match r {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("{what}: {e}")),
            None => Err(format!(
                "{what}: role did not finish (panicked, killed or stuck){}",
                failure
                    .as_deref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            )),
        })
        .collect()
}

fn run_once(
    seed: u64,
    scheduler: SchedulerKind,
    setup: Role<Proc>,
    roles: Vec<Role<Proc>>,
) -> Vec<Outcome> {
    let results = Arc::new(Mutex::new(vec![None; roles.len()]));
    let setup_result = Arc::new(Mutex::new(None));
    let mut sim = Sim::builder().seed(seed).scheduler(scheduler).build();
    sim.spawn(
        "setup",
        setup_then_roles(
            setup,
            roles,
            Arc::clone(&setup_result),
            Arc::clone(&results),
        ),
    );
    let failure = sim.run().err().map(|f| f.to_string());
    collect(&format!("seed {seed}"), &setup_result, &results, failure)
}

/// Runs conformance cases on [`Threaded`]: the same `Proc` handle on OS
/// threads, so the wrapper that adds tracing and scheduling points is
/// checked against the kernel's semantics outside the simulator too.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadedBackend;

impl Backend for ThreadedBackend {
    type Process = Proc;

    fn skip(&self, case: &str) -> Option<&'static str> {
        // Racy on threads too, only rarely lost: skipped so CI cannot flake.
        racy_reason(case)
    }

    fn run(&self, setup: Role<Proc>, roles: Vec<Role<Proc>>) -> Vec<Outcome> {
        let results = Arc::new(Mutex::new(vec![None; roles.len()]));
        let setup_result = Arc::new(Mutex::new(None));
        let world = Threaded::new();
        let id = world.spawn(
            "setup",
            setup_then_roles(
                setup,
                roles,
                Arc::clone(&setup_result),
                Arc::clone(&results),
            ),
        );
        let status = world.join(id);
        let _ = world.join_all();
        let failure = (!status.is_success()).then(|| status.to_string());
        collect("threaded", &setup_result, &results, failure)
    }
}

// ----- async processes --------------------------------------------------------

/// Runs conformance cases as async processes ([`Sim::spawn_async`]).
///
/// The suite's roles are blocking code written against [`Ipc`]; an async
/// process has no stack to block on. So each role runs as a generator
/// inside its async process: its code runs on a coroutine of its own
/// whose every [`Ipc`] call ([`AsyncRole`]) hands the operation to the
/// async process and waits; the process makes it with the matching
/// [`AsyncIpc`] future, awaited under the simulator's scheduler like any
/// other, and hands the result back. The cases are the suite's own,
/// unchanged; every operation they make is an async process's operation
/// (scheduling points, waits, wakes, timeouts, traces).
#[derive(Clone, Debug, Default)]
pub struct AsyncBackend {
    /// The run's seed.
    pub seed: u64,
    /// The scheduling policy.
    pub scheduler: SchedulerKind,
}

impl AsyncBackend {
    /// The random scheduler with this seed.
    pub fn seed(seed: u64) -> AsyncBackend {
        AsyncBackend {
            seed,
            scheduler: SchedulerKind::Random,
        }
    }
    /// This scheduler with this seed.
    pub fn with_scheduler(seed: u64, scheduler: SchedulerKind) -> AsyncBackend {
        AsyncBackend { seed, scheduler }
    }
}

/// An operation a role hands its async process: the future that makes it
/// (and leaves the result for the role).
type Call = Box<dyn FnOnce(Rc<AsyncProc>) -> Pin<Box<dyn Future<Output = ()>>>>;

/// The [`Ipc`] handle of a conformance role run by an async process
/// ([`AsyncBackend`]): every call is made by the process, as a future.
pub struct AsyncRole {
    pid: Pid,
    /// The yielder of the coroutine the role's code runs on. A raw pointer
    /// so the handle has no lifetime (the suite needs a `'static` type).
    yielder: *const Yielder<(), Call>,
}

impl std::fmt::Debug for AsyncRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRole").field("pid", &self.pid).finish()
    }
}

impl AsyncRole {
    /// Hands `op` to the async process and returns what its future gave.
    fn call<R, Fut>(&self, op: impl FnOnce(Rc<AsyncProc>) -> Fut + 'static) -> R
    where
        R: 'static,
        Fut: Future<Output = R> + 'static,
    {
        let slot = Rc::new(Cell::new(None));
        let out = Rc::clone(&slot);
        let call: Call = Box::new(move |p| {
            Box::pin(async move {
                out.set(Some(op(p).await));
            })
        });
        // SAFETY: an `AsyncRole` is made inside its coroutine's body from
        // the `&Yielder` that body received, and lent to the role's code by
        // reference for the duration of the body only (`drive`); it is
        // neither `Clone`, `Send` nor `Sync` (it holds a raw pointer), so
        // this runs on the coroutine's own stack while the yielder lives.
        unsafe { (*self.yielder).suspend(call) };
        slot.take()
            .expect("the async process makes every call it is handed")
    }
}

/// Runs `role` in the async process `p` (see [`AsyncBackend`]).
async fn drive(p: Rc<AsyncProc>, role: Role<AsyncRole>) -> Outcome {
    let pid = p.pid();
    let mut co = Coroutine::new(move |yielder: &Yielder<(), Call>, ()| {
        role(&AsyncRole {
            pid,
            yielder: std::ptr::from_ref(yielder),
        })
    });
    loop {
        match co.resume(()) {
            CoroutineResult::Yield(call) => call(Rc::clone(&p)).await,
            CoroutineResult::Return(outcome) => return outcome,
        }
    }
}

/// The operations whose arguments are all owned, handed over as they are.
macro_rules! forward {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.call(move |p| async move { AsyncIpc::$name(&*p $(, $arg)*).await })
            }
        )*
    };
}

impl Ipc for AsyncRole {
    fn pid(&self) -> Pid {
        self.pid
    }

    forward! {
        fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError>;
        fn port_set_allocate(&self) -> Result<PortName, IpcError>;
        fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError>;
        fn port_set_remove(&self, member: PortName) -> Result<(), IpcError>;
        fn make_right(&self, name: PortName, disposition: Disposition) -> Result<PortName, IpcError>;
        fn deallocate(&self, name: PortName) -> Result<(), IpcError>;
        fn destroy(&self, name: PortName) -> Result<(), IpcError>;
        fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError>;
        fn rights(&self, name: PortName) -> Result<RightSet, IpcError>;
        fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError>;
        fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError>;
        fn request_notification(&self, name: PortName, kind: NotifyKind, notify: PortName) -> Result<(), IpcError>;
        fn send_with(&self, dest: PortName, msg: Message, on_full: OnFull) -> Result<Sent, SendError>;
        fn receive_with(&self, source: PortName, wait: Wait) -> Result<Message, ReceiveError>;
        fn call_with(&self, dest: PortName, msg: Message, wait: Wait) -> Result<Message, CallError>;
        fn send_to_with(&self, pid: Pid, msg: Message, on_full: OnFull) -> Result<Sent, SendError>;
        fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError>;
        fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError>;
        fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError>;
        fn mailbox_grant(&self, mailbox: PortName, pid: Pid, access: Access) -> Result<(), IpcError>;
        fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError>;
        fn peek(&self, source: PortName) -> Result<Message, ReceiveError>;
        fn close(&self, name: PortName) -> Result<(), IpcError>;
    }

    fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        let sources = sources.to_vec();
        self.call(move |p| async move { p.select_with(&sources, wait).await })
    }
    fn select_first_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        let sources = sources.to_vec();
        self.call(move |p| async move { p.select_first_with(&sources, wait).await })
    }
    fn receive_matching_with(
        &self,
        source: PortName,
        filter: &Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let filter = filter.clone();
        self.call(move |p| async move { p.receive_matching_with(source, &filter, wait).await })
    }
    fn mailbox_create(&self, name: &str, config: MailboxConfig) -> Result<PortName, IpcError> {
        let name = name.to_string();
        self.call(move |p| async move { p.mailbox_create(&name, config).await })
    }
    fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError> {
        let name = name.to_string();
        self.call(move |p| async move { p.mailbox_open(&name).await })
    }
    fn register(&self, service: &str, right: PortName) -> Result<(), IpcError> {
        let service = service.to_string();
        self.call(move |p| async move { p.register(&service, right).await })
    }
    fn unregister(&self, service: &str) -> Result<(), IpcError> {
        let service = service.to_string();
        self.call(move |p| async move { p.unregister(&service).await })
    }
    fn look_up(&self, service: &str) -> Result<PortName, IpcError> {
        let service = service.to_string();
        self.call(move |p| async move { p.look_up(&service).await })
    }
}

impl Backend for AsyncBackend {
    type Process = AsyncRole;

    fn skip(&self, case: &str) -> Option<&'static str> {
        racy_reason(case)
    }

    fn run(&self, setup: Role<AsyncRole>, roles: Vec<Role<AsyncRole>>) -> Vec<Outcome> {
        let results = Arc::new(Mutex::new(vec![None; roles.len()]));
        let setup_result = Arc::new(Mutex::new(None));
        let mut sim = Sim::builder()
            .seed(self.seed)
            .scheduler(self.scheduler.clone())
            .build();
        let (results2, setup_result2) = (Arc::clone(&results), Arc::clone(&setup_result));
        let spawned = sim.spawn_async("setup", &[], move |p| async move {
            let p = Rc::new(p);
            let r = drive(Rc::clone(&p), setup).await;
            let ok = r.is_ok();
            *setup_result2.lock() = Some(r);
            if !ok {
                return Ok(());
            }
            let mut ids = Vec::new();
            for (i, role) in roles.into_iter().enumerate() {
                let results = Arc::clone(&results2);
                let id = p
                    .spawn_async(&format!("role{i}"), &[], move |p| async move {
                        let r = drive(Rc::new(p), role).await;
                        results.lock()[i] = Some(r);
                        Ok(())
                    })
                    .await?;
                ids.push(id);
            }
            for id in ids {
                p.join(id).await;
            }
            Ok(())
        });
        if let Err(e) = spawned {
            return vec![Err(format!("the setup process could not start: {e}"))];
        }
        let failure = sim.run().err().map(|f| f.to_string());
        collect(
            &format!("async, seed {}", self.seed),
            &setup_result,
            &results,
            failure,
        )
    }
}
