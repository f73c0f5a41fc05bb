//! `ipckit demo NAME`: the classic problems, run with real processes.
//!
//! Each demo lives in its own module with a `run` for the parent and, where it starts child
//! processes, a `child` that [`super::child`] dispatches to. A demo checks its own invariant
//! (strict alternation, every item consumed once, ...) and fails (exit 2) if it does not
//! hold, so the tests can run the demos as they are.

pub mod counter;
pub mod fifo;
pub mod philosophers;
pub mod pingpong;
pub mod pipe;
pub mod prodcons;
pub mod race;
pub mod runners;
pub mod sockets;

use crate::Context;
use anyhow::Context as _;
use clap::{CommandFactory, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `ipckit demo`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    /// List the demos and exit
    #[arg(long)]
    list: bool,
    #[command(subcommand)]
    demo: Option<Demo>,
}

/// The demos.
#[derive(Debug, Subcommand)]
pub enum Demo {
    /// Five philosopher processes, forks as semaphores: deadlock found live, then the cure
    Philosophers(philosophers::Args),
    /// Two processes print "Ping" / "Pong" strictly alternating, with a semaphore set of two
    Pingpong(pingpong::Args),
    /// Producers and consumers in separate processes share a bounded buffer: empty, filled, mutex
    Prodcons(prodcons::Args),
    /// Processes increment one counter in shared memory: lost updates without a lock, none with
    Counter(counter::Args),
    /// A parent writes messages into an anonymous pipe; its child inherits the read end
    Pipe(pipe::Args),
    /// Two unrelated processes meet at a named pipe (FIFO) by its path
    Fifo(fifo::Args),
    /// The echo server and client over TCP and UDP, blocking and non-blocking
    Sockets(sockets::Args),
    /// The three runners: one semaphore lets runner 3 start before runner 2; two keep the order
    Runners(runners::Args),
    /// The print-spooler race: lost directory entries without a lock, none with a semaphore
    Race(race::Args),
}

/// Runs `ipckit demo`.
pub fn run(ctx: &Context, a: DemoArgs) -> anyhow::Result<ExitCode> {
    let Some(demo) = a.demo.filter(|_| !a.list) else {
        let cmd = DemoArgsCommand::command();
        for sub in cmd.get_subcommands() {
            let about = sub.get_about().map(|s| s.to_string()).unwrap_or_default();
            println!("{:<18} {}", sub.get_name(), about);
        }
        return Ok(ExitCode::SUCCESS);
    };
    match demo {
        Demo::Pingpong(a) => pingpong::run(ctx, a)?,
        Demo::Philosophers(a) => philosophers::run(ctx, a)?,
        Demo::Prodcons(a) => prodcons::run(ctx, a)?,
        Demo::Counter(a) => counter::run(ctx, a)?,
        Demo::Pipe(a) => pipe::run(ctx, a)?,
        Demo::Fifo(a) => fifo::run(ctx, a)?,
        Demo::Sockets(a) => sockets::run(ctx, a)?,
        Demo::Runners(a) => runners::run(ctx, a)?,
        Demo::Race(a) => {
            race::run(ctx, a)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Only for listing the demos' names and descriptions.
#[derive(Debug, clap::Parser)]
struct DemoArgsCommand {
    #[command(subcommand)]
    demo: Demo,
}

/// A private directory on tmpfs for a demo's shared files, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Makes the directory (under `/dev/shm` when it exists).
    pub fn new(name: &str) -> anyhow::Result<Scratch> {
        let base = Path::new("/dev/shm");
        let prefix = format!("ipckit-{name}-");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix);
        let dir = if base.is_dir() { b.tempdir_in(base) } else { b.tempdir() }
            .context("cannot make a scratch directory")?;
        Ok(Scratch { dir })
    }

    /// A path inside the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

/// Parses a child's argument `i` as `T`.
pub fn arg<T: std::str::FromStr>(args: &[&str], i: usize) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s = args.get(i).with_context(|| format!("child argument {i} missing"))?;
    s.parse().map_err(|e| anyhow::anyhow!("child argument {i} ({s:?}): {e}"))
}
