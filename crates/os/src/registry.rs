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
//!    one small file per object, holding its kind, its owner's pid and its
//!    name (escaped: the format is in `record.rs`).
//!
//! Whoever outlives a crash (the parent reaping a killed child, the root of the
//! run when it drops, or a later run calling [`cleanup_stale`]) reads the
//! directory and removes what it lists, and reports what it found and left
//! ([`CleanupReport::kept`]): nothing is deleted that cannot be read. This works without `/dev/mqueue`
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

use crate::record;
pub use crate::report::{CleanupReport, Kept, KeptReason, KeptWhat};
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

fn tag(kind: Kind) -> &'static str {
    match kind {
        Kind::Queue => "reg.q.",
        Kind::Fifo => "reg.f.",
    }
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
        record::file_prefix(tag(kind), name),
        owner_number(owner)
    ))
}

/// Writes an entry down (before the object exists, so a crash in between
/// leaves at worst an entry for nothing, which cleanup ignores). Returns
/// whether this call made the entry (`false`: the same owner had it already).
pub(crate) fn record(run: &str, kind: Kind, name: &str, owner: EntryOwner) -> io::Result<bool> {
    let dir = run_dir(run);
    fs::create_dir_all(&dir)?;
    let text = record::format(owner_number(owner), name);
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
            // cut the earlier write short). Another name with the same hash
            // would lose its record: refuse instead.
            if let Ok(old) = fs::read_to_string(&file) {
                if record::parse(&old).is_ok_and(|(_, n)| n != name) {
                    return Err(io::Error::other("registry record file name collision"));
                }
            }
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
    let prefix = record::file_prefix(tag(kind), name);
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

/// What is in a run directory.
#[derive(Default)]
struct Listing {
    /// Records that parse.
    entries: Vec<Entry>,
    /// Records that do not, with the reason.
    unreadable: Vec<(PathBuf, String)>,
    /// Process records (`proc.<pid>@<spawner>`).
    processes: Vec<PathBuf>,
    /// Anything else.
    others: Vec<PathBuf>,
}

fn list(run: &str) -> Listing {
    let mut out = Listing::default();
    let Ok(dir) = fs::read_dir(run_dir(run)) else {
        return out;
    };
    for e in dir.flatten() {
        let file = e.path();
        let fname = e.file_name().to_string_lossy().into_owned();
        let kind = if fname.starts_with(tag(Kind::Queue)) {
            Kind::Queue
        } else if fname.starts_with(tag(Kind::Fifo)) {
            Kind::Fifo
        } else {
            if fname.starts_with("proc.") && e.file_type().is_ok_and(|t| t.is_file()) {
                out.processes.push(file);
            } else {
                out.others.push(file);
            }
            continue;
        };
        // Only regular files are records: a FIFO may live in the same
        // directory, and reading it would block.
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            out.unreadable
                .push((file, "not a regular file".to_string()));
            continue;
        }
        let parsed = fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| record::parse(&text).map_err(str::to_string));
        match parsed {
            Ok((owner, name)) => out.entries.push(Entry {
                file,
                kind,
                owner,
                name,
            }),
            Err(why) => out.unreadable.push((file, why)),
        }
    }
    out.entries.sort_by(|a, b| a.file.cmp(&b.file));
    out.unreadable.sort();
    out.processes.sort();
    out.others.sort();
    out
}

fn entries(run: &str) -> Vec<Entry> {
    list(run).entries
}

/// Removes one registered object. `Ok(true)`: removed; `Ok(false)`: it was
/// not there (a crash between the record and the creation, or removed
/// already); `Err`: it is there and stays.
fn remove_object(kind: Kind, name: &str) -> Result<bool, KeptReason> {
    match kind {
        // A killed owner's mailbox may have waiters: gone frames wake them.
        Kind::Queue => match crate::queue::unlink_waking(name) {
            Ok(()) => Ok(true),
            Err(libc::ENOENT) => Ok(false),
            Err(e) => Err(KeptReason::Os(e)),
        },
        Kind::Fifo => {
            use std::os::unix::fs::FileTypeExt;
            match fs::symlink_metadata(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(KeptReason::Os(e.raw_os_error().unwrap_or(libc::EIO))),
                // Whatever else sits at the path now is not what the run made.
                Ok(m) if !m.file_type().is_fifo() => return Err(KeptReason::NotAFifo),
                Ok(_) => {}
            }
            match fs::remove_file(name) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(KeptReason::Os(e.raw_os_error().unwrap_or(libc::EIO))),
            }
        }
    }
}

