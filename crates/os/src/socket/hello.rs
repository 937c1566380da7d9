//! The hello each side sends first, the overlay's key confirmation, and
//! who the peer is ([`PeerId`]: the pid the OS names on a Unix socket, the
//! pid a TCP peer claims).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::net;

use mkipc_kernel::Message;

use super::{os, Family, PeerId, SocketEnd, SocketError, SocketOptions};
use crate::seal::{self, Opener, Sealer, CONFIRM, RANDOM_LEN, RECORD_HEADER, TAG_LEN};
use crate::sys;
use crate::wire::{self, HEADER_LEN};

/// The id of the hello frame each side sends first.
pub const HELLO_ID: u32 = 0x6b6e_696c; // "link", little-endian
/// What a hello's body starts with.
pub const HELLO_MAGIC: &[u8; 10] = b"mkipc-link";
/// The socket link protocol version in the hello.
pub const HELLO_VERSION: u8 = 1;
/// Bytes of a hello's body: magic, version, mode (0 plain, 1 sealed), random.
pub const HELLO_BODY_LEN: usize = HELLO_MAGIC.len() + 2 + RANDOM_LEN;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// The side that called `connect`.
    Connector,
    /// The side that accepted.
    Acceptor,
}

/// The direction number in the overlay's nonces of what `side` sends.
fn direction(side: Side) -> u32 {
    match side {
        Side::Connector => 0,
        Side::Acceptor => 1,
    }
}

/// Both hellos, then (sealed) both key confirmations; see the module docs.
pub(super) fn handshake(
    fd: OwnedFd,
    family: Family,
    side: Side,
    options: &SocketOptions,
) -> Result<SocketEnd, SocketError> {
    let deadline = options.deadline();
    if family == Family::Tcp {
        // Frames are written whole: do not hold small ones back (Nagle).
        let _ = net::sockopt::set_tcp_nodelay(&fd, true);
    }
    let mut mine = [0u8; RANDOM_LEN];
    if options.key.is_some() {
        sys::getrandom(&mut mine).map_err(SocketError::Os)?;
    }
    let mut body = Vec::with_capacity(HELLO_BODY_LEN);
    body.extend_from_slice(HELLO_MAGIC);
    body.push(HELLO_VERSION);
    body.push(u8::from(options.key.is_some()));
    body.extend_from_slice(&mine);
    let hello = wire::encode(
        &Message::new(HELLO_ID, &body[..]),
        std::process::id(),
        0,
        0,
        &[],
    );
    write_all(fd.as_fd(), &hello)?;
    let mut theirs = [0u8; HEADER_LEN + HELLO_BODY_LEN];
    read_exact(fd.as_fd(), &mut theirs, deadline)?;
    let frame = wire::decode(&theirs).map_err(|_| SocketError::NotALink)?;
    let b = frame.body;
    if frame.header.id != HELLO_ID
        || frame.header.nrights != 0
        || b.len() != HELLO_BODY_LEN
        || &b[..HELLO_MAGIC.len()] != HELLO_MAGIC
        || b[HELLO_MAGIC.len()] != HELLO_VERSION
    {
        return Err(SocketError::NotALink);
    }
    let sealed = match b[HELLO_MAGIC.len() + 1] {
        0 => false,
        1 => true,
        _ => return Err(SocketError::NotALink),
    };
    if sealed != options.key.is_some() {
        return Err(SocketError::OverlayMismatch);
    }
    let peer = match family {
        Family::Unix => {
            let cred = net::sockopt::socket_peercred(&fd).map_err(os)?;
            PeerId::Cred(cred.pid.as_raw_nonzero().get() as u32)
        }
        Family::Tcp => PeerId::Claimed(frame.header.sender),
    };
    let seal = match &options.key {
        None => None,
        Some(key) => {
            let their_random: [u8; RANDOM_LEN] = b[HELLO_MAGIC.len() + 2..]
                .try_into()
                .expect("checked length");
            let (c, a) = match side {
                Side::Connector => (&mine, &their_random),
                Side::Acceptor => (&their_random, &mine),
            };
            let cipher = seal::session(key, c, a);
            let out = direction(side);
            let mut sealer = Sealer::new(cipher.clone(), out);
            let mut opener = Opener::new(cipher, 1 - out);
            let mut confirm = Vec::new();
            sealer
                .seal(CONFIRM, &mut confirm)
                .map_err(SocketError::Os)?;
            write_all(fd.as_fd(), &confirm)?;
            let mut got = [0u8; RECORD_HEADER + CONFIRM.len() + TAG_LEN];
            read_exact(fd.as_fd(), &mut got, deadline)?;
            opener.space()[..got.len()].copy_from_slice(&got);
            opener.filled(got.len());
            match opener.open_next() {
                Ok(Some(p)) if p == CONFIRM => {}
                _ => return Err(SocketError::WrongKey),
            }
            Some((sealer, opener))
        }
    };
    Ok(SocketEnd {
        fd,
        family,
        peer,
        seal,
    })
}

fn write_all(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), SocketError> {
    sys::send_fds(fd, bytes, &[]).map_err(|e| match e {
        libc::EPIPE | libc::ECONNRESET => SocketError::Closed,
        e => SocketError::Os(e),
    })
}

fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8], deadline: Instant) -> Result<(), SocketError> {
    let mut got = 0;
    while got < buf.len() {
        match sys::poll_one(fd, libc::POLLIN, Some(deadline)) {
            Ok(true) => {}
            Ok(false) => return Err(SocketError::TimedOut),
            Err(e) => return Err(SocketError::Os(e)),
        }
        match sys::read(fd, &mut buf[got..]) {
            Ok(0) | Err(libc::ECONNRESET) => return Err(SocketError::Closed),
            Ok(n) => got += n,
            Err(e) => return Err(SocketError::Os(e)),
        }
    }
    Ok(())
}
