//! Errors. Each says what happened; a failed send gives the message back.
//!
//! * [`IpcError`]: operations on names and rights (Mach's `kern_return_t`).
//! * [`SendError`]: every variant holds the [`Message`], with its rights back
//!   in the sender's name space; [`SendError::into_message`] returns it.
//! * [`ReceiveError`]: why nothing was received.
//! * [`CallError`]: which half of an RPC failed.
//!
//! ```
//! use mkipc_kernel::{Message, SendError, SendErrorKind};
//! let err = SendError::Full(Message::new(1, b"keep me"));
//! assert_eq!(err.kind(), SendErrorKind::Full);
//! assert_eq!(&err.into_message().body[..], b"keep me");
//! ```

use std::fmt;

use crate::message::Message;
use crate::name::RightKind;

/// Why an operation on a name, right, mailbox or service failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum IpcError {
    /// The name denotes nothing in this task (never allocated, or stale).
    #[error("invalid name")]
    InvalidName,
    /// The name is a dead name: its port was destroyed.
    #[error("dead name: the port was destroyed")]
    DeadName,
    /// The name denotes a right of another kind than the operation needs.
    #[error("wrong right: needs {needed:?}")]
    WrongRight {
        /// The kind of right the operation needs.
        needed: RightKind,
    },
    /// A count or argument is out of range (user-reference overflow or
    /// underflow, `Bounded(0)`, an empty select list, a malformed name).
    #[error("invalid value")]
    InvalidValue,
    /// The task lacks permission (mailbox access list, owner-only operation).
    #[error("permission denied")]
    NoPermission,
    /// No mailbox, service or task with that name or pid.
    #[error("not found")]
    NotFound,
    /// A mailbox or service with that name already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The task itself has exited.
    #[error("task has exited")]
    TaskExited,
    /// This backend cannot provide the operation (the reason is in the backend's docs).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The operating system refused (errno inside), for the OS backend.
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
}

/// Why a send failed. Every variant gives the message back.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The queue was full and the policy was to fail at once.
    #[error("destination queue is full")]
    Full(Message),
    /// The send waited as long as allowed.
    #[error("send timed out")]
    TimedOut(Message),
    /// The destination name is a dead name, or the port, mailbox or task died
    /// while the sender waited.
    #[error("destination is dead")]
    DestinationDead(Message),
    /// The destination name denotes nothing, or the pid is unknown.
    #[error("invalid destination name")]
    InvalidDestination(Message),
    /// The destination name holds no right that allows sending.
    #[error("destination name holds no send right")]
    WrongRight(Message),
    /// The mailbox's access list does not let this task send.
    #[error("no permission to send to this mailbox")]
    NoPermission(Message),
    /// A right carried in the message (index into `rights`, or `usize::MAX` for
    /// the reply right) cannot be taken from the sender.
    #[error("carried right {index} is invalid: {error}")]
    InvalidRight {
        /// Which right.
        index: usize,
        /// Why.
        error: IpcError,
        /// The message.
        message: Message,
    },
    /// An unbounded queue is at its memory ceiling.
    #[error("destination queue is over its memory limit")]
    MemoryLimit(Message),
    /// The sending task exited while the send was in progress (its rights are gone).
    #[error("sending task has exited")]
    TaskExited(Message),
    /// The message is larger than the backend can carry.
    #[error("message too large (limit {limit} bytes)")]
    TooLarge {
        /// The backend's limit.
        limit: usize,
        /// The message.
        message: Message,
    },
    /// The backend cannot send this (reason in the backend's docs).
    #[error("not supported by this backend: {reason}")]
    Unsupported {
        /// Why.
        reason: &'static str,
        /// The message.
        message: Message,
    },
    /// The operating system refused (errno inside).
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.errno))]
    Os {
        /// The OS error number.
        errno: i32,
        /// The message.
        message: Message,
    },
}

/// The variant of a [`SendError`] without its message, for matching and comparing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[allow(missing_docs)]
pub enum SendErrorKind {
    Full,
    TimedOut,
    DestinationDead,
    InvalidDestination,
    WrongRight,
    NoPermission,
    InvalidRight { index: usize, error: IpcError },
    MemoryLimit,
    TaskExited,
    TooLarge,
    Unsupported,
    Os(i32),
}

