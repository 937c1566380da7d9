//! Errors. Each says what happened; a failed send gives the message back.
//!
//! * [`IpcError`]: operations on names and rights (Mach's `kern_return_t`).
//! * [`SendError`]: what went wrong (a [`SendErrorKind`], plain data you can
//!   match and compare) and the [`Message`], with its rights back in the
//!   sender's name space; [`SendError::into_message`] returns it.
//! * [`ReceiveError`]: why nothing was received.
//! * [`CallError`]: which half of an RPC failed.
//! * [`Unsupported`]: what a backend cannot do, as a value (not a text), so a
//!   caller can match on it and a backend's docs can list it.
//!
//! ```
//! use mkipc_kernel::{Message, SendError, SendErrorKind};
//! let err = SendError::new(SendErrorKind::Full, Message::new(1, b"keep me"));
//! assert_eq!(err.kind(), SendErrorKind::Full);
//! assert_eq!(err.to_string(), "destination queue is full");
//! assert_eq!(&err.into_message().body[..], b"keep me");
//! ```

use std::fmt;

use crate::message::Message;
use crate::name::RightKind;

/// Why an operation on a name, right, mailbox or service failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum IpcError {
    /// The name denotes nothing in this task (never allocated, or stale), or
    /// a mailbox or service name breaks the [name rule](crate::name_rules).
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
    /// underflow, `Bounded(0)`, an empty select list).
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
    /// The backend could not get the memory the object needs (simulator:
    /// a process stack, limited by `vm.max_map_count`).
    #[error("out of memory for this object")]
    OutOfMemory,
    /// This backend cannot provide the operation.
    #[error("not supported by this backend: {0}")]
    Unsupported(Unsupported),
    /// A system limit was reached (OS backend); the [`Limit`] says which
    /// and where it is set.
    #[error("limit reached: {0}")]
    Limit(Limit),
    /// The operating system refused (errno inside), for the OS backend.
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
}

/// What a backend cannot provide. Each backend documents which of these it
/// returns; the simulator and the in-process kernel return none of them.
/// [`Unsupported::reason`] (also its `Display`) says why and what to use instead.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Unsupported {
    /// Port sets (every backend has them today; kept for backends that do not).
    PortSets,
    /// A notification the backend cannot deliver (OS backend: dead-name on a
    /// right that came without its port's liveness pipe).
    Notifications,
    /// The name service (every backend has it today; kept for backends that do not).
    NameService,
    /// Per-task grants on a mailbox's access list (OS backend: on a mailbox
    /// created without any, a revocation from a process that opened it, a
    /// granted mailbox in a message).
    Grants,
    /// Changing a queue's capacity after it was created, where the backend
    /// cannot (OS backend: a change of model, a mailbox).
    CapacityChange,
    /// The `DropOldest` policy where only the receiver can take messages out.
    DropOldest,
    /// Rights carried where the backend cannot carry them (OS backend: to a
    /// rendezvous port, a FIFO, or with a reply right).
    RightsHere,
    /// A reply right on anything but `call()`.
    ReplyHere,
    /// `call()` to something that is not a port or a mailbox.
    CallTarget,
    /// `port_status` of a FIFO, which cannot count its messages.
    FifoStatus,
    /// A link capacity the link kind cannot take (OS backend: `Zero`,
    /// `Unbounded`, shared-memory and socket links).
    LinkCapacity,
    /// Looking at a queued message without taking it.
    Peek,
    /// Taking a message other than the oldest (selective receive).
    SelectiveReceive,
    /// Closing a queue to new sends while its receivers drain it.
    Close,
    /// A select that prefers its sources in the order given.
    PrioritySelect,
}

