//! The wire codec against itself, as the fuzz target `wire_decode` does
//! (`docs/fuzzing.md`): encode -> decode of any well-formed frame is the
//! identity, and any bytes that decode re-encode to exactly those bytes
//! (one encoding per frame), with no panic on any input.

use mkipc_kernel::{Disposition, Message};
use mkipc_os::wire::{self, Header, RightDesc, RightWire, HEADER_LEN};
use proptest::prelude::*;

fn right() -> impl Strategy<Value = RightDesc> {
    let disposition = prop_oneof![
        Just(Disposition::MoveReceive),
        Just(Disposition::MoveSend),
        Just(Disposition::MoveSendOnce),
        Just(Disposition::CopySend),
        Just(Disposition::MakeSend),
        Just(Disposition::MakeSendOnce),
    ];
    let kind = prop_oneof![
        Just(RightWire::Send),
        Just(RightWire::Receive),
        Just(RightWire::SendOnce),
        Just(RightWire::Mailbox),
    ];
    (disposition, kind, any::<u8>(), 0u8..4).prop_map(|(disposition, kind, access, liveness)| {
        RightDesc {
            disposition,
            kind,
            access,
            liveness,
        }
    })
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(
        id in any::<u32>(),
        sender in any::<u32>(),
        token in any::<u32>(),
        flags in 0u8..16,
        rights in proptest::collection::vec(right(), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let bytes = wire::encode(&Message::new(id, body.as_slice()), sender, flags, token, &rights);
        let frame = wire::decode(&bytes).expect("a well-formed frame decodes");
        prop_assert_eq!(
            (frame.header.id, frame.header.sender, frame.header.token, frame.header.flags),
            (id, sender, token, flags)
        );
        prop_assert_eq!(&frame.rights, &rights);
        prop_assert_eq!(frame.body, body.as_slice());
        // A flipped bit is caught (the check, or a field's rules): every bit
        // of the header, a sample of the rest.
        let bits = (0..HEADER_LEN * 8).chain((HEADER_LEN * 8..bytes.len() * 8).step_by(29));
        for bit in bits {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(wire::decode(&bad).is_err(), "bit {} flipped still decodes", bit);
        }
    }

    #[test]
    fn arbitrary_bytes_decode_to_an_error_or_to_themselves(
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        if let Ok(frame) = wire::decode(&data) {
            let h = frame.header;
            let again = wire::encode(&Message::new(h.id, frame.body), h.sender, h.flags, h.token, &frame.rights);
            prop_assert_eq!(again, data.clone());
        }
        for at in 0..data.len().min(HEADER_LEN + 1) {
            let _ = Header::parse(&data[at..]);
        }
        let _ = RightDesc::parse(&data);
    }
}
