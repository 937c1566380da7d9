//! Waits registered by id ([`Waker::Id`]): the kernel reports the ids of
//! completed waits, in completion order, through [`Kernel::take_woken`],
//! whether one wait completed since the last take (the lock-free slot) or
//! several (the list behind the lock), however takes and completions
//! interleave. The reference is the order the completions happen in.

use mkipc_kernel::runtime::{Begin, Source, WaitToken, Waker};
use mkipc_kernel::{Capacity, Ipc, Kernel, Message, PortName, Task};
use proptest::prelude::*;

/// What the test does next.
#[derive(Clone, Debug)]
enum Step {
    /// Send one message to port `i`: completes its oldest waiting receive.
    Send(usize),
    /// Destroy port `i`: fails every receive waiting on it, in one operation.
    Destroy(usize),
    /// Take the woken ids.
    Take,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize).prop_map(Step::Send),
        1 => (0..4usize).prop_map(Step::Destroy),
        3 => Just(Step::Take),
    ]
}

proptest! {
    #[test]
    fn woken_ids_come_in_completion_order(
        waiters in proptest::collection::vec(0..4usize, 1..12),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let kernel = Kernel::new();
        // Four ports, each held by its own task; waiter `w` (id `w`) is a
        // receive by that task on port `waiters[w]`.
        let mut ports: Vec<(Task, PortName)> = Vec::new();
        for _ in 0..4 {
            let task = kernel.spawn_task();
            let port = task.port_allocate(Capacity::Unbounded).unwrap();
            ports.push((task, port));
        }
        // Waiting receives, oldest first per port: (id, port index, token).
        let mut waiting: Vec<Vec<(u64, WaitToken)>> = vec![Vec::new(); 4];
        for (w, &i) in waiters.iter().enumerate() {
            let (task, port) = &ports[i];
            let id = w as u64;
            match kernel.receive_begin(task.pid(), Source::Name(*port), true, &|| Waker::Id(id)) {
                Begin::Blocked(token) => waiting[i].push((id, token)),
                Begin::Done(r) => prop_assert!(false, "nothing was sent yet: {r:?}"),
            }
        }
        prop_assert!(!kernel.has_woken());
        let mut expected = Vec::new();
        let mut got = Vec::new();
        let mut alive = [true; 4];
        for s in steps {
            match s {
                Step::Send(i) if alive[i] => {
                    let (task, port) = &ports[i];
                    let to = task.make_send(*port).unwrap();
                    task.send(to, Message::from_u64(1, 1)).unwrap();
                    if !waiting[i].is_empty() {
                        expected.push(waiting[i].remove(0).0);
                    }
                }
                Step::Destroy(i) if alive[i] => {
                    let (task, port) = &ports[i];
                    task.destroy(*port).unwrap();
                    alive[i] = false;
                    expected.extend(waiting[i].drain(..).map(|(id, _)| id));
                }
                Step::Send(_) | Step::Destroy(_) => {}
                Step::Take => {
                    prop_assert_eq!(kernel.has_woken(), got.len() < expected.len());
                    kernel.take_woken(&mut got);
                    prop_assert_eq!(&got, &expected);
                    prop_assert!(!kernel.has_woken());
                }
            }
        }
        kernel.take_woken(&mut got);
        prop_assert_eq!(&got, &expected);
        prop_assert!(!kernel.has_woken());
    }
}

/// A wait woken by a plain id calls nothing, and a [`Waker::Call`] one
/// still calls its handle: both kinds in one kernel.
#[test]
fn id_and_call_wakers_share_a_kernel() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Count(AtomicUsize);
    impl mkipc_kernel::runtime::Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let kernel = Kernel::new();
    let (task_a, task_b) = (kernel.spawn_task(), kernel.spawn_task());
    let (a, b) = (task_a.pid(), task_b.pid());
    let pa = task_a.port_allocate(Capacity::Bounded(1)).unwrap();
    let pb = task_b.port_allocate(Capacity::Bounded(1)).unwrap();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let call: Waker = count.clone().into();
    let Begin::Blocked(ta) = kernel.receive_begin(a, Source::Name(pa), true, &|| Waker::Id(3))
    else {
        panic!("a waits")
    };
    let Begin::Blocked(tb) = kernel.receive_begin(b, Source::Name(pb), true, &|| call.clone())
    else {
        panic!("b waits")
    };
    let to_b = task_b.make_send(pb).unwrap();
    task_b.send(to_b, Message::from_u64(1, 2)).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(!kernel.has_woken(), "a call waker lists no id");
    let to_a = task_a.make_send(pa).unwrap();
    task_a.send(to_a, Message::from_u64(1, 1)).unwrap();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "an id waker calls nothing"
    );
    let mut woken = Vec::new();
    kernel.take_woken(&mut woken);
    assert_eq!(woken, [3]);
    assert!(kernel.wait_take(a, ta).is_some());
    assert!(kernel.wait_take(b, tb).is_some());
}
