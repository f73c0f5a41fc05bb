//! The OS layer: every system call ipckit makes goes through this module.
//!
//! Keeping the OS in one place keeps a port possible: the rest of the crate sees safe
//! functions with plain Rust types. Linux is the first (and for now only) target.
//!
//! * [`futex_wait`] / [`futex_wake`]: sleep on and wake a 32-bit word. The words may live in
//!   memory shared between processes, so the *shared* futex operations are used (never
//!   `FUTEX_PRIVATE_FLAG`).
//! * [`ProcessId`]: a process (or thread) named by its id *and* its start time, so that an id
//!   the kernel has reused is not mistaken for the old process.
//! * [`current_tid`]: the calling thread's id, cached per thread and refreshed after `fork`.
//! * [`monotonic_now`]: the monotonic clock.
//! * File descriptors: [`pipe2`], [`mkfifo`], [`open`], descriptor flags
//!   ([`set_nonblocking`], [`set_inheritable`]), pipe capacity ([`pipe_capacity`],
//!   [`set_pipe_capacity`]) and readiness ([`poll_fd`]).

#![allow(unsafe_code)] // SAFETY obligations are documented at each block.

mod fd;
mod file;
mod futex;
mod process;
mod sleepers;

pub use fd::{
    Readiness, is_fifo, is_inheritable, is_nonblocking, mkfifo, open, pipe_capacity, pipe2,
    poll_fd, set_inheritable, set_nonblocking, set_pipe_capacity,
};
pub use file::{allocate, count_flocks, lock_shared};
pub use futex::{FutexWait, futex_wait, futex_wake};
pub use process::{
    Liveness, ProcessId, cpus_available, cpus_online, current_pid, current_tid, current_uid,
    liveness, thread_group_of,
};
pub use sleepers::{FutexSleeper, futex_sleepers};

use std::time::Duration;

/// Reads `CLOCK_MONOTONIC`: time since an arbitrary point (boot), never going backwards.
///
/// Unlike [`std::time::Instant`], the value can be stored in shared memory and compared by
/// another process on the same machine.
#[doc(alias = "clock_gettime")]
pub fn monotonic_now() -> Duration {
    process::monotonic_now()
}

/// The name of user `uid` (`getpwuid_r`), if it has one.
#[doc(alias = "getpwuid_r")]
pub fn user_name(uid: u32) -> Option<String> {
    process::user_name(uid)
}

/// Wall-clock time in whole seconds since the Unix epoch, as System V stores its `*_time`
/// fields.
pub fn unix_time_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Like [`unix_time_secs`], from `CLOCK_REALTIME_COARSE` (the time of the last tick: a few
/// nanoseconds to read, for timestamps on fast paths such as `sem_otime`).
#[doc(alias = "clock_gettime")]
pub fn unix_time_secs_coarse() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives across the call.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if r == 0 { ts.tv_sec.max(0) as u64 } else { unix_time_secs() }
}
