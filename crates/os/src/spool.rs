//! Unbounded capacity on a bounded kernel queue: the sender-side spool.
//!
//! A POSIX queue always has an `mq_maxmsg`. To give a sender the
//! [`Capacity::Unbounded`](mkipc_kernel::Capacity::Unbounded) promise ("a send
//! never waits"), frames the queue cannot take right now go into a FIFO in the
//! *sending* process, and one flusher thread per spooled queue moves them into
//! the queue as the receiver makes room. Once anything is spooled, later sends
//! to that queue go behind it, so order is kept.
//!
//! What differs from the kernel's unbounded queue: spooled messages live in
//! the sender, so they are lost if the sender dies before the receiver makes
//! room, and the receiver's `port_status` does not count them. Dropping the
//! [`OsProcess`](crate::OsProcess) waits (a bounded time) for its spools to
//! drain. The memory ceiling ([`SPOOL_LIMIT`] bytes per queue) turns runaway
//! growth into [`SendErrorKind::MemoryLimit`](mkipc_kernel::SendErrorKind::MemoryLimit).
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_os::OsProcess;
//!
//! let os = OsProcess::new().unwrap();
//! let port = os.port_allocate(Capacity::Unbounded).unwrap();
//! let to = os.make_send(port).unwrap();
//! // More than a POSIX queue holds (msg_max, 10 by default): the rest waits in the spool.
//! for i in 0..25 {
//!     os.send(to, Message::from_u64(1, i)).unwrap();
//! }
//! let got: Vec<u64> = (0..25).map(|_| os.receive(port).unwrap().as_u64().unwrap()).collect();
//! assert_eq!(got, (0..25).collect::<Vec<_>>());
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::queue::Queue;
use crate::sys::{Errno, MqWait};

/// The most body bytes one queue's spool holds before sends fail with `MemoryLimit`.
pub const SPOOL_LIMIT: usize = 64 << 20;

#[derive(Default)]
struct State {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    flusher: bool,
}

/// The spool of one queue.
#[derive(Default)]
pub struct Spool {
    state: Mutex<State>,
    drained: Condvar,
}

/// What happened to a frame given to [`push`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// It went straight into the queue.
    Queued,
    /// It waits in the spool.
    Waiting,
    /// The spool is at [`SPOOL_LIMIT`].
    OverLimit,
}

/// Sends `frame` to an unbounded queue without ever waiting.
pub(crate) fn push(queue: &Arc<Queue>, frame: &[u8]) -> Result<Pushed, Errno> {
    if queue.receiver_gone() {
        return Err(libc::EIDRM);
    }
    let mut st = queue.spool.state.lock().unwrap_or_else(|p| p.into_inner());
    if st.frames.is_empty() {
        match queue.send(frame, MqWait::NoWait) {
            Ok(()) => return Ok(Pushed::Queued),
            Err(libc::EAGAIN) => {}
            Err(e) => return Err(e),
        }
    }
    if st.bytes + frame.len() > SPOOL_LIMIT {
        return Ok(Pushed::OverLimit);
    }
    st.bytes += frame.len();
    st.frames.push_back(frame.to_vec());
    if !st.flusher {
        let q = Arc::clone(queue);
        let started = std::thread::Builder::new()
            .name("mkipc-spool".into())
            .spawn(move || flush_loop(&q));
        if let Err(e) = started {
            // The caller gets its message back with the error, so the frame
            // must not stay spooled too (it would be delivered as well).
            st.frames.pop_back();
            st.bytes -= frame.len();
            return Err(e.raw_os_error().unwrap_or(libc::EAGAIN));
        }
        st.flusher = true;
    }
    Ok(Pushed::Waiting)
}

