//! `ipckit sem ...`: System V style semaphore sets (`semget`, `semop`, `semctl`) from the
//! shell.
//!
//! ```text
//! ipckit sem create --key 0x1234 --count 2 --value 1      # prints the id
//! ipckit sem op --key 0x1234 0:-1 1:+1                    # one atomic step
//! ipckit sem get --key 0x1234 [--json]
//! ipckit sem set --key 0x1234 1,0
//! ```
//!
//! `--undo` marks the operations `SEM_UNDO`: they are reversed when the process that made
//! them ends. For a command-line process that is right after the command, exactly as a
//! `semop(SEM_UNDO)` by a shell tool would be in System V: useful with `--timeout` (hold a
//! unit while waiting) or to see undo at work, not for holding a unit across commands.

use crate::Context;
use crate::exit::Failure;
use ipckit::ns::{CreateMode, Key, Namespace, ObjectError};
use ipckit::sem::{SemError, SemFlags, SemOp, SemaphoreSet};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `ipckit sem`.
#[derive(Debug, clap::Args)]
pub struct SemArgs {
    #[command(subcommand)]
    cmd: SemCmd,
}

#[derive(Debug, clap::Subcommand)]
enum SemCmd {
    /// Create a set (or open it if it exists, unless --excl); prints its id
    Create {
        /// Key, decimal or 0x hex
        #[arg(long)]
        key: Key,
        /// Number of semaphores (1..=32000)
        #[arg(long)]
        count: usize,
        /// Initial value of every semaphore (0..=32767), for a set this call creates
        #[arg(long, default_value_t = 0)]
        value: i32,
        /// Permission bits, octal
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
        /// Fail if the key exists (IPC_EXCL)
        #[arg(long)]
        excl: bool,
    },
    /// Apply operations NUM:DELTA (0:-1 takes a unit, 1:+2 adds two, 2:0 waits for zero) as
    /// one atomic step
    Op {
        /// Key of the set
        #[arg(long)]
        key: Key,
        /// Operations, NUM:DELTA
        #[arg(required = true, value_parser = parse_op)]
        ops: Vec<SemOp>,
        /// Do not wait: exit 1 and change nothing if an operation would block
        #[arg(long)]
        nowait: bool,
        /// Reverse the operations when this process ends (SEM_UNDO; see `ipckit sem --help`)
        #[arg(long)]
        undo: bool,
        /// Wait at most this many milliseconds (exit 1 on timeout, nothing changed)
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
    },
    /// Print the values (and waiter counts, last pids)
    Get {
        /// Key of the set
        #[arg(long)]
        key: Key,
        /// Print JSON: {"values": [...], ...}
        #[arg(long)]
        json: bool,
    },
    /// Set all values at once: V,V,... (one per semaphore)
    Set {
        /// Key of the set
        #[arg(long)]
        key: Key,
        /// Comma-separated values
        values: String,
    },
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("invalid mode {s:?}: write octal permission bits like 600"))
}

fn parse_op(s: &str) -> Result<SemOp, String> {
    let bad = || format!("invalid operation {s:?}: write NUM:DELTA, e.g. 0:-1, 1:+2, 2:0");
    let (num, delta) = s.split_once(':').ok_or_else(bad)?;
    let num: u16 = num.trim().parse().map_err(|_| bad())?;
    let delta: i16 = delta
        .trim()
        .parse()
        .map_err(|_| format!("invalid operation {s:?}: DELTA must be in -32768..=32767"))?;
    Ok(SemOp::new(num, delta))
}

/// The namespace of the command: `--dir`/`IPCKIT_DIR`, else the default.
fn namespace(ctx: &Context) -> anyhow::Result<Namespace> {
    let ns = match &ctx.dir {
        Some(d) => Namespace::at(d),
        None => Namespace::from_env(),
    };
    ns.map_err(object_failure)
}

/// Exit 1 for an absent set, 2 for anything else.
fn object_failure(e: ObjectError) -> anyhow::Error {
    if e.is_absent() { Failure::absent(e.to_string()) } else { Failure::bad_input(e.to_string()) }
}

/// Exit 1 for "would block", "timed out", "removed"; 2 for bad input and other errors.
fn sem_failure(e: SemError) -> anyhow::Error {
    match e {
        SemError::WouldBlock | SemError::TimedOut | SemError::Removed => {
            Failure::absent(e.to_string())
        }
        e => Failure::bad_input(e.to_string()),
    }
}

/// Runs `ipckit sem`.
pub fn run(ctx: &Context, a: SemArgs) -> anyhow::Result<ExitCode> {
    let ns = namespace(ctx)?;
    match a.cmd {
        SemCmd::Create { key, count, value, mode, excl } => {
            let how = if excl { CreateMode::CreateExclusive } else { CreateMode::OpenOrCreate };
            let (set, _created) =
                SemaphoreSet::obtain_with_value(&ns, key, count, value, mode, how)
                    .map_err(object_failure)?;
            println!("{}", set.id());
        }
        SemCmd::Op { key, ops, nowait, undo, timeout } => {
            let set = SemaphoreSet::open(&ns, key).map_err(object_failure)?;
            let mut flags = SemFlags::NONE;
            if undo {
                flags = flags | SemFlags::UNDO;
            }
            if nowait {
                flags = flags | SemFlags::NOWAIT;
            }
            let ops: Vec<SemOp> = ops.into_iter().map(|o| o.with(flags)).collect();
            let r = match timeout {
                Some(ms) => set.apply_timeout(&ops, Duration::from_millis(ms)),
                None => set.apply(&ops),
            };
            r.map_err(sem_failure)?;
        }
        SemCmd::Get { key, json } => {
            let set = SemaphoreSet::open(&ns, key).map_err(object_failure)?;
            let values = set.get_all().map_err(sem_failure)?;
            let n = values.len();
            let per = |f: &dyn Fn(usize) -> Result<usize, SemError>| -> anyhow::Result<Vec<usize>> {
                (0..n).map(|i| f(i).map_err(sem_failure)).collect()
            };
            let ncnt = per(&|i| set.waiting_for_increase(i))?;
            let zcnt = per(&|i| set.waiting_for_zero(i))?;
            let pids = per(&|i| set.last_pid(i).map(|p| p as usize))?;
            if json {
                let v = serde_json::json!({
                    "key": set.key(),
                    "id": set.id(),
                    "nsems": n,
                    "values": values,
                    "waiting_for_increase": ncnt,
                    "waiting_for_zero": zcnt,
                    "last_pid": pids,
                });
                println!("{v}");
            } else {
                println!("{:>5} {:>6} {:>6} {:>6} {:>8}", "num", "value", "ncnt", "zcnt", "pid");
                for i in 0..n {
                    println!(
                        "{:>5} {:>6} {:>6} {:>6} {:>8}",
                        i, values[i], ncnt[i], zcnt[i], pids[i]
                    );
                }
            }
        }
        SemCmd::Set { key, values } => {
            let set = SemaphoreSet::open(&ns, key).map_err(object_failure)?;
            let values: Vec<i32> = values
                .split(',')
                .map(|v| {
                    v.trim().parse::<i32>().map_err(|_| {
                        Failure::bad_input(format!(
                            "invalid value {v:?}: write V,V,... (0..=32767)"
                        ))
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            set.set_all(&values).map_err(sem_failure)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
