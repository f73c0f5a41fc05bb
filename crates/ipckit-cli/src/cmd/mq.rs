//! `ipckit mq ...`: message queues from the shell (`msgget`, `msgsnd`, `msgrcv`, `msgctl`).
//!
//! ```text
//! ipckit mq create --key KEY [--max-bytes N] [--mode 600] [--excl]     prints the id
//! ipckit mq send --key KEY [--type T] [--nowait] (TEXT | -)
//! ipckit mq recv --key KEY [--type T | --except T | --up-to T] [--nowait] [--timeout MS]
//!                [--max-size N] [--truncate] [--json]
//! ipckit mq stat --key KEY [--json]
//! ```
//!
//! Exit codes: 1 when the queue does not exist (or was removed), or when `--nowait` /
//! `--timeout` finds no message or no room; 2 on bad input (a type below 1, a message too
//! long without `--truncate`, a bad key or mode) and any other error.

use super::objects::{namespace, object_error as object_failure, parse_mode};
use crate::Context;
use crate::exit::Failure;
use ipckit::mq::{MessageQueue, QueueConfig, RecvError, Selector, SendError, Wait};
use ipckit::ns::{CreateMode, Key, ObjectError};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `ipckit mq`.
#[derive(Debug, clap::Args)]
pub struct MqArgs {
    #[command(subcommand)]
    command: MqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MqCommand {
    /// Create a queue (or open it, without --excl); prints its id
    Create(CreateArgs),
    /// Send one message: TEXT, or standard input with "-"
    Send(SendArgs),
    /// Receive one message and print its bytes
    Recv(RecvArgs),
    /// Show a queue's counts, limits, last sender and receiver
    Stat(StatArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Key, decimal or 0x hex (0: a private queue, found by id only)
    #[arg(long)]
    key: Key,
    /// Bytes the queue may hold (msg_qbytes)
    #[arg(long, default_value_t = ipckit::mq::DEFAULT_MAX_BYTES)]
    max_bytes: u64,
    /// Permission bits, octal
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    mode: u32,
    /// Fail if the key is taken (IPC_EXCL)
    #[arg(long)]
    excl: bool,
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// Key, decimal or 0x hex
    #[arg(long)]
    key: Key,
    /// Message type, at least 1
    #[arg(long = "type", default_value_t = 1, allow_negative_numbers = true)]
    mtype: i64,
    /// Fail (exit 1) instead of waiting when the queue is full
    #[arg(long)]
    nowait: bool,
    /// The message; "-" reads it from standard input
    text: String,
}

#[derive(Debug, clap::Args)]
struct RecvArgs {
    /// Key, decimal or 0x hex
    #[arg(long)]
    key: Key,
    /// Take the first message of this type
    #[arg(long = "type", group = "sel", allow_negative_numbers = true)]
    mtype: Option<i64>,
    /// Take the first message of any other type (MSG_EXCEPT)
    #[arg(long, group = "sel", allow_negative_numbers = true)]
    except: Option<i64>,
    /// Take the first message of the lowest type up to this one (msgtyp < 0)
    #[arg(long, group = "sel", allow_negative_numbers = true)]
    up_to: Option<i64>,
    /// Fail (exit 1) instead of waiting when there is no message
    #[arg(long)]
    nowait: bool,
    /// Wait at most this many milliseconds (exit 1 after)
    #[arg(long, value_name = "MS", conflicts_with = "nowait")]
    timeout: Option<u64>,
    /// The longest message to accept [default: the queue's maximum message size]
    #[arg(long)]
    max_size: Option<usize>,
    /// Cut a longer message to --max-size bytes instead of failing (MSG_NOERROR)
    #[arg(long)]
    truncate: bool,
    /// Print {"type": T, "data": "..."}
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct StatArgs {
    /// Key, decimal or 0x hex
    #[arg(long)]
    key: Key,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

fn open(ctx: &Context, key: Key) -> anyhow::Result<MessageQueue> {
    MessageQueue::open(&namespace(ctx)?, key).map_err(object_failure)
}

/// Runs `ipckit mq ...`.
pub fn run(ctx: &Context, a: MqArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        MqCommand::Create(a) => create(ctx, a),
        MqCommand::Send(a) => send(ctx, a),
        MqCommand::Recv(a) => recv(ctx, a),
        MqCommand::Stat(a) => stat(ctx, a),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn create(ctx: &Context, a: CreateArgs) -> anyhow::Result<()> {
    let how = if a.excl { CreateMode::CreateExclusive } else { CreateMode::OpenOrCreate };
    let config = QueueConfig::with_max_bytes(a.max_bytes);
    let (q, _) = MessageQueue::obtain(&namespace(ctx)?, a.key, how, a.mode, config).map_err(
        |e| match e {
            // The key being taken is bad input for --excl, not absence.
            ObjectError::AlreadyExists { .. } => Failure::bad_input(e.to_string()),
            e => object_failure(e),
        },
    )?;
    writeln!(std::io::stdout(), "{}", q.id())?;
    Ok(())
}

fn send(ctx: &Context, a: SendArgs) -> anyhow::Result<()> {
    let data = if a.text == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v)?;
        v
    } else {
        a.text.into_bytes()
    };
    if a.mtype < 1 {
        return Err(Failure::bad_input(SendError::<()>::InvalidType(a.mtype).to_string()));
    }
    let q = open(ctx, a.key)?;
    let wait = if a.nowait { Wait::NoWait } else { Wait::Block };
    q.send_with(a.mtype, data, wait).map_err(|e| match e {
        SendError::Full(_) | SendError::TimedOut(_) | SendError::Removed => {
            Failure::absent(e.to_string())
        }
        e => Failure::bad_input(e.to_string()),
    })
}

fn recv(ctx: &Context, a: RecvArgs) -> anyhow::Result<()> {
    let selector = match (a.mtype, a.except, a.up_to) {
        (Some(t), _, _) => Selector::Type(t),
        (_, Some(t), _) => Selector::Except(t),
        (_, _, Some(t)) => Selector::UpTo(t),
        _ => Selector::Any,
    };
    let q = open(ctx, a.key)?;
    let wait = match (a.nowait, a.timeout) {
        (true, _) => Wait::NoWait,
        (_, Some(ms)) => Wait::Timeout(Duration::from_millis(ms)),
        _ => Wait::Block,
    };
    let max = a.max_size.unwrap_or(q.max_message_size());
    let m = q.recv_with(selector, max, a.truncate, wait).map_err(|e| match e {
        RecvError::NoMessage | RecvError::TimedOut | RecvError::Removed => {
            Failure::absent(e.to_string())
        }
        e => Failure::bad_input(e.to_string()),
    })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "type": m.mtype,
            "data": String::from_utf8_lossy(&m.data),
        });
        writeln!(out, "{v}")?;
    } else {
        out.write_all(&m.data)?;
    }
    out.flush()?;
    Ok(())
}

