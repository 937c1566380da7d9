//! Deadlock reports: who waits on what, who could end each wait, and the cycle.
//!
//! When no process can run, no timer is pending and some processes are still
//! blocked, the run is stuck for good. The simulator then builds a *wait-for
//! graph* over processes from what the kernel says of each wait
//! ([`Kernel::blocked_on`]) and its own join waits:
//!
//! * a send to a port waits on the task holding its receive right; a send to
//!   a full mailbox waits on every live process allowed to receive from it;
//! * a receive waits on the holders of send (and send-once) rights to the
//!   port, or on every live process allowed to send to the mailbox;
//! * a call waiting for its reply waits on the holder of the send-once reply
//!   right: the server that took the request, or the receiver of the port
//!   where the request is still queued (the kernel follows the right);
//! * a join waits on the joined process.
//!
//! The setup task never runs during the run, so a right it kept does not
//! count. A cycle in the graph is the deadlock's cause and is what the report
//! prints first:
//!
//! ```text
//! deadlock: a waits sending to p (receive right held by b) -> b waits sending to q (receive right held by a)
//! ```
//!
//! Without a cycle, the waits nobody can ever end come first, said plainly:
//!
//! ```text
//! deadlock: lonely waits for a message on q, and no live process can send to it; also stuck: ...
//! ```
//!
//! `report` (crate-internal) takes only the process table and the kernel's answers, so a
//! search that keeps no simulator runtime (a stateful checker) can use it.
//!
//! [`Kernel::blocked_on`]: mkipc_kernel::Kernel::blocked_on
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_sim::{FailureReason, Inherit, Sim};
//!
//! // Each process sends first on a rendezvous port the other receives from.
//! let mut sim = Sim::builder().seed(0).build();
//! let p = sim.port("p", Capacity::Zero).unwrap();
//! let q = sim.port("q", Capacity::Zero).unwrap();
//! sim.spawn_with("a", &[Inherit::receive(p), Inherit::send(q)], |me| {
//!     me.send(me.right(1), Message::new(1, b"hi"))?;
//!     me.receive(me.right(0))?;
//!     Ok(())
//! }).unwrap();
//! sim.spawn_with("b", &[Inherit::receive(q), Inherit::send(p)], |me| {
//!     me.send(me.right(1), Message::new(2, b"hi"))?;
//!     me.receive(me.right(0))?;
//!     Ok(())
//! }).unwrap();
//! let failure = sim.run().unwrap_err();
//! let FailureReason::Deadlock(d) = &failure.reason else { panic!("{failure}") };
//! let mut names = d.cycle_names();
//! names.sort();
//! assert_eq!(names, ["a", "b"]);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use mkipc_kernel::introspect::BlockedOn;
use mkipc_kernel::Pid;

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
    /// The processes that could end the wait, in pid order: the holder of
    /// the other end (a mailbox: every live process its access list allows;
    /// a call: the holder of the reply right). The process itself is left
    /// out unless it is the only one. At most [`Waiting::MAX_HOLDERS`] plus
    /// those that took this process's latest message; `others` counts the
    /// rest.
    pub held_by: Vec<String>,
    /// How many more processes could end the wait than `held_by` names.
    pub others: usize,
    held_by_ids: Vec<ProcId>,
    /// Among `held_by_ids`, those that took this process's latest message
    /// (tried first when looking for the cycle).
    likely_ids: Vec<ProcId>,
    /// The wait is on a mailbox (access decides who could end it).
    mailbox: bool,
}

