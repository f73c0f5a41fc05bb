//! The dining philosophers (Dijkstra 1965), as five processes with semaphores as forks.
//!
//! Fork `i` is semaphore `i` of a set (value 1). Philosopher `i` takes fork `i` (left) and
//! then fork `i+1 mod 5` (right), each with `UNDO` so that the set knows who holds which
//! fork. If all five take their left fork first, each waits for a fork its neighbour holds:
//! a cycle, hence a deadlock. A gate (semaphore 5, wait-for-zero) makes all five take their
//! left fork before anyone reaches right, so the deadlock happens every time. The demo then
//! asks the live detector ([`ipckit::deadlock::live`]) what it sees, prints the cycle, kills
//! the philosophers (undo gives the forks back), and runs the classic cure: every
//! philosopher takes the lower-numbered fork first, which breaks the circular wait.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail, ensure};
use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemFlags, SemOp, SemaphoreSet};
use std::time::{Duration, Instant};

/// Options of the philosophers demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Meals each philosopher eats in the deadlock-free version
    #[arg(long, default_value_t = 3)]
    pub meals: u32,
}

const N: usize = 5;
const GATE: u16 = N as u16;
const KEY: Key = Key(0xf00d);
const PATIENCE: Duration = Duration::from_secs(20);

fn take(num: usize) -> SemOp {
    SemOp::new(num as u16, -1).with(SemFlags::UNDO)
}

fn put(num: usize) -> SemOp {
    SemOp::new(num as u16, 1).with(SemFlags::UNDO)
}

/// Runs both versions; fails if the first does not deadlock or the second does. Works in a
/// private namespace of its own, whatever `--dir` says.
pub fn run(_ctx: &Context, a: Args) -> anyhow::Result<()> {
    let scratch = Scratch::new("philosophers")?;
    let dir = scratch.path("ns");
    let ns = Namespace::at(&dir)?;
    let here = Context { dir: Some(dir.clone()) };
    let d = dir.to_str().context("path")?;

    println!("1. each philosopher takes the left fork, then the right one");
    let set = SemaphoreSet::create(&ns, KEY, N + 1, 0o600)?;
    set.set_all(&[1, 1, 1, 1, 1, N as i32])?;
    let mut kids = (0..N)
        .map(|i| child::spawn(&here, "philosopher", &[d, "naive", &i.to_string(), "0"]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deadline = Instant::now() + PATIENCE;
    let report = loop {
        let r = ipckit::deadlock::live::live(&ns)?;
        if r.deadlocked.len() == N || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    ensure!(report.deadlocked.len() == N, "expected all {N} philosophers deadlocked: {report:?}");
    println!("$ ipckit deadlock live");
    for p in &report.processes {
        let holds: Vec<String> = report
            .holds
            .iter()
            .filter(|e| e.pid == p.pid)
            .map(|e| e.resource.to_string())
            .collect();
        let waits: Vec<String> = report
            .waits
            .iter()
            .filter(|e| e.pid == p.pid)
            .map(|e| e.resource.to_string())
            .collect();
        println!("  P{} holds {} and waits for {}", p.pid, holds.join(", "), waits.join(", "));
    }
    for c in &report.cycles {
        println!("  cycle: {}", c.join(" -> "));
    }
    println!("  deadlock: all {N} philosophers. Killed; undo gave the forks back.");
    ensure!(set.get_all()?[..N] == [1; N], "undo did not return every fork");
    set.remove()?;

    println!("\n2. each philosopher takes the lower-numbered fork first (no circular wait)");
    let set = SemaphoreSet::create(&ns, KEY, N + 1, 0o600)?;
    set.set_all(&[1, 1, 1, 1, 1, 0])?;
    let meals = a.meals.to_string();
    let kids = (0..N)
        .map(|i| child::spawn(&here, "philosopher", &[d, "ordered", &i.to_string(), &meals]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    child::wait_all(kids, PATIENCE)?;
    ensure!(set.get_all()?[..N] == [1; N], "a fork went missing");
    println!("  every philosopher ate {} times; no deadlock", a.meals);
    set.remove()?;
    Ok(())
}

/// Child: `DIR naive|ordered I MEALS`.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let ns = Namespace::at(std::path::Path::new(args.first().context("dir")?))?;
    let set = SemaphoreSet::open(&ns, KEY)?;
    let i: usize = arg(args, 2)?;
    let (left, right) = (i, (i + 1) % N);
    match args.get(1).copied() {
        Some("naive") => {
            set.apply(&[take(left)])?;
            // The gate: count down, then wait until all five hold their left fork.
            set.apply(&[SemOp::new(GATE, -1)])?;
            set.apply_timeout(&[SemOp::new(GATE, 0)], PATIENCE)?;
            // Reach for the right fork: held by the neighbour, who waits too.
            set.apply_timeout(&[take(right)], PATIENCE * 3)?;
            bail!("philosopher {i} got both forks: there was no deadlock");
        }
        Some("ordered") => {
            let meals: u32 = arg(args, 3)?;
            let (first, second) = (left.min(right), left.max(right));
            for meal in 1..=meals {
                set.apply_timeout(&[take(first)], PATIENCE)?;
                set.apply_timeout(&[take(second)], PATIENCE)?;
                println!("  philosopher {i} eats (meal {meal}) with forks {first} and {second}");
                std::thread::sleep(Duration::from_millis(2));
                set.apply(&[put(second), put(first)])?;
            }
        }
        other => bail!("unknown philosopher mode {other:?}"),
    }
    Ok(())
}
