//! The unbounded lane: a lock-free FIFO of linked blocks, so that a long
//! stream to an unbounded port never has to leave the lane.
//!
//! The ring in [`super`] has a fixed number of slots. An unbounded port's
//! ring once doubled when it filled, up to 65,536 slots; a producer that ran
//! a whole time slice ahead of its consumer overflowed it, and from then on
//! the queue was longer than any ring and every message took the locked
//! path. [`ListLane`] grows instead: its messages sit in blocks of
//! [`BLOCK_CAP`] slots linked head to tail (the shape of crossbeam's list
//! channel), up to a length `limit` the kernel derives from its queue memory
//! ceiling.
//!
//! # Shape
//!
//! The tail word (producers) and the head word (consumers) are the ring's
//! words: a position, a fence mark and a generation, each on its own cache
//! line beside a pointer to the block that position is in. A block has
//! `BLOCK_CAP` slots but takes `BLOCK_CAP + 1` positions: the last one is
//! never a slot but says "the next block is being linked". Whoever reserves
//! a block's last slot (a compare-and-swap from `p` to `p + 1`) links the
//! next one: a producer allocates it, stores it as the tail block and steps
//! the tail past the extra position; a consumer waits for the producer's
//! link, stores it as the head block and steps the head past it. Everyone
//! else who reads a word at the extra position waits a moment. So a thread
//! that read a word at position `p` of block `b`, then the block pointer,
//! and then reserved `p` with a successful compare-and-swap, read `b`: the
//! pointer moves only while the word sits at the extra position.
//!
//! A slot has three flags: written (by its producer, after the value, with
//! a plain store: the one locked instruction of a push is its reservation),
//! read (by its consumer, after taking the value) and "destroy" (see below).
//! A consumer reserves a position only once it knows a producer reserved it
//! (the tail is past it), then waits for the written flag; it learns the
//! tail from `seen_tail`, a copy on its own line that it refreshes from the
//! tail word only when it catches up, so in a stream the consumers rarely
//! read the producers' line. A producer reads the head only when it links
//! a block (the length limit) or when the length may be a new maximum.
//!
//! # Freeing blocks
//!
//! Nobody touches a block before its reservation succeeded, so a block may
//! go once every slot in it has been read: the reader of the last slot walks
//! the others (waiting for a slot's written flag first, so that its mark is
//! never under the producer's plain store), and where a reader is still
//! busy it marks the slot "destroy" and leaves; that reader, seeing the mark when it sets its read flag,
//! carries on the walk from the next slot. The one who finishes the walk
//! owns the block: it keeps it as a spare (up to [`SPARE_BLOCKS`]) for the
//! producers' next link, or frees it. A new lane starts with two spares, so
//! a stream whose backlog stays within three blocks never allocates, and a
//! longer one allocates one block per `BLOCK_CAP` messages while its backlog
//! grows, never per message.
//!
//! # Fences, generations and numbers
//!
//! As for the ring ([`super`]): [`fence`](ListLane::fence) marks both words,
//! [`drain`](ListLane::drain) waits for what was reserved before and takes
//! every value out, and only the kernel, under its lock, opens the lane
//! again. A pop's number is its message's ordinal (its position, less the
//! extra positions before it) plus a base [`reopen`](ListLane::reopen) sets
//! while fenced. A pop reads the base after it learnt that its position is
//! filled and before its reservation, which makes it the base of the open
//! period the reservation succeeds in:
//!
//! * not an older one: the pop read a tail word (or a `seen_tail` copied
//!   from one, Release to Acquire) past its position. A tail past `p`
//!   written before the period's `reopen` would have put a message at `p`,
//!   and the fence's drain would have moved the head past `p`, so the
//!   pop's reservation at `p` could not succeed. So the tail it read was
//!   written in its period, after `reopen` stored the base.
//! * not a newer one: a newer base is stored only after a later fence's
//!   `fetch_or` on the head (SeqCst), which reads (and so is ordered after)
//!   the pop's successful compare-and-swap; the pop's earlier load of the
//!   base cannot see a store that comes after it.

