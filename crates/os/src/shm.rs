//! Shared-memory links: a pipe's meaning, in two rings of shared memory.
//!
//! A direct link made with [`LinkKind::SharedMemory`](crate::LinkKind)
//! carries the same frames as a pipe link ([`crate::wire`]: ids, bodies up to
//! [`LINK_BODY_LIMIT`](crate::LINK_BODY_LIMIT), the check, `Malformed` on a
//! bad frame, the link closed after one), but through memory both processes
//! map, so a message needs no system call while the other side is awake.
//!
//! * **Memory.** One `memfd` per link, of two rings (one each way, single
//!   producer, single consumer: a link has one writer process per direction,
//!   and the threads of that process take turns under the link's lock). The
//!   file has no name anywhere, so nothing can guess it and nothing is left
//!   in `/dev/shm`, whoever is killed: it lives while a descriptor or a
//!   mapping does. It is mode 0600 and sealed (`F_SEAL_SHRINK | GROW`): the
//!   peer cannot truncate it under our mapping (`SIGBUS`). It reaches the
//!   peer as descriptors always do here: in the start-up message
//!   ([`Spawn::link_kind`](crate::Spawn::link_kind)) or a [`new_link_of`](crate::new_link_of) end.
//! * **A ring** is a byte stream, as a pipe is: `head` (bytes written, the
//!   producer's), `tail` (bytes read, the consumer's), 64 KiB of data. Each
//!   side keeps its own copy of its position and checks the other's (a
//!   `head` more than the ring's size ahead of `tail` is a corrupt ring:
//!   `Malformed(Length)`); bytes are copied out before they are parsed, so a
//!   peer rewriting them meanwhile changes nothing we checked.
//! * **Sleeping.** A side that finds nothing to do spins for a while (only
//!   when it may run on more than one CPU, never when pinned to one, where
//!   the other side cannot run while it spins; and only while its recent
//!   spins paid off, see `Spinner`), then says it sleeps (a bit
//!   in the ring's `reader_waits`/`writer_waits`) and `FUTEX_WAIT`s on a
//!   sequence word. The other side, after publishing, looks at that word and
//!   only then increments the sequence and calls `FUTEX_WAKE`: a message to
//!   an awake peer costs two stores and a load. A receive that waits on
//!   several links at once (`receive_from_any`) cannot wait on a futex and
//!   descriptors together, so it sets the `POLL` bit instead and `poll`s the
//!   ring's *doorbell* (an `eventfd`), which the writer rings only then.
//! * **Death.** An orderly close (the link dropped, `close_link`, exit) sets
//!   the ring's `closed` bits and wakes both sides; a peer killed by a signal
//!   is seen by this process's watcher thread through a pidfd
//!   (`watch.rs`), which does the same on its behalf. So nobody sleeps
//!   on a dead peer: a receive gets what was written, then `SourceDead` (a
//!   frame cut in the middle is `Malformed(Truncated)`), a send
//!   `DestinationDead`.
//!
//! Rights travel as on a pipe link: the frame in the ring, the descriptors
//! on the link's Unix socket beside it.
//!
//! Layout of one ring (offsets from the ring's start; the second ring starts
//! at [`RING_SPAN`]; all little-endian): 0 magic `MKIPCRNG` (u64), 8 data
//! capacity (u32), 64 `head` (u64), 72 `rseq` (u32, the reader's futex), 76
//! `writer_waits` (u32), 128 `tail` (u64), 136 `wseq` (u32, the writer's
//! futex), 140 `reader_waits` (u32; bit 0 futex, bit 1 doorbell), 192
//! `closed` (u32; bit 0 writer gone, bit 1 reader gone), 4096 the data.
//! Ring 0 is written by the end that [`new_link_of`](crate::new_link_of)
//! returns first.
//!
//! ```
//! use mkipc_kernel::{Ipc, Message, Pid};
//! use mkipc_os::{new_link_of, LinkKind, OsProcess};
//!
//! let a = OsProcess::new().unwrap();
//! let b = OsProcess::join(a.run_id()).unwrap();
//! let (near, far) = new_link_of(LinkKind::SharedMemory).unwrap();
//! let me = Pid(std::process::id()); // both ends here: each watches this process
//! a.adopt_link(me, near).unwrap();
//! b.adopt_link(me, far).unwrap();
//! let big = vec![7u8; 200_000]; // bigger than a ring: streamed through it
//! let t = std::thread::spawn(move || a.send_to(me, Message::new(1, big)).map(|_| a));
//! assert_eq!(b.receive_from(me).unwrap().body.len(), 200_000);
//! drop(t.join().unwrap().unwrap());
//! ```

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::link::TxError;
use crate::sys::{Deadline, Errno};
use crate::sys_shm::{self, Mapping};

