//! Sending: resolve the destination, check the carried rights, then hand the
//! message to a waiting receiver, queue it, apply the full-queue policy, or
//! park the sender.
//!
//! Everything that can fail is checked *before* any right leaves the sender's
//! name space, so an error returns the message exactly as it was given. Only a
//! sender that actually blocks has its rights taken in; if that wait then fails
//! (timeout, destination death) the rights are put back.

use smallvec::SmallVec;

use super::{
    Begin, Destination, KMessage, Locked, QueueId, Receiver, Registration, WaitId, WaitOutcome,
    WaitRec, WaitState, WaitToken, Waker,
};
use crate::capacity::{Admission, OnFull, Sent};
use crate::core::space::Obj;
use crate::error::{IpcError, SendError, SendErrorKind};
use crate::message::Message;
use crate::name::{Pid, PortName};
use crate::Kernel;

/// Where a send resolved to.
pub(crate) struct Target {
    /// `None` when rights move straight from task to task (inheritance).
    pub queue: Option<QueueId>,
    /// The destination name is a send-once right, consumed by the send.
    pub send_once_name: Option<PortName>,
}

impl Kernel {
    /// Starts a send from task `pid`. Completes at once, fails at once with the
    /// message returned, or (policies `Block`/`Timeout`) blocks and returns a
    /// token; the `waker` is called when the wait completes.
    #[inline]
    pub fn send_begin(
        &self,
        pid: Pid,
        dest: Destination,
        mut msg: Message,
        on_full: OnFull,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Sent, SendError>> {
        // One lock for both paths: the general one goes on under the lock
        // the fast one took (it changed nothing when it failed).
        let mut guard = self.lock_raw();
        if guard.try_fast_send(pid, dest, &mut msg) {
            drop(guard);
            tracing::trace!(target: "mkipc::ipc", %pid, ?dest, sent = ?Sent::Delivered, "send");
            return Begin::Done(Ok(Sent::Delivered));
        }
        let mut locked = self.locked(guard);
        if locked.try_fast_handoff(pid, dest, &mut msg) {
            drop(locked);
            tracing::trace!(target: "mkipc::ipc", %pid, ?dest, sent = ?Sent::Delivered, "send");
            return Begin::Done(Ok(Sent::Delivered));
        }
        let result = locked.send(pid, dest, msg, on_full, waker);
        trace_send(pid, dest, &result);
        result
    }

    /// The fast paths of [`Kernel::send_begin`] alone, for a runner that
    /// makes most of its sends through them (the simulator): a rights-free
    /// message through a name of task `pid` that holds a right to a plain
    /// port, queued where there is room and nobody waiting, or handed to
    /// the one receiver waiting there. The message is taken by reference
    /// and the answer is one `bool`, so nothing as wide as `send_begin`'s
    /// `Begin<Result<Sent, SendError>>` is written and read back.
    ///
    /// `true`: sent, exactly as `send_begin` would have sent it
    /// ([`Sent::Delivered`]); the message's body was moved out. `false`:
    /// neither case applies and nothing changed (`msg` included): make the
    /// send with [`Kernel::send_begin`], which then takes the general path
    /// (a run calling one or the other gets the same state and results).
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
    ///
    /// let kernel = Kernel::new();
    /// let task = kernel.spawn_task();
    /// let port = task.port_allocate(Capacity::Bounded(1))?;
    /// let mut msg = Message::from_u64(1, 7);
    /// assert!(kernel.send_fast(task.pid(), port, &mut msg));
    /// // The queue is full now: the fast paths do not apply.
    /// let mut second = Message::from_u64(1, 8);
    /// assert!(!kernel.send_fast(task.pid(), port, &mut second));
    /// assert_eq!(second.as_u64(), Some(8));
    /// assert_eq!(task.receive(port)?.as_u64(), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn send_fast(&self, pid: Pid, dest: PortName, msg: &mut Message) -> bool {
        let dest = Destination::Name(dest);
        let mut guard = self.lock_raw();
        let sent = guard.try_fast_send(pid, dest, msg) || {
            let mut locked = self.locked(guard);
            locked.try_fast_handoff(pid, dest, msg)
        };
        if sent {
            tracing::trace!(target: "mkipc::ipc", %pid, ?dest, sent = ?Sent::Delivered, "send");
        }
        sent
    }
}

