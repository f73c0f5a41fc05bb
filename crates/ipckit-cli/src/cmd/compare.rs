//! `ipckit compare`: every IPC mechanism, side by side, measured between two real processes.
//!
//! The course compares its mechanisms on a few questions: is the data exchanged through
//! memory both processes map, or as messages the kernel carries? Can both sides send? Must
//! the processes be related (parent and child)? Can it cross machines? Does the object
//! survive the processes that use it? Does it synchronize the processes by itself, or is a
//! semaphore needed beside it? [`MECHANISMS`] answers them, one entry per mechanism; adding a
//! mechanism is adding one entry.
//!
//! Each entry also runs once: the parent starts a child process (`ipckit __child compare
//! MECH ...`), they set up the mechanism, and the parent measures
//!
//! * **latency**: the round trip of a 64-byte message (send, the child echoes it back), the
//!   median over `--rounds` round trips;
//! * **throughput**: 4 KiB messages from parent to child, with the child acknowledging every
//!   16th (a window that keeps UDP within its socket buffer, so nothing is dropped), in MB/s.
//!
//! Both sides speak through the [`Sender`]/[`Receiver`] traits, so the measuring code is the
//! same for every mechanism; shared memory gets a small channel of its own
//! ([`ShmChannel`]: a 16-slot bounded buffer per direction, with two semaphores).

use super::child;
use super::demo::{Scratch, arg};
use crate::Context;
use anyhow::{Context as _, bail, ensure};
use ipckit::net::{Datagrams, Framed};
use ipckit::pipe::{NamedPipe, Pipe, PipeReader, PipeWriter};
use ipckit::shm::Mapping;
use ipckit::sync::Semaphore;
use ipckit::transport::{self, Pair, Receiver, Sender, TransportError};
use serde::Serialize;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

/// Arguments of `ipckit compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    json: bool,
    /// Round trips of a 64-byte message per mechanism
    #[arg(long, default_value_t = 2000)]
    rounds: u32,
    /// KiB sent per mechanism for the throughput (in 4 KiB messages)
    #[arg(long, default_value_t = 8192)]
    kib: u32,
}

/// How the data moves.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Based {
    /// Both processes map the same memory.
    Memory,
    /// The kernel carries messages (or bytes) from one process to the other.
    Message,
}

/// One mechanism of the comparison: the course's answers, and how to run it.
pub struct Mechanism {
    /// Name in the table and the child's role argument.
    pub name: &'static str,
    /// Memory- or message-based.
    pub based: Based,
    /// Both processes can send through one object.
    pub bidirectional: bool,
    /// Only related processes (that inherit it) can use it.
    pub related_processes_needed: bool,
    /// It can connect processes on different machines.
    pub crosses_machines: bool,
    /// The object (its name) outlives the processes that use it.
    pub survives_processes: bool,
    /// It makes a receiver wait for data (and a sender for room) by itself.
    pub synchronizes_itself: bool,
    /// Sets up the parent's side, starts the child, and returns both.
    run: fn(&Context, &Workload, &Scratch) -> anyhow::Result<Started>,
    /// Sets up the child's side from its arguments.
    child: fn(&[&str]) -> anyhow::Result<Box<dyn Duplex>>,
}

impl std::fmt::Debug for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mechanism").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The child process and the parent's end of the mechanism, once set up.
type Started = (Child, Box<dyn Duplex>);

/// A sender and a receiver in one object.
pub trait Duplex: Sender + Receiver {}
impl<T: Sender + Receiver> Duplex for T {}

