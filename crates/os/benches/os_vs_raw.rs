//! mkipc on real processes vs the raw OS, in the same run.
//!
//! Four pairs, each for 8-byte and 1 KiB messages, between this process and a
//! child process:
//!
//! * round-trip latency: mkipc `send_to`/`receive_from` over its pipe link vs
//!   a raw `write`/`read` ping-pong on two pipes; mkipc mailbox send/receive
//!   vs raw `mq_send`/`mq_receive` on two POSIX queues;
//! * one-way throughput: N messages one way, then one acknowledgement (the
//!   raw pipe reader uses 64 KiB reads; queues have depth 10);
//! * mkipc over a shared-memory link (`LinkKind::SharedMemory`), both
//!   shapes, compared with the raw pipe;
//! * mkipc over a Unix socket link and a TCP socket link (`LinkKind::UnixSocket`,
//!   `LinkKind::Tcp`, loopback) vs a raw `write`/`read` ping-pong on a Unix
//!   stream socket and on a loopback TCP stream (`TCP_NODELAY` both sides);
//! * with `--features iceoryx2`: iceoryx2's publish-subscribe round trip
//!   (two services, each side polling its subscriber and yielding between
//!   polls), compared with the raw pipe.
//!
//! At the end a table prints the time per operation and the ratio mkipc/raw
//! (1.00 = as fast as the raw OS), then the median, min and max of the
//! measured samples of each shared-memory (and iceoryx2) row as ratios to
//! the raw pipe's, and of each socket row as ratios to its raw socket's. Run
//! it both ways:
//!
//! ```text
//! cargo bench -p mkipc-os --bench os_vs_raw [--features iceoryx2]
//! taskset -c 0 cargo bench -p mkipc-os --bench os_vs_raw [--features iceoryx2]
//! ```

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mkipc_kernel::{Capacity, Ipc, MailboxConfig, Message, PortName};
use mkipc_os::{LinkKind, OsProcess, Spawn};

const PING: u8 = 1;
const ONE_WAY: u8 = 3;
const REPORT: u8 = 4;
const QUIT: u8 = 5;

/// Criterion's samples per benchmark (see [`group`]).
const SAMPLES: usize = 10;

/// Per benchmark: total time and operations (for the mean), and the time
/// per operation of each call (the last [`SAMPLES`] are the measured ones;
/// the earlier ones are criterion's warm-up).
static TOTALS: Mutex<BTreeMap<String, Totals>> = Mutex::new(BTreeMap::new());

/// Total time, total operations, and the time per operation of each call.
type Totals = (Duration, u64, Vec<f64>);

fn record(name: &str, d: Duration, ops: u64) {
    let mut t = TOTALS.lock().unwrap();
    let e = t
        .entry(name.to_string())
        .or_insert((Duration::ZERO, 0, Vec::new()));
    e.0 += d;
    e.1 += ops;
    e.2.push(d.as_nanos() as f64 / ops.max(1) as f64);
}

// ----- the child processes ---------------------------------------------------------

/// mkipc echo over the direct link with the parent.
fn echo_link(os: &OsProcess) -> i32 {
    let parent = os.parent().unwrap();
    while let Ok(m) = os.receive_from(parent) {
        match m.id as u8 {
            PING | REPORT => os.send_to(parent, m).unwrap(),
            QUIT => return 0,
            _ => {}
        }
    }
    0
}

/// mkipc echo through two mailboxes (args: ping, pong).
fn echo_mailbox(os: &OsProcess) -> i32 {
    let ping = os.mailbox_open(&os.args()[0]).unwrap();
    let pong = os.mailbox_open(&os.args()[1]).unwrap();
    loop {
        let m = os.receive(ping).unwrap();
        match m.id as u8 {
            PING | REPORT => os.send(pong, m).unwrap(),
            QUIT => return 0,
            _ => {}
        }
    }
}

/// Raw pipe echo on stdin/stdout: fixed-size messages whose first byte is the mode.
fn raw_pipe_echo(size: usize) {
    raw_echo(std::io::stdin().lock(), std::io::stdout().lock(), size);
}

