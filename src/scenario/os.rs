//! Running a scenario on real Linux processes (`mkipc run --backend os`).
//!
//! The `mkipc` process is the *coordinator*: it checks that the scenario
//! uses only what the os backend can give ([`check_os`]), creates the
//! system mailboxes and the ports, and starts every process that starts
//! with the run as a child playing the role [`ROLE`] (a re-execution of the
//! `mkipc` binary, which calls [`mkipc_os::child_main`] with [`OS_ROLES`]
//! first thing in `main`). Each child, and every process a script `spawn`s
//! (a grandchild started the same way by its spawner), goes through:
//!
//! 1. **setup**: one message on the direct link from its parent, carrying
//!    the scenario's source text, which process to play, the seed, the time
//!    scale and the pids of the processes started with the run, plus its
//!    port rights as descriptors (`SCM_RIGHTS`: receive rights moved, send
//!    rights copied). The child parses the text again and creates the
//!    mailboxes it owns;
//! 2. **ready** / **go**: it tells its parent it is ready and waits for the
//!    go, which carries the run's start on `CLOCK_MONOTONIC` (one clock for
//!    every process, so message latencies compare times taken in different
//!    processes). Every process of the run starts its script at once;
//! 3. **script**: the same interpreter as the simulator's, on
//!    [`OsProcess`]; `work` and `sleep` are real sleeps (times the time
//!    scale);
//! 4. **report**: it waits for the processes it spawned, then sends its
//!    parent one report with its counters and theirs (with their exit
//!    statuses).
//!
//! The coordinator polls its children's links for reports, samples the
//! length of every system mailbox about every millisecond, kills processes
//! when a `[[fault]]` with `at` says so, and kills everything still running
//! when `--timeout` passes (a deadlock cannot be told from a slow process).
//! Every child sets `PR_SET_PDEATHSIG` so that its own children die with it.
//! The run id of the os crate names every queue; when the coordinator's
//! `OsProcess` drops, the run is cleaned up, and the coordinator checks with
//! [`mkipc_os::leftovers`] that nothing remains.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mkipc_kernel::{
    Capacity, CarriedRight, Disposition, Ipc, MailboxConfig, Message, Owner, Pid, PortName,
    ReceiveError, Wait,
};
use mkipc_os::{Child, OsProcess, Role, Spawn};
use mkipc_sim::{Dist, ExitStatus, SimRng};

use super::interp::{run_script, Host, Shared};
use super::report::{InvariantResult, MessageTotals, ProcessResult, QueueResult, RunResult};
use super::{FaultWhen, Op, QueueKind, Right, Scenario, Stmt};

/// The role a scenario process plays in a re-executed `mkipc`.
pub const ROLE: &str = "scenario-process";

/// The roles `main` hands to [`mkipc_os::child_main`].
pub const OS_ROLES: &[(&str, Role)] = &[(ROLE, role)];

const SETUP: u32 = 0x4D4B_5301;
const READY: u32 = 0x4D4B_5302;
const GO: u32 = 0x4D4B_5303;
const REPORT: u32 = 0x4D4B_5304;

/// How long a child may take to start (exec, parse, create its mailboxes).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a scenario on real processes.
#[derive(Clone, Debug)]
pub struct OsOptions {
    /// Seed of the drawn durations (default: the scenario's).
    pub seed: Option<u64>,
    /// Every `work` and `sleep` lasts this many times its duration (wall clock).
    pub time_scale: f64,
    /// Processes still running after this long are killed and the run fails.
    pub timeout: Duration,
}

impl Default for OsOptions {
    fn default() -> Self {
        OsOptions {
            seed: None,
            time_scale: 1.0,
            timeout: Duration::from_secs(60),
        }
    }
}

fn unsupported(scn: &Scenario, what: String, why: &str) -> Result<(), String> {
    Err(format!(
        "{}: {what} not available on the os backend: {why} (use --backend sim)",
        scn.file
    ))
}

fn walk<'a>(stmts: &'a [Stmt], out: &mut Vec<&'a Stmt>) {
    for s in stmts {
        out.push(s);
        if let Op::Repeat(_, body) | Op::Forever(body) = &s.op {
            walk(body, out);
        }
    }
}

fn statements(scn: &Scenario, proc: usize) -> Vec<&Stmt> {
    let mut out = Vec::new();
    walk(&scn.processes[proc].script, &mut out);
    out
}

