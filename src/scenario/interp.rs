//! Running a script: [`ScriptMachine`], the one interpreter of scenario
//! scripts, as a state machine ([`mkipc_sim::machine::Machine`]).
//!
//! A running script is a value: its position in its flattened code (the
//! [`Program`] compiled once per run, shared behind an `Arc` and named by
//! process index), its variables and set-aside messages ([`ScriptState`]),
//! its port names, the last request received, the next message id, and
//! [`Resume`]: which statement's operation is pending and what finishing it
//! needs. `Clone + Eq + Hash` on it covers everything that decides what it
//! does next, so the model checker can clone, compare and hash it at every
//! state; the run's counters ([`Shared`]) are for reports and stay outside.
//!
//! Each [`Machine::step`] finishes the pending operation with the outcome
//! it is handed, runs local statements (assignments, checks, jumps), and
//! starts at most one IPC operation (or a `work`/`sleep` pause, or a
//! `spawn`) through its [`Ctx`]. Every blocking statement is split into a
//! start and a finish: when the `Ctx` answers [`Op::Done`] at once the
//! finish runs at once, when it answers [`Op::Pending`] the step returns
//! [`Step::Wait`] and the next step finishes it. A `call` is two operations
//! (a send carrying a send-once reply right, then a receive on the reply
//! port) unless the runner makes it in one ([`Ctx::call`]). A `select` that
//! must wait does a receive over its receive arms and, when a send arm
//! found its queue full, over its own notify port after asking the kernel
//! for a send-possible notification on each full queue ([`Notify`]); only a
//! backend without notifications pauses [`SELECT_POLL`] and tries again.
//!
//! Every host runs this machine; what differs lives in its `Ctx` or in a
//! thin driver: the simulator steps it stackless, every script
//! ([`Sim::spawn_machine_with`](mkipc_sim::Sim::spawn_machine_with): before
//! each IPC call a statement makes through [`Ctx::ipc`] it asks
//! [`Ctx::ipc_point`], and ends the step to run the statement again after
//! the hand-over when that says [`Op::Pending`], so the schedule is a
//! coroutine's), the threads backend with its own `Ctx` (pauses the
//! timeout can cut short, counters per instance, queue maxima read before a
//! `destroy` through [`Shared::before_destroy`]), the os backend with a
//! `Ctx` on an `OsProcess` that passes over its own control messages,
//! measures wall-clock blocked and working time and spawns children
//! (`super::os`).
//!
//! Every message a script sends carries, in its body, the moment it was
//! offered (then its value, if the statement sends one: the codec is in
//! `super::value`); the receiver subtracts that from the moment it got it,
//! which is the message's latency. Under the model checker
//! ([`Shared::canonical_messages`]) the offered time is 0 and message ids
//! do not count up, so two equal states do not differ by a timestamp: the
//! latency figures are then meaningless. The counters here (messages sent,
//! dropped, received) are what the "no message lost" invariant compares.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mkipc_kernel::runtime::WaitOutcome;
use mkipc_kernel::{Message, Pid, PortName, SendError, Sent};
use mkipc_sim::machine::{Ctx, Machine, Op, Step};
use mkipc_sim::ProcError;

use smallvec::{smallvec, SmallVec};

use super::flow::{Position, Program, ScriptState, SELECT_POLL};
use super::value::Value;
use super::{QueueKind, Right, Scenario};

mod exec;
mod mech;
mod select;
mod stmt;
#[cfg(test)]
mod tests;
use select::{decode, Selecting};

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
    /// Per process: the kernel messages of shared variables, locks and end
    /// of file it sent and received (sent, received), which are not the
    /// run's messages: the simulator's per-process rows leave them out.
    pub mech: Vec<(u64, u64)>,
    /// Per process: the kernel notifications it received (a `select`
    /// waiting for room), which are no messages of the scenario: the
    /// simulator's per-process receive count leaves them out through this.
    pub notified: Vec<u64>,
    /// Per process instance, for hosts that run several instances of one
    /// script in one run (threads: indexed by `ProcId`, see
    /// [`ScriptMachine::count_instance`]).
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

