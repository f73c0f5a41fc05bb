//! The bounded buffer with three semaphores, across processes (Dijkstra's solution as the
//! course gives it): `empty` counts free slots (starts at N), `filled` counts full slots
//! (starts at 0), `mutex` (a binary semaphore, starts at 1) guards the ring indices.
//!
//! ```text
//! producer: P(empty); P(mutex); put item; V(mutex); V(filled)
//! consumer: P(filled); P(mutex); take item; V(mutex); V(empty)
//! ```
//!
//! Items are numbered 1..=items; consumers tick a per-item counter in shared memory, and the
//! parent checks at the end that every item was consumed exactly once. A 0 is the poison
//! pill that tells a consumer to stop.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail, ensure};
use ipckit::shm::{Mapping, ShmSafe};
use ipckit::sync::Semaphore;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of the producer/consumer demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Items to move through the buffer
    #[arg(long, default_value_t = 20_000)]
    pub items: u32,
    /// Producer processes
    #[arg(long, default_value_t = 2)]
    pub producers: u32,
    /// Consumer processes
    #[arg(long, default_value_t = 2)]
    pub consumers: u32,
    /// Print the running counts
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub progress: bool,
}

const SLOTS: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(20);

#[repr(C)]
struct Shared {
    empty: Semaphore,
    filled: Semaphore,
    mutex: Semaphore,
    next_in: AtomicU32,
    next_out: AtomicU32,
    produced: AtomicU32,
    consumed: AtomicU32,
    slots: [AtomicU64; SLOTS],
}

// SAFETY: repr(C) of ShmSafe semaphores and atomics; every bit pattern is valid (indices are
// taken modulo SLOTS); zeroed memory is a valid start; no Drop.
unsafe impl ShmSafe for Shared {}

fn layout(m: &Mapping, items: usize) -> anyhow::Result<(&Shared, &[AtomicU8])> {
    let shared = m.get::<Shared>(0)?;
    let seen = m.get_slice::<AtomicU8>(size_of::<Shared>(), items)?;
    Ok((shared, seen))
}

fn take(s: &Shared) -> anyhow::Result<u64> {
    ensure!(s.filled.p_timeout(TIMEOUT), "no item arrived for {TIMEOUT:?}");
    s.mutex.p();
    let i = s.next_out.load(Ordering::Relaxed) as usize % SLOTS;
    // Relaxed is enough: the mutex semaphore orders these accesses.
    let item = s.slots[i].load(Ordering::Relaxed);
    s.next_out.store(((i + 1) % SLOTS) as u32, Ordering::Relaxed);
    s.mutex.v()?;
    s.empty.v()?;
    Ok(item)
}

fn put(s: &Shared, item: u64) -> anyhow::Result<()> {
    ensure!(s.empty.p_timeout(TIMEOUT), "no slot freed for {TIMEOUT:?}");
    s.mutex.p();
    let i = s.next_in.load(Ordering::Relaxed) as usize % SLOTS;
    s.slots[i].store(item, Ordering::Relaxed);
    s.next_in.store(((i + 1) % SLOTS) as u32, Ordering::Relaxed);
    s.mutex.v()?;
    s.filled.v()?;
    Ok(())
}

/// Parent: starts the producers and consumers, reports progress, checks the result.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    ensure!(a.items >= 1 && a.producers >= 1 && a.consumers >= 1, "need at least one of each");
    let scratch = Scratch::new("prodcons")?;
    let path = scratch.path("buffer");
    let m = Mapping::create(&path, size_of::<Shared>() + a.items as usize, 0o600)?;
    let (s, seen) = layout(&m, a.items as usize)?;
    s.empty.v_n(SLOTS as u32)?;
    s.mutex.v()?;
    let p = path.to_str().context("path")?;
    println!(
        "{} producers and {} consumers move {} items through {SLOTS} slots",
        a.producers, a.consumers, a.items
    );
    let items = a.items.to_string();
    let mut consumers = Vec::new();
    for _ in 0..a.consumers {
        consumers.push(child::spawn(ctx, "prodcons", &[p, "consume", &items, "0", "0"])?);
    }
    let mut producers = Vec::new();
    let per = a.items.div_ceil(a.producers);
    for k in 0..a.producers {
        let first = (k * per + 1).min(a.items + 1);
        let last = ((k + 1) * per).min(a.items);
        producers.push(child::spawn(
            ctx,
            "prodcons",
            &[p, "produce", &items, &first.to_string(), &last.to_string()],
        )?);
    }
    let start = Instant::now();
    let mut last_report = Instant::now();
    while s.consumed.load(Ordering::Relaxed) < a.items && start.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(5));
        if a.progress && last_report.elapsed() >= Duration::from_millis(100) {
            last_report = Instant::now();
            println!(
                "  produced {:>7}  consumed {:>7}  buffer {}/{SLOTS}",
                s.produced.load(Ordering::Relaxed),
                s.consumed.load(Ordering::Relaxed),
                s.filled.count()
            );
        }
    }
    child::wait_all(producers, TIMEOUT)?;
    for _ in 0..a.consumers {
        put(s, 0)?; // one poison pill per consumer
    }
    child::wait_all(consumers, TIMEOUT)?;
    let wrong: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, c)| c.load(Ordering::Relaxed) != 1)
        .map(|(i, _)| i + 1)
        .collect();
    if !wrong.is_empty() {
        bail!("{} items not consumed exactly once (first: item {})", wrong.len(), wrong[0]);
    }
    println!(
        "done in {:.0?}: {} items produced, {} consumed, each exactly once",
        start.elapsed(),
        s.produced.load(Ordering::Relaxed),
        s.consumed.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Child: `PATH produce ITEMS FIRST LAST` or `PATH consume ITEMS 0 0`.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let m = Mapping::open(Path::new(args.first().context("path")?))?;
    let items: usize = arg(args, 2)?;
    let (s, seen) = layout(&m, items)?;
    match args.get(1).copied() {
        Some("produce") => {
            let (first, last): (u64, u64) = (arg(args, 3)?, arg(args, 4)?);
            for item in first..=last {
                put(s, item)?;
                s.produced.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some("consume") => loop {
            let item = take(s)?;
            if item == 0 {
                break;
            }
            let slot = seen.get(item as usize - 1).context("item number out of range")?;
            slot.fetch_add(1, Ordering::Relaxed);
            s.consumed.fetch_add(1, Ordering::Relaxed);
        },
        other => bail!("unknown prodcons role {other:?}"),
    }
    Ok(())
}
