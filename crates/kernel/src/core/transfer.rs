//! Rights in motion: taking rights out of a sender's space into a message
//! (copy-in), putting them into a receiver's space (copy-out), giving them back
//! after a failed wait (restore), and destroying them (release), including the
//! cascades a destruction can start: a destroyed receive right kills its port,
//! whose queued messages carry more rights, whose destruction sends
//! notifications... The cascade runs off a worklist (`graveyard`), never by
//! recursion.

use smallvec::SmallVec;

use super::send::Target;
use super::space::{Obj, MAX_UREFS};
use super::{KMessage, KRight, Locked, QueueId, Receiver, WaitId};
use crate::error::{IpcError, ReceiveError, SendErrorKind};
use crate::message::{CarriedRight, Message, Notification, Trailer};
use crate::name::{Pid, PortName, RightKind};
use crate::Disposition;

/// The effect of taking one right out of a (scratch copy of an) entry.
fn take_right(obj: Obj, disposition: Disposition) -> Result<Option<Obj>, IpcError> {
    use Disposition::*;
    match (obj, disposition) {
        (
            Obj::Port {
                port,
                receive: true,
                send,
            },
            MoveReceive,
        ) => Ok(if send == 0 {
            None
        } else {
            Some(Obj::Port {
                port,
                receive: false,
                send,
            })
        }),
        (
            Obj::Port {
                port,
                receive,
                send,
            },
            MoveSend,
        ) if send > 0 => Ok(if send == 1 && !receive {
            None
        } else {
            Some(Obj::Port {
                port,
                receive,
                send: send - 1,
            })
        }),
        (Obj::Dead(n), MoveSend | MoveSendOnce) => {
            Ok(if n == 1 { None } else { Some(Obj::Dead(n - 1)) })
        }
        (Obj::Port { send, .. }, CopySend) if send > 0 => Ok(Some(obj)),
        (Obj::Dead(_), CopySend) => Ok(Some(obj)),
        (Obj::Port { receive: true, .. }, MakeSend | MakeSendOnce) => Ok(Some(obj)),
        (Obj::SendOnce(_), MoveSendOnce) => Ok(None),
        (_, MoveReceive | MakeSend | MakeSendOnce) => Err(IpcError::WrongRight {
            needed: RightKind::Receive,
        }),
        (_, MoveSend | CopySend) => Err(IpcError::WrongRight {
            needed: RightKind::Send,
        }),
        (_, MoveSendOnce) => Err(IpcError::WrongRight {
            needed: RightKind::SendOnce,
        }),
    }
}

/// Index used for the reply right in [`SendErrorKind::InvalidRight`](crate::SendErrorKind::InvalidRight).
pub const REPLY_INDEX: usize = usize::MAX;

