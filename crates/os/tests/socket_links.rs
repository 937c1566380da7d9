//! Socket links (`mkipc_os::socket`): Unix-domain and TCP streams as direct
//! links, between processes that meet by an address, with the encrypted
//! overlay. Loopback only: every address is 127.0.0.1 or a path.
//!
//! A child here connects to the test's listener by the address in its
//! arguments, so its socket link is *not* made at spawn; it first closes
//! the spawn link with its parent, whose pid the socket peer shares.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mkipc_kernel::error::{MalformedFrame, Unsupported};
use mkipc_kernel::{Capacity, Disposition, Ipc, Message, Pid, ReceiveError, SendErrorKind};
use mkipc_os::socket::{self, Key, Listener, SocketAddr, SocketError, SocketOptions};
use mkipc_os::{new_link_of, LinkKind, OsProcess, Spawn};

/// This file's roles, after the common ones.
const ROLES: &[(&str, mkipc_os::Role)] = &[
    ("socket-serve", socket_serve),
    ("socket-fd-count", socket_fd_count),
];

#[test]
fn role_entry() {
    let roles: Vec<(&str, mkipc_os::Role)> = common::ROLES.iter().chain(ROLES).copied().collect();
    mkipc_os::child_main(&roles);
}

const T: Duration = Duration::from_secs(10);

/// Connects to `args[0]` (sealed with the hex key `args[1]` if given) and
/// answers each request with `re:` + its body, same id, until end of
/// stream. Exits 3 if the link cannot be made.
fn socket_serve(os: &OsProcess) -> i32 {
    let _ = os.close_link(os.parent().unwrap());
    let addr: SocketAddr = os.args()[0].parse().unwrap();
    let mut opts = SocketOptions::new().timeout(T);
    if let Some(k) = os.args().get(1) {
        opts = opts.sealed(Key::from_hex(k).unwrap());
    }
    let Ok(peer) = os.connect_link(&addr, &opts) else {
        return 3;
    };
    loop {
        match os.receive_from(peer) {
            Ok(m) => {
                let mut body = b"re:".to_vec();
                body.extend_from_slice(&m.body);
                if os.send_to(peer, Message::new(m.id, &body[..])).is_err() {
                    return 4;
                }
            }
            Err(ReceiveError::SourceDead) => return 0,
            Err(_) => return 5,
        }
    }
}

