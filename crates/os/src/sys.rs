//! Thin, safe wrappers over the Linux system calls the backend needs.
//!
//! Every `unsafe` block of the crate that is not about process start-up lives
//! here, next to a `// SAFETY:` comment. Where `rustix` has the call (pipes,
//! sockets and `SCM_RIGHTS`, `poll`, `fcntl`, `read`/`writev`, files and
//! FIFOs, `getrandom`, signals to processes, `prctl`, `waitpid`) it makes
//! it, with no `unsafe` here; POSIX message queues (`mq_*`: rustix has
//! none), `poll` over raw descriptor numbers, `dup3` onto a borrowed
//! descriptor, `F_SETFD` between `fork` and `exec`, and `signal` stay on
//! `libc`. Descriptors are always [`OwnedFd`], so nothing leaks on an early
//! return. Errors are raw `errno` values: the layer above ([`crate::errno`])
//! decides which typed mkipc error each one becomes.

use std::ffi::CString;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A raw OS error number.
pub(crate) type Errno = i32;

/// The calling thread's current `errno`.
pub(crate) fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A rustix error as a raw `errno`.
fn raw(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

/// The `poll` timeout until `deadline` (`None`: no deadline).
fn poll_timespec(deadline: Deadline) -> Option<rustix::time::Timespec> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        rustix::time::Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: left.subsec_nanos().into(),
        }
    })
}

/// Turns a `-1`-on-error return value into `Result`.
fn check(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// Turns a `-1`-on-error `ssize_t` into `Result`.
fn check_size(ret: libc::ssize_t) -> Result<usize, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as usize)
    }
}

/// Ignores `SIGPIPE` for the whole process, so a write to a pipe whose reader
/// is gone fails with `EPIPE` instead of killing the process.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
    // code; it is async-signal-safe and valid at any time.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// A deadline: `None` waits forever.
pub(crate) type Deadline = Option<Instant>;

/// The deadline `timeout` from now. A wait too long for an [`Instant`] to
/// represent (`Duration::MAX`) has no deadline: it is a blocking wait, never
/// an overflow panic. Every timed call in this crate computes its deadline here.
pub(crate) fn deadline_after(timeout: Duration) -> Deadline {
    Instant::now().checked_add(timeout)
}

/// Milliseconds left until `deadline`, for `poll` (`-1` for no deadline).
pub(crate) fn poll_timeout(deadline: Deadline) -> libc::c_int {
    match deadline {
        None => -1,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            // Round up so a 0.5 ms wait does not spin with a 0 ms poll.
            let ms = left.as_micros().div_ceil(1000);
            ms.min(i32::MAX as u128) as libc::c_int
        }
    }
}

/// The absolute `CLOCK_REALTIME` time `deadline` corresponds to (what
/// `mq_timedsend`/`mq_timedreceive` want).
fn realtime(deadline: Instant) -> libc::timespec {
    let left = deadline.saturating_duration_since(Instant::now());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    // Saturates: a deadline beyond what `time_t` holds is the latest one.
    match now.checked_add(left) {
        Some(at) if at.as_secs() <= libc::time_t::MAX as u64 => libc::timespec {
            tv_sec: at.as_secs() as libc::time_t,
            tv_nsec: at.subsec_nanos() as libc::c_long,
        },
        _ => libc::timespec {
            tv_sec: libc::time_t::MAX,
            tv_nsec: 0,
        },
    }
}

/// Waits until `fd` is ready for `events` or the deadline passes.
/// Returns `Ok(false)` on timeout.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Deadline,
) -> Result<bool, Errno> {
    let mut pfds = [rustix::event::PollFd::from_borrowed_fd(
        fd,
        rustix::event::PollFlags::from_bits_retain(events as u16),
    )];
    loop {
        match rustix::event::poll(&mut pfds, poll_timespec(deadline).as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(raw(e)),
        }
    }
}

/// The events `fd` has now (`poll` with a zero timeout): 0 if none.
pub(crate) fn poll_revents(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
) -> Result<libc::c_short, Errno> {
    let mut pfds = [rustix::event::PollFd::from_borrowed_fd(
        fd,
        rustix::event::PollFlags::from_bits_retain(events as u16),
    )];
    loop {
        match rustix::event::poll(
            &mut pfds,
            Some(&rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        ) {
            Ok(_) => return Ok(pfds[0].revents().bits() as libc::c_short),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.raw_os_error()),
        }
    }
}

