//! A scenario process: the role a re-executed `mkipc` plays, running the
//! same interpreter as the simulator on an [`OsProcess`].

use super::*;

/// A scenario process on a real process: the [`Ctx`] the interpreter
/// runs with. Its blocking operations add their wall time to the
/// process's blocked time; its direct receives pass over the reports of
/// the children it spawned (kept for the end); `spawn` starts a grandchild.
pub(super) struct OsHost<'a> {
    pub(super) os: &'a OsProcess,
    pub(super) shared: Arc<Shared>,
    pub(super) me: usize,
    pub(super) start_ns: u64,
    pub(super) scale: f64,
    pub(super) seed: u64,
    pub(super) file: String,
    pub(super) source: Arc<str>,
    pub(super) rng: SimRng,
    /// Processes this one spawned, with their scenario index.
    pub(super) children: Vec<(usize, Child)>,
    /// Reports of spawned children a `receive-any` came across.
    pub(super) stash: Vec<Message>,
    /// Why the last `spawn` failed, in more words than an [`IpcError`].
    pub(super) spawn_failure: Option<String>,
    /// On a traced run: the directory (handed to spawned processes) and
    /// this process's file in it.
    pub(super) trace: Option<(String, super::trace_file::TraceFile)>,
}

impl OsHost<'_> {
    fn emit(&self, kind: EventKind) {
        if let Some((_, f)) = &self.trace {
            f.emit(&kind);
        }
    }

    /// Runs a possibly blocking IPC call, adding its wall time to this
    /// process's blocked time.
    fn timed<T>(&self, f: impl FnOnce(&OsProcess) -> T) -> T {
        let t = Instant::now();
        let r = f(self.os);
        self.shared.counters().times[self.me].blocked += t.elapsed();
        r
    }

    /// A direct receive, passing over the reports of spawned children.
    fn direct_receive(&mut self, source: Source<'_>, wait: Wait) -> Result<Message, ReceiveError> {
        let started = Instant::now();
        let mut w = wait;
        loop {
            let r = self.timed(|os| receive_blocking(os, source, w));
            match r {
                Ok(msg) if self.is_control(&msg) => {
                    self.stash.push(msg);
                    if let Wait::For(t) = wait {
                        w = Wait::For(t.saturating_sub(started.elapsed()));
                    }
                }
                other => return other,
            }
        }
    }

    /// Whether a directly received message is a spawned child's report.
    fn is_control(&self, msg: &Message) -> bool {
        msg.id == REPORT
            && self
                .children
                .iter()
                .any(|(_, c)| Some(c.pid()) == msg.sender())
    }

    /// Starts process `child` as a grandchild, handing it `inherit`.
    fn spawn_script(&mut self, child: usize, inherit: &[CarriedRight]) -> Result<(), String> {
        let shared = &self.shared;
        let pids = (0..shared.scenario.processes.len())
            .map(|i| shared.pid(i).map(|p| p.0))
            .collect();
        let setup = Setup {
            me: child,
            seed: self.seed,
            scale: self.scale,
            pids,
            file: self.file.clone(),
            overrides: shared.scenario.overrides.clone(),
            trace: self.trace.as_ref().map(|(d, _)| d.clone()),
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
            .and_then(|()| wait_ready(self.os, pid, &mut self.stash))
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
        self.children.push((child, c));
        Ok(())
    }
}

impl Ctx<ScriptMachine> for OsHost<'_> {
    type Ipc = OsProcess;

    fn ipc(&self) -> &OsProcess {
        self.os
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(monotonic_ns().saturating_sub(self.start_ns))
    }

    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> MachineOp<Result<Sent, SendError>> {
        if self.trace.is_none() {
            return MachineOp::Done(self.timed(|os| send_blocking(os, dest, msg, on_full)));
        }
        let (to, id) = (record::dest_target(dest), msg.id);
        self.emit(record::send_started(to, &msg));
        let r = self.timed(|os| send_blocking(os, dest, msg, on_full));
        self.emit(record::send_completed(to, id, &r));
        MachineOp::Done(r)
    }

    fn receive(
        &mut self,
        source: Source<'_>,
        wait: Wait,
    ) -> MachineOp<Result<Message, ReceiveError>> {
        let from = record::source_target(&source);
        self.emit(EventKind::ReceiveStarted { from });
        let r = match source {
            Source::Task(_) | Source::AnyTask => self.direct_receive(source, wait),
            Source::Name(_) | Source::Any(_) => self.timed(|os| receive_blocking(os, source, wait)),
        };
        self.emit(record::receive_done(from, r.as_ref().map_err(|e| *e)));
        MachineOp::Done(r)
    }

    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        // The os backend's call has no reply port: the request carries a
        // token, the reply goes to the caller's reply queue. Traced as the
        // other backends trace a call: the request's send, the reply's
        // receive, both addressed to `dest`.
        let (to, id) = (Target::Name(dest), msg.id);
        self.emit(record::send_started(to, &msg));
        let r = self.timed(|os| os.call_with(dest, msg, Wait::Forever));
        if self.trace.is_some() {
            let (sent, got) = match &r {
                Ok(reply) => (Ok(Sent::Delivered), Ok(reply)),
                Err(CallError::Send(e)) => (
                    Err(SendError::new(e.kind(), Message::default())),
                    Err(ReceiveError::SourceDead),
                ),
                Err(CallError::Receive(e)) => (Ok(Sent::Delivered), Err(*e)),
                Err(CallError::NoReply) => (Ok(Sent::Delivered), Err(ReceiveError::SourceDead)),
            };
            self.emit(record::send_completed(to, id, &sent));
            if sent.is_ok() {
                self.emit(record::receive_done(to, got));
            }
        }
        CallStart::Done(r)
    }

    fn choose(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.rng.below(n as u64) as usize
    }

    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], _make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> ScriptMachine + Send + 'static,
    {
        // The new process parses the scenario again and builds its own
        // machine: only which process it plays crosses over.
        let child = self
            .shared
            .scenario
            .process_index(name)
            .ok_or(IpcError::NotFound)?;
        self.spawn_failure = None;
        self.spawn_script(child, inherit).map_err(|why| {
            self.spawn_failure = Some(why);
            IpcError::TaskExited
        })
    }
}

