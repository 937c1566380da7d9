//! Notification requests: dead-name, no-senders, port-destroyed and
//! send-possible.
//!
//! A request stores a send-once right to the requester's notify port on the
//! port it is about; the kernel uses that right to deliver the notification
//! (so notifications bypass queue limits and can be sent exactly once).
//!
//! A send-possible request (Mach's `MACH_SEND_NOTIFY`) is kept on the queue
//! of the port or mailbox it is about, by requester and name, and is
//! one-shot: it is answered at once when the queue has room, else the first
//! time it has room after a receive took a message, the capacity grew, or
//! (rendezvous) a receiver started waiting. "Room" means what a send would
//! find: an empty rights-free message sent now with `OnFull::Fail` would be
//! accepted. If the queue dies first, a dead-name notification is sent
//! instead; if the requester releases the name first, the request lapses
//! silently, as a dead-name request does.

//!
//! A port's dead-name, no-senders and port-destroyed requests are in one
//! box, [`PortRequests`], made on the port's first request: a port that
//! never has one (nearly all of them) pays a pointer, not 56 bytes.

use std::collections::BTreeMap;

use super::space::Obj;
use super::{BySlot, KRight, Kernel, Locked, Port, PortId, QueueId, State};
use crate::capacity::Admission;
use crate::error::IpcError;
use crate::message::{Notification, NotifyKind};
use crate::name::{Pid, PortName, RightKind};

/// The notifications requested about one port (module docs).
#[derive(Clone, Default)]
pub(crate) struct PortRequests {
    /// Dead-name requests on names for this port, by requesting task and
    /// name, each holding its send-once right to the notify port. A request
    /// is cancelled when its name is released (so a server's requests do not
    /// pile up), and found by key, never by a scan. Ordered by slot index
    /// ([`BySlot`]), so the order the notifications go out in does not
    /// depend on name generations (see DESIGN.md, "Snapshots and the
    /// canonical state").
    pub dead_name_requests: BTreeMap<(Pid, BySlot), KRight>,
    pub no_senders_request: Option<KRight>,
    pub port_destroyed_request: Option<KRight>,
}

/// What a port without requests reads as.
static NO_REQUESTS: PortRequests = PortRequests {
    dead_name_requests: BTreeMap::new(),
    no_senders_request: None,
    port_destroyed_request: None,
};

impl Port {
    /// The requests about this port (none, for a port never asked about).
    #[inline]
    pub(crate) fn requests(&self) -> &PortRequests {
        self.requests.as_deref().unwrap_or(&NO_REQUESTS)
    }

    /// The requests about this port, to change: the box is made on first use.
    pub(crate) fn requests_mut(&mut self) -> &mut PortRequests {
        self.requests.get_or_insert_with(Box::default)
    }
}

impl Kernel {
    /// How many dead-name requests the kernel holds (introspection for
    /// tests: a released name or an exited task must leave none behind).
    #[doc(hidden)]
    pub fn dead_name_request_count(&self) -> usize {
        let st = self.lock();
        st.ports
            .iter()
            .map(|(_, p)| p.requests().dead_name_requests.len())
            .sum()
    }