/// Makes and drops socket links of every kind, and exits 0 if this process
/// has as many descriptors open afterwards as before (a child: no other
/// test's threads open descriptors meanwhile).
fn socket_fd_count(os: &OsProcess) -> i32 {
    let key = Key::random().unwrap();
    let mut before = 0;
    // Round 0 warms up what lives as long as the process (none expected).
    for round in 0..11 {
        if round == 1 {
            before = open_fds();
        }
        for addr in [tcp_any(), unix_addr(&format!("fdcount-{round}"))] {
            for opts in [
                SocketOptions::new(),
                SocketOptions::new().sealed(key.clone()),
            ] {
                let b = OsProcess::join(os.run_id()).unwrap();
                let (pa, pb) = linked(os, &b, &addr, &opts);
                os.send_to(pa, Message::new(1, b"x")).unwrap();
                b.receive_from(pb).unwrap();
                os.close_link(pa).unwrap();
                assert_eq!(b.receive_from(pb), Err(ReceiveError::SourceDead));
                drop(b);
            }
        }
        for kind in [LinkKind::UnixSocket, LinkKind::Tcp] {
            let (x, y) = new_link_of(kind).unwrap();
            drop((x, y));
        }
    }
    let after = open_fds();
    if after == before {
        0
    } else {
        eprintln!("descriptors before {before}, after {after}");
        1
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn tcp_any() -> SocketAddr {
    "tcp:127.0.0.1:0".parse().unwrap()
}

/// A socket path in a fresh directory of this test process.
fn unix_addr(name: &str) -> SocketAddr {
    let dir = std::env::temp_dir().join(format!("mkipc-sock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    let _ = std::fs::remove_file(&path);
    SocketAddr::Unix(path)
}

/// `a` listens at `addr`, `b` connects: returns the pids each knows the
/// other by (both this process's pid, so one link per pair of `OsProcess`).
fn linked(a: &OsProcess, b: &OsProcess, addr: &SocketAddr, opts: &SocketOptions) -> (Pid, Pid) {
    let listener = Listener::bind(addr, opts.clone()).unwrap();
    let at = listener.local_addr().clone();
    std::thread::scope(|s| {
        let t = s.spawn(|| b.connect_link(&at, opts).unwrap());
        let pa = a.accept_link(&listener).unwrap();
        (pa, t.join().unwrap())
    })
}

/// Spawns `socket-serve` connecting to `listener` and accepts it; returns
/// the child and the pid its link is known under.
fn serve(os: &OsProcess, listener: &Listener, key: Option<&Key>) -> (mkipc_os::Child, Pid) {
    let mut spec = Spawn::new("socket-serve").arg(listener.local_addr().to_string());
    if let Some(k) = key {
        spec = spec.arg(k.to_hex());
    }
    let child = os.spawn(spec).unwrap();
    // The spawn link shares the pid the socket peer will have.
    os.close_link(child.pid()).unwrap();
    let pid = os.accept_link(listener).unwrap();
    assert_eq!(pid, child.pid(), "the peer's pid");
    (child, pid)
}

#[test]
fn smoke_round_trip_over_unix_and_tcp_with_another_process() {
    let os = common::os();
    for (addr, verified) in [(unix_addr("smoke"), true), (tcp_any(), false)] {
        let listener = Listener::bind(&addr, SocketOptions::new().timeout(T)).unwrap();
        let (mut child, peer) = serve(&os, &listener, None);
        for i in 0..50u32 {
            let body = format!("request {i}");
            os.send_to(peer, Message::new(i, body.as_bytes())).unwrap();
            let m = os.receive_from_timeout(peer, T).unwrap();
            assert_eq!((m.id, &m.body[..]), (i, format!("re:{body}").as_bytes()));
            assert_eq!(m.sender(), Some(peer));
            // Unix: the OS names the peer (SO_PEERCRED); TCP: a claim.
            assert_eq!(m.sender_verified(), verified, "{addr}");
        }
        os.close_link(peer).unwrap();
        assert_eq!(child.wait_code().unwrap(), 0, "{addr}");
    }
    common::finish(os);
}

#[test]
fn rights_free_rpc_between_two_threads_many_calls_in_flight() {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    for addr in [unix_addr("rpc"), tcp_any()] {
        let (pa, pb) = linked(&a, &b, &addr, &SocketOptions::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                // The server: id in, id * id out, until the client leaves.
                while let Ok(m) = b.receive_from(pb) {
                    let x = m.as_u64().unwrap();
                    b.send_to(pb, Message::from_u64(m.id, x * x)).unwrap();
                }
                b.close_link(pb).unwrap();
            });
            // Eight requests in flight, then a reply per request, in order.
            for round in 0..20u64 {
                for i in 0..8 {
                    a.send_to(pa, Message::from_u64(i, round * 8 + u64::from(i)))
                        .unwrap();
                }
                for i in 0..8 {
                    let r = a.receive_from_timeout(pa, T).unwrap();
                    let x = round * 8 + u64::from(i);
                    assert_eq!((r.id, r.as_u64()), (i, Some(x * x)));
                }
            }
            a.close_link(pa).unwrap();
        });
    }
    drop(b);
    common::finish(a);
}

#[test]
fn big_frames_stream_through_whole_plain_and_sealed() {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let key = Key::random().unwrap();
    let kinds = [
        (unix_addr("big"), SocketOptions::new()),
        (tcp_any(), SocketOptions::new()),
        (tcp_any(), SocketOptions::new().sealed(key)),
    ];
    for (addr, opts) in kinds {
        let (pa, pb) = linked(&a, &b, &addr, &opts);
        let big: Vec<u8> = (0..(4 << 20) + 7)
            .map(|i: u32| (i * 31 % 251) as u8)
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                a.send_to(pa, Message::new(9, &big[..])).unwrap();
                a.send_to(pa, Message::new(10, b"after")).unwrap();
            });
            let m = b.receive_from_timeout(pb, T).unwrap();
            assert_eq!(m.id, 9);
            assert!(m.body[..] == big[..], "{addr} sealed={}", opts.is_sealed());
            assert_eq!(&b.receive_from_timeout(pb, T).unwrap().body[..], b"after");
        });
        // Over the link's limit: refused before a byte is written.
        let too_big = vec![0u8; mkipc_os::LINK_BODY_LIMIT + 1];
        let e = a.send_to(pa, Message::new(11, &too_big[..])).unwrap_err();
        assert!(matches!(e.kind(), SendErrorKind::TooLarge { .. }), "{e:?}");
        a.close_link(pa).unwrap();
        b.close_link(pb).unwrap();
    }
    drop(b);
    common::finish(a);
}

