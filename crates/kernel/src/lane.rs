//! The lane: a bounded lock-free FIFO that a port's rights-free messages
//! take while the port is in a state that allows it, outside the kernel lock.
//!
//! This module is the data structure alone; `core/lane.rs` decides when a
//! port may use it and moves its contents into the locked state when it may
//! not. Public (but hidden) only so that the loom tests
//! (`crates/kernel/tests/loom.rs`) can check it directly. A bounded port's
//! lane is this ring; an unbounded port's is [`list::ListLane`], linked
//! blocks with the same words, fences and numbering, which grows instead of
//! filling up.
//!
//! # Shape
//!
//! A ring of slots, a *tail* word the producers advance and a *head* word the
//! consumers advance, each on its own cache line (what crossbeam's array
//! channel does, and Dmitry Vyukov's bounded MPMC queue before it). Each slot
//! has a stamp saying which position it is ready for: a producer may write
//! position `p` into its slot when the stamp is `p`, and sets it to `p + 1`
//! once written; a consumer may read position `p` when the stamp is `p + 1`,
//! and sets it to `p + capacity` once read (free for the next lap). A
//! producer never reads the head and a consumer never reads the tail, so in
//! a stream each side keeps its own cache lines.
//!
//! # Fences and generations
//!
//! Each of the two words holds, beside its position, a *mark* bit and a
//! *generation*. Every push and pop names the generation it was granted and
//! fails (hands its value back) if the word is marked or of another
//! generation. The kernel [`fence`](Lane::fence)s a lane (marks both words)
//! before any locked operation, so from then on no push or pop completes;
//! [`drain`](Lane::drain) then waits for the pushes already past their
//! reservation and takes every message out, oldest first. Only the kernel,
//! under its lock, [`enable`](Lane::enable)s a lane again, with a new
//! generation when the rights behind earlier grants may have changed, so a
//! stale grant can never complete an operation after its right is gone.
//!
//! # Numbers
//!
//! A pop returns its value with a *number*: its ring position plus a base
//! the kernel sets while the lane is fenced, when it [`reopen`](Lane::reopen)s
//! it (the port's sequence number of the message at the head). The base sits
//! on the consumers' cache line and a pop reads it *before* its reserving
//! compare-and-swap, after the slot's stamp: a pop that reserved position
//! `p` in one open period gets that period's base, never the next one's.
//! (Read after the compare-and-swap, a pop preempted there could see the
//! base of a later period: a fence, a drain and a re-open that moved drained
//! messages back into the ring shift the base down by their count, so the
//! number came out too small, a sequence number the port had already given.)
//! Why the value read is the right one, in the memory model:
//!
//! * not an older base: `reopen` stores the base before it refills a slot
//!   or opens the words, and every slot's stamp is written (Release) either
//!   by such a refill or by a push whose compare-and-swap read (Acquire) the
//!   tail `reopen` opened (Release); the pop reads that stamp (Acquire)
//!   before the base, and each stamp value `p + 1` is written once;
//! * not a newer one: a newer base is stored only after a later fence's
//!   `fetch_or` on the head (SeqCst), and a reservation that reads the head
//!   before that fence is a release the fence acquires, so the pop's earlier
//!   load of the base happens before the newer store and cannot see it; a
//!   reservation after the fence finds the mark and fails.
//!
//! A lane never blocks and never fails for the caller: full, empty, fenced or
//! stale all mean "take the locked path", which has the whole story
//! (capacity, waiting, errors).

use std::mem::MaybeUninit;

use crate::sync::{spin_step, AtomicU64, Ordering, UnsafeCell};

pub mod list;
pub use list::ListLane;

/// Bits of a head or tail word that hold the position.
const POS_BITS: u32 = 43;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
/// The fence mark.
const MARK: u64 = 1 << POS_BITS;
const GEN_SHIFT: u32 = POS_BITS + 1;
/// Generations wrap at this many (20 bits).
pub const GEN_MASK: u32 = (1 << (64 - GEN_SHIFT)) - 1;
/// Positions past this refuse pushes (the kernel then starts a fresh lane),
/// so a position never runs into the mark bit.
pub const POS_LIMIT: u64 = 1 << (POS_BITS - 1);

