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

use super::space::Obj;
use super::{Kernel, QueueId, Receiver, Registration, WaitState};
use crate::name::Pid;

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
    /// Tasks holding send rights to the port (who could wake a receiver).
    pub senders: Vec<Pid>,
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
                label: m.name.clone(),
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

    /// Kernel-wide counts.
    pub fn stats(&self) -> KernelStats {
        let st = self.lock();
        let mut s = KernelStats {
            tasks: st.tasks.iter().filter(|t| t.is_some()).count(),
            ports: st.ports.len(),
            port_sets: st.sets.len(),
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

    /// What a task's pending operations wait on (empty if it is not blocked).
    pub fn blocked_on(&self, pid: Pid) -> Vec<BlockedOn> {
        let st = self.lock();
        let Some(task) = st.task(pid) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let describe = |q: QueueId, sending: bool| -> BlockedOn {
            match q {
                QueueId::Port(p) => {
                    let port = st.ports.get(p);
                    let receiver = port.and_then(|p| match p.receiver {
                        Receiver::Task(t) => Some(t),
                        Receiver::InTransit(_) => None,
                    });
                    let senders = st
                        .tasks
                        .iter()
                        .enumerate()
                        .filter_map(|(i, t)| t.as_ref().map(|t| (Pid(i as u32), t)))
                        .filter(|(_, t)| {
                            t.space.name_for_port(p).is_some_and(|n| matches!(t.space.get(n), Ok(Obj::Port { send, .. }) if send > 0))
                        })
                        .map(|(pid, _)| pid)
                        .collect();
                    BlockedOn {
                        sending,
                        receiver,
                        mailbox: None,
                        queue_id: p.to_raw(),
                        link: port.and_then(|p| p.link),
                        senders,
                    }
                }
                QueueId::Mailbox(m) => BlockedOn {
                    sending,
                    receiver: None,
                    mailbox: st.mailboxes.get(m).map(|mb| mb.name.clone()),
                    queue_id: m.to_raw(),
                    link: None,
                    senders: Vec::new(),
                },
            }
        };
        for &w in &task.waits {
            let Some(rec) = st.waits.get(w) else { continue };
            match &rec.state {
                WaitState::Sending { queue, .. } => out.push(describe(*queue, true)),
                WaitState::Receiving { registrations } => {
                    for r in registrations {
                        match *r {
                            Registration::Queue(q, _) => out.push(describe(q, false)),
                            Registration::Set(s) => {
                                if let Some(set) = st.sets.get(s) {
                                    for &p in &set.members {
                                        out.push(describe(QueueId::Port(p), false));
                                    }
                                }
                            }
                        }
                    }
                }
                WaitState::Done(_) => {}
            }
        }
        out
    }
}
