//! Shared by every test binary: the roles children play, and the entry test
//! that runs them.
//!
//! A child is this same test binary, re-executed with
//! `role_entry --exact` so that libtest runs only [`role_entry`], which calls
//! [`mkipc_os::child_main`]. In the normal run `role_entry` does nothing.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use mkipc_kernel::name::Access;
use mkipc_kernel::{Capacity, Disposition, Ipc, Message, OnFull, Pid, ReceiveError, SendErrorKind};
use mkipc_os::OsProcess;

/// Every role the tests use.
pub const ROLES: &[(&str, mkipc_os::Role)] = &[
    ("count-until-eof", count_until_eof),
    ("fifo-reader", fifo_reader),
    ("fifo-writer", fifo_writer),
    ("source", source),
    ("filter", filter),
    ("sink", sink),
    ("squarer", squarer),
    ("send-on-inherited", send_on_inherited),
    ("zero-sender", zero_sender),
    ("flood-parent", flood_parent),
    ("write-after-close", write_after_close),
    ("exit-now", |_| 0),
    ("open-mailbox", open_mailbox),
    ("set-mailbox-capacity", set_mailbox_capacity),
    ("exhaust-fds", exhaust_fds),
    ("exhaust-msgqueue-bytes", exhaust_msgqueue_bytes),
    ("exhaust-queues", exhaust_queues),
    (
        "zero-send-without-reply-queue",
        zero_send_without_reply_queue,
    ),
    ("stuck-in-rendezvous", stuck_in_rendezvous),
    ("crashing-root", crashing_root),
    ("use-received-right", use_received_right),
    ("give-receive-right", give_receive_right),
    ("spool-sender", spool_sender),
    ("create-existing-mailbox", create_existing_mailbox),
    ("spool-then-drop", spool_then_drop),
    ("destroy-foreign-mailbox", destroy_foreign_mailbox),
    ("spawn-grandchild", spawn_grandchild),
    ("linger", linger),
    ("port-owner", port_owner),
    ("send-inherited-on-cue", send_inherited_on_cue),
    ("echo-parent", echo_parent),
    ("hold-right-until-cue", hold_right_until_cue),
    ("mailbox-ops", mailbox_ops),
    ("give-receive-keep-send", give_receive_keep_send),
    ("stream-to-parent", stream_to_parent),
    ("big-to-parent", big_to_parent),
    ("open-proc-fd", open_proc_fd),
    ("close-on-cue", close_on_cue),
    ("send-inherited-then-report", send_inherited_then_report),
    ("look-up-and-send", look_up_and_send),
    ("unregister-foreign", unregister_foreign),
    (
        "forward-inherited-into-mailbox",
        forward_inherited_into_mailbox,
    ),
    ("take-a-call-and-die", take_a_call_and_die),
    ("send-on-received-right", send_on_received_right),
    ("send-inherited-and-report", send_inherited_and_report),
    ("try-flood-parent-on-cue", try_flood_parent_on_cue),
    ("grow-parent-link", grow_parent_link),
    ("wait-on-mailbox", wait_on_mailbox),
    ("fill-mailbox", fill_mailbox),
];

/// Opens mailbox args[0], says "ready" to the parent, then sends into it
/// (blocking) until a send fails, at most 100 times, and tells the parent
/// the error and how many went in ("DestinationDead after 3").
fn fill_mailbox(os: &OsProcess) -> i32 {
    let Ok(mb) = os.mailbox_open(&os.args()[0]) else {
        return 10;
    };
    if os.send_to(parent(os), Message::new(1, b"ready")).is_err() {
        return 11;
    }
    let mut sent = 0;
    let said = loop {
        if sent == 100 {
            break "no error after 100".to_string();
        }
        match os.send(mb, Message::new(5, b"fill")) {
            Ok(()) => sent += 1,
            Err(e) => break format!("{:?} after {sent}", e.kind()),
        }
    };
    if os
        .send_to(parent(os), Message::new(2, said.into_bytes()))
        .is_err()
    {
        return 12;
    }
    0
}

/// Opens mailbox args[0], says "ready" to the parent, then blocks in a
/// receive on it with no deadline and tells the parent what ended it: the
/// message's body, or the error (`SourceDead` once it is destroyed).
fn wait_on_mailbox(os: &OsProcess) -> i32 {
    let Ok(mb) = os.mailbox_open(&os.args()[0]) else {
        return 10;
    };
    if os.send_to(parent(os), Message::new(1, b"ready")).is_err() {
        return 11;
    }
    let said = match os.receive(mb) {
        Ok(m) => String::from_utf8_lossy(&m.body).into_owned(),
        Err(e) => format!("{e:?}"),
    };
    if os
        .send_to(parent(os), Message::new(2, said.into_bytes()))
        .is_err()
    {
        return 12;
    }
    0
}

