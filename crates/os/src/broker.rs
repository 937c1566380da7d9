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
//! The broker also keeps the run's **name service**: a service name bound
//! to a copy of a send right's descriptors (with its right descriptor), given
//! out as fresh copies to each look-up; a service whose port died (its
//! liveness read end hung up, or holding the two bytes of a destruction) is
//! gone; only the registering process (its pid from `SO_PEERCRED`) may
//! unregister it.
//!
//! It also keeps the access lists of mailboxes created with grants
//! ([`crate::grants`]): their descriptors, given to each opener with the
//! access its pid has.
//!
//! It keeps the **capacity pages** of bounded mailboxes
//! ([`crate::capacity`]), by POSIX name: the creator hands its page over,
//! every opener gets a copy, so `set_capacity` on the mailbox holds for
//! every mkipc sender.
//!
//! And it holds **escrows** for port-destroyed requests that travelled with
//! a receive right (`crate::travel`): the holder puts a copy of the
//! receive right's descriptors, its notify port's send descriptor and
//! liveness read end and the request's token in escrow on its connection.
//! A holder that moves or destroys the right withdraws it. A connection
//! that ends with escrows still in it means its process died without
//! running any code (`SIGKILL`): the OS closed the socket, and the broker
//! (never a timeout) then moves each right to its notify port as the
//! holder would have, or, with the notify port gone, drops its copy, so the
//! port dies (the liveness pipe hangs up).
//!
//! Protocol: every request and its reply is one packet of 274 bytes: `op`
//! (`D` deposit, `C` claim, `R` register, `U` unregister, `L` look up;
//! `G` a granted mailbox created, `O` opened, `A` access granted, `F`
//! forgotten; `E` escrow, with the token as the name, `W` withdraw; `K`
//! keep a mailbox's capacity page, none to forget it, `P` its page), status (0 ok, 1 not found, 2 exists, 3 not the owner or no
//! access, 4 not possible here), descriptor count
//! (u16), right descriptor (4 bytes), ticket (u64), name length (u16), name
//! (256 bytes, zero-padded); descriptors ride with a deposit, a registration,
//! and the replies to a claim and a look-up.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::grants::{access_bits, access_from, Granted, Refused};
use crate::sys::{self, Errno};

/// Bytes of every packet: op, status, count (u16), right descriptor (4),
/// ticket (u64), name length (u16), name (up to 256 bytes, zero-padded).
const PACKET: usize = 18 + NAME_MAX;
const NAME_MAX: usize = 256;
/// At most this many descriptors in one deposit (Linux's `SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// A reply's status byte.
const OK: u8 = 0;
const NOT_FOUND: u8 = 1;
const EXISTS: u8 = 2;
const NOT_OWNER: u8 = 3;
const UNSUPPORTED: u8 = 4;

