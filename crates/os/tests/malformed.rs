//! Malformed frames: what a receive says about them (`MalformedFrame`), and
//! what becomes of the stream. A pipe link (one writer) is closed; a FIFO
//! (any number of writers) resynchronises, so a bad writer never blocks a
//! good one. Frames are built by hand (`common::hand_frame`).
//!
//! Each test failed before its fix: `Malformed` said nothing, a bad frame
//! poisoned the pipe or FIFO for good, and a frame announcing rights that
//! never came blocked a timed receive past its deadline.

mod common;
role_entry!();

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mkipc_kernel::error::MalformedFrame;
use mkipc_kernel::name::Access;
use mkipc_kernel::{Ipc, Message, Pid, ReceiveError, SendErrorKind};
use mkipc_os::OsProcess;

/// `a` knows `b` as pid 2; returns also the write end of the pipe that
/// carries `b`'s frames to `a`, and the rights socket of `b`'s end.
fn linked_pair() -> (OsProcess, OsProcess, RawFd, RawFd) {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link().unwrap();
    let [_, tx, sock] = far.raw_fds()[..] else {
        unreachable!("a pipe end has three descriptors")
    };
    a.adopt_link(Pid(2), near).unwrap();
    b.adopt_link(Pid(1), far).unwrap();
    (a, b, tx, sock)
}

fn write_raw(fd: RawFd, bytes: &[u8]) {
    // SAFETY: `fd` is an open descriptor the caller keeps alive; `bytes` is
    // readable for its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(
        n,
        bytes.len() as isize,
        "{}",
        std::io::Error::last_os_error()
    );
}

fn good() -> Vec<u8> {
    common::hand_frame(1, b"good", 4, 0, 2)
}

/// Every kind of bad frame a single writer can put on a pipe, and the kind
/// the receive reports.
fn bad_frames() -> Vec<(&'static str, Vec<u8>, MalformedFrame)> {
    let mut version = good();
    version[2] = 9;
    let mut checksum = good();
    *checksum.last_mut().unwrap() ^= 1;
    let mut flags = good();
    flags[3] = 0x80;
    vec![
        (
            "magic",
            b"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".to_vec(),
            MalformedFrame::Magic,
        ),
        ("version", version, MalformedFrame::Version(9)),
        ("flags", flags, MalformedFrame::Flags),
        ("checksum", checksum, MalformedFrame::Checksum),
        (
            "length",
            common::hand_frame(1, b"", u32::MAX, 0, 2),
            MalformedFrame::Length,
        ),
        (
            "rights",
            common::hand_frame(1, b"", 0, 300, 2),
            MalformedFrame::RightsCount,
        ),
    ]
}

#[test]
fn smoke_a_bad_frame_on_a_pipe_says_what_and_closes_the_link() {
    for (what, bytes, kind) in bad_frames() {
        let (a, b, tx, _) = linked_pair();
        write_raw(tx, &bytes);
        assert_eq!(
            a.receive_from_timeout(Pid(2), Duration::from_secs(2)),
            Err(ReceiveError::Malformed(kind)),
            "{what}"
        );
        // Closed: end of stream for the reader, EPIPE for the writer.
        assert_eq!(
            a.try_receive_from(Pid(2)),
            Err(ReceiveError::SourceDead),
            "{what}"
        );
        assert_eq!(
            b.send_to(Pid(1), Message::new(1, b"late"))
                .map_err(|e| e.kind()),
            Err(SendErrorKind::DestinationDead),
            "{what}"
        );
        drop(b);
        common::finish(a);
    }
}

/// `hand_frame` from pid 2 marked `UNCHECKED` (flags 0x40), with `check`
/// in its check field.
fn unchecked_frame(id: u32, body: &[u8], check: u32) -> Vec<u8> {
    unchecked_frame_from(2, id, body, check)
}

fn unchecked_frame_from(pid: u32, id: u32, body: &[u8], check: u32) -> Vec<u8> {
    let mut f = common::hand_frame(id, body, body.len() as u32, 0, pid);
    f[3] = 0x40;
    f[24..28].copy_from_slice(&check.to_le_bytes());
    f
}

#[test]
fn a_pipe_link_sends_unchecked_frames_and_takes_them_and_checked_ones() {
    // What mkipc writes on a pipe link: flag 0x40, check field 0.
    let a = common::os();
    let (near, far) = mkipc_os::new_link().unwrap();
    a.adopt_link(Pid(2), near).unwrap();
    a.send_to(Pid(2), Message::new(5, b"fast")).unwrap();
    let mut got = [0u8; 64];
    // SAFETY: far's read end stays open while `far` lives; `got` is writable.
    let n = unsafe { libc::read(far.raw_fds()[0], got.as_mut_ptr().cast(), got.len()) };
    assert_eq!(n, 32, "{}", std::io::Error::last_os_error());
    let want = unchecked_frame_from(std::process::id(), 5, b"fast", 0);
    assert_eq!(&got[..n as usize], &want[..]);
    drop(far);
    common::finish(a);

    // What a pipe link's reader takes: unchecked frames, checked frames
    // (verified), in any mix; and an unchecked frame only with a 0 check.
    let (a, b, tx, _) = linked_pair();
    write_raw(tx, &unchecked_frame(1, b"one", 0));
    write_raw(tx, &good());
    write_raw(tx, &unchecked_frame(3, b"three", 0));
    for (id, body) in [(1, &b"one"[..]), (1, b"good"), (3, b"three")] {
        let m = a
            .receive_from_timeout(Pid(2), Duration::from_secs(2))
            .unwrap();
        assert_eq!((m.id, &m.body[..]), (id, body));
    }
    write_raw(tx, &unchecked_frame(4, b"four", 7));
    assert_eq!(
        a.receive_from_timeout(Pid(2), Duration::from_secs(2)),
        Err(ReceiveError::Malformed(MalformedFrame::Checksum))
    );
    drop(b);
    common::finish(a);
}

