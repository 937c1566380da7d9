//! Coroutine stacks carved from a few large mappings.
//!
//! Every simulated process runs on its own stack (a stackful coroutine), so
//! user code is ordinary blocking Rust. Giving each stack its own `mmap` with
//! a guard page costs two kernel memory mappings per process, and Linux allows
//! 65,530 mappings per process (`vm.max_map_count`): that stops a run at about
//! 32,700 processes. So the [`StackPool`] maps stacks in *chunks* of
//! [`CHUNK_SLOTS`] slots, one `mmap` each, reserved with `MAP_NORESERVE` so
//! untouched stack pages cost nothing. A million 64 KiB stacks take 64 GiB of
//! address space, ~250 mappings, and only the pages each process touched.
//!
//! Overflow detection has two layers:
//! * the first [`GUARDED_SLOTS`] slots get an inaccessible guard page
//!   (`mprotect`, which splits the mapping: affordable for that many), so an
//!   overflow there faults at once;
//! * every slot carries a canary at its low end, checked each time its
//!   process switches back to the scheduler; a smashed canary stops the run
//!   with "stack overflow in process X" instead of corrupting a neighbour
//!   silently later. A large enough frame can jump past a canary, which is why
//!   small runs keep guard pages and why the stack size is configurable.
//!
//! Freed slots are reused (last freed, first reused), so a run that spawns
//! and ends processes in waves stays within the pages it already touched.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::rc::Rc;

use corosensei::stack::{Stack, StackPointer};

/// Slots per mapping.
pub const CHUNK_SLOTS: usize = 1024;
/// How many slots (from the start of the pool) get a guard page.
pub const GUARDED_SLOTS: usize = 16 * 1024;
/// Smallest accepted stack size.
pub const MIN_STACK: usize = 16 * 1024;

const PAGE: usize = 4096;
const CANARY: u64 = 0x6D6B_6970_635F_7369; // "mkipc_si"
const CANARY_WORDS: usize = 8;

struct Chunk {
    base: *mut u8,
    len: usize,
}

struct PoolInner {
    slot_size: usize,
    chunks: Vec<Chunk>,
    free: Vec<usize>,
    next_fresh: usize,
}

/// A growable pool of fixed-size coroutine stacks (see the module docs).
pub struct StackPool {
    inner: RefCell<PoolInner>,
}

impl std::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("StackPool")
            .field("slot_size", &inner.slot_size)
            .field("chunks", &inner.chunks.len())
            .field("in_use", &(inner.next_fresh - inner.free.len()))
            .finish()
    }
}

impl StackPool {
    /// A pool of stacks of `stack_size` bytes (rounded up to whole pages, at
    /// least [`MIN_STACK`]).
    pub fn new(stack_size: usize) -> Rc<StackPool> {
        let slot_size = stack_size.max(MIN_STACK).div_ceil(PAGE) * PAGE;
        Rc::new(StackPool {
            inner: RefCell::new(PoolInner { slot_size, chunks: Vec::new(), free: Vec::new(), next_fresh: 0 }),
        })
    }

    /// The size of each stack in bytes.
    pub fn stack_size(&self) -> usize {
        self.inner.borrow().slot_size
    }

    /// Takes a stack from the pool, mapping a new chunk if needed.
    pub fn take(self: &Rc<StackPool>) -> std::io::Result<PooledStack> {
        let mut inner = self.inner.borrow_mut();
        let index = match inner.free.pop() {
            Some(i) => i,
            None => {
                let i = inner.next_fresh;
                if i / CHUNK_SLOTS == inner.chunks.len() {
                    let chunk = map_chunk(inner.slot_size, inner.chunks.len())?;
                    inner.chunks.push(chunk);
                }
                inner.next_fresh += 1;
                i
            }
        };
        let low = inner.slot_low(index);
        let guarded = index < GUARDED_SLOTS;
        let canary_at = if guarded { low + PAGE } else { low };
        // SAFETY: `canary_at .. canary_at + 64` lies inside this slot's
        // read-write part (past the guard page when there is one), the slot is
        // mapped until the pool drops, and no coroutine runs on it now (it was
        // free), so nothing else reads or writes these bytes concurrently.
        unsafe {
            let words = canary_at as *mut u64;
            for k in 0..CANARY_WORDS {
                words.add(k).write(CANARY);
            }
        }
        let base = low + inner.slot_size;
        Ok(PooledStack { pool: Rc::clone(self), index, base, low, canary_at })
    }

