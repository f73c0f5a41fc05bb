//! An anonymous pipe from a parent to its child, as in the course.
//!
//! The parent makes a pipe, marks its read end inheritable and starts a child (this binary,
//! re-executed as `ipckit __child pipe FD N`) that finds the read end under descriptor number
//! `FD`. The parent closes its own copy of the read end, writes `N` framed messages into the
//! write end and closes it; the child reads them and then sees end of file. Only a process
//! that inherits the descriptor can use the pipe: it has no name.

use super::arg;
use crate::Context;
use crate::cmd::child;
use anyhow::{Context as _, ensure};
use ipckit::net::Framed;
use ipckit::pipe::{Pipe, PipeReader};
use ipckit::transport::{Receiver, Sender, TransportError};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Options of the pipe demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Messages the parent sends
    #[arg(long, default_value_t = 5)]
    pub messages: u32,
}

const LIMIT: Duration = Duration::from_secs(10);

fn message(i: u32) -> String {
    format!("message {i} from the parent")
}

/// Parent: writes into the pipe.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let Pipe { reader, writer } = Pipe::new()?;
    println!(
        "parent {}: pipe made (capacity {} bytes); read end is descriptor {}",
        std::process::id(),
        writer.capacity()?,
        reader.as_raw_fd()
    );
    // Close-on-exec by default: let this one end through to the child.
    reader.set_inheritable(true)?;
    let fd = reader.as_raw_fd().to_string();
    let kid = child::spawn(ctx, "pipe", &[&fd, &a.messages.to_string()])?;
    // The child holds the read end now; ours would keep the pipe open for reading after the
    // child died, and a writer would then block instead of getting EPIPE.
    drop(reader);
    let mut tx = Framed::new(writer)?;
    for i in 0..a.messages {
        tx.send_timeout(message(i).as_bytes(), LIMIT).context("the child stopped reading")?;
    }
    println!("parent: sent {} messages, closing the write end", a.messages);
    drop(tx); // end of file for the child
    child::wait_all(vec![kid], LIMIT)?;
    println!("parent: the child read everything and exited");
    Ok(())
}

/// Child: reads from the inherited read end.
pub fn child(_ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let fd: i32 = arg(args, 0)?;
    let expect: u32 = arg(args, 1)?;
    ensure!(fd > 2, "descriptor {fd} is a standard stream, not the pipe");
    // SAFETY: the parent made descriptor `fd` inheritable for us and passed its number; nothing
    // in this process opened it or owns it (it is not a standard stream, checked above), so
    // taking ownership here is the only claim on it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let reader = PipeReader::try_from(owned).context("the inherited descriptor")?;
    let mut rx = Framed::new(reader)?;
    read_until_end(&mut rx, &format!("child {}", std::process::id()), expect, message)
}

/// Reads framed messages until the writer closes, checking that message `i` is
/// `message(i)` and that `expect` arrived; narrates as `who`. Shared by the pipe and FIFO
/// demos, whose readers differ only in how they got the read end.
pub(super) fn read_until_end(
    rx: &mut impl Receiver,
    who: &str,
    expect: u32,
    message: fn(u32) -> String,
) -> anyhow::Result<()> {
    let mut got = 0;
    loop {
        match rx.recv_timeout(LIMIT) {
            Ok(m) => {
                let text = String::from_utf8_lossy(&m);
                ensure!(text == message(got), "message {got} arrived as {text:?}");
                println!("{who}: read {text:?}");
                got += 1;
            }
            Err(TransportError::Closed) => break,
            Err(e) => return Err(e).context("reading"),
        }
    }
    ensure!(got == expect, "expected {expect} messages, got {got}");
    println!("{who}: end of file after {got} messages");
    Ok(())
}