impl Unsupported {
    /// Why, in a sentence, and what to use instead.
    pub const fn reason(self) -> &'static str {
        match self {
            Unsupported::PortSets => {
                "port sets: this backend has none; use select() over the member ports"
            }
            Unsupported::Notifications => {
                "this notification: a dead-name request on a right that came without its port's liveness pipe (written by a program other than mkipc): the OS does not say when that port's receiver dies"
            }
            Unsupported::NameService => {
                "name service: this backend has none; use a named mailbox, or pass the right at spawn or in a message"
            }
            Unsupported::Grants => {
                "per-process grants: on a mailbox created without any (its POSIX queue is open by name to every process its mode allows), or carrying a granted mailbox in a message or at spawn (its descriptor would carry the sender's access past the list)"
            }
            Unsupported::CapacityChange => {
                "changing a capacity here: a bounded port or mailbox can move within the mq_maxmsg its queue was made with (a capacity page every holder shares), but not to or from Zero or Unbounded, nor a queue a program other than mkipc made (its senders share no page)"
            }
            Unsupported::DropOldest => {
                "DropOldest: only the receiver can take a message out of a pipe or a queue"
            }
            Unsupported::RightsHere => {
                "rights cannot travel here: not to a rendezvous port or a FIFO, nor with a reply right (the broker holds descriptors only for buffered ports, mailboxes and links)"
            }
            Unsupported::ReplyHere => {
                "a reply right travels only with call()"
            }
            Unsupported::CallTarget => {
                "call() goes to a port or a mailbox"
            }
            Unsupported::FifoStatus => {
                "port_status of a FIFO: a pipe does not count messages"
            }
            Unsupported::LinkCapacity => {
                "link capacity here: a pipe link takes Bounded(n) as n pages (F_SETPIPE_SZ), but not Zero or Unbounded, and shared-memory and socket links cannot be sized"
            }
            Unsupported::Peek => {
                "peek: a POSIX queue or a pipe gives a message only by taking it"
            }
            Unsupported::SelectiveReceive => {
                "selective receive: a POSIX queue or a pipe gives its messages only in order"
            }
            Unsupported::Close => {
                "close: a POSIX queue cannot refuse its other writers while its reader drains it"
            }
            Unsupported::PrioritySelect => {
                "priority select: this backend has only the oldest-first select"
            }
        }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Unsupported {}

/// A system limit an operation ran into, with its value and where it is set
/// (the OS backend maps the errno where the cause is known: `EINVAL` from
/// `mq_open` with a depth over `msg_max`, `ENOSPC` for `queues_max`, `EMFILE`
/// for either `RLIMIT_NOFILE` or `RLIMIT_MSGQUEUE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Limit {
    /// A queue deeper than `/proc/sys/fs/mqueue/msg_max` messages.
    #[error("a POSIX queue holds at most {max} messages (/proc/sys/fs/mqueue/msg_max)")]
    MqMsgMax {
        /// The limit read from the file.
        max: usize,
    },
    /// A message slot larger than `/proc/sys/fs/mqueue/msgsize_max` bytes.
    #[error("a POSIX queue message has at most {max} bytes (/proc/sys/fs/mqueue/msgsize_max)")]
    MqMsgsizeMax {
        /// The limit read from the file.
        max: usize,
    },
    /// More POSIX queues than `/proc/sys/fs/mqueue/queues_max` on the system
    /// (IPC namespace), ports (unlinked queues) included.
    #[error("at most {max} POSIX queues exist at once (/proc/sys/fs/mqueue/queues_max)")]
    MqQueuesMax {
        /// The limit read from the file.
        max: usize,
    },
    /// The bytes of all this user's POSIX queues would pass this process's
    /// `RLIMIT_MSGQUEUE`.
    #[error(
        "this user's POSIX queues would take more than {bytes} bytes (RLIMIT_MSGQUEUE, ulimit -q)"
    )]
    RlimitMsgqueue {
        /// The process's soft limit.
        bytes: u64,
    },
    /// This process has `RLIMIT_NOFILE` descriptors open.
    #[error("this process has {max} descriptors open, its limit (RLIMIT_NOFILE, ulimit -n)")]
    RlimitNofile {
        /// The process's soft limit.
        max: u64,
    },
    /// More descriptors in one message than Linux passes in one
    /// `SCM_RIGHTS` message (`SCM_MAX_FD`); a right takes one to three.
    #[error(
        "a message carries at most {max} descriptors (Linux's SCM_MAX_FD); a right takes one to three"
    )]
    DescriptorsPerMessage {
        /// The limit.
        max: usize,
    },
    /// The system's table of open files is full (`/proc/sys/fs/file-max`).
    #[error("the system's open file table is full (/proc/sys/fs/file-max)")]
    FileMax,
}

