//! Notifications on real processes (`crate::notify`): a dead-name
//! notification from the OS when a port's receiver is killed, send-possible
//! from `POLLOUT` on the queue, no-senders from the hang-up of the port's
//! senders pipes (send rights in other processes, released or killed, the
//! name service's copy), port-destroyed moving the receive right into the
//! notify port (also from a holder killed by `SIGKILL`, through the
//! broker's escrow), and none forged by a frame from another writer.

mod common;
role_entry!();

use std::ffi::CString;
use std::time::Duration;

use mkipc_kernel::{
    Capacity, Disposition, Ipc, IpcError, MailboxConfig, Message, Notification, NotifyKind,
    PortName, ReceiveError,
};
use mkipc_os::Spawn;

#[test]
fn a_killed_receiver_gives_a_dead_name_notification_at_once() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("port-owner")).unwrap();
    let right = os.receive_from(child.pid()).unwrap().rights()[0].name;
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    os.request_notification(right, NotifyKind::DeadName, notify)
        .unwrap();
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "alive");
    child.kill().unwrap();
    // The port's write end was only in the child: its death hangs up the
    // liveness pipe at once (no timeout is involved; 10 s is a safety net).
    let t = std::time::Instant::now();
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::DeadName(right)));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let _ = child.wait();
    common::finish(os);
}

#[test]
fn send_possible_comes_from_pollout_once_room_is_made() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let to = os.make_send(port).unwrap();
    let notify = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.try_send(to, Message::new(1, b"fills it")).unwrap();
    os.request_send_possible(to, notify).unwrap();
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty));
    // Another thread makes room (a receive from the queue, as any other
    // process's would be: the notifier sees POLLOUT, not our receive).
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            os.receive(port).unwrap();
        });
        let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
        assert_eq!(n.notification(), Some(Notification::SendPossible(to)));
    });
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "one-shot");
    common::finish(os);
}

/// Gives `child` (a `hold-right-until-cue`) a copy of the send right to
/// `port` and waits until it says it holds it.
fn give_send_right(os: &mkipc_os::OsProcess, child: &mkipc_os::Child, port: PortName) {
    os.send_to(
        child.pid(),
        Message::new(1, b"hold this").with_right(port, Disposition::MakeSend),
    )
    .unwrap();
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"holding");
}

#[test]
fn no_senders_at_once_when_there_never_was_a_send_right() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let bare = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.request_notification(bare, NotifyKind::NoSenders, notify)
        .unwrap();
    assert_eq!(
        os.try_receive(notify).unwrap().notification(),
        Some(Notification::NoSenders(bare))
    );
    common::finish(os);
}

#[test]
fn no_senders_waits_for_a_send_right_in_another_process_to_be_released() {
    let os = common::os();
    let child = os.spawn(Spawn::new("hold-right-until-cue")).unwrap();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.make_send(port).unwrap();
    give_send_right(&os, &child, port);
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    // Our own reference goes: the child's is still there.
    os.deallocate(port).unwrap();
    assert_eq!(
        os.receive_timeout(notify, Duration::from_millis(200)),
        Err(ReceiveError::TimedOut),
        "the child still holds a send right"
    );
    os.send_to(child.pid(), Message::new(2, b"let go")).unwrap();
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"released");
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(port)));
    // One-shot, and the port lives on: a new send right counts again.
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty));
    os.make_send(port).unwrap();
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "ours");
    os.deallocate(port).unwrap();
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(port)));
    drop(child);
    common::finish(os);
}

#[test]
fn a_killed_holder_of_the_last_send_right_gives_no_senders_at_once() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("hold-right-until-cue")).unwrap();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    give_send_right(&os, &child, port);
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "held");
    child.kill().unwrap();
    // The OS closes the child's write end of the senders pipe: no timeout
    // is involved (10 s is a safety net).
    let t = std::time::Instant::now();
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(port)));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let _ = child.wait();
    common::finish(os);
}