/// The mechanisms, in table order.
pub const MECHANISMS: &[Mechanism] = &[
    Mechanism {
        name: "shared memory",
        based: Based::Memory,
        bidirectional: true,
        related_processes_needed: false,
        crosses_machines: false,
        survives_processes: true,
        synchronizes_itself: false,
        run: shm_parent,
        child: shm_child,
    },
    Mechanism {
        name: "message queue",
        based: Based::Message,
        bidirectional: true,
        related_processes_needed: false,
        crosses_machines: false,
        survives_processes: true,
        synchronizes_itself: true,
        run: mq_parent,
        child: mq_child,
    },
    Mechanism {
        name: "pipe",
        based: Based::Message,
        bidirectional: false,
        related_processes_needed: true,
        crosses_machines: false,
        survives_processes: false,
        synchronizes_itself: true,
        run: pipe_parent,
        child: pipe_child,
    },
    Mechanism {
        name: "named pipe",
        based: Based::Message,
        bidirectional: false,
        related_processes_needed: false,
        crosses_machines: false,
        survives_processes: true,
        synchronizes_itself: true,
        run: fifo_parent,
        child: fifo_child,
    },
    Mechanism {
        name: "unix socket",
        based: Based::Message,
        bidirectional: true,
        related_processes_needed: false,
        crosses_machines: false,
        survives_processes: false,
        synchronizes_itself: true,
        run: unix_parent,
        child: unix_child,
    },
    Mechanism {
        name: "tcp",
        based: Based::Message,
        bidirectional: true,
        related_processes_needed: false,
        crosses_machines: true,
        survives_processes: false,
        synchronizes_itself: true,
        run: tcp_parent,
        child: tcp_child,
    },
    Mechanism {
        name: "udp",
        based: Based::Message,
        bidirectional: true,
        related_processes_needed: false,
        crosses_machines: true,
        survives_processes: false,
        synchronizes_itself: true,
        run: udp_parent,
        child: udp_child,
    },
];

/// What each mechanism carries.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Round trips of [`SMALL`] bytes.
    pub rounds: u32,
    /// Messages of [`BULK`] bytes, parent to child.
    pub bulk: u32,
}

/// Size of the latency message.
pub const SMALL: usize = 64;
/// Size of a throughput message.
pub const BULK: usize = 4096;
/// The child acknowledges every `WINDOW`-th bulk message.
pub const WINDOW: u32 = 16;
/// Longest wait for the other process at any step.
const LIMIT: Duration = Duration::from_secs(10);

/// One row of the result.
#[derive(Debug, Serialize)]
pub struct Row {
    mechanism: &'static str,
    based: Based,
    bidirectional: bool,
    related_processes_needed: bool,
    crosses_machines: bool,
    survives_processes: bool,
    synchronizes_itself: bool,
    /// Median round trip of a 64-byte message, microseconds.
    latency_us: f64,
    /// 4 KiB messages, megabytes (10^6 bytes) per second.
    throughput_mb_s: f64,
}

