//! The visited set, in the three storage modes SPIN offers: exact, hash
//! compaction, bitstate. Each tracks its own memory so the search can stop
//! before the machine runs out.

use std::collections::HashSet;

use super::encode::{hash64, FoldBuild};

/// How visited states are stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Storage {
    /// Every state's canonical encoding: no state is ever missed.
    #[default]
    Exact,
    /// A 64-bit hash per state (SPIN's `-DHC`): two different states with
    /// the same hash are taken for one, so one may be missed, with
    /// probability about n²/2⁶⁵ for n states (reported).
    HashCompact,
    /// A bit array of `bits` bits (rounded up to a multiple of 64), three
    /// bits set per state (SPIN's `-DBITSTATE`, `-w`): constant memory, and
    /// a state whose three bits are all set already is taken as seen. The
    /// expected coverage is reported.
    Bitstate {
        /// Size of the array, in bits.
        bits: u64,
    },
}

impl Storage {
    /// A short name for statistics.
    pub fn name(&self) -> String {
        match self {
            Storage::Exact => "exact".into(),
            Storage::HashCompact => "hash-compact (64-bit)".into(),
            Storage::Bitstate { bits } => format!("bitstate ({bits} bits, 3 hashes)"),
        }
    }
}

/// Number of bit positions set per state in bitstate mode.
pub(crate) const BIT_HASHES: u32 = 3;

pub(crate) enum Visited {
    Exact {
        set: HashSet<Box<[u8]>, FoldBuild>,
        bytes: usize,
    },
    Compact(HashSet<u64, FoldBuild>),
    Bits {
        words: Vec<u64>,
        bits: u64,
        stored: u64,
    },
}

/// What inserting a state did.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum Insert {
    New,
    Seen,
    /// Storing it would pass the memory limit.
    Full,
}

/// Heap bytes of a hash set of `cap` usable slots of `T` (hashbrown: one
/// control byte per bucket, 8 buckets per 7 slots).
fn table_bytes<T>(cap: usize) -> usize {
    let buckets = cap.saturating_mul(8) / 7 + 1;
    buckets.saturating_mul(std::mem::size_of::<T>() + 1)
}

/// Heap bytes of one stored encoding.
fn boxed_bytes(len: usize) -> usize {
    // The allocation rounded to 16 bytes, plus the allocator's header.
    len.div_ceil(16) * 16 + 16
}

impl Visited {
    /// An empty set; `None` if bitstate's array alone passes `limit`.
    pub fn new(storage: Storage, limit: usize) -> Option<Visited> {
        Some(match storage {
            Storage::Exact => Visited::Exact {
                set: HashSet::default(),
                bytes: 0,
            },
            Storage::HashCompact => Visited::Compact(HashSet::default()),
            Storage::Bitstate { bits } => {
                let words = usize::try_from(bits.div_ceil(64).max(1)).ok()?;
                if words.checked_mul(8)? > limit {
                    return None;
                }
                Visited::Bits {
                    words: vec![0; words],
                    bits: words as u64 * 64,
                    stored: 0,
                }
            }
        })
    }

    /// Heap memory in use, in bytes.
    pub fn memory(&self) -> usize {
        match self {
            Visited::Exact { set, bytes } => table_bytes::<Box<[u8]>>(set.capacity()) + bytes,
            Visited::Compact(set) => table_bytes::<u64>(set.capacity()),
            Visited::Bits { words, .. } => words.len() * 8,
        }
    }

    /// Inserts a state's encoding, unless that would pass `limit` bytes
    /// (counting the table's growth before it happens).
    pub fn insert(&mut self, enc: &[u8], limit: usize) -> Insert {
        match self {
            Visited::Exact { set, bytes } => {
                if set.contains(enc) {
                    return Insert::Seen;
                }
                let grow = if set.len() == set.capacity() {
                    table_bytes::<Box<[u8]>>(set.capacity().max(3) * 2)
                } else {
                    table_bytes::<Box<[u8]>>(set.capacity())
                };
                if grow.saturating_add(*bytes + boxed_bytes(enc.len())) > limit {
                    return Insert::Full;
                }
                *bytes += boxed_bytes(enc.len());
                set.insert(enc.into());
                Insert::New
            }
            Visited::Compact(set) => {
                let h = hash64(enc, 0);
                if set.contains(&h) {
                    return Insert::Seen;
                }
                if set.len() == set.capacity()
                    && table_bytes::<u64>(set.capacity().max(3) * 2) > limit
                {
                    return Insert::Full;
                }
                set.insert(h);
                Insert::New
            }
            Visited::Bits {
                words,
                bits,
                stored,
            } => {
                // Double hashing: positions h1 + k*h2 (h2 odd).
                let h1 = hash64(enc, 0);
                let h2 = hash64(enc, 0x5bd1_e995) | 1;
                let mut all = true;
                for k in 0..u64::from(BIT_HASHES) {
                    let bit = h1.wrapping_add(k.wrapping_mul(h2)) % *bits;
                    let (w, b) = ((bit / 64) as usize, bit % 64);
                    if words[w] & (1 << b) == 0 {
                        all = false;
                        words[w] |= 1 << b;
                    }
                }
                if all {
                    Insert::Seen
                } else {
                    *stored += 1;
                    Insert::New
                }
            }
        }
    }

    /// The probability that some state was missed (hash compaction: a
    /// collision among the stored states; bitstate: that a new state found
    /// its bits already set, at the final fill), `None` for exact storage.
    pub fn omission(&self, stored: u64) -> Option<f64> {
        match self {
            Visited::Exact { .. } => None,
            Visited::Compact(_) => {
                let n = stored as f64;
                Some((n * n / 2f64.powi(65)).min(1.0))
            }
            Visited::Bits { bits, .. } => {
                let k = f64::from(BIT_HASHES);
                let fill = 1.0 - (-k * stored as f64 / *bits as f64).exp();
                Some(fill.powf(k))
            }
        }
    }

    /// Bitstate's hash factor (bits per stored state; SPIN: best if > 100).
    pub fn hash_factor(&self, stored: u64) -> Option<f64> {
        match self {
            Visited::Bits { bits, .. } => Some(*bits as f64 / stored.max(1) as f64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_tells_new_from_seen() {
        for storage in [
            Storage::Exact,
            Storage::HashCompact,
            Storage::Bitstate { bits: 1 << 16 },
        ] {
            let mut v = Visited::new(storage, usize::MAX).unwrap();
            assert_eq!(v.insert(b"a", usize::MAX), Insert::New);
            assert_eq!(v.insert(b"b", usize::MAX), Insert::New);
            assert_eq!(v.insert(b"a", usize::MAX), Insert::Seen, "{storage:?}");
        }
    }

    #[test]
    fn the_limit_stops_growth() {
        let mut v = Visited::new(Storage::Exact, 4096).unwrap();
        let mut full = false;
        for i in 0u32..10_000 {
            match v.insert(&i.to_le_bytes(), 4096) {
                Insert::Full => {
                    full = true;
                    break;
                }
                Insert::New => assert!(v.memory() <= 4096),
                Insert::Seen => unreachable!(),
            }
        }
        assert!(full);
        assert!(Visited::new(Storage::Bitstate { bits: 1 << 20 }, 1000).is_none());
    }
}
