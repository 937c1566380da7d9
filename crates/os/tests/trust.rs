//! Forged senders: a process of another user with send access to a mailbox
//! (a POSIX queue) or a FIFO writes crafted frames claiming pid 0 with a
//! notification id, and pid 12345. The receiver must never see a
//! notification, and must see both senders as claimed, not verified; the
//! stranger cannot write into a reply queue at all (where a `NoReply` frame
//! would stand for the send-once notification).
//!
//! Before the fix the pid-0 frame arrived as `sender() = Pid(0)` and decoded
//! as `Notification::SendOnce`, and the reply queue was writable by anyone
//! (mode 0622).

mod common;
role_entry!();

use std::ffi::CString;
use std::time::Duration;

use mkipc_kernel::name::Access;
use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Notification, Pid};

const NOBODY: libc::uid_t = 65534;

/// Runs `f` in a forked child as uid/gid 65534; returns its exit code.
/// `f` may only make system calls (the parent has other threads).
fn as_nobody(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only calls async-signal-safe functions (setgid,
    // setuid, mq_open, mq_send, open, write, _exit) on data prepared before
    // the fork, then exits without unwinding.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let code = if libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                90
            } else {
                f()
            };
            libc::_exit(code);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(libc::WIFEXITED(status), "status {status}");
        libc::WEXITSTATUS(status)
    }
}

fn forged_frames() -> [Vec<u8>; 2] {
    [
        common::hand_frame(Notification::SEND_ONCE_ID, b"", 0, 0, 0),
        common::hand_frame(1, b"hello", 5, 0, 12345),
    ]
}

fn assert_claimed(m: &mkipc_kernel::Message, pid: u32) {
    assert_eq!(m.sender(), Some(Pid(pid)));
    assert!(
        !m.sender_verified(),
        "a queue or FIFO frame's sender is claimed"
    );
    assert_eq!(
        m.notification(),
        None,
        "a stranger's frame is a notification"
    );
}

fn skip_unless_root() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run the foreign writer as uid 65534");
        return true;
    }
    false
}

#[test]
fn a_stranger_writing_to_a_mailbox_cannot_forge_a_notification_or_a_verified_sender() {
    if skip_unless_root() {
        return;
    }
    let os = common::os();
    let mb = os
        .mailbox_create(
            "drop-box",
            MailboxConfig::new(Capacity::Bounded(4)).default_access(Access::SEND),
        )
        .unwrap();
    // A call nobody answers makes this process's reply queue.
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let to_port = os.make_send(port).unwrap();
    let _ = os.call_timeout(
        to_port,
        mkipc_kernel::Message::new(1, b""),
        Duration::from_millis(10),
    );
    let name = CString::new(os.mailbox_posix_name("drop-box")).unwrap();
    let reply = CString::new(format!("/mkipc-{}-{}-reply", os.run_id(), os.pid().0)).unwrap();
    let frames = forged_frames();
    let code = as_nobody(|| {
        // SAFETY: valid NUL-terminated names; frames readable for their length.
        unsafe {
            if libc::mq_open(reply.as_ptr(), libc::O_WRONLY) >= 0 {
                return 20; // could write into the reply queue
            }
            let q = libc::mq_open(name.as_ptr(), libc::O_WRONLY);
            if q < 0 {
                return 21;
            }
            for f in &frames {
                if libc::mq_send(q, f.as_ptr().cast(), f.len(), 0) != 0 {
                    return 22;
                }
            }
        }
        0
    });
    assert_eq!(
        code, 0,
        "20: reply queue writable, 21/22: mailbox not writable"
    );
    assert_claimed(&os.receive_timeout(mb, Duration::from_secs(2)).unwrap(), 0);
    assert_claimed(
        &os.receive_timeout(mb, Duration::from_secs(2)).unwrap(),
        12345,
    );
    let _ = os.try_receive(port);
    common::finish(os);
}

#[test]
fn a_stranger_writing_to_a_fifo_cannot_forge_a_notification_or_a_verified_sender() {
    if skip_unless_root() {
        return;
    }
    let os = common::os();
    let path = os.fifo_path("open-to-all").unwrap();
    let fifo = os.fifo_create(&path, Access::SEND).unwrap();
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let frames = forged_frames();
    let code = as_nobody(|| {
        // SAFETY: valid NUL-terminated path; frames readable for their length.
        unsafe {
            let fd = libc::open(cpath.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK);
            if fd < 0 {
                return 30;
            }
            for f in &frames {
                if libc::write(fd, f.as_ptr().cast(), f.len()) != f.len() as isize {
                    return 31;
                }
            }
        }
        0
    });
    if code == 30 {
        // The run directory is not reachable for uid 65534 here.
        eprintln!("skipped the FIFO half: uid 65534 cannot open {path:?}");
        common::finish(os);
        return;
    }
    assert_eq!(code, 0);
    assert_claimed(
        &os.receive_timeout(fifo, Duration::from_secs(2)).unwrap(),
        0,
    );
    assert_claimed(
        &os.receive_timeout(fifo, Duration::from_secs(2)).unwrap(),
        12345,
    );
    common::finish(os);
}

#[test]
fn a_direct_link_peer_is_a_verified_sender() {
    let a = common::os();
    let b = mkipc_os::OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link().unwrap();
    a.adopt_link(Pid(2), near).unwrap();
    b.adopt_link(Pid(1), far).unwrap();
    b.send_to(
        Pid(1),
        mkipc_kernel::Message::new(Notification::SEND_ONCE_ID, b""),
    )
    .unwrap();
    let m = a.receive_from(Pid(2)).unwrap();
    assert_eq!(m.sender(), Some(Pid(2)));
    assert!(m.sender_verified(), "the link's peer is known");
    assert_eq!(m.notification(), None, "pid 2 is not the kernel");
    drop(b);
    common::finish(a);
}
