//! The visited set, in the three storage modes SPIN offers: exact (with
//! collapse compression), hash compaction, bitstate. Each tracks its own
//! memory so the search can stop before the machine runs out.
//!
//! **Collapse compression** (SPIN's `-DCOLLAPSE`). A state's encoding is a
//! sequence of *parts* (the kernel's header, each task, each port, each
//! mailbox, each wait..., then each process: see
//! [`Kernel::canonical_parts`](mkipc_kernel::Kernel::canonical_parts)). A
//! transition changes few of them, so the same part recurs in many states.
//! Each part is stored once, in the table of its position, and a state is
//! stored as the vector of its parts' indices (a varint each): a few bytes
//! per part instead of its whole encoding. It stays exact: two states with
//! one vector have, part by part, the same bytes, so the same encoding;
//! and since the parts are decided by the encoding's bytes (each is
//! self-delimiting), two states with one encoding have one vector.

use std::collections::HashSet;

use super::encode::{hash64, FoldBuild};

/// How visited states are stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Storage {
    /// Every state's canonical encoding, collapsed (module docs of
    /// [`check`](super)): no state is ever missed.
    #[default]
    Exact,
    /// Every state's whole canonical encoding, uncompressed: the same
    /// states as [`Storage::Exact`], in more memory (for comparison).
    ExactFlat,
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
            Storage::Exact => "exact (collapsed)".into(),
            Storage::ExactFlat => "exact (whole encodings)".into(),
            Storage::HashCompact => "hash-compact (64-bit)".into(),
            Storage::Bitstate { bits } => format!("bitstate ({bits} bits, 3 hashes)"),
        }
    }
}

/// Number of bit positions set per state in bitstate mode.
pub(crate) const BIT_HASHES: u32 = 3;

