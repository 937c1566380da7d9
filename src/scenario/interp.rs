//! Running a script on a process handle.
//!
//! The interpreter is written against [`Host`]: an [`Ipc`] implementation
//! plus a clock, `work`/`sleep` and `spawn`. The simulator and the threaded
//! runner provide it with [`Proc`], the os backend with a real process
//! (`super::os`), so a scenario means the same on all three. Every
//! message it sends carries, in its body, the moment it was offered (then
//! its value, if the statement sends one: the codec is in `super::value`); the
//! receiver subtracts that from the moment it got it, which is the message's
//! latency. The counters here (messages sent, dropped, received) are what
//! the "no message lost" invariant compares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mkipc_kernel::{
    CarriedRight, Ipc, Message, Pid, PortName, ReceiveError, SendError, Sent, Wait,
};
use mkipc_sim::{Dist, Proc, ProcError, ProcResult};

use super::flow::{Position, ScriptState};
use super::value::Value;
use super::{ArmKind, Dest, Op, QueueKind, Right, Scenario, Stmt};

mod exec;
mod select;
mod stmt;
use select::decode;

/// Counts for one queue.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueueCounters {
    pub sent: u64,
    pub received: u64,
    /// Of `sent`, what a drop policy discarded.
    pub dropped: u64,
    pub latency_total: Duration,
}

/// Per-process figures the os backend reports (the simulator has its own).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProcTimes {
    /// Sends a drop policy discarded (or that displaced another message).
    pub drops: u64,
    /// Wall time inside IPC calls that may block.
    pub blocked: Duration,
    /// Wall time in `work`.
    pub working: Duration,
}

/// What the interpreters counted, shared by every process of a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    /// Sends that succeeded (delivered, or dropped by a drop policy).
    pub sent: u64,
    /// Of those, messages a drop policy discarded (the new one or an old one).
    pub dropped: u64,
    /// Messages received (requests, replies and direct messages included).
    pub received: u64,
    /// Sends that failed (`fail` policy on a full queue, dead destination...).
    pub send_failures: u64,
    /// Per queue, by index.
    pub queues: Vec<QueueCounters>,
    /// Per process: (sent, received).
    pub procs: Vec<(u64, u64)>,
    /// Per process: drops and times.
    pub times: Vec<ProcTimes>,
    /// Per process instance, for hosts that run several instances of one
    /// script in one run (threads: indexed by `ProcId`, see [`Host::instance`]).
    pub instances: Vec<InstanceCounts>,
}

/// What one process instance did (threads backend).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InstanceCounts {
    /// Successful sends.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Of `sent`, what a drop policy discarded (or that displaced another).
    pub drops: u64,
}

impl Counters {
    /// The counts of instance `k`, made on first use.
    fn instance(&mut self, k: usize) -> &mut InstanceCounts {
        if self.instances.len() <= k {
            self.instances.resize(k + 1, InstanceCounts::default());
        }
        &mut self.instances[k]
    }
}

/// State shared by the processes of one run.
#[derive(Debug)]
pub(crate) struct Shared {
    pub scenario: Arc<Scenario>,
    /// The pid of each declared process once it exists (latest instance).
    pub pids: Mutex<Vec<Option<Pid>>>,
    pub counters: Mutex<Counters>,
    /// Threaded runs wait for pids to appear; the simulator never does.
    pub wait_for_pids: bool,
    /// Set when a threaded run timed out: every script stops at its next
    /// statement (a load per statement, no lock: the simulator's scripts run
    /// millions), and interruptible pauses ([`Shared::pause`]) end at once.
    stop: AtomicBool,
    /// What a pause waits on (the flag is also written under it, so a pause
    /// cannot miss the stop between its check and its wait).
    pause_lock: Mutex<()>,
    stopped: Condvar,
    /// Set once a script's `assert` or `expect` fails (a load per step for
    /// the simulator's invariant; the message is under the lock).
    check_failed: AtomicBool,
    first_check_failure: Mutex<Option<String>>,
}

/// What a failed `assert` says (the os backend finds it in a child's error).
pub(crate) const ASSERT_FAILED: &str = "assertion failed";
/// What a failed `expect` says.
pub(crate) const EXPECT_FAILED: &str = "the message does not match";

