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
//! assert_eq!(msg.rights().len(), 1);
//! assert_eq!(msg.reply().map(|r| r.disposition), Some(Disposition::MakeSendOnce));
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};

use smallvec::SmallVec;

use crate::name::{Pid, PortName};

/// Bodies up to this many bytes are stored inline: no heap allocation per small message.
pub const INLINE_BODY: usize = 16;

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

impl Body {
    /// A body from flat storage (`len` bytes of `bytes`, `len` at most
    /// [`INLINE_BODY`]): one fixed-size move, no copy loop.
    #[inline(always)]
    pub(crate) fn from_flat(len: u32, bytes: [u8; INLINE_BODY]) -> Body {
        Body(SmallVec::from_buf_and_len(bytes, len as usize))
    }
}

/// `body` (at most [`INLINE_BODY`] bytes) in flat storage, zero past its
/// length, copied with fixed-size moves (two overlapping 8- or 4-byte
/// copies) instead of a call to `memcpy` for a variable length.
#[inline(always)]
pub(crate) fn flat_body(body: &[u8]) -> [u8; INLINE_BODY] {
    let mut b = [0; INLINE_BODY];
    let n = body.len();
    debug_assert!(n <= INLINE_BODY);
    if n >= 8 {
        b[..8].copy_from_slice(&body[..8]);
        b[n - 8..n].copy_from_slice(&body[n - 8..]);
    } else if n >= 4 {
        b[..4].copy_from_slice(&body[..4]);
        b[n - 4..n].copy_from_slice(&body[n - 4..]);
    } else {
        b[..n].copy_from_slice(body);
    }
    b
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

/// A received message small enough to travel as a plain value: no rights,
/// a body of at most [`INLINE_BODY`] bytes, a verified sender. What the
/// typed receives ([`Ipc::receive_small`](crate::Ipc::receive_small)) return:
/// on a port's lane the entry is copied straight into it, with no
/// [`Message`] built and nothing to drop.
///
/// ```
/// use mkipc_kernel::{Capacity, Ipc, Kernel};
/// let task = Kernel::new().spawn_task();
/// let port = task.port_allocate(Capacity::Bounded(4)).unwrap();
/// let to = task.make_send(port).unwrap();
/// task.send_u64(to, 7, 42).unwrap();
/// let got = task.receive_small(port).unwrap();
/// assert_eq!((got.id, got.as_u64()), (7, Some(42)));
/// assert_eq!(got.trailer().seqno, 0);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SmallMessage {
    /// What kind of message this is (as [`Message::id`]).
    pub id: u32,
    len: u32,
    bytes: [u8; INLINE_BODY],
    trailer: Trailer,
}

impl SmallMessage {
    /// A received message's parts (the kernel's lane, and the conversion).
    #[inline(always)]
    pub(crate) fn received(
        id: u32,
        body: &[u8],
        sender: Pid,
        received_on: PortName,
        seqno: u64,
    ) -> SmallMessage {
        let bytes = flat_body(body);
        SmallMessage {
            id,
            len: body.len() as u32,
            bytes,
            trailer: Trailer {
                sender,
                received_on,
                seqno,
            },
        }
    }
    /// A lane entry's parts, its body already flat (`len` bytes of
    /// `bytes`, zero past them): fixed-size moves only.
    #[inline(always)]
    pub(crate) fn from_lane(
        id: u32,
        len: u32,
        bytes: [u8; INLINE_BODY],
        sender: Pid,
        received_on: PortName,
        seqno: u64,
    ) -> SmallMessage {
        SmallMessage {
            id,
            len,
            bytes,
            trailer: Trailer {
                sender,
                received_on,
                seqno,
            },
        }
    }
    /// The small form of a received message, or the message back if it is
    /// not small (it carries rights, its body is longer than
    /// [`INLINE_BODY`], it has no trailer or its sender is only claimed).
    pub fn from_message(m: Message) -> Result<SmallMessage, Message> {
        match m.trailer() {
            Some(t)
                if !m.carries_rights() && m.body.len() <= INLINE_BODY && m.sender_verified() =>
            {
                Ok(SmallMessage::received(
                    m.id,
                    &m.body,
                    t.sender,
                    t.received_on,
                    t.seqno,
                ))
            }
            _ => Err(m),
        }
    }
    /// The bytes of the body.
    pub fn body(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    /// The body as a little-endian `u64`, if it is 8 bytes long (as
    /// [`Message::as_u64`]).
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        (self.len == 8).then(|| {
            let mut b = [0; 8];
            b.copy_from_slice(&self.bytes[..8]);
            u64::from_le_bytes(b)
        })
    }
    /// What the kernel wrote on receipt (always there, sender verified).
    pub fn trailer(&self) -> Trailer {
        self.trailer
    }
    /// The sending task.
    pub fn sender(&self) -> Pid {
        self.trailer.sender
    }
    /// The same message as a [`Message`] (what `receive` would have returned).
    pub fn into_message(self) -> Message {
        Message::new(self.id, self.body()).with_trailer(self.trailer)
    }
}

