//! The Python module `python/mkipc.py` (standard library only) against the
//! Rust backend: a Python writer sends to a Rust receiver through a mailbox
//! and a FIFO, a Rust sender to a Python receiver (also through a
//! rendezvous mailbox, which the Python side acknowledges), and both encode
//! the same bytes. Senders across a queue or FIFO come out as claimed.
//! Socket links both ways: a Python `SocketLink` connecting to a Rust
//! listener over Unix and TCP, a Rust process connecting to a Python
//! `SocketListener`, and a sealed Rust listener refusing Python (which has
//! no ChaCha20-Poly1305 in its standard library). A Python reader of a Rust
//! pipe link takes its `UNCHECKED` frames.
//!
//! Every test is skipped, with a message, when `python3` is absent.

mod common;
role_entry!();

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mkipc_kernel::name::Access;
use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Message, Pid};

fn module() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/mkipc.py")
}

/// `python3 python/mkipc.py <args>` with the run's id in its environment,
/// or `None` (and a message) when there is no python3.
fn python(run: &str, args: &[&str]) -> Option<Command> {
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: python3 is not on this machine; the Python module is not tested");
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(module())
        .args(args)
        .env("MKIPC_RUN_ID", run)
        .stdin(Stdio::null());
    Some(cmd)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "python failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn smoke_python_self_test_and_the_same_bytes_as_rust() {
    let Some(mut cmd) = python("unused", &["self-test"]) else {
        return;
    };
    assert_eq!(ok(cmd.output().unwrap()).trim(), "self-test ok");
    let mut cmd = python(
        "unused",
        &["encode", "--id", "7", "--hex", "00ff68", "--sender", "4242"],
    )
    .unwrap();
    let hex = ok(cmd.output().unwrap());
    let rust = mkipc_os::wire::encode(&Message::new(7, b"\x00\xffh"), 4242, 0, 0, &[]);
    let rust: String = rust.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.trim(), rust);
}

#[test]
fn a_python_writer_to_a_rust_receiver_through_a_mailbox_and_a_fifo() {
    let os = common::os();
    let run = os.run_id().to_string();
    let mb = os
        .mailbox_create("from-python", MailboxConfig::new(Capacity::Bounded(4)))
        .unwrap();
    let path = os.fifo_path("from-python").unwrap();
    let fifo = os.fifo_create(&path, Access::NONE).unwrap();

    let Some(mut cmd) = python(
        &run,
        &[
            "send",
            "--mailbox",
            "from-python",
            "--id",
            "7",
            "--text",
            "hello from python",
        ],
    ) else {
        return;
    };
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    ok(child.wait_with_output().unwrap());
    let m = os.receive_timeout(mb, Duration::from_secs(5)).unwrap();
    assert_eq!((m.id, &m.body[..]), (7, &b"hello from python"[..]));
    assert_eq!(m.sender(), Some(Pid(pid)));
    assert!(!m.sender_verified(), "a queue's sender is claimed");

    let body = "f".repeat(4068); // the FIFO body limit, whole
    let child = python(
        &run,
        &[
            "send",
            "--fifo",
            "from-python",
            "--id",
            "8",
            "--text",
            &body,
        ],
    )
    .unwrap()
    .spawn()
    .unwrap();
    let pid = child.id();
    ok(child.wait_with_output().unwrap());
    let m = os.receive_timeout(fifo, Duration::from_secs(5)).unwrap();
    assert_eq!((m.id, &m.body[..]), (8, body.as_bytes()));
    assert_eq!(m.sender(), Some(Pid(pid)));
    assert!(!m.sender_verified(), "a FIFO's sender is claimed");

    // One byte more is refused by the Python side, as by mkipc's.
    let out = python(
        &run,
        &[
            "send",
            "--fifo",
            "from-python",
            "--id",
            "9",
            "--text",
            &format!("{body}f"),
        ],
    )
    .unwrap()
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        os.try_receive(fifo).map(|m| m.id),
        Err(mkipc_kernel::ReceiveError::Empty)
    );
    common::finish(os);
}

