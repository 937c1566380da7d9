//! Who tells a shared-memory link that its peer died.
//!
//! A pipe is hung up by the kernel when its writer dies; a ring in shared
//! memory is not: a futex sleeper would sleep on. So each process that holds
//! a shared-memory link ([`crate::shm`]) runs one `mkipc-shm-watch` thread,
//! started with the first such link, which `poll`s a *pidfd* per peer (a
//! descriptor that becomes readable when that process has exited, whatever
//! killed it). When one fires, the thread marks both rings of the link
//! closed on the dead side and wakes every sleeper of this process on them:
//! a receive then reads what the peer wrote before it died, then ends with
//! end of stream (or `Truncated` inside a frame), and a send fails with
//! `DestinationDead`. The fast path costs nothing: the thread sleeps in
//! `poll` until a peer dies or a link comes or goes.
//!
//! A pidfd names a process, not a descriptor, so unlike the ports' liveness
//! pipes (DESIGN.md, "Receiver death") a `fork` in flight elsewhere in the
//! dying process cannot delay the news.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::shm::Shared;
use crate::sys;
use crate::sys_shm;

struct Watched {
    pidfd: OwnedFd,
    link: Weak<Shared>,
}

struct Watcher {
    list: Mutex<Vec<Watched>>,
    /// Rung to make the thread look at `list` again.
    control: OwnedFd,
}

static WATCHER: OnceLock<Option<Watcher>> = OnceLock::new();

fn watcher() -> Option<&'static Watcher> {
    WATCHER
        .get_or_init(|| {
            let control = match sys_shm::eventfd() {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!(errno = e, "no eventfd: shared-memory peers are not watched");
                    return None;
                }
            };
            Some(Watcher {
                list: Mutex::new(Vec::new()),
                control,
            })
        })
        .as_ref()
        .inspect(|w| start_thread(w))
}

/// Starts the thread once per process: a child made by `fork` without
/// `exec` has the parent's memory but not its threads, so the pid that
/// started it is remembered and a forked child starts its own.
fn start_thread(w: &'static Watcher) {
    static STARTED_BY: Mutex<u32> = Mutex::new(0);
    let me = std::process::id();
    let mut started = STARTED_BY.lock().unwrap_or_else(|p| p.into_inner());
    if *started == me {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("mkipc-shm-watch".into())
        .spawn(move || run(w));
    match spawned {
        Ok(_) => *started = me,
        Err(e) => tracing::warn!(error = %e, "cannot start the shared-memory watcher"),
    }
}

/// Watches process `pid` for `link`: when it exits, `link` hears of it
/// ([`Shared::peer_gone`]). A peer already gone (`ESRCH`) is reported at once.
pub(crate) fn watch(pid: u32, link: &Arc<Shared>) {
    let pidfd = match sys_shm::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(libc::ESRCH) => return link.peer_gone(),
        Err(e) => {
            tracing::warn!(
                pid,
                errno = e,
                "cannot watch a shared-memory peer: its death will not be seen"
            );
            return;
        }
    };
    let Some(w) = watcher() else { return };
    w.list
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Watched {
            pidfd,
            link: Arc::downgrade(link),
        });
    sys_shm::eventfd_ring(w.control.as_fd());
}

/// Tells the watcher a link is gone (so it closes that peer's pidfd).
/// Starts nothing if there is no watcher.
pub(crate) fn forget() {
    if let Some(Some(w)) = WATCHER.get() {
        sys_shm::eventfd_ring(w.control.as_fd());
    }
}

fn run(w: &'static Watcher) {
    loop {
        // Only this thread removes entries, so the raw descriptors polled
        // below stay open while it polls.
        let (fds, links): (Vec<RawFd>, Vec<Weak<Shared>>) = {
            let mut list = w.list.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|e| e.link.strong_count() > 0);
            list.iter()
                .map(|e| (e.pidfd.as_raw_fd(), e.link.clone()))
                .unzip()
        };
        let mut set = vec![(w.control.as_raw_fd(), libc::POLLIN)];
        set.extend(fds.iter().map(|&fd| (fd, libc::POLLIN)));
        let ready = match sys::poll_events(&set, None) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(errno = e, "shared-memory watcher stops");
                return;
            }
        };
        sys_shm::eventfd_drain(w.control.as_fd());
        let fired: Vec<RawFd> = ready
            .into_iter()
            .filter(|&i| i > 0)
            .map(|i| {
                if let Some(link) = links[i - 1].upgrade() {
                    link.peer_gone();
                }
                fds[i - 1]
            })
            .collect();
        if !fired.is_empty() {
            w.list
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|e| !fired.contains(&e.pidfd.as_raw_fd()));
        }
    }
}
