//! `ipckit sem ...` and the semaphore demos, run as a user runs them, with `--dir` a
//! temporary directory (never the default namespace).

mod common;

use common::run as ipckit;
use std::process::Output;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

struct Ns(tempfile::TempDir);

impl Ns {
    fn new() -> Ns {
        Ns(tempfile::tempdir().unwrap())
    }
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--dir", self.0.path().to_str().unwrap()];
        all.extend_from_slice(args);
        ipckit(&all, T)
    }
    fn values(&self, key: &str) -> Vec<i64> {
        let o = self.run(&["sem", "get", "--key", key, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["values"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn create_op_get_set_and_exit_codes() {
    let ns = Ns::new();
    let o = ns.run(&["sem", "create", "--key", "0x42", "--count", "3", "--value", "1"]);
    assert_eq!(code(&o), Some(0));
    assert!(stdout(&o).trim().parse::<i32>().unwrap() > 0, "prints the id");
    assert_eq!(ns.values("0x42"), vec![1, 1, 1]);
    // One atomic step.
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "0:-1", "1:+2", "2:-1"])), Some(0));
    assert_eq!(ns.values("0x42"), vec![0, 3, 0]);
    // Would block with --nowait: exit 1, nothing changed (the first op could proceed).
    let o = ns.run(&["sem", "op", "--key", "0x42", "1:-1", "0:-1", "--nowait"]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
    assert_eq!(ns.values("0x42"), vec![0, 3, 0]);
    // Timeout: exit 1, nothing changed.
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "0:-1", "--timeout", "50"])), Some(1));
    // Wait for zero that holds.
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "0:0", "2:0"])), Some(0));
    // Bad semaphore number, out-of-range values: exit 2.
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "3:1"])), Some(2));
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "1:32767"])), Some(2));
    assert_eq!(code(&ns.run(&["sem", "set", "--key", "0x42", "1,2,40000"])), Some(2));
    assert_eq!(code(&ns.run(&["sem", "set", "--key", "0x42", "1,2"])), Some(2));
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "nonsense"])), Some(2));
    assert_eq!(ns.values("0x42"), vec![0, 3, 0]);
    assert_eq!(code(&ns.run(&["sem", "set", "--key", "0x42", "5,6,7"])), Some(0));
    assert_eq!(ns.values("0x42"), vec![5, 6, 7]);
    // --undo: reversed when the command's process exits, as in System V.
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x42", "0:-5", "--undo"])), Some(0));
    assert_eq!(ns.values("0x42"), vec![5, 6, 7]);
    // Not found: exit 1. Exclusive create of an existing key, a larger count: exit 2.
    assert_eq!(code(&ns.run(&["sem", "get", "--key", "0x43"])), Some(1));
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "0x43", "0:1"])), Some(1));
    assert_eq!(
        code(&ns.run(&["sem", "create", "--key", "0x42", "--count", "3", "--excl"])),
        Some(2)
    );
    assert_eq!(code(&ns.run(&["sem", "create", "--key", "0x42", "--count", "4"])), Some(2));
    assert_eq!(code(&ns.run(&["sem", "create", "--key", "0x44", "--count", "0"])), Some(2));
    let o = ns.run(&["sem", "get", "--key", "0x42"]);
    assert!(stdout(&o).contains("value"), "a table: {}", stdout(&o));
}

#[test]
fn a_blocked_op_proceeds_when_another_process_signals() {
    let ns = Ns::new();
    assert_eq!(code(&ns.run(&["sem", "create", "--key", "7", "--count", "1"])), Some(0));
    let dir = ns.0.path().to_str().unwrap().to_string();
    let waiter = std::thread::spawn(move || {
        ipckit(&["--dir", &dir, "sem", "op", "--key", "7", "0:-2", "--timeout", "20000"], T)
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(code(&ns.run(&["sem", "op", "--key", "7", "0:+3"])), Some(0));
    assert_eq!(code(&waiter.join().unwrap()), Some(0));
    assert_eq!(ns.values("7"), vec![1]);
}

#[test]
fn pingpong_demo_alternates_with_a_semaphore_set() {
    let o = ipckit(&["demo", "pingpong", "--rounds", "100"], T);
    assert_eq!(code(&o), Some(0));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 200);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, if i % 2 == 0 { "Ping" } else { "Pong" });
    }
}

#[test]
fn runners_demo_shows_the_flaw_and_keeps_the_order() {
    let o = ipckit(&["demo", "runners", "--leg-ms", "30"], T);
    assert_eq!(code(&o), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("flawed: ORDER VIOLATED: runner 3 started"), "{out}");
    assert!(out.contains("correct: the order held"), "{out}");
    // The correct half prints its legs in order.
    let correct = &out[out.find("correct:").unwrap()..];
    let legs: Vec<&str> = correct.lines().filter(|l| l.starts_with("  runner")).collect();
    assert_eq!(
        legs,
        [
            "  runner 1 starts",
            "  runner 1 finishes",
            "  runner 2 starts",
            "  runner 2 finishes",
            "  runner 3 starts",
            "  runner 3 finishes"
        ]
    );
}

#[test]
fn race_demo_loses_no_entry_with_the_semaphore() {
    let o = ipckit(&["demo", "race", "--entries", "5000", "--lock", "semaphore"], T);
    assert_eq!(code(&o), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("10000 distinct entries, 0 lost"), "{}", stdout(&o));
    let o = ipckit(&["demo", "race", "--entries", "5000", "--lock", "none"], T);
    assert_eq!(code(&o), Some(0));
    assert!(stdout(&o).contains("lost"));
}

#[test]
fn demo_list_and_tour_name_the_new_parts() {
    let o = ipckit(&["demo", "--list"], T);
    for name in ["runners", "race", "pingpong", "prodcons"] {
        assert!(stdout(&o).contains(name), "{name}");
    }
    let o = ipckit(&["tour", "--list"], T);
    assert!(stdout(&o).contains("semaphores"));
    let o = ipckit(&["tour", "--step", "semaphores"], T);
    assert_eq!(code(&o), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("ORDER VIOLATED"));
}