impl SendError {
    /// The message, with its rights back in the sender's name space.
    pub fn into_message(self) -> Message {
        match self {
            SendError::Full(m)
            | SendError::TimedOut(m)
            | SendError::DestinationDead(m)
            | SendError::InvalidDestination(m)
            | SendError::WrongRight(m)
            | SendError::NoPermission(m)
            | SendError::MemoryLimit(m)
            | SendError::TaskExited(m) => m,
            SendError::InvalidRight { message, .. }
            | SendError::TooLarge { message, .. }
            | SendError::Unsupported { message, .. }
            | SendError::Os { message, .. } => message,
        }
    }
    /// The same error around a changed message.
    pub fn map_message(self, f: impl FnOnce(Message) -> Message) -> SendError {
        match self {
            SendError::InvalidRight {
                index,
                error,
                message,
            } => SendError::InvalidRight {
                index,
                error,
                message: f(message),
            },
            SendError::TooLarge { limit, message } => SendError::TooLarge {
                limit,
                message: f(message),
            },
            SendError::Unsupported { reason, message } => SendError::Unsupported {
                reason,
                message: f(message),
            },
            SendError::Os { errno, message } => SendError::Os {
                errno,
                message: f(message),
            },
            other => {
                let kind = other.kind();
                SendError::from_kind(kind, f(other.into_message()))
            }
        }
    }
    /// A look at the message without taking it.
    pub fn message(&self) -> &Message {
        match self {
            SendError::Full(m)
            | SendError::TimedOut(m)
            | SendError::DestinationDead(m)
            | SendError::InvalidDestination(m)
            | SendError::WrongRight(m)
            | SendError::NoPermission(m)
            | SendError::MemoryLimit(m)
            | SendError::TaskExited(m) => m,
            SendError::InvalidRight { message, .. }
            | SendError::TooLarge { message, .. }
            | SendError::Unsupported { message, .. }
            | SendError::Os { message, .. } => message,
        }
    }
    /// The variant, without the message.
    pub fn kind(&self) -> SendErrorKind {
        match self {
            SendError::Full(_) => SendErrorKind::Full,
            SendError::TimedOut(_) => SendErrorKind::TimedOut,
            SendError::DestinationDead(_) => SendErrorKind::DestinationDead,
            SendError::InvalidDestination(_) => SendErrorKind::InvalidDestination,
            SendError::WrongRight(_) => SendErrorKind::WrongRight,
            SendError::NoPermission(_) => SendErrorKind::NoPermission,
            SendError::InvalidRight { index, error, .. } => SendErrorKind::InvalidRight {
                index: *index,
                error: *error,
            },
            SendError::MemoryLimit(_) => SendErrorKind::MemoryLimit,
            SendError::TaskExited(_) => SendErrorKind::TaskExited,
            SendError::TooLarge { .. } => SendErrorKind::TooLarge,
            SendError::Unsupported { .. } => SendErrorKind::Unsupported,
            SendError::Os { errno, .. } => SendErrorKind::Os(*errno),
        }
    }
    /// Rebuilds an error of the given kind around a message (used by backends
    /// that decide the kind before they have the message back).
    pub fn from_kind(kind: SendErrorKind, message: Message) -> SendError {
        match kind {
            SendErrorKind::Full => SendError::Full(message),
            SendErrorKind::TimedOut => SendError::TimedOut(message),
            SendErrorKind::DestinationDead => SendError::DestinationDead(message),
            SendErrorKind::InvalidDestination => SendError::InvalidDestination(message),
            SendErrorKind::WrongRight => SendError::WrongRight(message),
            SendErrorKind::NoPermission => SendError::NoPermission(message),
            SendErrorKind::InvalidRight { index, error } => SendError::InvalidRight {
                index,
                error,
                message,
            },
            SendErrorKind::MemoryLimit => SendError::MemoryLimit(message),
            SendErrorKind::TaskExited => SendError::TaskExited(message),
            SendErrorKind::TooLarge => SendError::TooLarge { limit: 0, message },
            SendErrorKind::Unsupported => SendError::Unsupported {
                reason: "",
                message,
            },
            SendErrorKind::Os(errno) => SendError::Os { errno, message },
        }
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SendError::{:?}(message id {})",
            self.kind(),
            self.message().id
        )
    }
}

