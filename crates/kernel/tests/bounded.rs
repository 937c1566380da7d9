//! Bounded capacity on real threads: a send completes at once while fewer
//! than `n` messages are queued and blocks otherwise; blocked senders are
//! admitted in the order they blocked.
//!
//! Sleeps never decide an outcome here: a test waits (with a bounded deadline)
//! until `port_status` shows the threads it expects to be blocked, then acts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::*;

mod common;
use common::*;

#[test]
fn smoke() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(4));
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..2000 {
                tx.send(to_rx, Message::from_u64(1, i)).unwrap();
            }
        });
        for i in 0..2000 {
            assert_eq!(rx.receive(port).unwrap().as_u64(), Some(i));
        }
    });
    let st = rx.port_status(port).unwrap();
    assert!(st.max_queue_len <= 4, "{st:?}");
    assert_eq!((st.messages_sent, st.seqno), (2000, 2000));
    assert_clean(&k);
}

/// `n` sends complete without a receiver; the next one blocks until a slot frees.
#[test]
fn sender_blocks_only_when_full() {
    const N: usize = 3;
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(N));
    for i in 0..N {
        tx.send(to_rx, Message::from_u64(1, i as u64)).unwrap();
    }
    assert_eq!(rx.port_status(port).unwrap().queue_len, N);
    let returned = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            tx.send(to_rx, Message::from_u64(1, N as u64)).unwrap();
            returned.store(true, Ordering::SeqCst);
        });
        wait_until("the extra sender is blocked", || {
            rx.port_status(port).unwrap().blocked_senders == 1
        });
        thread::sleep(Duration::from_millis(20));
        assert!(!returned.load(Ordering::SeqCst), "sent into a full queue");
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(0));
        wait_until("the blocked sender is admitted", || {
            returned.load(Ordering::SeqCst)
        });
        let st = rx.port_status(port).unwrap();
        assert_eq!((st.queue_len, st.blocked_senders), (N, 0));
    });
    for i in 1..=N {
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(i as u64));
    }
    assert_clean(&k);
}

/// Senders blocked on a full queue complete in the order they blocked: after
/// the k-th receive exactly senders 0..k have returned.
#[test]
fn blocked_senders_complete_in_blocking_order() {
    const N: usize = 6;
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(1));
    tx.send(to_rx, Message::from_u64(1, 100)).unwrap();
    let done: Vec<AtomicBool> = (0..N).map(|_| AtomicBool::new(false)).collect();
    thread::scope(|s| {
        for i in 0..N {
            let (tx, done) = (&tx, &done);
            s.spawn(move || {
                tx.send(to_rx, Message::from_u64(1, i as u64)).unwrap();
                done[i].store(true, Ordering::SeqCst);
            });
            wait_until("one more sender is blocked", || {
                rx.port_status(port).unwrap().blocked_senders == i + 1
            });
        }
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(100));
        for i in 0..N {
            wait_until("the next sender in line completes", || {
                done[i].load(Ordering::SeqCst)
            });
            for (j, d) in done.iter().enumerate().skip(i + 1) {
                assert!(!d.load(Ordering::SeqCst), "sender {j} overtook sender {i}");
            }
            assert_eq!(rx.port_status(port).unwrap().blocked_senders, N - i - 1);
            assert_eq!(rx.receive(port).unwrap().as_u64(), Some(i as u64));
        }
    });
    assert_clean(&k);
}

/// Several concurrent senders: each sender's messages arrive in its order,
/// and every message arrives exactly once.
#[test]
fn fifo_per_sender_under_contention() {
    fifo_per_sender(Capacity::Bounded(8), 4, 2000);
}