/// What a host wants done before a queue is destroyed (see
/// [`Shared::before_destroy`]).
pub(crate) struct Hook(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// State shared by the processes of one run: the compiled program and what
/// is counted for the report (never part of a script's state).
#[derive(Debug)]
pub(crate) struct Shared {
    pub scenario: Arc<Scenario>,
    /// Every process's compiled script, made once per run.
    pub program: Arc<Program>,
    /// What each process's script may do with each queue
    /// ([`MailboxUses`]), read from its statements once per run, when
    /// first asked: the model checker asks it of every process at every
    /// state; a simulated run never does, and pays nothing for it.
    uses: OnceLock<MailboxUses>,
    /// Messages carry offered time 0 and ids that do not count up (the
    /// model checker: see the module docs).
    canonical: bool,
    /// Called before a script destroys a queue: a host without a step hook
    /// (threads) reads the kernel's queue maxima (high-water marks) there,
    /// while the queue still exists.
    before_destroy: Option<Hook>,
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
            mech: vec![(0, 0); n],
            notified: vec![0; n],
            ..Counters::default()
        };
        Shared {
            program: Arc::new(Program::new(&scenario)),
            uses: OnceLock::new(),
            scenario,
            canonical: false,
            before_destroy: None,
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

    /// The same, with messages stamped for the model checker: offered at
    /// time 0 and every message id 1, so that equal states are equal
    /// whatever the clock says (latencies are then meaningless).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn canonical_messages(mut self) -> Shared {
        self.canonical = true;
        self
    }

    /// The same, with `hook` called before every `destroy` a script runs.
    pub fn before_destroy(mut self, hook: impl Fn() + Send + Sync + 'static) -> Shared {
        self.before_destroy = Some(Hook(Box::new(hook)));
        self
    }

    /// The table of mailbox uses, computed on first use.
    fn uses(&self) -> &MailboxUses {
        self.uses.get_or_init(|| MailboxUses::new(&self.scenario))
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

/// What the statement at the program counter waits for, and what finishing
/// it needs (the statement itself is found at the program counter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Resume {
    /// Nothing: the next step runs the statement at the program counter.
    #[default]
    None,
    /// Opening the mailboxes the script uses, one per step (a program
    /// opens its files when it starts): the index of the next one.
    Opening(usize),
    /// A send (`send`, `send-to`, `reply`, `try-send`) is pending; `queue`
    /// is the queue it counts for (`None`: a direct or reply message).
    Send { queue: Option<usize> },
    /// A `receive`/`expect` on `src` is pending (`waiting`), or must be
    /// started again (a message it did not match was set aside); `deadline`
    /// is its `timeout`'s end.
    Receive {
        src: PortName,
        deadline: Option<Duration>,
        waiting: bool,
    },
    /// A `receive-from` or `receive-any` is pending.
    Direct,
    /// A `call`'s request (carrying a send-once right to `reply`) is being
    /// sent (`replied: false`), or its reply is awaited on `reply`.
    Call {
        queue: usize,
        reply: PortName,
        replied: bool,
    },
    /// A `call` the runner makes as one operation
    /// ([`CallStart::Pending`](mkipc_sim::machine::CallStart)) is under way,
    /// counted for `queue`.
    Called { queue: usize },
    /// A `select` under way.
    Select(Box<Selecting>),
    /// A `send-to`/`receive-from` pausing until the process it names has
    /// started, after `tries` looks (threads start processes as they go).
    AwaitPid { tries: u32 },
    /// A `load`, `store`, `lock` or `unlock` under way.
    Mech(mech::MechWait),
}

/// A script being run (see the module docs): the one interpreter of every
/// backend.
#[derive(Clone, Debug)]
pub(crate) struct ScriptMachine {
    /// The run's program and counters: not part of the state.
    shared: Arc<Shared>,
    /// Its counters' index in [`Counters::instances`], for a host that
    /// reports each instance of one script (threads): not part of the state.
    instance: Option<usize>,
    /// Which process it is (its code is `shared.program.code[me]`).
    me: usize,
    /// Position, variables and set-aside messages.
    state: ScriptState,
    /// Per queue, by index: the names it holds to receive and to send
    /// (one vector for both, inline for a few queues: copying the script
    /// allocates nothing).
    names: SmallVec<[QueueNames; 3]>,
    /// The last message received, which a `reply` answers (boxed: most
    /// scripts never reply, and a message is 64 bytes).
    last_request: Option<Box<Message>>,
    next_id: u32,
    /// The pending operation.
    resume: Resume,
    /// The pipes whose read end has seen end of file, in order (every
    /// later read of them is end of file too).
    eof: Vec<usize>,
    /// The port a `select` waiting for room on full queues is told on.
    notify: Notify,
    /// The queues (send names) a send-possible request is out for.
    asked: SmallVec<[PortName; 2]>,
}

/// The names a script holds for one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct QueueNames {
    /// To receive from it.
    pub recv: Option<PortName>,
    /// To send to it.
    pub send: Option<PortName>,
}