/// Waits for the parent's cue, then `try_send_to`s it 1 KiB frames until
/// one does not fit; exits with how many did (at most 250).
fn try_flood_parent_on_cue(os: &OsProcess) -> i32 {
    let p = parent(os);
    if os.receive_from(p).is_err() {
        return 255;
    }
    let body = vec![7u8; 1024 - mkipc_os::wire::HEADER_LEN];
    for i in 0..250 {
        match os.try_send_to(p, Message::new(i, body.as_slice())) {
            Ok(()) => {}
            Err(e) if e.kind() == SendErrorKind::Full => return i as i32,
            Err(_) => return 254,
        }
    }
    250
}

/// Sets the link from the parent to args[0] pages; exits 0 if that was
/// refused with `NoPermission`, 1 if it was allowed, 2 on another error.
fn grow_parent_link(os: &OsProcess) -> i32 {
    let pages: usize = os.args()[0].parse().unwrap();
    match os.set_link_capacity(parent(os), Capacity::Bounded(pages)) {
        Err(mkipc_kernel::IpcError::NoPermission) => 0,
        Ok(()) => 1,
        Err(e) => {
            eprintln!("grow-parent-link: {e}");
            2
        }
    }
}

/// Takes the right in the parent's first message, sends args[0] messages
/// (ids 0..n, blocking) on it, then tells the parent "done".
fn send_on_received_right(os: &OsProcess) -> i32 {
    let m = os.receive_from(parent(os)).unwrap();
    let right = m.rights()[0].name;
    let n: u32 = os.args()[0].parse().unwrap();
    for i in 0..n {
        os.send(right, Message::new(i, b"on a received right"))
            .unwrap();
    }
    os.send_to(parent(os), Message::new(9, b"done")).unwrap();
    0
}

