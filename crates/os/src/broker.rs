//! Rights carried through ports and mailboxes: the run's root as a broker.
//!
//! A queue carries bytes only, and its sender does not know which process
//! will receive (whoever holds the receive right then, or any receiver of a
//! mailbox). So a right sent into a queue travels in two parts:
//!
//! 1. the sender *deposits* the right's descriptors with the run's broker,
//!    over a Unix `SOCK_SEQPACKET` connection with `SCM_RIGHTS`, and gets a
//!    random 64-bit *ticket*;
//! 2. the frame (flag `BROKERED`, see [`crate::wire`]) carries the right
//!    descriptors and the ticket; the receiver *claims* the ticket and gets
//!    the descriptors, installed as new names as on a direct link.
//!
//! The broker is a thread of the run's root `OsProcess`, listening on the
//! abstract socket `\0mkipc-<run>-broker` (no file: nothing can be left
//! behind). It accepts only connections from its own user (`SO_PEERCRED`),
//! and a right goes only to whoever names its ticket, which only the queue's
//! readers see. Deposits live in the broker, so a right in a queued message
//! outlives its sender, as in the kernel; a deposit never claimed (its
//! message was dropped with its queue) is closed when the root ends.
//!
//! A failed send withdraws its deposit, so the rights stay with the sender.
//!
//! Protocol: every request and reply is one 16-byte packet, `op` (1 byte:
//! `D` deposit, `C` claim), 1 zero byte, the descriptor count (u16), 4 zero
//! bytes, the ticket (u64); a deposit carries its descriptors, a claim's
//! reply carries them (count 0 and op `N`: no such ticket).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::sys::{self, Errno};

const PACKET: usize = 16;
/// At most this many descriptors in one deposit (Linux's `SCM_MAX_FD`).
const MAX_FDS: usize = 253;

