//! Messages: an id, a byte body, and port rights carried with a disposition.
//!
//! A message is what one task hands the kernel and another task gets back. The
//! rights it carries leave the sender's name space when the send starts (or are
//! copied, per [`Disposition`]) and appear under *new names* in the receiver's
//! name space, because names are local to a task. If the send fails, the
//! message comes back in the error with its rights back in the sender's space.
//!
//! ```
//! use mkipc_kernel::{Disposition, Message, PortName};
//! let port = PortName::from_parts(1, 1);
//! let msg = Message::new(7, b"hello")
//!     .with_right(port, Disposition::CopySend)
//!     .with_reply(port, Disposition::MakeSendOnce);
//! assert_eq!(msg.id, 7);
//! assert_eq!(&msg.body[..], b"hello");
//! assert_eq!(msg.rights.len(), 1);
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};

use smallvec::SmallVec;

use crate::name::{Pid, PortName};

/// Bodies up to this many bytes are stored inline: no heap allocation per small message.
pub const INLINE_BODY: usize = 32;

/// A message body: bytes, stored inline when small.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Body(SmallVec<[u8; INLINE_BODY]>);

impl Body {
    /// An empty body.
    pub fn new() -> Body {
        Body(SmallVec::new())
    }
    /// Copies the bytes into a body.
    pub fn from_slice(bytes: &[u8]) -> Body {
        Body(SmallVec::from_slice(bytes))
    }
    /// The bytes as a `Vec`.
    pub fn into_vec(self) -> Vec<u8> {
        self.0.into_vec()
    }
}

impl Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}
impl DerefMut for Body {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}
impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        if v.len() <= INLINE_BODY {
            Body::from_slice(&v)
        } else {
            Body(SmallVec::from_vec(v))
        }
    }
}
impl From<&[u8]> for Body {
    fn from(v: &[u8]) -> Body {
        Body::from_slice(v)
    }
}
impl<const N: usize> From<&[u8; N]> for Body {
    fn from(v: &[u8; N]) -> Body {
        Body::from_slice(v)
    }
}
impl From<&str> for Body {
    fn from(v: &str) -> Body {
        Body::from_slice(v.as_bytes())
    }
}
impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if self.0.len() <= 64 => write!(f, "{s:?}"),
            _ => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

/// How a right named in an outgoing message is taken from the sender
/// (Mach's `MACH_MSG_TYPE_*`), and, in a received message, what arrived.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Disposition {
    /// Move the receive right (and the queue with its messages) to the receiver.
    MoveReceive,
    /// Move one user reference of a send right.
    MoveSend,
    /// Copy a send right: the sender keeps its reference, a new one travels.
    CopySend,
    /// Make a new send right from a receive right the sender holds.
    MakeSend,
    /// Make a new send-once right from a receive right the sender holds.
    MakeSendOnce,
    /// Move a send-once right.
    MoveSendOnce,
}

impl Disposition {
    /// The disposition a right carried this way has on arrival (always a move form).
    pub const fn received_as(self) -> Disposition {
        match self {
            Disposition::MoveReceive => Disposition::MoveReceive,
            Disposition::MoveSend | Disposition::CopySend | Disposition::MakeSend => {
                Disposition::MoveSend
            }
            Disposition::MakeSendOnce | Disposition::MoveSendOnce => Disposition::MoveSendOnce,
        }
    }
}

/// A right carried in a message: a name in the current holder's space and how
/// it travels. In a received message the name is the receiver's new name
/// ([`PortName::DEAD`] when the port died on the way) and the disposition is
/// the move form of what arrived.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CarriedRight {
    /// The name of the right.
    pub name: PortName,
    /// How it travels, or what it arrived as.
    pub disposition: Disposition,
}

/// What the kernel writes into a received message (Mach's trailer): facts the
/// sender cannot forge.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Trailer {
    /// The task that sent it ([`Pid`] of the kernel itself for notifications: `Pid(0)`).
    pub sender: Pid,
    /// The name it was received on (the member port for a port set, the
    /// mailbox name, or `NULL` for a direct link).
    pub received_on: PortName,
    /// The queue's sequence number for this message (0, 1, 2, ... per queue).
    pub seqno: u64,
}

