//! Byte-stream mailboxes between unrelated processes: named pipes (FIFOs).
//!
//! A FIFO is a pipe with a path. Two processes that share nothing but the
//! path meet through it: the receiver creates it ([`OsProcess::fifo_create`])
//! and the sender opens it ([`OsProcess::fifo_open`]). Frames are the same as
//! on a pipe (see [`crate::wire`]), but every frame must fit in `PIPE_BUF`
//! (4096 bytes) so that frames from several writers never interleave: a body
//! may have at most [`FIFO_BODY_LIMIT`] bytes.
//!
//! The receiver opens its FIFO read-write, so it never sees end of stream when
//! writers come and go (a mailbox outlives its senders). [`OsProcess::fifo_open`]
//! tells apart what can be wrong with a path:
//!
//! | path | error |
//! |---|---|
//! | missing (`ENOENT`) | [`IpcError::NotFound`] |
//! | a FIFO nobody reads (`ENXIO`) | [`IpcError::DeadName`]: it exists, its receiver is gone |
//! | not a FIFO (a regular file, `/dev/null`, a directory, ...) | [`IpcError::InvalidValue`], and the file is not written |
//! | mode bits refuse (`EACCES`) | [`IpcError::NoPermission`] |
//!
//! The type is checked before the open (so no device is ever opened) and
//! again on the opened descriptor (so a path swapped in between is caught).
//!
//! [`OsProcess::fifo_create`]: crate::OsProcess::fifo_create
//! [`OsProcess::fifo_open`]: crate::OsProcess::fifo_open
//!
//! ```
//! use mkipc_kernel::{Ipc, Message};
//! use mkipc_kernel::name::Access;
//! use mkipc_os::OsProcess;
//!
//! let os = OsProcess::new().unwrap();
//! let path = os.fifo_path("log").unwrap();
//! let reader = os.fifo_create(&path, Access::NONE).unwrap(); // the receiver makes it
//! let writer = os.fifo_open(&path).unwrap(); // any writer opens it by path
//! os.send(writer, Message::new(3, b"line")).unwrap();
//! assert_eq!(&os.receive(reader).unwrap().body[..], b"line");
//! ```

use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use mkipc_kernel::IpcError;

use crate::errno;
use crate::link::{LinkRx, LinkTx};
use crate::sys::{self, Errno};
use crate::wire::HEADER_LEN;

/// `PIPE_BUF`: writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
/// The largest body a FIFO message may have.
pub const FIFO_BODY_LIMIT: usize = PIPE_BUF - HEADER_LEN;

/// One end of a FIFO.
pub(crate) struct Fifo {
    pub(crate) path: PathBuf,
    pub(crate) rx: Option<LinkRx>,
    pub(crate) tx: Option<LinkTx>,
    /// This process created it (and removes it when done).
    pub(crate) owned: bool,
}

impl Fifo {
    /// Creates the FIFO with exactly `mode` and opens it for reading.
    pub(crate) fn create(path: &Path, mode: u32) -> Result<Fifo, Errno> {
        sys::mkfifo(path, mode as libc::mode_t)?;
        let fd = match sys::open(path, libc::O_RDWR) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
        };
        if let Err(e) = sys::fchmod(fd.as_fd(), mode as libc::mode_t) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(Fifo {
            path: path.to_path_buf(),
            rx: Some(LinkRx::shared(fd, FIFO_BODY_LIMIT)),
            tx: None,
            owned: true,
        })
    }

    /// Opens an existing FIFO for writing (see the module docs for the errors).
    pub(crate) fn open(path: &Path) -> Result<Fifo, IpcError> {
        let not_fifo = |e: Errno| match e {
            libc::ENXIO => IpcError::DeadName,
            libc::EISDIR => IpcError::InvalidValue,
            e => errno::ipc_error(e),
        };
        match std::fs::metadata(path) {
            Ok(m) if !m.file_type().is_fifo() => return Err(IpcError::InvalidValue),
            Ok(_) => {}
            Err(e) => return Err(not_fifo(e.raw_os_error().unwrap_or(libc::EIO))),
        }
        let fd = sys::open(path, libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
            .map_err(not_fifo)?;
        if !sys::is_fifo(fd.as_fd()).map_err(errno::ipc_error)? {
            return Err(IpcError::InvalidValue);
        }
        // Non-blocking only for the open (ENXIO instead of waiting for a reader).
        sys::set_nonblocking(fd.as_fd(), false).map_err(errno::ipc_error)?;
        Ok(Fifo {
            path: path.to_path_buf(),
            rx: None,
            tx: Some(LinkTx::fifo(fd)),
            owned: false,
        })
    }
}
