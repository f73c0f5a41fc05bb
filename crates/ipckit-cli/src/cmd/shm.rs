//! `ipckit shm create|write|read|stat`: shared memory segments from the shell.

use super::objects::{
    namespace, object_error, owner_name, parse_key, parse_mode, perms, print_json,
};
use crate::Context;
use crate::exit::Failure;
use clap::Subcommand;
use ipckit::ns::Key;
use ipckit::shm::{AccessError, Segment};
use std::io::{Read, Write};
use std::process::ExitCode;

/// Arguments of `ipckit shm`.
#[derive(Debug, clap::Args)]
pub struct ShmArgs {
    #[command(subcommand)]
    cmd: ShmCmd,
}

#[derive(Debug, Subcommand)]
enum ShmCmd {
    /// Create a segment (or open it without --excl) and print its id
    Create {
        /// Key (decimal or 0x hex; 0 = private)
        #[arg(long, value_parser = parse_key)]
        key: Key,
        /// Size in bytes
        #[arg(long)]
        size: u64,
        /// Permission bits, octal
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
        /// Fail if the key exists (IPC_EXCL)
        #[arg(long)]
        excl: bool,
    },
    /// Write TEXT (or stdin with -) into the segment
    Write {
        /// Key
        #[arg(long, value_parser = parse_key)]
        key: Key,
        /// Where to start
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// The bytes to write, or - for stdin
        text: String,
    },
    /// Write the segment's raw bytes to stdout
    Read {
        /// Key
        #[arg(long, value_parser = parse_key)]
        key: Key,
        /// Where to start
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// How many bytes [default: to the end]
        #[arg(long)]
        len: Option<usize>,
    },
    /// Print the segment's status
    Stat {
        /// Key
        #[arg(long, value_parser = parse_key)]
        key: Key,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
}

fn access_error(e: AccessError) -> anyhow::Error {
    match e {
        AccessError::Object(o) => object_error(o),
        e => Failure::bad_input(e.to_string()),
    }
}

/// Runs `ipckit shm`.
pub fn run(ctx: &Context, a: ShmArgs) -> anyhow::Result<ExitCode> {
    let ns = namespace(ctx)?;
    match a.cmd {
        ShmCmd::Create { key, size, mode, excl } => {
            let seg = Segment::open_or_create(&ns, key, size, mode, excl).map_err(object_error)?;
            println!("{}", seg.id());
        }
        ShmCmd::Write { key, offset, text } => {
            let data = if text == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v)?;
                v
            } else {
                text.into_bytes()
            };
            let seg = Segment::open(&ns, key).map_err(object_error)?;
            let att = seg.attach().map_err(object_error)?;
            att.write(offset, &data).map_err(access_error)?;
        }
        ShmCmd::Read { key, offset, len } => {
            let seg = Segment::open(&ns, key).map_err(object_error)?;
            let att = seg.attach_read_only().map_err(object_error)?;
            let len = match len {
                Some(l) => l,
                None => att.len().checked_sub(offset).ok_or_else(|| {
                    Failure::bad_input(format!(
                        "offset {offset} is past the {}-byte segment",
                        att.len()
                    ))
                })?,
            };
            let mut buf = vec![0u8; len];
            att.read(offset, &mut buf).map_err(access_error)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()?;
        }
        ShmCmd::Stat { key, json } => {
            let st = Segment::open(&ns, key).and_then(|s| s.stat()).map_err(object_error)?;
            if json {
                let mut v = serde_json::to_value(&st)?;
                let m = v.as_object_mut().expect("object");
                m.insert("owner".into(), owner_name(st.owner_uid).into());
                m.insert("perms".into(), perms(st.mode).into());
                m.insert("bytes".into(), st.size.into());
                print_json(&v)?;
            } else {
                println!("key        {}", st.key);
                println!("shmid      {}", st.id);
                println!("owner      {}", owner_name(st.owner_uid));
                println!("perms      {}", perms(st.mode));
                println!("bytes      {}", st.size);
                println!("nattch     {}", st.nattch);
                println!("cpid       {}", st.creator_pid);
                println!("lpid       {}", st.last_pid);
                println!("atime      {}", st.atime);
                println!("dtime      {}", st.dtime);
                println!("ctime      {}", st.ctime);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
