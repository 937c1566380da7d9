//! The reply queue: where replies to calls and rendezvous acknowledgements arrive.
//!
//! Each process that calls, or sends to a zero-capacity queue, gets one named
//! queue `/mkipc-<run>-<pid>-reply` (mode 0600: only processes of the same
//! user may write, and only the owner reads), made on first use and unlinked
//! when the process drops (or when its parent reaps it after a crash). A
//! request carries a fresh token; the answer carries it back, so answers that
//! arrive for another waiting thread are stashed and stale ones (for a send
//! that gave up) discarded.
//!
//! Trust: the `NoReply` frame (sender 0, id `SEND_ONCE_ID`) stands for a
//! notification, so the queue it arrives on must be one a stranger cannot
//! write: another user with send access to a mailbox can put any frame into
//! the *mailbox*, never into a reply queue. Tokens are a counter mixed with
//! a per-process random key, so a frame forged into a mailbox (asking for an
//! acknowledgement or a reply on behalf of some pid) cannot name a token
//! that pid is waiting for, except by a 1 in 2^32 guess.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use mkipc_kernel::message::{Body, Trailer};
use mkipc_kernel::{Capacity, IpcError, Message, Notification, Pid, PortName, ReceiveError};

use crate::errno;
use crate::names::Entry;
use crate::process::{io_error, lock, OsProcess};
use crate::queue::Queue;
use crate::registry::{self, EntryOwner, Kind};
use crate::sys::{self, MqWait};
use crate::wire::{self, Header};

impl OsProcess {
    pub(crate) fn reply_queue_name(run: &str, pid: u32) -> String {
        format!("/{}{}-{}-reply", registry::PREFIX, run, pid)
    }

    /// This process's reply queue, created on first use.
    pub(crate) fn reply_queue(&self) -> Result<Arc<Queue>, IpcError> {
        let mut st = lock(&self.reply);
        if let Some(q) = &st.queue {
            return Ok(Arc::clone(q));
        }
        let name = OsProcess::reply_queue_name(&self.run, self.pid);
        let owner = EntryOwner::Process(self.pid);
        let fresh = registry::record(&self.run, Kind::Queue, &name, owner).map_err(io_error)?;
        // Processes of this user may write replies into it; only this
        // process reads.
        let cap = Capacity::Bounded(crate::queue::maxmsg_for(Capacity::Unbounded));
        let q = match Queue::create(&name, cap, 0o600, true, false) {
            Ok(q) => Arc::new(q),
            Err(e) => {
                if fresh {
                    registry::forget_own(&self.run, Kind::Queue, &name, owner);
                }
                return Err(errno::create_queue_error(e, cap));
            }
        };
        st.queue = Some(Arc::clone(&q));
        Ok(q)
    }

    /// A token no other outstanding request of this process has, and that
    /// nobody outside can predict (a counter through a random bijection).
    pub(crate) fn new_token(&self) -> u32 {
        loop {
            let t = self.next_token.fetch_add(1, Ordering::Relaxed) ^ token_key();
            if t != 0 {
                return t;
            }
        }
    }

    /// Says a token is awaited (so frames for it are stashed, not discarded).
    pub(crate) fn expect_token(&self, token: u32) {
        lock(&self.reply).outstanding.insert(token);
    }

    /// Waits on the reply queue for the frame carrying `token`. With
    /// `receiver`, the port the request went to, the wait also ends when
    /// that port's receiver is gone ([`ReceiveError::SourceDead`]): it `poll`s
    /// the reply queue and the port's liveness pipe together (see
    /// [`crate::queue`]), after taking whatever answer already came.
    ///
    /// A `call` to a mailbox learns which process took its request (an
    /// `IS_ACK` frame with its token, see [`OsProcess::tell_taken`]) and then
    /// waits on that process's pidfd too: a server that dies without
    /// replying, even by `SIGKILL`, ends the wait at once
    /// ([`ReceiveError::SourceDead`], which `call` reports as `NoReply`).
    pub(crate) fn wait_token(
        &self,
        token: u32,
        deadline: Option<Instant>,
        no_wait: bool,
        receiver: Option<&Queue>,
        call: bool,
    ) -> Result<(Header, Body), ReceiveError> {
        let q = self.reply_queue()?;
        let live = receiver
            .filter(|_| !no_wait)
            .and_then(|r| r.live_watch.as_ref().map(|w| (r, w)));
        // The pidfd of the process that took our call request, once known.
        let mut server: Option<std::os::fd::OwnedFd> = None;
        let mut server_gone = false;
        let taken = |h: &Header| call && h.flags & wire::FLAG_IS_ACK != 0;
        let result = loop {
            let stashed = lock(&self.reply).stash.remove(&token);
            let got = match stashed {
                Some(hit) => Ok(Ok(hit)),
                None => {
                    let wait = if no_wait || live.is_some() || server.is_some() {
                        MqWait::NoWait
                    } else {
                        deadline.map_or(MqWait::Forever, MqWait::Until)
                    };
                    q.receive(wait, |bytes| {
                        wire::decode(bytes).map(|f| (f.header, Body::from_slice(f.body)))
                    })
                }
            };
            match got {
                Ok(Ok((h, body))) => {
                    if h.token == token && taken(&h) {
                        if server.is_none() && !no_wait {
                            // A server we cannot watch (gone already, or no
                            // pidfd here) leaves the plain wait.
                            match crate::sys_shm::pidfd_open(h.sender) {
                                Ok(fd) => server = Some(fd),
                                Err(libc::ESRCH) => server_gone = true,
                                Err(_) => {}
                            }
                        }
                        continue;
                    }
                    if h.token == token {
                        break Ok((h, body));
                    }
                    let mut st = lock(&self.reply);
                    if st.outstanding.contains(&h.token) {
                        // A reply never gives way to the taken notice that
                        // came before it.
                        if h.flags & wire::FLAG_IS_ACK != 0 {
                            st.stash.entry(h.token).or_insert((h, body));
                        } else {
                            st.stash.insert(h.token, (h, body));
                        }
                    }
                }
                Ok(Err(_)) => {} // not a frame: ignore, the queue is ours
                Err(libc::EAGAIN) if server_gone => break Err(ReceiveError::SourceDead),
                Err(libc::EAGAIN) if live.is_some() || server.is_some() => {
                    // A closed port's receiver still drains and answers: then
                    // the pipe holds its byte, and only a hang-up or the
                    // second byte (the death) would end the wait early.
                    let mut fds = vec![(q.fd().as_raw_fd(), libc::POLLIN)];
                    if let Some((receiver, watch)) = live {
                        match receiver.receiver() {
                            crate::queue::Receiver::Gone => break Err(ReceiveError::SourceDead),
                            crate::queue::Receiver::Open => {
                                fds.push((watch.as_raw_fd(), libc::POLLIN))
                            }
                            crate::queue::Receiver::Closed => {}
                        }
                    }
                    let server_at = fds.len();
                    if let Some(pidfd) = &server {
                        fds.push((pidfd.as_raw_fd(), libc::POLLIN));
                    }
                    match sys::poll_events(&fds, deadline) {
                        Ok(ready) if ready.is_empty() => break Err(ReceiveError::TimedOut),
                        // The server exited: one more look at the reply
                        // queue (it may have answered first), then NoReply.
                        Ok(ready) if server.is_some() && ready.contains(&server_at) => {
                            server_gone = true
                        }
                        Ok(_) => {}
                        Err(e) => break Err(ReceiveError::Os(e)),
                    }
                }
                Err(libc::EAGAIN) if server_gone => break Err(ReceiveError::SourceDead),
                Err(e) => break Err(errno::receive_error(e)),
            }
        };
        lock(&self.reply).outstanding.remove(&token);
        result
    }

