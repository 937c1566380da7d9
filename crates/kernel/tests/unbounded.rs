//! Unbounded capacity on real threads: a sender never waits; a memory ceiling
//! per queue turns runaway growth into an error that returns the message.
//!
//! Sleeps never decide an outcome here: a test waits (with a bounded deadline)
//! until `port_status` shows the threads it expects to be blocked, then acts.

use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::introspect::{queue_cost, KernelStats};
use mkipc_kernel::ipc::Owner;
use mkipc_kernel::*;

mod common;
use common::*;

#[test]
fn smoke() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..5000 {
                tx.send(to_rx, Message::from_u64(1, i)).unwrap();
            }
        });
        for i in 0..5000 {
            assert_eq!(rx.receive(port).unwrap().as_u64(), Some(i));
        }
    });
    assert_clean(&k);
}

/// With nobody receiving, every send (even `try_send`) completes at once.
#[test]
fn sender_never_blocks() {
    const N: u64 = 10_000;
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                tx.try_send(to_rx, Message::from_u64(1, i)).unwrap();
            }
        })
        .join()
        .unwrap();
    });
    let st = rx.port_status(port).unwrap();
    assert_eq!(
        (st.queue_len, st.max_queue_len, st.blocked_senders),
        (N as usize, N as usize, 0)
    );
    assert_eq!(k.stats().messages, N as usize);
    for i in 0..N {
        assert_eq!(rx.try_receive(port).unwrap().as_u64(), Some(i));
    }
    assert_clean(&k);
}

/// The memory ceiling: a send that would cross it fails with the message
/// back; once the receiver drains some, sends succeed again. (The ceiling
/// counts what each message costs: four 1 KiB messages fit, five do not.)
#[test]
fn memory_ceiling_is_an_error_not_a_wait() {
    let k = Kernel::with_config(KernelConfig {
        queue_memory_limit: 4 * queue_cost(1024, 0, false) + 100,
        ..KernelConfig::default()
    });
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    for i in 0..4u8 {
        tx.send(to_rx, Message::new(1, vec![i; 1024])).unwrap();
    }
    let t0 = Instant::now();
    let err = tx
        .send(to_rx, Message::new(1, vec![9u8; 1024]))
        .unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "a blocking send must not wait"
    );
    assert_eq!(err.kind(), SendErrorKind::MemoryLimit);
    assert_eq!(&err.into_message().body[..], &[9u8; 1024][..]);
    assert_eq!(rx.port_status(port).unwrap().queue_len, 4);
    assert_eq!(&rx.receive(port).unwrap().body[..], &[0u8; 1024][..]);
    tx.send(to_rx, Message::new(1, vec![4u8; 1024])).unwrap();
    for i in 1..5u8 {
        assert_eq!(&rx.receive(port).unwrap().body[..], &[i; 1024][..]);
    }
    assert_clean(&k);
}

/// Several threads of the receiving task wait; each message wakes exactly one.
#[test]
fn each_message_wakes_exactly_one_blocked_receiver() {
    const M: usize = 4;
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    thread::scope(|s| {
        let handles: Vec<_> = (0..M)
            .map(|_| s.spawn(|| rx.receive(port).unwrap().as_u64().unwrap()))
            .collect();
        wait_until("all receivers are blocked", || {
            rx.port_status(port).unwrap().blocked_receivers == M
        });
        for i in 0..M as u64 {
            tx.send(to_rx, Message::from_u64(1, i)).unwrap();
            wait_until("one receiver fewer is blocked", || {
                rx.port_status(port).unwrap().blocked_receivers == M - 1 - i as usize
            });
        }
        let mut got: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
    });
    assert_eq!(rx.port_status(port).unwrap().queue_len, 0);
    assert_clean(&k);
}

/// Several concurrent senders: each sender's messages arrive in its order.
#[test]
fn fifo_per_sender_under_contention() {
    fifo_per_sender(Capacity::Unbounded, 4, 3000);
}

/// Many senders, many receivers through one unbounded system mailbox: every
/// message reaches exactly one receiver.
#[test]
fn system_mailbox_many_senders_many_receivers_no_loss_no_duplication() {
    let config = MailboxConfig::new(Capacity::Unbounded).owner(Owner::System);
    let (k, _admin, _mb) =
        mailbox_each_message_once(config, 3, 4, 1500, StopReceivers::DestroyMailbox);
    assert_eq!(k.stats().mailboxes, 0);
    assert_clean(&k);
}

/// Destroying a port with queued messages destroys them and the rights they
/// carry: the carried port sees its send rights go back to zero.
#[test]
fn destroying_a_port_releases_rights_in_queued_messages() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    let carried = tx.port_allocate(Capacity::Unbounded).unwrap();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..50 {
                    tx.send(
                        to_rx,
                        Message::new(1, b"r").with_right(carried, Disposition::MakeSend),
                    )
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(tx.port_status(carried).unwrap().send_rights, 100);
    assert_eq!(rx.port_status(port).unwrap().queue_len, 100);
    rx.destroy(port).unwrap();
    assert_eq!(tx.port_status(carried).unwrap().send_rights, 0);
    assert_eq!(
        tx.send(to_rx, Message::new(1, b"late")).unwrap_err().kind(),
        SendErrorKind::DestinationDead
    );
    assert_clean(&k);
    drop((rx, tx));
    assert_eq!(k.stats(), KernelStats::default());
}