fn flush_loop(queue: &Arc<Queue>) {
    loop {
        // Every send from the spool happens under its lock, so the flusher and
        // a receiver pumping its own spool ([`pump_one`]) never send a frame twice.
        match pump_one(queue) {
            Pump::Empty => return,
            Pump::Moved => continue,
            Pump::Full => {
                // A destroyed mailbox (its name gone, its queue filled with
                // gone frames, `queue::GONE_ID`) takes nothing more: what is
                // spooled for it dies with it, and the flusher ends.
                if !queue.still_named() {
                    discard(queue);
                    continue;
                }
                // Wait for room (queue descriptors are pollable) without the lock.
                let _ = crate::sys::poll_one(
                    queue.fd(),
                    libc::POLLOUT,
                    crate::sys::deadline_after(Duration::from_millis(100)),
                );
            }
        }
    }
}

/// What [`pump_one`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pump {
    /// The spool is empty (and the flusher, if this is it, may stop).
    Empty,
    /// One frame moved into the queue.
    Moved,
    /// The queue is full.
    Full,
}

/// Moves the oldest spooled frame into the queue if there is room. Called by
/// the flusher, and by a receive of this same process that found the queue
/// empty while its own spool is not (so a process that sends to itself sees
/// every message at once, as with the kernel's unbounded queue).
pub(crate) fn pump_one(queue: &Queue) -> Pump {
    let mut st = queue.spool.state.lock().unwrap_or_else(|p| p.into_inner());
    let Some(front) = st.frames.front() else {
        st.flusher = false;
        queue.spool.drained.notify_all();
        return Pump::Empty;
    };
    match queue.send(front, MqWait::NoWait) {
        Ok(()) => {
            let f = st.frames.pop_front().expect("front exists");
            st.bytes -= f.len();
            Pump::Moved
        }
        Err(libc::EAGAIN) => Pump::Full,
        // Closed after these were sent: they were sent before the close, so
        // they still go in (the receiver drains them), as a queued message would.
        Err(libc::ESHUTDOWN) => match crate::sys::mq_send(queue.fd(), front, MqWait::NoWait) {
            Ok(()) => {
                let f = st.frames.pop_front().expect("front exists");
                st.bytes -= f.len();
                Pump::Moved
            }
            Err(_) => Pump::Full,
        },
        Err(e) => {
            tracing::warn!(queue = %queue.name, errno = e, "spool: queue failed, dropping spooled messages");
            st.frames.clear();
            st.bytes = 0;
            Pump::Full
        }
    }
}

/// Takes the oldest spooled frame of a rendezvous queue, for a receive of
/// this process. A rendezvous queue is never spooled into by sends (they wait
/// for their acknowledgement); what its spool holds are frames a timed-out
/// sender took out of the queue in place of its own and could not put back
/// because another sender's frame took the slot ([`crate::rendezvous`]). They
/// were in the queue first, so they are received first.
pub(crate) fn take_put_back(queue: &Queue) -> Option<Vec<u8>> {
    let mut st = queue.spool.state.lock().unwrap_or_else(|p| p.into_inner());
    let f = st.frames.pop_front()?;
    st.bytes -= f.len();
    if st.frames.is_empty() {
        queue.spool.drained.notify_all();
    }
    Some(f)
}

/// Destroys what is still spooled for the queue (its port was destroyed, or
/// this process is going away): the flusher finds the spool empty and ends,
/// closing its descriptor, instead of polling a queue nobody will read.
/// Returns how many messages were discarded.
pub(crate) fn discard(queue: &Queue) -> usize {
    let mut st = queue.spool.state.lock().unwrap_or_else(|p| p.into_inner());
    let n = st.frames.len();
    st.frames.clear();
    st.bytes = 0;
    n
}

/// Messages waiting in this process's spool for the queue.
pub(crate) fn len(queue: &Queue) -> usize {
    queue
        .spool
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .frames
        .len()
}

/// Waits until the spool is empty or `timeout` passes; returns what is left.
pub(crate) fn drain(queue: &Queue, timeout: Duration) -> usize {
    let deadline = crate::sys::deadline_after(timeout);
    let mut st = queue.spool.state.lock().unwrap_or_else(|p| p.into_inner());
    while !st.frames.is_empty() {
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            break;
        }
        st = queue
            .spool
            .drained
            .wait_timeout(st, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    st.frames.len()
}