/// `try_send` and `send_timeout` on a full queue fail with the message back
/// and leave nothing behind.
#[test]
fn full_queue_try_and_timeout_return_the_message() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(1));
    tx.send(to_rx, Message::from_u64(1, 1)).unwrap();
    let err = tx.try_send(to_rx, Message::from_u64(1, 2)).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Full);
    assert_eq!(err.into_message().as_u64(), Some(2));
    let t0 = Instant::now();
    let err = tx
        .send_timeout(
            to_rx,
            Message::new(1, vec![7u8; 1000]),
            Duration::from_millis(30),
        )
        .unwrap_err();
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(err.kind(), SendErrorKind::TimedOut);
    assert_eq!(&err.into_message().body[..], &[7u8; 1000][..]);
    let st = rx.port_status(port).unwrap();
    assert_eq!(
        (st.queue_len, st.blocked_senders, st.messages_sent),
        (1, 0, 1)
    );
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(1));
    assert_clean(&k);
}

/// A sender that times out in the middle of the line leaves; the others keep their order.
#[test]
fn timed_out_sender_leaves_the_line_in_order() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(1));
    tx.send(to_rx, Message::from_u64(1, 100)).unwrap();
    thread::scope(|s| {
        let first = s.spawn(|| tx.send(to_rx, Message::from_u64(1, 0)));
        wait_until("sender 0 is blocked", || {
            rx.port_status(port).unwrap().blocked_senders == 1
        });
        let middle =
            s.spawn(|| tx.send_timeout(to_rx, Message::from_u64(1, 1), Duration::from_millis(50)));
        wait_until("sender 1 is blocked", || {
            rx.port_status(port).unwrap().blocked_senders == 2
        });
        let last = s.spawn(|| tx.send(to_rx, Message::from_u64(1, 2)));
        wait_until("sender 2 is blocked", || {
            rx.port_status(port).unwrap().blocked_senders == 3
        });
        let err = middle.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), SendErrorKind::TimedOut);
        assert_eq!(err.into_message().as_u64(), Some(1));
        assert_eq!(rx.port_status(port).unwrap().blocked_senders, 2);
        let got: Vec<_> = (0..3)
            .map(|_| rx.receive(port).unwrap().as_u64().unwrap())
            .collect();
        assert_eq!(got, [100, 0, 2]);
        first.join().unwrap().unwrap();
        last.join().unwrap().unwrap();
    });
    assert_clean(&k);
}

/// Growing the capacity admits blocked senders at once, in order.
#[test]
fn growing_capacity_wakes_blocked_senders() {
    const N: usize = 3;
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(1));
    tx.send(to_rx, Message::from_u64(1, 100)).unwrap();
    thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let h = s.spawn({
                    let tx = &tx;
                    move || tx.send(to_rx, Message::from_u64(1, i as u64))
                });
                wait_until("one more sender is blocked", || {
                    rx.port_status(port).unwrap().blocked_senders == i + 1
                });
                h
            })
            .collect();
        rx.set_capacity(port, Capacity::Bounded(1 + N)).unwrap();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let st = rx.port_status(port).unwrap();
        assert_eq!((st.queue_len, st.blocked_senders), (1 + N, 0));
    });
    let got: Vec<_> = (0..1 + N)
        .map(|_| rx.try_receive(port).unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(got, [100, 0, 1, 2]);
    assert_clean(&k);
}

/// As in Mach, a message sent through a send-once right bypasses the limit.
#[test]
fn send_once_bypasses_a_full_queue() {
    let k = Kernel::new();
    let rx = k.spawn_task();
    let port = rx.port_allocate(Capacity::Bounded(1)).unwrap();
    rx.send(port, Message::from_u64(1, 1)).unwrap();
    let once = rx.make_right(port, Disposition::MakeSendOnce).unwrap();
    rx.try_send(once, Message::from_u64(2, 2)).unwrap();
    assert_eq!(rx.port_status(port).unwrap().queue_len, 2);
    assert!(rx.rights(once).is_err(), "the send-once right was used up");
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(1));
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(2));
    assert_clean(&k);
}