/// Raw socket echo: connects to `MKIPC_BENCH_ADDR` (a Unix path, or a TCP
/// address when `tcp`), then echoes as the pipe echo does.
fn raw_socket_echo(tcp: bool, size: usize) {
    let addr = std::env::var("MKIPC_BENCH_ADDR").unwrap();
    if tcp {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        raw_echo(s.try_clone().unwrap(), s, size);
    } else {
        let s = std::os::unix::net::UnixStream::connect(addr).unwrap();
        raw_echo(s.try_clone().unwrap(), s, size);
    }
}

/// Echoes fixed-size messages read from `input` (64 KiB reads, sliced) to `output`.
fn raw_echo(mut input: impl Read, mut output: impl Write, size: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut start, mut end) = (0, 0);
    loop {
        while end - start < size {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            match input.read(&mut buf[end..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => end += n,
            }
        }
        let msg = start..start + size;
        start += size;
        match buf[msg.start] {
            PING | REPORT => {
                output.write_all(&buf[msg]).unwrap();
                output.flush().unwrap();
            }
            QUIT => return,
            _ => {}
        }
    }
}

fn mq_open(name: &str, flags: i32, create: bool) -> i32 {
    let c = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated name; the attr pointer lives across the call.
    unsafe {
        if create {
            let mut attr: libc::mq_attr = std::mem::zeroed();
            attr.mq_maxmsg = 10;
            attr.mq_msgsize = 8192;
            libc::mq_open(
                c.as_ptr(),
                flags | libc::O_CREAT,
                0o600 as libc::c_uint,
                &mut attr as *mut libc::mq_attr,
            )
        } else {
            libc::mq_open(c.as_ptr(), flags)
        }
    }
}

fn mq_send(q: i32, data: &[u8]) {
    // SAFETY: `data` is readable; q is a queue descriptor.
    let r = unsafe { libc::mq_send(q, data.as_ptr().cast(), data.len(), 0) };
    assert_eq!(r, 0);
}

fn mq_receive(q: i32, buf: &mut [u8]) -> usize {
    // SAFETY: `buf` is writable for its length, which is the queue's msgsize.
    let r =
        unsafe { libc::mq_receive(q, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut()) };
    assert!(r >= 0);
    r as usize
}

/// Raw POSIX queue echo (env: queue names).
fn raw_mq_echo(ping: &str, pong: &str) {
    let a = mq_open(ping, libc::O_RDONLY, false);
    let b = mq_open(pong, libc::O_WRONLY, false);
    let mut buf = vec![0u8; 8192];
    loop {
        let n = mq_receive(a, &mut buf);
        match buf[0] {
            PING | REPORT => mq_send(b, &buf[..n]),
            QUIT => return,
            _ => {}
        }
    }
}

// ----- the four peers, behind one interface ------------------------------------------

trait Peer {
    fn send(&mut self, mode: u8, body: &[u8]);
    fn receive(&mut self);
}

struct MkLink<'a> {
    os: &'a OsProcess,
    child: mkipc_kernel::Pid,
}
impl Peer for MkLink<'_> {
    fn send(&mut self, mode: u8, body: &[u8]) {
        self.os
            .send_to(self.child, Message::new(u32::from(mode), body))
            .unwrap();
    }
    fn receive(&mut self) {
        self.os.receive_from(self.child).unwrap();
    }
}

struct MkMailbox<'a> {
    os: &'a OsProcess,
    ping: PortName,
    pong: PortName,
}
impl Peer for MkMailbox<'_> {
    fn send(&mut self, mode: u8, body: &[u8]) {
        self.os
            .send(self.ping, Message::new(u32::from(mode), body))
            .unwrap();
    }
    fn receive(&mut self) {
        self.os.receive(self.pong).unwrap();
    }
}

struct RawPipe {
    child: std::process::Child,
    buf: Vec<u8>,
}
impl Peer for RawPipe {
    fn send(&mut self, mode: u8, body: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(body);
        self.buf[0] = mode;
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(&self.buf)
            .unwrap();
    }
    fn receive(&mut self) {
        let n = self.buf.len();
        self.child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut self.buf[..n])
            .unwrap();
    }
}