/// A script's port for send-possible notifications (a `select` whose send
/// arms found their queues full waits for one instead of polling).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Notify {
    /// Not needed yet.
    #[default]
    Unasked,
    /// Allocated: its receive right.
    Port(PortName),
    /// The backend has no notifications (the os backend): poll.
    Unsupported,
}

/// The parts of a request that decide what a script does with it: its
/// reply right (and, to be safe, its id and body).
fn request_key(m: &Message) -> (u32, &[u8], Option<mkipc_kernel::CarriedRight>) {
    (m.id, &m.body[..], m.reply())
}

impl PartialEq for ScriptMachine {
    fn eq(&self, other: &Self) -> bool {
        self.me == other.me
            && self.state == other.state
            && self.names == other.names
            && self.last_request.as_deref().map(request_key)
                == other.last_request.as_deref().map(request_key)
            && self.next_id == other.next_id
            && self.resume == other.resume
            && self.eof == other.eof
            && self.notify == other.notify
            && self.asked == other.asked
    }
}

impl Eq for ScriptMachine {}

impl Hash for ScriptMachine {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.me.hash(h);
        self.state.hash(h);
        self.names.hash(h);
        self.last_request.as_deref().map(request_key).hash(h);
        self.next_id.hash(h);
        self.resume.hash(h);
        self.eof.hash(h);
        self.notify.hash(h);
        self.asked.hash(h);
    }
}

impl ScriptMachine {
    /// The script of process `me` of the run `shared`: `inherited` are the
    /// names of its port rights (in the order of `Process::rights`),
    /// `preset` the mailboxes it already holds (the ones it created as
    /// their owner).
    pub fn new(
        shared: &Arc<Shared>,
        me: usize,
        inherited: &[PortName],
        preset: &[(usize, PortName)],
    ) -> ScriptMachine {
        let scenario = &shared.scenario;
        let nq = scenario.queues.len();
        let mut m = ScriptMachine {
            shared: Arc::clone(shared),
            instance: None,
            me,
            state: ScriptState {
                at: Position::default(),
                vars: smallvec![None; scenario.processes[me].vars.len().max(1)],
                pending: smallvec![Default::default(); nq],
            },
            names: smallvec![QueueNames::default(); nq],
            last_request: None,
            next_id: 1,
            resume: Resume::Opening(0),
            eof: Vec::new(),
            notify: Notify::Unasked,
            asked: SmallVec::new(),
        };
        m.state.vars[0] = Some(Value::Int(scenario.processes[me].id));
        for (i, (q, right)) in scenario.processes[me].rights.iter().enumerate() {
            let name = inherited.get(i).copied();
            match right {
                Right::Receive => m.names[*q].recv = name,
                Right::Send => m.names[*q].send = name,
            }
        }
        for &(q, name) in preset {
            m.names[q].send = Some(name);
            m.names[q].recv = Some(name);
        }
        m
    }

    /// The script of process `me` built from the rights it inherited.
    pub fn from_rights(
        shared: &Arc<Shared>,
        me: usize,
        inherited: &[mkipc_kernel::CarriedRight],
    ) -> ScriptMachine {
        let names: Vec<PortName> = inherited.iter().map(|r| r.name).collect();
        ScriptMachine::new(shared, me, &names, &[])
    }

