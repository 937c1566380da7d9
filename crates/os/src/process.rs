//! [`OsProcess`]: this real process as an mkipc task.
//!
//! One `OsProcess` per process (a role in a child, or the parent) owns the
//! process's name space, its direct links (pipes to the processes it was
//! spawned with) and its *reply queue* `/mkipc-<run>-<pid>-reply`, where
//! replies to its calls and acknowledgements of its rendezvous sends arrive.
//! Dropping it tidies up: spools are flushed, mailboxes it owns and its
//! reply queue are unlinked, and the root of a run removes everything the run
//! registered (see [`crate::registry`]).
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! use mkipc_os::OsProcess;
//!
//! let os = OsProcess::new().unwrap();
//! let port = os.port_allocate(Capacity::Bounded(4)).unwrap(); // a real POSIX queue
//! let to_port = os.make_send(port).unwrap();
//! os.send(to_port, Message::new(1, b"to myself")).unwrap();
//! assert_eq!(&os.receive(port).unwrap().body[..], b"to myself");
//! let run = os.run_id().to_string();
//! drop(os);
//! assert!(mkipc_os::registry::leftovers(&run).is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mkipc_kernel::message::Body;
use mkipc_kernel::name::Access;
use mkipc_kernel::{Capacity, IpcError, Pid, PortName};

use crate::capacity::CapacityPage;
use crate::ends::{LinkEnd, LinkEnds};
use crate::errno;
use crate::fifo::Fifo;
use crate::names::{Entry, Names};
use crate::queue::Queue;
use crate::registry::{self, EntryOwner, Kind};
use crate::spool;
use crate::sys;
use crate::wire::Header;

/// This process, seen as an mkipc task: it owns the name space, the direct
/// links, and the reply queue of this process, and implements
/// [`Ipc`](mkipc_kernel::Ipc).
pub struct OsProcess {
    pub(crate) pid: u32,
    pub(crate) run: String,
    root: bool,
    pub(crate) parent: Option<u32>,
    pub(crate) names: Mutex<Names>,
    pub(crate) links: Mutex<BTreeMap<u32, LinkEnds>>,
    pub(crate) inherited: Vec<PortName>,
    pub(crate) args: Vec<String>,
    pub(crate) reply: Mutex<ReplyState>,
    /// Queues of other processes' reply queues, opened once.
    pub(crate) peers: Mutex<BTreeMap<u32, Arc<Queue>>>,
    pub(crate) next_token: AtomicU32,
    next_object: AtomicU64,
    /// Serialises `receive_from_any`'s round robin.
    pub(crate) rr: AtomicU32,
    /// The run's broker, in its root (rights through queues, `crate::broker`).
    _broker: Option<crate::broker::Broker>,
    /// This process's connection to the run's broker.
    pub(crate) broker_client: crate::broker::BrokerClient,
}

#[derive(Default)]
pub(crate) struct ReplyState {
    pub(crate) queue: Option<Arc<Queue>>,
    /// Tokens some thread is waiting for.
    pub(crate) outstanding: BTreeSet<u32>,
    /// Frames that arrived for another waiter.
    pub(crate) stash: BTreeMap<u32, (Header, Body)>,
}