impl fmt::Debug for SmallMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmallMessage")
            .field("id", &self.id)
            .field("body", &Body::from_slice(self.body()))
            .field("trailer", &self.trailer)
            .finish()
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
///
/// The rights and the reply right live behind one box that is absent when the
/// message carries none, and the trailer is stored flat, so a rights-free
/// message is a plain block of bytes with no niche-encoded options: it moves
/// through queues and `Result`s as cheaply as a struct of integers. (Inline
/// `Vec`/`Option` fields made every move of a message several times slower:
/// measured with `cargo run --release -p mkipc-kernel --example hot_path`.)
#[derive(Clone, Default)]
pub struct Message {
    /// What kind of message this is, for the receiver (Mach's `msgh_id`).
    pub id: u32,
    /// The bytes.
    pub body: Body,
    /// The trailer's fields; `sender == NO_TRAILER` when there is none.
    trailer: RawTrailer,
    /// Carried rights and reply right; `None` when there are none.
    extra: Option<Box<Extra>>,
}

/// A trailer stored without an `Option`: see [`Message`].
#[derive(Clone, Copy, Debug)]
struct RawTrailer {
    sender: u32,
    received_on: PortName,
    seqno: u64,
}

const NO_TRAILER: u32 = u32::MAX;

/// The top bit of `RawTrailer::seqno`: the sender is only *claimed* (see
/// [`Message::sender_verified`]). Kept inside the seqno so the flag costs no
/// space in every message (a queue never counts to 2^63).
const CLAIMED: u64 = 1 << 63;

impl Default for RawTrailer {
    fn default() -> Self {
        RawTrailer {
            sender: NO_TRAILER,
            received_on: PortName::NULL,
            seqno: 0,
        }
    }
}

#[derive(Clone, Default, Debug)]
struct Extra {
    rights: Vec<CarriedRight>,
    reply: Option<CarriedRight>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.id == other.id
            && self.body == other.body
            && self.rights() == other.rights()
            && self.reply() == other.reply()
            && self.trailer() == other.trailer()
    }
}
impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        d.field("id", &self.id).field("body", &self.body);
        if !self.rights().is_empty() {
            d.field("rights", &self.rights());
        }
        if let Some(reply) = self.reply() {
            d.field("reply", &reply);
        }
        if let Some(trailer) = self.trailer() {
            d.field("trailer", &trailer);
            if !self.sender_verified() {
                d.field("sender_verified", &false);
            }
        }
        d.finish()
    }
}

