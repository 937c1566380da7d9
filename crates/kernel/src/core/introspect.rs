//! Introspection: what the kernel holds, so a test can assert nothing leaked.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Kernel};
//! let kernel = Kernel::new();
//! let task = kernel.spawn_task();
//! let port = task.port_allocate(Capacity::Unbounded).unwrap();
//! assert_eq!(kernel.stats().ports, 1);
//! drop(task); // exit: the receive right dies with the task
//! assert_eq!(kernel.stats().ports, 0);
//! # let _ = port;
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::space::Obj;
use super::{
    KMessage, KRight, Kernel, MailboxId, PortId, QueueId, Receiver, Registration, State, WaitState,
};
use crate::name::{Access, Pid};

/// Kernel-wide counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct KernelStats {
    /// Live tasks.
    pub tasks: usize,
    /// Live ports (including direct links).
    pub ports: usize,
    /// Live port sets (including each task's direct-link inbox).
    pub port_sets: usize,
    /// Live mailboxes.
    pub mailboxes: usize,
    /// Messages queued anywhere, plus messages parked with blocked senders.
    pub messages: usize,
    /// Blocked senders.
    pub blocked_senders: usize,
    /// Blocked receivers.
    pub blocked_receivers: usize,
    /// Registered services.
    pub services: usize,
}

/// The rights one task holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TaskRights {
    /// Live names.
    pub names: usize,
    /// Receive rights.
    pub receive: usize,
    /// Send rights (user references).
    pub send: u64,
    /// Send-once rights.
    pub send_once: usize,
    /// Dead names (user references), counting rights whose port (or mailbox) died since.
    pub dead: u64,
    /// Port sets.
    pub port_sets: usize,
    /// Mailbox names.
    pub mailboxes: usize,
}

/// One thing a blocked task waits for (for deadlock reports).
///
/// Besides naming the queue, it says who could end the wait: who can take a
/// message off the queue (for a blocked send) and who can put one on it (for
/// a blocked receive). A right that travels in a message counts for the task
/// that will get it: a send-once reply right inside a queued request is held,
/// for this purpose, by the receiver of the port the request waits on (or, on
/// a mailbox, by every task allowed to receive from it).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockedOn {
    /// `true` for a blocked send, `false` for a blocked receive.
    pub sending: bool,
    /// The port's receiving task (ports and links), if a task holds it.
    pub receiver: Option<Pid>,
    /// For a mailbox: its name. For a port: `None`.
    pub mailbox: Option<String>,
    /// A stable id of the queue (for naming it in reports).
    pub queue_id: u64,
    /// For a direct link: (from, to).
    pub link: Option<(Pid, Pid)>,
    /// Who could put a message on the queue: for a port, the tasks holding
    /// send rights to it (in their space or on the way to them); for a
    /// mailbox, every live task whose access lets it send. In pid order.
    /// (The lists are shared: every wait on one queue gets the same list, so
    /// many waiters on a queue many tasks may use cost one list, not many.)
    pub senders: std::sync::Arc<[Pid]>,
    /// The tasks holding a send-once right to the port (in their space or on
    /// the way to them), in pid order. A task blocked for the reply to a
    /// call waits on these: the reply port has no send right, only the
    /// send-once right the request carried. Empty for a mailbox.
    pub send_once: std::sync::Arc<[Pid]>,
    /// Who could take a message off the queue: for a port, the task holding
    /// its receive right (or, while that right travels in a message, the
    /// tasks that can receive that message); for a mailbox, every live task
    /// whose access lets it receive. In pid order.
    pub receivers: std::sync::Arc<[Pid]>,
}

/// Statistics of one queue (port, direct link or mailbox).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueueStats {
    /// A stable id of the queue within this kernel (also used by [`BlockedOn::queue_id`]).
    pub queue_id: u64,
    /// What it is: `"port"`, `"link"` or `"mailbox"`.
    pub kind: &'static str,
    /// The mailbox name, or for a link "from->to".
    pub label: String,
    /// The task holding the receive right (ports and links).
    pub receiver: Option<Pid>,
    /// Capacity model.
    pub capacity: crate::Capacity,
    /// Messages queued now.
    pub len: usize,
    /// Messages ever accepted.
    pub accepted: u64,
    /// Messages discarded by drop policies.
    pub dropped: u64,
    /// Largest length seen.
    pub max_len: usize,
    /// Blocked senders now.
    pub blocked_senders: usize,
    /// Blocked receivers now.
    pub blocked_receivers: usize,
}

