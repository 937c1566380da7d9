//! Port sets and the oldest-first `select` on real processes: frames into
//! ports carry their send time on `CLOCK_MONOTONIC` (`wire::FLAG_STAMPED`),
//! so a receiver of several ports takes the oldest message whoever sent it,
//! and a set waits on one `epoll` instance that sees members inserted while
//! it waits.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::name::RightKind;
use mkipc_kernel::{Capacity, Disposition, Ipc, IpcError, Message, ReceiveError};
use mkipc_os::Spawn;

#[test]
fn select_takes_the_oldest_message_across_ports_and_processes() {
    let os = common::os();
    let a = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let b = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let to_b = os.make_send(b).unwrap();
    let mut child = os
        .spawn(
            Spawn::new("send-inherited-then-report")
                .inherit(to_b)
                .arg("2"),
        )
        .unwrap();
    // Ours into `a` first, then the child's into `b`.
    os.send(a, Message::new(1, b"older, from the parent"))
        .unwrap();
    os.send_to(child.pid(), Message::new(0, b"go")).unwrap();
    assert_eq!(os.receive_from(child.pid()).unwrap().id, 99);
    // List order says `b`; age says `a`.
    let m = os.select(&[b, a]).unwrap();
    assert_eq!((m.id, m.received_on()), (1, Some(a)), "the oldest first");
    let m = os.select(&[b, a]).unwrap();
    assert_eq!((m.id, m.received_on()), (2, Some(b)));
    assert_eq!(os.try_select(&[a, b]), Err(ReceiveError::Empty));
    // The priority select still goes by list order.
    os.send(a, Message::new(3, b"")).unwrap();
    os.send(b, Message::new(4, b"")).unwrap();
    assert_eq!(os.select_first(&[b, a]).unwrap().id, 4);
    assert_eq!(os.select(&[b, a]).unwrap().id, 3);
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_set_receives_oldest_first_and_leaves_members_alone_once_removed() {
    let os = common::os();
    let set = os.port_set_allocate().unwrap();
    assert!(os.rights(set).unwrap().port_set);
    let ports: Vec<_> = (0..3)
        .map(|_| os.port_allocate(Capacity::Unbounded).unwrap())
        .collect();
    for &p in &ports {
        os.port_set_insert(set, p).unwrap();
    }
    assert_eq!(os.try_receive(set), Err(ReceiveError::Empty));
    assert_eq!(
        os.receive_timeout(set, Duration::from_millis(20)),
        Err(ReceiveError::TimedOut)
    );
    // Sent in the order 2, 0, 1, 2: received in that order.
    for (i, &p) in [2usize, 0, 1, 2].iter().enumerate() {
        os.send(ports[p], Message::from_u64(i as u32, i as u64))
            .unwrap();
    }
    for (i, &p) in [2usize, 0, 1, 2].iter().enumerate() {
        let m = os.receive(set).unwrap();
        assert_eq!(
            (m.as_u64(), m.received_on()),
            (Some(i as u64), Some(ports[p])),
            "message {i}"
        );
    }
    // A removed member's messages are its own again.
    os.port_set_remove(ports[0]).unwrap();
    assert_eq!(os.port_set_remove(ports[0]), Err(IpcError::InvalidValue));
    os.send(ports[0], Message::new(7, b"")).unwrap();
    assert_eq!(os.try_receive(set), Err(ReceiveError::Empty));
    assert_eq!(os.try_receive(ports[0]).unwrap().id, 7);
    // A destroyed member leaves the set (no wake-ups from its descriptor).
    os.mod_refs(ports[1], RightKind::Receive, -1).unwrap();
    os.send(ports[2], Message::new(8, b"")).unwrap();
    assert_eq!(os.receive(set).unwrap().id, 8);
    // Only receive rights join a set; a set is no port.
    let only_send = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.make_send(only_send).unwrap();
    os.mod_refs(only_send, RightKind::Receive, -1).unwrap();
    assert!(os.port_set_insert(set, only_send).is_err());
    assert_eq!(
        os.port_set_insert(ports[2], ports[0]),
        Err(IpcError::WrongRight {
            needed: RightKind::PortSet
        })
    );
    assert!(os.send(set, Message::new(1, b"")).is_err());
    common::finish(os);
}

#[test]
fn a_receive_blocked_on_a_set_wakes_for_a_port_inserted_meanwhile() {
    let os = common::os();
    let set = os.port_set_allocate().unwrap();
    let late = os.port_allocate(Capacity::Bounded(2)).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| os.receive_timeout(set, Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(100));
        os.port_set_insert(set, late).unwrap();
        os.send(late, Message::new(5, b"to the late member"))
            .unwrap();
        let got = waiter.join().unwrap().unwrap();
        assert_eq!((got.id, got.received_on()), (5, Some(late)));
    });
    common::finish(os);
}