    /// Counts what this instance does in [`Counters::instances`] too, at
    /// index `k` (threads: its `ProcId`).
    pub fn count_instance(&mut self, k: usize) {
        self.instance = Some(k);
    }

    /// Which process of the scenario this is.
    pub fn process(&self) -> usize {
        self.me
    }

    /// The names it holds for the scenario's queues, as `(queue index,
    /// name)`: what a trace of a real-time run labels its events with.
    pub fn queue_names(&self) -> Vec<(usize, PortName)> {
        let recv = self.names.iter().map(|n| n.recv);
        let send = self.names.iter().map(|n| n.send);
        recv.chain(send)
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i % self.names.len().max(1), n)))
            .collect()
    }

    /// Its variables by slot (`None`: not set yet).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn vars(&self) -> &[Option<Value>] {
        &self.state.vars
    }
}

impl Machine for ScriptMachine {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        match self.run(cx, resumed) {
            Ok(step) => step,
            Err(e) => Step::Exit(Err(e)),
        }
    }

    fn is_server(&self) -> bool {
        // With `end:` labels, only the labelled places are valid ends.
        let p = &self.shared.scenario.processes[self.me];
        p.server && p.valid_ends.is_empty()
    }

    fn at_valid_end(&self) -> bool {
        let p = &self.shared.scenario.processes[self.me];
        if p.valid_ends.is_empty() {
            return p.server;
        }
        let code = &self.shared.program.code[self.me];
        let line = match code.get(self.state.at.pc) {
            Some(super::flow::Code::Do(s)) => s.line,
            Some(super::flow::Code::Select { line, .. }) => *line,
            _ => return false,
        };
        p.valid_ends.contains(&line)
    }

    fn expects_error(&self) -> bool {
        self.shared.scenario.processes[self.me].expect_error
    }

    fn may_compare_arrivals(&self) -> bool {
        // A `select` over two queues, a `receive-any`, a spawn (every use
        // is set for it): `Select` on some queue; a `select` with one
        // receive queue and a send arm only while a request is out (its
        // notify port beside the queue; it began waiting with the queue
        // empty, so no message there now is compared with anything).
        let uses = self.shared.uses();
        let queues = self.shared.scenario.queues.len();
        (0..queues).any(|q| {
            uses.may(self.me, q, mkipc_sim::machine::MailboxUse::Select)
                || (!self.asked.is_empty() && uses.asked_select(self.me, q))
        })
    }

    fn may_use_mailbox(&self, mailbox: &str, how: mkipc_sim::machine::MailboxUse) -> bool {
        let scn = &self.shared.scenario;
        match scn.queues.iter().position(|q| q.name == mailbox) {
            // A select with a send arm compares a message on its one receive
            // queue with a notification on its notify port while it has a
            // request out: only then (`script_may_use`, `SelectAsked`).
            Some(q) => {
                let uses = self.shared.uses();
                uses.may(self.me, q, how)
                    || (how == mkipc_sim::machine::MailboxUse::Select
                        && !self.asked.is_empty()
                        && uses.asked_select(self.me, q))
            }
            None => true,
        }
    }
}

/// Per process and queue, the uses its script may make of the queue
/// ([`script_may_use`], which walks the whole script): one bit per
/// [`MailboxUse`](mkipc_sim::machine::MailboxUse), computed once per run.
/// The answer depends on the script only, not on where the process is in
/// it, so one table serves every state.
#[derive(Debug)]
struct MailboxUses {
    /// `bits[process * queues + queue]`.
    bits: Vec<u8>,
    queues: usize,
}

impl MailboxUses {
    const ALL: [mkipc_sim::machine::MailboxUse; 6] = [
        mkipc_sim::machine::MailboxUse::Send,
        mkipc_sim::machine::MailboxUse::Receive,
        mkipc_sim::machine::MailboxUse::Select,
        mkipc_sim::machine::MailboxUse::TrySend,
        mkipc_sim::machine::MailboxUse::Other,
        mkipc_sim::machine::MailboxUse::Manage,
    ];

    fn bit(how: mkipc_sim::machine::MailboxUse) -> u8 {
        use mkipc_sim::machine::MailboxUse as U;
        match how {
            U::Send => 1,
            U::Receive => 2,
            U::Select => 4,
            U::Other => 8,
            U::Manage => 16,
            U::TrySend => 32,
        }
    }

