//! The message queue every port, mailbox and direct link has.
//!
//! A queue is a FIFO of messages plus two FIFOs of blocked operations: senders
//! whose message could not enter yet (their message waits with them), and
//! receivers waiting for a message. The [capacity model](crate::capacity)
//! decides only whether a message may enter; everything else is shared.
//!
//! Invariants (checked by the reference-model tests):
//! * a receiver is blocked only while the queue holds nothing it could take;
//! * a sender is blocked only while the queue is full for it;
//! * messages leave in the order they entered (FIFO across all senders).

use std::collections::{BTreeMap, VecDeque};

use super::fifo::Fifo;
use super::{BySlot, KMessage, KRight, WaitId};
use crate::capacity::{Admission, Capacity, QueueLoad};
use crate::name::Pid;

/// What one queued message costs before its body and rights: its slot in
/// the queue's storage.
pub(crate) const ENTRY_COST: usize = std::mem::size_of::<Option<KMessage>>();

/// What the rights a message carries cost: their box, plus one entry per
/// right beyond the two kept inline.
const CARRIED_COST: usize = std::mem::size_of::<super::Carried>();
const RIGHT_COST: usize = std::mem::size_of::<(super::KRight, crate::Disposition)>();

/// The memory a queued message costs, in bytes: its entry, its body, and
/// (when it carries any) its rights. This, not the body length alone, is
/// what the memory ceiling limits, so a flood of empty messages is bounded
/// too. `rights` counts carried rights and the reply right; `boxed` says
/// whether the message keeps a box of rights (any right, or a send-once
/// origin).
#[inline(always)]
pub(crate) fn message_cost(body_len: usize, rights: usize, boxed: bool) -> usize {
    let carried = if boxed {
        CARRIED_COST.saturating_add(rights.saturating_sub(2).saturating_mul(RIGHT_COST))
    } else {
        0
    };
    ENTRY_COST.saturating_add(body_len).saturating_add(carried)
}

impl KMessage {
    /// The memory this message costs in a queue ([`message_cost`]).
    #[inline(always)]
    pub(crate) fn cost(&self) -> usize {
        match &self.carried {
            None => message_cost(self.body.len(), 0, false),
            Some(c) => message_cost(
                self.body.len(),
                c.rights.len() + usize::from(c.reply.is_some()),
                true,
            ),
        }
    }
}

/// Bounded queues get their buffer when they are created, up to this many
/// entries, as a bounded channel allocates its slots up front. Growing the
/// buffer message by message interleaves its reallocations with the
/// allocations of message bodies, and glibc then trims and regrows the heap
/// under both threads: 1 KiB messages through a bounded(1024) port ran three
/// times slower that way (`cargo bench -p mkipc-kernel --bench ports`).
const PREALLOCATED: usize = 1024;

pub(crate) struct MsgQueue {
    pub capacity: Capacity,
    /// The queued messages, oldest first (in blocks: see [`Fifo`]).
    pub messages: Fifo<KMessage>,
    /// Memory the queued messages cost, in bytes ([`message_cost`]): what
    /// the kernel's memory ceiling is checked against.
    pub bytes: usize,
    pub blocked_senders: VecDeque<WaitId>,
    pub blocked_receivers: VecDeque<WaitId>,
    /// Sequence number the next received message gets.
    pub seqno: u64,
    /// Messages the queue accepted: queued, or handed to a receiver (from
    /// the sender, or from a parked sender's wait). Counted where the
    /// message changes hands: `deliver` (and the send fast path, its
    /// inlined copy) and a receive taking a parked sender's message.
    pub accepted: u64,
    pub dropped: u64,
    pub max_len: usize,
    /// Send-possible requests (Mach's `MACH_NOTIFY_SEND_POSSIBLE`), by
    /// requesting task and its name for this queue, each holding its
    /// send-once right to the notify port. One-shot: all go out together
    /// the first time the queue has room (see `notify.rs`).
    pub send_possible: BTreeMap<(Pid, BySlot), KRight>,
    /// Closed by its receiver: tasks' sends fail with `Closed`; receives
    /// drain what is queued, then fail with `Closed`.
    pub closed: bool,
    /// The waits holding a message handed over from this queue that they
    /// have not taken yet ([`WaitState::Handed`](super::WaitState::Handed)),
    /// in the order the messages were handed over: each keeps its place in
    /// the capacity until taken ([`capacity`](crate::capacity), "A handed
    /// message keeps its place"), and among the plain ones whoever takes
    /// first takes the oldest (`Locked::take_handed`, "group hand-off").
    pub handed: HandedList,
}