/// `/proc/sys/fs/mqueue/msg_max`: the largest `mq_maxmsg` an ordinary user may ask for.
fn msg_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Checks that `scn` uses only what the os backend can give; the error
/// names the first feature that it cannot, and why.
pub fn check_os(scn: &Scenario) -> Result<(), String> {
    for f in &scn.faults {
        let name = &scn.processes[f.proc].name;
        match f.when {
            FaultWhen::At(_) if scn.processes[f.proc].spawned => {
                return unsupported(
                    scn,
                    format!("a fault killing `{name}` is"),
                    "only a process that starts with the run has a pid the coordinator knows",
                )
            }
            FaultWhen::At(_) => {}
            FaultWhen::Step(_) | FaultWhen::Chance(_) => {
                return unsupported(
                    scn,
                    format!("the fault killing `{name}` at a step or by chance is"),
                    "real processes have no scheduling steps; give the fault `at = \"<time>\"`",
                )
            }
        }
    }
    let root = mkipc_os_is_root();
    for q in &scn.queues {
        if let QueueKind::Mailbox {
            owner,
            senders,
            receivers,
        } = &q.kind
        {
            if senders.is_some() || receivers.is_some() {
                return unsupported(
                    scn,
                    format!(
                        "mailbox `{}` has access lists (`senders`/`receivers`), which are",
                        q.name
                    ),
                    mkipc_os::NO_GRANTS,
                );
            }
            if let Some(o) = owner {
                if scn.processes[*o].spawned {
                    return unsupported(
                        scn,
                        format!("mailbox `{}` is owned by a spawned process, which is", q.name),
                        "an owner creates its mailbox before the run starts, and a spawned process does not exist yet",
                    );
                }
            }
        }
        if let (Capacity::Bounded(n), Some(max), false) = (q.capacity, msg_max(), root) {
            if n > max {
                return unsupported(
                    scn,
                    format!("capacity {n} of `{}` is", q.name),
                    &format!(
                        "a POSIX queue holds at most /proc/sys/fs/mqueue/msg_max = {max} messages for a non-root user"
                    ),
                );
            }
        }
    }
    for &(q, k) in &scn.invariants.never_exceeds {
        let queue = &scn.queues[q];
        let guaranteed = matches!(queue.capacity, Capacity::Bounded(n) if n <= k);
        if guaranteed {
            continue;
        }
        match (&queue.kind, queue.capacity) {
            (QueueKind::Port { .. }, _) => {
                return unsupported(
                    scn,
                    format!("the invariant `{} never exceeds {k}` is", queue.name),
                    "only a port's receiver can read its length, so the coordinator cannot watch it",
                )
            }
            (_, Capacity::Unbounded) => {
                return unsupported(
                    scn,
                    format!("the invariant `{} never exceeds {k}` is", queue.name),
                    "an unbounded mailbox keeps what its POSIX queue cannot hold in each sender's spool, out of sight",
                )
            }
            (QueueKind::Mailbox { owner: Some(_), .. }, _) => {
                return unsupported(
                    scn,
                    format!("the invariant `{} never exceeds {k}` is", queue.name),
                    "the coordinator watches only system mailboxes (no owner)",
                )
            }
            _ => {}
        }
    }
    for (i, p) in scn.processes.iter().enumerate() {
        for s in statements(scn, i) {
            let peer = match &s.op {
                Op::SendTo { proc } | Op::ReceiveFrom { proc, .. } => Some(*proc),
                Op::Send {
                    queue,
                    on_full: mkipc_kernel::OnFull::DropOldest,
                } if !scn.queues[*queue].is_mailbox() => {
                    return unsupported(
                        scn,
                        format!(
                            "`send {} drop-oldest` (line {}) is",
                            scn.queues[*queue].name, s.line
                        ),
                        mkipc_os::NO_DROP_OLDEST,
                    );
                }
                _ => None,
            };
            if let Some(peer) = peer {
                if p.spawned || scn.processes[peer].spawned {
                    return unsupported(
                        scn,
                        format!(
                            "direct communication between `{}` and `{}` (line {}) is",
                            p.name, scn.processes[peer].name, s.line
                        ),
                        "direct links are pipes made when processes start together, and a spawned process starts later",
                    );
                }
            }
        }
    }
    Ok(())
}

fn mkipc_os_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the same clock in every process.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

// ----- the setup message -------------------------------------------------------

struct Setup {
    me: usize,
    seed: u64,
    scale: f64,
    pids: Vec<Option<u32>>,
    file: String,
    source: String,
}

