//! Notifications across processes: dead-name, send-possible, no-senders.
//!
//! A notification is a frame put into the notify port's queue by this
//! process: sender 0, no flags, id and body as the kernel's
//! (`Notification::*_ID`, the name as a `u64`), and as token this process's
//! random *notification key*. A queue frame is otherwise always *claimed*
//! (anyone with write access may write any pid), so only a frame with sender
//! 0 and the key decodes as a notification ([`vouch`]); a forger
//! would have to guess 32 random bits (as for reply tokens, see "Trust" in
//! DESIGN.md). A request that travelled with a receive right is answered by
//! the right's new holder with a token of its own instead of the key
//! (`crate::travel`).
//!
//! What the OS tells, and where a request waits for it:
//!
//! * **dead name** (a send or send-once right): the port's liveness pipe
//!   (DESIGN.md "Receiver death") turns readable when the receiver dies or
//!   destroys the port; a `SIGKILL`ed receiver hangs it up. Watched
//!   edge-triggered, so a close (one byte) wakes the watcher once and the
//!   destruction after it (the second byte) again.
//! * **send possible** (a send right or a mailbox): `POLLOUT` on the queue
//!   descriptor (Linux queues are pollable): room. At once if there is room
//!   already; a dead-name notification instead if the port dies first.
//! * **no senders** (a receive right): the port's senders pipes
//!   ([`crate::senders`]): every send right, in any process (or queued in a
//!   message, or registered with the name service, both in the broker),
//!   holds a write end, so the read ends the receive right keeps hang up
//!   when the last one is gone, even by `SIGKILL`. At once if there is
//!   none. The request travels with the receive right to another process
//!   (`crate::travel`), which then watches and answers it.
//!
//! One `mkipc-notify` thread per process (started with the first request
//! that must wait) waits on one `epoll` instance holding a duplicate of each
//! watched descriptor. A request is one-shot; it lapses when its name is
//! released ([`Notifier::cancel`], called by the name table on every
//! removal), as in the kernel.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::event::epoll;

use mkipc_kernel::{Message, Notification, PortName};

use crate::queue::{Model, Queue, Receiver};
use crate::spool;
use crate::sys::{self, Errno};
use crate::travel::NotifyTo;
use crate::wire;

/// This process's notification key (random; the clock if the kernel's
/// random source fails).
pub(crate) fn key() -> u32 {
    static KEY: OnceLock<u32> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key = [0u8; 4];
        if sys::getrandom(&mut key).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            key = (t.subsec_nanos().rotate_left(7) ^ std::process::id()).to_le_bytes();
        }
        // Never 0, the token of an ordinary frame.
        u32::from_le_bytes(key).max(1)
    })
}

/// The id of the frame `close` puts into a port to wake a receive blocked on
/// it (sender 0, this process's key): never delivered, never a notification.
pub(crate) const WAKE_ID: u32 = 0xFFFF_FFF0;

/// Whether a queue frame's header is this process's wake-up after a close.
pub(crate) fn is_wake(h: &wire::Header) -> bool {
    h.sender == 0 && h.token == key() && h.id == WAKE_ID && h.body_len == 0
}

/// Wakes the receives blocked on the closed port `q` in this process: one
/// empty wake frame each, as far as the queue has room (a receive blocked
/// on a queue with messages is not blocked for long).
pub(crate) fn wake_closed(q: &Queue) {
    let frame = wire::encode(
        &Message::new(WAKE_ID, mkipc_kernel::message::Body::new()),
        0,
        0,
        key(),
        &[],
    );
    for _ in 0..q.blocked.load(std::sync::atomic::Ordering::SeqCst) {
        if q.post_frame(&frame).is_err() {
            break;
        }
    }
}

/// Whether a queue frame's header is a notification this process vouches
/// for: sender 0 and this process's key, or the token of one of its
/// requests that travelled with a receive right (`crate::travel`), which
/// this uses up.
pub(crate) fn vouch(h: &wire::Header) -> bool {
    if h.sender != 0 {
        return false;
    }
    let flags = h.flags & !wire::FLAG_STAMPED;
    let shaped = match h.id {
        Notification::DEAD_NAME_ID
        | Notification::NO_SENDERS_ID
        | Notification::SEND_POSSIBLE_ID => flags == 0,
        // It carries the receive right (`crate::port_destroyed`).
        Notification::PORT_DESTROYED_ID => flags == wire::FLAG_BROKERED && h.nrights == 1,
        _ => false,
    };
    shaped && (h.token == key() || crate::travel::vouch(h.token, h.id))
}