impl std::fmt::Debug for OsProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsProcess")
            .field("pid", &self.pid)
            .field("run", &self.run)
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OsProcess {
    /// This process as the root of a new run (a fresh run id): when it is
    /// dropped, everything the run registered is removed.
    pub fn new() -> Result<OsProcess, IpcError> {
        Ok(OsProcess::build(
            registry::new_run_id(),
            true,
            None,
            Vec::new(),
            Vec::new(),
        ))
    }

    /// This process joining an existing run (to meet unrelated processes of
    /// that run through mailboxes and FIFOs). It removes only what it owns.
    /// A run id follows the [name rule](mkipc_kernel::name_rules) and is at
    /// most [`MAX_RUN_ID_LEN`](mkipc_kernel::name_rules::MAX_RUN_ID_LEN)
    /// bytes (so every mailbox name fits in a POSIX queue name); any other is
    /// [`IpcError::InvalidValue`].
    pub fn join(run: &str) -> Result<OsProcess, IpcError> {
        if !mkipc_kernel::name_rules::is_valid_name(run)
            || run.len() > mkipc_kernel::name_rules::MAX_RUN_ID_LEN
        {
            return Err(IpcError::InvalidValue);
        }
        Ok(OsProcess::build(
            run.to_string(),
            false,
            None,
            Vec::new(),
            Vec::new(),
        ))
    }

    pub(crate) fn build(
        run: String,
        root: bool,
        parent: Option<u32>,
        args: Vec<String>,
        inherited: Vec<PortName>,
    ) -> OsProcess {
        sys::ignore_sigpipe();
        raise_msgqueue_limit();
        let broker = if root {
            crate::broker::Broker::start(&run)
                .map_err(|e| {
                    tracing::warn!(errno = e, "no broker: rights cannot travel through queues")
                })
                .ok()
        } else {
            None
        };
        OsProcess {
            pid: std::process::id(),
            run,
            root,
            parent,
            names: Mutex::new(Names::default()),
            links: Mutex::new(BTreeMap::new()),
            inherited,
            args,
            reply: Mutex::new(ReplyState::default()),
            peers: Mutex::new(BTreeMap::new()),
            next_token: AtomicU32::new(1),
            next_object: AtomicU64::new(0),
            rr: AtomicU32::new(0),
            _broker: broker,
            broker_client: crate::broker::BrokerClient::default(),
        }
    }

    /// The run this process belongs to.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// The process that spawned this one, if it was spawned by mkipc.
    pub fn parent(&self) -> Option<Pid> {
        self.parent.map(Pid)
    }

    /// The rights the parent passed at spawn ([`crate::Spawn::inherit`]), in order.
    pub fn inherited(&self) -> &[PortName] {
        &self.inherited
    }

    /// The role arguments given at spawn.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The processes this one has a direct link with.
    pub fn peers(&self) -> Vec<Pid> {
        lock(&self.links).keys().map(|&p| Pid(p)).collect()
    }

    /// Adopts one end of a [`new_link`](crate::new_link) (or [`new_link_of`](crate::new_link_of)) as the direct
    /// link with `peer`: for a process that was started some other way than
    /// [`OsProcess::spawn`] (e.g. `fork` from a single-threaded program, as
    /// the conformance suite does). A shared-memory end is mapped here, and
    /// process `peer` is watched so that its death ends this side's waits;
    /// a file that is not such a link's is [`IpcError::InvalidValue`].
    pub fn adopt_link(&self, peer: Pid, end: LinkEnd) -> Result<(), IpcError> {
        let ends = end.into_ends(peer.0)?;
        lock(&self.links).insert(peer.0, ends);
        Ok(())
    }

    /// The processes this one can send to directly.
    pub fn receivers(&self) -> Vec<Pid> {
        lock(&self.links)
            .iter()
            .filter(|(_, l)| l.tx.is_some())
            .map(|(&p, _)| Pid(p))
            .collect()
    }

    /// The processes this one can receive from directly.
    pub fn senders(&self) -> Vec<Pid> {
        lock(&self.links)
            .iter()
            .filter(|(_, l)| l.rx.is_some())
            .map(|(&p, _)| Pid(p))
            .collect()
    }

    /// Closes the direct link with `pid` in both directions: the peer's
    /// receives end with [`ReceiveError::SourceDead`](mkipc_kernel::ReceiveError::SourceDead) once it has read what
    /// was sent, and its sends fail with `DestinationDead` (`EPIPE`).
    pub fn close_link(&self, pid: Pid) -> Result<(), IpcError> {
        lock(&self.links)
            .remove(&pid.0)
            .map(drop)
            .ok_or(IpcError::NotFound)
    }

    /// The POSIX name of the mailbox called `name` in this run.
    pub fn mailbox_posix_name(&self, name: &str) -> String {
        format!("/{}{}-m-{}", registry::PREFIX, self.run, name)
    }

    pub(crate) fn fresh_queue_name(&self, what: &str) -> String {
        let n = self.next_object.fetch_add(1, Ordering::Relaxed);
        format!(
            "/{}{}-{}-{}{}",
            registry::PREFIX,
            self.run,
            self.pid,
            what,
            n
        )
    }

    pub(crate) fn insert(&self, entry: Entry) -> PortName {
        lock(&self.names).insert(entry)
    }

    // ----- POSIX queues by raw name --------------------------------------------

    /// Opens any POSIX queue by its raw name (one leading slash, no other),
    /// e.g. one a C program made, as a mailbox with the access its mode gives.
    /// A malformed POSIX name is [`IpcError::InvalidName`].
    pub fn mailbox_open_posix(&self, posix: &str) -> Result<PortName, IpcError> {
        crate::queue::validate_name(posix).map_err(|_| IpcError::InvalidName)?;
        let (queue, access) = open_with_best_access(posix)?;
        Ok(self.insert(Entry::Mailbox {
            queue: Arc::new(queue),
            access,
            owned: false,
            system: false,
        }))
    }

    pub(crate) fn create_mailbox_queue(
        &self,
        name: &str,
        capacity: Capacity,
        default: Access,
        system: bool,
    ) -> Result<PortName, IpcError> {
        capacity.validate()?;
        let posix = self.mailbox_posix_name(name);
        let mut mode = 0o600;
        if default.send {
            mode |= 0o022;
        }
        if default.receive {
            mode |= 0o044;
        }
        let owner = if system {
            EntryOwner::Run
        } else {
            EntryOwner::Process(self.pid)
        };
        let fresh = registry::record(&self.run, Kind::Queue, &posix, owner).map_err(io_error)?;
        let queue = match Queue::create(&posix, capacity, mode, true, true) {
            Ok(mut q) => {
                q.watch = true;
                q.cap = self.new_mailbox_page(&posix, capacity);
                q
            }
            Err(e) => {
                // Take back only the entry this call made: on EEXIST the
                // mailbox is someone else's (or ours from before), and its
                // owner's entry must stay.
                if fresh {
                    registry::forget_own(&self.run, Kind::Queue, &posix, owner);
                }
                return Err(errno::create_queue_error(e, capacity));
            }
        };
        tracing::debug!(queue = %posix, %capacity, mode, "mailbox created");
        Ok(self.insert(Entry::Mailbox {
            queue: Arc::new(queue),
            access: Access::ALL,
            owned: true,
            system,
        }))
    }

    /// A bounded mailbox's capacity page (`crate::capacity`), handed to the
    /// run's broker so that every opener shares it; `None` (logged: its
    /// capacity then cannot change) for other models or without a broker.
    fn new_mailbox_page(&self, posix: &str, capacity: Capacity) -> Option<Arc<CapacityPage>> {
        let Capacity::Bounded(n) = capacity else {
            return None;
        };
        let kept = CapacityPage::new(n).and_then(|page| {
            self.broker_client
                .keep_page(&self.run, posix, Some(page.dup_fd()?))?;
            Ok(page)
        });
        match kept {
            Ok(page) => Some(Arc::new(page)),
            Err(e) => {
                tracing::warn!(errno = e, %posix, "mailbox without a capacity page");
                None
            }
        }
    }

    /// The capacity page of the bounded mailbox `posix` an opener shares,
    /// from the broker; `None` for other models and queues mkipc did not
    /// make (nothing to share: their capacity cannot change).
    pub(crate) fn mailbox_page(&self, q: &Queue, posix: &str) -> Option<Arc<CapacityPage>> {
        if q.model != crate::queue::Model::Bounded {
            return None;
        }
        let fd = self.broker_client.page(&self.run, posix).ok()?;
        match CapacityPage::adopt(fd) {
            Ok(page) => Some(Arc::new(page)),
            Err(e) => {
                tracing::warn!(errno = e, %posix, "a mailbox's capacity page was refused");
                None
            }
        }
    }

    /// A mailbox this process destroyed or that went with its owner: the
    /// broker forgets its page.
    pub(crate) fn forget_mailbox_page(&self, queue: &Queue) {
        if queue.cap.is_some() {
            let _ = self.broker_client.keep_page(&self.run, &queue.name, None);
        }
    }

    // ----- FIFOs ----------------------------------------------------------------

    /// Creates a FIFO at `path` and opens it for receiving: a byte-stream
    /// mailbox that unrelated processes reach by path. `others` is the access
    /// of other users (only `send` matters: the creator is the one reader).
    /// The FIFO is removed when this process drops (or by cleanup). A path
    /// that is not UTF-8 is [`IpcError::InvalidValue`]; one with a NUL or
    /// another control character is [`IpcError::InvalidName`].
    pub fn fifo_create(&self, path: &Path, others: Access) -> Result<PortName, IpcError> {
        let path_str = path.to_str().ok_or(IpcError::InvalidValue)?;
        check_fifo_path(path)?;
        let mode = if others.send { 0o622 } else { 0o600 };
        let owner = EntryOwner::Process(self.pid);
        let fresh = registry::record(&self.run, Kind::Fifo, path_str, owner).map_err(io_error)?;
        let fifo = Fifo::create(path, mode).map_err(|e| {
            // On EEXIST the path is not ours (another process's FIFO, or any
            // file at all): cleanup must never remove it.
            if fresh {
                registry::forget_own(&self.run, Kind::Fifo, path_str, owner);
            }
            errno::ipc_error(e)
        })?;
        Ok(self.insert(Entry::Fifo(Arc::new(fifo))))
    }

    /// Opens the FIFO at `path` for sending. [`IpcError::NotFound`] if it does
    /// not exist, [`IpcError::DeadName`] if nobody has it open for reading,
    /// [`IpcError::InvalidValue`] if it is not a FIFO (see [`crate::fifo`]).
    pub fn fifo_open(&self, path: &Path) -> Result<PortName, IpcError> {
        check_fifo_path(path)?;
        let fifo = Fifo::open(path)?;
        Ok(self.insert(Entry::Fifo(Arc::new(fifo))))
    }

    /// A path for a FIFO called `name` in this run's directory
    /// (`/dev/shm/mkipc-<run>/fifo-<name>`).
    ///
    /// `name` follows the one name rule ([`mkipc_kernel::name_rules`]): no
    /// `/`, `.` or `..`, no control character, 1 to 160 bytes, so the path
    /// never leaves the run directory; any other name is
    /// [`IpcError::InvalidName`].
    pub fn fifo_path(&self, name: &str) -> Result<std::path::PathBuf, IpcError> {
        mkipc_kernel::name_rules::validate_name(name)?;
        let dir = registry::run_dir(&self.run);
        let _ = std::fs::create_dir_all(&dir);
        Ok(dir.join(format!("fifo-{name}")))
    }

    /// Waits until every spooled message of this process is in its queue, or
    /// `timeout` passes. Returns how many are still spooled.
    pub fn flush(&self, timeout: Duration) -> usize {
        let queues = self.sending_queues();
        let deadline = sys::deadline_after(timeout);
        queues
            .iter()
            .map(|q| {
                spool::drain(
                    q,
                    deadline.map_or(Duration::MAX, |d| {
                        d.saturating_duration_since(Instant::now())
                    }),
                )
            })
            .sum()
    }
}

