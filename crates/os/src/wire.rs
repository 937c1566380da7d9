//! The wire format: how one [`Message`] becomes bytes on a pipe, a FIFO or a
//! POSIX queue, version 2.
//!
//! Pipes and FIFOs carry a byte stream with no message boundaries, so every
//! message is a *frame*: a fixed 28-byte header that says how long the rest
//! is, then one 4-byte descriptor per carried right, then the body. A POSIX
//! queue keeps boundaries itself, and one queue message holds exactly one
//! frame. All integers are little-endian.
//!
//! | offset | size | field | meaning |
//! |---:|---:|---|---|
//! | 0 | 2 | magic | the bytes `'M' 'K'` (0x4D 0x4B) |
//! | 2 | 1 | version | 2 |
//! | 3 | 1 | flags | bit 0 `REPLY_WANTED`, bit 1 `ACK_WANTED`, bit 2 `IS_REPLY`, bit 3 `IS_ACK`, bit 4 `STAMPED`, bit 5 `BROKERED`, bit 6 `UNCHECKED`; bit 7 0 |
//! | 4 | 4 | id | the message id |
//! | 8 | 4 | body_len | bytes of body after the right descriptors |
//! | 12 | 2 | nrights | carried rights (0 on queues and FIFOs) |
//! | 14 | 2 | reserved | 0 |
//! | 16 | 4 | sender | the sender's OS process id, as *claimed* by the writer |
//! | 20 | 4 | token | pairs a reply or an acknowledgement with its request; 0 otherwise |
//! | 24 | 4 | check | CRC-32 (zlib's `crc32`) of bytes 0..24 followed by every byte after the header; 0 if `UNCHECKED` |
//!
//! A frame with `STAMPED` (only mkipc senders into *ports* set it) opens
//! its body bytes with the 8-byte send time, `CLOCK_MONOTONIC` in
//! nanoseconds (`body_len` counts those 8 bytes; the message's body is what
//! follows): the receiver of several ports takes the oldest message first
//! ([`split_prefixes`]). A frame with `BROKERED` (a queue frame carrying
//! rights) opens its body bytes, after the stamp if any, with the 8-byte
//! ticket its rights were deposited under with the run's broker
//! (`crate::broker`).
//!
//! The check lets a reader of a stream shared by several writers (a FIFO)
//! find its place again after bytes that are not a frame: it skips to the
//! next `MK\x02` whose frame checks (see [`crate::link`]). It is not a
//! signature: anyone who can write may write a valid frame.
//!
//! A frame with `UNCHECKED` has no check (the field is 0): only the writer
//! of a direct link's pipe or shared-memory ring sets it, where one writer,
//! the peer, puts frames whole and in order into a channel the kernel keeps
//! intact, so a check would find nothing ([`Checks`]). Every other channel
//! requires the check, and its readers refuse an unchecked frame
//! ([`FrameError::BadCheck`]): a FIFO (the check is how its reader finds
//! its place again), a POSIX queue (foreign programs read and write
//! mailboxes) and a socket link (foreign peers, other machines).
//!
//! ```
//! use mkipc_kernel::Message;
//! use mkipc_os::wire::{self, Header, HEADER_LEN};
//!
//! let frame = wire::encode(&Message::new(7, b"hi"), 4242, 0, 0, &[]);
//! assert_eq!(frame.len(), HEADER_LEN + 2);
//! assert_eq!(&frame[..3], b"MK\x02");
//! let header = Header::parse(&frame).unwrap();
//! assert_eq!((header.id, header.body_len, header.sender), (7, 2, 4242));
//! assert!(wire::decode(&frame).is_ok());
//! ```

use mkipc_kernel::error::MalformedFrame;
use mkipc_kernel::{Disposition, Message};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 28;
/// Where the header's check field is.
const CHECK_AT: usize = 24;
/// Bytes per carried-right descriptor.
pub const RIGHT_LEN: usize = 4;
/// The two magic bytes that open every frame.
pub const MAGIC: [u8; 2] = *b"MK";
/// The wire format version this crate writes and accepts.
pub const VERSION: u8 = 2;