#[cfg(not(target_endian = "little"))]
compile_error!("the shared-memory ring layout is little-endian");

/// Data bytes in each ring (a power of two), as much as a pipe holds.
pub const RING_CAPACITY: usize = 64 * 1024;
const HEADER: usize = 4096;
/// Bytes from one ring's start to the next's.
pub const RING_SPAN: usize = HEADER + RING_CAPACITY;
/// The size of a link's shared file.
pub const MAP_LEN: usize = 2 * RING_SPAN;
const MAGIC: u64 = u64::from_le_bytes(*b"MKIPCRNG");

const OFF_MAGIC: usize = 0;
const OFF_CAP: usize = 8;
const OFF_HEAD: usize = 64;
const OFF_RSEQ: usize = 72;
const OFF_WRITER_WAITS: usize = 76;
const OFF_TAIL: usize = 128;
const OFF_WSEQ: usize = 136;
const OFF_READER_WAITS: usize = 140;
const OFF_CLOSED: usize = 192;

const WRITER_GONE: u32 = 1;
const READER_GONE: u32 = 2;
const WAIT_FUTEX: u32 = 1;
const WAIT_POLL: u32 = 2;

/// One end of a shared-memory link before it is adopted: the file, which
/// ring this end writes (0 or 1), and the two doorbells (`bells[i]` is rung
/// by ring `i`'s writer for its reader).
#[derive(Debug)]
pub(crate) struct ShmEnd {
    pub(crate) memfd: OwnedFd,
    pub(crate) side: usize,
    pub(crate) bells: [OwnedFd; 2],
}

impl ShmEnd {
    /// Its descriptors, in the order [`ShmEnd::from_fds`] takes them.
    pub(crate) fn fds(&self) -> [RawFd; 3] {
        [
            self.memfd.as_raw_fd(),
            self.bells[0].as_raw_fd(),
            self.bells[1].as_raw_fd(),
        ]
    }

    /// Its descriptors, moved out: the file and the two doorbells.
    pub(crate) fn bells_and_file(self) -> [OwnedFd; 3] {
        let [b0, b1] = self.bells;
        [self.memfd, b0, b1]
    }

    /// Rebuilds an end from descriptors received at start-up.
    pub(crate) fn from_fds(side: usize, memfd: OwnedFd, bell0: OwnedFd, bell1: OwnedFd) -> ShmEnd {
        ShmEnd {
            memfd,
            side: side & 1,
            bells: [bell0, bell1],
        }
    }
}

/// A new link's two ends (the first writes ring 0).
pub(crate) fn new_pair() -> Result<(ShmEnd, ShmEnd), Errno> {
    let memfd = sys_shm::memfd_sealed(c"mkipc-link", MAP_LEN)?;
    {
        let map = Mapping::new(memfd.as_fd(), MAP_LEN)?;
        for ring in 0..2 {
            let base = ring * RING_SPAN;
            // SAFETY: fresh, private to this call, aligned, in bounds.
            unsafe {
                (map.ptr().add(base + OFF_MAGIC) as *mut u64).write(MAGIC);
                (map.ptr().add(base + OFF_CAP) as *mut u32).write(RING_CAPACITY as u32);
            }
        }
    }
    let (b0, b1) = (sys_shm::eventfd()?, sys_shm::eventfd()?);
    let far = ShmEnd {
        memfd: crate::sys::dup(memfd.as_fd())?,
        side: 1,
        bells: [crate::sys::dup(b0.as_fd())?, crate::sys::dup(b1.as_fd())?],
    };
    Ok((
        ShmEnd {
            memfd,
            side: 0,
            bells: [b0, b1],
        },
        far,
    ))
}

