//! Message passing between two processes: `mq-rtt-64` (round trip of a 64-byte message),
//! `mq-throughput-64` and `mq-throughput-4k` (one producer process, one consumer process).
//!
//! Mechanisms, measured in the same run: ipckit `MessageQueue`, System V `msgsnd`/`msgrcv`,
//! POSIX `mq_send`/`mq_receive`, a pipe, a Unix stream socket, the `iceoryx2` crate's
//! zero-copy publish-subscribe (a lock-free shared-memory library built for low latency)
//! with a busy-polling subscriber, and a minimal busy-polling single-producer ring in a
//! shared mapping (the physical limit: no system call, no lock). Each with the two processes
//! on two cores and, separately, both on one core.
//!
//! Round trips use each queue's default limits. The throughput runs give every queue the
//! room a pipe has by default, [`QUEUE_BYTES`] = 64 KiB: `max_bytes` for ipckit, `msg_qbytes`
//! (`IPC_SET`) for System V, `mq_maxmsg` for POSIX, the subscriber buffer (64 KiB worth of
//! messages) for iceoryx2. Raising the System V and POSIX limits needs `CAP_SYS_RESOURCE`;
//! without it they keep their defaults, 16 KiB and 10 messages.

use crate::harness::{
    Placement, Report, SharedAnon, fork_child, fork_rtt, median, pin_to_cpu, unpin, wait_child,
};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::{
    BackpressureStrategy, Config, FileName, Node, NodeBuilder, Path, SemanticString, ServiceName,
    SignalHandlingMode, ipc,
};
use ipckit::mq::{MessageQueue, QueueConfig, Selector, Wait};
use ipckit::ns::{CreateMode, Key, Namespace};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SAMPLES: usize = 5;
/// Bytes each queue may hold in the throughput runs (a pipe's default buffer).
pub const QUEUE_BYTES: usize = 65_536;
/// SysV needs a `long` type in front of the bytes: every buffer reserves it.
const TYPE_LEN: usize = 8;

/// One two-way message channel between the parent and a forked child. Direction 0 is parent
/// to child, 1 child to parent. `msg` holds `TYPE_LEN` spare bytes, then the payload.
trait Channel {
    fn send(&self, dir: usize, msg: &mut Vec<u8>);
    fn recv(&self, dir: usize, msg: &mut Vec<u8>);
    /// Called by each process when it is done with the channel (the child before it exits,
    /// the parent when it drops the channel): a peer that built per-process state lazily
    /// tears it down here.
    fn finish(&self) {}
}

// ----- ipckit --------------------------------------------------------------------------

struct Ipckit {
    q: MessageQueue,
    _dir: tempfile::TempDir,
}