    fn give_back(&self, index: usize) {
        self.inner.borrow_mut().free.push(index);
    }
}

impl PoolInner {
    fn slot_low(&self, index: usize) -> usize {
        let chunk = &self.chunks[index / CHUNK_SLOTS];
        chunk.base as usize + (index % CHUNK_SLOTS) * self.slot_size
    }
}

fn map_chunk(slot_size: usize, chunk_index: usize) -> std::io::Result<Chunk> {
    use rustix::mm::{mmap_anonymous, mprotect, MapFlags, MprotectFlags, ProtFlags};
    let len = slot_size * CHUNK_SLOTS;
    // SAFETY: a fresh anonymous private mapping at an address the kernel
    // chooses aliases no Rust object; we own it until `Drop for StackPool`.
    let base = unsafe {
        mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )
    }
    .map_err(std::io::Error::from)? as *mut u8;
    let first_slot = chunk_index * CHUNK_SLOTS;
    if first_slot < GUARDED_SLOTS {
        for k in 0..CHUNK_SLOTS.min(GUARDED_SLOTS - first_slot) {
            // SAFETY: the page is the lowest page of slot `k` of the mapping we
            // just created; nothing uses it yet, and making it inaccessible is
            // exactly its purpose (a stack guard).
            unsafe { mprotect(base.add(k * slot_size).cast(), PAGE, MprotectFlags::empty()) }
                .map_err(std::io::Error::from)?;
        }
    }
    Ok(Chunk { base, len })
}

impl Drop for StackPool {
    fn drop(&mut self) {
        for chunk in self.inner.get_mut().chunks.drain(..) {
            // SAFETY: every `PooledStack` holds an `Rc` to the pool, so when the
            // pool drops no stack (and no coroutine) uses the chunk any more.
            let _ = unsafe { rustix::mm::munmap(chunk.base.cast(), chunk.len) };
        }
    }
}

/// One stack borrowed from a [`StackPool`]; goes back to it when dropped.
pub struct PooledStack {
    pool: Rc<StackPool>,
    index: usize,
    base: usize,
    low: usize,
    canary_at: usize,
}

impl std::fmt::Debug for PooledStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledStack").field("index", &self.index).finish()
    }
}

impl PooledStack {
    /// Whether the canary at the low end of the stack is intact. `false`
    /// means the process overflowed its stack.
    pub fn canary_intact(&self) -> bool {
        // SAFETY: the canary words lie inside this slot's read-write part,
        // mapped for as long as `self.pool` lives; the coroutine running on
        // this stack is suspended while the scheduler calls this.
        unsafe {
            let words = self.canary_at as *const u64;
            (0..CANARY_WORDS).all(|k| words.add(k).read_volatile() == CANARY)
        }
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        self.pool.give_back(self.index);
    }
}

// SAFETY: `base` and `low` delimit a region of `slot_size >= MIN_STACK`
// read-write bytes (plus the guard page for guarded slots) that stays mapped
// while this value lives (it keeps the pool alive) and that no other
// `PooledStack` hands out at the same time. Both ends are page aligned, so
// they satisfy `STACK_ALIGNMENT`. Slots without a guard page rely on the
// canary checked at every switch (module docs): an overflow is reported
// instead of faulting at once, which is the price of passing vm.max_map_count.
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        NonZeroUsize::new(self.base).expect("mapped stacks are not at address 0")
    }
    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.low).expect("mapped stacks are not at address 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_canaries_hold() {
        let pool = StackPool::new(MIN_STACK);
        let a = pool.take().unwrap();
        let a_base = a.base;
        assert!(a.canary_intact());
        drop(a);
        let b = pool.take().unwrap();
        assert_eq!(b.base, a_base, "the freed slot is reused");
        let c = pool.take().unwrap();
        assert_ne!(c.base, b.base);
    }

    #[test]
    fn a_coroutine_runs_on_a_pooled_stack() {
        use corosensei::Coroutine;
        let pool = StackPool::new(64 * 1024);
        let stack = pool.take().unwrap();
        let mut co: Coroutine<u32, u32, u32, PooledStack> = Coroutine::with_stack(stack, |y, x| {
            let x2 = y.suspend(x + 1);
            x2 * 2
        });
        assert_eq!(co.resume(1).as_yield(), Some(2));
        assert_eq!(co.resume(5).as_return(), Some(10));
    }
}
