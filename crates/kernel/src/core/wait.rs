//! Completing blocked operations: a blocked sender or receiver is finished
//! with a message or an error, taken off every queue it waited on, and its
//! waker scheduled (called once the kernel lock is released).

use smallvec::SmallVec;

use super::{
    KMessage, Locked, QueueId, Registration, State, WaitId, WaitOutcome, WaitState, Waker,
};
use crate::error::{ReceiveError, SendErrorKind};
use crate::name::PortName;

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
    pub(crate) fn complete_receive(&mut self, w: WaitId, q: QueueId, msg: KMessage, seqno: u64) {
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
        if let Some(queue) = self.queue_mut(q) {
            queue.handed += 1;
        }
        if let Some(rec) = self.waits.get_mut(w) {
            rec.state = WaitState::Handed(WaitOutcome::Received(Ok(message)), q);
            let waker = rec.waker.clone();
            self.wake_later(waker);
        }
    }

    /// The waiter of a [`WaitState::Handed`] outcome took it (or is gone):
    /// its message's place in queue `q` is free again, which may let a
    /// blocked sender in or answer send-possible requests.
    pub(crate) fn release_handed(&mut self, q: QueueId) {
        let Some(queue) = self.queue_mut(q) else {
            return;
        };
        debug_assert!(queue.handed > 0, "a handed place released twice");
        queue.handed = queue.handed.saturating_sub(1);
        self.refill(q);
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
