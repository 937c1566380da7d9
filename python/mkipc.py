"""Speak mkipc's wire format, version 2, from Python (standard library only).

This module lets a program that is not built with mkipc take part in an
mkipc run on Linux: send to and receive from the run's mailboxes (POSIX
queues, through ``ctypes``), FIFOs, and any pipe or FIFO given as a file
descriptor, and socket links (Unix-domain and TCP streams, ``SocketLink``)
with any mkipc process, on this machine or another. Everything here follows
DESIGN.md, sections "Wire format, version 2", "Socket links" and "Joining a
run from another program"; nothing depends on mkipc's Rust code.

Not here: the socket links' encrypted overlay. It needs ChaCha20-Poly1305
and HKDF-SHA-256; Python's standard library has neither (``hashlib`` has
SHA-256 and ``hmac`` HKDF's pieces, but no AEAD cipher), and this module
uses nothing else. A sealed peer is refused at the handshake
(``HandshakeError``, "sealed").

Trust: every sender this module reads from a queue or FIFO is *claimed* (the
frame's ``sender`` field, which any writer may set); every sender it writes is
its own pid, which the mkipc receiver also reports as claimed
(``Message::sender_verified() == false``).

Example, a process started with ``MKIPC_RUN_ID`` in its environment::

    import mkipc
    box = mkipc.Mailbox.open("jobs")          # /mkipc-<run>-m-jobs
    box.send(7, b"hello")
    frame = box.receive(timeout=1.0)          # a Frame, or raises Timeout
    print(frame.id, frame.sender, frame.body)

Command line (used by the Rust tests, handy for poking at a run)::

    python3 mkipc.py send --mailbox NAME --id 7 --text hello
    python3 mkipc.py send --fifo NAME --id 7 --hex 6869
    python3 mkipc.py receive --mailbox NAME [--count N] [--timeout S]
    python3 mkipc.py receive --fifo NAME   (creates the FIFO, reads, removes it)
    python3 mkipc.py encode --id 7 --text hi --sender 4242
    python3 mkipc.py link --connect tcp:127.0.0.1:7000 [--id 7 --text hi] [--count N]
    python3 mkipc.py link --listen unix:/tmp/s --echo N   (prints the address first)
    python3 mkipc.py self-test
"""

import ctypes
import ctypes.util
import errno
import os
import select
import socket
import stat
import struct
import sys
import time
import zlib

__all__ = [
    "Frame", "Malformed", "Timeout", "encode", "decode", "parse_header",
    "StreamReader", "write_frame", "Queue", "Mailbox", "FifoWriter",
    "FifoReader", "run_id", "mailbox_posix_name", "reply_queue_name",
    "fifo_path", "validate_name", "SocketLink", "SocketListener",
    "HandshakeError", "parse_address",
]

# ----- the wire format ------------------------------------------------------

MAGIC = b"MK"
VERSION = 2
HEADER_LEN = 28
CHECK_AT = 24
_HEAD = struct.Struct("<2sBBIIHHII")  # bytes 0..24, the check follows

REPLY_WANTED = 0x01
ACK_WANTED = 0x02
IS_REPLY = 0x04
IS_ACK = 0x08
#: The frame has no check (its check field is 0). Only the writer of a
#: direct link's pipe or shared-memory ring sets it (one writer, bytes the
#: kernel keeps intact); readers of FIFOs, queues and socket links refuse it
#: (``Malformed("Checksum")``). See DESIGN.md, "Wire format, version 2".
UNCHECKED = 0x40
KNOWN_FLAGS = REPLY_WANTED | ACK_WANTED | IS_REPLY | IS_ACK | UNCHECKED

#: The id of the frame (sender 0) that says a server dropped a request.
SEND_ONCE_ID = 0o107
#: The id of a gone frame (sender 0, empty body): whoever destroys a
#: mailbox unlinks it, empties it and fills it with these, since
#: ``mq_unlink`` wakes nobody (``Mailbox.destroy``, DESIGN.md "Mailboxes").
GONE_ID = 0xFFFFFFF1
#: Atomic write size of a pipe or FIFO; a FIFO frame must fit in it.
PIPE_BUF = 4096
#: Longest body on a FIFO: PIPE_BUF minus the header.
FIFO_BODY_LIMIT = PIPE_BUF - HEADER_LEN
#: Longest body on a direct link (pipe).
LINK_BODY_LIMIT = 64 * 1024 * 1024
#: Most right descriptors one frame may announce (Linux's SCM_MAX_FD).
MAX_RIGHTS = 253


