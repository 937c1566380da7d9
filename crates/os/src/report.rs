//! What a cleanup did: [`CleanupReport`], with every object removed and
//! every thing found and left ([`Kept`]) with the reason, so a report never
//! claims more than happened.

use std::io;

use crate::registry::Kind;

/// What a cleanup removed, and what it found and left (with the reason).
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct CleanupReport {
    /// Queue names unlinked.
    pub queues: Vec<String>,
    /// FIFO paths removed.
    pub fifos: Vec<String>,
    /// Runs whose run directory was removed.
    pub runs: Vec<String>,
    /// What was found and not removed, and why.
    pub kept: Vec<Kept>,
}

impl CleanupReport {
    /// Whether nothing was kept.
    pub fn is_complete(&self) -> bool {
        self.kept.is_empty()
    }

    pub(crate) fn extend(&mut self, other: CleanupReport) {
        self.queues.extend(other.queues);
        self.fifos.extend(other.fifos);
        self.runs.extend(other.runs);
        self.kept.extend(other.kept);
    }

    pub(crate) fn removed(&mut self, kind: Kind, name: &str) {
        match kind {
            Kind::Queue => self.queues.push(name.to_string()),
            Kind::Fifo => self.fifos.push(name.to_string()),
        }
    }
}

/// Something a cleanup found and left in place.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Kept {
    /// What it is.
    pub what: KeptWhat,
    /// Its name or path.
    pub path: String,
    /// Why it stays.
    pub reason: KeptReason,
}

/// The kind of thing a cleanup left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeptWhat {
    /// A POSIX queue the run registered.
    Queue,
    /// A FIFO the run registered.
    Fifo,
    /// A registry record (kept with its run directory, for a person to read).
    Record,
    /// A file in a run directory that is no registry record.
    File,
    /// A run directory, or something named like one.
    Run,
}

/// Why a cleanup left something.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KeptReason {
    /// The system refused to remove it (errno).
    Os(i32),
    /// A FIFO's path now holds something else than a FIFO: not the run's.
    NotAFifo,
    /// A record that cannot be read or parsed (why); its object, if any, may
    /// still exist.
    Unreadable(String),
    /// The file is not one the registry writes.
    NotARecord,
    /// Named like a run directory but not a directory: not the registry's.
    NotADirectory,
    /// A run directory with something kept inside.
    NotEmpty,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.what {
            KeptWhat::Queue => "queue",
            KeptWhat::Fifo => "FIFO",
            KeptWhat::Record => "record",
            KeptWhat::File => "file",
            KeptWhat::Run => "run",
        };
        // Names have no control characters, but a path on disk might.
        write!(f, "{what} {}: ", self.path.escape_debug())?;
        match &self.reason {
            KeptReason::Os(e) => write!(f, "{}", io::Error::from_raw_os_error(*e)),
            KeptReason::NotAFifo => write!(f, "not a FIFO any more, so not the run's"),
            KeptReason::Unreadable(why) => {
                write!(f, "unreadable record ({why}); its object may remain")
            }
            KeptReason::NotARecord => write!(f, "not a registry record"),
            KeptReason::NotADirectory => write!(f, "not a run directory"),
            KeptReason::NotEmpty => write!(f, "something in it was kept"),
        }
    }
}
