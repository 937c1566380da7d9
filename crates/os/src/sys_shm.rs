//! The system calls of the shared-memory links ([`crate::shm`]): `memfd`,
//! seals, `mmap`, futexes, `eventfd` and `pidfd`.
//!
//! Kept apart from [`crate::sys`] (pipes, sockets, queues) so each file stays
//! about one thing; the rule is the same: every `unsafe` block sits here with
//! a `// SAFETY:` comment, descriptors are [`OwnedFd`], errors raw `errno`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Instant;

use crate::sys::{errno, Deadline, Errno};

fn check(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// An anonymous shared-memory file of `len` bytes, mode 0600, sealed so that
/// nobody (the peer included) can shrink or grow it: a mapping of it can
/// never fault with `SIGBUS` because the other side truncated it.
pub(crate) fn memfd_sealed(name: &std::ffi::CStr, len: usize) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is NUL-terminated; the flags are valid.
    let fd = check(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    // SAFETY: memfd_create returned a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = libc::off_t::try_from(len).map_err(|_| libc::EINVAL)?;
    // SAFETY: `fd` is an open memfd.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })?;
    crate::sys::fchmod(fd.as_fd(), 0o600)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: `fd` is an open memfd made with MFD_ALLOW_SEALING.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(fd)
}

/// Whether `fd` is a memfd of exactly `len` bytes that can no longer shrink
/// or grow (what [`memfd_sealed`] makes): anything else is refused before it
/// is mapped.
pub(crate) fn is_sealed_memfd(fd: BorrowedFd<'_>, len: usize) -> Result<bool, Errno> {
    // SAFETY: `fd` is open; F_GET_SEALS takes no argument.
    let seals = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })?;
    let want = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    // SAFETY: stat is plain data; all-zero is a valid value to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` is writable.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(seals & want == want && st.st_size as u64 == len as u64)
}

/// The size of a [`SealedPage`]'s file.
pub(crate) const PAGE_LEN: usize = 4096;

/// One page of shared memory behind an unnamed, sealed `memfd` (mode
/// 0600: nothing to guess, nothing left in `/dev/shm`), mapped here and
/// passed to other processes by descriptor; its first word is a magic
/// number that says what the page is. The capacity page
/// ([`crate::capacity`]) and the access page ([`crate::access_page`]) are
/// such pages, each with its own layout of atomic words after the magic.
pub(crate) struct SealedPage {
    map: Mapping,
    fd: OwnedFd,
}

impl SealedPage {
    /// A new page named `name` (for `/proc`), zeroed; `init` writes its
    /// first words before the magic is stored.
    pub(crate) fn create(
        name: &std::ffi::CStr,
        magic: u64,
        init: impl FnOnce(&SealedPage),
    ) -> Result<SealedPage, Errno> {
        let fd = memfd_sealed(name, PAGE_LEN)?;
        let map = Mapping::new(fd.as_fd(), PAGE_LEN)?;
        let page = SealedPage { map, fd };
        init(&page);
        page.u64_at(0).store(magic, SeqCst);
        Ok(page)
    }

    /// The page another process passed: refused (`EPROTO`) unless it is a
    /// sealed memfd of [`PAGE_LEN`] bytes holding `magic`.
    pub(crate) fn adopt(fd: OwnedFd, magic: u64) -> Result<SealedPage, Errno> {
        if !is_sealed_memfd(fd.as_fd(), PAGE_LEN)? {
            return Err(libc::EPROTO);
        }
        let map = Mapping::new(fd.as_fd(), PAGE_LEN)?;
        let page = SealedPage { map, fd };
        if page.u64_at(0).load(SeqCst) != magic {
            return Err(libc::EPROTO);
        }
        Ok(page)
    }

    /// A duplicate of the page's descriptor, to pass to another process.
    pub(crate) fn dup_fd(&self) -> Result<OwnedFd, Errno> {
        crate::sys::dup(self.fd.as_fd())
    }

    /// The 64-bit word at byte offset `off` (8-aligned, inside the page).
    pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0 && off + 8 <= self.map.len(), "offset {off}");
        // SAFETY: `off` is an 8-aligned offset inside the mapping (one
        // page, page-aligned), which lives as long as `self`; the word is
        // only ever accessed atomically, here and in every other process.
        unsafe { &*(self.map.ptr().add(off) as *const AtomicU64) }
    }

    /// The 32-bit word at byte offset `off` (4-aligned, inside the page).
    pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.map.len(), "offset {off}");
        // SAFETY: as for `u64_at`, 4-aligned.
        unsafe { &*(self.map.ptr().add(off) as *const AtomicU32) }
    }
}

/// A shared, read-write mapping of a whole file, unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with another process; every
// access through it goes through atomics or copies of bytes that are checked
// after the copy (see `crate::shm`), so sharing the pointer between threads
// is no more racy than sharing it with the peer process.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping, Errno> {
        // SAFETY: a fresh mapping chosen by the kernel; `fd` is open and
        // (checked by the caller) at least `len` bytes long and sealed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The first byte.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing
        // borrows the mapping once its owner is dropped.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// Sleeps while `*word == expected`, until woken or `deadline`. Returns
/// `Ok(false)` on timeout, `Ok(true)` otherwise (woken, the word had already
/// changed, or a signal: the caller looks again either way).
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    deadline: Deadline,
) -> Result<bool, Errno> {
    let ts = match deadline {
        None => None,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            Some(libc::timespec {
                tv_sec: left.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            })
        }
    };
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned 32-bit word (in shared memory, so
    // the futex is not FUTEX_PRIVATE); `ts_ptr` is null or a live timespec.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret == 0 {
        return Ok(true);
    }
    match errno() {
        libc::EAGAIN | libc::EINTR => Ok(true),
        libc::ETIMEDOUT => Ok(false),
        e => Err(e),
    }
}

/// Wakes every thread (of any process) sleeping on `word`.
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned 32-bit word; FUTEX_WAKE only reads
    // its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// A new non-blocking, close-on-exec `eventfd` with count 0.
pub(crate) fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: plain flags.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's count (makes it readable for `poll`).
pub(crate) fn eventfd_ring(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, which lives across the call.
    unsafe {
        libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
    }
}

/// Resets an eventfd's count to 0 (never blocks: the descriptor is non-blocking).
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut count: u64 = 0;
    // SAFETY: reads at most 8 bytes into `count`.
    unsafe {
        libc::read(fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8);
    }
}

/// A descriptor that becomes readable when process `pid` has exited.
pub(crate) fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| libc::ESRCH)?;
    // SAFETY: pidfd_open takes a pid and flags 0; it returns a new descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(errno());
    }
    let fd = libc::c_int::try_from(ret).map_err(|_| libc::EBADF)?;
    // SAFETY: a fresh descriptor nobody else owns (pidfds are close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How many CPUs this process may run on (its affinity mask), at least 1.
pub(crate) fn cpus_allowed() -> usize {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable for its size; pid 0 is this thread.
    let ret =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ret != 0 {
        return 1;
    }
    // SAFETY: `set` was filled by sched_getaffinity.
    (unsafe { libc::CPU_COUNT(&set) } as usize).max(1)
}
