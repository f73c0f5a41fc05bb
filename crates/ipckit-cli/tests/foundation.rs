//! The `ipckit` binary as a user runs it: tour, demos, exit codes.

mod common;

use common::run as ipckit;
use std::process::Output;
use std::time::Duration;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn pingpong_demo_alternates() {
    let o = ipckit(&["demo", "pingpong", "--rounds", "200"], Duration::from_secs(60));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 400);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, if i % 2 == 0 { "Ping" } else { "Pong" });
    }
}

#[test]
fn prodcons_demo_consumes_every_item_once() {
    let o = ipckit(
        &["demo", "prodcons", "--items", "5000", "--progress", "false"],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("5000 consumed, each exactly once"), "{}", stdout(&o));
}

#[test]
fn counter_demo_with_mutex_is_exact() {
    let o = ipckit(
        &["demo", "counter", "--processes", "3", "--increments", "20000"],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("counter = 60000, expected 60000, 0 lost"), "{}", stdout(&o));
}

#[test]
fn demo_list_names_the_demos() {
    let o = ipckit(&["demo", "--list"], Duration::from_secs(20));
    assert!(o.status.success());
    for name in ["pingpong", "prodcons", "counter"] {
        assert!(stdout(&o).contains(name));
    }
}

#[test]
fn tour_runs_to_the_end_and_leaves_nothing() {
    let o = ipckit(&["tour"], Duration::from_secs(300));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("Tour done"), "{out}");
    let ns = out
        .lines()
        .find_map(|l| l.strip_prefix("ipckit tour: every object lives in "))
        .and_then(|l| l.split(' ').next())
        .expect("the tour names its namespace");
    assert!(!std::path::Path::new(ns).exists(), "the tour left {ns} behind");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let o = ipckit(&["tour", "--step", "nonsense"], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ipckit: "));
    let o = ipckit(&["no-such-command"], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn readers_writers_demo_shows_starvation_and_fairness() {
    let o = ipckit(
        &["demo", "readers-writers", "--policy", "reader-preferred", "--duration-ms", "700"],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("W1 wants to write") && out.contains("R1 reads"), "{out}");
    assert!(out.contains("summary (reader-preferred)"), "{out}");
    // The demo itself fails (exit 2) if a writer starves under fair or writer-preferred.
    for policy in ["fair", "writer-preferred"] {
        let o = ipckit(
            &["demo", "readers-writers", "--policy", policy, "--duration-ms", "1000"],
            Duration::from_secs(60),
        );
        assert!(o.status.success(), "{policy}: {}", String::from_utf8_lossy(&o.stderr));
        let out = stdout(&o);
        assert!(out.contains("W1 WRITES") && out.contains("W2 WRITES"), "{out}");
    }
}

#[test]
fn spinlock_demo_counts_rmw() {
    let o = ipckit(
        &["demo", "spinlock", "--threads", "2", "--acquisitions", "5000"],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("TAS") && out.contains("TTAS") && out.contains("RMW/acquire"), "{out}");
}
