//! Task lifecycle and waits: creating and ending tasks, collecting or
//! cancelling the outcome of a blocked operation, and handing rights to a new
//! task (inheritance across a "fork").

use super::send::Target;
use super::space::{Obj, Space};
use super::{KRight, Kernel, Locked, TaskState, WaitId, WaitOutcome, WaitState, WaitToken};
use crate::capacity::Sent;
use crate::error::{IpcError, ReceiveError, SendErrorKind};
use crate::message::{CarriedRight, Message};
use crate::name::{Pid, PortName};
use smallvec::SmallVec;

impl Locked<'_> {
    pub(crate) fn exit_task(&mut self, pid: Pid) {
        let Some(task) = self.tasks.get_mut(pid.0 as usize).and_then(Option::take) else {
            return;
        };
        let task = task.into_inner();
        tracing::debug!(target: "mkipc::task", %pid, "task exits");
        // Places held by handed messages are freed once none of the task's
        // waits is registered anywhere: freeing one may hand a parked
        // sender's message to the first receiver waiting, never one of these.
        let mut held = SmallVec::<[_; 2]>::new();
        for w in task.waits {
            if let Some(rec) = self.waits.remove(w) {
                // A thread of this task may be parked on the wait: wake it so it
                // sees the task is gone (`TaskExited`) instead of sleeping on.
                self.wake_later(rec.waker.clone());
                match rec.state {
                    WaitState::Sending { msg, queue, .. } => {
                        if let Some(q) = self.queue_mut(queue) {
                            super::queue::remove_waiter(&mut q.blocked_senders, w);
                        }
                        self.destroy_message(msg);
                    }
                    WaitState::Receiving { registrations, .. } => {
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
                    // Gone with the task: the oldest plain message handed
                    // over (group hand-off), or its own.
                    WaitState::Handed(outcome, q) => held.push((w, q, outcome)),
                }
            }
        }
        for (w, q, mut outcome) in held {
            self.take_handed(w, q, &mut outcome);
        }
        let named: Vec<(PortName, Obj)> = task.space.entries().collect();
        // The task's dead-name and send-possible requests go with its names.
        for &(name, obj) in &named {
            if let Obj::Port { port, .. } | Obj::SendOnce(port) = obj {
                self.cancel_dead_name_request(pid, name, port);
            }
            if let Some(q) = super::notify::queue_of(obj) {
                self.cancel_send_possible(pid, name, q);
            }
        }
        for (_, obj) in named {
            let obj = match obj {
                Obj::Port { port, .. } | Obj::SendOnce(port) if !self.ports.contains(port) => {
                    continue
                }
                o => o,
            };
            self.release_obj(obj);
            self.reap();
        }
        if let Some(links) = task.links {
            let links = *links;
            for m in links.owned_mailboxes {
                self.destroy_mailbox(m);
            }
            for (_, port) in links.links_out {
                self.close_link_writer(port);
            }
            for (_, port) in links.links_in {
                self.graveyard.push(KRight::Receive(port));
            }
            if let Some(inbox) = links.inbox {
                self.destroy_set(inbox);
            }
        }
        self.reap();
    }

    pub(crate) fn create_task(&mut self) -> Pid {
        let pid = Pid(u32::try_from(self.tasks.len()).expect("pid overflow"));
        // No inbox nor link maps yet: made on first use (`links.rs`).
        self.tasks.push(Some(crate::arena::Cow::Own(TaskState {
            space: Space::new(),
            links: None,
            waits: SmallVec::new(),
        })));
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
    /// Taking a message handed over while the receiver waited frees its
    /// place in the queue it came from ([`capacity`](crate::capacity), "A
    /// handed message keeps its place").
    pub fn wait_take(&self, pid: Pid, token: WaitToken) -> Option<WaitOutcome> {
        self.wait_take_with(pid, token, true)
    }

    /// [`Kernel::wait_take`]; `lone` false keeps the lone handed message
    /// on the general path (the unit tests compare the two).
    #[inline(always)]
    pub(crate) fn wait_take_with(
        &self,
        pid: Pid,
        token: WaitToken,
        lone: bool,
    ) -> Option<WaitOutcome> {
        // Only the wait's own record changes (unless it holds a place): the
        // lanes may stay open.
        let mut st = self.lock_unfenced();
        let id = token.id();
        let Some(rec) = st.waits.get(id) else {
            return Some(token.abandoned());
        };
        let held = match rec.state {
            WaitState::Done(_) => None,
            WaitState::Handed(_, q) => Some(q),
            _ => return None,
        };
        if let (Some(super::QueueId::Port(port)), true) = (held, lone) {
            if st.lone_handed(id, port) {
                return Some(st.take_lone_handed(pid, id, port));
            }
        }
        if held.is_some() && !st.lanes.open.is_empty() {
            // Freeing the place may admit a sender or answer send-possible
            // requests, whose notifications may go to any port.
            st.fence_lanes();
        }
        // Only the outcome moves out; the record (several times its size)
        // is dropped where it lies.
        let (WaitState::Done(outcome) | WaitState::Handed(outcome, _)) =
            &mut st.waits.get_mut(id).expect("live wait").state
        else {
            unreachable!("checked above")
        };
        let mut outcome = std::mem::replace(outcome, WaitOutcome::Sent(Ok(Sent::Delivered)));
        st.waits.discard(id);
        if let Some(t) = st.task_mut(pid) {
            t.waits.retain(|w| *w != id);
        }
        if let Some(q) = held {
            st.take_handed(id, q, &mut outcome);
            st.reap();
        }
        Some(outcome)
    }
}

impl super::State {
    /// Whether wait `id`, handed a message from `port`, may be taken in
    /// few instructions ([`State::take_lone_handed`]): its message is the
    /// only one held from the port, and freeing its place moves nothing
    /// (no sender parked there, nobody asking to hear when a send is
    /// possible, no lane open, no right waiting to be reaped).
    #[inline]
    fn lone_handed(&self, id: WaitId, port: super::PortId) -> bool {
        self.lanes.open.is_empty()
            && self.graveyard.is_empty()
            && self.ports.get(port).is_some_and(|p| {
                p.queue.handed.is_only(id)
                    && p.queue.blocked_senders.is_empty()
                    && p.queue.send_possible.is_empty()
            })
    }

    /// [`Kernel::wait_take`] of a wait [`State::lone_handed`] says yes to,
    /// changing what the general path changes there: the outcome moves out,
    /// the record goes, the task forgets the wait, the queue its one handed
    /// place (`take_handed` on a list of one moves no other message and no
    /// stamp; `refill` and `reap` find nothing to do).
    #[inline]
    fn take_lone_handed(&mut self, pid: Pid, id: WaitId, port: super::PortId) -> WaitOutcome {
        let rec = self.waits.get_mut(id).expect("checked by the caller");
        let outcome = match &mut rec.state {
            WaitState::Handed(outcome, _) => {
                std::mem::replace(outcome, WaitOutcome::Sent(Ok(Sent::Delivered)))
            }
            _ => unreachable!("checked by the caller"),
        };
        self.waits.discard(id);
        if let Some(t) = self.task_mut(pid) {
            t.waits.retain(|w| *w != id);
        }
        self.ports
            .get_mut(port)
            .expect("checked by the caller")
            .queue
            .handed
            .clear();
        outcome
    }
}

impl Kernel {
    /// Whether taking the outcome of the completed wait behind `token`
    /// ([`Kernel::wait_take`]) is an operation on the queue its message
    /// came from, not only on the wait: the message holds a place in a
    /// bounded queue, whose taking frees it (and may let a blocked sender
    /// in); or it is a plain message handed over from a mailbox, where
    /// whoever takes first takes the oldest (the group hand-off: another
    /// receiver's take, or a receive that did not wait, changes what this
    /// one gets). For a checker that must tell a step that only takes its
    /// own outcome from one that changes a queue others use. (A port's
    /// receivers are one task's: in a checker, one wait at a time.)
    pub fn wait_holds_place(&self, pid: Pid, token: WaitToken) -> bool {
        let _ = pid;
        let st = self.lock_unfenced();
        let id = token.id();
        match st.waits.get(id).map(|r| &r.state) {
            Some(WaitState::Handed(_, q)) => st.queue(*q).is_some_and(|queue| {
                matches!(queue.capacity, crate::Capacity::Bounded(_))
                    || (matches!(q, super::QueueId::Mailbox(_))
                        && queue.groups_handed()
                        && queue.handed.iter().any(|h| h.wait == id && h.plain))
            }),
            _ => false,
        }
    }

    /// Gives up on a wait (its deadline passed): a pending send fails with
    /// [`SendErrorKind::TimedOut`] and gets its message back, a pending receive
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
                st.fail_sender(id, SendErrorKind::TimedOut);
            }
            WaitState::Receiving { .. } => st.fail_receiver(id, ReceiveError::TimedOut),
            WaitState::Done(_) | WaitState::Handed(..) => {}
        }
        let rec = st.waits.remove(id).expect("live wait");
        if let Some(t) = st.task_mut(pid) {
            t.waits.retain(|w| *w != id);
        }
        let outcome = match rec.state {
            WaitState::Done(outcome) => outcome,
            WaitState::Handed(mut outcome, q) => {
                st.take_handed(id, q, &mut outcome);
                outcome
            }
            _ => unreachable!("cancelled wait is done"),
        };
        st.reap();
        outcome
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
        let mut msg = Message::default();
        msg.set_carried(rights.to_vec(), None);
        let target = Target {
            queue: None,
            send_once_name: None,
        };
        st.check_carried_rights(from, &msg, &target)
            .map_err(|(_, e)| e)?;
        let k = st.copy_in(from, msg, &target);
        let mut out = st.copy_out(to, k, PortName::NULL, 0);
        st.reap();
        Ok(out.take_rights())
    }
}

impl WaitToken {
    /// The outcome of a wait whose record is gone (its task exited).
    fn abandoned(self) -> WaitOutcome {
        if self.is_send() {
            WaitOutcome::Sent(Err(SendErrorKind::TaskExited.with(Message::default())))
        } else {
            WaitOutcome::Received(Err(ReceiveError::TaskExited))
        }
    }
}
