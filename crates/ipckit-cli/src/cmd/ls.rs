//! `ipckit ls [shm|mq|sem] [--json]`: the object table, like `ipcs`.

use super::objects::{namespace, owner_name, perms, print_json};
use crate::Context;
use ipckit::ns::ObjectKind;
use serde_json::{Value, json};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `ipckit ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only this kind: shm, mq or sem
    #[arg(value_parser = ["shm", "mq", "sem"])]
    kind: Option<String>,
    /// One JSON object with arrays `shm`, `mq`, `sem`
    #[arg(long)]
    json: bool,
}

/// One row: the common columns plus the kind's own, as JSON values.
fn rows(ns: &ipckit::ns::Namespace, kind: ObjectKind) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for e in ns.entries(Some(kind)).map_err(super::objects::object_error)? {
        let mut row = json!({
            "key": e.key.to_string(),
            "id": e.id,
            "owner": owner_name(e.owner_uid),
            "perms": perms(e.mode),
        });
        let extra = kind_columns(kind, &e.path);
        match extra {
            Ok(Value::Object(m)) => row.as_object_mut().expect("object").extend(m),
            Ok(_) => {}
            // The object vanished or is unreadable between listing and opening: skip it.
            Err(_) => continue,
        }
        out.push(row);
    }
    Ok(out)
}

/// The kind's own numbers.
fn kind_columns(kind: ObjectKind, path: &std::path::Path) -> anyhow::Result<Value> {
    Ok(match kind {
        ObjectKind::Shm => {
            let s = ipckit::shm::Segment::open_path(path)?.stat()?;
            json!({ "bytes": s.size, "nattch": s.nattch, "status": "" })
        }
        ObjectKind::Mq => {
            let entry = ipckit::ns::Entry::read(path, kind)?;
            let q = ipckit::mq::MessageQueue::open_entry(&entry, ipckit::ns::OpenAccess::ReadOnly)?;
            let s = q.stat()?;
            json!({ "used_bytes": s.used_bytes, "messages": s.messages })
        }
        ObjectKind::Sem => {
            let s =
                ipckit::sem::SemaphoreSet::open_path_with(path, ipckit::ns::OpenAccess::ReadOnly)?
                    .stat()?;
            json!({ "nsems": s.nsems })
        }
    })
}

const COLUMNS: [(&str, &[&str]); 3] = [
    ("Shared Memory Segments", &["key", "shmid", "owner", "perms", "bytes", "nattch", "status"]),
    ("Message Queues", &["key", "msqid", "owner", "perms", "used-bytes", "messages"]),
    ("Semaphore Arrays", &["key", "semid", "owner", "perms", "nsems"]),
];

fn json_field(kind: ObjectKind, column: &str) -> &'static str {
    match (kind, column) {
        (_, "key") => "key",
        (_, "shmid" | "msqid" | "semid") => "id",
        (_, "owner") => "owner",
        (_, "perms") => "perms",
        (_, "bytes") => "bytes",
        (_, "nattch") => "nattch",
        (_, "status") => "status",
        (_, "used-bytes") => "used_bytes",
        (_, "messages") => "messages",
        (_, "nsems") => "nsems",
        _ => "",
    }
}

/// Runs `ipckit ls`.
pub fn run(ctx: &Context, a: LsArgs) -> anyhow::Result<ExitCode> {
    let ns = namespace(ctx)?;
    let kinds: Vec<ObjectKind> = match &a.kind {
        Some(k) => vec![ObjectKind::from_name(k).expect("clap checked the kind")],
        None => ObjectKind::ALL.to_vec(),
    };
    let mut all = serde_json::Map::new();
    for k in ObjectKind::ALL {
        let r = if kinds.contains(&k) { rows(&ns, k)? } else { Vec::new() };
        all.insert(k.name().to_string(), Value::Array(r));
    }
    if a.json {
        print_json(&Value::Object(all))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for (i, k) in ObjectKind::ALL.into_iter().enumerate() {
        if !kinds.contains(&k) {
            continue;
        }
        let (title, cols) = COLUMNS[i];
        writeln!(out, "\n------ {title} --------")?;
        let line: Vec<String> = cols.iter().map(|c| format!("{c:<10}")).collect();
        writeln!(out, "{}", line.join(" ").trim_end())?;
        for row in all[k.name()].as_array().expect("array") {
            let line: Vec<String> = cols
                .iter()
                .map(|c| {
                    let v = &row[json_field(k, c)];
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        v => v.to_string(),
                    };
                    format!("{s:<10}")
                })
                .collect();
            writeln!(out, "{}", line.join(" ").trim_end())?;
        }
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}