fn stat(ctx: &Context, a: StatArgs) -> anyhow::Result<()> {
    let s = open(ctx, a.key)?.stat().map_err(object_failure)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(());
    }
    let rows: [(&str, String); 13] = [
        ("key", s.key.to_string()),
        ("id", s.id.to_string()),
        ("owner uid", s.owner_uid.to_string()),
        ("mode", format!("{:o}", s.mode)),
        ("messages", s.messages.to_string()),
        ("used bytes", s.used_bytes.to_string()),
        ("max bytes", s.max_bytes.to_string()),
        ("max message size", s.max_message_size.to_string()),
        ("last send pid", s.last_send_pid.to_string()),
        ("last recv pid", s.last_recv_pid.to_string()),
        ("last send time", s.last_send_time.to_string()),
        ("last recv time", s.last_recv_time.to_string()),
        ("change time", s.change_time.to_string()),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<18} {v}")?;
    }
    Ok(())
}

// ----- the tour step -------------------------------------------------------------------

const TOUR_KEY: Key = Key(0x6d71);

/// The messages the tour's sender leaves behind: (type, text).
const TOUR_MESSAGES: [(i64, &str); 5] = [
    (1, "order #1: two coffees"),
    (2, "urgent: the milk ran out"),
    (1, "order #2: one tea"),
    (3, "log: opened at 7:00"),
    (2, "urgent: table 4 wants the bill"),
];

/// Tour step `mq`: one process creates a queue, sends typed messages and exits; another,
/// started only afterwards, receives them by type. The queue outlives its creator.
pub fn tour(ctx: &Context) -> anyhow::Result<()> {
    use super::child;
    let key = TOUR_KEY.to_string();
    let sender = child::spawn(ctx, "mq-sender", &[&key])?;
    let pid = sender.id();
    child::wait_all(vec![sender], Duration::from_secs(20))?;
    let q = open(ctx, TOUR_KEY)?;
    let s = q.stat().map_err(object_failure)?;
    println!(
        "the sender (pid {pid}) has exited; queue {} still holds {} messages, {} bytes",
        s.key, s.messages, s.used_bytes
    );
    anyhow::ensure!(s.messages == TOUR_MESSAGES.len() as u64, "messages were lost");
    let receiver = child::spawn(ctx, "mq-receiver", &[&key])?;
    child::wait_all(vec![receiver], Duration::from_secs(20))?;
    let s = q.stat().map_err(object_failure)?;
    anyhow::ensure!(s.messages == 0, "the receiver left {} messages", s.messages);
    q.remove().map_err(object_failure)?;
    println!("queue removed (IPC_RMID): its key is free again");
    Ok(())
}

/// The tour's child processes: `mq-sender KEY`, `mq-receiver KEY`.
pub fn child(ctx: &Context, role: &str, args: &[&str]) -> anyhow::Result<()> {
    let key: Key = super::demo::arg(args, 0)?;
    let me = std::process::id();
    match role {
        "mq-sender" => {
            let ns = namespace(ctx)?;
            let (q, _) = MessageQueue::obtain(
                &ns,
                key,
                CreateMode::CreateExclusive,
                0o600,
                QueueConfig::default(),
            )?;
            for (t, text) in TOUR_MESSAGES {
                q.send(t, text.as_bytes())?;
                println!("  sender  {me}: sent type {t}: {text}");
            }
            println!("  sender  {me}: exiting");
        }
        "mq-receiver" => {
            let q = open(ctx, key)?;
            let mut got = Vec::new();
            let mut take = |sel: Selector, why: &str| -> anyhow::Result<bool> {
                match q.try_recv(sel, 256) {
                    Ok(m) => {
                        let text = String::from_utf8_lossy(&m.data).into_owned();
                        println!("  receiver {me}: {why:<22} type {}: {text}", m.mtype);
                        got.push((m.mtype, text));
                        Ok(true)
                    }
                    Err(RecvError::NoMessage) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            };
            while take(Selector::Type(2), "urgent first (type 2)")? {}
            while take(Selector::Except(3), "then all but logs")? {}
            while take(Selector::Any, "then the rest")? {}
            let types: Vec<i64> = got.iter().map(|(t, _)| *t).collect();
            anyhow::ensure!(types == [2, 2, 1, 1, 3], "unexpected order {types:?}");
            anyhow::ensure!(got[2].1 == TOUR_MESSAGES[0].1, "FIFO order within type 1 broken");
        }
        other => anyhow::bail!("unknown mq role {other:?}"),
    }
    Ok(())
}