impl Waiting {
    /// How many holders of one wait the report keeps (and searches for a
    /// cycle through) besides the likeliest ones: a wait many processes
    /// could end (a mailbox open to all) costs a bounded part of the report,
    /// so a run of many processes stuck on one mailbox gives a report linear
    /// in their number.
    pub const MAX_HOLDERS: usize = 16;
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

/// How many holders a report line names before it counts the rest.
const NAMED_HOLDERS: usize = 3;

/// The holders of `w` as a short list: `next` (the next process of the
/// cycle) first, at most [`NAMED_HOLDERS`] names, then "and N others".
fn holders(w: &Waiting, next: Option<&str>) -> String {
    let mut names: Vec<&str> = w.held_by.iter().map(String::as_str).collect();
    if let Some(pos) = next.and_then(|n| names.iter().position(|h| *h == n)) {
        let n = names.remove(pos);
        names.insert(0, n);
    }
    if names.len() <= NAMED_HOLDERS && w.others == 0 {
        return names.join(", ");
    }
    let shown = names.len().min(NAMED_HOLDERS - 1);
    let rest = names.len() - shown + w.others;
    names.truncate(shown);
    let others = if rest == 1 { "other" } else { "others" };
    format!("{} and {rest} {others}", names.join(", "))
}

/// One line of the report: what `w` waits for and who could end it.
fn describe(w: &Waiting, next: Option<&str>) -> String {
    let (name, on, who) = (&w.name, &w.on, holders(w, next));
    let nobody = w.held_by.is_empty();
    match (w.op, w.mailbox) {
        ("join", _) => format!("{name} waits joining {on}"),
        ("call", _) if nobody => format!(
            "{name} waits for the reply to its call to {on}, and no live process holds the reply right"
        ),
        ("call", _) => {
            format!("{name} waits for the reply to its call to {on} (send-once right held by {who})")
        }
        ("send", _) if nobody => {
            format!("{name} waits sending to {on}, and no live process can receive from it")
        }
        ("send", false) => format!("{name} waits sending to {on} (receive right held by {who})"),
        ("send", true) => format!("{name} waits sending to {on} ({who} may receive from it)"),
        (_, _) if nobody => {
            format!("{name} waits for a message on {on}, and no live process can send to it")
        }
        (_, false) => format!("{name} waits receiving from {on} (send right held by {who})"),
        (_, true) => format!("{name} waits receiving from {on} ({who} may send to it)"),
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, rest): (Vec<usize>, Vec<usize>) = if self.cycle.is_empty() {
            // No cycle: the waits that wait on no stuck process are the
            // cause (nobody, or only processes that will never act).
            let stuck: BTreeSet<ProcId> = self.waiting.iter().map(|w| w.proc).collect();
            (0..self.waiting.len()).partition(|&i| {
                !self.waiting[i]
                    .held_by_ids
                    .iter()
                    .any(|p| stuck.contains(p))
            })
        } else {
            let in_cycle: BTreeSet<usize> = self.cycle.iter().copied().collect();
            let rest = (0..self.waiting.len())
                .filter(|i| !in_cycle.contains(i))
                .collect();
            (self.cycle.clone(), rest)
        };
        let sep = if self.cycle.is_empty() { "; " } else { " -> " };
        let first: Vec<String> = first
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let next = (!self.cycle.is_empty())
                    .then(|| self.waiting[first[(k + 1) % first.len()]].name.as_str());
                describe(&self.waiting[i], next)
            })
            .collect();
        write!(f, "deadlock: {}", first.join(sep))?;
        if !rest.is_empty() {
            let rest: Vec<String> = rest
                .iter()
                .map(|&i| describe(&self.waiting[i], None))
                .collect();
            write!(f, "; also stuck: {}", rest.join("; "))?;
        }
        Ok(())
    }
}

/// What one stuck process waits on: the process table's view of it, plus
/// what the kernel says ([`Kernel::blocked_on`](mkipc_kernel::Kernel::blocked_on)).
#[derive(Clone, Debug)]
pub(crate) struct Stuck {
    /// The process.
    pub proc: ProcId,
    /// Its name.
    pub name: String,
    /// Its kernel task.
    pub pid: Pid,
    /// What it waits on.
    pub wait: StuckOn,
    /// Processes that took its latest message, if known (a hint: the
    /// cycle search tries these holders first, as a client waits on the
    /// server that took its request). Never adds a holder.
    pub likely: Vec<Pid>,
}

/// The wait of a [`Stuck`] process.
#[derive(Clone, Debug)]
pub(crate) enum StuckOn {
    /// Blocked in the kernel.
    Kernel {
        /// Waiting for the reply to a call (its request went out).
        call: bool,
        /// The label of what it waits on (for a call: the destination).
        label: String,
        /// `Kernel::blocked_on(pid)`.
        waits: Vec<BlockedOn>,
    },
    /// Joining another process.
    Join(ProcId),
}

