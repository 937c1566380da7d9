//! Names: how a task refers to kernel objects.
//!
//! A [`PortName`] is an index into one task's name space plus a generation. The
//! same number in another task's space means something else or nothing at all,
//! so a name is not a capability by itself: the right lives in the kernel, the
//! name only selects it. When a slot is freed its generation moves on, so a
//! stale name is reported as invalid instead of silently aliasing whatever
//! reuses the slot (the same trick Mach plays with the high bits of a name).
//!
//! ```
//! use mkipc_kernel::PortName;
//! let name = PortName::from_parts(3, 1);
//! assert_eq!((name.index(), name.generation()), (3, 1));
//! assert_ne!(name, PortName::from_parts(3, 2)); // same slot, later generation
//! assert!(PortName::DEAD.is_dead() && PortName::NULL.is_null());
//! ```

use std::fmt;

/// A task-local name for a right (port, send-once right, dead name, port set, mailbox).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortName(u64);

impl PortName {
    /// The null name: names nothing (Mach's `MACH_PORT_NULL`).
    pub const NULL: PortName = PortName(0);
    /// The dead name placeholder a received send right to a dead port arrives as
    /// (Mach's `MACH_PORT_DEAD`).
    pub const DEAD: PortName = PortName(u64::MAX);

    /// Builds a name from a slot index and a generation.
    pub const fn from_parts(index: u32, generation: u32) -> PortName {
        PortName(((generation as u64) << 32) | index as u64)
    }
    /// The slot index in the owning task's name space.
    pub const fn index(self) -> u32 {
        self.0 as u32
    }
    /// The slot's generation when the name was handed out.
    pub const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The raw 64-bit value (for wire formats and traces).
    pub const fn to_raw(self) -> u64 {
        self.0
    }
    /// Rebuilds a name from [`PortName::to_raw`].
    pub const fn from_raw(raw: u64) -> PortName {
        PortName(raw)
    }
    /// Whether this is [`PortName::NULL`].
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
    /// Whether this is [`PortName::DEAD`].
    pub const fn is_dead(self) -> bool {
        self.0 == u64::MAX
    }
}

impl fmt::Debug for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("NULL")
        } else if self.is_dead() {
            f.write_str("DEAD")
        } else {
            write!(f, "{}.{}", self.index(), self.generation())
        }
    }
}

/// A process (task) identifier. Pids are never reused within one kernel.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.0)
    }
}

/// The kinds of right a name can denote (Mach's `MACH_PORT_RIGHT_*`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum RightKind {
    /// The one right to receive from a port.
    Receive,
    /// A user-reference-counted right to send to a port.
    Send,
    /// A right to send exactly one message to a port.
    SendOnce,
    /// A set of ports received from as one.
    PortSet,
    /// What a send or send-once right becomes when its port dies.
    DeadName,
    /// Access to a mailbox (send and/or receive, per its access list).
    Mailbox,
}

/// The rights a name denotes (Mach's `mach_port_type_t`), as returned by
/// [`Ipc::rights`](crate::Ipc::rights).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct RightSet {
    /// Holds the receive right.
    pub receive: bool,
    /// User references of the send right (0: no send right).
    pub send: u32,
    /// Holds a send-once right.
    pub send_once: bool,
    /// Is a port set.
    pub port_set: bool,
    /// User references of the dead name (0: not a dead name).
    pub dead: u32,
    /// Mailbox access, if the name denotes a mailbox.
    pub mailbox: Option<Access>,
}

/// Permissions on a mailbox.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Access {
    /// May send to the mailbox.
    pub send: bool,
    /// May receive from the mailbox.
    pub receive: bool,
}

impl Access {
    /// No access.
    pub const NONE: Access = Access {
        send: false,
        receive: false,
    };
    /// Send only.
    pub const SEND: Access = Access {
        send: true,
        receive: false,
    };
    /// Receive only.
    pub const RECEIVE: Access = Access {
        send: false,
        receive: true,
    };
    /// Send and receive.
    pub const ALL: Access = Access {
        send: true,
        receive: true,
    };

    /// Whether no permission at all is granted.
    pub const fn is_none(self) -> bool {
        !self.send && !self.receive
    }
}
