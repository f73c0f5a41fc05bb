//! Single-process cost of a send and a receive (a quick profile aid).
use ipckit::mq::{MessageQueue, Selector, Wait};
use ipckit::ns::{Key, Namespace};
use std::time::Instant;
fn main() {
    let d = tempfile::tempdir_in("/dev/shm").unwrap();
    let ns = Namespace::at(d.path()).unwrap();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    let mut buf = Vec::with_capacity(8192);
    for size in [64usize, 4096] {
        let msg = vec![7u8; size];
        let n = 1_000_000;
        let t = Instant::now();
        for _ in 0..n {
            q.send(1, &msg[..]).unwrap();
            q.recv_into(Selector::Any, &mut buf, 8192, false, Wait::Block).unwrap();
        }
        println!("{size}: {:.1} ns per send+recv", t.elapsed().as_nanos() as f64 / n as f64);
    }
    let t = Instant::now();
    for _ in 0..1_000_000 {
        std::hint::black_box(std::time::SystemTime::now());
    }
    println!("SystemTime::now {:.1} ns", t.elapsed().as_nanos() as f64 / 1e6);
}