#[test]
fn a_rust_sender_to_a_python_receiver() {
    let os = common::os();
    let run = os.run_id().to_string();
    let mb = os
        .mailbox_create("to-python", MailboxConfig::new(Capacity::Bounded(4)))
        .unwrap();
    os.send(mb, Message::from_u64(1, 0x0102_0304_0506_0708))
        .unwrap();
    os.send(mb, Message::new(2, b"")).unwrap();
    os.send(mb, Message::new(3, b"to python")).unwrap();
    let Some(mut cmd) = python(
        &run,
        &[
            "receive",
            "--mailbox",
            "to-python",
            "--count",
            "3",
            "--timeout",
            "5",
        ],
    ) else {
        return;
    };
    let me = std::process::id();
    let out = ok(cmd.output().unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("1 {me} claimed 0 {}", "0807060504030201"),
            format!("2 {me} claimed 0 -"),
            format!("3 {me} claimed 0 {}", hex(b"to python")),
        ]
    );

    // A rendezvous: the Rust send returns once the Python receiver has
    // acknowledged it (on this process's reply queue).
    let zero = os
        .mailbox_create("to-python-zero", MailboxConfig::new(Capacity::Zero))
        .unwrap();
    let child = python(
        &run,
        &["receive", "--mailbox", "to-python-zero", "--timeout", "5"],
    )
    .unwrap()
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    os.send_timeout(zero, Message::new(4, b"meet"), Duration::from_secs(5))
        .unwrap();
    let out = ok(child.wait_with_output().unwrap());
    // ACK_WANTED (2) set by the rendezvous sender.
    assert_eq!(out.trim(), format!("4 {me} claimed 2 {}", hex(b"meet")));
    common::finish(os);
}

