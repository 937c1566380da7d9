//! Model checks of the unbounded lane (`mkipc_kernel::lane::ListLane`, the
//! linked blocks an unbounded port's rights-free messages take outside the
//! kernel lock) with loom. Under loom a block has two slots, so every model
//! below crosses block boundaries: the link of a new block, the walk that
//! frees or keeps an old one, and the wait at a block's extra position.
//! The kernel-level models in `loom.rs` that use unbounded ports run on
//! this lane too.
//!
//! Compiled only under `--cfg loom`; run with `.ci/loom` (which runs this
//! file beside `loom.rs`). `LOOM_MAX_PREEMPTIONS` overrides the bound (2).
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::Mutex;
use loom::thread;
use mkipc_kernel::lane::{ListLane, PopError, PushError};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// Pushes, yielding while the lane is at its limit.
fn push_spin<T>(lane: &ListLane<T>, gen: u32, mut v: T) {
    loop {
        match lane.push(gen, v) {
            Ok(()) => return,
            Err(PushError::Full(back)) => {
                v = back;
                thread::yield_now();
            }
            Err(PushError::Fenced(_)) => panic!("fenced"),
        }
    }
}

/// Pops one value and its number, yielding while the lane is empty.
fn pop_spin<T>(lane: &ListLane<T>, gen: u32) -> (T, u64) {
    loop {
        match lane.pop(gen) {
            Ok(got) => return got,
            Err(PopError::Empty) => thread::yield_now(),
            Err(PopError::Fenced) => panic!("fenced"),
        }
    }
}

/// One producer, one consumer, three values over two blocks: each arrives
/// once, in order, numbered by its place in the stream.
#[test]
fn list_spsc_order_across_blocks() {
    model(|| {
        let lane = Arc::new(ListLane::<u64>::new(64));
        lane.enable(0, 0);
        let producer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || {
                for v in 0..3 {
                    push_spin(&lane, 0, v);
                }
            })
        };
        let got: Vec<(u64, u64)> = (0..3).map(|_| pop_spin(&lane, 0)).collect();
        assert_eq!(got, (0..3).map(|v| (v, v)).collect::<Vec<_>>());
        producer.join().unwrap();
        assert_eq!(lane.pop(0).unwrap_err(), PopError::Empty);
        assert_eq!(lane.positions(), (3, 3));
    });
}

/// A consumer reads out the first block (and releases it as a spare) while
/// a producer links a third block (taking that spare, or a new block): the
/// values come out once each, in order, whichever block the link got.
#[test]
fn list_a_released_block_races_a_link() {
    model(|| {
        let lane = Arc::new(ListLane::<u64>::new(64));
        lane.reopen(0, 0, 0, [0, 1, 2]).unwrap();
        let consumer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || [lane.pop(0).ok(), lane.pop(0).ok()])
        };
        lane.push(0, 3).unwrap();
        lane.push(0, 4).unwrap();
        let mut got: Vec<(u64, u64)> = consumer.join().unwrap().into_iter().flatten().collect();
        got.extend(std::iter::from_fn(|| lane.pop(0).ok()));
        assert_eq!(got, (0..5).map(|v| (v, v)).collect::<Vec<_>>());
    });
}

/// Two producers race for a block's last slot: one links the next block,
/// the other waits at the extra position and lands in the new block. Both
/// values arrive, after the one queued before.
#[test]
fn list_two_producers_race_a_link() {
    model(|| {
        let lane = Arc::new(ListLane::<u32>::new(64));
        lane.reopen(0, 0, 0, [1]).unwrap();
        let other = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.push(0, 20).unwrap())
        };
        lane.push(0, 10).unwrap();
        other.join().unwrap();
        let got: Vec<u32> = std::iter::from_fn(|| lane.pop(0).ok().map(|(v, _)| v)).collect();
        assert!(got == [1, 10, 20] || got == [1, 20, 10], "{got:?}");
    });
}

/// Two consumers, one try each, race across a block boundary while the
/// first block is released (the reader of its last slot walks it, and may
/// hand the walk to the other reader): every value is taken exactly once,
/// by a consumer or by the drain after, and the numbers match the values.
#[test]
fn list_two_consumers_race_a_block_move() {
    model(|| {
        let lane = Arc::new(ListLane::<u32>::new(64));
        lane.reopen(0, 0, 0, [0, 1, 2]).unwrap();
        let other = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.pop(0).ok())
        };
        let mine = lane.pop(0).ok();
        let theirs = other.join().unwrap();
        lane.fence();
        let mut all: Vec<(u32, u64)> = mine.into_iter().chain(theirs).collect();
        lane.drain(|v, n| all.push((v, n)));
        all.sort_unstable();
        assert_eq!(all, [(0, 0), (1, 1), (2, 2)]);
    });
}

