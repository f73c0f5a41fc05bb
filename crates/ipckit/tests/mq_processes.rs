//! Multi-process tests of message queues: persistence across processes, a stress test in
//! the spirit of the Linux Test Project's `msgstress`, and a crash test that SIGKILLs
//! senders and receivers at random.
//!
//! Like `multiprocess.rs`, this binary has its own `main` (`harness = false`): without
//! `IPCKIT_TEST_ROLE` it runs the tests, each of which re-executes the binary with the role
//! set to play a child. Every wait is bounded, so a bug fails a test instead of hanging.
//!
//! Every message is self-checking: its type encodes (sender instance, sequence number), and
//! its length (1 byte to 4 KiB) and every byte are a pseudo-random function of the type, so a
//! receiver detects any loss of order, truncation or corruption by regenerating it.
//!
//! Knobs: `IPCKIT_MQ_STRESS_MESSAGES` (default 200 000), `IPCKIT_MQ_CRASH_KILLS` (default 200).

use ipckit::mq::{MessageQueue, RecvError, Selector, SendError};
use ipckit::ns::{Key, Namespace};
use ipckit::shm::Mapping;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(300);
const MAX_LEN: usize = 4096;
const KEY: Key = Key(0x5eed);

mod support;

use support::{spawn, wait_ok_within};

fn main() {
    support::main(
        &[
            ("queue_outlives_its_sender", queue_outlives_its_sender),
            (
                "remove_wakes_a_receiver_in_another_process",
                remove_wakes_a_receiver_in_another_process,
            ),
            ("msgstress_4_senders_4_receivers", msgstress_4_senders_4_receivers),
            ("sigkill_senders_and_receivers_at_random", sigkill_senders_and_receivers_at_random),
        ],
        child,
    );
}

fn env_knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn scratch() -> tempfile::TempDir {
    let b = tempfile::Builder::new().prefix("ipckit-mq-").tempdir_in("/dev/shm");
    b.or_else(|_| tempfile::tempdir()).unwrap()
}

// ----- self-checking messages ----------------------------------------------------------

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn mtype_of(instance: u64, seq: u64) -> i64 {
    (1 + (instance << 32) + seq) as i64
}

fn decode(mtype: i64) -> (usize, usize) {
    let v = mtype as u64 - 1;
    ((v >> 32) as usize, (v & 0xffff_ffff) as usize)
}

/// The bytes of the message of type `mtype`: 1 to 4096 of them, all determined by the type.
fn payload(mtype: i64, out: &mut Vec<u8>) {
    let h = splitmix(mtype as u64);
    let len = 1 + (h % MAX_LEN as u64) as usize;
    out.clear();
    let mut s = h;
    while out.len() < len {
        s = splitmix(s);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&s.to_le_bytes()[..take]);
    }
}

// ----- shared bookkeeping --------------------------------------------------------------

/// A file of counters shared by the test and its children: `[errors, stop, pad, pad]`, then
/// `sent[instances]` (u32), then `seen[instances * per_instance]` (u8).
struct Book {
    map: Mapping,
    instances: usize,
    per_instance: usize,
}

impl Book {
    fn create(path: &Path, instances: usize, per_instance: usize) -> Book {
        let len = 16 + 4 * instances + instances * per_instance;
        Book { map: Mapping::create(path, len, 0o600).unwrap(), instances, per_instance }
    }

    fn open(path: &Path, instances: usize, per_instance: usize) -> Book {
        Book { map: Mapping::open(path).unwrap(), instances, per_instance }
    }

    fn errors(&self) -> &AtomicU32 {
        self.map.get(0).unwrap()
    }

    fn stop(&self) -> &AtomicU32 {
        self.map.get(4).unwrap()
    }

    fn sent(&self, inst: usize) -> &AtomicU32 {
        assert!(inst < self.instances);
        self.map.get(16 + 4 * inst).unwrap()
    }

    fn seen(&self, inst: usize, seq: usize) -> Option<&AtomicU8> {
        if inst >= self.instances || seq >= self.per_instance {
            return None;
        }
        self.map.get(16 + 4 * self.instances + inst * self.per_instance + seq).ok()
    }