/// The sender waits for a reply on its reply queue (the frame is a `call`).
pub const FLAG_REPLY_WANTED: u8 = 1 << 0;
/// The sender waits until a receiver has taken the message (rendezvous).
pub const FLAG_ACK_WANTED: u8 = 1 << 1;
/// This frame is the reply to the call whose token it carries.
pub const FLAG_IS_REPLY: u8 = 1 << 2;
/// This frame acknowledges the rendezvous send whose token it carries.
pub const FLAG_IS_ACK: u8 = 1 << 3;
/// The body opens with the 8-byte send time ([`STAMP_LEN`], [`split_prefixes`]).
pub const FLAG_STAMPED: u8 = 1 << 4;
/// The frame's rights were deposited with the run's broker: the body opens
/// (after the stamp, if any) with the 8-byte ticket that claims them.
pub const FLAG_BROKERED: u8 = 1 << 5;
/// The frame carries no check (its check field is 0): written only on a
/// direct link's pipe or ring, accepted only by readers that take
/// [`Checks::Optional`].
pub const FLAG_UNCHECKED: u8 = 1 << 6;
const KNOWN_FLAGS: u8 = FLAG_REPLY_WANTED
    | FLAG_ACK_WANTED
    | FLAG_IS_REPLY
    | FLAG_IS_ACK
    | FLAG_STAMPED
    | FLAG_BROKERED
    | FLAG_UNCHECKED;

/// Whether a reader takes frames without a check ([`FLAG_UNCHECKED`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Checks {
    /// Every frame must carry its check: FIFOs, POSIX queues, socket links.
    Required,
    /// A frame may say `UNCHECKED` (and then its check field must be 0):
    /// the pipe or ring of a direct link, one writer and bytes the kernel
    /// keeps whole and in order. Checked frames are still verified.
    Optional,
}
/// Bytes of a `STAMPED` frame's send time, and of a `BROKERED` frame's ticket.
pub const STAMP_LEN: usize = 8;

/// Now on `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of
/// the machine, so stamps of different senders compare.
pub fn now_stamp() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// What opens the body bytes of a queue frame, before the message's body.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Prefixes {
    /// The send time (`STAMPED`).
    pub stamp: Option<u64>,
    /// The broker ticket of the frame's rights (`BROKERED`).
    pub ticket: Option<u64>,
}

/// Splits a frame's body bytes into its prefixes and the message's body;
/// `Err(Short)` for a frame too short for the prefixes its flags announce.
///
/// ```
/// use mkipc_kernel::Message;
/// use mkipc_os::wire::{self, Prefixes};
/// let frame = wire::encode_stamped(&Message::new(1, b"hi"), 7, 0, 0, 42);
/// let f = wire::decode(&frame).unwrap();
/// let (pre, body) = wire::split_prefixes(f.header.flags, f.body).unwrap();
/// assert_eq!((pre, body), (Prefixes { stamp: Some(42), ticket: None }, &b"hi"[..]));
/// ```
pub fn split_prefixes(flags: u8, body: &[u8]) -> Result<(Prefixes, &[u8]), FrameError> {
    let mut rest = body;
    let mut take = |on: bool| -> Result<Option<u64>, FrameError> {
        if !on {
            return Ok(None);
        }
        let (word, after) = rest
            .split_first_chunk::<STAMP_LEN>()
            .ok_or(FrameError::Short)?;
        rest = after;
        Ok(Some(u64::from_le_bytes(*word)))
    };
    let stamp = take(flags & FLAG_STAMPED != 0)?;
    let ticket = take(flags & FLAG_BROKERED != 0)?;
    Ok((Prefixes { stamp, ticket }, rest))
}

/// The decoded fixed part of a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The message id.
    pub id: u32,
    /// Body bytes.
    pub body_len: u32,
    /// Carried rights.
    pub nrights: u16,
    /// The sender's OS pid.
    pub sender: u32,
    /// Reply / acknowledgement token.
    pub token: u32,
    /// The CRC-32 the frame's bytes must have ([`frame_check`]).
    pub check: u32,
}

/// Why bytes are not a valid frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// Fewer bytes than the header (or than the header says): on a stream,
    /// wait for more; for a whole frame, it is truncated.
    Short,
    /// The magic bytes are wrong: not an mkipc frame, or the stream lost sync.
    BadMagic,
    /// A version this crate does not speak.
    BadVersion(u8),
    /// Unknown flag bits or a non-zero reserved field.
    BadFlags,
    /// A right descriptor this crate does not know.
    BadRight,
    /// The check field does not match the frame's bytes.
    BadCheck,
}