#[test]
fn no_senders_counts_send_rights_made_in_several_generations() {
    let os = common::os();
    let first = os.spawn(Spawn::new("hold-right-until-cue")).unwrap();
    let mut second = os.spawn(Spawn::new("hold-right-until-cue")).unwrap();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    // Each right is made while this process holds none of its own: two
    // senders pipes (`crate::senders`), both must hang up.
    give_send_right(&os, &first, port);
    give_send_right(&os, &second, port);
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    os.send_to(first.pid(), Message::new(2, b"let go")).unwrap();
    assert_eq!(&os.receive_from(first.pid()).unwrap().body[..], b"released");
    assert_eq!(
        os.receive_timeout(notify, Duration::from_millis(200)),
        Err(ReceiveError::TimedOut),
        "the second child still holds one"
    );
    second.kill().unwrap();
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(port)));
    let _ = second.wait();
    drop(first);
    common::finish(os);
}

#[test]
fn no_senders_follows_a_receive_right_to_its_new_holder() {
    let os = common::os();
    // The child keeps a send right and moves the receive right here: the
    // senders pipe's read end came with it.
    let child = os.spawn(Spawn::new("give-receive-keep-send")).unwrap();
    let m = os.receive_from(child.pid()).unwrap();
    let port = m.rights()[0].name;
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    assert_eq!(
        os.receive_timeout(notify, Duration::from_millis(200)),
        Err(ReceiveError::TimedOut),
        "the child still holds a send right"
    );
    os.send_to(child.pid(), Message::new(2, b"let go")).unwrap();
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"released");
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(port)));
    drop(child);
    common::finish(os);
}

#[test]
fn a_registered_service_is_a_sender_until_unregistered() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.register("no-senders-svc", port).unwrap();
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    assert_eq!(
        os.receive_timeout(notify, Duration::from_millis(200)),
        Err(ReceiveError::TimedOut),
        "the name service holds a send right"
    );
    os.unregister("no-senders-svc").unwrap();
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(port)));
    common::finish(os);
}

/// Waits for a port-destroyed notification on `notify`; the receive right's new name.
fn port_destroyed(os: &mkipc_os::OsProcess, notify: PortName) -> PortName {
    let n = os.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    let Some(Notification::PortDestroyed(again)) = n.notification() else {
        panic!("not a port-destroyed notification: {n:?}");
    };
    assert_eq!(n.rights().len(), 1);
    assert!(os.rights(again).unwrap().receive);
    again
}

#[test]
fn port_destroyed_moves_the_receive_right_with_its_messages_and_senders() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let child = os
        .spawn(Spawn::new("send-inherited-on-cue").inherit(port))
        .unwrap();
    os.make_send(port).unwrap();
    os.send(port, Message::new(1, b"before")).unwrap();
    os.deallocate(port).unwrap();
    os.request_notification(port, NotifyKind::PortDestroyed, notify)
        .unwrap();
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "alive");
    os.destroy(port).unwrap();
    assert_eq!(os.rights(port), Err(IpcError::InvalidName));
    let again = port_destroyed(&os, notify);
    assert_eq!(&os.receive(again).unwrap().body[..], b"before");
    // The child's send right never saw a death: its send arrives.
    os.send_to(child.pid(), Message::new(1, b"go")).unwrap();
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"ok");
    assert_eq!(&os.receive(again).unwrap().body[..], b"anyone?");
    // One-shot: destroyed again, it is gone.
    os.destroy(again).unwrap();
    assert_eq!(
        os.receive_timeout(notify, Duration::from_millis(100)),
        Err(ReceiveError::TimedOut)
    );
    drop(child);
    common::finish(os);
}

/// Moves the receive right of `port` (a port-destroyed request on it) to a
/// `hold-right-until-cue` child, and waits until it holds it.
fn move_receive_right_to_a_child(os: &mkipc_os::OsProcess, port: PortName) -> mkipc_os::Child {
    let child = os.spawn(Spawn::new("hold-right-until-cue")).unwrap();
    let m = Message::new(1, b"hold this").with_right(port, Disposition::MoveReceive);
    os.send_to(child.pid(), m).unwrap();
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"holding");
    child
}