    /// Registers a notification request (see [`Ipc::request_notification`](crate::Ipc::request_notification)).
    pub fn request_notification(
        &self,
        pid: Pid,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError> {
        let mut st = self.lock();
        let notify_port = st.receive_right(pid, notify)?;
        if kind == NotifyKind::SendPossible {
            return st.request_send_possible(pid, name, notify_port);
        }
        // The port the request is about (`None`: the name is already dead).
        let about = match (kind, st.resolve(pid, name)?) {
            (NotifyKind::DeadName, Obj::Port { port, .. } | Obj::SendOnce(port)) => Some(port),
            (NotifyKind::DeadName, Obj::Dead(_)) => None,
            (NotifyKind::DeadName, _) => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
            (
                _,
                Obj::Port {
                    port,
                    receive: true,
                    ..
                },
            ) => Some(port),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        if kind == NotifyKind::PortDestroyed && about == Some(notify_port) {
            return Err(IpcError::InvalidValue);
        }
        // The request holds a send-once right made from the notify port's receive right.
        st.ports
            .get_mut(notify_port)
            .expect("live")
            .send_once_rights += 1;
        let right = KRight::SendOnce(notify_port);
        let replaced = match (kind, about) {
            (NotifyKind::DeadName, None) => {
                st.send_name_notification(right, Notification::DEAD_NAME_ID, name, Some(pid));
                None
            }
            (NotifyKind::DeadName, Some(port)) => st
                .ports
                .get_mut(port)
                .expect("live")
                .requests_mut()
                .dead_name_requests
                .insert((pid, super::BySlot(name)), right),
            (NotifyKind::NoSenders, Some(port)) => {
                let p = st.ports.get_mut(port).expect("live");
                let old = p.requests_mut().no_senders_request.replace(right);
                if p.send_rights == 0 {
                    let r = p
                        .requests_mut()
                        .no_senders_request
                        .take()
                        .expect("just set");
                    st.send_name_notification(r, Notification::NO_SENDERS_ID, name, Some(pid));
                }
                old
            }
            (NotifyKind::PortDestroyed, Some(port)) => st
                .ports
                .get_mut(port)
                .expect("live")
                .requests_mut()
                .port_destroyed_request
                .replace(right),
            (NotifyKind::SendPossible, _) => unreachable!("handled above"),
            (_, None) => unreachable!("only dead-name requests accept a dead name"),
        };
        if let Some(old) = replaced {
            st.graveyard.push(old);
        }
        st.reap();
        Ok(())
    }
}

impl Locked<'_> {
    /// Registers a send-possible request on the queue `name` sends to (a
    /// send or receive right, or a mailbox name with send access), or
    /// answers it at once: send-possible when there is room now, dead-name
    /// when the name is dead.
    fn request_send_possible(
        &mut self,
        pid: Pid,
        name: PortName,
        notify_port: PortId,
    ) -> Result<(), IpcError> {
        let q = match self.resolve(pid, name)? {
            Obj::Port { port, .. } => Some(QueueId::Port(port)),
            Obj::Mailbox(m) => {
                if !self.mailboxes.get(m).is_some_and(|mb| mb.access(pid).send) {
                    return Err(IpcError::NoPermission);
                }
                Some(QueueId::Mailbox(m))
            }
            Obj::Dead(_) => None,
            Obj::SendOnce(_) | Obj::Set(_) => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
        };
        self.ports
            .get_mut(notify_port)
            .expect("live")
            .send_once_rights += 1;
        let right = KRight::SendOnce(notify_port);
        match q {
            None => self.send_name_notification(right, Notification::DEAD_NAME_ID, name, Some(pid)),
            Some(q) if self.has_room(q) => {
                self.send_name_notification(right, Notification::SEND_POSSIBLE_ID, name, Some(pid))
            }
            Some(q) => {
                let queue = self.queue_mut(q).expect("resolved queue is live");
                if let Some(old) = queue.send_possible.insert((pid, BySlot(name)), right) {
                    self.graveyard.push(old);
                }
            }
        }
        self.reap();
        Ok(())
    }

    /// Whether queue `q` has room now: an empty message carrying no rights,
    /// sent with `OnFull::Fail`, would be accepted (handed to a waiting
    /// receiver, or queued).
    pub(crate) fn has_room(&self, q: QueueId) -> bool {
        let Some(queue) = self.queue(q) else {
            return false;
        };
        // A closed queue is answered at once: the send it prompts learns
        // `Closed` (no room will ever come).
        if queue.closed {
            return true;
        }
        let handoff = queue.messages.is_empty() && self.waiting_receiver(q, None).is_some();
        let cost = super::queue::message_cost(0, 0, false);
        queue.admit_as(cost, false, false, self.config.memory_limit(), handoff)
            == Admission::Enqueue
    }

    /// Answers every send-possible request on `q` if it has room now (they
    /// are one-shot: the queue keeps none). Called wherever room can appear.
    #[inline]
    pub(crate) fn notify_send_possible(&mut self, q: QueueId) {
        match self.queue(q) {
            Some(queue) if !queue.send_possible.is_empty() => {}
            _ => return,
        }
        if !self.has_room(q) {
            return;
        }
        let requests = std::mem::take(&mut self.queue_mut(q).expect("live").send_possible);
        for ((pid, BySlot(name)), right) in requests {
            self.send_name_notification(right, Notification::SEND_POSSIBLE_ID, name, Some(pid));
        }
    }

    /// The queue `q` dies: each send-possible request whose name still
    /// denotes it gets a dead-name notification instead.
    pub(crate) fn send_possible_queue_died(
        &mut self,
        q: QueueId,
        requests: std::collections::BTreeMap<(Pid, BySlot), KRight>,
    ) {
        for ((pid, BySlot(name)), right) in requests {
            let held = self
                .task(pid)
                .and_then(|t| t.space.get(name).ok())
                .and_then(queue_of)
                == Some(q);
            if held {
                self.send_name_notification(right, Notification::DEAD_NAME_ID, name, Some(pid));
            } else {
                self.drop_request_right(right);
            }
        }
    }
}

/// The queue a name's object sends to, for send-possible requests.
pub(crate) fn queue_of(obj: Obj) -> Option<QueueId> {
    match obj {
        Obj::Port { port, .. } => Some(QueueId::Port(port)),
        Obj::Mailbox(m) => Some(QueueId::Mailbox(m)),
        _ => None,
    }
}

impl State {
    /// Cancels `pid`'s send-possible request on `name` for queue `q`, if
    /// any: its send-once right vanishes silently (the name is gone).
    pub(crate) fn cancel_send_possible(&mut self, pid: Pid, name: PortName, q: QueueId) {
        let Some(right) = self
            .queue_mut(q)
            .and_then(|queue| queue.send_possible.remove(&(pid, BySlot(name))))
        else {
            return;
        };
        self.drop_request_right(right);
    }