/// How long a side spins before it sleeps: 0 when this process may run on
/// one CPU only, else 20 µs (`MKIPC_SHM_SPIN_US` overrides it).
fn spin_budget() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("MKIPC_SHM_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if sys_shm::cpus_allowed() > 1 { 20 } else { 0 });
        Duration::from_micros(us)
    })
}

/// When one side of a ring spins, learnt from how its last waits went.
///
/// Spinning pays only while the other side is running on another CPU and
/// answers within the budget. When it is not (it sleeps and must be woken
/// and scheduled first, or the machine is busy and the spinner holds the
/// CPU the other side needs), a spin is pure loss, and on a loaded machine
/// it costs a whole budget per message or worse (measured here: a woken
/// peer is often queued on the spinner's own CPU). So a side spins the full
/// budget while its recent spins paid off (`score > 0`: set by a spin that
/// saw the other side, lowered by one that did not), and otherwise only a
/// short probe on every 64th wait, to find out whether the other side has
/// become fast (long enough to cover a sleeping peer's wake-up on an idle
/// CPU, so that two sides that both stopped spinning find each other again).
#[derive(Default)]
struct Spinner {
    score: AtomicU32,
    waits: AtomicU32,
}

impl Spinner {
    const TRUST: u32 = 4;
    const PROBE_EVERY: u32 = 64;
    const PROBE: Duration = Duration::from_micros(8);

    /// Spins until `ready`, for this wait's budget (never past
    /// `deadline`); learns from the outcome.
    fn spin(&self, deadline: Deadline, ready: impl Fn() -> bool) -> bool {
        let full = spin_budget();
        let probe = self.waits.fetch_add(1, Relaxed) % Self::PROBE_EVERY == 0;
        if full.is_zero() || (self.score.load(Relaxed) == 0 && !probe) {
            return false;
        }
        let budget = if self.score.load(Relaxed) > 0 {
            full
        } else {
            full.min(Self::PROBE)
        };
        let seen = spin(deadline, budget, ready);
        if seen {
            self.score.store(Self::TRUST, Relaxed);
        } else {
            let _ = self
                .score
                .fetch_update(Relaxed, Relaxed, |s| Some(s.saturating_sub(1)));
        }
        seen
    }
}

/// Spins until `ready` or `budget` is spent (never past `deadline`).
fn spin(deadline: Deadline, budget: Duration, ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    let until = deadline.map_or(start + budget, |d| d.min(start + budget));
    let mut i = 0u32;
    loop {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
        i = i.wrapping_add(1);
        if i % 64 == 0 && Instant::now() >= until {
            return false;
        }
    }
}

/// The mapping of one link, shared by its two halves (and watched for the
/// peer's death).
pub(crate) struct Shared {
    map: Mapping,
    side: usize,
    bells: [OwnedFd; 2],
}

/// A view of one ring.
struct Ring<'a> {
    base: *mut u8,
    bell: &'a OwnedFd,
}

