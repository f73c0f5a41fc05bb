//! Test-and-set next to test-and-test-and-set: what waiting costs.
//!
//! Several threads take one spinlock in turn to increment a counter. A test-and-set (TAS)
//! waiter issues an atomic read-modify-write (RMW) on every attempt, and each one drags the
//! lock's cache line away from whoever holds it. A test-and-test-and-set (TTAS) waiter
//! watches the line with plain loads (served from its own cache) and tries the
//! compare-and-swap only when the lock looks free: the load filters, the CAS decides. The
//! demo counts the RMW instructions each lock issued and times the run; the counter must be
//! exact for both.

use crate::Context;
use anyhow::bail;
use ipckit::sync::{RawLock, TasLock, TtasLock};
use std::io::Write;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of the spinlock demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Threads contending for the lock [default: the number of CPUs, at least 2]
    #[arg(long)]
    pub threads: Option<u32>,
    /// Acquisitions per thread
    #[arg(long, default_value_t = 100_000)]
    pub acquisitions: u64,
}

/// What one run measured.
struct Run {
    rmw: u64,
    elapsed: Duration,
    count: u64,
}

/// `lock` returns the RMWs it issued; `unlock` releases.
fn contend(
    threads: u32,
    n: u64,
    lock: &(dyn Fn() -> u32 + Sync),
    unlock: &(dyn Fn() + Sync),
) -> Run {
    let counter = AtomicU64::new(0);
    let rmw = AtomicU64::new(0);
    let go = Barrier::new(threads as usize + 1);
    let mut start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = 0u64;
                go.wait();
                for _ in 0..n {
                    mine += lock() as u64;
                    // The critical section: a deliberately non-atomic increment, stretched
                    // a little so that the others find the lock taken.
                    let v = counter.load(Ordering::Relaxed);
                    for _ in 0..20 {
                        std::hint::spin_loop();
                    }
                    counter.store(v + 1, Ordering::Relaxed);
                    unlock();
                }
                rmw.fetch_add(mine, Ordering::Relaxed);
            });
        }
        go.wait();
        start = Instant::now();
    });
    Run { rmw: rmw.into_inner(), elapsed: start.elapsed(), count: counter.into_inner() }
}

/// Runs the demo.
pub fn run(_ctx: &Context, a: Args) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = a.threads.unwrap_or(cpus.max(2) as u32).clamp(1, 64);
    let n = a.acquisitions.max(1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{threads} threads x {n} acquisitions of one spinlock, {cpus} CPUs\n")?;
    drop(out);
    let tas = TasLock::new();
    let ttas = TtasLock::new();
    let runs = [
        (
            "TAS  (swap until it returns 0)",
            contend(threads, n, &|| tas.lock_counting_rmw(), &|| {
                // SAFETY: `lock_counting_rmw` just acquired it on this thread.
                unsafe { tas.unlock() }
            }),
        ),
        (
            "TTAS (load while locked, then CAS)",
            contend(threads, n, &|| ttas.lock_counting_rmw(), &|| {
                // SAFETY: as above.
                unsafe { ttas.unlock() }
            }),
        ),
    ];
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<36} {:>12} {:>14} {:>12} {:>10}",
        "lock", "acquisitions", "atomic RMWs", "RMW/acquire", "time"
    )?;
    let total = threads as u64 * n;
    for (name, r) in &runs {
        writeln!(
            out,
            "{name:<36} {total:>12} {:>14} {:>12.2} {:>9.1?}",
            r.rmw,
            r.rmw as f64 / total as f64,
            r.elapsed
        )?;
    }
    writeln!(
        out,
        "\nEvery TAS retry is a read-modify-write that takes the cache line exclusively, even \
         while the lock is held;\nTTAS retries only when a plain load saw the lock free, so \
         nearly every RMW succeeds. (Both back off and yield while waiting; with one CPU, or \
         threads that never meet, both issue one RMW per acquisition.)"
    )?;
    for (name, r) in &runs {
        if r.count != total {
            bail!("{name}: counter {} != {total}: mutual exclusion broken", r.count);
        }
    }
    Ok(())
}
