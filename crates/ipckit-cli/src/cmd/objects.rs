//! What the object commands (`ls`, `rm`, `shm`, `mq`, `sem`) share: the namespace, keys,
//! modes, and the mapping of library errors to exit codes.

use crate::Context;
use crate::exit::Failure;
use ipckit::ns::{Key, Namespace, ObjectError};

/// The namespace of `--dir` / `IPCKIT_DIR`, or the default one.
pub fn namespace(ctx: &Context) -> anyhow::Result<Namespace> {
    let ns = match &ctx.dir {
        Some(d) => Namespace::at(d),
        None => Namespace::from_env(),
    };
    ns.map_err(object_error)
}

/// Maps a library error to the CLI's exit codes: absent (exit 1) or error (exit 2).
pub fn object_error(e: ObjectError) -> anyhow::Error {
    if e.is_absent() { Failure::absent(e.to_string()) } else { Failure::bad_input(e.to_string()) }
}

/// Parses a key for clap: decimal or `0x` hex.
pub fn parse_key(s: &str) -> Result<Key, String> {
    s.parse::<Key>().map_err(|e| e.to_string())
}

/// Parses an octal mode like `600` or `0644`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(t, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("invalid mode {s:?}: write octal permission bits like 600 or 644")),
    }
}

/// The name of user `uid`, or the number.
pub fn owner_name(uid: u32) -> String {
    ipckit::sys::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// Permission bits as `ipcs` prints them (`600`).
pub fn perms(mode: u32) -> String {
    format!("{:o}", mode & 0o777)
}

/// Prints `value` as JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
