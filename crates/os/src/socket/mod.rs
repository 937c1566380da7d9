//! Socket links: direct links over a Unix-domain or TCP stream, so that
//! processes that were not spawned together, and processes on two
//! machines, exchange messages with `send_to`/`receive_from`.
//!
//! The bytes are the pipe link's: [`crate::wire`] frames back to back, read
//! and written by [`crate::link`]. What a socket adds:
//!
//! * **Address in, link out.** [`Listener::bind`] on a [`SocketAddr`]
//!   (`unix:/path` or `tcp:host:port`), [`Listener::accept`] on one side,
//!   [`connect`] on the other; each gives a [`LinkEnd`](crate::ends::LinkEnd) that
//!   [`OsProcess::adopt_link`](crate::OsProcess::adopt_link) makes the direct link with the peer. Or in one
//!   call: [`OsProcess::connect_link`](crate::OsProcess::connect_link) and [`OsProcess::accept_link`](crate::OsProcess::accept_link)
//!   return the peer's [`Pid`](mkipc_kernel::Pid), under which `send_to` reaches it.
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
//!
//! One concept per file: `listen.rs` (listeners, `connect`, pairs made in
//! one process), `hello.rs` (the handshake and who the peer is), `framing.rs`
//! (how an adopted link writes and reads frames, and the descriptors that
//! ride with them).

mod framing;
mod hello;
mod listen;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mkipc_kernel::IpcError;

pub use crate::seal::{Key, KEY_LEN};
use crate::seal::{Opener, Sealer};

pub(crate) use framing::{halves, ReadError, SocketRead, SocketRx, SocketTx};
pub use hello::{HELLO_BODY_LEN, HELLO_ID, HELLO_MAGIC, HELLO_VERSION};
pub use listen::{connect, Listener};
pub(crate) use listen::{tcp_pair, unix_pair};

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
    /// [`LinkEnd`](crate::ends::LinkEnd) under another [`Pid`](mkipc_kernel::Pid) with
    /// [`OsProcess::adopt_link`](crate::OsProcess::adopt_link).
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
