//! The simulator backend: the deterministic simulator, virtual time.
//!
//! Ports are made with `Sim::port` and handed to their holders as
//! inherited rights; system mailboxes with `Sim::mailbox`; mailboxes with
//! an owner or access lists are created in the kernel for the owning task
//! before the run starts, so nobody can race their creation. A
//! [`QueueSampler`] watches every queue, and the declared invariants become
//! the simulator's invariants (after every step) and end checks. Phases:
//! set up ([`setup_sim`]: queues, processes, faults, invariants), run
//! (`Sim::run`, which ends by itself: every wait is in virtual time),
//! summarise ([`summarize`]).

use std::sync::Arc;

use mkipc_kernel::ipc::Owner;
use mkipc_kernel::name::Access;
use mkipc_kernel::{CarriedRight, IpcError, MailboxConfig, Pid, PortName};
use mkipc_sim::machine::YieldIs;
use mkipc_sim::{Failure, FailureReason, ProcId, Report, Schedule, SchedulerKind, Sim, SimBuilder};

use super::{Backend, BackendKind, RunError, Unsupported};
use crate::sampler::{QueueKey, QueueSampler, QueueSeries};
use crate::scenario::interp::{ScriptMachine, Shared};
use crate::scenario::report::{InvariantResult, ProcessResult, QueueResult, RunResult};
use crate::scenario::run::{inherited_rights, lost_message, ms, port_ids, totals};
use crate::scenario::{mech, FaultWhen, Op, QueueKind, Scenario};

/// The simulator backend ([`Backend`]): it runs every construct.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimBackend;

impl Backend for SimBackend {
    type Options = RunOptions;
    type Outcome = SimOutcome;
    fn name(&self) -> BackendKind {
        BackendKind::Sim
    }
    fn check(&self, _scn: &Scenario) -> Result<(), Unsupported> {
        Ok(())
    }
    fn run(&self, scn: &Scenario, opts: &RunOptions) -> Result<SimOutcome, RunError> {
        run_sim(scn, opts)
    }
}

fn setup_err(scn: &Scenario, what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::setup(scn, BackendKind::Sim, what, e)
}

/// How to run a scenario on the simulator.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The seed (default: the scenario's).
    pub seed: Option<u64>,
    /// The scheduling policy (default: random).
    pub scheduler: Option<SchedulerKind>,
    /// A recorded schedule to replay (overrides seed and scheduler).
    pub replay: Option<Schedule>,
}

/// What a simulated scenario run needs after `Sim::run`.
#[derive(Debug)]
pub struct SimHandles {
    shared: Arc<Shared>,
    sampler: QueueSampler,
}

/// A finished simulated run.
#[derive(Debug)]
pub struct SimOutcome {
    /// The summary.
    pub result: RunResult,
    /// The simulator's report (with the trace).
    pub report: Report,
    /// Queue lengths over time, per queue.
    pub series: Vec<QueueSeries>,
}
/// Builds the run of `scn` on a fresh simulator from `builder`.
pub fn build_sim(scn: &Arc<Scenario>, builder: SimBuilder) -> Result<(Sim, SimHandles), RunError> {
    let mut sim = builder.build();
    let handles = setup_sim(scn, &mut sim)?;
    Ok((sim, handles))
}

/// Sets the run of `scn` up on a fresh `sim` (for `Explorer`, which builds the `Sim`).
///
/// Every script runs stackless: the simulator steps its machine itself,
/// with no coroutine, and the schedule is the one a coroutine gets (the
/// interpreter takes each mid-statement IPC call's scheduling point first,
/// [`Ctx::ipc_point`](mkipc_sim::machine::Ctx::ipc_point), and the
/// stackless runner makes a `call` as one operation). Under DPOR
/// exploration the simulator runs machines on coroutines itself.
pub fn setup_sim(scn: &Arc<Scenario>, sim: &mut Sim) -> Result<SimHandles, RunError> {
    let shared = Arc::new(Shared::new(Arc::clone(scn), false));
    setup_sim_with(scn, sim, shared, &|sim, name, inherit, make| {
        sim.spawn_machine_with(name, inherit, YieldIs::NoOp, make)
    })
}

