//! The storage of a message queue: a FIFO made of fixed-size blocks.
//!
//! A single `VecDeque` that grows by doubling is the obvious FIFO, and it is
//! the wrong one for an unbounded port. When a producer runs ahead, the
//! buffer doubles: every doubling copies the whole queue *while the kernel
//! lock is held* (one 6 MiB copy stalls every task in the kernel), and each
//! new buffer is big enough for the allocator to map fresh pages from the OS,
//! which the kernel then faults in page by page. The buffer also never
//! shrinks, so a port that once held a million messages keeps their memory.
//!
//! [`Fifo`] keeps entries in blocks instead, as crossbeam's unbounded channel
//! does:
//!
//! ```text
//!   front (oldest)      middle: full blocks, oldest first       back (youngest)
//!   [ m0 m1 .. m8 ]  [ m9 .. m136 ] [ m137 .. m264 ]   [ m265 m266 ]
//!     pop here                                            push here
//! ```
//!
//! * Push appends to the back block; a full back block moves to the middle
//!   and a new one starts, twice as large, from [`FIRST_BLOCK`] entries up to
//!   [`BLOCK`] (6 KiB, which the allocator recycles from its free lists), so
//!   a port holding a few messages stays small. Queued entries are never
//!   copied.
//! * Pop takes from the front block; an emptied front is replaced (at the
//!   next pop) by the oldest middle block and kept as a spare (up to
//!   [`SPARE_BLOCKS`]) or given back to the allocator.
//! * While the consumer keeps up, the back block is the only one and works as
//!   a ring buffer: the common case is one slot written or taken, and so is a
//!   producer running far ahead (it pushes into the back block, the consumer
//!   pops from the front one).
//!
//! A bounded queue gets its first block up front, sized to its capacity (up
//! to `PREALLOCATED` in the queue module), so it never allocates while it runs.

use std::collections::VecDeque;
use std::mem;

/// Entries per block once a queue has grown (6 KiB of kernel messages).
pub(crate) const BLOCK: usize = 128;

/// Entries in the first block a queue allocates; each new block doubles,
/// up to [`BLOCK`].
pub(crate) const FIRST_BLOCK: usize = 4;

/// Emptied blocks a queue keeps for reuse; beyond this they are freed, so a
/// queue that once grew large gives its memory back as it drains.
pub(crate) const SPARE_BLOCKS: usize = 4;

/// A FIFO in blocks (see the module docs).
///
/// Entries are ordered `front`, then the middle blocks, then `back`. Pushes
/// go to `back`; pops come from `front`, or from `back` when `front` is
/// empty and no middle block is left. Invariants: no middle block is empty;
/// `middle_len` counts the entries in middle blocks. (An emptied `front` may
/// sit before the middle blocks until the next pop replaces it.)
///
/// The middle blocks and the spares live behind a box that only a queue that
/// has grown allocates, so every port pays 64 bytes for its queue's storage
/// (a simulation can hold a million ports).
///
/// `Clone` is a deep copy: every block (spares included) is copied slot by
/// slot, so the copy shares no storage with the original.
pub(crate) struct Fifo<T> {
    front: Block<T>,
    back: Block<T>,
    middle_len: usize,
    grown: Option<Box<Grown<T>>>,
}

clone_fields!(Fifo<T> { front, back, middle_len, grown });
clone_fields!(Grown<T> { middle, spare });
clone_fields!(Block<T> { slots, head, len });

/// The parts of a [`Fifo`] that only a queue longer than one block needs.
struct Grown<T> {
    middle: VecDeque<Block<T>>,
    spare: Vec<Block<T>>,
}

