//! The race on `counter++`: several processes increment one counter in shared memory.
//!
//! `counter++` is a load, an add and a store. Without mutual exclusion two processes can load
//! the same value and one increment is lost (a race condition). Inside a critical section
//! guarded by ipckit's robust [`Mutex`] the final count is exact.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail};
use ipckit::shm::Mapping;
use ipckit::sync::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the processes protect the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protection {
    /// No protection: updates get lost
    None,
    /// A robust process-shared mutex around the counter
    Mutex,
}

/// Options of the counter demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Processes
    #[arg(long, default_value_t = 4)]
    pub processes: u32,
    /// Increments per process
    #[arg(long, default_value_t = 100_000)]
    pub increments: u64,
    /// Protection of the critical section
    #[arg(long, value_enum, default_value_t = Protection::Mutex)]
    pub lock: Protection,
}

const RACY: usize = 0;
const LOCKED: usize = 64;

/// Parent: starts the processes and checks the count.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let scratch = Scratch::new("counter")?;
    let path = scratch.path("counter");
    let m = Mapping::create(&path, 4096, 0o600)?;
    let p = path.to_str().context("path")?;
    let mode = match a.lock {
        Protection::None => "none",
        Protection::Mutex => "mutex",
    };
    let start = Instant::now();
    let n = a.increments.to_string();
    let kids = (0..a.processes)
        .map(|_| child::spawn(ctx, "counter", &[p, mode, &n]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    child::wait_all(kids, Duration::from_secs(60))?;
    let expected = a.processes as u64 * a.increments;
    let got = match a.lock {
        Protection::None => m.get::<AtomicU64>(RACY)?.load(Ordering::Relaxed),
        Protection::Mutex => {
            *m.get::<Mutex<u64>>(LOCKED)?.lock().map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    println!(
        "{} processes x {} increments ({mode}): counter = {got}, expected {expected}, {} lost, {:.0?}",
        a.processes,
        a.increments,
        expected - got.min(expected),
        start.elapsed()
    );
    if a.lock == Protection::Mutex && got != expected {
        bail!("the mutex let {} increments get lost", expected - got.min(expected));
    }
    Ok(())
}

/// Child: `PATH none|mutex N`.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let m = Mapping::open(Path::new(args.first().context("path")?))?;
    let n: u64 = arg(args, 2)?;
    match args.get(1).copied() {
        Some("none") => {
            let c = m.get::<AtomicU64>(RACY)?;
            for _ in 0..n {
                // Deliberately not atomic: load, add, store — the race of the course.
                let v = c.load(Ordering::Relaxed);
                std::hint::spin_loop();
                c.store(v + 1, Ordering::Relaxed);
            }
        }
        Some("mutex") => {
            let c = m.get::<Mutex<u64>>(LOCKED)?;
            for _ in 0..n {
                *c.lock().map_err(|e| anyhow::anyhow!("{e}"))? += 1;
            }
        }
        other => bail!("unknown counter mode {other:?}"),
    }
    Ok(())
}