/// The `tracing` event of a send the general path made.
#[inline]
fn trace_send(pid: Pid, dest: Destination, result: &Begin<Result<Sent, SendError>>) {
    match result {
        Begin::Done(Ok(sent)) => {
            tracing::trace!(target: "mkipc::ipc", %pid, ?dest, ?sent, "send")
        }
        Begin::Done(Err(e)) => {
            tracing::trace!(target: "mkipc::ipc", %pid, ?dest, error = ?e.kind(), "send failed")
        }
        Begin::Blocked(_) => tracing::trace!(target: "mkipc::ipc", %pid, ?dest, "send blocked"),
    }
}

impl Locked<'_> {
    fn resolve_destination(
        &mut self,
        pid: Pid,
        dest: Destination,
    ) -> Result<Target, SendErrorKind> {
        match dest {
            Destination::Name(name) => match self.resolve(pid, name) {
                Err(IpcError::TaskExited) => Err(SendErrorKind::TaskExited),
                Err(_) => Err(SendErrorKind::InvalidDestination),
                Ok(Obj::Dead(_)) => Err(SendErrorKind::DestinationDead),
                Ok(Obj::Port { port, .. }) => Ok(Target {
                    queue: Some(QueueId::Port(port)),
                    send_once_name: None,
                }),
                Ok(Obj::SendOnce(port)) => Ok(Target {
                    queue: Some(QueueId::Port(port)),
                    send_once_name: Some(name),
                }),
                Ok(Obj::Set(_)) => Err(SendErrorKind::WrongRight),
                Ok(Obj::Mailbox(m)) => {
                    if self.mailboxes.get(m).is_some_and(|mb| mb.access(pid).send) {
                        Ok(Target {
                            queue: Some(QueueId::Mailbox(m)),
                            send_once_name: None,
                        })
                    } else {
                        Err(SendErrorKind::NoPermission)
                    }
                }
            },
            Destination::Task(to) => {
                if self.task(pid).is_none() {
                    return Err(SendErrorKind::TaskExited);
                }
                if to.0 == 0 || to.0 as usize >= self.tasks.len() {
                    return Err(SendErrorKind::InvalidDestination);
                }
                if self.task(to).is_none() {
                    return Err(SendErrorKind::DestinationDead);
                }
                let port = self.link_port(pid, to);
                Ok(Target {
                    queue: Some(QueueId::Port(port)),
                    send_once_name: None,
                })
            }
        }
    }

    /// The first blocked receiver that would take a message (id, sender,
    /// body) arriving at `q`: the queue's own receivers first, then its port
    /// set's, skipping selective receivers it does not match (`None`: a
    /// receiver that takes anything).
    pub(crate) fn waiting_receiver(
        &self,
        q: QueueId,
        msg: Option<(u32, Pid, &[u8])>,
    ) -> Option<WaitId> {
        let takes = |w: &WaitId| match self.waits.get(*w).map(|r| &r.state) {
            Some(WaitState::Receiving {
                filter: Some(f), ..
            }) => msg.is_some_and(|(id, sender, body)| f.matches_parts(id, sender, body)),
            _ => true,
        };
        let queue = self.queue(q)?;
        if let Some(&w) = queue.blocked_receivers.iter().find(|w| takes(w)) {
            return Some(w);
        }
        if let QueueId::Port(p) = q {
            let set = self.ports.get(p)?.set?;
            return self
                .sets
                .get(set)?
                .blocked_receivers
                .iter()
                .find(|w| takes(w))
                .copied();
        }
        None
    }

    #[inline(never)]
    pub(crate) fn send(
        &mut self,
        pid: Pid,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Sent, SendError>> {
        let target = match self.resolve_destination(pid, dest) {
            Ok(t) => t,
            Err(kind) => return Begin::Done(Err(kind.with(msg))),
        };
        if let Err((index, error)) = self.check_carried_rights(pid, &msg, &target) {
            return Begin::Done(Err(SendErrorKind::InvalidRight { index, error }.with(msg)));
        }
        let memory_limit = self.config.memory_limit();
        let q = target.queue.expect("a send has a queue");
        let queue = self.queue(q).expect("resolved queue is live");
        if queue.closed {
            return Begin::Done(Err(SendErrorKind::Closed.with(msg)));
        }
        // Handed to a waiting receiver, or queued: either way the capacity
        // decides (a handed message keeps its place until taken).
        let handoff = queue.messages.is_empty()
            && self
                .waiting_receiver(q, Some((msg.id, pid, &msg.body)))
                .is_some();
        let rights = msg.rights().len() + usize::from(msg.reply().is_some());
        let boxed = rights > 0 || target.send_once_name.is_some();
        let admission = queue.admit_as(
            super::queue::message_cost(msg.body.len(), rights, boxed),
            target.send_once_name.is_some(),
            false,
            memory_limit,
            handoff,
        );
        let capacity = queue.capacity;
        match (admission, on_full) {
            (Admission::OverMemoryLimit, _) => {
                Begin::Done(Err(SendErrorKind::MemoryLimit.with(msg)))
            }
            (Admission::Enqueue, _) => {
                let k = self.copy_in(pid, msg, &target);
                self.deliver(q, k);
                self.reap();
                Begin::Done(Ok(Sent::Delivered))
            }
            (Admission::Full, OnFull::Fail) => Begin::Done(Err(SendErrorKind::Full.with(msg))),
            (Admission::Full, OnFull::Timeout(d)) if d.is_zero() => {
                Begin::Done(Err(SendErrorKind::TimedOut.with(msg)))
            }
            (Admission::Full, OnFull::DropNewest) => self.drop_newest(pid, msg, &target, q),
            (Admission::Full, OnFull::DropOldest) if !capacity.displaces() => {
                self.drop_newest(pid, msg, &target, q)
            }
            (Admission::Full, OnFull::DropOldest) => {
                let k = self.copy_in(pid, msg, &target);
                let q = self.queue_mut(q).expect("live");
                q.dropped += 1;
                // Messages that came through a send-once right (replies and
                // kernel notifications) bypassed the limit and are never
                // displaced: a port-destroyed notification carries a receive
                // right the requester asked to keep. With only such messages
                // queued, the new message is the one dropped.
                let sent = match q.pop_oldest_displaceable() {
                    Some(old) => {
                        q.accepted += 1;
                        q.push(k);
                        self.destroy_message(old);
                        Sent::Displaced
                    }
                    None => {
                        self.destroy_message(k);
                        Sent::Dropped
                    }
                };
                self.reap();
                Begin::Done(Ok(sent))
            }
            (Admission::Full, OnFull::Block | OnFull::Timeout(_)) => {
                let original = Box::new(msg.clone_shape());
                let k = self.copy_in(pid, msg, &target);
                let id = self.waits.insert(WaitRec {
                    task: pid,
                    waker: waker(),
                    state: WaitState::Sending {
                        msg: k,
                        queue: q,
                        original,
                        dest_name: target.send_once_name,
                    },
                });
                self.queue_mut(q)
                    .expect("live")
                    .blocked_senders
                    .push_back(id);
                self.task_mut(pid).expect("live").waits.push(id);
                self.reap();
                Begin::Blocked(WaitToken::from_id(id, true))
            }
        }
    }

    fn drop_newest(
        &mut self,
        pid: Pid,
        msg: Message,
        target: &Target,
        q: QueueId,
    ) -> Begin<Result<Sent, SendError>> {
        let k = self.copy_in(pid, msg, target);
        self.queue_mut(q).expect("live").dropped += 1;
        self.destroy_message(k);
        self.reap();
        Begin::Done(Ok(Sent::Dropped))
    }

    /// Puts a message on a queue: hands it to a blocked receiver if there is
    /// one, otherwise appends it. (Admission was decided by the caller.)
    pub(crate) fn deliver(&mut self, q: QueueId, msg: KMessage) {
        self.queue_mut(q).expect("live queue").accepted += 1;
        if let Some(w) = self.waiting_receiver(q, Some((msg.id, msg.sender, &msg.body))) {
            let seqno = self.queue_mut(q).expect("live").next_seqno();
            self.complete_receive(w, q, msg, seqno);
        } else {
            self.queue_mut(q).expect("live").push(msg);
        }
    }

    /// A notification whose body is a name in `owner`'s space (dead-name,
    /// no-senders), sent through the request's send-once right.
    pub(crate) fn send_name_notification(
        &mut self,
        right: super::KRight,
        id: u32,
        name: PortName,
        owner: Option<Pid>,
    ) {
        self.send_kernel_message(
            right,
            id,
            &name.to_raw().to_le_bytes(),
            SmallVec::new(),
            owner,
        );
    }

    /// A kernel-originated message (notification) through a send-once right:
    /// never blocks, never dropped; vanishes if the port is dead.
    pub(crate) fn send_kernel_message(
        &mut self,
        right: super::KRight,
        id: u32,
        body: &[u8],
        rights: SmallVec<[(super::KRight, crate::Disposition); 2]>,
        name_owner: Option<Pid>,
    ) {
        let super::KRight::SendOnce(port) = right else {
            // A dead notify right: the rights carried are destroyed.
            for (r, _) in rights {
                self.graveyard.push(r);
            }
            return;
        };
        let Some(p) = self.ports.get_mut(port) else {
            for (r, _) in rights {
                self.graveyard.push(r);
            }
            return;
        };
        p.send_once_rights = p.send_once_rights.saturating_sub(1);
        let stamp = self.stamp();
        for (r, _) in &rights {
            if let super::KRight::Receive(moved) = r {
                if let Some(mp) = self.ports.get_mut(*moved) {
                    mp.receiver = Receiver::InTransit(QueueId::Port(port));
                }
            }
        }
        let mut carried = super::Carried::boxed(rights, None, Some(port));
        if let Some(c) = &mut carried {
            c.name_owner = name_owner.and_then(|p| std::num::NonZeroU32::new(p.0));
        }
        let msg = KMessage {
            id,
            body: body.into(),
            carried,
            sender: Pid::KERNEL,
            stamp,
        };
        self.deliver(QueueId::Port(port), msg);
    }
}