fn os_err(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

fn address(run: &str) -> Result<SocketAddrUnix, Errno> {
    SocketAddrUnix::new_abstract_name(format!("mkipc-{run}-broker").as_bytes()).map_err(os_err)
}

/// One request or reply.
#[derive(Clone, Default)]
struct Packet {
    op: u8,
    status: u8,
    count: usize,
    desc: [u8; 4],
    ticket: u64,
    name: Vec<u8>,
}

impl Packet {
    fn op(op: u8) -> Packet {
        Packet {
            op,
            ..Packet::default()
        }
    }

    fn bytes(&self) -> [u8; PACKET] {
        let mut p = [0u8; PACKET];
        p[0] = self.op;
        p[1] = self.status;
        p[2..4].copy_from_slice(&(self.count as u16).to_le_bytes());
        p[4..8].copy_from_slice(&self.desc);
        p[8..16].copy_from_slice(&self.ticket.to_le_bytes());
        let n = self.name.len().min(NAME_MAX);
        p[16..18].copy_from_slice(&(n as u16).to_le_bytes());
        p[18..18 + n].copy_from_slice(&self.name[..n]);
        p
    }

    fn parse(p: &[u8; PACKET]) -> Packet {
        let n = (u16::from_le_bytes([p[16], p[17]]) as usize).min(NAME_MAX);
        Packet {
            op: p[0],
            status: p[1],
            count: u16::from_le_bytes([p[2], p[3]]) as usize,
            desc: p[4..8].try_into().expect("4 bytes"),
            ticket: u64::from_le_bytes(p[8..16].try_into().expect("8 bytes")),
            name: p[18..18 + n].to_vec(),
        }
    }
}

fn send(conn: &OwnedFd, p: &Packet, fds: &[RawFd]) -> Result<(), Errno> {
    sys::send_fds(conn.as_fd(), &p.bytes(), fds)
}

fn receive(conn: &OwnedFd) -> Result<Option<(Packet, Vec<OwnedFd>)>, Errno> {
    let mut buf = [0u8; PACKET];
    Ok(sys::recv_fds(conn.as_fd(), &mut buf, MAX_FDS)?.map(|fds| (Packet::parse(&buf), fds)))
}

/// A registered service: who registered it, and its send right.
struct Service {
    owner: u32,
    desc: [u8; 4],
    fds: Vec<OwnedFd>,
}

impl Service {
    /// Whether the port's receiver is gone: its liveness read end (the
    /// last of the right's liveness descriptors, when it has one) hung up, or holds the two
    /// bytes of a destruction (see `crate::queue`).
    fn dead(&self) -> bool {
        let Ok(desc) = crate::wire::RightDesc::parse(&self.desc) else {
            return false;
        };
        if desc.liveness & crate::wire::LIVE_WATCH == 0 {
            return false;
        }
        // The last of the liveness ends (a senders-pipe end may follow).
        let Some(watch) = self.fds.get(desc.liveness_descriptors() - 1) else {
            return false;
        };
        match sys::poll_revents(watch.as_fd(), libc::POLLIN) {
            Ok(0) | Err(_) => false,
            Ok(r) if r & (libc::POLLHUP | libc::POLLERR) != 0 => true,
            Ok(_) => !matches!(sys::pipe_pending(watch.as_fd()), Ok(1)),
        }
    }
}

#[derive(Default)]
struct Tables {
    deposits: HashMap<u64, Vec<OwnedFd>>,
    services: HashMap<Vec<u8>, Service>,
    /// Granted mailboxes by POSIX name ([`crate::grants`]).
    mailboxes: HashMap<Vec<u8>, Granted>,
    /// Bounded mailboxes' capacity pages by POSIX name ([`crate::capacity`]).
    pages: HashMap<Vec<u8>, OwnedFd>,
}

/// The broker of a run: the listening socket and the deposits.
pub(crate) struct Broker {
    listener: OwnedFd,
}

type Deposits = Arc<Mutex<Tables>>;

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
        // Only this user's processes may deposit, claim or name services.
        let peer = match net::sockopt::socket_peercred(&conn) {
            Ok(c) if c.uid.as_raw() == me => c.pid.as_raw_nonzero().get() as u32,
            _ => continue,
        };
        let deposits = Arc::clone(&deposits);
        let spawned = std::thread::Builder::new()
            .name("mkipc-broker-conn".into())
            .spawn(move || serve_one(conn, peer, deposits));
        if spawned.is_err() {
            tracing::warn!("mkipc-broker: no thread for a connection");
        }
    }
}

/// A port-destroyed request's receive right in escrow (see the module
/// docs): the right as a message carries it, and where it goes.
struct Escrow {
    desc: [u8; 4],
    right: Vec<OwnedFd>,
    notify: OwnedFd,
    notify_watch: OwnedFd,
    token: u32,
}

