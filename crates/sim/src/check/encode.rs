//! Canonical encodings of process state, and the checker's hash function.
//!
//! A state is stored by its *canonical encoding*: bytes equal for two states
//! that behave alike. The kernel encodes its own part; each machine encodes
//! its local state through an [`Encoder`], which turns the names it holds
//! into the kernel's canonical identities, so the generation bits of a name
//! (which grow every time a name is reused) do not make every loop
//! iteration a new state.
//!
//! ```
//! use mkipc_kernel::PortName;
//! use mkipc_sim::check::{Encode, Encoder};
//!
//! #[derive(Clone, PartialEq, Eq, Hash, Debug)]
//! struct Counter { out: PortName, left: u32 }
//!
//! impl Encode for Counter {
//!     fn encode(&self, e: &mut Encoder<'_>) {
//!         e.name(self.out); // by what it denotes, not by its bits
//!         e.value(&self.left); // anything that is `Hash`
//!     }
//! }
//! ```

use std::hash::{BuildHasherDefault, Hash, Hasher};

use mkipc_kernel::{Kernel, Pid, PortName};

/// The opt-in trait of a machine the stateful checker can store: append its
/// local state to the encoder. Two machine values that encode alike must
/// behave alike (the checker explores only one of them); names must go
/// through [`Encoder::name`].
pub trait Encode {
    /// Appends this value's canonical encoding.
    fn encode(&self, e: &mut Encoder<'_>);
}

/// Where a machine writes its canonical encoding (see the [module docs](crate::check::encode)).
pub struct Encoder<'a> {
    kernel: &'a Kernel,
    pid: Pid,
    out: &'a mut Vec<u8>,
}

impl<'a> Encoder<'a> {
    pub(crate) fn new(kernel: &'a Kernel, pid: Pid, out: &'a mut Vec<u8>) -> Encoder<'a> {
        Encoder { kernel, pid, out }
    }
    /// A name the process holds, by the kernel's canonical identity of what
    /// it denotes (a dead or invalid name encodes as such).
    pub fn name(&mut self, name: PortName) {
        let c = super::snap::canonical_name(self.kernel, self.pid, name);
        // Its class and distance, then its slot: two bytes for most names.
        varint(self.out, c & 0xffff_ffff);
        varint(self.out, c >> 32);
    }
    /// Names, in order.
    pub fn names(&mut self, names: &[PortName]) {
        self.u64(names.len() as u64);
        for &n in names {
            self.name(n);
        }
    }
    /// Any hashable value, by the bytes its `Hash` implementation feeds
    /// (exact, not a digest: derived `Hash` writes every field).
    pub fn value<T: Hash + ?Sized>(&mut self, value: &T) {
        value.hash(&mut ByteSink(self.out));
    }
    /// Raw bytes (length-prefixed).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }
    /// A number.
    pub fn u64(&mut self, v: u64) {
        varint(self.out, v);
    }
}

/// Appends `v` as an unsigned LEB128 varint: self-delimiting, so a
/// sequence of them (and of other self-delimiting items) reads back one
/// way, and small numbers take a byte.
#[inline]
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A signed number, zigzag-mapped (small magnitudes take a byte).
#[inline]
fn varint_signed(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A `Hasher` that records what is hashed instead of digesting it. Integers
/// are written as varints rather than as their fixed-width bytes: still
/// self-delimiting (what a `Hash` implementation that tells values apart
/// relies on), in a byte for the lengths, discriminants and small counters
/// that make up most of a machine's state.
struct ByteSink<'a>(&'a mut Vec<u8>);

impl Hasher for ByteSink<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn write_u16(&mut self, n: u16) {
        varint(self.0, u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        varint(self.0, u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        varint(self.0, n);
    }
    fn write_usize(&mut self, n: usize) {
        varint(self.0, n as u64);
    }
    fn write_i16(&mut self, n: i16) {
        varint_signed(self.0, i64::from(n));
    }
    fn write_i32(&mut self, n: i32) {
        varint_signed(self.0, i64::from(n));
    }
    fn write_i64(&mut self, n: i64) {
        varint_signed(self.0, n);
    }
    fn write_isize(&mut self, n: isize) {
        varint_signed(self.0, n as i64);
    }
    fn finish(&self) -> u64 {
        0
    }
}

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

/// A 64-bit hash of `bytes` under `seed`: wyhash's folded multiply over
/// 16-byte blocks. Fast (a multiply per 8 bytes) and well mixed, which hash
/// compaction and bitstate storage rely on; not for adversarial input.
pub(crate) fn hash64(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ P0 ^ (bytes.len() as u64).wrapping_mul(P1);
    let mut chunks = bytes.chunks_exact(16);
    for c in &mut chunks {
        let a = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
        h = fold(a ^ P1 ^ h, b ^ P2);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 16];
        buf[..rest.len()].copy_from_slice(rest);
        let a = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(buf[8..].try_into().expect("8 bytes"));
        h = fold(a ^ P1 ^ h, b ^ P2 ^ rest.len() as u64);
    }
    fold(h ^ P0, P2 ^ (bytes.len() as u64))
}

/// [`hash64`] as a `Hasher`, for the exact visited set.
#[derive(Default)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash64(bytes, self.0);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = fold(self.0 ^ n as u64 ^ P0, P1);
    }
    fn write_u64(&mut self, n: u64) {
        // Keys of the hash-compact set are already hashes: use them as they are.
        self.0 ^= n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FoldBuild = BuildHasherDefault<FoldHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `value` records.
    fn recorded<T: Hash>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        value.hash(&mut ByteSink(&mut out));
        out
    }

    proptest::proptest! {
        /// Values of a type tell apart by the bytes they record (the
        /// varints keep `Hash`'s framing).
        #[test]
        fn recorded_bytes_tell_values_apart(
            a in proptest::collection::vec((proptest::option::of(proptest::num::i64::ANY), proptest::num::u64::ANY, ".{0,3}"), 0..4),
            b in proptest::collection::vec((proptest::option::of(proptest::num::i64::ANY), proptest::num::u64::ANY, ".{0,3}"), 0..4),
        ) {
            proptest::prop_assert_eq!(a == b, recorded(&a) == recorded(&b));
            let (x, y) = ((a.clone(), 7u32), (b.clone(), 7u32));
            proptest::prop_assert_eq!(x == y, recorded(&x) == recorded(&y));
        }
    }

    #[test]
    fn small_values_record_small() {
        // A discriminant, two numbers, a bool: a byte each.
        assert_eq!(recorded(&(Some(3i64), 5usize, false)), [2, 6, 5, 0]);
        // A slice of integers is written whole (its length, then its bytes).
        assert_eq!(recorded(&vec![1u32, 2, 3]).len(), 1 + 12);
    }

    #[test]
    fn hash_depends_on_every_byte_and_the_length() {
        let base = hash64(b"0123456789abcdefXYZ", 0);
        for i in 0..19 {
            let mut b = *b"0123456789abcdefXYZ";
            b[i] ^= 1;
            assert_ne!(hash64(&b, 0), base, "byte {i}");
        }
        assert_ne!(hash64(b"ab", 0), hash64(b"ab\0", 0));
        assert_ne!(hash64(b"ab", 0), hash64(b"ab", 1));
    }
}