/// Sends one message (blocking) on the inherited right and tells the
/// parent how it went (id 99, body `ok` or the error kind).
fn send_inherited_and_report(os: &OsProcess) -> i32 {
    let port = os.inherited()[0];
    let said = match os.send(port, Message::new(5, b"waiting for room")) {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    os.send_to(parent(os), Message::new(99, said.as_bytes()))
        .unwrap();
    0
}

/// Defines the entry test children run. Put `role_entry!();` in each test file.
#[macro_export]
macro_rules! role_entry {
    () => {
        #[test]
        fn role_entry() {
            mkipc_os::child_main(common::ROLES);
        }
    };
}

/// A root `OsProcess` for one test, whose children run this binary's roles.
pub fn os() -> OsProcess {
    set_entry_args();
    OsProcess::new().expect("OsProcess")
}

/// Children of this test binary run only `role_entry` (and pass that on to
/// their own children).
pub fn set_entry_args() {
    mkipc_os::set_entry_args(&[
        "role_entry",
        "--exact",
        "--nocapture",
        "-q",
        "--test-threads=1",
    ]);
}

/// Drops `os` and asserts its run left nothing behind.
pub fn finish(os: OsProcess) {
    let run = os.run_id().to_string();
    drop(os);
    let left = mkipc_os::leftovers(&run);
    assert!(left.is_empty(), "run {run} left {left:?}");
}

fn parent(os: &OsProcess) -> Pid {
    os.parent().expect("spawned by mkipc")
}

fn other_peer(os: &OsProcess) -> Pid {
    let p = parent(os);
    os.peers()
        .into_iter()
        .find(|&q| q != p)
        .expect("a sibling link")
}

/// Counts messages from the parent until end of stream; exits with the count.
fn count_until_eof(os: &OsProcess) -> i32 {
    let mut n = 0;
    loop {
        match os.receive_from(parent(os)) {
            Ok(_) => n += 1,
            Err(ReceiveError::SourceDead) => return n,
            Err(e) => {
                eprintln!("count-until-eof: {e}");
                return 100;
            }
        }
    }
}

/// Creates a FIFO at args[0], tells the parent, sums the u64s it receives
/// until id 0, and reports the sum to the parent.
fn fifo_reader(os: &OsProcess) -> i32 {
    let path = Path::new(&os.args()[0]);
    let fifo = os.fifo_create(path, Access::SEND).expect("fifo_create");
    os.send_to(parent(os), Message::new(1, b"ready")).unwrap();
    let mut sum = 0;
    loop {
        let m = os.receive(fifo).expect("fifo receive");
        if m.id == 0 {
            break;
        }
        sum += m.as_u64().unwrap();
    }
    os.send_to(parent(os), Message::from_u64(2, sum)).unwrap();
    0
}

/// Opens the FIFO at args[0] and sends 1..=5, then id 0.
fn fifo_writer(os: &OsProcess) -> i32 {
    let fifo = os.fifo_open(Path::new(&os.args()[0])).expect("fifo_open");
    for i in 1..=5u64 {
        os.send(fifo, Message::from_u64(1, i)).unwrap();
    }
    os.send(fifo, Message::new(0, b"")).unwrap();
    0
}

/// Pipeline stage 1: sends 1..=10 to the next stage.
fn source(os: &OsProcess) -> i32 {
    let next = other_peer(os);
    for i in 1..=10u64 {
        os.send_to(next, Message::from_u64(1, i)).unwrap();
    }
    0
}

/// Pipeline stage 2: squares the even numbers, drops the odd ones, until
/// the source's end of stream.
fn filter(os: &OsProcess) -> i32 {
    let p = parent(os);
    let from = os
        .senders()
        .into_iter()
        .find(|&q| q != p)
        .expect("a source");
    let to = os
        .receivers()
        .into_iter()
        .find(|&q| q != p)
        .expect("a sink");
    let mut forwarded = 0;
    loop {
        match os.receive_from(from) {
            Ok(m) => {
                let x = m.as_u64().unwrap();
                if x % 2 == 0 {
                    os.send_to(to, Message::from_u64(1, x * x)).unwrap();
                    forwarded += 1;
                }
            }
            Err(ReceiveError::SourceDead) => return if forwarded == 5 { 0 } else { 1 },
            Err(e) => panic!("filter: {e}"),
        }
    }
}

/// Pipeline stage 3: sums until the filter's end of stream, reports to the parent.
fn sink(os: &OsProcess) -> i32 {
    let prev = other_peer(os);
    let mut sum = 0;
    while let Ok(m) = os.receive_from(prev) {
        sum += m.as_u64().unwrap();
    }
    os.send_to(parent(os), Message::from_u64(3, sum)).unwrap();
    0
}

/// Worker: squares whatever the master sends until end of stream.
fn squarer(os: &OsProcess) -> i32 {
    let master = parent(os);
    let mut done = 0;
    while let Ok(m) = os.receive_from(master) {
        let x = m.as_u64().unwrap();
        os.send_to(master, Message::from_u64(m.id, x * x)).unwrap();
        done += 1;
    }
    done
}

/// Sends args[1] u64 messages (0..n) to the inherited right, then says "done"
/// to the parent.
fn send_on_inherited(os: &OsProcess) -> i32 {
    let port = os.inherited()[0];
    let n: u64 = os.args()[0].parse().unwrap();
    for i in 0..n {
        os.send(port, Message::from_u64(1, i)).unwrap();
    }
    os.send_to(parent(os), Message::new(9, b"done")).unwrap();
    0
}

/// Sends one message to the inherited zero-capacity port, then tells the parent.
fn zero_sender(os: &OsProcess) -> i32 {
    let port = os.inherited()[0];
    os.send(port, Message::new(5, b"rendezvous")).unwrap();
    os.send_to(parent(os), Message::new(6, b"sent")).unwrap();
    0
}

/// Sends to the parent forever (it is killed mid-send).
fn flood_parent(os: &OsProcess) -> i32 {
    let p = parent(os);
    // 1 KiB frames: four to a pipe page.
    let body = vec![7u8; 1024 - mkipc_os::wire::HEADER_LEN];
    for i in 0.. {
        if os.send_to(p, Message::new(i, body.as_slice())).is_err() {
            return 1;
        }
    }
    0
}

/// Waits for "go", then writes to the parent until the write fails:
/// exit 0 if it failed with DestinationDead (EPIPE), so SIGPIPE did not kill us.
fn write_after_close(os: &OsProcess) -> i32 {
    let p = parent(os);
    let _ = os.receive_from(p);
    for _ in 0..10_000 {
        match os.send_to(p, Message::new(1, b"anyone?")) {
            Ok(()) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == SendErrorKind::DestinationDead => {
                let m = e.into_message();
                return if m.id == 1 { 0 } else { 3 };
            }
            Err(e) => {
                eprintln!("write-after-close: {e}");
                return 2;
            }
        }
    }
    4
}

/// Opens mailbox args[0]; exits with 0 if denied, 10 + access bits otherwise.
fn open_mailbox(os: &OsProcess) -> i32 {
    match os.mailbox_open(&os.args()[0]) {
        Err(mkipc_kernel::IpcError::NoPermission) => 0,
        Ok(mb) => {
            let access = os.rights(mb).unwrap().mailbox.unwrap();
            let denied = matches!(os.try_receive(mb), Err(ReceiveError::NoPermission));
            10 + access.send as i32 + 2 * access.receive as i32 + 4 * denied as i32
        }
        Err(e) => {
            eprintln!("open-mailbox: {e}");
            1
        }
    }
}

/// Opens the mailbox named args[0] and tries to set its capacity to one:
/// exit 0 if refused with `NoPermission`, 1 if it changed, 2 otherwise.
fn set_mailbox_capacity(os: &OsProcess) -> i32 {
    let Ok(mb) = os.mailbox_open(&os.args()[0]) else {
        return 2;
    };
    match os.set_capacity(mb, Capacity::Bounded(1)) {
        Err(mkipc_kernel::IpcError::NoPermission) => 0,
        Ok(()) => 1,
        Err(e) => {
            eprintln!("set-mailbox-capacity: {e}");
            2
        }
    }
}

/// Lowers RLIMIT_NOFILE, allocates ports until that fails: exit 0 on EMFILE.
fn exhaust_fds(os: &OsProcess) -> i32 {
    let lim = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: a valid rlimit; lowering our own limit is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    let mut held = Vec::new();
    for _ in 0..100 {
        match os.port_allocate(Capacity::Bounded(1)) {
            Ok(p) => held.push(p),
            Err(mkipc_kernel::IpcError::Limit(mkipc_kernel::error::Limit::RlimitNofile {
                max: 64,
            })) => return if held.len() > 5 { 0 } else { 2 },
            Err(e) => {
                eprintln!("exhaust-fds: {e}");
                return 3;
            }
        }
    }
    1
}

/// Lowers its `RLIMIT_MSGQUEUE` below one queue's size, then creates a
/// mailbox: exit 0 if that fails naming the rlimit.
fn exhaust_msgqueue_bytes(os: &OsProcess) -> i32 {
    let lim = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: a valid rlimit; lowering our own limit is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_MSGQUEUE, &lim) };
    let config = mkipc_kernel::MailboxConfig::new(Capacity::Bounded(1));
    match os.mailbox_create("too-many-bytes", config) {
        Err(mkipc_kernel::IpcError::Limit(mkipc_kernel::error::Limit::RlimitMsgqueue {
            bytes: 1024,
        })) => 0,
        other => {
            eprintln!("exhaust-msgqueue-bytes: {other:?}");
            1
        }
    }
}