impl Ring<'_> {
    fn u64_at(&self, off: usize) -> &AtomicU64 {
        // SAFETY: `off` is one of the 8-aligned header offsets, inside the
        // mapping, which outlives `self`; the word is only accessed atomically.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }
    fn u32_at(&self, off: usize) -> &AtomicU32 {
        // SAFETY: as for `u64_at`, 4-aligned.
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }
    fn head(&self) -> &AtomicU64 {
        self.u64_at(OFF_HEAD)
    }
    fn tail(&self) -> &AtomicU64 {
        self.u64_at(OFF_TAIL)
    }
    fn closed(&self) -> u32 {
        self.u32_at(OFF_CLOSED).load(SeqCst)
    }

    /// Copies `src` into the data at stream position `pos`.
    fn copy_in(&self, pos: u64, src: &[u8]) {
        let off = (pos as usize) & (RING_CAPACITY - 1);
        let first = src.len().min(RING_CAPACITY - off);
        // SAFETY: `off + first <= RING_CAPACITY` and `src.len() - first <=
        // RING_CAPACITY - first` (callers write at most the free room), so
        // both copies stay in the data area; the peer only reads it.
        unsafe {
            let data = self.base.add(HEADER);
            std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
        }
    }

    /// Copies the bytes at stream position `pos` into `dst`.
    fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        let off = (pos as usize) & (RING_CAPACITY - 1);
        let first = dst.len().min(RING_CAPACITY - off);
        // SAFETY: as for `copy_in` (`dst.len() <= RING_CAPACITY`). The peer
        // may write these bytes concurrently only if it breaks the protocol;
        // the copy is then garbage, which the frame check reports.
        unsafe {
            let data = self.base.add(HEADER);
            std::ptr::copy_nonoverlapping(data.add(off), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }

    /// Wakes this ring's reader if it said it sleeps.
    fn wake_reader(&self) {
        let waits = self.u32_at(OFF_READER_WAITS);
        if waits.load(SeqCst) == 0 {
            return;
        }
        let bits = waits.swap(0, SeqCst);
        if bits != 0 {
            let seq = self.u32_at(OFF_RSEQ);
            seq.fetch_add(1, SeqCst);
            if bits & WAIT_FUTEX != 0 {
                sys_shm::futex_wake(seq);
            }
            if bits & WAIT_POLL != 0 {
                sys_shm::eventfd_ring(self.bell.as_fd());
            }
        }
    }

    /// Wakes this ring's writer if it said it sleeps.
    fn wake_writer(&self) {
        let waits = self.u32_at(OFF_WRITER_WAITS);
        if waits.load(SeqCst) == 0 {
            return;
        }
        if waits.swap(0, SeqCst) != 0 {
            let seq = self.u32_at(OFF_WSEQ);
            seq.fetch_add(1, SeqCst);
            sys_shm::futex_wake(seq);
        }
    }

    /// Sets `bit` in `closed` and wakes everyone who may sleep on the ring.
    fn close(&self, bit: u32) {
        self.u32_at(OFF_CLOSED).fetch_or(bit, SeqCst);
        for (seq, waits) in [(OFF_RSEQ, OFF_READER_WAITS), (OFF_WSEQ, OFF_WRITER_WAITS)] {
            self.u32_at(waits).store(0, SeqCst);
            self.u32_at(seq).fetch_add(1, SeqCst);
            sys_shm::futex_wake(self.u32_at(seq));
        }
        sys_shm::eventfd_ring(self.bell.as_fd());
    }
}

impl Shared {
    /// Maps an end (refusing a file that is not a sealed memfd of the right
    /// size, or whose rings are not mkipc rings).
    pub(crate) fn from_end(end: ShmEnd) -> Result<Arc<Shared>, Errno> {
        if !sys_shm::is_sealed_memfd(end.memfd.as_fd(), MAP_LEN)? {
            return Err(libc::EINVAL);
        }
        let map = Mapping::new(end.memfd.as_fd(), MAP_LEN)?;
        let shared = Shared {
            map,
            side: end.side,
            bells: end.bells,
        };
        for ring in [shared.tx(), shared.rx()] {
            // SAFETY: aligned header words inside the mapping.
            let (magic, cap) = unsafe {
                (
                    (ring.base.add(OFF_MAGIC) as *const u64).read_volatile(),
                    (ring.base.add(OFF_CAP) as *const u32).read_volatile(),
                )
            };
            if magic != MAGIC || cap as usize != RING_CAPACITY {
                return Err(libc::EINVAL);
            }
        }
        debug_assert_eq!(shared.map.len(), MAP_LEN);
        Ok(Arc::new(shared))
        // The memfd closes here: the mapping keeps the memory alive.
    }

    fn ring(&self, i: usize) -> Ring<'_> {
        Ring {
            // SAFETY: `i` is 0 or 1, and both rings lie inside the mapping.
            base: unsafe { self.map.ptr().add((i & 1) * RING_SPAN) },
            bell: &self.bells[i & 1],
        }
    }
    fn tx(&self) -> Ring<'_> {
        self.ring(self.side)
    }
    fn rx(&self) -> Ring<'_> {
        self.ring(1 - self.side)
    }

    /// The peer is dead: both rings are closed on its side, and every
    /// sleeper of this process on them wakes.
    pub(crate) fn peer_gone(&self) {
        tracing::debug!("shared-memory link: the peer is gone");
        self.rx().close(WRITER_GONE);
        self.tx().close(READER_GONE);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        crate::watch::forget();
    }
}

