//! Setting a scenario up on a backend and collecting its [`RunResult`].
//!
//! On the simulator, ports are made with `Sim::port` and handed to their
//! holders as inherited rights; system mailboxes with `Sim::mailbox`;
//! mailboxes with an owner or access lists are created in the kernel for
//! the owning task before the run starts, so nobody can race their creation.
//! A [`QueueSampler`] watches every queue, and the declared invariants
//! become the simulator's invariants (after every step) and end checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mkipc_kernel::{Access, MailboxConfig, Owner, Pid, PortName};
use mkipc_sim::{
    Failure, FailureReason, Inherit, ProcId, Report, Schedule, SchedulerKind, Sim, SimBuilder,
    Threaded,
};

use super::interp::{run_process, Shared};
use super::report::{InvariantResult, MessageTotals, ProcessResult, QueueResult, RunResult};
use super::{FaultWhen, QueueKind, Right, Scenario};
use crate::sampler::{QueueKey, QueueSampler, QueueSeries};

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

/// The rights a process starts with, as the setup task's names for its ports
/// (the sim and threads runners both hand these to `spawn_with`).
fn inherited_rights(
    p: &super::Process,
    port_names: &[Option<PortName>],
) -> Vec<mkipc_kernel::CarriedRight> {
    p.rights
        .iter()
        .map(|(q, r)| {
            let name = port_names[*q].unwrap_or(PortName::NULL);
            match r {
                Right::Receive => Inherit::receive(name),
                Right::Send => Inherit::send(name),
            }
        })
        .collect()
}

fn setup_err(scn: &Scenario, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: setting up {what}: {e}", scn.file)
}

/// Builds the run of `scn` on a fresh simulator from `builder`.
pub fn build_sim(scn: &Arc<Scenario>, builder: SimBuilder) -> Result<(Sim, SimHandles), String> {
    let mut sim = builder.build();
    let handles = setup_sim(scn, &mut sim)?;
    Ok((sim, handles))
}