    /// Tells a caller that this process took its call request from a
    /// mailbox (an `IS_ACK` frame with the request's token, from this pid):
    /// the caller then watches this process and learns at once if it dies
    /// without replying. A port needs none: its liveness pipe says it.
    pub(crate) fn tell_taken(&self, caller: u32, token: u32) {
        let frame = wire::encode(
            &Message::new(0, Body::new()),
            self.pid,
            wire::FLAG_IS_ACK,
            token,
            &[],
        );
        let _ = self.send_to_reply_queue(caller, &frame);
    }

    /// Sends a reply or acknowledgement frame to `pid`'s reply queue, without
    /// waiting (send-once messages never block).
    pub(crate) fn send_to_reply_queue(&self, pid: u32, frame: &[u8]) -> Result<(), sys::Errno> {
        let q = {
            let mut peers = lock(&self.peers);
            match peers.get(&pid) {
                Some(q) => Arc::clone(q),
                None => {
                    let q = Arc::new(Queue::open(
                        &OsProcess::reply_queue_name(&self.run, pid),
                        false,
                        true,
                    )?);
                    peers.insert(pid, Arc::clone(&q));
                    q
                }
            }
        };
        q.send(frame, MqWait::NoWait)
    }

    /// Acknowledges a rendezvous frame.
    pub(crate) fn acknowledge(&self, sender: u32, token: u32) {
        let frame = wire::encode(
            &Message::new(0, Body::new()),
            self.pid,
            wire::FLAG_IS_ACK,
            token,
            &[],
        );
        if let Err(e) = self.send_to_reply_queue(sender, &frame) {
            tracing::warn!(sender, errno = e, "could not acknowledge a rendezvous send");
        }
    }

    /// Tells a caller its request will never be answered.
    pub(crate) fn send_no_reply(&self, pid: u32, token: u32) {
        let msg = Message::new(Notification::SEND_ONCE_ID, Body::new());
        let frame = wire::encode(&msg, 0, wire::FLAG_IS_REPLY, token, &[]);
        let _ = self.send_to_reply_queue(pid, &frame);
    }

    /// Builds the received message for a decoded queue frame: acknowledges a
    /// rendezvous, installs a reply right for a call.
    pub(crate) fn accept_queue_frame(
        &self,
        header: Header,
        body: Body,
        on: PortName,
        seqno: u64,
    ) -> Message {
        if header.flags & wire::FLAG_ACK_WANTED != 0 {
            self.acknowledge(header.sender, header.token);
        }
        let mut msg = Message::new(header.id, body);
        if header.flags & wire::FLAG_REPLY_WANTED != 0 {
            let name = self.insert(Entry::Reply {
                pid: header.sender,
                token: header.token,
            });
            msg.set_reply(Some(mkipc_kernel::CarriedRight {
                name,
                disposition: mkipc_kernel::Disposition::MoveSendOnce,
            }));
        }
        msg.set_trailer(Some(Trailer {
            sender: Pid(header.sender),
            received_on: on,
            seqno,
        }));
        // The pid is what the frame says: anyone who may write the queue or
        // FIFO could have written it. Only this process's own notifications
        // (sender 0 and its notification key, or a travelling request's
        // token) are vouched for.
        if !crate::notify::vouch(&header) {
            msg.mark_sender_claimed();
        }
        msg
    }
}

/// This process's random key for tokens (from the kernel's random source;
/// the clock if that fails, which still differs between processes).
fn token_key() -> u32 {
    static KEY: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key = [0u8; 4];
        if sys::getrandom(&mut key).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            key = (t.subsec_nanos() ^ std::process::id()).to_le_bytes();
        }
        u32::from_le_bytes(key)
    })
}