impl OsProcess {
    /// The receiving end of the direct link from process `pid`, if there is
    /// one and it has not closed.
    pub(crate) fn link_rx(&self, pid: u32) -> Option<Arc<crate::link::LinkRx>> {
        lock(&self.links).get(&pid).and_then(|l| l.rx.clone())
    }

    /// The queues this process's sends go to (where its spools are).
    fn sending_queues(&self) -> Vec<Arc<Queue>> {
        let names = lock(&self.names);
        let mut v = Vec::new();
        names.for_each(|e| match e {
            Entry::Port { receive, send, .. } => {
                v.push(Arc::clone(receive.as_ref().unwrap_or(send)))
            }
            Entry::Mailbox { queue, .. } => v.push(Arc::clone(queue)),
            _ => {}
        });
        v
    }
}

impl Drop for OsProcess {
    fn drop(&mut self) {
        let left = self.flush(Duration::from_secs(2));
        if left > 0 {
            tracing::warn!(left, "dropping spooled messages nobody received");
            // Spooled messages die with their sender: stop the flushers, or
            // they would poll (and hold the queues open) for the rest of the
            // program.
            for q in self.sending_queues() {
                spool::discard(&q);
            }
        }
        let entries = lock(&self.names).drain();
        for e in entries {
            match e {
                Entry::Mailbox {
                    queue,
                    owned: true,
                    system: false,
                    ..
                } => {
                    if sys::mq_unlink(&queue.name).is_ok() {
                        queue.wake_gone();
                    }
                    self.forget_granted(&queue);
                    self.forget_mailbox_page(&queue);
                    registry::forget(&self.run, Kind::Queue, &queue.name);
                }
                Entry::Fifo(f) if f.owned => {
                    let _ = std::fs::remove_file(&f.path);
                    if let Some(p) = f.path.to_str() {
                        registry::forget(&self.run, Kind::Fifo, p);
                    }
                }
                Entry::Reply { pid, token } => self.send_no_reply(pid, token),
                Entry::Port {
                    receive: Some(q),
                    send,
                    ..
                } => self.end_receive_right(&q, &send),
                _ => {}
            }
        }
        if let Some(q) = lock(&self.reply).queue.take() {
            let _ = sys::mq_unlink(&q.name);
            registry::forget(&self.run, Kind::Queue, &q.name);
        }
        if self.root {
            let orphans = registry::reap_orphans(&self.run);
            if !orphans.is_empty() {
                tracing::debug!(?orphans, "killed processes of the run left running");
            }
            let report = registry::cleanup(&self.run);
            tracing::debug!(?report, "run cleaned up");
        }
    }
}