/// Builds the report from the stuck processes (in process order) and the
/// process table: `procs[i]` is process `i`'s pid and name. `ignore` is a
/// task that never acts (the setup task): its rights end no wait.
pub(crate) fn report(stuck: &[Stuck], procs: &[(Pid, &str)], ignore: Pid) -> Deadlock {
    let by_pid: BTreeMap<Pid, ProcId> = procs
        .iter()
        .enumerate()
        .map(|(i, (pid, _))| (*pid, ProcId(i as u32)))
        .collect();
    let name_of = |pid: Pid| match by_pid.get(&pid) {
        Some(p) => procs[p.0 as usize].1.to_string(),
        None => format!("pid {}", pid.0),
    };
    let waiting: Vec<Waiting> = stuck
        .iter()
        .map(|s| match &s.wait {
            StuckOn::Join(t) => {
                let joined = procs
                    .get(t.0 as usize)
                    .map_or_else(|| format!("process {}", t.0), |(_, n)| n.to_string());
                Waiting {
                    proc: s.proc,
                    name: s.name.clone(),
                    op: "join",
                    on: joined.clone(),
                    held_by: vec![joined],
                    others: 0,
                    held_by_ids: vec![*t],
                    likely_ids: Vec::new(),
                    mailbox: false,
                }
            }
            StuckOn::Kernel { call, label, waits } => {
                let (holders, others) = holders_of(s, waits, ignore);
                let sending = waits.iter().any(|b| b.sending);
                Waiting {
                    proc: s.proc,
                    name: s.name.clone(),
                    op: match (*call && !sending, sending) {
                        (true, _) => "call",
                        (false, true) => "send",
                        (false, false) => "receive",
                    },
                    on: label.clone(),
                    held_by: holders.iter().map(|&p| name_of(p)).collect(),
                    others,
                    held_by_ids: holders
                        .iter()
                        .filter_map(|p| by_pid.get(p).copied())
                        .collect(),
                    likely_ids: holders
                        .iter()
                        .filter(|p| s.likely.contains(p))
                        .filter_map(|p| by_pid.get(p).copied())
                        .collect(),
                    mailbox: waits.iter().any(|b| b.mailbox.is_some()),
                }
            }
        })
        .collect();
    let cycle = find_cycle(&waiting, false)
        .or_else(|| find_cycle(&waiting, true))
        .unwrap_or_default();
    Deadlock { waiting, cycle }
}

/// The holders of a kernel wait (sorted lists from the kernel) that the
/// report keeps: the likely ones and the first [`Waiting::MAX_HOLDERS`]
/// others, in pid order, without `ignore`, and without the waiter itself
/// unless it is the only holder; and how many more there are. Work per
/// wait is bounded unless its lists are short enough to merge exactly.
fn holders_of(s: &Stuck, waits: &[BlockedOn], ignore: Pid) -> (Vec<Pid>, usize) {
    let mut links: Vec<Pid> = waits
        .iter()
        .filter_map(|b| b.link.map(|(from, to)| if b.sending { to } else { from }))
        .collect();
    links.sort_unstable();
    links.dedup();
    let mut lists: Vec<&[Pid]> = vec![&links];
    for b in waits.iter().filter(|b| b.link.is_none()) {
        if b.sending {
            lists.push(&b.receivers);
        } else {
            lists.push(&b.senders);
            lists.push(&b.send_once);
        }
    }
    lists.retain(|l| !l.is_empty());
    let holds = |p: Pid| lists.iter().any(|l| l.binary_search(&p).is_ok());
    let excluded = |p: Pid| p == ignore || p == s.pid;
    let excluded_in = |l: &[Pid]| {
        usize::from(l.binary_search(&ignore).is_ok())
            + usize::from(ignore != s.pid && l.binary_search(&s.pid).is_ok())
    };
    // How many holders besides `ignore` and the waiter: exact for one list
    // or short lists; for several long ones (a select over big mailboxes)
    // the sum of their lengths, which counts a task on two lists twice.
    const EXACT: usize = 4096;
    let total_len: usize = lists.iter().map(|l| l.len()).sum();
    let total = if lists.len() > 1 && total_len <= EXACT {
        let mut all: Vec<Pid> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.iter().filter(|&&p| !excluded(p)).count()
    } else {
        lists.iter().map(|l| l.len() - excluded_in(l)).sum()
    };
    if total == 0 {
        // The waiter alone (a wait on itself: a cycle of one), or nobody.
        let alone = s.pid != ignore && holds(s.pid);
        return (if alone { vec![s.pid] } else { Vec::new() }, 0);
    }
    // The first MAX_HOLDERS of the union are among each list's first
    // MAX_HOLDERS (lists are in pid order).
    let mut kept: Vec<Pid> = lists
        .iter()
        .flat_map(|l| {
            l.iter()
                .copied()
                .filter(|&p| !excluded(p))
                .take(Waiting::MAX_HOLDERS)
        })
        .collect();
    kept.sort_unstable();
    kept.dedup();
    kept.truncate(Waiting::MAX_HOLDERS);
    kept.extend(
        s.likely
            .iter()
            .copied()
            .filter(|&p| !excluded(p) && holds(p)),
    );
    kept.sort_unstable();
    kept.dedup();
    let others = total.saturating_sub(kept.len());
    (kept, others)
}

