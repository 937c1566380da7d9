//! Completing blocked operations: a blocked sender or receiver is finished
//! with a message or an error, taken off every queue it waited on, and its
//! waker scheduled (called once the kernel lock is released).

use smallvec::SmallVec;

use super::{
    KMessage, Locked, QueueId, Registration, State, WaitId, WaitOutcome, WaitState, Waker,
};
use crate::error::{ReceiveError, SendErrorKind};
use super::queue::HandedTo;
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
        let back = self.restore(task, msg, original, dest_name);
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
                filter: Some(_),
                ..
            })
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
        let message = self.copy_out(task, msg, received_on, seqno);
        let plain = !filtered && is_plain(&message);
        if let Some(queue) = self.queue_mut(q) {
            queue.handed.push(HandedTo { wait: w, plain });
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
        if !mine.plain {
            queue.handed.freeze_before(at);
        } else {
            let earlier: SmallVec<[WaitId; 4]> = queue.handed.as_slice()[..at]
                .iter()
                .filter(|h| h.plain)
                .map(|h| h.wait)
                .collect();
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

    /// A receive took a message from `q` without waiting (the head, or a
    /// parked sender's): every message handed over from `q` and still held
    /// is older, and keeps its own waiter from now on (see
    /// [`Self::take_handed`]).
    pub(crate) fn handed_overtaken(&mut self, q: QueueId) {
        if let Some(queue) = self.queue_mut(q) {
            queue.handed.freeze_before(usize::MAX);
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
    !message.carries_rights()
        && !(message.sender_verified() && message.sender() == Some(Pid::KERNEL))
}