    fn new(scenario: &Scenario) -> MailboxUses {
        let queues = scenario.queues.len();
        let mut bits = Vec::with_capacity(scenario.processes.len() * queues);
        for p in &scenario.processes {
            for q in 0..queues {
                let mut b = 0;
                for how in Self::ALL {
                    if script_may_use(&p.script, q, how) {
                        b |= Self::bit(how);
                    }
                }
                if select_asks(&p.script, q) {
                    b |= Self::ASKED;
                }
                bits.push(b);
            }
        }
        MailboxUses { bits, queues }
    }

    /// The bit of a queue that is the one receive queue of a `select` with
    /// a send arm (`select_asks`).
    const ASKED: u8 = 64;

    /// Whether process `me`'s script may use queue `q` so (`true` for an
    /// index it does not know: always correct).
    fn may(&self, me: usize, q: usize, how: mkipc_sim::machine::MailboxUse) -> bool {
        self.has(me, q, Self::bit(how))
    }

    /// Whether queue `q` is the one receive queue of a `select` of process
    /// `me` that has a send arm: a select over it with the notify port
    /// while a request is out (`true` for an index it does not know).
    fn asked_select(&self, me: usize, q: usize) -> bool {
        self.has(me, q, Self::ASKED)
    }

    fn has(&self, me: usize, q: usize, bit: u8) -> bool {
        if q >= self.queues {
            return true;
        }
        self.bits
            .get(me * self.queues + q)
            .is_none_or(|&b| b & bit != 0)
    }
}

/// Whether `script`, anywhere in it, may use queue `q` so (for the
/// checker's partial-order reduction, [`Machine::may_use_mailbox`]): read
/// from the statements, whatever the position; a spawn, a destroy of `q`,
/// or a send to a queue held in a variable counts as every use it could be.
fn script_may_use(script: &[super::Stmt], q: usize, how: mkipc_sim::machine::MailboxUse) -> bool {
    use super::{ArmKind, Dest, Op as S};
    use mkipc_sim::machine::MailboxUse as U;
    // No script send carries rights but a call's request.
    let send = |on_full: &mkipc_kernel::OnFull| match on_full {
        mkipc_kernel::OnFull::Block => U::Send,
        mkipc_kernel::OnFull::DropOldest => U::Other,
        mkipc_kernel::OnFull::Fail
        | mkipc_kernel::OnFull::Timeout(_)
        | mkipc_kernel::OnFull::DropNewest => U::TrySend,
    };
    super::walk(script).into_iter().any(|s| match &s.op {
        S::Send { queue, on_full, .. } => *queue == q && how == send(on_full),
        S::SendVia { on_full, .. } => how == send(on_full),
        S::Receive { queue, timeout, .. } => {
            *queue == q
                && how
                    == if timeout.is_none() {
                        U::Receive
                    } else {
                        U::Other
                    }
        }
        // A queue held in a variable may be this one.
        S::ReceiveVia { timeout, .. } => {
            how == if timeout.is_none() {
                U::Receive
            } else {
                U::Other
            }
        }
        // A receive arm takes without waiting: `Other`. The kernel's
        // select compares arrivals (`Select`) only across two receive
        // queues: the wait of a select with one begins when that queue is
        // empty (its arms are tried first, in one step on the checker), and
        // its notify port holds a notification while the script is not
        // waiting only when a request is out (`SelectAsked`, read at the
        // time of asking: `ScriptMachine::may_use_mailbox`).
        S::Select(arms) | S::SelectAny(arms) => arms.iter().any(|a| match &a.kind {
            ArmKind::Receive { queue, .. } => {
                *queue == q
                    && match how {
                        U::Other => true,
                        U::Select => select_compares(arms),
                        _ => false,
                    }
            }
            ArmKind::ReceiveVia { .. } => matches!(how, U::Select | U::Other),
            // A guarded send: taken only if there is room.
            ArmKind::Send { dest, .. } => {
                how == U::TrySend
                    && match dest {
                        Dest::Queue(d) => *d == q,
                        Dest::Var(_) => true,
                    }
            }
            ArmKind::Timeout(_) => false,
        }),
        S::TrySend { dest, .. } => {
            how == U::TrySend
                && match dest {
                    Dest::Queue(d) => *d == q,
                    Dest::Var(_) => true,
                }
        }
        S::Call { queue, .. } => *queue == q && how == U::Send,
        // A request carries a send-once right: any use it could be.
        S::CallVia { .. } => matches!(how, U::Send | U::TrySend | U::Other),
        S::Destroy(d) => *d == q,
        // A memory access takes the cell's message (a plain receive) and
        // puts one back (a try: `TrySend`); a lock takes, an unlock puts
        // (a try); a close is any use of its pipe.
        S::Mech(m) => {
            m.queue() == q
                && match m {
                    super::MechOp::Load { .. } | super::MechOp::Store { .. } => {
                        matches!(how, U::Receive | U::TrySend)
                    }
                    super::MechOp::Lock(_) => how == U::Receive,
                    super::MechOp::Unlock(_) => how == U::TrySend,
                    super::MechOp::Close(_) => true,
                }
        }
        S::Spawn(_) | S::SendTo { .. } | S::ReceiveFrom { .. } | S::ReceiveAny { .. } => true,
        // Every statement named: a new one cannot pass unnoticed.
        S::Reply { .. }
        | S::Assign { .. }
        | S::If { .. }
        | S::While { .. }
        | S::Assert { .. }
        | S::Work(_)
        | S::Sleep(_)
        | S::Repeat(..)
        | S::Forever(_)
        | S::Exit(_) => false,
    })
}

