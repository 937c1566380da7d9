//! Real child processes running a *role*, by re-executing the current binary.
//!
//! `fork` alone would copy a multi-threaded process (the test harness runs
//! tests on several threads) with whatever locks other threads held at that
//! instant, which is unsafe to continue from. So a child is a fresh `exec` of
//! the same binary: [`Command`] forks and execs at once, and the new program
//! finds out which role to play from the environment (`MKIPC_OS_ROLE`) and
//! calls [`child_main`] early in `main` (or, in a test binary, from a
//! dedicated `#[test]` the child is told to run, see [`set_entry_args`]).
//!
//! Start-up, step by step:
//!
//! 1. The parent makes every pipe and socket the new processes need: for each
//!    child a pipe each way and a Unix socket pair with its parent (the direct
//!    link, whose socket carries rights), one per sibling link asked for, and
//!    a *bootstrap* socket pair.
//! 2. It spawns each child with only the bootstrap socket inherited (its
//!    number in `MKIPC_OS_BOOT`; every other descriptor is close-on-exec).
//! 3. Once every pid is known, it sends each child one bootstrap message:
//!    the run id, the role, its arguments, which descriptors are links with
//!    which pids, which are inherited rights, and the descriptors themselves
//!    by `SCM_RIGHTS`. Then it closes its copies of the children's ends, so
//!    that end of stream and `EPIPE` work.
//!
//! A [`Child`] that is dropped without [`Child::wait`] is killed and reaped,
//! and reaping a child removes the queues and FIFOs it owned, so no child
//! process and nothing it made outlives the handle, even after `SIGKILL`.
//! A child killed with children of its own cannot drop their handles; every
//! process that spawns is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so
//! they become its children, and reaping the dead child kills and reaps them
//! too (and theirs), as does the root's drop (`registry::reap_orphans`).
//!
//! Children also die with their parent: every child sets `PR_SET_PDEATHSIG`
//! to `SIGKILL` between `fork` and `exec`, then checks that its parent is
//! still the process that forked it (the parent may have died before the
//! `prctl`; the child then exits at once instead of running on). So a
//! program using [`Spawn`] that is killed with `SIGKILL` leaves no child
//! running, and its children's children go the same way. The signal follows
//! the forking *thread*, so one long-lived thread forks every child (see
//! `spawn_on_spawner_thread`).
//!
//! ```no_run
//! use mkipc_kernel::{Ipc, Message};
//! use mkipc_os::{child_main, OsProcess, Role, Spawn};
//!
//! fn echo(me: &OsProcess) -> i32 {
//!     let Some(parent) = me.parent() else { return 2 };
//!     match me.receive_from(parent) {
//!         Ok(m) => i32::from(me.send_to(parent, m).is_err()),
//!         Err(_) => 1,
//!     }
//! }
//! const ROLES: &[(&str, Role)] = &[("echo", echo)];
//!
//! fn main() {
//!     child_main(ROLES); // in a child: runs its role and exits; in the parent: returns
//!     let me = OsProcess::new().unwrap();
//!     let mut child = me.spawn(Spawn::new("echo")).unwrap();
//!     me.send_to(child.pid(), Message::new(1, b"ping")).unwrap();
//!     assert_eq!(&me.receive_from(child.pid()).unwrap().body[..], b"ping");
//!     assert_eq!(child.wait_code().unwrap(), 0);
//! }
//! ```

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use mkipc_kernel::name::Access;
use mkipc_kernel::{IpcError, Pid, PortName};

use crate::ends::{EndWay, LinkEnd, LinkEnds, LinkKind};
use crate::ipc::LINK_BODY_LIMIT;
use crate::link::{LinkRx, LinkTx};
use crate::names::Entry;
use crate::process::OsProcess;
use crate::queue::Queue;
use crate::registry;
use crate::shm::ShmEnd;
use crate::sys;

