//! The wire decoder on arbitrary bytes (it must never panic, and must agree
//! with itself), and encode -> decode of arbitrary well-formed frames (it
//! must be the identity).
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mkipc_kernel::{Disposition, Message};
use mkipc_os::wire::{self, Header, RightDesc, RightWire, HEADER_LEN, RIGHT_LEN};

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary bytes: any answer but a panic. Whatever decodes must
    //    re-encode to exactly the same bytes.
    //    A reader that takes UNCHECKED frames (a direct link's) takes at
    //    least what a checking one does, and the same holds for it.
    let checked = wire::decode(data);
    let optional = wire::decode_with(data, wire::Checks::Optional);
    if checked.is_ok() {
        assert_eq!(optional, checked, "a checked frame reads the same everywhere");
    }
    if let Ok(frame) = optional {
        let h = frame.header;
        let again = wire::encode(
            &Message::new(h.id, frame.body),
            h.sender,
            h.flags,
            h.token,
            &frame.rights,
        );
        assert_eq!(again, data, "a decoded frame re-encodes to its bytes");
    }
    for at in 0..data.len().min(HEADER_LEN + 1) {
        let _ = Header::parse(&data[at..]);
    }
    let _ = RightDesc::parse(data);
    // 2. Well-formed frames built from the bytes: round trip.
    let _ = round_trip(&mut Unstructured::new(data));
});

fn round_trip(u: &mut Unstructured<'_>) -> Result<()> {
    let id: u32 = u.arbitrary()?;
    let sender: u32 = u.arbitrary()?;
    let token: u32 = u.arbitrary()?;
    let flags: u8 = u.arbitrary::<u8>()? & 0x0F;
    let n = u.int_in_range(0..=8usize)?;
    let mut rights = Vec::with_capacity(n);
    for _ in 0..n {
        let disposition = *u.choose(&[
            Disposition::MoveReceive,
            Disposition::MoveSend,
            Disposition::MoveSendOnce,
            Disposition::CopySend,
            Disposition::MakeSend,
            Disposition::MakeSendOnce,
        ])?;
        let kind = *u.choose(&[
            RightWire::Send,
            RightWire::Receive,
            RightWire::SendOnce,
            RightWire::Mailbox,
        ])?;
        rights.push(RightDesc {
            disposition,
            kind,
            access: u.arbitrary()?,
            liveness: u.int_in_range(0..=3)?,
        });
    }
    let body = u.bytes(u.len())?;
    let bytes = wire::encode(&Message::new(id, body), sender, flags, token, &rights);
    assert_eq!(bytes.len(), HEADER_LEN + n * RIGHT_LEN + body.len());
    let frame = wire::decode(&bytes).expect("a well-formed frame decodes");
    assert_eq!(
        (
            frame.header.id,
            frame.header.sender,
            frame.header.token,
            frame.header.flags
        ),
        (id, sender, token, flags)
    );
    assert_eq!(frame.header.nrights as usize, n);
    assert_eq!(frame.rights, rights);
    assert_eq!(frame.body, body);
    Ok(())
}