impl FrameError {
    /// What was wrong, as the receive error says it ([`MalformedFrame`]).
    pub fn malformed(self) -> MalformedFrame {
        match self {
            FrameError::Short => MalformedFrame::Truncated,
            FrameError::BadMagic => MalformedFrame::Magic,
            FrameError::BadVersion(v) => MalformedFrame::Version(v),
            FrameError::BadFlags => MalformedFrame::Flags,
            FrameError::BadRight => MalformedFrame::Right,
            FrameError::BadCheck => MalformedFrame::Checksum,
        }
    }
}

/// Continues a CRC-32 (IEEE, as zlib's `crc32(bytes, crc)`) over `bytes`.
/// `crc32fast` computes it (with SIMD where the CPU has it).
///
/// ```
/// assert_eq!(mkipc_os::wire::crc32(0, b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(crc);
    h.update(bytes);
    h.finalize()
}

/// The check of a whole frame: CRC-32 of its first 24 bytes and of every
/// byte after the header (the check field itself is left out).
/// `frame` must hold at least [`HEADER_LEN`] bytes.
pub fn frame_check(frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&frame[..CHECK_AT]);
    h.update(&frame[HEADER_LEN..]);
    h.finalize()
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes (the check is verified by
    /// [`decode`], which has the whole frame). Fewer bytes are checked as far
    /// as they go: a prefix that no header starts with is an error at once,
    /// one that may still become a header is [`FrameError::Short`].
    pub fn parse(bytes: &[u8]) -> Result<Header, FrameError> {
        let n = bytes.len();
        if bytes[..n.min(2)] != MAGIC[..n.min(2)] {
            return Err(FrameError::BadMagic);
        }
        if n > 2 && bytes[2] != VERSION {
            return Err(FrameError::BadVersion(bytes[2]));
        }
        if n > 3 && bytes[3] & !KNOWN_FLAGS != 0 {
            return Err(FrameError::BadFlags);
        }
        if bytes[n.min(14)..n.min(16)].iter().any(|&b| b != 0) {
            return Err(FrameError::BadFlags);
        }
        if n < HEADER_LEN {
            return Err(FrameError::Short);
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let flags = bytes[3];
        Ok(Header {
            flags,
            id: u32_at(4),
            body_len: u32_at(8),
            nrights: u16::from_le_bytes([bytes[12], bytes[13]]),
            sender: u32_at(16),
            token: u32_at(20),
            check: u32_at(CHECK_AT),
        })
    }

    /// Writes the header into `out[..HEADER_LEN]`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&MAGIC);
        out[2] = VERSION;
        out[3] = self.flags;
        out[4..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..12].copy_from_slice(&self.body_len.to_le_bytes());
        out[12..14].copy_from_slice(&self.nrights.to_le_bytes());
        out[14..16].copy_from_slice(&[0, 0]);
        out[16..20].copy_from_slice(&self.sender.to_le_bytes());
        out[20..24].copy_from_slice(&self.token.to_le_bytes());
        out[CHECK_AT..HEADER_LEN].copy_from_slice(&self.check.to_le_bytes());
    }

    /// Bytes of the whole frame this header opens (no overflow: at most
    /// 28 + 65535 * 4 + 4 GiB).
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.nrights as usize * RIGHT_LEN + self.body_len as usize
    }
}

/// What kind of descriptor a carried right travels as (byte 1 of its descriptor).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum RightWire {
    /// A send right to a port: a write-only queue descriptor.
    Send = 1,
    /// A receive right: a read-write queue descriptor (the port moves).
    Receive = 2,
    /// A send-once right: a write-only queue descriptor usable once.
    SendOnce = 3,
    /// A mailbox: a queue descriptor opened with the holder's access.
    Mailbox = 4,
}

/// One carried right's 4-byte descriptor: disposition, kind, access bits
/// (bit 0 send, bit 1 receive; for a receive right, the number of senders-pipe
/// read ends that follow), liveness bits ([`LIVE_HOLD`], [`LIVE_WATCH`],
/// [`LIVE_SENDER`], [`LIVE_CAPACITY`], and with a receive right the
/// requests that travel with it, [`LIVE_NO_SENDERS`], [`LIVE_PORT_DESTROYED`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RightDesc {
    /// How the right arrives (a move form).
    pub disposition: Disposition,
    /// What the descriptor is.
    pub kind: RightWire,
    /// Mailbox access bits; with a receive right, how many read ends of the
    /// port's senders pipes follow (see `crate::senders`).
    pub access: u8,
    /// Which ends of the port's liveness pipe follow the queue descriptor
    /// ([`LIVE_HOLD`] first, then [`LIVE_WATCH`]), then ([`LIVE_SENDER`]) a
    /// write end of its senders pipe, then ([`LIVE_CAPACITY`]) its capacity
    /// page, then ([`LIVE_NO_SENDERS`], [`LIVE_PORT_DESTROYED`]) three
    /// descriptors for each request that travels with a receive right.
    pub liveness: u8,
}