/// What one read from a ring found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// This many bytes were copied.
    Data(usize),
    /// Nothing yet.
    Empty,
    /// The writer is gone and everything was read (or this side closed it).
    Eof,
    /// The peer broke the ring's invariants.
    Corrupt,
}

/// The sending half: writes ring `side`.
pub(crate) struct ShmTx {
    shared: Arc<Shared>,
    /// Bytes written so far (the true `head`; the shared copy is for the peer).
    head: AtomicU64,
    spinner: Spinner,
}

/// The receiving half: reads ring `1 - side`.
pub(crate) struct ShmRx {
    shared: Arc<Shared>,
    /// Bytes read so far (the true `tail`).
    tail: AtomicU64,
    spinner: Spinner,
}

/// Both halves of an adopted end, watched for the peer's death.
pub(crate) fn halves(end: ShmEnd, peer: u32) -> Result<(ShmTx, ShmRx), Errno> {
    let shared = Shared::from_end(end)?;
    crate::watch::watch(peer, &shared);
    Ok((
        ShmTx {
            shared: Arc::clone(&shared),
            head: AtomicU64::new(0),
            spinner: Spinner::default(),
        },
        ShmRx {
            shared,
            tail: AtomicU64::new(0),
            spinner: Spinner::default(),
        },
    ))
}

impl ShmTx {
    /// Free bytes in the ring; `Err(Closed)` if the reader is gone or broke
    /// the ring.
    fn room(&self) -> Result<usize, TxError> {
        let ring = self.shared.tx();
        if ring.closed() & READER_GONE != 0 {
            return Err(TxError::Closed);
        }
        let used = self
            .head
            .load(SeqCst)
            .wrapping_sub(ring.tail().load(SeqCst));
        if used > RING_CAPACITY as u64 {
            tracing::warn!(used, "shared-memory ring: the reader broke the tail");
            return Err(TxError::Closed);
        }
        Ok(RING_CAPACITY - used as usize)
    }

    /// Waits until at least `need` bytes are free, until `deadline`.
    fn wait_room(&self, need: usize, deadline: Deadline) -> Result<(), TxError> {
        if self.room()? >= need {
            return Ok(());
        }
        let past = deadline.is_some_and(|d| d <= Instant::now());
        if !past
            && self
                .spinner
                .spin(deadline, || self.room().map_or(true, |r| r >= need))
        {
            return self.room().map(drop);
        }
        let ring = self.shared.tx();
        let seq = ring.u32_at(OFF_WSEQ);
        let waits = ring.u32_at(OFF_WRITER_WAITS);
        loop {
            let seen = seq.load(SeqCst);
            waits.fetch_or(WAIT_FUTEX, SeqCst);
            if self.room()? >= need {
                return Ok(());
            }
            match sys_shm::futex_wait(seq, seen, deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return match self.room()? {
                        r if r >= need => Ok(()),
                        _ => Err(TxError::TimedOut),
                    }
                }
                Err(e) => return Err(TxError::Os(e)),
            }
        }
    }

    /// Writes one whole frame. With `wait` unset it is written only if the
    /// ring has room for all of it now (or, for a frame bigger than the
    /// ring, is empty); with a deadline, room is waited for until then. A
    /// frame once started is written whole, waiting for the reader as long
    /// as it takes (as a big frame on a pipe).
    pub(crate) fn write_frame(
        &self,
        frame: &[u8],
        wait: bool,
        deadline: Deadline,
    ) -> Result<(), TxError> {
        let need = frame.len().min(RING_CAPACITY);
        let until = if wait { deadline } else { Some(Instant::now()) };
        match self.wait_room(need, until) {
            Err(TxError::TimedOut) if !wait => return Err(TxError::WouldBlock),
            other => other?,
        }
        let ring = self.shared.tx();
        let mut done = 0;
        loop {
            let n = self.room()?.min(frame.len() - done);
            let head = self.head.load(SeqCst);
            ring.copy_in(head, &frame[done..done + n]);
            let head = head.wrapping_add(n as u64);
            self.head.store(head, SeqCst);
            ring.head().store(head, SeqCst);
            ring.wake_reader();
            done += n;
            if done == frame.len() {
                return Ok(());
            }
            self.wait_room(1, None)?;
        }
    }
}