class Malformed(ValueError):
    """Bytes that are not a valid frame. ``what`` names the problem as
    mkipc's ``MalformedFrame`` does: Magic, Version, Flags, Checksum, Length,
    RightsCount, Right, Truncated."""

    def __init__(self, what, detail=""):
        super().__init__(f"malformed frame: {what}{': ' + detail if detail else ''}")
        self.what = what


class Timeout(Exception):
    """A receive or send found nothing (or no room) before its deadline."""


class MailboxGone(Exception):
    """The mailbox was destroyed: a gone frame came and its name is gone."""


class Frame:
    """A decoded frame. ``sender`` is the pid the writer *claims*."""

    __slots__ = ("id", "body", "sender", "flags", "token", "rights")

    def __init__(self, id, body, sender, flags=0, token=0, rights=b""):
        self.id = id
        self.body = bytes(body)
        self.sender = sender
        self.flags = flags
        self.token = token
        self.rights = bytes(rights)

    def __repr__(self):
        return (f"Frame(id={self.id}, body={self.body!r}, sender={self.sender}, "
                f"flags={self.flags:#x}, token={self.token})")

    def __eq__(self, other):
        return isinstance(other, Frame) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


def encode(msg_id, body, sender=None, flags=0, token=0, rights=b""):
    """The bytes of one frame. ``rights`` (4 bytes a right) only on a link:
    queues and FIFOs carry none, and this module passes no descriptors."""
    body = bytes(body)
    if sender is None:
        sender = os.getpid()
    if flags & ~KNOWN_FLAGS:
        raise ValueError(f"unknown flags {flags:#x}")
    if len(rights) % 4 or len(rights) // 4 > MAX_RIGHTS:
        raise ValueError("rights: at most 253 descriptors of 4 bytes")
    head = _HEAD.pack(MAGIC, VERSION, flags, msg_id & 0xFFFFFFFF, len(body),
                      len(rights) // 4, 0, sender & 0xFFFFFFFF, token & 0xFFFFFFFF)
    if flags & UNCHECKED:
        check = 0
    else:
        check = zlib.crc32(body, zlib.crc32(rights, zlib.crc32(head)))
    return head + struct.pack("<I", check) + rights + body


def parse_header(buf, max_body=LINK_BODY_LIMIT, allow_rights=True):
    """Checks the 28-byte header at the start of ``buf``. Returns
    ``(flags, id, body_len, nrights, sender, token, check)``; raises
    ``Malformed`` (``Truncated`` if fewer than 28 bytes may still become one)."""
    n = len(buf)
    if n >= 1 and buf[0:1] != MAGIC[:1] or n >= 2 and bytes(buf[:2]) != MAGIC:
        raise Malformed("Magic")
    if n >= 3 and buf[2] != VERSION:
        raise Malformed("Version", str(buf[2]))
    if n >= 4 and buf[3] & ~KNOWN_FLAGS:
        raise Malformed("Flags")
    if n >= 16 and bytes(buf[14:16]) != b"\0\0":
        raise Malformed("Flags", "reserved bytes")
    if n < HEADER_LEN:
        raise Malformed("Truncated")
    _, _, flags, msg_id, body_len, nrights, _, sender, token = _HEAD.unpack_from(buf)
    (check,) = struct.unpack_from("<I", buf, CHECK_AT)
    if body_len > max_body:
        raise Malformed("Length", f"{body_len} > {max_body}")
    if nrights > (MAX_RIGHTS if allow_rights else 0):
        raise Malformed("RightsCount", str(nrights))
    return flags, msg_id, body_len, nrights, sender, token, check


def decode(buf, max_body=LINK_BODY_LIMIT, allow_rights=True, unchecked_ok=False):
    """Decodes exactly one frame (``buf`` holds nothing else). An
    ``UNCHECKED`` frame (check field 0) is taken only if ``unchecked_ok``
    (a direct link's pipe); a checked frame is always verified."""
    flags, msg_id, body_len, nrights, sender, token, check = parse_header(
        buf, max_body, allow_rights)
    want = HEADER_LEN + 4 * nrights + body_len
    if len(buf) < want:
        raise Malformed("Truncated")
    if len(buf) > want:
        raise Malformed("Length", "bytes after the frame")
    buf = bytes(buf)
    if flags & UNCHECKED:
        if not unchecked_ok or check != 0:
            raise Malformed("Checksum", "a frame without a check here")
    elif zlib.crc32(buf[HEADER_LEN:], zlib.crc32(buf[:CHECK_AT])) != check:
        raise Malformed("Checksum")
    rights = buf[HEADER_LEN:HEADER_LEN + 4 * nrights]
    return Frame(msg_id, buf[HEADER_LEN + 4 * nrights:], sender, flags, token, rights)


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def _left(deadline):
    return None if deadline is None else max(0.0, deadline - time.monotonic())


# ----- pipes and FIFOs ------------------------------------------------------

def write_frame(fd, frame):
    """Writes one frame with one ``write`` (atomic up to PIPE_BUF bytes)."""
    n = os.write(fd, frame)
    while n < len(frame):  # only over PIPE_BUF, on a pipe link
        n += os.write(fd, frame[n:])


class StreamReader:
    """Frames from a pipe or FIFO read end (a descriptor number).

    ``shared=True`` for a FIFO that several processes write: after bad bytes
    the reader reports them once (``Malformed``) and resynchronises on the
    next place a frame may start, as mkipc's reader does. On a pipe with one
    writer (``shared=False``) bad bytes end the stream. ``unchecked_ok=True``
    for a direct link's pipe, whose mkipc writer sends ``UNCHECKED`` frames
    (never with ``shared``: a FIFO's reader needs the check). End of stream
    raises ``EOFError``."""

    def __init__(self, fd, shared=False, max_body=LINK_BODY_LIMIT, unchecked_ok=False):
        if shared and unchecked_ok:
            raise ValueError("a shared stream needs every frame's check")
        self.fd = fd
        self.shared = shared
        self.unchecked_ok = unchecked_ok
        self.max_body = FIFO_BODY_LIMIT if shared else max_body
        self.buf = bytearray()
        self.eof = False
        self.drained = False
        self.broken = False

    def _complete(self):
        """A frame at the front of the buffer: its length, or None."""
        if not self.buf:
            return None
        try:
            _, _, body_len, nrights, _, _, _ = parse_header(
                self.buf, self.max_body, allow_rights=not self.shared)
        except Malformed as e:
            if e.what == "Truncated":
                return None
            raise
        want = HEADER_LEN + 4 * nrights + body_len
        return want if len(self.buf) >= want else None

    def _skip_bad(self, what):
        if not self.shared:
            self.broken = True
            self.buf.clear()
            raise Malformed(what)
        i = 1
        while i < len(self.buf):
            try:
                parse_header(self.buf[i:], self.max_body, allow_rights=False)
                break
            except Malformed as e:
                if e.what == "Truncated":
                    break
            i += 1
        del self.buf[:i]
        raise Malformed(what)

    def receive(self, timeout=None):
        """The next frame; ``timeout`` in seconds (None: wait forever)."""
        deadline = _deadline(timeout)
        while True:
            if self.broken:
                raise EOFError("stream closed after a malformed frame")
            try:
                n = self._complete()
            except Malformed as e:
                self._skip_bad(e.what)
            if n is not None:
                raw = bytes(self.buf[:n])
                try:
                    frame = decode(raw, self.max_body, allow_rights=not self.shared,
                                   unchecked_ok=self.unchecked_ok)
                except Malformed as e:
                    self._skip_bad(e.what)
                del self.buf[:n]
                return frame
            if self.shared and self.drained and self.buf:
                # A FIFO frame is written by one write: still incomplete
                # after a read that emptied the FIFO, it never will be.
                self.drained = False
                self._skip_bad("Truncated")
            if self.eof:
                if self.buf:
                    self._skip_bad("Truncated")
                raise EOFError("end of stream")
            r, _, _ = select.select([self.fd], [], [], _left(deadline))
            if not r:
                raise Timeout()
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            else:
                self.buf += chunk
                self.drained = len(chunk) < 65536


# ----- names of a run --------------------------------------------------------

MAX_NAME_LEN = 160


def validate_name(name):
    """mkipc's one name rule: 1..160 bytes of UTF-8, no '/', no control
    character, not '.' or '..'. Raises ValueError otherwise."""
    if (not name or len(name.encode()) > MAX_NAME_LEN or name in (".", "..")
            or any(c == "/" or _is_control(c) for c in name)):
        raise ValueError(f"invalid mkipc name {name!r}")
    return name


def _is_control(c):
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F


def run_id(run=None):
    """The run to join: ``run``, or ``MKIPC_RUN_ID`` from the environment."""
    run = run or os.environ.get("MKIPC_RUN_ID")
    if not run:
        raise LookupError("no run id: pass one or set MKIPC_RUN_ID")
    return validate_name(run)


def mailbox_posix_name(name, run=None):
    """The POSIX queue of mailbox ``name``: ``/mkipc-<run>-m-<name>``."""
    return f"/mkipc-{run_id(run)}-m-{validate_name(name)}"


def reply_queue_name(pid, run=None):
    """The reply queue of process ``pid``: ``/mkipc-<run>-<pid>-reply``."""
    return f"/mkipc-{run_id(run)}-{int(pid)}-reply"


def fifo_path(name, run=None):
    """Where ``OsProcess::fifo_path(name)`` puts a FIFO:
    ``/dev/shm/mkipc-<run>/fifo-<name>``."""
    return f"/dev/shm/mkipc-{run_id(run)}/fifo-{validate_name(name)}"


# ----- POSIX queues through ctypes -------------------------------------------

class _MqAttr(ctypes.Structure):
    _fields_ = [("mq_flags", ctypes.c_long), ("mq_maxmsg", ctypes.c_long),
                ("mq_msgsize", ctypes.c_long), ("mq_curmsgs", ctypes.c_long),
                ("_pad", ctypes.c_long * 4)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_lib = None


def _mq():
    global _lib
    if _lib is None:
        for name in (ctypes.util.find_library("rt"), "librt.so.1", ctypes.util.find_library("c")):
            if not name:
                continue
            lib = ctypes.CDLL(name, use_errno=True)
            if hasattr(lib, "mq_open"):
                break
        else:
            raise OSError(errno.ENOSYS, "no mq_open in librt or libc")
        lib.mq_open.restype = ctypes.c_int
        lib.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_MqAttr)]
        lib.mq_timedsend.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                                     ctypes.c_uint, ctypes.POINTER(_Timespec)]
        lib.mq_timedreceive.restype = ctypes.c_ssize_t
        lib.mq_timedreceive.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(_Timespec)]
        lib.mq_getattr.argtypes = [ctypes.c_int, ctypes.POINTER(_MqAttr)]
        lib.mq_close.argtypes = [ctypes.c_int]
        lib.mq_unlink.argtypes = [ctypes.c_char_p]
        _lib = lib
    return _lib