/// Liveness bit: the write end of the port's liveness pipe follows (it
/// travels with a receive right).
pub const LIVE_HOLD: u8 = 1 << 1;
/// Liveness bit: a read end of the port's liveness pipe follows (with a send
/// or receive right).
pub const LIVE_WATCH: u8 = 1 << 0;
/// Liveness bit: a write end of the port's senders pipe follows (with a send
/// right; the receiver learns "no senders" when every write end is closed).
pub const LIVE_SENDER: u8 = 1 << 2;
/// Liveness bit: the port's capacity page (`crate::capacity`) follows, the
/// right's last descriptor (with a send, send-once or receive right to a
/// bounded port).
pub const LIVE_CAPACITY: u8 = 1 << 3;
/// Request bit, receive rights only: a no-senders request travels with the
/// right (`crate::travel`): a pipe holding its 4-byte token, a send
/// descriptor of its notify port, a read end of that port's liveness pipe.
pub const LIVE_NO_SENDERS: u8 = 1 << 4;
/// Request bit, receive rights only: a port-destroyed request travels with
/// the right, as three descriptors like [`LIVE_NO_SENDERS`]'s (after them).
pub const LIVE_PORT_DESTROYED: u8 = 1 << 5;

/// Disposition codes on the wire (Mach's `MACH_MSG_TYPE_*` numbers).
pub fn disposition_code(d: Disposition) -> u8 {
    match d {
        Disposition::MoveReceive => 16,
        Disposition::MoveSend => 17,
        Disposition::MoveSendOnce => 18,
        Disposition::CopySend => 19,
        Disposition::MakeSend => 20,
        Disposition::MakeSendOnce => 21,
    }
}

fn disposition_from(code: u8) -> Option<Disposition> {
    Some(match code {
        16 => Disposition::MoveReceive,
        17 => Disposition::MoveSend,
        18 => Disposition::MoveSendOnce,
        19 => Disposition::CopySend,
        20 => Disposition::MakeSend,
        21 => Disposition::MakeSendOnce,
        _ => return None,
    })
}

impl RightDesc {
    pub(crate) fn write(&self, out: &mut [u8]) {
        out[0] = disposition_code(self.disposition);
        out[1] = self.kind as u8;
        out[2] = self.access;
        out[3] = self.liveness;
    }
    /// How many file descriptors travel for this right: the queue's, then
    /// the liveness pipe ends its bits announce, then the senders-pipe ends
    /// (a write end with a send right, `access` read ends with a receive right),
    /// then the capacity page, then the travelling requests.
    pub fn descriptors(&self) -> usize {
        let senders = match self.kind {
            RightWire::Receive => self.access as usize,
            _ => (self.liveness & LIVE_SENDER != 0) as usize,
        };
        1 + (self.liveness & LIVE_HOLD != 0) as usize
            + (self.liveness & LIVE_WATCH != 0) as usize
            + senders
            + (self.liveness & LIVE_CAPACITY != 0) as usize
            + self.request_descriptors()
    }
    /// How many descriptors the travelling requests take (the last ones).
    pub fn request_descriptors(&self) -> usize {
        3 * ((self.liveness & LIVE_NO_SENDERS != 0) as usize
            + (self.liveness & LIVE_PORT_DESTROYED != 0) as usize)
    }
    /// How many descriptors precede the senders-pipe ends.
    pub fn liveness_descriptors(&self) -> usize {
        1 + (self.liveness & LIVE_HOLD != 0) as usize + (self.liveness & LIVE_WATCH != 0) as usize
    }
    /// Parses a 4-byte descriptor ([`FrameError::Short`] if fewer bytes).
    pub fn parse(b: &[u8]) -> Result<RightDesc, FrameError> {
        if b.len() < RIGHT_LEN {
            return Err(FrameError::Short);
        }
        let disposition = disposition_from(b[0]).ok_or(FrameError::BadRight)?;
        let kind = match b[1] {
            1 => RightWire::Send,
            2 => RightWire::Receive,
            3 => RightWire::SendOnce,
            4 => RightWire::Mailbox,
            _ => return Err(FrameError::BadRight),
        };
        if b[3]
            & !(LIVE_HOLD
                | LIVE_WATCH
                | LIVE_SENDER
                | LIVE_CAPACITY
                | LIVE_NO_SENDERS
                | LIVE_PORT_DESTROYED)
            != 0
        {
            return Err(FrameError::BadRight);
        }
        // Requests travel only with a receive right.
        if kind != RightWire::Receive && b[3] & (LIVE_NO_SENDERS | LIVE_PORT_DESTROYED) != 0 {
            return Err(FrameError::BadRight);
        }
        // A receive right counts its senders read ends in `access` instead.
        if kind == RightWire::Receive && b[3] & LIVE_SENDER != 0 {
            return Err(FrameError::BadRight);
        }
        Ok(RightDesc {
            disposition,
            kind,
            access: b[2],
            liveness: b[3],
        })
    }
}

