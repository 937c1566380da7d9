//! Close-but-drain, peek and selective receive on real processes.
//!
//! A port's receiver closes it with one byte into the port's liveness pipe
//! (a destruction writes two, see DESIGN.md "Receiver death"), so another
//! process's send learns `Closed` from the OS, and `DestinationDead` once
//! the port is destroyed. Peek and selective receive take messages out of the
//! queue into the receiving process, which delivers them first and in order.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::error::Unsupported;
use mkipc_kernel::{
    Capacity, Disposition, Filter, Ipc, IpcError, Message, ReceiveError, SendErrorKind,
};
use mkipc_os::Spawn;

#[test]
fn another_process_sees_close_then_destruction() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("close-on-cue")).unwrap();
    let port = os.receive_from(child.pid()).unwrap().rights()[0].name;
    os.send(port, Message::new(100, b"before the close"))
        .unwrap();
    os.send_to(child.pid(), Message::new(1, b"close")).unwrap();
    let said = os.receive_from(child.pid()).unwrap();
    assert_eq!(said.id, 11);
    assert_eq!(
        std::str::from_utf8(&said.body).unwrap(),
        "1 Closed",
        "the receiver drained the one message, then saw Closed at once"
    );
    let refused = os
        .try_send(port, Message::new(101, b"after the close"))
        .unwrap_err();
    assert_eq!(refused.kind(), SendErrorKind::Closed);
    assert_eq!(refused.into_message().id, 101, "the message comes back");
    // A waiting send too: closed is not full.
    let refused = os
        .send_timeout(port, Message::new(102, b""), Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(refused.kind(), SendErrorKind::Closed);
    os.send_to(child.pid(), Message::new(2, b"destroy"))
        .unwrap();
    assert_eq!(os.receive_from(child.pid()).unwrap().id, 12);
    let dead = os.try_send(port, Message::new(103, b"")).unwrap_err();
    assert_eq!(dead.kind(), SendErrorKind::DestinationDead);
    os.close_link(child.pid()).unwrap();
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_call_waiting_on_a_closed_port_still_gets_its_reply() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(2)).unwrap();
    let to = os.make_send(port).unwrap();
    std::thread::scope(|s| {
        let caller =
            s.spawn(|| os.call_timeout(to, Message::new(1, b"ping"), Duration::from_secs(20)));
        let request = os.receive_timeout(port, Duration::from_secs(20)).unwrap();
        os.close(port).unwrap();
        // The caller waits on its reply queue and the liveness pipe: the
        // close's byte must neither end nor spin its wait.
        std::thread::sleep(Duration::from_millis(50));
        os.reply(&request, Message::new(2, b"pong")).unwrap();
        let reply = caller.join().unwrap().unwrap();
        assert_eq!(&reply.body[..], b"pong");
    });
    common::finish(os);
}

#[test]
fn peek_and_selective_receive_keep_the_order_of_what_they_pass_over() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(8)).unwrap();
    assert_eq!(os.peek(port), Err(ReceiveError::Empty));
    for id in [1, 2, 3, 4] {
        os.send(port, Message::new(id, b"")).unwrap();
    }
    let head = os.peek(port).unwrap();
    assert_eq!(head.id, 1);
    assert_eq!(
        os.port_status(port).unwrap().queue_len,
        4,
        "a peek takes nothing"
    );
    let m = os.try_receive_matching(port, &Filter::any().id(3)).unwrap();
    assert_eq!(m.id, 3);
    assert_eq!(os.port_status(port).unwrap().queue_len, 3);
    // Held messages come first, in order, then the queue.
    os.send(port, Message::new(5, b"")).unwrap();
    let seqno = os.peek(port).unwrap().trailer().unwrap().seqno;
    let first = os.receive(port).unwrap();
    assert_eq!((first.id, first.trailer().unwrap().seqno), (1, seqno));
    let rest: Vec<u32> = (0..3).map(|_| os.receive(port).unwrap().id).collect();
    assert_eq!(rest, [2, 4, 5]);
    common::finish(os);
}

#[test]
fn a_receive_right_with_held_messages_does_not_move() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("echo-parent")).unwrap();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.send(port, Message::new(1, b"")).unwrap();
    os.peek(port).unwrap();
    let moving = Message::new(2, b"").with_right(port, Disposition::MoveReceive);
    let err = os.send_to(child.pid(), moving).unwrap_err();
    assert_eq!(
        err.kind(),
        SendErrorKind::InvalidRight {
            index: 0,
            error: IpcError::Unsupported(Unsupported::SelectiveReceive)
        },
        "the peeked message cannot go back into the queue in order"
    );
    assert_eq!(err.into_message().rights().len(), 1);
    assert!(os.rights(port).unwrap().receive, "still ours");
    assert_eq!(os.receive(port).unwrap().id, 1);
    let _ = child.kill();
    common::finish(os);
}

#[test]
fn close_is_for_ports() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let once = os.make_right(port, Disposition::MakeSendOnce).unwrap();
    assert!(matches!(os.close(once), Err(IpcError::WrongRight { .. })));
    os.close(port).unwrap();
    os.close(port).unwrap();
    assert_eq!(
        os.try_send(once, Message::new(1, b"")).unwrap_err().kind(),
        SendErrorKind::Closed,
        "a send-once right of this process sees the close too"
    );
    assert_eq!(os.try_receive(port), Err(ReceiveError::Closed));
    common::finish(os);
}

#[test]
fn a_receive_blocked_when_the_port_closes_ends_with_closed() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(2)).unwrap();
    std::thread::scope(|s| {
        let blocked = s.spawn(|| os.receive(port));
        std::thread::sleep(Duration::from_millis(100));
        os.close(port).unwrap();
        assert_eq!(blocked.join().unwrap(), Err(ReceiveError::Closed));
    });
    // The wake-up is no message.
    assert_eq!(os.port_status(port).unwrap().queue_len, 0);
    assert_eq!(os.try_receive(port), Err(ReceiveError::Closed));
    common::finish(os);
}
