//! Operations on names and rights (Mach's `mach_port_*` calls): allocate
//! ports and sets, make, release and destroy rights, change user references,
//! inspect a name, change a capacity.

use super::queue::MsgQueue;
use super::space::{Obj, MAX_UREFS};
use super::{KRight, Kernel, Locked, Port, PortId, PortSet, QueueId, Receiver, SetId, State};
use crate::capacity::Capacity;
use crate::error::{IpcError, ReceiveError, SendErrorKind};
use crate::message::Notification;
use crate::name::{Pid, PortName, RightKind, RightSet};
use crate::Disposition;

/// The count of send rights to a port ([`super::Port::send_rights`]) has
/// two owners, side by side: [`State::add_send`] counts new rights (made,
/// copied into a message, registered, looked up, added by `mod_refs`) and
/// [`Locked::release_send`] counts rights that went away (and fires the
/// no-senders notification). Nothing else writes the counter.
impl State {
    /// Counts `n` new send rights to `port` (a live port).
    pub(crate) fn add_send(&mut self, port: PortId, n: u64) {
        self.ports.get_mut(port).expect("live").send_rights += n;
    }
}

impl Locked<'_> {
    /// Releases `n` send rights to `port`; the last one fires a no-senders
    /// notification if one was requested. (New rights: [`State::add_send`].)
    pub(crate) fn release_send(&mut self, port: PortId, n: u64) {
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        p.send_rights = p.send_rights.saturating_sub(n);
        if p.send_rights == 0 {
            if let Some(notify) = p
                .requests
                .as_mut()
                .and_then(|r| r.no_senders_request.take())
            {
                let owner = match p.receiver {
                    super::Receiver::Task(pid) => Some(pid),
                    super::Receiver::InTransit(_) => None,
                };
                let name = self.receiver_name(port);
                self.send_name_notification(notify, Notification::NO_SENDERS_ID, name, owner);
            }
        }
    }

    /// Releases what a name denoted (the entry is already gone from the space).
    pub(crate) fn release_obj(&mut self, obj: Obj) {
        match obj {
            Obj::Port {
                port,
                receive,
                send,
            } => {
                if send > 0 {
                    self.release_send(port, u64::from(send));
                }
                if receive {
                    self.graveyard.push(KRight::Receive(port));
                }
            }
            Obj::SendOnce(port) => self.graveyard.push(KRight::SendOnce(port)),
            Obj::Set(set) => self.destroy_set(set),
            Obj::Dead(_) | Obj::Mailbox(_) => {}
        }
    }

    pub(crate) fn destroy_set(&mut self, set: SetId) {
        let Some(s) = self.sets.remove(set) else {
            return;
        };
        for p in s.members {
            if let Some(port) = self.ports.get_mut(p) {
                port.set = None;
            }
        }
        for w in s.blocked_receivers {
            self.fail_receiver(w, ReceiveError::SourceDead);
        }
    }

    fn new_port(&mut self, capacity: Capacity, receiver: Pid) -> PortId {
        let queue = MsgQueue::new(capacity, self.config.queue_memory_limit);
        self.ports.insert(Port {
            queue,
            receiver: Receiver::Task(receiver),
            set: None,
            send_rights: 0,
            send_once_rights: 0,
            requests: None,
            link: None,
            writer_closed: false,
        })
    }

    /// Resolves a name that must hold a receive right.
    pub(crate) fn receive_right(&mut self, pid: Pid, name: PortName) -> Result<PortId, IpcError> {
        match self.resolve(pid, name)? {
            Obj::Port {
                port,
                receive: true,
                ..
            } => Ok(port),
            Obj::Dead(_) => Err(IpcError::DeadName),
            _ => Err(IpcError::WrongRight {
                needed: RightKind::Receive,
            }),
        }
    }

    pub(crate) fn live(&self, pid: Pid) -> Result<(), IpcError> {
        self.task(pid).map(|_| ()).ok_or(IpcError::TaskExited)
    }
}

impl Kernel {
    /// Allocates a port; returns the name of its receive right.
    pub fn port_allocate(&self, pid: Pid, capacity: Capacity) -> Result<PortName, IpcError> {
        let capacity = capacity.validate()?;
        let mut st = self.lock();
        st.live(pid)?;
        let port = st.new_port(capacity, pid);
        let name = st.space_mut(pid).alloc(Obj::Port {
            port,
            receive: true,
            send: 0,
        });
        tracing::trace!(target: "mkipc::ipc", %pid, %name, %capacity, "port allocated");
        Ok(name)
    }