/// A FIFO path must not hold NUL (no system call takes it) or any other
/// control character (reports print one path a line).
fn check_fifo_path(path: &Path) -> Result<(), IpcError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(IpcError::InvalidName);
    }
    Ok(())
}

/// Opens a queue with the most access its mode allows this process.
pub(crate) fn open_with_best_access(posix: &str) -> Result<(Queue, Access), IpcError> {
    let mut last = libc::EACCES;
    for (r, w) in [(true, true), (false, true), (true, false)] {
        match Queue::open(posix, r, w) {
            Ok(mut q) => {
                q.watch = true;
                return Ok((
                    q,
                    Access {
                        send: w,
                        receive: r,
                    },
                ));
            }
            Err(libc::EACCES) => last = libc::EACCES,
            Err(e) => return Err(errno::ipc_error(e)),
        }
    }
    Err(errno::ipc_error(last))
}

pub(crate) fn io_error(e: std::io::Error) -> IpcError {
    errno::ipc_error(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Raises `RLIMIT_MSGQUEUE` (819200 bytes by default: about nine queues of
/// 10 x 8 KiB per user) as far as allowed, so tests and examples with many
/// queues do not fail with `EMFILE`.
fn raise_msgqueue_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut lim) } != 0 {
        return;
    }
    let want: libc::rlim_t = 512 << 20;
    let new = if sys::geteuid() == 0 {
        libc::rlimit {
            rlim_cur: lim.rlim_cur.max(want),
            rlim_max: lim.rlim_max.max(want),
        }
    } else {
        libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        }
    };
    // SAFETY: `new` is a valid rlimit; failure leaves the limit as it was.
    unsafe {
        libc::setrlimit(libc::RLIMIT_MSGQUEUE, &new);
    }
}
