//! Shared-memory links (`LinkKind::SharedMemory`): the same messages as a
//! pipe link, a peer killed with `SIGKILL` never hangs the other side,
//! nothing is left in `/dev/shm`, nobody else can reach the memory, and a
//! corrupt frame or ring is `Malformed`.
//!
//! The corrupt cases write into the ring by hand, from the layout documented
//! in `mkipc_os::shm` (a foreign program could do the same).

mod common;
role_entry!();

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mkipc_kernel::error::MalformedFrame;
use mkipc_kernel::{Ipc, Message, Pid, ReceiveError, SendErrorKind, Wait};
use mkipc_os::shm::{MAP_LEN, RING_CAPACITY, RING_SPAN};
use mkipc_os::{LinkEnd, LinkKind, OsProcess, Spawn};
use proptest::prelude::*;

const SHM: LinkKind = LinkKind::SharedMemory;

fn spawn(os: &OsProcess, spec: Spawn) -> mkipc_os::Child {
    os.spawn(spec.link_kind(SHM)).unwrap()
}

#[test]
fn smoke_round_trips_of_every_size() {
    let os = common::os();
    let mut child = spawn(&os, Spawn::new("echo-parent"));
    let pid = child.pid();
    // Sizes around the inline body, a page, the ring (a frame bigger than
    // the ring is written in pieces while the peer reads), and 1 MiB.
    for (i, size) in [
        0,
        1,
        8,
        16,
        17,
        1024,
        4096,
        65_000,
        65_536,
        200_000,
        1 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let body: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
        os.send_to(pid, Message::new(i as u32, body.as_slice()))
            .unwrap();
        let back = os
            .receive_from_with(pid, Wait::For(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(back.id, i as u32);
        assert_eq!(&back.body[..], &body[..], "size {size}");
        assert_eq!(back.sender(), Some(pid));
    }
    // receive_from_any waits on the ring's doorbell.
    os.send_to(pid, Message::from_u64(3, 99)).unwrap();
    let any = os
        .receive_from_any_with(Wait::For(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(any.as_u64(), Some(99));
    os.close_link(pid).unwrap();
    assert_eq!(child.wait_code().unwrap(), 0, "the child saw end of stream");
    common::finish(os);
}

#[test]
fn a_body_over_the_link_limit_is_too_large() {
    let os = common::os();
    let mut child = spawn(&os, Spawn::new("echo-parent"));
    let big = vec![0u8; mkipc_os::LINK_BODY_LIMIT + 1];
    let e = os.send_to(child.pid(), Message::new(1, big)).unwrap_err();
    assert_eq!(
        e.kind(),
        SendErrorKind::TooLarge {
            limit: mkipc_os::LINK_BODY_LIMIT
        }
    );
    child.kill().unwrap();
    child.wait().unwrap();
    common::finish(os);
}

#[test]
fn sigkill_in_the_middle_of_a_stream_ends_it_in_order() {
    let os = common::os();
    let mut child = spawn(&os, Spawn::new("stream-to-parent").arg("1000"));
    let pid = child.pid();
    let wait = Wait::For(Duration::from_secs(10));
    for i in 0..2000u64 {
        let m = os.receive_from_with(pid, wait).unwrap();
        assert_eq!(u64::from_le_bytes(m.body[..8].try_into().unwrap()), i);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What the child wrote before it died comes out in order, then the end:
    // `SourceDead`, or `Truncated` if it died inside a frame.
    let mut next = 2000u64;
    let end = loop {
        match os.receive_from_with(pid, wait) {
            Ok(m) => {
                assert_eq!(u64::from_le_bytes(m.body[..8].try_into().unwrap()), next);
                next += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            end,
            ReceiveError::SourceDead | ReceiveError::Malformed(MalformedFrame::Truncated)
        ),
        "{end:?}"
    );
    assert!(
        next - 2000 <= (RING_CAPACITY / 1000) as u64 + 1,
        "more than a ring of messages"
    );
    assert_eq!(
        os.receive_from_with(pid, Wait::NoWait).unwrap_err(),
        ReceiveError::SourceDead
    );
    common::finish(os);
}

#[test]
fn sigkill_mid_message_truncates_the_frame() {
    let os = common::os();
    // 1 MiB is 16 rings: the child blocks in the middle of the frame.
    let mut child = spawn(&os, Spawn::new("big-to-parent").arg((1 << 20).to_string()));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let e = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap_err();
    assert_eq!(e, ReceiveError::Malformed(MalformedFrame::Truncated));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for a dead peer"
    );
    common::finish(os);
}

#[test]
fn a_receive_blocked_on_a_peer_wakes_when_it_is_killed() {
    let os = std::sync::Arc::new(common::os());
    let mut child = spawn(&os, Spawn::new("linger"));
    let pid = child.pid();
    assert_eq!(&os.receive_from(pid).unwrap().body[..], b"ready");
    let waiter = std::sync::Arc::clone(&os);
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        // Untimed: only the watcher's wake-up can end it.
        let _ = tx.send(waiter.receive_from(pid));
    });
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    child.kill().unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the receive still waits for a dead peer");
    assert_eq!(got.unwrap_err(), ReceiveError::SourceDead);
    assert!(killed.elapsed() < Duration::from_secs(2));
    t.join().unwrap();
    child.wait().unwrap();
    let os = std::sync::Arc::into_inner(os).unwrap();
    common::finish(os);
}

#[test]
fn a_send_blocked_on_a_full_ring_fails_when_the_peer_is_killed() {
    let os = std::sync::Arc::new(common::os());
    let mut child = spawn(&os, Spawn::new("linger"));
    let pid = child.pid();
    assert_eq!(&os.receive_from(pid).unwrap().body[..], b"ready");
    // The child never reads: fill its ring.
    while os
        .try_send_to(pid, Message::new(1, vec![0u8; 1000]))
        .is_ok()
    {}
    let sender = std::sync::Arc::clone(&os);
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(sender.send_to(pid, Message::new(2, vec![0u8; 1000])));
    });
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the send still waits for a dead peer");
    assert_eq!(got.unwrap_err().kind(), SendErrorKind::DestinationDead);
    t.join().unwrap();
    child.wait().unwrap();
    // Later sends fail at once too.
    assert_eq!(
        os.send_to(pid, Message::from_u64(1, 1)).unwrap_err().kind(),
        SendErrorKind::DestinationDead
    );
    let os = std::sync::Arc::into_inner(os).unwrap();
    common::finish(os);
}

#[test]
fn rights_travel_beside_the_ring() {
    // As on a pipe link: the frame in the ring, the descriptors on the
    // link's Unix socket.
    let os = common::os();
    let port = os
        .port_allocate(mkipc_kernel::Capacity::Bounded(4))
        .unwrap();
    let mut child = spawn(&os, Spawn::new("use-received-right"));
    let msg = Message::new(1, b"here is a send right")
        .with_right(port, mkipc_kernel::Disposition::MakeSend);
    os.send_to(child.pid(), msg).unwrap();
    let got = os.receive_timeout(port, Duration::from_secs(10)).unwrap();
    assert_eq!(
        (got.id, &got.body[..]),
        (42, &b"hello through the right"[..])
    );
    assert_eq!(child.wait_code().unwrap(), 0);
    let mut giver = spawn(&os, Spawn::new("give-receive-right"));
    let m = os
        .receive_from_with(giver.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    let moved = m.rights()[0].name;
    let queued = os.receive_timeout(moved, Duration::from_secs(10)).unwrap();
    assert_eq!(&queued.body[..], b"queued before the move");
    assert_eq!(giver.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_pipeline_of_siblings_runs_over_shared_memory() {
    // All three ask for shared memory: both sibling links are rings. Then
    // only the middle one does: its sibling links fall back to pipes.
    for kinds in [[SHM; 3], [LinkKind::Pipe, SHM, LinkKind::Pipe]] {
        let os = common::os();
        let specs = ["source", "filter", "sink"]
            .iter()
            .zip(kinds)
            .map(|(role, kind)| Spawn::new(role).link_kind(kind))
            .collect();
        let mut kids = os.spawn_group(specs, &[(0, 1), (1, 2)]).unwrap();
        let total = os
            .receive_from_with(kids[2].pid(), Wait::For(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(total.as_u64(), Some(4 + 16 + 36 + 64 + 100), "{kinds:?}");
        for k in &mut kids {
            assert_eq!(k.wait_code().unwrap(), 0, "{k:?}");
        }
        common::finish(os);
    }
}

/// Names in `/dev/shm` (one level and the run directories' contents).
fn dev_shm() -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/dev/shm").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(inner) = std::fs::read_dir(e.path()) {
            for i in inner.flatten() {
                out.insert(format!("{name}/{}", i.file_name().to_string_lossy()));
            }
        }
        out.insert(name);
    }
    out
}

#[test]
fn nothing_named_anywhere_even_after_sigkill() {
    let os = common::os();
    let run = os.run_id().to_string();
    let mut child = spawn(&os, Spawn::new("echo-parent"));
    os.send_to(child.pid(), Message::from_u64(1, 5)).unwrap();
    os.receive_from(child.pid()).unwrap();
    // The shared file has no name: the mapping says "(deleted)", and no
    // entry of /dev/shm is it.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.pid().0)).unwrap();
    let line = maps
        .lines()
        .find(|l| l.contains("mkipc-link"))
        .expect("the child maps the link");
    assert!(line.contains("/memfd:mkipc-link (deleted)"), "{line}");
    assert!(
        !dev_shm().iter().any(|n| n.contains("mkipc-link")),
        "a link file has a name in /dev/shm"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dev_shm().iter().any(|n| n.contains("mkipc-link")));
    common::finish(os);
    assert!(
        !dev_shm().iter().any(|n| n.contains(&run)),
        "the run left something in /dev/shm"
    );
}

#[test]
fn another_user_cannot_open_the_memory_but_the_peer_can_use_it() {
    let os = common::os();
    // A link whose end is still a descriptor in this process: the file's
    // mode is 0600, and a process of another user cannot reach it through
    // /proc (root ignores modes, so the other side runs as nobody).
    let (near, _far) = mkipc_os::new_link_of(SHM).unwrap();
    let memfd = near.raw_fds()[0];
    let mode = std::fs::metadata(format!("/proc/self/fd/{memfd}"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let mut prober = os
        .spawn(
            Spawn::new("open-proc-fd")
                .arg(std::process::id().to_string())
                .arg(memfd.to_string())
                .uid(65534),
        )
        .unwrap();
    assert_eq!(prober.wait_code().unwrap(), libc::EACCES);
    drop(near);
    // Given the descriptors, the other user's process maps and uses it.
    let mut child = spawn(&os, Spawn::new("echo-parent").uid(65534));
    os.send_to(child.pid(), Message::new(4, b"as nobody"))
        .unwrap();
    let back = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(&back.body[..], b"as nobody");
    os.close_link(child.pid()).unwrap();
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

// ----- corrupt frames and rings, written by hand ---------------------------------

/// The far end's memory, mapped by hand (it writes ring 1).
struct HandMap {
    ptr: *mut u8,
}

impl HandMap {
    fn new(end: &LinkEnd) -> HandMap {
        let fd = end.raw_fds()[0];
        // SAFETY: a fresh shared mapping of the link's file, MAP_LEN long.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        HandMap { ptr: ptr.cast() }
    }

    fn word<T>(&self, ring: usize, off: usize) -> *mut T {
        // SAFETY: inside the mapping (the documented header offsets).
        unsafe { self.ptr.add(ring * RING_SPAN + off).cast() }
    }

    /// Appends `bytes` to ring 1 and publishes them (`head` at offset 64).
    fn write(&self, bytes: &[u8]) {
        let head = self.word::<u64>(1, 64);
        // SAFETY: the data area starts at 4096; the tests write less than a ring.
        unsafe {
            let at = head.read_volatile() as usize % RING_CAPACITY;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.word(1, 4096 + at), bytes.len());
            head.write_volatile(head.read_volatile() + bytes.len() as u64);
        }
    }

    fn closed(&self, ring: usize) -> u32 {
        // SAFETY: the `closed` word of a ring, offset 192.
        unsafe { self.word::<u32>(ring, 192).read_volatile() }
    }
}

impl Drop for HandMap {
    fn drop(&mut self) {
        // SAFETY: what mmap returned.
        unsafe { libc::munmap(self.ptr.cast(), MAP_LEN) };
    }
}

/// `os` reads ring 1 of a link whose far end this test writes by hand.
fn hand_written_link() -> (OsProcess, HandMap, LinkEnd) {
    let os = common::os();
    let (near, far) = mkipc_os::new_link_of(SHM).unwrap();
    // The peer is this process (alive for the whole test).
    os.adopt_link(Pid(std::process::id()), near).unwrap();
    (os, HandMap::new(&far), far)
}

fn good() -> Vec<u8> {
    common::hand_frame(1, b"good", 4, 0, 2)
}

#[test]
fn a_hand_written_frame_is_received() {
    let (os, map, _far) = hand_written_link();
    map.write(&good());
    let m = os
        .receive_from_with(Pid(std::process::id()), Wait::NoWait)
        .unwrap();
    assert_eq!((m.id, &m.body[..]), (1, &b"good"[..]));
    common::finish(os);
}

#[test]
fn a_bad_frame_in_the_ring_says_what_and_closes_the_link() {
    let mut version = good();
    version[2] = 9;
    let mut checksum = good();
    *checksum.last_mut().unwrap() ^= 1;
    let mut flags = good();
    flags[3] = 0x80;
    let cases = [
        (vec![b'X'; 32], MalformedFrame::Magic),
        (version, MalformedFrame::Version(9)),
        (flags, MalformedFrame::Flags),
        (checksum, MalformedFrame::Checksum),
        (
            common::hand_frame(1, b"", u32::MAX, 0, 2),
            MalformedFrame::Length,
        ),
        (
            common::hand_frame(1, b"", 0, 300, 2),
            MalformedFrame::RightsCount,
        ),
    ];
    let me = Pid(std::process::id());
    for (bytes, kind) in cases {
        let (os, map, _far) = hand_written_link();
        map.write(&bytes);
        map.write(&good());
        let wait = Wait::For(Duration::from_secs(5));
        assert_eq!(
            os.receive_from_with(me, wait).unwrap_err(),
            ReceiveError::Malformed(kind)
        );
        // One writer, out of step: the link is closed, as a pipe link is.
        assert_eq!(
            os.receive_from_with(me, wait).unwrap_err(),
            ReceiveError::SourceDead
        );
        assert_eq!(
            map.closed(1) & 2,
            2,
            "the writer is told the reader is gone"
        );
        common::finish(os);
    }
}

#[test]
fn a_head_beyond_the_ring_is_malformed() {
    let (os, map, _far) = hand_written_link();
    let head = map.word::<u64>(1, 64);
    // SAFETY: the `head` word of ring 1.
    unsafe { head.write_volatile(RING_CAPACITY as u64 + 1) };
    let me = Pid(std::process::id());
    assert_eq!(
        os.receive_from_with(me, Wait::NoWait).unwrap_err(),
        ReceiveError::Malformed(MalformedFrame::Length)
    );
    assert_eq!(
        os.receive_from_with(me, Wait::NoWait).unwrap_err(),
        ReceiveError::SourceDead
    );
    common::finish(os);
}

#[test]
fn a_file_that_is_not_a_link_is_refused() {
    let os = common::os();
    // A pipe end in the file's place: adopt_link must refuse it, not map it.
    let (near, _far) = mkipc_os::new_link_of(SHM).unwrap();
    let (pipe_near, _pipe_far) = mkipc_os::new_link().unwrap();
    let fds = near.raw_fds();
    let pfds = pipe_near.raw_fds();
    // SAFETY: both descriptors are open; dup2 makes the memfd's number name
    // the pipe (the LinkEnd still owns the number and closes it).
    assert!(unsafe { libc::dup2(pfds[0], fds[0]) } >= 0);
    assert_eq!(
        os.adopt_link(Pid(std::process::id()), near).unwrap_err(),
        mkipc_kernel::IpcError::InvalidValue
    );
    common::finish(os);
}

// ----- against a reference model --------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    TrySend(usize),
    ReceiveOne,
    Drain,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0usize..20_000).prop_map(Op::TrySend),
            1 => (0usize..40).prop_map(Op::TrySend),
            1 => Just(Op::ReceiveOne),
            1 => Just(Op::Drain),
        ],
        1..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A ring is a byte stream of RING_CAPACITY bytes: after the reader has
    /// taken everything, a try-send succeeds exactly when the whole frame
    /// (28-byte header + body) fits in the room the model says is left; and
    /// messages always come out in order and whole. (After a single
    /// receive, the reader may have copied more of the ring than one frame
    /// into its buffer, so the model knows the room only up to the next
    /// drain.)
    #[test]
    fn a_ring_is_a_bounded_byte_stream(ops in ops()) {
        let a = common::os();
        let b = OsProcess::join(a.run_id()).unwrap();
        let (near, far) = mkipc_os::new_link_of(SHM).unwrap();
        let me = Pid(std::process::id());
        // `a` writes to `b`; both know each other as this (living) process.
        a.adopt_link(me, near).unwrap();
        b.adopt_link(me, far).unwrap();
        let mut model: std::collections::VecDeque<(u32, usize)> = Default::default();
        let mut used = 0usize;
        let mut exact = true;
        let check = |m: &Message, (id, len): (u32, usize)| {
            m.id == id
                && m.body.len() == len
                && m.body.iter().enumerate().all(|(i, &x)| x == (i + id as usize) as u8)
        };
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::TrySend(len) => {
                    let body: Vec<u8> = (0..len).map(|i| (i + n) as u8).collect();
                    let fits = used + 28 + len <= RING_CAPACITY;
                    let sent = a.try_send_to(me, Message::new(n as u32, body));
                    if let Err(e) = &sent {
                        prop_assert_eq!(e.kind(), SendErrorKind::Full);
                    }
                    if exact {
                        prop_assert_eq!(sent.is_ok(), fits, "{} bytes with {} used", len, used);
                    }
                    if sent.is_ok() {
                        used += 28 + len;
                        model.push_back((n as u32, len));
                    }
                }
                Op::ReceiveOne => {
                    match (b.receive_from_with(me, Wait::NoWait), model.pop_front()) {
                        (Ok(m), Some(want)) => prop_assert!(check(&m, want)),
                        (Err(ReceiveError::Empty), None) => {}
                        (got, want) => prop_assert!(false, "got {:?}, model {:?}", got, want),
                    }
                    exact = false;
                }
                Op::Drain => {
                    loop {
                        match (b.receive_from_with(me, Wait::NoWait), model.pop_front()) {
                            (Ok(m), Some(want)) => prop_assert!(check(&m, want)),
                            (Err(ReceiveError::Empty), None) => break,
                            (got, want) => prop_assert!(false, "got {:?}, model {:?}", got, want),
                        }
                    }
                    used = 0;
                    exact = true;
                }
            }
        }
        drop(b);
        let run = a.run_id().to_string();
        drop(a);
        prop_assert!(mkipc_os::leftovers(&run).is_empty());
    }
}