impl Locked<'_> {
    /// Would taking every carried right (and the send-once destination right)
    /// from `pid`'s space succeed? Simulates the takes in order on scratch
    /// copies of the entries, so two takes of the same name are checked together.
    pub(crate) fn check_carried_rights(
        &mut self,
        pid: Pid,
        msg: &Message,
        target: &Target,
    ) -> Result<(), (usize, IpcError)> {
        if !msg.carries_rights() {
            return Ok(());
        }
        let mut scratch: SmallVec<[(PortName, Option<Obj>); 4]> = SmallVec::new();
        if let Some(name) = target.send_once_name {
            scratch.push((name, None));
        }
        let reply = msg.reply();
        let carried = msg
            .rights()
            .iter()
            .enumerate()
            .chain(reply.iter().map(|r| (REPLY_INDEX, r)));
        for (index, right) in carried {
            let current = match scratch.iter().find(|(n, _)| *n == right.name) {
                Some((_, obj)) => *obj,
                None => Some(self.resolve(pid, right.name).map_err(|e| (index, e))?),
            };
            let obj = current.ok_or((index, IpcError::InvalidName))?;
            let after = take_right(obj, right.disposition).map_err(|e| (index, e))?;
            if right.disposition == Disposition::MoveReceive {
                let Obj::Port { port, .. } = obj else {
                    unreachable!()
                };
                if target.queue.is_some_and(|q| self.would_cycle(port, q)) {
                    return Err((index, IpcError::InvalidValue));
                }
            }
            match scratch.iter_mut().find(|(n, _)| *n == right.name) {
                Some(slot) => slot.1 = after,
                None => scratch.push((right.name, after)),
            }
        }
        Ok(())
    }

    /// Would moving `port`'s receive right into a message on `queue` make a
    /// port reachable only through itself (a receive right in its own queue,
    /// directly or through a chain of in-transit receive rights)?
    pub(crate) fn would_cycle(&self, port: super::PortId, queue: QueueId) -> bool {
        let mut cur = queue;
        for _ in 0..self.ports.len() + 1 {
            match cur {
                QueueId::Port(p) if p == port => return true,
                QueueId::Port(p) => match self.ports.get(p).map(|p| p.receiver) {
                    Some(Receiver::InTransit(next)) => cur = next,
                    _ => return false,
                },
                QueueId::Mailbox(_) => return false,
            }
        }
        true
    }

    /// Takes one right out of `pid`'s space (already checked).
    fn copy_in_right(&mut self, pid: Pid, right: CarriedRight, dest: Option<QueueId>) -> KRight {
        let obj = self.resolve(pid, right.name).expect("checked right");
        let after = take_right(obj, right.disposition).expect("checked right");
        self.set_name(pid, right.name, after);
        match (obj, right.disposition) {
            (Obj::Dead(_), Disposition::MoveSendOnce) => KRight::DeadSendOnce,
            (Obj::Dead(_), _) => KRight::DeadSend,
            (Obj::Port { port, .. }, Disposition::MoveReceive) => {
                self.detach_receive_right(port, ReceiveError::PortMoved);
                if let Some(dest) = dest {
                    self.ports.get_mut(port).expect("live").receiver = Receiver::InTransit(dest);
                }
                KRight::Receive(port)
            }
            (Obj::Port { port, .. }, Disposition::MoveSend) => KRight::Send(port),
            (Obj::Port { port, .. }, Disposition::CopySend | Disposition::MakeSend) => {
                self.add_send(port, 1);
                KRight::Send(port)
            }
            (Obj::Port { port, .. }, Disposition::MakeSendOnce) => {
                self.ports.get_mut(port).expect("live").send_once_rights += 1;
                KRight::SendOnce(port)
            }
            (Obj::SendOnce(port), _) => KRight::SendOnce(port),
            _ => unreachable!("checked right"),
        }
    }

    /// A port's receive right leaves its holder (moved, or the port dies): it
    /// leaves its set, and receivers blocked on it give up with `why`.
    pub(crate) fn detach_receive_right(&mut self, port: super::PortId, why: ReceiveError) {
        let st: &mut super::State = self;
        let Some(p) = st.ports.get_mut(port) else {
            return;
        };
        if let Some(set) = p.set.take() {
            if let Some(s) = st.sets.get_mut(set) {
                s.members.remove(&port);
            }
        }
        let blocked: Vec<WaitId> = p.queue.blocked_receivers.drain(..).collect();
        for w in blocked {
            self.fail_receiver(w, why);
        }
    }

    /// Turns a checked user message into a kernel message, taking its rights
    /// from `pid`'s space.
    pub(crate) fn copy_in(&mut self, pid: Pid, msg: Message, target: &Target) -> KMessage {
        let via_send_once = target.send_once_name.map(|name| {
            let Ok(Obj::SendOnce(port)) = self.resolve(pid, name) else {
                unreachable!("checked destination")
            };
            self.set_name(pid, name, None);
            if let Some(p) = self.ports.get_mut(port) {
                p.send_once_rights = p.send_once_rights.saturating_sub(1);
            }
            port
        });
        let mut rights = SmallVec::new();
        for r in msg.rights() {
            rights.push((self.copy_in_right(pid, *r, target.queue), r.disposition));
        }
        let reply = msg
            .reply()
            .map(|r| (self.copy_in_right(pid, r, target.queue), r.disposition));
        let stamp = self.stamp();
        KMessage {
            id: msg.id,
            body: msg.body,
            carried: super::Carried::boxed(rights, reply, via_send_once),
            sender: pid,
            stamp,
        }
    }

    /// Inserts one right into `pid`'s space; returns its name there.
    fn copy_out_right(&mut self, pid: Pid, right: KRight) -> PortName {
        match right {
            KRight::Receive(port) => {
                self.ports
                    .get_mut(port)
                    .expect("in-transit port is live")
                    .receiver = Receiver::Task(pid);
                let space = self.space_mut(pid);
                match space.name_for_port(port) {
                    Some(name) => {
                        let Ok(Obj::Port { send, .. }) = space.get(name) else {
                            unreachable!()
                        };
                        space.set(
                            name,
                            Some(Obj::Port {
                                port,
                                receive: true,
                                send,
                            }),
                        );
                        name
                    }
                    None => space.alloc(Obj::Port {
                        port,
                        receive: true,
                        send: 0,
                    }),
                }
            }
            KRight::Send(port) if self.ports.contains(port) => {
                let space = self.space_mut(pid);
                match space.name_for_port(port) {
                    Some(name) => {
                        let Ok(Obj::Port { receive, send, .. }) = space.get(name) else {
                            unreachable!()
                        };
                        space.set(
                            name,
                            Some(Obj::Port {
                                port,
                                receive,
                                send: (send + 1).min(MAX_UREFS + 1),
                            }),
                        );
                        if send > MAX_UREFS {
                            // User references are pegged (as in Mach): the
                            // right that did not fit is released (at the
                            // caller's next `reap`), so the port's count stays true.
                            self.graveyard.push(right);
                        }
                        name
                    }
                    None => space.alloc(Obj::Port {
                        port,
                        receive: false,
                        send: 1,
                    }),
                }
            }
            KRight::SendOnce(port) if self.ports.contains(port) => {
                self.space_mut(pid).alloc(Obj::SendOnce(port))
            }
            _ => PortName::DEAD,
        }
    }

    /// Turns a kernel message into the message `pid` receives.
    pub(crate) fn copy_out(
        &mut self,
        pid: Pid,
        msg: KMessage,
        received_on: PortName,
        seqno: u64,
    ) -> Message {
        let carried = msg.carried.map(|c| *c).unwrap_or_default();
        let mut rights = Vec::with_capacity(carried.rights.len());
        for (r, d) in carried.rights {
            rights.push(CarriedRight {
                name: self.copy_out_right(pid, r),
                disposition: d.received_as(),
            });
        }
        let reply = carried.reply.map(|(r, d)| CarriedRight {
            name: self.copy_out_right(pid, r),
            disposition: d.received_as(),
        });
        let mut out = Message::new(msg.id, msg.body).with_trailer(Trailer {
            sender: msg.sender,
            received_on,
            seqno,
        });
        out.set_carried(rights, reply);
        out
    }

    /// Puts one right back where it came from, preferring its old name.
    fn restore_right(&mut self, pid: Pid, right: KRight, original: CarriedRight) -> PortName {
        use Disposition::*;
        match (original.disposition, right) {
            // Copies and makes were never the sender's to keep: release them.
            (CopySend | MakeSend, KRight::Send(_)) => {
                self.graveyard.push(right);
                original.name
            }
            (MakeSendOnce, KRight::SendOnce(port)) => {
                // Never seen by anyone: vanishes without a notification.
                if let Some(p) = self.ports.get_mut(port) {
                    p.send_once_rights = p.send_once_rights.saturating_sub(1);
                }
                original.name
            }
            (_, KRight::DeadSend | KRight::DeadSendOnce)
                if matches!(original.disposition, CopySend) =>
            {
                original.name
            }
            _ => {
                let dead = match right {
                    KRight::Send(p) | KRight::SendOnce(p) | KRight::Receive(p) => {
                        !self.ports.contains(p)
                    }
                    KRight::DeadSend | KRight::DeadSendOnce => true,
                };
                if dead {
                    let space = self.space_mut(pid);
                    if let Ok(Obj::Dead(n)) = space.get(original.name) {
                        // Pegged like a live right's references.
                        let n = n.saturating_add(1).min(MAX_UREFS + 1);
                        space.set(original.name, Some(Obj::Dead(n)));
                        return original.name;
                    }
                    if space.realloc_exact(original.name, Obj::Dead(1)) {
                        return original.name;
                    }
                    return space.alloc(Obj::Dead(1));
                }
                if let KRight::SendOnce(port) = right {
                    let space = self.space_mut(pid);
                    if space.realloc_exact(original.name, Obj::SendOnce(port)) {
                        return original.name;
                    }
                    return space.alloc(Obj::SendOnce(port));
                }
                // Receive and send rights merge into the task's name for the
                // port: make sure it has one (its old name if free), then add
                // the right as a received one is added, so a send right's user
                // references stay pegged at the limit (the one that does not
                // fit is released) instead of passing it.
                let port = match right {
                    KRight::Receive(p) | KRight::Send(p) => p,
                    _ => unreachable!(),
                };
                let exists = self.space_mut(pid).name_for_port(port).is_some();
                if !exists {
                    let obj = Obj::Port {
                        port,
                        receive: false,
                        send: 0,
                    };
                    let space = self.space_mut(pid);
                    if !space.realloc_exact(original.name, obj) {
                        space.alloc(obj);
                    }
                }
                self.copy_out_right(pid, right)
            }
        }
    }

    /// Gives a blocked sender's message back to it after a failed wait: its
    /// rights return to its space (under their old names when those are still
    /// free) and the returned message names them.
    pub(crate) fn restore(
        &mut self,
        pid: Pid,
        msg: KMessage,
        mut original: Message,
        dest_name: Option<PortName>,
    ) -> Message {
        if self.task(pid).is_none() {
            self.destroy_message(msg);
            original.body = Default::default();
            return original;
        }
        if let (Some(port), Some(name)) = (msg.via_send_once(), dest_name) {
            let alive = self.ports.contains(port);
            let obj = if alive {
                Obj::SendOnce(port)
            } else {
                Obj::Dead(1)
            };
            let space = self.space_mut(pid);
            if !space.realloc_exact(name, obj) {
                space.alloc(obj);
            }
            if let Some(p) = self.ports.get_mut(port) {
                p.send_once_rights += 1;
            }
        }
        let carried = msg.carried.map(|c| *c).unwrap_or_default();
        for (i, (r, _)) in carried.rights.into_iter().enumerate() {
            let name = self.restore_right(pid, r, original.rights()[i]);
            original.rights_mut()[i].name = name;
        }
        if let (Some((r, _)), Some(orig)) = (carried.reply, original.reply()) {
            let name = self.restore_right(pid, r, orig);
            original.set_reply(Some(CarriedRight {
                name,
                disposition: orig.disposition,
            }));
        }
        original.body = msg.body;
        original
    }

    /// Destroys an undeliverable message: its rights go to the graveyard.
    pub(crate) fn destroy_message(&mut self, msg: KMessage) {
        let Some(carried) = msg.carried else { return };
        for (r, _) in carried.rights {
            self.graveyard.push(r);
        }
        if let Some((r, _)) = carried.reply {
            self.graveyard.push(r);
        }
        // A task's message sent through a send-once right and destroyed
        // undelivered (dropped at a rendezvous, or its sender exited while
        // blocked) did not use the right up: as in Mach, destroying it sends
        // the send-once notification, so a caller waiting for that reply
        // learns it will not come. (A kernel notification destroyed
        // undelivered sends none: its port is dead or dying.)
        if let Some(port) = carried.via_send_once {
            if msg.sender != Pid::KERNEL {
                if let Some(p) = self.ports.get_mut(port) {
                    p.send_once_rights += 1;
                    self.graveyard.push(KRight::SendOnce(port));
                }
            }
        }
    }

    /// Processes the graveyard until empty: releases send rights (maybe a
    /// no-senders notification), destroys send-once rights (a send-once
    /// notification), destroys receive rights (the port dies).
    pub(crate) fn reap(&mut self) {
        while let Some(right) = self.graveyard.pop() {
            match right {
                KRight::Send(port) => self.release_send(port, 1),
                KRight::SendOnce(port) => {
                    // The right is used up by the notification it sends
                    // (nothing happens if the port is dead).
                    self.send_kernel_message(
                        KRight::SendOnce(port),
                        Notification::SEND_ONCE_ID,
                        &[],
                        SmallVec::new(),
                        None,
                    );
                }
                KRight::Receive(port) => self.destroy_port(port),
                KRight::DeadSend | KRight::DeadSendOnce => {}
            }
        }
    }

    /// The name the receive right of `port` has in its holder's space (NULL if
    /// in transit or a direct link).
    pub(crate) fn receiver_name(&self, port: super::PortId) -> PortName {
        match self.ports.get(port).map(|p| p.receiver) {
            Some(Receiver::Task(pid)) => self
                .task(pid)
                .and_then(|t| t.space.name_for_port(port))
                .unwrap_or(PortName::NULL),
            _ => PortName::NULL,
        }
    }

    /// Destroys a port whose receive right has already left every name space
    /// (or is in a destroyed message): or, if a port-destroyed notification was
    /// requested, sends the receive right there instead.
    pub(crate) fn destroy_port(&mut self, port: super::PortId) {
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        if let Some(request) = p
            .requests
            .as_mut()
            .and_then(|r| r.port_destroyed_request.take())
        {
            if let KRight::SendOnce(notify) = request {
                if notify != port
                    && self.ports.contains(notify)
                    && !self.would_cycle(port, QueueId::Port(notify))
                {
                    self.detach_receive_right(port, ReceiveError::PortMoved);
                    let name = PortName::NULL;
                    let mut rights = SmallVec::new();
                    rights.push((KRight::Receive(port), Disposition::MoveReceive));
                    self.send_kernel_message(
                        request,
                        Notification::PORT_DESTROYED_ID,
                        &name.to_raw().to_le_bytes(),
                        rights,
                        None,
                    );
                    return;
                }
            }
            self.graveyard.push(request);
        }
        self.detach_receive_right(port, ReceiveError::SourceDead);
        let p = self.ports.remove(port).expect("live port");
        // Service names that pointed at the port go with it.
        if self
            .services
            .values()
            .any(|(_, right)| *right == KRight::Send(port))
        {
            self.services
                .make_mut()
                .retain(|_, (_, right)| *right != KRight::Send(port));
        }
        if let Some((from, to)) = p.link {
            if let Some(t) = self.task_mut(to) {
                t.links_mut().links_in.remove(&from);
            }
            if let Some(t) = self.task_mut(from) {
                t.links_mut().links_out.remove(&to);
            }
        }
        let mut queue = p.queue;
        while let Some(m) = queue.pop() {
            self.destroy_message(m);
        }
        for w in queue.blocked_senders.drain(..) {
            self.fail_sender(w, SendErrorKind::DestinationDead);
        }
        let requests = std::mem::take(&mut queue.send_possible);
        self.send_possible_queue_died(QueueId::Port(port), requests);
        let requests = p.requests.map(|r| *r).unwrap_or_default();
        for ((pid, super::BySlot(name)), right) in requests.dead_name_requests {
            // Requests are cancelled when their name is released, so every
            // one left names a right to this port (checked all the same).
            let still_held = self.task(pid).is_some_and(|t| {
                matches!(t.space.get(name), Ok(Obj::Port { port: q, .. }) | Ok(Obj::SendOnce(q)) if q == port)
            });
            if still_held {
                self.send_name_notification(right, Notification::DEAD_NAME_ID, name, Some(pid));
            } else {
                self.drop_request_right(right);
            }
        }
        if let Some(r) = requests.no_senders_request {
            self.graveyard.push(r);
        }
    }
}