#[test]
fn a_python_sender_to_a_rust_rendezvous_waits_for_the_acknowledgement() {
    let os = common::os();
    let run = os.run_id().to_string();
    let zero = os
        .mailbox_create("from-python-zero", MailboxConfig::new(Capacity::Zero))
        .unwrap();
    let Some(mut cmd) = python(
        &run,
        &[
            "send",
            "--mailbox",
            "from-python-zero",
            "--id",
            "5",
            "--text",
            "rendezvous",
            "--timeout",
            "5",
        ],
    ) else {
        return;
    };
    let child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let m = os.receive_timeout(zero, Duration::from_secs(5)).unwrap();
    assert_eq!((m.id, &m.body[..]), (5, &b"rendezvous"[..]));
    assert_eq!(m.sender(), Some(Pid(pid)));
    // The Python sender exits 0 only after the acknowledgement came, and
    // removes its reply queue.
    ok(child.wait_with_output().unwrap());
    let reply = format!("/mkipc-{run}-{pid}-reply");
    assert_eq!(
        os.mailbox_open_posix(&reply).map(drop),
        Err(mkipc_kernel::IpcError::NotFound)
    );
    common::finish(os);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The socket address of a fresh Unix socket path for one test.
fn unix_socket_addr(name: &str) -> mkipc_os::socket::SocketAddr {
    let dir = std::env::temp_dir().join(format!("mkipc-py-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    mkipc_os::socket::SocketAddr::Unix(path)
}

#[test]
fn a_python_socket_link_to_a_rust_listener_over_unix_and_tcp() {
    use mkipc_os::socket::{Listener, SocketOptions};
    let os = common::os();
    let me = std::process::id();
    let tcp = "tcp:127.0.0.1:0".parse().unwrap();
    for (addr, verified) in [(unix_socket_addr("py"), true), (tcp, false)] {
        let listener = Listener::bind(&addr, SocketOptions::new()).unwrap();
        let at = listener.local_addr().to_string();
        let Some(mut cmd) = python(
            os.run_id(),
            &[
                "link",
                "--connect",
                &at,
                "--id",
                "7",
                "--text",
                "from python",
                "--count",
                "1",
            ],
        ) else {
            return;
        };
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = os.accept_link(&listener).unwrap();
        assert_eq!(pid, Pid(child.id()), "{at}: the Python process's pid");
        let m = os
            .receive_from_timeout(pid, Duration::from_secs(10))
            .unwrap();
        assert_eq!((m.id, &m.body[..]), (7, &b"from python"[..]));
        // Unix: the OS names the peer; TCP: its claim.
        assert_eq!(m.sender_verified(), verified, "{at}");
        os.send_to(pid, Message::new(8, b"to python")).unwrap();
        let out = ok(child.wait_with_output().unwrap());
        assert_eq!(
            out.trim(),
            format!("8 {me} claimed 0 {}", hex(b"to python"))
        );
        os.close_link(pid).unwrap();
    }
    // A sealed listener: Python cannot speak the overlay, and both sides say so.
    let key = mkipc_os::socket::Key::random().unwrap();
    let listener = Listener::bind(
        &"tcp:127.0.0.1:0".parse().unwrap(),
        SocketOptions::new().sealed(key),
    )
    .unwrap();
    let at = listener.local_addr().to_string();
    let out = python(os.run_id(), &["link", "--connect", &at, "--count", "1"])
        .unwrap()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        listener.accept().map(drop),
        Err(mkipc_os::socket::SocketError::OverlayMismatch)
    );
    let out = out.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sealed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::finish(os);
}

#[test]
fn a_rust_process_connects_to_a_python_listener() {
    use std::io::BufRead;
    let os = common::os();
    let Some(mut cmd) = python(
        os.run_id(),
        &["link", "--listen", "tcp:127.0.0.1:0", "--echo", "2"],
    ) else {
        return;
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: mkipc_os::socket::SocketAddr = line.trim().parse().unwrap();
    let opts = mkipc_os::socket::SocketOptions::new();
    let peer = os.connect_link(&addr, &opts).unwrap();
    assert_eq!(peer, Pid(child.id()), "the pid the Python hello claims");
    let big = vec![0x5au8; 100_000];
    os.send_to(peer, Message::new(1, b"echo me")).unwrap();
    os.send_to(peer, Message::new(2, &big[..])).unwrap();
    let a = os
        .receive_from_timeout(peer, Duration::from_secs(10))
        .unwrap();
    let b = os
        .receive_from_timeout(peer, Duration::from_secs(10))
        .unwrap();
    assert_eq!((a.id, &a.body[..]), (1, &b"echo me"[..]));
    assert_eq!((b.id, b.body.len()), (2, big.len()));
    assert!(!a.sender_verified(), "a TCP peer's pid is its claim");
    assert!(child.wait().unwrap().success());
    // The Python side closed: end of stream.
    assert_eq!(
        os.receive_from_timeout(peer, Duration::from_secs(10)),
        Err(mkipc_kernel::ReceiveError::SourceDead)
    );
    common::finish(os);
}

#[test]
fn a_python_receive_blocked_on_a_mailbox_ends_when_rust_destroys_it() {
    use std::io::BufRead;
    let os = common::os();
    let run = os.run_id().to_string();
    let mb = os
        .mailbox_create("python-gone", MailboxConfig::new(Capacity::Bounded(2)))
        .unwrap();
    os.send(mb, Message::new(1, b"first")).unwrap();
    let Some(mut cmd) = python(
        &run,
        &[
            "receive",
            "--mailbox",
            "python-gone",
            "--count",
            "2",
            "--timeout",
            "20",
        ],
    ) else {
        return;
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it printed the first message, the second receive waits (or is
    // about to): the destruction must end it, long before its 20 s.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("1 "), "{first}");
    os.mailbox_destroy(mb).unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (out.status.code(), rest),
        (Some(3), vec!["gone".to_string()]),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::finish(os);
}

#[test]
fn a_python_reader_of_a_rust_pipe_link_takes_its_unchecked_frames() {
    // The far end of a link `os` adopted: its read end carries what `os`
    // sends to pid 2, and becomes the Python reader's stdin.
    let os = common::os();
    let (near, far) = mkipc_os::new_link().unwrap();
    os.adopt_link(Pid(2), near).unwrap();
    os.send_to(Pid(2), Message::new(7, b"over a pipe")).unwrap();
    os.send_to(Pid(2), Message::new(8, b"")).unwrap();
    // SAFETY: the descriptor belongs to `far`, which stays alive past the
    // borrow (a duplicate is made of it at once).
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(far.raw_fds()[0]) };
    let read_end = borrowed.try_clone_to_owned().unwrap();
    let Some(mut cmd) = python(
        os.run_id(),
        &["receive", "--fd", "0", "--count", "2", "--timeout", "5"],
    ) else {
        return;
    };
    let out = ok(cmd.stdin(Stdio::from(read_end)).output().unwrap());
    let me = std::process::id();
    // Flags 64: UNCHECKED, as a direct link's frames go.
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("7 {me} claimed 64 {}", hex(b"over a pipe")),
            format!("8 {me} claimed 64 -"),
        ]
    );
    drop(far);
    common::finish(os);
}