/// Removes the objects owned by process `pid` in `run` (after it exited).
pub(crate) fn reap_process(run: &str, pid: u32) -> CleanupReport {
    let mut report = CleanupReport::default();
    for e in entries(run).into_iter().filter(|e| e.owner == pid) {
        remove_entry(&e, &mut report);
    }
    report
}

/// Removes a record's object, then the record; keeps the record when the
/// object stays.
fn remove_entry(e: &Entry, report: &mut CleanupReport) {
    match remove_object(e.kind, &e.name) {
        Ok(removed) => {
            if removed {
                report.removed(e.kind, &e.name);
            }
            let _ = fs::remove_file(&e.file);
        }
        Err(reason) => report.kept.push(Kept {
            what: match e.kind {
                Kind::Queue => KeptWhat::Queue,
                Kind::Fifo => KeptWhat::Fifo,
            },
            path: e.name.clone(),
            reason,
        }),
    }
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

/// Removes every queue and FIFO `run` created, and its run directory, and
/// says exactly what it did: each object removed, each it found and left
/// (an object the system would not remove, a record it cannot parse, a file
/// that is no record, a path named like a run directory that is not one).
/// A run directory with anything left in it stays.
pub fn cleanup(run: &str) -> CleanupReport {
    let mut report = CleanupReport::default();
    let dir = run_dir(run);
    let is_dir = match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            report.kept.push(Kept {
                what: KeptWhat::Run,
                path: dir.display().to_string(),
                reason: KeptReason::NotADirectory,
            });
            false
        }
        Err(_) => false,
    };
    if is_dir {
        let listing = list(run);
        for e in &listing.entries {
            remove_entry(e, &mut report);
        }
        for (file, why) in listing.unreadable {
            report.kept.push(Kept {
                what: KeptWhat::Record,
                path: file.display().to_string(),
                reason: KeptReason::Unreadable(why),
            });
        }
        for p in listing.processes {
            let _ = fs::remove_file(p);
        }
        // A registered FIFO in the directory is gone by now.
        for p in listing
            .others
            .into_iter()
            .filter(|p| p.symlink_metadata().is_ok())
        {
            report.kept.push(Kept {
                what: KeptWhat::File,
                path: p.display().to_string(),
                reason: KeptReason::NotARecord,
            });
        }
    }
    for q in mqueue_listing()
        .into_iter()
        .filter(|q| q.starts_with(&format!("{PREFIX}{run}-")))
    {
        let name = format!("/{q}");
        match sys::mq_unlink(&name) {
            Ok(()) => report.queues.push(name),
            Err(libc::ENOENT) => {}
            Err(e) => report.kept.push(Kept {
                what: KeptWhat::Queue,
                path: name,
                reason: KeptReason::Os(e),
            }),
        }
    }
    if is_dir {
        match fs::remove_dir(&dir) {
            Ok(()) => report.runs.push(run.to_string()),
            Err(e) => report.kept.push(Kept {
                what: KeptWhat::Run,
                path: dir.display().to_string(),
                reason: match e.raw_os_error() {
                    Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => KeptReason::NotEmpty,
                    other => KeptReason::Os(other.unwrap_or(libc::EIO)),
                },
            }),
        }
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
            report.extend(cleanup(&run));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn make_queue(name: &str) {
        sys::mq_open(name, libc::O_RDWR, Some((0o600, 1, 64))).expect("mq_open");
    }

    #[test]
    fn a_name_with_a_newline_reads_back_whole() {
        let run = new_run_id();
        record(&run, Kind::Fifo, "/tmp/two\nlines", EntryOwner::Process(1)).unwrap();
        let names: Vec<String> = entries(&run).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["/tmp/two\nlines"]);
        forget(&run, Kind::Fifo, "/tmp/two\nlines");
        assert!(entries(&run).is_empty());
        assert_eq!(cleanup(&run).runs, std::slice::from_ref(&run));
    }

    #[test]
    fn an_unreadable_record_is_kept_and_reported_not_deleted() {
        // Suspect: a record of a name with a newline (written by a binary
        // from before the names were checked) was read as a shorter name;
        // cleanup deleted the record and the run directory, said "removed
        // run", and left the queue.
        let run = new_run_id();
        // The fixtures go even if an assertion fails (they are the kind of
        // record cleanup must keep, so nothing else would remove them).
        struct RemoveDir(PathBuf);
        impl Drop for RemoveDir {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let _fixtures = RemoveDir(run_dir(&run));
        let ok = format!("/{PREFIX}{run}-m-ok");
        record(&run, Kind::Queue, &ok, EntryOwner::Run).unwrap();
        make_queue(&ok);
        let broken = format!("/{PREFIX}{run}-m-two\nlines");
        make_queue(&broken);
        let old_record = run_dir(&run).join("reg.q.old@0");
        fs::write(&old_record, format!("0\n{broken}\n")).unwrap();
        let garbage = run_dir(&run).join("reg.q.garbage@0");
        fs::write(&garbage, "not\na record").unwrap();

        // With /dev/mqueue mounted, cleanup also finds the queue by its run
        // prefix and removes it; without it, the unreadable record is all
        // that names the queue, and the queue stays with its record.
        let listed = fs::read_dir("/dev/mqueue").is_ok();
        let report = cleanup(&run);
        let left_queue = sys::mq_unlink(&broken); // tidy up before asserting
        let mut expected = vec![ok];
        if listed {
            expected.push(broken.clone());
        }
        assert_eq!(report.queues, expected, "{report:?}");
        assert!(report.runs.is_empty(), "{report:?}");
        for file in [&old_record, &garbage] {
            assert!(file.exists(), "{file:?} deleted");
            assert!(
                report.kept.iter().any(|k| k.what == KeptWhat::Record
                    && k.path == file.display().to_string()
                    && matches!(k.reason, KeptReason::Unreadable(_))),
                "{report:?}"
            );
        }
        assert!(report
            .kept
            .iter()
            .any(|k| k.what == KeptWhat::Run && k.reason == KeptReason::NotEmpty));
        assert_eq!(
            left_queue.is_ok(),
            !listed,
            "the queue was still there: {left_queue:?}"
        );
        assert!(!leftovers(&run).is_empty(), "the run directory stays");
        assert!(run_dir(&run).exists(), "the run directory stays");
        // `_fixtures` removes it now.
    }

    #[test]
    fn a_file_named_like_a_run_is_left_and_said_so() {
        // Suspect: cleanup reported "removed run" for a regular file it
        // could not remove (remove_dir_all fails on a file, silently).
        let run = new_run_id();
        let path = run_dir(&run);
        fs::write(&path, b"not a run").unwrap();
        let report = cleanup(&run);
        let still = path.exists();
        let _ = fs::remove_file(&path);
        assert!(still, "the file is not the registry's");
        assert!(report.runs.is_empty(), "{report:?}");
        assert_eq!(
            report.kept,
            [Kept {
                what: KeptWhat::Run,
                path: path.display().to_string(),
                reason: KeptReason::NotADirectory
            }]
        );
    }

    #[test]
    fn a_queue_the_system_will_not_remove_keeps_its_record() {
        let run = new_run_id();
        // A queue name Linux refuses to unlink (EACCES for a second slash).
        let name = format!("/{PREFIX}{run}-m-a/b");
        record(&run, Kind::Queue, &name, EntryOwner::Run).unwrap();
        let report = cleanup(&run);
        let kept_queue = report.kept.iter().any(|k| {
            k.what == KeptWhat::Queue && k.path == name && matches!(k.reason, KeptReason::Os(_))
        });
        let still = entries(&run).len();
        let _ = fs::remove_dir_all(run_dir(&run));
        assert!(kept_queue, "{report:?}");
        assert_eq!(still, 1, "the record stays for a later try");
        assert!(report.runs.is_empty());
    }
}
