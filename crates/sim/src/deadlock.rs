//! Deadlock reports: who waits on what, held by whom, and the cycle.
//!
//! When no process can run, no timer is pending and some processes are still
//! blocked, the run is stuck for good. The simulator then builds a *wait-for
//! graph*: a process blocked sending to a port waits for the task holding the
//! port's receive right; a process blocked receiving waits for the tasks
//! holding send rights to it; a process joining another waits for it. The
//! kernel answers "what does this task wait on" ([`Kernel::blocked_on`]);
//! the simulator adds the labels. A cycle in the graph is the deadlock's
//! cause and is what the report prints first:
//!
//! ```text
//! deadlock: a waits sending to port p (receive right held by b) -> b waits sending to port q (receive right held by a)
//! ```
//!
//! [`Kernel::blocked_on`]: mkipc_kernel::Kernel::blocked_on

use std::collections::BTreeMap;
use std::fmt;

use mkipc_kernel::{Pid, PortName};

use crate::runtime::{Core, PState};
use crate::trace::Target;
use crate::ProcId;

/// What one stuck process waits for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Waiting {
    /// The process.
    pub proc: ProcId,
    /// Its name.
    pub name: String,
    /// `"send"`, `"receive"`, `"call"` (waiting for the reply) or `"join"`.
    pub op: &'static str,
    /// The port, mailbox or process it waits on.
    pub on: String,
    /// The processes that could end the wait (holders of the other end).
    pub held_by: Vec<String>,
    held_by_ids: Vec<ProcId>,
}

/// A deadlock: every stuck process, and the wait-for cycle if there is one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Deadlock {
    /// Every process still blocked.
    pub waiting: Vec<Waiting>,
    /// The cycle, as indices into `waiting`: each waits on the next's holder.
    pub cycle: Vec<usize>,
}

impl Deadlock {
    /// The processes in the cycle, by name.
    pub fn cycle_names(&self) -> Vec<&str> {
        self.cycle
            .iter()
            .map(|&i| self.waiting[i].name.as_str())
            .collect()
    }
    /// The ports or mailboxes the cycle waits on, by label.
    pub fn cycle_queues(&self) -> Vec<&str> {
        self.cycle
            .iter()
            .map(|&i| self.waiting[i].on.as_str())
            .collect()
    }
}

impl Deadlock {
    /// Every process still waiting is a declared server waiting at a
    /// receive: a valid end state, not a deadlock.
    pub(crate) fn is_valid_end(&self, procs: &[crate::runtime::ProcMeta]) -> bool {
        self.is_valid_end_with(|id| procs[id.0 as usize].server)
    }

    /// [`Deadlock::is_valid_end`] for any runner: `server` says which
    /// processes were declared servers.
    pub(crate) fn is_valid_end_with(&self, server: impl Fn(ProcId) -> bool) -> bool {
        self.waiting
            .iter()
            .all(|w| w.op == "receive" && server(w.proc))
    }
}

fn describe(w: &Waiting, next: Option<&Waiting>) -> String {
    let verb = match w.op {
        "send" => "sending to",
        "receive" => "receiving from",
        "call" => "for the reply to its call to",
        _ => "joining",
    };
    let held = match (w.op, next) {
        ("join", _) => String::new(),
        (_, Some(n)) => format!(
            " ({} held by {})",
            if w.op == "receive" {
                "send right"
            } else {
                "receive right"
            },
            n.name
        ),
        (_, None) if w.held_by.is_empty() => " (held by no live process)".to_string(),
        (_, None) => format!(" (held by {})", w.held_by.join(", ")),
    };
    format!("{} waits {verb} {}{held}", w.name, w.on)
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cycle.is_empty() {
            write!(f, "deadlock (no wait-for cycle: a wait nobody can end): ")?;
            let parts: Vec<String> = self.waiting.iter().map(|w| describe(w, None)).collect();
            return f.write_str(&parts.join("; "));
        }
        write!(f, "deadlock: ")?;
        let parts: Vec<String> = self
            .cycle
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let next = self.cycle[(k + 1) % self.cycle.len()];
                describe(&self.waiting[i], Some(&self.waiting[next]))
            })
            .collect();
        f.write_str(&parts.join(" -> "))?;
        let others: Vec<String> = (0..self.waiting.len())
            .filter(|i| !self.cycle.contains(i))
            .map(|i| describe(&self.waiting[i], None))
            .collect();
        if !others.is_empty() {
            write!(f, "; also stuck: {}", others.join("; "))?;
        }
        Ok(())
    }
}

