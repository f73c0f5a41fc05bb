//! Shared by the multi-process test targets (`harness = false`): a tiny test runner, child
//! processes that re-execute the test binary in a role, bounded waits, scratch directories.
//!
//! A test target's `main` calls [`main`] with its tests and its child dispatcher: run without
//! `IPCKIT_TEST_ROLE` it runs the tests (names on the command line filter them) and ends with
//! the line `N passed, M failed`; with `IPCKIT_TEST_ROLE` set it plays that child role.

#![allow(dead_code)] // each test target uses a different subset

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long any wait on a child may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A named test.
pub type Test = (&'static str, fn());

/// Runs the tests, or the child role named by `IPCKIT_TEST_ROLE`.
pub fn main(tests: &[Test], child: fn(&str, &[String])) {
    if let Ok(role) = std::env::var("IPCKIT_TEST_ROLE") {
        let args: Vec<String> = std::env::args().skip(1).collect();
        child(&role, &args);
        return;
    }
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|p| name.contains(p.as_str())) {
            continue;
        }
        let t = Instant::now();
        match std::panic::catch_unwind(f) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.2?})", t.elapsed());
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// A scratch directory on tmpfs, removed at the end of the test.
pub fn scratch() -> tempfile::TempDir {
    let b = tempfile::Builder::new().prefix("ipckit-test-").tempdir_in("/dev/shm");
    b.or_else(|_| tempfile::tempdir()).expect("scratch directory")
}

/// A command that re-executes this test binary in `role` with `args`.
pub fn command(role: &str, args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args(args).env("IPCKIT_TEST_ROLE", role);
    c
}

/// Spawns a child in `role`.
pub fn spawn(role: &str, args: &[&str]) -> Child {
    command(role, args).spawn().expect("spawn child")
}

/// Waits for `c` (at most [`LIMIT`]) and asserts it succeeded.
pub fn wait_ok(c: Child) {
    let st = wait(c);
    assert!(st.success(), "child failed: {st}");
}

/// Waits for `c`, at most [`LIMIT`]; kills it and fails the test on timeout.
pub fn wait(c: Child) -> std::process::ExitStatus {
    wait_within(c, LIMIT)
}

/// Waits for `c` (at most `limit`) and asserts it succeeded.
pub fn wait_ok_within(c: Child, limit: Duration) {
    let st = wait_within(c, limit);
    assert!(st.success(), "child failed: {st}");
}

/// Waits for `c`, at most `limit`; kills it and fails the test on timeout.
pub fn wait_within(mut c: Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            panic!("child timed out after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `cond` every millisecond for at most `limit`; true if it became true.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}
