//! No heap allocation per small message on the lane: once a stream's grants
//! are taken, sending and receiving 8-byte messages through a bounded or an
//! unbounded port allocates nothing (counted by a global allocator that
//! counts this thread's allocations).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mkipc_kernel::{Capacity, Ipc, Kernel, Message};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local
// `Cell` with a const initialiser, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn small_messages_through_the_lane_allocate_nothing() {
    for capacity in [Capacity::Bounded(1024), Capacity::Unbounded] {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(capacity).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        // Warm up: grants taken, the lane made.
        for i in 0..4 {
            tx.send(to_rx, Message::from_u64(1, i)).unwrap();
            rx.receive(port).unwrap();
        }
        let before = allocations();
        for round in 0..10u64 {
            for i in 0..100 {
                tx.send(to_rx, Message::from_u64(1, round * 100 + i))
                    .unwrap();
            }
            for i in 0..100 {
                let m = rx.receive(port).unwrap();
                assert_eq!(m.as_u64(), Some(round * 100 + i));
            }
        }
        assert_eq!(
            allocations() - before,
            0,
            "{capacity}: allocations per 1,000 messages"
        );
    }
}
