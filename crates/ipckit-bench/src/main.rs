//! `ipckit-bench`: side-by-side benchmarks of ipckit against its peers, measured in one run.
//!
//! ```text
//! cargo run --release -p ipckit-bench -- [--json] [--list] [SCENARIO...]
//! ```
//!
//! Runs the named scenarios (all when none is named) and prints a table, or with `--json` one
//! JSON array of `{"scenario", "mechanism", "metric", "value", "unit"}` on stdout. Each
//! scenario measures ipckit and its peers in the same run and reports medians, because the
//! machine is noisy: compare the ratios, not the absolute numbers across runs.
//!
//! Scenarios live in [`scenarios`]; each issue adds its own module there.
//!
//! For profiling, `IPCKIT_BENCH_ONLY=NAME` limits the message-queue scenarios to the
//! mechanisms whose name contains `NAME` (e.g. `ipckit`): the numbers then have no peer.

mod harness;
mod scenarios;

use anyhow::bail;
use harness::Report;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipckit-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut json = false;
    let mut list = false;
    let mut names = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--json" => json = true,
            "--list" => list = true,
            "-h" | "--help" => {
                println!("usage: ipckit-bench [--json] [--list] [SCENARIO...]");
                return Ok(());
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => names.push(s.to_string()),
        }
    }
    let all = scenarios::all();
    if list {
        for s in &all {
            println!("{:<22} {}", s.name, s.about);
        }
        return Ok(());
    }
    for n in &names {
        if !all.iter().any(|s| s.name == n) {
            let known: Vec<_> = all.iter().map(|s| s.name).collect();
            bail!("unknown scenario {n:?} (known: {})", known.join(", "));
        }
    }
    let mut report = Report::default();
    for s in all.iter().filter(|s| names.is_empty() || names.iter().any(|n| n == s.name)) {
        eprintln!("running {} ...", s.name);
        report.scenario = s.name;
        (s.run)(&mut report)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report.rows)?);
    } else {
        report.print_table();
    }
    Ok(())
}
