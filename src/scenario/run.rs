//! Setting a scenario up on a backend and collecting its [`RunResult`].
//!
//! On the simulator, ports are made with `Sim::port` and handed to their
//! holders as inherited rights; system mailboxes with `Sim::mailbox`;
//! mailboxes with an owner or access lists are created in the kernel for
//! the owning task before the run starts, so nobody can race their creation.
//! A [`QueueSampler`] watches every queue, and the declared invariants
//! become the simulator's invariants (after every step) and end checks.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mkipc_kernel::{
    Access, CarriedRight, Destination, Ipc, IpcError, Kernel, MailboxConfig, Message, OnFull,
    Owner, Pid, PortName, ReceiveError, SendError, Sent, Source, Wait,
};
use mkipc_sim::machine::{
    receive_blocking, run_blocking, send_blocking, CallStart, Ctx, Machine, Op as MachineOp,
};
use mkipc_sim::{
    ExitStatus, Failure, FailureReason, Inherit, Proc, ProcId, ProcResult, Report, Schedule,
    SchedulerKind, Sim, SimBuilder, SimRng, Threaded,
};

use super::interp::{ScriptMachine, Shared};
use super::report::{InvariantResult, MessageTotals, ProcessResult, QueueResult, RunResult};
use super::{FaultWhen, Op, QueueKind, Right, Scenario};
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
pub(crate) fn inherited_rights(
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
    setup_sim_with(scn, sim, shared, &|sim, name, inherit, make| {
        sim.spawn_with(name, inherit, move |p| {
            script_on_proc(p, make(p.inherited()), None)
        })
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
) -> Result<SimHandles, String> {
    let mut port_names: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    let mut keys = Vec::new();
    for (i, q) in scn.queues.iter().enumerate() {
        match &q.kind {
            QueueKind::Port { .. } => {
                let before: Vec<u64> = port_ids(sim.kernel());
                let name = sim
                    .port(&q.name, q.capacity)
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
        super::walk(&p.script)
            .iter()
            .any(|s| matches!(s.op, Op::Assert { .. } | Op::Receive { expect: true, .. }))
    })
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

fn port_ids(kernel: &Kernel) -> Vec<u64> {
    kernel
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
) -> Result<SimOutcome, String> {
    let scn = Arc::new(scn.clone());
    let mut sim = builder_for(&scn, opts).build();
    let shared = Arc::new(shared(Arc::clone(&scn)));
    let handles = setup_sim_with(&scn, &mut sim, shared, spawn)?;
    finish_sim(&scn, sim, handles)
}

/// Runs a simulator set up for `scn` and summarises the run.
fn finish_sim(scn: &Arc<Scenario>, sim: Sim, handles: SimHandles) -> Result<SimOutcome, String> {
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
            // Less the kernel notifications a `select` took (no messages
            // of the scenario).
            received: p.stats.received.saturating_sub(
                scn.process_index(&p.name)
                    .and_then(|i| counters.notified.get(i))
                    .copied()
                    .unwrap_or(0),
            ),
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
        trace_note: report.trace.truncation_note(),
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

/// How long a threaded run waits, after it timed out and released every
/// blocked process, for the threads to end.
const RELEASE_GRACE: Duration = Duration::from_secs(10);

/// What the threaded runner watches while the processes run: every task it
/// started (to describe and release them at the timeout) and the largest
/// length of every queue (the kernel keeps each queue's high-water mark;
/// it is read while the queue exists: as each process ends, before a
/// `destroy`, at the timeout and at the end; `never_exceeds` is checked on it).
struct Watch {
    kernel: Kernel,
    /// Per scenario queue: how its statistics are found.
    keys: Vec<QueueKey>,
    /// Per scenario queue: the largest length seen.
    max: Mutex<Vec<usize>>,
    /// Every process instance: (its `ProcId`, its scenario process, its pid).
    tasks: Mutex<Vec<(u32, usize, Pid)>>,
}

impl Watch {
    fn observe(&self) {
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

    fn tasks(&self) -> Vec<(u32, usize, Pid)> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The runner of a script on a [`Proc`]: a simulated process, or (with
/// [`Threads`]) a kernel task on an OS thread. Its operations block
/// (always [`MachineOp::Done`]). On the simulator a script's scheduling
/// points are its operations' own (each `Proc` operation starts with one),
/// as they always were: a [`Step::Yield`](mkipc_sim::machine::Step) after an
/// operation that completed is none (the next operation's point follows),
/// so traces are what they were before scripts became machines
/// (`tests/sim_pins.rs`).
struct ProcHost<'a> {
    p: &'a Proc,
    threads: Option<Threads>,
}

/// What a script's process on the threads backend has besides its `Proc`:
/// pauses the timeout can cut short, the [`Watch`] that spawned scripts are
/// written down in, and its own random durations.
struct Threads {
    shared: Arc<Shared>,
    watch: Arc<Watch>,
    rng: SimRng,
}

impl Ctx<ScriptMachine> for ProcHost<'_> {
    type Ipc = Proc;
    fn ipc(&self) -> &Proc {
        self.p
    }
    fn now(&self) -> Duration {
        self.p.now()
    }
    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> MachineOp<Result<Sent, SendError>> {
        MachineOp::Done(send_blocking(self.p, dest, msg, on_full))
    }
    fn receive(
        &mut self,
        source: Source<'_>,
        wait: Wait,
    ) -> MachineOp<Result<Message, ReceiveError>> {
        MachineOp::Done(receive_blocking(self.p, source, wait))
    }
    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        // The kernel's own call: one operation, one `call` in the trace.
        CallStart::Done(self.p.call_with(dest, msg, Wait::Forever))
    }
    fn choose(&mut self, n: usize) -> usize {
        // The run's seeded stream: the simulator's (a seed replays it) or
        // the threads backend's own.
        if n <= 1 {
            return 0;
        }
        self.p.random_below(n as u64) as usize
    }
    fn mark_valid_end(&mut self, at: bool) {
        if self.threads.is_none() {
            self.p.declare_valid_end(at);
        }
    }
    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> ScriptMachine + Send + 'static,
    {
        let threads = self
            .threads
            .as_ref()
            .map(|t| (Arc::clone(&t.shared), Arc::clone(&t.watch)));
        self.p
            .spawn(name, inherit, move |p| {
                script_on_proc(p, make(p.inherited()), threads)
            })
            .map(drop)
    }
}

/// The body of a script's process: on the simulator (`threads: None`) or
/// on the threads backend (its run's shared state and watch).
fn script_on_proc(
    p: &Proc,
    mut machine: ScriptMachine,
    threads: Option<(Arc<Shared>, Arc<Watch>)>,
) -> ProcResult {
    let threads = threads.map(|(shared, watch)| {
        // Written down before the script's first statement, which checks
        // for a stop: a process the timeout's release misses stops by
        // itself.
        watch.tasks.lock().unwrap_or_else(|p| p.into_inner()).push((
            p.id().0,
            machine.process(),
            p.pid(),
        ));
        machine.count_instance(p.id().0 as usize);
        Threads {
            shared,
            watch,
            rng: SimRng::new(u64::from(p.id().0)),
        }
    });
    if threads.is_none() {
        if machine.is_server() {
            p.declare_server();
        }
        if machine.expects_error() {
            p.declare_expect_error();
        }
    }
    let mut cx = ProcHost { p, threads };
    let result = run_blocking(&mut machine, &mut cx, |cx, time, busy| {
        match &mut cx.threads {
            Some(t) => t.shared.pause(time.sample(&mut t.rng)),
            None if busy => cx.p.work(time),
            None => cx.p.sleep(time),
        }
    });
    if let Some(t) = &cx.threads {
        t.watch.observe();
    }
    result
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

/// Runs `scn` on OS threads (real time, no determinism), for at most
/// `timeout`: then every process still running is described (what it is
/// blocked on, from [`Kernel::blocked_on`]), its kernel task exited (its
/// blocked operation fails with `TaskExited`, its pauses end) and its
/// thread joined, and the run fails as timed out. Features that need pids
/// before the run starts (mailbox owners, access lists, faults) are
/// simulator-only and give an error here.
pub fn run_threads(scn: &Scenario, timeout: Duration) -> Result<RunResult, String> {
    let unsupported = |why: &str| {
        Err(format!(
            "{}: not available on the threads backend: {why}",
            scn.file
        ))
    };
    if !scn.faults.is_empty() {
        return unsupported("faults are injected by the simulator's scheduler");
    }
    if let Some(why) = threads_refusal(scn) {
        return unsupported(&why);
    }
    if let Some(p) = scn.processes.iter().find(|p| p.may_wait_forever()) {
        let what = if p.server {
            "`server = true`"
        } else {
            "an `end:` label"
        };
        return unsupported(&format!(
            "{what} on `{}`: only the simulator knows when every other process \
             has ended and a server may be left waiting (use --backend sim)",
            p.name
        ));
    }
    if let Some(q) = scn.queues.iter().find(|q| q.has_access_rules()) {
        return unsupported(&format!(
            "mailbox `{}` has an owner or access lists, which need every pid before the run starts",
            q.name
        ));
    }
    let scn = Arc::new(scn.clone());
    let world = Threaded::new();
    let kernel = world.kernel().clone();
    let setup = kernel.create_task();
    let mut port_names: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    let mut keys = Vec::with_capacity(scn.queues.len());
    for (i, q) in scn.queues.iter().enumerate() {
        match q.kind {
            QueueKind::Port { .. } => {
                let before = port_ids(&kernel);
                port_names[i] = Some(
                    world
                        .port(q.capacity)
                        .map_err(|e| setup_err(&scn, &q.name, e))?,
                );
                let id = port_ids(&kernel)
                    .into_iter()
                    .find(|id| !before.contains(id));
                keys.push(id.map_or(QueueKey::QueueId(u64::MAX), QueueKey::QueueId));
            }
            QueueKind::Mailbox { .. } => {
                let config = MailboxConfig::new(q.capacity).owner(Owner::System);
                kernel
                    .mailbox_create(setup, &q.name, config)
                    .map_err(|e| setup_err(&scn, &q.name, e))?;
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
        Arc::new(Shared::new(Arc::clone(&scn), true).before_destroy(move || observer.observe()));
    let start = Instant::now();
    for (i, p) in scn.processes.iter().enumerate() {
        if p.spawned {
            continue;
        }
        let inherit = inherited_rights(p, &port_names);
        let s = Arc::clone(&shared);
        let w = Arc::clone(&watch);
        let spawned = world.spawn_with(&p.name, &inherit, move |proc| {
            let machine = ScriptMachine::from_rights(&s, i, proc.inherited());
            script_on_proc(proc, machine, Some((s, w)))
        });
        if let Err(e) = spawned {
            // Release what already runs before giving up.
            shared.stop();
            for (_, _, pid) in watch.tasks() {
                kernel.exit_task(pid);
            }
            return Err(setup_err(&scn, &p.name, e));
        }
    }
    // `join_all` has no deadline: it runs on a thread of its own, and this
    // one waits for its answer at most `timeout`.
    let (tx, rx) = mpsc::channel();
    let joiner = std::thread::Builder::new()
        .name("mkipc-join".into())
        .spawn(move || {
            let _ = tx.send(world.join_all());
        })
        .map_err(|e| format!("{}: cannot start a thread: {e}", scn.file))?;
    let mut timed_out: Option<(Vec<(u32, String)>, String)> = None;
    let mut all_ended = true;
    let statuses = match rx.recv_timeout(timeout) {
        Ok(s) => s,
        Err(RecvTimeoutError::Disconnected) => {
            return Err(format!("{}: the threaded run's joiner failed", scn.file))
        }
        Err(RecvTimeoutError::Timeout) => {
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
                        describe_wait(&scn, &kernel, pid, &watch.keys, &names),
                    )
                })
                .collect();
            running.sort_by_key(|r| r.0);
            // Release: scripts stop at their next statement, pauses end,
            // and exiting a task fails its blocked send or receive.
            shared.stop();
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
            if statuses.is_none() {
                all_ended = false;
                why.push_str(&format!(
                    "; some threads did not end within {RELEASE_GRACE:?} of being released"
                ));
            }
            timed_out = Some((
                running
                    .into_iter()
                    .map(|(id, _, what)| (id, what))
                    .collect(),
                why,
            ));
            statuses.unwrap_or_default()
        }
    };
    if all_ended {
        let _ = joiner.join();
    }
    let elapsed = start.elapsed();
    watch.observe();
    kernel.exit_task(setup);
    let maxima = watch.max.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let counters = shared.counters().clone();
    let processes = statuses
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
            }
        })
        .collect();
    let queues = scn
        .queues
        .iter()
        .zip(&counters.queues)
        .zip(&maxima)
        .map(|((q, c), &max)| QueueResult {
            name: q.name.clone(),
            kind: if q.is_mailbox() { "mailbox" } else { "port" }.to_string(),
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
        failure = failed_process(&scn, &statuses, &watch.tasks());
    }
    if let Some((_, why)) = timed_out {
        failure = Some(why);
    }
    if let Some(check) = shared.check_failure() {
        failure = Some(check);
    }
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
        trace_note: None,
    })
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
        for s in super::walk(&p.script) {
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
                | Op::Assert { .. } => None,
            };
            if let Some(why) = refused {
                return Some(format!("line {}: {why}", s.line));
            }
        }
    }
    None
}