impl Drop for ShmTx {
    fn drop(&mut self) {
        self.shared.tx().close(WRITER_GONE);
    }
}

impl ShmRx {
    fn readable(&self) -> bool {
        let ring = self.shared.rx();
        ring.closed() != 0 || ring.head().load(SeqCst) != self.tail.load(SeqCst)
    }

    /// Copies what the ring holds (at most `buf.len()` bytes) into `buf`,
    /// without waiting.
    pub(crate) fn read(&self, buf: &mut [u8]) -> Read {
        let ring = self.shared.rx();
        // `closed` before `head`: a writer that wrote, then closed, is seen
        // with all it wrote.
        let closed = ring.closed();
        if closed & READER_GONE != 0 {
            return Read::Eof;
        }
        let tail = self.tail.load(SeqCst);
        let avail = ring.head().load(SeqCst).wrapping_sub(tail);
        if avail > RING_CAPACITY as u64 {
            return Read::Corrupt;
        }
        if avail == 0 {
            return if closed & WRITER_GONE != 0 {
                Read::Eof
            } else {
                Read::Empty
            };
        }
        let n = (avail as usize).min(buf.len());
        ring.copy_out(tail, &mut buf[..n]);
        let tail = tail.wrapping_add(n as u64);
        self.tail.store(tail, SeqCst);
        ring.tail().store(tail, SeqCst);
        ring.wake_writer();
        Read::Data(n)
    }

    /// Waits until the ring has bytes or is closed, or `deadline` passes
    /// (`Ok(false)`).
    pub(crate) fn wait_readable(&self, deadline: Deadline) -> Result<bool, Errno> {
        if self.readable() {
            return Ok(true);
        }
        let past = deadline.is_some_and(|d| d <= Instant::now());
        if past {
            return Ok(false);
        }
        if self.spinner.spin(deadline, || self.readable()) {
            return Ok(true);
        }
        let ring = self.shared.rx();
        let seq = ring.u32_at(OFF_RSEQ);
        let waits = ring.u32_at(OFF_READER_WAITS);
        loop {
            let seen = seq.load(SeqCst);
            waits.fetch_or(WAIT_FUTEX, SeqCst);
            if self.readable() {
                waits.fetch_and(!WAIT_FUTEX, SeqCst);
                return Ok(true);
            }
            if !sys_shm::futex_wait(seq, seen, deadline)? {
                waits.fetch_and(!WAIT_FUTEX, SeqCst);
                return Ok(self.readable());
            }
        }
    }

    /// Arms the doorbell for a `poll` over several links and returns it; if
    /// the ring is readable already, the doorbell is rung at once so the
    /// `poll` returns.
    pub(crate) fn doorbell(&self) -> RawFd {
        let ring = self.shared.rx();
        ring.u32_at(OFF_READER_WAITS).fetch_or(WAIT_POLL, SeqCst);
        if self.readable() {
            sys_shm::eventfd_ring(ring.bell.as_fd());
        }
        ring.bell.as_raw_fd()
    }

    /// Clears the doorbell after a `poll` saw it.
    pub(crate) fn drain_doorbell(&self) {
        sys_shm::eventfd_drain(self.shared.rx().bell.as_fd());
    }

    /// Closes the ring from this side (a malformed frame): the writer's next
    /// send fails, and this side reads nothing more.
    pub(crate) fn close(&self) {
        self.shared.rx().close(READER_GONE);
    }
}

impl Drop for ShmRx {
    fn drop(&mut self) {
        self.close();
    }
}
