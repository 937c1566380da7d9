//! Nothing left behind: crashed children, crashed runs, and `cleanup`.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Message, Wait};
use mkipc_os::Spawn;

#[test]
fn smoke_sigkill_mid_send_leaves_no_queue() {
    let os = common::os();
    let _target = os
        .mailbox_create("rendezvous", MailboxConfig::new(Capacity::Zero))
        .unwrap();
    let mut child = os
        .spawn(Spawn::new("stuck-in-rendezvous").arg("rendezvous"))
        .unwrap();
    os.receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The child owns a mailbox and a reply queue and is blocked in a send.
    let run = os.run_id().to_string();
    let before = mkipc_os::leftovers(&run);
    assert!(
        before.iter().any(|n| n.ends_with("-m-child-owned")),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|n| n.ends_with(&format!("-{}-reply", child.pid().0))),
        "{before:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let after = mkipc_os::leftovers(&run);
    assert!(
        !after
            .iter()
            .any(|n| n.contains("child-owned") || n.ends_with("-reply")),
        "{after:?}"
    );
    common::finish(os);
}

#[test]
fn cleanup_stale_removes_what_a_crashed_run_left() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("crashing-root")).unwrap();
    let m = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .unwrap();
    let crashed_run = String::from_utf8(m.body.into_vec()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let left = mkipc_os::leftovers(&crashed_run);
    assert!(left.iter().any(|n| n.ends_with("-m-orphan")), "{left:?}");
    assert!(left.iter().any(|n| n.ends_with("fifo-orphan")), "{left:?}");
    let report = mkipc_os::cleanup_stale();
    assert!(report.runs.contains(&crashed_run), "{report:?}");
    assert!(mkipc_os::leftovers(&crashed_run).is_empty());
    common::finish(os);
}

#[test]
fn a_dropped_child_handle_kills_and_reaps_the_child() {
    let os = common::os();
    let child = os.spawn(Spawn::new("count-until-eof")).unwrap();
    let pid = child.pid().0;
    drop(child);
    // SAFETY: kill with signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    assert!(!alive, "the child was killed and reaped");
    common::finish(os);
}

#[test]
fn owner_exit_unlinks_creator_mailboxes_but_not_before() {
    let os = common::os();
    let run = os.run_id().to_string();
    let other = mkipc_os::OsProcess::join(&run).unwrap();
    let mb = other
        .mailbox_create("mine", MailboxConfig::new(Capacity::Bounded(1)))
        .unwrap();
    other.send(mb, Message::new(1, b"x")).unwrap();
    let opened = os.mailbox_open("mine").unwrap();
    assert_eq!(os.receive(opened).unwrap().id, 1);
    drop(other);
    assert_eq!(
        os.mailbox_open("mine"),
        Err(mkipc_kernel::IpcError::NotFound),
        "unlinked with its owner"
    );
    common::finish(os);
}

/// What `/proc` says of `pid`: `None` once it is reaped, else its state
/// letter (`Z` for a zombie).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

#[test]
fn children_of_a_killed_spawner_die_with_it() {
    // Suspect: only the CLI's scenario children set a parent-death signal,
    // so a library user of `Spawn` killed with SIGKILL left its children
    // running until someone reaped the orphans.
    let os = common::os();
    let mut child = os.spawn(Spawn::new("spawn-grandchild")).unwrap();
    let m = os
        .receive_from_with(child.pid(), Wait::For(Duration::from_secs(10)))
        .expect("the grandchild's pid");
    let grandchild = m.as_u64().unwrap() as u32;
    assert!(
        proc_state(grandchild).is_some_and(|s| s != 'Z'),
        "the grandchild runs"
    );
    // Kill the spawner alone, and do not wait for it yet: `Child::wait`
    // would kill its orphans itself.
    // SAFETY: kill takes a pid and a signal number and touches no memory.
    assert_eq!(
        unsafe { libc::kill(child.pid().0 as libc::pid_t, libc::SIGKILL) },
        0
    );
    let t = std::time::Instant::now();
    while let Some(state) = proc_state(grandchild).filter(|&s| s != 'Z') {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the grandchild {grandchild} outlived its killed parent: state {state}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait().unwrap();
    common::finish(os);
    assert_eq!(proc_state(grandchild), None, "reaped, not a zombie");
}
