//! Ping-pong: strict alternation between two processes with a semaphore set of two.
//!
//! Semaphore 0 (`PING`) starts at 1 and semaphore 1 (`PONG`) at 0, in a
//! [`SemaphoreSet`] in the demo's private namespace. The parent loops
//! `P(ping); print "Ping"; V(pong)`, the child `P(pong); print "Pong"; V(ping)`: each may
//! print only after the other has, so the lines alternate whatever the scheduler does.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, ensure};
use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemOp, SemaphoreSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Options of the ping-pong demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rounds to play
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
}

const KEY: Key = Key(0x9149);
const PING: u16 = 0;
const PONG: u16 = 1;
const PATIENCE: Duration = Duration::from_secs(10);

/// Parent: plays "Ping".
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let scratch = Scratch::new("pingpong")?;
    let dir = scratch.path("ns");
    let ns = Namespace::at(&dir)?;
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600)?;
    set.set_all(&[1, 0])?;
    let rounds = a.rounds.to_string();
    let kid = child::spawn(ctx, "pingpong", &[dir.to_str().context("path")?, &rounds])?;
    let out = std::io::stdout();
    for _ in 0..a.rounds {
        let r = set.apply_timeout(&[SemOp::new(PING, -1)], PATIENCE);
        ensure!(r.is_ok(), "the Pong process stopped answering: {r:?}");
        writeln!(out.lock(), "Ping")?;
        set.apply(&[SemOp::new(PONG, 1)])?;
    }
    child::wait_all(vec![kid], PATIENCE)?;
    Ok(())
}

/// Child: plays "Pong".
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let ns = Namespace::at(Path::new(args.first().context("namespace")?))?;
    let rounds: u32 = arg(args, 1)?;
    let set = SemaphoreSet::open(&ns, KEY)?;
    let out = std::io::stdout();
    for _ in 0..rounds {
        let r = set.apply_timeout(&[SemOp::new(PONG, -1)], PATIENCE);
        ensure!(r.is_ok(), "the Ping process stopped answering: {r:?}");
        writeln!(out.lock(), "Pong")?;
        set.apply(&[SemOp::new(PING, 1)])?;
    }
    Ok(())
}
