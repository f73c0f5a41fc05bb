//! `ipckit deadlock ...` run as a real process: exit codes 0/1/2, the JSON fields, the messages.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the built binary, killing it if it takes longer than `LIMIT`.
fn ipckit(args: &[&str]) -> Output {
    let o = common::run(args, LIMIT);
    Output {
        code: o.status.code().expect("exited normally"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deadlock").join(name);
    p.to_str().unwrap().to_string()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> =
        v.as_object().expect("a JSON object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// Writes `text` to a scenario file in a fresh temporary directory (removed on drop).
fn scenario(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn detect_course_example_exits_0_with_order_p3_p2_p1() {
    let o = ipckit(&["deadlock", "detect", &example("course.toml")]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "no deadlock: every process can finish, in the order P3, P2, P1\n");
    assert!(o.stderr.is_empty());
}

#[test]
fn detect_explain_prints_the_steps() {
    let o = ipckit(&["deadlock", "detect", &example("course.toml"), "--explain"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("step 1: P3 requests (2 1 0 0) <= A = (2 1 0 0)"), "{}", o.stdout);
    assert!(o.stdout.contains("A = (4 2 2 1)"), "{}", o.stdout);
    assert!(o.stdout.contains("step 3: P1"), "{}", o.stdout);
}

#[test]
fn detect_json_has_exactly_the_documented_fields() {
    let o = ipckit(&["deadlock", "detect", &example("course.toml"), "--json"]);
    assert_eq!(o.code, 0);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(keys(&v), ["deadlocked", "order", "steps"]);
    assert_eq!(v["deadlocked"], serde_json::json!([]));
    assert_eq!(v["order"], serde_json::json!(["P3", "P2", "P1"]));
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(keys(&steps[0]), ["available", "process"]);
    assert_eq!(steps[0], serde_json::json!({"process": "P3", "available": [2, 2, 2, 0]}));
    assert_eq!(steps[2], serde_json::json!({"process": "P1", "available": [4, 2, 3, 1]}));
}

#[test]
fn detect_deadlock_exits_1_and_names_the_processes() {
    let o = ipckit(&["deadlock", "detect", &example("deadlocked.toml")]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.stdout, "deadlock: P1, P2, P3 can never finish\n");
    let o = ipckit(&["deadlock", "detect", &example("deadlocked.toml"), "--json"]);
    assert_eq!(o.code, 1);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["deadlocked"], serde_json::json!(["P1", "P2", "P3"]));
    assert_eq!(v["order"], serde_json::json!([]));
    assert_eq!(v["steps"], serde_json::json!([]));
    let o = ipckit(&["deadlock", "detect", &example("philosophers.toml"), "--explain"]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("cycle: Aristotle → fork1 → Kant"), "{}", o.stdout);
}

#[test]
fn partial_deadlock_lists_who_can_finish() {
    let (_dir, path) = scenario(
        "processes = [\"A\", \"B\", \"C\"]\nexisting = [1, 1, 1]\n\
         allocation = [[1, 0, 0], [0, 1, 0], [0, 0, 0]]\nrequest = [[0, 1, 0], [1, 0, 0], [0, 0, 1]]",
    );
    let o = ipckit(&["deadlock", "detect", path.to_str().unwrap()]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout, "deadlock: A, B can never finish (C can, in this order)\n");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_row_and_column() {
    let cases = [
        (
            "resources = [\"tape\", \"cd\"]\nexisting = [1, 1]\nallocation = [[0, 0], [0, -1]]",
            "`allocation` row 2 (P2), column 2 (cd)",
        ),
        (
            "resources = [\"tape\", \"cd\"]\nexisting = [3, 1]\nallocation = [[1, 0], [2]]",
            "`allocation` row 2 (P2) has 1 entries but there are 2 resource classes: column 2 (cd) is missing",
        ),
        (
            "existing = [3, 1]\nallocation = [[2, 1], [2, 0]]",
            "`allocation` column 1 (R1): the processes hold 4 but only 3 exist (exceeded at row 2 (P2))",
        ),
        (
            "existing = [3, 1]\nallocation = [[2, 1]]\nrequest = [[0, 1]]",
            "`request` row 1 (P1), column 2 (R2)",
        ),
        (
            "existing = [3, 1]\nallocation = [[2, 1]]\navailable = [1, 1]",
            "`available` column 2 (R2) is 1",
        ),
        ("existing = [3, 1\n", "TOML"),
    ];
    for (text, expected) in cases {
        let (_dir, path) = scenario(text);
        let o = ipckit(&["deadlock", "detect", path.to_str().unwrap()]);
        assert_eq!(o.code, 2, "{text}: {}", o.stderr);
        assert!(o.stdout.is_empty());
        assert_eq!(o.stderr.lines().count(), 1, "one line: {}", o.stderr);
        assert!(o.stderr.starts_with("ipckit: "), "{}", o.stderr);
        if expected != "TOML" {
            assert!(o.stderr.contains(expected), "{text}\nexpected {expected:?} in {}", o.stderr);
        }
    }
    let o = ipckit(&["deadlock", "detect", "/nonexistent/ipckit/s.toml"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("cannot read /nonexistent/ipckit/s.toml"), "{}", o.stderr);
}

#[test]
fn safe_exits_0_with_the_sequence_and_1_when_unsafe() {
    let o = ipckit(&["deadlock", "safe", &example("banker.toml")]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "safe: P1, P3, P0, P2, P4\n");
    let o = ipckit(&["deadlock", "safe", &example("banker.toml"), "--json"]);
    assert_eq!(o.code, 0);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(keys(&v), ["safe", "sequence"]);
    assert_eq!(v, serde_json::json!({"safe": true, "sequence": ["P1", "P3", "P0", "P2", "P4"]}));

    let o = ipckit(&["deadlock", "safe", &example("unsafe.toml")]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.starts_with("unsafe"), "{}", o.stdout);
    let o = ipckit(&["deadlock", "safe", &example("unsafe.toml"), "--json"]);
    assert_eq!(o.code, 1);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"safe": false, "sequence": []}));
    let o = ipckit(&["deadlock", "safe", &example("unsafe.toml"), "--explain"]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("step 1: B needs (2) <= work = (2)"), "{}", o.stdout);

    // No maximum: bad input.
    let o = ipckit(&["deadlock", "safe", &example("course.toml")]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("needs the `maximum` matrix"), "{}", o.stderr);
}

#[test]
fn graph_writes_dot_to_stdout_and_svg_to_a_file() {
    let o = ipckit(&["deadlock", "graph", &example("deadlocked.toml")]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("digraph deadlock {"));
    assert!(o.stdout.contains("p0 -> r3 [color=\"#d62728\"]"), "{}", o.stdout);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.svg");
    let o = ipckit(&[
        "deadlock",
        "graph",
        &example("philosophers.toml"),
        "--format",
        "svg",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.is_empty());
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("deadlock: Aristotle, Kant, Spinoza, Marx, Russell"));
    let o = ipckit(&["deadlock", "graph", &example("course.toml"), "--format", "png"]);
    assert_eq!(o.code, 2);
}

#[test]
fn tour_step_runs() {
    let o = ipckit(&["tour", "--step", "deadlock"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("no deadlock: every process can finish, in the order P3, P2, P1"));
    assert!(o.stdout.contains("deadlock: P1, P2, P3 can never finish"));
    assert!(o.stdout.contains("P0 asks for (0 2 0): must wait, the state would be unsafe"));
}

#[test]
fn live_in_a_quiet_namespace_finds_no_deadlock() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let o = ipckit(&["--dir", dir, "deadlock", "live", "--json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    for f in ["processes", "objects", "waits", "holds", "deadlocked", "cycles"] {
        assert!(v[f].is_array(), "missing {f}: {v}");
    }
    assert!(v["deadlocked"].as_array().unwrap().is_empty());
    let o = ipckit(&["--dir", dir, "deadlock", "live"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("no deadlock"));
}

#[test]
fn live_finds_a_two_process_mutex_deadlock() {
    // The tour's deadlock step deadlocks two real processes on two mutexes, finds the cycle
    // with `deadlock live`, then cleans up; it fails if the cycle is not found.
    let o = ipckit(&["tour", "--step", "deadlock"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("cycle: P"), "{}", o.stdout);
    assert!(o.stdout.contains("mutex@shm#"), "{}", o.stdout);
}

#[test]
fn philosophers_deadlock_is_detected_live_then_cured() {
    let o = ipckit(&["demo", "philosophers", "--meals", "2"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("deadlock: all 5 philosophers"), "{}", o.stdout);
    let cycle = o.stdout.lines().find(|l| l.trim_start().starts_with("cycle: ")).expect("a cycle");
    assert_eq!(cycle.matches("-> P").count(), 5, "five processes on the cycle: {cycle}");
    assert!(o.stdout.contains("every philosopher ate 2 times; no deadlock"), "{}", o.stdout);
}