#[test]
fn a_killed_holder_moves_a_travelling_receive_right_to_the_notify_port() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    // Our send right stays under `port` while the receive right travels.
    os.make_send(port).unwrap();
    os.send(port, Message::new(1, b"queued")).unwrap();
    os.request_notification(port, NotifyKind::PortDestroyed, notify)
        .unwrap();
    let mut child = move_receive_right_to_a_child(&os, port);
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "alive");
    // SIGKILL: the child runs no code. The broker sees its connection
    // close (the OS closes a dead process's sockets) and moves the right
    // it held in escrow; 10 s is a safety net, not a timeout it waits for.
    child.kill().unwrap();
    let t = std::time::Instant::now();
    let again = port_destroyed(&os, notify);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(&os.receive(again).unwrap().body[..], b"queued");
    let _ = child.wait();
    // The right came back whole: it still counts our send right.
    let senders = os.port_allocate(Capacity::Unbounded).unwrap();
    os.request_notification(again, NotifyKind::NoSenders, senders)
        .unwrap();
    assert_eq!(
        os.receive_timeout(senders, Duration::from_millis(200)),
        Err(ReceiveError::TimedOut),
        "we still hold a send right"
    );
    os.send(port, Message::new(2, b"still a sender")).unwrap();
    assert_eq!(&os.receive(again).unwrap().body[..], b"still a sender");
    os.deallocate(port).unwrap();
    let n = os
        .receive_timeout(senders, Duration::from_secs(10))
        .unwrap();
    assert_eq!(n.notification(), Some(Notification::NoSenders(again)));
    os.destroy(again).unwrap();
    common::finish(os);
}

#[test]
fn a_killed_holder_whose_notify_port_is_gone_destroys_the_port() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let deaths = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.make_send(port).unwrap();
    os.request_notification(port, NotifyKind::PortDestroyed, notify)
        .unwrap();
    let mut child = move_receive_right_to_a_child(&os, port);
    // Our send right stays; the port dies once nobody can move it.
    os.request_notification(port, NotifyKind::DeadName, deaths)
        .unwrap();
    os.destroy(notify).unwrap();
    assert_eq!(os.try_receive(deaths), Err(ReceiveError::Empty), "alive");
    child.kill().unwrap();
    let t = std::time::Instant::now();
    let n = os.receive_timeout(deaths, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::DeadName(port)));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let sent = os.try_send(port, Message::new(2, b"anyone?"));
    assert!(sent.is_err(), "a send to the dead port: {sent:?}");
    let _ = child.wait();
    common::finish(os);
}

#[test]
fn port_destroyed_keeps_our_send_references_alive() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Bounded(2)).unwrap();
    let port = os.port_allocate(Capacity::Bounded(2)).unwrap();
    os.make_send(port).unwrap();
    os.request_notification(port, NotifyKind::PortDestroyed, notify)
        .unwrap();
    // Releasing the receive right while holding send references.
    os.mod_refs(port, mkipc_kernel::name::RightKind::Receive, -1)
        .unwrap();
    let rights = os.rights(port).unwrap();
    assert!(!rights.receive);
    assert_eq!(rights.send, 1, "still a send right, not a dead name");
    let again = port_destroyed(&os, notify);
    os.send(port, Message::new(2, b"to the new holder"))
        .unwrap();
    assert_eq!(&os.receive(again).unwrap().body[..], b"to the new holder");
    common::finish(os);
}

#[test]
fn port_destroyed_wants_a_receive_right_and_another_notify_port() {
    let os = common::os();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    assert_eq!(
        os.request_notification(notify, NotifyKind::PortDestroyed, notify),
        Err(IpcError::InvalidValue)
    );
    let send_once = os.make_right(port, Disposition::MakeSendOnce).unwrap();
    assert_eq!(
        os.request_notification(send_once, NotifyKind::PortDestroyed, notify),
        Err(IpcError::WrongRight {
            needed: mkipc_kernel::name::RightKind::Receive
        })
    );
    // Without a request, a destruction is a death, as before.
    os.destroy(port).unwrap();
    assert_eq!(
        os.receive_timeout(notify, Duration::from_millis(100)),
        Err(ReceiveError::TimedOut)
    );
    common::finish(os);
}

