//! Ping-pong: strict alternation between two processes with two semaphores.
//!
//! `ping` starts at 1 and `pong` at 0. The parent loops `P(ping); print "Ping"; V(pong)`, the
//! child `P(pong); print "Pong"; V(ping)`: each may print only after the other has, so the
//! lines alternate whatever the scheduler does.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, ensure};
use ipckit::shm::Mapping;
use ipckit::sync::Semaphore;
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

#[repr(C)]
struct Table {
    ping: Semaphore,
    pong: Semaphore,
}

fn table(m: &Mapping) -> anyhow::Result<(&Semaphore, &Semaphore)> {
    Ok((m.get::<Semaphore>(0)?, m.get::<Semaphore>(size_of::<Semaphore>())?))
}

/// Parent: plays "Ping".
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let scratch = Scratch::new("pingpong")?;
    let path = scratch.path("table");
    let m = Mapping::create(&path, size_of::<Table>(), 0o600)?;
    let (ping, pong) = table(&m)?;
    ping.v()?;
    let rounds = a.rounds.to_string();
    let kid = child::spawn(ctx, "pingpong", &[path.to_str().context("path")?, &rounds])?;
    let out = std::io::stdout();
    for _ in 0..a.rounds {
        ensure!(ping.p_timeout(Duration::from_secs(10)), "the Pong process stopped answering");
        writeln!(out.lock(), "Ping")?;
        pong.v()?;
    }
    child::wait_all(vec![kid], Duration::from_secs(10))?;
    Ok(())
}

/// Child: plays "Pong".
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let m = Mapping::open(Path::new(args.first().context("path")?))?;
    let rounds: u32 = arg(args, 1)?;
    let (ping, pong) = table(&m)?;
    let out = std::io::stdout();
    for _ in 0..rounds {
        ensure!(pong.p_timeout(Duration::from_secs(10)), "the Ping process stopped answering");
        writeln!(out.lock(), "Pong")?;
        ping.v()?;
    }
    Ok(())
}