impl Message {
    /// A message with an id and a body, carrying no rights.
    pub fn new(id: u32, body: impl Into<Body>) -> Message {
        Message {
            id,
            body: body.into(),
            trailer: RawTrailer::default(),
            extra: None,
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
        self.rights_mut().push(CarriedRight { name, disposition });
        self
    }
    /// Sets the reply right.
    pub fn with_reply(mut self, name: PortName, disposition: Disposition) -> Message {
        self.set_reply(Some(CarriedRight { name, disposition }));
        self
    }
    /// The rights carried in the message, in order. In a received message,
    /// the names are the receiver's.
    pub fn rights(&self) -> &[CarriedRight] {
        self.extra.as_ref().map_or(&[], |e| &e.rights)
    }
    /// The carried rights, to add, change or remove some.
    pub fn rights_mut(&mut self) -> &mut Vec<CarriedRight> {
        &mut self.extra.get_or_insert_with(Default::default).rights
    }
    /// Takes the carried rights out of the message.
    pub fn take_rights(&mut self) -> Vec<CarriedRight> {
        self.extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.rights))
            .unwrap_or_default()
    }
    /// The right the receiver should reply to, if any (usually sent as
    /// `MakeSendOnce`, received as `MoveSendOnce`).
    pub fn reply(&self) -> Option<CarriedRight> {
        self.extra.as_ref().and_then(|e| e.reply)
    }
    /// Sets (or clears) the reply right.
    pub fn set_reply(&mut self, reply: Option<CarriedRight>) {
        match (reply, &mut self.extra) {
            (None, None) => {}
            (reply, extra) => extra.get_or_insert_with(Default::default).reply = reply,
        }
    }
    /// Takes the reply right out of the message.
    pub fn take_reply(&mut self) -> Option<CarriedRight> {
        self.extra.as_mut().and_then(|e| e.reply.take())
    }
    /// Replaces the carried rights and the reply right at once; keeps the box
    /// absent when there are none.
    pub(crate) fn set_carried(&mut self, rights: Vec<CarriedRight>, reply: Option<CarriedRight>) {
        self.extra =
            (!rights.is_empty() || reply.is_some()).then(|| Box::new(Extra { rights, reply }));
    }
    /// Whether the message carries any right (carried rights or a reply right).
    #[inline]
    pub fn carries_rights(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| !e.rights.is_empty() || e.reply.is_some())
    }
    /// What the kernel wrote on receipt; `None` on a message not yet received.
    pub fn trailer(&self) -> Option<Trailer> {
        (self.trailer.sender != NO_TRAILER).then_some(Trailer {
            sender: Pid(self.trailer.sender),
            received_on: self.trailer.received_on,
            seqno: self.trailer.seqno & !CLAIMED,
        })
    }
    /// Whether the trailer's sender is vouched for by the backend: always on
    /// the kernel and the simulator (the kernel writes it), and on the OS
    /// backend's direct links (the link's peer). `false` when the sender is
    /// only what the message itself claims (a frame from a POSIX queue or a
    /// FIFO, which anyone with write access may write), and on a message
    /// not yet received. Only verified senders make a
    /// [`Notification`](Notification::decode).
    pub fn sender_verified(&self) -> bool {
        self.trailer.sender != NO_TRAILER && self.trailer.seqno & CLAIMED == 0
    }
    /// Marks the trailer's sender as claimed, not verified (a backend calls
    /// this after [`set_trailer`](Message::set_trailer) when the OS cannot
    /// vouch for the sender). [`Message::sender`] still gives the claimed pid.
    pub fn mark_sender_claimed(&mut self) {
        if self.trailer.sender != NO_TRAILER {
            self.trailer.seqno |= CLAIMED;
        }
    }
    /// Sets the trailer (its sender verified). Backends call this on receipt;
    /// a sender's trailer is ignored (the kernel writes its own), so it cannot
    /// be forged.
    pub fn set_trailer(&mut self, trailer: Option<Trailer>) {
        self.trailer = match trailer {
            // A pid of u32::MAX cannot exist (pids index the task table).
            Some(t) if t.sender.0 != NO_TRAILER => RawTrailer {
                sender: t.sender.0,
                received_on: t.received_on,
                seqno: t.seqno & !CLAIMED,
            },
            _ => RawTrailer::default(),
        };
    }
    /// A message the kernel delivers, carrying no rights, with its trailer
    /// (no checks: the kernel's own pids are never `u32::MAX`).
    #[inline(always)]
    pub(crate) fn received(
        id: u32,
        body: Body,
        sender: Pid,
        received_on: PortName,
        seqno: u64,
    ) -> Message {
        Message {
            id,
            body,
            trailer: RawTrailer {
                sender: sender.0,
                received_on,
                seqno,
            },
            extra: None,
        }
    }
    /// Exchanges what two received messages say (id, body, sender, sequence
    /// number, carried rights) while each keeps the name it was received
    /// on: the kernel's group hand-off moves plain messages between waiters
    /// (`Locked::take_handed`).
    pub(crate) fn exchange_keeping_received_on(&mut self, other: &mut Message) {
        std::mem::swap(self, other);
        std::mem::swap(
            &mut self.trailer.received_on,
            &mut other.trailer.received_on,
        );
    }
    /// Sets the name a received message was received on.
    pub(crate) fn set_received_on(&mut self, name: PortName) {
        self.trailer.received_on = name;
    }
    /// The same message with this trailer (see [`Message::set_trailer`]).
    pub fn with_trailer(mut self, trailer: Trailer) -> Message {
        self.set_trailer(Some(trailer));
        self
    }
    /// The sending task, on a received message.
    pub fn sender(&self) -> Option<Pid> {
        self.trailer().map(|t| t.sender)
    }
    /// The name the message was received on, on a received message.
    pub fn received_on(&self) -> Option<PortName> {
        self.trailer().map(|t| t.received_on)
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
    /// When the full port or mailbox a send right (or mailbox name) names
    /// has room for a message (Mach's `MACH_SEND_NOTIFY`): one notification,
    /// at once if it has room already. If the port or mailbox dies first, a
    /// dead-name notification comes instead.
    SendPossible,
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
    /// The port or mailbox the name (in the requester's space) denotes had
    /// room for a message when this was sent ([`NotifyKind::SendPossible`]).
    /// A hint, as in Mach: another sender may fill the room first, so the
    /// send that follows can still find the queue full.
    SendPossible(PortName),
}

