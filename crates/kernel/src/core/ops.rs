//! Operations on names and rights (Mach's `mach_port_*` calls), task
//! creation and exit, waits, and the name service.

use smallvec::SmallVec;

use super::queue::MsgQueue;
use super::send::Target;
use super::space::{Obj, Space, MAX_UREFS};
use super::{
    KRight, Kernel, Locked, Port, PortId, PortSet, QueueId, Receiver, SetId, TaskState,
    WaitOutcome, WaitState, WaitToken,
};
use crate::capacity::Capacity;
use crate::error::{IpcError, ReceiveError, SendError};
use crate::message::{CarriedRight, Message, Notification, NotifyKind};
use crate::name::{Pid, PortName, RightKind, RightSet};
use crate::Disposition;

impl Locked<'_> {
    /// Releases `n` send rights to `port`; the last one fires a no-senders
    /// notification if one was requested.
    pub(crate) fn release_send(&mut self, port: PortId, n: u32) {
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        p.send_rights = p.send_rights.saturating_sub(n);
        if p.send_rights == 0 {
            if let Some(notify) = p.no_senders_request.take() {
                let name = self.receiver_name(port);
                self.send_kernel_message(
                    notify,
                    Notification::NO_SENDERS_ID,
                    &name.to_raw().to_le_bytes(),
                    SmallVec::new(),
                );
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
                    self.release_send(port, send);
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
        self.ports.insert(Port {
            queue: MsgQueue::new(capacity),
            receiver: Receiver::Task(receiver),
            set: None,
            send_rights: 0,
            send_once_rights: 0,
            dead_name_requests: Vec::new(),
            no_senders_request: None,
            port_destroyed_request: None,
            link: None,
            writer_closed: false,
        })
    }

    /// Resolves a name that must hold a receive right.
    fn receive_right(&mut self, pid: Pid, name: PortName) -> Result<PortId, IpcError> {
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

    fn live(&self, pid: Pid) -> Result<(), IpcError> {
        self.task(pid).map(|_| ()).ok_or(IpcError::TaskExited)
    }

    pub(crate) fn exit_task(&mut self, pid: Pid) {
        let Some(task) = self.tasks.get_mut(pid.0 as usize).and_then(Option::take) else {
            return;
        };
        tracing::debug!(target: "mkipc::task", %pid, "task exits");
        for w in task.waits {
            if let Some(rec) = self.waits.remove(w) {
                // A thread of this task may be parked on the wait: wake it so it
                // sees the task is gone (`TaskExited`) instead of sleeping on.
                self.to_wake.push(rec.waker.clone());
                match rec.state {
                    WaitState::Sending { msg, queue, .. } => {
                        if let Some(q) = self.queue_mut(queue) {
                            super::queue::remove_waiter(&mut q.blocked_senders, w);
                        }
                        self.destroy_message(msg);
                    }
                    WaitState::Receiving { registrations } => {
                        for r in registrations {
                            match r {
                                super::Registration::Queue(q, _) => {
                                    if let Some(q) = self.queue_mut(q) {
                                        super::queue::remove_waiter(&mut q.blocked_receivers, w);
                                    }
                                }
                                super::Registration::Set(s) => {
                                    if let Some(s) = self.sets.get_mut(s) {
                                        super::queue::remove_waiter(&mut s.blocked_receivers, w);
                                    }
                                }
                            }
                        }
                    }
                    WaitState::Done(_) => {}
                }
            }
        }
        let entries: Vec<Obj> = task.space.entries().map(|(_, o)| o).collect();
        for obj in entries {
            let obj = match obj {
                Obj::Port { port, .. } | Obj::SendOnce(port) if !self.ports.contains(port) => {
                    continue
                }
                o => o,
            };
            self.release_obj(obj);
            self.reap();
        }
        for m in task.owned_mailboxes {
            self.destroy_mailbox(m);
        }
        for (_, port) in task.links_out {
            self.close_link_writer(port);
        }
        for (_, port) in task.links_in {
            self.graveyard.push(KRight::Receive(port));
        }
        self.destroy_set(task.inbox);
        self.reap();
    }

    pub(crate) fn create_task(&mut self) -> Pid {
        let pid = Pid(u32::try_from(self.tasks.len()).expect("pid overflow"));
        let inbox = self.sets.insert(PortSet {
            members: Default::default(),
            blocked_receivers: Default::default(),
        });
        self.tasks.push(Some(TaskState {
            space: Space::new(),
            inbox,
            links_in: Default::default(),
            links_out: Default::default(),
            link_capacity: Default::default(),
            owned_mailboxes: Default::default(),
            waits: SmallVec::new(),
        }));
        pid
    }
}

impl Kernel {
    /// Creates a task (with an empty name space) and returns its pid. Runners
    /// such as [`Task`](crate::Task) and the simulator call this.
    pub fn create_task(&self) -> Pid {
        self.lock().create_task()
    }

    /// Ends a task as if it exited: its waits are abandoned, its receive rights
    /// destroyed (ports die; blocked senders and receivers elsewhere get the
    /// "dead" errors), send rights released (maybe no-senders notifications),
    /// send-once rights destroyed (send-once notifications), port sets
    /// dissolved, owned mailboxes destroyed, direct links closed. Idempotent.
    pub fn exit_task(&self, pid: Pid) {
        self.lock().exit_task(pid)
    }

    /// Whether the task exists and has not exited.
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.lock().task(pid).is_some()
    }

    /// Takes the outcome of a completed wait; `None` while it is still pending.
    pub fn wait_take(&self, pid: Pid, token: WaitToken) -> Option<WaitOutcome> {
        let mut st = self.lock();
        let id = token.id();
        let Some(rec) = st.waits.get(id) else {
            return Some(token.abandoned());
        };
        if !matches!(rec.state, WaitState::Done(_)) {
            return None;
        }
        let rec = st.waits.remove(id).expect("live wait");
        if let Some(t) = st.task_mut(pid) {
            t.waits.retain(|w| *w != id);
        }
        match rec.state {
            WaitState::Done(outcome) => Some(outcome),
            _ => unreachable!(),
        }
    }

    /// Gives up on a wait (its deadline passed): a pending send fails with
    /// [`SendError::TimedOut`] and gets its message back, a pending receive
    /// fails with [`ReceiveError::TimedOut`]. If the wait completed in the
    /// meantime, returns that outcome instead.
    pub fn wait_cancel(&self, pid: Pid, token: WaitToken) -> WaitOutcome {
        let mut st = self.lock();
        let id = token.id();
        let Some(rec) = st.waits.get(id) else {
            return token.abandoned();
        };
        match &rec.state {
            WaitState::Sending { queue, .. } => {
                let q = *queue;
                if let Some(queue) = st.queue_mut(q) {
                    super::queue::remove_waiter(&mut queue.blocked_senders, id);
                }
                st.fail_sender(id, SendError::TimedOut);
            }
            WaitState::Receiving { .. } => st.fail_receiver(id, ReceiveError::TimedOut),
            WaitState::Done(_) => {}
        }
        st.reap();
        let rec = st.waits.remove(id).expect("live wait");
        if let Some(t) = st.task_mut(pid) {
            t.waits.retain(|w| *w != id);
        }
        match rec.state {
            WaitState::Done(outcome) => outcome,
            _ => unreachable!("cancelled wait is done"),
        }
    }

    /// Gives `to` the rights `from` names (moved or copied per their
    /// dispositions), as a parent's descriptors are inherited across `fork`.
    /// Returns `to`'s names for them, in order. All-or-nothing.
    pub fn transfer_rights(
        &self,
        from: Pid,
        to: Pid,
        rights: &[CarriedRight],
    ) -> Result<Vec<CarriedRight>, IpcError> {
        let mut st = self.lock();
        st.live(from)?;
        st.live(to)?;
        let msg = Message {
            rights: rights.to_vec(),
            ..Message::default()
        };
        let target = Target {
            queue: None,
            send_once_name: None,
        };
        st.check_carried_rights(from, &msg, &target)
            .map_err(|(_, e)| e)?;
        let k = st.copy_in(from, msg, &target);
        let out = st.copy_out(to, k, PortName::NULL, 0);
        st.reap();
        Ok(out.rights)
    }

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
                st.space_mut(pid).set(
                    name,
                    Some(Obj::Port {
                        port,
                        receive: true,
                        send: send + 1,
                    }),
                );
                st.ports.get_mut(port).expect("live").send_rights += 1;
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
    pub fn deallocate(&self, pid: Pid, name: PortName) -> Result<(), IpcError> {
        let kind = match self.lock().resolve(pid, name)? {
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
        self.mod_refs(pid, name, kind, -1)
    }

    /// Destroys every right under a name.
    pub fn destroy(&self, pid: Pid, name: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let obj = st.resolve(pid, name)?;
        st.space_mut(pid).set(name, None);
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
        let mut st = self.lock();
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
                st.space_mut(pid).set(
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
                    st.ports.get_mut(port).expect("live").send_rights += new - send;
                } else {
                    st.release_send(port, send - new);
                }
            }
            (RightKind::DeadName, Obj::Dead(n)) => {
                let new = i64::from(n) + i64::from(delta);
                if !(0..=i64::from(MAX_UREFS)).contains(&new) {
                    return Err(IpcError::InvalidValue);
                }
                st.space_mut(pid).set(
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
                    st.space_mut(pid).set(
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
                    st.space_mut(pid).set(name, None);
                    st.graveyard.push(KRight::SendOnce(port));
                }
                _ => return Err(IpcError::InvalidValue),
            },
            (RightKind::PortSet, Obj::Set(set)) => match delta {
                0 => {}
                -1 => {
                    st.space_mut(pid).set(name, None);
                    st.destroy_set(set);
                }
                _ => return Err(IpcError::InvalidValue),
            },
            (RightKind::Mailbox, Obj::Mailbox(_)) => match delta {
                0 => {}
                -1 => st.space_mut(pid).set(name, None),
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
    pub fn port_status(&self, pid: Pid, name: PortName) -> Result<crate::PortStatus, IpcError> {
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
        Ok(crate::PortStatus {
            queue_len: queue.messages.len(),
            capacity: queue.capacity,
            send_rights,
            send_once_rights,
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
        let obj = st.resolve(pid, name)?;
        let right = KRight::SendOnce(notify_port);
        match kind {
            NotifyKind::DeadName => {
                let port = match obj {
                    Obj::Port { port, .. } | Obj::SendOnce(port) => port,
                    Obj::Dead(_) => {
                        st.ports
                            .get_mut(notify_port)
                            .expect("live")
                            .send_once_rights += 1;
                        st.send_kernel_message(
                            right,
                            Notification::DEAD_NAME_ID,
                            &name.to_raw().to_le_bytes(),
                            SmallVec::new(),
                        );
                        st.reap();
                        return Ok(());
                    }
                    _ => {
                        return Err(IpcError::WrongRight {
                            needed: RightKind::Send,
                        })
                    }
                };
                st.ports
                    .get_mut(notify_port)
                    .expect("live")
                    .send_once_rights += 1;
                let p = st.ports.get_mut(port).expect("live");
                let old = p
                    .dead_name_requests
                    .iter()
                    .position(|(t, n, _)| *t == pid && *n == name);
                let old = old.map(|i| p.dead_name_requests.remove(i).2);
                p.dead_name_requests.push((pid, name, right));
                if let Some(old) = old {
                    st.graveyard.push(old);
                }
            }
            NotifyKind::NoSenders => {
                let Obj::Port {
                    port,
                    receive: true,
                    ..
                } = obj
                else {
                    return Err(IpcError::WrongRight {
                        needed: RightKind::Receive,
                    });
                };
                st.ports
                    .get_mut(notify_port)
                    .expect("live")
                    .send_once_rights += 1;
                let p = st.ports.get_mut(port).expect("live");
                let old = p.no_senders_request.replace(right);
                if p.send_rights == 0 {
                    let r = p.no_senders_request.take().expect("just set");
                    st.send_kernel_message(
                        r,
                        Notification::NO_SENDERS_ID,
                        &name.to_raw().to_le_bytes(),
                        SmallVec::new(),
                    );
                }
                if let Some(old) = old {
                    st.graveyard.push(old);
                }
            }
            NotifyKind::PortDestroyed => {
                let Obj::Port {
                    port,
                    receive: true,
                    ..
                } = obj
                else {
                    return Err(IpcError::WrongRight {
                        needed: RightKind::Receive,
                    });
                };
                if port == notify_port {
                    return Err(IpcError::InvalidValue);
                }
                st.ports
                    .get_mut(notify_port)
                    .expect("live")
                    .send_once_rights += 1;
                let old = st
                    .ports
                    .get_mut(port)
                    .expect("live")
                    .port_destroyed_request
                    .replace(right);
                if let Some(old) = old {
                    st.graveyard.push(old);
                }
            }
        }
        st.reap();
        Ok(())
    }

    /// Registers a send right under a service name.
    pub fn register(&self, pid: Pid, service: &str, right: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let port = match st.resolve(pid, right)? {
            Obj::Port { port, .. } => port,
            Obj::Dead(_) => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
        };
        if let Some((_, KRight::Send(existing))) = st.services.get(service) {
            if st.ports.contains(*existing) {
                return Err(IpcError::AlreadyExists);
            }
        }
        st.ports.get_mut(port).expect("live").send_rights += 1;
        if let Some((_, old)) = st
            .services
            .insert(service.to_owned(), (pid, KRight::Send(port)))
        {
            st.graveyard.push(old);
        }
        st.reap();
        Ok(())
    }

    /// Removes a service name this task registered.
    pub fn unregister(&self, pid: Pid, service: &str) -> Result<(), IpcError> {
        let mut st = self.lock();
        st.live(pid)?;
        match st.services.get(service) {
            None => return Err(IpcError::NotFound),
            Some((owner, _)) if *owner != pid => return Err(IpcError::NoPermission),
            Some(_) => {}
        }
        let (_, right) = st.services.remove(service).expect("present");
        st.graveyard.push(right);
        st.reap();
        Ok(())
    }

    /// Looks a service up; returns a new send right to it in the caller's space.
    pub fn look_up(&self, pid: Pid, service: &str) -> Result<PortName, IpcError> {
        let mut st = self.lock();
        st.live(pid)?;
        let Some(&(_, KRight::Send(port))) = st.services.get(service) else {
            return Err(IpcError::NotFound);
        };
        if !st.ports.contains(port) {
            st.services.remove(service);
            return Err(IpcError::NotFound);
        }
        st.ports.get_mut(port).expect("live").send_rights += 1;
        let k = super::KMessage {
            id: 0,
            body: Default::default(),
            carried: super::Carried::boxed(
                smallvec::smallvec![(KRight::Send(port), Disposition::CopySend)],
                None,
                None,
            ),
            sender: Pid::KERNEL,
            stamp: 0,
        };
        let m = st.copy_out(pid, k, PortName::NULL, 0);
        st.reap();
        Ok(m.rights[0].name)
    }
}

impl WaitToken {
    /// The outcome of a wait whose record is gone (its task exited).
    fn abandoned(self) -> WaitOutcome {
        if self.is_send() {
            WaitOutcome::Sent(Err(SendError::TaskExited(Message::default())))
        } else {
            WaitOutcome::Received(Err(ReceiveError::TaskExited))
        }
    }
}

impl Locked<'_> {
    /// After a port joins a set, receivers blocked on the set take its queued messages.
    pub(crate) fn hand_queued_to_set_receivers(&mut self, port: PortId) {
        loop {
            let Some(p) = self.ports.get(port) else {
                return;
            };
            let Some(set) = p.set else { return };
            if p.queue.messages.is_empty() {
                return;
            }
            let Some(&w) = self.sets.get(set).and_then(|s| s.blocked_receivers.front()) else {
                return;
            };
            let q = &mut self.ports.get_mut(port).expect("live").queue;
            let msg = q.pop().expect("non-empty");
            let seqno = q.next_seqno();
            self.complete_receive(w, QueueId::Port(port), msg, seqno);
            self.refill(QueueId::Port(port));
        }
    }
}
