//! Condition variables with Mesa semantics (Lampson and Redell, 1980).
//!
//! A waiter atomically releases the mutex and sleeps; a notifier wakes it, but the waiter runs
//! again only after re-acquiring the mutex, by which time the condition may have changed
//! again. So a Mesa wait always sits in a loop: use [`Condvar::wait_while`].
//!
//! ## State
//!
//! | word | meaning |
//! |---|---|
//! | `seq` | bumped by every notify; the futex word. A waiter reads it *while holding the mutex*, then sleeps only if it is unchanged, so a notify after the predicate changed cannot be missed. |
//! | `waiters` | threads between reading `seq` and leaving the futex call; notify skips the wake syscall when it is zero (Dekker pattern, sequentially consistent). |

use super::mutex::{LockResult, MutexGuard};
use super::raw::RawLock;
use crate::atomic::{AtomicU32, Ordering, dekker_point};
use crate::shm::ShmSafe;
use crate::sys;
use std::fmt;
use std::time::{Duration, Instant};

/// Whether a timed wait returned because its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout passed.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable (Mesa semantics) for use with [`Mutex`](super::Mutex); process-shared
/// when placed in a shared mapping with its mutex. Zeroed memory is a valid `Condvar`.
///
/// ```
/// use ipckit::sync::{Condvar, Mutex};
/// use std::sync::Arc;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// std::thread::spawn(move || {
///     *p2.0.lock().unwrap() = true;
///     p2.1.notify_one();
/// });
/// let (m, cv) = &*pair;
/// let ready = cv.wait_while(m.lock().unwrap(), |r| !*r).unwrap();
/// assert!(*ready);
/// ```
#[repr(C)]
pub struct Condvar {
    seq: AtomicU32,
    waiters: AtomicU32,
}

// SAFETY: repr(C), two atomics; any value is valid (a wrong `waiters` only costs a spurious
// wake syscall or, if hostile, a missed wake which timeouts bound); no Drop.
unsafe impl ShmSafe for Condvar {}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    /// A new condition variable.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Condvar { seq: AtomicU32::new(0), waiters: AtomicU32::new(0) }
    }

    /// A new condition variable.
    #[cfg(loom)]
    pub fn new() -> Self {
        Condvar { seq: AtomicU32::new(0), waiters: AtomicU32::new(0) }
    }

    fn wait_inner<'a, T: ?Sized, R: RawLock>(
        &self,
        guard: MutexGuard<'a, T, R>,
        deadline: Option<Instant>,
    ) -> (LockResult<MutexGuard<'a, T, R>>, bool) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        dekker_point();
        let mutex = guard.into_mutex();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let timed_out = timeout == Some(Duration::ZERO)
            || sys::futex_wait(&self.seq, seq, timeout) == sys::FutexWait::TimedOut;
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        (mutex.guard(mutex.raw().lock()), timed_out)
    }

    /// Releases the guard's mutex, sleeps until notified (or spuriously woken), and locks the
    /// mutex again. Mesa semantics: re-check the condition (see [`wait_while`](Self::wait_while)).
    ///
    /// Errors are those of [`Mutex::lock`](super::Mutex::lock) on re-acquiring.
    pub fn wait<'a, T: ?Sized, R: RawLock>(
        &self,
        guard: MutexGuard<'a, T, R>,
    ) -> LockResult<MutexGuard<'a, T, R>> {
        self.wait_inner(guard, None).0
    }

    /// Waits while `condition` holds; returns with the mutex locked and the condition false.
    pub fn wait_while<'a, T: ?Sized, R: RawLock>(
        &self,
        mut guard: MutexGuard<'a, T, R>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T, R>> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait`](Self::wait), for at most `timeout`.
    pub fn wait_timeout<'a, T: ?Sized, R: RawLock>(
        &self,
        guard: MutexGuard<'a, T, R>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T, R>, WaitTimeoutResult)> {
        let (r, timed_out) = self.wait_inner(guard, Some(Instant::now() + timeout));
        let res = WaitTimeoutResult(timed_out);
        r.map(|g| (g, res)).map_err(|e| e.map(|g| (g, res)))
    }

    /// Waits while `condition` holds, for at most `timeout` in all. On return the mutex is
    /// locked; `timed_out()` tells whether the condition may still hold.
    pub fn wait_timeout_while<'a, T: ?Sized, R: RawLock>(
        &self,
        mut guard: MutexGuard<'a, T, R>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<(MutexGuard<'a, T, R>, WaitTimeoutResult)> {
        let deadline = Instant::now() + timeout;
        while condition(&mut *guard) {
            if Instant::now() >= deadline {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            let (r, _) = self.wait_inner(guard, Some(deadline));
            guard = r.map_err(|e| e.map(|g| (g, WaitTimeoutResult(false))))?;
        }
        Ok((guard, WaitTimeoutResult(false)))
    }

    /// Wakes one waiter, if any.
    pub fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        dekker_point();
        if self.waiters.load(Ordering::SeqCst) != 0 {
            sys::futex_wake(&self.seq, 1);
        }
    }

    /// Wakes every waiter. (They then re-acquire the mutex one at a time.)
    pub fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        dekker_point();
        if self.waiters.load(Ordering::SeqCst) != 0 {
            sys::futex_wake(&self.seq, u32::MAX);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Mutex;
    use std::sync::Arc;

    #[test]
    fn timeout_reports_timed_out() {
        let m = Mutex::new(());
        let cv = Condvar::new();
        let (g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(20)).unwrap();
        assert!(r.timed_out());
        drop(g);
        let (_g, r) =
            cv.wait_timeout_while(m.lock().unwrap(), Duration::from_millis(20), |_| true).unwrap();
        assert!(r.timed_out());
    }

    #[test]
    fn notify_all_wakes_everyone() {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let p = pair.clone();
                std::thread::spawn(move || {
                    let (m, cv) = &*p;
                    let (g, r) = cv
                        .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(10), |v| *v == 0)
                        .unwrap();
                    assert!(!r.timed_out());
                    assert_eq!(*g, 1);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        *pair.0.lock().unwrap() = 1;
        pair.1.notify_all();
        for h in hs {
            h.join().unwrap();
        }
    }
}
