//! The coordination demos run as they are, with small parameters: each checks its own
//! invariant (priority order, wake-up ticks, money preserved) and exits 2 if it fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipckit"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipckit");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ipckit demo {args:?} timed out");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ipckit demo {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn printers_grant_by_priority() {
    let out = demo(&["printers", "--jobs", "6", "--print-ms", "10"]);
    assert!(out.contains("is by priority, then arrival"), "{out}");
}

#[test]
fn alarm_wakes_each_sleeper_at_its_tick() {
    let out = demo(&["alarm", "--ticks", "3,1,2,1", "--tick-ms", "5"]);
    assert!(out.contains("tick  1: wakes B (asked for 1) wakes D (asked for 1)"), "{out}");
    assert!(out.contains("tick  3: wakes A (asked for 3)"), "{out}");
}

#[test]
fn bank_preserves_the_total() {
    let out = demo(&["bank", "--transfers", "500"]);
    assert!(out.contains("total 500"), "{out}");
    assert!(out.contains("the customer withdrew 250"), "{out}");
}
