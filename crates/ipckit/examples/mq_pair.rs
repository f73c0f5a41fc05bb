//! One producer and one consumer process over a message queue (a profiling aid):
//! `mq_pair SIZE COUNT` prints messages per second.
use ipckit::mq::{MessageQueue, QueueConfig, Selector, Wait};
use ipckit::ns::{CreateMode, Key, Namespace};
use std::time::Instant;

/// With `MQ_PAIR_PIN=1`, the consumer runs on CPU 0 and the producer on CPU 1.
fn pin(cpu: usize) {
    if std::env::var_os("MQ_PAIR_PIN").is_none() {
        return;
    }
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).map_or(4096, |s| s.parse().unwrap());
    let count: u64 = args.get(2).map_or(200_000, |s| s.parse().unwrap());
    if args.get(3).is_some_and(|r| r == "produce") {
        pin(1);
        let q = MessageQueue::open_path(std::path::Path::new(&args[4])).unwrap();
        let msg = vec![7u8; size];
        for _ in 0..count {
            q.send(1, &msg[..]).unwrap();
        }
        return;
    }
    let d = tempfile::tempdir_in("/dev/shm").unwrap();
    let ns = Namespace::at(d.path()).unwrap();
    let config = QueueConfig::with_max_bytes(65_536);
    let (q, _) =
        MessageQueue::obtain(&ns, Key(1), CreateMode::CreateExclusive, 0o600, config).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([&size.to_string(), &count.to_string(), "produce", q.path().to_str().unwrap()])
        .spawn()
        .unwrap();
    pin(0);
    let mut buf = Vec::new();
    let t = Instant::now();
    for _ in 0..count {
        q.recv_into(Selector::Any, &mut buf, size, false, Wait::Block).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    child.wait().unwrap();
    println!("{size} B: {:.3} M msgs/s", count as f64 / secs / 1e6);
}