impl Kernel {
    /// Statistics of every live queue, ports (in arena order) then mailboxes.
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        let st = self.lock();
        let mut out = Vec::with_capacity(st.ports.len() + st.mailboxes.len());
        for (id, p) in st.ports.iter() {
            let (kind, label) = match p.link {
                Some((from, to)) => ("link", format!("{}->{}", from.0, to.0)),
                None => ("port", format!("port#{}", id.to_raw())),
            };
            out.push(QueueStats {
                queue_id: id.to_raw(),
                kind,
                label,
                receiver: match p.receiver {
                    Receiver::Task(t) => Some(t),
                    Receiver::InTransit(_) => None,
                },
                capacity: p.queue.capacity,
                len: p.queue.messages.len(),
                accepted: p.queue.accepted,
                dropped: p.queue.dropped,
                max_len: p.queue.max_len,
                blocked_senders: p.queue.blocked_senders.len(),
                blocked_receivers: p.queue.blocked_receivers.len(),
            });
        }
        for (id, m) in st.mailboxes.iter() {
            out.push(QueueStats {
                queue_id: id.to_raw(),
                kind: "mailbox",
                label: m.name.to_string(),
                receiver: None,
                capacity: m.queue.capacity,
                len: m.queue.messages.len(),
                accepted: m.queue.accepted,
                dropped: m.queue.dropped,
                max_len: m.queue.max_len,
                blocked_senders: m.queue.blocked_senders.len(),
                blocked_receivers: m.queue.blocked_receivers.len(),
            });
        }
        out
    }

    /// The [`QueueStats::queue_id`] of the port that `name` denotes in
    /// `pid`'s space (through a receive, send or send-once right); `None`
    /// for any other name, a dead one, or an unknown task. Lets a runner
    /// that labels its ports find one's id without listing every queue.
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Kernel};
    /// let kernel = Kernel::new();
    /// let pid = kernel.create_task();
    /// let name = kernel.port_allocate(pid, Capacity::Bounded(1)).unwrap();
    /// let id = kernel.port_queue_id(pid, name).unwrap();
    /// assert!(kernel.queue_stats().iter().any(|q| q.queue_id == id && q.kind == "port"));
    /// ```
    pub fn port_queue_id(&self, pid: Pid, name: crate::name::PortName) -> Option<u64> {
        let st = self.lock();
        match st.task(pid)?.space.get(name).ok()? {
            Obj::Port { port, .. } | Obj::SendOnce(port) => Some(port.to_raw()),
            Obj::Set(_) | Obj::Mailbox(_) | Obj::Dead(_) => None,
        }
    }

    /// Kernel-wide counts.
    pub fn stats(&self) -> KernelStats {
        let st = self.lock();
        let mut s = KernelStats {
            tasks: st.tasks.iter().filter(|t| t.is_some()).count(),
            ports: st.ports.len(),
            port_sets: st.sets.len() + st.inboxes_not_made(),
            mailboxes: st.mailboxes.len(),
            services: st.services.len(),
            ..KernelStats::default()
        };
        for (_, p) in st.ports.iter() {
            s.messages += p.queue.messages.len() + p.queue.blocked_senders.len();
            s.blocked_senders += p.queue.blocked_senders.len();
            s.blocked_receivers += p.queue.blocked_receivers.len();
        }
        for (_, m) in st.mailboxes.iter() {
            s.messages += m.queue.messages.len() + m.queue.blocked_senders.len();
            s.blocked_senders += m.queue.blocked_senders.len();
            s.blocked_receivers += m.queue.blocked_receivers.len();
        }
        for (_, set) in st.sets.iter() {
            s.blocked_receivers += set.blocked_receivers.len();
        }
        s
    }

    /// The rights a live task holds (`None` if it has exited).
    pub fn task_rights(&self, pid: Pid) -> Option<TaskRights> {
        let st = self.lock();
        let task = st.task(pid)?;
        let mut r = TaskRights {
            names: task.space.len(),
            ..TaskRights::default()
        };
        for (_, obj) in task.space.entries() {
            match obj {
                Obj::Port {
                    port,
                    receive,
                    send,
                } => {
                    if st.ports.contains(port) {
                        r.receive += usize::from(receive);
                        r.send += u64::from(send);
                    } else {
                        r.dead += u64::from(send);
                    }
                }
                Obj::SendOnce(port) => {
                    if st.ports.contains(port) {
                        r.send_once += 1;
                    } else {
                        r.dead += 1;
                    }
                }
                Obj::Dead(n) => r.dead += u64::from(n),
                Obj::Set(_) => r.port_sets += 1,
                // A name of a destroyed mailbox is a dead name (as `rights` reports it).
                Obj::Mailbox(m) => {
                    if st.mailboxes.contains(m) {
                        r.mailboxes += 1;
                    } else {
                        r.dead += 1;
                    }
                }
            }
        }
        Some(r)
    }

    /// What a task's pending operations wait on (empty if it is not blocked),
    /// and who could end each wait ([`BlockedOn`]). Scans every space and
    /// queue: for a report on many tasks, [`Kernel::blocked_on_all`] scans once.
    pub fn blocked_on(&self, pid: Pid) -> Vec<BlockedOn> {
        self.blocked_on_all(&[pid]).pop().unwrap_or_default()
    }

    /// [`Kernel::blocked_on`] for each of `pids`, in order, from one scan of
    /// the kernel: time linear in its names, queued messages and the answer.
    pub fn blocked_on_all(&self, pids: &[Pid]) -> Vec<Vec<BlockedOn>> {
        let st = self.lock();
        let waits: Vec<Vec<(QueueId, bool)>> = pids.iter().map(|&p| st.waited_queues(p)).collect();
        let mut index = Holders::default();
        let ports: BTreeSet<PortId> = waits
            .iter()
            .flatten()
            .filter_map(|(q, _)| match q {
                QueueId::Port(p) => Some(*p),
                QueueId::Mailbox(_) => None,
            })
            .collect();
        if !ports.is_empty() {
            index.scan_rights(&st, &ports);
        }
        waits
            .into_iter()
            .map(|qs| {
                qs.into_iter()
                    .map(|(q, sending)| index.describe(&st, q, sending))
                    .collect()
            })
            .collect()
    }
}