    /// Allocates a port set.
    pub fn port_set_allocate(&self, pid: Pid) -> Result<PortName, IpcError> {
        let mut st = self.lock();
        st.live(pid)?;
        let set = st.sets.insert(PortSet {
            members: Default::default(),
            blocked_receivers: Default::default(),
        });
        Ok(st.space_mut(pid).alloc(Obj::Set(set)))
    }

    /// Moves a port (by its receive right) into a port set.
    pub fn port_set_insert(
        &self,
        pid: Pid,
        set: PortName,
        member: PortName,
    ) -> Result<(), IpcError> {
        let mut st = self.lock();
        let port = st.receive_right(pid, member)?;
        let set_id = match st.resolve(pid, set)? {
            Obj::Set(s) => s,
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::PortSet,
                })
            }
        };
        if let Some(old) = st.ports.get(port).and_then(|p| p.set) {
            if let Some(s) = st.sets.get_mut(old) {
                s.members.remove(&port);
            }
        }
        st.ports.get_mut(port).expect("live").set = Some(set_id);
        st.sets.get_mut(set_id).expect("live").members.insert(port);
        // Messages already queued are now visible to receivers blocked on the set.
        st.hand_queued_to_set_receivers(port);
        // Receivers blocked on the set are room on a rendezvous port.
        st.notify_send_possible(QueueId::Port(port));
        st.reap();
        Ok(())
    }

    /// Takes a port out of its set.
    pub fn port_set_remove(&self, pid: Pid, member: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let port = st.receive_right(pid, member)?;
        let Some(set) = st.ports.get_mut(port).expect("live").set.take() else {
            return Err(IpcError::InvalidValue);
        };
        if let Some(s) = st.sets.get_mut(set) {
            s.members.remove(&port);
        }
        Ok(())
    }

    /// Makes a send right (same name) or a send-once right (new name) from a receive right.
    pub fn make_right(
        &self,
        pid: Pid,
        name: PortName,
        disposition: Disposition,
    ) -> Result<PortName, IpcError> {
        let mut st = self.lock();
        let port = st.receive_right(pid, name)?;
        match disposition {
            Disposition::MakeSend => {
                let Ok(Obj::Port { send, .. }) = st.space_mut(pid).get(name) else {
                    unreachable!()
                };
                if send >= MAX_UREFS {
                    return Err(IpcError::InvalidValue);
                }
                st.set_name(
                    pid,
                    name,
                    Some(Obj::Port {
                        port,
                        receive: true,
                        send: send + 1,
                    }),
                );
                st.add_send(port, 1);
                Ok(name)
            }
            Disposition::MakeSendOnce => {
                st.ports.get_mut(port).expect("live").send_once_rights += 1;
                Ok(st.space_mut(pid).alloc(Obj::SendOnce(port)))
            }
            _ => Err(IpcError::InvalidValue),
        }
    }

    /// Releases one user reference (see [`Ipc::deallocate`](crate::Ipc::deallocate)).
    ///
    /// The name is looked up and its reference released under one
    /// acquisition of the kernel lock: with two, the port could die in
    /// between, and the release then failed with `DeadName` and kept the
    /// reference.
    pub fn deallocate(&self, pid: Pid, name: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let kind = match st.resolve(pid, name)? {
            Obj::Port { send, .. } if send > 0 => RightKind::Send,
            Obj::SendOnce(_) => RightKind::SendOnce,
            Obj::Dead(_) => RightKind::DeadName,
            Obj::Mailbox(_) => RightKind::Mailbox,
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
        };
        st.mod_refs(pid, name, kind, -1)
    }

    /// Destroys every right under a name.
    pub fn destroy(&self, pid: Pid, name: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let obj = st.resolve(pid, name)?;
        st.set_name(pid, name, None);
        st.release_obj(obj);
        st.reap();
        Ok(())
    }

    /// Changes user references (see [`Ipc::mod_refs`](crate::Ipc::mod_refs)).
    pub fn mod_refs(
        &self,
        pid: Pid,
        name: PortName,
        right: RightKind,
        delta: i32,
    ) -> Result<(), IpcError> {
        self.lock().mod_refs(pid, name, right, delta)
    }

    /// What a name denotes.
    pub fn rights(&self, pid: Pid, name: PortName) -> Result<RightSet, IpcError> {
        let mut st = self.lock();
        let obj = st.resolve(pid, name)?;
        let mut set = RightSet::default();
        match obj {
            Obj::Port { receive, send, .. } => {
                set.receive = receive;
                set.send = send;
            }
            Obj::SendOnce(_) => set.send_once = true,
            Obj::Dead(n) => set.dead = n,
            Obj::Set(_) => set.port_set = true,
            Obj::Mailbox(m) => set.mailbox = st.mailboxes.get(m).map(|mb| mb.access(pid)),
        }
        Ok(set)
    }

    /// The status of the queue behind a receive right or mailbox name.
    pub fn port_status(
        &self,
        pid: Pid,
        name: PortName,
    ) -> Result<crate::ipc::PortStatus, IpcError> {
        let mut st = self.lock();
        let (q, send_rights, send_once_rights) = match st.resolve(pid, name)? {
            Obj::Port {
                port,
                receive: true,
                ..
            } => {
                let p = st.ports.get(port).expect("live");
                (QueueId::Port(port), p.send_rights, p.send_once_rights)
            }
            Obj::Mailbox(m) => (QueueId::Mailbox(m), 0, 0),
            Obj::Dead(_) => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        let queue = st.queue(q).expect("live");
        Ok(crate::ipc::PortStatus {
            queue_len: queue.messages.len(),
            capacity: queue.capacity,
            // Reported saturated: the public status keeps its `u32`s.
            send_rights: u32::try_from(send_rights).unwrap_or(u32::MAX),
            send_once_rights: u32::try_from(send_once_rights).unwrap_or(u32::MAX),
            seqno: queue.seqno,
            blocked_senders: queue.blocked_senders.len(),
            blocked_receivers: queue.blocked_receivers.len(),
            messages_sent: queue.accepted,
            messages_dropped: queue.dropped,
            max_queue_len: queue.max_len,
        })
    }

    /// Changes a port's (or an owned mailbox's) capacity at run time.
    pub fn set_capacity(
        &self,
        pid: Pid,
        name: PortName,
        capacity: Capacity,
    ) -> Result<(), IpcError> {
        let capacity = capacity.validate()?;
        let mut st = self.lock();
        let q = match st.resolve(pid, name)? {
            Obj::Port {
                port,
                receive: true,
                ..
            } => QueueId::Port(port),
            Obj::Mailbox(m) => {
                if !st.may_manage_mailbox(pid, m) {
                    return Err(IpcError::NoPermission);
                }
                QueueId::Mailbox(m)
            }
            Obj::Dead(_) => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        st.queue_mut(q).expect("live").capacity = capacity;
        st.refill(q);
        st.reap();
        Ok(())
    }

    /// Closes a port (receive right) or a mailbox (as its manager) to new
    /// sends while its receivers drain it (see [`Ipc::close`](crate::Ipc::close)).
    pub fn close(&self, pid: Pid, name: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let q = match st.resolve(pid, name)? {
            Obj::Port {
                port,
                receive: true,
                ..
            } => QueueId::Port(port),
            Obj::Mailbox(m) => {
                if !st.may_manage_mailbox(pid, m) {
                    return Err(IpcError::NoPermission);
                }
                QueueId::Mailbox(m)
            }
            Obj::Dead(_) => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        let queue = st.queue_mut(q).expect("live");
        if queue.closed {
            return Ok(());
        }
        queue.closed = true;
        tracing::debug!(target: "mkipc::ipc", %pid, %name, "queue closed");
        // Parked senders never got in: they fail with their messages back.
        let senders: Vec<super::WaitId> = queue.blocked_senders.drain(..).collect();
        // Receivers blocked on it now wait for nothing that can come (a
        // plain receiver is blocked only on an empty queue; a selective one
        // matches nothing queued, and nothing more will arrive).
        let receivers: Vec<super::WaitId> = queue.blocked_receivers.iter().copied().collect();
        for w in senders {
            st.fail_sender(w, SendErrorKind::Closed);
        }
        for w in receivers {
            st.fail_receiver(w, ReceiveError::Closed);
        }
        st.notify_send_possible(q);
        st.reap();
        Ok(())
    }
}

impl Locked<'_> {
    /// Changes user references, under the caller's lock.
    pub(crate) fn mod_refs(
        &mut self,
        pid: Pid,
        name: PortName,
        right: RightKind,
        delta: i32,
    ) -> Result<(), IpcError> {
        let st = self;
        let obj = st.resolve(pid, name)?;
        let wrong = IpcError::WrongRight { needed: right };
        match (right, obj) {
            (
                RightKind::Send,
                Obj::Port {
                    port,
                    receive,
                    send,
                },
            ) if send > 0 => {
                let new = i64::from(send) + i64::from(delta);
                if !(0..=i64::from(MAX_UREFS)).contains(&new) {
                    return Err(IpcError::InvalidValue);
                }
                let new = new as u32;
                st.set_name(
                    pid,
                    name,
                    if new == 0 && !receive {
                        None
                    } else {
                        Some(Obj::Port {
                            port,
                            receive,
                            send: new,
                        })
                    },
                );
                if new > send {
                    st.add_send(port, u64::from(new - send));
                } else {
                    st.release_send(port, u64::from(send - new));
                }
            }
            (RightKind::DeadName, Obj::Dead(n)) => {
                let new = i64::from(n) + i64::from(delta);
                if !(0..=i64::from(MAX_UREFS)).contains(&new) {
                    return Err(IpcError::InvalidValue);
                }
                st.set_name(
                    pid,
                    name,
                    if new == 0 {
                        None
                    } else {
                        Some(Obj::Dead(new as u32))
                    },
                );
            }
            (
                RightKind::Receive,
                Obj::Port {
                    port,
                    receive: true,
                    send,
                },
            ) => match delta {
                0 => {}
                -1 => {
                    st.set_name(
                        pid,
                        name,
                        if send == 0 {
                            None
                        } else {
                            Some(Obj::Port {
                                port,
                                receive: false,
                                send,
                            })
                        },
                    );
                    st.graveyard.push(KRight::Receive(port));
                }
                _ => return Err(IpcError::InvalidValue),
            },
            (RightKind::SendOnce, Obj::SendOnce(port)) => match delta {
                0 => {}
                -1 => {
                    st.set_name(pid, name, None);
                    st.graveyard.push(KRight::SendOnce(port));
                }
                _ => return Err(IpcError::InvalidValue),
            },
            (RightKind::PortSet, Obj::Set(set)) => match delta {
                0 => {}
                -1 => {
                    st.set_name(pid, name, None);
                    st.destroy_set(set);
                }
                _ => return Err(IpcError::InvalidValue),
            },
            (RightKind::Mailbox, Obj::Mailbox(_)) => match delta {
                0 => {}
                -1 => st.set_name(pid, name, None),
                _ => return Err(IpcError::InvalidValue),
            },
            (RightKind::Send, Obj::Dead(_))
            | (RightKind::SendOnce, Obj::Dead(_))
            | (RightKind::Receive, Obj::Dead(_)) => return Err(IpcError::DeadName),
            _ => return Err(wrong),
        }
        st.reap();
        Ok(())
    }

    /// After a port joins a set, receivers blocked on the set take its queued
    /// messages, and on a rendezvous port the messages of its parked senders.
    pub(crate) fn hand_queued_to_set_receivers(&mut self, port: PortId) {
        loop {
            let Some(p) = self.ports.get(port) else {
                return;
            };
            let Some(set) = p.set else { return };
            let Some(s) = self.sets.get(set) else { return };
            // The first receiver blocked on the set that this port has a
            // message for (a selective receiver may match none of them).
            let receivers: smallvec::SmallVec<[super::WaitId; 4]> =
                s.blocked_receivers.iter().copied().collect();
            let mut pick = None;
            for w in receivers {
                let filter = match self.waits.get(w).map(|r| &r.state) {
                    Some(super::WaitState::Receiving { filter, .. }) => filter.clone(),
                    _ => None,
                };
                if let Some(msg) =
                    self.take_oldest_unrefilled(QueueId::Port(port), filter.as_deref())
                {
                    pick = Some((w, msg));
                    break;
                }
            }
            let Some((w, msg)) = pick else {
                return;
            };
            let seqno = self.ports.get_mut(port).expect("live").queue.next_seqno();
            self.complete_receive(w, QueueId::Port(port), msg, seqno);
            self.refill(QueueId::Port(port));
        }
    }
}