/// Whether queue `q` is, somewhere in `script`, a receive queue of a
/// `select` with a send arm: one whose wait includes its notify port.
fn select_asks(script: &[super::Stmt], q: usize) -> bool {
    use super::{ArmKind, Op as S};
    super::walk(script).into_iter().any(|s| match &s.op {
        S::Select(arms) | S::SelectAny(arms) => {
            arms.iter().any(|a| matches!(a.kind, ArmKind::Send { .. }))
                && arms.iter().any(|a| match &a.kind {
                    ArmKind::Receive { queue, .. } => *queue == q,
                    ArmKind::ReceiveVia { .. } => true,
                    _ => false,
                })
        }
        _ => false,
    })
}

/// Whether a `select` with these arms may receive, with the kernel's
/// select, from two queues that both hold messages, where the kernel takes
/// the older: it has receive arms on two queues (or one on a queue held in
/// a variable, which may be any).
fn select_compares(arms: &[super::Arm]) -> bool {
    use super::ArmKind;
    let mut queues = arms.iter().filter_map(|a| match &a.kind {
        ArmKind::Receive { queue, .. } => Some(Some(*queue)),
        ArmKind::ReceiveVia { .. } => Some(None),
        ArmKind::Send { .. } | ArmKind::Timeout(_) => None,
    });
    let Some(first) = queues.next() else {
        return false;
    };
    first.is_none() || queues.any(|q| q != first)
}

fn fail(line: usize, what: &str, e: impl std::fmt::Display) -> ProcError {
    ProcError::msg(format!("line {line}: {what}: {e}"))
}

/// What running one instruction, or finishing an operation, leads to.
enum Flow {
    /// Go on at the next instruction.
    Next,
    /// Go on at the program counter as it now is (a jump was taken).
    Stay,
    /// A receive failed inside a `forever` loop: leave the loop.
    Break,
    /// The statement's operation must start again (its state is in
    /// [`ScriptMachine::resume`]): now, if this step has started no
    /// operation yet, else at the next step.
    Again,
    /// End the step here (the statement's operation is under way, or must
    /// start again at the next step).
    Stop(Step),
    /// The script ends with this exit code.
    Exit(i32),
}

