//! Dijkstra's counting semaphore (1965): `P` (proberen, wait) and `V` (verhogen, signal).
//!
//! ## State
//!
//! | word | meaning |
//! |---|---|
//! | `count` | units available; the futex word sleepers wait on. Never negative: `P` takes units only by compare-and-swap from a value at least as large. |
//! | `sleepers` bits 0..=30 | threads that are (about to be) asleep in `P` |
//! | `sleepers` bit 31 `WANTS_MANY` | some sleeper asks for more than one unit |
//!
//! `V` adds to `count` and calls `futex_wake` only when `sleepers` is non-zero: one sleeper per
//! unit added, or all of them when some sleeper wants several units (waking one that wants 3
//! when only 1 is there would strand the one that wants 1). Both sides use sequentially
//! consistent operations on the two words (the Dekker pattern): either `V` sees the sleeper,
//! or the sleeper's futex call sees the new count and does not sleep.
//!
//! A binary semaphore is a `Semaphore` created with 1 unit whose users only `p`/`v` by 1:
//! it is then a lock that any thread or process may release (unlike a mutex, which only its
//! owner may unlock) — the tool for signaling "B may go on" between processes.

use super::backoff::{SIGNAL_SPIN, futex_wait_until, spin_or_yield_until};
use crate::atomic::{AtomicU32, Ordering, dekker_point};
use crate::shm::ShmSafe;
use crate::sys;
use std::fmt;
use std::time::{Duration, Instant};

const WANTS_MANY: u32 = 1 << 31;
const SLEEPER_MASK: u32 = WANTS_MANY - 1;

/// `V` would push the count past [`Semaphore::MAX`] (`EOVERFLOW`); nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("semaphore count would exceed its maximum (EOVERFLOW)")]
pub struct Overflow;

/// A counting semaphore, usable between threads and, placed in a shared mapping, between
/// processes. Zeroed memory is a semaphore with count 0.
///
/// ```
/// use ipckit::sync::Semaphore;
///
/// let s = Semaphore::new(1);
/// s.p();                  // take the unit
/// assert!(!s.try_p());    // none left
/// s.v().unwrap();         // give it back
/// assert_eq!(s.count(), 1);
/// ```
#[repr(C)]
pub struct Semaphore {
    count: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: repr(C), two atomics; any count is valid, a corrupt sleepers word only causes extra
// or missing futex_wake calls (sleepers also use timeouts where asked); no Drop.
unsafe impl ShmSafe for Semaphore {}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("count", &self.count()).finish()
    }
}

impl Semaphore {
    /// The largest count (`SEM_VALUE_MAX` on Linux).
    pub const MAX: u32 = i32::MAX as u32;

    /// A semaphore holding `count` units (clamped to [`MAX`](Self::MAX)).
    pub fn new(count: u32) -> Self {
        Semaphore { count: AtomicU32::new(count.min(Self::MAX)), sleepers: AtomicU32::new(0) }
    }

    /// Units available now (a snapshot).
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Threads waiting in `p` right now (a snapshot).
    pub fn waiting(&self) -> u32 {
        self.sleepers.load(Ordering::Relaxed) & SLEEPER_MASK
    }