fn os_err(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

fn address(run: &str) -> Result<SocketAddrUnix, Errno> {
    SocketAddrUnix::new_abstract_name(format!("mkipc-{run}-broker").as_bytes()).map_err(os_err)
}

fn packet(op: u8, count: usize, ticket: u64) -> [u8; PACKET] {
    let mut p = [0u8; PACKET];
    p[0] = op;
    p[2..4].copy_from_slice(&(count as u16).to_le_bytes());
    p[8..16].copy_from_slice(&ticket.to_le_bytes());
    p
}

fn parse(p: &[u8; PACKET]) -> (u8, usize, u64) {
    (
        p[0],
        u16::from_le_bytes([p[2], p[3]]) as usize,
        u64::from_le_bytes(p[8..16].try_into().expect("8 bytes")),
    )
}

/// The broker of a run: the listening socket and the deposits.
pub(crate) struct Broker {
    listener: OwnedFd,
}

type Deposits = Arc<Mutex<HashMap<u64, Vec<OwnedFd>>>>;

impl Broker {
    /// Listens for the run and serves in a `mkipc-broker` thread.
    pub(crate) fn start(run: &str) -> Result<Broker, Errno> {
        let listener = net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(os_err)?;
        net::bind(&listener, &address(run)?).map_err(os_err)?;
        net::listen(&listener, 64).map_err(os_err)?;
        let accept = sys::dup(listener.as_fd())?;
        let deposits: Deposits = Arc::default();
        std::thread::Builder::new()
            .name("mkipc-broker".into())
            .spawn(move || serve(accept, deposits))
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
        Ok(Broker { listener })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Wakes the accept loop, which then ends (and with it the deposits
        // once every connection has ended).
        let _ = net::shutdown(&self.listener, net::Shutdown::Both);
    }
}

fn serve(listener: OwnedFd, deposits: Deposits) {
    let me = sys::geteuid();
    loop {
        let conn = match net::accept_with(&listener, SocketFlags::CLOEXEC) {
            Ok(c) => c,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
            Err(_) => return,
        };
        // Only this user's processes may deposit or claim.
        if !net::sockopt::socket_peercred(&conn).is_ok_and(|c| c.uid.as_raw() == me) {
            continue;
        }
        let deposits = Arc::clone(&deposits);
        let spawned = std::thread::Builder::new()
            .name("mkipc-broker-conn".into())
            .spawn(move || serve_one(conn, deposits));
        if spawned.is_err() {
            tracing::warn!("mkipc-broker: no thread for a connection");
        }
    }
}

fn serve_one(conn: OwnedFd, deposits: Deposits) {
    loop {
        let mut req = [0u8; PACKET];
        let fds = match sys::recv_fds(conn.as_fd(), &mut req, MAX_FDS) {
            Ok(Some(fds)) => fds,
            _ => return,
        };
        let (op, _, ticket) = parse(&req);
        let reply = match op {
            b'D' => {
                // A ticket nobody can guess: 64 random bits, never 0 and
                // never one in use.
                let mut map = deposits.lock().unwrap_or_else(|p| p.into_inner());
                let ticket = loop {
                    let t = random_u64();
                    if t != 0 && !map.contains_key(&t) {
                        break t;
                    }
                };
                let n = fds.len();
                map.insert(ticket, fds);
                sys::send_fds(conn.as_fd(), &packet(b'D', n, ticket), &[])
            }
            b'C' => {
                let got = deposits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&ticket);
                match got {
                    Some(fds) => {
                        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
                        sys::send_fds(conn.as_fd(), &packet(b'C', raw.len(), ticket), &raw)
                    }
                    None => sys::send_fds(conn.as_fd(), &packet(b'N', 0, ticket), &[]),
                }
            }
            _ => return,
        };
        if reply.is_err() {
            return;
        }
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = sys::getrandom(&mut b);
    u64::from_le_bytes(b)
}

/// One process's connection to its run's broker (made on first use).
#[derive(Default)]
pub(crate) struct BrokerClient {
    conn: Mutex<Option<OwnedFd>>,
}

impl BrokerClient {
    fn with_conn<R>(
        &self,
        run: &str,
        f: impl FnOnce(&OwnedFd) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            let s = net::socket_with(
                AddressFamily::UNIX,
                SocketType::SEQPACKET,
                SocketFlags::CLOEXEC,
                None,
            )
            .map_err(os_err)?;
            net::connect(&s, &address(run)?).map_err(os_err)?;
            *conn = Some(s);
        }
        let result = f(conn.as_ref().expect("connected above"));
        if matches!(result, Err(e) if e != libc::ENOENT) {
            // A broken connection is made again next time.
            *conn = None;
        }
        result
    }

    /// Hands `fds` to the broker; returns the ticket.
    pub(crate) fn deposit(&self, run: &str, fds: &[OwnedFd]) -> Result<u64, Errno> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.with_conn(run, |c| {
            sys::send_fds(c.as_fd(), &packet(b'D', raw.len(), 0), &raw)?;
            let mut reply = [0u8; PACKET];
            sys::recv_fds(c.as_fd(), &mut reply, 0)?.ok_or(libc::EPIPE)?;
            match parse(&reply) {
                (b'D', n, ticket) if n == raw.len() => Ok(ticket),
                _ => Err(libc::EPROTO),
            }
        })
    }

    /// Takes the descriptors deposited under `ticket` (`ENOENT`: none).
    pub(crate) fn claim(&self, run: &str, ticket: u64) -> Result<Vec<OwnedFd>, Errno> {
        self.with_conn(run, |c| {
            sys::send_fds(c.as_fd(), &packet(b'C', 0, ticket), &[])?;
            let mut reply = [0u8; PACKET];
            let fds = sys::recv_fds(c.as_fd(), &mut reply, MAX_FDS)?.ok_or(libc::EPIPE)?;
            match parse(&reply) {
                (b'C', n, t) if t == ticket && n == fds.len() => Ok(fds),
                (b'N', _, _) => Err(libc::ENOENT),
                _ => Err(libc::EPROTO),
            }
        })
    }
}
