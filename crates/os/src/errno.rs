//! From `errno` to the API's typed errors.
//!
//! | errno | where | becomes |
//! |---|---|---|
//! | `EAGAIN` | `mq_send` that may not wait (a deadline in the past), `poll` says a pipe is full | [`SendErrorKind::Full`] |
//! | `EAGAIN` | `mq_receive` that may not wait, `poll` says a pipe is empty | [`ReceiveError::Empty`] |
//! | `ETIMEDOUT` | `mq_timedsend` / `mq_timedreceive`, `poll` timeout | `SendErrorKind::TimedOut` / [`ReceiveError::TimedOut`] |
//! | `EPIPE` | pipe or socket write, reader gone | [`SendErrorKind::DestinationDead`] |
//! | read returns 0 | pipe, writer gone | [`ReceiveError::SourceDead`] |
//! | `EIDRM` (ours) | a waited-on mailbox was destroyed (a gone frame, its page's `gone`, or its name missing between watch slices) | `DestinationDead` / `SourceDead` |
//! | `EMSGSIZE` | `mq_send` of a frame over `mq_msgsize` | [`SendErrorKind::TooLarge`] (limit = `mq_msgsize` - 28, from `/proc/sys/fs/mqueue/msgsize_max`) |
//! | `EACCES` | `mq_open`, `open` of a FIFO: mode bits | [`IpcError::NoPermission`], [`SendErrorKind::NoPermission`] |
//! | `ENOENT` | `mq_open`/`open` of a missing name | [`IpcError::NotFound`] |
//! | `ENXIO` | opening a FIFO for writing with no reader | [`IpcError::DeadName`] (the FIFO exists; its receiver is gone) |
//! | `EEXIST` | `mq_open` with `O_EXCL`, `mkfifo` | [`IpcError::AlreadyExists`] |
//! | `EINVAL` | `mq_open` creating a queue deeper than `/proc/sys/fs/mqueue/msg_max` (or with a larger message than `msgsize_max`) | [`IpcError::Limit`]`(`[`Limit::MqMsgMax`]`)` (`MqMsgsizeMax`), with the value read from `/proc` |
//! | `ENOSPC` | `mq_open` creating one queue more than `/proc/sys/fs/mqueue/queues_max` | [`Limit::MqQueuesMax`] |
//! | `EMFILE` | `mq_open` creating a queue while a descriptor can still be opened: the user's queues would pass `RLIMIT_MSGQUEUE` | [`Limit::RlimitMsgqueue`] with the soft limit |
//! | `EMFILE` | any other open, `pipe`, `socketpair`, or `mq_open` with the descriptor table full | [`Limit::RlimitNofile`] with the soft limit |
//! | `ENFILE` | the system's file table is full | [`Limit::FileMax`] |
//! | `EBADF` | using a descriptor opened without that access | `SendErrorKind::NoPermission` / `ReceiveError::NoPermission` |
//! | anything else | | the `Os` variant with the errno |
//!
//! A malformed name never reaches the system: the name rule
//! ([`mkipc_kernel::name_rules`]) and the POSIX name check come first, and
//! both answer [`IpcError::InvalidName`].
//!
//! ```
//! use mkipc_kernel::{IpcError, ReceiveError};
//! use mkipc_os::errno;
//!
//! assert_eq!(errno::ipc_error(libc::ENOENT), IpcError::NotFound);
//! assert_eq!(errno::ipc_error(libc::EEXIST), IpcError::AlreadyExists);
//! assert_eq!(errno::receive_error(libc::ETIMEDOUT), ReceiveError::TimedOut);
//! ```

use mkipc_kernel::error::Limit;
use mkipc_kernel::{Capacity, IpcError, Message, ReceiveError, SendError, SendErrorKind};

use crate::queue::{maxmsg_for, msgsize_for};
use crate::sys::{self, Errno};

/// An errno from opening or creating something, as an [`IpcError`].
pub fn ipc_error(e: Errno) -> IpcError {
    match e {
        libc::EACCES | libc::EPERM => IpcError::NoPermission,
        libc::ENOENT => IpcError::NotFound,
        libc::ENXIO => IpcError::DeadName,
        libc::EEXIST => IpcError::AlreadyExists,
        libc::EMFILE => IpcError::Limit(Limit::RlimitNofile {
            max: sys::soft_rlimit(libc::RLIMIT_NOFILE),
        }),
        libc::ENFILE => IpcError::Limit(Limit::FileMax),
        other => IpcError::Os(other),
    }
}

/// An errno from `mq_open` creating a queue for `capacity` (and opening its
/// other descriptor), as an [`IpcError`]: here the cause of `EINVAL`,
/// `ENOSPC` and `EMFILE` is known, so each names its limit.
pub fn create_queue_error(e: Errno, capacity: Capacity) -> IpcError {
    let limit = |what: &str, default: usize| sys::mqueue_limit(what).unwrap_or(default);
    match e {
        libc::EINVAL => {
            let msg_max = limit("msg_max", 10);
            let msgsize_max = limit("msgsize_max", 8192);
            if maxmsg_for(capacity) > msg_max {
                IpcError::Limit(Limit::MqMsgMax { max: msg_max })
            } else if msgsize_for(capacity) > msgsize_max {
                IpcError::Limit(Limit::MqMsgsizeMax { max: msgsize_max })
            } else {
                IpcError::Os(e)
            }
        }
        libc::ENOSPC => IpcError::Limit(Limit::MqQueuesMax {
            max: limit("queues_max", 256),
        }),
        // Linux says EMFILE both for a full descriptor table and for a
        // queue that would pass RLIMIT_MSGQUEUE: a free descriptor tells
        // them apart.
        libc::EMFILE if sys::descriptor_free() => IpcError::Limit(Limit::RlimitMsgqueue {
            bytes: sys::soft_rlimit(libc::RLIMIT_MSGQUEUE),
        }),
        other => ipc_error(other),
    }
}

/// An errno from a send, as a [`SendError`] around the message.
pub fn send_error(e: Errno, msg: Message, limit: usize) -> SendError {
    match e {
        libc::EAGAIN => SendErrorKind::Full.with(msg),
        libc::ETIMEDOUT => SendErrorKind::TimedOut.with(msg),
        libc::EPIPE | libc::ECONNRESET | libc::EIDRM => SendErrorKind::DestinationDead.with(msg),
        libc::ESHUTDOWN => SendErrorKind::Closed.with(msg),
        libc::EMSGSIZE => SendErrorKind::TooLarge { limit }.with(msg),
        libc::EACCES | libc::EPERM | libc::EBADF => SendErrorKind::NoPermission.with(msg),
        errno => SendErrorKind::Os(errno).with(msg),
    }
}

/// An errno from a receive, as a [`ReceiveError`].
pub fn receive_error(e: Errno) -> ReceiveError {
    match e {
        libc::EAGAIN => ReceiveError::Empty,
        libc::ETIMEDOUT => ReceiveError::TimedOut,
        libc::EIDRM => ReceiveError::SourceDead,
        libc::ESHUTDOWN => ReceiveError::Closed,
        libc::EACCES | libc::EPERM | libc::EBADF => ReceiveError::NoPermission,
        other => ReceiveError::Os(other),
    }
}
