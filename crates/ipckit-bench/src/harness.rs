//! Measuring: medians of repeated samples, processes pinned to CPUs, shared anonymous memory
//! across `fork`, and the report.

#![allow(dead_code)] // helpers are used by some scenarios only

use serde::Serialize;
use std::time::{Duration, Instant};

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub mechanism: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
}

/// The rows measured so far.
#[derive(Debug, Default)]
pub struct Report {
    pub scenario: &'static str,
    pub rows: Vec<Row>,
}

impl Report {
    /// Records a number for the current scenario.
    pub fn push(&mut self, mechanism: &str, metric: &str, value: f64, unit: &str) {
        self.rows.push(Row {
            scenario: self.scenario.to_string(),
            mechanism: mechanism.to_string(),
            metric: metric.to_string(),
            value,
            unit: unit.to_string(),
        });
    }

    /// Prints the rows as a table grouped by scenario and metric.
    pub fn print_table(&self) {
        println!("{:<20} {:<32} {:<28} {:>14} unit", "scenario", "mechanism", "metric", "value");
        for r in &self.rows {
            println!(
                "{:<20} {:<32} {:<28} {:>14} {}",
                r.scenario,
                r.mechanism,
                r.metric,
                fmt_value(r.value),
                r.unit
            );
        }
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let n = samples.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { samples[n / 2] } else { (samples[n / 2 - 1] + samples[n / 2]) / 2.0 }
}

/// Runs `f(iters)` `samples` times and returns the median nanoseconds per iteration.
pub fn ns_per_iter(samples: usize, iters: u64, mut f: impl FnMut(u64)) -> f64 {
    f(iters / 10 + 1); // warm up
    let mut v: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            f(iters);
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    median(&mut v)
}

/// Number of CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling thread (and a later `fork` child) to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it; sched_setaffinity
    // reads it. A failure (CPU missing) is ignored: the measurement then runs unpinned.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Undoes [`pin_to_cpu`]: allow every CPU.
pub fn unpin() {
    // SAFETY: as in `pin_to_cpu`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for c in 0..cpus().max(64) {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Where two benchmark processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Parent on CPU 0, child on CPU 1.
    TwoCores,
    /// Both on CPU 0.
    OneCore,
}

impl Placement {
    pub fn label(self) -> &'static str {
        match self {
            Placement::TwoCores => "2 cores",
            Placement::OneCore => "1 core",
        }
    }

    /// Both placements, or only one core when the machine has one.
    pub fn all() -> Vec<Placement> {
        if cpus() >= 2 {
            vec![Placement::TwoCores, Placement::OneCore]
        } else {
            vec![Placement::OneCore]
        }
    }

    pub fn parent_cpu(self) -> usize {
        0
    }

    pub fn child_cpu(self) -> usize {
        match self {
            Placement::TwoCores => 1,
            Placement::OneCore => 0,
        }
    }
}

/// Anonymous memory shared with children made by [`fork_child`] (`MAP_SHARED|MAP_ANONYMOUS`).
pub struct SharedAnon {
    ptr: *mut u8,
    len: usize,
}

impl SharedAnon {
    pub fn new(len: usize) -> SharedAnon {
        // SAFETY: a fresh anonymous shared mapping; checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(ptr != libc::MAP_FAILED, "mmap failed");
        SharedAnon { ptr: ptr as *mut u8, len }
    }

    /// A reference to a `T` at `offset`; `T` must be valid when zeroed (ipckit's primitives
    /// and atomics are).
    pub fn get<T: ipckit::shm::ShmSafe>(&self, offset: usize) -> &T {
        assert!(offset + size_of::<T>() <= self.len && offset.is_multiple_of(align_of::<T>()));
        // SAFETY: in bounds and aligned (asserted); zeroed memory is valid for ShmSafe types
        // used here; the mapping outlives the reference.
        unsafe { &*(self.ptr.add(offset) as *const T) }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for SharedAnon {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Forks a child that pins itself to `cpu`, runs `f`, and exits without unwinding. The
/// benchmark is single-threaded when it forks, so the child may allocate.
pub fn fork_child(cpu: Option<usize>, f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: fork in a single-threaded process; the child only runs `f` and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        if let Some(c) = cpu {
            pin_to_cpu(c);
        }
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: ends the child without running the parent's atexit handlers twice.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// The round trip between this process and a forked child: runs `child_loop` in a child
/// (pinned as `placement` says) and `round` in the parent `(samples + 1) * rounds` times, the
/// first `rounds` as warm-up; returns the median round trip in microseconds.
pub fn fork_rtt(
    placement: Placement,
    rounds: u64,
    samples: usize,
    mut round: impl FnMut(),
    child_loop: impl FnOnce(u64),
) -> f64 {
    let total = (samples as u64 + 1) * rounds;
    let pid = fork_child(Some(placement.child_cpu()), || child_loop(total));
    pin_to_cpu(placement.parent_cpu());
    for _ in 0..rounds {
        round();
    }
    let mut v: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..rounds {
                round();
            }
            t.elapsed().as_secs_f64() * 1e6 / rounds as f64
        })
        .collect();
    unpin();
    assert!(wait_child(pid, Duration::from_secs(60)), "round-trip child failed");
    median(&mut v)
}

/// Waits for a forked child, killing it after `limit`.
pub fn wait_child(pid: libc::pid_t, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child without blocking.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if Instant::now() >= deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