/// `DropOldest` turns a full queue into a ring buffer; `DropNewest` discards the newcomer.
#[test]
fn drop_policies_on_a_full_queue() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(2));
    for i in 0..5 {
        tx.send_with(to_rx, Message::from_u64(1, i), OnFull::DropOldest)
            .unwrap();
    }
    assert_eq!(
        tx.send_with(to_rx, Message::from_u64(1, 9), OnFull::DropNewest)
            .unwrap(),
        Sent::Dropped
    );
    let st = rx.port_status(port).unwrap();
    assert_eq!((st.queue_len, st.messages_dropped), (2, 4));
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(3));
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(4));
    assert_clean(&k);
}

/// `DropOldest` never displaces what came through a send-once right: a
/// port-destroyed notification (whose receive right would die with it) and a
/// reply stay queued; an ordinary message behind them is displaced instead,
/// and with nothing else queued the newcomer is dropped.
#[test]
fn drop_oldest_spares_notifications_and_replies() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(2));
    // 1. A port-destroyed notification (carrying the receive right of `kept`).
    let kept = rx.port_allocate(Capacity::Unbounded).unwrap();
    rx.request_notification(kept, NotifyKind::PortDestroyed, port)
        .unwrap();
    rx.destroy(kept).unwrap();
    // 2. A reply through a send-once right.
    let once = rx.make_right(port, Disposition::MakeSendOnce).unwrap();
    rx.send(once, Message::new(2, b"reply")).unwrap();
    assert_eq!(rx.port_status(port).unwrap().queue_len, 2);
    assert_eq!(k.stats().ports, 2);
    // Full of send-once messages: the newcomer is the one dropped.
    assert_eq!(
        tx.send_with(to_rx, Message::new(3, b"a"), OnFull::DropOldest)
            .unwrap(),
        Sent::Dropped
    );
    // Capacity 3: one ordinary message fits, the next displaces it (not the
    // notification or the reply ahead of it).
    rx.set_capacity(port, Capacity::Bounded(3)).unwrap();
    tx.send(to_rx, Message::new(4, b"b")).unwrap();
    assert_eq!(
        tx.send_with(to_rx, Message::new(5, b"c"), OnFull::DropOldest)
            .unwrap(),
        Sent::Displaced
    );
    let st = rx.port_status(port).unwrap();
    assert_eq!((st.queue_len, st.messages_dropped), (3, 2));
    assert_eq!(
        k.stats().ports,
        2,
        "the receive right in the notification survives"
    );
    let first = rx.receive(port).unwrap();
    let Some(Notification::PortDestroyed(back)) = first.notification() else {
        panic!("expected the port-destroyed notification, got {first:?}");
    };
    assert!(rx.rights(back).unwrap().receive);
    assert_eq!(rx.receive(port).unwrap().id, 2);
    assert_eq!(rx.receive(port).unwrap().id, 5);
    rx.destroy(back).unwrap();
    assert_clean(&k);
}

/// Many senders, many receivers through one bounded mailbox: every message
/// reaches exactly one receiver.
#[test]
fn mailbox_many_senders_many_receivers_no_loss_no_duplication() {
    let config = MailboxConfig::new(Capacity::Bounded(4));
    let (k, owner, mb) = mailbox_each_message_once(config, 4, 3, 1000, StopReceivers::StopMessages);
    let st = owner.port_status(mb).unwrap();
    assert!(st.max_queue_len <= 4, "{st:?}");
    assert_clean(&k);
}