/// A peer announcing a 1 GiB body is malformed at once: the reader checks
/// the header against the link's limit before it waits for, or buffers,
/// any of it.
#[test]
fn a_frame_over_the_limit_is_refused_from_its_header() {
    let a = common::os();
    let listener = Listener::bind(&tcp_any(), SocketOptions::new().timeout(T)).unwrap();
    let SocketAddr::Tcp(at) = listener.local_addr().clone() else {
        unreachable!()
    };
    let mut raw = TcpStream::connect(at).unwrap();
    raw.write_all(&hello(4242, false)).unwrap();
    let end = listener.accept().unwrap();
    assert_eq!(end.peer_pid(), Some(Pid(4242)), "a TCP peer's claim");
    a.adopt_link(Pid(4242), end).unwrap();
    let mut theirs = [0u8; 72];
    raw.read_exact(&mut theirs).unwrap();
    let mut huge = mkipc_os::wire::encode(&Message::new(1, b""), 4242, 0, 0, &[]);
    huge[8..12].copy_from_slice(&(1u32 << 30).to_le_bytes());
    raw.write_all(&huge).unwrap();
    let t = Instant::now();
    assert_eq!(
        a.receive_from_timeout(Pid(4242), T),
        Err(ReceiveError::Malformed(MalformedFrame::Length))
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // The link is closed: end of stream next.
    assert_eq!(a.try_receive_from(Pid(4242)), Err(ReceiveError::SourceDead));
    common::finish(a);
}

/// A plain hello as `mkipc_os::socket` writes it (built from DESIGN.md).
fn hello(pid: u32, sealed: bool) -> Vec<u8> {
    let mut body = b"mkipc-link".to_vec();
    body.push(1);
    body.push(u8::from(sealed));
    body.extend_from_slice(&[0; 32]);
    mkipc_os::wire::encode(&Message::new(socket::HELLO_ID, &body[..]), pid, 0, 0, &[])
}

#[test]
fn a_killed_peer_is_a_typed_error_at_once_never_a_hang() {
    let os = common::os();
    for addr in [unix_addr("kill"), tcp_any()] {
        let listener = Listener::bind(&addr, SocketOptions::new().timeout(T)).unwrap();
        let (mut child, peer) = serve(&os, &listener, None);
        os.send_to(peer, Message::new(1, b"ping")).unwrap();
        os.receive_from_timeout(peer, T).unwrap();
        child.kill().unwrap();
        let t = Instant::now();
        // An untimed receive would hang forever if death went unseen.
        assert_eq!(
            os.receive_from(peer),
            Err(ReceiveError::SourceDead),
            "{addr}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{addr}: {:?}",
            t.elapsed()
        );
        // Sends: the first may still be taken by the kernel's buffer; within
        // a few the OS says EPIPE or ECONNRESET.
        let mut dead = None;
        for i in 0..100 {
            match os.send_to(peer, Message::new(i, b"anyone?")) {
                Ok(()) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    dead = Some(e.kind());
                    assert_eq!(e.into_message().id, i, "the message comes back");
                    break;
                }
            }
        }
        assert_eq!(dead, Some(SendErrorKind::DestinationDead), "{addr}");
        os.close_link(peer).unwrap();
    }
    common::finish(os);
}