impl Setup {
    fn encode(&self) -> Vec<u8> {
        let mut t = String::new();
        let _ = writeln!(t, "mkipc-scenario-setup 1");
        let _ = writeln!(t, "me {}", self.me);
        let _ = writeln!(t, "seed {}", self.seed);
        let _ = writeln!(t, "scale {}", self.scale);
        for (i, p) in self.pids.iter().enumerate() {
            if let Some(p) = p {
                let _ = writeln!(t, "pid {i} {p}");
            }
        }
        let _ = writeln!(t, "file {}", self.file.replace('\n', " "));
        t.push_str("source\n");
        t.push_str(&self.source);
        t.into_bytes()
    }

    fn decode(body: &[u8], nprocs_hint: usize) -> Option<Setup> {
        let text = std::str::from_utf8(body).ok()?;
        let (head, source) = text.split_once("\nsource\n")?;
        let mut lines = head.lines();
        if lines.next()? != "mkipc-scenario-setup 1" {
            return None;
        }
        let mut s = Setup {
            me: usize::MAX,
            seed: 0,
            scale: 1.0,
            pids: vec![None; nprocs_hint],
            file: String::new(),
            source: source.to_string(),
        };
        for line in lines {
            let (k, v) = line.split_once(' ')?;
            match k {
                "me" => s.me = v.parse().ok()?,
                "seed" => s.seed = v.parse().ok()?,
                "scale" => s.scale = v.parse().ok()?,
                "pid" => {
                    let (i, p) = v.split_once(' ')?;
                    let i: usize = i.parse().ok().filter(|&i| i < 1 << 20)?;
                    if i >= s.pids.len() {
                        s.pids.resize(i + 1, None);
                    }
                    s.pids[i] = Some(p.parse().ok()?);
                }
                "file" => s.file = v.to_string(),
                _ => return None,
            }
        }
        Some(s)
    }
}

// ----- reports -------------------------------------------------------------------

/// One process's figures, one line of a report.
#[derive(Clone, Debug, Default)]
struct ProcLine {
    idx: usize,
    /// `exit:N`, `signal:N` or `-` (not known yet: the parent fills it in).
    status: String,
    sent: u64,
    received: u64,
    drops: u64,
    send_failures: u64,
    dropped: u64,
    blocked_ns: u64,
    working_ns: u64,
    /// Per queue: sent, received, dropped, total latency (ns).
    queues: Vec<[u64; 4]>,
    error: String,
    /// Set by the coordinator: why it killed the process.
    killed_for: Option<&'static str>,
}

impl ProcLine {
    fn encode(&self) -> String {
        let mut t = format!(
            "{} {} {} {} {} {} {} {} {} {}",
            self.idx,
            self.status,
            self.sent,
            self.received,
            self.drops,
            self.send_failures,
            self.dropped,
            self.blocked_ns,
            self.working_ns,
            self.queues.len()
        );
        for q in &self.queues {
            let _ = write!(t, " {} {} {} {}", q[0], q[1], q[2], q[3]);
        }
        let _ = write!(t, ";{}", self.error.replace('\n', " "));
        t
    }

    fn decode(line: &str) -> Option<ProcLine> {
        let (nums, error) = line.split_once(';')?;
        let mut w = nums.split(' ');
        let mut next = || w.next();
        let idx = next()?.parse().ok()?;
        let status = next()?.to_string();
        let mut n = [0u64; 8];
        for v in &mut n {
            *v = next()?.parse().ok()?;
        }
        let nq = n[7] as usize;
        let mut queues = Vec::with_capacity(nq.min(1024));
        for _ in 0..nq {
            let mut q = [0u64; 4];
            for v in &mut q {
                *v = next()?.parse().ok()?;
            }
            queues.push(q);
        }
        Some(ProcLine {
            idx,
            status,
            sent: n[0],
            received: n[1],
            drops: n[2],
            send_failures: n[3],
            dropped: n[4],
            blocked_ns: n[5],
            working_ns: n[6],
            queues,
            error: error.to_string(),
            killed_for: None,
        })
    }

    /// A process that ended without sending a report.
    fn missing(idx: usize, why: &str) -> ProcLine {
        ProcLine {
            idx,
            status: "-".into(),
            error: why.to_string(),
            ..ProcLine::default()
        }
    }
}

fn decode_report(body: &[u8]) -> Option<Vec<ProcLine>> {
    std::str::from_utf8(body)
        .ok()?
        .lines()
        .map(ProcLine::decode)
        .collect()
}