impl Shared {
    pub fn new(scenario: Arc<Scenario>, wait_for_pids: bool) -> Shared {
        let n = scenario.processes.len();
        let counters = Counters {
            queues: vec![QueueCounters::default(); scenario.queues.len()],
            procs: vec![(0, 0); n],
            times: vec![ProcTimes::default(); n],
            ..Counters::default()
        };
        Shared {
            scenario,
            pids: Mutex::new(vec![None; n]),
            counters: Mutex::new(counters),
            wait_for_pids,
            stop: AtomicBool::new(false),
            pause_lock: Mutex::new(()),
            stopped: Condvar::new(),
            check_failed: AtomicBool::new(false),
            first_check_failure: Mutex::new(None),
        }
    }

    /// Records a failed `assert` or `expect` (the first one is kept).
    pub fn record_check_failure(&self, message: String) {
        let mut first = self
            .first_check_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(message);
        }
        self.check_failed.store(true, Ordering::Release);
    }

    /// The first failed `assert` or `expect`, if any.
    pub fn check_failure(&self) -> Option<String> {
        if !self.check_failed.load(Ordering::Acquire) {
            return None;
        }
        self.first_check_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the run was told to stop ([`Shared::stop`]).
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Tells every script of the run to stop, and wakes their pauses.
    pub fn stop(&self) {
        let _guard = self.pause_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.stop.store(true, Ordering::Release);
        self.stopped.notify_all();
    }

    /// Sleeps for `d` of wall time, or until the run is told to stop.
    pub fn pause(&self, d: Duration) {
        let guard = self.pause_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .stopped
            .wait_timeout_while(guard, d, |_| !self.stop.load(Ordering::Acquire))
            .unwrap_or_else(|p| p.into_inner());
    }

    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn pid(&self, proc: usize) -> Option<Pid> {
        self.pids.lock().unwrap_or_else(|p| p.into_inner())[proc]
    }

    pub fn set_pid(&self, proc: usize, pid: Pid) {
        self.pids.lock().unwrap_or_else(|p| p.into_inner())[proc] = Some(pid);
    }
}

/// What the interpreter needs from whatever runs a process.
pub(crate) trait Host {
    /// The IPC implementation.
    type I: Ipc;
    /// The process's IPC handle.
    fn ipc(&self) -> &Self::I;
    /// Time since the start of the run (virtual or wall clock).
    fn now(&self) -> Duration;
    /// `work` (busy) or `sleep` for a duration drawn from `d`.
    fn pause(&self, d: Dist, busy: bool);
    /// Starts a new instance of process `child`, handing it `inherit`.
    fn spawn_script(
        &self,
        shared: &Arc<Shared>,
        child: usize,
        inherit: &[CarriedRight],
    ) -> Result<(), String>;
    /// Whether `work` and IPC wall times are worth measuring (not in virtual time).
    fn wall_clock(&self) -> bool {
        false
    }
    /// Whether a directly received message is the host's own, not the script's.
    fn is_control(&self, _msg: &Message) -> bool {
        false
    }
    /// Keeps a control message [`is_control`](Host::is_control) picked out.
    fn stash_control(&self, _msg: Message) {}
    /// This process instance's index in [`Counters::instances`], for a host
    /// that runs several instances of one script and reports each.
    fn instance(&self) -> Option<usize> {
        None
    }
    /// Called before a `destroy`: a host without a step hook (threads) reads
    /// the kernel's queue maxima (high-water marks) here, while the queue
    /// still exists; it reads them again as each process ends.
    fn observe_queues(&self) {}
}