    /// Replaces what `pid`'s (valid) `name` denotes, as [`Space::set`](super::space::Space::set)
    /// does, and cancels the name's dead-name request when the name stops
    /// denoting a right to the port the request is about (it is released,
    /// or its last right moved out), and its send-possible request when it
    /// stops denoting the queue. Every change to a name that may hold a
    /// port right goes through here.
    pub(crate) fn set_name(&mut self, pid: Pid, name: PortName, obj: Option<Obj>) {
        let space = self.space_mut(pid);
        let old = space.get(name).ok();
        space.set(name, obj);
        if let Some(q) = old.and_then(queue_of) {
            if obj.and_then(queue_of) != Some(q) {
                self.cancel_send_possible(pid, name, q);
            }
        }
        let about = match old {
            Some(Obj::Port { port, .. } | Obj::SendOnce(port)) => port,
            _ => return,
        };
        let still =
            matches!(obj, Some(Obj::Port { port, .. } | Obj::SendOnce(port)) if port == about);
        if !still {
            self.cancel_dead_name_request(pid, name, about);
        }
    }

    /// Cancels `pid`'s dead-name request on `name` for `port`, if any. As
    /// the name is gone, nothing is sent: the request's send-once right
    /// vanishes silently (see DESIGN.md, Notifications).
    pub(crate) fn cancel_dead_name_request(&mut self, pid: Pid, name: PortName, port: PortId) {
        let Some(right) = self
            .ports
            .get_mut(port)
            .and_then(|p| p.requests.as_mut())
            .and_then(|r| r.dead_name_requests.remove(&(pid, super::BySlot(name))))
        else {
            return;
        };
        self.drop_request_right(right);
    }

    /// A request's send-once right that will never be used: it vanishes
    /// without a send-once notification (the requester's own act ended it).
    pub(crate) fn drop_request_right(&mut self, right: KRight) {
        if let KRight::SendOnce(notify) = right {
            if let Some(n) = self.ports.get_mut(notify) {
                n.send_once_rights = n.send_once_rights.saturating_sub(1);
            }
        }
    }
}
