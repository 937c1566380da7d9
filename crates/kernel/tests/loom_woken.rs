//! Model checks of the woken ids ([`Waker::Id`], `Kernel::take_woken`)
//! with loom: a thread completing waits while another takes the woken ids
//! without the lock, in every interleaving (up to a bounded number of
//! preemptions). No id is lost or taken twice, and they come out in the
//! order the waits completed.
//!
//! Compiled only under `--cfg loom`, like `tests/loom.rs`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p mkipc-kernel --test loom_woken
//! ```
#![cfg(loom)]

use loom::thread;
use mkipc_kernel::runtime::{Begin, Source, Waker};
use mkipc_kernel::{Capacity, Ipc, Kernel, Message};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// Two waits, completed one after the other by one thread, taken by
/// another as they come: `[1, 2]`, whatever the interleaving.
#[test]
fn ids_taken_while_waits_complete_come_once_in_order() {
    model(|| {
        let kernel = Kernel::new();
        let (a, b) = (kernel.spawn_task(), kernel.spawn_task());
        let pa = a.port_allocate(Capacity::Unbounded).unwrap();
        let pb = b.port_allocate(Capacity::Unbounded).unwrap();
        for (task, port, id) in [(&a, pa, 1), (&b, pb, 2)] {
            let begin =
                kernel.receive_begin(task.pid(), Source::Name(port), true, &|| Waker::Id(id));
            assert!(matches!(begin, Begin::Blocked(_)));
        }
        let (to_a, to_b) = (a.make_send(pa).unwrap(), b.make_send(pb).unwrap());
        let sender = thread::spawn(move || {
            a.send(to_a, Message::from_u64(1, 1)).unwrap();
            b.send(to_b, Message::from_u64(1, 2)).unwrap();
            (a, b)
        });
        let mut woken = Vec::new();
        while woken.len() < 2 {
            kernel.take_woken(&mut woken);
            thread::yield_now();
        }
        let _tasks = sender.join().unwrap();
        kernel.take_woken(&mut woken);
        assert_eq!(woken, [1, 2]);
        assert!(!kernel.has_woken());
    });
}

/// Two takers race for the woken ids of two completed waits (the first
/// in the lock-free slot, the second in the list behind the lock): each id
/// goes to exactly one of them, and one taker never sees them out of order.
#[test]
fn two_takers_share_the_ids_without_duplicates() {
    model(|| {
        let kernel = Kernel::new();
        let (a, b) = (kernel.spawn_task(), kernel.spawn_task());
        let pa = a.port_allocate(Capacity::Unbounded).unwrap();
        let pb = b.port_allocate(Capacity::Unbounded).unwrap();
        for (task, port, id) in [(&a, pa, 1), (&b, pb, 2)] {
            let begin =
                kernel.receive_begin(task.pid(), Source::Name(port), true, &|| Waker::Id(id));
            assert!(matches!(begin, Begin::Blocked(_)));
        }
        let (to_a, to_b) = (a.make_send(pa).unwrap(), b.make_send(pb).unwrap());
        a.send(to_a, Message::from_u64(1, 1)).unwrap();
        b.send(to_b, Message::from_u64(1, 2)).unwrap();
        let k2 = kernel.clone();
        let taker = thread::spawn(move || {
            let mut got = Vec::new();
            k2.take_woken(&mut got);
            got
        });
        let mut mine = Vec::new();
        kernel.take_woken(&mut mine);
        let theirs = taker.join().unwrap();
        for got in [&mine, &theirs] {
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        }
        let mut all: Vec<u64> = mine.iter().chain(&theirs).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2], "mine {mine:?}, theirs {theirs:?}");
        assert!(!kernel.has_woken());
    });
}
