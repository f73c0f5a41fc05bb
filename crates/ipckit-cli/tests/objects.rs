//! The object commands as a user runs them: `shm`, `ls`, `rm`, in a private namespace.

use std::process::{Command, Output};

fn ipckit(dir: &std::path::Path, args: &[&str]) -> Output {
    // Short commands that never wait on another process.
    Command::new(env!("CARGO_BIN_EXE_ipckit"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run ipckit")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("valid JSON")
}

#[test]
fn shm_write_in_one_process_read_in_another() {
    let d = tempfile::tempdir().unwrap();
    let id: i32 = ok(&ipckit(d.path(), &["shm", "create", "--key", "0x2a", "--size", "64"]))
        .trim()
        .parse()
        .unwrap();
    ok(&ipckit(d.path(), &["shm", "write", "--key", "42", "--offset", "3", "hello"]));
    let out = ipckit(d.path(), &["shm", "read", "--key", "0x2a", "--offset", "3", "--len", "5"]);
    assert_eq!(ok(&out), "hello");
    let full = ipckit(d.path(), &["shm", "read", "--key", "0x2a"]);
    assert_eq!(full.stdout.len(), 64);
    // stdin
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipckit"))
        .arg("--dir")
        .arg(d.path())
        .args(["shm", "write", "--key", "0x2a", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(b"piped").unwrap();
    assert!(c.wait().unwrap().success());
    assert_eq!(ok(&ipckit(d.path(), &["shm", "read", "--key", "0x2a", "--len", "5"])), "piped");

    let st = json(&ipckit(d.path(), &["shm", "stat", "--key", "0x2a", "--json"]));
    assert_eq!(st["id"], id);
    assert_eq!(st["bytes"], 64);
    assert_eq!(st["perms"], "600");
    assert_eq!(st["nattch"], 0);
    assert_eq!(st["key"], "0x0000002a");
}

#[test]
fn ls_lists_like_ipcs_and_as_json() {
    let d = tempfile::tempdir().unwrap();
    ok(&ipckit(d.path(), &["shm", "create", "--key", "0x10", "--size", "4096", "--mode", "640"]));
    let table = ok(&ipckit(d.path(), &["ls"]));
    assert!(table.contains("------ Shared Memory Segments --------"));
    assert!(table.contains("------ Message Queues --------"));
    assert!(table.contains("------ Semaphore Arrays --------"));
    assert!(
        table.contains("key        shmid      owner      perms      bytes      nattch     status")
    );
    assert!(table.contains("0x00000010"));
    let v = json(&ipckit(d.path(), &["ls", "--json"]));
    let shm = v["shm"].as_array().unwrap();
    assert_eq!(shm.len(), 1);
    for f in ["key", "id", "owner", "perms", "bytes", "nattch"] {
        assert!(!shm[0][f].is_null(), "missing {f}");
    }
    assert_eq!(shm[0]["perms"], "640");
    assert_eq!(shm[0]["bytes"], 4096);
    assert!(v["mq"].is_array() && v["sem"].is_array());
    let only = json(&ipckit(d.path(), &["ls", "shm", "--json"]));
    assert_eq!(only["shm"].as_array().unwrap().len(), 1);
}

#[test]
fn exit_codes_follow_the_rules() {
    let d = tempfile::tempdir().unwrap();
    // absent: 1
    let o = ipckit(d.path(), &["shm", "read", "--key", "0x99"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
    assert_eq!(ipckit(d.path(), &["rm", "shm", "--id", "12345"]).status.code(), Some(1));
    // bad input: 2
    assert_eq!(
        ipckit(d.path(), &["shm", "create", "--key", "zz", "--size", "1"]).status.code(),
        Some(2)
    );
    assert_eq!(
        ipckit(d.path(), &["shm", "create", "--key", "1", "--size", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(
        ipckit(d.path(), &["shm", "create", "--key", "1", "--size", "8", "--mode", "999"])
            .status
            .code(),
        Some(2)
    );
    ok(&ipckit(d.path(), &["shm", "create", "--key", "1", "--size", "8"]));
    assert_eq!(
        ipckit(d.path(), &["shm", "create", "--key", "1", "--size", "8", "--excl"]).status.code(),
        Some(2)
    );
    assert_eq!(
        ipckit(d.path(), &["shm", "write", "--key", "1", "--offset", "6", "abc"]).status.code(),
        Some(2)
    );
    assert_eq!(ipckit(d.path(), &["rm", "shm"]).status.code(), Some(2));
    // rm by id and by key
    let id = ok(&ipckit(d.path(), &["shm", "create", "--key", "2", "--size", "8"]));
    ok(&ipckit(d.path(), &["rm", "shm", "--id", id.trim()]));
    ok(&ipckit(d.path(), &["rm", "shm", "--key", "1"]));
    let v = json(&ipckit(d.path(), &["ls", "--json"]));
    assert!(v["shm"].as_array().unwrap().is_empty());
}

#[test]
fn broken_pipe_exits_quietly() {
    let d = tempfile::tempdir().unwrap();
    ok(&ipckit(d.path(), &["shm", "create", "--key", "3", "--size", "1048576"]));
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipckit"))
        .arg("--dir")
        .arg(d.path())
        .args(["shm", "read", "--key", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take()); // the reader goes away at once
    let o = c.wait_with_output().unwrap();
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() || o.status.code().is_none());
}

#[test]
fn semaphore_sets_are_listed_and_removed() {
    let d = tempfile::tempdir().unwrap();
    let id = ok(&ipckit(d.path(), &["sem", "create", "--key", "0x77", "--count", "3"]));
    let v = json(&ipckit(d.path(), &["ls", "--json"]));
    let sem = v["sem"].as_array().unwrap();
    assert_eq!(sem.len(), 1);
    assert_eq!(sem[0]["nsems"], 3);
    assert_eq!(sem[0]["id"].to_string(), id.trim());
    for f in ["key", "id", "owner", "perms"] {
        assert!(!sem[0][f].is_null(), "missing {f}");
    }
    assert!(ok(&ipckit(d.path(), &["ls", "sem"])).contains("0x00000077"));
    ok(&ipckit(d.path(), &["rm", "sem", "--id", id.trim()]));
    assert_eq!(ipckit(d.path(), &["rm", "sem", "--key", "0x77"]).status.code(), Some(1));
    assert!(json(&ipckit(d.path(), &["ls", "--json"]))["sem"].as_array().unwrap().is_empty());
}