impl Escrow {
    /// The holder died: the right moves to its notify port (deposited here
    /// for the notify port's reader to claim), or dies with this copy if the
    /// notify port is gone or cannot take it.
    fn fire(self, tables: &Deposits) {
        let gone = match sys::poll_revents(self.notify_watch.as_fd(), libc::POLLIN) {
            Ok(0) => false,
            Ok(_) | Err(_) => true,
        };
        let Ok(desc) = crate::wire::RightDesc::parse(&self.desc) else {
            return;
        };
        if gone {
            tracing::debug!("escrow: the notify port is gone too; the port dies");
            return;
        }
        let ticket = {
            let mut t = tables.lock().unwrap_or_else(|p| p.into_inner());
            let ticket = loop {
                let t2 = random_u64();
                if t2 != 0 && !t.deposits.contains_key(&t2) {
                    break t2;
                }
            };
            t.deposits.insert(ticket, self.right);
            ticket
        };
        let msg = mkipc_kernel::Message::new(
            mkipc_kernel::Notification::PORT_DESTROYED_ID,
            mkipc_kernel::message::Body::new(),
        );
        let pre = crate::wire::Prefixes {
            stamp: Some(crate::wire::now_stamp()),
            ticket: Some(ticket),
        };
        let frame = crate::wire::encode_queue(&msg, 0, 0, self.token, pre, &[desc]);
        // A full notify port gets a moment to make room (its reader is alive).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        if let Err(e) = sys::mq_send(self.notify.as_fd(), &frame, sys::MqWait::Until(until)) {
            tracing::warn!(
                errno = e,
                "escrow: port-destroyed notification lost; the port dies"
            );
            tables
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .deposits
                .remove(&ticket);
        }
    }
}

fn serve_one(conn: OwnedFd, peer: u32, tables: Deposits) {
    let mut escrows: HashMap<u64, Escrow> = HashMap::new();
    serve_requests(&conn, peer, &tables, &mut escrows);
    // The connection ended: a process that still had rights in escrow died
    // without withdrawing them.
    for (_, e) in escrows.drain() {
        e.fire(&tables);
    }
}

