//! The three runners: a relay where runner 2 may start only after runner 1, and runner 3
//! only after runner 2 — ordering processes with semaphores.
//!
//! **Flawed** (one semaphore `go`, starting at 0): runner 1 runs, then signals `go` twice,
//! once "for runner 2" and once "for runner 3"; runners 2 and 3 both wait on `go`. But a
//! semaphore counts units, it does not address them: the two units release *both* waiting
//! runners at once, and runner 3 starts while runner 2 is still running. To make this show
//! every time, runner 1 waits at the start until both others stand at their marks (blocked
//! on `go`, as `GETNCNT` reports) before it runs.
//!
//! **Correct** (two semaphores, `baton12` and `baton23`, both 0): runner 1 runs, then
//! `V(baton12)`; runner 2 does `P(baton12)`, runs, `V(baton23)`; runner 3 does `P(baton23)`,
//! runs. Each semaphore carries one precedence edge, so the order holds whatever the
//! scheduler does.
//!
//! Each runner takes a ticket from a shared clock when it starts and when it finishes; the
//! parent reads the tickets and checks the order (the correct version fails with exit 2 if it
//! does not hold).

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail, ensure};
use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemOp, SemaphoreSet};
use ipckit::shm::Mapping;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which version to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Version {
    /// One semaphore signaled twice: runner 3 may start before runner 2 finishes
    Flawed,
    /// Two semaphores, one per hand-over: always 1, 2, 3
    Correct,
    /// The flawed one, then the correct one
    Both,
}

/// Options of the runners demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which version to run
    #[arg(long, value_enum, default_value_t = Version::Both)]
    pub variant: Version,
    /// How long each runner runs, in milliseconds
    #[arg(long, default_value_t = 50)]
    pub leg_ms: u64,
}

const KEY: Key = Key(0x7e1a);
const PATIENCE: Duration = Duration::from_secs(10);

/// The shared log: word 0 is the clock, then start and finish tickets of runners 1..=3.
fn log(m: &Mapping) -> anyhow::Result<&[AtomicU64]> {
    Ok(m.get_slice::<AtomicU64>(0, 7)?)
}

/// Runs the chosen version(s).
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    match a.variant {
        Version::Flawed => race_once(ctx, Version::Flawed, a.leg_ms).map(|_| ()),
        Version::Correct => race_once(ctx, Version::Correct, a.leg_ms).map(|_| ()),
        Version::Both => {
            race_once(ctx, Version::Flawed, a.leg_ms)?;
            println!();
            race_once(ctx, Version::Correct, a.leg_ms).map(|_| ())
        }
    }
}

/// One relay; returns whether the order 1, 2, 3 held.
pub fn race_once(ctx: &Context, version: Version, leg_ms: u64) -> anyhow::Result<bool> {
    let scratch = Scratch::new("runners")?;
    let dir = scratch.path("ns");
    let ns = Namespace::at(&dir)?;
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600)?;
    let logp = scratch.path("log");
    let m = Mapping::create(&logp, 64, 0o600)?;
    let name = if version == Version::Flawed { "flawed" } else { "correct" };
    match version {
        Version::Flawed => println!(
            "flawed: one semaphore `go`; runner 1 signals it twice, runners 2 and 3 both wait on it"
        ),
        _ => println!("correct: runner 1 -> baton12 -> runner 2 -> baton23 -> runner 3"),
    }
    let (d, l, leg) =
        (dir.to_str().context("path")?, logp.to_str().context("path")?, leg_ms.to_string());
    let kids = ["3", "2", "1"]
        .into_iter()
        .map(|i| child::spawn(ctx, "runner", &[d, l, name, i, &leg]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    child::wait_all(kids, Duration::from_secs(30))?;
    let t = log(&m)?;
    let (start, finish) = (
        |i: usize| t[2 * i - 1].load(Ordering::Relaxed),
        |i: usize| t[2 * i].load(Ordering::Relaxed),
    );
    let in_order = start(2) > finish(1) && start(3) > finish(2);
    drop(set);
    if in_order {
        println!("{name}: the order held: 1, then 2, then 3");
    } else if start(3) < finish(2) {
        println!(
            "{name}: ORDER VIOLATED: runner 3 started (ticket {}) before runner 2 finished (ticket {})",
            start(3),
            finish(2)
        );
    } else {
        println!("{name}: ORDER VIOLATED: runner 2 started before runner 1 finished");
    }
    if version == Version::Correct && !in_order {
        bail!("the two-semaphore relay broke its order");
    }
    if version == Version::Flawed && in_order {
        println!("flawed: (this time the flaw did not show)");
    }
    Ok(in_order)
}

/// Child: `NS LOG flawed|correct I LEG_MS` plays runner I.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let ns = Namespace::at(Path::new(args.first().context("namespace")?))?;
    let m = Mapping::open(Path::new(args.get(1).context("log")?))?;
    let flawed = args.get(2) == Some(&"flawed");
    let i: usize = arg(args, 3)?;
    let leg = Duration::from_millis(arg(args, 4)?);
    let set = SemaphoreSet::open(&ns, KEY)?;
    let t = log(&m)?;
    let p = |num: u16| -> anyhow::Result<()> {
        set.apply_timeout(&[SemOp::new(num, -1)], PATIENCE)
            .with_context(|| format!("runner {i} waited too long"))
    };
    let run_leg = || {
        t[2 * i - 1].store(t[0].fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        println!("  runner {i} starts");
        std::thread::sleep(leg);
        println!("  runner {i} finishes");
        t[2 * i].store(t[0].fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    };
    match (flawed, i) {
        (true, 1) => {
            // Wait until runners 2 and 3 both stand at their marks (blocked on `go`).
            let since = Instant::now();
            while set.waiting_for_increase(0)? < 2 {
                ensure!(since.elapsed() < PATIENCE, "runners 2 and 3 never got ready");
                std::thread::sleep(Duration::from_millis(1));
            }
            run_leg();
            set.apply(&[SemOp::new(0, 1)])?; // "for runner 2"
            set.apply(&[SemOp::new(0, 1)])?; // "for runner 3"
        }
        (true, _) => {
            p(0)?;
            run_leg();
        }
        (false, 1) => {
            run_leg();
            set.apply(&[SemOp::new(0, 1)])?;
        }
        (false, 2) => {
            p(0)?;
            run_leg();
            set.apply(&[SemOp::new(1, 1)])?;
        }
        (false, _) => {
            p(1)?;
            run_leg();
        }
    }
    Ok(())
}