/// Bytes waiting in a pipe (`FIONREAD`), without reading them.
pub(crate) fn pipe_pending(fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    rustix::io::ioctl_fionread(fd)
        .map(|n| n as usize)
        .map_err(|e| e.raw_os_error())
}

/// Waits until one of `fds` is ready for its events (or hung up). Returns
/// the indices that are, empty on timeout.
pub(crate) fn poll_events(
    fds: &[(RawFd, libc::c_short)],
    deadline: Deadline,
) -> Result<Vec<usize>, Errno> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a valid array of `pfds.len()` initialised pollfds.
        let ret = unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                poll_timeout(deadline),
            )
        };
        match check(ret) {
            Ok(_) => {
                return Ok(pfds
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.revents != 0)
                    .map(|(i, _)| i)
                    .collect())
            }
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Waits until one of `fds` is readable (or hung up). Returns the indices that
/// are, empty on timeout.
pub(crate) fn poll_many(fds: &[RawFd], deadline: Deadline) -> Result<Vec<usize>, Errno> {
    let fds: Vec<(RawFd, libc::c_short)> = fds.iter().map(|&fd| (fd, libc::POLLIN)).collect();
    poll_events(&fds, deadline)
}

/// A new anonymous pipe `(read end, write end)`, both close-on-exec and
/// blocking (the sender polls first when its policy forbids waiting).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(raw)
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(raw)
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<(), Errno> {
    use rustix::fs::OFlags;
    let mut flags = rustix::fs::fcntl_getfl(fd).map_err(raw)?;
    flags.set(OFlags::NONBLOCK, on);
    rustix::fs::fcntl_setfl(fd, flags).map_err(raw)
}

/// Clears close-on-exec, so the descriptor survives into an exec'd child.
/// Only async-signal-safe work: it is called between fork and exec.
pub(crate) fn clear_cloexec_raw(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_SETFD with an integer argument; fcntl is async-signal-safe.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// One `read`, retried on `EINTR`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(raw),
        }
    }
}

/// One `write`, retried on `EINTR`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::write(fd, buf) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(raw),
        }
    }
}

/// One `writev`, retried on `EINTR`.
pub(crate) fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> Result<usize, Errno> {
    loop {
        match rustix::io::writev(fd, bufs) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(raw),
        }
    }
}

/// Sends `data` and the descriptors `fds` in one `sendmsg` with an
/// `SCM_RIGHTS` control message. `MSG_NOSIGNAL`: a dead peer is `EPIPE`, never
/// a signal.
pub(crate) fn send_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> Result<(), Errno> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    // SAFETY: the caller's descriptors stay open for the whole call (they
    // are only read by the kernel, which duplicates them into the message).
    let borrowed: Vec<BorrowedFd<'_>> = fds
        .iter()
        .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect();
    let mut space =
        vec![std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut sent = 0;
    while sent < data.len() {
        let mut control = SendAncillaryBuffer::new(&mut space);
        // The descriptors go with the first bytes; the rest goes plainly.
        if sent == 0
            && !borrowed.is_empty()
            && !control.push(SendAncillaryMessage::ScmRights(&borrowed))
        {
            return Err(libc::EMSGSIZE);
        }
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(&data[sent..])],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(raw(e)),
        }
    }
    Ok(())
}

/// Receives exactly `data.len()` bytes and the descriptors that came with them
/// (`SCM_RIGHTS`, close-on-exec). `Ok(None)` at end of stream before any byte.
pub(crate) fn recv_fds(
    sock: BorrowedFd<'_>,
    data: &mut [u8],
    max_fds: usize,
) -> Result<Option<Vec<OwnedFd>>, Errno> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space =
        vec![std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(max_fds.max(1)))];
    let mut fds = Vec::new();
    let mut got = 0;
    while got < data.len() {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let n = match rustix::net::recvmsg(
            sock,
            &mut [std::io::IoSliceMut::new(&mut data[got..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => r.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(raw(e)),
        };
        // Every descriptor that came is ours now, even with no bytes.
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(got_fds) = message {
                fds.extend(got_fds);
            }
        }
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(libc::EPROTO)
            };
        }
        got += n;
    }
    Ok(Some(fds))
}