fn serve_requests(
    conn: &OwnedFd,
    peer: u32,
    tables: &Deposits,
    escrows: &mut HashMap<u64, Escrow>,
) {
    while let Ok(Some((req, mut fds))) = receive(conn) {
        let mut t = tables.lock().unwrap_or_else(|p| p.into_inner());
        let mut reply = Packet::op(req.op);
        let mut out: Vec<RawFd> = Vec::new();
        let mut dups: Vec<OwnedFd> = Vec::new();
        match req.op {
            b'D' => {
                // A ticket nobody can guess: 64 random bits, never 0 and
                // never one in use.
                let ticket = loop {
                    let t2 = random_u64();
                    if t2 != 0 && !t.deposits.contains_key(&t2) {
                        break t2;
                    }
                };
                reply.ticket = ticket;
                t.deposits.insert(ticket, fds);
            }
            b'C' => match t.deposits.remove(&req.ticket) {
                Some(got) => {
                    reply.count = got.len();
                    reply.ticket = req.ticket;
                    out = got.iter().map(|f| f.as_raw_fd()).collect();
                    dups = got;
                }
                None => reply.status = NOT_FOUND,
            },
            b'R' => {
                let live = t.services.get(&req.name).is_some_and(|s| !s.dead());
                if live {
                    reply.status = EXISTS;
                } else {
                    t.services.insert(
                        req.name.clone(),
                        Service {
                            owner: peer,
                            desc: req.desc,
                            fds,
                        },
                    );
                }
            }
            b'U' => match t.services.get(&req.name) {
                None => reply.status = NOT_FOUND,
                Some(s) if s.owner != peer => reply.status = NOT_OWNER,
                Some(_) => {
                    t.services.remove(&req.name);
                }
            },
            b'L' => match t.services.get(&req.name) {
                Some(s) if !s.dead() => {
                    // Every look-up gets its own copies.
                    dups = s
                        .fds
                        .iter()
                        .filter_map(|f| sys::dup(f.as_fd()).ok())
                        .collect();
                    if dups.len() == s.fds.len() {
                        reply.desc = s.desc;
                        reply.count = dups.len();
                        out = dups.iter().map(|f| f.as_raw_fd()).collect();
                    } else {
                        dups.clear();
                        reply.status = NOT_FOUND;
                    }
                }
                Some(_) => {
                    t.services.remove(&req.name);
                    reply.status = NOT_FOUND;
                }
                None => reply.status = NOT_FOUND,
            },
            b'G' => {
                let live = t.mailboxes.get(&req.name).is_some_and(Granted::exists);
                let posix = String::from_utf8_lossy(&req.name).into_owned();
                let made =
                    Granted::new(peer, req.desc[1] != 0, access_from(req.desc[0]), posix, fds);
                match made {
                    _ if live => reply.status = EXISTS,
                    Some(g) => {
                        t.mailboxes.insert(req.name.clone(), g);
                    }
                    None => reply.status = NOT_FOUND,
                }
            }
            b'O' => match t.mailboxes.get_mut(&req.name) {
                Some(g) if g.exists() => match g.open(peer) {
                    Ok((access, fd, page)) => {
                        reply.desc[0] = access_bits(access);
                        reply.count = 2;
                        out = vec![fd.as_raw_fd(), page.as_raw_fd()];
                        dups = vec![fd, page];
                    }
                    Err(r) => reply.status = refused(r),
                },
                Some(_) => {
                    t.mailboxes.remove(&req.name);
                    reply.status = NOT_FOUND;
                }
                None => reply.status = NOT_FOUND,
            },
            b'A' => match t.mailboxes.get_mut(&req.name) {
                Some(g) => {
                    let pid = req.ticket as u32;
                    if let Err(r) = g.grant(peer, pid, access_from(req.desc[0])) {
                        reply.status = refused(r);
                    }
                }
                None => reply.status = NOT_FOUND,
            },
            b'E' => {
                let token = <[u8; 4]>::try_from(&req.name[..]).map(u32::from_le_bytes);
                match (token, fds.len()) {
                    (Ok(token), n) if n >= 3 => {
                        let notify_watch = fds.pop().expect("counted");
                        let notify = fds.pop().expect("counted");
                        let id = loop {
                            let id = random_u64();
                            if id != 0 && !escrows.contains_key(&id) {
                                break id;
                            }
                        };
                        escrows.insert(
                            id,
                            Escrow {
                                desc: req.desc,
                                right: fds,
                                notify,
                                notify_watch,
                                token,
                            },
                        );
                        reply.ticket = id;
                    }
                    _ => reply.status = UNSUPPORTED,
                }
            }
            b'K' => match fds.pop() {
                Some(page) if fds.is_empty() => {
                    t.pages.insert(req.name.clone(), page);
                }
                Some(_) => reply.status = UNSUPPORTED,
                None => {
                    t.pages.remove(&req.name);
                }
            },
            b'P' => match t.pages.get(&req.name).map(|f| sys::dup(f.as_fd())) {
                Some(Ok(page)) => {
                    reply.count = 1;
                    out = vec![page.as_raw_fd()];
                    dups = vec![page];
                }
                _ => reply.status = NOT_FOUND,
            },
            b'W' => {
                if escrows.remove(&req.ticket).is_none() {
                    reply.status = NOT_FOUND;
                }
            }
            b'F' => match t.mailboxes.get(&req.name) {
                Some(g) if !g.may_forget(peer) => reply.status = NOT_OWNER,
                Some(_) => {
                    t.mailboxes.remove(&req.name);
                }
                None => reply.status = NOT_FOUND,
            },
            _ => return,
        }
        drop(t);
        if send(conn, &reply, &out).is_err() {
            return;
        }
        drop(dups);
    }
}

