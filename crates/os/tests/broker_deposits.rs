//! A right in a message that a `DropOldest` send displaces dies with it:
//! its descriptors, deposited with the run's broker (here: this process,
//! the run's root), are claimed and closed, not kept until the run ends.
//! One test in this binary, so that counting this process's descriptors is
//! not disturbed by other tests.

mod common;
role_entry!();

use mkipc_kernel::{Capacity, Disposition, Ipc, Message, OnFull, Sent};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's descriptor count once it has not changed for 50 ms: the
/// broker's thread closes its copies of claimed descriptors just after it
/// has sent them, so the count settles a moment after a claim returns.
fn settled_descriptors() -> usize {
    let mut last = open_descriptors();
    let mut stable_since = std::time::Instant::now();
    let give_up = stable_since + std::time::Duration::from_secs(5);
    while stable_since.elapsed() < std::time::Duration::from_millis(50)
        && std::time::Instant::now() < give_up
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let now = open_descriptors();
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        }
    }
    last
}

#[test]
fn a_displaced_message_releases_the_rights_it_carried() {
    let os = common::os();
    let target = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let carried = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.make_send(carried).unwrap();
    let with_right = || Message::new(2, b"").with_right(carried, Disposition::CopySend);
    // Warm up the broker connection (both of its ends are in this process).
    os.send(target, with_right()).unwrap();
    let got = os.receive(target).unwrap();
    os.deallocate(got.rights()[0].name).unwrap();
    let baseline = settled_descriptors();
    os.send(target, Message::new(1, b"plain")).unwrap();
    assert_eq!(
        os.send_with(target, with_right(), OnFull::DropOldest)
            .unwrap(),
        Sent::Displaced
    );
    let deposited = settled_descriptors();
    assert!(
        deposited >= baseline + 2,
        "the queued right's descriptors are with the broker: {baseline} -> {deposited}"
    );
    assert_eq!(
        os.send_with(target, Message::new(3, b"plain"), OnFull::DropOldest)
            .unwrap(),
        Sent::Displaced
    );
    assert_eq!(settled_descriptors(), baseline, "released with the message");
    assert_eq!(os.receive(target).unwrap().id, 3);
    common::finish(os);
}