impl super::State {
    /// The common case in few instructions: a message carrying no rights, sent
    /// through a send (or receive) right to a live port with room and no
    /// blocked receiver. Takes the body and returns true, or leaves the
    /// message untouched and returns false when the case does not apply. It
    /// never wakes anyone, so it runs on the bare lock guard.
    /// The port a send from `pid` to `dest` goes to when `dest` is a name
    /// of `pid`'s space holding rights to a port (the fast paths' lookup).
    #[inline(always)]
    fn plain_send_port(&self, pid: Pid, dest: Destination) -> Option<super::PortId> {
        let Destination::Name(name) = dest else {
            return None;
        };
        let task = self.tasks.get(pid.0 as usize)?.as_ref()?;
        match task.space.get(name) {
            Ok(Obj::Port { port, .. }) => Some(port),
            _ => None,
        }
    }

    #[inline(always)]
    pub(crate) fn try_fast_send(&mut self, pid: Pid, dest: Destination, msg: &mut Message) -> bool {
        if msg.carries_rights() {
            return false;
        }
        let Some(port) = self.plain_send_port(pid, dest) else {
            return false;
        };
        let Some(p) = self.ports.get_mut(port) else {
            return false;
        };
        let cost = super::queue::message_cost(msg.body.len(), 0, false);
        if !p.queue.blocked_receivers.is_empty()
            || p.set.is_some()
            || p.queue.closed
            || p.queue
                .admit(cost, false, false, self.config.queue_memory_limit)
                != Admission::Enqueue
        {
            return false;
        }
        let stamp = super::take_stamp(&mut self.next_stamp);
        p.queue.accepted += 1;
        p.queue.push_with(cost, || KMessage {
            id: msg.id,
            body: std::mem::take(&mut msg.body),
            carried: None,
            sender: pid,
            stamp,
        });
        true
    }
}