/// Closes what `fd` refers to by putting `/dev/null` (read-only) in its
/// place: the descriptor number stays valid (reads return end of file) while
/// the pipe end it was is closed.
pub(crate) fn replace_with_devnull(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let null = open(std::path::Path::new("/dev/null"), libc::O_RDONLY)?;
    // SAFETY: both descriptors are open; dup3 atomically closes `fd`'s old
    // file and makes it a close-on-exec copy of `null`. The OwnedFd that
    // owns `fd` still owns the number, now naming /dev/null.
    check(unsafe { libc::dup3(null.as_raw_fd(), fd.as_raw_fd(), libc::O_CLOEXEC) }).map(drop)
}

/// Fills `buf` from the kernel's random source (`getrandom`).
pub(crate) fn getrandom(buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(raw(e)),
        }
    }
    Ok(())
}

/// Whether `fd` is a FIFO (`fstat`).
pub(crate) fn is_fifo(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let st = rustix::fs::fstat(fd).map_err(raw)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
}

/// `dup` with close-on-exec.
pub(crate) fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    fd.try_clone_to_owned()
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

// ----- POSIX message queues ------------------------------------------------------

/// Attributes of a POSIX queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MqAttr {
    pub maxmsg: usize,
    pub msgsize: usize,
    pub curmsgs: usize,
}

fn cstring(name: &str) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| libc::EINVAL)
}

/// `mq_open`. With `create`, `attr` is `(maxmsg, msgsize)` and the queue must
/// not exist yet (`O_EXCL`). The descriptor is close-on-exec (Linux does that
/// for queue descriptors by default).
pub(crate) fn mq_open(
    name: &str,
    oflag: libc::c_int,
    create: Option<(libc::mode_t, usize, usize)>,
) -> Result<OwnedFd, Errno> {
    let cname = cstring(name)?;
    let fd = match create {
        None => {
            // SAFETY: `cname` is a valid NUL-terminated string.
            unsafe { libc::mq_open(cname.as_ptr(), oflag | libc::O_CLOEXEC) }
        }
        Some((mode, maxmsg, msgsize)) => {
            // SAFETY: mq_attr is plain data; zero is a valid starting value.
            let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
            attr.mq_maxmsg = maxmsg as _;
            attr.mq_msgsize = msgsize as _;
            // SAFETY: `cname` is NUL-terminated and `attr` lives across the
            // call; the variadic mode and attr arguments match O_CREAT's contract.
            unsafe {
                libc::mq_open(
                    cname.as_ptr(),
                    oflag | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    mode as libc::c_uint,
                    &mut attr as *mut libc::mq_attr,
                )
            }
        }
    };
    let fd = check(fd)?;
    // SAFETY: on Linux a mqd_t is a descriptor, fresh from mq_open and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mq_unlink`.
pub(crate) fn mq_unlink(name: &str) -> Result<(), Errno> {
    let cname = cstring(name)?;
    // SAFETY: `cname` is a valid NUL-terminated string.
    check(unsafe { libc::mq_unlink(cname.as_ptr()) }).map(drop)
}

/// `mq_getattr`.
pub(crate) fn mq_getattr(fd: BorrowedFd<'_>) -> Result<MqAttr, Errno> {
    // SAFETY: mq_attr is plain data; zero is a valid starting value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is a queue descriptor and `attr` is writable.
    check(unsafe { libc::mq_getattr(fd.as_raw_fd(), &mut attr) })?;
    Ok(MqAttr {
        maxmsg: attr.mq_maxmsg as usize,
        msgsize: attr.mq_msgsize as usize,
        curmsgs: attr.mq_curmsgs as usize,
    })
}

/// How long a queue operation may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum MqWait {
    /// Fail with `EAGAIN` at once.
    NoWait,
    /// Block.
    Forever,
    /// Fail with `ETIMEDOUT` at this instant.
    Until(Instant),
}

impl MqWait {
    /// Waits until `deadline`; no deadline ([`deadline_after`] saturated) blocks.
    pub(crate) fn until(deadline: Deadline) -> MqWait {
        deadline.map_or(MqWait::Forever, MqWait::Until)
    }
}