/// What went wrong with a send; [`SendError`] pairs it with the message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum SendErrorKind {
    /// The queue was full and the policy was to fail at once.
    #[error("destination queue is full")]
    Full,
    /// The send waited as long as allowed.
    #[error("send timed out")]
    TimedOut,
    /// The destination name is a dead name, or the port, mailbox or task died
    /// while the sender waited.
    #[error("destination is dead")]
    DestinationDead,
    /// The destination name denotes nothing, or the pid is unknown.
    #[error("invalid destination name")]
    InvalidDestination,
    /// The destination name holds no right that allows sending.
    #[error("destination name holds no send right")]
    WrongRight,
    /// The mailbox's access list does not let this task send.
    #[error("no permission to send to this mailbox")]
    NoPermission,
    /// A right carried in the message (index into `rights`, or `usize::MAX` for
    /// the reply right) cannot be taken from the sender.
    #[error("carried right {index} is invalid: {error}")]
    InvalidRight {
        /// Which right.
        index: usize,
        /// Why.
        error: IpcError,
    },
    /// A queue is at its memory ceiling.
    #[error("destination queue is over its memory limit")]
    MemoryLimit,
    /// The sending task exited while the send was in progress (its rights are gone).
    #[error("sending task has exited")]
    TaskExited,
    /// The message is larger than the backend can carry.
    #[error("message too large (limit {limit} bytes)")]
    TooLarge {
        /// The backend's limit, in body bytes.
        limit: usize,
    },
    /// The receiver closed the queue ([`Ipc::close`](crate::Ipc::close)):
    /// it takes no new messages (what is queued is still received).
    #[error("destination is closed")]
    Closed,
    /// The backend cannot send this.
    #[error("not supported by this backend: {0}")]
    Unsupported(Unsupported),
    /// A system limit was reached (OS backend: e.g. the reply queue of a
    /// call could not be created).
    #[error("limit reached: {0}")]
    Limit(Limit),
    /// The operating system refused (errno inside).
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
}

impl SendErrorKind {
    /// This kind of error around `message`: `SendErrorKind::Full.with(msg)`.
    pub fn with(self, message: Message) -> SendError {
        SendError::new(self, message)
    }
}

/// Why a send failed, with the message given back (its rights are back in
/// the sender's name space). `Debug` shows the kind and the message's id,
/// not its body.
#[derive(Clone, PartialEq, Eq)]
pub struct SendError {
    kind: SendErrorKind,
    message: Message,
}

impl SendError {
    /// An error of `kind` giving back `message`.
    pub fn new(kind: SendErrorKind, message: Message) -> SendError {
        SendError { kind, message }
    }
    /// What went wrong.
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }
    /// A look at the message without taking it.
    pub fn message(&self) -> &Message {
        &self.message
    }
    /// The message, with its rights back in the sender's name space.
    pub fn into_message(self) -> Message {
        self.message
    }
    /// The kind and the message.
    pub fn into_parts(self) -> (SendErrorKind, Message) {
        (self.kind, self.message)
    }
    /// The same error around a changed message.
    pub fn map_message(self, f: impl FnOnce(Message) -> Message) -> SendError {
        SendError {
            kind: self.kind,
            message: f(self.message),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for SendError {}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SendError::{:?}(message id {})",
            self.kind, self.message.id
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
    /// The queue was closed ([`Ipc::close`](crate::Ipc::close)) and holds
    /// nothing this receive could take, nor ever will: the end of its
    /// stream, which is not [`Empty`](ReceiveError::Empty).
    #[error("source is closed and drained")]
    Closed,
    /// A message arrived but could not be decoded (OS backend: bad frame);
    /// what was wrong with it inside.
    #[error("malformed message: {0}")]
    Malformed(MalformedFrame),
    /// The backend cannot receive this way.
    #[error("not supported by this backend: {0}")]
    Unsupported(Unsupported),
    /// A system limit was reached (e.g. creating the reply queue of a call).
    #[error("limit reached: {0}")]
    Limit(Limit),
    /// The operating system refused (errno inside).
    #[error("OS error: {}", std::io::Error::from_raw_os_error(*.0))]
    Os(i32),
}

/// Why a typed receive ([`Ipc::receive_small`](crate::Ipc::receive_small))
/// returned no [`SmallMessage`](crate::message::SmallMessage).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SmallReceiveError {
    /// The receive failed, as `receive` would have.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// A message was received (it is no longer queued) but it is not small:
    /// it carries rights, its body is longer than
    /// [`INLINE_BODY`](crate::message::INLINE_BODY), or its sender is only
    /// claimed. Here it is, whole.
    #[error("received a message that is not small (id {})", .0.id)]
    NotSmall(Box<Message>),
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
    /// A sealed record (a socket link's encrypted overlay) failed its
    /// authentication: changed on the way, or sealed with another key.
    #[error("sealed record failed authentication")]
    Forged,
    /// A sealed record out of sequence: replayed, reordered or one dropped
    /// (its counter is not the next one).
    #[error("sealed record out of sequence")]
    Replayed,
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
            IpcError::Limit(l) => ReceiveError::Limit(l),
            IpcError::Os(e) => ReceiveError::Os(e),
            IpcError::InvalidValue | IpcError::AlreadyExists | IpcError::OutOfMemory => {
                ReceiveError::InvalidValue
            }
        }
    }
}