/// Puts one notification about `name` into the notify port's queue `to`,
/// without waiting (an unbounded port spools it). `false` if it could not.
pub(crate) fn post(to: &Arc<Queue>, id: u32, name: PortName) -> bool {
    post_with(to, id, name, key())
}

/// [`post`] for a request's [`NotifyTo`]: its queue and its token.
pub(crate) fn post_to(to: &NotifyTo, id: u32, name: PortName) -> bool {
    post_with(&to.queue, id, name, to.token)
}

fn post_with(to: &Arc<Queue>, id: u32, name: PortName, token: u32) -> bool {
    let msg = Message::from_u64(id, name.to_raw());
    let frame = wire::encode_stamped(&msg, 0, 0, token, wire::now_stamp());
    let sent = if to.model == Model::Unbounded {
        spool::push(to, &frame).is_ok()
    } else {
        to.post_frame(&frame).is_ok()
    };
    if !sent {
        tracing::warn!(id, "notification lost: the notify port is full or gone");
    }
    sent
}

/// What a request waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Want {
    /// The port's death.
    DeadName,
    /// Room in the queue (or the port's death).
    SendPossible,
    /// No send right left in any process.
    NoSenders,
}

struct Request {
    name: PortName,
    want: Want,
    /// The queue the request is about (a send descriptor).
    target: Arc<Queue>,
    /// Where the notification goes, with its token.
    notify: NotifyTo,
    /// Duplicates registered in the epoll instance.
    watched: Vec<OwnedFd>,
}

#[derive(Default)]
struct State {
    next: u64,
    requests: BTreeMap<u64, Request>,
    started: bool,
    /// Names whose right is on its way out in a message: their dead-name
    /// and no-senders requests wait for the send to end (they lapse if the
    /// right left, see [`Notifier::hold`]).
    held: std::collections::BTreeSet<PortName>,
}

/// This process's outstanding notification requests and their watcher.
pub(crate) struct Notifier {
    epoll: OwnedFd,
    /// An eventfd in the epoll instance: written to end the watcher.
    stop: OwnedFd,
    state: Mutex<State>,
}

const STOP: u64 = u64::MAX;

/// How often the watcher looks at the capacity pages of the ports it has
/// send-possible requests on (`crate::capacity`): a page wakes no descriptor.
const PAGE_TICK: std::time::Duration = std::time::Duration::from_millis(10);

