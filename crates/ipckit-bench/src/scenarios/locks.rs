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

const SAMPLES: usize = 7;

/// One mechanism's operation: `op(thread, i)`.
type Op<'a> = (&'a str, Box<dyn Fn(usize, u64) + Sync + 'a>);

/// Wall-clock ns per operation of one sample: `op(thread, i)` for `i in 0..ops` on each of
/// `threads` threads.
fn sample(threads: usize, ops: u64, op: &(dyn Fn(usize, u64) + Sync)) -> f64 {
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
            let start = &start;
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
}

/// Measures every mechanism `SAMPLES` times, round-robin (so that a burst of load from
/// elsewhere hits them all alike), and pushes each one's median ns per operation.
fn compare(r: &mut Report, metric: &str, threads: usize, ops: u64, mechanisms: Vec<Op<'_>>) {
    for (_, op) in &mechanisms {
        sample(threads, ops / 10, op.as_ref()); // warm up
    }
    let mut samples = vec![Vec::new(); mechanisms.len()];
    for _ in 0..SAMPLES {
        for (k, (_, op)) in mechanisms.iter().enumerate() {
            samples[k].push(sample(threads, ops, op.as_ref()));
        }
    }
    for ((name, _), mut v) in mechanisms.iter().zip(samples) {
        r.push(name, metric, median(&mut v), "ns");
    }
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
            let ops = if long { 50_000 } else { 1_000_000 };
            let metric = format!("ns/op {threads}t {} cs", if long { "long" } else { "short" });
            let tas = Mutex::<u64, TasLock>::with_raw(0);
            let ttas = Mutex::<u64, TtasLock>::with_raw(0);
            let ticket = Mutex::<u64, TicketLock>::with_raw(0);
            let mcs = Mutex::<u64, McsLock>::with_raw(0);
            let robust = Mutex::new(0u64);
            let st = std::sync::Mutex::new(0u64);
            let pl = parking_lot::Mutex::new(0u64);
            let mechanisms: Vec<Op<'_>> = vec![
                ("ipckit TasLock", Box::new(|_, _| section(&mut tas.lock().unwrap(), long))),
                ("ipckit TtasLock", Box::new(|_, _| section(&mut ttas.lock().unwrap(), long))),
                ("ipckit TicketLock", Box::new(|_, _| section(&mut ticket.lock().unwrap(), long))),
                ("ipckit McsLock", Box::new(|_, _| section(&mut mcs.lock().unwrap(), long))),
                (
                    "ipckit Mutex (robust)",
                    Box::new(|_, _| section(&mut robust.lock().unwrap(), long)),
                ),
                ("std::sync::Mutex", Box::new(|_, _| section(&mut st.lock().unwrap(), long))),
                ("parking_lot::Mutex", Box::new(|_, _| section(&mut pl.lock(), long))),
            ];
            compare(r, &metric, threads, ops, mechanisms);
        }
    }
    Ok(())
}

/// One reader-writer workload: every `write_every`th operation writes, the rest read.
fn rwlock_mix(r: &mut Report, write_every: u64) {
    const OPS: u64 = 1_000_000;
    let is_write = move |th: usize, i: u64| (i + th as u64 * 7).is_multiple_of(write_every);
    let read = |a: &[u64; 8]| {
        black_box(a.iter().sum::<u64>());
    };
    let write = |a: &mut [u64; 8]| {
        for x in a.iter_mut() {
            *x += 1;
        }
    };
    for threads in threads_to_test() {
        let metric = format!("ns/op {threads}t");
        let ours: Vec<(String, RwLock<[u64; 8]>)> = Policy::ALL
            .into_iter()
            .map(|p| (format!("ipckit RwLock {}", p.name()), RwLock::with_policy([0u64; 8], p)))
            .collect();
        let st = std::sync::RwLock::new([0u64; 8]);
        let pl = parking_lot::RwLock::new([0u64; 8]);
        let mut mechanisms: Vec<Op<'_>> =
            ours.iter()
                .map(|(name, l)| -> Op<'_> {
                    (
                        name.as_str(),
                        Box::new(move |th, i| {
                            if is_write(th, i) { write(&mut l.write()) } else { read(&l.read()) }
                        }),
                    )
                })
                .collect();
        mechanisms.push((
            "std::sync::RwLock",
            Box::new(|th, i| {
                if is_write(th, i) {
                    write(&mut st.write().unwrap())
                } else {
                    read(&st.read().unwrap())
                }
            }),
        ));
        mechanisms.push((
            "parking_lot::RwLock",
            Box::new(
                |th, i| {
                    if is_write(th, i) { write(&mut pl.write()) } else { read(&pl.read()) }
                },
            ),
        ));
        compare(r, &metric, threads, OPS, mechanisms);
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
    const OPS: u64 = 2_000_000;
    for threads in threads_to_test() {
        let metric = format!("ns/hit {threads}t");
        let atomic = AtomicU64::new(0);
        let robust = Mutex::new(0u64);
        let spin = Mutex::<u64, TtasLock>::with_raw(0);
        let st = std::sync::Mutex::new(0u64);
        let pl = parking_lot::Mutex::new(0u64);
        let mechanisms: Vec<Op<'_>> = vec![
            (
                "AtomicU64::fetch_add",
                Box::new(|_, _| {
                    atomic.fetch_add(1, Ordering::Relaxed);
                }),
            ),
            ("ipckit Mutex (robust)", Box::new(|_, _| *robust.lock().unwrap() += 1)),
            ("ipckit Mutex<TtasLock>", Box::new(|_, _| *spin.lock().unwrap() += 1)),
            ("std::sync::Mutex", Box::new(|_, _| *st.lock().unwrap() += 1)),
            ("parking_lot::Mutex", Box::new(|_, _| *pl.lock() += 1)),
        ];
        compare(r, &metric, threads, OPS, mechanisms);
    }
    Ok(())
}
