//! Locks side by side: `spin-vs-mutex`, `rwlock-read-heavy`, `rwlock-write-heavy`, `counter`.
//!
//! Every number is wall-clock nanoseconds per operation over all threads (lower is better):
//! `threads × ops` operations run, the elapsed time is divided by their total. The median of
//! several samples is reported; peers are measured in the same run.

use crate::harness::{Report, median};
use ipckit::sync::{McsLock, Mutex, Policy, RwLock, TasLock, TicketLock, TtasLock};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const SAMPLES: usize = 5;

/// Runs `op(thread, i)` for `i in 0..ops` on each of `threads` threads, `SAMPLES` times;
/// returns the median wall-clock ns per operation.
fn ns_per_op(threads: usize, ops: u64, op: impl Fn(usize, u64) + Sync) -> f64 {
    // Warm up caches and spin budgets.
    for i in 0..ops / 10 {
        op(0, i);
    }
    let mut v: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            if threads == 1 {
                let t = Instant::now();
                for i in 0..ops {
                    op(0, i);
                }
                return t.elapsed().as_nanos() as f64 / ops as f64;
            }
            let start = Barrier::new(threads + 1);
            let mut t0 = None;
            // The scope joins every thread before it returns.
            std::thread::scope(|s| {
                for th in 0..threads {
                    let (op, start) = (&op, &start);
                    s.spawn(move || {
                        start.wait();
                        for i in 0..ops {
                            op(th, i);
                        }
                    });
                }
                start.wait();
                t0 = Some(Instant::now());
            });
            let elapsed = t0.expect("started").elapsed();
            elapsed.as_nanos() as f64 / (threads as u64 * ops) as f64
        })
        .collect();
    median(&mut v)
}

/// A critical section: `short` is one increment; long adds ~a microsecond of work.
#[inline]
fn section(v: &mut u64, long: bool) {
    *v += 1;
    if long {
        for _ in 0..300 {
            *v = black_box(*v).wrapping_mul(3) | 1;
        }
    }
}

fn threads_to_test() -> Vec<usize> {
    if crate::harness::cpus() >= 2 { vec![1, 2] } else { vec![1] }
}

pub fn spin_vs_mutex(r: &mut Report) -> anyhow::Result<()> {
    for threads in threads_to_test() {
        for long in [false, true] {
            let ops = if long { 20_000 } else { 200_000 };
            let metric = format!("ns/op {threads}t {} cs", if long { "long" } else { "short" });
            macro_rules! typed {
                ($name:expr, $raw:ty) => {{
                    let m = Mutex::<u64, $raw>::with_raw(0);
                    let ns = ns_per_op(threads, ops, |_, _| section(&mut m.lock().unwrap(), long));
                    r.push($name, &metric, ns, "ns");
                }};
            }
            typed!("ipckit TasLock", TasLock);
            typed!("ipckit TtasLock", TtasLock);
            typed!("ipckit TicketLock", TicketLock);
            typed!("ipckit McsLock", McsLock);
            let m = Mutex::new(0u64);
            let ns = ns_per_op(threads, ops, |_, _| section(&mut m.lock().unwrap(), long));
            r.push("ipckit Mutex (robust)", &metric, ns, "ns");
            let m = std::sync::Mutex::new(0u64);
            let ns = ns_per_op(threads, ops, |_, _| section(&mut m.lock().unwrap(), long));
            r.push("std::sync::Mutex", &metric, ns, "ns");
            let m = parking_lot::Mutex::new(0u64);
            let ns = ns_per_op(threads, ops, |_, _| section(&mut m.lock(), long));
            r.push("parking_lot::Mutex", &metric, ns, "ns");
        }
    }
    Ok(())
}

/// One reader-writer workload: every `write_every`th operation writes, the rest read.
fn rwlock_mix(r: &mut Report, write_every: u64) {
    const OPS: u64 = 200_000;
    let is_write = |th: usize, i: u64| (i + th as u64 * 7) % write_every == 0;
    let read = |a: &[u64; 8]| black_box(a.iter().sum::<u64>());
    let write = |a: &mut [u64; 8]| {
        for x in a.iter_mut() {
            *x += 1;
        }
    };
    for threads in threads_to_test() {
        let metric = format!("ns/op {threads}t");
        for p in Policy::ALL {
            let l = RwLock::with_policy([0u64; 8], p);
            let ns = ns_per_op(threads, OPS, |th, i| {
                if is_write(th, i) {
                    write(&mut l.write());
                } else {
                    read(&l.read());
                }
            });
            r.push(&format!("ipckit RwLock {}", p.name()), &metric, ns, "ns");
        }
        let l = std::sync::RwLock::new([0u64; 8]);
        let ns = ns_per_op(threads, OPS, |th, i| {
            if is_write(th, i) {
                write(&mut l.write().unwrap());
            } else {
                read(&l.read().unwrap());
            }
        });
        r.push("std::sync::RwLock", &metric, ns, "ns");
        let l = parking_lot::RwLock::new([0u64; 8]);
        let ns = ns_per_op(threads, OPS, |th, i| {
            if is_write(th, i) {
                write(&mut l.write());
            } else {
                read(&l.read());
            }
        });
        r.push("parking_lot::RwLock", &metric, ns, "ns");
    }
}

pub fn rwlock_read_heavy(r: &mut Report) -> anyhow::Result<()> {
    rwlock_mix(r, 100); // 1% writes
    Ok(())
}

pub fn rwlock_write_heavy(r: &mut Report) -> anyhow::Result<()> {
    rwlock_mix(r, 2); // 50% writes
    Ok(())
}

pub fn counter(r: &mut Report) -> anyhow::Result<()> {
    const OPS: u64 = 500_000;
    for threads in threads_to_test() {
        let metric = format!("ns/hit {threads}t");
        let a = AtomicU64::new(0);
        let ns = ns_per_op(threads, OPS, |_, _| {
            a.fetch_add(1, Ordering::Relaxed);
        });
        r.push("AtomicU64::fetch_add", &metric, ns, "ns");
        let m = Mutex::new(0u64);
        let ns = ns_per_op(threads, OPS, |_, _| *m.lock().unwrap() += 1);
        r.push("ipckit Mutex (robust)", &metric, ns, "ns");
        let m = Mutex::<u64, TtasLock>::with_raw(0);
        let ns = ns_per_op(threads, OPS, |_, _| *m.lock().unwrap() += 1);
        r.push("ipckit Mutex<TtasLock>", &metric, ns, "ns");
        let m = std::sync::Mutex::new(0u64);
        let ns = ns_per_op(threads, OPS, |_, _| *m.lock().unwrap() += 1);
        r.push("std::sync::Mutex", &metric, ns, "ns");
        let m = parking_lot::Mutex::new(0u64);
        let ns = ns_per_op(threads, OPS, |_, _| *m.lock() += 1);
        r.push("parking_lot::Mutex", &metric, ns, "ns");
    }
    Ok(())
}