/// Runs `ipckit compare`.
pub fn run(ctx: &Context, a: CompareArgs) -> anyhow::Result<ExitCode> {
    ensure!(a.rounds > 0, crate::exit::Failure::bad_input("--rounds must be at least 1"));
    let bulk = (a.kib / 4).div_ceil(WINDOW).max(1) * WINDOW;
    let w = Workload { rounds: a.rounds, bulk };
    let mut rows = Vec::new();
    for m in MECHANISMS {
        let scratch = Scratch::new("compare")?;
        let (kid, mut t) =
            (m.run)(ctx, &w, &scratch).with_context(|| format!("setting up {}", m.name))?;
        let measured = measure(&mut *t, &w);
        drop(t);
        let waited = child::wait_all(vec![kid], LIMIT);
        let (latency_us, throughput_mb_s) =
            measured.with_context(|| format!("measuring {}", m.name))?;
        waited.with_context(|| format!("the {} child", m.name))?;
        rows.push(Row {
            mechanism: m.name,
            based: m.based,
            bidirectional: m.bidirectional,
            related_processes_needed: m.related_processes_needed,
            crosses_machines: m.crosses_machines,
            survives_processes: m.survives_processes,
            synchronizes_itself: m.synchronizes_itself,
            latency_us,
            throughput_mb_s,
        });
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows, &w);
    }
    Ok(ExitCode::SUCCESS)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_table(rows: &[Row], w: &Workload) {
    println!(
        "{:<14} {:<8} {:<6} {:<8} {:<8} {:<9} {:<10} {:>12} {:>10}",
        "mechanism",
        "based",
        "bidir",
        "related",
        "crosses",
        "survives",
        "self-sync",
        "latency us",
        "MB/s"
    );
    for r in rows {
        println!(
            "{:<14} {:<8} {:<6} {:<8} {:<8} {:<9} {:<10} {:>12.1} {:>10.0}",
            r.mechanism,
            match r.based {
                Based::Memory => "memory",
                Based::Message => "message",
            },
            yes(r.bidirectional),
            yes(r.related_processes_needed),
            yes(r.crosses_machines),
            yes(r.survives_processes),
            yes(r.synchronizes_itself),
            r.latency_us,
            r.throughput_mb_s
        );
    }
    println!(
        "\nrelated: only related processes can use it; crosses: machines; survives: the object \
         outlives its processes (a FIFO's name, not its data); self-sync: no semaphore needed.\n\
         latency: median round trip of {SMALL} bytes over {} rounds; MB/s: {} messages of {BULK} \
         bytes, acknowledged every {WINDOW}.",
        w.rounds, w.bulk
    );
}

/// The parent's half of the workload: returns (median round trip in µs, MB/s).
fn measure(t: &mut dyn Duplex, w: &Workload) -> anyhow::Result<(f64, f64)> {
    let small = [0x5au8; SMALL];
    let mut buf = Vec::with_capacity(BULK);
    let mut rtts = Vec::with_capacity(w.rounds as usize);
    for i in 0..w.rounds {
        let t0 = Instant::now();
        t.send_timeout(&small, LIMIT)?;
        t.recv_timeout_into(&mut buf, LIMIT).with_context(|| format!("round trip {i}"))?;
        rtts.push(t0.elapsed().as_secs_f64() * 1e6);
        ensure!(buf[..] == small[..], "round trip {i}: the echo differs");
    }
    rtts.sort_by(f64::total_cmp);
    let n = rtts.len();
    let median = if n % 2 == 1 { rtts[n / 2] } else { (rtts[n / 2 - 1] + rtts[n / 2]) / 2.0 };
    let mut big = vec![0u8; BULK];
    let t0 = Instant::now();
    for i in 0..w.bulk {
        big[..4].copy_from_slice(&i.to_le_bytes());
        t.send_timeout(&big, LIMIT)?;
        if (i + 1) % WINDOW == 0 {
            t.recv_timeout_into(&mut buf, LIMIT).with_context(|| format!("ack of {i}"))?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((median, w.bulk as f64 * BULK as f64 / secs / 1e6))
}

/// The child's half: echo the small messages, take the bulk ones in order, acknowledge.
fn serve(t: &mut dyn Duplex, w: &Workload) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(BULK);
    for _ in 0..w.rounds {
        t.recv_timeout_into(&mut buf, LIMIT)?;
        t.send_timeout(&buf, LIMIT)?;
    }
    for i in 0..w.bulk {
        t.recv_timeout_into(&mut buf, LIMIT)?;
        ensure!(buf.len() == BULK && buf[..4] == i.to_le_bytes(), "bulk message {i} is wrong");
        if (i + 1) % WINDOW == 0 {
            t.send_timeout(b"k", LIMIT)?;
        }
    }
    Ok(())
}

/// `ipckit __child compare MECH ROUNDS BULK ARGS...`.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let name = *args.first().context("mechanism")?;
    let w = Workload { rounds: arg(args, 1)?, bulk: arg(args, 2)? };
    let Some(m) = MECHANISMS.iter().find(|m| m.name == name) else {
        bail!("unknown mechanism {name:?}");
    };
    let mut t = (m.child)(&args[3..])?;
    serve(&mut *t, &w)
}

