//! The kernel's snapshot API, as the checker uses it: one place to adapt if
//! the kernel's names move.

use mkipc_kernel::runtime::{CanonicalOptions, KernelSnapshot, WaitToken};
use mkipc_kernel::{Kernel, Pid, PortName};

/// A copy of the whole kernel state.
pub(crate) type Snap = KernelSnapshot;

/// Copies the kernel's state.
#[inline]
pub(crate) fn take(kernel: &Kernel) -> Snap {
    kernel.snapshot()
}

/// Puts the kernel back into a copied state.
#[inline]
pub(crate) fn restore(kernel: &Kernel, snap: &Snap) {
    kernel.restore(snap);
}

/// Appends the kernel's canonical encoding (equal for kernels that behave
/// alike whatever their allocation history), pushing the end offset of each
/// of its parts to `cuts`.
#[inline]
pub(crate) fn canonical_parts(
    kernel: &Kernel,
    opts: CanonicalOptions,
    out: &mut Vec<u8>,
    cuts: &mut Vec<usize>,
) {
    kernel.canonical_parts(opts, out, cuts);
}

/// The canonical identity of what `name` denotes in `pid`'s space.
#[inline]
pub(crate) fn canonical_name(kernel: &Kernel, pid: Pid, name: PortName) -> u64 {
    kernel.canonical_name(pid, name)
}

/// Whether a pending wait has completed (without taking its outcome).
#[inline]
pub(crate) fn wait_done(kernel: &Kernel, pid: Pid, token: WaitToken) -> bool {
    kernel.wait_done(pid, token)
}

/// The version of `pid`'s name space (the names' codes hold while it does).
#[inline]
pub(crate) fn space_version(kernel: &Kernel, pid: Pid) -> u64 {
    kernel.space_version(pid)
}
