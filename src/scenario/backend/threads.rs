//! The threads backend: kernel tasks on OS threads, real time.
//!
//! Phases: [`ThreadsBackend::check`] (what needs pids before the run, or
//! the simulator's scheduler, is refused), [`setup`] (the queues, made by a
//! setup task, and the [`Watch`]), [`spawn`] (one thread per process that
//! starts with the run), [`wait`] (for every thread, at most `--timeout`:
//! then every process still running is described, released and joined),
//! [`summarise`] (counters, queue maxima and invariants into a
//! [`RunResult`]).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mkipc_kernel::ipc::Owner;
use mkipc_kernel::{Kernel, MailboxConfig, Pid, PortName};
use mkipc_sim::{ExitStatus, FailureReason, Threaded};

use super::{Backend, BackendKind, RunError, Unsupported};
use crate::sampler::QueueKey;
use crate::scenario::interp::{ScriptMachine, Shared};
use crate::scenario::record::Recorder;
use crate::scenario::report::{InvariantResult, ProcessResult, QueueResult, RunResult};
use crate::scenario::run::{inherited_rights, lost_message, ms, port_ids, script_on_proc, totals};
use crate::scenario::{mech, MechOp, Op, QueueKind, Scenario};

/// How long the threads backend lets a run take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a scenario on threads.
#[derive(Clone, Copy, Debug)]
pub struct ThreadsOptions {
    /// Processes still running after this long are described, released
    /// and joined, and the run fails as timed out.
    pub timeout: Duration,
}