fn spawn(ctx: &Context, m: &str, w: &Workload, extra: &[&str]) -> anyhow::Result<Child> {
    let (r, b) = (w.rounds.to_string(), w.bulk.to_string());
    let mut args = vec![m, &r, &b];
    args.extend_from_slice(extra);
    child::spawn(ctx, "compare", &args)
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("scratch path is not UTF-8")
}

/// Waits for a connection at most `LIMIT`, then returns the listener to blocking mode.
fn accept<T>(listener: &impl AsFd, f: impl Fn() -> std::io::Result<T>) -> anyhow::Result<T> {
    ipckit::sys::set_nonblocking(listener.as_fd(), true)?;
    let deadline = Instant::now() + LIMIT;
    loop {
        match f() {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                ensure!(!left.is_zero(), "the child did not connect in time");
                ipckit::sys::poll_fd(listener.as_fd(), ipckit::sys::Readiness::Read, Some(left))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

// ---- shared memory ----------------------------------------------------------------------

/// Largest message in one slot.
const SLOT: usize = 8 << 10;
/// Slots per direction.
const SLOTS: usize = 16;
/// Bytes of one slot: length (padded to 8), then the data.
const SLOT_BYTES: usize = 8 + SLOT;
/// One direction: `full` (messages waiting) at 0, `empty` (free slots) at 16, slots from 64.
const CHANNEL: usize = 64 + SLOTS * SLOT_BYTES;

/// The bounded buffer in a shared mapping, one per direction, with one producer and one
/// consumer: the sender waits on `empty` (a free slot), writes the length and the bytes into
/// the next slot, posts `full`; the receiver waits on `full`, copies the next slot out, posts
/// `empty` (Dijkstra's solution with counting semaphores; with a single producer and a single
/// consumer each side keeps its own slot index, so no mutex is needed). The semaphores'
/// sequentially consistent operations order the plain copies between the processes.
#[derive(Debug)]
pub struct ShmChannel {
    map: Mapping,
    send_at: usize,
    recv_at: usize,
    send_slot: usize,
    recv_slot: usize,
}

impl ShmChannel {
    fn new(map: Mapping, send_at: usize, recv_at: usize) -> ShmChannel {
        ShmChannel { map, send_at, recv_at, send_slot: 0, recv_slot: 0 }
    }
}

/// The `full` and `empty` semaphores of the direction at offset `at`.
fn sems(map: &Mapping, at: usize) -> Result<(&Semaphore, &Semaphore), ipckit::shm::MappingError> {
    Ok((map.get::<Semaphore>(at)?, map.get::<Semaphore>(at + 16)?))
}

fn p(s: &Semaphore, t: Option<Duration>) -> transport::Result<()> {
    let ok = match t {
        None => {
            s.p();
            true
        }
        Some(t) if t.is_zero() => s.try_p(),
        Some(t) => s.p_timeout(t),
    };
    if ok { Ok(()) } else { Err(TransportError::Timeout) }
}

fn shm_err(e: impl std::error::Error + Send + Sync + 'static) -> TransportError {
    TransportError::Io(std::io::Error::other(e))
}

impl Sender for ShmChannel {
    fn send_timeout_opt(&mut self, m: &[u8], t: Option<Duration>) -> transport::Result<()> {
        if m.len() > SLOT {
            return Err(TransportError::TooLarge { len: m.len(), max: SLOT });
        }
        let at = self.send_at;
        let (full, empty) = sems(&self.map, at).map_err(shm_err)?;
        p(empty, t)?;
        let slot = at + 64 + self.send_slot * SLOT_BYTES;
        self.map.write(slot, &(m.len() as u32).to_le_bytes()).map_err(shm_err)?;
        self.map.write(slot + 8, m).map_err(shm_err)?;
        self.send_slot = (self.send_slot + 1) % SLOTS;
        full.v().map_err(shm_err)
    }
}

impl Receiver for ShmChannel {
    fn recv_timeout_opt_into(
        &mut self,
        b: &mut Vec<u8>,
        t: Option<Duration>,
    ) -> transport::Result<usize> {
        let at = self.recv_at;
        let (full, empty) = sems(&self.map, at).map_err(shm_err)?;
        p(full, t)?;
        let slot = at + 64 + self.recv_slot * SLOT_BYTES;
        let mut len = [0u8; 4];
        self.map.read(slot, &mut len).map_err(shm_err)?;
        // Read once, validate, then use the copy: the other process could write anything.
        let len = u32::from_le_bytes(len) as usize;
        if len > SLOT {
            return Err(TransportError::TooLarge { len, max: SLOT });
        }
        b.resize(len, 0);
        self.map.read(slot + 8, b).map_err(shm_err)?;
        self.recv_slot = (self.recv_slot + 1) % SLOTS;
        empty.v().map_err(shm_err)?;
        Ok(len)
    }
}

fn shm_parent(ctx: &Context, w: &Workload, s: &Scratch) -> anyhow::Result<Started> {
    let path = s.path("shm");
    let map = Mapping::create(&path, 2 * CHANNEL, 0o600)?;
    for at in [0, CHANNEL] {
        map.get::<Semaphore>(at + 16)?.v_n(SLOTS as u32)?; // every slot starts empty
    }
    let kid = spawn(ctx, "shared memory", w, &[path_str(&path)?])?;
    Ok((kid, Box::new(ShmChannel::new(map, 0, CHANNEL))))
}

fn shm_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    let map = Mapping::open(Path::new(args.first().context("path")?))?;
    ensure!(map.len() == 2 * CHANNEL, "the mapping has the wrong size");
    Ok(Box::new(ShmChannel::new(map, CHANNEL, 0)))
}

// ---- message queue -------------------------------------------------------------------------

/// One queue for both directions: the parent sends type 1 and takes type 2; the child the
/// other way round. `max_bytes` is 64 KiB, like a pipe's buffer, so the two compare fairly.
fn mq_parent(ctx: &Context, w: &Workload, s: &Scratch) -> anyhow::Result<Started> {
    use ipckit::mq::{MessageQueue, QueueConfig, Selector};
    use ipckit::ns::{CreateMode, Key, Namespace};
    let dir = s.path("ns");
    let ns = Namespace::at(&dir)?;
    let (q, _) = MessageQueue::obtain(
        &ns,
        Key::PRIVATE,
        CreateMode::CreateExclusive,
        0o600,
        QueueConfig::with_max_bytes(64 * 1024),
    )?;
    let kid = spawn(ctx, "message queue", w, &[path_str(&dir)?, &q.id().to_string()])?;
    Ok((kid, Box::new(q.endpoint(1, Selector::Type(2)))))
}

fn mq_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    use ipckit::mq::{MessageQueue, Selector};
    use ipckit::ns::Namespace;
    let ns = Namespace::at(Path::new(args.first().context("namespace")?))?;
    let q = MessageQueue::open_id(&ns, arg(args, 1)?)?;
    Ok(Box::new(q.endpoint(2, Selector::Type(1))))
}

// ---- anonymous pipes ----------------------------------------------------------------------

fn pipe_parent(ctx: &Context, w: &Workload, _: &Scratch) -> anyhow::Result<Started> {
    let down = Pipe::new()?; // parent -> child
    let up = Pipe::new()?; // child -> parent
    down.reader.set_inheritable(true)?;
    up.writer.set_inheritable(true)?;
    let (r, wr) = (down.reader.as_raw_fd().to_string(), up.writer.as_raw_fd().to_string());
    let kid = spawn(ctx, "pipe", w, &[&r, &wr])?;
    drop((down.reader, up.writer)); // the child's ends
    Ok((
        kid,
        Box::new(Pair { sender: Framed::new(down.writer)?, receiver: Framed::new(up.reader)? }),
    ))
}

fn inherited(args: &[&str], i: usize) -> anyhow::Result<OwnedFd> {
    let fd: i32 = arg(args, i)?;
    ensure!(fd > 2, "descriptor {fd} is a standard stream");
    // SAFETY: the parent made this descriptor inheritable for us and passed its number;
    // nothing else in this process owns it (not a standard stream, checked).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pipe_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    let r = PipeReader::try_from(inherited(args, 0)?)?;
    let w = PipeWriter::try_from(inherited(args, 1)?)?;
    Ok(Box::new(Pair { sender: Framed::new(w)?, receiver: Framed::new(r)? }))
}

// ---- named pipes --------------------------------------------------------------------------

fn fifo_parent(ctx: &Context, w: &Workload, s: &Scratch) -> anyhow::Result<Started> {
    let (down, up) = (s.path("down"), s.path("up"));
    let (fdown, fup) = (NamedPipe::create(&down, 0o600)?, NamedPipe::create(&up, 0o600)?);
    let kid = spawn(ctx, "named pipe", w, &[path_str(&down)?, path_str(&up)?])?;
    // Same order on both sides (down, then up), so the blocking opens pair up.
    let tx = fdown.open_writer_timeout(LIMIT)?;
    let rx = fup.open_reader_timeout(LIMIT)?;
    Ok((kid, Box::new(Pair { sender: Framed::new(tx)?, receiver: Framed::new(rx)? })))
}

fn fifo_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    let down = NamedPipe::at(Path::new(args.first().context("path")?))?;
    let up = NamedPipe::at(Path::new(args.get(1).context("path")?))?;
    let rx = down.open_reader_timeout(LIMIT)?;
    let tx = up.open_writer_timeout(LIMIT)?;
    Ok(Box::new(Pair { sender: Framed::new(tx)?, receiver: Framed::new(rx)? }))
}