use std::mem::MaybeUninit;
use std::ptr;

use super::{
    gen_of, idle_of, open_for, pos_of, word, Idle, Padded, PopError, PushError, MARK, POS_LIMIT,
};
use crate::sync::{spin_step, AtomicPtr, AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// Slots per block (63, so that with its link a block of 40-byte messages
/// is about 3 KiB; 2 under loom, so the models cross block boundaries).
#[cfg(not(loom))]
pub const BLOCK_CAP: u64 = 63;
#[cfg(loom)]
pub const BLOCK_CAP: u64 = 2;
/// Positions per block: its slots and the "being linked" position.
const LAP: u64 = BLOCK_CAP + 1;
/// Blocks a lane keeps for reuse instead of freeing them.
pub const SPARE_BLOCKS: usize = 4;
/// Spares a new lane is made with (none under loom, so that the models see
/// a producer's link race a consumer's release for the same block).
#[cfg(not(loom))]
const FIRST_SPARES: usize = 2;
#[cfg(loom)]
const FIRST_SPARES: usize = 0;

/// Slot flags.
const WRITTEN: usize = 1;
const READ: usize = 2;
const DESTROY: usize = 4;

/// The number of messages before position `p`: `p` less the extra
/// positions before it (a word at an extra position counts its whole block).
#[inline(always)]
fn ordinal(p: u64) -> u64 {
    (p / LAP) * BLOCK_CAP + (p % LAP).min(BLOCK_CAP)
}

struct Slot<T> {
    flags: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP as usize],
}

impl<T> Block<T> {
    fn new() -> Box<Block<T>> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                flags: AtomicUsize::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }),
        })
    }

    /// Waits for the producer that reserved this block's last slot to link
    /// the next block (it does so right after its reservation).
    fn wait_next(&self) -> *mut Block<T> {
        let mut round = 0;
        loop {
            let next = self.next.load(Ordering::Acquire);
            if !next.is_null() {
                return next;
            }
            spin_step(&mut round);
        }
    }
}

/// The producers' cache line.
struct ProducerSide<T> {
    tail: AtomicU64,
    block: AtomicPtr<Block<T>>,
    /// A head ordinal the producers saw lately (never ahead of the head).
    seen_head: AtomicU64,
    /// The high-water mark, as the ring's.
    max_len: AtomicU64,
}

/// The consumers' cache line.
struct ConsumerSide<T> {
    head: AtomicU64,
    block: AtomicPtr<Block<T>>,
    /// A tail position the consumers saw lately (never ahead of the tail).
    seen_tail: AtomicU64,
    /// A pop at ordinal `n` is numbered `base + n` (wrapping).
    base: AtomicU64,
}

/// An unbounded (up to `limit`) lock-free FIFO of linked blocks, with the
/// ring's fences and generations (see the module docs).
pub struct ListLane<T> {
    consumers: Padded<ConsumerSide<T>>,
    producers: Padded<ProducerSide<T>>,
    spares: Padded<[AtomicPtr<Block<T>>; SPARE_BLOCKS]>,
    limit: u64,
}

// SAFETY: values move between threads through the slots (T: Send); every
// access to a slot's value is ordered by its flags (Acquire/Release) and
// owned by one thread after a successful reservation; a block is freed or
// reused only by the one thread that saw every slot in it read.
unsafe impl<T: Send> Send for ListLane<T> {}
// SAFETY: as above; `&ListLane` only moves values in and out.
unsafe impl<T: Send> Sync for ListLane<T> {}

