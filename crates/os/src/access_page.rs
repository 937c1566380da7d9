//! A granted mailbox's *access page*: how access is taken back.
//!
//! A process that opened a granted mailbox ([`crate::grants`]) holds a
//! queue descriptor with the access it had then, and a descriptor cannot be
//! taken back from another process. So the broker keeps, beside each
//! granted mailbox, one page of shared memory (an unnamed, sealed `memfd`,
//! given to every opener with its descriptor) listing the access of each
//! process that opened it, as the access list says *now*. Every send and
//! receive of an mkipc process on a granted mailbox looks at the page's
//! sequence number first (one atomic load); when it moved, it looks its own
//! pid up. A process whose access was taken back then gets `NoPermission`,
//! as in the kernel: at once for a call that starts after the
//! `mailbox_grant`, and within one watch slice
//! ([`WATCH_SLICE`](crate::queue::WATCH_SLICE), 100 ms) for one already
//! blocked on the mailbox (a granted mailbox's waits are cut into slices
//! already, see `Queue::watched`). A later grant that gives access back
//! updates the page the same way, and the same descriptor works again.
//!
//! This is mkipc's rule, not the OS's (a process of the same user that
//! bypasses mkipc keeps what its descriptor allows), as every grant is
//! (DESIGN.md, "Mailboxes").
//!
//! Layout (little-endian, offsets in bytes): 0 magic `MKIPCACL` (u64),
//! 8 `seq` (u32, bumped after every change), 12 `count` (u32), then
//! `count` entries of 8 bytes from offset 16: pid (u32), access bits
//! (u32: bit 0 send, bit 1 receive). At most [`MAX_ENTRIES`] processes.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use mkipc_kernel::name::Access;

use crate::grants::{access_bits, access_from};
use crate::sys::Errno;
use crate::sys_shm::{SealedPage, PAGE_LEN};

const MAGIC: u64 = u64::from_le_bytes(*b"MKIPCACL");
const OFF_SEQ: usize = 8;
const OFF_COUNT: usize = 12;
const OFF_ENTRIES: usize = 16;
/// The most processes one page lists.
pub(crate) const MAX_ENTRIES: usize = (PAGE_LEN - OFF_ENTRIES) / 8;

/// One granted mailbox's access page, mapped in this process.
pub(crate) struct AccessPage {
    page: SealedPage,
}

impl std::fmt::Debug for AccessPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPage")
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}

impl AccessPage {
    /// A new, empty page (the broker's, for a mailbox created with grants).
    pub(crate) fn new() -> Result<AccessPage, Errno> {
        let page = SealedPage::create(c"mkipc-access", MAGIC, |_| {})?;
        Ok(AccessPage { page })
    }

    /// The page the broker passed: refused (`EPROTO`) unless it is a
    /// sealed memfd of one page holding the magic.
    pub(crate) fn adopt(fd: OwnedFd) -> Result<AccessPage, Errno> {
        let page = SealedPage::adopt(fd, MAGIC)?;
        Ok(AccessPage { page })
    }

    /// A duplicate of the page's descriptor, for an opener.
    pub(crate) fn dup_fd(&self) -> Result<OwnedFd, Errno> {
        self.page.dup_fd()
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.page.u32_at(off)
    }

    /// The sequence number: it moves after every change.
    pub(crate) fn seq(&self) -> u32 {
        self.u32_at(OFF_SEQ).load(SeqCst)
    }

    /// Sets `pid`'s access (the broker, which alone writes the page);
    /// `ENOSPC` when [`MAX_ENTRIES`] other processes are listed.
    pub(crate) fn set(&self, pid: u32, access: Access) -> Result<(), Errno> {
        let count = (self.u32_at(OFF_COUNT).load(SeqCst) as usize).min(MAX_ENTRIES);
        let at = (0..count)
            .find(|&i| self.u32_at(OFF_ENTRIES + 8 * i).load(SeqCst) == pid)
            .unwrap_or(count);
        if at == MAX_ENTRIES {
            return Err(libc::ENOSPC);
        }
        self.u32_at(OFF_ENTRIES + 8 * at + 4)
            .store(u32::from(access_bits(access)), SeqCst);
        if at == count {
            self.u32_at(OFF_ENTRIES + 8 * at).store(pid, SeqCst);
            self.u32_at(OFF_COUNT).store(count as u32 + 1, SeqCst);
        }
        self.u32_at(OFF_SEQ).fetch_add(1, SeqCst);
        Ok(())
    }

    /// `pid`'s access as the page lists it, if it does.
    pub(crate) fn lookup(&self, pid: u32) -> Option<Access> {
        let count = (self.u32_at(OFF_COUNT).load(SeqCst) as usize).min(MAX_ENTRIES);
        (0..count)
            .find(|&i| self.u32_at(OFF_ENTRIES + 8 * i).load(SeqCst) == pid)
            .map(|i| access_from(self.u32_at(OFF_ENTRIES + 8 * i + 4).load(SeqCst) as u8))
    }
}

/// What one descriptor of a granted mailbox may still do: the page, the
/// sequence number last looked at, and the access found then.
#[derive(Debug)]
pub(crate) struct Allowed {
    page: AccessPage,
    seen: AtomicU32,
    bits: AtomicU32,
}

impl Allowed {
    /// A descriptor opened with `access`, the page as it is now.
    pub(crate) fn new(page: AccessPage, access: Access) -> Allowed {
        let seen = page.seq();
        let access = page.lookup(std::process::id()).unwrap_or(access);
        Allowed {
            page,
            seen: AtomicU32::new(seen),
            bits: AtomicU32::new(u32::from(access_bits(access))),
        }
    }

    /// Whether this process may still send (`send`) or receive on it.
    pub(crate) fn may(&self, send: bool) -> bool {
        let seq = self.page.seq();
        if seq != self.seen.load(SeqCst) {
            if let Some(a) = self.page.lookup(std::process::id()) {
                self.bits.store(u32::from(access_bits(a)), SeqCst);
            }
            self.seen.store(seq, SeqCst);
        }
        let bits = self.bits.load(SeqCst);
        bits & if send { 1 } else { 2 } != 0
    }
}
