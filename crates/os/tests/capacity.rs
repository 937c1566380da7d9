//! Each capacity model on real POSIX queues, across processes.

mod common;
role_entry!();

use std::time::{Duration, Instant};

use mkipc_kernel::{Capacity, Ipc, Message, OnFull, ReceiveError, SendErrorKind, Sent, Wait};
use mkipc_os::Spawn;

#[test]
fn smoke_bounded_queue_blocks_a_sender_in_another_process() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(2)).unwrap();
    let send = os.make_send(port).unwrap();
    let mut child = os
        .spawn(Spawn::new("send-on-inherited").arg("5").inherit(send))
        .unwrap();
    // The child can put 2 messages in; the 3rd mq_send blocks in the kernel.
    std::thread::sleep(Duration::from_millis(200));
    let status = os.port_status(port).unwrap();
    assert_eq!(status.capacity, Capacity::Bounded(2));
    assert_eq!(status.queue_len, 2, "mq_maxmsg = 2 holds exactly two");
    assert_eq!(
        os.try_receive_from(child.pid()),
        Err(ReceiveError::Empty),
        "the child is still blocked"
    );
    let got: Vec<u64> = (0..5)
        .map(|_| os.receive(port).unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"done");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn bounded_full_fails_drops_or_displaces_per_policy() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(2)).unwrap();
    let send = os.make_send(port).unwrap();
    os.send(send, Message::from_u64(1, 1)).unwrap();
    os.send(send, Message::from_u64(1, 2)).unwrap();
    match os.try_send(send, Message::from_u64(1, 3)) {
        Err(e) if e.kind() == SendErrorKind::Full => {
            let m = e.into_message();
            assert_eq!(m.as_u64(), Some(3), "the message comes back")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        os.send_with(send, Message::from_u64(1, 4), OnFull::DropNewest)
            .unwrap(),
        Sent::Dropped
    );
    assert_eq!(
        os.send_with(send, Message::from_u64(1, 5), OnFull::DropOldest)
            .unwrap(),
        Sent::Displaced
    );
    let got: Vec<u64> = (0..2)
        .map(|_| os.receive(port).unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(got, [2, 5], "1 was displaced, 3 and 4 never entered");
    assert_eq!(os.try_receive(port), Err(ReceiveError::Empty));
    common::finish(os);
}

#[test]
fn zero_capacity_sender_returns_only_after_the_receiver_took_the_message() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Zero).unwrap();
    let send = os.make_send(port).unwrap();
    let mut child = os.spawn(Spawn::new("zero-sender").inherit(send)).unwrap();
    // The child is parked in its send: it has not reported "sent".
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        os.receive_from_with(child.pid(), Wait::NoWait).unwrap_err(),
        ReceiveError::Empty
    );
    let m = os.receive(port).unwrap();
    assert_eq!(&m.body[..], b"rendezvous");
    assert_eq!(m.sender(), Some(child.pid()));
    // Only now does its send return.
    let sent = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(&sent.body[..], b"sent");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn zero_capacity_try_send_without_a_receiver_leaves_nothing_behind() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Zero).unwrap();
    let send = os.make_send(port).unwrap();
    match os.try_send(send, Message::new(1, b"no one there")) {
        Err(e) if e.kind() == SendErrorKind::Full => {
            let m = e.into_message();
            assert_eq!(&m.body[..], b"no one there")
        }
        other => panic!("{other:?}"),
    }
    let t = Instant::now();
    match os.send_timeout(
        send,
        Message::new(2, b"still no one"),
        Duration::from_millis(100),
    ) {
        Err(e) if e.kind() == SendErrorKind::TimedOut => {
            let m = e.into_message();
            assert_eq!(m.id, 2)
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(
        os.port_status(port).unwrap().queue_len,
        0,
        "the withdrawn messages are not queued"
    );
    assert_eq!(os.try_receive(port), Err(ReceiveError::Empty));
    common::finish(os);
}

#[test]
fn unbounded_sender_never_waits_and_order_is_kept() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Unbounded).unwrap();
    let send = os.make_send(port).unwrap();
    // 50 messages into a queue with mq_maxmsg 10: 40 wait in the spool.
    for i in 0..50 {
        assert_eq!(
            os.send_with(send, Message::from_u64(1, i), OnFull::Fail)
                .unwrap(),
            Sent::Delivered
        );
    }
    let got: Vec<u64> = (0..50)
        .map(|_| os.receive(port).unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    common::finish(os);
}

#[test]
fn unbounded_across_processes() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Unbounded).unwrap();
    let send = os.make_send(port).unwrap();
    let mut child = os
        .spawn(Spawn::new("spool-sender").arg("40").inherit(send))
        .unwrap();
    // All 40 sends return without anyone receiving.
    let done = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(&done.body[..], b"all sent");
    let got: Vec<u64> = (0..40)
        .map(|_| os.receive(port).unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(got, (0..40).collect::<Vec<_>>());
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn capacity_cannot_change_after_creation() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    assert_eq!(
        os.set_capacity(port, Capacity::Bounded(4)),
        Err(mkipc_kernel::IpcError::Unsupported(
            mkipc_kernel::error::Unsupported::CapacityChange
        ))
    );
    assert_eq!(
        os.port_allocate(Capacity::Bounded(0)),
        Err(mkipc_kernel::IpcError::InvalidValue)
    );
    common::finish(os);
}
