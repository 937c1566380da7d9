//! A sender learns that a port's receiver is gone, as on the kernel: the
//! receive right holds the write end of the port's liveness pipe, so its
//! holder's death (here: the process exits) hangs up every send right's
//! read end, and sends fail with `DestinationDead`, message returned.
//!
//! Before the fix a send to a port whose receiver had died returned `Ok`
//! (the message lost) until the queue filled, then `Full`/`TimedOut`.

mod common;
role_entry!();

use std::time::{Duration, Instant};

use mkipc_kernel::{Capacity, Disposition, Ipc, Message, SendError, SendErrorKind};
use mkipc_os::Spawn;

/// The tests of this file run one at a time. A killed receiver's death shows as
/// the hang-up of its liveness pipe, which happens when the *last* copy of
/// the write end closes; a `fork` anywhere in the process that holds it (here
/// the test process itself holds both sides, and other tests spawn children)
/// copies every descriptor until the child's `exec` closes them, so a death
/// checked during another test's spawn is seen late. DESIGN.md, "Receiver
/// death", states this limit; these tests check the guarantee without a
/// fork in flight.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_dead(r: Result<(), SendError>, id: u32) -> bool {
    matches!(r, Err(e) if e.kind() == SendErrorKind::DestinationDead && e.message().id == id)
}

#[test]
fn smoke_a_send_to_a_port_whose_receiver_died_is_destination_dead() {
    let _serial = one_at_a_time();
    let os = common::os();
    let mut child = os.spawn(Spawn::new("port-owner")).unwrap();
    let got = os.receive_from(child.pid()).unwrap();
    let right = got.rights()[0];
    assert_eq!(right.disposition, Disposition::MoveSend);
    // Alive: the message is queued (one slot), the next finds it full.
    os.send(right.name, Message::new(1, b"while alive"))
        .unwrap();
    assert_eq!(
        os.try_send(right.name, Message::new(2, b"full"))
            .map_err(|e| e.kind()),
        Err(SendErrorKind::Full)
    );
    // A blocked send learns of the death while it waits.
    std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            let t = Instant::now();
            (
                os.send(right.name, Message::new(3, b"blocked")),
                t.elapsed(),
            )
        });
        std::thread::sleep(Duration::from_millis(100));
        os.send_to(child.pid(), Message::new(0, b"exit")).unwrap();
        assert_eq!(child.wait_code().unwrap(), 0);
        let (r, took) = blocked.join().unwrap();
        assert!(is_dead(r, 3), "the blocked send");
        assert!(took < Duration::from_secs(5), "{took:?}");
    });
    // Every later send, whatever its policy.
    assert!(is_dead(os.send(right.name, Message::new(4, b"")), 4));
    assert!(is_dead(os.try_send(right.name, Message::new(5, b"")), 5));
    assert!(is_dead(
        os.send_timeout(right.name, Message::new(6, b""), Duration::from_secs(1)),
        6
    ));
    common::finish(os);
}

/// Runs `op` on a send right to a port of a child, which exits while `op`
/// waits; returns what `op` returned and how long it took.
fn while_the_receiver_dies<T: Send>(
    capacity: &str,
    op: impl FnOnce(&mkipc_os::OsProcess, mkipc_kernel::PortName) -> T + Send,
) -> (T, Duration) {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("port-owner").arg(capacity)).unwrap();
    let right = os.receive_from(child.pid()).unwrap().rights()[0].name;
    let out = std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            let t = Instant::now();
            let r = op(&os, right);
            (r, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        os.send_to(child.pid(), Message::new(0, b"exit")).unwrap();
        assert_eq!(child.wait_code().unwrap(), 0);
        waiting.join().unwrap()
    });
    common::finish(os);
    out
}

