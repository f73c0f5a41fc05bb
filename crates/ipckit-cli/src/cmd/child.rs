//! Child processes of demos and of the tour.
//!
//! A demo that needs real processes re-executes this same binary as
//! `ipckit __child ROLE ARGS...`; [`run`] dispatches on `ROLE`. Children find the namespace
//! through `IPCKIT_DIR`, which [`command`] sets from the parent's context.

use crate::Context;
use anyhow::{Context as _, bail};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

/// Arguments of the hidden `__child` command.
#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    /// Which role to play.
    role: String,
    /// The role's own arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs the role named on the command line.
pub fn run(ctx: &Context, a: ChildArgs) -> anyhow::Result<ExitCode> {
    let args: Vec<&str> = a.args.iter().map(String::as_str).collect();
    match a.role.as_str() {
        "pingpong" => super::demo::pingpong::child(ctx, &args)?,
        "prodcons" => super::demo::prodcons::child(ctx, &args)?,
        "counter" => super::demo::counter::child(ctx, &args)?,
        "readers-writers" => super::demo::readers_writers::child(ctx, &args)?,
        "pipe" => super::demo::pipe::child(ctx, &args)?,
        "fifo-writer" => super::demo::fifo::writer(ctx, &args)?,
        "fifo-reader" => super::demo::fifo::reader(ctx, &args)?,
        "compare" => super::compare::child(ctx, &args)?,
        "philosopher" => super::demo::philosophers::child(ctx, &args)?,
        "lock-two" => super::deadlock::lock_two_child(ctx, &args)?,
        "runner" => super::demo::runners::child(ctx, &args)?,
        "race" => super::demo::race::child(ctx, &args)?,
        role @ ("mq-sender" | "mq-receiver") => super::mq::child(ctx, role, &args)?,
        other => bail!("unknown child role {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A `Command` that runs this binary (`ipckit ARGS...`) in the same namespace.
pub fn ipckit(ctx: &Context, args: &[&str]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the ipckit executable")?;
    let mut c = Command::new(exe);
    c.args(args);
    if let Some(dir) = &ctx.dir {
        c.env("IPCKIT_DIR", dir);
    }
    Ok(c)
}

/// A `Command` that runs this binary as `__child ROLE ARGS...` in the same namespace.
pub fn command(ctx: &Context, role: &str, args: &[&str]) -> anyhow::Result<Command> {
    let mut c = ipckit(ctx, &["__child", role])?;
    c.args(args);
    Ok(c)
}

/// Spawns `__child ROLE ARGS...`.
pub fn spawn(ctx: &Context, role: &str, args: &[&str]) -> anyhow::Result<Child> {
    command(ctx, role, args)?.spawn().with_context(|| format!("cannot start child {role}"))
}

/// Waits for every child, for at most `limit` in all; kills the rest and fails on timeout
/// or on any child's failure.
pub fn wait_all(children: Vec<Child>, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut failed = None;
    for mut c in children {
        loop {
            match c.try_wait()? {
                Some(status) => {
                    if !status.success() && failed.is_none() {
                        failed = Some(format!("child {} ended with {status}", c.id()));
                    }
                    break;
                }
                None if Instant::now() >= deadline => {
                    let _ = c.kill();
                    let _ = c.wait();
                    failed.get_or_insert_with(|| format!("child {} timed out", c.id()));
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
    match failed {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}