#[test]
fn a_frame_from_sender_zero_is_no_notification_without_the_key() {
    let os = common::os();
    let mb = os
        .mailbox_create("forged-notes", MailboxConfig::new(Capacity::Bounded(8)))
        .unwrap();
    let name = CString::new(os.mailbox_posix_name("forged-notes")).unwrap();
    // SAFETY: a valid NUL-terminated name; the descriptor is closed below.
    let q = unsafe { libc::mq_open(name.as_ptr(), libc::O_WRONLY) };
    assert!(q >= 0);
    for token in [0u32, 1, 0xFFFF_FFFF] {
        let m = Message::from_u64(Notification::DEAD_NAME_ID, mb.to_raw());
        let frame = mkipc_os::wire::encode(&m, 0, 0, token, &[]);
        // SAFETY: `frame` is a live buffer of `frame.len()` bytes.
        let sent = unsafe { libc::mq_send(q, frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(sent, 0);
    }
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::mq_close(q) };
    for _ in 0..3 {
        let m = os.try_receive(mb).unwrap();
        assert_eq!(m.sender(), Some(mkipc_kernel::Pid(0)));
        assert!(!m.sender_verified());
        assert_eq!(m.notification(), None);
    }
    common::finish(os);
}

/// Two `OsProcess`es of one run in this process, linked (pipes) under this
/// process's pid.
fn linked_pair() -> (mkipc_os::OsProcess, mkipc_os::OsProcess, mkipc_kernel::Pid) {
    let a = common::os();
    let b = mkipc_os::OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link().unwrap();
    let me = mkipc_kernel::Pid(std::process::id());
    a.adopt_link(me, near).unwrap();
    b.adopt_link(me, far).unwrap();
    (a, b, me)
}

#[test]
fn a_dead_name_request_lapses_when_its_last_right_moves_out() {
    let (a, b, me) = linked_pair();
    let port = b.port_allocate(Capacity::Bounded(2)).unwrap();
    for _ in 0..2 {
        b.send_to(
            me,
            Message::new(1, b"").with_right(port, Disposition::MakeSend),
        )
        .unwrap();
    }
    let moved = a.receive_from(me).unwrap().rights()[0].name;
    let kept = a.receive_from(me).unwrap().rights()[0].name;
    let notify = a.port_allocate(Capacity::Unbounded).unwrap();
    a.request_notification(moved, NotifyKind::DeadName, notify)
        .unwrap();
    a.request_notification(kept, NotifyKind::DeadName, notify)
        .unwrap();
    // The name's last right leaves in a message: its request lapses (the
    // kernel's rule), so the port's death tells only about the other name.
    a.send_to(
        me,
        Message::new(2, b"").with_right(moved, Disposition::MoveSend),
    )
    .unwrap();
    assert_eq!(a.rights(moved), Err(IpcError::InvalidName));
    let back = b.receive_from(me).unwrap();
    assert_eq!(back.rights().len(), 1);
    b.destroy(port).unwrap();
    let n = a.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::DeadName(kept)));
    assert_eq!(
        a.receive_timeout(notify, Duration::from_millis(300)),
        Err(ReceiveError::TimedOut),
        "nothing about the moved name"
    );
    drop(b);
    common::finish(a);
}

#[test]
fn a_send_possible_request_lapses_when_its_last_right_moves_out() {
    let (a, b, me) = linked_pair();
    let port = b.port_allocate(Capacity::Bounded(1)).unwrap();
    b.send(port, Message::new(1, b"fills it")).unwrap();
    for _ in 0..2 {
        b.send_to(
            me,
            Message::new(1, b"").with_right(port, Disposition::MakeSend),
        )
        .unwrap();
    }
    let moved = a.receive_from(me).unwrap().rights()[0].name;
    let kept = a.receive_from(me).unwrap().rights()[0].name;
    let notify = a.port_allocate(Capacity::Unbounded).unwrap();
    a.request_notification(moved, NotifyKind::SendPossible, notify)
        .unwrap();
    a.request_notification(kept, NotifyKind::SendPossible, notify)
        .unwrap();
    assert_eq!(a.try_receive(notify), Err(ReceiveError::Empty), "full");
    a.send_to(
        me,
        Message::new(2, b"").with_right(moved, Disposition::MoveSend),
    )
    .unwrap();
    let _ = b.receive_from(me).unwrap();
    // Room: only the name that still holds its right hears of it.
    assert_eq!(b.receive(port).unwrap().id, 1);
    let n = a.receive_timeout(notify, Duration::from_secs(10)).unwrap();
    assert_eq!(n.notification(), Some(Notification::SendPossible(kept)));
    assert_eq!(
        a.receive_timeout(notify, Duration::from_millis(300)),
        Err(ReceiveError::TimedOut),
        "nothing about the moved name"
    );
    drop(b);
    common::finish(a);
}