pub(crate) enum Visited {
    Collapse(Box<Collapse>),
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
            Storage::Exact => Visited::Collapse(Box::default()),
            Storage::ExactFlat => Visited::Exact {
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
            Visited::Collapse(c) => c.memory(),
            Visited::Exact { set, bytes } => table_bytes::<Box<[u8]>>(set.capacity()) + bytes,
            Visited::Compact(set) => table_bytes::<u64>(set.capacity()),
            Visited::Bits { words, .. } => words.len() * 8,
        }
    }

    /// Inserts a state's encoding, whose parts end at `cuts` (the last at
    /// its end; the last `procs` of them the processes'), unless that
    /// would pass `limit` bytes (counting the tables' growth before it
    /// happens). `known` has one entry per part: the part's number in the
    /// collapsed set if known (it is not looked up), else `u32::MAX`, which
    /// the collapsed set replaces with the number it gives the part.
    pub fn insert(
        &mut self,
        enc: &[u8],
        cuts: &[usize],
        known: &mut [u32],
        procs: usize,
        limit: usize,
    ) -> Insert {
        match self {
            Visited::Collapse(c) => c.insert(enc, cuts, known, procs, limit),
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
            Visited::Exact { .. } | Visited::Collapse(_) => None,
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

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*at`, moving past it.
#[inline]
fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

/// Bits of a table entry that hold the arena offset (plus one).
const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// A set of byte strings, each numbered in insertion order: the strings
/// live one after another in one arena (`[length][number][bytes]`, varint
/// length, 4-byte number), and an open-addressing table (linear probing, at
/// most 3/4 full) holds per string its arena offset and 24 bits of its
/// hash. About the string's length plus 15-27 bytes per string, and no
/// allocation per string.
#[derive(Default)]
pub(crate) struct Interner {
    arena: Vec<u8>,
    /// 0: empty; else the hash's top 24 bits, then the offset plus one.
    table: Vec<u64>,
    len: usize,
}

/// What [`Interner::insert`] did.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum Interned {
    /// The string's number, and whether it is new.
    At(u32, bool),
    /// Storing it would pass the limit.
    Full,
}

impl Interner {
    /// Heap memory in use, in bytes.
    pub fn memory(&self) -> usize {
        self.arena.capacity() + self.table.capacity() * 8
    }

    /// How many strings.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the bytes of the string stored at `offset` start in the
    /// arena, and how many there are.
    fn bytes_at(&self, offset: u64) -> (usize, usize) {
        let mut at = offset as usize;
        let n = get_varint(&self.arena, &mut at) as usize;
        (at + 4, n)
    }

    /// The number and the bytes of the string stored at `offset`.
    fn at(&self, offset: u64) -> (u32, &[u8]) {
        let mut at = offset as usize;
        let n = get_varint(&self.arena, &mut at) as usize;
        let num = u32::from_le_bytes(self.arena[at..at + 4].try_into().expect("4 bytes"));
        (num, &self.arena[at + 4..at + 4 + n])
    }

    /// Looks `bytes` up; stores it if it is new and the growth that takes
    /// keeps [`Interner::memory`] plus `others` within `limit`.
    pub fn insert(&mut self, bytes: &[u8], others: usize, limit: usize) -> Interned {
        self.insert_at(bytes, others, limit).0
    }

    /// [`Interner::insert`], also giving the arena offset of the string
    /// (found or stored; meaningless with [`Interned::Full`]).
    fn insert_at(&mut self, bytes: &[u8], others: usize, limit: usize) -> (Interned, u64) {
        let hash = hash64(bytes, 0);
        let tag = hash >> OFFSET_BITS << OFFSET_BITS;
        if !self.table.is_empty() {
            let mask = self.table.len() - 1;
            let mut i = (hash as usize) & mask;
            loop {
                let e = self.table[i];
                if e == 0 {
                    break;
                }
                if e & !OFFSET_MASK == tag {
                    let (num, stored) = self.at((e & OFFSET_MASK) - 1);
                    if stored == bytes {
                        return (Interned::At(num, false), (e & OFFSET_MASK) - 1);
                    }
                }
                i = (i + 1) & mask;
            }
        }
        // New: the growth it needs, checked before any of it happens.
        let need = bytes.len() + 14;
        let mut grow = 0usize;
        let arena_cap = if self.arena.len() + need > self.arena.capacity() {
            let c = (self.arena.capacity().saturating_mul(2))
                .max(self.arena.len() + need)
                .max(1024);
            grow += c - self.arena.capacity();
            Some(c)
        } else {
            None
        };
        let table_len = if (self.len + 1) * 4 > self.table.len() * 3 {
            let n = self.table.len().saturating_mul(2).max(64);
            grow = grow.saturating_add((n - self.table.len()).saturating_mul(8));
            Some(n)
        } else {
            None
        };
        let offset = self.arena.len() as u64;
        if offset + 1 > OFFSET_MASK
            || self.len >= u32::MAX as usize
            || self.memory().saturating_add(grow).saturating_add(others) > limit
        {
            return (Interned::Full, 0);
        }
        if let Some(c) = arena_cap {
            self.arena.reserve_exact(c - self.arena.len());
        }
        if let Some(n) = table_len {
            self.rehash(n);
        }
        let num = self.len as u32;
        put_varint(&mut self.arena, bytes.len() as u64);
        self.arena.extend_from_slice(&num.to_le_bytes());
        self.arena.extend_from_slice(bytes);
        let mask = self.table.len() - 1;
        let mut i = (hash as usize) & mask;
        while self.table[i] != 0 {
            i = (i + 1) & mask;
        }
        self.table[i] = tag | (offset + 1);
        self.len += 1;
        (Interned::At(num, true), offset)
    }

    /// Moves every entry into a table of `n` slots (a power of two).
    fn rehash(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.table, vec![0; n]);
        let mask = n - 1;
        for e in old.into_iter().filter(|&e| e != 0) {
            let (_, bytes) = self.at((e & OFFSET_MASK) - 1);
            let mut i = (hash64(bytes, 0) as usize) & mask;
            while self.table[i] != 0 {
                i = (i + 1) & mask;
            }
            self.table[i] = e;
        }
    }
}

/// Parts at positions past this share the last table.
const PART_TABLES: usize = 256;

/// How many recent strings [`Recent`] remembers per table.
const RECENT_WAYS: usize = 4;

/// The strings a table gave out last (their arena offsets and numbers),
/// compared byte for byte before the table is hashed and probed: a
/// transition changes few parts, and the depth-first search moves between
/// states that share most of theirs, so a part at a position is most often
/// one of the last few seen there. Exact: a hit is a byte-equal string.
#[derive(Default, Clone, Copy)]
struct Recent {
    /// (where the string's bytes start in the arena, its length, its
    /// number): the length is compared first, and nothing is decoded.
    /// Empty: a length no string has.
    ways: [(usize, u32, u32); RECENT_WAYS],
    /// The way the next miss replaces (round robin).
    next: u8,
    /// The way that matched or was filled last, compared first: the part
    /// at a position is most often the one it was in the state before.
    last: u8,
}

impl Recent {
    const EMPTY: Recent = Recent {
        ways: [(0, u32::MAX, 0); RECENT_WAYS],
        next: 0,
        last: 0,
    };

    /// The number of `bytes` if it is one of the recent strings of `table`.
    #[inline]
    fn find(&mut self, table: &Interner, bytes: &[u8]) -> Option<u32> {
        let matches = |&(start, len, _): &(usize, u32, u32)| {
            len as usize == bytes.len()
                && table.arena.get(start..start + bytes.len()) == Some(bytes)
        };
        let last = self.last as usize;
        if matches(&self.ways[last]) {
            return Some(self.ways[last].2);
        }
        let k = (0..RECENT_WAYS).find(|&k| k != last && matches(&self.ways[k]))?;
        self.last = k as u8;
        Some(self.ways[k].2)
    }

    /// Remembers the string stored at `offset` in `table` as number `num`.
    #[inline]
    fn remember(&mut self, table: &Interner, offset: u64, num: u32) {
        let (start, len) = table.bytes_at(offset);
        // A string too long for the length field is just not remembered.
        let Ok(len) = u32::try_from(len) else { return };
        if len == u32::MAX {
            return;
        }
        self.ways[self.next as usize] = (start, len, num);
        self.last = self.next;
        self.next = (self.next + 1) % RECENT_WAYS as u8;
    }
}

/// Exact storage with collapse compression (module docs).
#[derive(Default)]
pub(crate) struct Collapse {
    /// The kernel's parts seen at each position (the last table for every
    /// later one), then each process's by process (likewise): a process's
    /// part keeps its number whatever the kernel's parts before it.
    parts: Vec<Interner>,
    /// Per table of `parts`, the strings it gave out last.
    recent: Vec<Recent>,
    /// The states: their vectors of part numbers.
    states: Interner,
    /// The vector being built.
    vector: Vec<u8>,
    /// Memory of `parts` (kept up to date).
    parts_memory: usize,
}

impl Collapse {
    fn memory(&self) -> usize {
        self.parts_memory + self.states.memory()
    }

    fn insert(
        &mut self,
        enc: &[u8],
        cuts: &[usize],
        known: &mut [u32],
        procs: usize,
        limit: usize,
    ) -> Insert {
        debug_assert_eq!(cuts.len(), known.len());
        self.vector.clear();
        let first_proc = cuts.len().saturating_sub(procs);
        let mut start = 0;
        let mut fresh = false;
        for (k, &end) in cuts.iter().enumerate() {
            let part = &enc[start..end];
            start = end;
            let n = match known[k] {
                u32::MAX => {
                    let table = if k < first_proc {
                        k.min(PART_TABLES - 1)
                    } else {
                        PART_TABLES + (k - first_proc).min(PART_TABLES - 1)
                    };
                    if self.parts.len() <= table {
                        self.parts.resize_with(table + 1, Interner::default);
                        self.recent.resize(table + 1, Recent::EMPTY);
                    }
                    let t = &mut self.parts[table];
                    if let Some(n) = self.recent[table].find(t, part) {
                        known[k] = n;
                        n
                    } else {
                        let before = t.memory();
                        let others = self.parts_memory - before + self.states.memory();
                        let (got, offset) = t.insert_at(part, others, limit);
                        self.parts_memory = self.parts_memory - before + t.memory();
                        match got {
                            Interned::Full => return Insert::Full,
                            Interned::At(n, new) => {
                                fresh |= new;
                                known[k] = n;
                                self.recent[table].remember(&self.parts[table], offset, n);
                                n
                            }
                        }
                    }
                }
                n => n,
            };
            put_varint(&mut self.vector, u64::from(n));
        }
        debug_assert_eq!(start, enc.len(), "the cuts cover the encoding");
        match self.states.insert(&self.vector, self.parts_memory, limit) {
            Interned::Full => Insert::Full,
            Interned::At(_, true) => Insert::New,
            Interned::At(_, false) => {
                debug_assert!(!fresh, "a state with a new part is new");
                Insert::Seen
            }
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
            Storage::ExactFlat,
            Storage::HashCompact,
            Storage::Bitstate { bits: 1 << 16 },
        ] {
            let mut v = Visited::new(storage, usize::MAX).unwrap();
            assert_eq!(
                v.insert(b"a", &[1], &mut [u32::MAX], 1, usize::MAX),
                Insert::New
            );
            assert_eq!(
                v.insert(b"b", &[1], &mut [u32::MAX], 1, usize::MAX),
                Insert::New
            );
            assert_eq!(
                v.insert(b"a", &[1], &mut [u32::MAX], 1, usize::MAX),
                Insert::Seen,
                "{storage:?}"
            );
        }
    }

    #[test]
    fn the_limit_stops_growth() {
        for (storage, limit) in [
            (Storage::Exact, 4096),
            (Storage::Exact, 100_000),
            (Storage::ExactFlat, 4096),
            (Storage::HashCompact, 4096),
        ] {
            let mut v = Visited::new(storage, limit).unwrap();
            let mut full = false;
            for i in 0u32..100_000 {
                let enc = [i.to_le_bytes(), (i / 7).to_le_bytes()].concat();
                match v.insert(&enc, &[4, 8], &mut [u32::MAX; 2], 1, limit) {
                    Insert::Full => {
                        full = true;
                        break;
                    }
                    Insert::New => assert!(v.memory() <= limit, "{storage:?}"),
                    Insert::Seen => unreachable!(),
                }
            }
            assert!(full, "{storage:?}");
            assert!(v.memory() <= limit, "{storage:?}");
        }
        assert!(Visited::new(Storage::Bitstate { bits: 1 << 20 }, 1000).is_none());
    }

    /// Collapse storage small enough: ring-like states (30 parts, each of
    /// a few values) take a few dozen bytes each.
    #[test]
    fn collapsed_states_are_small() {
        let mut v = Visited::new(Storage::Exact, usize::MAX).unwrap();
        let mut n = 0u64;
        for i in 0u64..100_000 {
            let mut enc = Vec::new();
            let mut cuts = Vec::new();
            for k in 0..30u64 {
                // Part k takes one of a few values, 40 bytes each.
                let value = (i >> (k % 17)) % 3;
                enc.extend_from_slice(&[(k * 3 + value) as u8; 40]);
                cuts.push(enc.len());
            }
            if v.insert(&enc, &cuts, &mut [u32::MAX; 30], 6, usize::MAX) == Insert::New {
                n += 1;
            }
        }
        assert!(n > 50_000, "{n}");
        let per_state = v.memory() as f64 / n as f64;
        assert!(per_state < 80.0, "{per_state} bytes per state");
    }

    proptest::proptest! {
        /// Collapse storage tells new from seen exactly as a set of whole
        /// encodings does, whatever the parts.
        #[test]
        fn collapse_agrees_with_whole_encodings(
            states in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec(0u8..3, 1..4), 1..6),
                1..200),
        ) {
            let mut collapse = Visited::new(Storage::Exact, usize::MAX).unwrap();
            let mut reference = HashSet::new();
            for parts in &states {
                let enc = parts.concat();
                let cuts: Vec<usize> = parts
                    .iter()
                    .scan(0, |end, p| {
                        *end += p.len();
                        Some(*end)
                    })
                    .collect();
                // The reference: the parts themselves (a split is part of
                // the state; the checker's splits follow from the bytes).
                let new = reference.insert(parts.clone());
                let want = if new { Insert::New } else { Insert::Seen };
                let mut known = vec![u32::MAX; cuts.len()];
                proptest::prop_assert_eq!(collapse.insert(&enc, &cuts, &mut known, 2, usize::MAX), want);
                // Known numbers give the same answer without a look-up.
                let mut again = known.clone();
                proptest::prop_assert_eq!(collapse.insert(&enc, &cuts, &mut again, 2, usize::MAX), Insert::Seen);
                proptest::prop_assert_eq!(again, known);
            }
        }
    }

    #[test]
    fn the_interner_numbers_in_order_and_finds_again() {
        let mut t = Interner::default();
        let key = |i: u32| i.to_le_bytes().repeat((i % 5 + 1) as usize);
        for i in 0u32..5000 {
            assert_eq!(t.insert(&key(i), 0, usize::MAX), Interned::At(i, true));
        }
        for i in 0u32..5000 {
            assert_eq!(t.insert(&key(i), 0, usize::MAX), Interned::At(i, false));
        }
        assert_eq!(t.len(), 5000);
        assert_eq!(t.insert(b"", 0, usize::MAX), Interned::At(5000, true));
        assert_eq!(t.insert(b"", 0, usize::MAX), Interned::At(5000, false));
    }
}
