//! The readers-writers problem (Courtois, Heymans and Parnas 1971), shown as a timeline.
//!
//! Three reader processes read in an overlapping stream (each holds the lock for a while and
//! comes back almost at once, staggered so that some reader is always inside); two writer
//! processes arrive a little later. They share one process-shared [`RwLock`] in a mapping.
//! With `reader-preferred` the stream never lets the read count fall to zero and the writers
//! starve (bounded: they give up shortly before the end of the run); with `writer-preferred`
//! and `fair` a waiting writer holds back new readers and gets in as soon as the readers
//! already inside leave; `unordered` makes no promise. Every line is an event with the time
//! since the start, printed by the process it happened in.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail};
use ipckit::shm::Mapping;
use ipckit::sync::{Policy, RwLock};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// The lock's policy, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Readers enter whenever no writer holds the lock: writers can starve
    ReaderPreferred,
    /// A waiting writer blocks new readers: readers can starve
    WriterPreferred,
    /// Phase-fair: neither side starves
    Fair,
    /// No preference: whoever wins the race
    Unordered,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::ReaderPreferred => Policy::ReaderPreferred,
            PolicyArg::WriterPreferred => Policy::WriterPreferred,
            PolicyArg::Fair => Policy::Fair,
            PolicyArg::Unordered => Policy::Unordered,
        }
    }
}

/// Options of the readers-writers demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Who goes first when readers and writers both wait
    #[arg(long, value_enum, default_value_t = PolicyArg::Fair)]
    pub policy: PolicyArg,
    /// Length of the run in milliseconds, at least 500 (writers that have not got in shortly
    /// before the end give up)
    #[arg(long, default_value_t = 1000)]
    pub duration_ms: u64,
}

const READERS: usize = 3;
const WRITERS: usize = 2;
const WRITER_ARRIVALS_MS: [u64; WRITERS] = [100, 150];
const READ_HOLD: Duration = Duration::from_millis(80);
const READ_PAUSE: Duration = Duration::from_millis(3);
const WRITE_HOLD: Duration = Duration::from_millis(40);

// The stage in the shared mapping: byte offsets.
const LOCK: usize = 0; // RwLock<u64>: the number of writes
const START_NS: usize = 64; // AtomicU64: monotonic clock at the start
const END_NS: usize = 72; // AtomicU64: monotonic clock at the end
const INSIDE: usize = 80; // AtomicU32: bit i = reader i+1 inside, bit 8+j = writer j+1 inside
const SECTIONS: usize = 128; // [AtomicU64; READERS]: reader sections completed
const WAITED_NS: usize = 192; // [AtomicU64; WRITERS]: how long each writer waited
const GOT_IN: usize = 256; // [AtomicU32; WRITERS]: 1 if the writer got in

/// A process's view of the stage.
struct Stage {
    map: Mapping,
}

impl Stage {
    fn lock(&self) -> anyhow::Result<&RwLock<u64>> {
        Ok(self.map.get::<RwLock<u64>>(LOCK)?)
    }

    fn now(&self) -> anyhow::Result<Duration> {
        let start = self.map.get::<AtomicU64>(START_NS)?.load(Ordering::Relaxed);
        Ok(ipckit::sys::monotonic_now().saturating_sub(Duration::from_nanos(start)))
    }

    fn left(&self, before_end: Duration) -> anyhow::Result<Duration> {
        let end = Duration::from_nanos(self.map.get::<AtomicU64>(END_NS)?.load(Ordering::Relaxed));
        Ok(end.saturating_sub(before_end).saturating_sub(ipckit::sys::monotonic_now()))
    }

    /// Prints one event line; a closed stdout is ignored (the parent reports it).
    fn say(&self, what: &str) -> anyhow::Result<()> {
        let t = self.now()?.as_secs_f64();
        let _ = writeln!(std::io::stdout().lock(), "  {t:>7.3}s  {what}");
        Ok(())
    }

    fn inside(&self) -> anyhow::Result<&AtomicU32> {
        Ok(self.map.get::<AtomicU32>(INSIDE)?)
    }