/// Opens the rendezvous mailbox args[0], lowers its `RLIMIT_MSGQUEUE` so
/// its reply queue (where the acknowledgement comes) cannot be made, then
/// sends: exit 0 if the send fails naming that limit (`RLIMIT_MSGQUEUE`)
/// and gives the message back.
fn zero_send_without_reply_queue(os: &OsProcess) -> i32 {
    let mb = os.mailbox_open(&os.args()[0]).expect("mailbox_open");
    let lim = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: a valid rlimit; lowering our own limit is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_MSGQUEUE, &lim) };
    match os.send_timeout(mb, Message::new(9, b"ack me"), Duration::from_secs(1)) {
        Err(e)
            if matches!(
                e.kind(),
                SendErrorKind::Limit(mkipc_kernel::error::Limit::RlimitMsgqueue { .. })
            ) && e.message().id == 9 =>
        {
            0
        }
        other => {
            eprintln!("zero-send-without-reply-queue: {other:?}");
            1
        }
    }
}

/// In an IPC namespace of its own (so no other test loses its queues),
/// with `queues_max` lowered to 16 there (256 queues of 8 KiB would pass the
/// `RLIMIT_MSGQUEUE` all of root's queues share), allocates ports until
/// `queues_max` says no: exit 0 if that fails naming the limit.
fn exhaust_queues(os: &OsProcess) -> i32 {
    // SAFETY: unshare takes flags and touches no memory.
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
        eprintln!(
            "exhaust-queues: unshare: {}",
            std::io::Error::last_os_error()
        );
        return 2;
    }
    let max: usize = 16;
    if let Err(e) = std::fs::write("/proc/sys/fs/mqueue/queues_max", max.to_string()) {
        eprintln!("exhaust-queues: lowering queues_max: {e}");
        return 2;
    }
    let mut held = Vec::new();
    for _ in 0..=max {
        match os.port_allocate(Capacity::Bounded(1)) {
            Ok(p) => held.push(p),
            Err(mkipc_kernel::IpcError::Limit(mkipc_kernel::error::Limit::MqQueuesMax {
                max: m,
            })) if m == max && held.len() == max => return 0,
            Err(e) => {
                eprintln!("exhaust-queues: after {} of {max}: {e:?}", held.len());
                return 1;
            }
        }
    }
    eprintln!("exhaust-queues: {max} queues and no limit");
    3
}