/// A right a child inherits, as the parent hands it over: its kind word,
/// its queue, the access, and a write end of its port's senders pipe.
type ChildRight = (&'static str, Arc<Queue>, Access, Option<OwnedFd>);

/// A `right` line of the start-up message, parsed: kind word, access,
/// queue descriptor, liveness read end, senders-pipe write end, capacity page.
type InheritedRight = (
    String,
    Access,
    OwnedFd,
    Option<OwnedFd>,
    Option<OwnedFd>,
    Option<crate::capacity::CapacityPage>,
);

/// The environment variable naming the role a child plays.
pub const ROLE_ENV: &str = "MKIPC_OS_ROLE";
/// The environment variable holding the bootstrap socket's descriptor number.
pub const BOOT_ENV: &str = "MKIPC_OS_BOOT";
/// The environment variable holding the run id.
pub const RUN_ENV: &str = "MKIPC_RUN_ID";

static ENTRY_ARGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Sets the arguments every child is started with (before the role is known).
/// A normal program needs none: it calls [`child_main`] at the top of `main`.
/// A test binary passes the name of the test that calls [`child_main`]:
/// `set_entry_args(&["role_entry", "--exact", "--nocapture", "-q"])`.
/// Children pass the arguments they were started with on to their own
/// children, so a role may spawn without setting them again.
pub fn set_entry_args(args: &[&str]) {
    *ENTRY_ARGS.lock().unwrap_or_else(|p| p.into_inner()) =
        args.iter().map(|s| s.to_string()).collect();
}

/// A role: the function a child runs. Its return value is the exit code.
pub type Role = fn(&OsProcess) -> i32;

/// If this process was started as a child by [`OsProcess::spawn`], runs its
/// role and exits with the role's code (101 if the role is unknown or
/// start-up fails); otherwise returns at once. A child's standard output is
/// `/dev/null` (a test harness prints there); its standard error is the
/// parent's.
pub fn child_main(roles: &[(&str, Role)]) {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    // A child was started with the entry arguments and nothing else: its own
    // children get them too (a role that spawns, in a test binary, must not
    // start grandchildren that run every test).
    {
        let mut entry = ENTRY_ARGS.lock().unwrap_or_else(|p| p.into_inner());
        if entry.is_empty() {
            *entry = std::env::args().skip(1).collect();
        }
    }
    let code = match OsProcess::from_bootstrap() {
        Ok(os) => match roles.iter().find(|(name, _)| *name == role) {
            Some((_, f)) => {
                let code = f(&os);
                drop(os);
                code
            }
            None => {
                eprintln!("mkipc-os: unknown role {role:?}");
                101
            }
        },
        Err(e) => {
            eprintln!("mkipc-os: child start-up failed: {e}");
            101
        }
    };
    std::process::exit(code);
}

/// How to start one child. Whatever the spec, the child is killed
/// (`SIGKILL`) when this process dies, however it dies.
#[derive(Clone, Debug)]
pub struct Spawn {
    role: String,
    args: Vec<String>,
    inherit: Vec<PortName>,
    uid: Option<u32>,
    link: LinkKind,
}

impl Spawn {
    /// A child that plays `role`.
    pub fn new(role: &str) -> Spawn {
        Spawn {
            role: role.to_string(),
            args: Vec::new(),
            inherit: Vec::new(),
            uid: None,
            link: LinkKind::Pipe,
        }
    }
    /// Adds a role argument ([`OsProcess::args`] in the child). No newlines.
    pub fn arg(mut self, arg: impl Into<String>) -> Spawn {
        self.args.push(arg.into());
        self
    }
    /// Passes a copy of the right under `name` (a send right, receive right or
    /// mailbox); the child finds it in [`OsProcess::inherited`]. A port's
    /// send right comes with a read end of the port's liveness pipe, so the
    /// child's sends fail with `DestinationDead` once the receiver is gone.
    pub fn inherit(mut self, name: PortName) -> Spawn {
        self.inherit.push(name);
        self
    }
    /// What the child's direct links run on: pipes (the default), shared
    /// memory ([`LinkKind::SharedMemory`], see [`crate::shm`]), or a Unix or
    /// TCP socket pair ([`LinkKind::UnixSocket`], [`LinkKind::Tcp`], see
    /// [`crate::socket`]). The link with this process always follows it; a
    /// sibling link of a [`OsProcess::spawn_group`] is in shared memory when
    /// both children ask for it, pipes otherwise.
    pub fn link_kind(mut self, kind: LinkKind) -> Spawn {
        self.link = kind;
        self
    }
    /// Runs the child as this user (and group of the same number), e.g. 65534
    /// ("nobody"), to see permissions enforced when the parent is root.
    pub fn uid(mut self, uid: u32) -> Spawn {
        self.uid = Some(uid);
        self
    }
}

/// A running child process.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    process: std::process::Child,
    run: String,
    status: Option<ExitStatus>,
}