impl<T> Default for Grown<T> {
    fn default() -> Self {
        Grown {
            middle: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

impl<T> Fifo<T> {
    /// An empty FIFO whose first block holds `preallocate` entries before any
    /// further allocation (0: allocate on first push).
    pub(crate) fn with_capacity(preallocate: usize) -> Fifo<T> {
        Fifo {
            front: Block::new(0),
            back: Block::new(preallocate),
            middle_len: 0,
            grown: None,
        }
    }

    /// Number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.front.len() + self.middle_len + self.back.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest entry.
    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.front
            .front()
            .or_else(|| self.middle_front())
            .or_else(|| self.back.front())
    }

    /// The oldest entry of the middle blocks (only reached when the front
    /// block is empty).
    #[inline(never)]
    fn middle_front(&self) -> Option<&T> {
        self.grown.as_ref()?.middle.front()?.front()
    }

    /// Appends an entry.
    #[cfg(test)]
    pub(crate) fn push_back(&mut self, value: T) {
        self.push_back_with(|| value);
    }

    /// Appends the entry `make` builds (never copies the entries already
    /// queued); with room in the back block it is built straight into its slot.
    #[inline(always)]
    pub(crate) fn push_back_with(&mut self, make: impl FnOnce() -> T) {
        if self.back.len() < self.back.capacity() {
            self.back.push_back_with(make);
        } else {
            self.push_back_slow(make());
        }
    }

    /// The back block is full (or was never allocated): start a new one.
    #[inline(never)]
    fn push_back_slow(&mut self, value: T) {
        // Blocks double from FIRST_BLOCK up to BLOCK, so a port holding a few
        // messages costs a few hundred bytes, not a whole block.
        let wanted = (self.back.capacity() * 2).clamp(FIRST_BLOCK, BLOCK);
        let spare = match &mut self.grown {
            Some(grown) if wanted == BLOCK => grown.spare.pop(),
            _ => None,
        };
        let fresh = spare.unwrap_or_else(|| Block::new(wanted));
        let full = mem::replace(&mut self.back, fresh);
        if full.is_empty() {
            self.recycle(full);
        } else if self.front.is_empty() && self.middle_len == 0 {
            let emptied = mem::replace(&mut self.front, full);
            self.recycle(emptied);
        } else {
            self.middle_len += full.len();
            self.grown
                .get_or_insert_with(Box::default)
                .middle
                .push_back(full);
        }
        self.back.push_back(value);
    }

    /// Removes the oldest entry.
    ///
    /// An emptied front block is replaced at the start of the *next* pop, not
    /// right after the entry is taken: an entry held across that (outlined)
    /// call would be spilled to the stack and read back in pieces, a
    /// store-forwarding stall measured at a sixth of a receive's time.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.front.is_empty() {
            if self.middle_len == 0 && self.front.capacity() == 0 {
                return self.back.pop_front();
            }
            self.advance();
            if self.front.is_empty() {
                return self.back.pop_front();
            }
        }
        self.front.pop_front()
    }

    /// The front block is empty: the oldest middle block replaces it, or, if
    /// there is none, nothing does (the emptied block is kept as a spare or freed).
    #[inline(never)]
    fn advance(&mut self) {
        let next = match self.grown.as_mut().and_then(|g| g.middle.pop_front()) {
            Some(block) => {
                self.middle_len -= block.len();
                block
            }
            None => Block::new(0),
        };
        let emptied = mem::replace(&mut self.front, next);
        self.recycle(emptied);
    }

    /// Keeps an emptied block for reuse, or frees it.
    fn recycle(&mut self, block: Block<T>) {
        if block.capacity() >= BLOCK {
            let spare = &mut self.grown.get_or_insert_with(Box::default).spare;
            if spare.len() < SPARE_BLOCKS {
                spare.push(block);
            }
        }
    }

    /// The middle blocks, oldest first.
    fn middle(&self) -> impl Iterator<Item = &Block<T>> {
        self.grown.iter().flat_map(|g| g.middle.iter())
    }

    /// How many emptied blocks are kept for reuse.
    #[cfg(test)]
    fn spare_len(&self) -> usize {
        self.grown.as_ref().map_or(0, |g| g.spare.len())
    }

    /// The entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.front
            .iter()
            .chain(self.middle().flat_map(Block::iter))
            .chain(self.back.iter())
    }
}

/// A fixed-capacity ring of entries: one block of a [`Fifo`].
///
/// A hand-rolled ring rather than a `VecDeque` so that a push inlines into
/// the send path and writes the entry straight into its slot: through
/// `VecDeque::push_back` (not inlined) the entry was first built on the
/// stack and copied with wide loads that stalled on the narrower stores that
/// had just built it (store-to-load forwarding fails), half the samples of
/// the push (`perf annotate`, bounded(1024) 8-byte bench).
struct Block<T> {
    slots: Box<[Option<T>]>,
    /// Slot of the oldest entry. (`u32`s keep a block's header, and with it
    /// every port, 8 bytes smaller; no block has more than `PREALLOCATED`
    /// slots.)
    head: u32,
    len: u32,
}

impl<T> Block<T> {
    fn new(capacity: usize) -> Block<T> {
        debug_assert!(u32::try_from(capacity).is_ok());
        Block {
            slots: std::iter::repeat_with(|| None).take(capacity).collect(),
            head: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len as usize
    }

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn is_full(&self) -> bool {
        self.len() == self.slots.len()
    }

    /// The slot `offset` places after the head.
    #[inline(always)]
    fn slot(&self, offset: usize) -> usize {
        let i = self.head as usize + offset;
        if i >= self.slots.len() {
            i - self.slots.len()
        } else {
            i
        }
    }

    #[inline(always)]
    fn front(&self) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        self.slots[self.head as usize].as_ref()
    }