/// Encodes `msg` as one frame: header, right descriptors, body.
pub fn encode(msg: &Message, sender: u32, flags: u8, token: u32, rights: &[RightDesc]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + rights.len() * RIGHT_LEN + msg.body.len());
    encode_into(&mut out, msg.id, &msg.body, sender, flags, token, rights);
    out
}

/// Encodes `msg` as one `STAMPED` frame sent at `stamp`.
pub fn encode_stamped(msg: &Message, sender: u32, flags: u8, token: u32, stamp: u64) -> Vec<u8> {
    encode_queue(
        msg,
        sender,
        flags,
        token,
        Prefixes {
            stamp: Some(stamp),
            ticket: None,
        },
        &[],
    )
}

/// Encodes `msg` as one queue frame with these prefixes (their flags set)
/// and right descriptors (a `BROKERED` frame's).
pub fn encode_queue(
    msg: &Message,
    sender: u32,
    flags: u8,
    token: u32,
    pre: Prefixes,
    rights: &[RightDesc],
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_queue_into(&mut out, msg, sender, flags, token, pre, rights);
    out
}

/// [`encode_queue`] appended to `out` (no allocation when `out` has room).
pub fn encode_queue_into(
    out: &mut Vec<u8>,
    msg: &Message,
    sender: u32,
    flags: u8,
    token: u32,
    pre: Prefixes,
    rights: &[RightDesc],
) {
    let flags = flags
        | if pre.stamp.is_some() { FLAG_STAMPED } else { 0 }
        | if pre.ticket.is_some() {
            FLAG_BROKERED
        } else {
            0
        };
    let words = pre.stamp.into_iter().chain(pre.ticket);
    let body_len = words.clone().count() * STAMP_LEN + msg.body.len();
    let start = out.len();
    let rights_end = start + HEADER_LEN + rights.len() * RIGHT_LEN;
    out.reserve(rights_end + body_len - start);
    out.resize(rights_end, 0);
    let header = Header {
        flags,
        id: msg.id,
        body_len: body_len as u32,
        nrights: rights.len() as u16,
        sender,
        token,
        check: 0,
    };
    header.write(&mut out[start..]);
    for (i, r) in rights.iter().enumerate() {
        let at = start + HEADER_LEN + i * RIGHT_LEN;
        r.write(&mut out[at..at + RIGHT_LEN]);
    }
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&msg.body);
    if flags & FLAG_UNCHECKED == 0 {
        let check = frame_check(&out[start..]);
        out[start + CHECK_AT..start + HEADER_LEN].copy_from_slice(&check.to_le_bytes());
    }
}

/// Appends one frame to `out` (no allocation when `out` has room).
pub fn encode_into(
    out: &mut Vec<u8>,
    id: u32,
    body: &[u8],
    sender: u32,
    flags: u8,
    token: u32,
    rights: &[RightDesc],
) {
    let start = out.len();
    out.resize(start + HEADER_LEN + rights.len() * RIGHT_LEN, 0);
    let header = Header {
        flags,
        id,
        body_len: body.len() as u32,
        nrights: rights.len() as u16,
        sender,
        token,
        check: 0,
    };
    header.write(&mut out[start..]);
    for (i, r) in rights.iter().enumerate() {
        let at = start + HEADER_LEN + i * RIGHT_LEN;
        r.write(&mut out[at..at + RIGHT_LEN]);
    }
    out.extend_from_slice(body);
    if flags & FLAG_UNCHECKED == 0 {
        let check = frame_check(&out[start..]);
        out[start + CHECK_AT..start + HEADER_LEN].copy_from_slice(&check.to_le_bytes());
    }
}