impl Child {
    /// Its pid (the OS pid, which is also its mkipc pid).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends `SIGKILL`.
    pub fn kill(&mut self) -> std::io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.process.kill()
    }

    /// Waits for it to exit, then removes the queues and FIFOs it owned.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let s = self.process.wait()?;
        self.status = Some(s);
        registry::forget_process(&self.run, self.pid.0);
        // Its own children, if it left any running, are ours now (this
        // process is a subreaper): they go too.
        let orphans = registry::reap_orphans(&self.run);
        if !orphans.is_empty() {
            tracing::debug!(
                pid = self.pid.0,
                ?orphans,
                "killed what an exited child left running"
            );
        }
        let report = registry::reap_process(&self.run, self.pid.0);
        if !report.queues.is_empty() || !report.fifos.is_empty() {
            tracing::debug!(
                pid = self.pid.0,
                ?report,
                "removed what an exited child left"
            );
        }
        Ok(s)
    }

    /// Waits and returns the exit code, or `128 + signal` if a signal ended it.
    pub fn wait_code(&mut self) -> std::io::Result<i32> {
        let s = self.wait()?;
        Ok(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.process.kill();
            let _ = self.wait();
        }
    }
}

/// Forks `cmd` from one thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends,
/// not the process: a child forked by a short-lived thread (a test, a worker
/// of a pool) would be killed when that thread returns. So every child is
/// forked by the `mkipc-spawner` thread, which never ends; the signal then
/// comes exactly when this process dies. If that thread cannot be started,
/// the calling thread forks.
fn spawn_on_spawner_thread(mut cmd: Command) -> std::io::Result<std::process::Child> {
    type Job = (
        Command,
        std::sync::mpsc::Sender<std::io::Result<std::process::Child>>,
    );
    static SPAWNER: std::sync::OnceLock<Option<Mutex<std::sync::mpsc::Sender<Job>>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("mkipc-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let Some(spawner) = spawner else {
        return cmd.spawn();
    };
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    let sent = spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx));
    match sent {
        Ok(()) => reply_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the mkipc-spawner thread is gone"))),
        Err(std::sync::mpsc::SendError((mut cmd, _))) => cmd.spawn(),
    }
}

/// A sibling link as one child sees it: the peer's index in the group, the
/// indices (in the child's descriptor list) of its read end, write end and
/// rights socket.
type SiblingLink = (usize, Option<usize>, Option<usize>, usize);

/// Puts a shared-memory sibling link's end into `boot` and returns the rest
/// of its `shm-link` line: direction (`tx` or `rx`), side, and the
/// descriptor indices of the file, the two doorbells and the socket.
fn shm_line(boot: &mut Boot, end: LinkEnd, dir: &str) -> Result<String, IpcError> {
    let EndWay::Shm(shm) = end.way else {
        return Err(IpcError::InvalidValue);
    };
    let sock = boot.push_fd(end.rights.ok_or(IpcError::InvalidValue)?);
    let (side, [m, b0, b1]) = (shm.side, shm.bells_and_file());
    let (m, b0, b1) = (boot.push_fd(m), boot.push_fd(b0), boot.push_fd(b1));
    Ok(format!("{dir} {side} {m} {b0} {b1} {sock}"))
}

/// What one child gets at start-up, before it is serialised.
#[derive(Default)]
struct Boot {
    lines: Vec<String>,
    fds: Vec<OwnedFd>,
}

