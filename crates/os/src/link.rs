//! Direct links as anonymous pipes, with framing, EOF and EPIPE.
//!
//! A pipe is a one-way byte stream held by the kernel (65536 bytes on Linux by
//! default). It has no message boundaries, so each message is written as one
//! [`crate::wire`] frame in a single `write`: a frame of at most
//! `PIPE_BUF` (4096) bytes is written atomically, so two writers on the same
//! pipe never interleave their frames; bigger frames are written in pieces.
//!
//! The two ends tell each other about death the way pipes always do:
//!
//! * when every write end is closed (the sender exited, even by `SIGKILL`),
//!   `read` returns 0 once the buffer is empty: end of stream, which
//!   [`receive_from`](mkipc_kernel::Ipc::receive_from) reports as
//!   [`ReceiveError::SourceDead`](mkipc_kernel::ReceiveError::SourceDead);
//! * when every read end is closed, `write` fails with `EPIPE`:
//!   [`SendErrorKind::DestinationDead`](mkipc_kernel::SendErrorKind::DestinationDead).
//!   `SIGPIPE` is ignored in every mkipc process, so this never kills anyone.
//!
//! Rights cannot ride in a pipe, so every link also has a Unix socket beside
//! it: the frame goes into the pipe first, then the descriptors follow on the
//! socket with `SCM_RIGHTS`, and the receiver picks them up after the frame.
//! A frame whose descriptors have not come yet is not complete: a receive
//! waits for them only until its deadline (and leaves the frame where it
//! is), and the peer closing the socket first makes it malformed.
//!
//! Bytes that are not a valid frame ([`MalformedFrame`] says what was wrong):
//!
//! * on a pipe (one writer, the peer) the stream cannot be trusted any more:
//!   the receive reports them once, and the link is closed: the next receive
//!   is end of stream, and the writer's next send fails (`EPIPE`);
//! * on a FIFO (any number of writers, each frame at most `PIPE_BUF` bytes,
//!   so written whole by one `write`) the reader resynchronises: it reports
//!   the bad bytes once, skips to the next place a frame may start, and goes
//!   on with the next valid frame, so one bad writer never blocks the others.
//!   A frame still incomplete when the FIFO has been read empty was not
//!   written by one `write`: it is truncated, and skipped the same way.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mkipc_kernel::error::MalformedFrame;

use crate::shm::{self, ShmRx, ShmTx};
use crate::socket::{ReadError, SocketRead, SocketRx, SocketTx};
use crate::sys::{self, Deadline, Errno};
use crate::wire::{self, Checks, FrameError, Header, RightDesc};

/// How a link-level send ended (before mapping to the API's types).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TxError {
    /// The pipe is full and the policy was not to wait.
    WouldBlock,
    /// The deadline passed.
    TimedOut,
    /// Every read end is closed (`EPIPE`).
    Closed,
    /// More descriptors than one `SCM_RIGHTS` message carries ([`MAX_RIGHTS`]).
    TooManyDescriptors,
    /// Another OS error.
    Os(Errno),
}

/// What a link's bytes travel through.
enum Sink {
    /// A pipe's write end (or a FIFO's).
    Pipe(OwnedFd),
    /// A ring in shared memory ([`crate::shm`]).
    Shm(ShmTx),
    /// A stream socket, both ways, rights on it ([`crate::socket`]).
    Socket(SocketTx),
}

/// Where a link's bytes come from.
enum Stream {
    /// A pipe's read end (or a FIFO's).
    Pipe(OwnedFd),
    /// A ring in shared memory ([`crate::shm`]).
    Shm(ShmRx),
    /// A stream socket ([`crate::socket`]): descriptors come with the bytes.
    Socket(SocketRx),
}

/// The sending end of a link.
pub(crate) struct LinkTx {
    sink: Sink,
    rights: Option<Arc<OwnedFd>>,
    /// The frames' flags this end adds: `UNCHECKED` on a direct link's pipe
    /// or ring (see [`LinkTx::frame_flags`]), none on a FIFO or socket.
    flags: u8,
    lock: Mutex<()>,
}

