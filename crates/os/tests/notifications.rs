//! Notifications on real processes (`crate::notify`): a dead-name
//! notification from the OS when a port's receiver is killed, send-possible
//! from `POLLOUT` on the queue, no-senders while every send right is in this
//! process, and none forged by a frame from another writer.

mod common;
role_entry!();

use std::ffi::CString;
use std::time::Duration;

use mkipc_kernel::error::Unsupported;
use mkipc_kernel::{
    Capacity, Disposition, Ipc, IpcError, MailboxConfig, Message, Notification, NotifyKind,
    ReceiveError,
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

#[test]
fn no_senders_is_ours_to_tell_only_while_every_send_right_is_here() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("echo-parent")).unwrap();
    let notify = os.port_allocate(Capacity::Unbounded).unwrap();
    // No send right at all: at once.
    let bare = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.request_notification(bare, NotifyKind::NoSenders, notify)
        .unwrap();
    assert_eq!(
        os.try_receive(notify).unwrap().notification(),
        Some(Notification::NoSenders(bare))
    );
    // A request outstanding when a send right leaves lapses ...
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.make_send(port).unwrap();
    os.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    os.send_to(
        child.pid(),
        Message::new(1, b"").with_right(port, Disposition::CopySend),
    )
    .unwrap();
    let echoed = os.receive_from(child.pid()).unwrap();
    os.deallocate(port).unwrap();
    assert_eq!(os.try_receive(notify), Err(ReceiveError::Empty), "lapsed");
    // ... and a new one is refused, with the reason.
    assert_eq!(
        os.request_notification(port, NotifyKind::NoSenders, notify),
        Err(IpcError::Unsupported(Unsupported::Notifications))
    );
    drop(echoed);
    // Port-destroyed would have to carry the receive right through a queue.
    assert_eq!(
        os.request_notification(port, NotifyKind::PortDestroyed, notify),
        Err(IpcError::Unsupported(Unsupported::Notifications))
    );
    let _ = child.kill();
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
