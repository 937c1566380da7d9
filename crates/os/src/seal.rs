//! The encrypted overlay of a socket link: authenticated encryption with a
//! pre-shared key ([`Key`]), so frames can cross a network nobody trusts.
//!
//! Nothing here is hand-written cryptography: the cipher is RustCrypto's
//! ChaCha20-Poly1305 (an AEAD: confidentiality and integrity in one), the
//! key of each connection comes from RustCrypto's HKDF-SHA-256. This module
//! only decides what goes into them, and checks what comes out.
//!
//! * **One key per connection.** Both ends send a random 32-byte value in
//!   their hello ([`crate::socket`]); the connection's key is
//!   `HKDF-SHA-256(salt = connector's random || acceptor's random, ikm = the
//!   pre-shared key, info = "mkipc socket link overlay v1")`. A counter that
//!   starts at 0 on every connection therefore never meets the same key
//!   twice, and a recorded connection replayed to a listener fails at once
//!   (the listener's random is new).
//! * **Nonces never repeat.** The 12-byte nonce is the direction (u32
//!   little-endian: 0 for what the connecting side sends, 1 for the
//!   accepting side) and the record's counter (u64, +1 per record, never
//!   reset; a sender refuses to wrap it).
//! * **A record** is `len` (u32, ciphertext bytes including the 16-byte
//!   tag), `seq` (u64, the counter), then the ciphertext; the 12 header
//!   bytes are the AEAD's associated data. At most [`MAX_RECORD_PLAIN`]
//!   plaintext bytes a record, so a reader never buffers more than one
//!   record for a length it has not authenticated yet.
//! * **Checks, in this order:** a `len` outside 16..=16384+16 is
//!   `Malformed(Length)` (before any allocation); a `seq` that is not the
//!   next one is `Malformed(Replayed)` (a replayed, reordered or dropped
//!   record); a tag that does not verify is `Malformed(Forged)` (a changed
//!   byte, or another key). Either way the link is closed, as after any
//!   malformed frame on a one-writer stream.
//!
//! The first record each way (counter 0) carries [`CONFIRM`]: the handshake
//! checks it, so a wrong key is an error of `connect`/`accept`
//! ([`crate::socket::SocketError::WrongKey`]), not of the first message.
//!
//! ```
//! use mkipc_os::socket::Key;
//! let key = Key::random().unwrap();
//! let again = Key::from_hex(&key.to_hex()).unwrap();
//! assert_eq!(key, again);
//! assert_eq!(format!("{key:?}"), "Key(..)"); // never printed
//! ```

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use hkdf::Hkdf;
use mkipc_kernel::error::MalformedFrame;
use sha2::Sha256;

use crate::sys::{self, Errno};

/// Bytes of a pre-shared key.
pub const KEY_LEN: usize = 32;
/// Bytes of each side's random value in the hello.
pub const RANDOM_LEN: usize = 32;
/// Bytes before a record's ciphertext: `len` (u32) and `seq` (u64).
pub const RECORD_HEADER: usize = 12;
/// Bytes of the authentication tag at the end of a record's ciphertext.
pub const TAG_LEN: usize = 16;
/// The most plaintext bytes one record carries.
pub const MAX_RECORD_PLAIN: usize = 16 * 1024;
/// What the first record each way carries: the key confirmation.
pub const CONFIRM: &[u8] = b"mkipc-link-ok";
const INFO: &[u8] = b"mkipc socket link overlay v1";

/// A pre-shared key for the encrypted overlay of a socket link: 32 bytes
/// that both ends know (give it to the other machine by hand, e.g. as the
/// hex of [`Key::to_hex`] in a file only its user can read). Its `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// The key made of these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// A fresh key from the kernel's random source.
    pub fn random() -> Result<Key, mkipc_kernel::IpcError> {
        let mut k = [0u8; KEY_LEN];
        sys::getrandom(&mut k).map_err(crate::errno::ipc_error)?;
        Ok(Key(k))
    }

    /// The key written as 64 hex digits (case does not matter); anything
    /// else is [`IpcError::InvalidValue`](mkipc_kernel::IpcError::InvalidValue).
    pub fn from_hex(hex: &str) -> Result<Key, mkipc_kernel::IpcError> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 2 * KEY_LEN {
            return Err(mkipc_kernel::IpcError::InvalidValue);
        }
        let mut k = [0u8; KEY_LEN];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| mkipc_kernel::IpcError::InvalidValue)?;
            k[i] = u8::from_str_radix(s, 16).map_err(|_| mkipc_kernel::IpcError::InvalidValue)?;
        }
        Ok(Key(k))
    }

    /// The key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The cipher of one connection (see the module docs for the derivation).