    /// Marks `bit` inside and returns who is inside now.
    fn enter(&self, bit: u32) -> anyhow::Result<String> {
        let mask = self.inside()?.fetch_or(1 << bit, Ordering::Relaxed) | 1 << bit;
        let mut names = Vec::new();
        for i in 0..READERS as u32 {
            if mask & 1 << i != 0 {
                names.push(format!("R{}", i + 1));
            }
        }
        for j in 0..WRITERS as u32 {
            if mask & 1 << (8 + j) != 0 {
                names.push(format!("W{}", j + 1));
            }
        }
        Ok(names.join(" "))
    }

    fn leave(&self, bit: u32) -> anyhow::Result<()> {
        self.inside()?.fetch_and(!(1 << bit), Ordering::Relaxed);
        Ok(())
    }
}

/// Runs the demo: sets the stage, starts the processes, prints the summary.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let policy: Policy = a.policy.into();
    let scratch = Scratch::new("readers-writers")?;
    let path = scratch.path("stage");
    let map = Mapping::create(&path, 4096, 0o600)?;
    let stage = Stage { map };
    // Zeroed memory is an unlocked Fair lock; set the policy before anyone else opens it.
    stage.lock()?.raw().set_policy(policy);
    let start = ipckit::sys::monotonic_now() + Duration::from_millis(50); // time to start up
    let end = start + Duration::from_millis(a.duration_ms.max(500));
    stage.map.get::<AtomicU64>(START_NS)?.store(start.as_nanos() as u64, Ordering::Relaxed);
    stage.map.get::<AtomicU64>(END_NS)?.store(end.as_nanos() as u64, Ordering::Relaxed);
    writeln!(
        std::io::stdout().lock(),
        "readers-writers, policy {}: {READERS} reader processes in an overlapping stream (each \
         reads {READ_HOLD:?}), {WRITERS} writer processes arriving at 0.100s and 0.150s (each \
         writes {WRITE_HOLD:?}), one process-shared RwLock",
        policy.name(),
    )?;
    let p = path.to_str().context("scratch path is not UTF-8")?;
    let mut kids = Vec::new();
    for i in 0..READERS {
        kids.push(child::spawn(ctx, "readers-writers", &[p, "reader", &i.to_string()])?);
    }
    for j in 0..WRITERS {
        kids.push(child::spawn(ctx, "readers-writers", &[p, "writer", &j.to_string()])?);
    }
    child::wait_all(kids, Duration::from_millis(a.duration_ms) + Duration::from_secs(20))?;

    let sections: u64 = stage
        .map
        .get_slice::<AtomicU64>(SECTIONS, READERS)?
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .sum();
    let waited = stage.map.get_slice::<AtomicU64>(WAITED_NS, WRITERS)?;
    let got_in = stage.map.get_slice::<AtomicU32>(GOT_IN, WRITERS)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nsummary ({}):", policy.name())?;
    writeln!(out, "  reader sections completed: {sections}")?;
    let mut starved = 0;
    for j in 0..WRITERS {
        let w = Duration::from_nanos(waited[j].load(Ordering::Relaxed)).as_secs_f64();
        if got_in[j].load(Ordering::Relaxed) == 1 {
            writeln!(out, "  W{} waited {w:.3}s, then wrote", j + 1)?;
        } else {
            starved += 1;
            writeln!(
                out,
                "  W{} STARVED: never got in within {w:.3}s of waiting (readers kept the lock)",
                j + 1
            )?;
        }
    }
    let verdict = match policy {
        Policy::ReaderPreferred => {
            "readers first: while any reader is inside, new readers enter, so an overlapping \
             stream of readers starves the writers"
        }
        Policy::WriterPreferred => {
            "writers first: a waiting writer holds back new readers; a stream of writers would \
             starve the readers instead"
        }
        Policy::Fair => {
            "phase-fair: a waiting writer holds back new readers, and the readers it held back \
             all enter together when it leaves: nobody starves"
        }
        Policy::Unordered => {
            "no preference: readers keep entering beside readers, so here the writers may \
             starve too; nothing is promised"
        }
    };
    writeln!(out, "  {verdict}")?;
    let writes = *stage.lock()?.read();
    if writes != (WRITERS - starved) as u64 {
        bail!("{writes} writes recorded, {} writers got in: a write got lost", WRITERS - starved);
    }
    if starved > 0 && matches!(policy, Policy::Fair | Policy::WriterPreferred) {
        bail!("a writer starved under the {} policy", policy.name());
    }
    Ok(())
}