/// Starts a script's process on the simulator: its name, its inherited
/// rights and what builds its machine from them.
pub(crate) type SpawnScript<'a> = &'a dyn Fn(
    &mut Sim,
    &str,
    &[CarriedRight],
    Box<dyn FnOnce(&[CarriedRight]) -> ScriptMachine + Send>,
) -> Result<ProcId, IpcError>;

/// [`setup_sim`] with the run's `shared` state and a way to start each
/// script's process (tests run the machine with other drivers).
pub(crate) fn setup_sim_with(
    scn: &Arc<Scenario>,
    sim: &mut Sim,
    shared: Arc<Shared>,
    spawn: SpawnScript<'_>,
) -> Result<SimHandles, RunError> {
    let mut port_names: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    let mut keys = Vec::new();
    for (i, q) in scn.queues.iter().enumerate() {
        match &q.kind {
            QueueKind::Port { .. } => {
                let before: Vec<u64> = port_ids(sim.kernel());
                let name = sim
                    .port(&q.name, q.capacity)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                mech::prime(sim.kernel(), sim.init_pid(), q, name)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                port_names[i] = Some(name);
                let id = port_ids(sim.kernel())
                    .into_iter()
                    .find(|id| !before.contains(id));
                keys.push((
                    q.name.clone(),
                    id.map_or(QueueKey::QueueId(u64::MAX), QueueKey::QueueId),
                ));
            }
            QueueKind::Mailbox {
                owner: None,
                senders: None,
                receivers: None,
            } => {
                let name = sim
                    .mailbox(&q.name, q.capacity)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                mech::prime(sim.kernel(), sim.init_pid(), q, name)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                keys.push((q.name.clone(), QueueKey::Mailbox(q.name.clone())));
            }
            QueueKind::Mailbox { .. } => {
                keys.push((q.name.clone(), QueueKey::Mailbox(q.name.clone())));
            }
        }
    }
    let mut ids: Vec<Option<ProcId>> = vec![None; scn.processes.len()];
    for (i, p) in scn.processes.iter().enumerate() {
        if p.spawned {
            continue;
        }
        let inherit = inherited_rights(p, &port_names);
        let s = Arc::clone(&shared);
        let make =
            Box::new(move |rights: &[CarriedRight]| ScriptMachine::from_rights(&s, i, rights));
        let id = spawn(sim, &p.name, &inherit, make).map_err(|e| setup_err(scn, &p.name, e))?;
        ids[i] = Some(id);
        if let Some(pid) = sim.pid(id) {
            shared.set_pid(i, pid);
        }
    }
    // Mailboxes that need a pid: an owner, or an access list.
    let pid_of = |i: usize| -> Pid { ids[i].and_then(|id| sim.pid(id)).unwrap_or(Pid(0)) };
    for q in &scn.queues {
        let QueueKind::Mailbox {
            owner,
            senders,
            receivers,
        } = &q.kind
        else {
            continue;
        };
        if owner.is_none() && senders.is_none() && receivers.is_none() {
            continue;
        }
        let default_access = Access {
            send: senders.is_none(),
            receive: receivers.is_none(),
        };
        let mut config = MailboxConfig::new(q.capacity)
            .owner(if owner.is_some() {
                Owner::Creator
            } else {
                Owner::System
            })
            .default_access(default_access);
        for (i, p) in scn.processes.iter().enumerate() {
            if p.spawned || Some(i) == *owner {
                continue;
            }
            let access = Access {
                send: senders.as_ref().is_none_or(|l| l.contains(&i)),
                receive: receivers.as_ref().is_none_or(|l| l.contains(&i)),
            };
            if access != default_access {
                config = config.grant(pid_of(i), access);
            }
        }
        let creator = owner.map_or(sim.init_pid(), pid_of);
        sim.kernel()
            .mailbox_create(creator, &q.name, config)
            .map_err(|e| setup_err(scn, &q.name, e))?;
    }
    let sampler = QueueSampler::attach(sim, keys);
    for f in &scn.faults {
        let Some(id) = ids[f.proc] else { continue };
        match f.when {
            FaultWhen::At(t) => sim.kill_at_time(id, t),
            FaultWhen::Step(s) => sim.kill_at_step(id, s),
            FaultWhen::Chance(c) => sim.kill_randomly(id, c),
        }
    }
    for &(q, k) in &scn.invariants.never_exceeds {
        let s = sampler.clone();
        let name = &scn.queues[q].name;
        // One queue's length: a queue invariant, which keeps partial-order
        // reduction on in `mkipc explore --exhaustive`.
        sim.queue_invariant(&format!("{name} never exceeds {k}"), move |_| {
            let len = s.len(q);
            if len > k {
                Err(format!("it holds {len} messages"))
            } else {
                Ok(())
            }
        });
    }
    if has_checks(scn) {
        // A failed `assert`/`expect` fails the run at once, with a replay line.
        // It is decided inside one process's own step, from its local state
        // and what it received, which every schedule equivalent under the
        // reduction gives it alike: so it too is registered as a local check
        // (`queue_invariant`) and keeps partial-order reduction on.
        let s = Arc::clone(&shared);
        sim.queue_invariant(CHECKS, move |_| match s.check_failure() {
            Some(m) => Err(m),
            None => Ok(()),
        });
    }
    if scn.invariants.no_message_lost {
        let s = Arc::clone(&shared);
        sim.check_at_end("no message lost", move |_| {
            let c = s.counters();
            lost_message(c.sent, c.received, c.dropped)
        });
    }
    Ok(SimHandles { shared, sampler })
}