#[test]
fn a_frame_cut_short_by_the_writer_closing_is_truncated() {
    let (a, b, tx, _) = linked_pair();
    let frame = good();
    write_raw(tx, &frame[..frame.len() - 2]);
    drop(b);
    assert_eq!(
        a.receive_from_timeout(Pid(2), Duration::from_secs(2)),
        Err(ReceiveError::Malformed(MalformedFrame::Truncated))
    );
    assert_eq!(a.try_receive_from(Pid(2)), Err(ReceiveError::SourceDead));
    common::finish(a);
}

#[test]
fn rights_that_never_come_time_a_receive_out_at_its_deadline() {
    // Before the fix, recv_fds ignored the deadline: the 1 s receive waited
    // as long as the peer kept its socket open (6.1 s measured).
    let (a, b, tx, _) = linked_pair();
    // One right descriptor (MoveSend of a send right), no body.
    write_raw(tx, &common::hand_frame(1, &[17, 1, 0, 0], 0, 1, 2));
    let t = Instant::now();
    assert_eq!(
        a.receive_from_timeout(Pid(2), Duration::from_millis(300)),
        Err(ReceiveError::TimedOut)
    );
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "waited {took:?}");
    assert_eq!(a.try_receive_from(Pid(2)), Err(ReceiveError::Empty));
    // The peer goes away without sending the descriptors: malformed.
    drop(b);
    assert_eq!(
        a.receive_from_timeout(Pid(2), Duration::from_secs(2)),
        Err(ReceiveError::Malformed(MalformedFrame::MissingRights))
    );
    assert_eq!(a.try_receive_from(Pid(2)), Err(ReceiveError::SourceDead));
    common::finish(a);
}

#[test]
fn a_timed_receive_from_any_waits_for_rights_on_the_socket() {
    // A frame whose descriptors come a little later: receive_from_any must
    // wake for them, not sleep on the (quiet) pipe until its deadline.
    let (a, b, tx, sock) = linked_pair();
    let _ = (tx, sock);
    let port = b.port_allocate(mkipc_kernel::Capacity::Bounded(1)).unwrap();
    let mut m = Message::new(3, b"with a right");
    m.rights_mut().push(mkipc_kernel::CarriedRight {
        name: port,
        disposition: mkipc_kernel::Disposition::MakeSend,
    });
    b.send_to(Pid(1), m).unwrap();
    let got = a.receive_from_any_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((got.id, got.rights().len()), (3, 1));
    drop(b);
    common::finish(a);
}

/// A FIFO `a` reads, a raw descriptor writing to it (a foreign writer),
/// and a well-behaved mkipc writer `b`.
fn fifo_with_two_writers(
    name: &str,
) -> (
    OsProcess,
    OsProcess,
    mkipc_kernel::PortName,
    mkipc_kernel::PortName,
    std::fs::File,
) {
    let a = common::os();
    let path = a.fifo_path(name).unwrap();
    let rx = a.fifo_create(&path, Access::NONE).unwrap();
    let b = OsProcess::join(a.run_id()).unwrap();
    let tx = b.fifo_open(&path).unwrap();
    let raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    (a, b, rx, tx, raw)
}

#[test]
fn a_fifo_resynchronises_after_garbage_and_the_good_writer_gets_through() {
    use std::io::Write;
    let mut cases = bad_frames();
    let mut truncated = common::hand_frame(1, b"0123456789", 100, 0, 2);
    truncated.truncate(common::hand_frame(1, b"", 0, 0, 2).len() + 10);
    cases.push(("truncated", truncated, MalformedFrame::Truncated));
    cases.push((
        "rights",
        common::hand_frame(1, b"", 0, 1, 2),
        MalformedFrame::RightsCount,
    ));
    // A FIFO's frames need their check: an unchecked one is skipped.
    cases.push((
        "unchecked",
        unchecked_frame(1, b"no check", 0),
        MalformedFrame::Checksum,
    ));
    for (what, bytes, kind) in cases {
        let (a, b, rx, tx, mut raw) = fifo_with_two_writers("resync");
        raw.write_all(&bytes).unwrap();
        b.send(tx, Message::from_u64(7, 42)).unwrap();
        let mut errors = Vec::new();
        let got = loop {
            match a.receive_timeout(rx, Duration::from_secs(2)) {
                Ok(m) => break m,
                Err(ReceiveError::Malformed(k)) => errors.push(k),
                Err(e) => panic!("{what}: {e:?} after {errors:?}"),
            }
            assert!(errors.len() < 64, "{what}: {errors:?}");
        };
        assert_eq!((got.id, got.as_u64()), (7, Some(42)), "{what}");
        assert_eq!(errors.first(), Some(&kind), "{what}: {errors:?}");
        // And the stream goes on: the next good frame comes at once.
        b.send(tx, Message::from_u64(8, 43)).unwrap();
        assert_eq!(
            a.receive_timeout(rx, Duration::from_secs(2)).unwrap().id,
            8,
            "{what}"
        );
        drop((raw, b));
        common::finish(a);
    }
}