#[test]
fn a_rendezvous_sender_waiting_for_its_acknowledgement_learns_of_the_death() {
    let _serial = one_at_a_time();
    let (r, took) = while_the_receiver_dies("zero", |os, right| {
        os.send(right, Message::new(9, b"meet me"))
    });
    assert!(is_dead(r, 9));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_call_to_a_server_that_dies_without_replying_is_no_reply() {
    let _serial = one_at_a_time();
    let (r, took) = while_the_receiver_dies("bounded", |os, right| {
        os.call(right, Message::new(9, b"answer me"))
    });
    assert_eq!(r, Err(mkipc_kernel::CallError::NoReply));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_send_right_forwarded_or_a_moved_receive_right_keeps_watching() {
    let _serial = one_at_a_time();
    // a allocates, moves the receive right to b, keeps a send right: a's
    // sends go on while b lives and fail once b drops the port.
    let a = common::os();
    let b = mkipc_os::OsProcess::join(a.run_id()).unwrap();
    let (near, far) = mkipc_os::new_link().unwrap();
    a.adopt_link(mkipc_kernel::Pid(2), near).unwrap();
    b.adopt_link(mkipc_kernel::Pid(1), far).unwrap();
    let port = a.port_allocate(Capacity::Bounded(2)).unwrap();
    let send = a.make_send(port).unwrap();
    a.mod_refs(send, mkipc_kernel::name::RightKind::Send, 1)
        .unwrap();
    a.send_to(
        mkipc_kernel::Pid(2),
        Message::new(1, b"").with_right(port, Disposition::MoveReceive),
    )
    .unwrap();
    let m = b.receive_from(mkipc_kernel::Pid(1)).unwrap();
    let theirs = m.rights()[0].name;
    a.send(send, Message::new(2, b"to b")).unwrap();
    assert_eq!(b.receive(theirs).unwrap().id, 2);
    // b destroys the port (its receive right): the send right in a is dead.
    b.mod_refs(theirs, mkipc_kernel::name::RightKind::Receive, -1)
        .unwrap();
    assert!(is_dead(a.send(send, Message::new(3, b"")), 3));
    drop(b);
    common::finish(a);
}

#[test]
fn a_send_right_inherited_at_spawn_learns_of_the_death() {
    let _serial = one_at_a_time();
    // The child inherits a send right (Spawn::inherit); the parent, the
    // receiver, then destroys the port. Before the fix the child's send
    // returned Ok (the right carried no liveness descriptor).
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    let mut child = os
        .spawn(Spawn::new("send-inherited-on-cue").inherit(port))
        .unwrap();
    os.mod_refs(port, mkipc_kernel::name::RightKind::Receive, -1)
        .unwrap();
    os.send_to(child.pid(), Message::new(0, b"go")).unwrap();
    let said = os.receive_from(child.pid()).unwrap();
    assert_eq!(&said.body[..], b"DestinationDead");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

/// Forks a process that only sleeps, holding a copy of every descriptor of
/// this one (what a `fork` in flight does until its child's `exec`); killed
/// and reaped on drop.
struct ForkInFlight(libc::pid_t);

impl ForkInFlight {
    fn start() -> ForkInFlight {
        // SAFETY: the child calls only async-signal-safe functions (sleep,
        // _exit) before it ends, so forking a multi-threaded process is sound.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: async-signal-safe; the child never returns into Rust code.
            unsafe {
                libc::sleep(30);
                libc::_exit(0);
            }
        }
        ForkInFlight(pid)
    }
}

impl Drop for ForkInFlight {
    fn drop(&mut self) {
        // SAFETY: kills and reaps our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

#[test]
fn an_orderly_destruction_is_seen_at_once_while_a_fork_holds_the_pipe() {
    let _serial = one_at_a_time();
    // b holds the receive right; a a send right. A forked process holds
    // copies of every descriptor (b's write end of the liveness pipe too),
    // so the pipe cannot hang up: the destruction must say so itself.
    // Before the fix a's send returned Ok (the message queued for nobody).
    for how in ["mod_refs", "drop"] {
        let a = common::os();
        let b = mkipc_os::OsProcess::join(a.run_id()).unwrap();
        let (near, far) = mkipc_os::new_link().unwrap();
        a.adopt_link(mkipc_kernel::Pid(2), near).unwrap();
        b.adopt_link(mkipc_kernel::Pid(1), far).unwrap();
        let port = a.port_allocate(Capacity::Bounded(2)).unwrap();
        let send = a.make_send(port).unwrap();
        a.mod_refs(send, mkipc_kernel::name::RightKind::Send, 1)
            .unwrap();
        a.send_to(
            mkipc_kernel::Pid(2),
            Message::new(1, b"").with_right(port, Disposition::MoveReceive),
        )
        .unwrap();
        let theirs = b.receive_from(mkipc_kernel::Pid(1)).unwrap().rights()[0].name;
        let held = ForkInFlight::start();
        // A move is no death: sends still go in while the fork holds copies.
        a.send(send, Message::new(2, b"to b")).unwrap();
        assert_eq!(b.receive(theirs).unwrap().id, 2);
        if how == "mod_refs" {
            b.mod_refs(theirs, mkipc_kernel::name::RightKind::Receive, -1)
                .unwrap();
        } else {
            drop(b);
        }
        assert!(
            is_dead(a.send(send, Message::new(3, b"")), 3),
            "{how}: the destruction was not seen"
        );
        drop(held);
        common::finish(a);
    }
}

/// A server that takes a call from a *mailbox* and is killed before it
/// replies: the caller learned who took its request (the server's `IS_ACK`
/// frame) and watches that process's pidfd, so the call ends with `NoReply`
/// at once, not at its timeout.
#[test]
fn a_call_through_a_mailbox_whose_server_is_killed_ends_with_no_reply_at_once() {
    let _serial = one_at_a_time();
    let os = common::os();
    let mb = os
        .mailbox_create(
            "killed-server",
            mkipc_kernel::MailboxConfig::new(Capacity::Bounded(4))
                .owner(mkipc_kernel::ipc::Owner::System),
        )
        .unwrap();
    let mut child = os
        .spawn(Spawn::new("take-a-call-and-die").arg("killed-server"))
        .unwrap();
    let t = Instant::now();
    let got = os.call_timeout(mb, Message::new(1, b"anyone?"), Duration::from_secs(30));
    assert_eq!(got, Err(mkipc_kernel::CallError::NoReply));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let _ = child.wait();
    common::finish(os);
}
