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
//! * every slot carries a canary at its low end (64 bytes that must stay
//!   zero, so checking it never dirties a page), checked each time its
//!   process switches back to the scheduler; a smashed canary stops the run
//!   with "stack overflow in process X" instead of corrupting a neighbour
//!   silently later. A large enough frame can jump past a canary, which is why
//!   small runs keep guard pages and why the stack size is configurable.
//!
//! Freed slots are reused (last freed, first reused), so a run that spawns
//! and ends processes in waves stays within the pages it already touched.
//!
//! ```
//! use mkipc_sim::stack::StackPool;
//!
//! let pool = StackPool::new(64 * 1024);
//! let stack = pool.take().unwrap();
//! assert!(stack.canary_intact()); // checked at every switch back to the loop
//! assert_eq!(pool.stack_size(), 64 * 1024);
//! ```

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

thread_local! {
    static CACHE: RefCell<Vec<Rc<StackPool>>> = const { RefCell::new(Vec::new()) };
}
/// The canary is the lowest 64 bytes of a slot's usable part, which must
/// still read as zero: a fresh anonymous page is zero, and nothing but an
/// overflowing stack writes there. Writing a pattern instead would dirty one
/// more page per process (4 KiB of resident memory each); reading an untouched
/// page maps the shared zero page and costs nothing.
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

/// A growable pool of fixed-size coroutine stacks (see the [module docs](crate::stack)).
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
        let slot_size = slot_size_for(stack_size);
        Rc::new(StackPool {
            inner: RefCell::new(PoolInner {
                slot_size,
                chunks: Vec::new(),
                free: Vec::new(),
                next_fresh: 0,
            }),
        })
    }

    /// This thread's shared pool for stacks of `stack_size` bytes: runs on
    /// one thread reuse the slots (and pages) earlier runs touched, so an
    /// exploration of thousands of runs maps and faults its stacks once.
    pub fn cached(stack_size: usize) -> Rc<StackPool> {
        let slot_size = slot_size_for(stack_size);
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(p) = cache.iter().find(|p| p.stack_size() == slot_size) {
                return Rc::clone(p);
            }
            let pool = StackPool::new(slot_size);
            cache.push(Rc::clone(&pool));
            pool
        })
    }

    /// Drops this thread's cached pool of this stack size if it grew past
    /// `keep_slots` (a huge run should give its memory back when it ends).
    pub fn trim_cache(stack_size: usize, keep_slots: usize) {
        CACHE.with(|cache| {
            cache.borrow_mut().retain(|p| {
                let inner = p.inner.borrow();
                inner.slot_size != stack_size || inner.next_fresh <= keep_slots
            })
        });
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
                if i < GUARDED_SLOTS {
                    guard_slot(inner.slot_low(i))?;
                }
                inner.next_fresh += 1;
                i
            }
        };
        let low = inner.slot_low(index);
        let guarded = index < GUARDED_SLOTS;
        let canary_at = if guarded { low + PAGE } else { low };
        let base = low + inner.slot_size;
        Ok(PooledStack {
            pool: Rc::clone(self),
            index,
            base,
            low,
            canary_at,
        })
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

/// The slot size for a requested stack size: whole pages, at least
/// [`MIN_STACK`]; a size too large to round up stays the largest whole
/// number of pages (mapping it then fails cleanly).
fn slot_size_for(stack_size: usize) -> usize {
    stack_size
        .max(MIN_STACK)
        .checked_next_multiple_of(PAGE)
        .unwrap_or(usize::MAX / PAGE * PAGE)
}

fn map_chunk(slot_size: usize, chunk_index: usize) -> std::io::Result<Chunk> {
    use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};
    // Checked: a wrapped length would map less than the slots handed out.
    let len = slot_size
        .checked_mul(CHUNK_SLOTS)
        .filter(|&len| len <= isize::MAX as usize)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
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
    let _ = chunk_index;
    Ok(Chunk { base, len })
}

/// Turns the lowest page of a fresh slot into a guard page.
fn guard_slot(low: usize) -> std::io::Result<()> {
    use rustix::mm::{mprotect, MprotectFlags};
    // SAFETY: `low` is the first page of a slot of one of our mappings that
    // has never been handed out, so no stack (and no Rust object) uses it;
    // making it inaccessible is exactly its purpose (a stack guard).
    unsafe { mprotect(low as *mut std::ffi::c_void, PAGE, MprotectFlags::empty()) }
        .map_err(std::io::Error::from)
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
        f.debug_struct("PooledStack")
            .field("index", &self.index)
            .finish()
    }
}

impl PooledStack {
    /// Whether the canary at the low end of the stack is intact. `false`
    /// means the process overflowed its stack.
    pub fn canary_intact(&self) -> bool {
        // SAFETY: `self` keeps the stack (and the pool's mapping) alive.
        unsafe { self.canary().intact() }
    }

    /// A handle to check this stack's canary after the stack has been moved
    /// into a coroutine (which does not give it back until it ends).
    pub fn canary(&self) -> Canary {
        Canary {
            // A mapped address is never zero.
            at: std::num::NonZeroUsize::new(self.canary_at).expect("a mapped address"),
        }
    }
}

/// Where a stack's canary lives; see [`PooledStack::canary`]. Never zero,
/// so that the loop's `Option<Canary>` per process is one word.
#[derive(Clone, Copy, Debug)]
pub struct Canary {
    at: std::num::NonZeroUsize,
}

impl Canary {
    /// Whether the canary words are intact.
    ///
    /// # Safety
    /// The [`PooledStack`] this came from must still be alive (owned by a
    /// live coroutine), and no code may be running on that stack.
    pub unsafe fn intact(&self) -> bool {
        let words = self.at.get() as *const u64;
        // SAFETY: per the contract, the slot is mapped and read-write (the
        // canary sits above any guard page), and no coroutine is writing to
        // it concurrently; volatile reads because the compiler cannot see the
        // coroutine's writes.
        (0..CANARY_WORDS).all(|k| unsafe { words.add(k).read_volatile() } == 0)
    }
}

#[cfg(test)]
impl Canary {
    /// Writes over the canary, as an overflowing stack would.
    ///
    /// # Safety
    /// The stack must be alive and its lowest bytes unused.
    pub(crate) unsafe fn smash(&self) {
        // SAFETY: per the contract, the canary words are mapped, read-write
        // and hold nothing.
        unsafe { (self.at.get() as *mut u64).add(3).write_volatile(0xdead) };
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
    fn an_overwritten_canary_is_noticed() {
        let pool = StackPool::new(MIN_STACK);
        let stack = pool.take().unwrap();
        let canary = stack.canary();
        // SAFETY: the stack is alive and nothing runs on it.
        assert!(unsafe { canary.intact() });
        // Simulate an overflow reaching the canary.
        // SAFETY: the canary lies in this slot's read-write part, which no
        // coroutine uses (the stack was never given to one).
        unsafe { (stack.canary_at as *mut u64).add(3).write_volatile(0xdead) };
        assert!(!stack.canary_intact());
    }

    #[test]
    fn more_stacks_than_guard_pages_and_chunks() {
        let pool = StackPool::new(MIN_STACK);
        let stacks: Vec<_> = (0..CHUNK_SLOTS * 2 + 1)
            .map(|_| pool.take().unwrap())
            .collect();
        assert!(stacks.iter().all(PooledStack::canary_intact));
        assert_eq!(pool.inner.borrow().chunks.len(), 3);
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
