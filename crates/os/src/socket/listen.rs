//! Listeners and `connect` (a link between processes that meet by an
//! address), and the connected pairs [`crate::new_link_of`] makes in one
//! process.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::net::{self as net, AddressFamily, SocketFlags, SocketType};

use mkipc_kernel::{IpcError, Pid};

use super::hello::{handshake, Side};
use super::{os, Family, PeerId, SocketAddr, SocketEnd, SocketError, SocketOptions};
use crate::ends::LinkEnd;
use crate::process::OsProcess;
use crate::sys::{self, Errno};

/// A listening socket: [`Listener::accept`] gives one link end per peer
/// that connects. A Unix listener's socket file (mode 0600) is removed when
/// it is dropped.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    addr: SocketAddr,
    options: SocketOptions,
    remove: Option<PathBuf>,
}

impl Listener {
    /// Listens at `addr` (`tcp:127.0.0.1:0` lets the OS pick a port:
    /// [`Listener::local_addr`] says which). A Unix socket file is made mode
    /// 0600 before the socket listens, so no other user connects (root
    /// ignores modes); a path that exists is [`SocketError::Os`]`(EADDRINUSE)`.
    pub fn bind(addr: &SocketAddr, options: SocketOptions) -> Result<Listener, SocketError> {
        let (fd, remove) = match addr {
            SocketAddr::Unix(path) => {
                let fd = stream_socket(AddressFamily::UNIX)?;
                let ua = net::SocketAddrUnix::new(path.as_path())
                    .map_err(|_| SocketError::InvalidAddress)?;
                net::bind(&fd, &ua).map_err(|e| SocketError::Os(e.raw_os_error()))?;
                // Before `listen`, a connect is refused: no window with the
                // file open to everyone.
                use std::os::unix::fs::PermissionsExt;
                if let Err(e) =
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                {
                    let _ = std::fs::remove_file(path);
                    return Err(SocketError::Os(e.raw_os_error().unwrap_or(libc::EIO)));
                }
                (fd, Some(path.clone()))
            }
            SocketAddr::Tcp(a) => {
                let fd = stream_socket(family_of(a))?;
                let _ = net::sockopt::set_socket_reuseaddr(&fd, true);
                net::bind(&fd, a).map_err(|e| SocketError::Os(e.raw_os_error()))?;
                (fd, None)
            }
        };
        if let Err(e) = net::listen(&fd, 128) {
            if let Some(p) = &remove {
                let _ = std::fs::remove_file(p);
            }
            return Err(SocketError::Os(e.raw_os_error()));
        }
        let addr = match addr {
            SocketAddr::Tcp(_) => match net::getsockname(&fd).map(std::net::SocketAddr::try_from) {
                Ok(Ok(a)) => SocketAddr::Tcp(a),
                _ => addr.clone(),
            },
            unix => unix.clone(),
        };
        tracing::debug!(%addr, sealed = options.key.is_some(), "socket link listener");
        Ok(Listener {
            fd,
            addr,
            options,
            remove,
        })
    }

    /// The address peers connect to (with the port the OS chose for `:0`).
    pub fn local_addr(&self) -> &SocketAddr {
        &self.addr
    }

    /// Waits for the next peer, then runs the handshake with it (bounded by
    /// the listener's [`SocketOptions::timeout`]).
    pub fn accept(&self) -> Result<LinkEnd, SocketError> {
        self.accept_until(None)
    }

    /// As [`Listener::accept`], waiting at most `timeout` for a peer.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<LinkEnd, SocketError> {
        self.accept_until(sys::deadline_after(timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<LinkEnd, SocketError> {
        loop {
            if deadline.is_some() {
                match sys::poll_one(self.fd.as_fd(), libc::POLLIN, deadline) {
                    Ok(true) => {}
                    Ok(false) => return Err(SocketError::TimedOut),
                    Err(e) => return Err(SocketError::Os(e)),
                }
            }
            let fd = match net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
                Err(e) => return Err(os(e)),
            };
            let family = match self.addr {
                SocketAddr::Unix(_) => Family::Unix,
                SocketAddr::Tcp(_) => Family::Tcp,
            };
            let end = handshake(fd, family, Side::Acceptor, &self.options)?;
            tracing::debug!(addr = %self.addr, peer = ?end.peer, "socket link accepted");
            return Ok(LinkEnd::from_socket(end));
        }
    }
}

impl AsFd for Listener {
    /// The listening socket (readable when a peer is waiting to be accepted).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(p) = &self.remove {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Connects to a [`Listener`] at `addr` and runs the handshake, all within
/// `options`' timeout.
pub fn connect(addr: &SocketAddr, options: &SocketOptions) -> Result<LinkEnd, SocketError> {
    let deadline = options.deadline();
    let (fd, family) = match addr {
        SocketAddr::Unix(path) => {
            let fd = stream_socket(AddressFamily::UNIX)?;
            let ua = net::SocketAddrUnix::new(path.as_path())
                .map_err(|_| SocketError::InvalidAddress)?;
            connect_until(&fd, &ua, deadline)?;
            (fd, Family::Unix)
        }
        SocketAddr::Tcp(a) => {
            let fd = stream_socket(family_of(a))?;
            connect_until(&fd, a, deadline)?;
            (fd, Family::Tcp)
        }
    };
    let end = handshake(fd, family, Side::Connector, options)?;
    tracing::debug!(%addr, peer = ?end.peer, "socket link connected");
    Ok(LinkEnd::from_socket(end))
}

impl OsProcess {
    /// Connects to `addr` ([`connect`]) and adopts the link under the
    /// peer's pid, which it returns: then `send_to(pid, ..)` and
    /// `receive_from(pid)` use the socket.
    pub fn connect_link(
        &self,
        addr: &SocketAddr,
        options: &SocketOptions,
    ) -> Result<Pid, SocketError> {
        self.adopt_socket(connect(addr, options)?)
    }