def _oserror(what):
    e = ctypes.get_errno()
    return OSError(e, f"{what}: {os.strerror(e)}")


def _abs_timespec(deadline):
    """A CLOCK_REALTIME deadline for mq_timed*, or None for no deadline."""
    if deadline is None:
        return None
    t = time.time() + _left(deadline)
    return ctypes.byref(_Timespec(int(t), int((t % 1) * 1e9)))


class Queue:
    """A POSIX message queue descriptor: one message is one frame."""

    #: The capacity kind in the two low bits of mq_msgsize.
    KINDS = {0: "bounded", 3: "rendezvous", 2: "unbounded"}

    def __init__(self, name, flags=os.O_RDWR, mode=0o600, maxmsg=0, msgsize=0):
        attr = None
        if flags & os.O_CREAT:
            attr = ctypes.byref(_MqAttr(0, maxmsg, msgsize, 0))
        fd = _mq().mq_open(name.encode(), flags | os.O_CLOEXEC, mode, attr)
        if fd < 0:
            raise _oserror(f"mq_open {name}")
        self.name = name
        self.fd = fd
        self.readable = (flags & 3) in (os.O_RDONLY, os.O_RDWR)
        self.writable = (flags & 3) in (os.O_WRONLY, os.O_RDWR)
        a = _MqAttr()
        if _mq().mq_getattr(fd, ctypes.byref(a)) != 0:
            raise _oserror("mq_getattr")
        self.maxmsg, self.msgsize = a.mq_maxmsg, a.mq_msgsize

    @property
    def kind(self):
        """"bounded", "rendezvous" or "unbounded" (None: not an mkipc queue)."""
        return self.KINDS.get(self.msgsize & 3)

    @property
    def body_limit(self):
        """Longest body a frame on this queue may carry: mq_msgsize - 28."""
        return self.msgsize - HEADER_LEN

    def send_bytes(self, frame, timeout=None):
        """Puts one frame into the queue (waits for room until ``timeout``)."""
        ts = _abs_timespec(_deadline(timeout))
        while True:
            if _mq().mq_timedsend(self.fd, frame, len(frame), 0, ts) == 0:
                return
            e = ctypes.get_errno()
            if e == errno.EINTR:
                continue
            if e == errno.ETIMEDOUT:
                raise Timeout()
            raise _oserror(f"mq_send {self.name}")

    def receive_bytes(self, timeout=None):
        """Takes one message out of the queue (waits until ``timeout``)."""
        buf = ctypes.create_string_buffer(self.msgsize)
        ts = _abs_timespec(_deadline(timeout))
        while True:
            n = _mq().mq_timedreceive(self.fd, buf, self.msgsize, None, ts)
            if n >= 0:
                return buf.raw[:n]
            e = ctypes.get_errno()
            if e == errno.EINTR:
                continue
            if e == errno.ETIMEDOUT:
                raise Timeout()
            raise _oserror(f"mq_receive {self.name}")

    def close(self):
        if self.fd >= 0:
            _mq().mq_close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _open_best(name):
    """Opens with the best access the mode bits give, as mkipc_open does."""
    last = None
    for flags in (os.O_RDWR, os.O_WRONLY, os.O_RDONLY):
        try:
            return Queue(name, flags)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM):
                raise
            last = e
    raise last