#[inline(always)]
fn word(gen: u32, marked: bool, pos: u64) -> u64 {
    (u64::from(gen & GEN_MASK) << GEN_SHIFT) | if marked { MARK } else { 0 } | (pos & POS_MASK)
}
#[inline(always)]
fn pos_of(w: u64) -> u64 {
    w & POS_MASK
}
#[inline(always)]
fn gen_of(w: u64) -> u32 {
    (w >> GEN_SHIFT) as u32
}
#[inline(always)]
fn open_for(w: u64, gen: u32) -> bool {
    // Unmarked and of this generation, in one compare.
    (w & !POS_MASK) == word(gen, false, 0)
}

/// Keeps its value on a cache line of its own (two, against the adjacent-line
/// prefetcher), as crossbeam's `CachePadded`.
#[repr(align(128))]
struct Padded<T>(T);

struct Slot<T> {
    stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The producers' cache line: the tail, and what they track of the length.
struct ProducerSide {
    tail: AtomicU64,
    /// A head position the producers saw lately (never ahead of the head).
    seen_head: AtomicU64,
    /// The most messages the lane has held (a high-water mark), as far as
    /// producers measured after their pushes: see [`Lane::max_len`].
    max_len: AtomicU64,
}

/// The consumers' cache line: the head, and the base of pops' numbers.
struct ConsumerSide {
    head: AtomicU64,
    /// A pop at position `p` is numbered `base + p` (wrapping). Written only
    /// by [`Lane::reopen`], while fenced; read by pops before they reserve.
    base: AtomicU64,
}

/// Why a push handed its value back.
#[derive(Debug)]
pub enum PushError<T> {
    /// Every slot is taken.
    Full(T),
    /// Fenced, or granted under an older generation: take the locked path.
    Fenced(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Fenced(v) => v,
        }
    }
}

/// Why a pop took nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PopError {
    /// Nothing is queued (or the next push has not finished writing).
    Empty,
    /// Fenced, or granted under an older generation: take the locked path.
    Fenced,
}

/// What a receiver about to sleep on a lane found when it looked once more
/// ([`Lane::idle`]): see `core/lane.rs`, "Waiting on an open lane".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Idle {
    /// Nothing reserved past the head: a push from now on reserves a later
    /// position, after this look.
    Empty,
    /// A push has reserved a position past the head (its value may still be
    /// being written), or the head moved: pop again.
    Busy,
    /// Fenced, or opened again under another generation: take the locked path.
    Fenced,
}

/// A bounded lock-free FIFO with fences and generations (see the module docs).
pub struct Lane<T> {
    consumers: Padded<ConsumerSide>,
    producers: Padded<ProducerSide>,
    slots: Box<[Slot<T>]>,
    mask: u64,
}

// SAFETY: values move between threads through the slots (T: Send); every
// access to a slot's value is ordered by its stamp (Acquire/Release), so
// no two threads touch one value at once.
unsafe impl<T: Send> Send for Lane<T> {}
// SAFETY: as above; `&Lane` only moves values in and out, never shares a `&T`.
unsafe impl<T: Send> Sync for Lane<T> {}