/// Why [`ScriptMachine::queue_name`] gave no name.
enum NoName {
    /// The mailbox must be opened, and the open is a scheduling point a
    /// stackless process must hand over for first ([`Ctx::ipc_point`]
    /// said [`Op::Pending`]): the step ends ([`Step::Wait`]) with the
    /// statement's state as it was before its first IPC call, and the next
    /// step runs the statement again from there. Every IPC call a statement
    /// makes through [`Ctx::ipc`] is guarded so, and what each completed
    /// call did is kept (a name opened, a port allocated), so the statement
    /// run again goes on from the first call not yet made: the schedule is
    /// the coroutine's, point for point.
    HandOver,
    /// The open failed, or the right is gone.
    Failed(String),
}

impl ScriptMachine {
    fn scenario(&self) -> &Scenario {
        &self.shared.scenario
    }

    /// The name this process holds for queue `q` (to send to it, or to
    /// receive from it), opening its mailbox first if it has none yet.
    /// The open is a scheduling point: a stackless process that must hand
    /// over before it gets [`NoName::HandOver`] ([`Ctx::ipc_point`]), and
    /// runs the statement again in its next step, where the point is taken.
    fn queue_name<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        q: usize,
        sending: bool,
    ) -> Result<PortName, NoName> {
        let slot = if sending {
            self.names[q].send
        } else {
            self.names[q].recv
        };
        if let Some(n) = slot {
            return Ok(n);
        }
        let queue = &self.shared.scenario.queues[q];
        match queue.kind {
            QueueKind::Mailbox { .. } => {
                if matches!(cx.ipc_point(), Op::Pending) {
                    return Err(NoName::HandOver);
                }
                let n = cx
                    .mailbox_open(&queue.name)
                    .map_err(|e| NoName::Failed(e.to_string()))?;
                self.names[q].send = Some(n);
                self.names[q].recv = Some(n);
                Ok(n)
            }
            QueueKind::Port { .. } => Err(NoName::Failed(
                "this process no longer holds the right".to_string(),
            )),
        }
    }

    /// [`Self::queue_name`] for a statement's operation: `None` when the
    /// process must hand over first (end the step: see [`NoName`]), a
    /// failure as the statement's error (`what`, at `line`).
    fn name_for<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        q: usize,
        sending: bool,
        line: usize,
        what: &str,
    ) -> Result<Option<PortName>, ProcError> {
        match self.queue_name(cx, q, sending) {
            Ok(n) => Ok(Some(n)),
            Err(NoName::HandOver) => Ok(None),
            Err(NoName::Failed(e)) => Err(fail(line, what, e)),
        }
    }

    /// A message carrying `value` (see the codec in `scenario::value`),
    /// offered now.
    fn message_with<C: Ctx<Self>>(&mut self, cx: &C, value: Option<&Value>) -> Message {
        let (id, offered) = if self.shared.canonical {
            (1, 0)
        } else {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            (id, cx.now().as_nanos() as u64)
        };
        match value {
            None => Message::from_u64(id, offered),
            Some(v) => {
                let mut body = offered.to_le_bytes().to_vec();
                body.extend_from_slice(&v.encode());
                Message::new(id, body)
            }
        }
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

    fn count_receive<C: Ctx<Self>>(&self, cx: &C, queue: Option<usize>, msg: &Message) {
        self.count_taken(cx, queue, decode(msg).0);
    }

    /// Counts a message the script took, offered at `offered` ns.
    fn count_taken<C: Ctx<Self>>(&self, cx: &C, queue: Option<usize>, offered: u64) {
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
            qc.latency_total += cx.now().saturating_sub(offered);
        }
    }

    /// The pid of process `proc`; on a host that starts processes as it
    /// goes (threads), a short pause and another look (up to 5000 times)
    /// while it has not started.
    fn pid_of(&mut self, proc: usize, line: usize) -> Result<Result<Pid, Step>, ProcError> {
        let tries = match self.resume {
            Resume::AwaitPid { tries } => tries,
            _ => 0,
        };
        self.resume = Resume::None;
        if let Some(pid) = self.shared.pid(proc) {
            return Ok(Ok(pid));
        }
        if self.shared.wait_for_pids && !self.shared.is_stopped() && tries < 5000 {
            self.resume = Resume::AwaitPid { tries: tries + 1 };
            return Ok(Err(Step::Pause {
                time: mkipc_sim::Dist::fixed(Duration::from_millis(1)),
                busy: false,
            }));
        }
        let name = &self.shared.scenario.processes[proc].name;
        Err(fail(
            line,
            "direct addressing",
            format!("process `{name}` has not started"),
        ))
    }

    /// Before a wait: tells the runner whether waiting forever here is a
    /// valid end state (only for a script with `end:` labels, whose answer
    /// depends on where it waits; a server's is declared once).
    fn note_wait<C: Ctx<Self>>(&self, cx: &mut C) {
        if !self.shared.scenario.processes[self.me]
            .valid_ends
            .is_empty()
        {
            cx.mark_valid_end(self.at_valid_end());
        }
    }

    /// Records a failed check for the whole run, and returns its error.
    fn check_failed(&self, e: ProcError) -> ProcError {
        let name = &self.shared.scenario.processes[self.me].name;
        self.shared.record_check_failure(format!("`{name}` {e}"));
        e
    }
}