/// The waits holding a queue's handed messages, oldest first: one pointer
/// in the queue (most queues never hand over to a waiting receiver, and a
/// million ports pay for every byte here); the list, once made, is kept
/// for the queue's next hand-off.
#[derive(Clone, Default, Debug)]
// One pointer inline (a `Vec` is three words): the box is the point.
#[allow(clippy::box_collection)]
pub(crate) struct HandedList(Option<Box<Vec<HandedTo>>>);

impl HandedList {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub(crate) fn push(&mut self, h: HandedTo) {
        self.0.get_or_insert_with(Default::default).push(h);
    }

    pub(crate) fn as_slice(&self) -> &[HandedTo] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, HandedTo> {
        self.as_slice().iter()
    }

    /// The entries whose messages go to whoever takes first (plain, on a
    /// queue that groups them: [`MsgQueue::groups_handed`]), oldest first.
    pub(crate) fn group(&self, groups: bool) -> impl Iterator<Item = &HandedTo> {
        self.iter().filter(move |h| groups && h.plain)
    }

    /// Moves the stamps of the plain entries before index `end` (all:
    /// `usize::MAX`) by one entry towards the oldest, as the group hand-off
    /// moves their messages: each gets the stamp of the plain entry after
    /// it, the last of them gets `newest` (the message that joined them).
    pub(crate) fn shift_stamps(&mut self, end: usize, newest: u64) {
        let Some(v) = self.0.as_mut() else { return };
        let mut carry = newest;
        for h in v.iter_mut().take(end).filter(|h| h.plain).rev() {
            carry = std::mem::replace(&mut h.stamp, carry);
        }
    }

    /// Makes entry `at` name wait `w` (its message and stamp stay).
    pub(crate) fn set_wait(&mut self, at: usize, w: WaitId) {
        if let Some(h) = self.0.as_mut().and_then(|v| v.get_mut(at)) {
            h.wait = w;
        }
    }

    /// Makes the entries before index `end` (all: `usize::MAX`) keep
    /// their own messages from now on (see `Locked::take_handed`).
    pub(crate) fn freeze_before(&mut self, end: usize) {
        if let Some(v) = self.0.as_mut() {
            for h in v.iter_mut().take(end) {
                h.plain = false;
            }
        }
    }

    /// Whether wait `w` holds the one handed message (nobody else's is
    /// held): then taking it changes no other entry (`Kernel::wait_take`).
    #[inline]
    pub(crate) fn is_only(&self, w: WaitId) -> bool {
        matches!(self.as_slice(), [h] if h.wait == w)
    }

    /// Forgets every entry (keeping the memory).
    #[inline]
    pub(crate) fn clear(&mut self) {
        if let Some(v) = self.0.as_mut() {
            v.clear();
        }
    }

    /// Removes wait `w`'s entry; returns it and its index.
    pub(crate) fn remove(&mut self, w: WaitId) -> Option<(usize, HandedTo)> {
        let v = self.0.as_mut()?;
        let at = v.iter().position(|h| h.wait == w)?;
        Some((at, v.remove(at)))
    }
}

/// A wait holding a place in a queue with a message handed to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct HandedTo {
    pub wait: WaitId,
    /// The message carries no rights and is not the kernel's, and the wait
    /// has no filter and waits on this queue alone: any other plain waiter
    /// of the queue could have been handed it instead, so plain messages go
    /// to whoever takes first.
    pub plain: bool,
    /// The arrival stamp of the message this entry's wait holds now (it
    /// moves with the message when the group hand-off moves messages), for
    /// a select comparing it with other queues' messages.
    pub stamp: u64,
}

clone_fields!(MsgQueue {
    capacity,
    messages,
    bytes,
    blocked_senders,
    blocked_receivers,
    seqno,
    accepted,
    dropped,
    max_len,
    send_possible,
    closed,
    handed,
});

impl MsgQueue {
    /// A queue of this capacity. A bounded queue's first block is allocated
    /// now, sized to its capacity but never more than [`PREALLOCATED`]
    /// entries nor than the memory ceiling allows, so no capacity value makes
    /// the kernel allocate more than a few KiB up front.
    pub(crate) fn new(capacity: Capacity, memory_limit: usize) -> MsgQueue {
        MsgQueue {
            capacity,
            messages: Fifo::with_capacity(match capacity {
                Capacity::Bounded(n) => n.min(PREALLOCATED).min(memory_limit / ENTRY_COST),
                _ => 0,
            }),
            bytes: 0,
            blocked_senders: VecDeque::new(),
            blocked_receivers: VecDeque::new(),
            seqno: 0,
            accepted: 0,
            dropped: 0,
            max_len: 0,
            send_possible: BTreeMap::new(),
            closed: false,
            handed: HandedList::default(),
        }
    }