/// The receiving end of a link.
pub(crate) struct LinkRx {
    stream: Stream,
    rights: Option<Arc<OwnedFd>>,
    /// The largest body a sender on this stream may write: a header that
    /// announces more is malformed (not a reason to wait for, and buffer,
    /// up to 4 GiB).
    max_body: usize,
    /// Whether frames without a check are taken: on a direct link's pipe or
    /// ring, not on a FIFO or a socket ([`wire::Checks`]).
    checks: Checks,
    /// Several writers share the stream (a FIFO): resynchronise after bad
    /// bytes instead of closing the link, and carry no rights.
    shared: bool,
    /// Held by the one thread that looks at the buffer or reads the pipe,
    /// also while it waits for the pipe (see [`LinkRx::receive`]).
    state: parking_lot::Mutex<RxState>,
}

/// The most descriptors Linux passes in one `SCM_RIGHTS` message
/// (`SCM_MAX_FD`), so the most rights one frame can carry.
pub(crate) const MAX_RIGHTS: usize = 253;

struct RxState {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The last `read` emptied the pipe (it returned less than it could
    /// take): every whole `write` made so far is in the buffer.
    drained: bool,
    seqno: u64,
    /// Stream bytes read so far (the position of `buf[end]`): where the
    /// descriptors of a socket link arrived.
    total: u64,
    /// Descriptors a socket link's reads brought, oldest first, each with
    /// the stream positions that read covered (see [`LinkRx::take_fds`]).
    fds: std::collections::VecDeque<FdBatch>,
}

/// Descriptors that came with one read of a socket link.
struct FdBatch {
    /// Stream positions the read covered: the first byte of the frame they
    /// go with is among them (Linux attaches them to that byte).
    from: u64,
    to: u64,
    fds: Vec<OwnedFd>,
    /// Some did not fit or could not be installed (`MSG_CTRUNC`).
    truncated: bool,
}

/// A frame taken off a link, with the descriptors that came with it.
pub(crate) struct RawFrame {
    pub header: Header,
    pub rights: Vec<RightDesc>,
    pub body: mkipc_kernel::message::Body,
    pub fds: Vec<OwnedFd>,
    pub seqno: u64,
}

/// How a link-level receive failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RxError {
    /// Nothing there and not allowed to wait.
    Empty,
    /// The deadline passed.
    TimedOut,
    /// End of stream: the sender closed its end and everything was read.
    Eof,
    /// Bytes that are not a valid frame (see the module docs for what
    /// happens to the link).
    Malformed(MalformedFrame),
    /// Another OS error.
    Os(Errno),
}

impl LinkTx {
    /// Wraps a direct link's (blocking) pipe write end and the optional
    /// rights socket: its frames go unchecked.
    pub(crate) fn new(fd: OwnedFd, rights: Option<Arc<OwnedFd>>) -> LinkTx {
        LinkTx::with_sink(Sink::Pipe(fd), rights, wire::FLAG_UNCHECKED)
    }

    /// Wraps a FIFO's write end: its frames carry their check, by which the
    /// reader finds its place among several writers.
    pub(crate) fn fifo(fd: OwnedFd) -> LinkTx {
        LinkTx::with_sink(Sink::Pipe(fd), None, 0)
    }

    /// Wraps the sending half of a shared-memory link: its frames go unchecked.
    pub(crate) fn shm(tx: ShmTx, rights: Option<Arc<OwnedFd>>) -> LinkTx {
        LinkTx::with_sink(Sink::Shm(tx), rights, wire::FLAG_UNCHECKED)
    }

    /// Wraps the sending half of a socket link: its frames carry their check
    /// (the peer may be a foreign program, or on another machine).
    pub(crate) fn socket(tx: SocketTx) -> LinkTx {
        LinkTx::with_sink(Sink::Socket(tx), None, 0)
    }

    fn with_sink(sink: Sink, rights: Option<Arc<OwnedFd>>, flags: u8) -> LinkTx {
        LinkTx {
            sink,
            rights,
            flags,
            lock: Mutex::new(()),
        }
    }

    /// The flags every frame on this link carries besides its own:
    /// [`wire::FLAG_UNCHECKED`] on a direct link's pipe or ring. There one
    /// writer, the peer, writes whole frames into a channel the kernel keeps
    /// intact and in order (a pipe; a sealed ring only the two ends map), so
    /// a check could only find the writer's own bugs, and costs a CRC over
    /// every byte on both sides. A FIFO (several writers: the check is how
    /// its reader finds its place again) and a socket link (foreign peers,
    /// other machines) keep the check.
    pub(crate) fn frame_flags(&self) -> u8 {
        self.flags
    }