/// The receiving task exits while senders are blocked on its full port: they
/// all wake with `DestinationDead` and their own messages; the queued ones
/// are destroyed, and nothing leaks.
#[test]
fn receiver_exit_wakes_blocked_senders_with_their_messages() {
    const N: usize = 5;
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(2));
    // The queued messages carry send rights to a port of tx's: destroying them
    // must release those rights.
    let carried = tx.port_allocate(Capacity::Unbounded).unwrap();
    for _ in 0..2 {
        tx.send(
            to_rx,
            Message::new(1, b"queued").with_right(carried, Disposition::MakeSend),
        )
        .unwrap();
    }
    assert_eq!(tx.port_status(carried).unwrap().send_rights, 2);
    thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let tx = &tx;
                s.spawn(move || {
                    let err = tx.send(to_rx, Message::from_u64(1, i as u64)).unwrap_err();
                    (i, err.kind(), err.into_message().as_u64())
                })
            })
            .collect();
        wait_until("all senders are blocked", || {
            rx.port_status(port).unwrap().blocked_senders == N
        });
        drop(rx);
        for h in handles {
            let (i, kind, body) = h.join().unwrap();
            assert_eq!(kind, SendErrorKind::DestinationDead);
            assert_eq!(body, Some(i as u64));
        }
    });
    assert_eq!(tx.port_status(carried).unwrap().send_rights, 0);
    assert_eq!(tx.rights(to_rx).unwrap().dead, 1);
    assert_clean(&k);
    drop(tx);
    assert_eq!(k.stats().ports, 0, "{:?}", k.stats());
}

/// Closing a full port fails its parked senders with `Closed` (each gets its
/// message back) and keeps what is queued for the receiver; closing an empty
/// port fails its blocked receiver with `Closed`.
#[test]
fn close_fails_parked_senders_and_blocked_receivers() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(1));
    tx.send(to_rx, Message::from_u64(1, 1)).unwrap();
    thread::scope(|s| {
        let parked = s.spawn(|| tx.send(to_rx, Message::from_u64(1, 2)));
        wait_until("the sender parks", || {
            rx.port_status(port).unwrap().blocked_senders == 1
        });
        rx.close(port).unwrap();
        let err = parked.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), SendErrorKind::Closed);
        assert_eq!(err.into_message().as_u64(), Some(2));
    });
    assert_eq!(rx.receive(port).unwrap().as_u64(), Some(1));
    assert_eq!(rx.try_receive(port), Err(ReceiveError::Closed));
    let other = rx.port_allocate(Capacity::Unbounded).unwrap();
    thread::scope(|s| {
        let waiting = s.spawn(|| rx.receive(other));
        wait_until("the receiver blocks", || {
            rx.port_status(other).unwrap().blocked_receivers == 1
        });
        rx.close(other).unwrap();
        assert_eq!(waiting.join().unwrap(), Err(ReceiveError::Closed));
    });
    assert_clean(&k);
}

/// A message whose sender waited for room arrives when it moves into the
/// queue, not when the sender began to wait: a select then takes first a
/// message sent to another port in between (`DESIGN.md`, the kernel's
/// order rules). So a send that blocked is, to every receiver, the same as
/// that send made when the room appeared (the stateful checker relies on
/// it: it retries a blocked send once there is room).
#[test]
fn a_message_that_waited_for_room_arrives_when_it_moves_in() {
    let k = Kernel::new();
    let (rx, a, tx, to_a) = pair(&k, Capacity::Bounded(1));
    let b = rx.port_allocate(Capacity::Bounded(4)).unwrap();
    rx.register("rx-b", b).unwrap();
    let to_b = tx.look_up("rx-b").unwrap();
    tx.send(to_a, Message::from_u64(1, 0)).unwrap();
    thread::scope(|s| {
        s.spawn(|| tx.send(to_a, Message::from_u64(1, 1)).unwrap());
        wait_until("the second sender waits for room", || {
            rx.port_status(a).unwrap().blocked_senders == 1
        });
        tx.send(to_b, Message::from_u64(1, 2)).unwrap();
        assert_eq!(rx.receive(a).unwrap().as_u64(), Some(0));
        wait_until("the waiting message moved in", || {
            rx.port_status(a).unwrap().queue_len == 1
        });
    });
    let first = rx.select(&[a, b]).unwrap();
    let second = rx.select(&[a, b]).unwrap();
    assert_eq!((first.as_u64(), second.as_u64()), (Some(2), Some(1)));
    assert_clean(&k);
}
