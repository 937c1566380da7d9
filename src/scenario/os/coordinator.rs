//! The coordinator: starts the run's processes, samples mailboxes, applies
//! timed faults and the timeout, collects reports, and checks that nothing
//! was left behind.

use super::*;

/// Collects the report a spawned child sends, then its exit status.
pub(super) fn collect_child(
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

/// Length samples of one mailbox.
#[derive(Default)]
pub(super) struct Samples {
    pub(super) max: usize,
    pub(super) weighted: f64,
    pub(super) last: Option<(Instant, usize)>,
}

impl Samples {
    pub(super) fn add(&mut self, at: Instant, len: usize) {
        if let Some((t, l)) = self.last {
            self.weighted += (at - t).as_secs_f64() * l as f64;
        }
        self.max = self.max.max(len);
        self.last = Some((at, len));
    }
    pub(super) fn mean(&self, start: Instant, end: Instant) -> f64 {
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
pub(super) struct Top {
    pub(super) idx: usize,
    pub(super) child: Child,
    pub(super) lines: Option<Vec<ProcLine>>,
    pub(super) done: bool,
    pub(super) killed_for: Option<&'static str>,
}

pub(super) fn kill(pid: Pid) {
    // SAFETY: `pid` is a child we have not reaped yet (its `Child` is alive
    // and not waited for), so the number cannot have been reused.
    unsafe {
        libc::kill(pid.0 as libc::pid_t, libc::SIGKILL);
    }
}

pub(super) fn setup_err(scn: &Scenario, what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::setup(scn, BackendKind::Os, what, e)
}

/// Runs `scn` on real Linux processes; see the module docs. Unsupported
/// features are an error before anything is created ([`check_os`]).
pub fn run_os(scn: &Scenario, opts: &OsOptions) -> Result<RunResult, RunError> {
    run_os_with(scn, opts, None)
}

/// [`run_os`], with the run's trace: every process's sends, receives,
/// calls, pauses and exit, timed on `CLOCK_MONOTONIC` since the go
/// (`trace_file`); a killed process's events up to its kill are kept.
pub fn run_os_traced(
    scn: &Scenario,
    opts: &OsOptions,
) -> Result<(RunResult, mkipc_sim::Trace), RunError> {
    let dir = std::env::temp_dir().join(format!(
        "mkipc-trace-{}-{:x}",
        std::process::id(),
        monotonic_ns()
    ));
    std::fs::create_dir(&dir).map_err(|e| setup_err(scn, "the trace directory", e))?;
    let result = run_os_with(scn, opts, Some(&dir));
    let names: Vec<String> = scn.processes.iter().map(|p| p.name.clone()).collect();
    let trace = trace_file::collect(&dir, &names);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((result?, trace))
}

fn run_os_with(
    scn: &Scenario,
    opts: &OsOptions,
    trace: Option<&std::path::Path>,
) -> Result<RunResult, RunError> {
    check_os(scn)?;
    if !(opts.time_scale.is_finite() && opts.time_scale >= 0.0) {
        return Err(RunError::BadOption(format!(
            "--time-scale must be a number >= 0, not {}",
            opts.time_scale
        )));
    }
    let os = OsProcess::new().map_err(|e| setup_err(scn, "the run", e))?;
    let run_id = os.run_id().to_string();
    let result = coordinate(scn, opts, &os, trace);
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

pub(super) fn coordinate(
    scn: &Scenario,
    opts: &OsOptions,
    os: &OsProcess,
    trace: Option<&std::path::Path>,
) -> Result<RunResult, RunError> {
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
                // A shared variable's value, a lock's token.
                if let Some(msg) = crate::scenario::mech::first_message(q) {
                    os.send_with(name, msg, OnFull::Fail)
                        .map_err(|e| setup_err(scn, &q.name, e))?;
                }
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
            overrides: scn.overrides.clone(),
            trace: trace.map(|d| d.display().to_string()),
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
            FaultWhen::At(at) => Some((scaled(at, opts.time_scale), f.proc)),
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
        let reported = t.lines.is_some();
        let mut l = t
            .lines
            .take()
            .unwrap_or_else(|| vec![ProcLine::missing(t.idx, "")]);
        if let Some(first) = l.first_mut() {
            first.status = status;
            first.killed_for = t.killed_for;
            first.unreported = !reported;
        }
        lines.extend(l);
    }
    Ok(summarize(
        scn, opts, os, &lines, &watched, start, end, timed_out,
    ))
}

pub(super) fn status_text(l: &ProcLine) -> String {
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

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[allow(clippy::too_many_arguments)]
pub(super) fn summarize(
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
    let mut processes: Vec<ProcessResult> = lines
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
            let check = [ASSERT_FAILED, EXPECT_FAILED]
                .iter()
                .any(|m| l.error.contains(&format!(": {m}: ")));
            if check {
                failures.push(format!("`{name}` {}", l.error));
            }
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
                unknown: l.unreported.then(|| {
                    "killed before it could report its figures (a killed process runs no code)"
                        .to_string()
                }),
            }
        })
        .collect();
    crate::scenario::report::name_instances(&mut processes);
    totals.lost = totals.sent.saturating_sub(totals.received);
    let unreported: Vec<&str> = processes
        .iter()
        .filter(|p| p.unknown.is_some())
        .map(|p| p.name.as_str())
        .collect();
    if !unreported.is_empty() {
        totals.incomplete = Some(format!("{} killed before reporting", unreported.join(", ")));
    }
    let queues = scn
        .queues
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let c = per_q[i];
            let w = watched.iter().find(|w| w.0 == i).map(|w| &w.2);
            QueueResult {
                name: q.name.clone(),
                kind: q.kind_name().to_string(),
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
    if let (true, Some(why)) = (scn.invariants.no_message_lost, &totals.incomplete) {
        invariants.push(InvariantResult {
            name: "no message lost".into(),
            held: false,
            message: Some(format!("not known: {why}")),
        });
    } else if scn.invariants.no_message_lost {
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
        trace_note: None,
    }
}
