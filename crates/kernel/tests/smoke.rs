//! First checks of every capacity model and the common paths, on threads.

use std::thread;
use std::time::Duration;

use mkipc_kernel::*;

#[test]
fn smoke_bounded() {
    let k = Kernel::new();
    let t = k.spawn_task();
    let p = t.port_allocate(Capacity::Bounded(2)).unwrap();
    t.send(p, Message::from_u64(1, 1)).unwrap();
    t.send(p, Message::from_u64(1, 2)).unwrap();
    let err = t.try_send(p, Message::from_u64(1, 3)).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Full);
    assert_eq!(err.into_message().as_u64(), Some(3));
    assert_eq!(t.receive(p).unwrap().as_u64(), Some(1));
    assert_eq!(t.receive(p).unwrap().as_u64(), Some(2));
    assert_eq!(t.try_receive(p).unwrap_err(), ReceiveError::Empty);
    assert_eq!(
        t.receive_timeout(p, Duration::from_millis(10)).unwrap_err(),
        ReceiveError::TimedOut
    );
}

#[test]
fn smoke_zero_rendezvous() {
    let k = Kernel::new();
    let a = k.spawn_task();
    let b = k.spawn_task();
    let p = b.port_allocate(Capacity::Zero).unwrap();
    b.register("b", p).unwrap();
    let to_b = a.look_up("b").unwrap();
    // No receiver waiting: a zero-capacity try_send cannot complete.
    assert_eq!(
        a.try_send(to_b, Message::new(1, b"x")).unwrap_err().kind(),
        SendErrorKind::Full
    );
    let err = a
        .send_timeout(to_b, Message::new(1, b"x"), Duration::from_millis(20))
        .unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::TimedOut);
    let h = thread::spawn(move || {
        a.send(to_b, Message::new(2, b"hello")).unwrap();
        a
    });
    let m = b.receive(p).unwrap();
    assert_eq!(&m.body[..], b"hello");
    assert_eq!(m.sender(), Some(h.join().unwrap().pid()));
}

#[test]
fn smoke_rights_move_and_dead_name() {
    let k = Kernel::new();
    let a = k.spawn_task();
    let b = k.spawn_task();
    let b_inbox = b.port_allocate(Capacity::Unbounded).unwrap();
    b.register("b", b_inbox).unwrap();
    let to_b = a.look_up("b").unwrap();
    let ap = a.port_allocate(Capacity::Unbounded).unwrap();
    a.send(
        to_b,
        Message::new(1, b"").with_right(ap, Disposition::MakeSend),
    )
    .unwrap();
    let m = b.receive(b_inbox).unwrap();
    let r = m.rights()[0];
    assert_eq!(r.disposition, Disposition::MoveSend);
    assert_eq!(b.rights(r.name).unwrap().send, 1);
    b.send(r.name, Message::new(5, b"back")).unwrap();
    assert_eq!(a.receive(ap).unwrap().id, 5);
    a.destroy(ap).unwrap();
    assert_eq!(b.rights(r.name).unwrap().dead, 1);
    assert_eq!(
        b.send(r.name, Message::new(6, b"")).unwrap_err().kind(),
        SendErrorKind::DestinationDead
    );
}

#[test]
fn smoke_call_and_no_reply() {
    let k = Kernel::new();
    let server = k.spawn_task();
    let client = k.spawn_task();
    let port = server.port_allocate(Capacity::Bounded(4)).unwrap();
    server.register("s", port).unwrap();
    let s = client.look_up("s").unwrap();
    let h = thread::spawn(move || {
        let req = server.receive(port).unwrap();
        server
            .reply(&req, Message::new(100, req.body.clone()))
            .unwrap();
        let _dropped = server.receive(port).unwrap();
        // server exits without replying: the client hears NoReply
    });
    assert_eq!(client.call(s, Message::new(1, b"q")).unwrap().id, 100);
    assert_eq!(
        client.call(s, Message::new(1, b"q2")).unwrap_err(),
        CallError::NoReply
    );
    h.join().unwrap();
    assert_eq!(k.stats().ports, 0, "{:?}", k.stats());
}

#[test]
fn smoke_direct_and_eof() {
    let k = Kernel::new();
    let a = k.spawn_task();
    let b = k.spawn_task();
    let (ap, bp) = (a.pid(), b.pid());
    a.send_to(bp, Message::new(1, b"one")).unwrap();
    a.send_to(bp, Message::new(2, b"two")).unwrap();
    drop(a);
    assert_eq!(b.receive_from(ap).unwrap().id, 1);
    let m = b.receive_from_any().unwrap();
    assert_eq!((m.id, m.sender()), (2, Some(ap)));
    assert_eq!(b.receive_from(ap).unwrap_err(), ReceiveError::SourceDead);
}