impl<T> Lane<T> {
    /// A fenced, empty lane of `capacity` slots (rounded up to a power of
    /// two, at least 2: with one slot, "written for position p" and "free
    /// for position p + 1" would be the same stamp), generation 0, its pops
    /// numbered by their positions (base 0).
    pub fn new(capacity: usize) -> Lane<T> {
        let cap = capacity.max(2).next_power_of_two();
        let slots = (0..cap as u64)
            .map(|i| Slot {
                stamp: AtomicU64::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Lane {
            consumers: Padded(ConsumerSide {
                head: AtomicU64::new(word(0, true, 0)),
                base: AtomicU64::new(0),
            }),
            producers: Padded(ProducerSide {
                tail: AtomicU64::new(word(0, true, 0)),
                seen_head: AtomicU64::new(0),
                max_len: AtomicU64::new(0),
            }),
            slots,
            mask: cap as u64 - 1,
        }
    }

    /// How many messages the lane holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Appends `value` if the lane is open under `gen` and has a free slot.
    #[inline(always)]
    pub fn push(&self, gen: u32, value: T) -> Result<(), PushError<T>> {
        let tail = &self.producers.0.tail;
        let mut round = 0;
        loop {
            let t = tail.load(Ordering::Relaxed);
            if !open_for(t, gen) {
                return Err(PushError::Fenced(value));
            }
            let p = pos_of(t);
            if p >= POS_LIMIT {
                return Err(PushError::Fenced(value));
            }
            let slot = &self.slots[(p & self.mask) as usize];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == p {
                if tail
                    .compare_exchange_weak(t, t + 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: the stamp said the slot is free for position p
                    // and the CAS made p ours alone; no consumer reads it
                    // before the Release store below.
                    slot.value.with_mut(|v| unsafe { (*v).write(value) });
                    slot.stamp.store(p + 1, Ordering::Release);
                    self.note_len(p + 1);
                    return Ok(());
                }
            } else if stamp < p {
                // The slot still holds the message of the previous lap.
                return Err(PushError::Full(value));
            } else {
                // Another producer took position p: look again.
                spin_step(&mut round);
            }
        }
    }

    /// Takes the oldest value, with its number (its position plus the base
    /// of the open period it was taken in: see the module docs), if the
    /// lane is open under `gen` and holds one.
    #[inline]
    pub fn pop(&self, gen: u32) -> Result<(T, u64), PopError> {
        let side = &self.consumers.0;
        let head = &side.head;
        let mut round = 0;
        loop {
            let h = head.load(Ordering::Relaxed);
            if !open_for(h, gen) {
                return Err(PopError::Fenced);
            }
            let p = pos_of(h);
            let slot = &self.slots[(p & self.mask) as usize];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == p + 1 {
                // Before the reservation, after the stamp: the base of the
                // period this reservation can succeed in (module docs).
                let base = side.base.load(Ordering::Relaxed);
                if head
                    .compare_exchange_weak(h, h + 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: stamp p + 1 says position p was written
                    // (Acquire pairs with the producer's Release) and the CAS
                    // made it ours alone; the slot is handed back below.
                    let value = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                    slot.stamp.store(p + self.mask + 1, Ordering::Release);
                    return Ok((value, base.wrapping_add(p)));
                }
            } else if stamp <= p {
                return Err(PopError::Empty);
            } else {
                spin_step(&mut round);
            }
        }
    }

    /// After a push that made the lane hold `end` positions past the head
    /// the producers last saw: refreshes that head (one read of the
    /// consumers' line) only when the length could be a new maximum.
    #[inline(always)]
    fn note_len(&self, end: u64) {
        let side = &self.producers.0;
        let max = side.max_len.load(Ordering::Relaxed);
        if max > self.mask || end.wrapping_sub(side.seen_head.load(Ordering::Relaxed)) <= max {
            return;
        }
        let h = pos_of(self.consumers.0.head.load(Ordering::Acquire));
        side.seen_head.store(h, Ordering::Relaxed);
        side.max_len
            .fetch_max(end.saturating_sub(h), Ordering::Relaxed);
    }

    /// The most messages the lane has held since [`enable`](Lane::enable)
    /// (exact when one thread drives it; under concurrency a length the
    /// lane had at some moment, measured by a producer after its push).
    pub fn max_len(&self) -> usize {
        self.producers.0.max_len.load(Ordering::Relaxed) as usize
    }

    /// Marks both words: from now on every push and pop fails with
    /// `Fenced` until [`enable`](Lane::enable). Returns whether the lane
    /// was open (enabled) before.
    pub fn fence(&self) -> bool {
        let t = self.producers.0.tail.fetch_or(MARK, Ordering::SeqCst);
        let h = self.consumers.0.head.fetch_or(MARK, Ordering::SeqCst);
        t & MARK == 0 || h & MARK == 0
    }

    /// Takes every value out of a fenced lane, oldest first, with its
    /// position, waiting for pushes that reserved a slot before the fence to
    /// finish writing it. Only one thread may drain or enable at a time (the
    /// kernel holds its lock).
    pub fn drain(&self, mut each: impl FnMut(T, u64)) {
        let h_word = self.consumers.0.head.load(Ordering::Acquire);
        let t_word = self.producers.0.tail.load(Ordering::Acquire);
        debug_assert!(
            h_word & MARK != 0 && t_word & MARK != 0,
            "drain of an open lane"
        );
        let (h, t) = (pos_of(h_word), pos_of(t_word));
        for p in h..t {
            let slot = &self.slots[(p & self.mask) as usize];
            let mut round = 0;
            while slot.stamp.load(Ordering::Acquire) != p + 1 {
                spin_step(&mut round);
            }
            // SAFETY: written (stamp p + 1) and, with the head fenced, no
            // consumer can take position p any more.
            let value = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
            slot.stamp.store(p + self.mask + 1, Ordering::Release);
            each(value, p);
        }
        self.consumers
            .0
            .head
            .store(word(gen_of(h_word), true, t), Ordering::Release);
    }

    /// Appends to a fenced lane (the kernel moving queued messages back in,
    /// under its lock): `Err` with the value when no slot is free.
    pub fn refill(&self, value: T) -> Result<(), T> {
        let tail = &self.producers.0.tail;
        let t = tail.load(Ordering::Acquire);
        debug_assert!(t & MARK != 0, "refill of an open lane");
        let p = pos_of(t);
        let h = pos_of(self.consumers.0.head.load(Ordering::Acquire));
        if p - h > self.mask || p >= POS_LIMIT {
            return Err(value);
        }
        let slot = &self.slots[(p & self.mask) as usize];
        let mut round = 0;
        // A consumer that took position p - capacity before the fence may
        // still be reading it.
        while slot.stamp.load(Ordering::Acquire) != p {
            spin_step(&mut round);
        }
        // SAFETY: the slot is free for position p and, fenced, nobody else
        // pushes.
        slot.value.with_mut(|v| unsafe { (*v).write(value) });
        slot.stamp.store(p + 1, Ordering::Release);
        tail.store(t + 1, Ordering::Release);
        Ok(())
    }

    /// Opens a fenced lane again: numbers its pops from `next` (the pop at
    /// the head gets `next`, the one after `next + 1`, ...), appends
    /// `values` behind whatever it holds, and opens it under generation
    /// `gen` with `max_len` as its high-water mark so far, in that order
    /// (the base must be stored before any slot it numbers is published:
    /// see the module docs). Returns the head and tail positions it opened
    /// at, read before opening (once open, other threads' grants may move
    /// them at once: what the kernel counts as having gone through the lane
    /// starts here). `Err` with the first value that found no free slot: the
    /// lane then stays fenced, holding the values before it. Only one thread
    /// may drain or enable at a time.
    pub fn reopen(
        &self,
        gen: u32,
        max_len: usize,
        next: u64,
        values: impl IntoIterator<Item = T>,
    ) -> Result<(u64, u64), T> {
        debug_assert!(!self.is_open(), "reopen of an open lane");
        let h = pos_of(self.consumers.0.head.load(Ordering::Acquire));
        self.consumers
            .0
            .base
            .store(next.wrapping_sub(h), Ordering::Relaxed);
        for v in values {
            self.refill(v)?;
        }
        Ok(self.enable(gen, max_len))
    }

    /// Opens a fenced lane under generation `gen`, with `max_len` as its
    /// high-water mark so far, its pops numbered as before; returns the head
    /// and tail positions it opened at (as [`reopen`](Lane::reopen)). Only
    /// one thread may drain or enable at a time.
    pub fn enable(&self, gen: u32, max_len: usize) -> (u64, u64) {
        let h = pos_of(self.consumers.0.head.load(Ordering::Acquire));
        let t = pos_of(self.producers.0.tail.load(Ordering::Acquire));
        let side = &self.producers.0;
        side.seen_head.store(h, Ordering::Relaxed);
        side.max_len.store(
            (max_len as u64).max(t - h).min(self.mask + 1),
            Ordering::Relaxed,
        );
        self.consumers
            .0
            .head
            .store(word(gen, false, h), Ordering::Release);
        side.tail.store(word(gen, false, t), Ordering::Release);
        (h, t)
    }

    /// The head and tail positions (values taken so far, values put so far).
    pub fn positions(&self) -> (u64, u64) {
        (
            pos_of(self.consumers.0.head.load(Ordering::Acquire)),
            pos_of(self.producers.0.tail.load(Ordering::Acquire)),
        )
    }

    /// Whether the lane is open (not fenced).
    pub fn is_open(&self) -> bool {
        self.producers.0.tail.load(Ordering::Acquire) & MARK == 0
    }

    /// Whether the lane is open under generation `gen` (a grant of that
    /// generation may push and pop).
    pub fn open_under(&self, gen: u32) -> bool {
        open_for(self.producers.0.tail.load(Ordering::Acquire), gen)
    }

    /// A receiver's last look before it sleeps on the lane, after it
    /// announced itself (a SeqCst read-modify-write): the tail, SeqCst, so
    /// that either this load sees a push's or a fence's read-modify-write
    /// of the tail, or that push or fence, reading the sleepers after it,
    /// sees the announcement (`core/lane.rs`, "Waiting on an open lane").
    pub fn idle(&self, gen: u32) -> Idle {
        idle_of(&self.producers.0.tail, &self.consumers.0.head, gen)
    }
}

/// [`Lane::idle`] over a tail and a head word (the list's are the same).
#[inline]
fn idle_of(tail: &AtomicU64, head: &AtomicU64, gen: u32) -> Idle {
    let t = tail.load(Ordering::SeqCst);
    if !open_for(t, gen) {
        return Idle::Fenced;
    }
    let h = head.load(Ordering::SeqCst);
    if !open_for(h, gen) {
        return Idle::Fenced;
    }
    if pos_of(t) == pos_of(h) {
        Idle::Empty
    } else {
        Idle::Busy
    }
}

impl<T> Drop for Lane<T> {
    fn drop(&mut self) {
        let (h, t) = self.positions();
        for p in h..t {
            let slot = &self.slots[(p & self.mask) as usize];
            if slot.stamp.load(Ordering::Acquire) == p + 1 {
                // SAFETY: written and not taken; we are the last owner.
                slot.value.with_mut(|v| unsafe { (*v).assume_init_drop() });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_empty_fence_drain_enable() {
        assert_eq!(Lane::<u32>::new(1).capacity(), 2);
        let lane = Lane::<u32>::new(3);
        assert_eq!(lane.capacity(), 4);
        // Born fenced.
        assert!(matches!(lane.push(0, 1), Err(PushError::Fenced(1))));
        lane.enable(0, 0);
        for i in 0..4 {
            lane.push(0, i).unwrap();
        }
        assert!(matches!(lane.push(0, 9), Err(PushError::Full(9))));
        assert_eq!(lane.max_len(), 4);
        assert_eq!(lane.pop(0).unwrap(), (0, 0));
        // A stale generation cannot use it.
        assert_eq!(lane.pop(1).unwrap_err(), PopError::Fenced);
        assert!(lane.fence());
        assert!(matches!(lane.push(0, 9), Err(PushError::Fenced(9))));
        let mut got = Vec::new();
        lane.drain(|v, p| got.push((v, p)));
        assert_eq!(got, [(1, 1), (2, 2), (3, 3)]);
        lane.refill(7).unwrap();
        lane.enable(1, 0);
        assert_eq!(lane.pop(0).unwrap_err(), PopError::Fenced);
        assert_eq!(lane.pop(1).unwrap(), (7, 4));
        assert_eq!(lane.pop(1).unwrap_err(), PopError::Empty);
        assert_eq!(lane.positions(), (5, 5));
    }

    #[test]
    fn reopen_numbers_pops_from_next_and_refills_in_order() {
        let lane = Lane::<u32>::new(4);
        assert_eq!(lane.reopen(3, 0, 10, [1, 2]), Ok((0, 2)));
        assert_eq!(lane.pop(3).unwrap(), (1, 10));
        lane.push(3, 4).unwrap();
        assert!(lane.fence());
        let mut drained = Vec::new();
        lane.drain(|v, _| drained.push(v));
        assert_eq!(drained, [2, 4]);
        // Taken one, so the head message is number 11 again, at a new position.
        lane.reopen(3, 0, 11, drained.into_iter().chain([5]))
            .unwrap();
        let got: Vec<_> = std::iter::from_fn(|| lane.pop(3).ok()).collect();
        assert_eq!(got, [(2, 11), (4, 12), (5, 13)]);
        assert_eq!(lane.positions(), (6, 6));
        // More values than slots: the first that does not fit comes back,
        // and the lane stays fenced.
        lane.fence();
        assert_eq!(lane.reopen(3, 0, 14, 0..9), Err(4));
        assert_eq!(lane.pop(3).unwrap_err(), PopError::Fenced);
    }

    #[test]
    fn dropping_a_lane_drops_what_it_holds() {
        let lane = Lane::new(2);
        lane.enable(0, 0);
        let v = std::sync::Arc::new(());
        lane.push(0, v.clone()).unwrap();
        drop(lane);
        assert_eq!(std::sync::Arc::strong_count(&v), 1);
    }
}