/// The simulator invariant that carries a failed `assert` or `expect`.
const CHECKS: &str = "the scripts' checks (assert, expect)";

/// Whether any script has an `assert` or an `expect`.
fn has_checks(scn: &Scenario) -> bool {
    scn.processes.iter().any(|p| {
        crate::scenario::walk(&p.script)
            .iter()
            .any(|s| matches!(s.op, Op::Assert { .. } | Op::Receive { expect: true, .. }))
    })
}

/// The builder `opts` describe for `scn`.
pub(crate) fn builder_for(scn: &Scenario, opts: &RunOptions) -> SimBuilder {
    let mut b = Sim::builder().seed(opts.seed.unwrap_or(scn.seed));
    if let Some(kind) = &opts.scheduler {
        b = b.scheduler(kind.clone());
    }
    if let Some(s) = &opts.replay {
        b = b.replay(s.clone());
    }
    b
}

/// Runs `scn` once on the simulator.
pub fn run_sim(scn: &Scenario, opts: &RunOptions) -> Result<SimOutcome, RunError> {
    let scn = Arc::new(scn.clone());
    let (sim, handles) = build_sim(&scn, builder_for(&scn, opts))?;
    finish_sim(&scn, sim, handles)
}

/// [`run_sim`] with the run's `shared` state and its own way to start
/// each script's process ([`setup_sim_with`]).
#[cfg(test)]
pub(crate) fn run_sim_with(
    scn: &Scenario,
    opts: &RunOptions,
    shared: impl FnOnce(Arc<Scenario>) -> Shared,
    spawn: SpawnScript<'_>,
) -> Result<SimOutcome, RunError> {
    let scn = Arc::new(scn.clone());
    let mut sim = builder_for(&scn, opts).build();
    let shared = Arc::new(shared(Arc::clone(&scn)));
    let handles = setup_sim_with(&scn, &mut sim, shared, spawn)?;
    finish_sim(&scn, sim, handles)
}

/// Runs a simulator set up for `scn` and summarises the run.
fn finish_sim(scn: &Arc<Scenario>, sim: Sim, handles: SimHandles) -> Result<SimOutcome, RunError> {
    let (report, failure) = match sim.run() {
        Ok(r) => (r, None),
        Err(f) => {
            let Failure { reason, report } = f;
            (*report, Some(reason))
        }
    };
    let series = handles.sampler.series();
    let result = summarize(scn, &handles, &report, failure.as_ref(), &series);
    Ok(SimOutcome {
        result,
        report,
        series,
    })
}