#[test]
fn smoke_mailbox_owner_exit_wakes_receivers() {
    let k = Kernel::new();
    let owner = k.spawn_task();
    let user = k.spawn_task();
    owner
        .mailbox_create("jobs", MailboxConfig::new(Capacity::Bounded(1)))
        .unwrap();
    let mb = user.mailbox_open("jobs").unwrap();
    let h = thread::spawn(move || user.receive(mb));
    thread::sleep(Duration::from_millis(30));
    drop(owner);
    assert_eq!(h.join().unwrap().unwrap_err(), ReceiveError::SourceDead);
    assert_eq!(k.stats().mailboxes, 0);
}

#[test]
fn task_is_send_and_sync_and_every_form_exists() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Task>();
    assert_send_sync::<Kernel>();
    let k = Kernel::new();
    let a = k.spawn_task();
    let b = k.spawn_task();
    let short = Duration::from_millis(5);
    assert_eq!(
        b.try_receive_from(a.pid()).unwrap_err(),
        ReceiveError::Empty
    );
    assert_eq!(
        b.receive_from_timeout(a.pid(), short).unwrap_err(),
        ReceiveError::TimedOut
    );
    assert_eq!(b.try_receive_from_any().unwrap_err(), ReceiveError::Empty);
    assert_eq!(
        b.receive_from_any_timeout(short).unwrap_err(),
        ReceiveError::TimedOut
    );
    b.set_link_capacity(a.pid(), Capacity::Bounded(1)).unwrap();
    a.send_to_timeout(b.pid(), Message::new(1, b"1"), short)
        .unwrap();
    let full = a
        .send_to_timeout(b.pid(), Message::new(2, b"2"), short)
        .unwrap_err();
    assert_eq!(full.kind(), SendErrorKind::TimedOut);
    assert_eq!(b.try_receive_from(a.pid()).unwrap().id, 1);
    let p = b.port_allocate(Capacity::Unbounded).unwrap();
    assert_eq!(b.try_select(&[p]).unwrap_err(), ReceiveError::Empty);
    assert_eq!(
        b.select_timeout(&[p], short).unwrap_err(),
        ReceiveError::TimedOut
    );
    assert_eq!(b.try_select(&[]).unwrap_err(), ReceiveError::InvalidValue);
}

#[test]
fn dead_name_request_lapses_when_its_name_is_released() {
    let k = Kernel::new();
    let server = k.spawn_task();
    let client = k.spawn_task();
    let port = server.port_allocate(Capacity::Unbounded).unwrap();
    server.register("s", port).unwrap();
    let notify = client.port_allocate(Capacity::Unbounded).unwrap();
    // Ask for a notification on a send right, then give the right up.
    let released = client.look_up("s").unwrap();
    client
        .request_notification(released, NotifyKind::DeadName, notify)
        .unwrap();
    assert_eq!(client.port_status(notify).unwrap().send_once_rights, 1);
    client.deallocate(released).unwrap();
    // Still held by another request: this one fires.
    let held = client.look_up("s").unwrap();
    client
        .request_notification(held, NotifyKind::DeadName, notify)
        .unwrap();
    server.destroy(port).unwrap();
    let n = client.try_receive(notify).unwrap();
    assert_eq!(n.notification(), Some(Notification::DeadName(held)));
    assert_eq!(
        client.try_receive(notify).unwrap_err(),
        ReceiveError::Empty,
        "the lapsed request stays silent"
    );
    assert_eq!(
        client.port_status(notify).unwrap().send_once_rights,
        0,
        "its right vanished"
    );
}

/// `KernelConfig::link_capacity = Bounded(0)`, which `validate` rejects for a
/// port, configures rendezvous links: nothing is ever buffered on them, even
/// by a `DropOldest` send.
#[test]
fn a_bounded_zero_link_capacity_in_the_config_means_rendezvous() {
    let k = Kernel::with_config(KernelConfig {
        link_capacity: Capacity::Bounded(0),
        ..KernelConfig::default()
    });
    let a = k.spawn_task();
    let b = k.spawn_task();
    let err = a.try_send_to(b.pid(), Message::new(1, b"1")).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Full);
    assert_eq!(
        a.send_to_with(b.pid(), Message::new(2, b"2"), OnFull::DropOldest),
        Ok(Sent::Dropped)
    );
    assert_eq!(
        b.try_receive_from(a.pid()).unwrap_err(),
        ReceiveError::Empty
    );
    // A receiver waiting: the send hands over at once, as at any rendezvous.
    std::thread::scope(|s| {
        let receiver = s.spawn(|| b.receive_from_timeout(a.pid(), Duration::from_secs(5)));
        let t = std::time::Instant::now();
        while k.stats().blocked_receivers == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the receiver never blocked"
            );
            std::thread::yield_now();
        }
        a.try_send_to(b.pid(), Message::new(3, b"3")).unwrap();
        assert_eq!(receiver.join().unwrap().unwrap().id, 3);
    });
    // And introspection calls the link what it is.
    let links: Vec<Capacity> = k.queue_stats().iter().map(|q| q.capacity).collect();
    assert_eq!(links, [Capacity::Zero]);
}