class Mailbox:
    """An mkipc mailbox of a run (a named POSIX queue), opened by name."""

    def __init__(self, queue, run):
        self.queue = queue
        self.run = run
        self._token = int.from_bytes(os.urandom(4), "little") | 1
        self._reply = None

    @classmethod
    def open(cls, name, run=None):
        """Opens mailbox ``name`` of ``run`` (default ``MKIPC_RUN_ID``)."""
        run = run_id(run)
        return cls(_open_best(mailbox_posix_name(name, run)), run)

    @property
    def body_limit(self):
        return self.queue.body_limit

    def send(self, msg_id, body, timeout=None, flags=0, token=0):
        """Sends a message, claiming this process's pid as its sender. On a
        rendezvous mailbox it waits (until ``timeout``) for the receiver's
        acknowledgement on this process's reply queue, which it creates
        (mode 0600) and removes in ``close``."""
        body = bytes(body)
        if len(body) > self.body_limit:
            raise ValueError(f"body of {len(body)} bytes over the limit {self.body_limit}")
        deadline = _deadline(timeout)
        if self.queue.kind == "rendezvous" and not flags:
            self._token = (self._token + 2) & 0xFFFFFFFF
            flags, token = ACK_WANTED, self._token
            reply = self._reply_queue()
            self.queue.send_bytes(encode(msg_id, body, flags=flags, token=token), _left(deadline))
            while True:
                f = decode(reply.receive_bytes(_left(deadline)), reply.body_limit, False)
                if f.flags & IS_ACK and f.token == token:
                    return
        self.queue.send_bytes(encode(msg_id, body, flags=flags, token=token), _left(deadline))

    def receive(self, timeout=None):
        """The next frame. A frame that asks for an acknowledgement (a
        rendezvous sender waits for it) is acknowledged at once. Raises
        ``MailboxGone`` once the mailbox is destroyed (a gone frame, which it
        puts back for the next waiter; under a name that still exists a gone
        frame is forged or stale, and skipped)."""
        deadline = _deadline(timeout)
        while True:
            raw = self.queue.receive_bytes(_left(deadline))
            frame = decode(raw, self.queue.body_limit, allow_rights=False)
            if not (frame.sender == 0 and frame.id == GONE_ID and not frame.body):
                break
            if not self._named():
                if self.queue.writable:
                    try:
                        self.queue.send_bytes(raw, 0)
                    except (OSError, Timeout):
                        pass
                raise MailboxGone(self.queue.name)
        if frame.flags & ACK_WANTED:
            try:
                with Queue(reply_queue_name(frame.sender, self.run), os.O_WRONLY) as q:
                    q.send_bytes(encode(0, b"", flags=IS_ACK, token=frame.token), 0)
            except (OSError, Timeout):
                pass  # the sender is gone, or its claim was false
        return frame

    def _named(self):
        """Whether the mailbox's name still exists."""
        try:
            Queue(self.queue.name, os.O_RDONLY).close()
        except OSError as e:
            return e.errno != errno.ENOENT
        return True

    def destroy(self):
        """Removes the mailbox's name and wakes every receive blocked on it,
        in any process: empties it and fills it with gone frames."""
        if _mq().mq_unlink(self.queue.name.encode()) != 0:
            raise _oserror(f"mq_unlink {self.queue.name}")
        q = self.queue
        if q.readable:
            while True:
                try:
                    q.receive_bytes(0)
                except Timeout:
                    break
        if q.writable:
            gone = encode(GONE_ID, b"", sender=0)
            while True:
                try:
                    q.send_bytes(gone, 0)
                except (OSError, Timeout):
                    break

    def _reply_queue(self):
        if self._reply is None:
            name = reply_queue_name(os.getpid(), self.run)
            self._reply = Queue(name, os.O_RDONLY | os.O_CREAT, 0o600, 10, 8192)
        return self._reply

    def close(self):
        self.queue.close()
        if self._reply is not None:
            self._reply.close()
            _mq().mq_unlink(self._reply.name.encode())
            self._reply = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FifoWriter:
    """Writes frames into an mkipc FIFO (``OsProcess::fifo_create``'s)."""

    def __init__(self, path):
        st = os.stat(path)
        if not stat.S_ISFIFO(st.st_mode):
            raise ValueError(f"{path} is not a FIFO")
        # O_NONBLOCK: no reader is ENXIO now, not a wait; then blocking writes.
        self.fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(self.fd, True)

    @classmethod
    def open(cls, name, run=None):
        """The FIFO ``name`` of a run (see ``fifo_path``)."""
        return cls(fifo_path(name, run))

    def send(self, msg_id, body):
        body = bytes(body)
        if len(body) > FIFO_BODY_LIMIT:
            raise ValueError(f"body of {len(body)} bytes over the FIFO limit {FIFO_BODY_LIMIT}")
        write_frame(self.fd, encode(msg_id, body))

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FifoReader:
    """Creates a FIFO and reads frames from it (any number of writers).
    ``close`` removes it: a FIFO a foreign program makes is not in mkipc's
    registry, so nobody else cleans it up."""

    def __init__(self, path, others_may_send=False):
        os.mkfifo(path, 0o622 if others_may_send else 0o600)
        self.path = path
        # O_RDWR: writers may come and go without an end of stream.
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.reader = StreamReader(self.fd, shared=True)

    def receive(self, timeout=None):
        return self.reader.receive(timeout)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----- socket links ------------------------------------------------------------

