//! A destroyed mailbox wakes the receives blocked on it (`queue::GONE_ID`):
//! `mq_unlink` wakes nobody, so whoever destroys a mailbox empties it and
//! fills it with gone frames; a receive blocked in `mq_receive` (no timer,
//! no watch slice) wakes, sees the name gone and ends with `SourceDead`,
//! putting the frame back for the next waiter. A gone frame under a name
//! that still exists is forged or stale, and no receive delivers it.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Message, ReceiveError};
use mkipc_os::Spawn;

#[test]
fn every_receive_blocked_on_a_destroyed_mailbox_ends_with_source_dead() {
    let os = common::os();
    // Three waiters, room for two frames: the third is woken by a frame a
    // woken one put back.
    let mb = os
        .mailbox_create("gone-waiters", MailboxConfig::new(Capacity::Bounded(2)))
        .unwrap();
    os.send(mb, Message::new(7, b"left behind")).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            os.spawn(Spawn::new("wait-on-mailbox").arg("gone-waiters"))
                .unwrap()
        })
        .collect();
    for c in &children {
        let ready = os.receive_from_timeout(c.pid(), Duration::from_secs(10));
        assert_eq!(ready.map(|m| m.body.to_vec()), Ok(b"ready".to_vec()));
    }
    // The first waiter takes the queued message; the others block.
    let mut said: Vec<String> = Vec::new();
    let first = children
        .iter()
        .map(|c| os.receive_from_timeout(c.pid(), Duration::from_millis(300)))
        .filter_map(Result::ok)
        .map(|m| String::from_utf8_lossy(&m.body).into_owned());
    said.extend(first);
    assert_eq!(said, ["left behind"], "one waiter took the message");
    os.mailbox_destroy(mb).unwrap();
    for c in &children {
        if let Ok(m) = os.receive_from_timeout(c.pid(), Duration::from_secs(10)) {
            said.push(String::from_utf8_lossy(&m.body).into_owned());
        }
    }
    said.sort();
    assert_eq!(said, ["SourceDead", "SourceDead", "left behind"]);
    for mut c in children {
        assert_eq!(c.wait_code().unwrap(), 0);
    }
    common::finish(os);
}

#[test]
fn a_send_blocked_on_a_full_destroyed_mailbox_ends_with_destination_dead() {
    let os = common::os();
    let mb = os
        .mailbox_create("gone-full", MailboxConfig::new(Capacity::Bounded(2)))
        .unwrap();
    let mut child = os
        .spawn(Spawn::new("fill-mailbox").arg("gone-full"))
        .unwrap();
    let ready = os.receive_from_timeout(child.pid(), Duration::from_secs(10));
    assert_eq!(ready.map(|m| m.body.to_vec()), Ok(b"ready".to_vec()));
    // Two go in; the third waits inside `mq_send` (nothing says when it
    // starts to: if the destruction comes first, the send fails at once).
    std::thread::sleep(Duration::from_millis(200));
    os.mailbox_destroy(mb).unwrap();
    let said = os
        .receive_from_timeout(child.pid(), Duration::from_secs(10))
        .map(|m| String::from_utf8_lossy(&m.body).into_owned());
    let said = said.unwrap();
    assert!(
        ["DestinationDead after 2", "DestinationDead after 3"].contains(&said.as_str()),
        "{said}"
    );
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_spool_for_a_destroyed_mailbox_ends_its_flusher() {
    let os = common::os();
    let mb = os
        .mailbox_create("gone-spooled", MailboxConfig::new(Capacity::Unbounded))
        .unwrap();
    // More than the queue holds: the rest waits in this process's spool.
    for i in 0..30 {
        os.send(mb, Message::from_u64(1, i)).unwrap();
    }
    assert!(
        common::one_spool_thread_soon(),
        "the test would prove nothing"
    );
    os.mailbox_destroy(mb).unwrap();
    // The flusher polls in 100 ms slices: give it time to notice.
    let mut left = common::spool_threads();
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        left = common::spool_threads();
    }
    assert_eq!(left, 0, "a flusher outlived its destroyed mailbox");
    common::finish(os);
}

#[test]
fn a_gone_frame_into_a_mailbox_that_exists_is_never_delivered() {
    let os = common::os();
    let mb = os
        .mailbox_create("gone-forged", MailboxConfig::new(Capacity::Bounded(4)))
        .unwrap();
    // Sender 0, the gone frame's id, empty: as a destruction writes it.
    let forged = mkipc_os::wire::encode(&Message::new(mkipc_os::queue::GONE_ID, b""), 0, 0, 0, &[]);
    let name = std::ffi::CString::new(os.mailbox_posix_name("gone-forged")).unwrap();
    // SAFETY: a valid NUL-terminated name; the descriptor is closed below.
    let q = unsafe { libc::mq_open(name.as_ptr(), libc::O_WRONLY) };
    assert!(q >= 0, "mq_open: {}", std::io::Error::last_os_error());
    // SAFETY: `forged` is readable for its length; q is a queue descriptor.
    let sent = unsafe { libc::mq_send(q, forged.as_ptr().cast(), forged.len(), 0) };
    assert_eq!(sent, 0, "mq_send: {}", std::io::Error::last_os_error());
    // SAFETY: q was opened above and is closed once.
    unsafe { libc::mq_close(q) };
    os.send(mb, Message::new(3, b"real")).unwrap();
    let m = os.receive_timeout(mb, Duration::from_secs(5)).unwrap();
    assert_eq!((m.id, &m.body[..]), (3, &b"real"[..]));
    assert_eq!(
        os.receive_timeout(mb, Duration::from_millis(50))
            .map(|m| m.id),
        Err(ReceiveError::TimedOut)
    );
    os.mailbox_destroy(mb).unwrap();
    common::finish(os);
}