/// A list of tasks in pid order, shared between the [`BlockedOn`]s of one
/// answer (always a `std` `Arc`, as [`Waker`](crate::runtime::Waker) is).
type HolderList = std::sync::Arc<[Pid]>;

/// How deep [`State::takers`] follows a receive right that travels inside a
/// message queued on a port whose receive right travels too.
const MAX_TRANSIT_DEPTH: usize = 16;

/// Who holds what, for the queues a report asks about, computed once.
#[derive(Default)]
struct Holders {
    send: BTreeMap<PortId, Vec<Pid>>,
    send_once: BTreeMap<PortId, Vec<Pid>>,
    /// Shared lists, built on first use.
    lists: BTreeMap<(QueueId, u8), HolderList>,
}

impl Holders {
    /// Records the holders of send and send-once rights to `ports`: in
    /// task spaces, or in a message queued on (or parked at) a queue,
    /// counted for whoever can take that message.
    fn scan_rights(&mut self, st: &State, ports: &BTreeSet<PortId>) {
        for (pid, t) in st.live_tasks() {
            for (_, obj) in t.space.entries() {
                match obj {
                    Obj::Port { port, send, .. } if send > 0 && ports.contains(&port) => {
                        self.send.entry(port).or_default().push(pid);
                    }
                    Obj::SendOnce(port) if ports.contains(&port) => {
                        self.send_once.entry(port).or_default().push(pid);
                    }
                    _ => {}
                }
            }
        }
        let mut carried = |q: QueueId, msg: &KMessage| {
            let Some(c) = &msg.carried else { return };
            for (right, _) in c.rights.iter().chain(c.reply.iter()) {
                let (map, port) = match *right {
                    KRight::Send(p) => (&mut self.send, p),
                    KRight::SendOnce(p) => (&mut self.send_once, p),
                    _ => continue,
                };
                if ports.contains(&port) {
                    map.entry(port).or_default().extend(st.takers(q));
                }
            }
        };
        for (id, p) in st.ports.iter() {
            for msg in p.queue.messages.iter() {
                carried(QueueId::Port(id), msg);
            }
        }
        for (id, m) in st.mailboxes.iter() {
            for msg in m.queue.messages.iter() {
                carried(QueueId::Mailbox(id), msg);
            }
        }
        for (_, w) in st.waits.iter() {
            if let WaitState::Sending { msg, queue, .. } = &w.state {
                carried(*queue, msg);
            }
        }
        for list in self.send.values_mut().chain(self.send_once.values_mut()) {
            list.sort_unstable();
            list.dedup();
        }
    }