/// Runs a queue operation in the requested waiting mode. `NoWait` passes a
/// deadline long past (the epoch): the call fails at once if it would block,
/// without touching the descriptor's shared `O_NONBLOCK` flag (which another
/// thread may be relying on), and its `ETIMEDOUT` is reported as `EAGAIN`.
fn mq_op(
    wait: MqWait,
    mut op: impl FnMut(Option<&libc::timespec>) -> libc::ssize_t,
) -> Result<usize, Errno> {
    let past = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        let r = match wait {
            MqWait::NoWait => check_size(op(Some(&past))).map_err(|e| {
                if e == libc::ETIMEDOUT {
                    libc::EAGAIN
                } else {
                    e
                }
            }),
            MqWait::Forever => check_size(op(None)),
            MqWait::Until(deadline) => check_size(op(Some(&realtime(deadline)))),
        };
        match r {
            Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// `mq_send` / `mq_timedsend` at priority 0.
pub(crate) fn mq_send(fd: BorrowedFd<'_>, data: &[u8], wait: MqWait) -> Result<(), Errno> {
    mq_op(wait, |ts| {
        let r = match ts {
            // SAFETY: `data` is readable for `data.len()` bytes; fd is a queue descriptor.
            None => unsafe { libc::mq_send(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) },
            // SAFETY: as above, and `ts` points at a valid timespec.
            Some(ts) => unsafe {
                libc::mq_timedsend(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0, ts)
            },
        };
        r as libc::ssize_t
    })
    .map(drop)
}

/// `mq_receive` / `mq_timedreceive` into `buf` (which must be at least the
/// queue's `mq_msgsize`). Returns the message length.
pub(crate) fn mq_receive(fd: BorrowedFd<'_>, buf: &mut [u8], wait: MqWait) -> Result<usize, Errno> {
    let ptr = buf.as_mut_ptr();
    let len = buf.len();
    mq_op(wait, |ts| match ts {
        // SAFETY: `ptr` is writable for `len` bytes; fd is a queue descriptor.
        None => unsafe { libc::mq_receive(fd.as_raw_fd(), ptr.cast(), len, std::ptr::null_mut()) },
        // SAFETY: as above, and `ts` points at a valid timespec.
        Some(ts) => unsafe {
            libc::mq_timedreceive(fd.as_raw_fd(), ptr.cast(), len, std::ptr::null_mut(), ts)
        },
    })
}

/// `mkfifo`.
pub(crate) fn mkfifo(path: &std::path::Path, mode: libc::mode_t) -> Result<(), Errno> {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, rustix::fs::Mode::from_raw_mode(mode)).map_err(raw)
}

/// `open` with close-on-exec.
pub(crate) fn open(path: &std::path::Path, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let flags = rustix::fs::OFlags::from_bits_retain(flags as _) | rustix::fs::OFlags::CLOEXEC;
    rustix::fs::open(path, flags, rustix::fs::Mode::empty()).map_err(raw)
}

/// `fchmod`: POSIX queues and FIFOs are created under the umask, so the exact
/// access bits are set afterwards.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> Result<(), Errno> {
    rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(mode)).map_err(raw)
}

/// Whether process `pid` exists (`kill(pid, 0)`).
pub(crate) fn process_alive(pid: u32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Reads `/proc/sys/fs/mqueue/<what>`.
pub(crate) fn mqueue_limit(what: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{what}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `resource` (`getrlimit`); `u64::MAX` for none.
pub(crate) fn soft_rlimit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return u64::MAX;
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u32 on some targets
    let cur = lim.rlim_cur as u64;
    cur
}

/// Whether this process can open one more descriptor now (it opens
/// `/dev/null` and closes it again).
pub(crate) fn descriptor_free() -> bool {
    open(std::path::Path::new("/dev/null"), libc::O_RDONLY).is_ok()
}

/// The process's effective uid.
pub(crate) fn geteuid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Makes this process a *child subreaper* (`PR_SET_CHILD_SUBREAPER`): when a
/// child it spawned dies, that child's own children are re-parented to this
/// process instead of to init, so this process can kill and reap them.
pub(crate) fn become_subreaper() -> Result<(), Errno> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(raw)
}

/// For a child between `fork` and `exec`: asks for `SIGKILL` when the
/// parent dies (`PR_SET_PDEATHSIG`), then fails with `ESRCH` if the parent
/// is no longer `parent` (it died before the `prctl`, and the child was
/// re-parented). Async-signal-safe: two system calls, no allocation.
pub(crate) fn die_with_parent_raw(parent: u32) -> Result<(), Errno> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(raw)?;
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent) {
        return Err(libc::ESRCH);
    }
    Ok(())
}

/// The parent pid of `pid`, from `/proc/<pid>/stat` (also for a zombie).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `SIGKILL` to `pid`, then waits for it (it must be a child of this
/// process) so that no zombie is left.
pub(crate) fn kill_and_reap(pid: u32) {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return,
        }
    }
}