/// What one process is doing, as the wait-for analysis needs it.
pub(crate) enum StuckWait {
    /// Blocked in the kernel; the operation in progress if known (`true` =
    /// sending) and what it names.
    Blocked(Option<(bool, Target)>),
    /// Joining that process.
    Joining(ProcId),
    /// Neither (running, ready, ended).
    Not,
}

/// One process of a run, for [`analyse_procs`].
pub(crate) struct StuckInput {
    /// Its id.
    pub id: ProcId,
    /// Its name.
    pub name: String,
    /// Its kernel task.
    pub pid: Pid,
    /// What it waits on.
    pub wait: StuckWait,
}

/// Builds the report from the stuck run's state.
pub(crate) fn analyse(core: &Core, target_name: impl Fn(ProcId, Target) -> String) -> Deadlock {
    let procs = core.procs.borrow();
    let inputs: Vec<StuckInput> = procs
        .iter()
        .enumerate()
        .map(|(i, m)| StuckInput {
            id: ProcId(i as u32),
            name: m.name.clone(),
            pid: m.pid,
            wait: match m.state {
                PState::Blocked => StuckWait::Blocked(m.blocked_on),
                PState::Joining(t) => StuckWait::Joining(t),
                _ => StuckWait::Not,
            },
        })
        .collect();
    drop(procs);
    analyse_procs(
        &core.kernel,
        core.init,
        &inputs,
        target_name,
        |caller, dest| call_server(core, caller, dest),
    )
}

/// The wait-for analysis over any runner's processes (the simulator's, the
/// stateful checker's): `kernel` answers what each blocked task waits on;
/// `call_server` names the task serving a call's destination, if known.
pub(crate) fn analyse_procs(
    kernel: &mkipc_kernel::Kernel,
    init: Pid,
    procs: &[StuckInput],
    target_name: impl Fn(ProcId, Target) -> String,
    call_server: impl Fn(Pid, PortName) -> Option<Pid>,
) -> Deadlock {
    let by_pid: BTreeMap<u32, ProcId> = procs.iter().map(|m| (m.pid.0, m.id)).collect();
    let name_of = |pid: u32| match by_pid.get(&pid) {
        Some(p) => procs[p.0 as usize].name.clone(),
        None if pid == init.0 => "the simulator's setup task".to_string(),
        None => format!("pid {pid}"),
    };
    let mut waiting = Vec::new();
    for m in procs {
        let id = m.id;
        match m.wait {
            StuckWait::Blocked(blocked_on) => {
                let mut holders: Vec<u32> = Vec::new();
                let mut on = None;
                let waits = kernel.blocked_on(m.pid);
                // A call whose request went out and which now waits on its
                // reply port: the kernel sees a receive nobody holds a send
                // right for (the send-once right travels in the request).
                let in_call_reply =
                    matches!(blocked_on, Some((true, _))) && waits.iter().all(|b| !b.sending);
                for b in waits {
                    if let Some((from, to)) = b.link {
                        holders.push(if b.sending { to.0 } else { from.0 });
                    } else if b.sending {
                        holders.extend(b.receiver.map(|p| p.0));
                    } else {
                        holders.extend(b.senders.iter().map(|p| p.0));
                    }
                    if on.is_none() {
                        on = b.mailbox.clone().map(|n| format!("mailbox {n}"));
                        if on.is_none() {
                            on = Some(format!("port #{:x}", b.queue_id));
                        }
                    }
                }
                holders.sort_unstable();
                holders.dedup();
                let (sending, label) = match blocked_on {
                    Some((s, t)) => (s, target_name(id, t)),
                    None => (false, on.unwrap_or_else(|| "?".into())),
                };
                if in_call_reply {
                    // The request sits with the receiver of the call's
                    // destination; the kernel cannot say who that is once the
                    // request is queued (notes/sim-requests.md), so use the
                    // holder the runner tracked for ports it created. The
                    // destination is found by identity (which watched queue
                    // the caller's name denotes), never by label: labels may
                    // repeat.
                    if let Some((_, Target::Name(dest))) = blocked_on {
                        if let Some(holder) = call_server(m.pid, dest) {
                            holders.push(holder.0);
                        }
                    }
                    holders.sort_unstable();
                    holders.dedup();
                }
                let held_by_ids: Vec<ProcId> = holders
                    .iter()
                    .filter_map(|p| by_pid.get(p).copied())
                    .collect();
                waiting.push(Waiting {
                    proc: id,
                    name: m.name.clone(),
                    op: match (in_call_reply, sending) {
                        (true, _) => "call",
                        (false, true) => "send",
                        (false, false) => "receive",
                    },
                    on: label,
                    held_by: holders.iter().map(|&p| name_of(p)).collect(),
                    held_by_ids,
                });
            }
            StuckWait::Joining(t) => waiting.push(Waiting {
                proc: id,
                name: m.name.clone(),
                op: "join",
                on: procs[t.0 as usize].name.clone(),
                held_by: vec![procs[t.0 as usize].name.clone()],
                held_by_ids: vec![t],
            }),
            StuckWait::Not => {}
        }
    }
    let cycle = find_cycle(&waiting, false)
        .or_else(|| find_cycle(&waiting, true))
        .unwrap_or_default();
    Deadlock { waiting, cycle }
}