impl<T> ListLane<T> {
    /// A fenced, empty lane that holds at most `limit` values (at least
    /// two blocks' worth), generation 0, its pops numbered by their
    /// ordinals (base 0).
    pub fn new(limit: usize) -> ListLane<T> {
        let first = Box::into_raw(Block::new());
        let spares: [AtomicPtr<Block<T>>; SPARE_BLOCKS] =
            std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()));
        for s in spares.iter().take(FIRST_SPARES) {
            s.store(Box::into_raw(Block::new()), Ordering::Relaxed);
        }
        ListLane {
            consumers: Padded(ConsumerSide {
                head: AtomicU64::new(word(0, true, 0)),
                block: AtomicPtr::new(first),
                seen_tail: AtomicU64::new(0),
                base: AtomicU64::new(0),
            }),
            producers: Padded(ProducerSide {
                tail: AtomicU64::new(word(0, true, 0)),
                block: AtomicPtr::new(first),
                seen_head: AtomicU64::new(0),
                max_len: AtomicU64::new(0),
            }),
            spares: Padded(spares),
            limit: (limit as u64).max(2 * BLOCK_CAP),
        }
    }

    /// How many values the lane holds at most.
    pub fn capacity(&self) -> usize {
        self.limit as usize
    }

    /// A block for the next link: a spare, or a new one.
    fn take_block(&self) -> *mut Block<T> {
        for s in &self.spares.0 {
            let b = s.swap(ptr::null_mut(), Ordering::Acquire);
            if !b.is_null() {
                return b;
            }
        }
        Box::into_raw(Block::new())
    }

    /// Keeps a block nobody uses any more as a spare, or frees it.
    ///
    /// # Safety
    /// `block` came from `Box::into_raw`, holds no value, and the caller is
    /// the only thread that can reach it.
    unsafe fn put_block(&self, block: *mut Block<T>) {
        // SAFETY: ours alone (the contract).
        let b = unsafe { &*block };
        b.next.store(ptr::null_mut(), Ordering::Relaxed);
        for s in &b.slots {
            s.flags.store(0, Ordering::Relaxed);
        }
        for s in &self.spares.0 {
            if s.compare_exchange(ptr::null_mut(), block, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        // SAFETY: from `Box::into_raw`, reachable by nobody else.
        drop(unsafe { Box::from_raw(block) });
    }

    /// Appends `value` if the lane is open under `gen` and below its limit.
    #[inline(always)]
    pub fn push(&self, gen: u32, value: T) -> Result<(), PushError<T>> {
        let side = &self.producers.0;
        let mut round = 0;
        let mut next: *mut Block<T> = ptr::null_mut();
        let refused = |next: *mut Block<T>| {
            if !next.is_null() {
                // SAFETY: taken by this call and never published.
                unsafe { self.put_block(next) }
            }
        };
        loop {
            let t = side.tail.load(Ordering::Acquire);
            if !open_for(t, gen) || pos_of(t) >= POS_LIMIT {
                refused(next);
                return Err(PushError::Fenced(value));
            }
            let p = pos_of(t);
            let offset = p % LAP;
            if offset == BLOCK_CAP {
                // Another producer is linking the next block.
                spin_step(&mut round);
                continue;
            }
            let last = offset + 1 == BLOCK_CAP;
            if last {
                // The next block would take the lane past its limit.
                let h = pos_of(self.consumers.0.head.load(Ordering::Relaxed));
                let len = ordinal(p).saturating_sub(ordinal(h)) + 1;
                if len + BLOCK_CAP > self.limit {
                    refused(next);
                    return Err(PushError::Full(value));
                }
                if next.is_null() {
                    next = self.take_block();
                }
            }
            let block = side.block.load(Ordering::Acquire);
            if side
                .tail
                .compare_exchange_weak(t, t + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: the reservation of p succeeded, so `block` is p's
                // block (module docs) and it lives until slot p is read,
                // which waits for the written flag set below.
                let b = unsafe { &*block };
                if last {
                    side.block.store(next, Ordering::Release);
                    // Past the extra position (fetch_add: a fence may be
                    // marking the word meanwhile).
                    side.tail.fetch_add(1, Ordering::Release);
                    b.next.store(next, Ordering::Release);
                }
                let slot = &b.slots[offset as usize];
                // SAFETY: position p is ours alone; no consumer reads it
                // before the written flag.
                slot.value.with_mut(|v| unsafe { (*v).write(value) });
                // A plain store: nobody else writes a slot's flags before
                // it is written (the walk waits for it: `release`).
                slot.flags.store(WRITTEN, Ordering::Release);
                self.note_len(ordinal(p) + 1);
                return Ok(());
            }
            spin_step(&mut round);
        }
    }

    /// Takes the oldest value, with its number (module docs), if the lane
    /// is open under `gen` and holds one.
    #[inline]
    pub fn pop(&self, gen: u32) -> Result<(T, u64), PopError> {
        let side = &self.consumers.0;
        let mut round = 0;
        loop {
            let h = side.head.load(Ordering::Acquire);
            if !open_for(h, gen) {
                return Err(PopError::Fenced);
            }
            let p = pos_of(h);
            let offset = p % LAP;
            if offset == BLOCK_CAP {
                // Another consumer is moving to the next block.
                spin_step(&mut round);
                continue;
            }
            if p >= side.seen_tail.load(Ordering::Acquire) {
                let t = pos_of(self.producers.0.tail.load(Ordering::Acquire));
                if p >= t {
                    return Err(PopError::Empty);
                }
                side.seen_tail.store(t, Ordering::Release);
            }
            // After learning p is reserved, before reserving it (module docs).
            let base = side.base.load(Ordering::Relaxed);
            let block = side.block.load(Ordering::Acquire);
            if side
                .head
                .compare_exchange_weak(h, h + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: the reservation of p succeeded: `block` is p's
                // block, alive until its slot p is read (by us, below).
                let b = unsafe { &*block };
                if offset + 1 == BLOCK_CAP {
                    side.block.store(b.wait_next(), Ordering::Release);
                    side.head.fetch_add(1, Ordering::Release);
                }
                // SAFETY: position p of `block` is ours alone.
                let value = unsafe { self.take(block, offset) };
                return Ok((value, base.wrapping_add(ordinal(p))));
            }
            spin_step(&mut round);
        }
    }

    /// Reads the value at `offset` once written, then marks it read, and
    /// finishes the block's walk if it is the last slot or the walk is
    /// waiting on it (module docs).
    ///
    /// # Safety
    /// The caller reserved this slot (or drains a fenced lane) and the
    /// head has moved past it.
    unsafe fn take(&self, block: *mut Block<T>, offset: u64) -> T {
        // SAFETY: the block lives until this slot is marked read (contract).
        let b = unsafe { &*block };
        let slot = &b.slots[offset as usize];
        let mut round = 0;
        while slot.flags.load(Ordering::Acquire) & WRITTEN == 0 {
            spin_step(&mut round);
        }
        // SAFETY: written (Acquire pairs with the producer's Release), and
        // ours alone.
        let value = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
        if offset + 1 == BLOCK_CAP {
            // SAFETY: the last slot; the walk starts here.
            unsafe { self.release(block, 0) };
        } else if slot.flags.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
            // SAFETY: the walk stopped at this slot and handed it to us.
            unsafe { self.release(block, offset + 1) };
        }
        value
    }

    /// Walks the block's slots from `start`: stops at one still being read
    /// (marking it, so that its reader carries on), else keeps or frees the
    /// block.
    ///
    /// # Safety
    /// Every slot before `start`, and the last one, has been read.
    unsafe fn release(&self, block: *mut Block<T>, start: u64) {
        // SAFETY: not freed before this walk ends (contract).
        let b = unsafe { &*block };
        for slot in &b.slots[start as usize..BLOCK_CAP as usize - 1] {
            let mut round = 0;
            loop {
                let flags = slot.flags.load(Ordering::Acquire);
                if flags & READ != 0 {
                    break;
                }
                if flags & WRITTEN == 0 {
                    // Its producer is between its reservation and its
                    // store of the written flag (a plain store, which a
                    // mark set now would be lost under): wait for it.
                    spin_step(&mut round);
                    continue;
                }
                if slot.flags.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0 {
                    return;
                }
                break;
            }
        }
        // SAFETY: every slot read: nobody else reaches it.
        unsafe { self.put_block(block) }
    }

    /// As the ring's: refreshes the high-water mark after a push that made
    /// `end` the tail ordinal, reading the head only when it may be a new
    /// maximum.
    #[inline(always)]
    fn note_len(&self, end: u64) {
        let side = &self.producers.0;
        let max = side.max_len.load(Ordering::Relaxed);
        if max >= self.limit || end.wrapping_sub(side.seen_head.load(Ordering::Relaxed)) <= max {
            return;
        }
        let h = ordinal(pos_of(self.consumers.0.head.load(Ordering::Acquire)));
        side.seen_head.store(h, Ordering::Relaxed);
        side.max_len
            .fetch_max(end.saturating_sub(h), Ordering::Relaxed);
    }

    /// The most values the lane has held since it was last opened (as the
    /// ring's [`max_len`](super::Lane::max_len)).
    pub fn max_len(&self) -> usize {
        self.producers.0.max_len.load(Ordering::Relaxed) as usize
    }

    /// Marks both words: from now on every push and pop fails with
    /// `Fenced` until the lane is opened again. Returns whether it was open.
    pub fn fence(&self) -> bool {
        let t = self.producers.0.tail.fetch_or(MARK, Ordering::SeqCst);
        let h = self.consumers.0.head.fetch_or(MARK, Ordering::SeqCst);
        t & MARK == 0 || h & MARK == 0
    }

    /// Waits until `w` is not at a block's extra position (a link begun
    /// before the fence is finished), and returns it.
    fn settled(w: &AtomicU64) -> u64 {
        let mut round = 0;
        loop {
            let v = w.load(Ordering::Acquire);
            if pos_of(v) % LAP != BLOCK_CAP {
                return v;
            }
            spin_step(&mut round);
        }
    }

    /// Takes every value out of a fenced lane, oldest first, with its
    /// ordinal, waiting for pushes reserved before the fence to finish.
    /// Only one thread may drain or open at a time (the kernel's lock).
    pub fn drain(&self, mut each: impl FnMut(T, u64)) {
        let t_word = Self::settled(&self.producers.0.tail);
        let h_word = Self::settled(&self.consumers.0.head);
        debug_assert!(
            h_word & MARK != 0 && t_word & MARK != 0,
            "drain of an open lane"
        );
        let (mut p, t) = (pos_of(h_word), pos_of(t_word));
        let side = &self.consumers.0;
        let mut block = side.block.load(Ordering::Acquire);
        while p < t {
            let offset = p % LAP;
            let n = ordinal(p);
            let mut next_block = block;
            if offset + 1 == BLOCK_CAP {
                // SAFETY: the block holds slot p, not yet read.
                next_block = unsafe { &*block }.wait_next();
                side.block.store(next_block, Ordering::Release);
                p += 2;
            } else {
                p += 1;
            }
            // SAFETY: fenced, so no consumer reserves slot `offset`; the
            // head (stored below) is past it.
            let value = unsafe { self.take(block, offset) };
            each(value, n);
            block = next_block;
        }
        side.head
            .store(word(gen_of(h_word), true, p), Ordering::Release);
    }

    /// Appends to a fenced, drained lane (the kernel moving queued messages
    /// back in, under its lock): `Err` with the value at the limit.
    pub fn refill(&self, value: T) -> Result<(), T> {
        let side = &self.producers.0;
        let t = Self::settled(&side.tail);
        debug_assert!(t & MARK != 0, "refill of an open lane");
        let p = pos_of(t);
        let h = pos_of(self.consumers.0.head.load(Ordering::Acquire));
        if ordinal(p) - ordinal(h) >= self.limit || p >= POS_LIMIT {
            return Err(value);
        }
        let offset = p % LAP;
        let block = side.block.load(Ordering::Acquire);
        // SAFETY: the tail block; fenced and drained, nobody else pushes or
        // reads it.
        let b = unsafe { &*block };
        if offset + 1 == BLOCK_CAP {
            let next = self.take_block();
            b.next.store(next, Ordering::Release);
            side.block.store(next, Ordering::Release);
            side.tail.store(t + 2, Ordering::Release);
        } else {
            side.tail.store(t + 1, Ordering::Release);
        }
        let slot = &b.slots[offset as usize];
        // SAFETY: position p is free and ours (as above).
        slot.value.with_mut(|v| unsafe { (*v).write(value) });
        slot.flags.store(WRITTEN, Ordering::Release);
        Ok(())
    }

    /// As the ring's [`reopen`](super::Lane::reopen): numbers the pops
    /// from `next`, appends `values`, opens under `gen`; returns the head
    /// and tail ordinals it opened at, or the first value past the limit
    /// (the lane then stays fenced).
    pub fn reopen(
        &self,
        gen: u32,
        max_len: usize,
        next: u64,
        values: impl IntoIterator<Item = T>,
    ) -> Result<(u64, u64), T> {
        debug_assert!(!self.is_open(), "reopen of an open lane");
        let h = ordinal(pos_of(Self::settled(&self.consumers.0.head)));
        self.consumers
            .0
            .base
            .store(next.wrapping_sub(h), Ordering::Relaxed);
        for v in values {
            self.refill(v)?;
        }
        Ok(self.enable(gen, max_len))
    }

    /// Opens a fenced lane under `gen` with `max_len` as its high-water
    /// mark so far; returns the head and tail ordinals it opened at.
    pub fn enable(&self, gen: u32, max_len: usize) -> (u64, u64) {
        let h = pos_of(Self::settled(&self.consumers.0.head));
        let t = pos_of(Self::settled(&self.producers.0.tail));
        let (oh, ot) = (ordinal(h), ordinal(t));
        let side = &self.producers.0;
        side.seen_head.store(oh, Ordering::Relaxed);
        side.max_len.store(
            (max_len as u64).max(ot - oh).min(self.limit),
            Ordering::Relaxed,
        );
        self.consumers.0.seen_tail.store(t, Ordering::Release);
        self.consumers
            .0
            .head
            .store(word(gen, false, h), Ordering::Release);
        side.tail.store(word(gen, false, t), Ordering::Release);
        (oh, ot)
    }

    /// The head and tail ordinals (values taken so far, values put so far).
    pub fn positions(&self) -> (u64, u64) {
        (
            ordinal(pos_of(self.consumers.0.head.load(Ordering::Acquire))),
            ordinal(pos_of(self.producers.0.tail.load(Ordering::Acquire))),
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

    /// As the ring's [`idle`](super::Lane::idle). Positions count a block's
    /// extra position too, so a head one short of the tail across a block
    /// boundary says `Busy` (the receiver pops again and finds it empty).
    pub fn idle(&self, gen: u32) -> Idle {
        idle_of(&self.producers.0.tail, &self.consumers.0.head, gen)
    }
}

impl<T> Drop for ListLane<T> {
    fn drop(&mut self) {
        let mut p = pos_of(self.consumers.0.head.load(Ordering::Relaxed));
        let t = pos_of(self.producers.0.tail.load(Ordering::Relaxed));
        let mut block = self.consumers.0.block.load(Ordering::Relaxed);
        while p < t {
            let offset = p % LAP;
            // SAFETY: the last owner; the blocks from the head's on are
            // alive, and every position in [head, tail) was written (no
            // push is in flight when the lane is dropped).
            let b = unsafe { &*block };
            let slot = &b.slots[offset as usize];
            if slot.flags.load(Ordering::Relaxed) & WRITTEN != 0 {
                // SAFETY: written and not taken.
                slot.value.with_mut(|v| unsafe { (*v).assume_init_drop() });
            }
            if offset + 1 == BLOCK_CAP {
                let next = b.next.load(Ordering::Relaxed);
                // SAFETY: every value in it dropped or taken.
                drop(unsafe { Box::from_raw(block) });
                block = next;
                p += 2;
            } else {
                p += 1;
            }
        }
        while !block.is_null() {
            // SAFETY: as above; the chain from here holds no value.
            let next = unsafe { &*block }.next.load(Ordering::Relaxed);
            // SAFETY: from `Box::into_raw`, ours alone.
            drop(unsafe { Box::from_raw(block) });
            block = next;
        }
        for s in &self.spares.0 {
            let b = s.load(Ordering::Relaxed);
            if !b.is_null() {
                // SAFETY: a spare, ours alone.
                drop(unsafe { Box::from_raw(b) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_across_blocks_fence_drain_reopen() {
        let lane = ListLane::<u64>::new(0);
        assert_eq!(lane.capacity(), 2 * BLOCK_CAP as usize);
        // Born fenced.
        assert!(matches!(lane.push(0, 1), Err(PushError::Fenced(1))));
        lane.enable(0, 0);
        let n = BLOCK_CAP + 5;
        for i in 0..n {
            lane.push(0, i).unwrap();
        }
        assert_eq!(lane.positions(), (0, n));
        assert_eq!(lane.max_len(), n as usize);
        for i in 0..BLOCK_CAP + 1 {
            assert_eq!(lane.pop(0).unwrap(), (i, i));
        }
        // A stale generation cannot use it.
        assert_eq!(lane.pop(1).unwrap_err(), PopError::Fenced);
        assert!(lane.fence());
        assert!(matches!(lane.push(0, 9), Err(PushError::Fenced(9))));
        let mut got = Vec::new();
        lane.drain(|v, n| got.push((v, n)));
        let want: Vec<_> = (BLOCK_CAP + 1..n).map(|i| (i, i)).collect();
        assert_eq!(got, want);
        // Renumbered from 100, with two values moved back in.
        assert_eq!(lane.reopen(2, 0, 100, [7, 8]), Ok((n, n + 2)));
        assert_eq!(lane.pop(2).unwrap(), (7, 100));
        assert_eq!(lane.pop(2).unwrap(), (8, 101));
        assert_eq!(lane.pop(2).unwrap_err(), PopError::Empty);
    }

    #[test]
    fn the_limit_refuses_at_a_block_boundary() {
        let lane = ListLane::<u64>::new(0);
        lane.enable(0, 0);
        let mut pushed = 0;
        while lane.push(0, pushed).is_ok() {
            pushed += 1;
        }
        // Room for at most the limit, refused where a third block would start.
        assert_eq!(pushed, 2 * BLOCK_CAP - 1);
        assert!(matches!(lane.push(0, 99), Err(PushError::Full(99))));
        assert_eq!(lane.pop(0).unwrap(), (0, 0));
        assert!(matches!(lane.push(0, 99), Err(PushError::Full(99))));
        // A block's worth taken: room again.
        for i in 1..BLOCK_CAP + 1 {
            assert_eq!(lane.pop(0).unwrap().0, i);
        }
        lane.push(0, 99).unwrap();
    }

    #[test]
    fn a_long_stream_reuses_its_blocks_and_drop_frees_the_rest() {
        let lane = ListLane::new(1 << 20);
        lane.enable(0, 0);
        let v = std::sync::Arc::new(());
        for round in 0..50 {
            for _ in 0..(round % 7) * BLOCK_CAP + 3 {
                lane.push(0, v.clone()).unwrap();
            }
            while lane.pop(0).is_ok() {}
        }
        for _ in 0..3 * BLOCK_CAP {
            lane.push(0, v.clone()).unwrap();
        }
        drop(lane);
        assert_eq!(std::sync::Arc::strong_count(&v), 1);
    }
}