    /// Takes `n` units if they are there now. Never blocks.
    #[inline]
    pub fn try_p_n(&self, n: u32) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c >= n {
            // Acquire: what the V-er did before giving the units happens-before our use.
            match self.count.compare_exchange_weak(c, c - n, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Takes one unit if there is one now. Never blocks.
    #[inline]
    pub fn try_p(&self) -> bool {
        self.try_p_n(1)
    }

    /// `P`: takes one unit, blocking until there is one.
    #[inline]
    pub fn p(&self) {
        if !self.try_p_n(1) {
            self.p_slow(1, None);
        }
    }

    /// Takes `n` units at once, blocking until `n` are there. `n` above [`MAX`](Self::MAX)
    /// could never be satisfied and blocks forever, like any unsatisfiable wait.
    pub fn p_n(&self, n: u32) {
        if !self.try_p_n(n) {
            self.p_slow(n, None);
        }
    }

    /// Takes one unit, waiting at most `timeout`; `false` if the time ran out.
    pub fn p_timeout(&self, timeout: Duration) -> bool {
        self.p_n_timeout(1, timeout)
    }

    /// Takes `n` units, waiting at most `timeout`; `false` if the time ran out.
    pub fn p_n_timeout(&self, n: u32, timeout: Duration) -> bool {
        self.try_p_n(n) || self.p_slow(n, Some(Instant::now() + timeout))
    }

    #[cold]
    fn p_slow(&self, n: u32, deadline: Option<Instant>) -> bool {
        // Spin while that pays; else yield once (the V may be waiting for our CPU).
        let ready = || self.count.load(Ordering::Relaxed) >= n;
        if spin_or_yield_until(SIGNAL_SPIN, ready) && self.try_p_n(n) {
            return true;
        }
        if n > 1 {
            self.sleepers.fetch_or(WANTS_MANY, Ordering::SeqCst);
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        dekker_point();
        let got = loop {
            let c = self.count.load(Ordering::SeqCst);
            if c >= n {
                if self
                    .count
                    .compare_exchange(c, c - n, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break true;
                }
                continue;
            }
            if !futex_wait_until(&self.count, c, deadline) {
                break false;
            }
        };
        let prev = self.sleepers.fetch_sub(1, Ordering::SeqCst);
        if prev & SLEEPER_MASK == 1 && prev & WANTS_MANY != 0 {
            // Last sleeper out clears the flag, unless someone registered meanwhile.
            let _ =
                self.sleepers.compare_exchange(WANTS_MANY, 0, Ordering::SeqCst, Ordering::Relaxed);
        }
        got
    }

    /// `V`: adds one unit, waking a sleeper if there is one.
    #[inline]
    pub fn v(&self) -> Result<(), Overflow> {
        self.v_n(1)
    }

    /// Adds `n` units at once, waking as many sleepers as can use them.
    /// Fails with [`Overflow`] (adding nothing) if the count would pass [`MAX`](Self::MAX).
    pub fn v_n(&self, n: u32) -> Result<(), Overflow> {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            let new = c.checked_add(n).filter(|&v| v <= Self::MAX).ok_or(Overflow)?;
            // SeqCst: ordered before the read of `sleepers` below (see module docs); also a
            // release of our prior writes to whoever takes the units.
            match self.count.compare_exchange_weak(c, new, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        dekker_point();
        let s = self.sleepers.load(Ordering::SeqCst);
        if s & SLEEPER_MASK != 0 {
            let wake = if s & WANTS_MANY != 0 { u32::MAX } else { n.min(s & SLEEPER_MASK) };
            sys::futex_wake(&self.count, wake);
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_and_never_goes_negative() {
        let s = Semaphore::new(2);
        assert!(s.try_p_n(2));
        assert!(!s.try_p());
        assert_eq!(s.count(), 0);
        s.v_n(3).unwrap();
        assert!(!s.try_p_n(4));
        assert_eq!(s.count(), 3);
        assert!(!s.p_timeout(Duration::ZERO) || s.count() == 2);
    }

    #[test]
    fn overflow_adds_nothing() {
        let s = Semaphore::new(Semaphore::MAX - 1);
        assert_eq!(s.v_n(2), Err(Overflow));
        assert_eq!(s.count(), Semaphore::MAX - 1);
        s.v().unwrap();
        assert_eq!(s.v(), Err(Overflow));
    }

    #[test]
    fn timeout_expires_without_units() {
        let s = Semaphore::new(0);
        let t = Instant::now();
        assert!(!s.p_timeout(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(s.waiting(), 0);
    }

    #[test]
    fn v_wakes_sleepers_of_different_sizes() {
        // A sleeper wanting 3 and one wanting 1: a single V must not strand the second.
        let s = Arc::new(Semaphore::new(0));
        let big = {
            let s = s.clone();
            std::thread::spawn(move || s.p_n_timeout(3, Duration::from_secs(5)))
        };
        let small = {
            let s = s.clone();
            std::thread::spawn(move || s.p_n_timeout(1, Duration::from_secs(5)))
        };
        while s.waiting() < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        s.v().unwrap();
        assert!(small.join().unwrap());
        s.v_n(3).unwrap();
        assert!(big.join().unwrap());
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn many_threads_balance() {
        let s = Arc::new(Semaphore::new(0));
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        s.v().unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        s.p();
                    }
                })
            })
            .collect();
        for h in producers.into_iter().chain(consumers) {
            h.join().unwrap();
        }
        assert_eq!(s.count(), 0);
    }
}