/// Why a receive failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Nothing to receive and the receive was not allowed to wait.
    #[error("nothing to receive")]
    Empty,
    /// The receive waited as long as allowed.
    #[error("receive timed out")]
    TimedOut,
    /// The port, port set or mailbox was destroyed, or (direct addressing) the
    /// peer exited and everything it sent has been received: end of stream.
    #[error("source is dead")]
    SourceDead,
    /// The name denotes nothing in this task, or the pid is unknown.
    #[error("invalid source name")]
    InvalidName,
    /// The name holds no right to receive (not a receive right, port set, or
    /// mailbox with receive access).
    #[error("source name holds no receive right")]
    WrongRight,
    /// The mailbox's access list does not let this task receive.
    #[error("no permission to receive from this mailbox")]
    NoPermission,
    /// The receive right was moved to another task while this receive waited.
    #[error("receive right moved away while waiting")]
    PortMoved,
    /// The receiving task exited while waiting.
    #[error("receiving task has exited")]
    TaskExited,
    /// An argument is invalid (e.g. an empty select list).
    #[error("invalid value")]
    InvalidValue,
    /// A message arrived but could not be decoded (OS backend: bad frame);
    /// what was wrong with it inside.
    #[error("malformed message: {0}")]
    Malformed(MalformedFrame),
    /// The backend cannot receive this way (reason in the backend's docs).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The operating system refused (errno inside).
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
}

/// What was wrong with a frame that could not be decoded
/// ([`ReceiveError::Malformed`]; the OS backend's wire format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum MalformedFrame {
    /// The frame does not start with the magic bytes: not a frame, or the
    /// stream lost its place.
    #[error("bad magic")]
    Magic,
    /// A wire format version this backend does not speak (the version inside).
    #[error("unknown version {0}")]
    Version(u8),
    /// Unknown flag bits, or a reserved field that is not zero.
    #[error("unknown flags or reserved bits")]
    Flags,
    /// The header's checksum does not match the frame's bytes.
    #[error("checksum mismatch")]
    Checksum,
    /// The body is longer than any sender on this channel may write.
    #[error("body length over the limit")]
    Length,
    /// More rights than the channel can carry (any right on a queue or FIFO).
    #[error("too many rights")]
    RightsCount,
    /// A right descriptor of an unknown kind or disposition.
    #[error("unknown right descriptor")]
    Right,
    /// The frame ended before the length its header announces (end of
    /// stream mid-frame, or a queue message shorter than its header says).
    #[error("truncated frame")]
    Truncated,
    /// The descriptors the header announces never came (the peer closed the
    /// rights socket, or sent fewer).
    #[error("announced rights never arrived")]
    MissingRights,
}

/// Why an RPC ([`Ipc::call`](crate::Ipc::call)) failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request could not be sent (message returned inside).
    #[error("request not sent: {0}")]
    Send(#[from] SendError),
    /// The reply could not be received.
    #[error("no reply received: {0}")]
    Receive(#[from] ReceiveError),
    /// The server destroyed the reply right without replying (it died, or
    /// dropped the request): Mach's send-once notification.
    #[error("server dropped the request without replying")]
    NoReply,
}

impl From<IpcError> for ReceiveError {
    fn from(e: IpcError) -> ReceiveError {
        match e {
            IpcError::InvalidName | IpcError::NotFound => ReceiveError::InvalidName,
            IpcError::DeadName => ReceiveError::SourceDead,
            IpcError::WrongRight { .. } => ReceiveError::WrongRight,
            IpcError::NoPermission => ReceiveError::NoPermission,
            IpcError::TaskExited => ReceiveError::TaskExited,
            IpcError::Unsupported(r) => ReceiveError::Unsupported(r),
            IpcError::Os(e) => ReceiveError::Os(e),
            IpcError::InvalidValue | IpcError::AlreadyExists => ReceiveError::InvalidValue,
        }
    }
}
