//! Futex wait and wake on a 32-bit word that may live in a shared mapping.
//!
//! See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html). ipckit uses the
//! *shared* operations (`FUTEX_WAIT`, `FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`): a private
//! futex is keyed by the virtual address in one process and would never meet a waiter in
//! another process that maps the same page at another address.
//!
//! Under `--cfg loom` the two calls are emulated with loom's mutex and condition variable, so
//! that a lost wake-up shows up in a model as a deadlock.

use crate::atomic::AtomicU32;
use std::time::Duration;

/// How a [`futex_wait`] ended. Every outcome may be spurious: callers re-check their
/// condition in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutexWait {
    /// Woken by [`futex_wake`] (or spuriously, e.g. by a signal).
    Woken,
    /// The word did not hold the expected value, so the call did not sleep (`EAGAIN`).
    Mismatch,
    /// The timeout passed (`ETIMEDOUT`).
    TimedOut,
}

#[cfg(not(loom))]
mod imp {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Sleeps while `*word == expected`, for at most `timeout` (`None`: no limit).
    #[doc(alias = "futex")]
    #[doc(alias = "FUTEX_WAIT")]
    pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> FutexWait {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is a live reference to a 4-byte aligned atomic for the whole call; the
        // kernel only reads it (atomically) and may sleep on its address. `ts_ptr` is null or
        // points to a timespec that outlives the call. FUTEX_WAIT takes a relative timeout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        if r == 0 {
            return FutexWait::Woken;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => FutexWait::Mismatch,
            Some(libc::ETIMEDOUT) => FutexWait::TimedOut,
            // EINTR: a signal; report as a (spurious) wake-up.
            _ => {
                // Keep the compiler from assuming the word is unchanged.
                let _ = word.load(Ordering::Relaxed);
                FutexWait::Woken
            }
        }
    }

    /// Wakes up to `n` threads sleeping on `word`; returns how many were woken.
    #[doc(alias = "futex")]
    #[doc(alias = "FUTEX_WAKE")]
    pub fn futex_wake(word: &AtomicU32, n: u32) -> usize {
        let n = n.min(i32::MAX as u32) as i32;
        // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is a live reference.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                n,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        if r < 0 { 0 } else { r as usize }
    }
}

#[cfg(loom)]
mod imp {
    use super::*;
    use loom::sync::{Condvar, Mutex};
    use std::sync::atomic::Ordering;

    struct Table {
        next: u64,
        // (address, ticket) of each sleeper that has not been woken yet.
        sleepers: Vec<(usize, u64)>,
    }

    loom::lazy_static! {
        static ref TABLE: (Mutex<Table>, Condvar) =
            (Mutex::new(Table { next: 0, sleepers: Vec::new() }), Condvar::new());
    }

    /// Loom emulation: timeouts are ignored, so a missing wake-up deadlocks the model.
    pub fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) -> FutexWait {
        let (lock, cv) = &*TABLE;
        let mut t = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return FutexWait::Mismatch;
        }
        let addr = word as *const AtomicU32 as usize;
        let ticket = t.next;
        t.next += 1;
        t.sleepers.push((addr, ticket));
        while t.sleepers.iter().any(|&(_, k)| k == ticket) {
            t = cv.wait(t).unwrap();
        }
        FutexWait::Woken
    }

    /// Loom emulation of `FUTEX_WAKE`.
    pub fn futex_wake(word: &AtomicU32, n: u32) -> usize {
        let (lock, cv) = &*TABLE;
        let mut t = lock.lock().unwrap();
        let addr = word as *const AtomicU32 as usize;
        let mut woken = 0usize;
        t.sleepers.retain(|&(a, _)| {
            if a == addr && woken < n as usize {
                woken += 1;
                false
            } else {
                true
            }
        });
        if woken > 0 {
            cv.notify_all();
        }
        woken
    }
}

pub use imp::{futex_wait, futex_wake};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    #[test]
    fn mismatch_returns_at_once() {
        let w = AtomicU32::new(1);
        assert_eq!(futex_wait(&w, 0, None), FutexWait::Mismatch);
    }

    #[test]
    fn timeout_expires() {
        let w = AtomicU32::new(0);
        let r = futex_wait(&w, 0, Some(Duration::from_millis(10)));
        assert!(matches!(r, FutexWait::TimedOut | FutexWait::Woken));
    }

    #[test]
    fn wake_reaches_sleeper() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                futex_wait(&w2, 0, Some(Duration::from_secs(5)));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, Ordering::Release);
        futex_wake(&w, 1);
        t.join().unwrap();
        assert_eq!(futex_wake(&w, 1), 0, "nobody sleeps any more");
    }
}
