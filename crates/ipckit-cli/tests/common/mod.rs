//! Running the built `ipckit` binary from a test, as a user would, bounded in time.
//!
//! Stdout and stderr are read while the process runs (a child that fills a pipe nobody
//! reads would block, and the test would only see a timeout); stdin gets the given bytes.

#![allow(dead_code)] // each test target uses a subset

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A `Command` for the built binary, with the caller's `IPCKIT_DIR` removed (tests name
/// their namespace with `--dir`, never the default one).
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipckit"));
    c.env_remove("IPCKIT_DIR");
    c
}

/// Runs `ipckit ARGS`, killing it (and failing the test) after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    run_with_stdin(command().args(args), b"", limit)
}

/// Runs `cmd` with `stdin` as its input, killing it (and failing the test) after `limit`.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipckit");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data); // the child may exit without reading: fine
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = wait(&mut child, limit, &format!("{cmd:?}"));
    let _ = writer.join();
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn wait(child: &mut std::process::Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