    /// Whether whoever takes first takes the oldest plain handed message
    /// (`Locked::take_handed`): on every queue but a rendezvous one, where
    /// a send completes *with* the receiver that waited, so that receiver
    /// must be the one to get it.
    #[inline]
    pub(crate) fn groups_handed(&self) -> bool {
        self.capacity != Capacity::Zero
    }

    /// May a message costing `cost` bytes ([`message_cost`]) enter the buffer now?
    #[inline]
    pub(crate) fn admit(
        &self,
        cost: usize,
        send_once: bool,
        kernel: bool,
        memory_limit: usize,
    ) -> Admission {
        self.admit_as(cost, send_once, kernel, memory_limit, false)
    }

    /// May a message costing `cost` bytes enter now, into the buffer or
    /// (`handoff`) into the hands of a waiting receiver? Messages handed
    /// over and not yet taken count as queued.
    #[inline]
    pub(crate) fn admit_as(
        &self,
        cost: usize,
        send_once: bool,
        kernel: bool,
        memory_limit: usize,
        handoff: bool,
    ) -> Admission {
        self.capacity.admit(QueueLoad {
            len: self.messages.len() + self.handed.len(),
            bytes: self.bytes,
            incoming_bytes: cost,
            memory_limit,
            send_once,
            kernel,
            handoff,
        })
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, msg: KMessage) {
        self.push_with(msg.cost(), || msg);
    }

    /// Queues the message `make` builds (costing `cost` bytes: it must be
    /// what [`KMessage::cost`] says of it), building it straight into the
    /// queue's storage.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, cost: usize, make: impl FnOnce() -> KMessage) {
        self.bytes = self.bytes.saturating_add(cost);
        self.messages.push_back_with(make);
        self.max_len = self.max_len.max(self.messages.len());
    }

    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<KMessage> {
        let msg = self.messages.pop_front()?;
        self.bytes = self.bytes.saturating_sub(msg.cost());
        Some(msg)
    }

    /// Removes the oldest message a `DropOldest` send may displace: one not
    /// sent through a send-once right (those bypass the limit and must arrive
    /// exactly once). The others keep their order.
    pub(crate) fn pop_oldest_displaceable(&mut self) -> Option<KMessage> {
        if self.messages.front()?.via_send_once().is_none() {
            return self.pop();
        }
        // Rare (the head is a reply or a notification): rebuild the queue
        // without its oldest displaceable message.
        let mut kept = Vec::with_capacity(self.messages.len());
        let mut displaced = None;
        while let Some(m) = self.pop() {
            if displaced.is_none() && m.via_send_once().is_none() {
                displaced = Some(m);
            } else {
                kept.push(m);
            }
        }
        for m in kept {
            self.push(m);
        }
        displaced
    }

    /// Removes the message at `index` (0: the head) for a selective
    /// receive; the others keep their order. (Not a hot path: the queue is
    /// rebuilt, as Erlang's selective receive scans its mailbox.)
    pub(crate) fn remove_at(&mut self, index: usize) -> Option<KMessage> {
        if index == 0 {
            return self.pop();
        }
        let mut kept = Vec::with_capacity(self.messages.len());
        let mut taken = None;
        let mut i = 0;
        while let Some(m) = self.pop() {
            if i == index {
                taken = Some(m);
            } else {
                kept.push(m);
            }
            i += 1;
        }
        for m in kept {
            self.push(m);
        }
        taken
    }

    /// Takes the next sequence number.
    #[inline]
    pub(crate) fn next_seqno(&mut self) -> u64 {
        let s = self.seqno;
        self.seqno += 1;
        s
    }
}

/// Removes a wait from a list of blocked operations. The wait completing is
/// almost always the oldest (FIFO service), so this is O(1) in the common
/// case rather than a scan of every blocked process.
#[inline]
pub(crate) fn remove_waiter(list: &mut VecDeque<WaitId>, w: WaitId) {
    if list.front() == Some(&w) {
        list.pop_front();
    } else if let Some(i) = list.iter().position(|x| *x == w) {
        list.remove(i);
    }
}
