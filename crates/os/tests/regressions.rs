//! Regressions: each test failed before the fix named in its comment.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::error::MalformedFrame;
use mkipc_kernel::name::Access;
use mkipc_kernel::{
    Capacity, Disposition, Ipc, IpcError, MailboxConfig, Message, Pid, ReceiveError, Wait,
};
use mkipc_os::{OsProcess, Spawn};

/// Two `OsProcess`es of one run in this process, joined by a real link:
/// `a` knows `b` as pid 2, `b` knows `a` as pid 1.
fn linked_pair() -> (OsProcess, OsProcess) {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link().unwrap();
    a.adopt_link(Pid(2), near).unwrap();
    b.adopt_link(Pid(1), far).unwrap();
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
    a.adopt_link(Pid(2), near).unwrap();
    // A header announcing a 4 GiB body: no mkipc sender writes it (the link
    // limit is 64 MiB), so the reader must not wait (and buffer) for it.
    let header = common::hand_frame(1, b"", u32::MAX, 0, 2);
    let fd = far.raw_fds()[1];
    // SAFETY: `fd` is the open write end of a pipe `far` owns; `header` is
    // readable for its length.
    let n = unsafe { libc::write(fd, header.as_ptr().cast(), header.len()) };
    assert_eq!(n, header.len() as isize);
    assert_eq!(
        a.try_receive_from(Pid(2)),
        Err(ReceiveError::Malformed(MalformedFrame::Length))
    );
    // The link is closed (one writer, out of step): end of stream, not the
    // same error for ever.
    assert_eq!(
        a.receive_from_with(Pid(2), Wait::For(Duration::from_millis(50))),
        Err(ReceiveError::SourceDead)
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
    assert_eq!(
        err.kind(),
        mkipc_kernel::SendErrorKind::Limit(mkipc_kernel::error::Limit::DescriptorsPerMessage {
            max: 253
        })
    );
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

/// A named POSIX queue seen the way a foreign program sees it: a raw
/// descriptor, plain `mq_receive`/`mq_send` of whole frames.
struct RawQueue(libc::mqd_t);

impl RawQueue {
    fn open(name: &str) -> RawQueue {
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: `c` is a valid NUL-terminated name; without O_CREAT no
        // further arguments are read.
        let q = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDWR) };
        assert!(
            q >= 0,
            "mq_open {name}: {}",
            std::io::Error::last_os_error()
        );
        RawQueue(q)
    }

    /// Takes the next frame, waiting for one (no acknowledgement is sent).
    fn receive(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 8192];
        // SAFETY: `buf` is writable for its length, which is at least the
        // queue's mq_msgsize (8192 or less on this machine).
        let n = unsafe {
            libc::mq_receive(
                self.0,
                buf.as_mut_ptr().cast(),
                buf.len(),
                std::ptr::null_mut(),
            )
        };
        assert!(n >= 0, "mq_receive: {}", std::io::Error::last_os_error());
        buf.truncate(n as usize);
        buf
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is readable for its length.
        let r = unsafe { libc::mq_send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(r, 0, "mq_send: {}", std::io::Error::last_os_error());
    }
}

impl Drop for RawQueue {
    fn drop(&mut self) {
        // SAFETY: the descriptor was opened by `open` and is closed once.
        unsafe { libc::mq_close(self.0) };
    }
}

/// A wire-format frame from a foreign sender: flags 0, token 0.
fn foreign_frame(id: u32, body: &[u8], sender: u32) -> Vec<u8> {
    common::hand_frame(id, body, body.len() as u32, 0, sender)
}

#[test]
fn a_rendezvous_sender_taking_its_message_back_loses_no_other_message() {
    // Suspect: when a timed-out zero-capacity sender finds another sender's
    // frame in the one-slot queue instead of its own, it put that frame back
    // with a no-wait send whose failure was ignored. A sender blocked in
    // mq_send takes the slot during the very receive that empties it, so the
    // put-back always failed and the frame was lost.
    let os = common::os();
    let mb = os
        .mailbox_create("meet", MailboxConfig::new(Capacity::Zero))
        .unwrap();
    let raw = RawQueue::open(&os.mailbox_posix_name("meet"));
    std::thread::scope(|s| {
        let a = s.spawn(|| os.send_timeout(mb, Message::new(1, b"A"), Duration::from_millis(1500)));
        // A receiver takes A's frame but its acknowledgement comes too late
        // (here: never): A times out believing its frame may still be queued.
        let fa = raw.receive();
        assert_eq!(&fa[4..8], &1u32.to_le_bytes(), "A's frame");
        // B's frame takes the slot, and C blocks in mq_send behind it.
        raw.send(&foreign_frame(2, b"B", 4242));
        let c = s.spawn(|| os.send_timeout(mb, Message::new(3, b"C"), Duration::from_secs(10)));
        // A times out, takes B's frame out (C's moves in), and puts B's back.
        assert_eq!(a.join().unwrap(), Ok(()), "A's frame was received");
        let mut got = Vec::new();
        while let Ok(m) = os.receive_with(mb, Wait::For(Duration::from_secs(2))) {
            got.push(m.id);
        }
        assert_eq!(got, vec![2, 3], "B's message is lost or comes after C's");
        assert_eq!(c.join().unwrap(), Ok(()));
    });
    drop(raw);
    common::finish(os);
}

