//! `sem-pingpong`: the round trip between two processes that signal each other, for ipckit's
//! `Semaphore`, a process-shared POSIX `sem_t`, a System V semaphore set (`semop`) and a pair
//! of pipes; with the processes on two cores and, separately, both pinned to one core.

use crate::harness::{Placement, Report, SharedAnon, fork_rtt};
use ipckit::sync::Semaphore;

const ROUNDS: u64 = 5_000;
const SAMPLES: usize = 5;

/// The round trip between this process and a forked child (see [`fork_rtt`]).
fn rtt(placement: Placement, round: impl FnMut(), child_loop: impl FnOnce(u64)) -> f64 {
    fork_rtt(placement, ROUNDS, SAMPLES, round, child_loop)
}

fn ipckit_sem(p: Placement) -> f64 {
    let mem = SharedAnon::new(4096);
    let ping = mem.get::<Semaphore>(0);
    let pong = mem.get::<Semaphore>(64);
    rtt(
        p,
        || {
            ping.v().unwrap();
            pong.p();
        },
        |n| {
            for _ in 0..n {
                ping.p();
                pong.v().unwrap();
            }
        },
    )
}

/// Round trip through two process-shared POSIX `sem_t`s (also used by `semop-pingpong`).
pub(super) fn posix_sem(p: Placement) -> f64 {
    let mem = SharedAnon::new(4096);
    let ping = mem.as_ptr() as *mut libc::sem_t;
    // SAFETY: two sem_t's inside the shared mapping, 64 bytes apart (sem_t is 32 bytes),
    // initialized process-shared before the fork.
    let pong = unsafe { mem.as_ptr().add(64) } as *mut libc::sem_t;
    // SAFETY: as above.
    unsafe {
        libc::sem_init(ping, 1, 0);
        libc::sem_init(pong, 1, 0);
    }
    let wait = |s: *mut libc::sem_t| {
        // SAFETY: `s` is an initialized process-shared semaphore; retry on EINTR.
        while unsafe { libc::sem_wait(s) } != 0 {}
    };
    // SAFETY (closures below): same semaphores.
    rtt(
        p,
        || {
            // SAFETY: initialized semaphore.
            unsafe { libc::sem_post(ping) };
            wait(pong);
        },
        |n| {
            for _ in 0..n {
                wait(ping);
                // SAFETY: initialized semaphore.
                unsafe { libc::sem_post(pong) };
            }
        },
    )
}

/// Round trip through a System V set of two semaphores (also used by `semop-pingpong`).
pub(super) fn sysv_sem(p: Placement) -> f64 {
    // SAFETY: a private set of 2 semaphores, removed below.
    let id = unsafe { libc::semget(libc::IPC_PRIVATE, 2, 0o600 | libc::IPC_CREAT) };
    assert!(id >= 0, "semget failed");
    let op = move |num: u16, delta: i16| {
        let mut b = libc::sembuf { sem_num: num, sem_op: delta, sem_flg: 0 };
        // SAFETY: one valid sembuf for our set; retry on EINTR.
        while unsafe { libc::semop(id, &mut b, 1) } != 0 {}
    };
    let us = rtt(
        p,
        || {
            op(0, 1);
            op(1, -1);
        },
        |n| {
            for _ in 0..n {
                op(0, -1);
                op(1, 1);
            }
        },
    );
    // SAFETY: removes the set made above.
    unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
    us
}

fn pipes(p: Placement) -> f64 {
    let mut a = [0; 2];
    let mut b = [0; 2];
    // SAFETY: two fresh pipes; the fds are closed below.
    unsafe {
        assert_eq!(libc::pipe(a.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(b.as_mut_ptr()), 0);
    }
    let xfer = |w: i32, r: i32| {
        let mut byte = [1u8];
        // SAFETY: valid pipe ends and a one-byte buffer.
        unsafe {
            libc::write(w, byte.as_ptr() as *const libc::c_void, 1);
            libc::read(r, byte.as_mut_ptr() as *mut libc::c_void, 1);
        }
    };
    let us = rtt(
        p,
        || xfer(a[1], b[0]),
        |n| {
            for _ in 0..n {
                let mut byte = [0u8];
                // SAFETY: valid pipe ends and a one-byte buffer.
                unsafe {
                    libc::read(a[0], byte.as_mut_ptr() as *mut libc::c_void, 1);
                    libc::write(b[1], byte.as_ptr() as *const libc::c_void, 1);
                }
            }
        },
    );
    for fd in a.into_iter().chain(b) {
        // SAFETY: closes the fds opened above.
        unsafe { libc::close(fd) };
    }
    us
}

pub fn run(r: &mut Report) -> anyhow::Result<()> {
    for p in Placement::all() {
        let metric = format!("round trip, {}", p.label());
        r.push("ipckit Semaphore", &metric, ipckit_sem(p), "us");
        r.push("POSIX sem_t (pshared)", &metric, posix_sem(p), "us");
        r.push("System V semop", &metric, sysv_sem(p), "us");
        r.push("pipe pair", &metric, pipes(p), "us");
    }
    Ok(())
}
