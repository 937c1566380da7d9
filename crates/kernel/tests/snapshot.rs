//! Snapshots and the canonical state: `Kernel::snapshot`/`restore`/
//! `from_snapshot` give back exactly the state they copied, and the
//! canonical encoding is equal where futures are equal and different where
//! they can differ.

use std::sync::Arc;

use mkipc_kernel::{
    Begin, Capacity, Destination, Disposition, Kernel, Message, OnFull, PortName, Source, Wake,
    Waker,
};

struct Noop;
impl Wake for Noop {
    fn wake(&self) {}
}
fn noop() -> Waker {
    Arc::new(Noop)
}

fn canon(k: &Kernel) -> Vec<u8> {
    let mut out = Vec::new();
    k.canonical(&mut out);
    out
}

#[test]
fn smoke() {
    let k = Kernel::new();
    let a = k.create_task();
    let p = k.port_allocate(a, Capacity::Bounded(1)).unwrap();
    let snap = k.snapshot();
    let before = canon(&k);
    let mut s = Vec::new();
    snap.canonical(&mut s);
    assert_eq!(s, before);

    assert!(matches!(
        k.send_begin(
            a,
            Destination::Name(p),
            Message::new(1, b"x"),
            OnFull::Block,
            &noop
        ),
        Begin::Done(Ok(_))
    ));
    let Begin::Blocked(t) = k.send_begin(
        a,
        Destination::Name(p),
        Message::new(2, b"y"),
        OnFull::Block,
        &noop,
    ) else {
        panic!("a full bounded(1) port blocks the second send")
    };
    assert!(!k.wait_done(a, t));
    assert_ne!(canon(&k), before);
    let busy = k.snapshot();

    k.restore(&snap);
    assert_eq!(canon(&k), before);
    assert_eq!(k.stats().messages, 0);
    // The token of a wait the snapshot does not have reads as abandoned.
    assert!(k.wait_done(a, t));

    let other = Kernel::from_snapshot(&busy);
    assert!(!other.wait_done(a, t));
    let Begin::Done(Ok(m)) = other.receive_begin(a, Source::Name(p), false, &noop) else {
        panic!("a message is queued")
    };
    assert_eq!(m.id, 1);
    assert!(other.wait_done(a, t));
    assert!(other.wait_take(a, t).is_some());
    // The original kernel did not move.
    assert_eq!(canon(&k), before);
}

#[test]
fn a_name_allocated_and_freed_many_times_encodes_as_once() {
    let once = Kernel::new();
    let many = Kernel::new();
    for k in [&once, &many] {
        let t = k.create_task();
        let rounds = if std::ptr::eq(k, &once) { 1 } else { 50 };
        for _ in 0..rounds {
            let p = k.port_allocate(t, Capacity::Unbounded).unwrap();
            let so = k.make_right(t, p, Disposition::MakeSendOnce).unwrap();
            k.deallocate(t, so).unwrap();
            k.destroy(t, p).unwrap();
        }
    }
    assert_eq!(canon(&once), canon(&many));
    let _ = PortName::NULL;
}