fn encode_report(lines: &[ProcLine]) -> Vec<u8> {
    lines
        .iter()
        .map(ProcLine::encode)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn status_token(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit:{c}"),
        (None, Some(sig)) => format!("signal:{sig}"),
        _ => "-".into(),
    }
}

/// Collects the report a spawned child sends, then its exit status.
fn collect_child(
    os: &OsProcess,
    idx: usize,
    child: &mut Child,
    stashed: &mut Vec<Message>,
) -> Vec<ProcLine> {
    let pid = child.pid();
    let mut report = None;
    if let Some(i) = stashed.iter().position(|m| m.sender() == Some(pid)) {
        report = decode_report(&stashed.remove(i).body.into_vec());
    }
    while report.is_none() {
        match os.receive_from_with(pid, Wait::Forever) {
            Ok(m) if m.id == REPORT => report = decode_report(&m.body.into_vec()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let mut lines =
        report.unwrap_or_else(|| vec![ProcLine::missing(idx, "ended without a report")]);
    let status = child
        .wait()
        .map(status_token)
        .unwrap_or_else(|_| "-".into());
    if let Some(first) = lines.first_mut() {
        first.status = status;
    }
    lines
}

// ----- the child side ------------------------------------------------------------

/// A scenario process on a real process: the interpreter's [`Host`].
struct OsHost<'a> {
    os: &'a OsProcess,
    start_ns: u64,
    scale: f64,
    seed: u64,
    file: String,
    source: Arc<str>,
    rng: RefCell<SimRng>,
    /// Processes this one spawned, with their scenario index.
    children: RefCell<Vec<(usize, Child)>>,
    /// Reports of spawned children a `receive-any` came across.
    stash: RefCell<Vec<Message>>,
}

impl Host for OsHost<'_> {
    type I = OsProcess;

    fn ipc(&self) -> &OsProcess {
        self.os
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(monotonic_ns().saturating_sub(self.start_ns))
    }

    fn pause(&self, d: Dist, _busy: bool) {
        let d = d.sample(&mut self.rng.borrow_mut());
        std::thread::sleep(d.mul_f64(self.scale));
    }

    fn spawn_script(
        &self,
        shared: &Arc<Shared>,
        child: usize,
        inherit: &[CarriedRight],
    ) -> Result<(), String> {
        let pids = (0..shared.scenario.processes.len())
            .map(|i| shared.pid(i).map(|p| p.0))
            .collect();
        let setup = Setup {
            me: child,
            seed: self.seed,
            scale: self.scale,
            pids,
            file: self.file.clone(),
            source: self.source.to_string(),
        };
        let mut c = self.os.spawn(Spawn::new(ROLE)).map_err(|e| e.to_string())?;
        let pid = c.pid();
        let mut msg = Message::new(SETUP, setup.encode());
        for r in inherit {
            msg = msg.with_right(r.name, r.disposition);
        }
        let started = self
            .os
            .send_to(pid, msg)
            .map_err(|e| e.to_string())
            .and_then(|()| wait_ready(self.os, pid, &mut self.stash.borrow_mut()))
            .and_then(|()| {
                self.os
                    .send_to(pid, Message::from_u64(GO, self.start_ns))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = started {
            let _ = c.kill();
            let _ = c.wait();
            return Err(format!("the new process did not start: {e}"));
        }
        shared.set_pid(child, pid);
        self.children.borrow_mut().push((child, c));
        Ok(())
    }

    fn wall_clock(&self) -> bool {
        true
    }

    fn is_control(&self, msg: &Message) -> bool {
        msg.id == REPORT
            && self
                .children
                .borrow()
                .iter()
                .any(|(_, c)| Some(c.pid()) == msg.sender())
    }

    fn stash_control(&self, msg: Message) {
        self.stash.borrow_mut().push(msg);
    }
}

/// Waits for `pid`'s ready message; a report instead means it could not start.
fn wait_ready(os: &OsProcess, pid: Pid, stash: &mut Vec<Message>) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match os.receive_from_with(pid, Wait::For(left)) {
            Ok(m) if m.id == READY => return Ok(()),
            Ok(m) if m.id == REPORT => {
                let why = decode_report(&m.body.clone().into_vec())
                    .and_then(|l| l.first().map(|l| l.error.clone()))
                    .unwrap_or_default();
                stash.push(m);
                return Err(why);
            }
            Ok(_) => {}
            Err(ReceiveError::TimedOut) => {
                return Err(format!("no ready message within {START_TIMEOUT:?}"))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn die_with_parent(os: &OsProcess) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    // The parent may have died before the call: then we were re-parented.
    // SAFETY: getppid has no preconditions and cannot fail.
    let ppid = unsafe { libc::getppid() } as u32;
    os.parent().is_some_and(|p| p.0 == ppid)
}

fn role(os: &OsProcess) -> i32 {
    if !die_with_parent(os) {
        return 1;
    }
    let Some(parent) = os.parent() else {
        return 101;
    };
    let send_error = |idx: usize, e: String| {
        let line = ProcLine::missing(idx, &e);
        let _ = os.send_to(parent, Message::new(REPORT, encode_report(&[line])));
        eprintln!("mkipc: scenario process could not start: {e}");
        1
    };
    let setup_msg = match os.receive_from_with(parent, Wait::For(START_TIMEOUT)) {
        Ok(m) if m.id == SETUP => m,
        Ok(m) => {
            return send_error(
                0,
                format!("unexpected message {} instead of the setup", m.id),
            )
        }
        Err(e) => return send_error(0, format!("no setup message: {e}")),
    };
    let inherited: Vec<PortName> = setup_msg.rights.iter().map(|r| r.name).collect();
    let Some(setup) = Setup::decode(&setup_msg.body.into_vec(), 0) else {
        return send_error(0, "malformed setup message".into());
    };
    let scn = match super::parse(&setup.file, &setup.source) {
        Ok(s) => Arc::new(s),
        Err(e) => return send_error(0, e.to_string()),
    };
    let me = setup.me;
    if me >= scn.processes.len() {
        return send_error(0, format!("no process {me} in the scenario"));
    }
    let shared = Arc::new(Shared::new(Arc::clone(&scn), false));
    for (i, p) in setup.pids.iter().enumerate().take(scn.processes.len()) {
        if let Some(p) = p {
            shared.set_pid(i, Pid(*p));
        }
    }
    // The mailboxes this process owns exist before anyone starts.
    let mut preset = Vec::new();
    for (q, queue) in scn.queues.iter().enumerate() {
        if let QueueKind::Mailbox { owner: Some(o), .. } = queue.kind {
            if o == me {
                let config = MailboxConfig::new(queue.capacity).owner(Owner::Creator);
                match os.mailbox_create(&queue.name, config) {
                    Ok(name) => preset.push((q, name)),
                    Err(e) => {
                        return send_error(me, format!("creating mailbox `{}`: {e}", queue.name))
                    }
                }
            }
        }
    }
    if os.send_to(parent, Message::new(READY, Vec::new())).is_err() {
        return 1;
    }
    let start_ns = match os.receive_from_with(parent, Wait::Forever) {
        Ok(m) if m.id == GO => m.as_u64().unwrap_or_else(monotonic_ns),
        _ => return 1,
    };
    let host = OsHost {
        os,
        start_ns,
        scale: setup.scale,
        seed: setup.seed,
        file: setup.file.clone(),
        source: Arc::clone(&scn.source),
        rng: RefCell::new(SimRng::new(
            setup.seed
                ^ (me as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ u64::from(os.pid().0).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        )),
        children: RefCell::new(Vec::new()),
        stash: RefCell::new(Vec::new()),
    };
    let result = run_script(&host, &shared, me, &inherited, &preset);
    let (code, error) = match result.map_err(|e| e.into_status()) {
        Ok(()) => (0, String::new()),
        Err(ExitStatus::Failed { code, error }) => (code, error),
        Err(other) => (other.code(), String::new()),
    };
    let own = {
        let c = shared.counters();
        let t = c.times[me];
        ProcLine {
            idx: me,
            status: "-".into(),
            sent: c.procs[me].0,
            received: c.procs[me].1,
            drops: t.drops,
            send_failures: c.send_failures,
            dropped: c.dropped,
            blocked_ns: t.blocked.as_nanos() as u64,
            working_ns: t.working.as_nanos() as u64,
            queues: c
                .queues
                .iter()
                .map(|q| {
                    [
                        q.sent,
                        q.received,
                        q.dropped,
                        q.latency_total.as_nanos() as u64,
                    ]
                })
                .collect(),
            error,
            killed_for: None,
        }
    };
    let mut lines = vec![own];
    let children = std::mem::take(&mut *host.children.borrow_mut());
    let mut stash = std::mem::take(&mut *host.stash.borrow_mut());
    for (idx, mut child) in children {
        lines.extend(collect_child(os, idx, &mut child, &mut stash));
    }
    let _ = os.send_to(parent, Message::new(REPORT, encode_report(&lines)));
    code
}

// ----- the coordinator ----------------------------------------------------------

/// Length samples of one mailbox.
#[derive(Default)]
struct Samples {
    max: usize,
    weighted: f64,
    last: Option<(Instant, usize)>,
}

impl Samples {
    fn add(&mut self, at: Instant, len: usize) {
        if let Some((t, l)) = self.last {
            self.weighted += (at - t).as_secs_f64() * l as f64;
        }
        self.max = self.max.max(len);
        self.last = Some((at, len));
    }
    fn mean(&self, start: Instant, end: Instant) -> f64 {
        let mut w = self.weighted;
        if let Some((t, l)) = self.last {
            w += end.saturating_duration_since(t).as_secs_f64() * l as f64;
        }
        let span = (end - start).as_secs_f64();
        if span > 0.0 {
            w / span
        } else {
            0.0
        }
    }
}

/// One child of the coordinator.
struct Top {
    idx: usize,
    child: Child,
    lines: Option<Vec<ProcLine>>,
    done: bool,
    killed_for: Option<&'static str>,
}

fn kill(pid: Pid) {
    // SAFETY: `pid` is a child we have not reaped yet (its `Child` is alive
    // and not waited for), so the number cannot have been reused.
    unsafe {
        libc::kill(pid.0 as libc::pid_t, libc::SIGKILL);
    }
}

fn setup_err(scn: &Scenario, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: os backend: setting up {what}: {e}", scn.file)
}

/// Runs `scn` on real Linux processes; see the module docs. Unsupported
/// features are an error before anything is created ([`check_os`]).
pub fn run_os(scn: &Scenario, opts: &OsOptions) -> Result<RunResult, String> {
    check_os(scn)?;
    if !(opts.time_scale.is_finite() && opts.time_scale >= 0.0) {
        return Err(format!(
            "--time-scale must be a number >= 0, not {}",
            opts.time_scale
        ));
    }
    let os = OsProcess::new().map_err(|e| setup_err(scn, "the run", e))?;
    let run_id = os.run_id().to_string();
    let result = coordinate(scn, opts, &os);
    drop(os);
    let mut result = result?;
    let left = mkipc_os::leftovers(&run_id);
    if !left.is_empty() {
        let why = format!("left behind after cleanup: {}", left.join(", "));
        result.ok = false;
        result.failure = Some(match result.failure.take() {
            Some(f) => format!("{f}; {why}"),
            None => why,
        });
    }
    Ok(result)
}

fn coordinate(scn: &Scenario, opts: &OsOptions, os: &OsProcess) -> Result<RunResult, String> {
    let seed = opts.seed.unwrap_or(scn.seed);
    let mut ports: Vec<Option<PortName>> = vec![None; scn.queues.len()];
    let mut watched: Vec<(usize, PortName, Samples)> = Vec::new();
    for (i, q) in scn.queues.iter().enumerate() {
        match &q.kind {
            QueueKind::Port { .. } => {
                let r = os
                    .port_allocate(q.capacity)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                // A send right of our own, so that send rights can be copied
                // to every sender after the receive right has moved.
                os.make_right(r, Disposition::MakeSend)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                ports[i] = Some(r);
            }
            QueueKind::Mailbox { owner: None, .. } => {
                let config = MailboxConfig::new(q.capacity).owner(Owner::System);
                let name = os
                    .mailbox_create(&q.name, config)
                    .map_err(|e| setup_err(scn, &q.name, e))?;
                if q.capacity != Capacity::Unbounded {
                    watched.push((i, name, Samples::default()));
                }
            }
            QueueKind::Mailbox { .. } => {}
        }
    }
    let top: Vec<usize> = (0..scn.processes.len())
        .filter(|&i| !scn.processes[i].spawned)
        .collect();
    let pos = |i: usize| top.iter().position(|&t| t == i);
    let mut links: Vec<(usize, usize)> = Vec::new();
    for (k, &i) in top.iter().enumerate() {
        for s in statements(scn, i) {
            let link = match &s.op {
                Op::SendTo { proc } => pos(*proc).map(|j| (k, j)),
                Op::ReceiveFrom { proc, .. } => pos(*proc).map(|j| (j, k)),
                _ => None,
            };
            if let Some(l) = link {
                if l.0 != l.1 && !links.contains(&l) {
                    links.push(l);
                }
            }
        }
    }
    let specs = top.iter().map(|_| Spawn::new(ROLE)).collect();
    let children = os
        .spawn_group(specs, &links)
        .map_err(|e| setup_err(scn, "the processes", e))?;
    let mut pids: Vec<Option<u32>> = vec![None; scn.processes.len()];
    for (k, &i) in top.iter().enumerate() {
        pids[i] = Some(children[k].pid().0);
    }
    let mut tops: Vec<Top> = top
        .iter()
        .zip(children)
        .map(|(&idx, child)| Top {
            idx,
            child,
            lines: None,
            done: false,
            killed_for: None,
        })
        .collect();
    // Setup, then wait until everyone is ready.
    for t in &tops {
        let setup = Setup {
            me: t.idx,
            seed,
            scale: opts.time_scale,
            pids: pids.clone(),
            file: scn.file.clone(),
            source: scn.source.to_string(),
        };
        let mut msg = Message::new(SETUP, setup.encode());
        for (q, right) in &scn.processes[t.idx].rights {
            let name = ports[*q].unwrap_or(PortName::NULL);
            msg = msg.with_right(
                name,
                match right {
                    Right::Receive => Disposition::MoveReceive,
                    Right::Send => Disposition::CopySend,
                },
            );
        }
        os.send_to(t.child.pid(), msg)
            .map_err(|e| setup_err(scn, &scn.processes[t.idx].name, e))?;
    }
    let mut stash = Vec::new();
    for t in &tops {
        wait_ready(os, t.child.pid(), &mut stash)
            .map_err(|e| setup_err(scn, &format!("process `{}`", scn.processes[t.idx].name), e))?;
    }
    // Go.
    let start_ns = monotonic_ns();
    let start = Instant::now();
    for t in &tops {
        os.send_to(t.child.pid(), Message::from_u64(GO, start_ns))
            .map_err(|e| setup_err(scn, &scn.processes[t.idx].name, e))?;
    }
    let mut faults: Vec<(Duration, usize)> = scn
        .faults
        .iter()
        .filter_map(|f| match f.when {
            FaultWhen::At(at) => Some((at.mul_f64(opts.time_scale), f.proc)),
            _ => None,
        })
        .collect();
    faults.sort_by_key(|f| f.0);
    let mut timed_out = false;
    let mut end = start;
    while tops.iter().any(|t| !t.done) {
        let now = start.elapsed();
        if now >= opts.timeout {
            timed_out = true;
            for t in tops.iter_mut().filter(|t| !t.done) {
                kill(t.child.pid());
                t.killed_for = Some("the run timed out");
            }
        }
        while faults.first().is_some_and(|f| f.0 <= now) {
            let (_, proc) = faults.remove(0);
            for t in tops.iter_mut().filter(|t| t.idx == proc && !t.done) {
                kill(t.child.pid());
                t.killed_for = Some("fault");
            }
        }
        for t in tops.iter_mut().filter(|t| !t.done) {
            match os.receive_from_with(t.child.pid(), Wait::NoWait) {
                Ok(m) if m.id == REPORT => {
                    t.lines = decode_report(&m.body.into_vec());
                    t.done = true;
                }
                Ok(_) | Err(ReceiveError::Empty) => {}
                Err(_) => t.done = true,
            }
            if t.done {
                end = Instant::now();
            }
        }
        let at = Instant::now();
        for (_, name, s) in &mut watched {
            if let Ok(st) = os.port_status(*name) {
                s.add(at, st.queue_len);
            }
        }
        if tops.iter().any(|t| !t.done) {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let mut lines: Vec<ProcLine> = Vec::new();
    for t in &mut tops {
        let status = t
            .child
            .wait()
            .map(status_token)
            .unwrap_or_else(|_| "-".into());
        let mut l = t
            .lines
            .take()
            .unwrap_or_else(|| vec![ProcLine::missing(t.idx, "")]);
        if let Some(first) = l.first_mut() {
            first.status = status;
            first.killed_for = t.killed_for;
        }
        lines.extend(l);
    }
    Ok(summarize(
        scn, opts, os, &lines, &watched, start, end, timed_out,
    ))
}

fn status_text(l: &ProcLine) -> String {
    let signal = l.status.strip_prefix("signal:");
    let code = l
        .status
        .strip_prefix("exit:")
        .and_then(|c| c.parse::<i32>().ok());
    match (l.killed_for, signal, code) {
        (Some("fault"), Some(_), _) => "killed".into(),
        (Some(why), Some(_), _) => format!("killed ({why})"),
        (_, Some(sig), _) => format!("killed by signal {sig}"),
        (_, _, Some(c)) if l.error.is_empty() => format!("exited({c})"),
        (_, _, Some(c)) => format!("failed({c}): {}", l.error),
        _ if l.error.is_empty() => "unknown".into(),
        _ => format!("unknown: {}", l.error),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    scn: &Scenario,
    opts: &OsOptions,
    os: &OsProcess,
    lines: &[ProcLine],
    watched: &[(usize, PortName, Samples)],
    start: Instant,
    end: Instant,
    timed_out: bool,
) -> RunResult {
    let nq = scn.queues.len();
    let mut per_q = vec![[0u64; 4]; nq];
    let mut totals = MessageTotals::default();
    let mut failures: Vec<String> = Vec::new();
    let processes = lines
        .iter()
        .map(|l| {
            for (acc, q) in per_q.iter_mut().zip(&l.queues) {
                for k in 0..4 {
                    acc[k] += q[k];
                }
            }
            totals.sent += l.sent;
            totals.received += l.received;
            totals.dropped += l.dropped;
            totals.send_failures += l.send_failures;
            let name = scn
                .processes
                .get(l.idx)
                .map_or_else(|| format!("#{}", l.idx), |p| p.name.clone());
            if l.status == "-" || (l.killed_for.is_none() && l.status.starts_with("signal:")) {
                failures.push(format!(
                    "process `{name}` ended abnormally: {}",
                    status_text(l)
                ));
            }
            ProcessResult {
                status: status_text(l),
                name,
                sent: l.sent,
                received: l.received,
                drops: l.drops,
                blocked_ms: Some(l.blocked_ns as f64 / 1e6),
                working_ms: Some(l.working_ns as f64 / 1e6),
            }
        })
        .collect();
    totals.lost = totals.sent.saturating_sub(totals.received);
    let queues = scn
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let c = per_q[i];
            let w = watched.iter().find(|w| w.0 == i).map(|w| &w.2);
            QueueResult {
                name: q.name.clone(),
                kind: if q.is_mailbox() { "mailbox" } else { "port" }.to_string(),
                capacity: q.capacity.to_string(),
                sent: c[0],
                dropped: c[2],
                received: c[1],
                max_len: w.map(|s| s.max),
                mean_len: w.map(|s| s.mean(start, end)),
                mean_latency_ms: (c[1] > 0).then(|| c[3] as f64 / 1e6 / c[1] as f64),
            }
        })
        .collect();
    let mut invariants = Vec::new();
    for &(q, k) in &scn.invariants.never_exceeds {
        let queue = &scn.queues[q];
        let name = format!("{} never exceeds {k}", queue.name);
        let message = match queue.capacity {
            Capacity::Bounded(n) if n <= k => None,
            _ => watched
                .iter()
                .find(|w| w.0 == q)
                .filter(|w| w.2.max > k)
                .map(|w| format!("a sample saw {} messages", w.2.max)),
        };
        if let Some(m) = &message {
            failures.push(format!("invariant `{name}` failed: {m}"));
        }
        invariants.push(InvariantResult {
            held: message.is_none(),
            name,
            message,
        });
    }
    if scn.invariants.no_message_lost {
        let message = (totals.lost > 0).then(|| {
            format!(
                "{} of {} messages were never received ({} dropped by a full queue, {} still queued when their queue died or the run ended)",
                totals.lost,
                totals.sent,
                totals.dropped,
                totals.lost.saturating_sub(totals.dropped)
            )
        });
        if let Some(m) = &message {
            failures.push(format!("invariant `no message lost` failed: {m}"));
        }
        invariants.push(InvariantResult {
            name: "no message lost".into(),
            held: message.is_none(),
            message,
        });
    }
    if timed_out {
        failures.insert(
            0,
            format!(
                "timed out after {:?}: the processes still running were killed (a deadlock, or raise --timeout)",
                opts.timeout
            ),
        );
    }
    let failure = (!failures.is_empty()).then(|| failures.join("; "));
    RunResult {
        scenario: scn.name.clone(),
        file: scn.file.clone(),
        backend: "os".into(),
        seed: Some(opts.seed.unwrap_or(scn.seed)),
        scheduler: None,
        steps: None,
        time_ms: ms(end - start),
        ok: failure.is_none(),
        deadlock: false,
        failure,
        schedule: None,
        processes,
        queues,
        messages: totals,
        invariants,
        run_id: Some(os.run_id().to_string()),
        time_scale: Some(opts.time_scale),
    }
}