    /// The shared list `which` (0 senders, 1 send-once, 2 receivers) of `q`.
    fn list(&mut self, st: &State, q: QueueId, which: u8) -> HolderList {
        if let Some(l) = self.lists.get(&(q, which)) {
            return l.clone();
        }
        let list: Vec<Pid> = match (q, which) {
            (QueueId::Port(p), 0) => self.send.get(&p).cloned().unwrap_or_default(),
            (QueueId::Port(p), 1) => self.send_once.get(&p).cloned().unwrap_or_default(),
            (QueueId::Mailbox(m), 0) => st.mailbox_access(m, |a| a.send),
            (QueueId::Mailbox(_), 1) => Vec::new(),
            (_, _) => st.takers(q),
        };
        let list: HolderList = list.into();
        self.lists.insert((q, which), list.clone());
        list
    }

    fn describe(&mut self, st: &State, q: QueueId, sending: bool) -> BlockedOn {
        let (senders, send_once, receivers) = (
            self.list(st, q, 0),
            self.list(st, q, 1),
            self.list(st, q, 2),
        );
        match q {
            QueueId::Port(p) => {
                let port = st.ports.get(p);
                BlockedOn {
                    sending,
                    receiver: port.and_then(|p| match p.receiver {
                        Receiver::Task(t) => Some(t),
                        Receiver::InTransit(_) => None,
                    }),
                    mailbox: None,
                    queue_id: p.to_raw(),
                    link: port.and_then(|p| p.link),
                    senders,
                    send_once,
                    receivers,
                }
            }
            QueueId::Mailbox(m) => BlockedOn {
                sending,
                receiver: None,
                mailbox: st.mailboxes.get(m).map(|mb| mb.name.to_string()),
                queue_id: m.to_raw(),
                link: None,
                senders,
                send_once,
                receivers,
            },
        }
    }
}

impl State {
    /// The queues `pid`'s pending operations wait on, with `true` for a send.
    fn waited_queues(&self, pid: Pid) -> Vec<(QueueId, bool)> {
        let Some(task) = self.task(pid) else {
            return Vec::new();
        };
        let mut queues = Vec::new();
        for &w in &task.waits {
            let Some(rec) = self.waits.get(w) else {
                continue;
            };
            match &rec.state {
                WaitState::Sending { queue, .. } => queues.push((*queue, true)),
                WaitState::Receiving { registrations, .. } => {
                    for r in registrations {
                        match *r {
                            Registration::Queue(q, _) => queues.push((q, false)),
                            Registration::Set(s) => {
                                if let Some(set) = self.sets.get(s) {
                                    queues.extend(
                                        set.members.iter().map(|&p| (QueueId::Port(p), false)),
                                    );
                                }
                            }
                        }
                    }
                }
                WaitState::Done(_) | WaitState::Handed(..) => {}
            }
        }
        queues
    }

    /// Live tasks (pid order) whose access to mailbox `m` passes `allowed`.
    fn mailbox_access(&self, m: MailboxId, allowed: impl Fn(Access) -> bool) -> Vec<Pid> {
        let Some(mb) = self.mailboxes.get(m) else {
            return Vec::new();
        };
        self.live_tasks()
            .filter(|(pid, _)| allowed(mb.access(*pid)))
            .map(|(pid, _)| pid)
            .collect()
    }

    fn live_tasks(&self) -> impl Iterator<Item = (Pid, &super::TaskState)> {
        self.tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_deref().map(|t| (Pid(i as u32), t)))
    }

    /// Who can take a message off queue `q` (pid order): a port's receiving
    /// task, or while its receive right travels in a message, whoever can
    /// take that message; a mailbox's receivers by access.
    fn takers(&self, q: QueueId) -> Vec<Pid> {
        let mut q = q;
        for _ in 0..MAX_TRANSIT_DEPTH {
            match q {
                QueueId::Port(p) => match self.ports.get(p).map(|p| p.receiver) {
                    Some(Receiver::Task(t)) => return vec![t],
                    Some(Receiver::InTransit(next)) => q = next,
                    None => return Vec::new(),
                },
                QueueId::Mailbox(m) => return self.mailbox_access(m, |a| a.receive),
            }
        }
        Vec::new()
    }
}