#[test]
fn tcp_refuses_rights_and_gives_the_message_back_a_unix_socket_carries_them() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let send = os.make_send(port).unwrap();

    let b = OsProcess::join(os.run_id()).unwrap();
    let (pa, _pb) = linked(&os, &b, &tcp_any(), &SocketOptions::new());
    let msg = Message::new(5, b"with a right").with_right(send, Disposition::CopySend);
    let e = os.send_to(pa, msg).unwrap_err();
    assert_eq!(
        e.kind(),
        SendErrorKind::Unsupported(Unsupported::RightsHere)
    );
    let back = e.into_message();
    assert_eq!((back.id, &back.body[..]), (5, &b"with a right"[..]));
    assert_eq!(back.rights().len(), 1, "the right comes back too");
    assert_eq!(back.rights()[0].name, send);
    // Sealed links carry none either (the overlay is for crossing machines).
    drop(b);

    // A Unix socket link made at spawn: the right rides with SCM_RIGHTS on
    // the socket itself, and the child sends through it.
    let mut child = os
        .spawn(Spawn::new("use-received-right").link_kind(LinkKind::UnixSocket))
        .unwrap();
    let m = Message::new(1, b"take this").with_right(send, Disposition::CopySend);
    os.send_to(child.pid(), m).unwrap();
    let got = os.receive_timeout(port, T).unwrap();
    assert_eq!(&got.body[..], b"hello through the right");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn receive_from_any_waits_on_a_socket_and_a_pipe_at_once() {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let c = OsProcess::join(a.run_id()).unwrap();
    // A pipe link a<->b under Pid(1) and Pid(2), a TCP link a<->c.
    let (x, y) = new_link_of(LinkKind::Pipe).unwrap();
    a.adopt_link(Pid(1), x).unwrap();
    b.adopt_link(Pid(2), y).unwrap();
    let listener = Listener::bind(&tcp_any(), SocketOptions::new()).unwrap();
    let at = listener.local_addr().clone();
    let pc = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let end = socket::connect(&at, &SocketOptions::new()).unwrap();
            c.adopt_link(Pid(3), end).unwrap();
        });
        let end = listener.accept().unwrap();
        a.adopt_link(Pid(4), end).unwrap();
        t.join().unwrap();
        Pid(4)
    });
    for (via, from) in [(&c, Pid(3)), (&b, Pid(2)), (&c, Pid(3))] {
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                via.send_to(from, Message::new(from.0, b"hi")).unwrap();
            });
            // Blocked before anything is sent: one wait over both links.
            let m = a.receive_from_any_timeout(T).unwrap();
            let want = if from == Pid(3) { pc } else { Pid(1) };
            assert_eq!((m.sender(), m.id), (Some(want), from.0));
        });
    }
    assert_eq!(a.try_receive_from_any(), Err(ReceiveError::Empty));
    drop((b, c));
    common::finish(a);
}

#[test]
fn select_waits_on_a_socket_link_a_pipe_link_and_a_port_at_once() {
    let a = common::os();
    let b = OsProcess::join(a.run_id()).unwrap();
    let c = OsProcess::join(a.run_id()).unwrap();
    let (x, y) = new_link_of(LinkKind::Pipe).unwrap();
    a.adopt_link(Pid(1), x).unwrap();
    b.adopt_link(Pid(2), y).unwrap();
    let (x, y) = new_link_of(LinkKind::UnixSocket).unwrap();
    a.adopt_link(Pid(3), x).unwrap();
    c.adopt_link(Pid(4), y).unwrap();
    let port = a.port_allocate(Capacity::Bounded(4)).unwrap();
    let to_port = a.make_send(port).unwrap();
    let (pipe, sock) = (a.link_name(Pid(1)).unwrap(), a.link_name(Pid(3)).unwrap());
    let sources = [pipe, sock, port];
    let send = |which: usize| match which {
        0 => b.send_to(Pid(2), Message::new(10, b"pipe")).unwrap(),
        1 => c.send_to(Pid(4), Message::new(11, b"socket")).unwrap(),
        _ => a.send(to_port, Message::new(12, b"port")).unwrap(),
    };
    for which in [1, 0, 2, 1] {
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                send(which);
            });
            // Blocked before anything is sent: one wait over all three.
            let m = a.select_timeout(&sources, T).unwrap();
            assert_eq!(m.received_on(), Some(sources[which]), "source {which}");
            assert_eq!(m.id, 10 + which as u32);
        });
    }
    assert_eq!(a.try_select(&sources), Err(ReceiveError::Empty));
    // A link's name receives like `receive_from`, and is no destination.
    c.send_to(Pid(4), Message::new(13, b"by name")).unwrap();
    let m = a.receive_timeout(sock, T).unwrap();
    assert_eq!(
        (m.id, m.sender(), m.received_on()),
        (13, Some(Pid(3)), Some(sock))
    );
    assert_eq!(
        a.send(sock, Message::new(1, b"")).unwrap_err().kind(),
        SendErrorKind::InvalidDestination
    );
    assert_eq!(a.link_name(Pid(99)), Err(mkipc_kernel::IpcError::NotFound));
    // Once the link is closed, its name says so.
    a.close_link(Pid(3)).unwrap();
    assert_eq!(a.try_receive(sock), Err(ReceiveError::SourceDead));
    a.deallocate(sock).unwrap();
    a.deallocate(pipe).unwrap();
    drop((b, c));
    common::finish(a);
}