pub(crate) fn session(
    key: &Key,
    connector: &[u8; RANDOM_LEN],
    acceptor: &[u8; RANDOM_LEN],
) -> ChaCha20Poly1305 {
    let mut salt = [0u8; 2 * RANDOM_LEN];
    salt[..RANDOM_LEN].copy_from_slice(connector);
    salt[RANDOM_LEN..].copy_from_slice(acceptor);
    let hk = Hkdf::<Sha256>::new(Some(&salt), &key.0);
    let mut okm = [0u8; KEY_LEN];
    hk.expand(INFO, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    ChaCha20Poly1305::new(&okm.into())
}

fn nonce(direction: u32, seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&direction.to_le_bytes());
    n[4..].copy_from_slice(&seq.to_le_bytes());
    n.into()
}

/// Seals what one side sends: records with its direction and counter.
pub(crate) struct Sealer {
    cipher: ChaCha20Poly1305,
    direction: u32,
    next: u64,
}

impl Sealer {
    pub(crate) fn new(cipher: ChaCha20Poly1305, direction: u32) -> Sealer {
        Sealer {
            cipher,
            direction,
            next: 0,
        }
    }

    /// Appends to `out` the records carrying `plain` (one empty record if
    /// `plain` is empty). The counter moves on even if the bytes are never
    /// written: a nonce is used once, whatever happens to its record.
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Errno> {
        let mut chunks = plain.chunks(MAX_RECORD_PLAIN);
        let mut next = Some(chunks.next().unwrap_or(&[]));
        while let Some(chunk) = next {
            // Never wrap: 2^64 records would be needed, but a wrap would
            // reuse nonces, so it is refused rather than assumed away.
            let seq = self.next;
            self.next = seq.checked_add(1).ok_or(libc::EOVERFLOW)?;
            let start = out.len();
            out.extend_from_slice(&((chunk.len() + TAG_LEN) as u32).to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(chunk);
            let (head, body) = out[start..].split_at_mut(RECORD_HEADER);
            let tag = self
                .cipher
                .encrypt_in_place_detached(&nonce(self.direction, seq), head, body)
                .map_err(|_| libc::EOVERFLOW)?;
            out.extend_from_slice(&tag);
            next = chunks.next();
        }
        Ok(())
    }
}

/// Opens what the peer sends: checks each record and gives its plaintext.
pub(crate) struct Opener {
    cipher: ChaCha20Poly1305,
    direction: u32,
    next: u64,
    /// Ciphertext read but not opened yet: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The first bad record's error: every later call gives it again (the
    /// stream cannot be trusted past it).
    failed: Option<MalformedFrame>,
}

impl Opener {
    pub(crate) fn new(cipher: ChaCha20Poly1305, direction: u32) -> Opener {
        Opener {
            cipher,
            direction,
            next: 0,
            buf: vec![0; RECORD_HEADER + MAX_RECORD_PLAIN + TAG_LEN],
            start: 0,
            end: 0,
            failed: None,
        }
    }

    /// The error of a bad record met earlier, if any.
    pub(crate) fn failed(&self) -> Option<MalformedFrame> {
        self.failed
    }