/// A message: an id, a body, carried rights and an optional reply right.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Message {
    /// What kind of message this is, for the receiver (Mach's `msgh_id`).
    pub id: u32,
    /// The bytes.
    pub body: Body,
    /// Rights carried in the message.
    pub rights: Vec<CarriedRight>,
    /// The right the receiver should reply to, if any (usually `MakeSendOnce`).
    pub reply: Option<CarriedRight>,
    /// Set by the kernel on receipt; ignored on send.
    pub trailer: Option<Trailer>,
}

impl Message {
    /// A message with an id and a body, carrying no rights.
    pub fn new(id: u32, body: impl Into<Body>) -> Message {
        Message {
            id,
            body: body.into(),
            rights: Vec::new(),
            reply: None,
            trailer: None,
        }
    }
    /// A message whose body is the little-endian bytes of `value` (handy in examples).
    pub fn from_u64(id: u32, value: u64) -> Message {
        Message::new(id, &value.to_le_bytes())
    }
    /// Reads the body back as a little-endian `u64`, if it is 8 bytes long.
    pub fn as_u64(&self) -> Option<u64> {
        let bytes: [u8; 8] = self.body[..].try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }
    /// Adds a carried right.
    pub fn with_right(mut self, name: PortName, disposition: Disposition) -> Message {
        self.rights.push(CarriedRight { name, disposition });
        self
    }
    /// Sets the reply right.
    pub fn with_reply(mut self, name: PortName, disposition: Disposition) -> Message {
        self.reply = Some(CarriedRight { name, disposition });
        self
    }
    /// The sending task, on a received message.
    pub fn sender(&self) -> Option<Pid> {
        self.trailer.map(|t| t.sender)
    }
    /// The name the message was received on, on a received message.
    pub fn received_on(&self) -> Option<PortName> {
        self.trailer.map(|t| t.received_on)
    }
    /// Decodes a kernel notification, if this message is one.
    pub fn notification(&self) -> Option<Notification> {
        Notification::decode(self)
    }
}

/// The kinds of notification a task can ask for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NotifyKind {
    /// When the port a send or send-once right names dies, the name became dead.
    DeadName,
    /// When the last send right to a port whose receive right you hold goes away.
    NoSenders,
    /// When your receive right would be destroyed: it is sent to you instead.
    PortDestroyed,
}

/// A notification message, decoded (Mach's `mach_notify_*` messages).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Notification {
    /// The named right became a dead name (the name is in the requester's space).
    DeadName(PortName),
    /// No send rights remain for the port (the name of the receive right).
    NoSenders(PortName),
    /// A receive right that was about to be destroyed; it arrived as the message's first right.
    PortDestroyed(PortName),
    /// A send-once right was destroyed without being used (e.g. a server died
    /// without replying).
    SendOnce,
}

impl Notification {
    /// Message id of a port-destroyed notification (Mach's `MACH_NOTIFY_PORT_DESTROYED`).
    pub const PORT_DESTROYED_ID: u32 = 0o105;
    /// Message id of a no-senders notification.
    pub const NO_SENDERS_ID: u32 = 0o106;
    /// Message id of a send-once notification.
    pub const SEND_ONCE_ID: u32 = 0o107;
    /// Message id of a dead-name notification.
    pub const DEAD_NAME_ID: u32 = 0o110;

    /// Decodes a received message as a notification. Only messages the kernel
    /// sent (sender `Pid(0)`) decode, so a task cannot forge one.
    pub fn decode(msg: &Message) -> Option<Notification> {
        if msg.sender() != Some(Pid::KERNEL) {
            return None;
        }
        let name = || msg.as_u64().map(PortName::from_raw);
        match msg.id {
            Self::DEAD_NAME_ID => name().map(Notification::DeadName),
            Self::NO_SENDERS_ID => name().map(Notification::NoSenders),
            Self::PORT_DESTROYED_ID => msg
                .rights
                .first()
                .map(|r| Notification::PortDestroyed(r.name)),
            Self::SEND_ONCE_ID => Some(Notification::SendOnce),
            _ => None,
        }
    }
}

impl Pid {
    /// The kernel's own pid, the sender of notifications.
    pub const KERNEL: Pid = Pid(0);
}
