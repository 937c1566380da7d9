//! Nothing left behind: run ids, the run directory, and [`cleanup`].
//!
//! POSIX queues and FIFOs outlive the process that made them: a queue stays in
//! the kernel until someone calls `mq_unlink`, a FIFO stays on disk until
//! someone removes the file. A process killed with `SIGKILL` gets no chance to
//! do either. So every such object is
//!
//! 1. named with the prefix `mkipc-` and the id of the *run* that made it
//!    (`/mkipc-<run>-...` for queues), and
//! 2. written down, before it is created, in the run directory
//!    `/dev/shm/mkipc-<run>/` (or `/tmp/...` when `/dev/shm` is missing) as
//!    one small file per object, holding its kind, its owner's pid and its name.
//!
//! Whoever outlives a crash (the parent reaping a killed child, the root of the
//! run when it drops, or a later run calling [`cleanup_stale`]) reads the
//! directory and removes what it lists. This works without `/dev/mqueue`
//! being mounted; when it is mounted, [`leftovers`] also scans it.
//!
//! A run id is `<root pid>-<counter>-<time>`: the first number lets
//! [`cleanup_stale`] tell a crashed run (root process gone) from a live one.
//!
//! ```
//! let run = mkipc_os::registry::new_run_id();
//! assert!(run.split('-').next().unwrap().parse::<u32>().is_ok());
//! assert!(mkipc_os::registry::leftovers(&run).is_empty());
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sys;

/// The prefix of every queue, FIFO and run directory this crate creates.
pub const PREFIX: &str = "mkipc-";

/// A fresh run id, unique on this machine: `<pid>-<counter>-<nanoseconds, hex>`.
pub fn new_run_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{}-{}-{:x}", std::process::id(), n, t & 0xffff_ffff_ffff)
}

fn base_dir() -> &'static Path {
    if Path::new("/dev/shm").is_dir() {
        Path::new("/dev/shm")
    } else {
        Path::new("/tmp")
    }
}

/// The run directory of `run`.
pub fn run_dir(run: &str) -> PathBuf {
    base_dir().join(format!("{PREFIX}{run}"))
}

/// What kind of object a registry entry stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// A POSIX queue (name with its leading slash).
    Queue,
    /// A FIFO (absolute path).
    Fifo,
}

/// Who owns a registered object: a process (removed when it exits) or the run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum EntryOwner {
    /// Removed when this pid exits (or when the run ends).
    Process(u32),
    /// Removed when the run ends or when destroyed.
    Run,
}

/// The start of the entry file names for object `name` (one file per owner:
/// the prefix, then `@` and the owner's number).
fn entry_prefix(kind: Kind, name: &str) -> String {
    let tag = match kind {
        Kind::Queue => "reg.q.",
        Kind::Fifo => "reg.f.",
    };
    let flat: String = name
        .chars()
        .map(|c| if c == '/' { '%' } else { c })
        .collect();
    format!("{tag}{flat}@")
}

fn owner_number(owner: EntryOwner) -> u32 {
    match owner {
        EntryOwner::Process(pid) => pid,
        EntryOwner::Run => 0,
    }
}

/// Each would-be owner of a name has its own entry file, so one that fails to
/// create the object (it exists already: another process's mailbox, or any
/// file at a FIFO's path) takes back its own entry and never the owner's.
fn entry_file(run: &str, kind: Kind, name: &str, owner: EntryOwner) -> PathBuf {
    run_dir(run).join(format!(
        "{}{}",
        entry_prefix(kind, name),
        owner_number(owner)
    ))
}

