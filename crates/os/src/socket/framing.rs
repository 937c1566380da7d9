//! What [`crate::link`] reads and writes on an adopted socket link: whole
//! frames (sealed into records when the overlay is on), and on a plain
//! Unix socket the descriptors that ride with a frame's first bytes.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use rustix::net;

use mkipc_kernel::error::MalformedFrame;

use super::{Family, PeerId, SocketEnd};
use crate::link::TxError;
use crate::seal::{Opener, Sealer};
use crate::sys::{self, Errno};

/// The sending half of an adopted socket link.
pub(crate) struct SocketTx {
    fd: OwnedFd,
    rights: bool,
    /// The overlay: the sealer and a buffer for the records of one frame.
    sealer: Option<parking_lot::Mutex<(Sealer, Vec<u8>)>>,
}

impl SocketTx {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether descriptors can ride with frames (a plain Unix socket).
    pub(crate) fn carries_rights(&self) -> bool {
        self.rights
    }

    /// Writes one frame whole (and `fds` with its first bytes), sealed if
    /// the link is. `EPIPE`/`ECONNRESET`: the peer is gone.
    pub(crate) fn write_frame(&self, frame: &[u8], fds: &[RawFd]) -> Result<(), TxError> {
        let closed = |e| match e {
            libc::EPIPE | libc::ECONNRESET => TxError::Closed,
            e => TxError::Os(e),
        };
        match &self.sealer {
            None if fds.is_empty() => send_all(self.fd.as_fd(), frame).map_err(closed),
            None => sys::send_fds(self.fd.as_fd(), frame, fds).map_err(closed),
            Some(s) => {
                let mut s = s.lock();
                let (sealer, buf) = &mut *s;
                buf.clear();
                sealer.seal(frame, buf).map_err(TxError::Os)?;
                let r = send_all(self.fd.as_fd(), buf).map_err(closed);
                if buf.capacity() > 1 << 20 {
                    *buf = Vec::new(); // do not keep a big frame's buffer
                }
                r
            }
        }
    }
}

/// The receiving half of an adopted socket link.
pub(crate) struct SocketRx {
    fd: OwnedFd,
    /// The overlay (only the thread holding the link's state uses it).
    opener: Option<parking_lot::Mutex<Opener>>,
    /// The sender is the peer's claim (TCP; a Unix link adopted under
    /// another pid than the OS names).
    pub(crate) claimed: bool,
    /// A Unix socket: reads take the descriptors that come with the bytes.
    unix: bool,
}

/// Writes all of `bytes` with `send` (`MSG_NOSIGNAL`: a dead peer is
/// `EPIPE`, never a signal); no control message, so no `sendmsg` set-up.
fn send_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match net::send(fd, bytes, net::SendFlags::NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.raw_os_error()),
        }
    }
    Ok(())
}

/// What one read of a sealed link's ciphertext gave.
pub(crate) struct SocketRead {
    /// The stream ended.
    pub(crate) eof: bool,
    /// Ciphertext of a record not complete yet is buffered.
    pub(crate) partial: bool,
}

impl SocketRx {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn sealed(&self) -> bool {
        self.opener.is_some()
    }

    /// Whether a bad sealed record is waiting to be reported: a read
    /// returns at once with it, whatever the socket holds.
    pub(crate) fn failed(&self) -> bool {
        self.opener
            .as_ref()
            .is_some_and(|o| o.lock().failed().is_some())
    }

    /// One `recvmsg` of a plain link into `buf` (it waits only if nothing
    /// is there): the byte count, the descriptors that came with them, and
    /// whether some were lost (`MSG_CTRUNC`). `ECONNRESET` is end of stream.
    pub(crate) fn read_plain(
        &self,
        buf: &mut [u8],
    ) -> Result<(usize, Vec<OwnedFd>, bool), ReadError> {
        if !self.unix {
            // TCP carries no descriptors: a plain `read`.
            return match sys::read(self.fd.as_fd(), buf) {
                Ok(n) => Ok((n, Vec::new(), false)),
                Err(libc::ECONNRESET) => Ok((0, Vec::new(), false)),
                Err(e) => Err(ReadError::Os(e)),
            };
        }
        recv_with_fds(self.fd.as_fd(), buf)
    }

    /// One read of a sealed link's ciphertext; each record it completes is
    /// opened and its plaintext given to `plain`, in order.
    pub(crate) fn read_sealed(
        &self,
        plain: &mut dyn FnMut(&[u8]),
    ) -> Result<SocketRead, ReadError> {
        let Some(opener) = &self.opener else {
            return Err(ReadError::Os(libc::EINVAL));
        };
        let mut o = opener.lock();
        if let Some(e) = o.failed() {
            return Err(ReadError::Malformed(e));
        }
        let n = match sys::read(self.fd.as_fd(), o.space()) {
            Ok(n) => n,
            Err(libc::ECONNRESET) => 0,
            Err(e) => return Err(ReadError::Os(e)),
        };
        o.filled(n);
        let mut opened = false;
        loop {
            match o.open_next() {
                Ok(Some(p)) => {
                    plain(p);
                    opened = true;
                }
                Ok(None) => break,
                // The good records before a bad one are delivered first;
                // the error comes with the next read (the opener keeps it).
                Err(_) if opened => break,
                Err(e) => return Err(ReadError::Malformed(e)),
            }
        }
        Ok(SocketRead {
            eof: n == 0,
            partial: o.partial(),
        })
    }

    /// Ends this side's reading for good (after a malformed frame): a Unix
    /// peer's next send fails with `EPIPE`.
    pub(crate) fn shut_read(&self) {
        let _ = net::shutdown(&self.fd, net::Shutdown::Read);
    }
}

/// How a read from a socket link failed.
pub(crate) enum ReadError {
    Malformed(MalformedFrame),
    Os(Errno),
}

/// The most descriptors one read takes (`SCM_MAX_FD`).
const MAX_FDS: usize = crate::link::MAX_RIGHTS;

fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>, bool), ReadError> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    loop {
        let mut control = net::RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        match net::recvmsg(fd, &mut iov, &mut control, net::RecvFlags::CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for m in control.drain() {
                    if let net::RecvAncillaryMessage::ScmRights(got) = m {
                        fds.extend(got);
                    }
                }
                let truncated = msg.flags.contains(net::ReturnFlags::CTRUNC);
                return Ok((msg.bytes, fds, truncated));
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Ok((0, Vec::new(), false)),
            Err(e) => return Err(ReadError::Os(e.raw_os_error())),
        }
    }
}

/// The two halves of an adopted socket end; `peer` is the pid the link is
/// adopted under.
pub(crate) fn halves(end: SocketEnd, peer: u32) -> Result<(SocketTx, SocketRx), Errno> {
    let rx_fd = sys::dup(end.fd.as_fd())?;
    let claimed = match end.peer {
        PeerId::Pair => false,
        PeerId::Cred(pid) => pid != peer,
        PeerId::Claimed(_) => true,
    };
    let (sealer, opener) = match end.seal {
        Some((s, o)) => (Some(s), Some(o)),
        None => (None, None),
    };
    let rights = end.family == Family::Unix && sealer.is_none();
    Ok((
        SocketTx {
            fd: end.fd,
            rights,
            sealer: sealer.map(|s| parking_lot::Mutex::new((s, Vec::new()))),
        },
        SocketRx {
            fd: rx_fd,
            opener: opener.map(parking_lot::Mutex::new),
            claimed,
            unix: end.family == Family::Unix,
        },
    ))
}
