//! Socket links: direct links over a Unix-domain or TCP stream, so that
//! processes that were not spawned together, and processes on two
//! machines, exchange messages with `send_to`/`receive_from`.
//!
//! The bytes are the pipe link's: [`crate::wire`] frames back to back, read
//! and written by [`crate::link`]. What a socket adds:
//!
//! * **Address in, link out.** [`Listener::bind`] on a [`SocketAddr`]
//!   (`unix:/path` or `tcp:host:port`), [`Listener::accept`] on one side,
//!   [`connect`] on the other; each gives a [`LinkEnd`] that
//!   [`OsProcess::adopt_link`] makes the direct link with the peer. Or in one
//!   call: [`OsProcess::connect_link`] and [`OsProcess::accept_link`]
//!   return the peer's [`Pid`], under which `send_to` reaches it.
//! * **A hello each way** before any frame: one wire frame (id
//!   [`HELLO_ID`], the body `mkipc-link`, version 1, the overlay mode, a
//!   32-byte random), so a stranger that is no mkipc link, or a peer that
//!   seals when this side does not, is refused at `connect`/`accept`
//!   ([`SocketError`]), never as garbage later.
//! * **Rights** ride on a Unix socket with `SCM_RIGHTS`, attached to the
//!   first bytes of their frame (one `sendmsg`), so no second socket is
//!   needed; a TCP link (or a sealed one) carries none, and a send with
//!   rights fails with `SendErrorKind::Unsupported(RightsHere)`, the message
//!   given back.
//! * **The sender.** On a Unix socket the OS names the peer
//!   (`SO_PEERCRED`): a message's sender is verified when the link is
//!   adopted under that pid. On TCP the pid is the peer's claim (its hello),
//!   so `sender_verified()` is false.
//! * **Peer death**: end of stream (`read` 0, or `ECONNRESET`) is
//!   `ReceiveError::SourceDead` after the frames already read; `EPIPE` or
//!   `ECONNRESET` on a send is `SendErrorKind::DestinationDead`. A TCP peer
//!   whose machine vanishes without a reset is seen only by a deadline.
//! * **An encrypted overlay** ([`SocketOptions::sealed`], [`crate::seal`]):
//!   every byte after the hellos is in ChaCha20-Poly1305 records under a
//!   key derived per connection from a pre-shared [`Key`].
//!
//! ```
//! use mkipc_kernel::{Ipc, Message};
//! use mkipc_os::socket::{Listener, SocketAddr, SocketOptions};
//! use mkipc_os::OsProcess;
//!
//! let server = OsProcess::new().unwrap();
//! let client = OsProcess::join(server.run_id()).unwrap();
//! let listener = Listener::bind(&"tcp:127.0.0.1:0".parse().unwrap(), SocketOptions::new()).unwrap();
//! let addr = listener.local_addr().clone(); // the port the OS chose
//! let t = std::thread::spawn(move || {
//!     let peer = client.connect_link(&addr, &SocketOptions::new()).unwrap();
//!     client.send_to(peer, Message::new(1, b"over tcp")).unwrap();
//! });
//! let peer = server.accept_link(&listener).unwrap();
//! assert_eq!(&server.receive_from(peer).unwrap().body[..], b"over tcp");
//! t.join().unwrap();
//! ```

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::net::{self as net, AddressFamily, SocketFlags, SocketType};

use mkipc_kernel::error::MalformedFrame;
use mkipc_kernel::{IpcError, Message, Pid};

use crate::ends::LinkEnd;
use crate::link::TxError;
use crate::process::OsProcess;
use crate::seal::{self, Opener, Sealer, CONFIRM, RANDOM_LEN, RECORD_HEADER, TAG_LEN};
pub use crate::seal::{Key, KEY_LEN};
use crate::sys::{self, Errno};
use crate::wire::{self, HEADER_LEN};

/// The id of the hello frame each side sends first.
pub const HELLO_ID: u32 = 0x6b6e_696c; // "link", little-endian
/// What a hello's body starts with.
pub const HELLO_MAGIC: &[u8; 10] = b"mkipc-link";
/// The socket link protocol version in the hello.
pub const HELLO_VERSION: u8 = 1;
/// Bytes of a hello's body: magic, version, mode (0 plain, 1 sealed), random.
pub const HELLO_BODY_LEN: usize = HELLO_MAGIC.len() + 2 + RANDOM_LEN;
/// How long the handshake may take when [`SocketOptions::timeout`] is not set.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a socket link listens or connects: `unix:<path>` (a socket file,
/// mode 0600) or `tcp:<ip>:<port>` (`tcp:[::1]:7000` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddr {
    /// A Unix-domain stream socket at a path.
    Unix(PathBuf),
    /// A TCP stream.
    Tcp(std::net::SocketAddr),
}

