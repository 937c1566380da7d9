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
fn set_capacity_holds_a_sender_in_another_process_and_growing_wakes_it() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.set_capacity(port, Capacity::Bounded(2)).unwrap();
    let send = os.make_send(port).unwrap();
    // The capacity page reaches the child with the right at spawn.
    let mut child = os
        .spawn(Spawn::new("send-on-inherited").arg("5").inherit(send))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = os.port_status(port).unwrap();
    assert_eq!(status.capacity, Capacity::Bounded(2));
    assert_eq!(
        status.queue_len, 2,
        "the queue could take 4: the page says 2"
    );
    assert_eq!(os.try_receive_from(child.pid()), Err(ReceiveError::Empty));
    // Growing wakes the blocked sender: one more goes in, no more.
    os.set_capacity(port, Capacity::Bounded(3)).unwrap();
    let t = Instant::now();
    while os.port_status(port).unwrap().queue_len < 3 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(os.port_status(port).unwrap().queue_len, 3);
    let got: Vec<u64> = (0..5)
        .map(|_| os.receive(port).unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"done");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn shrinking_keeps_what_is_queued_and_every_policy_sees_the_new_capacity() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(3)).unwrap();
    let send = os.make_send(port).unwrap();
    for i in 1..=3 {
        os.send(send, Message::from_u64(1, i)).unwrap();
    }
    os.set_capacity(port, Capacity::Bounded(1)).unwrap();
    assert_eq!(
        os.port_status(port).unwrap().queue_len,
        3,
        "nothing is dropped"
    );
    assert_eq!(os.port_status(port).unwrap().capacity, Capacity::Bounded(1));
    for left in [2, 1] {
        assert_eq!(os.receive(port).unwrap().as_u64(), Some(3 - left));
        match os.try_send(send, Message::from_u64(1, 10 + left)) {
            Err(e) if e.kind() == SendErrorKind::Full => {
                assert_eq!(e.into_message().as_u64(), Some(10 + left))
            }
            other => panic!("{left} queued, capacity 1: {other:?}"),
        }
    }
    let t = Instant::now();
    match os.send_timeout(send, Message::from_u64(1, 20), Duration::from_millis(150)) {
        Err(e) if e.kind() == SendErrorKind::TimedOut => {
            assert_eq!(e.into_message().as_u64(), Some(20))
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        os.send_with(send, Message::from_u64(1, 21), OnFull::DropNewest)
            .unwrap(),
        Sent::Dropped
    );
    assert_eq!(
        os.send_with(send, Message::from_u64(1, 22), OnFull::DropOldest)
            .unwrap(),
        Sent::Displaced
    );
    assert_eq!(
        os.receive(port).unwrap().as_u64(),
        Some(22),
        "3 was displaced"
    );
    // Drained below the capacity: sends go in again, up to it.
    os.try_send(send, Message::from_u64(1, 23)).unwrap();
    assert!(os.try_send(send, Message::from_u64(1, 24)).is_err());
    assert_eq!(os.receive(port).unwrap().as_u64(), Some(23));
    assert_eq!(os.try_receive(port), Err(ReceiveError::Empty));
    common::finish(os);
}