#[test]
fn no_descriptor_is_left_after_many_links() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("socket-fd-count")).unwrap();
    assert_eq!(
        child.wait_code().unwrap(),
        0,
        "descriptors leaked (see stderr)"
    );
    common::finish(os);
}

#[test]
fn handshake_errors_are_typed() {
    let a = common::os();
    let key = Key::random().unwrap();
    let other = Key::random().unwrap();
    let sealed = SocketOptions::new().sealed(key.clone()).timeout(T);
    let cases = [
        (
            sealed.clone(),
            SocketOptions::new().timeout(T),
            SocketError::OverlayMismatch,
        ),
        (
            sealed.clone(),
            SocketOptions::new().sealed(other).timeout(T),
            SocketError::WrongKey,
        ),
    ];
    for (server, client, want) in cases {
        let listener = Listener::bind(&tcp_any(), server).unwrap();
        let at = listener.local_addr().clone();
        std::thread::scope(|s| {
            let t = s.spawn(|| socket::connect(&at, &client).map(drop));
            assert_eq!(listener.accept().map(drop), Err(want.clone()));
            assert_eq!(t.join().unwrap(), Err(want));
        });
    }
    // Something that is no mkipc link.
    let listener = Listener::bind(&tcp_any(), SocketOptions::new().timeout(T)).unwrap();
    let SocketAddr::Tcp(at) = listener.local_addr().clone() else {
        unreachable!()
    };
    let mut raw = TcpStream::connect(at).unwrap();
    raw.write_all(&[b'G'; 72]).unwrap();
    assert_eq!(listener.accept().map(drop), Err(SocketError::NotALink));
    // A listener that never answers: the connect's deadline.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let at: SocketAddr = format!("tcp:{}", silent.local_addr().unwrap())
        .parse()
        .unwrap();
    let t = Instant::now();
    let quick = SocketOptions::new().timeout(Duration::from_millis(300));
    assert_eq!(
        socket::connect(&at, &quick).map(drop),
        Err(SocketError::TimedOut)
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // Nobody there.
    drop(silent);
    assert_eq!(
        socket::connect(&at, &quick).map(drop),
        Err(SocketError::Refused)
    );
    let nowhere = unix_addr("nobody-listens");
    assert_eq!(
        socket::connect(&nowhere, &quick).map(drop),
        Err(SocketError::Refused)
    );
    assert_eq!(
        "udp:1.2.3.4:5".parse::<SocketAddr>(),
        Err(SocketError::InvalidAddress)
    );
    // The same pid twice: a second link is refused, not swapped in.
    let b = OsProcess::join(a.run_id()).unwrap();
    let (pa, _) = linked(&a, &b, &tcp_any(), &SocketOptions::new());
    let listener = Listener::bind(&tcp_any(), SocketOptions::new()).unwrap();
    let at = listener.local_addr().clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _end = socket::connect(&at, &SocketOptions::new()).unwrap();
        });
        assert_eq!(
            a.accept_link(&listener),
            Err(SocketError::AlreadyLinked(pa.0))
        );
    });
    drop(b);
    common::finish(a);
}