impl Boot {
    fn push_fd(&mut self, fd: OwnedFd) -> usize {
        self.fds.push(fd);
        self.fds.len() - 1
    }
}

fn ipc_err(e: sys::Errno) -> IpcError {
    crate::errno::ipc_error(e)
}

impl OsProcess {
    /// Spawns one child with a direct link to this process.
    pub fn spawn(&self, spec: Spawn) -> Result<Child, IpcError> {
        Ok(self.spawn_group(vec![spec], &[])?.pop().expect("one child"))
    }

    /// Spawns several children, each with a direct link to this process, plus
    /// one-way links between them: `(from, to)` indexes `specs` and lets child
    /// `from` send to child `to` (e.g. `[(0, 1), (1, 2)]` for a pipeline).
    pub fn spawn_group(
        &self,
        specs: Vec<Spawn>,
        links: &[(usize, usize)],
    ) -> Result<Vec<Child>, IpcError> {
        if links
            .iter()
            .any(|&(a, b)| a >= specs.len() || b >= specs.len() || a == b)
        {
            return Err(IpcError::InvalidValue);
        }
        let mut boots: Vec<Boot> = specs.iter().map(|_| Boot::default()).collect();
        // Parent links: (parent side, child index, child's line builder).
        let mut parent_links = Vec::new();
        let mut pending: Vec<Vec<SiblingLink>> = vec![Vec::new(); specs.len()];
        for (i, (boot, spec)) in boots.iter_mut().zip(&specs).enumerate() {
            let (mine, theirs) = crate::ends::new_link_of(spec.link)?;
            let line = match (theirs.way, theirs.rights) {
                // A socket link: its one socket.
                (EndWay::Socket(end), _) => {
                    let tcp = spec.link == LinkKind::Tcp;
                    let fd = boot.push_fd(end.fd);
                    format!("parent-socket {} {fd}", if tcp { "tcp" } else { "unix" })
                }
                (_, None) => return Err(IpcError::InvalidValue),
                (EndWay::Pipe { rx, tx }, Some(sock)) => {
                    let sock = boot.push_fd(sock);
                    let (rx, tx) = (boot.push_fd(rx), boot.push_fd(tx));
                    format!("parent-link {rx} {tx} {sock}")
                }
                (EndWay::Shm(end), Some(sock)) => {
                    let sock = boot.push_fd(sock);
                    let (side, [m, b0, b1]) = (end.side, end.bells_and_file());
                    let (m, b0, b1) = (boot.push_fd(m), boot.push_fd(b0), boot.push_fd(b1));
                    format!("parent-shm {side} {m} {b0} {b1} {sock}")
                }
            };
            boot.lines.push(line);
            parent_links.push((i, mine));
        }
        // Shared-memory sibling links, per child: (peer index, the rest of
        // its `shm-link` line).
        let mut pending_shm: Vec<Vec<(usize, String)>> = vec![Vec::new(); specs.len()];
        for &(from, to) in links {
            if specs[from].link == LinkKind::SharedMemory
                && specs[to].link == LinkKind::SharedMemory
            {
                let (a, b) = crate::ends::new_link_of(LinkKind::SharedMemory)?;
                for (end, me, peer, dir) in [(a, from, to, "tx"), (b, to, from, "rx")] {
                    let line = shm_line(&mut boots[me], end, dir)?;
                    pending_shm[me].push((peer, line));
                }
                continue;
            }
            let (r, w) = sys::pipe().map_err(ipc_err)?;
            let (sa, sb) = sys::socketpair().map_err(ipc_err)?;
            let w = boots[from].push_fd(w);
            let sa = boots[from].push_fd(sa);
            pending[from].push((to, None, Some(w), sa));
            let r = boots[to].push_fd(r);
            let sb = boots[to].push_fd(sb);
            pending[to].push((from, Some(r), None, sb));
        }
        for (boot, spec) in boots.iter_mut().zip(&specs) {
            for &name in &spec.inherit {
                let (kind, queue, access, senders) = self.right_for_child(name)?;
                let fd = queue.dup_fd().map_err(ipc_err)?;
                let idx = boot.push_fd(fd);
                // A port's send right watches the port's liveness pipe in
                // the child too (see "Receiver death" in DESIGN.md).
                let live = match &queue.live_watch {
                    Some(w) => boot
                        .push_fd(sys::dup(w.as_fd()).map_err(ipc_err)?)
                        .to_string(),
                    None => "-".to_string(),
                };
                // And a write end of its senders pipe (`crate::senders`).
                let senders = match senders {
                    Some(end) => boot.push_fd(end).to_string(),
                    None => "-".to_string(),
                };
                // And a bounded port's capacity page (`crate::capacity`).
                let page = match &queue.cap {
                    Some(p) => boot.push_fd(p.dup_fd().map_err(ipc_err)?).to_string(),
                    None => "-".to_string(),
                };
                boot.lines.push(format!(
                    "right {kind} {} {} {idx} {live} {senders} {page}",
                    access.send as u8, access.receive as u8
                ));
            }
            for a in &spec.args {
                if a.contains('\n') {
                    return Err(IpcError::InvalidValue);
                }
                boot.lines.push(format!("arg {a}"));
            }
        }

        // A child that dies before its own children leaves them to its
        // nearest subreaper ancestor: this process, which then kills and
        // reaps them ([`registry::reap_orphans`]) rather than leave them
        // running, or as zombies of an init that never reaps.
        static SUBREAPER: std::sync::Once = std::sync::Once::new();
        SUBREAPER.call_once(|| {
            if let Err(e) = sys::become_subreaper() {
                tracing::warn!(errno = e, "cannot become a child subreaper");
            }
        });
        // Spawn them all, then tell each who its peers are.
        let mut children = Vec::new();
        let mut boot_socks = Vec::new();
        for spec in &specs {
            let (mine, theirs) = sys::socketpair().map_err(ipc_err)?;
            let child = self
                .exec_child(spec, &theirs)
                .map_err(crate::process::io_error)?;
            drop(theirs);
            let pid = Pid(child.id());
            if let Err(e) = registry::record_process(&self.run, pid.0, self.pid) {
                tracing::warn!(pid = pid.0, error = %e, "could not record a child");
            }
            children.push(Child {
                pid,
                process: child,
                run: self.run.clone(),
                status: None,
            });
            boot_socks.push(mine);
        }
        for (i, mut boot) in boots.into_iter().enumerate() {
            for (peer, rest) in &pending_shm[i] {
                boot.lines
                    .push(format!("shm-link {} {rest}", children[*peer].pid.0));
            }
            for (peer, r, w, s) in &pending[i] {
                let show = |x: &Option<usize>| x.map_or("-".to_string(), |v| v.to_string());
                boot.lines.push(format!(
                    "link {} {} {} {}",
                    children[*peer].pid.0,
                    show(r),
                    show(w),
                    s
                ));
            }
            boot.lines.insert(
                0,
                format!("start {} {} {}", self.run, self.pid, specs[i].role),
            );
            let text = boot.lines.join("\n");
            let mut data = (text.len() as u32).to_le_bytes().to_vec();
            data.extend_from_slice(text.as_bytes());
            let raw: Vec<RawFd> = boot.fds.iter().map(|f| f.as_raw_fd()).collect();
            sys::send_fds(boot_socks[i].as_fd(), &data, &raw).map_err(ipc_err)?;
        }
        let mut ends = Vec::new();
        for (i, mine) in parent_links {
            let pid = children[i].pid.0;
            ends.push((pid, mine.into_ends(pid)?));
        }
        let mut links_table = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links_table.extend(ends);
        Ok(children)
    }

