//! Regressions: each test failed before the fix named in its comment.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::{
    Access, Capacity, Disposition, Ipc, IpcError, MailboxConfig, Message, Pid, ReceiveError, Wait,
};
use mkipc_os::{OsProcess, Spawn};

/// Two `OsProcess`es of one run in this process, joined by a real link:
/// `a` knows `b` as pid 2, `b` knows `a` as pid 1.
fn linked_pair() -> (OsProcess, OsProcess) {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link().unwrap();
    a.adopt_link(Pid(2), near);
    b.adopt_link(Pid(1), far);
    (a, b)
}

/// Runs `f` on another thread and gives up after `secs` (a receive that
/// blocks forever must fail the test, not hang it).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

#[test]
fn try_receive_from_any_reads_what_is_waiting_in_the_pipe() {
    let (a, b) = linked_pair();
    b.send_to(Pid(1), Message::new(4, b"waiting")).unwrap();
    // The frame is in the pipe: a receive that may not wait still gets it.
    let m = a.try_receive_from_any().unwrap();
    assert_eq!((m.id, m.sender()), (4, Some(Pid(2))));
    assert_eq!(a.try_receive_from_any(), Err(ReceiveError::Empty));
    // Once every link has ended, it is end of stream, not "empty".
    drop(b);
    assert_eq!(a.try_receive_from_any(), Err(ReceiveError::SourceDead));
    common::finish(a);
}

#[test]
fn a_frame_claiming_a_body_over_the_link_limit_is_malformed() {
    let a = common::os();
    let (near, far) = mkipc_os::new_link().unwrap();
    a.adopt_link(Pid(2), near);
    // A header announcing a 4 GiB body: no mkipc sender writes it (the link
    // limit is 64 MiB), so the reader must not wait (and buffer) for it.
    let mut header = vec![b'M', b'K', 1, 0, 1, 0, 0, 0];
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    header.extend_from_slice(&[0; 12]);
    let fd = far.raw_fds()[1];
    // SAFETY: `fd` is the open write end of a pipe `far` owns; `header` is
    // readable for its length.
    let n = unsafe { libc::write(fd, header.as_ptr().cast(), header.len()) };
    assert_eq!(n, header.len() as isize);
    assert_eq!(a.try_receive_from(Pid(2)), Err(ReceiveError::Malformed));
    assert_eq!(
        a.receive_from_with(Pid(2), Wait::For(Duration::from_millis(50))),
        Err(ReceiveError::Malformed)
    );
    drop(far);
    common::finish(a);
}

#[test]
fn a_send_with_more_rights_than_scm_rights_carries_leaves_the_link_clean() {
    let (a, b) = linked_pair();
    let port = a.port_allocate(Capacity::Bounded(1)).unwrap();
    let send = a.make_send(port).unwrap();
    // Linux passes at most 253 descriptors in one SCM_RIGHTS message.
    let mut msg = Message::new(7, b"too many rights");
    for _ in 0..254 {
        msg = msg.with_right(send, Disposition::CopySend);
    }
    let err = a.send_to(Pid(2), msg).unwrap_err();
    assert_eq!(err.kind(), mkipc_kernel::SendErrorKind::Os(libc::EINVAL));
    let back = err.into_message();
    assert_eq!(
        (back.id, back.rights().len()),
        (7, 254),
        "the message comes back"
    );
    assert_eq!(a.rights(send).unwrap().send, 1, "the right stays");
    // Nothing of the failed send reached the peer: its next frame is the next message.
    a.send_to(Pid(2), Message::new(8, b"next")).unwrap();
    let got = within(5, move || {
        let r = b.try_receive_from(Pid(1)).map(|m| m.id);
        (r, b)
    });
    let (got, b) = got.expect("the receiver blocked on descriptors that never come");
    assert_eq!(got, Ok(8));
    drop(b);
    common::finish(a);
}

#[test]
fn fifo_create_on_an_existing_file_does_not_remove_it_at_cleanup() {
    let path = std::env::temp_dir().join(format!(
        "precious-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, b"keep me").unwrap();
    let os = common::os();
    assert_eq!(
        os.fifo_create(&path, Access::NONE),
        Err(IpcError::AlreadyExists)
    );
    common::finish(os);
    let kept = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        kept.unwrap(),
        b"keep me",
        "cleanup removed a file mkipc never made"
    );
}

#[test]
fn a_failed_mailbox_create_does_not_take_over_the_existing_mailbox() {
    let os = common::os();
    let mb = os
        .mailbox_create("shared", MailboxConfig::new(Capacity::Bounded(1)))
        .unwrap();
    let mut child = os
        .spawn(Spawn::new("create-existing-mailbox").arg("shared"))
        .unwrap();
    // Reaping the child removes what the child owned, which is not "shared".
    assert_eq!(child.wait_code().unwrap(), 0);
    let again = os.mailbox_open("shared").expect("the mailbox survives");
    os.send(mb, Message::new(1, b"still here")).unwrap();
    assert_eq!(os.receive(again).unwrap().id, 1);
    common::finish(os);
}

#[test]
fn dropping_a_process_stops_its_spool_flushers() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("spool-then-drop")).unwrap();
    assert_eq!(
        child.wait_code().unwrap(),
        0,
        "a flusher thread outlived its destroyed port (30 + n) or its OsProcess (10 + n), \
         or descriptors did (20)"
    );
    common::finish(os);
}

#[test]
fn a_call_displaced_by_drop_oldest_gets_no_reply_instead_of_waiting() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let send = os.make_send(port).unwrap();
    std::thread::scope(|s| {
        let caller =
            s.spawn(|| os.call_timeout(send, Message::new(1, b"request"), Duration::from_secs(5)));
        let t = std::time::Instant::now();
        while os.port_status(port).unwrap().queue_len == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the request never arrived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // The request is displaced: its reply right is destroyed with it, so
        // the caller learns at once that no reply will come (as in the kernel).
        assert_eq!(
            os.send_with(
                send,
                Message::new(2, b"newer"),
                mkipc_kernel::OnFull::DropOldest
            )
            .unwrap(),
            mkipc_kernel::Sent::Displaced
        );
        let t = std::time::Instant::now();
        let got = caller.join().unwrap();
        assert!(
            matches!(got, Err(mkipc_kernel::CallError::NoReply)),
            "{got:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the caller waited for its timeout"
        );
    });
    assert_eq!(os.receive(port).unwrap().id, 2);
    common::finish(os);
}