/// Creates its own mailbox, tells the parent, then blocks in a rendezvous
/// send to the parent's zero-capacity mailbox args[0] (it is killed there).
fn stuck_in_rendezvous(os: &OsProcess) -> i32 {
    let _mine = os
        .mailbox_create(
            "child-owned",
            mkipc_kernel::MailboxConfig::new(Capacity::Bounded(2)),
        )
        .unwrap();
    let target = os.mailbox_open(&os.args()[0]).unwrap();
    os.send_to(parent(os), Message::new(1, b"about to block"))
        .unwrap();
    let _ = os.send(target, Message::new(2, b"nobody takes this"));
    0
}

/// Starts a run of its own (as if unrelated), makes a mailbox and a FIFO,
/// reports the run id, and waits to be killed.
fn crashing_root(os: &OsProcess) -> i32 {
    let mine = OsProcess::new().unwrap();
    mine.mailbox_create(
        "orphan",
        mkipc_kernel::MailboxConfig::new(Capacity::Bounded(1)),
    )
    .unwrap();
    mine.fifo_create(&mine.fifo_path("orphan").unwrap(), Access::NONE)
        .unwrap();
    os.send_to(parent(os), Message::new(1, mine.run_id()))
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
    0
}

/// Receives a message carrying a send right, sends "hello" through the right.
fn use_received_right(os: &OsProcess) -> i32 {
    let m = os.receive_from(parent(os)).unwrap();
    let right = m.rights()[0];
    assert_eq!(right.disposition, Disposition::MoveSend);
    os.send(right.name, Message::new(42, b"hello through the right"))
        .unwrap();
    0
}

/// Allocates a port, queues a message in it, and moves the receive right to the parent.
fn give_receive_right(os: &OsProcess) -> i32 {
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let s = os.make_send(port).unwrap();
    os.send(s, Message::new(7, b"queued before the move"))
        .unwrap();
    let m = Message::new(1, b"take my port").with_right(port, Disposition::MoveReceive);
    os.send_to(parent(os), m).unwrap();
    // The receive right is gone from this process now.
    let gone = os.try_receive(port).is_err();
    if gone {
        0
    } else {
        1
    }
}

/// Sends args[0] messages to the inherited (unbounded) right without waiting,
/// reports how long that took, then exits (its drop flushes the spool).
fn spool_sender(os: &OsProcess) -> i32 {
    let port = os.inherited()[0];
    let n: u64 = os.args()[0].parse().unwrap();
    for i in 0..n {
        if os
            .send_with(port, Message::from_u64(1, i), OnFull::Fail)
            .is_err()
        {
            return 1;
        }
    }
    os.send_to(parent(os), Message::new(9, b"all sent"))
        .unwrap();
    0
}

/// Tries to create mailbox args[0], which the parent already made: exit 0
/// if that fails with AlreadyExists.
fn create_existing_mailbox(os: &OsProcess) -> i32 {
    match os.mailbox_create(
        &os.args()[0],
        mkipc_kernel::MailboxConfig::new(Capacity::Bounded(1)),
    ) {
        Err(mkipc_kernel::IpcError::AlreadyExists) => 0,
        other => {
            eprintln!("create-existing-mailbox: {other:?}");
            1
        }
    }
}

