//! Filters for selective receive: which messages a receive may take.
//!
//! A [`Filter`] is data, not a closure, so a receive blocked on one can live
//! in the kernel's state: snapshots copy it, the canonical encoding writes
//! it, and every backend evaluates it the same way.
//!
//! ```
//! use mkipc_kernel::{Filter, Message, Pid};
//! let replies = Filter::any().ids(100..=199);
//! assert!(replies.matches(&Message::new(150, b"")));
//! assert!(!replies.matches(&Message::new(7, b"")));
//! let hello = Filter::any().body_prefix(b"hello");
//! assert!(hello.matches(&Message::new(1, b"hello, world")));
//! // A sender condition needs a received message (one with a trailer).
//! assert!(!Filter::any().sender(Pid(3)).matches(&Message::new(1, b"")));
//! ```

use std::ops::RangeInclusive;

use crate::message::{Body, Message};
use crate::name::Pid;

/// Which messages a selective receive
/// ([`Ipc::receive_matching`](crate::Ipc::receive_matching)) takes: every
/// condition set must hold (an id in a range, a sender, a body prefix).
/// [`Filter::any`] matches every message.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Filter {
    ids: Option<(u32, u32)>,
    sender: Option<Pid>,
    body_prefix: Body,
}

impl Filter {
    /// Matches every message.
    pub fn any() -> Filter {
        Filter::default()
    }
    /// Only messages with this id.
    pub fn id(self, id: u32) -> Filter {
        self.ids(id..=id)
    }
    /// Only messages whose id is in `range` (an empty range matches none).
    pub fn ids(mut self, range: RangeInclusive<u32>) -> Filter {
        self.ids = Some((*range.start(), *range.end()));
        self
    }
    /// Only messages sent by `pid` (the kernel is [`Pid::KERNEL`]).
    pub fn sender(mut self, pid: Pid) -> Filter {
        self.sender = Some(pid);
        self
    }
    /// Only messages whose body starts with these bytes.
    pub fn body_prefix(mut self, prefix: impl Into<Body>) -> Filter {
        self.body_prefix = prefix.into();
        self
    }
    /// The id range, if the filter has one (inclusive bounds).
    pub fn id_range(&self) -> Option<(u32, u32)> {
        self.ids
    }
    /// The sender condition, if any.
    pub fn sender_condition(&self) -> Option<Pid> {
        self.sender
    }
    /// The body prefix (empty: any body).
    pub fn prefix(&self) -> &[u8] {
        &self.body_prefix
    }
    /// Whether it passes every message (no condition set): a receive with
    /// it is an unfiltered one.
    pub fn passes_all(&self) -> bool {
        self.ids.is_none() && self.sender.is_none() && self.body_prefix.is_empty()
    }
    /// Whether `msg` (a received message, for a sender condition) passes.
    pub fn matches(&self, msg: &Message) -> bool {
        match (self.sender, msg.sender()) {
            (Some(want), Some(got)) if want != got => return false,
            (Some(_), None) => return false,
            _ => {}
        }
        self.matches_content(msg.id, &msg.body)
    }
    /// Whether a message with this id, sender and body passes.
    pub(crate) fn matches_parts(&self, id: u32, sender: Pid, body: &[u8]) -> bool {
        self.sender.is_none_or(|want| want == sender) && self.matches_content(id, body)
    }
    fn matches_content(&self, id: u32, body: &[u8]) -> bool {
        self.ids.is_none_or(|(lo, hi)| lo <= id && id <= hi) && body.starts_with(&self.body_prefix)
    }
}
