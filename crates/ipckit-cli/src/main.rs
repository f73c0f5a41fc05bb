//! The `ipckit` command line: a thin layer over the `ipckit` library.
//!
//! Every command parses its arguments, calls the library, and prints a table or, with
//! `--json`, JSON. Exit codes (see [`exit`]): 0 success, 1 the thing asked for is absent or the
//! operation would block with `--nowait`, 2 bad input or any other error. Errors are printed
//! once, as one line on stderr; a closed stdout (`ipckit ls | head -1`) exits quietly.

mod cmd;
mod exit;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Interprocess communication and synchronization, in user space.
#[derive(Debug, Parser)]
#[command(name = "ipckit", version, about, propagate_version = true)]
pub struct Cli {
    /// Namespace directory holding the IPC objects [default: /dev/shm/ipckit]
    #[arg(long, global = true, env = "IPCKIT_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A guided run of the whole system across real processes, on a temporary namespace
    Tour(cmd::tour::TourArgs),
    /// List the IPC objects of the namespace, like ipcs
    Ls(cmd::ls::LsArgs),
    /// Remove an IPC object, like ipcrm
    Rm(cmd::rm::RmArgs),
    /// Shared memory segments
    Shm(cmd::shm::ShmArgs),
    /// Run one of the classic problems with real processes (`--list` shows them)
    Demo(cmd::demo::DemoArgs),
    /// Deadlock detection (matrix algorithm), the banker's algorithm, resource graphs
    Deadlock(cmd::deadlock::DeadlockArgs),
    /// Sockets: the echo server and client over TCP or UDP (loopback by default)
    Net(cmd::net::NetArgs),
    /// Run every IPC mechanism between two processes and print the course's comparison table
    Compare(cmd::compare::CompareArgs),
    /// System V style semaphore sets: create, op, get, set
    Sem(cmd::sem::SemArgs),
    /// Message queues: create, send, receive by type, stat (msgget, msgsnd, msgrcv, msgctl)
    Mq(cmd::mq::MqArgs),
    /// Internal: a role played by a child process of a demo or of the tour
    #[command(name = "__child", hide = true)]
    Child(cmd::child::ChildArgs),
}

/// What every command gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--dir` / `IPCKIT_DIR`, if given.
    pub dir: Option<PathBuf>,
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context { dir: cli.dir };
    match cli.command {
        Command::Tour(a) => cmd::tour::run(&ctx, a),
        Command::Demo(a) => cmd::demo::run(&ctx, a),
        Command::Ls(a) => cmd::ls::run(&ctx, a),
        Command::Rm(a) => cmd::rm::run(&ctx, a),
        Command::Shm(a) => cmd::shm::run(&ctx, a),
        Command::Deadlock(a) => cmd::deadlock::run(&ctx, a),
        Command::Net(a) => cmd::net::run(&ctx, a),
        Command::Compare(a) => cmd::compare::run(&ctx, a),
        Command::Sem(a) => cmd::sem::run(&ctx, a),
        Command::Mq(a) => cmd::mq::run(&ctx, a),
        Command::Child(a) => cmd::child::run(&ctx, a),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: not errors.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line on stderr, like every other error.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("ipckit: {} (see --help)", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}