    /// Accepts the next peer of `listener` ([`Listener::accept`]) and adopts
    /// the link under its pid, which it returns.
    pub fn accept_link(&self, listener: &Listener) -> Result<Pid, SocketError> {
        self.adopt_socket(listener.accept()?)
    }

    fn adopt_socket(&self, end: LinkEnd) -> Result<Pid, SocketError> {
        let pid = end.peer_pid().ok_or(SocketError::NotALink)?;
        if self.peers().contains(&pid) {
            return Err(SocketError::AlreadyLinked(pid.0));
        }
        self.adopt_link(pid, end).map_err(|e| match e {
            IpcError::Os(e) => SocketError::Os(e),
            _ => SocketError::Os(libc::EINVAL),
        })?;
        Ok(pid)
    }
}

fn family_of(a: &std::net::SocketAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    }
}

fn stream_socket(family: AddressFamily) -> Result<OwnedFd, SocketError> {
    net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| SocketError::Os(e.raw_os_error()))
}

/// `connect` that gives up at `deadline`: non-blocking, then `poll` for
/// the result, then blocking again (links use blocking descriptors).
fn connect_until(
    fd: &OwnedFd,
    addr: &impl net::addr::SocketAddrArg,
    deadline: Instant,
) -> Result<(), SocketError> {
    sys::set_nonblocking(fd.as_fd(), true).map_err(SocketError::Os)?;
    match net::connect(fd, addr) {
        Ok(()) => {}
        Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::INTR) => {
            match sys::poll_one(fd.as_fd(), libc::POLLOUT, Some(deadline)) {
                Ok(true) => {}
                Ok(false) => return Err(SocketError::TimedOut),
                Err(e) => return Err(SocketError::Os(e)),
            }
            match net::sockopt::socket_error(fd) {
                Ok(Ok(())) => {}
                Ok(Err(e)) | Err(e) => return Err(os(e)),
            }
        }
        // A Unix listener's backlog is full: Linux says EAGAIN.
        Err(rustix::io::Errno::AGAIN) => return Err(SocketError::Refused),
        Err(e) => return Err(os(e)),
    }
    sys::set_nonblocking(fd.as_fd(), false).map_err(SocketError::Os)
}

/// A connected pair of Unix stream sockets, for [`crate::new_link_of`].
pub(crate) fn unix_pair() -> Result<(SocketEnd, SocketEnd), Errno> {
    let (a, b) = sys::socketpair()?;
    let end = |fd| SocketEnd {
        fd,
        family: Family::Unix,
        peer: PeerId::Pair,
        seal: None,
    };
    Ok((end(a), end(b)))
}

/// A connected pair of TCP sockets over the loopback, for
/// [`crate::new_link_of`]: a listener on an ephemeral port that lives only
/// until it has accepted the one connection this function made (checked by
/// address, so a stranger who connected first is turned away).
pub(crate) fn tcp_pair() -> Result<(SocketEnd, SocketEnd), Errno> {
    let e = |e: rustix::io::Errno| e.raw_os_error();
    let lo = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(e)?;
    net::bind(&listener, &lo).map_err(e)?;
    net::listen(&listener, 8).map_err(e)?;
    let at = net::getsockname(&listener).map_err(e)?;
    let near = net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(e)?;
    net::connect(&near, &at).map_err(e)?;
    let mine = net::getsockname(&near)
        .map_err(e)?
        .try_into()
        .map_err(|_| libc::EINVAL)?;
    let far = loop {
        let fd = net::accept_with(&listener, SocketFlags::CLOEXEC).map_err(e)?;
        let from: Option<std::net::SocketAddr> = net::getpeername(&fd)
            .ok()
            .flatten()
            .and_then(|a| a.try_into().ok());
        if from == Some(mine) {
            break fd;
        }
    };
    for fd in [&near, &far] {
        let _ = net::sockopt::set_tcp_nodelay(fd, true);
    }
    let end = |fd| SocketEnd {
        fd,
        family: Family::Tcp,
        peer: PeerId::Pair,
        seal: None,
    };
    Ok((end(near), end(far)))
}
