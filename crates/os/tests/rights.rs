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

/// A right sent into a mailbox waits with the run's broker, so it outlives
/// the process that sent it (as a queued right does in the kernel).
#[test]
fn a_right_in_a_queued_message_outlives_its_sender() {
    let os = common::os();
    let mb = os
        .mailbox_create(
            "rights-outlive",
            mkipc_kernel::MailboxConfig::new(Capacity::Bounded(4)),
        )
        .unwrap();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let to_port = os.make_send(port).unwrap();
    let mut child = os
        .spawn(
            Spawn::new("forward-inherited-into-mailbox")
                .inherit(to_port)
                .arg("rights-outlive"),
        )
        .unwrap();
    assert_eq!(child.wait_code().unwrap(), 0, "the sender is gone");
    let m = os.receive(mb).unwrap();
    assert_eq!(m.id, 3);
    let right = m.rights()[0].name;
    assert_eq!(os.rights(right).unwrap().send, 1);
    os.send(right, Message::new(4, b"through the forwarded right"))
        .unwrap();
    assert_eq!(os.receive(port).unwrap().id, 4);
    common::finish(os);
}

/// The broker serves only its own user: a process of another user gets no
/// service (and so no right) from it.
#[test]
fn another_user_gets_nothing_from_the_broker() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to uid 65534 needs root");
        return;
    }
    {
        let os = common::os();
        let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
        os.register("not-for-others", port).unwrap();
        let mut child = os
            .spawn(
                Spawn::new("look-up-and-send")
                    .arg("not-for-others")
                    .uid(65534),
            )
            .unwrap();
        let said = os.receive_from(child.pid()).unwrap();
        let said = String::from_utf8(said.body.to_vec()).unwrap();
        assert_ne!(said, "ok");
        assert_eq!(os.try_receive(port), Err(mkipc_kernel::ReceiveError::Empty));
        assert_eq!(child.wait_code().unwrap(), 0);
        common::finish(os);
    }
}