/// Child: `PATH reader|writer INDEX`.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let map = Mapping::open(Path::new(args.first().context("path")?))?;
    let stage = Stage { map };
    let i: usize = arg(args, 2)?;
    // Wait for the common start.
    let start = stage.map.get::<AtomicU64>(START_NS)?.load(Ordering::Relaxed);
    let now = ipckit::sys::monotonic_now().as_nanos() as u64;
    std::thread::sleep(Duration::from_nanos(start.saturating_sub(now)));
    match args.get(1).copied() {
        Some("reader") if i < READERS => reader(&stage, i),
        Some("writer") if i < WRITERS => writer(&stage, i),
        other => bail!("unknown readers-writers role {other:?} {i}"),
    }
}

/// A reader: read, hold, leave, pause briefly, again, until the end of the run.
fn reader(stage: &Stage, i: usize) -> anyhow::Result<()> {
    let me = format!("R{}", i + 1);
    let lock = stage.lock()?;
    // Stagger the readers so that their sections overlap.
    std::thread::sleep(Duration::from_millis(20 * i as u64));
    let mut sections = 0;
    while !stage.left(READ_HOLD)?.is_zero() {
        let g = match lock.try_read() {
            Ok(g) => g,
            Err(_) => {
                stage.say(&format!("{me} waits to read"))?;
                let t = stage.now()?;
                match lock.read_timeout(stage.left(Duration::ZERO)?) {
                    Ok(g) => {
                        let waited = (stage.now()? - t).as_secs_f64();
                        stage.say(&format!("{me} stops waiting after {waited:.3}s"))?;
                        g
                    }
                    Err(_) => break,
                }
            }
        };
        let inside = stage.enter(i as u32)?;
        stage.say(&format!("{me} reads            inside: {inside}"))?;
        std::thread::sleep(READ_HOLD);
        stage.leave(i as u32)?;
        drop(g);
        sections += 1;
        std::thread::sleep(READ_PAUSE);
    }
    stage.map.get_slice::<AtomicU64>(SECTIONS, READERS)?[i].store(sections, Ordering::Relaxed);
    Ok(())
}

/// A writer: arrives, waits for the lock until shortly before the end, writes once.
fn writer(stage: &Stage, j: usize) -> anyhow::Result<()> {
    let me = format!("W{}", j + 1);
    let lock = stage.lock()?;
    std::thread::sleep(Duration::from_millis(WRITER_ARRIVALS_MS[j]));
    let t = stage.now()?;
    let readers = lock.raw().state().readers;
    stage.say(&format!("{me} wants to write   (readers inside: {readers})"))?;
    // Writers give up a little before the readers stop, so that the end of the reader
    // stream is not mistaken for fairness.
    let got = lock.write_timeout(stage.left(2 * READ_HOLD)?);
    let waited = stage.now()? - t;
    stage.map.get_slice::<AtomicU64>(WAITED_NS, WRITERS)?[j]
        .store(waited.as_nanos() as u64, Ordering::Relaxed);
    match got {
        Ok(mut g) => {
            let bit = 8 + j as u32;
            let inside = stage.enter(bit)?;
            let w = waited.as_secs_f64();
            stage.say(&format!("{me} WRITES after waiting {w:.3}s   inside: {inside}"))?;
            *g += 1;
            std::thread::sleep(WRITE_HOLD);
            stage.leave(bit)?;
            stage.map.get_slice::<AtomicU32>(GOT_IN, WRITERS)?[j].store(1, Ordering::Relaxed);
            drop(g);
            stage.say(&format!("{me} leaves"))?;
        }
        Err(_) => stage.say(&format!("{me} gives up after {:.3}s", waited.as_secs_f64()))?,
    }
    Ok(())
}