/// The header of a frame with no rights around `body`, its check computed
/// over `body` (none with [`FLAG_UNCHECKED`]): written before `body`, the
/// two are the frame [`encode_into`] would make, without copying the body.
///
/// ```
/// use mkipc_kernel::Message;
/// let head = mkipc_os::wire::head(7, b"hi", 4242, 0, 0);
/// let whole = mkipc_os::wire::encode(&Message::new(7, b"hi"), 4242, 0, 0, &[]);
/// assert_eq!([&head[..], b"hi"].concat(), whole);
/// ```
pub fn head(id: u32, body: &[u8], sender: u32, flags: u8, token: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let mut header = Header {
        flags,
        id,
        body_len: body.len() as u32,
        nrights: 0,
        sender,
        token,
        check: 0,
    };
    header.write(&mut out);
    if flags & FLAG_UNCHECKED == 0 {
        let mut h = crc32fast::Hasher::new();
        h.update(&out[..CHECK_AT]);
        h.update(body);
        header.check = h.finalize();
        out[CHECK_AT..HEADER_LEN].copy_from_slice(&header.check.to_le_bytes());
    }
    out
}

thread_local! {
    /// The buffer [`Scratch`] lends out, one per thread.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's scratch buffer for encoding one frame, empty: no
/// allocation per message once it has grown. Given back, with its capacity,
/// when dropped; taken out meanwhile, so a nested one (a send that sends)
/// gets a buffer of its own.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    /// Borrows this thread's buffer, emptied.
    pub(crate) fn take() -> Scratch {
        let mut buf = SCRATCH.take();
        buf.clear();
        Scratch(buf)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        SCRATCH.set(std::mem::take(&mut self.0));
    }
}

/// Encodes one frame into this thread's [`Scratch`] buffer and hands it to `f`.
pub(crate) fn with_frame<R>(
    id: u32,
    body: &[u8],
    sender: u32,
    flags: u8,
    token: u32,
    rights: &[RightDesc],
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    let mut buf = Scratch::take();
    encode_into(&mut buf, id, body, sender, flags, token, rights);
    f(&buf)
}

/// A decoded frame: header, right descriptors and the body bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame<'a> {
    /// The header.
    pub header: Header,
    /// The carried rights' descriptors.
    pub rights: Vec<RightDesc>,
    /// The body.
    pub body: &'a [u8],
}

/// Decodes one complete frame (exactly `bytes`, as a queue message is):
/// header, length, check, then the right descriptors. The check is
/// required: an `UNCHECKED` frame is [`FrameError::BadCheck`] (see
/// [`decode_with`]).
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    decode_with(bytes, Checks::Required)
}