/// The task holding the receive end of the watched queue that `dest` (in
/// `caller`'s space) denotes, if the simulator knows it and that task still
/// holds it.
fn call_server(core: &Core, caller: Pid, dest: PortName) -> Option<Pid> {
    let queue = core.queue_of(caller, dest)?;
    let watched = core.watched.borrow();
    let w = watched.get(queue)?;
    let holds = core
        .kernel
        .rights(w.holder, w.name)
        .is_ok_and(|r| r.receive || r.mailbox.is_some());
    (w.holder != core.init && holds).then_some(w.holder)
}

/// A cycle in the wait-for graph, as indices into `waiting`, found by
/// depth-first search from each node in order (so the answer is deterministic).
fn find_cycle(waiting: &[Waiting], allow_self: bool) -> Option<Vec<usize>> {
    let index: BTreeMap<ProcId, usize> = waiting
        .iter()
        .enumerate()
        .map(|(i, w)| (w.proc, i))
        .collect();
    let edges: Vec<Vec<usize>> = waiting
        .iter()
        .enumerate()
        .map(|(i, w)| {
            w.held_by_ids
                .iter()
                .filter_map(|p| index.get(p).copied())
                .filter(|&j| allow_self || j != i)
                .collect()
        })
        .collect();
    // Try reciprocal edges last: a receiver waits for *any* holder of a send
    // right, and the holder that is itself waiting on this receiver is the
    // least telling one (in the dining philosophers, philosopher 0 holds a
    // release right of fork 1, but fork 1 waits for philosopher 1). So the
    // search prefers the cycle through every party.
    let edges: Vec<Vec<usize>> = edges
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let (mut forward, back): (Vec<usize>, Vec<usize>) =
                out.iter().partition(|&&j| !edges[j].contains(&i));
            forward.extend(back);
            forward
        })
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = finished.
    let mut color = vec![0u8; waiting.len()];
    for start in 0..waiting.len() {
        if color[start] != 0 {
            continue;
        }
        let mut path = vec![start];
        let mut next_edge = vec![0usize];
        color[start] = 1;
        while let Some(&node) = path.last() {
            let k = next_edge.last_mut().expect("parallel stacks");
            if let Some(&to) = edges[node].get(*k) {
                *k += 1;
                match color[to] {
                    0 => {
                        color[to] = 1;
                        path.push(to);
                        next_edge.push(0);
                    }
                    1 => {
                        let at = path.iter().position(|&n| n == to).expect("on path");
                        return Some(path[at..].to_vec());
                    }
                    _ => {}
                }
            } else {
                color[node] = 2;
                path.pop();
                next_edge.pop();
            }
        }
    }
    None
}
