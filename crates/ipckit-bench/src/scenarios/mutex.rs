//! `mutex-uncontended` and `mutex-contended`: ipckit's robust `Mutex` next to
//! `std::sync::Mutex` and `parking_lot::Mutex`.

use crate::harness::{Report, median, ns_per_iter};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

pub fn uncontended(r: &mut Report) -> anyhow::Result<()> {
    const ITERS: u64 = 2_000_000;
    let ip = ipckit::sync::Mutex::new(0u64);
    let ns = ns_per_iter(11, ITERS, |n| {
        for _ in 0..n {
            *black_box(&ip).lock().unwrap() += 1;
        }
    });
    r.push("ipckit Mutex", "lock+unlock", ns, "ns");
    let st = std::sync::Mutex::new(0u64);
    let ns = ns_per_iter(11, ITERS, |n| {
        for _ in 0..n {
            *black_box(&st).lock().unwrap() += 1;
        }
    });
    r.push("std::sync::Mutex", "lock+unlock", ns, "ns");
    let pl = parking_lot::Mutex::new(0u64);
    let ns = ns_per_iter(11, ITERS, |n| {
        for _ in 0..n {
            *black_box(&pl).lock() += 1;
        }
    });
    r.push("parking_lot::Mutex", "lock+unlock", ns, "ns");
    Ok(())
}

fn contended_rate(per_thread: u64, f: impl Fn() + Send + Sync + 'static) -> f64 {
    let f = Arc::new(f);
    let mut samples: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let f = f.clone();
                    std::thread::spawn(move || {
                        for _ in 0..per_thread {
                            f();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            (2 * per_thread) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut samples)
}

pub fn contended(r: &mut Report) -> anyhow::Result<()> {
    const N: u64 = 500_000;
    let ip = Arc::new(ipckit::sync::Mutex::new(0u64));
    r.push(
        "ipckit Mutex",
        "pairs/s 2 threads",
        contended_rate(N, move || *ip.lock().unwrap() += 1),
        "1/s",
    );
    let st = Arc::new(std::sync::Mutex::new(0u64));
    r.push(
        "std::sync::Mutex",
        "pairs/s 2 threads",
        contended_rate(N, move || *st.lock().unwrap() += 1),
        "1/s",
    );
    let pl = Arc::new(parking_lot::Mutex::new(0u64));
    r.push(
        "parking_lot::Mutex",
        "pairs/s 2 threads",
        contended_rate(N, move || *pl.lock() += 1),
        "1/s",
    );
    Ok(())
}
