//! Receiving: find the oldest message among the sources (a port, a port set's
//! members, a mailbox, several names at once, direct links), take it — from the
//! queue, or straight from a parked sender on a rendezvous queue — and refill
//! the freed slot from the longest-blocked sender. If there is nothing, register
//! the receiver on every source.

use smallvec::SmallVec;

use super::space::Obj;
use super::{
    Begin, KMessage, Locked, QueueId, ReceiveOptions, Registration, WaitOutcome, WaitRec,
    WaitState, WaitToken, Waker,
};
use crate::capacity::{Admission, Sent};
use crate::core::Source;
use crate::error::{IpcError, ReceiveError};
use crate::filter::Filter;
use crate::message::Message;
use crate::name::{Pid, PortName};
use crate::Kernel;

/// Where the oldest available message is.
#[derive(Clone, Copy)]
enum Found {
    Queued(QueueId),
    /// Not the head (a selective receive): the message at this index.
    QueuedAt(QueueId, usize),
    Parked(QueueId, super::WaitId),
}

impl Kernel {
    /// Starts a receive for task `pid`. Completes at once with a message or an
    /// error (`Empty` when `may_wait` is false and nothing is there), or blocks
    /// and returns a token; the `waker` is called when the wait completes.
    #[inline]
    pub fn receive_begin(
        &self,
        pid: Pid,
        source: Source<'_>,
        may_wait: bool,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Message, ReceiveError>> {
        // One lock for both paths: the general one goes on under the lock
        // the fast one took (it changed nothing when it failed).
        let mut guard = self.lock_raw();
        if let Some(message) = guard.try_fast_receive(pid, source) {
            drop(guard);
            tracing::trace!(target: "mkipc::ipc", %pid, ?source, id = message.id, "receive");
            return Begin::Done(Ok(message));
        }
        if may_wait {
            if let Some(token) = guard.try_fast_wait(pid, source, waker) {
                drop(guard);
                tracing::trace!(target: "mkipc::ipc", %pid, ?source, "receive blocked");
                return Begin::Blocked(token);
            }
        }
        let result = self.locked(guard).receive(pid, source, may_wait, waker);
        trace_receive(pid, source, &result);
        result
    }

    /// The fast paths of [`Kernel::receive_begin`] alone, for a runner that
    /// makes most of its receives through them (the simulator): through a
    /// receive right of task `pid` to a plain port, the queued head when it
    /// carries no rights and nobody is parked behind it, or (`may_wait`) a
    /// wait on the empty queue. The answer has no error case to carry, so
    /// it is narrower than `receive_begin`'s
    /// `Begin<Result<Message, ReceiveError>>`.
    ///
    /// [`FastReceive::Other`]: neither case applies and nothing changed:
    /// make the receive with [`Kernel::receive_begin`], which then takes
    /// the general path (a run calling one or the other gets the same state
    /// and results).
    ///
    /// ```
    /// use mkipc_kernel::runtime::{FastReceive, Waker};
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
    ///
    /// let kernel = Kernel::new();
    /// let task = kernel.spawn_task();
    /// let port = task.port_allocate(Capacity::Bounded(1))?;
    /// task.send(port, Message::from_u64(1, 7))?;
    /// let waker = || Waker::Id(0);
    /// match kernel.receive_fast(task.pid(), port, true, &waker) {
    ///     FastReceive::Received(m) => assert_eq!(m.as_u64(), Some(7)),
    ///     _ => unreachable!("the head is taken"),
    /// }
    /// // Empty now: the receive waits.
    /// let FastReceive::Blocked(token) = kernel.receive_fast(task.pid(), port, true, &waker) else {
    ///     unreachable!("an empty queue is waited on")
    /// };
    /// assert!(kernel.wait_take(task.pid(), token).is_none());
    /// kernel.wait_cancel(task.pid(), token);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn receive_fast(
        &self,
        pid: Pid,
        source: PortName,
        may_wait: bool,
        waker: &dyn Fn() -> Waker,
    ) -> FastReceive {
        let source = Source::Name(source);
        let mut guard = self.lock_raw();
        if let Some(message) = guard.try_fast_receive(pid, source) {
            drop(guard);
            tracing::trace!(target: "mkipc::ipc", %pid, ?source, id = message.id, "receive");
            return FastReceive::Received(message);
        }
        if may_wait {
            if let Some(token) = guard.try_fast_wait(pid, source, waker) {
                drop(guard);
                tracing::trace!(target: "mkipc::ipc", %pid, ?source, "receive blocked");
                return FastReceive::Blocked(token);
            }
        }
        FastReceive::Other
    }
}