#[test]
fn a_capacity_the_queue_cannot_hold_is_an_error_naming_its_limit() {
    use mkipc_kernel::error::{Limit, Unsupported};
    use mkipc_kernel::{IpcError, MailboxConfig};
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(3)).unwrap();
    assert_eq!(
        os.set_capacity(port, Capacity::Bounded(4)),
        Err(IpcError::Limit(Limit::MqMsgMax { max: 3 }))
    );
    assert_eq!(
        os.set_capacity(port, Capacity::Bounded(0)),
        Err(IpcError::InvalidValue)
    );
    for other in [Capacity::Zero, Capacity::Unbounded] {
        assert_eq!(
            os.set_capacity(port, other),
            Err(IpcError::Unsupported(Unsupported::CapacityChange)),
            "the model is the queue's"
        );
    }
    assert_eq!(os.port_status(port).unwrap().capacity, Capacity::Bounded(3));
    // A send-once right names the port without its receive right.
    let once = os
        .make_right(port, mkipc_kernel::Disposition::MakeSendOnce)
        .unwrap();
    assert_eq!(
        os.set_capacity(once, Capacity::Bounded(1)),
        Err(IpcError::WrongRight {
            needed: mkipc_kernel::name::RightKind::Receive
        })
    );
    let zero = os.port_allocate(Capacity::Zero).unwrap();
    assert_eq!(
        os.set_capacity(zero, Capacity::Zero),
        Ok(()),
        "no change is no error"
    );
    let mb = os
        .mailbox_create("capacity-mailbox", MailboxConfig::new(Capacity::Bounded(2)))
        .unwrap();
    // A bounded mailbox has a page too (kept by the broker for its openers),
    // with the same limit.
    os.set_capacity(mb, Capacity::Bounded(1)).unwrap();
    assert_eq!(os.port_status(mb).unwrap().capacity, Capacity::Bounded(1));
    assert_eq!(
        os.set_capacity(mb, Capacity::Bounded(3)),
        Err(IpcError::Limit(Limit::MqMsgMax { max: 2 }))
    );
    // A queue mkipc did not make has no page: its capacity is its queue's.
    let posix = format!("/mkipc-foreign-cap-{}", std::process::id());
    let c = std::ffi::CString::new(posix.clone()).unwrap();
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 2;
    attr.mq_msgsize = 64;
    // SAFETY: a valid name and attributes that live across the call.
    let fd = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600 as libc::c_uint,
            &mut attr as *mut libc::mq_attr,
        )
    };
    assert!(fd >= 0, "mq_open");
    let foreign = os.mailbox_open_posix(&posix).unwrap();
    // SAFETY: our own descriptor and name.
    unsafe {
        libc::mq_close(fd);
        libc::mq_unlink(c.as_ptr());
    }
    assert_eq!(
        os.set_capacity(foreign, Capacity::Bounded(1)),
        Err(IpcError::Unsupported(Unsupported::CapacityChange)),
        "a foreign queue's senders share no page"
    );
    common::finish(os);
}

#[test]
fn a_right_moved_in_a_message_carries_the_port_capacity() {
    use mkipc_kernel::Disposition;
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.set_capacity(port, Capacity::Bounded(1)).unwrap();
    let mut child = os
        .spawn(Spawn::new("send-on-received-right").arg("3"))
        .unwrap();
    os.send_to(
        child.pid(),
        Message::new(1, b"a right").with_right(port, Disposition::MakeSend),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        os.port_status(port).unwrap().queue_len,
        1,
        "capacity 1 in the child too"
    );
    for i in 0..3 {
        assert_eq!(os.receive(port).unwrap().id, i);
    }
    assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"done");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_moved_receive_right_keeps_its_capacity_page() {
    let os = common::os();
    // The child's port (Bounded(4), one message queued) comes to us.
    let mut child = os.spawn(Spawn::new("give-receive-right")).unwrap();
    let m = os.receive_from(child.pid()).unwrap();
    let port = m.rights()[0].name;
    assert_eq!(child.wait_code().unwrap(), 0);
    assert_eq!(os.port_status(port).unwrap().capacity, Capacity::Bounded(4));
    os.set_capacity(port, Capacity::Bounded(1)).unwrap();
    match os.try_send(port, Message::new(2, b"over")) {
        Err(e) if e.kind() == SendErrorKind::Full => {}
        other => panic!("one queued, capacity 1: {other:?}"),
    }
    assert_eq!(os.receive(port).unwrap().id, 7);
    os.try_send(port, Message::new(2, b"room now")).unwrap();
    assert_eq!(os.receive(port).unwrap().id, 2);
    common::finish(os);
}

