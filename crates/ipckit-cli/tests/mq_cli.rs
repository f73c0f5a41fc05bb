//! `ipckit mq ...` as a user runs it: create, send, recv, stat, exit codes and JSON fields.
//! Every run uses `--dir` on a temporary directory, never the default namespace.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Ns {
    dir: tempfile::TempDir,
}

impl Ns {
    fn new() -> Ns {
        Ns { dir: tempfile::tempdir().unwrap() }
    }

    /// Runs `ipckit --dir DIR ARGS` with `stdin`, killing it after 30 s.
    fn run_with(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = common::command();
        cmd.arg("--dir").arg(self.dir.path()).args(args);
        common::run_with_stdin(&mut cmd, stdin, Duration::from_secs(30))
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, b"")
    }

    /// Runs and asserts the exit code; returns stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "ipckit {args:?}: stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if code != 0 {
            // Library errors are one line; clap's usage errors add a hint after theirs.
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err.lines().next().unwrap_or("");
            assert!(first.starts_with("ipckit: ") || first.starts_with("error: "), "{err:?}");
            if first.starts_with("ipckit: ") {
                assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
            }
        }
        String::from_utf8(o.stdout).unwrap()
    }
}

#[test]
fn create_send_recv_by_type_and_stat() {
    let ns = Ns::new();
    let id = ns.expect(0, &["mq", "create", "--key", "0x1234"]);
    assert!(id.trim().parse::<i32>().unwrap() > 0, "prints the id: {id:?}");
    // Without --excl, create opens the existing queue: same id.
    assert_eq!(ns.expect(0, &["mq", "create", "--key", "4660"]), id);
    ns.expect(0, &["mq", "send", "--key", "0x1234", "--type", "2", "two"]);
    ns.expect(0, &["mq", "send", "--key", "0x1234", "one"]); // type 1 by default
    let o = ns.run_with(&["mq", "send", "--key", "0x1234", "--type", "3", "-"], b"from stdin");
    assert!(o.status.success());

    let st: serde_json::Value =
        serde_json::from_str(&ns.expect(0, &["mq", "stat", "--key", "0x1234", "--json"])).unwrap();
    assert_eq!(st["messages"], 3);
    assert_eq!(st["used_bytes"], 3 + 3 + 10);
    assert_eq!(st["max_bytes"], 16384);
    assert!(st["last_send_pid"].as_u64().unwrap() > 0);
    assert_eq!(st["last_recv_pid"], 0);
    let table = ns.expect(0, &["mq", "stat", "--key", "0x1234"]);
    assert!(table.contains("messages") && table.contains('3'), "{table}");

    assert_eq!(ns.expect(0, &["mq", "recv", "--key", "0x1234", "--type", "1"]), "one");
    assert_eq!(ns.expect(0, &["mq", "recv", "--key", "0x1234", "--except", "2"]), "from stdin");
    let j: serde_json::Value = serde_json::from_str(
        &ns.expect(0, &["mq", "recv", "--key", "0x1234", "--up-to", "5", "--json"]),
    )
    .unwrap();
    assert_eq!(j["type"], 2);
    assert_eq!(j["data"], "two");
    let st: serde_json::Value =
        serde_json::from_str(&ns.expect(0, &["mq", "stat", "--key", "0x1234", "--json"])).unwrap();
    assert_eq!(st["messages"], 0);
    assert!(st["last_recv_pid"].as_u64().unwrap() > 0);
}

#[test]
fn exit_codes() {
    let ns = Ns::new();
    // Absent queue: 1.
    ns.expect(1, &["mq", "stat", "--key", "7"]);
    ns.expect(1, &["mq", "send", "--key", "7", "x"]);
    ns.expect(1, &["mq", "recv", "--key", "7", "--nowait"]);
    ns.expect(0, &["mq", "create", "--key", "7", "--max-bytes", "10", "--mode", "640"]);
    // Taken key with --excl, a bad key, a bad mode: 2.
    ns.expect(2, &["mq", "create", "--key", "7", "--excl"]);
    ns.expect(2, &["mq", "create", "--key", "0xzz"]);
    ns.expect(2, &["mq", "create", "--key", "8", "--mode", "9"]);
    // Nothing there with --nowait or --timeout: 1.
    ns.expect(1, &["mq", "recv", "--key", "7", "--nowait"]);
    ns.expect(1, &["mq", "recv", "--key", "7", "--timeout", "50"]);
    // Types below 1: 2.
    ns.expect(2, &["mq", "send", "--key", "7", "--type", "0", "x"]);
    ns.expect(2, &["mq", "send", "--key", "7", "--type", "-3", "x"]);
    ns.expect(2, &["mq", "recv", "--key", "7", "--type", "0", "--nowait"]);
    // Full with --nowait: 1; too big for the queue: 2.
    ns.expect(0, &["mq", "send", "--key", "7", "0123456789"]);
    ns.expect(1, &["mq", "send", "--key", "7", "--nowait", "x"]);
    ns.expect(2, &["mq", "send", "--key", "7", "--nowait", "0123456789a"]);
    // Too long without --truncate: 2, and the message stays.
    ns.expect(2, &["mq", "recv", "--key", "7", "--max-size", "4"]);
    assert_eq!(
        ns.expect(0, &["mq", "recv", "--key", "7", "--max-size", "4", "--truncate"]),
        "0123"
    );
    let st: serde_json::Value =
        serde_json::from_str(&ns.expect(0, &["mq", "stat", "--key", "7", "--json"])).unwrap();
    assert_eq!(st["messages"], 0, "--truncate removed the message");
}

#[test]
fn tour_step_mq_runs() {
    let ns = Ns::new();
    let out = ns.expect(0, &["tour", "--step", "mq"]);
    assert!(out.contains("has exited; queue"), "{out}");
    assert!(out.contains("urgent first (type 2)"), "{out}");
    assert!(out.contains("queue removed"), "{out}");
}

#[test]
fn ls_shows_the_queue_and_rm_wakes_a_blocked_receiver() {
    let ns = Ns::new();
    ns.expect(0, &["mq", "create", "--key", "0x77"]);
    ns.expect(0, &["mq", "send", "--key", "0x77", "abc"]);
    let ls: serde_json::Value =
        serde_json::from_str(&ns.expect(0, &["ls", "mq", "--json"])).unwrap();
    assert_eq!(ls["mq"][0]["messages"], 1);
    assert_eq!(ls["mq"][0]["used_bytes"], 3);
    ns.expect(0, &["mq", "recv", "--key", "0x77"]);
    // A receiver blocks on the empty queue; `rm` removes it and the receiver exits 1 (EIDRM).
    let mut waiter = Command::new(env!("CARGO_BIN_EXE_ipckit"))
        .arg("--dir")
        .arg(ns.dir.path())
        .args(["mq", "recv", "--key", "0x77", "--timeout", "20000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    ns.expect(0, &["rm", "mq", "--key", "0x77"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = waiter.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            waiter.kill().unwrap();
            panic!("the blocked receiver was not woken by rm");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(5));
    ns.expect(1, &["mq", "stat", "--key", "0x77"]);
}