impl super::State {
    /// The common hand-off in few instructions: a message carrying no
    /// rights, sent through a send (or receive) right to a live port in no
    /// port set, with an empty queue and, first among its blocked
    /// receivers, one that takes anything and waits on this port alone, and
    /// room for the message (it keeps its place until taken).
    /// Completes that receive exactly as the general path does (the same
    /// arrival stamp, sequence number, trailer and woken waiter) and
    /// returns true, or leaves everything untouched and returns false when
    /// the case does not apply. It wakes the receiver: run it on the
    /// waking guard ([`Locked`]).
    #[inline(always)]
    pub(crate) fn try_fast_handoff(
        &mut self,
        pid: Pid,
        dest: Destination,
        msg: &mut Message,
    ) -> bool {
        if msg.carries_rights() || !self.graveyard.is_empty() {
            return false;
        }
        let Some(port) = self.plain_send_port(pid, dest) else {
            return false;
        };
        let Some(p) = self.ports.get(port) else {
            return false;
        };
        let q = &p.queue;
        let cost = super::queue::message_cost(msg.body.len(), 0, false);
        if p.set.is_some()
            || q.closed
            || !q.messages.is_empty()
            || q.admit_as(cost, false, false, self.config.queue_memory_limit, true)
                != Admission::Enqueue
        {
            return false;
        }
        let Some(&w) = q.blocked_receivers.front() else {
            return false;
        };
        let received_on = match self.waits.get(w) {
            Some(WaitRec {
                state:
                    WaitState::Receiving {
                        registrations,
                        filter: None,
                    },
                ..
            }) => match registrations[..] {
                [Registration::Queue(QueueId::Port(on), n)] if on == port => n,
                _ => return false,
            },
            _ => return false,
        };
        // What `copy_in`, `deliver` and `complete_receive` do for it.
        let stamp = super::take_stamp(&mut self.next_stamp).get();
        let q = &mut self.ports.get_mut(port).expect("looked up above").queue;
        q.accepted += 1;
        // Plain: no rights, a task's message, no filter (checked above).
        q.handed.push(super::queue::HandedTo {
            wait: w,
            plain: true,
            stamp,
        });
        let seqno = q.next_seqno();
        q.blocked_receivers.pop_front();
        let message = Message::received(
            msg.id,
            std::mem::take(&mut msg.body),
            pid,
            received_on,
            seqno,
        );
        let rec = self.waits.get_mut(w).expect("looked up above");
        rec.state = WaitState::Handed(WaitOutcome::Received(Ok(message)), QueueId::Port(port));
        let waker = rec.waker.clone();
        self.wake_later(waker);
        true
    }
}

impl Message {
    /// The message's id, body and right names, for giving rights back after a
    /// failed wait (the body is moved into the kernel message, so it is kept here).
    pub(crate) fn clone_shape(&self) -> Message {
        let mut shape = Message::new(self.id, crate::message::Body::new());
        shape.set_carried(self.rights().to_vec(), self.reply());
        shape
    }
}

impl super::KernelConfig {
    pub(crate) fn memory_limit(&self) -> usize {
        self.queue_memory_limit
    }
}