#: The hello frame each side of a socket link sends first (DESIGN.md,
#: "Socket links"): this id, sender = the writer's pid, and a body of
#: ``b"mkipc-link"``, the version (1), the overlay mode (0 plain, 1 sealed)
#: and 32 random bytes (zeros when plain).
HELLO_ID = 0x6B6E696C
HELLO_MAGIC = b"mkipc-link"
HELLO_VERSION = 1
HELLO_BODY_LEN = len(HELLO_MAGIC) + 2 + 32


class HandshakeError(Exception):
    """The peer is no mkipc socket link (``what`` = "not-a-link"), or seals
    the link with the encrypted overlay, which this module cannot speak
    ("sealed"), or went away ("closed")."""

    def __init__(self, what):
        super().__init__(f"socket link handshake: {what}")
        self.what = what


def parse_address(addr):
    """``unix:<path>`` or ``tcp:<host>:<port>`` (``tcp:[::1]:7000``) as
    ``(family, sockaddr)`` for ``socket.socket``."""
    if addr.startswith("unix:") and len(addr) > 5:
        return socket.AF_UNIX, addr[5:]
    if addr.startswith("tcp:"):
        host, _, port = addr[4:].rpartition(":")
        if host and port.isdigit():
            if host.startswith("[") and host.endswith("]"):
                return socket.AF_INET6, (host[1:-1], int(port))
            return socket.AF_INET, (host, int(port))
    raise ValueError(f"not a socket address: {addr!r} (unix:<path> or tcp:<host>:<port>)")


