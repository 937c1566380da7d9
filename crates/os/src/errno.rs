//! From `errno` to the API's typed errors.
//!
//! | errno | where | becomes |
//! |---|---|---|
//! | `EAGAIN` | `mq_send` that may not wait (a deadline in the past), `poll` says a pipe is full | [`SendError::Full`] |
//! | `EAGAIN` | `mq_receive` that may not wait, `poll` says a pipe is empty | [`ReceiveError::Empty`] |
//! | `ETIMEDOUT` | `mq_timedsend` / `mq_timedreceive`, `poll` timeout | `SendError::TimedOut` / [`ReceiveError::TimedOut`] |
//! | `EPIPE` | pipe or socket write, reader gone | [`SendError::DestinationDead`] |
//! | read returns 0 | pipe, writer gone | [`ReceiveError::SourceDead`] |
//! | `EIDRM` (ours) | a waited-on mailbox's name disappeared (`mq_unlink` wakes nobody, so waits are sliced) | `DestinationDead` / `SourceDead` |
//! | `EMSGSIZE` | `mq_send` of a frame over `mq_msgsize` | [`SendError::TooLarge`] (limit = `mq_msgsize` - 28, from `/proc/sys/fs/mqueue/msgsize_max`) |
//! | `EACCES` | `mq_open`, `open` of a FIFO: mode bits | [`IpcError::NoPermission`], [`SendError::NoPermission`] |
//! | `ENOENT` | `mq_open`/`open` of a missing name | [`IpcError::NotFound`] |
//! | `ENXIO` | opening a FIFO for writing with no reader | [`IpcError::DeadName`] (the FIFO exists; its receiver is gone) |
//! | `EEXIST` | `mq_open` with `O_EXCL`, `mkfifo` | [`IpcError::AlreadyExists`] |
//! | `EINVAL` | `mq_open` of a malformed name, or `mq_maxmsg` over `msg_max` | [`IpcError::Os`]`(EINVAL)` |
//! | `EMFILE`, `ENFILE`, `ENOSPC` | descriptor table full, too many queues (`queues_max`), `RLIMIT_MSGQUEUE` | [`IpcError::Os`] with that errno |
//! | `EBADF` | using a descriptor opened without that access | `SendError::NoPermission` / `ReceiveError::NoPermission` |
//! | anything else | | the `Os` variant with the errno |

use mkipc_kernel::{IpcError, Message, ReceiveError, SendError};

use crate::sys::Errno;

/// An errno from opening or creating something, as an [`IpcError`].
pub fn ipc_error(e: Errno) -> IpcError {
    match e {
        libc::EACCES | libc::EPERM => IpcError::NoPermission,
        libc::ENOENT => IpcError::NotFound,
        libc::ENXIO => IpcError::DeadName,
        libc::EEXIST => IpcError::AlreadyExists,
        other => IpcError::Os(other),
    }
}

/// An errno from a send, as a [`SendError`] around the message.
pub fn send_error(e: Errno, msg: Message, limit: usize) -> SendError {
    match e {
        libc::EAGAIN => SendError::Full(msg),
        libc::ETIMEDOUT => SendError::TimedOut(msg),
        libc::EPIPE | libc::ECONNRESET | libc::EIDRM => SendError::DestinationDead(msg),
        libc::EMSGSIZE => SendError::TooLarge {
            limit,
            message: msg,
        },
        libc::EACCES | libc::EPERM | libc::EBADF => SendError::NoPermission(msg),
        errno => SendError::Os {
            errno,
            message: msg,
        },
    }
}

/// An errno from a receive, as a [`ReceiveError`].
pub fn receive_error(e: Errno) -> ReceiveError {
    match e {
        libc::EAGAIN => ReceiveError::Empty,
        libc::ETIMEDOUT => ReceiveError::TimedOut,
        libc::EIDRM => ReceiveError::SourceDead,
        libc::EACCES | libc::EPERM | libc::EBADF => ReceiveError::NoPermission,
        other => ReceiveError::Os(other),
    }
}