    /// Where the next ciphertext bytes go (at least one byte of room).
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Says `n` bytes were read into [`Opener::space`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Whether ciphertext of a record not complete yet is buffered.
    pub(crate) fn partial(&self) -> bool {
        self.start != self.end
    }

    /// Opens the next complete record, if one is buffered, and returns its
    /// plaintext.
    pub(crate) fn open_next(&mut self) -> Result<Option<&[u8]>, MalformedFrame> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.check_next() {
            Ok(Some(plain)) => Ok(Some(&self.buf[plain])),
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// [`Opener::open_next`] without the memory of a failure: the range of
    /// the opened record's plaintext in `buf`.
    fn check_next(&mut self) -> Result<Option<std::ops::Range<usize>>, MalformedFrame> {
        let avail = self.end - self.start;
        if avail < RECORD_HEADER {
            return Ok(None);
        }
        let head = &self.buf[self.start..self.start + RECORD_HEADER];
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let seq = u64::from_le_bytes(head[4..].try_into().expect("8 bytes"));
        if !(TAG_LEN..=MAX_RECORD_PLAIN + TAG_LEN).contains(&len) {
            return Err(MalformedFrame::Length);
        }
        if avail < RECORD_HEADER + len {
            return Ok(None);
        }
        if seq != self.next {
            return Err(MalformedFrame::Replayed);
        }
        let at = self.start;
        let (head, rest) = self.buf[at..at + RECORD_HEADER + len].split_at_mut(RECORD_HEADER);
        let (body, tag) = rest.split_at_mut(len - TAG_LEN);
        let tag = Tag::clone_from_slice(tag);
        self.cipher
            .decrypt_in_place_detached(&nonce(self.direction, seq), head, body, &tag)
            .map_err(|_| MalformedFrame::Forged)?;
        self.next += 1;
        self.start += RECORD_HEADER + len;
        Ok(Some(at + RECORD_HEADER..at + RECORD_HEADER + len - TAG_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Sealer, Opener) {
        let c = session(&Key([7; 32]), &[1; 32], &[2; 32]);
        (Sealer::new(c.clone(), 0), Opener::new(c, 0))
    }

    fn feed(o: &mut Opener, bytes: &[u8]) {
        let room = o.space();
        assert!(room.len() >= bytes.len(), "feed at most the room left");
        room[..bytes.len()].copy_from_slice(bytes);
        o.filled(bytes.len());
    }

    #[test]
    fn smoke_seal_then_open() {
        let (mut s, mut o) = pair();
        let mut wire = Vec::new();
        s.seal(b"hello", &mut wire).unwrap();
        assert_eq!(wire.len(), RECORD_HEADER + 5 + TAG_LEN);
        assert!(!wire.windows(5).any(|w| w == b"hello"), "not encrypted");
        feed(&mut o, &wire);
        assert_eq!(o.open_next().unwrap(), Some(&b"hello"[..]));
        assert_eq!(o.open_next().unwrap(), None);
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let (mut s, _) = pair();
        let mut wire = Vec::new();
        s.seal(b"a record", &mut wire).unwrap();
        for i in 0..wire.len() {
            let (_, mut o) = pair();
            let mut bad = wire.clone();
            bad[i] ^= 1;
            feed(&mut o, &bad);
            let got = o.open_next().map(|p| p.is_some());
            match i {
                // A changed length: more bytes awaited, or over one record.
                0..4 => assert!(
                    matches!(got, Ok(false) | Err(MalformedFrame::Length)),
                    "byte {i}: {got:?}"
                ),
                4..12 => assert_eq!(got, Err(MalformedFrame::Replayed), "byte {i}"),
                _ => assert_eq!(got, Err(MalformedFrame::Forged), "byte {i}"),
            }
        }
    }

    #[test]
    fn a_replayed_or_reordered_record_is_out_of_sequence() {
        let (mut s, mut o) = pair();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        s.seal(b"one", &mut one).unwrap();
        s.seal(b"two", &mut two).unwrap();
        feed(&mut o, &two);
        assert_eq!(o.open_next(), Err(MalformedFrame::Replayed));
        let (_, mut o) = pair();
        feed(&mut o, &one);
        assert!(o.open_next().unwrap().is_some());
        feed(&mut o, &one);
        assert_eq!(o.open_next(), Err(MalformedFrame::Replayed));
    }

    #[test]
    fn the_other_direction_or_another_key_does_not_open() {
        let c = session(&Key([7; 32]), &[1; 32], &[2; 32]);
        let mut s = Sealer::new(c.clone(), 1);
        let mut wire = Vec::new();
        s.seal(b"x", &mut wire).unwrap();
        let mut o = Opener::new(c, 0);
        feed(&mut o, &wire);
        assert_eq!(o.open_next(), Err(MalformedFrame::Forged));
        let other = session(&Key([8; 32]), &[1; 32], &[2; 32]);
        let mut o = Opener::new(other, 1);
        feed(&mut o, &wire);
        assert_eq!(o.open_next(), Err(MalformedFrame::Forged));
    }

    #[test]
    fn big_plaintext_goes_in_records_of_at_most_16_kib() {
        let (mut s, mut o) = pair();
        let plain: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        s.seal(&plain, &mut wire).unwrap();
        assert_eq!(wire.len(), plain.len() + 3 * (RECORD_HEADER + TAG_LEN));
        let mut out = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = o.space().len().min(1000).min(rest.len());
            feed(&mut o, &rest[..n]);
            rest = &rest[n..];
            while let Some(p) = o.open_next().unwrap() {
                out.extend_from_slice(p);
            }
        }
        assert_eq!(out, plain);
    }

    #[test]
    fn a_length_over_one_record_is_refused_before_reading_it() {
        let (_, mut o) = pair();
        let mut head = ((MAX_RECORD_PLAIN + TAG_LEN + 1) as u32)
            .to_le_bytes()
            .to_vec();
        head.extend_from_slice(&0u64.to_le_bytes());
        feed(&mut o, &head);
        assert_eq!(o.open_next(), Err(MalformedFrame::Length));
    }
}