// ---- sockets ------------------------------------------------------------------------------

fn unix_parent(ctx: &Context, w: &Workload, s: &Scratch) -> anyhow::Result<Started> {
    let path = s.path("sock");
    let l = UnixListener::bind(&path)?;
    let kid = spawn(ctx, "unix socket", w, &[path_str(&path)?])?;
    let (conn, _) = accept(&l, || l.accept())?;
    Ok((kid, Box::new(Framed::new(conn)?)))
}

fn unix_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    let conn = UnixStream::connect(args.first().context("path")?)?;
    Ok(Box::new(Framed::new(conn)?))
}

fn tcp_parent(ctx: &Context, w: &Workload, _: &Scratch) -> anyhow::Result<Started> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let kid = spawn(ctx, "tcp", w, &[&l.local_addr()?.to_string()])?;
    let (conn, _) = accept(&l, || l.accept())?;
    conn.set_nodelay(true)?;
    Ok((kid, Box::new(Framed::new(conn)?)))
}

fn tcp_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    let addr: SocketAddr = arg(args, 0)?;
    let conn = TcpStream::connect_timeout(&addr, LIMIT)?;
    conn.set_nodelay(true)?;
    Ok(Box::new(Framed::new(conn)?))
}

fn udp_parent(ctx: &Context, w: &Workload, _: &Scratch) -> anyhow::Result<Started> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let kid = spawn(ctx, "udp", w, &[&sock.local_addr()?.to_string()])?;
    // The child says hello, so that we learn its address and connect to it.
    sock.set_read_timeout(Some(LIMIT))?;
    let (_, peer) = sock.recv_from(&mut [0u8; 16]).context("the child did not say hello")?;
    sock.connect(peer)?;
    Ok((kid, Box::new(Datagrams::new(sock)?)))
}

fn udp_child(args: &[&str]) -> anyhow::Result<Box<dyn Duplex>> {
    let parent: SocketAddr = arg(args, 0)?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(parent)?;
    sock.send(b"hello")?;
    Ok(Box::new(Datagrams::new(sock)?))
}