impl Host for Proc {
    type I = Proc;
    fn ipc(&self) -> &Proc {
        self
    }
    fn now(&self) -> Duration {
        Proc::now(self)
    }
    fn pause(&self, d: Dist, busy: bool) {
        if busy {
            self.work(d)
        } else {
            self.sleep(d)
        }
    }
    fn spawn_script(
        &self,
        shared: &Arc<Shared>,
        child: usize,
        inherit: &[CarriedRight],
    ) -> Result<(), String> {
        let shared = Arc::clone(shared);
        let name = shared.scenario.processes[child].name.clone();
        self.spawn(&name, inherit, move |p| run_process(p, shared, child))
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

enum Flow {
    Next,
    /// A receive failed inside a `forever` loop: leave the loop.
    Break,
    Exit(i32),
}

struct Env<'a, H: Host> {
    h: &'a H,
    p: &'a H::I,
    shared: &'a Arc<Shared>,
    me: usize,
    /// See [`Host::instance`].
    instance: Option<usize>,
    recv_names: Vec<Option<PortName>>,
    send_names: Vec<Option<PortName>>,
    last_request: Option<Message>,
    next_id: u32,
    /// Variables, position and set-aside messages: plain data.
    state: ScriptState,
    /// Statements run since the script last communicated or waited.
    local_steps: u64,
}

/// The body of process `me`: runs its script on `p`.
pub(crate) fn run_process(p: &Proc, shared: Arc<Shared>, me: usize) -> ProcResult {
    let decl = &shared.scenario.processes[me];
    if decl.server {
        p.declare_server();
    }
    if decl.expect_error {
        p.declare_expect_error();
    }
    let inherited: Vec<PortName> = p.inherited().iter().map(|r| r.name).collect();
    run_script(p, &shared, me, &inherited, &[])
}

/// Runs the script of process `me` on host `h`: `inherited` are the names
/// of its port rights (in the order of `Process::rights`), `preset` the
/// mailboxes it already holds (the ones it created as their owner).
pub(crate) fn run_script<H: Host>(
    h: &H,
    shared: &Arc<Shared>,
    me: usize,
    inherited: &[PortName],
    preset: &[(usize, PortName)],
) -> ProcResult {
    let p = h.ipc();
    shared.set_pid(me, p.pid());
    let scenario = Arc::clone(&shared.scenario);
    let nq = scenario.queues.len();
    let mut env = Env {
        h,
        p,
        shared,
        me,
        instance: h.instance(),
        recv_names: vec![None; nq],
        send_names: vec![None; nq],
        last_request: None,
        next_id: 1,
        state: ScriptState {
            at: Position::default(),
            vars: vec![None; scenario.processes[me].vars.len().max(1)],
            pending: vec![Default::default(); nq],
        },
        local_steps: 0,
    };
    env.state.vars[0] = Some(Value::Int(scenario.processes[me].id));
    for (i, (q, right)) in scenario.processes[me].rights.iter().enumerate() {
        let name = inherited.get(i).copied();
        match right {
            Right::Receive => env.recv_names[*q] = name,
            Right::Send => env.send_names[*q] = name,
        }
    }
    for &(q, name) in preset {
        env.send_names[q] = Some(name);
        env.recv_names[q] = Some(name);
    }
    // A process opens the mailboxes its script uses when it starts, as a
    // program opens its files: a mailbox that dies later is then a dead
    // name ("source is dead"), not a name that was never found.
    let mut used = Vec::new();
    mailboxes_used(&scenario, &scenario.processes[me].script, &mut used);
    for q in used {
        let _ = env.queue_name(q, true);
    }
    match env.run(&scenario.processes[me].script)? {
        Flow::Exit(0) | Flow::Next | Flow::Break => Ok(()),
        Flow::Exit(code) => Err(ProcError::exit(code)),
    }
}

fn fail(line: usize, what: &str, e: impl std::fmt::Display) -> ProcError {
    ProcError::msg(format!("line {line}: {what}: {e}"))
}

impl<H: Host> Env<'_, H> {
    /// Runs a possibly blocking IPC call, adding its wall time to this
    /// process's blocked time when the host runs on the wall clock.
    fn timed<T>(&self, f: impl FnOnce(&H::I) -> T) -> T {
        if !self.h.wall_clock() {
            return f(self.p);
        }
        let t = Instant::now();
        let r = f(self.p);
        self.shared.counters().times[self.me].blocked += t.elapsed();
        r
    }

    /// `receive-from` / `receive-any`, passing over the host's own control
    /// messages (an os-backend child's final report to its spawner).
    fn direct_receive(
        &self,
        from: Option<Pid>,
        timeout: Option<Duration>,
    ) -> Result<Message, ReceiveError> {
        let started = Instant::now();
        let mut w = wait(timeout);
        loop {
            let r = self.timed(|p| match from {
                Some(pid) => p.receive_from_with(pid, w),
                None => p.receive_from_any_with(w),
            });
            match r {
                Ok(msg) if self.h.is_control(&msg) => {
                    self.h.stash_control(msg);
                    if let Some(t) = timeout {
                        w = Wait::For(t.saturating_sub(started.elapsed()));
                    }
                }
                other => return other,
            }
        }
    }