/// What [`Kernel::receive_fast`] did.
#[derive(Debug)]
pub enum FastReceive {
    /// It took the queue's head.
    Received(Message),
    /// It left a wait on the empty queue, as
    /// [`Begin::Blocked`](crate::runtime::Begin::Blocked) does.
    Blocked(WaitToken),
    /// Neither fast case applies; nothing changed.
    Other,
}

/// The `tracing` event of a receive the general path made.
#[inline]
fn trace_receive(pid: Pid, source: Source<'_>, result: &Begin<Result<Message, ReceiveError>>) {
    match result {
        Begin::Done(Ok(m)) => {
            tracing::trace!(target: "mkipc::ipc", %pid, ?source, id = m.id, "receive")
        }
        Begin::Done(Err(e)) => {
            tracing::trace!(target: "mkipc::ipc", %pid, ?source, error = ?e, "receive failed")
        }
        Begin::Blocked(_) => {
            tracing::trace!(target: "mkipc::ipc", %pid, ?source, "receive blocked")
        }
    }
}

impl Kernel {
    /// Starts a selective receive for task `pid`: the oldest message from
    /// `source` that `filter` passes (see
    /// [`Ipc::receive_matching`](crate::Ipc::receive_matching)). Completes
    /// at once, fails (`Empty` when `may_wait` is false and nothing
    /// matches), or blocks until a matching message arrives; messages that
    /// do not match stay queued, in order, for other receives.
    pub fn receive_matching_begin(
        &self,
        pid: Pid,
        source: Source<'_>,
        filter: &Filter,
        may_wait: bool,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Message, ReceiveError>> {
        let opts = ReceiveOptions {
            filter: Some(filter),
            first_ready: false,
        };
        let result = self.lock().receive_with(pid, source, opts, may_wait, waker);
        tracing::trace!(target: "mkipc::ipc", %pid, ?source, ?filter, done = matches!(result, Begin::Done(_)), "receive_matching");
        result
    }

    /// Starts a priority select for task `pid`: a message from the first of
    /// `sources` (in the order given) that has one, the oldest there (see
    /// [`Ipc::select_first`](crate::Ipc::select_first)). When none has one
    /// it waits as `select` does (the first to get a message is then the
    /// only ready one).
    pub fn select_first_begin(
        &self,
        pid: Pid,
        sources: &[PortName],
        may_wait: bool,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Message, ReceiveError>> {
        let opts = ReceiveOptions {
            filter: None,
            first_ready: true,
        };
        let result = self
            .lock()
            .receive_with(pid, Source::Any(sources), opts, may_wait, waker);
        tracing::trace!(target: "mkipc::ipc", %pid, ?sources, done = matches!(result, Begin::Done(_)), "select_first");
        result
    }

    /// Looks at the message a receive from `source` would take now, without
    /// taking it (see [`Ipc::peek`](crate::Ipc::peek)): a copy of its id,
    /// body and trailer (the sequence number it will get), without the
    /// rights it carries, which stay in the message. `Empty` when there is
    /// nothing; never waits.
    pub fn peek(&self, pid: Pid, source: Source<'_>) -> Result<Message, ReceiveError> {
        let result = self.lock().peek(pid, source);
        tracing::trace!(target: "mkipc::ipc", %pid, ?source, ok = result.is_ok(), "peek");
        result
    }
}

impl Locked<'_> {
    fn peek(&mut self, pid: Pid, source: Source<'_>) -> Result<Message, ReceiveError> {
        let regs = self.registrations(pid, source)?;
        let Some(found) = self.find_oldest(&regs, None) else {
            if let (Source::Task(_), Some(Registration::Queue(QueueId::Port(p), _))) =
                (source, regs.first())
            {
                if self.ports.get(*p).is_some_and(|p| p.writer_closed) {
                    return Err(ReceiveError::SourceDead);
                }
            }
            if self.any_closed(&regs) {
                return Err(ReceiveError::Closed);
            }
            return Err(ReceiveError::Empty);
        };
        let (q, msg) = match found {
            Found::Queued(q) => (q, self.queue(q).and_then(|queue| queue.messages.front())),
            Found::QueuedAt(q, i) => (
                q,
                self.queue(q).and_then(|queue| queue.messages.iter().nth(i)),
            ),
            Found::Parked(q, w) => (
                q,
                match self.waits.get(w).map(|r| &r.state) {
                    Some(WaitState::Sending { msg, .. }) => Some(msg),
                    _ => None,
                },
            ),
        };
        let msg = msg.expect("found a message");
        let (mut id, mut body, mut sender) = (msg.id, msg.body.clone(), msg.sender);
        let mut seqno = self.queue(q).expect("live").seqno;
        // Behind a group of plain handed messages, a receive would take the
        // group's oldest (`take_through_group`): that is what it sees.
        if let (Found::Queued(_), true) = (found, msg.is_plain()) {
            let queue = self.queue(q).expect("live");
            let oldest = queue.handed.group(queue.groups_handed()).next();
            if let Some(WaitRec {
                state: WaitState::Handed(super::WaitOutcome::Received(Ok(m)), _),
                ..
            }) = oldest.and_then(|h| self.waits.get(h.wait))
            {
                id = m.id;
                body = m.body.clone();
                if let Some(t) = m.trailer() {
                    sender = t.sender;
                    seqno = t.seqno;
                }
            }
        }
        let received_on = regs
            .iter()
            .find_map(|r| match r {
                Registration::Queue(rq, name) if *rq == q => Some(*name),
                _ => None,
            })
            .unwrap_or_else(|| self.receiver_name_in(pid, q));
        Ok(Message::received(id, body, sender, received_on, seqno))
    }

    /// Whether a queue registered on directly is closed (with nothing for
    /// this receive in any source: the caller looked first).
    fn any_closed(&self, regs: &[Registration]) -> bool {
        regs.iter().any(|r| match *r {
            Registration::Queue(q, _) => self.queue(q).is_some_and(|queue| queue.closed),
            Registration::Set(_) => false,
        })
    }

    fn registration_for(&mut self, pid: Pid, name: PortName) -> Result<Registration, ReceiveError> {
        match self.resolve(pid, name)? {
            Obj::Port {
                port,
                receive: true,
                ..
            } => Ok(Registration::Queue(QueueId::Port(port), name)),
            Obj::Set(set) => Ok(Registration::Set(set)),
            Obj::Mailbox(m) => {
                if self
                    .mailboxes
                    .get(m)
                    .is_some_and(|mb| mb.access(pid).receive)
                {
                    Ok(Registration::Queue(QueueId::Mailbox(m), name))
                } else {
                    Err(ReceiveError::NoPermission)
                }
            }
            Obj::Dead(_) => Err(ReceiveError::SourceDead),
            Obj::Port { .. } | Obj::SendOnce(_) => Err(ReceiveError::WrongRight),
        }
    }

    fn registrations(
        &mut self,
        pid: Pid,
        source: Source<'_>,
    ) -> Result<SmallVec<[Registration; 2]>, ReceiveError> {
        if self.task(pid).is_none() {
            return Err(ReceiveError::TaskExited);
        }
        let mut regs = SmallVec::new();
        match source {
            Source::Name(name) => regs.push(self.registration_for(pid, name)?),
            Source::Any(names) => {
                if names.is_empty() {
                    return Err(ReceiveError::InvalidValue);
                }
                for &name in names {
                    let r = self.registration_for(pid, name)?;
                    if !regs.contains(&r) {
                        regs.push(r);
                    }
                }
            }
            Source::Task(from) => {
                if from.0 == 0 || from.0 as usize >= self.tasks.len() {
                    return Err(ReceiveError::InvalidName);
                }
                let port = match self
                    .task(pid)
                    .and_then(|t| t.links().links_in.get(&from).copied())
                {
                    Some(p) => p,
                    None if self.task(from).is_none() => return Err(ReceiveError::SourceDead),
                    None => self.link_port(from, pid),
                };
                regs.push(Registration::Queue(QueueId::Port(port), PortName::NULL));
            }
            Source::AnyTask => regs.push(Registration::Set(self.inbox_of(pid))),
        }
        Ok(regs)
    }

    /// The oldest message (by global stamp) a queue can give now, to a
    /// receive with this filter.
    fn oldest_in(&self, q: QueueId, filter: Option<&Filter>) -> Option<(u64, Found)> {
        if let Some(f) = filter {
            return self.oldest_matching_in(q, f);
        }
        let queue = self.queue(q)?;
        // Behind a group of plain handed messages, a plain head stands for
        // the group's oldest (`take_through_group`), and is as old.
        let queued = queue.messages.front().map(|m| {
            let stamp = match queue.handed.group(queue.groups_handed()).next() {
                Some(h) if self.group_serves(q, None) => h.stamp,
                _ => m.stamp.get(),
            };
            (stamp, Found::Queued(q))
        });
        let parked = || {
            let &w = queue.blocked_senders.front()?;
            match &self.waits.get(w)?.state {
                WaitState::Sending { msg, .. } => Some((msg.stamp.get(), Found::Parked(q, w))),
                _ => None,
            }
        };
        queue
            .capacity
            .next_message(queued, parked, !queue.handed.is_empty())
    }

    /// The oldest message `f` passes in queue `q`: queued (in queue order,
    /// which is stamp order) or offered by a parked sender (in the order
    /// they parked), whichever is older.
    fn oldest_matching_in(&self, q: QueueId, f: &Filter) -> Option<(u64, Found)> {
        let queue = self.queue(q)?;
        // The group's oldest handed message, if the filter passes it, is
        // older than anything queued (`take_through_group` takes it).
        if self.group_serves(q, Some(f)) {
            let oldest = queue.handed.group(queue.groups_handed()).next()?;
            return Some((oldest.stamp, Found::Queued(q)));
        }
        let queued = queue
            .messages
            .iter()
            .enumerate()
            .find(|(_, m)| f.matches_parts(m.id, m.sender, &m.body))
            .map(|(i, m)| {
                let at = if i == 0 {
                    Found::Queued(q)
                } else {
                    Found::QueuedAt(q, i)
                };
                (m.stamp.get(), at)
            });
        let parked = queue
            .blocked_senders
            .iter()
            .find_map(|&w| match &self.waits.get(w)?.state {
                WaitState::Sending { msg, .. }
                    if f.matches_parts(msg.id, msg.sender, &msg.body) =>
                {
                    Some((msg.stamp.get(), Found::Parked(q, w)))
                }
                _ => None,
            });
        match (queued, parked) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Takes the oldest message queue `q` can give now to a receive with
    /// this filter, without refilling it (the caller completes its receiver
    /// first, then calls [`Self::refill`]).
    pub(crate) fn take_oldest_unrefilled(
        &mut self,
        q: QueueId,
        filter: Option<&Filter>,
    ) -> Option<KMessage> {
        let (_, found) = self.oldest_in(q, filter)?;
        Some(self.take_unrefilled(found).1)
    }

    fn find_oldest(&self, regs: &[Registration], filter: Option<&Filter>) -> Option<Found> {
        let mut best: Option<(u64, Found)> = None;
        let mut consider = |c: Option<(u64, Found)>| {
            if let Some(c) = c {
                if best.as_ref().is_none_or(|b| c.0 < b.0) {
                    best = Some(c);
                }
            }
        };
        for r in regs {
            match *r {
                Registration::Queue(q, _) => consider(self.oldest_in(q, filter)),
                Registration::Set(s) => {
                    if let Some(set) = self.sets.get(s) {
                        for &p in &set.members {
                            consider(self.oldest_in(QueueId::Port(p), filter));
                        }
                    }
                }
            }
        }
        best.map(|b| b.1)
    }

    /// The oldest message of the first registration (in the order given)
    /// that has one: a priority select.
    fn find_first_ready(&self, regs: &[Registration], filter: Option<&Filter>) -> Option<Found> {
        regs.iter()
            .find_map(|r| self.find_oldest(std::slice::from_ref(r), filter))
    }

    /// After taking the message `found` pointed at from `q`: refills the
    /// queue from blocked senders (a parked sender's message taken straight
    /// left the queue as it was: only send-possible requests may be due).
    fn refill_after(&mut self, found: Found, q: QueueId) {
        match found {
            Found::Queued(_) | Found::QueuedAt(..) => self.refill(q),
            Found::Parked(..) => self.notify_send_possible(q),
        }
    }

    /// Takes the message `found` points at: the queue's head, or a parked
    /// sender's message (which completes that send).
    fn take_unrefilled(&mut self, found: Found) -> (QueueId, KMessage) {
        match found {
            Found::Queued(q) => (
                q,
                self.queue_mut(q).expect("live").pop().expect("non-empty"),
            ),
            Found::QueuedAt(q, i) => (
                q,
                self.queue_mut(q)
                    .expect("live")
                    .remove_at(i)
                    .expect("index found"),
            ),
            Found::Parked(q, w) => {
                let queue = self.queue_mut(q).expect("live");
                super::queue::remove_waiter(&mut queue.blocked_senders, w);
                // Handed over straight from its sender: the queue accepted it
                // now (the other hand-overs count in `deliver`).
                queue.accepted += 1;
                (q, self.take_parked(w))
            }
        }
    }

    /// Removes the message from a blocked sender's wait and completes the send.
    fn take_parked(&mut self, w: super::WaitId) -> KMessage {
        let rec = self.waits.get_mut(w).expect("live wait");
        let state = std::mem::replace(
            &mut rec.state,
            WaitState::Done(WaitOutcome::Sent(Ok(Sent::Delivered))),
        );
        let WaitState::Sending { msg, .. } = state else {
            unreachable!("blocked sender not sending")
        };
        let waker = rec.waker.clone();
        self.wake_later(waker);
        msg
    }

    /// Moves blocked senders' messages into the queue while it admits them
    /// (after a receive freed a slot, or the capacity grew); then, if room
    /// is left, answers the queue's send-possible requests.
    pub(crate) fn refill(&mut self, q: QueueId) {
        self.refill_senders(q);
        self.notify_send_possible(q);
    }

    fn refill_senders(&mut self, q: QueueId) {
        let memory_limit = self.config.memory_limit();
        loop {
            let Some(queue) = self.queue(q) else { return };
            let Some(&w) = queue.blocked_senders.front() else {
                return;
            };
            let Some(WaitRec {
                state: WaitState::Sending { msg, .. },
                ..
            }) = self.waits.get(w)
            else {
                return;
            };
            if queue.admit(
                msg.cost(),
                msg.via_send_once().is_some(),
                false,
                memory_limit,
            ) != Admission::Enqueue
            {
                return;
            }
            self.queue_mut(q).expect("live").blocked_senders.pop_front();
            let mut msg = self.take_parked(w);
            // It arrives now: a select compares messages by when they
            // entered their queues, not by when their senders began to
            // wait for room (so a send that blocked is the same, to every
            // receiver, as the same send made when the room appeared).
            msg.stamp = self.stamp();
            self.deliver(q, msg);
        }
    }

    #[inline(never)]
    pub(crate) fn receive(
        &mut self,
        pid: Pid,
        source: Source<'_>,
        may_wait: bool,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Message, ReceiveError>> {
        self.receive_with(pid, source, ReceiveOptions::default(), may_wait, waker)
    }

    pub(crate) fn receive_with(
        &mut self,
        pid: Pid,
        source: Source<'_>,
        opts: ReceiveOptions<'_>,
        may_wait: bool,
        waker: &dyn Fn() -> Waker,
    ) -> Begin<Result<Message, ReceiveError>> {
        let regs = match self.registrations(pid, source) {
            Ok(r) => r,
            Err(e) => return Begin::Done(Err(e)),
        };
        let found = if opts.first_ready {
            self.find_first_ready(&regs, opts.filter)
        } else {
            self.find_oldest(&regs, opts.filter)
        };
        if let Some(found) = found {
            // Taken before the queue is refilled, so that a parked sender
            // let in comes after it (and after the group it may join).
            let via_group = match found {
                Found::Queued(q) => self.group_serves(q, opts.filter),
                _ => false,
            };
            let (q, msg) = self.take_unrefilled(found);
            let taken = match self.queue(q) {
                Some(queue) if via_group => queue
                    .handed
                    .group(queue.groups_handed())
                    .next()
                    .map_or(msg.stamp.get(), |h| h.stamp),
                _ => msg.stamp.get(),
            };
            self.skipped_groups(&regs, q, taken);
            let seqno = self.queue_mut(q).expect("live").next_seqno();
            let received_on = regs
                .iter()
                .find_map(|r| match r {
                    Registration::Queue(rq, name) if *rq == q => Some(*name),
                    _ => None,
                })
                .unwrap_or_else(|| self.receiver_name_in(pid, q));
            let through_group = if via_group {
                self.take_through_group(q, msg, received_on, seqno)
            } else {
                Err(msg)
            };
            let message = match through_group {
                Ok(message) => message,
                Err(msg) => {
                    self.handed_overtaken(q);
                    self.copy_out(pid, msg, received_on, seqno)
                }
            };
            self.refill_after(found, q);
            if let QueueId::Port(port) = q {
                self.reclaim_link_if_drained(port);
            }
            self.reap();
            return Begin::Done(Ok(message));
        }
        if let Source::Task(from) = source {
            let closed = match regs[0] {
                Registration::Queue(QueueId::Port(p), _) => {
                    self.ports.get(p).is_some_and(|p| p.writer_closed)
                }
                _ => false,
            };
            if closed {
                return Begin::Done(Err(ReceiveError::SourceDead));
            }
            let _ = from;
        }
        if self.any_closed(&regs) {
            return Begin::Done(Err(ReceiveError::Closed));
        }
        if !may_wait {
            return Begin::Done(Err(ReceiveError::Empty));
        }
        let id = self.waits.insert(WaitRec {
            task: pid,
            waker: waker(),
            state: WaitState::Receiving {
                // A copy of the (`Copy`) registrations, not a clone
                // through an iterator.
                registrations: SmallVec::from_slice(&regs),
                filter: opts.filter.map(|f| Box::new(f.clone())),
            },
        });
        for r in &regs {
            match *r {
                Registration::Queue(q, _) => self
                    .queue_mut(q)
                    .expect("live")
                    .blocked_receivers
                    .push_back(id),
                Registration::Set(s) => self
                    .sets
                    .get_mut(s)
                    .expect("live")
                    .blocked_receivers
                    .push_back(id),
            }
        }
        self.task_mut(pid).expect("live").waits.push(id);
        // A waiting receiver is room on a rendezvous queue.
        for r in &regs {
            match *r {
                Registration::Queue(q, _) => self.notify_send_possible(q),
                Registration::Set(s) => {
                    let members: SmallVec<[super::PortId; 4]> = self
                        .sets
                        .get(s)
                        .map(|set| set.members.iter().copied().collect())
                        .unwrap_or_default();
                    for p in members {
                        self.notify_send_possible(QueueId::Port(p));
                    }
                }
            }
        }
        self.reap();
        Begin::Blocked(WaitToken::from_id(id, false))
    }

    fn receiver_name_in(&self, pid: Pid, q: QueueId) -> PortName {
        match q {
            QueueId::Port(p) => self
                .task(pid)
                .and_then(|t| t.space.name_for_port(p))
                .unwrap_or(PortName::NULL),
            QueueId::Mailbox(_) => PortName::NULL,
        }
    }
}

impl super::State {
    /// The common case in few instructions: a receive right whose queue holds
    /// a message carrying no rights, and no sender blocked behind it (taking
    /// one would mean a refill and a wake-up) nor a send-possible request
    /// waiting for the room it frees. It never wakes anyone, so it
    /// runs on the bare lock guard.
    /// The port whose receive right `pid` holds under `name` (the fast
    /// paths' lookup).
    #[inline(always)]
    fn own_port(&self, pid: Pid, name: PortName) -> Option<super::PortId> {
        let task = self.tasks.get(pid.0 as usize)?.as_ref()?;
        match task.space.get(name) {
            Ok(Obj::Port {
                port,
                receive: true,
                ..
            }) => Some(port),
            _ => None,
        }
    }

    #[inline(always)]
    pub(crate) fn try_fast_receive(&mut self, pid: Pid, source: Source<'_>) -> Option<Message> {
        let Source::Name(name) = source else {
            return None;
        };
        let port = self.own_port(pid, name)?;
        let q = &mut self.ports.get_mut(port)?.queue;
        match q.messages.front() {
            Some(head)
                if head.carried.is_none()
                    && q.blocked_senders.is_empty()
                    && q.send_possible.is_empty()
                    && q.handed.is_empty() => {}
            _ => return None,
        }
        let super::KMessage {
            id,
            sender,
            body,
            carried,
            ..
        } = q.pop()?;
        // Checked above; spelled out so no drop glue is called for `None`.
        if let Some(carried) = carried {
            drop(carried);
        }
        let seqno = q.next_seqno();
        Some(Message::received(id, body, sender, name, seqno))
    }
}

impl super::State {
    /// The common wait in few instructions: a receive right whose queue is
    /// empty, with no sender parked on it, not closed, in no port set, and
    /// nobody asking to hear when a send is possible there. Registers the
    /// receiver exactly as the general path would (the same wait record,
    /// the same place among the queue's blocked receivers) and returns its
    /// token, or changes nothing and returns `None` when the case does not
    /// apply. It never wakes anyone, so it runs on the bare lock guard.
    #[inline(always)]
    pub(crate) fn try_fast_wait(
        &mut self,
        pid: Pid,
        source: Source<'_>,
        waker: &dyn Fn() -> Waker,
    ) -> Option<WaitToken> {
        let Source::Name(name) = source else {
            return None;
        };
        if !self.graveyard.is_empty() {
            return None;
        }
        let port = self.own_port(pid, name)?;
        let p = self.ports.get(port)?;
        let q = &p.queue;
        if p.set.is_some()
            || !q.messages.is_empty()
            || !q.blocked_senders.is_empty()
            || !q.send_possible.is_empty()
            || q.closed
        {
            return None;
        }
        let queue = QueueId::Port(port);
        // Built whole, without `push`'s capacity check and its out-of-line
        // grow path: one registration, the second slot unused.
        let one = Registration::Queue(queue, name);
        let registrations = SmallVec::from_buf_and_len([one, one], 1);
        let id = self.waits.insert(WaitRec {
            task: pid,
            waker: waker(),
            state: WaitState::Receiving {
                registrations,
                filter: None,
            },
        });
        self.ports
            .get_mut(port)
            .expect("looked up above")
            .queue
            .blocked_receivers
            .push_back(id);
        self.task_mut(pid).expect("live").waits.push(id);
        Some(WaitToken::from_id(id, false))
    }
}

impl From<IpcError> for Begin<Result<Message, ReceiveError>> {
    fn from(e: IpcError) -> Self {
        Begin::Done(Err(e.into()))
    }
}
