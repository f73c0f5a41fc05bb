//! A named pipe (FIFO) between two unrelated processes.
//!
//! The parent makes a FIFO in a scratch directory and starts two processes that share nothing
//! but its path name: a writer (`ipckit __child fifo-writer PATH N`) and a reader
//! (`ipckit __child fifo-reader PATH N`). Each opens its end by name; the open blocks until
//! the other side has opened too (both use a timeout here). Before that, the parent shows
//! that a non-blocking open of the write end with no reader fails with `ENXIO`. The FIFO's
//! name outlives both processes; the parent removes it at the end.

use super::{Scratch, arg};
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, bail, ensure};
use ipckit::net::Framed;
use ipckit::pipe::{NamedPipe, PipeError};
use ipckit::transport::Sender;
use std::path::Path;
use std::time::Duration;

/// Options of the FIFO demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Messages the writer sends
    #[arg(long, default_value_t = 5)]
    pub messages: u32,
}

const LIMIT: Duration = Duration::from_secs(10);

fn message(i: u32) -> String {
    format!("message {i} through the FIFO")
}

/// Parent: makes the FIFO and starts the two processes.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let scratch = Scratch::new("fifo")?;
    let path = scratch.path("fifo");
    let fifo = NamedPipe::create(&path, 0o600)?;
    println!("parent: made the FIFO {}", path.display());
    match fifo.try_open_writer() {
        Err(PipeError::NoReader) => {
            println!(
                "parent: non-blocking open for writing, no reader yet: {}",
                PipeError::NoReader
            )
        }
        Ok(_) => bail!("a non-blocking open of the write end succeeded without a reader"),
        Err(e) => return Err(e.into()),
    }
    let p = path.to_str().context("scratch path is not UTF-8")?;
    let n = a.messages.to_string();
    let writer = child::spawn(ctx, "fifo-writer", &[p, &n])?;
    let reader = child::spawn(ctx, "fifo-reader", &[p, &n])?;
    child::wait_all(vec![writer, reader], LIMIT)?;
    ensure!(NamedPipe::at(&path).is_ok(), "the FIFO's name should outlive its processes");
    println!("parent: both processes exited; the FIFO's name is still there; removing it");
    fifo.remove()?;
    Ok(())
}

/// Child: opens the write end by name and sends the messages.
pub fn writer(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let fifo = NamedPipe::at(Path::new(args.first().context("path")?))?;
    let n: u32 = arg(args, 1)?;
    let me = std::process::id();
    let w = fifo.open_writer_timeout(LIMIT).context("no reader opened the FIFO")?;
    println!("writer {me}: opened the write end");
    let mut tx = Framed::new(w)?;
    for i in 0..n {
        tx.send_timeout(message(i).as_bytes(), LIMIT)?;
    }
    println!("writer {me}: sent {n} messages, closing");
    Ok(())
}

/// Child: opens the read end by name and reads until end of file.
pub fn reader(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let fifo = NamedPipe::at(Path::new(args.first().context("path")?))?;
    let expect: u32 = arg(args, 1)?;
    let me = std::process::id();
    let r = fifo.open_reader_timeout(LIMIT).context("no writer opened the FIFO")?;
    println!("reader {me}: opened the read end");
    let mut rx = Framed::new(r)?;
    super::pipe::read_until_end(&mut rx, &format!("reader {me}"), expect, message)
}
