//! Which scenarios the os backend can run: everything is checked before
//! anything is created, and a refusal names the feature and the reason.

use super::*;
use crate::scenario::backend::{BackendKind, Unsupported};
use crate::scenario::{ArmKind, MechOp, Process};
use mkipc_kernel::OnFull;

/// Why pipes and FIFOs are refused on real processes.
const PIPES_ON_OS: &str = "end of file needs to know when the last write end closed: the os \
    backend's ports are POSIX queues with no no-senders notification, and its FIFOs are \
    mailboxes whose reader holds them open read-write, so end of file would never come";

pub(super) fn unsupported(scn: &Scenario, what: String, why: &str) -> Result<(), Unsupported> {
    Err(Unsupported::new(scn, BackendKind::Os, Some(what), why))
}

pub(super) fn statements(scn: &Scenario, proc: usize) -> Vec<&Stmt> {
    crate::scenario::walk(&scn.processes[proc].script)
}

/// `/proc/sys/fs/mqueue/msg_max`: the largest `mq_maxmsg` an ordinary user may ask for.
pub(super) fn msg_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Checks that `scn` uses only what the os backend can give; the error
/// names the first feature that it cannot, and why.
pub fn check_os(scn: &Scenario) -> Result<(), Unsupported> {
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
    if let Some(p) = scn.processes.iter().find(|p| p.may_wait_forever()) {
        return unsupported(
            scn,
            format!(
                "{} on `{}` is",
                if p.server {
                    "`server = true`"
                } else {
                    "an `end:` label"
                },
                p.name
            ),
            "only the simulator knows when every other process has ended and a server may be left waiting",
        );
    }
    if let Some(q) = scn.queues.iter().find(|q| q.is_pipe()) {
        return unsupported(
            scn,
            format!("{} `{}` is", q.kind_name(), q.name),
            PIPES_ON_OS,
        );
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
                    "per-process grants: the os runner makes its mailboxes before it spawns the processes an access list names, whose pids are not known yet (granting after the spawn is not built)",
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
            if let Some(why) = refusal(scn, p, s) {
                return unsupported(scn, why.0, &why.1);
            }
        }
    }
    Ok(())
}

pub(super) fn mkipc_os_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Why the os backend cannot run statement `s` of process `p`: the feature
/// ("... is") and the reason. Every statement is named (no catch-all), so a
/// new one cannot pass this check unnoticed.
fn refusal(scn: &Scenario, p: &Process, s: &Stmt) -> Option<(String, String)> {
    let direct = |peer: usize| {
        (p.spawned || scn.processes[peer].spawned).then(|| {
            (
                format!(
                    "direct communication between `{}` and `{}` (line {}) is",
                    p.name, scn.processes[peer].name, s.line
                ),
                "direct links are pipes made when processes start together, and a spawned process starts later"
                    .to_string(),
            )
        })
    };
    match &s.op {
        Op::SendTo { proc } | Op::ReceiveFrom { proc, .. } => direct(*proc),
        Op::Send {
            queue,
            on_full: OnFull::DropOldest,
            ..
        } if !scn.queues[*queue].is_mailbox() => Some((
            format!(
                "`send {} drop-oldest` (line {}) is",
                scn.queues[*queue].name, s.line
            ),
            mkipc_kernel::error::Unsupported::DropOldest.to_string(),
        )),
        Op::SendVia {
            on_full: OnFull::DropOldest,
            ..
        } => Some((
            format!(
                "a `drop-oldest` send to a queue held in a variable (line {}) is",
                s.line
            ),
            format!(
                "it may be a port: {}",
                mkipc_kernel::error::Unsupported::DropOldest
            ),
        )),
        Op::Select(arms) | Op::SelectAny(arms) => {
            let mut queues: Vec<usize> = Vec::new();
            let mut held = 0;
            for a in arms {
                match a.kind {
                    ArmKind::Receive { queue, .. } if !queues.contains(&queue) => {
                        queues.push(queue)
                    }
                    // A queue held in a variable may be any other.
                    ArmKind::ReceiveVia { .. } => held += 1,
                    _ => {}
                }
            }
            (queues.len() + held > 1).then(|| {
                (
                    format!(
                        "a `select` receiving from more than one queue (line {}) is",
                        s.line
                    ),
                    "the os backend's select does not say which queue a message came from"
                        .to_string(),
                )
            })
        }
        Op::Send { .. }
        | Op::SendVia { .. }
        | Op::Receive { .. }
        | Op::ReceiveVia { .. }
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
        | Op::TrySend { .. }
        | Op::Assert { .. } => None,
        Op::Mech(MechOp::Close(_)) => Some((
            format!("`close` (line {}) is", s.line),
            PIPES_ON_OS.to_string(),
        )),
        Op::Mech(
            MechOp::Load { .. } | MechOp::Store { .. } | MechOp::Lock(_) | MechOp::Unlock(_),
        ) => None,
    }
}