/// What a finished operation must be, or an error of the runner.
fn sent_outcome(outcome: Option<WaitOutcome>) -> Result<Result<Sent, SendError>, ProcError> {
    match outcome {
        Some(WaitOutcome::Sent(r)) => Ok(r),
        other => Err(wrong_outcome("a send", other)),
    }
}

fn received_outcome(
    outcome: Option<WaitOutcome>,
) -> Result<Result<Message, mkipc_kernel::ReceiveError>, ProcError> {
    match outcome {
        Some(WaitOutcome::Received(r)) => Ok(r),
        other => Err(wrong_outcome("a receive", other)),
    }
}

fn wrong_outcome(waiting: &str, got: Option<WaitOutcome>) -> ProcError {
    let got = match got {
        None => "no outcome",
        Some(WaitOutcome::Sent(_)) => "a send's outcome",
        Some(WaitOutcome::Received(_)) => "a receive's outcome",
    };
    ProcError::msg(format!(
        "the runner resumed the script with {got} while it waited for {waiting}"
    ))
}

/// The result of an operation as a finish takes it: done, or pending.
fn done<T>(op: Op<T>) -> Option<T> {
    match op {
        Op::Done(r) => Some(r),
        Op::Pending => None,
    }
}

/// The model checker's canonical encoding of a script: as its `Hash`, but
/// with every port name by what it denotes (`Encoder::name`), so a name's
/// generation bits do not make each loop turn a new state.
impl mkipc_sim::check::Encode for ScriptMachine {
    fn encode(&self, e: &mut mkipc_sim::check::Encoder<'_>) {
        let name = |e: &mut mkipc_sim::check::Encoder<'_>, n: Option<PortName>| match n {
            None => e.u64(0),
            Some(n) => {
                e.u64(1);
                e.name(n);
            }
        };
        e.u64(self.me as u64);
        e.value(&self.state);
        let recv = self.names.iter().map(|n| n.recv);
        for n in recv.chain(self.names.iter().map(|n| n.send)) {
            name(e, n);
        }
        match &self.last_request {
            None => e.u64(0),
            Some(m) => {
                e.u64(1);
                e.u64(u64::from(m.id));
                e.bytes(&m.body);
                match m.reply() {
                    None => e.u64(0),
                    Some(r) => {
                        e.u64(1);
                        e.name(r.name);
                        e.value(&r.disposition);
                    }
                }
            }
        }
        e.u64(u64::from(self.next_id));
        match self.notify {
            Notify::Unasked => e.u64(0),
            Notify::Port(n) => {
                e.u64(1);
                e.name(n);
            }
            Notify::Unsupported => e.u64(2),
        }
        e.u64(self.asked.len() as u64);
        for &n in &self.asked {
            e.name(n);
        }
        match &self.resume {
            Resume::Receive {
                src,
                deadline,
                waiting,
            } => {
                e.u64(1);
                e.name(*src);
                e.value(&(deadline, waiting));
            }
            Resume::Call {
                queue,
                reply,
                replied,
            } => {
                e.u64(2);
                e.name(*reply);
                e.value(&(queue, replied));
            }
            Resume::Select(sel) => {
                e.u64(3);
                sel.encode(e);
            }
            other => {
                e.u64(4);
                e.value(other);
            }
        }
        e.value(&self.eof);
    }
}