/// [`decode`] for a reader that may take frames without a check
/// ([`Checks::Optional`]: a direct link's pipe or ring). An unchecked frame
/// must have 0 in its check field; a checked one is verified as always.
///
/// ```
/// use mkipc_kernel::Message;
/// use mkipc_os::wire::{self, Checks, FrameError, FLAG_UNCHECKED};
/// let frame = wire::encode(&Message::new(7, b"hi"), 4242, FLAG_UNCHECKED, 0, &[]);
/// assert_eq!(&frame[24..28], &[0, 0, 0, 0]);
/// assert_eq!(wire::decode_with(&frame, Checks::Optional).unwrap().body, b"hi");
/// assert_eq!(wire::decode(&frame), Err(FrameError::BadCheck));
/// ```
pub fn decode_with(bytes: &[u8], checks: Checks) -> Result<Frame<'_>, FrameError> {
    let header = Header::parse(bytes)?;
    if bytes.len() != header.frame_len() {
        return Err(FrameError::Short);
    }
    let checked = if header.flags & FLAG_UNCHECKED == 0 {
        frame_check(bytes) == header.check
    } else {
        checks == Checks::Optional && header.check == 0
    };
    if !checked {
        return Err(FrameError::BadCheck);
    }
    let rights_end = HEADER_LEN + header.nrights as usize * RIGHT_LEN;
    let rights = bytes[HEADER_LEN..rights_end]
        .chunks_exact(RIGHT_LEN)
        .map(RightDesc::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Frame {
        header,
        rights,
        body: &bytes[rights_end..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bytewise table CRC-32 the wire format was first written with:
    /// the reference `crc32` must agree with.
    fn reference_crc32(crc: u32, bytes: &[u8]) -> u32 {
        const TABLE: [u32; 256] = {
            let mut table = [0u32; 256];
            let mut i = 0;
            while i < 256 {
                let mut c = i as u32;
                let mut k = 0;
                while k < 8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                    k += 1;
                }
                table[i] = c;
                i += 1;
            }
            table
        };
        let mut c = !crc;
        for &b in bytes {
            c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        !c
    }

    proptest! {
        #[test]
        fn crc32_is_the_reference_crc(
            init in any::<u32>(),
            a in proptest::collection::vec(any::<u8>(), 0..3000),
            b in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            prop_assert_eq!(crc32(init, &a), reference_crc32(init, &a));
            // Continuation, as the frame check uses it.
            prop_assert_eq!(crc32(crc32(init, &a), &b), reference_crc32(reference_crc32(init, &a), &b));
            let mut frame = a.clone();
            frame.resize(frame.len().max(HEADER_LEN), 7);
            prop_assert_eq!(
                frame_check(&frame),
                reference_crc32(reference_crc32(0, &frame[..CHECK_AT]), &frame[HEADER_LEN..])
            );
        }

        #[test]
        fn a_head_and_its_body_are_the_encoded_frame(
            id in any::<u32>(),
            sender in any::<u32>(),
            flags in 0u8..(1 << 7),
            token in any::<u32>(),
            body in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut whole = Vec::new();
            encode_into(&mut whole, id, &body, sender, flags, token, &[]);
            let h = head(id, &body, sender, flags, token);
            prop_assert_eq!([&h[..], &body[..]].concat(), whole);
        }
    }

    proptest! {
        #[test]
        fn an_unchecked_frame_is_taken_only_where_checks_are_optional(
            id in any::<u32>(),
            sender in any::<u32>(),
            flags in 0u8..(1 << 6),
            body in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let unchecked = flags | FLAG_UNCHECKED;
            let mut frame = Vec::new();
            encode_into(&mut frame, id, &body, sender, unchecked, 3, &[]);
            prop_assert_eq!(&frame[CHECK_AT..HEADER_LEN], &[0u8; 4][..]);
            let h = head(id, &body, sender, unchecked, 3);
            prop_assert_eq!([&h[..], &body[..]].concat(), frame.clone());
            let f = decode_with(&frame, Checks::Optional).unwrap();
            prop_assert_eq!((f.header.id, f.header.flags, f.header.sender), (id, unchecked, sender));
            prop_assert_eq!(f.body, &body[..]);
            prop_assert_eq!(decode(&frame), Err(FrameError::BadCheck));
            // An unchecked frame has one encoding: a check field of 0.
            let mut bad = frame.clone();
            bad[CHECK_AT] = 1;
            prop_assert_eq!(decode_with(&bad, Checks::Optional), Err(FrameError::BadCheck));
            // A checked frame is verified by every reader, optional or not.
            let mut checked = Vec::new();
            encode_into(&mut checked, id, &body, sender, flags, 3, &[]);
            prop_assert!(decode_with(&checked, Checks::Optional).is_ok());
            if let Some(last) = checked.last_mut() {
                *last ^= 1;
                prop_assert_eq!(decode_with(&checked, Checks::Optional), Err(FrameError::BadCheck));
            }
        }
    }

    #[test]
    fn smoke_round_trip() {
        let rights = [RightDesc {
            disposition: Disposition::MoveSend,
            kind: RightWire::Send,
            access: 0,
            liveness: LIVE_WATCH,
        }];
        let bytes = encode(&Message::new(9, b"body"), 77, FLAG_REPLY_WANTED, 5, &rights);
        let f = decode(&bytes).unwrap();
        assert_eq!(
            f.header,
            Header {
                flags: FLAG_REPLY_WANTED,
                id: 9,
                body_len: 4,
                nrights: 1,
                sender: 77,
                token: 5,
                check: frame_check(&bytes),
            }
        );
        assert_eq!(f.rights, rights);
        assert_eq!(f.body, b"body");
    }

    #[test]
    fn exact_bytes_of_a_small_frame() {
        let bytes = encode(&Message::new(0x0102_0304, b"\xAA"), 0x0A0B_0C0D, 0, 0, &[]);
        let mut want: Vec<u8> = vec![
            b'M', b'K', 2, 0, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0x0D, 0x0C, 0x0B, 0x0A, 0, 0, 0,
            0,
        ];
        // The check: CRC-32 of the 24 bytes above, then of the body.
        let check = crc32(crc32(0, &want), b"\xAA");
        want.extend_from_slice(&check.to_le_bytes());
        want.push(0xAA);
        assert_eq!(bytes, want);
    }

    #[test]
    fn rejects_bad_frames() {
        let good = encode(&Message::new(1, b"x"), 1, 0, 0, &[]);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad), Err(FrameError::BadMagic));
        let mut bad = good.clone();
        bad[2] = 1;
        assert_eq!(decode(&bad), Err(FrameError::BadVersion(1)));
        let mut bad = good.clone();
        bad[HEADER_LEN] ^= 1;
        assert_eq!(decode(&bad), Err(FrameError::BadCheck));
        let mut bad = good.clone();
        bad[4] ^= 1;
        assert_eq!(decode(&bad), Err(FrameError::BadCheck));
        let mut bad = good.clone();
        bad[3] = 0x80;
        assert_eq!(decode(&bad), Err(FrameError::BadFlags));
        assert_eq!(decode(&good[..good.len() - 1]), Err(FrameError::Short));
        assert_eq!(decode(&good[..10]), Err(FrameError::Short));
        assert_eq!(Header::parse(b"MX"), Err(FrameError::BadMagic));
        assert_eq!(Header::parse(b"M"), Err(FrameError::Short));
        assert_eq!(Header::parse(b""), Err(FrameError::Short));
    }

    #[test]
    fn short_right_descriptors_are_an_error_not_a_panic() {
        assert_eq!(RightDesc::parse(&[]), Err(FrameError::Short));
        assert_eq!(RightDesc::parse(&[17, 1, 0]), Err(FrameError::Short));
        assert_eq!(
            RightDesc::parse(&[17, 1, 0, 0]).map(|r| r.kind),
            Ok(RightWire::Send)
        );
        // Unknown liveness bits are refused: only one encoding per descriptor.
        assert_eq!(RightDesc::parse(&[17, 1, 0, 16]), Err(FrameError::BadRight));
        // A capacity page: the last descriptor of a port right, never a mailbox's.
        assert_eq!(
            RightDesc::parse(&[17, 1, 0, 13]).map(|r| r.descriptors()),
            Ok(4)
        );
        assert_eq!(
            RightDesc::parse(&[16, 2, 2, 11]).map(|r| (r.descriptors(), r.liveness_descriptors())),
            Ok((6, 3))
        );
        // A bounded mailbox's capacity page travels with it.
        assert_eq!(
            RightDesc::parse(&[17, 4, 1, 8]).map(|r| r.descriptors()),
            Ok(2)
        );
        assert_eq!(RightDesc::parse(&[16, 2, 0, 4]), Err(FrameError::BadRight));
        assert_eq!(
            RightDesc::parse(&[17, 1, 0, 3]).map(|r| r.descriptors()),
            Ok(3)
        );
        assert_eq!(
            RightDesc::parse(&[17, 1, 0, 5]).map(|r| r.descriptors()),
            Ok(3)
        );
        // A receive right: queue, hold, watch, then `access` senders read ends.
        assert_eq!(
            RightDesc::parse(&[16, 2, 2, 3]).map(|r| r.descriptors()),
            Ok(5)
        );
        // Travelling requests: three descriptors each, after the page, and
        // only with a receive right.
        let travelling = RightDesc::parse(&[
            16,
            2,
            1,
            3 | LIVE_CAPACITY | LIVE_NO_SENDERS | LIVE_PORT_DESTROYED,
        ]);
        assert_eq!(
            travelling.map(|r| (
                r.descriptors(),
                r.liveness_descriptors(),
                r.request_descriptors()
            )),
            Ok((1 + 2 + 1 + 1 + 6, 3, 6))
        );
        for bit in [LIVE_NO_SENDERS, LIVE_PORT_DESTROYED] {
            assert_eq!(
                RightDesc::parse(&[17, 1, 0, 1 | bit]),
                Err(FrameError::BadRight)
            );
            assert_eq!(
                RightDesc::parse(&[18, 3, 0, 1 | bit]),
                Err(FrameError::BadRight)
            );
            assert_eq!(
                RightDesc::parse(&[17, 4, 1, bit]),
                Err(FrameError::BadRight)
            );
        }
        assert_eq!(
            RightDesc::parse(&[16, 2, 0, 1 << 6]),
            Err(FrameError::BadRight)
        );
    }
}