    fn queue_name(&mut self, q: usize, sending: bool) -> Result<PortName, String> {
        let queue = &self.shared.scenario.queues[q];
        let slot = if sending {
            &mut self.send_names[q]
        } else {
            &mut self.recv_names[q]
        };
        if let Some(n) = *slot {
            return Ok(n);
        }
        match queue.kind {
            QueueKind::Mailbox { .. } => {
                let n = self
                    .p
                    .mailbox_open(&queue.name)
                    .map_err(|e| e.to_string())?;
                self.send_names[q] = Some(n);
                self.recv_names[q] = Some(n);
                Ok(n)
            }
            QueueKind::Port { .. } => Err("this process no longer holds the right".to_string()),
        }
    }

    fn message(&mut self) -> Message {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Message::from_u64(id, self.h.now().as_nanos() as u64)
    }

    fn count_send(&self, queue: Option<usize>, r: &Result<Sent, SendError>) {
        let mut c = self.shared.counters();
        if let (Some(q), Ok(_)) = (queue, r) {
            c.queues[q].sent += 1;
        }
        match r {
            Ok(Sent::Delivered) => c.sent += 1,
            Ok(Sent::Dropped | Sent::Displaced) => {
                c.sent += 1;
                c.dropped += 1;
                c.times[self.me].drops += 1;
                if let Some(k) = self.instance {
                    c.instance(k).drops += 1;
                }
                if let Some(q) = queue {
                    c.queues[q].dropped += 1;
                }
            }
            Err(_) => c.send_failures += 1,
        }
        if r.is_ok() {
            c.procs[self.me].0 += 1;
            if let Some(k) = self.instance {
                c.instance(k).sent += 1;
            }
        }
    }

    fn count_receive(&self, queue: Option<usize>, msg: &Message) {
        self.count_taken(queue, decode(msg).0);
    }

    /// Counts a message the script took, offered at `offered` ns.
    fn count_taken(&self, queue: Option<usize>, offered: u64) {
        let mut c = self.shared.counters();
        c.received += 1;
        c.procs[self.me].1 += 1;
        if let Some(k) = self.instance {
            c.instance(k).received += 1;
        }
        if let Some(q) = queue {
            let offered = Duration::from_nanos(offered);
            let qc = &mut c.queues[q];
            qc.received += 1;
            qc.latency_total += self.h.now().saturating_sub(offered);
        }
    }

    fn pid_of(&self, proc: usize, line: usize) -> Result<Pid, ProcError> {
        for _ in 0..5000 {
            if let Some(pid) = self.shared.pid(proc) {
                return Ok(pid);
            }
            if !self.shared.wait_for_pids || self.shared.is_stopped() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let name = &self.shared.scenario.processes[proc].name;
        Err(fail(
            line,
            "direct addressing",
            format!("process `{name}` has not started"),
        ))
    }

    fn received(
        &mut self,
        r: Result<Message, ReceiveError>,
        queue: Option<usize>,
        in_forever: bool,
        line: usize,
        what: &str,
    ) -> Result<Flow, ProcError> {
        match r {
            Ok(msg) => {
                self.count_receive(queue, &msg);
                self.last_request = Some(msg);
                Ok(Flow::Next)
            }
            Err(_) if in_forever => Ok(Flow::Break),
            Err(e) => Err(fail(line, what, e)),
        }
    }
}

fn mailboxes_used(scn: &Scenario, stmts: &[Stmt], out: &mut Vec<usize>) {
    for s in super::walk(stmts) {
        let named: Vec<usize> = match &s.op {
            Op::Send { queue, .. }
            | Op::Receive { queue, .. }
            | Op::Call { queue }
            | Op::Destroy(queue)
            | Op::TrySend {
                dest: Dest::Queue(queue),
                ..
            } => vec![*queue],
            Op::Select(arms) => arms
                .iter()
                .filter_map(|a| match &a.kind {
                    ArmKind::Receive { queue, .. }
                    | ArmKind::Send {
                        dest: Dest::Queue(queue),
                        ..
                    } => Some(*queue),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        for q in named {
            if scn.queues[q].is_mailbox() && !out.contains(&q) {
                out.push(q);
            }
        }
    }
}

fn wait(timeout: Option<Duration>) -> Wait {
    timeout.map_or(Wait::Forever, Wait::For)
}