impl Ipckit {
    fn new(max_bytes: usize) -> Ipckit {
        let dir = tempfile::Builder::new()
            .prefix("ipckit-bench-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("tempdir");
        let ns = Namespace::at(dir.path()).expect("namespace");
        let config = QueueConfig::with_max_bytes(max_bytes as u64);
        let (q, _) =
            MessageQueue::obtain(&ns, Key::PRIVATE, CreateMode::CreateExclusive, 0o600, config)
                .expect("queue");
        Ipckit { q, _dir: dir }
    }
}

impl Channel for Ipckit {
    fn send(&self, dir: usize, msg: &mut Vec<u8>) {
        self.q.send(dir as i64 + 1, &msg[TYPE_LEN..]).expect("send");
    }
    fn recv(&self, dir: usize, msg: &mut Vec<u8>) {
        self.q
            .recv_into_slice(
                Selector::Type(dir as i64 + 1),
                &mut msg[TYPE_LEN..],
                false,
                Wait::Block,
            )
            .expect("recv");
    }
}

// ----- System V ------------------------------------------------------------------------

struct SysV {
    id: i32,
}

impl SysV {
    fn new(max_bytes: usize) -> SysV {
        // SAFETY: a private queue, removed in Drop.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, 0o600 | libc::IPC_CREAT) };
        assert!(id >= 0, "msgget failed");
        // SAFETY: msqid_ds is plain data, filled by IPC_STAT and read back by IPC_SET. A
        // failure (no CAP_SYS_RESOURCE) leaves the default limit.
        unsafe {
            let mut ds: libc::msqid_ds = std::mem::zeroed();
            if libc::msgctl(id, libc::IPC_STAT, &mut ds) == 0 {
                ds.msg_qbytes = max_bytes as _;
                libc::msgctl(id, libc::IPC_SET, &mut ds);
            }
        }
        SysV { id }
    }
}

impl Drop for SysV {
    fn drop(&mut self) {
        // SAFETY: removes the queue made in `new` (the child's copy fails harmlessly).
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

impl Channel for SysV {
    fn send(&self, dir: usize, msg: &mut Vec<u8>) {
        msg[..TYPE_LEN].copy_from_slice(&(dir as i64 + 1).to_ne_bytes());
        // SAFETY: `msg` is a `long` type followed by `len - 8` bytes, as msgsnd expects.
        while unsafe {
            libc::msgsnd(self.id, msg.as_ptr() as *const libc::c_void, msg.len() - TYPE_LEN, 0)
        } != 0
        {}
    }
    fn recv(&self, dir: usize, msg: &mut Vec<u8>) {
        // SAFETY: room for a `long` and `len - 8` bytes.
        while unsafe {
            libc::msgrcv(
                self.id,
                msg.as_mut_ptr() as *mut libc::c_void,
                msg.len() - TYPE_LEN,
                dir as libc::c_long + 1,
                0,
            )
        } < 0
        {}
    }
}

// ----- POSIX mq ------------------------------------------------------------------------

struct PosixMq {
    q: [libc::mqd_t; 2],
    names: [std::ffi::CString; 2],
}

impl PosixMq {
    fn new(size: usize, max_bytes: usize) -> PosixMq {
        static N: AtomicU64 = AtomicU64::new(0);
        let mk = |i: usize| {
            let name = std::ffi::CString::new(format!(
                "/ipckit-bench-{}-{}-{i}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ))
            .unwrap();
            // SAFETY: mq_attr is plain data.
            let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
            attr.mq_msgsize = size as _;
            let mut q = -1;
            for maxmsg in [(max_bytes / size).max(10), 10] {
                attr.mq_maxmsg = maxmsg as _;
                // SAFETY: a fresh queue with a unique name; unlinked in Drop.
                q = unsafe {
                    libc::mq_open(
                        name.as_ptr(),
                        libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                        0o600 as libc::mode_t,
                        &mut attr as *mut libc::mq_attr,
                    )
                };
                if q >= 0 {
                    break;
                }
            }
            assert!(q >= 0, "mq_open failed: {}", std::io::Error::last_os_error());
            (q, name)
        };
        let (a, na) = mk(0);
        let (b, nb) = mk(1);
        PosixMq { q: [a, b], names: [na, nb] }
    }
}

impl Drop for PosixMq {
    fn drop(&mut self) {
        for i in 0..2 {
            // SAFETY: closes and unlinks what `new` opened.
            unsafe {
                libc::mq_close(self.q[i]);
                libc::mq_unlink(self.names[i].as_ptr());
            }
        }
    }
}

impl Channel for PosixMq {
    fn send(&self, dir: usize, msg: &mut Vec<u8>) {
        // SAFETY: valid descriptor and buffer.
        while unsafe {
            libc::mq_send(
                self.q[dir],
                msg[TYPE_LEN..].as_ptr() as *const libc::c_char,
                msg.len() - TYPE_LEN,
                0,
            )
        } != 0
        {}
    }
    fn recv(&self, dir: usize, msg: &mut Vec<u8>) {
        let n = msg.len() - TYPE_LEN;
        // SAFETY: valid descriptor; the buffer holds mq_msgsize bytes.
        while unsafe {
            libc::mq_receive(
                self.q[dir],
                msg[TYPE_LEN..].as_mut_ptr() as *mut libc::c_char,
                n,
                std::ptr::null_mut(),
            )
        } < 0
        {}
    }
}

// ----- byte streams: pipe, Unix socket -------------------------------------------------

/// Two byte streams, one per direction: `fds[dir] = (write end, read end)`.
struct Stream {
    fds: [(i32, i32); 2],
}

impl Stream {
    fn pipes() -> Stream {
        let mut fds = [(0, 0); 2];
        for f in &mut fds {
            let mut p = [0; 2];
            // SAFETY: a fresh pipe; closed in Drop.
            assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
            *f = (p[1], p[0]);
        }
        Stream { fds }
    }

    fn unix_socket() -> Stream {
        let mut s = [0; 2];
        // SAFETY: a fresh connected pair; closed in Drop.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, s.as_mut_ptr()) };
        assert_eq!(r, 0, "socketpair failed");
        // SAFETY: dup gives each direction its own descriptors to close.
        let (a2, b2) = unsafe { (libc::dup(s[0]), libc::dup(s[1])) };
        Stream { fds: [(s[0], s[1]), (b2, a2)] }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        for (w, r) in self.fds {
            // SAFETY: closes descriptors made in the constructor.
            unsafe {
                libc::close(w);
                libc::close(r);
            }
        }
    }
}

impl Channel for Stream {
    fn send(&self, dir: usize, msg: &mut Vec<u8>) {
        let mut off = TYPE_LEN;
        while off < msg.len() {
            // SAFETY: valid descriptor and in-bounds buffer.
            let n = unsafe {
                libc::write(
                    self.fds[dir].0,
                    msg[off..].as_ptr() as *const libc::c_void,
                    msg.len() - off,
                )
            };
            if n > 0 {
                off += n as usize;
            }
        }
    }
    fn recv(&self, dir: usize, msg: &mut Vec<u8>) {
        let mut off = TYPE_LEN;
        while off < msg.len() {
            // SAFETY: valid descriptor and in-bounds buffer.
            let n = unsafe {
                libc::read(
                    self.fds[dir].1,
                    msg[off..].as_mut_ptr() as *mut libc::c_void,
                    msg.len() - off,
                )
            };
            if n > 0 {
                off += n as usize;
            }
        }
    }
}

// ----- the busy-polling ring -----------------------------------------------------------

const RING_SLOTS: usize = 64;

/// Per direction: a single-producer single-consumer ring of fixed-size slots with a head and
/// a tail counter on their own cache lines. Both sides poll; nobody sleeps.
struct Ring {
    mem: SharedAnon,
    slot: usize,
}

impl Ring {
    fn new(size: usize) -> Ring {
        let slot = size.next_multiple_of(64);
        Ring { mem: SharedAnon::new(2 * (256 + RING_SLOTS * slot)), slot }
    }

    fn base(&self, dir: usize) -> usize {
        dir * (256 + RING_SLOTS * self.slot)
    }

    fn counters(&self, dir: usize) -> (&AtomicU64, &AtomicU64) {
        let b = self.base(dir);
        (self.mem.get::<AtomicU64>(b), self.mem.get::<AtomicU64>(b + 128))
    }
}

fn poll(mut ready: impl FnMut() -> bool) {
    let mut n = 0u32;
    while !ready() {
        n += 1;
        if n.is_multiple_of(128) {
            std::thread::yield_now(); // on one core, let the peer run
        } else {
            std::hint::spin_loop();
        }
    }
}

impl Channel for Ring {
    fn send(&self, dir: usize, msg: &mut Vec<u8>) {
        let (head, tail) = self.counters(dir);
        let t = tail.load(Ordering::Relaxed);
        poll(|| t - head.load(Ordering::Acquire) < RING_SLOTS as u64);
        let at = self.base(dir) + 256 + (t as usize % RING_SLOTS) * self.slot;
        let n = msg.len() - TYPE_LEN;
        // SAFETY: the slot is inside the mapping and owned by the producer until `tail` moves.
        unsafe {
            std::ptr::copy_nonoverlapping(msg[TYPE_LEN..].as_ptr(), self.mem.as_ptr().add(at), n)
        };
        tail.store(t + 1, Ordering::Release);
    }
    fn recv(&self, dir: usize, msg: &mut Vec<u8>) {
        let (head, tail) = self.counters(dir);
        let h = head.load(Ordering::Relaxed);
        poll(|| tail.load(Ordering::Acquire) > h);
        let at = self.base(dir) + 256 + (h as usize % RING_SLOTS) * self.slot;
        let n = msg.len() - TYPE_LEN;
        // SAFETY: the slot is inside the mapping and was published by the Release on `tail`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.mem.as_ptr().add(at),
                msg[TYPE_LEN..].as_mut_ptr(),
                n,
            )
        };
        head.store(h + 1, Ordering::Release);
    }
}

// ----- iceoryx2 ------------------------------------------------------------------------

/// Deadline for the set-up and tear-down handshakes of [`Iceoryx2`] (a failed peer must end
/// the run, never hang it).
const ICEORYX2_HANDSHAKE: Duration = Duration::from_secs(20);

/// The set-up handshake of one direction of [`Iceoryx2`] (0: nothing built yet).
const SUBSCRIBED: u64 = 1;
const PUBLISHED: u64 = 2;
const CONNECTED: u64 = 3;

/// The ports one process built (lazily, after the fork). Fields drop in order: the ports
/// before the node that owns them.
struct Iceoryx2Ports {
    publishers: [Option<Publisher<ipc::Service, [u8], ()>>; 2],
    subscribers: [Option<Subscriber<ipc::Service, [u8], ()>>; 2],
    /// Samples this process sent / took per direction.
    sent: [u64; 2],
    taken: [u64; 2],
    node: Node<ipc::Service>,
}

/// The `iceoryx2` crate's publish-subscribe, one service per direction: zero-copy publishing
/// (loan a slice of the publisher's shared memory, copy the payload in, send the offset) and
/// a subscriber that busy-polls `receive()`, waiting like the ring does ([`poll_for`]: spin,
/// yield every 128 polls so that on one core the peer gets the CPU). An empty `receive()`
/// costs more than the ring's load, so on one core its 128 polls before a yield take longer:
/// that, not the transfer, is most of its one-core round trip (measured on the 2-vCPU VM:
/// about 23 µs; yielding every 8 polls instead gives about 3.3 µs, the two-core round trip
/// unchanged).
///
/// iceoryx2 objects are not made to cross a `fork`, so the parent only prepares the
/// configuration and the service names; each process builds its node and ports on first
/// use. Samples are delivered only once the subscriber has connected to the publisher (a
/// publisher whose subscriber has not mapped the connection yet discards samples once the
/// buffer is full), so the first use of each direction is a handshake in `flags`: the
/// subscriber creates the service and announces itself ([`SUBSCRIBED`]); the publisher
/// opens the service, creates its port and says so ([`PUBLISHED`]); the subscriber connects
/// (`update_connections`) and answers ([`CONNECTED`]); only then does the first sample go
/// out. With safe overflow off and the `RetryUntilDelivered` backpressure strategy, a full
/// subscriber buffer makes the publisher retry (iceoryx2's adaptive wait) instead of
/// dropping or overwriting: no message is lost. [`Channel::finish`] waits until the other
/// side took every sample sent, then drops the ports and the node, which removes the
/// service's files.
///
/// Each channel is its own iceoryx2 domain: a configuration whose root directory (node and
/// service files, `/tmp/iceoryx2` by default) is a temporary directory and whose file
/// prefix (`iox2_` by default) names this run, so that the run touches no other iceoryx2
/// user's files and can remove the one file iceoryx2 keeps on purpose, the domain's
/// persistent node counter in `/dev/shm` (nothing else uses this domain once both processes
/// are done).
struct Iceoryx2 {
    config: Config,
    prefix: String,
    /// The domain's root directory, removed when the channel drops.
    _root: tempfile::TempDir,
    names: [ServiceName; 2],
    size: usize,
    buffer: usize,
    /// Per direction, on their own cache lines: at `dir * 128` the set-up handshake's
    /// state, at `256 + dir * 128` the number of samples it took.
    flags: SharedAnon,
    ports: RefCell<Option<Iceoryx2Ports>>,
}

impl Iceoryx2 {
    /// Messages of `size` bytes; a subscriber buffers `max_bytes / size` of them (at least
    /// iceoryx2's default, 2).
    fn new(size: usize, max_bytes: usize) -> Iceoryx2 {
        static N: AtomicU64 = AtomicU64::new(0);
        let run = N.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("ipckit-bench-{}-{run}_", std::process::id());
        let root =
            tempfile::Builder::new().prefix("ipckit-bench-iceoryx2-").tempdir().expect("tempdir");
        let mut config = Config::default();
        config.global.prefix = FileName::new(prefix.as_bytes()).expect("iceoryx2 prefix");
        let root_path = root.path().to_str().expect("UTF-8 temporary directory");
        config.global.set_root_path(&Path::new(root_path.as_bytes()).expect("iceoryx2 root path"));
        let name = |dir: usize| ServiceName::new(&format!("mq/{dir}")).expect("service name");
        Iceoryx2 {
            config,
            prefix,
            _root: root,
            names: [name(0), name(1)],
            size,
            buffer: (max_bytes / size).max(2),
            flags: SharedAnon::new(512),
            ports: RefCell::new(None),
        }
    }

    fn ready(&self, dir: usize) -> &AtomicU64 {
        self.flags.get(dir * 128)
    }

    fn taken(&self, dir: usize) -> &AtomicU64 {
        self.flags.get(256 + dir * 128)
    }

    /// The service of direction `dir`, created by its subscriber and opened by its publisher
    /// with the same settings.
    fn service(
        &self,
        node: &Node<ipc::Service>,
        dir: usize,
        create: bool,
    ) -> iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>
    {
        let builder = node
            .service_builder(&self.names[dir])
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(1)
            .max_nodes(2)
            .history_size(0)
            .subscriber_max_buffer_size(self.buffer)
            .enable_safe_overflow(false);
        if create {
            builder.create().expect("iceoryx2 create")
        } else {
            builder.open().expect("iceoryx2 open")
        }
    }

    /// This process's ports, built on first use.
    fn with_ports<R>(&self, f: impl FnOnce(&mut Iceoryx2Ports) -> R) -> R {
        let mut ports = self.ports.borrow_mut();
        let ports = ports.get_or_insert_with(|| Iceoryx2Ports {
            publishers: [None, None],
            subscribers: [None, None],
            sent: [0; 2],
            taken: [0; 2],
            node: NodeBuilder::new()
                .config(&self.config)
                .signal_handling_mode(SignalHandlingMode::Disabled)
                .create::<ipc::Service>()
                .expect("iceoryx2 node"),
        });
        f(ports)
    }
}

/// Waits like [`poll`] (spin, yield every 128 polls) until `ready`, panicking when the wait
/// lasted [`ICEORYX2_HANDSHAKE`] (a peer process that died must end the run, not hang it).
/// The clock is read only at the yields, so a wait that succeeds while spinning costs none.
fn poll_for(what: &str, mut ready: impl FnMut() -> bool) {
    let mut n = 0u32;
    let mut deadline = None;
    while !ready() {
        n += 1;
        if n.is_multiple_of(128) {
            let now = Instant::now();
            let end = *deadline.get_or_insert(now + ICEORYX2_HANDSHAKE);
            assert!(now < end, "iceoryx2 peer: timed out waiting for {what}");
            std::thread::yield_now(); // on one core, let the peer run
        } else {
            std::hint::spin_loop();
        }
    }
}

impl Channel for Iceoryx2 {
    fn send(&self, dir: usize, msg: &mut Vec<u8>) {
        self.with_ports(|p| {
            if p.publishers[dir].is_none() {
                let ready = self.ready(dir);
                poll_for("the subscriber", || ready.load(Ordering::Acquire) == SUBSCRIBED);
                let service = self.service(&p.node, dir, false);
                let publisher = service
                    .publisher_builder()
                    .initial_max_slice_len(self.size)
                    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                    .create()
                    .expect("iceoryx2 publisher");
                p.publishers[dir] = Some(publisher);
                ready.store(PUBLISHED, Ordering::Release);
                poll_for("the connection", || ready.load(Ordering::Acquire) == CONNECTED);
            }
            let publisher = p.publishers[dir].as_ref().expect("built above");
            let sample = publisher.loan_slice_uninit(self.size).expect("iceoryx2 loan");
            sample.write_from_slice(&msg[TYPE_LEN..]).send().expect("iceoryx2 send");
            p.sent[dir] += 1;
        })
    }

    fn recv(&self, dir: usize, msg: &mut Vec<u8>) {
        self.with_ports(|p| {
            if p.subscribers[dir].is_none() {
                let service = self.service(&p.node, dir, true);
                let subscriber = service
                    .subscriber_builder()
                    .buffer_size(self.buffer)
                    .create()
                    .expect("iceoryx2 subscriber");
                let ready = self.ready(dir);
                ready.store(SUBSCRIBED, Ordering::Release);
                poll_for("the publisher", || ready.load(Ordering::Acquire) == PUBLISHED);
                subscriber.update_connections().expect("iceoryx2 connect");
                ready.store(CONNECTED, Ordering::Release);
                p.subscribers[dir] = Some(subscriber);
            }
            let subscriber = p.subscribers[dir].as_ref().expect("built above");
            let mut sample = None;
            poll_for("a sample", || {
                sample = subscriber.receive().expect("iceoryx2 receive");
                sample.is_some()
            });
            msg[TYPE_LEN..].copy_from_slice(sample.expect("polled until some").payload());
            p.taken[dir] += 1;
            self.taken(dir).store(p.taken[dir], Ordering::Release);
        })
    }

    fn finish(&self) {
        if let Some(p) = self.ports.borrow_mut().take() {
            for dir in 0..2 {
                if p.publishers[dir].is_some() {
                    poll_for("the subscriber to take every sample", || {
                        self.taken(dir).load(Ordering::Acquire) >= p.sent[dir]
                    });
                }
            }
        }
    }
}

impl Drop for Iceoryx2 {
    /// The parent's side: after its own ports and node, the domain's persistent node counter
    /// (the child has exited: `fork_rtt` and `throughput` waited for it).
    fn drop(&mut self) {
        self.finish();
        if let Ok(dir) = std::fs::read_dir("/dev/shm") {
            for entry in dir.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

// ----- measurement ---------------------------------------------------------------------

/// The mechanisms, for messages of `size` bytes in queues of `max_bytes` (0: the defaults).
#[allow(clippy::type_complexity)]
fn mechanisms(
    size: usize,
    max_bytes: usize,
) -> Vec<(&'static str, Box<dyn Fn() -> Box<dyn Channel>>)> {
    let (mq_bytes, sysv_bytes, posix_bytes, iceoryx2_bytes) = if max_bytes == 0 {
        (ipckit::mq::DEFAULT_MAX_BYTES as usize, 16_384, 10 * size, 0)
    } else {
        (max_bytes, max_bytes, max_bytes, max_bytes)
    };
    let all: Vec<(&'static str, Box<dyn Fn() -> Box<dyn Channel>>)> = vec![
        ("ipckit MessageQueue", Box::new(move || Box::new(Ipckit::new(mq_bytes)) as _)),
        ("System V msgsnd/msgrcv", Box::new(move || Box::new(SysV::new(sysv_bytes)) as _)),
        (
            "POSIX mq_send/mq_receive",
            Box::new(move || Box::new(PosixMq::new(size, posix_bytes)) as _),
        ),
        ("pipe", Box::new(|| Box::new(Stream::pipes()) as _)),
        ("Unix stream socket", Box::new(|| Box::new(Stream::unix_socket()) as _)),
        (
            "iceoryx2 pub/sub (busy-polling)",
            Box::new(move || Box::new(Iceoryx2::new(size, iceoryx2_bytes)) as _),
        ),
        ("busy-polling ring (limit)", Box::new(move || Box::new(Ring::new(size)) as _)),
    ];
    // For profiling one mechanism: IPCKIT_BENCH_ONLY=ipckit (a part of the name).
    match std::env::var("IPCKIT_BENCH_ONLY") {
        Ok(only) => all.into_iter().filter(|(name, _)| name.contains(only.as_str())).collect(),
        Err(_) => all,
    }
}

/// Median round trip in microseconds.
fn rtt(ch: &dyn Channel, p: Placement, size: usize, rounds: u64) -> f64 {
    let mut msg = vec![7u8; TYPE_LEN + size];
    fork_rtt(
        p,
        rounds,
        SAMPLES,
        || {
            ch.send(0, &mut msg);
            ch.recv(1, &mut msg);
        },
        |total| {
            let mut msg = vec![0u8; TYPE_LEN + size];
            for _ in 0..total {
                ch.recv(0, &mut msg);
                ch.send(1, &mut msg);
            }
            ch.finish();
        },
    )
}

/// Median messages per second, child producing and parent consuming.
fn throughput(ch: &dyn Channel, p: Placement, size: usize, n: u64) -> f64 {
    let total = (SAMPLES as u64 + 1) * n;
    let pid = fork_child(Some(p.child_cpu()), || {
        let mut msg = vec![1u8; TYPE_LEN + size];
        for i in 0..total {
            msg[TYPE_LEN] = i as u8;
            ch.send(0, &mut msg);
        }
        ch.finish();
    });
    pin_to_cpu(p.parent_cpu());
    let mut msg = vec![0u8; TYPE_LEN + size];
    let mut expect = 0u64;
    let mut take = |msg: &mut Vec<u8>| {
        ch.recv(0, msg);
        assert_eq!(msg[TYPE_LEN], expect as u8, "lost or reordered message");
        expect += 1;
    };
    for _ in 0..n {
        take(&mut msg);
    }
    let mut v: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                take(&mut msg);
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    unpin();
    assert!(wait_child(pid, Duration::from_secs(120)), "producer child failed");
    median(&mut v)
}

pub fn rtt_64(r: &mut Report) -> anyhow::Result<()> {
    for p in Placement::all() {
        for (name, make) in mechanisms(64, 0) {
            let ch = make();
            let rounds = if p == Placement::OneCore { 2_000 } else { 5_000 };
            let us = rtt(ch.as_ref(), p, 64, rounds);
            r.push(name, &format!("round trip 64 B, {}", p.label()), us, "us");
        }
    }
    Ok(())
}

fn throughput_run(r: &mut Report, size: usize, n: u64) -> anyhow::Result<()> {
    for p in Placement::all() {
        for (name, make) in mechanisms(size, QUEUE_BYTES) {
            let ch = make();
            let mps = throughput(ch.as_ref(), p, size, n);
            let label =
                if size >= 1024 { format!("{} KiB", size / 1024) } else { format!("{size} B") };
            r.push(name, &format!("{label} msgs/s, {}", p.label()), mps / 1e6, "M msgs/s");
            r.push(name, &format!("{label} MB/s, {}", p.label()), mps * size as f64 / 1e6, "MB/s");
        }
    }
    Ok(())
}

pub fn throughput_64(r: &mut Report) -> anyhow::Result<()> {
    throughput_run(r, 64, 200_000)
}

pub fn throughput_4k(r: &mut Report) -> anyhow::Result<()> {
    throughput_run(r, 4096, 50_000)
}