/// A raw stream socket to the echo child (one descriptor each way, cloned).
struct RawSocket<S> {
    tx: S,
    rx: S,
    buf: Vec<u8>,
}
impl<S: Read + Write> Peer for RawSocket<S> {
    fn send(&mut self, mode: u8, body: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(body);
        self.buf[0] = mode;
        self.tx.write_all(&self.buf).unwrap();
    }
    fn receive(&mut self) {
        let n = self.buf.len();
        self.rx.read_exact(&mut self.buf[..n]).unwrap();
    }
}

/// Benchmarks the raw socket peer: a listener, the echo child, one stream.
fn bench_raw_socket(c: &mut Criterion, tcp: bool, size: usize) {
    let exe = std::env::current_exe().unwrap();
    let spawn = |addr: String| {
        Command::new(&exe)
            .env("MKIPC_BENCH_RAW", if tcp { "tcp" } else { "unix" })
            .env("MKIPC_BENCH_SIZE", size.to_string())
            .env("MKIPC_BENCH_ADDR", addr)
            .spawn()
            .unwrap()
    };
    let mut child;
    if tcp {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        child = spawn(l.local_addr().unwrap().to_string());
        let (s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut peer = RawSocket {
            tx: s.try_clone().unwrap(),
            rx: s,
            buf: Vec::new(),
        };
        bench_peer(c, "raw-tcp", size, &mut peer);
    } else {
        let path = std::env::temp_dir().join(format!("mkipc-bench-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        child = spawn(path.to_str().unwrap().to_string());
        let (s, _) = l.accept().unwrap();
        let _ = std::fs::remove_file(&path);
        let mut peer = RawSocket {
            tx: s.try_clone().unwrap(),
            rx: s,
            buf: Vec::new(),
        };
        bench_peer(c, "raw-unix", size, &mut peer);
    }
    // The child's read ends with end of stream once the peer is dropped.
    child.wait().unwrap();
}

struct RawMq {
    ping: i32,
    pong: i32,
    buf: Vec<u8>,
}
impl Peer for RawMq {
    fn send(&mut self, mode: u8, body: &[u8]) {
        let mut b = [0u8; 1024];
        b[..body.len()].copy_from_slice(body);
        b[0] = mode;
        mq_send(self.ping, &b[..body.len()]);
    }
    fn receive(&mut self) {
        mq_receive(self.pong, &mut self.buf);
    }
}

fn round_trips(peer: &mut dyn Peer, body: &[u8], iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        peer.send(PING, body);
        peer.receive();
    }
    t.elapsed()
}

fn one_way(peer: &mut dyn Peer, body: &[u8], iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        peer.send(ONE_WAY, body);
    }
    peer.send(REPORT, body);
    peer.receive();
    t.elapsed()
}

fn bench_peer(c: &mut Criterion, kind: &str, size: usize, peer: &mut dyn Peer) {
    let body = vec![0x55u8; size];
    let mut g = c.benchmark_group(format!("{kind}/{size}B"));
    let rt = format!("{kind}/{size}B/round-trip");
    g.bench_function("round-trip", |b| {
        b.iter_custom(|iters| {
            let d = round_trips(peer, &body, iters);
            record(&rt, d, iters);
            d
        })
    });
    let ow = format!("{kind}/{size}B/one-way");
    g.bench_function("one-way", |b| {
        b.iter_custom(|iters| {
            let d = one_way(peer, &body, iters);
            record(&ow, d, iters);
            d
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    mkipc_os::set_entry_args(&[]);
    let os = OsProcess::new().unwrap();
    for size in [8usize, 1024] {
        // mkipc over its pipe link.
        let mut child = os.spawn(Spawn::new("echo-link")).unwrap();
        bench_peer(
            c,
            "mkipc-pipe",
            size,
            &mut MkLink {
                os: &os,
                child: child.pid(),
            },
        );
        os.send_to(child.pid(), Message::new(u32::from(QUIT), &[0u8][..]))
            .unwrap();
        child.wait().unwrap();

        // mkipc over a shared-memory link.
        let spec = Spawn::new("echo-link").link_kind(LinkKind::SharedMemory);
        let mut child = os.spawn(spec).unwrap();
        bench_peer(
            c,
            "mkipc-shm",
            size,
            &mut MkLink {
                os: &os,
                child: child.pid(),
            },
        );
        os.send_to(child.pid(), Message::new(u32::from(QUIT), &[0u8][..]))
            .unwrap();
        child.wait().unwrap();

        // mkipc over socket links, and the raw sockets.
        for (kind, name) in [
            (LinkKind::UnixSocket, "mkipc-unix"),
            (LinkKind::Tcp, "mkipc-tcp"),
        ] {
            let mut child = os.spawn(Spawn::new("echo-link").link_kind(kind)).unwrap();
            bench_peer(
                c,
                name,
                size,
                &mut MkLink {
                    os: &os,
                    child: child.pid(),
                },
            );
            os.send_to(child.pid(), Message::new(u32::from(QUIT), &[0u8][..]))
                .unwrap();
            child.wait().unwrap();
        }
        bench_raw_socket(c, false, size);
        bench_raw_socket(c, true, size);

        #[cfg(feature = "iceoryx2")]
        ice::bench(c, size);

        // Raw pipes (the child's stdin and stdout).
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .env("MKIPC_BENCH_RAW", "pipe")
            .env("MKIPC_BENCH_SIZE", size.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut raw = RawPipe {
            child,
            buf: Vec::new(),
        };
        bench_peer(c, "raw-pipe", size, &mut raw);
        drop(raw.child.stdin.take());
        raw.child.wait().unwrap();

        // mkipc over two mailboxes (POSIX queues).
        let tag = format!("bench{size}");
        let ping = os
            .mailbox_create(
                &format!("{tag}-ping"),
                MailboxConfig::new(Capacity::Bounded(10)),
            )
            .unwrap();
        let pong = os
            .mailbox_create(
                &format!("{tag}-pong"),
                MailboxConfig::new(Capacity::Bounded(10)),
            )
            .unwrap();
        let spec = Spawn::new("echo-mailbox")
            .arg(format!("{tag}-ping"))
            .arg(format!("{tag}-pong"));
        let mut child = os.spawn(spec).unwrap();
        bench_peer(
            c,
            "mkipc-mq",
            size,
            &mut MkMailbox {
                os: &os,
                ping,
                pong,
            },
        );
        os.send(ping, Message::new(u32::from(QUIT), &[0u8][..]))
            .unwrap();
        child.wait().unwrap();
        os.mailbox_destroy(ping).unwrap();
        os.mailbox_destroy(pong).unwrap();

        // Raw POSIX queues.
        let (pa, pb) = (
            format!("/mkipc-bench-{}-a", std::process::id()),
            format!("/mkipc-bench-{}-b", std::process::id()),
        );
        let a = mq_open(&pa, libc::O_WRONLY, true);
        let b = mq_open(&pb, libc::O_RDONLY, true);
        assert!(a >= 0 && b >= 0, "raw mq_open");
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .env("MKIPC_BENCH_RAW", "mq")
            .env("MKIPC_BENCH_Q", format!("{pa} {pb}"))
            .spawn()
            .unwrap();
        bench_peer(
            c,
            "raw-mq",
            size,
            &mut RawMq {
                ping: a,
                pong: b,
                buf: vec![0u8; 8192],
            },
        );
        mq_send(a, &[QUIT]);
        child.wait().unwrap();
        for n in [&pa, &pb] {
            let c = CString::new(n.as_str()).unwrap();
            // SAFETY: valid NUL-terminated name.
            unsafe { libc::mq_unlink(c.as_ptr()) };
        }
    }
}

fn print_ratios() {
    let t = TOTALS.lock().unwrap();
    let per_op = |k: &str| {
        t.get(k)
            .map(|(d, n, _)| d.as_nanos() as f64 / (*n).max(1) as f64)
    };
    println!(
        "\n{:<28} {:>12} {:>12} {:>8}",
        "measure", "mkipc ns/op", "raw ns/op", "ratio"
    );
    for size in [8, 1024] {
        for (mk, raw) in [
            ("mkipc-pipe", "raw-pipe"),
            ("mkipc-mq", "raw-mq"),
            ("mkipc-shm", "raw-pipe"),
            ("iceoryx2", "raw-pipe"),
            ("mkipc-unix", "raw-unix"),
            ("mkipc-tcp", "raw-tcp"),
        ] {
            for shape in ["round-trip", "one-way"] {
                let (a, b) = (
                    per_op(&format!("{mk}/{size}B/{shape}")),
                    per_op(&format!("{raw}/{size}B/{shape}")),
                );
                if let (Some(a), Some(b)) = (a, b) {
                    let label = format!("{}/{size}B/{shape}", mk.trim_start_matches("mkipc-"));
                    println!("{label:<28} {a:>12.0} {b:>12.0} {:>7.2}x", a / b);
                }
            }
        }
    }
    // Median, min and max of the measured samples, against the raw pipe's.
    let stats = |k: &str| {
        t.get(k).map(|(_, _, v)| {
            let mut m: Vec<f64> = v[v.len().saturating_sub(SAMPLES)..].to_vec();
            m.sort_by(f64::total_cmp);
            (m[m.len() / 2], m[0], m[m.len() - 1])
        })
    };
    println!(
        "\n{:<28} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "vs its raw peer (ns/op)", "median", "raw", "median", "min", "max", ""
    );
    println!(
        "{:<28} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "", "", "median", "ratio", "ratio", "ratio"
    );
    for size in [8, 1024] {
        for (mk, raw) in [
            ("mkipc-shm", "raw-pipe"),
            ("iceoryx2", "raw-pipe"),
            ("mkipc-pipe", "raw-pipe"),
            ("mkipc-unix", "raw-unix"),
            ("mkipc-tcp", "raw-tcp"),
        ] {
            for shape in ["round-trip", "one-way"] {
                let (Some(a), Some(b)) = (
                    stats(&format!("{mk}/{size}B/{shape}")),
                    stats(&format!("{raw}/{size}B/{shape}")),
                ) else {
                    continue;
                };
                let label = format!("{}/{size}B/{shape}", mk.trim_start_matches("mkipc-"));
                println!(
                    "{label:<28} {:>10.0} {:>8.0} {:>7.2}x {:>7.2}x {:>7.2}x",
                    a.0,
                    b.0,
                    a.0 / b.0,
                    a.1 / b.1,
                    a.2 / b.2
                );
            }
        }
    }
}

/// Runs every benchmark with a short configuration (the pairs matter, not
/// criterion's statistics).
fn group() {
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut c);
}

fn main() {
    // Children: the mkipc roles, or the raw echo loops.
    mkipc_os::child_main(&[("echo-link", echo_link), ("echo-mailbox", echo_mailbox)]);
    match std::env::var("MKIPC_BENCH_RAW").as_deref() {
        Ok("pipe") => {
            return raw_pipe_echo(std::env::var("MKIPC_BENCH_SIZE").unwrap().parse().unwrap())
        }
        Ok(raw @ ("unix" | "tcp")) => {
            let size = std::env::var("MKIPC_BENCH_SIZE").unwrap().parse().unwrap();
            return raw_socket_echo(raw == "tcp", size);
        }
        Ok("mq") => {
            let names = std::env::var("MKIPC_BENCH_Q").unwrap();
            let (a, b) = names.split_once(' ').unwrap();
            return raw_mq_echo(a, b);
        }
        #[cfg(feature = "iceoryx2")]
        Ok("iceoryx2") => return ice::echo(),
        _ => {}
    }
    group();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    print_ratios();
}

/// iceoryx2's publish-subscribe as a peer: a `ping` service this process
/// publishes on and a `pong` service the child answers on, both polled (a
/// poll that finds nothing yields, so the peer can run when both share a
/// CPU). Round trips only: a one-way stream would need iceoryx2's blocking
/// back-pressure configured, which is not what is compared here.
#[cfg(feature = "iceoryx2")]
mod ice {
    use super::*;
    use iceoryx2::prelude::*;

    type Pub<const N: usize> = iceoryx2::port::publisher::Publisher<ipc::Service, [u8; N], ()>;
    type Sub<const N: usize> = iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8; N], ()>;

    fn ports<const N: usize>(
        node: &Node<ipc::Service>,
        tag: &str,
        publish: &str,
        subscribe: &str,
    ) -> (Pub<N>, Sub<N>) {
        let service = |which: &str| {
            node.service_builder(
                &format!("mkipc-bench/{tag}/{which}")
                    .as_str()
                    .try_into()
                    .unwrap(),
            )
            .publish_subscribe::<[u8; N]>()
            .open_or_create()
            .unwrap()
        };
        let p = service(publish).publisher_builder().create().unwrap();
        let s = service(subscribe).subscriber_builder().create().unwrap();
        (p, s)
    }

    fn send<const N: usize>(p: &Pub<N>, mode: u8) {
        let mut payload = [0x55u8; N];
        payload[0] = mode;
        p.loan_uninit()
            .unwrap()
            .write_payload(payload)
            .send()
            .unwrap();
    }

    fn receive<const N: usize>(s: &Sub<N>) -> u8 {
        loop {
            if let Some(sample) = s.receive().unwrap() {
                return sample.payload()[0];
            }
            std::thread::yield_now();
        }
    }

    struct Ice<const N: usize> {
        publisher: Pub<N>,
        subscriber: Sub<N>,
    }

    impl<const N: usize> Peer for Ice<N> {
        fn send(&mut self, mode: u8, _body: &[u8]) {
            send(&self.publisher, mode);
        }
        fn receive(&mut self) {
            receive(&self.subscriber);
        }
    }

    fn run<const N: usize>(c: &mut Criterion) {
        let tag = format!("{}-{N}", std::process::id());
        let node = NodeBuilder::new().create::<ipc::Service>().unwrap();
        let (publisher, subscriber) = ports::<N>(&node, &tag, "ping", "pong");
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .env("MKIPC_BENCH_RAW", "iceoryx2")
            .env("MKIPC_BENCH_SIZE", N.to_string())
            .env("MKIPC_BENCH_TAG", &tag)
            .spawn()
            .unwrap();
        // The child is ready once it answers.
        let mut peer = Ice {
            publisher,
            subscriber,
        };
        std::thread::sleep(Duration::from_millis(200));
        peer.send(PING, &[]);
        peer.receive();
        let body = vec![0x55u8; N];
        let mut g = c.benchmark_group(format!("iceoryx2/{N}B"));
        let rt = format!("iceoryx2/{N}B/round-trip");
        g.bench_function("round-trip", |b| {
            b.iter_custom(|iters| {
                let d = round_trips(&mut peer, &body, iters);
                record(&rt, d, iters);
                d
            })
        });
        g.finish();
        send(&peer.publisher, QUIT);
        child.wait().unwrap();
    }

    pub fn bench(c: &mut Criterion, size: usize) {
        match size {
            8 => run::<8>(c),
            1024 => run::<1024>(c),
            _ => unreachable!("the sizes of the bench"),
        }
    }

    fn echo_sized<const N: usize>(tag: &str) {
        let node = NodeBuilder::new().create::<ipc::Service>().unwrap();
        let (publisher, subscriber) = ports::<N>(&node, tag, "pong", "ping");
        loop {
            match receive(&subscriber) {
                QUIT => return,
                mode => send(&publisher, mode),
            }
        }
    }

    /// The child: echoes `ping` samples on `pong` until QUIT.
    pub fn echo() {
        let tag = std::env::var("MKIPC_BENCH_TAG").unwrap();
        match std::env::var("MKIPC_BENCH_SIZE").unwrap().as_str() {
            "8" => echo_sized::<8>(&tag),
            _ => echo_sized::<1024>(&tag),
        }
    }
}