def _hello():
    body = HELLO_MAGIC + bytes([HELLO_VERSION, 0]) + bytes(32)
    return encode(HELLO_ID, body)


class SocketLink:
    """A direct link with an mkipc process over a Unix or TCP stream: frames
    back to back, after one hello each way. ``peer_pid`` is the pid the
    peer's hello claims (on a Unix socket, the one the OS names). No rights:
    this module passes no descriptors."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = _deadline(timeout)
        sock.sendall(_hello())
        theirs = self._read_exact(HEADER_LEN + HELLO_BODY_LEN, deadline)
        try:
            f = decode(theirs)
        except Malformed:
            raise HandshakeError("not-a-link")
        b = f.body
        if (f.id != HELLO_ID or len(b) != HELLO_BODY_LEN or not b.startswith(HELLO_MAGIC)
                or b[len(HELLO_MAGIC)] != HELLO_VERSION or b[len(HELLO_MAGIC) + 1] > 1):
            raise HandshakeError("not-a-link")
        if b[len(HELLO_MAGIC) + 1] == 1:
            raise HandshakeError("sealed")
        self.peer_pid = f.sender
        if sock.family == socket.AF_UNIX:
            cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            self.peer_pid = struct.unpack("3i", cred)[0]
        sock.setblocking(True)
        self.reader = StreamReader(sock.fileno())

    def _read_exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            r, _, _ = select.select([self.sock], [], [], _left(deadline))
            if not r:
                raise Timeout()
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise HandshakeError("closed")
            buf += chunk
        return buf

    @classmethod
    def connect(cls, addr, timeout=10.0):
        """Connects to an mkipc ``Listener`` at ``addr`` (see ``parse_address``)."""
        family, where = parse_address(addr)
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(where)
            return cls(s, timeout)
        except BaseException:
            s.close()
            raise

    def send(self, msg_id, body, flags=0, token=0):
        """Sends one frame whole, claiming this process's pid as sender.
        A dead peer raises ``BrokenPipeError`` (or ``ConnectionResetError``)."""
        body = bytes(body)
        if len(body) > LINK_BODY_LIMIT:
            raise ValueError(f"body of {len(body)} bytes over the link limit {LINK_BODY_LIMIT}")
        self.sock.sendall(encode(msg_id, body, flags=flags, token=token))

    def receive(self, timeout=None):
        """The next frame; ``EOFError`` once the peer has closed (or died)."""
        try:
            return self.reader.receive(timeout)
        except ConnectionResetError:
            raise EOFError("connection reset")

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SocketListener:
    """Listens for mkipc processes (``OsProcess::connect_link``) at ``addr``;
    ``tcp:127.0.0.1:0`` lets the OS pick the port (``address`` says which).
    A Unix socket file is made 0600 and removed by ``close``."""

    def __init__(self, addr):
        family, where = parse_address(addr)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.path = where if family == socket.AF_UNIX else None
        if family != socket.AF_UNIX:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(where)
        if self.path:
            os.chmod(self.path, 0o600)  # before listen: no connect meanwhile
            self.address = f"unix:{self.path}"
        else:
            host, port = self.sock.getsockname()[:2]
            self.address = f"tcp:[{host}]:{port}" if family == socket.AF_INET6 else f"tcp:{host}:{port}"
        self.sock.listen(16)

    def accept(self, timeout=None):
        """The next peer, as a ``SocketLink`` (after the handshake)."""
        self.sock.settimeout(timeout)
        try:
            s, _ = self.sock.accept()
        except socket.timeout:
            raise Timeout()
        return SocketLink(s)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if self.path:
                os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----- self-test and command line --------------------------------------------

def self_test():
    """Checks the module against DESIGN.md's example and itself."""
    f = encode(7, b"hi", sender=4242)
    assert f[:24] == bytes.fromhex("4d4b0200070000000200000000000000" "9210000000000000")
    assert f[24:28] == struct.pack("<I", zlib.crc32(f[:24] + b"hi")) and f[28:] == b"hi"
    assert decode(f) == Frame(7, b"hi", 4242)
    for i, what, bit in ((0, "Magic", 0x40), (2, "Version", 0x40), (3, "Flags", 0x80),
                         (3, "Checksum", UNCHECKED), (28, "Checksum", 0x40),
                         (5, "Checksum", 0x40)):
        bad = bytearray(f)
        bad[i] ^= bit
        try:
            decode(bytes(bad))
            raise AssertionError(f"byte {i} changed, still decoded")
        except Malformed as e:
            assert e.what == what, (i, e.what)
    try:
        decode(f[:-1])
        raise AssertionError("short frame decoded")
    except Malformed as e:
        assert e.what == "Truncated"
    # An unchecked frame (a direct link's pipe): check field 0, taken only
    # where the reader allows it, and only with that 0.
    u = encode(7, b"hi", sender=4242, flags=UNCHECKED)
    assert u[24:28] == b"\0\0\0\0" and u[:3] == f[:3] and u[3] == UNCHECKED
    assert decode(u, unchecked_ok=True) == Frame(7, b"hi", 4242, UNCHECKED)
    for bad, ok in ((u, False), (u[:24] + b"\1\0\0\0" + u[28:], True)):
        try:
            decode(bad, unchecked_ok=ok)
            raise AssertionError("unchecked frame taken")
        except Malformed as e:
            assert e.what == "Checksum", e.what
    for shared in (False, True):
        r, w = os.pipe()
        try:
            write_frame(w, u)
            write_frame(w, f)
            s = StreamReader(r, shared=shared, unchecked_ok=not shared)
            if shared:
                try:
                    s.receive(1)
                    raise AssertionError("a FIFO reader took an unchecked frame")
                except Malformed as e:
                    assert e.what == "Checksum", e.what
            else:
                assert s.receive(1) == Frame(7, b"hi", 4242, UNCHECKED)
            assert s.receive(1) == Frame(7, b"hi", 4242)
        finally:
            os.close(r)
            os.close(w)
    # A pipe given as descriptors: frames back to back, garbage in between
    # on a shared stream is skipped.
    r, w = os.pipe()
    try:
        write_frame(w, encode(1, b"one"))
        os.write(w, b"garbage")
        write_frame(w, encode(2, b"two"))
        os.close(w)
        w = -1
        s = StreamReader(r, shared=True)
        assert s.receive(1).body == b"one"
        try:
            s.receive(1)
            raise AssertionError("garbage accepted")
        except Malformed:
            pass
        assert s.receive(1).body == b"two"
        try:
            s.receive(1)
            raise AssertionError("no end of stream")
        except EOFError:
            pass
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    # A socket link over a socket pair: the hellos, then frames.
    import threading
    sa, sb = socket.socketpair()
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("b", SocketLink(sb)))
    t.start()
    la = SocketLink(sa)
    t.join()
    la.send(3, b"over a socket")
    assert got["b"].receive(1) == Frame(3, b"over a socket", os.getpid())
    assert la.peer_pid == os.getpid()
    la.close()
    try:
        got["b"].receive(1)
        raise AssertionError("no end of stream")
    except EOFError:
        pass
    got["b"].close()
    assert parse_address("tcp:[::1]:7") == (socket.AF_INET6, ("::1", 7))
    assert mailbox_posix_name("jobs", "1-2-ab") == "/mkipc-1-2-ab-m-jobs"
    for bad in ("", "a/b", "..", "x\n"):
        try:
            validate_name(bad)
            raise AssertionError(bad)
        except ValueError:
            pass
    print("self-test ok")


