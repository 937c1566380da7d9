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
//!   head (oldest)        tail: younger blocks, oldest first
//!   [ m0 m1 m2 .. ]  ->  [ m9 .. m136 ]  [ m137 .. m264 ]  [ m265 m266 ]
//!     pop here                                                push here
//! ```
//!
//! * Push appends to the youngest block; a full block starts a new one
//!   ([`BLOCK`] entries, a few KiB, which the allocator recycles from its free
//!   lists). Nothing is ever copied.
//! * Pop takes from the head block; an emptied head is replaced by the next
//!   block and kept as a spare (up to [`SPARE_BLOCKS`]) or given back.
//! * While the consumer keeps up, the head block is the only one and works as
//!   a ring buffer: the common case is one `VecDeque` push or pop.
//!
//! A bounded queue gets its head block up front, sized to its capacity (up to
//! [`PREALLOCATED`](super::queue)), so it never allocates while it runs.

use std::collections::VecDeque;
use std::mem;

/// Entries per block once the head block is full (6 KiB of kernel messages).
pub(crate) const BLOCK: usize = 128;

/// Emptied blocks a queue keeps for reuse; beyond this they are freed, so a
/// queue that once grew large gives its memory back as it drains.
pub(crate) const SPARE_BLOCKS: usize = 4;

/// A FIFO in blocks (see the module docs).
///
/// Invariants: if `head` is empty, `tail` is empty; no block in `tail` is
/// empty; `tail_len` is the number of entries in `tail`.
pub(crate) struct Fifo<T> {
    head: VecDeque<T>,
    tail: VecDeque<VecDeque<T>>,
    tail_len: usize,
    spare: Vec<VecDeque<T>>,
}

impl<T> Fifo<T> {
    /// An empty FIFO whose head block holds `preallocate` entries before any
    /// further allocation (0: allocate on first push).
    pub(crate) fn with_capacity(preallocate: usize) -> Fifo<T> {
        Fifo {
            head: VecDeque::with_capacity(preallocate),
            tail: VecDeque::new(),
            tail_len: 0,
            spare: Vec::new(),
        }
    }

    /// Number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail_len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// The oldest entry.
    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.head.front()
    }

    /// Appends an entry (never copies the entries already queued).
    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.tail.is_empty() && self.head.len() < self.head.capacity() {
            self.head.push_back(value);
        } else {
            self.push_back_slow(value);
        }
    }

    #[inline(never)]
    fn push_back_slow(&mut self, value: T) {
        if self.head.is_empty() {
            // Only reached with a head block of no capacity: the first push.
            self.head.reserve_exact(BLOCK);
            self.head.push_back(value);
            return;
        }
        self.tail_len += 1;
        if let Some(block) = self.tail.back_mut() {
            if block.len() < block.capacity() {
                block.push_back(value);
                return;
            }
        }
        let mut block = self
            .spare
            .pop()
            .unwrap_or_else(|| VecDeque::with_capacity(BLOCK));
        block.push_back(value);
        self.tail.push_back(block);
    }

    /// Removes the oldest entry.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let value = self.head.pop_front()?;
        if self.head.is_empty() && !self.tail.is_empty() {
            self.advance();
        }
        Some(value)
    }

    /// The head block is empty: the next block becomes the head.
    #[inline(never)]
    fn advance(&mut self) {
        let Some(next) = self.tail.pop_front() else {
            return;
        };
        self.tail_len -= next.len();
        let emptied = mem::replace(&mut self.head, next);
        if self.spare.len() < SPARE_BLOCKS {
            self.spare.push(emptied);
        }
    }

    /// The entries, oldest first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.head.iter().chain(self.tail.iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
                prop_assert!(fifo.spare.len() <= SPARE_BLOCKS);
                prop_assert!(fifo.tail.iter().all(|b| !b.is_empty()));
            }
        }
    }

    #[test]
    fn a_long_queue_is_kept_in_blocks_and_never_regrown() {
        let mut fifo = Fifo::with_capacity(0);
        for i in 0..10 * BLOCK {
            fifo.push_back(i);
        }
        assert_eq!(fifo.head.capacity(), BLOCK);
        assert_eq!(fifo.tail.len(), 9);
        assert!(fifo.tail.iter().all(|b| b.capacity() == BLOCK));
        for i in 0..10 * BLOCK {
            assert_eq!(fifo.pop_front(), Some(i));
        }
        assert_eq!(fifo.pop_front(), None);
        assert_eq!(fifo.spare.len(), SPARE_BLOCKS);
    }

    #[test]
    fn a_preallocated_head_takes_its_capacity_without_a_second_block() {
        let mut fifo = Fifo::with_capacity(16);
        for round in 0..100 {
            for i in 0..16 {
                fifo.push_back(round * 16 + i);
            }
            assert!(fifo.tail.is_empty());
            for i in 0..16 {
                assert_eq!(fifo.pop_front(), Some(round * 16 + i));
            }
        }
        assert!(fifo.spare.is_empty());
    }
}