/// A switch to the locked path while a push that links a block is in
/// flight: the kernel (a mutex here) fences and drains; a push that lost
/// the race fails and appends under the lock. The locked queue ends in
/// push order, nothing lost, nothing twice.
#[test]
fn list_fence_keeps_fifo_across_the_switch() {
    model(|| {
        let lane = Arc::new(ListLane::<u32>::new(4));
        lane.reopen(0, 0, 0, [0]).unwrap();
        let locked = Arc::new(Mutex::new(Vec::new()));
        let producer = {
            let (lane, locked) = (Arc::clone(&lane), Arc::clone(&locked));
            thread::spawn(move || {
                for v in [1, 2] {
                    if let Err(e) = lane.push(0, v) {
                        assert!(matches!(e, PushError::Fenced(_)));
                        locked.lock().unwrap().push(e.into_inner());
                    }
                }
            })
        };
        {
            let mut q = locked.lock().unwrap();
            lane.fence();
            lane.drain(|v, _| q.push(v));
        }
        producer.join().unwrap();
        assert_eq!(*locked.lock().unwrap(), [0, 1, 2]);
        assert_eq!(lane.pop(0).unwrap_err(), PopError::Fenced);
    });
}

/// A consumer taking a block's last slot (so it moves the head to the next
/// block) races the fence and drain: the drain waits for the move and takes
/// the rest; each value is taken once, in order.
#[test]
fn list_drain_waits_for_a_head_moving_blocks() {
    model(|| {
        let lane = Arc::new(ListLane::<u32>::new(4));
        lane.reopen(0, 0, 0, [0, 1, 2]).unwrap();
        let consumer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || [lane.pop(0).ok(), lane.pop(0).ok()])
        };
        lane.fence();
        let mut drained = Vec::new();
        lane.drain(|v, n| drained.push((v, n)));
        let mut all: Vec<(u32, u64)> = consumer.join().unwrap().into_iter().flatten().collect();
        all.extend(drained);
        assert_eq!(all, [(0, 0), (1, 1), (2, 2)]);
    });
}

/// A grant of an older generation can never complete once the lane is
/// open again under a new one.
#[test]
fn list_stale_generation_never_lands() {
    model(|| {
        let lane = Arc::new(ListLane::<u32>::new(4));
        lane.reopen(0, 0, 0, [0]).unwrap();
        let stale = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.push(0, 7).is_ok())
        };
        lane.fence();
        let mut drained = Vec::new();
        lane.drain(|v, _| drained.push(v));
        lane.enable(1, 0);
        let pushed = stale.join().unwrap();
        assert_eq!(
            lane.pop(1).unwrap_err(),
            PopError::Empty,
            "a stale push landed"
        );
        assert_eq!(drained == [0, 7], pushed);
    });
}

/// Pops racing a fence, a drain and a re-open with a new numbering: each
/// pop's number is the one its value had when it was taken. Value `v` is
/// numbered `99 + v` throughout.
#[test]
fn list_pop_numbers_survive_a_reopen() {
    model(|| {
        let lane = Arc::new(ListLane::<u64>::new(4));
        lane.reopen(0, 0, 100, [1, 2]).unwrap();
        let consumer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || [lane.pop(0).ok(), lane.pop(0).ok()])
        };
        lane.fence();
        let taken = lane.positions().0;
        let mut drained = Vec::new();
        lane.drain(|v, _| drained.push(v));
        let next = drained.last().map_or(3, |v| v + 1);
        drained.push(next);
        lane.reopen(0, 0, 100 + taken, drained).unwrap();
        let mut got: Vec<(u64, u64)> = consumer.join().unwrap().into_iter().flatten().collect();
        while let Ok(p) = lane.pop(0) {
            got.push(p);
        }
        for &(v, n) in &got {
            assert_eq!(n, 99 + v, "{got:?}");
        }
        let values: Vec<u64> = got.iter().map(|p| p.0).collect();
        assert_eq!(values, (1..=next).collect::<Vec<_>>());
    });
}

/// An empty lane re-opened with a refilled value and a new numbering (the
/// head word is the same, so a pop that read it before the fence can
/// reserve): the pop gets the new number.
#[test]
fn list_pop_of_a_refill_gets_the_new_number() {
    model(|| {
        let lane = Arc::new(ListLane::<u64>::new(4));
        lane.reopen(0, 0, 0, []).unwrap();
        let consumer = {
            let lane = Arc::clone(&lane);
            thread::spawn(move || lane.pop(0).ok())
        };
        lane.fence();
        lane.drain(|_, _| unreachable!("empty"));
        lane.reopen(0, 0, 50, [7]).unwrap();
        let got = consumer.join().unwrap().or_else(|| lane.pop(0).ok());
        assert_eq!(got, Some((7, 50)));
    });
}