fn refused(r: Refused) -> u8 {
    match r {
        Refused::NotFound => NOT_FOUND,
        Refused::NoPermission => NOT_OWNER,
        Refused::Unsupported => UNSUPPORTED,
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

    fn ask(
        &self,
        run: &str,
        req: &Packet,
        fds: &[OwnedFd],
    ) -> Result<(Packet, Vec<OwnedFd>), Errno> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.with_conn(run, |c| {
            send(c, req, &raw)?;
            let (reply, got) = receive(c)?.ok_or(libc::EPIPE)?;
            if reply.op != req.op || reply.count != got.len() {
                return Err(libc::EPROTO);
            }
            Ok((reply, got))
        })
    }

    /// Hands `fds` to the broker; returns the ticket.
    pub(crate) fn deposit(&self, run: &str, fds: &[OwnedFd]) -> Result<u64, Errno> {
        let req = Packet {
            count: fds.len(),
            ..Packet::op(b'D')
        };
        let (reply, _) = self.ask(run, &req, fds)?;
        match reply.ticket {
            0 => Err(libc::EPROTO),
            t => Ok(t),
        }
    }

    /// Takes the descriptors deposited under `ticket` (`ENOENT`: none).
    pub(crate) fn claim(&self, run: &str, ticket: u64) -> Result<Vec<OwnedFd>, Errno> {
        let req = Packet {
            ticket,
            ..Packet::op(b'C')
        };
        match self.ask(run, &req, &[])? {
            (r, fds) if r.status == OK && r.ticket == ticket => Ok(fds),
            (r, _) if r.status == NOT_FOUND => Err(libc::ENOENT),
            _ => Err(libc::EPROTO),
        }
    }

    /// Registers a send right (its descriptor and descriptors) under
    /// `service`: `EEXIST` if a live one is there.
    pub(crate) fn register(
        &self,
        run: &str,
        service: &str,
        desc: [u8; 4],
        fds: &[OwnedFd],
    ) -> Result<(), Errno> {
        let req = Packet {
            desc,
            count: fds.len(),
            name: service.as_bytes().to_vec(),
            ..Packet::op(b'R')
        };
        match self.ask(run, &req, fds)?.0.status {
            OK => Ok(()),
            EXISTS => Err(libc::EEXIST),
            _ => Err(libc::EPROTO),
        }
    }

    /// Removes a service this process registered (`ENOENT`, `EPERM`).
    pub(crate) fn unregister(&self, run: &str, service: &str) -> Result<(), Errno> {
        let req = Packet {
            name: service.as_bytes().to_vec(),
            ..Packet::op(b'U')
        };
        match self.ask(run, &req, &[])?.0.status {
            OK => Ok(()),
            NOT_FOUND => Err(libc::ENOENT),
            NOT_OWNER => Err(libc::EPERM),
            _ => Err(libc::EPROTO),
        }
    }

    /// Copies of a service's send right: its descriptor and descriptors.
    pub(crate) fn look_up(
        &self,
        run: &str,
        service: &str,
    ) -> Result<([u8; 4], Vec<OwnedFd>), Errno> {
        let req = Packet {
            name: service.as_bytes().to_vec(),
            ..Packet::op(b'L')
        };
        match self.ask(run, &req, &[])? {
            (r, fds) if r.status == OK => Ok((r.desc, fds)),
            (r, _) if r.status == NOT_FOUND => Err(libc::ENOENT),
            _ => Err(libc::EPROTO),
        }
    }

    /// Hands a granted mailbox (its POSIX name, default access, whether it
    /// is a system mailbox, its read-write, write-only and read-only
    /// descriptors) to the broker: `EEXIST` if the name is kept already.
    pub(crate) fn mailbox_granted(
        &self,
        run: &str,
        posix: &str,
        default: mkipc_kernel::name::Access,
        system: bool,
        fds: &[OwnedFd],
    ) -> Result<(), Errno> {
        let req = Packet {
            desc: [access_bits(default), u8::from(system), 0, 0],
            count: fds.len(),
            name: posix.as_bytes().to_vec(),
            ..Packet::op(b'G')
        };
        match self.ask(run, &req, fds)?.0.status {
            OK => Ok(()),
            EXISTS => Err(libc::EEXIST),
            _ => Err(libc::EPROTO),
        }
    }

    /// Opens a granted mailbox: this process's access, a descriptor with
    /// it, and the mailbox's access page (`crate::access_page`); `ENOENT` if the broker keeps no such mailbox, `EACCES` if
    /// this process has no access.
    pub(crate) fn mailbox_open(
        &self,
        run: &str,
        posix: &str,
    ) -> Result<(mkipc_kernel::name::Access, OwnedFd, OwnedFd), Errno> {
        let req = Packet {
            name: posix.as_bytes().to_vec(),
            ..Packet::op(b'O')
        };
        match self.ask(run, &req, &[])? {
            (r, fds) if r.status == OK && fds.len() == 2 => {
                let [fd, page]: [OwnedFd; 2] = fds.try_into().map_err(|_| libc::EPROTO)?;
                Ok((access_from(r.desc[0]), fd, page))
            }
            (r, _) if r.status == NOT_FOUND => Err(libc::ENOENT),
            (r, _) if r.status == NOT_OWNER => Err(libc::EACCES),
            _ => Err(libc::EPROTO),
        }
    }

    /// Sets `pid`'s access to a granted mailbox: `ENOENT`, `EPERM` (not
    /// this process's to manage), `EBUSY` (it would take access back from
    /// a process holding it open).
    pub(crate) fn mailbox_grant(
        &self,
        run: &str,
        posix: &str,
        pid: u32,
        access: mkipc_kernel::name::Access,
    ) -> Result<(), Errno> {
        let req = Packet {
            desc: [access_bits(access), 0, 0, 0],
            ticket: u64::from(pid),
            name: posix.as_bytes().to_vec(),
            ..Packet::op(b'A')
        };
        match self.ask(run, &req, &[])?.0.status {
            OK => Ok(()),
            NOT_FOUND => Err(libc::ENOENT),
            NOT_OWNER => Err(libc::EPERM),
            UNSUPPORTED => Err(libc::EBUSY),
            _ => Err(libc::EPROTO),
        }
    }

    /// Puts a receive right in escrow on this process's connection (see
    /// the module docs): `desc` and `fds` as a message carries it, then the
    /// notify port's send descriptor and liveness read end; the escrow's id.
    pub(crate) fn escrow(
        &self,
        run: &str,
        desc: [u8; 4],
        fds: &[OwnedFd],
        token: u32,
    ) -> Result<u64, Errno> {
        let req = Packet {
            desc,
            count: fds.len(),
            name: token.to_le_bytes().to_vec(),
            ..Packet::op(b'E')
        };
        match self.ask(run, &req, fds)? {
            (r, _) if r.status == OK && r.ticket != 0 => Ok(r.ticket),
            _ => Err(libc::EPROTO),
        }
    }

    /// Hands a bounded mailbox's capacity page to the broker (`Some`), or
    /// tells it the mailbox is gone (`None`).
    pub(crate) fn keep_page(
        &self,
        run: &str,
        posix: &str,
        page: Option<OwnedFd>,
    ) -> Result<(), Errno> {
        let fds: Vec<OwnedFd> = page.into_iter().collect();
        let req = Packet {
            count: fds.len(),
            name: posix.as_bytes().to_vec(),
            ..Packet::op(b'K')
        };
        match self.ask(run, &req, &fds)?.0.status {
            OK => Ok(()),
            _ => Err(libc::EPROTO),
        }
    }

    /// A copy of a bounded mailbox's capacity page (`ENOENT`: the broker
    /// keeps none, e.g. a queue made by a program other than mkipc).
    pub(crate) fn page(&self, run: &str, posix: &str) -> Result<OwnedFd, Errno> {
        let req = Packet {
            name: posix.as_bytes().to_vec(),
            ..Packet::op(b'P')
        };
        match self.ask(run, &req, &[])? {
            (r, mut fds) if r.status == OK && fds.len() == 1 => Ok(fds.remove(0)),
            (r, _) if r.status == NOT_FOUND => Err(libc::ENOENT),
            _ => Err(libc::EPROTO),
        }
    }

    /// Takes a receive right out of escrow (its holder moved or destroyed it).
    pub(crate) fn withdraw(&self, run: &str, id: u64) -> Result<(), Errno> {
        let req = Packet {
            ticket: id,
            ..Packet::op(b'W')
        };
        match self.ask(run, &req, &[])?.0.status {
            OK => Ok(()),
            NOT_FOUND => Err(libc::ENOENT),
            _ => Err(libc::EPROTO),
        }
    }

    /// Removes a granted mailbox from the broker (it was destroyed).
    pub(crate) fn mailbox_forget(&self, run: &str, posix: &str) -> Result<(), Errno> {
        let req = Packet {
            name: posix.as_bytes().to_vec(),
            ..Packet::op(b'F')
        };
        match self.ask(run, &req, &[])?.0.status {
            OK => Ok(()),
            NOT_FOUND => Err(libc::ENOENT),
            NOT_OWNER => Err(libc::EPERM),
            _ => Err(libc::EPROTO),
        }
    }
}