    /// Whether rights can travel on this link.
    pub(crate) fn carries_rights(&self) -> bool {
        match &self.sink {
            Sink::Socket(s) => s.carries_rights(),
            _ => self.rights.is_some(),
        }
    }

    /// Writes one frame, waiting for room until `deadline` if `wait` is set,
    /// then sends `fds` on the rights socket.
    pub(crate) fn send(
        &self,
        frame: &[u8],
        fds: &[RawFd],
        wait: bool,
        deadline: Deadline,
    ) -> Result<(), TxError> {
        self.send_parts(frame, &[], fds, wait, deadline)
    }

    /// [`send`](Self::send) of a frame in two pieces, `head` then `tail`
    /// (a header and the body it goes with, [`wire::head`]): a pipe takes a
    /// frame of up to [`JOIN_BELOW`] bytes joined in a per-thread buffer in
    /// one `write`, a bigger one in one `writev` of both pieces, so a big
    /// body is never copied. A shared-memory ring or a socket gets them joined.
    pub(crate) fn send_parts(
        &self,
        head: &[u8],
        tail: &[u8],
        fds: &[RawFd],
        wait: bool,
        deadline: Deadline,
    ) -> Result<(), TxError> {
        if !tail.is_empty() && !matches!(self.sink, Sink::Pipe(_)) {
            let frame = [head, tail].concat();
            return self.send_parts(&frame, &[], fds, wait, deadline);
        }
        let frame = head;
        // Check what the OS would refuse before any byte goes into the pipe:
        // a frame whose descriptors cannot follow it would leave the reader
        // waiting for them (and every later frame out of step).
        if fds.len() > MAX_RIGHTS {
            return Err(TxError::TooManyDescriptors);
        }
        if !fds.is_empty() && !self.carries_rights() {
            return Err(TxError::Os(libc::ENOTSOCK));
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let fd = match &self.sink {
            Sink::Pipe(fd) => fd.as_fd(),
            Sink::Socket(s) => s.fd(),
            Sink::Shm(ring) => {
                ring.write_frame(frame, wait, deadline)?;
                return self.send_fds(fds);
            }
        };
        // The write end is blocking, so `send` (wait forever) is one `write`.
        // Otherwise first wait (or not) for room: POLLOUT on a pipe means a
        // free page, so a frame up to PIPE_BUF then goes in without blocking
        // (a bigger one may still wait for the reader once it has started).
        if !wait || deadline.is_some() {
            let until = if wait {
                deadline
            } else {
                Some(std::time::Instant::now())
            };
            match sys::poll_one(fd, libc::POLLOUT, until) {
                Ok(true) => {}
                Ok(false) if wait => return Err(TxError::TimedOut),
                Ok(false) => return Err(TxError::WouldBlock),
                Err(e) => return Err(TxError::Os(e)),
            }
        }
        if let Sink::Socket(s) = &self.sink {
            // The descriptors go with the frame's first bytes.
            return s.write_frame(frame, fds);
        }
        // A pipe. A small frame in two pieces is joined in this thread's
        // buffer and goes in one `write` (a `writev` costs the kernel an iovec
        // array to import, more than the copy of up to `JOIN_BELOW` bytes); a
        // bigger one goes as `head` then `tail`, in as few `writev`s as the
        // pipe takes.
        if tail.is_empty() {
            write_all(fd, head)?;
        } else if head.len() + tail.len() <= JOIN_BELOW {
            JOINED.with(|cell| {
                let mut joined = cell.borrow_mut();
                joined.clear();
                joined.extend_from_slice(head);
                joined.extend_from_slice(tail);
                write_all(fd, &joined)
            })?;
        } else {
            let total = head.len() + tail.len();
            let mut done = 0;
            while done < total {
                let written = if done < head.len() {
                    sys::writev(fd, &[IoSlice::new(&head[done..]), IoSlice::new(tail)])
                } else {
                    sys::writev(fd, &[IoSlice::new(&tail[done - head.len()..])])
                };
                done += written.map_err(pipe_error)?;
            }
        }
        self.send_fds(fds)
    }

    /// Sends the descriptors of the frame just written on the rights socket.
    fn send_fds(&self, fds: &[RawFd]) -> Result<(), TxError> {
        if !fds.is_empty() {
            let sock = self.rights.as_ref().ok_or(TxError::Os(libc::ENOTSOCK))?;
            // The count byte: how many descriptors follow (at most 253).
            match sys::send_fds(sock.as_fd(), &[fds.len() as u8], fds) {
                Ok(()) => {}
                Err(libc::EPIPE) | Err(libc::ECONNRESET) => return Err(TxError::Closed),
                Err(e) => return Err(TxError::Os(e)),
            }
        }
        Ok(())
    }
}

/// Frames up to this many bytes, in two pieces, are joined before they go
/// into a pipe ([`LinkTx::send_parts`]): a 1 KiB body's frame still is.
const JOIN_BELOW: usize = 2048;

thread_local! {
    /// Where [`LinkTx::send_parts`] joins a small frame's two pieces.
    static JOINED: std::cell::RefCell<Vec<u8>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A failed write to a pipe as a link-level error.
fn pipe_error(e: Errno) -> TxError {
    match e {
        libc::EPIPE => TxError::Closed,
        e => TxError::Os(e),
    }
}

/// Writes all of `bytes` into a (blocking) pipe, in as few `write`s as it takes.
fn write_all(fd: std::os::fd::BorrowedFd<'_>, bytes: &[u8]) -> Result<(), TxError> {
    let mut done = 0;
    while done < bytes.len() {
        done += sys::write(fd, &bytes[done..]).map_err(pipe_error)?;
    }
    Ok(())
}

impl LinkRx {
    /// Wraps a (blocking) pipe read end, written by one peer, and the
    /// optional rights socket; frames with bodies over `max_body` bytes are
    /// malformed.
    pub(crate) fn new(fd: OwnedFd, rights: Option<Arc<OwnedFd>>, max_body: usize) -> LinkRx {
        LinkRx::with_writers(Stream::Pipe(fd), rights, max_body, false)
    }

    /// Wraps a FIFO read end that any number of writers share (no rights).
    pub(crate) fn shared(fd: OwnedFd, max_body: usize) -> LinkRx {
        LinkRx::with_writers(Stream::Pipe(fd), None, max_body, true)
    }

    /// Wraps the receiving half of a shared-memory link (one writer, the peer).
    pub(crate) fn shm(rx: ShmRx, rights: Option<Arc<OwnedFd>>, max_body: usize) -> LinkRx {
        LinkRx::with_writers(Stream::Shm(rx), rights, max_body, false)
    }

    /// Wraps the receiving half of a socket link (one writer, the peer).
    pub(crate) fn socket(rx: SocketRx, max_body: usize) -> LinkRx {
        LinkRx::with_writers(Stream::Socket(rx), None, max_body, false)
    }

    /// Whether a message's sender on this link is only the peer's claim
    /// (a TCP link; a Unix socket adopted under another pid than the OS
    /// names): see [`crate::socket`].
    pub(crate) fn sender_claimed(&self) -> bool {
        matches!(&self.stream, Stream::Socket(s) if s.claimed)
    }

    fn with_writers(
        stream: Stream,
        rights: Option<Arc<OwnedFd>>,
        max_body: usize,
        shared: bool,
    ) -> LinkRx {
        let state = RxState {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            drained: false,
            seqno: 0,
            total: 0,
            fds: std::collections::VecDeque::new(),
        };
        // One writer on a pipe or ring: frames may come without a check.
        let checks = match &stream {
            Stream::Pipe(_) | Stream::Shm(_) if !shared => Checks::Optional,
            _ => Checks::Required,
        };
        LinkRx {
            stream,
            rights,
            max_body,
            checks,
            shared,
            state: parking_lot::Mutex::new(state),
        }
    }

    /// The descriptor to `poll` for this link's bytes: the pipe, or a
    /// shared-memory ring's doorbell (armed by this call, see [`crate::shm`]).
    pub(crate) fn raw_fd(&self) -> RawFd {
        match &self.stream {
            Stream::Pipe(fd) => fd.as_raw_fd(),
            Stream::Shm(ring) => ring.doorbell(),
            Stream::Socket(s) => s.fd().as_raw_fd(),
        }
    }

    /// Arms this link for one wait beside other sources (a port set's
    /// `epoll`, a `select`'s `poll`) and returns the descriptor to wait on:
    /// a shared-memory ring's doorbell is cleared first and rung again at
    /// once if bytes are already there, so a level-triggered wait neither
    /// spins on a doorbell rung for bytes already taken nor misses new ones.
    pub(crate) fn arm(&self) -> RawFd {
        if let Stream::Shm(ring) = &self.stream {
            ring.drain_doorbell();
        }
        self.raw_fd()
    }

    /// The link's rights socket, whose descriptors a frame may still be
    /// waiting for (see [`LinkRx::wait_fd`]).
    pub(crate) fn rights_fd(&self) -> Option<RawFd> {
        self.rights.as_ref().map(|s| s.as_raw_fd())
    }

    /// Waits until the stream has bytes (or has ended), until `until`.
    fn wait_bytes(&self, until: Deadline) -> Result<bool, Errno> {
        match &self.stream {
            Stream::Pipe(fd) => sys::poll_one(fd.as_fd(), libc::POLLIN, until),
            Stream::Shm(ring) => ring.wait_readable(until),
            Stream::Socket(s) if s.failed() => Ok(true),
            Stream::Socket(s) => sys::poll_one(s.fd(), libc::POLLIN, until),
        }
    }

    /// What to `poll` while waiting on this link: the rights socket when a
    /// whole frame is buffered and only its descriptors are missing, the
    /// pipe otherwise.
    pub(crate) fn wait_fd(&self) -> RawFd {
        let waits_for_rights = self.state.try_lock().is_some_and(|st| {
            matches!(self.complete_frame(&st), Some(Ok(_)))
                && Header::parse(&st.buf[st.start..st.end]).is_ok_and(|h| h.nrights > 0)
        });
        match (&self.rights, waits_for_rights) {
            (Some(sock), true) => sock.as_raw_fd(),
            _ => self.raw_fd(),
        }
    }

    /// Whether a whole frame is already buffered, or end of stream was seen
    /// (either way a receive returns without touching the pipe).
    /// Another thread holding the link is waited for briefly (a pump or a
    /// look at the buffer takes microseconds; a thread that keeps it longer
    /// is waiting in the pipe and will take what comes, so this says false).
    pub(crate) fn ready(&self) -> bool {
        self.state
            .try_lock_for(std::time::Duration::from_millis(1))
            .is_some_and(|st| {
                st.eof
                    || self.complete_frame(&st).is_some()
                    || matches!(&self.stream, Stream::Socket(s) if s.failed())
            })
    }

    /// Receives one frame. `deadline` `Some(now)` means do not wait.
    ///
    /// Several threads of this process may receive on one link at once
    /// (`receive_from` and `receive_from_any`, or two `receive_from_any`).
    /// One at a time holds the link's state, and keeps it while it waits for
    /// the pipe: a receive without a deadline waits inside `read`, one system
    /// call as for a plain pipe reader; a timed one in `poll`, then reads
    /// what `poll` saw (nobody else can take it meanwhile). Every other
    /// receiver waits for the state with its own deadline (`try_lock_until`),
    /// so none waits past it, and finds what the holder read in the buffer.
    pub(crate) fn receive(&self, block: bool, deadline: Deadline) -> Result<RawFrame, RxError> {
        let gave_up = if block {
            RxError::TimedOut
        } else {
            RxError::Empty
        };
        let held = match (block, deadline) {
            (false, _) => self.state.try_lock(),
            (true, Some(deadline)) => self.state.try_lock_until(deadline),
            (true, None) => Some(self.state.lock()),
        };
        let Some(mut st) = held else {
            return Err(gave_up);
        };
        loop {
            match self.complete_frame(&st) {
                Some(Ok(len)) => {
                    return match self.take_frame(&mut st, len, block, deadline) {
                        Err(RxError::Malformed(what)) => Err(self.skip_bad(&mut st, what)),
                        other => other,
                    }
                }
                Some(Err(what)) => return Err(self.skip_bad(&mut st, what)),
                None => {}
            }
            if st.eof {
                return Err(if st.start == st.end {
                    RxError::Eof
                } else {
                    self.skip_bad(&mut st, MalformedFrame::Truncated)
                });
            }
            if block && deadline.is_none() {
                self.fill(&mut st)?;
                continue;
            }
            let until = if block {
                deadline
            } else {
                Some(Instant::now())
            };
            match self.wait_bytes(until) {
                Ok(true) => self.fill(&mut st)?,
                Ok(false) => return Err(gave_up),
                Err(e) => return Err(RxError::Os(e)),
            }
        }
    }

    /// Sets how many bytes this link's pipe holds (`F_SETPIPE_SZ`; Linux
    /// rounds up to a power of two pages) and returns the size it got.
    /// Linux refuses to shrink a pipe below what it holds (`EBUSY`), and the
    /// kernel's rule is that a shrink keeps what is queued: so on `EBUSY` the
    /// pipe's bytes are read into this end's buffer first (a receive takes
    /// them from there, in order) and the size is set again. `ENOTSUP` for a
    /// link that is no pipe (shared-memory rings are sealed at 64 KiB, a
    /// socket's buffers are the kernel's to size); `EBUSY` if another thread
    /// held the link for longer than 100 ms (it is in a receive, which
    /// empties the pipe: try again).
    pub(crate) fn set_pipe_size(&self, bytes: usize) -> Result<usize, Errno> {
        let Stream::Pipe(fd) = &self.stream else {
            return Err(libc::ENOTSUP);
        };
        let set = || rustix::pipe::fcntl_setpipe_size(fd, bytes).map_err(|e| e.raw_os_error());
        match set() {
            Err(libc::EBUSY) => {}
            other => return other,
        }
        let mut st = self
            .state
            .try_lock_for(std::time::Duration::from_millis(100))
            .ok_or(libc::EBUSY)?;
        // A sender may write between the drain and the resize: a few rounds.
        for _ in 0..8 {
            while !st.eof && self.wait_bytes(Some(Instant::now()))? {
                match self.fill(&mut st) {
                    Ok(()) => {}
                    Err(RxError::Os(e)) => return Err(e),
                    // End of stream or a bad header is the receive's to report.
                    Err(_) => break,
                }
            }
            match set() {
                Err(libc::EBUSY) => continue,
                other => return other,
            }
        }
        Err(libc::EBUSY)
    }

    /// Reads whatever the pipe holds into the buffer, if it holds anything
    /// and no other thread is receiving on the link (that thread reads it).
    /// Never waits: the pipe may have been emptied since the caller's `poll`,
    /// so it polls again, with the state held, before it reads.
    pub(crate) fn pump(&self) -> Result<(), RxError> {
        let Some(mut st) = self.state.try_lock() else {
            // Another receiver holds the link and will read what came; let
            // it run (on one CPU it may be waiting for this thread's slice).
            std::thread::yield_now();
            return Ok(());
        };
        if st.eof || self.complete_frame(&st).is_some() {
            return Ok(());
        }
        if let Stream::Shm(ring) = &self.stream {
            ring.drain_doorbell();
        }
        match self.wait_bytes(Some(Instant::now())) {
            Ok(true) => self.fill(&mut st),
            Ok(false) => Ok(()),
            Err(e) => Err(RxError::Os(e)),
        }
    }

    /// One `read` into the buffer (it waits only if the pipe is empty).
    fn fill(&self, st: &mut RxState) -> Result<(), RxError> {
        if st.start == st.end {
            st.start = 0;
            st.end = 0;
        } else if st.end == st.buf.len() {
            // Slide the partial frame to the front (and grow for big frames).
            let (s, e) = (st.start, st.end);
            st.buf.copy_within(s..e, 0);
            st.start = 0;
            st.end = e - s;
            if st.end == st.buf.len() {
                let n = st.buf.len() * 2;
                st.buf.resize(n, 0);
            }
        }
        let end = st.end;
        let room = st.buf.len() - end;
        let got = match &self.stream {
            Stream::Socket(sock) => return self.fill_socket(sock, st),
            Stream::Pipe(fd) => sys::read(fd.as_fd(), &mut st.buf[end..]),
            Stream::Shm(ring) => loop {
                // As a blocking pipe read: wait only while the ring is empty.
                match ring.read(&mut st.buf[end..]) {
                    shm::Read::Data(n) => break Ok(n),
                    shm::Read::Eof => break Ok(0),
                    shm::Read::Corrupt => {
                        return Err(self.skip_bad(st, MalformedFrame::Length));
                    }
                    shm::Read::Empty => {
                        ring.wait_readable(None).map_err(RxError::Os)?;
                    }
                }
            },
        };
        match got {
            Ok(0) => st.eof = true,
            Ok(n) => {
                st.end += n;
                st.total += n as u64;
                st.drained = n < room;
            }
            Err(e) => return Err(RxError::Os(e)),
        }
        Ok(())
    }

    /// [`LinkRx::fill`] for a socket link: one `recvmsg` (keeping the
    /// descriptors that came with the bytes), or, sealed, one read of
    /// ciphertext and the plaintext of every record it completed.
    fn fill_socket(&self, sock: &SocketRx, st: &mut RxState) -> Result<(), RxError> {
        if sock.sealed() {
            return match sock.read_sealed(&mut |plain| append(st, plain)) {
                // End of stream inside a record: the frame in it is cut.
                Ok(SocketRead {
                    eof: true,
                    partial: true,
                }) => Err(self.skip_bad(st, MalformedFrame::Truncated)),
                Ok(SocketRead { eof, .. }) => {
                    st.eof |= eof;
                    Ok(())
                }
                Err(ReadError::Malformed(what)) => Err(self.skip_bad(st, what)),
                Err(ReadError::Os(e)) => Err(RxError::Os(e)),
            };
        }
        let end = st.end;
        match sock.read_plain(&mut st.buf[end..]) {
            Ok((0, ..)) => st.eof = true,
            Ok((n, fds, truncated)) => {
                if !fds.is_empty() || truncated {
                    st.fds.push_back(FdBatch {
                        from: st.total,
                        to: st.total + n as u64,
                        fds,
                        truncated,
                    });
                }
                st.end += n;
                st.total += n as u64;
            }
            Err(ReadError::Malformed(what)) => return Err(self.skip_bad(st, what)),
            Err(ReadError::Os(e)) => return Err(RxError::Os(e)),
        }
        Ok(())
    }

    /// The descriptors of the frame that starts at stream position `at`
    /// and announces `want` of them, from a socket link's batches: they
    /// came with the read that covered its first byte. Batches of earlier
    /// reads nobody claimed (a peer that attached descriptors to a frame
    /// announcing none) are closed.
    fn take_fds(st: &mut RxState, at: u64, want: usize) -> Result<Vec<OwnedFd>, RxError> {
        while st.fds.front().is_some_and(|b| b.to <= at) {
            st.fds.pop_front();
        }
        if want == 0 {
            return Ok(Vec::new());
        }
        match st.fds.front() {
            Some(b) if b.from <= at && !b.truncated && b.fds.len() == want => {
                Ok(st.fds.pop_front().map(|b| b.fds).unwrap_or_default())
            }
            _ => Err(RxError::Malformed(MalformedFrame::MissingRights)),
        }
    }

    /// Deals with bad bytes at the front of the buffer (see the module docs)
    /// and returns the error the receive reports.
    fn skip_bad(&self, st: &mut RxState, what: MalformedFrame) -> RxError {
        tracing::warn!(shared = self.shared, ?what, "malformed frame");
        if self.shared {
            // Skip to the next byte a header may start at (or to the end).
            let avail = &st.buf[st.start + 1..st.end];
            let next = (0..avail.len())
                .find(|&i| matches!(Header::parse(&avail[i..]), Ok(_) | Err(FrameError::Short)))
                .unwrap_or(avail.len());
            st.start += 1 + next;
        } else {
            // One writer, out of step for good: close the link. The read end
            // becomes /dev/null (end of stream for the next receive, EPIPE for
            // the writer); the descriptor number stays valid for pollers.
            match &self.stream {
                Stream::Pipe(fd) => {
                    if let Err(e) = sys::replace_with_devnull(fd.as_fd()) {
                        tracing::warn!(errno = e, "could not close a link after a malformed frame");
                    }
                }
                Stream::Shm(ring) => ring.close(),
                Stream::Socket(sock) => {
                    sock.shut_read();
                    if let Err(e) = sys::replace_with_devnull(sock.fd()) {
                        tracing::warn!(errno = e, "could not close a link after a malformed frame");
                    }
                }
            }
            st.fds.clear();
            st.start = 0;
            st.end = 0;
            st.eof = true;
        }
        RxError::Malformed(what)
    }

    /// Takes the complete frame of `len` bytes at the front of the buffer,
    /// with its descriptors. Descriptors that have not come yet are waited
    /// for until the receive's deadline; if they are still missing then, the
    /// frame stays in the buffer for the next receive.
    fn take_frame(
        &self,
        st: &mut RxState,
        len: usize,
        block: bool,
        deadline: Deadline,
    ) -> Result<RawFrame, RxError> {
        let bytes = &st.buf[st.start..st.start + len];
        let frame =
            wire::decode_with(bytes, self.checks).map_err(|e| RxError::Malformed(e.malformed()))?;
        let header = frame.header;
        let mut fds = Vec::new();
        if let Stream::Socket(_) = &self.stream {
            // The descriptors came with the bytes: there or never.
            let want = frame.rights.iter().map(RightDesc::descriptors).sum();
            let (rights, body) = (
                frame.rights,
                mkipc_kernel::message::Body::from_slice(frame.body),
            );
            let at = st.total - (st.end - st.start) as u64;
            let fds = LinkRx::take_fds(st, at, want)?;
            st.start += len;
            let seqno = st.seqno;
            st.seqno += 1;
            return Ok(RawFrame {
                header,
                rights,
                body,
                fds,
                seqno,
            });
        }
        if header.nrights > 0 {
            let sock = self
                .rights
                .as_ref()
                .ok_or(RxError::Malformed(MalformedFrame::RightsCount))?;
            let until = if block {
                deadline
            } else {
                Some(Instant::now())
            };
            match sys::poll_one(sock.as_fd(), libc::POLLIN, until) {
                Ok(true) => {}
                Ok(false) if block => return Err(RxError::TimedOut),
                Ok(false) => return Err(RxError::Empty),
                Err(e) => return Err(RxError::Os(e)),
            }
            let mut count = [0u8; 1];
            let want: usize = frame.rights.iter().map(RightDesc::descriptors).sum();
            match sys::recv_fds(sock.as_fd(), &mut count, want) {
                Ok(Some(got)) if got.len() == want && count[0] as usize == want => fds = got,
                Ok(_) => return Err(RxError::Malformed(MalformedFrame::MissingRights)),
                Err(e) => return Err(RxError::Os(e)),
            }
        }
        let rights = frame.rights;
        let body = mkipc_kernel::message::Body::from_slice(frame.body);
        st.start += len;
        let seqno = st.seqno;
        st.seqno += 1;
        Ok(RawFrame {
            header,
            rights,
            body,
            fds,
            seqno,
        })
    }
}

impl LinkRx {
    /// The length of the complete frame at the front of the buffer, if there
    /// is one. A header no sender on this stream could have written (a body
    /// over the limit, more rights than one `SCM_RIGHTS` message carries, any
    /// right on a FIFO) is malformed at once, and so is a frame on a FIFO
    /// that is still incomplete when the FIFO has been read empty.
    fn complete_frame(&self, st: &RxState) -> Option<Result<usize, MalformedFrame>> {
        let avail = &st.buf[st.start..st.end];
        let max_rights = if self.shared { 0 } else { MAX_RIGHTS };
        let incomplete = || {
            (self.shared && st.drained && !avail.is_empty())
                .then_some(Err(MalformedFrame::Truncated))
        };
        match Header::parse(avail) {
            Ok(h) if h.body_len as usize > self.max_body => Some(Err(MalformedFrame::Length)),
            Ok(h) if h.nrights as usize > max_rights => Some(Err(MalformedFrame::RightsCount)),
            Ok(h) => {
                let len = h.frame_len();
                if avail.len() >= len {
                    Some(Ok(len))
                } else {
                    incomplete()
                }
            }
            Err(FrameError::Short) => incomplete(),
            Err(e) => Some(Err(e.malformed())),
        }
    }
}

/// Appends `bytes` to the buffer (a sealed socket link's plaintext), sliding
/// the partial frame to the front or growing the buffer for it.
fn append(st: &mut RxState, bytes: &[u8]) {
    if st.buf.len() - st.end < bytes.len() {
        let (s, e) = (st.start, st.end);
        st.buf.copy_within(s..e, 0);
        st.start = 0;
        st.end = e - s;
        if st.buf.len() - st.end < bytes.len() {
            let n = (st.end + bytes.len()).max(2 * st.buf.len());
            st.buf.resize(n, 0);
        }
    }
    st.buf[st.end..st.end + bytes.len()].copy_from_slice(bytes);
    st.end += bytes.len();
    st.total += bytes.len() as u64;
}