fn os_err(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

impl Notifier {
    pub(crate) fn new() -> Result<Arc<Notifier>, Errno> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(os_err)?;
        let stop =
            rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).map_err(os_err)?;
        epoll::add(
            &epoll,
            &stop,
            epoll::EventData::new_u64(STOP),
            epoll::EventFlags::IN,
        )
        .map_err(os_err)?;
        Ok(Arc::new(Notifier {
            epoll,
            stop,
            state: Mutex::new(State::default()),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a request (the caller checked that it cannot be answered at once).
    pub(crate) fn watch(
        self: &Arc<Self>,
        name: PortName,
        want: Want,
        target: Arc<Queue>,
        notify: NotifyTo,
    ) -> Result<(), Errno> {
        let mut st = self.lock();
        let id = st.next;
        st.next += 1;
        let mut watched = Vec::new();
        if want == Want::NoSenders {
            watched = self.watch_senders(id, &target)?;
            if watched.is_empty() && target.senders.none_left() {
                // The last sender went after the caller looked: no read end
                // is left to wake us, so the answer is now.
                post_to(&notify, Notification::NO_SENDERS_ID, name);
                return Ok(());
            }
        } else {
            if let Some(live) = &target.live_watch {
                let dup = sys::dup(live.as_fd())?;
                epoll::add(
                    &self.epoll,
                    &dup,
                    epoll::EventData::new_u64(id),
                    epoll::EventFlags::IN | epoll::EventFlags::ET,
                )
                .map_err(os_err)?;
                watched.push(dup);
            }
        }
        // A port with a capacity page has room by the page, not by the
        // queue's `POLLOUT` (which stays ready below `mq_maxmsg`): the
        // watcher looks at the page every `PAGE_TICK` instead.
        if want == Want::SendPossible && target.cap.is_none() {
            let dup = sys::dup(target.fd())?;
            epoll::add(
                &self.epoll,
                &dup,
                epoll::EventData::new_u64(id),
                epoll::EventFlags::OUT,
            )
            .map_err(os_err)?;
            watched.push(dup);
        }
        st.requests.insert(
            id,
            Request {
                name,
                want,
                target,
                notify,
                watched,
            },
        );
        if !st.started {
            let me = Arc::clone(self);
            std::thread::Builder::new()
                .name("mkipc-notify".into())
                .spawn(move || me.run())
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
            st.started = true;
        }
        Ok(())
    }

    /// Puts a duplicate of each read end of `target`'s senders pipes into
    /// the `epoll` instance under `id`.
    fn watch_senders(&self, id: u64, target: &Queue) -> Result<Vec<OwnedFd>, Errno> {
        let ends = target.senders.dup_watch()?;
        for fd in &ends {
            epoll::add(
                &self.epoll,
                fd,
                epoll::EventData::new_u64(id),
                epoll::EventFlags::IN,
            )
            .map_err(os_err)?;
        }
        Ok(ends)
    }

    /// Watches the current read ends of a no-senders request's port again
    /// (a generation hung up, or a new one was made).
    fn rewatch(&self, st: &mut State, id: u64) {
        let Some(r) = st.requests.get_mut(&id) else {
            return;
        };
        for fd in r.watched.drain(..) {
            let _ = epoll::delete(&self.epoll, &fd);
        }
        let target = Arc::clone(&r.target);
        match self.watch_senders(id, &target) {
            // Every generation hung up since: nothing will wake us, answer now.
            Ok(ends) if ends.is_empty() && target.senders.none_left() => {
                if let Some(r) = self.remove(st, id) {
                    post_to(&r.notify, Notification::NO_SENDERS_ID, r.name);
                }
            }
            Ok(ends) => {
                if let Some(r) = st.requests.get_mut(&id) {
                    r.watched = ends;
                }
            }
            Err(e) => {
                tracing::warn!(
                    errno = e,
                    "no-senders request dropped: cannot watch its port"
                );
                self.remove(st, id);
            }
        }
    }

    /// `q`'s port has a new generation of senders pipe: its no-senders
    /// requests watch it too.
    pub(crate) fn senders_grew(&self, q: &Queue) {
        let mut st = self.lock();
        let ids: Vec<u64> = st
            .requests
            .iter()
            .filter(|(_, r)| r.want == Want::NoSenders && same_port(&r.target, q))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.rewatch(&mut st, id);
        }
    }

    fn remove(&self, st: &mut State, id: u64) -> Option<Request> {
        let r = st.requests.remove(&id)?;
        for fd in &r.watched {
            let _ = epoll::delete(&self.epoll, fd);
        }
        Some(r)
    }

    /// The right under `name` is being sent in a message: its dead-name and
    /// no-senders requests are not answered until [`release`](Self::release),
    /// so a request whose right moves out lapses (or travels, `crate::travel`),
    /// as in the kernel, even if what it waits for happens while the message
    /// is on its way (its receiver may destroy the port, or let the last
    /// send right go, before the sender's name table is updated).
    pub(crate) fn hold(&self, name: PortName) {
        self.lock().held.insert(name);
    }

    /// The send that moved `name`'s right ended: its dead-name requests
    /// (those still there: a right that left took them with its name) are
    /// looked at again.
    pub(crate) fn release(&self, name: PortName) {
        let mut st = self.lock();
        if !st.held.remove(&name) {
            return;
        }
        // A no-senders request parked while held watches its port again
        // (the hang-up, if it came, fires at once).
        let parked: Vec<u64> = st
            .requests
            .iter()
            .filter(|(_, r)| r.name == name && r.want == Want::NoSenders && r.watched.is_empty())
            .map(|(&id, _)| id)
            .collect();
        for id in parked {
            self.rewatch(&mut st, id);
        }
        let ids: Vec<u64> = st
            .requests
            .iter()
            .filter(|(_, r)| r.name == name && r.want == Want::DeadName)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let gone = st
                .requests
                .get(&id)
                .is_some_and(|r| r.target.receiver() == Receiver::Gone);
            if gone {
                let r = self.remove(&mut st, id).expect("present");
                post_to(&r.notify, Notification::DEAD_NAME_ID, r.name);
            }
        }
    }

    /// Drops every request about `name` (the name was released).
    pub(crate) fn cancel(&self, name: PortName) {
        let mut st = self.lock();
        let ids: Vec<u64> = st
            .requests
            .iter()
            .filter(|(_, r)| r.name == name)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.remove(&mut st, id);
        }
    }

    /// Drops the no-senders requests about `target`'s port: its receive
    /// right left the process, and the request with it (`crate::travel`).
    pub(crate) fn lapse_no_senders(&self, target: &Queue) {
        let mut st = self.lock();
        let ids: Vec<u64> = st
            .requests
            .iter()
            .filter(|(_, r)| r.want == Want::NoSenders && same_port(&r.target, target))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.remove(&mut st, id);
        }
    }

    /// The no-senders request on `target`'s port, if any (the last one
    /// made), for a receive right about to move (`crate::travel`).
    pub(crate) fn no_senders_request(&self, target: &Queue) -> Option<NotifyTo> {
        let st = self.lock();
        st.requests
            .values()
            .filter(|r| r.want == Want::NoSenders && same_port(&r.target, target))
            .last()
            .map(|r| r.notify.clone())
    }

    /// The last send reference to the port under `name` in this process is
    /// gone: answers its no-senders requests if no other process holds a
    /// send right either (else the hang-up will).
    pub(crate) fn no_senders(&self, name: PortName) {
        let mut st = self.lock();
        let ids: Vec<u64> = st
            .requests
            .iter()
            .filter(|(_, r)| {
                r.want == Want::NoSenders && r.name == name && r.target.senders.none_left()
            })
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(r) = self.remove(&mut st, id) {
                post_to(&r.notify, Notification::NO_SENDERS_ID, r.name);
            }
        }
    }

    /// Ends the watcher thread (this process is going away).
    pub(crate) fn stop(&self) {
        let mut st = self.lock();
        let ids: Vec<u64> = st.requests.keys().copied().collect();
        for id in ids {
            self.remove(&mut st, id);
        }
        if st.started {
            // The eventfd turns readable: the watcher sees `STOP` and ends.
            let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
            st.started = false;
        }
    }

    fn run(&self) {
        let mut events = [MaybeUninit::<epoll::Event>::uninit(); 16];
        loop {
            let paged: Vec<u64> = self
                .lock()
                .requests
                .iter()
                .filter(|(_, r)| r.want == Want::SendPossible && r.target.cap.is_some())
                .map(|(&id, _)| id)
                .collect();
            let tick = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: PAGE_TICK.as_nanos() as i64,
            };
            let timeout = (!paged.is_empty()).then_some(&tick);
            let ready: Vec<u64> = match epoll::wait(&self.epoll, &mut events, timeout) {
                // The page-watched requests are looked at on every turn.
                Ok((ready, _)) => ready.iter().map(|e| e.data.u64()).chain(paged).collect(),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!(errno = e.raw_os_error(), "mkipc-notify: epoll failed");
                    return;
                }
            };
            if ready.contains(&STOP) {
                return;
            }
            let mut st = self.lock();
            for id in ready {
                let Some(r) = st.requests.get(&id) else {
                    continue;
                };
                if r.want == Want::DeadName && st.held.contains(&r.name) {
                    // Looked at again when the send ends (`release`).
                    continue;
                }
                if r.want == Want::NoSenders && st.held.contains(&r.name) {
                    // Parked (out of the epoll instance, which would report
                    // a hang-up again and again) until the send ends.
                    if let Some(r) = st.requests.get_mut(&id) {
                        for fd in r.watched.drain(..) {
                            let _ = epoll::delete(&self.epoll, &fd);
                        }
                    }
                    continue;
                }
                if r.want == Want::NoSenders {
                    if r.target.senders.none_left() {
                        let r = self.remove(&mut st, id).expect("present");
                        post_to(&r.notify, Notification::NO_SENDERS_ID, r.name);
                    } else {
                        // A generation hung up while another lives on.
                        self.rewatch(&mut st, id);
                    }
                    continue;
                }
                let answer = match r.target.receiver() {
                    Receiver::Gone => Some(Notification::DEAD_NAME_ID),
                    _ if r.want == Want::SendPossible && has_room(&r.target) => {
                        Some(Notification::SEND_POSSIBLE_ID)
                    }
                    _ => None,
                };
                if let Some(n) = answer {
                    let r = self.remove(&mut st, id).expect("present");
                    post_to(&r.notify, n, r.name);
                }
            }
        }
    }
}

/// Whether two descriptors are of one port (this process's receive and send
/// descriptors share their `closed` flag).
fn same_port(a: &Queue, b: &Queue) -> bool {
    Arc::ptr_eq(&a.closed, &b.closed)
}

/// Whether the queue has room for a message now.
pub(crate) fn has_room(q: &Queue) -> bool {
    if let Some(page) = &q.cap {
        return page.has_room();
    }
    sys::mq_getattr(q.fd()).is_ok_and(|a| a.curmsgs < a.maxmsg)
}
