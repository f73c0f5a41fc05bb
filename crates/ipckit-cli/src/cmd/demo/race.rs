//! The print-spooler race (the course's example of a race condition): processes append file
//! names to a shared spooler directory of slots, using the shared variable `in`, the next
//! free slot.
//!
//! ```text
//! next_free_slot = in;            // read
//! slot[next_free_slot] = my_file; // write the entry
//! in = next_free_slot + 1;        // publish
//! ```
//!
//! Two processes that interleave between the read and the publish pick the same slot: one
//! entry overwrites the other and is never printed. With the three lines inside a critical
//! section — here a [`SemaphoreSet`] of one semaphore, starting at 1, used as a mutex
//! (`P` = apply -1, `V` = apply +1, both with `UNDO` so a killed process cannot leave it
//! taken) — no entry is lost. The parent counts the distinct entries in the directory.
//!
//! The spoolers start together: a second semaphore of the set, starting at the number of
//! processes, is a start gate — each process takes one unit, then waits for zero.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail};
use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemFlags, SemOp, SemaphoreSet};
use ipckit::shm::Mapping;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the processes protect the spooler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protection {
    /// No protection: entries get lost
    None,
    /// A semaphore set of one, used as a mutex
    Semaphore,
    /// First without, then with the semaphore
    Both,
}

/// Options of the spooler race demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spooling processes
    #[arg(long, default_value_t = 2)]
    pub processes: u32,
    /// Entries each process appends
    #[arg(long, default_value_t = 20_000)]
    pub entries: u64,
    /// Protection of the critical section
    #[arg(long, value_enum, default_value_t = Protection::Both)]
    pub lock: Protection,
}

const KEY: Key = Key(0x5b001);

/// Runs the demo; returns the entries lost in the last run.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<u64> {
    match a.lock {
        Protection::Both => {
            spool(ctx, &a, false)?;
            spool(ctx, &a, true)
        }
        p => spool(ctx, &a, p == Protection::Semaphore),
    }
}

/// One run: spawns the spoolers and counts the entries that survived.
pub fn spool(ctx: &Context, a: &Args, locked: bool) -> anyhow::Result<u64> {
    let scratch = Scratch::new("race")?;
    let dir = scratch.path("ns");
    let ns = Namespace::at(&dir)?;
    // Semaphore 0: the mutex (1). Semaphore 1: the start gate (one unit per process).
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600)?;
    set.set_all(&[1, a.processes as i32])?;
    let total = a.processes as u64 * a.entries;
    let path = scratch.path("spooler");
    let m = Mapping::create(&path, 8 * (total as usize + 1), 0o600)?;
    let mode = if locked { "semaphore" } else { "none" };
    let (d, p, n) =
        (dir.to_str().context("path")?, path.to_str().context("path")?, a.entries.to_string());
    let start = Instant::now();
    let kids = (0..a.processes)
        .map(|i| child::spawn(ctx, "race", &[d, p, mode, &i.to_string(), &n]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    child::wait_all(kids, Duration::from_secs(60))?;
    let w = m.get_slice::<AtomicU64>(0, total as usize + 1)?;
    let used = (w[0].load(Ordering::Relaxed)).min(total) as usize;
    let present: HashSet<u64> =
        w[1..=used].iter().map(|s| s.load(Ordering::Relaxed)).filter(|&e| e != 0).collect();
    let lost = total - present.len() as u64;
    println!(
        "{} processes x {} entries ({mode}): in = {used}, {} distinct entries, {lost} lost, {:.0?}",
        a.processes,
        a.entries,
        present.len(),
        start.elapsed()
    );
    if locked && lost != 0 {
        bail!("the semaphore let {lost} spooler entries get lost");
    }
    Ok(lost)
}

/// Child: `NS SPOOLER none|semaphore I N` appends N entries `(I+1) << 32 | k`.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let ns = Namespace::at(Path::new(args.first().context("namespace")?))?;
    let m = Mapping::open(Path::new(args.get(1).context("spooler")?))?;
    let locked = args.get(2) == Some(&"semaphore");
    let me: u64 = arg(args, 3)?;
    let n: u64 = arg(args, 4)?;
    let slots = m.len() / 8 - 1;
    let w = m.get_slice::<AtomicU64>(0, slots + 1)?;
    let set = SemaphoreSet::open(&ns, KEY)?;
    let undo = SemFlags::UNDO;
    // The start gate, a barrier made of a wait-for-zero: check in, wait until all have.
    set.apply(&[SemOp::new(1, -1)])?;
    set.apply_timeout(&[SemOp::new(1, 0)], Duration::from_secs(10))?;
    for k in 1..=n {
        if locked {
            set.apply(&[SemOp::new(0, -1).with(undo)])?;
        }
        // Deliberately not atomic: read `in`, write the slot, publish `in + 1`.
        let next_free_slot = w[0].load(Ordering::Relaxed) as usize;
        for _ in 0..16 {
            std::hint::spin_loop(); // the time it takes to write a file name
        }
        if next_free_slot < slots {
            w[next_free_slot + 1].store(((me + 1) << 32) | k, Ordering::Relaxed);
        }
        w[0].store(next_free_slot as u64 + 1, Ordering::Relaxed);
        if locked {
            set.apply(&[SemOp::new(0, 1).with(undo)])?;
        }
    }
    Ok(())
}