/// Regression: the ceiling counted body bytes only, so a loop of empty
/// messages grew a queue without limit (7.6 GB, then an allocator abort).
/// Every message costs at least its entry.
#[test]
fn empty_messages_count_against_the_memory_ceiling() {
    const LIMIT: usize = 1 << 20;
    let k = Kernel::with_config(KernelConfig {
        queue_memory_limit: LIMIT,
        ..KernelConfig::default()
    });
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    let most = LIMIT / queue_cost(0, 0, false);
    let mut sent = 0;
    let err = loop {
        match tx.try_send(to_rx, Message::new(1, b"")) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(
            sent <= most,
            "{sent} empty messages queued past a {LIMIT}-byte ceiling"
        );
    };
    assert_eq!(err.kind(), SendErrorKind::MemoryLimit);
    assert_eq!(sent, most);
    assert_eq!(rx.port_status(port).unwrap().queue_len, most);
    drop(rx);
    drop(tx);
    assert_clean(&k);
}

/// Regression: a huge bounded capacity is a count limit that never bites;
/// `Bounded(usize::MAX)` accepted 200 MiB past a 1 MiB ceiling. The ceiling
/// applies to bounded queues too, and no capacity allocates up front.
#[test]
fn huge_bounded_capacities_obey_the_memory_ceiling() {
    const LIMIT: usize = 1 << 20;
    let k = Kernel::with_config(KernelConfig {
        queue_memory_limit: LIMIT,
        ..KernelConfig::default()
    });
    for capacity in [usize::MAX, usize::MAX / 2, 1 << 40, 100_000] {
        let (rx, port, tx, to_rx) = pair(&k, Capacity::Bounded(capacity));
        let mut queued = 0usize;
        let err = loop {
            match tx.try_send(to_rx, Message::new(1, vec![7u8; 1024])) {
                Ok(()) => queued += 1024,
                Err(e) => break e,
            }
            assert!(queued <= LIMIT, "bounded({capacity}) queued {queued} bytes");
        };
        assert_eq!(err.kind(), SendErrorKind::MemoryLimit);
        assert!(queued > LIMIT / 2);
        // A send-once message bypasses the count limit, not the ceiling.
        let reply = rx.make_right(port, Disposition::MakeSendOnce).unwrap();
        let e = rx
            .try_send(reply, Message::new(2, vec![1u8; 1024]))
            .unwrap_err();
        assert_eq!(e.kind(), SendErrorKind::MemoryLimit);
        rx.deallocate(reply).unwrap();
        drop(tx);
        drop(rx);
    }
    assert_clean(&k);
}

/// A blocked selective receive is completed by a matching arrival only:
/// messages that do not match are queued (in order) while it waits, and a
/// plain receiver blocked behind it takes them.
#[test]
fn a_blocked_selective_receive_wakes_on_a_match_only() {
    let k = Kernel::new();
    let (rx, port, tx, to_rx) = pair(&k, Capacity::Unbounded);
    thread::scope(|s| {
        let picky = s.spawn(|| rx.receive_matching(port, &Filter::any().id(2)).unwrap());
        wait_until("the selective receiver blocks", || {
            rx.port_status(port).unwrap().blocked_receivers == 1
        });
        tx.send(to_rx, Message::from_u64(1, 10)).unwrap();
        tx.send(to_rx, Message::from_u64(3, 30)).unwrap();
        let status = rx.port_status(port).unwrap();
        assert_eq!((status.queue_len, status.blocked_receivers), (2, 1));
        tx.send(to_rx, Message::from_u64(2, 20)).unwrap();
        assert_eq!(picky.join().unwrap().as_u64(), Some(20));
    });
    assert_eq!(rx.try_receive(port).unwrap().id, 1);
    assert_eq!(rx.try_receive(port).unwrap().id, 3);
    // A plain receiver blocked behind a selective one takes what it skips.
    let tx2 = &tx;
    thread::scope(|s| {
        let picky = s.spawn(|| rx.receive_matching(port, &Filter::any().id(9)).unwrap().id);
        wait_until("the selective receiver blocks", || {
            rx.port_status(port).unwrap().blocked_receivers == 1
        });
        let plain = s.spawn(|| rx.receive(port).unwrap().id);
        wait_until("both receivers block", || {
            rx.port_status(port).unwrap().blocked_receivers == 2
        });
        tx2.send(to_rx, Message::from_u64(4, 0)).unwrap();
        assert_eq!(plain.join().unwrap(), 4);
        tx2.send(to_rx, Message::from_u64(9, 0)).unwrap();
        assert_eq!(picky.join().unwrap(), 9);
    });
    assert_clean(&k);
}
