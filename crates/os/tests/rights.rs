//! Port rights carried between real processes (descriptors over SCM_RIGHTS).

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::{Capacity, Disposition, Ipc, Message, Wait};
use mkipc_os::Spawn;

#[test]
fn smoke_a_send_right_moved_to_a_child_lets_it_send() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let mut child = os.spawn(Spawn::new("use-received-right")).unwrap();
    // The child has no way to reach `port` until we give it the right.
    let msg = Message::new(1, b"here is a send right").with_right(port, Disposition::MakeSend);
    os.send_to(child.pid(), msg).unwrap();
    let got = os.receive_timeout(port, Duration::from_secs(10)).unwrap();
    assert_eq!(
        (got.id, &got.body[..]),
        (42, &b"hello through the right"[..])
    );
    assert_eq!(got.sender(), Some(child.pid()));
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_receive_right_moves_with_its_queued_messages() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("give-receive-right")).unwrap();
    let m = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(m.rights().len(), 1);
    assert_eq!(m.rights()[0].disposition, Disposition::MoveReceive);
    let port = m.rights()[0].name;
    assert!(os.rights(port).unwrap().receive);
    let queued = os.receive_timeout(port, Duration::from_secs(10)).unwrap();
    assert_eq!(&queued.body[..], b"queued before the move");
    assert_eq!(
        child.wait_code().unwrap(),
        0,
        "the child lost the right when it moved"
    );
    common::finish(os);
}

#[test]
fn copy_send_keeps_the_senders_right_and_move_send_removes_it() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let send = os.make_send(port).unwrap();
    let mut a = os.spawn(Spawn::new("use-received-right")).unwrap();
    let mut b = os.spawn(Spawn::new("use-received-right")).unwrap();
    os.send_to(
        a.pid(),
        Message::new(1, b"copy").with_right(send, Disposition::CopySend),
    )
    .unwrap();
    assert_eq!(
        os.rights(send).unwrap().send,
        1,
        "copy leaves our reference"
    );
    // MoveSend of the last reference: the name keeps only the receive right.
    os.send_to(
        b.pid(),
        Message::new(1, b"move").with_right(send, Disposition::MoveSend),
    )
    .unwrap();
    let r = os.rights(port).unwrap();
    assert_eq!((r.receive, r.send), (true, 0));
    for _ in 0..2 {
        assert_eq!(
            os.receive_timeout(port, Duration::from_secs(10))
                .unwrap()
                .id,
            42
        );
    }
    assert_eq!(a.wait_code().unwrap(), 0);
    assert_eq!(b.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn an_invalid_carried_right_fails_the_send_and_returns_the_message() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("exit-now")).unwrap();
    let bogus = mkipc_kernel::PortName::from_parts(77, 1);
    let err = os
        .send_to(
            child.pid(),
            Message::new(5, b"x").with_right(bogus, Disposition::CopySend),
        )
        .unwrap_err();
    assert_eq!(
        err.kind(),
        mkipc_kernel::SendErrorKind::InvalidRight {
            index: 0,
            error: mkipc_kernel::IpcError::InvalidName
        }
    );
    assert_eq!(err.into_message().id, 5);
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn call_and_reply_through_a_mailbox() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let send = os.make_send(port).unwrap();
    // Serve one request on another thread of this process (same mechanism as
    // across processes: the reply goes to the caller's reply queue).
    std::thread::scope(|s| {
        s.spawn(|| {
            let req = os.receive(port).unwrap();
            assert!(req.reply().is_some());
            os.reply(&req, Message::from_u64(2, req.as_u64().unwrap() + 1))
                .unwrap();
        });
        let reply = os
            .call_timeout(send, Message::from_u64(1, 41), Duration::from_secs(10))
            .unwrap();
        assert_eq!(reply.as_u64(), Some(42));
    });
    common::finish(os);
}
