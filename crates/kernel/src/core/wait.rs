//! Completing blocked operations: a blocked sender or receiver is finished
//! with a message or an error, taken off every queue it waited on, and its
//! waker scheduled (called once the kernel lock is released).

use smallvec::SmallVec;

use super::queue::HandedTo;
use super::{
    KMessage, Locked, QueueId, Registration, State, WaitId, WaitOutcome, WaitRec, WaitState, Waker,
};
use crate::error::{ReceiveError, SendErrorKind};
use crate::message::Message;
use crate::name::{Pid, PortName};

impl Locked<'_> {
    /// Completes a blocked sender with an error; its message goes back to it.
    pub(crate) fn fail_sender(&mut self, w: WaitId, kind: SendErrorKind) {
        let Some(rec) = self.waits.get_mut(w) else {
            return;
        };
        let state = std::mem::replace(
            &mut rec.state,
            WaitState::Receiving {
                registrations: SmallVec::new(),
                filter: None,
            },
        );
        let task = rec.task;
        let WaitState::Sending {
            msg,
            original,
            dest_name,
            ..
        } = state
        else {
            rec.state = state;
            return;
        };
        let back = self.restore(task, msg, *original, dest_name);
        self.finish(w, WaitOutcome::Sent(Err(kind.with(back))));
    }

    /// Completes a blocked receiver with an error.
    pub(crate) fn fail_receiver(&mut self, w: WaitId, error: ReceiveError) {
        self.unregister(w);
        self.finish(w, WaitOutcome::Received(Err(error)));
    }

    /// Completes a blocked receiver with a message taken from queue `q`.
    /// The message keeps its place in `q` until the receiver takes it
    /// ([`WaitState::Handed`]).
    pub(crate) fn complete_receive(&mut self, w: WaitId, q: QueueId, msg: KMessage, seqno: u64) {
        let filtered = matches!(
            self.waits.get(w).map(|r| &r.state),
            Some(WaitState::Receiving {
                filter: Some(f),
                ..
            }) if !f.passes_all()
        );
        let registrations = self.unregister(w);
        let task = self.waits.get(w).expect("live wait").task;
        let received_on = registrations
            .iter()
            .find_map(|r| match r {
                Registration::Queue(rq, name) if *rq == q => Some(*name),
                _ => None,
            })
            .unwrap_or_else(|| match q {
                QueueId::Port(p) => self
                    .task(task)
                    .and_then(|t| t.space.name_for_port(p))
                    .unwrap_or(PortName::NULL),
                QueueId::Mailbox(_) => PortName::NULL,
            });
        let stamp = msg.stamp.get();
        self.skipped_groups(&registrations, q, stamp);
        let message = self.copy_out(task, msg, received_on, seqno);
        // A wait on several sources (a select, a port set) was handed the
        // oldest message across them: another message of this queue, handed
        // later, could be younger than one waiting in another source.
        let one_source = matches!(registrations[..], [Registration::Queue(..)]);
        let plain = !filtered && one_source && is_plain(&message);
        if let Some(queue) = self.queue_mut(q) {
            queue.handed.push(HandedTo {
                wait: w,
                plain,
                stamp,
            });
        }
        if let Some(rec) = self.waits.get_mut(w) {
            rec.state = WaitState::Handed(WaitOutcome::Received(Ok(message)), q);
            let waker = rec.waker.clone();
            self.wake_later(waker);
        }
    }

    /// Wait `w` takes (or, exiting, gives up) the message handed to it from
    /// queue `q`, now in `outcome` (its record's state already moved out).
    ///
    /// **Group hand-off:** if its message is plain ([`HandedTo::plain`]),
    /// `w` takes the *oldest* plain message handed over from `q`, and each
    /// plain wait handed one before it moves up by one (each keeping the
    /// name it receives on), so what a receiver gets depends on the order
    /// the receivers take, as if each had asked the queue only when it
    /// took, not on the order they began to wait. Then its place in `q`
    /// is free again, which may let a blocked sender in or answer
    /// send-possible requests.
    ///
    /// Not on a rendezvous queue (`MsgQueue::groups_handed`): each
    /// waiter there takes its own message.
    ///
    /// A message taken out of that order (one that is not plain, taken
    /// while older plain ones are still held; or the queue's head taken by
    /// a receive that did not wait, [`Self::handed_overtaken`]) freezes the
    /// older entries: each keeps its own message from then on, so no
    /// receiver ever takes a message older than one it took before.
    pub(crate) fn take_handed(&mut self, w: WaitId, q: QueueId, outcome: &mut WaitOutcome) {
        let Some(queue) = self.queue_mut(q) else {
            return;
        };
        let Some((at, mine)) = queue.handed.remove(w) else {
            debug_assert!(false, "a handed place released twice");
            return;
        };
        if !mine.plain || !queue.groups_handed() {
            self.freeze_handed(q, at);
        } else {
            let earlier: SmallVec<[WaitId; 4]> = queue.handed.as_slice()[..at]
                .iter()
                .filter(|h| h.plain)
                .map(|h| h.wait)
                .collect();
            queue.handed.shift_stamps(at, mine.stamp);
            if let WaitOutcome::Received(Ok(message)) = outcome {
                // Walking back from the newest: `message` ends with the
                // oldest, each earlier wait with its successor's.
                for e in earlier.into_iter().rev() {
                    if let Some(WaitState::Handed(WaitOutcome::Received(Ok(theirs)), _)) =
                        self.waits.get_mut(e).map(|r| &mut r.state)
                    {
                        message.exchange_keeping_received_on(theirs);
                    }
                }
            }
        }
        self.refill(q);
    }

    /// Whether a receive that does not wait, with this filter, takes from
    /// queue `q` through its group of plain handed messages
    /// ([`Self::take_through_group`]): there is one, the queue's head is
    /// plain (it joins the group), and the filter, if any, passes the
    /// group's oldest message. (A selective receive that passes only a
    /// younger one of them takes from the queue instead.)
    pub(crate) fn group_serves(&self, q: QueueId, filter: Option<&crate::Filter>) -> bool {
        let Some(queue) = self.queue(q) else {
            return false;
        };
        let Some(head) = queue.messages.front() else {
            return false;
        };
        let Some(oldest) = queue.handed.group(queue.groups_handed()).next() else {
            return false;
        };
        head.is_plain()
            && filter.is_none_or(|f| match self.waits.get(oldest.wait).map(|r| &r.state) {
                Some(WaitState::Handed(WaitOutcome::Received(Ok(m)), _)) => f.matches(m),
                _ => false,
            })
    }

    /// A receive that did not wait is about to take `k`, the
    /// head of queue `q`, as the name `received_on` with sequence number
    /// `seqno`. When plain messages handed over from `q` are still held
    /// (a group: [`Self::take_handed`]) and `k` is plain too
    /// ([`Self::group_serves`]), it takes the
    /// oldest of them instead and `k` joins the group as its newest (each
    /// member moving up by one), exactly as if the handed messages were
    /// still queued ahead of `k`: so a receive that waited and was handed a
    /// message, and one made after that message arrived, get the same.
    /// Otherwise gives `k` back (the caller takes it, and the older handed
    /// messages keep their receivers: [`Self::handed_overtaken`]).
    pub(crate) fn take_through_group(
        &mut self,
        q: QueueId,
        k: KMessage,
        received_on: PortName,
        seqno: u64,
    ) -> Result<Message, KMessage> {
        let Some(queue) = self.queue(q) else {
            return Err(k);
        };
        let group: SmallVec<[WaitId; 4]> = queue
            .handed
            .group(queue.groups_handed())
            .map(|h| h.wait)
            .collect();
        let newest = match group.last().and_then(|&w| self.waits.get(w)) {
            Some(WaitRec {
                task,
                state: WaitState::Handed(WaitOutcome::Received(Ok(m)), _),
                ..
            }) if k.is_plain() => (*task, m.received_on().unwrap_or(PortName::NULL)),
            _ => return Err(k),
        };
        let stamp = k.stamp.get();
        let mut incoming = self.copy_out(newest.0, k, newest.1, seqno);
        for e in group.into_iter().rev() {
            if let Some(WaitState::Handed(WaitOutcome::Received(Ok(theirs)), _)) =
                self.waits.get_mut(e).map(|r| &mut r.state)
            {
                incoming.exchange_keeping_received_on(theirs);
            }
        }
        incoming.set_received_on(received_on);
        if let Some(queue) = self.queue_mut(q) {
            queue.handed.shift_stamps(usize::MAX, stamp);
        }
        Ok(incoming)
    }

    /// A receive on several sources (`registrations`) took, from `q`, a
    /// message that arrived at `stamp`: a group of plain handed messages
    /// in another of its sources whose oldest is older was passed over (it
    /// is promised to its waiters), so it must stay theirs: frozen, each
    /// keeps its own message from now on (else a later receive could take
    /// it through the group, and the receive that passed it over would
    /// have seen a message missing that nobody had taken).
    pub(crate) fn skipped_groups(
        &mut self,
        registrations: &[Registration],
        q: QueueId,
        stamp: u64,
    ) {
        if registrations.len() < 2 && !matches!(registrations, [Registration::Set(_)]) {
            return;
        }
        let mut others: SmallVec<[QueueId; 4]> = SmallVec::new();
        for r in registrations {
            match *r {
                Registration::Queue(other, _) => others.push(other),
                Registration::Set(set) => {
                    if let Some(set) = self.sets.get(set) {
                        others.extend(set.members.iter().map(|&p| QueueId::Port(p)));
                    }
                }
            }
        }
        for other in others.into_iter().filter(|&o| o != q) {
            if let Some(queue) = self.queue_mut(other) {
                let groups = queue.groups_handed();
                if queue
                    .handed
                    .group(groups)
                    .next()
                    .is_some_and(|h| h.stamp < stamp)
                {
                    self.freeze_handed(other, usize::MAX);
                }
            }
        }
    }

    /// A receive took a message from `q` without waiting (the head, or a
    /// parked sender's): every message handed over from `q` and still held
    /// is older, and keeps its own waiter from now on (see
    /// [`Self::take_handed`]).
    pub(crate) fn handed_overtaken(&mut self, q: QueueId) {
        self.freeze_handed(q, usize::MAX);
    }

    /// Makes the entries of `q`'s handed list before index `end` (all:
    /// `usize::MAX`) keep their own messages from now on (the group
    /// hand-off ends for them: [`Self::take_handed`]).
    ///
    /// While they were a group, which of its waits held which of its
    /// messages was not observable (whoever takes first takes the oldest),
    /// and the canonical encoding leaves it out: two histories that handed
    /// the same messages to the same waits in different orders are one
    /// state. Once frozen it is observable, so first the group's messages
    /// are dealt again in an order the state decides: the oldest to the
    /// wait the encoding numbers first (by task, then the task's own order
    /// of its waits), and so on. (Frozen as they lay, the two histories
    /// would go on differently from what the encoding counts as one state.)
    pub(crate) fn freeze_handed(&mut self, q: QueueId, end: usize) {
        let Some(queue) = self.queue(q) else {
            return;
        };
        // The group's members before `end`: (index in the list, wait), the
        // messages they hold oldest first.
        let members: SmallVec<[(usize, WaitId); 4]> = if queue.groups_handed() {
            queue
                .handed
                .iter()
                .enumerate()
                .take(end)
                .filter(|(_, h)| h.plain)
                .map(|(i, h)| (i, h.wait))
                .collect()
        } else {
            SmallVec::new()
        };
        let holds_message = |w: WaitId| {
            matches!(
                self.waits.get(w).map(|r| &r.state),
                Some(WaitState::Handed(WaitOutcome::Received(Ok(_)), _))
            )
        };
        if members.len() > 1 && members.iter().all(|&(_, w)| holds_message(w)) {
            let mut holder: SmallVec<[WaitId; 4]> = members.iter().map(|&(_, w)| w).collect();
            let mut want = holder.clone();
            want.sort_by_key(|&w| self.wait_order_key(w));
            for j in 0..want.len() {
                if holder[j] == want[j] {
                    continue;
                }
                let k = (j + 1..holder.len())
                    .find(|&k| holder[k] == want[j])
                    .expect("a permutation");
                self.exchange_handed(holder[j], holder[k]);
                holder.swap(j, k);
            }
            // The list keeps its order of messages (and their stamps, which
            // stay with the entries): each entry now names the wait holding
            // its message.
            if let Some(queue) = self.queue_mut(q) {
                for (&(at, _), &w) in members.iter().zip(&want) {
                    queue.handed.set_wait(at, w);
                }
            }
        }
        if let Some(queue) = self.queue_mut(q) {
            queue.handed.freeze_before(end);
        }
    }

    /// Where the canonical encoding numbers wait `w`: by its task, then
    /// its place among the task's waits.
    fn wait_order_key(&self, w: WaitId) -> (Pid, usize) {
        let Some(rec) = self.waits.get(w) else {
            return (Pid(u32::MAX), usize::MAX);
        };
        let at = self
            .task(rec.task)
            .and_then(|t| t.waits.iter().position(|&x| x == w))
            .unwrap_or(usize::MAX);
        (rec.task, at)
    }

    /// Exchanges the messages two handed waits hold, each keeping the name
    /// it receives on.
    fn exchange_handed(&mut self, a: WaitId, b: WaitId) {
        let placeholder = || WaitOutcome::Sent(Ok(crate::capacity::Sent::Delivered));
        let Some(WaitState::Handed(taken, _)) = self.waits.get_mut(a).map(|r| &mut r.state) else {
            return;
        };
        let mut outcome = std::mem::replace(taken, placeholder());
        if let (
            WaitOutcome::Received(Ok(mine)),
            Some(WaitState::Handed(WaitOutcome::Received(Ok(theirs)), _)),
        ) = (&mut outcome, self.waits.get_mut(b).map(|r| &mut r.state))
        {
            mine.exchange_keeping_received_on(theirs);
        }
        if let Some(WaitState::Handed(slot, _)) = self.waits.get_mut(a).map(|r| &mut r.state) {
            *slot = outcome;
        }
    }

    /// Removes a receive wait from every queue and set it is registered on.
    pub(crate) fn unregister(&mut self, w: WaitId) -> SmallVec<[Registration; 2]> {
        let Some(rec) = self.waits.get_mut(w) else {
            return SmallVec::new();
        };
        let WaitState::Receiving { registrations, .. } = &mut rec.state else {
            return SmallVec::new();
        };
        let registrations = std::mem::take(registrations);
        for r in &registrations {
            match *r {
                Registration::Queue(q, _) => {
                    if let Some(queue) = self.queue_mut(q) {
                        super::queue::remove_waiter(&mut queue.blocked_receivers, w);
                    }
                }
                Registration::Set(s) => {
                    if let Some(set) = self.sets.get_mut(s) {
                        super::queue::remove_waiter(&mut set.blocked_receivers, w);
                    }
                }
            }
        }
        registrations
    }

    /// Records a wait's outcome and schedules its waker.
    pub(crate) fn finish(&mut self, w: WaitId, outcome: WaitOutcome) {
        if let Some(rec) = self.waits.get_mut(w) {
            rec.state = WaitState::Done(outcome);
            let waker = rec.waker.clone();
            self.wake_later(waker);
        }
    }
}

impl State {
    /// Schedules a completed wait's waker: an id waiter's id joins the
    /// woken ids at once (nothing to call or allocate:
    /// [`Kernel::take_woken`](crate::Kernel::take_woken)); a handle is
    /// called once the lock is released.
    #[inline]
    pub(crate) fn wake_later(&mut self, waker: Waker) {
        match waker {
            Waker::Id(id) => self.woken.push(id),
            Waker::Call(call) => self.to_wake.push(call),
        }
    }
}

/// Whether a handed message could as well have gone to any other plain
/// waiter of its queue: it carries no rights (those were moved into the
/// receiver's name space) and is not a kernel notification (whose body
/// names ports in the receiver's space).
fn is_plain(message: &Message) -> bool {
    let notification = message.sender_verified() && message.sender() == Some(Pid::KERNEL);
    !(message.carries_rights() || notification)
}