impl std::str::FromStr for SocketAddr {
    type Err = SocketError;
    fn from_str(s: &str) -> Result<SocketAddr, SocketError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() || path.contains('\0') {
                return Err(SocketError::InvalidAddress);
            }
            return Ok(SocketAddr::Unix(PathBuf::from(path)));
        }
        if let Some(ip_port) = s.strip_prefix("tcp:") {
            return ip_port
                .parse()
                .map(SocketAddr::Tcp)
                .map_err(|_| SocketError::InvalidAddress);
        }
        Err(SocketError::InvalidAddress)
    }
}

impl std::fmt::Display for SocketAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            SocketAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// How a socket link is made: sealed or not, and how long the connection
/// and the handshake may take.
#[derive(Debug, Clone, Default)]
pub struct SocketOptions {
    key: Option<Key>,
    timeout: Option<Duration>,
}

impl SocketOptions {
    /// Plain (not sealed), [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn new() -> SocketOptions {
        SocketOptions::default()
    }

    /// Seals the link with the encrypted overlay under this pre-shared key
    /// ([`crate::seal`]); both sides must ask for it, with the same key.
    pub fn sealed(mut self, key: Key) -> SocketOptions {
        self.key = Some(key);
        self
    }

    /// How long `connect` (and each side's handshake) may take.
    pub fn timeout(mut self, timeout: Duration) -> SocketOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Whether the link is to be sealed ([`SocketOptions::sealed`]).
    pub fn is_sealed(&self) -> bool {
        self.key.is_some()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
    }
}

/// Why a socket link could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    /// Not `unix:<path>` or `tcp:<ip>:<port>`.
    #[error("not a socket address (unix:<path> or tcp:<ip>:<port>)")]
    InvalidAddress,
    /// Nobody listens at the address (`ECONNREFUSED`, or no socket file).
    #[error("nobody listens there")]
    Refused,
    /// The connection or the handshake did not finish before the deadline.
    #[error("timed out")]
    TimedOut,
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the handshake")]
    Closed,
    /// The peer's first bytes are not an mkipc socket link's hello.
    #[error("the peer is not an mkipc socket link")]
    NotALink,
    /// One side seals the link and the other does not.
    #[error("one side seals the link and the other does not")]
    OverlayMismatch,
    /// The peer's key confirmation did not open: it has another key.
    #[error("the peer holds another key")]
    WrongKey,
    /// This process already has a direct link with that pid (a TCP peer on
    /// another machine may share a pid with a local one): adopt the
    /// [`LinkEnd`] under another [`Pid`] with [`OsProcess::adopt_link`].
    #[error("already linked with pid {0}")]
    AlreadyLinked(u32),
    /// Another OS error (errno inside).
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
}

impl From<SocketError> for IpcError {
    fn from(e: SocketError) -> IpcError {
        match e {
            SocketError::InvalidAddress => IpcError::InvalidName,
            SocketError::Refused => IpcError::NotFound,
            SocketError::TimedOut => IpcError::Os(libc::ETIMEDOUT),
            SocketError::Closed => IpcError::DeadName,
            SocketError::NotALink => IpcError::InvalidValue,
            SocketError::OverlayMismatch | SocketError::WrongKey => IpcError::NoPermission,
            SocketError::AlreadyLinked(_) => IpcError::AlreadyExists,
            SocketError::Os(e) => crate::errno::ipc_error(e),
        }
    }
}

fn os(e: rustix::io::Errno) -> SocketError {
    match e {
        rustix::io::Errno::CONNREFUSED | rustix::io::Errno::NOENT => SocketError::Refused,
        rustix::io::Errno::TIMEDOUT => SocketError::TimedOut,
        e => SocketError::Os(e.raw_os_error()),
    }
}

/// Which stream a socket link runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Unix,
    Tcp,
}

/// Who the peer of a socket end is, as far as the OS can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerId {
    /// One end of a pair this process made ([`crate::new_link_of`]): as for
    /// a pipe, only the process it is handed to can write.
    Pair,
    /// A Unix peer the OS names (`SO_PEERCRED`).
    Cred(u32),
    /// A TCP peer: the pid is its claim.
    Claimed(u32),
}

/// One process's end of a socket link, before it is adopted.
pub(crate) struct SocketEnd {
    pub(crate) fd: OwnedFd,
    pub(crate) family: Family,
    pub(crate) peer: PeerId,
    pub(crate) seal: Option<(Sealer, Opener)>,
}

impl std::fmt::Debug for SocketEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketEnd")
            .field("fd", &self.fd)
            .field("family", &self.family)
            .field("peer", &self.peer)
            .field("sealed", &self.seal.is_some())
            .finish()
    }
}

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Connector,
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
fn handshake(
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

// ----- what `crate::link` reads and writes -------------------------------------

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