/// Waits for `pid`'s ready message; a report instead means it could not start.
pub(super) fn wait_ready(os: &OsProcess, pid: Pid, stash: &mut Vec<Message>) -> Result<(), String> {
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

pub(super) fn die_with_parent(os: &OsProcess) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    // The parent may have died before the call: then we were re-parented.
    // SAFETY: getppid has no preconditions and cannot fail.
    let ppid = unsafe { libc::getppid() } as u32;
    os.parent().is_some_and(|p| p.0 == ppid)
}

pub(super) fn role(os: &OsProcess) -> i32 {
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
    let inherited: Vec<PortName> = setup_msg.rights().iter().map(|r| r.name).collect();
    let Some(setup) = Setup::decode(&setup_msg.body.into_vec(), 0) else {
        return send_error(0, "malformed setup message".into());
    };
    let scn = match super::super::parse_with(&setup.file, &setup.source, &setup.overrides) {
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
    let mut host = OsHost {
        os,
        shared: Arc::clone(&shared),
        me,
        start_ns,
        scale: setup.scale,
        seed: setup.seed,
        file: setup.file.clone(),
        source: Arc::clone(&scn.source),
        rng: SimRng::new(
            setup.seed
                ^ (me as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ u64::from(os.pid().0).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        ),
        children: Vec::new(),
        stash: Vec::new(),
        spawn_failure: None,
        trace: setup.trace.as_ref().and_then(|dir| {
            let f = super::trace_file::TraceFile::create(
                std::path::Path::new(dir),
                me,
                os.pid().0,
                start_ns,
            )?;
            Some((dir.clone(), f))
        }),
    };
    host.emit(EventKind::Spawned { parent: None });
    let mut machine = ScriptMachine::new(&shared, me, &inherited, &preset);
    let result = run_blocking(&mut machine, &mut host, |host, time, busy| {
        // `work` and `sleep` are real sleeps, times the time scale.
        let t = Instant::now();
        let d = time.sample(&mut host.rng);
        host.emit(if busy {
            EventKind::Work { duration: d }
        } else {
            EventKind::Sleep { duration: d }
        });
        std::thread::sleep(scaled(d, host.scale));
        if busy {
            host.shared.counters().times[host.me].working += t.elapsed();
        }
    });
    // A failed spawn says why in more words than its `IpcError`.
    let result = match (result, host.spawn_failure.take()) {
        (Err(e), Some(why)) => match e.into_status() {
            ExitStatus::Failed { error, .. } => Err(ProcError::msg(format!("{error} ({why})"))),
            other => Err(ProcError::msg(other.to_string())),
        },
        (result, _) => result,
    };
    if let Some((_, f)) = &host.trace {
        for (q, name) in machine.queue_names() {
            f.label(name, &scn.queues[q].name);
        }
        let status = match &result {
            Ok(()) => ExitStatus::Exited(0),
            Err(e) => e.status(),
        };
        f.emit(&EventKind::Exited { status });
    }
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
            unreported: false,
        }
    };
    let mut lines = vec![own];
    let children = std::mem::take(&mut host.children);
    let mut stash = std::mem::take(&mut host.stash);
    for (idx, mut child) in children {
        lines.extend(collect_child(os, idx, &mut child, &mut stash));
    }
    let _ = os.send_to(parent, Message::new(REPORT, encode_report(&lines)));
    code
}

// ----- the coordinator ----------------------------------------------------------
