//! A simulated process's plain send and receive, straight on the kernel's
//! non-blocking core.
//!
//! [`Proc`](crate::Proc)'s general operations go through the kernel's
//! blocking layer (`Blocker`: `send_via`/`receive_via`) and carry the
//! explorer's footprint hooks (DPOR) around the call. The two operations a
//! message-passing model makes most, `send_with` and `receive_with` on a
//! name, take this shorter path when the run records no footprints: the
//! scheduling point, the "started" event, the kernel's fast paths alone
//! (`send_fast`, the message by reference and a `bool` back;
//! `receive_fast`, no error case), then `send_begin` or `receive_begin`
//! only when those do not apply (nothing changed; under the one lock the
//! run holds, a second lock is a compare); what a wait reports it waits on
//! (`SimCtx::op`, read only where a wait starts) is set only where one may,
//! the wait when the kernel leaves one (`Blocker::finish_send` and
//! `finish_receive`, the blocking layer's own, which call [`SimCtx`]'s
//! `Blocker::block`), then the figures and the "completed" event. It is the
//! same sequence, in the same order, the general path makes, so runs are
//! identical either way (`tests/determinism.rs`,
//! the pinned hashes); under DPOR the general path runs, hooks included.

use std::time::Duration;

use mkipc_kernel::runtime::{Begin, Blocker, Destination, FastReceive, Source};
use mkipc_kernel::{Message, OnFull, PortName, ReceiveError, SendError, Sent, Wait};

use crate::process::SimCtx;
use crate::trace::{EventKind, Target};

impl SimCtx {
    /// `Ipc::send_with` on a name, as `Proc::send_with` and the blocking
    /// layer make it (module docs).
    #[inline]
    pub(crate) fn send_direct(
        &self,
        dest: PortName,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        self.point();
        let (to, msg_id) = (Target::Name(dest), msg.id);
        if self.core.tracing {
            let rights = msg.rights().len() + usize::from(msg.reply().is_some());
            self.core
                .emit(self.id, EventKind::SendStarted { to, msg_id, rights });
        }
        let kernel = &self.core.kernel;
        let mut msg = msg;
        if kernel.send_fast(self.pid, dest, &mut msg) {
            // Returned from here, not through a `Result` made first and
            // copied out (its tag written narrow, read back wide: a
            // store-forwarding stall in `perf annotate`).
            self.sent_done(to, msg_id, &Ok(Sent::Delivered));
            return Ok(Sent::Delivered);
        }
        // What a wait reports it waits on (`op`, read only by `block`): set
        // where a wait may start, not for every operation.
        self.op.set(Some((true, to)));
        let begin = kernel.send_begin(self.pid, Destination::Name(dest), msg, on_full, &|| {
            self.waker()
        });
        let r = self.finish_send(begin, on_full);
        self.sent_done(to, msg_id, &r);
        r
    }

    /// `Ipc::receive_with` on a name, as `Proc::receive_with` and the
    /// blocking layer make it (module docs).
    #[inline]
    pub(crate) fn receive_direct(
        &self,
        source: PortName,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        self.point();
        let from = Target::Name(source);
        self.core.emit(self.id, EventKind::ReceiveStarted { from });
        let may_wait = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
        let kernel = &self.core.kernel;
        let waker = || self.waker();
        let r = match kernel.receive_fast(self.pid, source, may_wait, &waker) {
            FastReceive::Received(m) => {
                self.received_done(from, Ok(&m));
                return Ok(m);
            }
            FastReceive::Blocked(token) => {
                self.op.set(Some((false, from)));
                self.finish_receive(Begin::Blocked(token), wait)
            }
            FastReceive::Other => {
                self.op.set(Some((false, from)));
                let begin = kernel.receive_begin(self.pid, Source::Name(source), may_wait, &waker);
                self.finish_receive(begin, wait)
            }
        };
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }
}