#[test]
fn a_sender_waiting_for_room_learns_at_once_that_the_port_died() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.send(port, Message::new(1, b"fills it")).unwrap();
    os.set_capacity(port, Capacity::Bounded(1)).unwrap();
    let send = os.make_send(port).unwrap();
    let mut child = os
        .spawn(Spawn::new("send-inherited-and-report").inherit(send))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        os.try_receive_from(child.pid()),
        Err(ReceiveError::Empty),
        "the child waits for room"
    );
    let t = Instant::now();
    os.destroy(port).unwrap();
    let said = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(&said.body[..], b"DestinationDead");
    assert!(
        t.elapsed() < Duration::from_millis(40),
        "woken by the destruction, not by its {:?} slice: {:?}",
        mkipc_os::capacity::SLICE,
        t.elapsed()
    );
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_sender_of_another_user_keeps_to_the_capacity_its_right_carries() {
    if running_as_root() {
        let os = common::os();
        let port = os.port_allocate(Capacity::Bounded(3)).unwrap();
        os.set_capacity(port, Capacity::Bounded(1)).unwrap();
        let send = os.make_send(port).unwrap();
        // The page is mode 0600 and nameless: uid 65534 reaches it only
        // through the descriptor that comes with the right.
        let mut child = match os.spawn(
            Spawn::new("send-on-inherited")
                .arg("2")
                .inherit(send)
                .uid(65534),
        ) {
            Ok(c) => c,
            Err(mkipc_kernel::IpcError::NoPermission) => {
                eprintln!("skipped: the test binary is not reachable by uid 65534");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(os.port_status(port).unwrap().queue_len, 1);
        assert_eq!(os.receive(port).unwrap().as_u64(), Some(0));
        assert_eq!(os.receive(port).unwrap().as_u64(), Some(1));
        assert_eq!(&os.receive_from(child.pid()).unwrap().body[..], b"done");
        assert_eq!(child.wait_code().unwrap(), 0);
        common::finish(os);
    } else {
        eprintln!("skipped: needs root to run a child as uid 65534");
    }
}

/// Whether this process runs as root (`/proc/self/status`, no `unsafe`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Spawns a child that `try_send_to`s this process 1 KiB frames once cued;
/// sets the link from it first (if `pages`), and returns how many fitted.
fn frames_that_fit(os: &mkipc_os::OsProcess, pages: Option<usize>) -> (u32, mkipc_os::Child) {
    let mut child = os.spawn(Spawn::new("try-flood-parent-on-cue")).unwrap();
    if let Some(n) = pages {
        os.set_link_capacity(child.pid(), Capacity::Bounded(n))
            .unwrap();
    }
    os.send_to(child.pid(), Message::new(0, b"go")).unwrap();
    let fitted = child.wait_code().unwrap();
    assert!(fitted < 250, "the child failed: {fitted}");
    (fitted as u32, child)
}

#[test]
fn set_link_capacity_sizes_a_pipe_link_and_a_shrink_keeps_what_it_holds() {
    let os = common::os();
    // As made: a 64 KiB pipe takes 64 frames of 1 KiB.
    let (as_made, _c) = frames_that_fit(&os, None);
    // One page: one frame (a try-send wants a free page), no more.
    let (one, c1) = frames_that_fit(&os, Some(1));
    // Eight pages: at least eight frames.
    let (eight, _c8) = frames_that_fit(&os, Some(8));
    assert!(as_made >= 32, "{as_made}");
    assert!((1..=4).contains(&one), "{one}");
    assert!((8..as_made).contains(&eight), "{eight} of {as_made}");
    // What a link of one page took is all received, in order.
    for i in 0..one {
        assert_eq!(os.receive_from(c1.pid()).unwrap().id, i);
    }
    assert_eq!(os.receive_from(c1.pid()), Err(ReceiveError::SourceDead));

    // A shrink below what the pipe holds: Linux refuses it (EBUSY) until
    // the bytes are read into this end's buffer; nothing is lost.
    let mut child = os.spawn(Spawn::new("try-flood-parent-on-cue")).unwrap();
    os.send_to(child.pid(), Message::new(0, b"go")).unwrap();
    let queued = child.wait_code().unwrap() as u32;
    assert!(queued >= 32, "{queued}");
    os.set_link_capacity(child.pid(), Capacity::Bounded(1))
        .unwrap();
    for i in 0..queued {
        assert_eq!(
            os.receive_from(child.pid()).unwrap().id,
            i,
            "kept, in order"
        );
    }
    assert_eq!(os.receive_from(child.pid()), Err(ReceiveError::SourceDead));
    common::finish(os);
}

#[test]
fn set_link_capacity_is_a_typed_error_where_the_link_cannot_be_sized() {
    use mkipc_kernel::error::Unsupported;
    use mkipc_kernel::{IpcError, Pid};
    use mkipc_os::{new_link_of, LinkKind};
    let os = common::os();
    let mut child = os.spawn(Spawn::new("try-flood-parent-on-cue")).unwrap();
    for c in [Capacity::Zero, Capacity::Unbounded] {
        assert_eq!(
            os.set_link_capacity(child.pid(), c),
            Err(IpcError::Unsupported(Unsupported::LinkCapacity)),
            "{c:?}: a pipe always buffers, and never without bound"
        );
    }
    assert_eq!(
        os.set_link_capacity(child.pid(), Capacity::Bounded(1 << 20)),
        Err(IpcError::InvalidValue),
        "4 GiB: more than a pipe can be (2^31 bytes)"
    );
    assert_eq!(
        os.set_link_capacity(child.pid(), Capacity::Bounded(0)),
        Err(IpcError::InvalidValue)
    );
    assert_eq!(
        os.set_link_capacity(Pid(1), Capacity::Bounded(1)),
        Err(IpcError::NotFound),
        "no link with pid 1"
    );
    child.kill().unwrap();
    let _ = child.wait();
    // A shared-memory link: its rings are sealed at 64 KiB.
    for kind in [LinkKind::SharedMemory, LinkKind::UnixSocket] {
        let b = mkipc_os::OsProcess::join(os.run_id()).unwrap();
        let (near, far) = new_link_of(kind).unwrap();
        let me = Pid(std::process::id());
        os.adopt_link(me, near).unwrap();
        b.adopt_link(me, far).unwrap();
        assert_eq!(
            b.set_link_capacity(me, Capacity::Bounded(1)),
            Err(IpcError::Unsupported(Unsupported::LinkCapacity)),
            "{kind:?}"
        );
        os.close_link(me).unwrap();
        drop(b);
    }
    common::finish(os);
}

#[test]
fn another_user_cannot_grow_a_link_past_pipe_max_size() {
    if !running_as_root() {
        eprintln!("skipped: needs root to run a child as uid 65534");
        return;
    }
    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let os = common::os();
    let over = (max / 4096 * 2).to_string();
    let mut child = match os.spawn(Spawn::new("grow-parent-link").arg(&over).uid(65534)) {
        Ok(c) => c,
        Err(mkipc_kernel::IpcError::NoPermission) => {
            eprintln!("skipped: the test binary is not reachable by uid 65534");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        child.wait_code().unwrap(),
        0,
        "NoPermission past {max} bytes"
    );
    // Up to the limit it may.
    let at_max = (max / 4096).to_string();
    let mut child = os
        .spawn(Spawn::new("grow-parent-link").arg(&at_max).uid(65534))
        .unwrap();
    assert_eq!(child.wait_code().unwrap(), 1, "{max} bytes are allowed");
    common::finish(os);
}

#[test]
fn only_a_mailbox_manager_changes_its_capacity_another_user_may_not() {
    use mkipc_kernel::name::Access;
    use mkipc_kernel::{IpcError, MailboxConfig};
    let os = common::os();
    // Others may send (mode 0622), so the other user opens it write-only.
    let mb = os
        .mailbox_create(
            "capacity-other-user",
            MailboxConfig::new(Capacity::Bounded(3)).default_access(Access::SEND),
        )
        .unwrap();
    let mut child = match os.spawn(
        Spawn::new("set-mailbox-capacity")
            .arg("capacity-other-user")
            .uid(65534),
    ) {
        Ok(c) => c,
        Err(IpcError::NoPermission) => {
            eprintln!("only_a_mailbox_manager_changes_its_capacity_another_user_may_not: skipped, test binary not reachable by uid 65534");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(child.wait_code().unwrap(), 0, "refused: NoPermission");
    assert_eq!(os.port_status(mb).unwrap().capacity, Capacity::Bounded(3));
    os.set_capacity(mb, Capacity::Bounded(2)).unwrap();
    assert_eq!(os.port_status(mb).unwrap().capacity, Capacity::Bounded(2));
    common::finish(os);
}
