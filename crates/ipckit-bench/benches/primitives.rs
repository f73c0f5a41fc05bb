//! `cargo bench`: uncontended costs of ipckit's primitives, with criterion's statistics.
//!
//! These are in-process, single-thread numbers (the fast paths). The comparisons against
//! peers and across processes are the `ipckit-bench` binary's scenarios
//! (`cargo run --release -p ipckit-bench`).

use criterion::{Criterion, criterion_group, criterion_main};
use ipckit::mq::{MessageQueue, Selector};
use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemOp, SemaphoreSet};
use ipckit::sync::{EventCount, Mutex, RwLock, Semaphore};
use std::hint::black_box;

fn sync_primitives(c: &mut Criterion) {
    let m = Mutex::new(0u64);
    c.bench_function("Mutex lock+unlock", |b| b.iter(|| *black_box(&m).lock().unwrap() += 1));
    let s = Semaphore::new(1);
    c.bench_function("Semaphore p+v", |b| {
        b.iter(|| {
            black_box(&s).p();
            s.v().unwrap();
        })
    });
    let rw = RwLock::new(0u64);
    c.bench_function("RwLock (fair) read", |b| b.iter(|| *black_box(&rw).read()));
    // What a changer pays when nobody waits: one load.
    let ec = EventCount::new();
    c.bench_function("EventCount notify, nobody waiting", |b| b.iter(|| black_box(&ec).notify()));
}

fn objects(c: &mut Criterion) {
    let dir = tempfile::Builder::new().prefix("ipckit-bench-").tempdir_in("/dev/shm").unwrap();
    let ns = Namespace::at(dir.path()).unwrap();
    let set = SemaphoreSet::create(&ns, Key(1), 1, 0o600).unwrap();
    c.bench_function("SemaphoreSet apply V then P", |b| {
        b.iter(|| {
            set.apply(black_box(&[SemOp::new(0, 1)])).unwrap();
            set.apply(black_box(&[SemOp::new(0, -1)])).unwrap();
        })
    });
    let q = MessageQueue::create(&ns, Key(2), 0o600).unwrap();
    let msg = [7u8; 64];
    c.bench_function("MessageQueue send+recv 64 B", |b| {
        b.iter(|| {
            q.send(1, black_box(&msg[..])).unwrap();
            black_box(q.recv(Selector::Any, 64).unwrap());
        })
    });
}

criterion_group!(benches, sync_primitives, objects);
criterion_main!(benches);
