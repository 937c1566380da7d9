//! A program that knows only DESIGN.md (section "The real-OS backend")'s wire format talks to mkipc
//! through a POSIX queue (the "foreign" side here uses libc directly).

use std::ffi::CString;

use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Message};
use mkipc_os::OsProcess;

mod common;
role_entry!();

/// The 28-byte header, built by hand from the table in DESIGN.md (section "The real-OS backend").
fn foreign_frame(id: u32, body: &[u8], pid: u32) -> Vec<u8> {
    common::hand_frame(id, body, body.len() as u32, 0, pid)
}

#[test]
fn smoke_foreign_sender_and_receiver_on_a_mailbox() {
    let os = OsProcess::new().unwrap();
    let mb = os
        .mailbox_create("interop", MailboxConfig::new(Capacity::Bounded(4)))
        .unwrap();
    let name = CString::new(os.mailbox_posix_name("interop")).unwrap();
    // SAFETY: valid NUL-terminated name.
    let q = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDWR) };
    assert!(q >= 0);
    // SAFETY: the attr struct is writable.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: q is a queue descriptor.
    assert_eq!(unsafe { libc::mq_getattr(q, &mut attr) }, 0);
    assert_eq!(
        attr.mq_msgsize & 3,
        0,
        "bounded queues carry model 0 in the low bits"
    );

    let frame = foreign_frame(7, b"from C", 4242);
    // SAFETY: `frame` is readable for its length.
    assert_eq!(
        unsafe { libc::mq_send(q, frame.as_ptr().cast(), frame.len(), 0) },
        0
    );
    let m = os.receive(mb).unwrap();
    assert_eq!(
        (m.id, &m.body[..], m.sender().unwrap().0),
        (7, &b"from C"[..], 4242)
    );

    // A queue frame needs its check: one marked UNCHECKED (flags 0x40,
    // check 0, as only a direct link's pipe or ring carries) is refused.
    let mut unchecked = foreign_frame(8, b"no check", 4242);
    unchecked[3] = 0x40;
    unchecked[24..28].copy_from_slice(&[0; 4]);
    // SAFETY: `unchecked` is readable for its length.
    assert_eq!(
        unsafe { libc::mq_send(q, unchecked.as_ptr().cast(), unchecked.len(), 0) },
        0
    );
    assert_eq!(
        os.receive(mb),
        Err(mkipc_kernel::ReceiveError::Malformed(
            mkipc_kernel::error::MalformedFrame::Checksum
        ))
    );

    os.send(mb, Message::new(9, b"to C")).unwrap();
    let mut buf = vec![0u8; attr.mq_msgsize as usize];
    // SAFETY: `buf` is writable for mq_msgsize bytes.
    let n =
        unsafe { libc::mq_receive(q, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut()) };
    assert_eq!(
        &buf[..n as usize],
        foreign_frame(9, b"to C", std::process::id()).as_slice()
    );
    // SAFETY: closing our own descriptor.
    unsafe { libc::mq_close(q) };
    let run = os.run_id().to_string();
    drop(os);
    assert!(mkipc_os::leftovers(&run).is_empty());
}