pub fn spool_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "mkipc-spool")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Whether the flusher shows up (it names itself once it runs).
pub fn one_spool_thread_soon() -> bool {
    for _ in 0..100 {
        if spool_threads() == 1 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// In a run of its own, spools messages into an unbounded port nobody
/// receives from, and checks that the spool's flusher thread and the queue's
/// descriptors do not outlive the port: first destroying the port (exit 30 +
/// threads left), then dropping the whole `OsProcess` (10 + threads left, or
/// 20 if descriptors are left). Exit 0 if nothing is left.
fn spool_then_drop(_os: &OsProcess) -> i32 {
    let fds_before = open_fds();
    let mine = OsProcess::new().unwrap();
    let doomed = mine.port_allocate(Capacity::Unbounded).unwrap();
    let to_doomed = mine.make_send(doomed).unwrap();
    for i in 0..30 {
        mine.send_with(to_doomed, Message::from_u64(1, i), OnFull::Fail)
            .unwrap();
    }
    if !one_spool_thread_soon() {
        return 2; // the test would prove nothing
    }
    mine.mod_refs(doomed, mkipc_kernel::name::RightKind::Receive, -1)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let threads = spool_threads();
    if threads > 0 {
        return 30 + threads as i32;
    }
    let port = mine.port_allocate(Capacity::Unbounded).unwrap();
    let send = mine.make_send(port).unwrap();
    for i in 0..30 {
        mine.send_with(send, Message::from_u64(1, i), OnFull::Fail)
            .unwrap();
    }
    if !one_spool_thread_soon() {
        return 2; // the test would prove nothing
    }
    drop(mine);
    // The flusher polls in 100 ms slices: give it time to notice.
    std::thread::sleep(Duration::from_millis(500));
    let threads = spool_threads();
    if threads > 0 {
        return 10 + threads as i32;
    }
    if open_fds() > fds_before {
        return 20;
    }
    0
}

/// Opens mailbox args[0] (made by another user, open to all), tries to
/// destroy it, which the OS refuses: exit 0 if that is `NoPermission` and the
/// name still works afterwards (10 + n for what went wrong).
fn destroy_foreign_mailbox(os: &OsProcess) -> i32 {
    let Ok(mb) = os.mailbox_open(&os.args()[0]) else {
        return 10;
    };
    if os.rights(mb).ok().and_then(|r| r.mailbox) != Some(Access::ALL) {
        return 11; // the test would prove nothing
    }
    match os.mailbox_destroy(mb) {
        Err(mkipc_kernel::IpcError::NoPermission) => {}
        other => {
            eprintln!("destroy-foreign-mailbox: {other:?}");
            return 12;
        }
    }
    if os.rights(mb).is_err() {
        return 13; // the failed destroy took the name away
    }
    if os.send(mb, Message::new(3, b"still mine to use")).is_err() {
        return 14;
    }
    0
}

/// Spawns a "linger" child, waits until it is ready, tells the parent its
/// pid (as a u64), then waits to be killed, still holding the child's handle.
fn spawn_grandchild(os: &OsProcess) -> i32 {
    // No `set_entry_args` here: a child passes on the arguments it was
    // started with (without that, the grandchild would run every test).
    let child = os
        .spawn(mkipc_os::Spawn::new("linger"))
        .expect("spawn linger");
    let _ = os.receive_from(child.pid()).expect("linger ready");
    os.send_to(parent(os), Message::from_u64(1, child.pid().0 as u64))
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop(child);
    0
}

/// Makes a mailbox of its own, says so to the parent, then stays (30 s).
fn linger(os: &OsProcess) -> i32 {
    let _mine = os
        .mailbox_create(
            "linger-owned",
            mkipc_kernel::MailboxConfig::new(Capacity::Bounded(1)),
        )
        .unwrap();
    os.send_to(parent(os), Message::new(1, b"ready")).unwrap();
    std::thread::sleep(Duration::from_secs(30));
    0
}

/// CRC-32 as zlib computes it, bit by bit (a foreign program's version,
/// independent of `mkipc_os::wire`).
pub fn hand_crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A version-2 frame built by hand from DESIGN.md's "Wire format" table:
/// 28-byte header (the check is CRC-32 of bytes 0..24 then the rest), then
/// the body. `body_len` is what the header announces.
pub fn hand_frame(id: u32, body: &[u8], body_len: u32, nrights: u16, pid: u32) -> Vec<u8> {
    let mut f = vec![b'M', b'K', 2, 0];
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&body_len.to_le_bytes());
    f.extend_from_slice(&nrights.to_le_bytes());
    f.extend_from_slice(&[0, 0]); // reserved
    f.extend_from_slice(&pid.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes()); // token
    let mut checked = f.clone();
    checked.extend_from_slice(body);
    f.extend_from_slice(&hand_crc32(&checked).to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// Allocates a one-slot port (zero-capacity with arg "zero"), gives the
/// parent a send right to it, then exits (and the port dies with it) when
/// the parent says so.
fn port_owner(os: &OsProcess) -> i32 {
    let capacity = match os.args().first().map(String::as_str) {
        Some("zero") => Capacity::Zero,
        _ => Capacity::Bounded(1),
    };
    let port = os.port_allocate(capacity).unwrap();
    let m = Message::new(1, b"my port").with_right(port, Disposition::MakeSend);
    os.send_to(parent(os), m).unwrap();
    let _ = os.receive_from(parent(os));
    0
}

/// Waits for a cue from the parent, sends once to the inherited right, and
/// tells the parent what the send returned (`ok` or the error kind).
fn send_inherited_on_cue(os: &OsProcess) -> i32 {
    let port = os.inherited()[0];
    let _ = os.receive_from(parent(os));
    let said = match os.try_send(port, Message::new(5, b"anyone?")) {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    os.send_to(parent(os), Message::new(6, said.as_bytes()))
        .unwrap();
    0
}

/// Takes the right in the parent's first message, says "holding", and
/// releases it (`deallocate`) when the parent's second message comes; then
/// says "released" and lives until end of stream.
fn hold_right_until_cue(os: &OsProcess) -> i32 {
    let m = os.receive_from(parent(os)).unwrap();
    let right = m.rights()[0].name;
    os.send_to(parent(os), Message::new(1, b"holding")).unwrap();
    if os.receive_from(parent(os)).is_err() {
        return 1;
    }
    os.deallocate(right).unwrap();
    os.send_to(parent(os), Message::new(2, b"released"))
        .unwrap();
    while os.receive_from(parent(os)).is_ok() {}
    0
}

/// Allocates a port, keeps a send right to it, moves the receive right to
/// the parent; releases the send right when the parent's next message
/// comes, says "released", and lives until end of stream.
fn give_receive_keep_send(os: &OsProcess) -> i32 {
    let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let send = os.make_send(port).unwrap();
    let m = Message::new(1, b"take my port").with_right(port, Disposition::MoveReceive);
    os.send_to(parent(os), m).unwrap();
    if os.receive_from(parent(os)).is_err() {
        return 1;
    }
    os.deallocate(send).unwrap();
    os.send_to(parent(os), Message::new(2, b"released"))
        .unwrap();
    while os.receive_from(parent(os)).is_ok() {}
    0
}

/// Does what the parent's messages say on the mailbox named args[0]
/// (`open`, `send`, `receive`) and answers each with the outcome (`ok`, or
/// the error's `Debug`), until end of stream.
fn mailbox_ops(os: &OsProcess) -> i32 {
    let mut mb = None;
    while let Ok(m) = os.receive_from(parent(os)) {
        let said = match (&m.body[..], mb) {
            (b"open", _) => match os.mailbox_open(&os.args()[0]) {
                Ok(name) => {
                    mb = Some(name);
                    "ok".to_string()
                }
                Err(e) => format!("{e:?}"),
            },
            (b"send", Some(name)) => match os.try_send(name, Message::new(9, b"from the child")) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("{:?}", e.kind()),
            },
            (b"receive", Some(name)) => match os.try_receive(name) {
                Ok(m) => String::from_utf8_lossy(&m.body).into_owned(),
                Err(e) => format!("{e:?}"),
            },
            _ => "not opened".to_string(),
        };
        if os
            .send_to(parent(os), Message::new(1, said.into_bytes()))
            .is_err()
        {
            return 1;
        }
    }
    0
}

/// Sends every message from the parent back to it, until end of stream.
fn echo_parent(os: &OsProcess) -> i32 {
    loop {
        match os.receive_from(parent(os)) {
            Ok(m) => {
                if os.send_to(parent(os), m).is_err() {
                    return 2;
                }
            }
            Err(ReceiveError::SourceDead) => return 0,
            Err(e) => {
                eprintln!("echo-parent: {e}");
                return 100;
            }
        }
    }
}

/// Sends the parent messages 0, 1, 2, ... (id 1, the number as body, padded
/// to args[0] bytes) until a send fails.
fn stream_to_parent(os: &OsProcess) -> i32 {
    let size: usize = os.args()[0].parse().unwrap();
    for i in 0u64.. {
        let mut body = i.to_le_bytes().to_vec();
        body.resize(size.max(8), 0x5a);
        if os.send_to(parent(os), Message::new(1, body)).is_err() {
            return 0;
        }
    }
    0
}

/// Sends the parent one message of args[0] bytes (blocking until it is all
/// written), then waits to be killed.
fn big_to_parent(os: &OsProcess) -> i32 {
    let size: usize = os.args()[0].parse().unwrap();
    os.send_to(parent(os), Message::new(7, vec![0xa5; size]))
        .unwrap();
    std::thread::sleep(Duration::from_secs(30));
    0
}

/// Tries to open `/proc/<args[0]>/fd/<args[1]>` read-write; exits with the
/// errno it got (0 if the open succeeded).
fn open_proc_fd(os: &OsProcess) -> i32 {
    let path = format!("/proc/{}/fd/{}", os.args()[0], os.args()[1]);
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(255),
    }
}

/// Gives the parent a send right to a bounded(4) port, then on cue 1 closes
/// the port, drains it and reports how many messages it drained and what
/// the next receive said (`"<n> <error>"`, id 11); on cue 2 destroys the
/// receive right and reports (id 12); then waits for end of stream.
fn close_on_cue(os: &OsProcess) -> i32 {
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let m = Message::new(1, b"my port").with_right(port, Disposition::MakeSend);
    os.send_to(parent(os), m).unwrap();
    while let Ok(cue) = os.receive_from(parent(os)) {
        match cue.id {
            1 => {
                os.close(port).unwrap();
                let mut drained = 0;
                let end = loop {
                    match os.receive_timeout(port, Duration::from_secs(5)) {
                        Ok(_) => drained += 1,
                        Err(e) => break e,
                    }
                };
                let said = format!("{drained} {end:?}");
                os.send_to(parent(os), Message::new(11, said.as_bytes()))
                    .unwrap();
            }
            2 => {
                os.mod_refs(port, mkipc_kernel::name::RightKind::Receive, -1)
                    .unwrap();
                os.send_to(parent(os), Message::new(12, b"destroyed"))
                    .unwrap();
            }
            _ => {}
        }
    }
    0
}

/// On cue from the parent, sends `args[0]` (a message id) to the inherited
/// right, then tells the parent it did (id 99).
fn send_inherited_then_report(os: &OsProcess) -> i32 {
    let port = os.inherited()[0];
    let id: u32 = os.args()[0].parse().unwrap();
    let _ = os.receive_from(parent(os));
    os.send(port, Message::new(id, b"from the child")).unwrap();
    os.send_to(parent(os), Message::new(99, b"sent")).unwrap();
    0
}

/// Looks up the service `args[0]`, sends it message 7, and tells the parent
/// what happened (id 99, body `ok` or the error).
fn look_up_and_send(os: &OsProcess) -> i32 {
    let said = match os.look_up(&os.args()[0]) {
        Ok(right) => match os.send(right, Message::new(7, b"found you")) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("{:?}", e.kind()),
        },
        Err(e) => format!("{e:?}"),
    };
    os.send_to(parent(os), Message::new(99, said.as_bytes()))
        .unwrap();
    0
}

/// Tries to unregister the service `args[0]` (registered by another
/// process) and tells the parent the result (id 99).
fn unregister_foreign(os: &OsProcess) -> i32 {
    let said = format!("{:?}", os.unregister(&os.args()[0]));
    os.send_to(parent(os), Message::new(99, said.as_bytes()))
        .unwrap();
    0
}

/// Sends a copy of the inherited send right into the mailbox `args[0]`,
/// then exits at once (the right waits in the queue, deposited with the
/// run's broker).
fn forward_inherited_into_mailbox(os: &OsProcess) -> i32 {
    let right = os.inherited()[0];
    let mb = os.mailbox_open(&os.args()[0]).unwrap();
    let m = Message::new(3, b"a right for you").with_right(right, Disposition::CopySend);
    os.send(mb, m).unwrap();
    0
}

/// Takes one call request from the mailbox `args[0]`, then kills itself
/// with `SIGKILL` without replying (no code of its own runs after).
fn take_a_call_and_die(os: &OsProcess) -> i32 {
    let mb = os.mailbox_open(&os.args()[0]).unwrap();
    let request = os.receive(mb).unwrap();
    assert!(request.reply().is_some());
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: kill of our own pid; nothing after it runs.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("killed")
}