impl Notification {
    /// Message id of a send-possible notification (Mach's `MACH_NOTIFY_SEND_POSSIBLE`).
    pub const SEND_POSSIBLE_ID: u32 = 0o102;
    /// Message id of a port-destroyed notification (Mach's `MACH_NOTIFY_PORT_DESTROYED`).
    pub const PORT_DESTROYED_ID: u32 = 0o105;
    /// Message id of a no-senders notification.
    pub const NO_SENDERS_ID: u32 = 0o106;
    /// Message id of a send-once notification.
    pub const SEND_ONCE_ID: u32 = 0o107;
    /// Message id of a dead-name notification.
    pub const DEAD_NAME_ID: u32 = 0o110;

    /// Decodes a received message as a notification. Only messages the kernel
    /// sent (sender `Pid(0)`, verified: [`Message::sender_verified`]) decode,
    /// so a task cannot forge one.
    pub fn decode(msg: &Message) -> Option<Notification> {
        if msg.sender() != Some(Pid::KERNEL) || !msg.sender_verified() {
            return None;
        }
        let name = || msg.as_u64().map(PortName::from_raw);
        match msg.id {
            Self::DEAD_NAME_ID => name().map(Notification::DeadName),
            Self::NO_SENDERS_ID => name().map(Notification::NoSenders),
            Self::PORT_DESTROYED_ID => msg
                .rights()
                .first()
                .map(|r| Notification::PortDestroyed(r.name)),
            Self::SEND_ONCE_ID => Some(Notification::SendOnce),
            Self::SEND_POSSIBLE_ID => name().map(Notification::SendPossible),
            _ => None,
        }
    }
}

impl Pid {
    /// The kernel's own pid, the sender of notifications.
    pub const KERNEL: Pid = Pid(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(sender: Pid, seqno: u64) -> Message {
        Message::new(Notification::SEND_ONCE_ID, Body::new()).with_trailer(Trailer {
            sender,
            received_on: PortName::NULL,
            seqno,
        })
    }

    #[test]
    fn a_claimed_sender_keeps_its_pid_and_seqno_but_makes_no_notification() {
        let mut m = from(Pid::KERNEL, 41);
        assert!(m.sender_verified());
        assert_eq!(m.notification(), Some(Notification::SendOnce));
        m.mark_sender_claimed();
        assert!(!m.sender_verified());
        assert_eq!(
            (m.sender(), m.trailer().unwrap().seqno),
            (Some(Pid::KERNEL), 41)
        );
        assert_eq!(m.notification(), None);
        // A fresh trailer is verified again; no trailer is never verified.
        m.set_trailer(Some(Trailer {
            sender: Pid(3),
            received_on: PortName::NULL,
            seqno: 1,
        }));
        assert!(m.sender_verified());
        let mut unsent = Message::new(1, Body::new());
        unsent.mark_sender_claimed();
        assert!(!unsent.sender_verified() && unsent.trailer().is_none());
    }
}
