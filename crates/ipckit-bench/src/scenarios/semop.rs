//! `semop-pingpong` and `semop-uncontended`: ipckit's `SemaphoreSet::apply` next to System V
//! `semop` and a process-shared POSIX `sem_t`.
//!
//! * `semop-uncontended`: one process, P then V on one semaphore, nanoseconds per pair.
//! * `semop-pingpong`: two processes signal each other through two semaphores (P on one, V on
//!   the other), round trip in microseconds, on two cores and both pinned to one core.

use crate::harness::{Placement, Report, SharedAnon, fork_rtt, ns_per_iter};
use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemOp, SemaphoreSet};

const ROUNDS: u64 = 5_000;
const SAMPLES: usize = 5;

/// The round trip between this process and a forked child (see [`fork_rtt`]).
fn rtt(placement: Placement, round: impl FnMut(), child_loop: impl FnOnce(u64)) -> f64 {
    fork_rtt(placement, ROUNDS, SAMPLES, round, child_loop)
}

/// A set of `n` semaphores in a temporary namespace (removed with the directory).
fn ipckit_set(n: usize) -> (tempfile::TempDir, SemaphoreSet) {
    let dir = tempfile::Builder::new()
        .prefix("ipckit-bench-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temporary namespace");
    let ns = Namespace::at(dir.path()).expect("namespace");
    let set = SemaphoreSet::create(&ns, Key::PRIVATE, n, 0o600).expect("semaphore set");
    (dir, set)
}

fn sysv_set(n: i32) -> i32 {
    // SAFETY: a private set of `n` semaphores; removed by `sysv_remove`.
    let id = unsafe { libc::semget(libc::IPC_PRIVATE, n, 0o600 | libc::IPC_CREAT) };
    assert!(id >= 0, "semget failed");
    id
}

fn sysv_op(id: i32, num: u16, delta: i16) {
    let mut b = libc::sembuf { sem_num: num, sem_op: delta, sem_flg: 0 };
    // SAFETY: one valid sembuf for a live set; retried on EINTR.
    while unsafe { libc::semop(id, &mut b, 1) } != 0 {}
}

fn sysv_remove(id: i32) {
    // SAFETY: removes a set made by `sysv_set`.
    unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
}

pub fn uncontended(r: &mut Report) -> anyhow::Result<()> {
    const ITERS: u64 = 1_000_000;
    let (_dir, set) = ipckit_set(1);
    set.set(0, 1)?;
    let (p, v) = ([SemOp::new(0, -1)], [SemOp::new(0, 1)]);
    let ns = ns_per_iter(11, ITERS, |n| {
        for _ in 0..n {
            set.apply(&p).unwrap();
            set.apply(&v).unwrap();
        }
    });
    r.push("ipckit SemaphoreSet::apply", "P+V", ns, "ns");

    let id = sysv_set(1);
    sysv_op(id, 0, 1);
    let ns = ns_per_iter(11, ITERS / 10, |n| {
        for _ in 0..n {
            sysv_op(id, 0, -1);
            sysv_op(id, 0, 1);
        }
    });
    sysv_remove(id);
    r.push("System V semop", "P+V", ns, "ns");

    let mem = SharedAnon::new(4096);
    let s = mem.as_ptr() as *mut libc::sem_t;
    // SAFETY: a sem_t inside the shared mapping, initialized process-shared with 1 unit.
    unsafe { libc::sem_init(s, 1, 1) };
    let ns = ns_per_iter(11, ITERS, |n| {
        for _ in 0..n {
            // SAFETY: an initialized semaphore; the unit is always there, so no EINTR loop.
            unsafe {
                libc::sem_wait(s);
                libc::sem_post(s);
            }
        }
    });
    r.push("POSIX sem_t (pshared)", "P+V", ns, "ns");
    Ok(())
}

fn ipckit_rtt(p: Placement) -> f64 {
    let (_dir, set) = ipckit_set(2);
    let set = &set;
    rtt(
        p,
        || {
            set.apply(&[SemOp::new(0, 1)]).unwrap();
            set.apply(&[SemOp::new(1, -1)]).unwrap();
        },
        |n| {
            for _ in 0..n {
                set.apply(&[SemOp::new(0, -1)]).unwrap();
                set.apply(&[SemOp::new(1, 1)]).unwrap();
            }
        },
    )
}

pub fn pingpong(r: &mut Report) -> anyhow::Result<()> {
    for p in Placement::all() {
        let metric = format!("round trip, {}", p.label());
        r.push("ipckit SemaphoreSet::apply", &metric, ipckit_rtt(p), "us");
        r.push("System V semop", &metric, super::sem_pingpong::sysv_sem(p), "us");
        r.push("POSIX sem_t (pshared)", &metric, super::sem_pingpong::posix_sem(p), "us");
    }
    Ok(())
}