/// Sets the run of `scn` up on a fresh `sim` (for `Explorer`, which builds the `Sim`).
pub fn setup_sim(scn: &Arc<Scenario>, sim: &mut Sim) -> Result<SimHandles, String> {
    let shared = Arc::new(Shared::new(Arc::clone(scn), false));
    let mut port_names: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    let mut keys = Vec::new();
    for (i, q) in scn.queues.iter().enumerate() {
        match &q.kind {
            QueueKind::Port { .. } => {
                let before: Vec<u64> = port_ids(sim);
                let name = sim
                    .port(&q.name, q.capacity)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                port_names[i] = Some(name);
                let id = port_ids(sim).into_iter().find(|id| !before.contains(id));
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
                sim.mailbox(&q.name, q.capacity)
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
        let id = sim
            .spawn_with(&p.name, &inherit, move |proc| run_process(proc, s, i))
            .map_err(|e| setup_err(scn, &p.name, e))?;
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
        sim.invariant(&format!("{name} never exceeds {k}"), move |_| {
            let len = s.len(q);
            if len > k {
                Err(format!("it holds {len} messages"))
            } else {
                Ok(())
            }
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

fn lost_message(sent: u64, received: u64, dropped: u64) -> Result<(), String> {
    let lost = sent.saturating_sub(received);
    if lost == 0 {
        return Ok(());
    }
    Err(format!(
        "{lost} of {sent} messages were never received ({dropped} dropped by a full queue, {} still queued when their queue died or the run ended)",
        lost.saturating_sub(dropped)
    ))
}

fn port_ids(sim: &Sim) -> Vec<u64> {
    sim.kernel()
        .queue_stats()
        .into_iter()
        .filter(|q| q.kind == "port")
        .map(|q| q.queue_id)
        .collect()
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
pub fn run_sim(scn: &Scenario, opts: &RunOptions) -> Result<SimOutcome, String> {
    let scn = Arc::new(scn.clone());
    let (sim, handles) = build_sim(&scn, builder_for(&scn, opts))?;
    let (report, failure) = match sim.run() {
        Ok(r) => (r, None),
        Err(f) => {
            let Failure { reason, report } = f;
            (*report, Some(reason))
        }
    };
    let series = handles.sampler.series();
    let result = summarize(&scn, &handles, &report, failure.as_ref(), &series);
    Ok(SimOutcome {
        result,
        report,
        series,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summarize(
    scn: &Scenario,
    handles: &SimHandles,
    report: &Report,
    failure: Option<&FailureReason>,
    series: &[QueueSeries],
) -> RunResult {
    let counters = handles.shared.counters().clone();
    let processes = report
        .procs
        .iter()
        .map(|p| ProcessResult {
            name: p.name.clone(),
            status: p.status.to_string(),
            sent: p.stats.sent,
            received: p.stats.received,
            drops: p.stats.drops,
            blocked_ms: Some(ms(p.stats.blocked)),
            working_ms: Some(ms(p.stats.working)),
        })
        .collect();
    let queues = scn
        .queues
        .iter()
        .zip(series)
        .zip(&counters.queues)
        .map(|((q, s), c)| QueueResult {
            name: q.name.clone(),
            kind: if q.is_mailbox() { "mailbox" } else { "port" }.to_string(),
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
    }
}

fn totals(c: &super::interp::Counters) -> MessageTotals {
    MessageTotals {
        sent: c.sent,
        received: c.received,
        dropped: c.dropped,
        send_failures: c.send_failures,
        lost: c.sent.saturating_sub(c.received),
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

/// Runs `scn` on OS threads (real time, no determinism). Features that need
/// pids before the run starts (mailbox owners, access lists, faults) are
/// simulator-only and give an error here.
pub fn run_threads(scn: &Scenario) -> Result<RunResult, String> {
    let unsupported = |why: &str| {
        Err(format!(
            "{}: not available on the threads backend: {why}",
            scn.file
        ))
    };
    if !scn.faults.is_empty() {
        return unsupported("faults are injected by the simulator's scheduler");
    }
    for q in &scn.queues {
        if let QueueKind::Mailbox {
            owner,
            senders,
            receivers,
        } = &q.kind
        {
            if owner.is_some() || senders.is_some() || receivers.is_some() {
                return unsupported(&format!(
                    "mailbox `{}` has an owner or access lists, which need every pid before the run starts",
                    q.name
                ));
            }
        }
    }
    let scn = Arc::new(scn.clone());
    let world = Threaded::new();
    let shared = Arc::new(Shared::new(Arc::clone(&scn), true));
    let setup = world.kernel().create_task();
    let mut port_names: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    for (i, q) in scn.queues.iter().enumerate() {
        match q.kind {
            QueueKind::Port { .. } => {
                port_names[i] = Some(
                    world
                        .port(q.capacity)
                        .map_err(|e| setup_err(&scn, &q.name, e))?,
                )
            }
            QueueKind::Mailbox { .. } => {
                let config = MailboxConfig::new(q.capacity).owner(Owner::System);
                world
                    .kernel()
                    .mailbox_create(setup, &q.name, config)
                    .map_err(|e| setup_err(&scn, &q.name, e))?;
            }
        }
    }
    let start = Instant::now();
    for (i, p) in scn.processes.iter().enumerate() {
        if p.spawned {
            continue;
        }
        let inherit = inherited_rights(p, &port_names);
        let s = Arc::clone(&shared);
        world
            .spawn_with(&p.name, &inherit, move |proc| run_process(proc, s, i))
            .map_err(|e| setup_err(&scn, &p.name, e))?;
    }
    let statuses = world.join_all();
    let elapsed = start.elapsed();
    let counters = shared.counters().clone();
    let processes = statuses
        .iter()
        .map(|(name, status)| {
            let i = scn.process_index(name).unwrap_or(0);
            let (sent, received) = counters.procs.get(i).copied().unwrap_or_default();
            ProcessResult {
                name: name.clone(),
                status: status.to_string(),
                sent,
                received,
                drops: 0,
                blocked_ms: None,
                working_ms: None,
            }
        })
        .collect();
    let queues = scn
        .queues
        .iter()
        .zip(&counters.queues)
        .map(|(q, c)| QueueResult {
            name: q.name.clone(),
            kind: if q.is_mailbox() { "mailbox" } else { "port" }.to_string(),
            capacity: q.capacity.to_string(),
            sent: c.sent,
            dropped: 0,
            received: c.received,
            max_len: None,
            mean_len: None,
            mean_latency_ms: (c.received > 0).then(|| ms(c.latency_total) / c.received as f64),
        })
        .collect();
    let lost = lost_message(counters.sent, counters.received, counters.dropped);
    let invariants = if scn.invariants.no_message_lost {
        vec![InvariantResult {
            name: "no message lost".into(),
            held: lost.is_ok(),
            message: lost.clone().err(),
        }]
    } else {
        Vec::new()
    };
    let failure = if scn.invariants.no_message_lost {
        lost.err()
    } else {
        None
    };
    Ok(RunResult {
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
    })
}