#[test]
fn a_unix_listener_is_mode_0600_and_removed_when_dropped() {
    use std::os::unix::fs::PermissionsExt;
    let addr = unix_addr("mode");
    let SocketAddr::Unix(path) = addr.clone() else {
        unreachable!()
    };
    let listener = Listener::bind(&addr, SocketOptions::new()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(listener);
    assert!(!path.exists());
}

// ----- the encrypted overlay on the wire ---------------------------------------

/// What the man in the middle does to the client's records after the
/// handshake.
#[derive(Clone, Copy, Debug)]
enum Meddle {
    /// Forwards everything, and keeps a copy.
    Nothing,
    /// Flips one bit in the ciphertext of the first record.
    Flip,
    /// Sends the first record twice.
    Replay,
    /// Sends the second record before the first.
    Swap,
}

/// Client bytes before the first record: its hello (72 bytes) and its key
/// confirmation (a record of 12 + 13 + 16 bytes).
const HANDSHAKE: usize = 72 + 41;

/// A TCP proxy between a client and `server`, meddling with the client's
/// records; returns its address and a handle giving every byte it saw.
fn proxy(
    server: std::net::SocketAddr,
    meddle: Meddle,
) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = format!("tcp:{}", front.local_addr().unwrap())
        .parse()
        .unwrap();
    let h = std::thread::spawn(move || {
        let (mut client, _) = front.accept().unwrap();
        let mut up = TcpStream::connect(server).unwrap();
        let (mut client_r, mut up_w) = (client.try_clone().unwrap(), up.try_clone().unwrap());
        // Server to client: as is.
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up, &mut client);
        });
        let mut seen = Vec::new();
        let mut head = vec![0u8; HANDSHAKE];
        client_r.read_exact(&mut head).unwrap();
        up_w.write_all(&head).unwrap();
        seen.extend_from_slice(&head);
        let record = |r: &mut TcpStream| -> Option<Vec<u8>> {
            let mut h = [0u8; 12];
            r.read_exact(&mut h).ok()?;
            let len = u32::from_le_bytes(h[..4].try_into().unwrap()) as usize;
            let mut rec = h.to_vec();
            rec.resize(12 + len, 0);
            r.read_exact(&mut rec[12..]).ok()?;
            Some(rec)
        };
        let mut n = 0;
        let mut held: Option<Vec<u8>> = None;
        while let Some(mut rec) = record(&mut client_r) {
            seen.extend_from_slice(&rec);
            match (meddle, n) {
                (Meddle::Flip, 0) => rec[14] ^= 0x20,
                (Meddle::Replay, 0) => up_w.write_all(&rec).unwrap(),
                (Meddle::Swap, 0) => {
                    held = Some(rec);
                    n += 1;
                    continue;
                }
                _ => {}
            }
            if up_w.write_all(&rec).is_err() {
                break;
            }
            if let Some(h) = held.take() {
                let _ = up_w.write_all(&h);
            }
            n += 1;
        }
        let _ = up_w.shutdown(std::net::Shutdown::Write);
        let _ = back.join();
        seen
    });
    (at, h)
}

#[test]
fn the_overlay_hides_the_bytes_and_a_changed_replayed_or_swapped_record_is_an_error() {
    let a = common::os();
    let key = Key::random().unwrap();
    let opts = SocketOptions::new().sealed(key).timeout(T);
    let cases = [
        (Meddle::Nothing, None),
        (Meddle::Flip, Some(MalformedFrame::Forged)),
        (Meddle::Replay, Some(MalformedFrame::Replayed)),
        (Meddle::Swap, Some(MalformedFrame::Replayed)),
    ];
    for (meddle, want) in cases {
        let b = OsProcess::join(a.run_id()).unwrap();
        let listener = Listener::bind(&tcp_any(), opts.clone()).unwrap();
        let SocketAddr::Tcp(real) = listener.local_addr().clone() else {
            unreachable!()
        };
        let (via, spy) = proxy(real, meddle);
        let (pa, pb) = std::thread::scope(|s| {
            let t = s.spawn(|| b.connect_link(&via, &opts).unwrap());
            let pa = a.accept_link(&listener).unwrap();
            (pa, t.join().unwrap())
        });
        b.send_to(pb, Message::new(1, b"the secret plan")).unwrap();
        b.send_to(pb, Message::new(2, b"second")).unwrap();
        match want {
            None => {
                assert_eq!(
                    &a.receive_from_timeout(pa, T).unwrap().body[..],
                    b"the secret plan"
                );
                assert_eq!(&a.receive_from_timeout(pa, T).unwrap().body[..], b"second");
                // And back, sealed the other way.
                a.send_to(pa, Message::new(3, b"ack")).unwrap();
                assert_eq!(&b.receive_from_timeout(pb, T).unwrap().body[..], b"ack");
            }
            Some(what) => {
                if let Meddle::Replay = meddle {
                    // The first copy is good.
                    assert_eq!(a.receive_from_timeout(pa, T).unwrap().id, 1);
                }
                assert_eq!(
                    a.receive_from_timeout(pa, T),
                    Err(ReceiveError::Malformed(what)),
                    "{meddle:?}"
                );
                // The link is closed after it: end of stream, never a wait.
                assert_eq!(a.receive_from_timeout(pa, T), Err(ReceiveError::SourceDead));
            }
        }
        drop(b);
        a.close_link(pa).unwrap();
        let seen = spy.join().unwrap();
        assert!(
            seen.len() > HANDSHAKE,
            "{meddle:?}: the proxy saw the records"
        );
        assert!(
            !seen.windows(6).any(|w| w == b"secret"),
            "{meddle:?}: plaintext on the wire"
        );
    }
    common::finish(a);
}