#[test]
fn a_timed_receive_on_a_link_another_thread_is_reading_returns_by_its_deadline() {
    // Suspect: a receive with no deadline sat in `read` with the link's state
    // locked, so a timed receive on the same link (receive_from_any,
    // receive_from) in another thread waited for that lock past its deadline.
    let (a, b) = linked_pair();
    let a = std::sync::Arc::new(a);
    let reader = {
        let a = std::sync::Arc::clone(&a);
        std::thread::spawn(move || a.receive_from(Pid(2)).map(|m| m.id))
    };
    std::thread::sleep(Duration::from_millis(200)); // the reader waits on the pipe
    let timed = {
        let a = std::sync::Arc::clone(&a);
        within(5, move || {
            let ms = Duration::from_millis(200);
            (
                a.receive_from_any_with(Wait::For(ms)),
                a.receive_from_with(Pid(2), Wait::For(ms)),
                a.try_receive_from(Pid(2)),
                a.try_receive_from_any(),
            )
        })
    };
    if timed.is_none() {
        // Release everyone stuck before failing.
        for i in 0..4 {
            let _ = b.send_to(Pid(1), Message::new(10 + i, b"release"));
        }
        panic!("a timed receive waited for another thread's blocking read");
    }
    assert_eq!(
        timed.unwrap(),
        (
            Err(ReceiveError::TimedOut),
            Err(ReceiveError::TimedOut),
            Err(ReceiveError::Empty),
            Err(ReceiveError::Empty)
        )
    );
    b.send_to(Pid(1), Message::new(5, b"for the reader"))
        .unwrap();
    assert_eq!(reader.join().unwrap(), Ok(5));
    drop(b);
    let a = std::sync::Arc::into_inner(a).expect("no other holder");
    common::finish(a);
}

#[test]
fn two_threads_in_receive_from_any_both_return_by_their_deadlines() {
    // Suspect: both threads see the pipe ready in `poll`; the one that gets
    // to it second found the frame gone and blocked in `read` past its
    // deadline (until the next frame). Each round, one frame: one thread
    // gets it, the other must time out.
    let (a, b) = linked_pair();
    let a = std::sync::Arc::new(a);
    for round in 0..30u32 {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for _ in 0..2 {
            let a = std::sync::Arc::clone(&a);
            let tx = tx.clone();
            threads.push(std::thread::spawn(move || {
                let r = a.receive_from_any_with(Wait::For(Duration::from_millis(400)));
                let _ = tx.send(r.map(|m| m.id));
            }));
        }
        std::thread::sleep(Duration::from_millis(50)); // both are in poll
        b.send_to(Pid(1), Message::new(round, b"one frame"))
            .unwrap();
        let mut results = Vec::new();
        for _ in 0..2 {
            match rx.recv_timeout(Duration::from_secs(3)) {
                Ok(r) => results.push(r),
                Err(_) => {
                    // Release the stuck thread before failing.
                    let _ = b.send_to(Pid(1), Message::new(999, b"release"));
                    panic!("round {round}: a receive_from_any blocked past its deadline");
                }
            }
        }
        results.sort_by_key(|r| r.is_err());
        assert_eq!(
            results,
            vec![Ok(round), Err(ReceiveError::TimedOut)],
            "round {round}"
        );
        // Both have answered; wait until they let go of `a` too.
        for t in threads {
            t.join().unwrap();
        }
    }
    drop(b);
    let a = std::sync::Arc::into_inner(a).expect("no other holder");
    common::finish(a);
}

#[test]
fn a_mailbox_destroy_that_fails_leaves_the_name() {
    let os = common::os();
    let first = os
        .mailbox_create("twice", MailboxConfig::new(Capacity::Bounded(2)))
        .unwrap();
    let second = os.mailbox_open("twice").unwrap();
    os.mailbox_destroy(first).unwrap();
    // Gone already (ENOENT): the destroy fails, and must change nothing.
    assert_eq!(os.mailbox_destroy(second), Err(IpcError::NotFound));
    assert!(
        os.rights(second).is_ok(),
        "a failed mailbox_destroy took the name away"
    );
    os.deallocate(second).unwrap();
    // Refused (EPERM: another user's queue in the sticky /dev/mqueue): the
    // name stays usable.
    let _everyones = os
        .mailbox_create("everyones", MailboxConfig::new(Capacity::Bounded(2)))
        .unwrap();
    let mut child = match os.spawn(
        Spawn::new("destroy-foreign-mailbox")
            .arg("everyones")
            .uid(65534),
    ) {
        Ok(c) => c,
        Err(IpcError::NoPermission) => {
            eprintln!("skipped the EPERM half: test binary not reachable by uid 65534");
            common::finish(os);
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        child.wait_code().unwrap(),
        0,
        "10 + n: see destroy_foreign_mailbox (13: the refused destroy took the name)"
    );
    common::finish(os);
}

/// What `/proc` says of `pid`: `None` once it is gone (reaped), else its
/// state letter (`Z` for a zombie nobody reaps) and parent.
fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

#[test]
fn a_killed_childs_own_children_do_not_outlive_the_run() {
    // Suspect: a child killed with SIGKILL never drops the Child handles of
    // the processes it spawned, so they kept running (re-parented to init)
    // after the run ended, or stayed zombies of an init that never reaps.
    let os = common::os();
    let mut child = os.spawn(Spawn::new("spawn-grandchild")).unwrap();
    let m = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .expect("the grandchild's pid");
    let grandchild = m.as_u64().unwrap() as u32;
    assert!(proc_state(grandchild).is_some(), "the grandchild runs");
    child.kill().unwrap();
    child.wait().unwrap();
    common::finish(os);
    // The run has ended: nothing of it may be left, the grandchild included.
    let t = std::time::Instant::now();
    while let Some(st) = proc_state(grandchild) {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the grandchild {grandchild} outlived the run: state {st:?} (state, parent)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