/// Builds the report from the stuck run's state.
pub(crate) fn analyse(core: &Core, target_name: impl Fn(ProcId, Target) -> String) -> Deadlock {
    let procs = core.procs.borrow();
    let blocked: Vec<Pid> = procs
        .iter()
        .filter(|m| m.state == PState::Blocked)
        .map(|m| m.pid)
        .collect();
    let mut answers = core.kernel.blocked_on_all(&blocked).into_iter();
    // Who took each process's latest message (the sender of the last
    // message a process received), by sender.
    let mut took: BTreeMap<Pid, Vec<Pid>> = BTreeMap::new();
    for r in procs.iter() {
        if let Some(from) = r.last_from.filter(|&f| f != r.pid) {
            took.entry(from).or_default().push(r.pid);
        }
    }
    let mut stuck = Vec::new();
    for (i, m) in procs.iter().enumerate() {
        let id = ProcId(i as u32);
        let wait = match m.state {
            PState::Blocked => {
                let waits = answers.next().unwrap_or_default();
                let label = match m.blocked_on {
                    Some((_, t)) => target_name(id, t),
                    None => waits.first().map_or_else(|| "?".to_string(), queue_label),
                };
                StuckOn::Kernel {
                    // The sim recorded a send (the call), the kernel reports a
                    // receive (on the reply port): the request went out.
                    call: matches!(m.blocked_on, Some((true, _))),
                    label,
                    waits,
                }
            }
            PState::Joining(t) => StuckOn::Join(t),
            _ => continue,
        };
        let likely = took.remove(&m.pid).unwrap_or_default();
        stuck.push(Stuck {
            proc: id,
            name: m.name.to_string(),
            pid: m.pid,
            wait,
            likely,
        });
    }
    let table: Vec<(Pid, &str)> = procs.iter().map(|m| (m.pid, &*m.name)).collect();
    report(&stuck, &table, core.init)
}

/// A label for a queue the runner did not name.
pub(crate) fn queue_label(b: &BlockedOn) -> String {
    match &b.mailbox {
        Some(n) => format!("mailbox {n}"),
        None => format!("port #{:x}", b.queue_id),
    }
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
    // Try first the holders that took this process's latest message (the
    // server of its request), then the others, reciprocal edges last: a
    // receiver waits for *any* holder of a send right, and the holder that
    // is itself waiting on this receiver is the least telling one (in the
    // dining philosophers, philosopher 0 may send to fork 1, but fork 1
    // waits for philosopher 1, its holder). So the search prefers the cycle
    // through every party.
    let edges: Vec<Vec<usize>> = edges
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let likely = |j: usize| waiting[i].likely_ids.contains(&waiting[j].proc);
            let mut ordered = out.clone();
            ordered.sort_by_key(|&j| (!likely(j), edges[j].contains(&i)));
            ordered
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