    /// Records a received message; counts an error if it is corrupt, out of range or out of
    /// order for its sender (`last` is this receiver's last sequence per sender).
    fn record(&self, mtype: i64, data: &[u8], expect: &mut Vec<u8>, last: &mut [i64]) {
        let (inst, seq) = decode(mtype);
        payload(mtype, expect);
        let ok_content = data == &expect[..];
        let ok_order = inst < last.len() && (seq as i64) > last[inst];
        if inst < last.len() {
            last[inst] = seq as i64;
        }
        match self.seen(inst, seq) {
            Some(s) if ok_content && ok_order => {
                s.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                eprintln!("bad message: type {mtype} ({inst}, {seq}), {} bytes", data.len());
                self.errors().fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

// ----- children ------------------------------------------------------------------------

fn child(role: &str, args: &[String]) {
    let ns = Namespace::at(Path::new(&args[0])).unwrap();
    match role {
        "send-and-exit" => {
            let q = MessageQueue::open_or_create(&ns, KEY, 0o600).unwrap();
            for (t, text) in [(2, "two-a"), (1, "one-a"), (3, "three"), (2, "two-b"), (1, "one-b")]
            {
                q.send(t, text.as_bytes()).unwrap();
            }
        }
        "recv-until-removed" => {
            let q = MessageQueue::open(&ns, KEY).unwrap();
            let r = q.recv_timeout(Selector::Any, 16, Duration::from_secs(30));
            assert_eq!(r, Err(RecvError::Removed), "expected EIDRM");
        }
        "stress-send" | "crash-send" => {
            let q = MessageQueue::open(&ns, KEY).unwrap();
            let (instances, per): (usize, usize) =
                (args[2].parse().unwrap(), args[3].parse().unwrap());
            let book = Book::open(Path::new(&args[1]), instances, per);
            let inst: u64 = args[4].parse().unwrap();
            let count: usize = args[5].parse().unwrap();
            let mut buf = Vec::with_capacity(MAX_LEN);
            for seq in 0..count {
                if book.stop().load(Ordering::Relaxed) != 0 {
                    break;
                }
                let t = mtype_of(inst, seq as u64);
                payload(t, &mut buf);
                match q.send_timeout(t, &buf[..], Duration::from_secs(60)) {
                    Ok(()) => book.sent(inst as usize).store(seq as u32 + 1, Ordering::Relaxed),
                    Err(e) => panic!("sender {inst}: {e}"),
                }
            }
        }
        "stress-recv" | "crash-recv" => {
            let q = MessageQueue::open(&ns, KEY).unwrap();
            let (instances, per): (usize, usize) =
                (args[2].parse().unwrap(), args[3].parse().unwrap());
            let book = Book::open(Path::new(&args[1]), instances, per);
            let mut last = vec![-1i64; instances];
            let mut data = Vec::with_capacity(MAX_LEN);
            let mut expect = Vec::with_capacity(MAX_LEN);
            loop {
                let wait = if role == "crash-recv" { 100 } else { 60_000 };
                let r = q.recv_into(
                    Selector::Any,
                    &mut data,
                    MAX_LEN,
                    false,
                    ipckit::mq::Wait::Timeout(Duration::from_millis(wait)),
                );
                match r {
                    Ok(i64::MAX) => break, // the stop message of the stress test
                    Ok(t) => book.record(t, &data, &mut expect, &mut last),
                    Err(RecvError::TimedOut) if book.stop().load(Ordering::Relaxed) != 0 => break,
                    Err(RecvError::TimedOut) if role == "crash-recv" => {}
                    Err(e) => panic!("receiver: {e}"),
                }
            }
        }
        other => panic!("unknown role {other}"),
    }
}

// ----- tests ---------------------------------------------------------------------------

fn queue_outlives_its_sender() {
    let dir = scratch();
    let d = dir.path().to_str().unwrap();
    wait_ok_within(spawn("send-and-exit", &[d]), LIMIT);
    // The sender is gone; its messages are not.
    let ns = Namespace::at(dir.path()).unwrap();
    let q = MessageQueue::open(&ns, KEY).unwrap();
    let s = q.stat().unwrap();
    assert_eq!(s.messages, 5);
    assert_ne!(s.last_send_pid, std::process::id());
    let text = |sel| String::from_utf8(q.try_recv(sel, 16).unwrap().data).unwrap();
    assert_eq!(text(Selector::Type(1)), "one-a");
    assert_eq!(text(Selector::Type(1)), "one-b");
    assert_eq!(text(Selector::Except(2)), "three");
    assert_eq!(text(Selector::Any), "two-a");
    assert_eq!(text(Selector::UpTo(5)), "two-b");
    assert_eq!(q.try_recv(Selector::Any, 16), Err(RecvError::NoMessage));
    q.remove().unwrap();
}

fn remove_wakes_a_receiver_in_another_process() {
    let dir = scratch();
    let d = dir.path().to_str().unwrap();
    let ns = Namespace::at(dir.path()).unwrap();
    let q = MessageQueue::create(&ns, KEY, 0o600).unwrap();
    let c = spawn("recv-until-removed", &[d]);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    q.remove().unwrap();
    wait_ok_within(c, Duration::from_secs(20));
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// A queue and a ledger of `instances` senders of `per` messages each, in a scratch
/// directory, with the arguments the child roles take.
struct Ledgered {
    _dir: tempfile::TempDir,
    q: MessageQueue,
    book: Book,
    /// The namespace directory, the ledger's path, `instances` and `per`, as arguments.
    nsd: String,
    book_path: String,
    inst_s: String,
    per_s: String,
}

impl Ledgered {
    fn new(instances: usize, per: usize) -> Ledgered {
        let dir = scratch();
        let ns = Namespace::at(&dir.path().join("ns")).unwrap();
        let q = MessageQueue::create(&ns, KEY, 0o600).unwrap();
        let book_path = format!("{}/book", dir.path().to_str().unwrap());
        Ledgered {
            book: Book::create(Path::new(&book_path), instances, per),
            nsd: ns.dir().to_str().unwrap().to_string(),
            q,
            book_path,
            inst_s: instances.to_string(),
            per_s: per.to_string(),
            _dir: dir,
        }
    }
}

fn msgstress_4_senders_4_receivers() {
    let total = env_knob("IPCKIT_MQ_STRESS_MESSAGES", 200_000) as usize;
    let (senders, receivers) = (4usize, 4usize);
    let per = total.div_ceil(senders);
    let Ledgered { _dir, q, book, nsd, book_path, inst_s, per_s } = Ledgered::new(senders, per);
    let recv: Vec<Child> = (0..receivers)
        .map(|_| spawn("stress-recv", &[&nsd, &book_path, &inst_s, &per_s]))
        .collect();
    let send: Vec<Child> = (0..senders)
        .map(|i| {
            let n = per.min(total - i * per).to_string();
            spawn("stress-send", &[&nsd, &book_path, &inst_s, &per_s, &i.to_string(), &n])
        })
        .collect();
    for c in send {
        wait_ok_within(c, LIMIT);
    }
    for _ in 0..receivers {
        q.send(i64::MAX, b"stop").unwrap();
    }
    for c in recv {
        wait_ok_within(c, LIMIT);
    }
    assert_eq!(book.errors().load(Ordering::Relaxed), 0, "corrupt or reordered messages");
    let mut received = 0usize;
    for i in 0..senders {
        let n = per.min(total - i * per);
        assert_eq!(book.sent(i).load(Ordering::Relaxed) as usize, n);
        for seq in 0..n {
            let s = book.seen(i, seq).unwrap().load(Ordering::Relaxed);
            assert_eq!(s, 1, "message ({i}, {seq}) received {s} times");
            received += 1;
        }
    }
    assert_eq!(received, total);
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (0, 0));
    q.remove().unwrap();
}

fn sigkill_senders_and_receivers_at_random() {
    use rand::{Rng, SeedableRng};
    let kills = env_knob("IPCKIT_MQ_CRASH_KILLS", 200) as usize;
    let per = 3000usize; // messages per sender instance before it exits by itself
    let instances = kills + 1000;
    let Ledgered { _dir, q, book, nsd, book_path, inst_s, per_s } = Ledgered::new(instances, per);
    let mut next_inst = 0usize;
    let spawn_sender = |next: &mut usize| {
        let i = *next;
        *next += 1;
        assert!(i < instances, "more sender instances than planned");
        spawn("crash-send", &[&nsd, &book_path, &inst_s, &per_s, &i.to_string(), &per_s])
    };
    let spawn_receiver = || spawn("crash-recv", &[&nsd, &book_path, &inst_s, &per_s]);
    let mut senders: Vec<Child> = (0..3).map(|_| spawn_sender(&mut next_inst)).collect();
    let mut receivers: Vec<Child> = (0..3).map(|_| spawn_receiver()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b696c6c);
    let (mut receiver_kills, mut done) = (0usize, 0usize);
    let deadline = Instant::now() + LIMIT;
    while done < kills {
        assert!(Instant::now() < deadline, "crash test ran out of time");
        std::thread::sleep(Duration::from_micros(rng.gen_range(500..8000)));
        // Replace senders that finished on their own.
        for s in senders.iter_mut() {
            if let Some(st) = s.try_wait().unwrap() {
                assert!(st.success(), "a sender failed: {st}");
                *s = spawn_sender(&mut next_inst);
            }
        }
        for r in receivers.iter_mut() {
            if let Some(st) = r.try_wait().unwrap() {
                panic!("a receiver ended by itself: {st}");
            }
        }
        let mut victim = if rng.gen_bool(0.5) {
            let i = rng.gen_range(0..senders.len());
            std::mem::replace(&mut senders[i], spawn_sender(&mut next_inst))
        } else {
            receiver_kills += 1;
            let i = rng.gen_range(0..receivers.len());
            std::mem::replace(&mut receivers[i], spawn_receiver())
        };
        victim.kill().unwrap(); // SIGKILL
        victim.wait().unwrap();
        done += 1;
    }
    // Let the survivors stop by themselves, then check everything.
    book.stop().store(1, Ordering::Relaxed);
    for c in senders.into_iter().chain(receivers) {
        wait_ok_within(c, Duration::from_secs(60));
    }
    let mut last = vec![-1i64; instances];
    let mut data = Vec::new();
    let mut expect = Vec::new();
    let stat = q.stat().unwrap();
    let mut left = 0u64;
    let mut left_bytes = 0u64;
    loop {
        match q.recv_into(Selector::Any, &mut data, MAX_LEN, false, ipckit::mq::Wait::NoWait) {
            Ok(t) => {
                left += 1;
                left_bytes += data.len() as u64;
                book.record(t, &data, &mut expect, &mut last);
            }
            Err(RecvError::NoMessage) => break,
            Err(e) => panic!("draining: {e}"),
        }
    }
    assert_eq!((stat.messages, stat.used_bytes), (left, left_bytes), "stat matches the list");
    assert_eq!(book.errors().load(Ordering::Relaxed), 0, "corrupt or reordered messages");
    let (mut lost, mut extra) = (0usize, 0usize);
    for i in 0..next_inst {
        let sent = book.sent(i).load(Ordering::Relaxed) as usize;
        for seq in 0..per {
            let s = book.seen(i, seq).unwrap().load(Ordering::Relaxed);
            assert!(s <= 1, "message ({i}, {seq}) received {s} times");
            if seq < sent && s == 0 {
                lost += 1;
            }
            if seq > sent && s > 0 {
                panic!("message ({i}, {seq}) received but never sent");
            }
            if seq == sent && s == 1 {
                extra += 1; // linked by a sender killed before it could count it: fine
            }
        }
    }
    // A killed receiver loses at most the one message it had taken but not yet recorded.
    assert!(lost <= receiver_kills, "{lost} messages lost, {receiver_kills} receivers killed");
    eprintln!(
        "crash test: {done} kills ({receiver_kills} receivers), {next_inst} sender instances, \
         {lost} lost with killed receivers, {extra} sent by senders killed after linking"
    );
    // The queue still works, and no space is lost: it takes max_bytes again.
    q.try_send(1, vec![1u8; 8192]).unwrap();
    q.try_send(1, vec![2u8; 8192]).unwrap();
    assert!(matches!(q.try_send(1, vec![3u8; 1]), Err(SendError::Full(_))));
    assert_eq!(q.try_recv(Selector::Any, 8192).unwrap().data, vec![1u8; 8192]);
    assert_eq!(q.try_recv(Selector::Any, 8192).unwrap().data, vec![2u8; 8192]);
    q.try_send(1, b"after").unwrap();
    assert_eq!(q.try_recv(Selector::Any, 8).unwrap().data, b"after");
    match q.try_send(0, b"x") {
        Err(SendError::InvalidType(0)) => {}
        other => panic!("{other:?}"),
    }
    q.remove().unwrap();
}