    /// Appends; the caller checks that the block is not full.
    #[inline(always)]
    fn push_back(&mut self, value: T) {
        self.push_back_with(|| value);
    }

    /// Appends the entry `make` builds, built straight into its slot.
    #[inline(always)]
    fn push_back_with(&mut self, make: impl FnOnce() -> T) {
        debug_assert!(!self.is_full());
        let i = self.slot(self.len());
        // A slot outside the live range is always `None`. Assigning would
        // call the entry's drop glue on it, out of line, and the new entry
        // would be built on the stack first and copied in pieces (a
        // store-forwarding stall); filling the `None` does neither.
        let slot = &mut self.slots[i];
        debug_assert!(slot.is_none());
        slot.get_or_insert_with(make);
        self.len += 1;
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots[self.head as usize].take();
        self.head = self.slot(1) as u32;
        self.len -= 1;
        value
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len()).filter_map(move |k| self.slots[self.slot(k)].as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_queue_that_never_grew_costs_two_block_headers_and_a_count() {
        assert_eq!(std::mem::size_of::<Fifo<super::super::KMessage>>(), 64);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push,
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![3 => Just(Op::Push), 2 => Just(Op::Pop)]
    }

    proptest! {
        /// Any sequence of pushes and pops behaves as a `VecDeque`.
        #[test]
        fn behaves_as_a_vecdeque(
            preallocate in prop_oneof![Just(0usize), Just(1), Just(16), Just(BLOCK + 3)],
            ops in proptest::collection::vec(op(), 0..2000),
        ) {
            let mut fifo = Fifo::with_capacity(preallocate);
            let mut model = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Push => {
                        fifo.push_back(next);
                        model.push_back(next);
                        next += 1;
                    }
                    Op::Pop => prop_assert_eq!(fifo.pop_front(), model.pop_front()),
                }
                prop_assert_eq!(fifo.len(), model.len());
                prop_assert_eq!(fifo.is_empty(), model.is_empty());
                prop_assert_eq!(fifo.front(), model.front());
                prop_assert!(fifo.iter().eq(model.iter()));
                prop_assert!(fifo.spare_len() <= SPARE_BLOCKS);
                prop_assert!(fifo.middle().all(|b| !b.is_empty()));
                prop_assert_eq!(fifo.middle_len, fifo.middle().map(Block::len).sum::<usize>());
            }
        }
    }

    #[test]
    fn a_long_queue_is_kept_in_blocks_and_never_regrown() {
        let mut fifo = Fifo::with_capacity(0);
        for i in 0..10 * BLOCK {
            fifo.push_back(i);
        }
        // Blocks of 4, 8, ..., 64 entries, then blocks of BLOCK.
        let capacities: Vec<usize> = std::iter::once(&fifo.front)
            .chain(fifo.middle())
            .chain(std::iter::once(&fifo.back))
            .map(Block::capacity)
            .collect();
        let small = [4, 8, 16, 32, 64];
        assert_eq!(&capacities[..small.len()], small);
        let rest = 10 * BLOCK - small.iter().sum::<usize>();
        assert_eq!(capacities.len(), small.len() + rest.div_ceil(BLOCK));
        assert!(capacities[small.len()..].iter().all(|&c| c == BLOCK));
        for i in 0..10 * BLOCK {
            assert_eq!(fifo.pop_front(), Some(i));
        }
        assert_eq!(fifo.pop_front(), None);
        assert_eq!(fifo.spare_len(), SPARE_BLOCKS);
    }

    #[test]
    fn a_short_queue_stays_small() {
        let mut fifo = Fifo::with_capacity(0);
        for round in 0..1000 {
            fifo.push_back(round);
            fifo.push_back(round);
            assert_eq!(fifo.pop_front(), Some(round));
            assert_eq!(fifo.pop_front(), Some(round));
        }
        assert_eq!(fifo.back.capacity(), FIRST_BLOCK);
        assert_eq!(fifo.front.capacity() + fifo.middle().count(), 0);
        assert!(fifo.spare_len() == 0);
    }

    #[test]
    fn a_preallocated_block_takes_its_capacity_without_a_second_block() {
        let mut fifo = Fifo::with_capacity(16);
        for round in 0..100 {
            for i in 0..16 {
                fifo.push_back(round * 16 + i);
            }
            assert!(fifo.front.is_empty() && fifo.middle().next().is_none());
            for i in 0..16 {
                assert_eq!(fifo.pop_front(), Some(round * 16 + i));
            }
        }
        assert!(fifo.spare_len() == 0);
    }
}