/// Writes an entry down (before the object exists, so a crash in between
/// leaves at worst an entry for nothing, which cleanup ignores). Returns
/// whether this call made the entry (`false`: the same owner had it already).
pub(crate) fn record(run: &str, kind: Kind, name: &str, owner: EntryOwner) -> io::Result<bool> {
    let dir = run_dir(run);
    fs::create_dir_all(&dir)?;
    let text = format!("{}\n{name}\n", owner_number(owner));
    let file = entry_file(run, kind, name, owner);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
    {
        Ok(mut f) => {
            io::Write::write_all(&mut f, text.as_bytes())?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Same owner, same name: the same text (rewritten in case a crash
            // cut the earlier write short).
            fs::write(&file, text)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Takes back the entry `record` made for `owner` when the object could not
/// be created (other owners' entries for the same name stay).
pub(crate) fn forget_own(run: &str, kind: Kind, name: &str, owner: EntryOwner) {
    let _ = fs::remove_file(entry_file(run, kind, name, owner));
}

/// Forgets an object (after it was removed): every owner's entry for it.
pub(crate) fn forget(run: &str, kind: Kind, name: &str) {
    let Ok(dir) = fs::read_dir(run_dir(run)) else {
        return;
    };
    let prefix = entry_prefix(kind, name);
    for e in dir.flatten() {
        let fname = e.file_name().to_string_lossy().into_owned();
        if fname
            .strip_prefix(&prefix)
            .is_some_and(|owner| !owner.is_empty() && owner.bytes().all(|b| b.is_ascii_digit()))
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

struct Entry {
    file: PathBuf,
    kind: Kind,
    owner: u32,
    name: String,
}

fn entries(run: &str) -> Vec<Entry> {
    let Ok(dir) = fs::read_dir(run_dir(run)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let file = e.path();
        let fname = e.file_name().to_string_lossy().into_owned();
        // Only regular files are entries: a FIFO may live in the same
        // directory, and reading it would block.
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let kind = if fname.starts_with("reg.q.") {
            Kind::Queue
        } else if fname.starts_with("reg.f.") {
            Kind::Fifo
        } else {
            continue;
        };
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let mut lines = text.lines();
        let owner = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        let name = lines.next().unwrap_or("").to_string();
        out.push(Entry {
            file,
            kind,
            owner,
            name,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

fn remove_object(kind: Kind, name: &str) -> bool {
    match kind {
        Kind::Queue => sys::mq_unlink(name).is_ok(),
        Kind::Fifo => fs::remove_file(name).is_ok(),
    }
}

/// What a cleanup removed.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct CleanupReport {
    /// Queue names unlinked.
    pub queues: Vec<String>,
    /// FIFO paths removed.
    pub fifos: Vec<String>,
    /// Run directories removed.
    pub runs: Vec<String>,
}

/// Removes the objects owned by process `pid` in `run` (after it exited).
pub(crate) fn reap_process(run: &str, pid: u32) -> CleanupReport {
    let mut report = CleanupReport::default();
    for e in entries(run).into_iter().filter(|e| e.owner == pid) {
        if remove_object(e.kind, &e.name) {
            match e.kind {
                Kind::Queue => report.queues.push(e.name.clone()),
                Kind::Fifo => report.fifos.push(e.name.clone()),
            }
        }
        let _ = fs::remove_file(&e.file);
    }
    report
}

/// The file recording that `spawner` started process `pid` in `run`.
fn process_file(run: &str, pid: u32, spawner: u32) -> PathBuf {
    run_dir(run).join(format!("proc.{pid}@{spawner}"))
}

/// Writes down that this process (`spawner`) started child `pid` in `run`,
/// so that whoever inherits the child if `spawner` dies (its nearest
/// subreaper ancestor, see [`reap_orphans`]) can tell it is one of the run's.
pub(crate) fn record_process(run: &str, pid: u32, spawner: u32) -> io::Result<()> {
    fs::create_dir_all(run_dir(run))?;
    fs::write(process_file(run, pid, spawner), b"")
}

/// Forgets process `pid` (it was reaped).
pub(crate) fn forget_process(run: &str, pid: u32) {
    let Ok(dir) = fs::read_dir(run_dir(run)) else {
        return;
    };
    let prefix = format!("proc.{pid}@");
    for e in dir.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Kills and reaps the processes of `run` this process inherited: children
/// of a process of the run that died before them (killed, or gone without
/// dropping its [`Child`](crate::Child) handles). Every process that spawns
/// is a child subreaper, so they are re-parented here instead of to init
/// (which, in a container, may never reap them); the process records say
/// which of this process's children were started by someone else. Killing
/// one re-parents its own children here too, so this repeats until none is
/// left. What each owned is removed. Returns their pids.
pub(crate) fn reap_orphans(run: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut reaped = Vec::new();
    loop {
        let Ok(dir) = fs::read_dir(run_dir(run)) else {
            return reaped;
        };
        let mut found = false;
        for e in dir.flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            let Some((pid, spawner)) = fname
                .strip_prefix("proc.")
                .and_then(|r| r.split_once('@'))
                .and_then(|(p, s)| Some((p.parse::<u32>().ok()?, s.parse::<u32>().ok()?)))
            else {
                continue;
            };
            match sys::parent_of(pid) {
                // Its spawner's own child (the spawner reaps it), or ours.
                Some(parent) if parent != me || spawner == me => continue,
                Some(_) => {
                    sys::kill_and_reap(pid);
                    reap_process(run, pid);
                    reaped.push(pid);
                    found = true;
                }
                None => {} // gone and reaped: only the record is left
            }
            let _ = fs::remove_file(e.path());
        }
        if !found {
            return reaped;
        }
    }
}

/// Removes every queue and FIFO `run` created, and its run directory.
pub fn cleanup(run: &str) -> CleanupReport {
    let mut report = CleanupReport::default();
    for e in entries(run) {
        if remove_object(e.kind, &e.name) {
            match e.kind {
                Kind::Queue => report.queues.push(e.name.clone()),
                Kind::Fifo => report.fifos.push(e.name.clone()),
            }
        }
        let _ = fs::remove_file(&e.file);
    }
    for q in mqueue_listing()
        .into_iter()
        .filter(|q| q.starts_with(&format!("{PREFIX}{run}-")))
    {
        if sys::mq_unlink(&format!("/{q}")).is_ok() {
            report.queues.push(format!("/{q}"));
        }
    }
    let dir = run_dir(run);
    if dir.exists() {
        let _ = fs::remove_dir_all(&dir);
        report.runs.push(run.to_string());
    }
    report
}

/// Cleans up every run whose root process is gone (a crashed or killed run):
/// what the `mkipc cleanup` command does.
pub fn cleanup_stale() -> CleanupReport {
    let me = std::process::id();
    cleanup_runs_where(|root| root != me && !sys::process_alive(root))
}

/// Removes every run whose root process is `root` (for a guard that outlives
/// a coordinator killed before it could clean up).
pub fn cleanup_runs_of(root: u32) -> CleanupReport {
    cleanup_runs_where(|r| r == root)
}

/// Cleans every run found on disk or in `/dev/mqueue` whose root pid `pick`s.
fn cleanup_runs_where(pick: impl Fn(u32) -> bool) -> CleanupReport {
    let mut report = CleanupReport::default();
    for run in runs_on_disk() {
        let root = run.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if root.is_some_and(&pick) {
            let r = cleanup(&run);
            report.queues.extend(r.queues);
            report.fifos.extend(r.fifos);
            report.runs.extend(r.runs);
        }
    }
    report
}

/// The ids of the runs that left a run directory or a queue, sorted.
fn runs_on_disk() -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    if let Ok(dir) = fs::read_dir(base_dir()) {
        for e in dir.flatten() {
            if let Some(run) = e.file_name().to_string_lossy().strip_prefix(PREFIX) {
                runs.push(run.to_string());
            }
        }
    }
    for q in mqueue_listing() {
        if let Some(rest) = q.strip_prefix(PREFIX) {
            let run: Vec<&str> = rest.splitn(4, '-').take(3).collect();
            runs.push(run.join("-"));
        }
    }
    runs.sort();
    runs.dedup();
    runs
}

/// The queue names (without slash) visible in `/dev/mqueue`, if it is mounted.
pub fn mqueue_listing() -> Vec<String> {
    let Ok(dir) = fs::read_dir("/dev/mqueue") else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What `run` left behind: registered objects that still exist, its run
/// directory, and (if `/dev/mqueue` is mounted) any queue with its prefix.
/// Empty after a clean run or a [`cleanup`].
pub fn leftovers(run: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries(run) {
        let exists = match e.kind {
            Kind::Queue => sys::mq_open(&e.name, libc::O_RDONLY, None).is_ok(),
            Kind::Fifo => Path::new(&e.name).exists(),
        };
        if exists {
            out.push(e.name);
        }
    }
    let prefix = format!("{PREFIX}{run}-");
    out.extend(
        mqueue_listing()
            .into_iter()
            .filter(|q| q.starts_with(&prefix))
            .map(|q| format!("/{q}")),
    );
    let dir = run_dir(run);
    if dir.exists() {
        out.push(dir.display().to_string());
    }
    out.sort();
    out.dedup();
    out
}
