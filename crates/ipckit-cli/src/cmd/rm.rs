//! `ipckit rm shm|mq|sem (--id ID | --key KEY)`: remove an object, like `ipcrm`.

use super::objects::{namespace, object_error, parse_key};
use crate::Context;
use ipckit::ns::{Key, ObjectKind};
use std::process::ExitCode;

/// Arguments of `ipckit rm`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "key"])))]
pub struct RmArgs {
    /// Kind of object: shm, mq or sem
    #[arg(value_parser = ["shm", "mq", "sem"])]
    kind: String,
    /// The object's id
    #[arg(long)]
    id: Option<i32>,
    /// The object's key (decimal or 0x hex)
    #[arg(long, value_parser = parse_key)]
    key: Option<Key>,
}

/// Runs `ipckit rm`.
pub fn run(ctx: &Context, a: RmArgs) -> anyhow::Result<ExitCode> {
    let ns = namespace(ctx)?;
    let kind = ObjectKind::from_name(&a.kind).expect("clap checked the kind");
    let entry = match (a.id, a.key) {
        (Some(id), _) => ns.find_id(kind, id),
        (None, Some(key)) => ns.find_key(kind, key),
        (None, None) => unreachable!("clap requires --id or --key"),
    }
    .map_err(object_error)?;
    remove(kind, &entry.path)?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the object file at `path` through its kind, so the kind can wake its waiters.
fn remove(kind: ObjectKind, path: &std::path::Path) -> anyhow::Result<()> {
    match kind {
        ObjectKind::Shm => {
            ipckit::shm::Segment::open_path(path).and_then(|s| s.remove()).map_err(object_error)
        }
        ObjectKind::Sem => ipckit::sem::SemaphoreSet::open_path(path)
            .and_then(|s| s.remove())
            .map_err(object_error),
        ObjectKind::Mq => {
            ipckit::mq::MessageQueue::open_path(path).and_then(|q| q.remove()).map_err(object_error)
        }
    }
}