    fn right_for_child(&self, name: PortName) -> Result<ChildRight, IpcError> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match names.get(name)? {
            Entry::Port { send, receive, .. } => {
                let (end, grew) = send
                    .senders
                    .end_for_right(receive.is_some())
                    .map_err(crate::errno::ipc_error)?;
                if grew {
                    names.senders_grew(send);
                }
                ("send", Arc::clone(send), Access::SEND, end)
            }
            Entry::Mailbox { queue, .. } if queue.granted => {
                // Its descriptor would carry our access past the list.
                return Err(IpcError::Unsupported(
                    mkipc_kernel::error::Unsupported::Grants,
                ));
            }
            Entry::Mailbox { queue, access, .. } => ("mailbox", Arc::clone(queue), *access, None),
            Entry::SendOnce { send } => ("send", Arc::clone(send), Access::SEND, None),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: mkipc_kernel::name::RightKind::Send,
                })
            }
        })
    }

    fn exec_child(&self, spec: &Spawn, boot: &OwnedFd) -> std::io::Result<std::process::Child> {
        let exe = std::env::current_exe()?;
        let entry = ENTRY_ARGS.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let fd = boot.as_raw_fd();
        let mut cmd = Command::new(exe);
        cmd.args(entry.iter().map(OsString::from))
            .env(ROLE_ENV, &spec.role)
            .env(RUN_ENV, &self.run)
            .env(BOOT_ENV, fd.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(uid) = spec.uid {
            cmd.uid(uid).gid(uid);
        }
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and calls only
        // fcntl, prctl and getppid, which are async-signal-safe; it
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                sys::clear_cloexec_raw(fd).map_err(std::io::Error::from_raw_os_error)?;
                sys::die_with_parent_raw(parent).map_err(std::io::Error::from_raw_os_error)
            });
        }
        spawn_on_spawner_thread(cmd)
    }

    /// Builds the child's `OsProcess` from the bootstrap message.
    fn from_bootstrap() -> Result<OsProcess, IpcError> {
        let fd: RawFd = std::env::var(BOOT_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or(IpcError::InvalidValue)?;
        std::env::remove_var(BOOT_ENV);
        std::env::remove_var(ROLE_ENV);
        // SAFETY: the parent put this descriptor here for us alone, and it is
        // taken exactly once (the variable is removed above).
        let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut len = [0u8; 4];
        let fds = sys::recv_fds(sock.as_fd(), &mut len, 250)
            .map_err(ipc_err)?
            .ok_or(IpcError::NotFound)?;
        let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
        sys::recv_fds(sock.as_fd(), &mut text, 1)
            .map_err(ipc_err)?
            .ok_or(IpcError::InvalidValue)?;
        let text = String::from_utf8(text).map_err(|_| IpcError::InvalidValue)?;
        let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
        let mut take = |s: &str| -> Result<Option<OwnedFd>, IpcError> {
            if s == "-" {
                return Ok(None);
            }
            let i: usize = s.parse().map_err(|_| IpcError::InvalidValue)?;
            fds.get_mut(i)
                .and_then(Option::take)
                .map(Some)
                .ok_or(IpcError::InvalidValue)
        };

        let mut run = String::new();
        let mut parent = 0u32;
        let mut args = Vec::new();
        let mut links: Vec<(u32, LinkEnds)> = Vec::new();
        let mut rights: Vec<InheritedRight> = Vec::new();
        for line in text.lines() {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            let f: Vec<&str> = rest.split(' ').collect();
            match word {
                "start" => {
                    run = f.first().copied().unwrap_or_default().to_string();
                    parent = f.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
                }
                "arg" => args.push(rest.to_string()),
                "parent-link" | "link" => {
                    let (peer, f) = if word == "link" {
                        (
                            f.first()
                                .and_then(|p| p.parse().ok())
                                .ok_or(IpcError::InvalidValue)?,
                            &f[1..],
                        )
                    } else {
                        (parent, &f[..])
                    };
                    if f.len() < 3 {
                        return Err(IpcError::InvalidValue);
                    }
                    let (rx, tx, sock) = (take(f[0])?, take(f[1])?, take(f[2])?);
                    let sock = sock.map(Arc::new);
                    links.push((
                        peer,
                        LinkEnds {
                            rx: rx
                                .map(|fd| Arc::new(LinkRx::new(fd, sock.clone(), LINK_BODY_LIMIT))),
                            tx: tx.map(|fd| Arc::new(LinkTx::new(fd, sock.clone()))),
                        },
                    ));
                }
                "parent-socket" => {
                    if f.len() < 2 {
                        return Err(IpcError::InvalidValue);
                    }
                    let fd = take(f[1])?.ok_or(IpcError::InvalidValue)?;
                    let end = LinkEnd::from_socket_fd(fd, f[0] == "tcp");
                    links.push((parent, end.into_ends(parent)?));
                }
                "parent-shm" => {
                    if f.len() < 5 {
                        return Err(IpcError::InvalidValue);
                    }
                    let side: usize = f[0].parse().map_err(|_| IpcError::InvalidValue)?;
                    let mut fd = |s| take(s)?.ok_or(IpcError::InvalidValue);
                    let (m, b0, b1, sock) = (fd(f[1])?, fd(f[2])?, fd(f[3])?, fd(f[4])?);
                    let end = LinkEnd::from_shm(ShmEnd::from_fds(side, m, b0, b1), sock);
                    links.push((parent, end.into_ends(parent)?));
                }
                "shm-link" => {
                    // A one-way sibling link: keep only the half this child uses.
                    if f.len() < 7 {
                        return Err(IpcError::InvalidValue);
                    }
                    let peer: u32 = f[0].parse().map_err(|_| IpcError::InvalidValue)?;
                    let side: usize = f[2].parse().map_err(|_| IpcError::InvalidValue)?;
                    let mut fd = |s| take(s)?.ok_or(IpcError::InvalidValue);
                    let (m, b0, b1, sock) = (fd(f[3])?, fd(f[4])?, fd(f[5])?, fd(f[6])?);
                    let end = LinkEnd::from_shm(ShmEnd::from_fds(side, m, b0, b1), sock);
                    let mut ends = end.into_ends(peer)?;
                    match f[1] {
                        "tx" => ends.rx = None,
                        "rx" => ends.tx = None,
                        _ => return Err(IpcError::InvalidValue),
                    }
                    links.push((peer, ends));
                }
                "right" => {
                    if f.len() < 4 {
                        return Err(IpcError::InvalidValue);
                    }
                    let access = Access {
                        send: f[1] == "1",
                        receive: f[2] == "1",
                    };
                    let fd = take(f[3])?.ok_or(IpcError::InvalidValue)?;
                    let live = take(f.get(4).copied().unwrap_or("-"))?;
                    let senders = take(f.get(5).copied().unwrap_or("-"))?;
                    let page = take(f.get(6).copied().unwrap_or("-"))?
                        .map(crate::capacity::CapacityPage::adopt)
                        .transpose()
                        .map_err(ipc_err)?;
                    rights.push((f[0].to_string(), access, fd, live, senders, page));
                }
                _ => return Err(IpcError::InvalidValue),
            }
        }
        let os = OsProcess::build(run, false, Some(parent), args, Vec::new());
        let mut inherited = Vec::new();
        for (kind, access, fd, live, senders, page) in rights {
            let mut q =
                Queue::from_fd(fd, String::new(), access.receive, access.send).map_err(ipc_err)?;
            q.live_watch = live;
            q.cap = page.map(Arc::new);
            q.senders = Arc::new(crate::senders::Senders::holding(senders));
            let q = Arc::new(q);
            inherited.push(os.insert(if kind == "mailbox" {
                Entry::Mailbox {
                    queue: q,
                    access,
                    owned: false,
                    system: false,
                }
            } else {
                Entry::Port {
                    receive: None,
                    send: q,
                    send_refs: 1,
                }
            }));
        }
        let mut os = os;
        os.inherited = inherited;
        {
            let mut table = os.links.lock().unwrap_or_else(|p| p.into_inner());
            for (peer, ends) in links {
                let e = table.entry(peer).or_default();
                if ends.rx.is_some() {
                    e.rx = ends.rx;
                }
                if ends.tx.is_some() {
                    e.tx = ends.tx;
                }
            }
        }
        Ok(os)
    }
}