def _main(argv):
    import argparse
    p = argparse.ArgumentParser(prog="mkipc.py", description="mkipc wire format v2")
    sub = p.add_subparsers(dest="cmd", required=True)

    def target(sp):
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--mailbox", help="mailbox name of the run (MKIPC_RUN_ID)")
        g.add_argument("--fifo", help="FIFO name of the run (fifo_path)")
        g.add_argument("--fd", type=int, help="a pipe descriptor")
        sp.add_argument("--run", help="run id (default: MKIPC_RUN_ID)")

    def message(sp):
        sp.add_argument("--id", type=int, required=True)
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--text", default="")
        g.add_argument("--hex")

    s = sub.add_parser("send")
    target(s)
    message(s)
    s.add_argument("--timeout", type=float)
    r = sub.add_parser("receive", help="prints: id sender claimed flags body-hex")
    target(r)
    r.add_argument("--count", type=int, default=1)
    r.add_argument("--timeout", type=float)
    e = sub.add_parser("encode", help="prints the frame in hex")
    message(e)
    e.add_argument("--sender", type=int)
    lk = sub.add_parser("link", help="a socket link: prints id sender claimed flags body-hex")
    g = lk.add_mutually_exclusive_group(required=True)
    g.add_argument("--connect", help="unix:<path> or tcp:<host>:<port>")
    g.add_argument("--listen", help="listen there; prints the address, accepts one peer")
    lk.add_argument("--id", type=int, help="send this message first")
    m = lk.add_mutually_exclusive_group()
    m.add_argument("--text", default="")
    m.add_argument("--hex")
    lk.add_argument("--count", type=int, default=0, help="frames to receive and print")
    lk.add_argument("--echo", type=int, default=0, help="frames to receive and send back")
    lk.add_argument("--timeout", type=float, default=10.0)
    sub.add_parser("self-test")
    a = p.parse_args(argv)

    if a.cmd == "link":
        return _link(a)

    if a.cmd == "self-test":
        self_test()
        return 0
    if a.cmd in ("send", "encode"):
        body = bytes.fromhex(a.hex) if a.hex is not None else a.text.encode()
    if a.cmd == "encode":
        print(encode(a.id, body, a.sender).hex())
        return 0
    if a.cmd == "send":
        if a.mailbox is not None:
            with Mailbox.open(a.mailbox, a.run) as m:
                m.send(a.id, body, a.timeout)
        elif a.fifo is not None:
            with FifoWriter.open(a.fifo, a.run) as f:
                f.send(a.id, body)
        else:
            write_frame(a.fd, encode(a.id, body))
        return 0
    if a.mailbox is not None:
        source = Mailbox.open(a.mailbox, a.run)
    elif a.fifo is not None:
        source = FifoReader(fifo_path(a.fifo, a.run))
    else:
        source = StreamReader(a.fd, unchecked_ok=True)
    try:
        for _ in range(a.count):
            try:
                f = source.receive(a.timeout)
            except MailboxGone:
                print("gone", flush=True)
                return 3
            print(f.id, f.sender, "claimed", f.flags, f.body.hex() or "-", flush=True)
    finally:
        if hasattr(source, "close"):
            source.close()
    return 0


def _link(a):
    if a.connect:
        link = SocketLink.connect(a.connect, a.timeout)
    else:
        with SocketListener(a.listen) as listener:
            print(listener.address, flush=True)
            link = listener.accept(a.timeout)
    with link:
        if a.id is not None:
            link.send(a.id, bytes.fromhex(a.hex) if a.hex is not None else a.text.encode())
        for _ in range(a.count):
            f = link.receive(a.timeout)
            print(f.id, f.sender, "claimed", f.flags, f.body.hex() or "-", flush=True)
        for _ in range(a.echo):
            f = link.receive(a.timeout)
            link.send(f.id, f.body)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except (Timeout, EOFError, Malformed, OSError, ValueError, LookupError,
            HandshakeError) as err:
        print(f"mkipc.py: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(2)