fn summarize(
    scn: &Scenario,
    handles: &SimHandles,
    report: &Report,
    failure: Option<&FailureReason>,
    series: &[QueueSeries],
) -> RunResult {
    let counters = handles.shared.counters().clone();
    let mut processes: Vec<ProcessResult> = report
        .procs
        .iter()
        .map(|p| {
            // The kernel messages of shared variables, locks and end of
            // file are not the run's messages.
            let (mech_sent, mech_received) = scn
                .process_index(&p.name)
                .and_then(|i| counters.mech.get(i).copied())
                .unwrap_or_default();
            (p, mech_sent, mech_received)
        })
        .map(|(p, mech_sent, mech_received)| ProcessResult {
            name: p.name.clone(),
            status: p.status.to_string(),
            sent: p.stats.sent.saturating_sub(mech_sent),
            // Less the mechanisms' own messages and the kernel
            // notifications a `select` took (no messages of the scenario).
            received: p
                .stats
                .received
                .saturating_sub(mech_received)
                .saturating_sub(
                    scn.process_index(&p.name)
                        .and_then(|i| counters.notified.get(i))
                        .copied()
                        .unwrap_or(0),
                ),
            drops: p.stats.drops,
            blocked_ms: Some(ms(p.stats.blocked)),
            working_ms: Some(ms(p.stats.working)),
            unknown: None,
        })
        .collect();
    crate::scenario::report::name_instances(&mut processes);
    let queues = scn
        .queues
        .iter()
        .zip(series)
        .zip(&counters.queues)
        .map(|((q, s), c)| QueueResult {
            name: q.name.clone(),
            kind: q.kind_name().to_string(),
            capacity: q.capacity.to_string(),
            sent: c.sent,
            dropped: s.dropped,
            received: c.received,
            max_len: Some(s.max),
            mean_len: Some(s.mean(report.end_time)),
            mean_latency_ms: (c.received > 0).then(|| ms(c.latency_total) / c.received as f64),
        })
        .collect();
    let invariants = invariant_results(scn, failure);
    RunResult {
        scenario: scn.name.clone(),
        file: scn.file.clone(),
        backend: "sim".into(),
        seed: Some(report.seed),
        scheduler: Some(report.scheduler.to_string()),
        steps: Some(report.steps),
        time_ms: ms(report.end_time),
        ok: failure.is_none(),
        failure: failure.map(|f| f.to_string()),
        deadlock: failure.is_some_and(|f| f.is_deadlock()),
        schedule: failure.map(|_| report.schedule.to_string()),
        processes,
        queues,
        messages: totals(&counters),
        invariants,
        run_id: None,
        time_scale: None,
        trace_note: report.trace.truncation_note(),
    }
}

fn invariant_results(scn: &Scenario, failure: Option<&FailureReason>) -> Vec<InvariantResult> {
    let mut names: Vec<String> = scn
        .invariants
        .never_exceeds
        .iter()
        .map(|&(q, k)| format!("{} never exceeds {k}", scn.queues[q].name))
        .collect();
    if scn.invariants.no_message_lost {
        names.push("no message lost".into());
    }
    names
        .into_iter()
        .map(|name| {
            let message = match failure {
                Some(FailureReason::Invariant {
                    name: n,
                    message,
                    step,
                }) if *n == name => Some(format!("after step {step}: {message}")),
                Some(FailureReason::FinalCheck { name: n, message }) if *n == name => {
                    Some(message.clone())
                }
                _ => None,
            };
            InvariantResult {
                held: message.is_none(),
                name,
                message,
            }
        })
        .collect()
}

/// Spawns `n` copies of `scn`'s process `process` on `sim`, stackless, each
/// inheriting the rights `rights` makes for it (in the order the process
/// declares them): many processes of one script, past a file's
/// [`MAX_PROCESSES`](crate::scenario::MAX_PROCESSES) (the idle-memory
/// benchmark, `examples/idle_memory.rs`). The copies share one run state:
/// counters and figures are the process's, summed.
pub fn spawn_script_copies(
    scn: &Arc<Scenario>,
    sim: &mut Sim,
    process: usize,
    n: usize,
    mut rights: impl FnMut(&mut Sim) -> Result<Vec<CarriedRight>, IpcError>,
) -> Result<(), RunError> {
    let shared = Arc::new(Shared::new(Arc::clone(scn), false));
    let name = match scn.processes.get(process) {
        Some(p) => p.name.clone(),
        None => {
            return Err(setup_err(
                scn,
                "the copies",
                format!("no process #{process}"),
            ))
        }
    };
    for _ in 0..n {
        let inherit = rights(sim).map_err(|e| setup_err(scn, &name, e))?;
        let s = Arc::clone(&shared);
        sim.spawn_machine_with(&name, &inherit, YieldIs::NoOp, move |r| {
            ScriptMachine::from_rights(&s, process, r)
        })
        .map_err(|e| setup_err(scn, &name, e))?;
    }
    Ok(())
}