impl Default for ThreadsOptions {
    fn default() -> Self {
        ThreadsOptions {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The threads backend ([`Backend`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadsBackend;

impl Backend for ThreadsBackend {
    type Options = ThreadsOptions;
    type Outcome = RunResult;
    fn name(&self) -> BackendKind {
        BackendKind::Threads
    }
    fn check(&self, scn: &Scenario) -> Result<(), Unsupported> {
        check_threads(scn)
    }
    fn run(&self, scn: &Scenario, opts: &ThreadsOptions) -> Result<RunResult, RunError> {
        run_threads(scn, opts.timeout)
    }
}

fn setup_err(scn: &Scenario, what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::setup(scn, BackendKind::Threads, what, e)
}

/// What the threads backend cannot run, before anything starts. Features
/// that need pids before the run starts (mailbox owners, access lists) or
/// the simulator's scheduler (faults, servers) are refused.
pub fn check_threads(scn: &Scenario) -> Result<(), Unsupported> {
    let unsupported = |why: String| Err(Unsupported::new(scn, BackendKind::Threads, None, why));
    if !scn.faults.is_empty() {
        return unsupported("faults are injected by the simulator's scheduler".into());
    }
    if let Some(q) = scn.queues.iter().find(|q| q.is_pipe()) {
        return unsupported(format!(
            "{} `{}`: the threads backend's setup task keeps a send right to every port until \
             the run is joined, so its end of file would never come (use --backend sim)",
            q.kind_name(),
            q.name
        ));
    }
    if let Some(why) = threads_refusal(scn) {
        return unsupported(why);
    }
    if let Some(p) = scn.processes.iter().find(|p| p.may_wait_forever()) {
        let what = if p.server {
            "`server = true`"
        } else {
            "an `end:` label"
        };
        return unsupported(format!(
            "{what} on `{}`: only the simulator knows when every other process \
             has ended and a server may be left waiting (use --backend sim)",
            p.name
        ));
    }
    if let Some(q) = scn.queues.iter().find(|q| q.has_access_rules()) {
        return unsupported(format!(
            "mailbox `{}` has an owner or access lists, which need every pid before the run starts",
            q.name
        ));
    }
    Ok(())
}

/// Runs `scn` on OS threads (real time, no determinism), for at most
/// `timeout`: then every process still running is described (what it is
/// blocked on, from [`Kernel::blocked_on`]), its kernel task exited (its
/// blocked operation fails with `TaskExited`, its pauses end) and its
/// thread joined, and the run fails as timed out. What
/// [`check_threads`] refuses is an error before anything starts.
pub fn run_threads(scn: &Scenario, timeout: Duration) -> Result<RunResult, RunError> {
    run_threads_with(scn, timeout, None)
}

/// [`run_threads`], with the run's trace: every process's sends, receives,
/// calls, pauses and exit, timed in real time since the start
/// (`crate::scenario::record`).
pub fn run_threads_traced(
    scn: &Scenario,
    timeout: Duration,
) -> Result<(RunResult, mkipc_sim::Trace), RunError> {
    let rec = Arc::new(Recorder::new(Instant::now()));
    let result = run_threads_with(scn, timeout, Some(Arc::clone(&rec)))?;
    Ok((result, rec.finish()))
}

fn run_threads_with(
    scn: &Scenario,
    timeout: Duration,
    rec: Option<Arc<Recorder>>,
) -> Result<RunResult, RunError> {
    check_threads(scn)?;
    let scn = Arc::new(scn.clone());
    let mut world = setup(&scn)?;
    world.rec = rec;
    let start = Instant::now();
    spawn(&world)?;
    let waited = wait(&world, timeout)?;
    let elapsed = start.elapsed();
    Ok(summarise(&world, waited, elapsed))
}

/// A threaded run set up: its world, its queues and what watches them.
struct World {
    scn: Arc<Scenario>,
    threaded: Mutex<Option<Threaded>>,
    kernel: Kernel,
    /// The task that made the queues (it holds their first rights).
    setup: Pid,
    port_names: Vec<Option<PortName>>,
    watch: Arc<Watch>,
    shared: Arc<Shared>,
    /// Where the processes' events go, on a traced run.
    rec: Option<Arc<Recorder>>,
}

/// Phase 1: the world, every queue, the watch and the run's shared state.
fn setup(scn: &Arc<Scenario>) -> Result<World, RunError> {
    let threaded = Threaded::new();
    let kernel = threaded.kernel().clone();
    let setup = kernel.create_task();
    let mut port_names: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    let mut keys = Vec::with_capacity(scn.queues.len());
    for (i, q) in scn.queues.iter().enumerate() {
        match q.kind {
            QueueKind::Port { .. } => {
                let before = port_ids(&kernel);
                port_names[i] = Some(
                    threaded
                        .port(q.capacity)
                        .map_err(|e| setup_err(scn, &q.name, e))?,
                );
                let id = port_ids(&kernel)
                    .into_iter()
                    .find(|id| !before.contains(id));
                keys.push(id.map_or(QueueKey::QueueId(u64::MAX), QueueKey::QueueId));
            }
            QueueKind::Mailbox { .. } => {
                let config = MailboxConfig::new(q.capacity).owner(Owner::System);
                let name = kernel
                    .mailbox_create(setup, &q.name, config)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                mech::prime(&kernel, setup, q, name).map_err(|e| setup_err(scn, &q.name, e))?;
                keys.push(QueueKey::Mailbox(q.name.clone()));
            }
        }
    }
    let watch = Arc::new(Watch {
        kernel: kernel.clone(),
        max: Mutex::new(vec![0; keys.len()]),
        keys,
        tasks: Mutex::new(Vec::new()),
    });
    let observer = Arc::clone(&watch);
    let shared =
        Arc::new(Shared::new(Arc::clone(scn), true).before_destroy(move || observer.observe()));
    Ok(World {
        scn: Arc::clone(scn),
        threaded: Mutex::new(Some(threaded)),
        kernel,
        setup,
        port_names,
        watch,
        shared,
        rec: None,
    })
}

/// Phase 2: a thread for every process that starts with the run. If one
/// cannot start, what already runs is released before the error.
fn spawn(w: &World) -> Result<(), RunError> {
    let guard = w.threaded.lock().unwrap_or_else(|p| p.into_inner());
    let Some(threaded) = guard.as_ref() else {
        return Err(RunError::Host {
            file: w.scn.file.clone(),
            message: "the threaded run was already joined".into(),
        });
    };
    for (i, p) in w.scn.processes.iter().enumerate() {
        if p.spawned {
            continue;
        }
        let inherit = inherited_rights(p, &w.port_names);
        let s = Arc::clone(&w.shared);
        let watch = Arc::clone(&w.watch);
        let rec = w.rec.clone();
        let spawned = threaded.spawn_with(&p.name, &inherit, move |proc| {
            let machine = ScriptMachine::from_rights(&s, i, proc.inherited());
            script_on_proc(proc, machine, Some((s, watch, rec)))
        });
        if let Err(e) = spawned {
            w.shared.stop();
            for (_, _, pid) in w.watch.tasks() {
                w.kernel.exit_task(pid);
            }
            return Err(setup_err(&w.scn, &p.name, e));
        }
    }
    Ok(())
}

/// What waiting for the threads gave.
struct Waited {
    /// Every process instance's name and how it ended (by `ProcId`).
    statuses: Vec<(String, ExitStatus)>,
    /// At the timeout: the instances still running (`ProcId`, what they
    /// were blocked on) and the failure that says so.
    timed_out: Option<(Vec<(u32, String)>, String)>,
}

/// Phase 3: waits for every thread, at most `timeout`; then describes what
/// still runs, releases it (scripts stop at their next statement, pauses
/// end, exiting a task fails its blocked send or receive) and waits
/// [`RELEASE_GRACE`] more for the threads to end.
fn wait(w: &World, timeout: Duration) -> Result<Waited, RunError> {
    let Some(threaded) = w.threaded.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return Err(RunError::Host {
            file: w.scn.file.clone(),
            message: "the threaded run was already joined".into(),
        });
    };
    // `join_all` has no deadline: it runs on a thread of its own, and this
    // one waits for its answer at most `timeout`.
    let (tx, rx) = mpsc::channel();
    let joiner = std::thread::Builder::new()
        .name("mkipc-join".into())
        .spawn(move || {
            let _ = tx.send(threaded.join_all());
        })
        .map_err(|e| RunError::Host {
            file: w.scn.file.clone(),
            message: format!("cannot start a thread: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(statuses) => {
            let _ = joiner.join();
            Ok(Waited {
                statuses,
                timed_out: None,
            })
        }
        Err(RecvTimeoutError::Disconnected) => Err(RunError::Host {
            file: w.scn.file.clone(),
            message: "the threaded run's joiner failed".into(),
        }),
        Err(RecvTimeoutError::Timeout) => Ok(release(w, timeout, &rx, joiner)),
    }
}

/// The timeout passed: describe, release and join what still runs.
fn release(
    w: &World,
    timeout: Duration,
    rx: &Receiver<Vec<(String, ExitStatus)>>,
    joiner: JoinHandle<()>,
) -> Waited {
    let (scn, kernel, watch) = (&w.scn, &w.kernel, &w.watch);
    watch.observe();
    let tasks = watch.tasks();
    let names: Vec<(Pid, String)> = tasks
        .iter()
        .map(|&(_, i, pid)| (pid, scn.processes[i].name.clone()))
        .collect();
    let mut running: Vec<(u32, String, String)> = tasks
        .iter()
        .filter(|&&(_, _, pid)| kernel.is_alive(pid))
        .map(|&(id, i, pid)| {
            (
                id,
                scn.processes[i].name.clone(),
                describe_wait(scn, kernel, pid, &watch.keys, &names),
            )
        })
        .collect();
    running.sort_by_key(|r| r.0);
    w.shared.stop();
    let released = Instant::now();
    let statuses = loop {
        for (_, _, pid) in watch.tasks() {
            kernel.exit_task(pid);
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(s) => break Some(s),
            Err(RecvTimeoutError::Timeout) if released.elapsed() < RELEASE_GRACE => {}
            Err(_) => break None,
        }
    };
    let list: Vec<String> = running
        .iter()
        .map(|(_, name, what)| format!("`{name}` {what}"))
        .collect();
    let mut why = format!(
        "timed out after {:?} with {} process(es) still running: {}; they were stopped \
         (a deadlock looks like this: `--backend sim` names the wait-for cycle; or raise --timeout)",
        timeout,
        running.len(),
        list.join("; ")
    );
    match statuses {
        Some(_) => {
            let _ = joiner.join();
        }
        None => why.push_str(&format!(
            "; some threads did not end within {RELEASE_GRACE:?} of being released"
        )),
    }
    Waited {
        statuses: statuses.unwrap_or_default(),
        timed_out: Some((
            running
                .into_iter()
                .map(|(id, _, what)| (id, what))
                .collect(),
            why,
        )),
    }
}

/// Phase 4: the run's figures, invariants and verdict.
fn summarise(w: &World, waited: Waited, elapsed: Duration) -> RunResult {
    let (scn, watch, shared) = (&w.scn, &w.watch, &w.shared);
    let Waited {
        statuses,
        timed_out,
    } = waited;
    watch.observe();
    w.kernel.exit_task(w.setup);
    let maxima = watch.max.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let counters = shared.counters().clone();
    let mut processes: Vec<ProcessResult> = statuses
        .iter()
        .enumerate()
        .map(|(id, (name, status))| {
            // Per instance: the three `worker`s of one script each report
            // their own counts (`id` is the instance's `ProcId`).
            let mine = counters.instances.get(id).copied().unwrap_or_default();
            let stopped = timed_out
                .as_ref()
                .and_then(|(running, _)| running.iter().find(|(r, _)| *r as usize == id));
            ProcessResult {
                name: name.clone(),
                status: match stopped {
                    Some((_, what)) => format!("timed out: {what}"),
                    None => status.to_string(),
                },
                sent: mine.sent,
                received: mine.received,
                drops: mine.drops,
                blocked_ms: None,
                working_ms: None,
                unknown: None,
            }
        })
        .collect();
    crate::scenario::report::name_instances(&mut processes);
    let queues = scn
        .queues
        .iter()
        .zip(&counters.queues)
        .zip(&maxima)
        .map(|((q, c), &max)| QueueResult {
            name: q.name.clone(),
            kind: q.kind_name().to_string(),
            capacity: q.capacity.to_string(),
            sent: c.sent,
            dropped: c.dropped,
            received: c.received,
            max_len: Some(max),
            mean_len: None,
            mean_latency_ms: (c.received > 0).then(|| ms(c.latency_total) / c.received as f64),
        })
        .collect();
    let mut invariants: Vec<InvariantResult> = scn
        .invariants
        .never_exceeds
        .iter()
        .map(|&(q, k)| {
            let max = maxima[q];
            InvariantResult {
                name: format!("{} never exceeds {k}", scn.queues[q].name),
                held: max <= k,
                message: (max > k).then(|| format!("it held {max} messages")),
            }
        })
        .collect();
    let mut failure = invariants.iter().find(|i| !i.held).map(|i| {
        format!(
            "invariant `{}` failed: {}",
            i.name,
            i.message.clone().unwrap_or_default()
        )
    });
    if scn.invariants.no_message_lost {
        let lost = lost_message(counters.sent, counters.received, counters.dropped);
        invariants.push(InvariantResult {
            name: "no message lost".into(),
            held: lost.is_ok(),
            message: lost.clone().err(),
        });
        if failure.is_none() {
            failure = lost.err();
        }
    }
    if failure.is_none() && timed_out.is_none() {
        failure = failed_process(scn, &statuses, &watch.tasks());
    }
    if let Some((_, why)) = timed_out {
        failure = Some(why);
    }
    if let Some(check) = shared.check_failure() {
        failure = Some(check);
    }
    RunResult {
        scenario: scn.name.clone(),
        file: scn.file.clone(),
        backend: "threads".into(),
        seed: None,
        scheduler: None,
        steps: None,
        time_ms: ms(elapsed),
        ok: failure.is_none(),
        failure,
        deadlock: false,
        schedule: None,
        processes,
        queues,
        messages: totals(&counters),
        invariants,
        run_id: None,
        time_scale: None,
        trace_note: None,
    }
}

/// How long a threaded run waits, after it timed out and released every
/// blocked process, for the threads to end.
const RELEASE_GRACE: Duration = Duration::from_secs(10);

/// What the threaded runner watches while the processes run: every task it
/// started (to describe and release them at the timeout) and the largest
/// length of every queue (the kernel keeps each queue's high-water mark;
/// it is read while the queue exists: as each process ends, before a
/// `destroy`, at the timeout and at the end; `never_exceeds` is checked on it).
pub(crate) struct Watch {
    kernel: Kernel,
    /// Per scenario queue: how its statistics are found.
    keys: Vec<QueueKey>,
    /// Per scenario queue: the largest length seen.
    max: Mutex<Vec<usize>>,
    /// Every process instance: (its `ProcId`, its scenario process, its pid).
    pub(crate) tasks: Mutex<Vec<(u32, usize, Pid)>>,
}

impl Watch {
    pub(crate) fn observe(&self) {
        let stats = self.kernel.queue_stats();
        let mut max = self.max.lock().unwrap_or_else(|p| p.into_inner());
        for (key, m) in self.keys.iter().zip(max.iter_mut()) {
            let found = stats.iter().find(|s| match key {
                QueueKey::QueueId(id) => s.kind == "port" && s.queue_id == *id,
                QueueKey::Mailbox(name) => s.kind == "mailbox" && s.label == *name,
            });
            if let Some(s) = found {
                *m = (*m).max(s.max_len);
            }
        }
    }

    pub(crate) fn tasks(&self) -> Vec<(u32, usize, Pid)> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a still-running process of a threaded run waits for, in words.
fn describe_wait(
    scn: &Scenario,
    kernel: &Kernel,
    pid: Pid,
    keys: &[QueueKey],
    names: &[(Pid, String)],
) -> String {
    let name_of = |pid: Pid| {
        names
            .iter()
            .find(|(p, _)| *p == pid)
            .map_or_else(|| format!("task {}", pid.0), |(_, n)| format!("`{n}`"))
    };
    let waits: Vec<String> = kernel
        .blocked_on(pid)
        .iter()
        .map(|b| {
            let verb = if b.sending {
                "sending to"
            } else {
                "receiving from"
            };
            if let Some(m) = &b.mailbox {
                return format!("{verb} mailbox `{m}`");
            }
            if let Some((from, to)) = b.link {
                let peer = if b.sending { to } else { from };
                return format!("{verb} {} (direct)", name_of(peer));
            }
            let queue = keys
                .iter()
                .position(|k| *k == QueueKey::QueueId(b.queue_id))
                .map_or_else(
                    || format!("port #{}", b.queue_id),
                    |q| format!("port `{}`", scn.queues[q].name),
                );
            format!("{verb} {queue}")
        })
        .collect();
    if waits.is_empty() {
        "not blocked in IPC (working or sleeping)".to_string()
    } else {
        format!("blocked {}", waits.join(" or "))
    }
}

/// The first process of a threaded run that ended with an error its
/// declaration does not expect (`expect_error = true`), said as the
/// simulator's `FailureReason::ProcessFailed` says it: the same model gets the same
/// verdict on both backends. `tasks` maps each `ProcId` to its declaration.
fn failed_process(
    scn: &Scenario,
    statuses: &[(String, ExitStatus)],
    tasks: &[(u32, usize, Pid)],
) -> Option<String> {
    statuses
        .iter()
        .enumerate()
        .find_map(|(id, (name, status))| {
            let expected = tasks
                .iter()
                .find(|&&(t, _, _)| t as usize == id)
                .is_some_and(|&(_, decl, _)| scn.processes[decl].expect_error);
            match status {
                ExitStatus::Failed { error, .. } if !expected => Some(
                    FailureReason::ProcessFailed {
                        proc: name.clone(),
                        error: error.clone(),
                    }
                    .to_string(),
                ),
                _ => None,
            }
        })
}

/// What of `scn` the threads backend cannot run, if anything. Every
/// statement is named (no catch-all), so a new one cannot pass unnoticed.
fn threads_refusal(scn: &Scenario) -> Option<String> {
    for p in &scn.processes {
        for s in crate::scenario::walk(&p.script) {
            let refused: Option<&str> = match &s.op {
                Op::Send { .. }
                | Op::SendVia { .. }
                | Op::Receive { .. }
                | Op::ReceiveVia { .. }
                | Op::SendTo { .. }
                | Op::ReceiveFrom { .. }
                | Op::ReceiveAny { .. }
                | Op::Call { .. }
                | Op::CallVia { .. }
                | Op::Reply { .. }
                | Op::Work(_)
                | Op::Sleep(_)
                | Op::Repeat(..)
                | Op::Forever(_)
                | Op::Spawn(_)
                | Op::Exit(_)
                | Op::Destroy(_)
                | Op::Assign { .. }
                | Op::If { .. }
                | Op::While { .. }
                | Op::Select(_)
                | Op::SelectAny(_)
                | Op::TrySend { .. }
                | Op::Assert { .. }
                | Op::Mech(
                    MechOp::Load { .. }
                    | MechOp::Store { .. }
                    | MechOp::Lock(_)
                    | MechOp::Unlock(_),
                ) => None,
                Op::Mech(MechOp::Close(_)) => Some(
                    "`close`: pipes and FIFOs need the simulator (the threads backend's setup \
                     task keeps a send right to every port, so end of file never comes)",
                ),
            };
            if let Some(why) = refused {
                return Some(format!("line {}: {why}", s.line));
            }
        }
    }
    None
}