#[test]
fn a_member_moved_to_another_process_leaves_the_set() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("echo-parent")).unwrap();
    let set = os.port_set_allocate().unwrap();
    let stays = os.port_allocate(Capacity::Bounded(2)).unwrap();
    let moves = os.port_allocate(Capacity::Bounded(2)).unwrap();
    os.port_set_insert(set, stays).unwrap();
    os.port_set_insert(set, moves).unwrap();
    let to_moved = os.make_send(moves).unwrap();
    // The receive right goes to the child and comes back under a new name;
    // meanwhile a message waits in it.
    os.send(to_moved, Message::new(1, b"in the moved port"))
        .unwrap();
    os.send_to(
        child.pid(),
        Message::new(2, b"").with_right(moves, Disposition::MoveReceive),
    )
    .unwrap();
    let back = os.receive_from(child.pid()).unwrap();
    let moved_back = back.rights()[0].name;
    // The set no longer has it: the message is not the set's.
    assert_eq!(os.try_receive(set), Err(ReceiveError::Empty));
    assert_eq!(
        os.receive_timeout(set, Duration::from_millis(50)),
        Err(ReceiveError::TimedOut),
        "a readable former member does not wake the set"
    );
    assert_eq!(os.try_receive(moved_back).unwrap().id, 1);
    drop(back);
    let _ = child.kill();
    common::finish(os);
}

#[test]
fn a_set_holds_links_beside_ports_and_a_link_that_ends_leaves_it() {
    use mkipc_os::LinkKind;
    for kind in [LinkKind::Pipe, LinkKind::SharedMemory, LinkKind::UnixSocket] {
        let os = common::os();
        let mut child = os.spawn(Spawn::new("echo-parent").link_kind(kind)).unwrap();
        let link = os.link_name(child.pid()).unwrap();
        let port = os.port_allocate(Capacity::Bounded(2)).unwrap();
        let set = os.port_set_allocate().unwrap();
        os.port_set_insert(set, link).unwrap();
        os.port_set_insert(set, port).unwrap();
        assert_eq!(os.try_receive(set), Err(ReceiveError::Empty), "{kind:?}");
        // A receive blocked on the set wakes for the link's message.
        std::thread::scope(|s| {
            let blocked = s.spawn(|| os.receive_timeout(set, Duration::from_secs(10)));
            std::thread::sleep(Duration::from_millis(100));
            os.send_to(child.pid(), Message::new(7, b"echo me"))
                .unwrap();
            let m = blocked.join().unwrap().unwrap();
            assert_eq!(m.id, 7, "{kind:?}");
            assert_eq!(m.received_on(), Some(link));
            assert_eq!(m.sender(), Some(child.pid()));
        });
        // Ports and links together, and a select over the set.
        os.send(port, Message::new(8, b"on the port")).unwrap();
        os.send_to(child.pid(), Message::new(9, b"on the link"))
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            let m = os.select_timeout(&[set], Duration::from_secs(10)).unwrap();
            got.push((m.id, m.received_on()));
        }
        got.sort();
        assert_eq!(got, [(8, Some(port)), (9, Some(link))], "{kind:?}");
        // Removed, the link's messages no longer come through the set.
        os.port_set_remove(link).unwrap();
        assert_eq!(os.port_set_remove(link), Err(IpcError::InvalidValue));
        os.send_to(child.pid(), Message::new(10, b"not for the set"))
            .unwrap();
        assert_eq!(
            os.receive_timeout(set, Duration::from_millis(300)),
            Err(ReceiveError::TimedOut)
        );
        assert_eq!(os.receive(link).unwrap().id, 10);
        // Back in; the link closes: it leaves the set, the set goes on.
        os.port_set_insert(set, link).unwrap();
        os.close_link(child.pid()).unwrap();
        assert_eq!(child.wait_code().unwrap(), 0, "the child saw end of stream");
        assert_eq!(
            os.receive_timeout(set, Duration::from_millis(200)),
            Err(ReceiveError::TimedOut),
            "a set outlives its ended link"
        );
        os.send(port, Message::new(11, b"")).unwrap();
        assert_eq!(os.receive(set).unwrap().id, 11);
        assert_eq!(os.port_set_insert(set, link), Err(IpcError::DeadName));
        common::finish(os);
    }
}

#[test]
fn a_link_name_released_or_moved_to_another_set_leaves_its_set() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("echo-parent")).unwrap();
    let (a, b) = (
        os.port_set_allocate().unwrap(),
        os.port_set_allocate().unwrap(),
    );
    let link = os.link_name(child.pid()).unwrap();
    os.port_set_insert(a, link).unwrap();
    os.port_set_insert(b, link).unwrap();
    os.send_to(child.pid(), Message::new(1, b"")).unwrap();
    assert_eq!(
        os.receive_timeout(b, Duration::from_secs(10)).unwrap().id,
        1
    );
    os.send_to(child.pid(), Message::new(2, b"")).unwrap();
    assert_eq!(
        os.receive_timeout(a, Duration::from_millis(300)),
        Err(ReceiveError::TimedOut),
        "it moved to the other set"
    );
    assert_eq!(
        os.receive_timeout(b, Duration::from_secs(10)).unwrap().id,
        2
    );
    os.deallocate(link).unwrap();
    os.send_to(child.pid(), Message::new(3, b"")).unwrap();
    assert_eq!(
        os.receive_timeout(b, Duration::from_millis(300)),
        Err(ReceiveError::TimedOut),
        "a released name is in no set"
    );
    assert_eq!(os.receive_from(child.pid()).unwrap().id, 3);
    os.close_link(child.pid()).unwrap();
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}
