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

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::sys::{self, Deadline, Errno};
use crate::wire::{self, FrameError, Header, RightDesc, HEADER_LEN};

/// How a link-level send ended (before mapping to the API's types).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TxError {
    /// The pipe is full and the policy was not to wait.
    WouldBlock,
    /// The deadline passed.
    TimedOut,
    /// Every read end is closed (`EPIPE`).
    Closed,
    /// Another OS error.
    Os(Errno),
}

/// The sending end of a link.
pub(crate) struct LinkTx {
    fd: OwnedFd,
    rights: Option<Arc<OwnedFd>>,
    lock: Mutex<()>,
}

/// The receiving end of a link.
pub(crate) struct LinkRx {
    fd: OwnedFd,
    rights: Option<Arc<OwnedFd>>,
    /// The largest body a sender on this stream may write: a header that
    /// announces more is malformed (not a reason to wait for, and buffer,
    /// up to 4 GiB).
    max_body: usize,
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
    seqno: u64,
}

/// A frame taken off a link, with the descriptors that came with it.
pub(crate) struct RawFrame {
    pub header: Header,
    pub rights: Vec<RightDesc>,
    pub body: mkipc_kernel::Body,
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
    /// The stream does not hold valid frames.
    Malformed,
    /// Another OS error.
    Os(Errno),
}

impl LinkTx {
    /// Wraps a (blocking) pipe write end and the optional rights socket.
    pub(crate) fn new(fd: OwnedFd, rights: Option<Arc<OwnedFd>>) -> LinkTx {
        LinkTx {
            fd,
            rights,
            lock: Mutex::new(()),
        }
    }

    /// Whether rights can travel on this link.
    pub(crate) fn carries_rights(&self) -> bool {
        self.rights.is_some()
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
        // Check what the OS would refuse before any byte goes into the pipe:
        // a frame whose descriptors cannot follow it would leave the reader
        // waiting for them (and every later frame out of step).
        if fds.len() > MAX_RIGHTS {
            return Err(TxError::Os(libc::EINVAL));
        }
        if !fds.is_empty() && self.rights.is_none() {
            return Err(TxError::Os(libc::ENOTSOCK));
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
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
            match sys::poll_one(self.fd.as_fd(), libc::POLLOUT, until) {
                Ok(true) => {}
                Ok(false) if wait => return Err(TxError::TimedOut),
                Ok(false) => return Err(TxError::WouldBlock),
                Err(e) => return Err(TxError::Os(e)),
            }
        }
        let mut done = 0;
        while done < frame.len() {
            match sys::writev(self.fd.as_fd(), &[IoSlice::new(&frame[done..])]) {
                Ok(n) => done += n,
                Err(libc::EPIPE) => return Err(TxError::Closed),
                Err(e) => return Err(TxError::Os(e)),
            }
        }
        if !fds.is_empty() {
            let sock = self.rights.as_ref().ok_or(TxError::Os(libc::ENOTSOCK))?;
            match sys::send_fds(sock.as_fd(), &[fds.len() as u8], fds) {
                Ok(()) => {}
                Err(libc::EPIPE) | Err(libc::ECONNRESET) => return Err(TxError::Closed),
                Err(e) => return Err(TxError::Os(e)),
            }
        }
        Ok(())
    }
}

impl LinkRx {
    /// Wraps a (blocking) pipe or FIFO read end and the optional rights
    /// socket; frames with bodies over `max_body` bytes are malformed.
    pub(crate) fn new(fd: OwnedFd, rights: Option<Arc<OwnedFd>>, max_body: usize) -> LinkRx {
        let state = RxState {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            seqno: 0,
        };
        LinkRx {
            fd,
            rights,
            max_body,
            state: parking_lot::Mutex::new(state),
        }
    }

    /// The pipe's descriptor, for `poll`.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether a whole frame is already buffered, or end of stream was seen
    /// (either way a receive returns without touching the pipe).
    /// Another thread holding the link is waited for briefly (a pump or a
    /// look at the buffer takes microseconds; a thread that keeps it longer
    /// is waiting in the pipe and will take what comes, so this says false).
    pub(crate) fn ready(&self) -> bool {
        self.state
            .try_lock_for(std::time::Duration::from_millis(1))
            .is_some_and(|st| st.eof || self.complete_frame(&st).is_some())
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
            if let Some(len) = self.complete_frame(&st) {
                return self.take_frame(&mut st, len?);
            }
            if st.eof {
                return Err(if st.start == st.end {
                    RxError::Eof
                } else {
                    RxError::Malformed
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
            match sys::poll_one(self.fd.as_fd(), libc::POLLIN, until) {
                Ok(true) => self.fill(&mut st)?,
                Ok(false) => return Err(gave_up),
                Err(e) => return Err(RxError::Os(e)),
            }
        }
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
        match sys::poll_one(self.fd.as_fd(), libc::POLLIN, Some(Instant::now())) {
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
        match sys::read(self.fd.as_fd(), &mut st.buf[end..]) {
            Ok(0) => st.eof = true,
            Ok(n) => st.end += n,
            Err(e) => return Err(RxError::Os(e)),
        }
        Ok(())
    }

    fn take_frame(&self, st: &mut RxState, len: usize) -> Result<RawFrame, RxError> {
        let bytes = &st.buf[st.start..st.start + len];
        let frame = wire::decode(bytes).map_err(|_| RxError::Malformed)?;
        let header = frame.header;
        let rights = frame.rights;
        let body = mkipc_kernel::Body::from_slice(frame.body);
        st.start += len;
        let seqno = st.seqno;
        st.seqno += 1;
        let mut fds = Vec::new();
        if header.nrights > 0 {
            let sock = self.rights.as_ref().ok_or(RxError::Malformed)?;
            let mut count = [0u8; 1];
            match sys::recv_fds(sock.as_fd(), &mut count, header.nrights as usize) {
                Ok(Some(got)) if got.len() == header.nrights as usize => fds = got,
                Ok(_) => return Err(RxError::Malformed),
                Err(e) => return Err(RxError::Os(e)),
            }
        }
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
    /// over the limit, more rights than one `SCM_RIGHTS` message carries) is
    /// malformed at once.
    fn complete_frame(&self, st: &RxState) -> Option<Result<usize, RxError>> {
        let avail = &st.buf[st.start..st.end];
        if avail.len() < HEADER_LEN {
            return None;
        }
        match Header::parse(avail) {
            Ok(h) if h.body_len as usize > self.max_body || h.nrights as usize > MAX_RIGHTS => {
                Some(Err(RxError::Malformed))
            }
            Ok(h) => {
                let len = h.frame_len();
                (avail.len() >= len).then_some(Ok(len))
            }
            Err(FrameError::Short) => None,
            Err(_) => Some(Err(RxError::Malformed)),
        }
    }
}
