//! Adaptive waiting: spin briefly, then sleep.
//!
//! Waking a sleeping process costs microseconds (tens on a virtual machine); handing a cache
//! line to another core costs about 100 ns. So a waiter first spins for a bounded time,
//! re-checking its condition with plain loads, and only then sleeps on a futex. Spinning is
//! pointless — and harmful — when the process may use only one CPU: the peer it waits for
//! cannot run while it spins. [`spinning_pays`] tells which case holds (it respects
//! `taskset`/`sched_setaffinity`).

use crate::atomic::spin_loop;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Exponential backoff for spin loops, in the style of `crossbeam_utils::Backoff`.
///
/// ```
/// use ipckit::sync::Backoff;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let ready = AtomicBool::new(true);
/// let mut backoff = Backoff::new();
/// while !ready.load(Ordering::Acquire) {
///     backoff.snooze();
/// }
/// ```
#[derive(Debug, Default)]
pub struct Backoff {
    step: u32,
}

const SPIN_LIMIT: u32 = 6;
const YIELD_LIMIT: u32 = 10;

impl Backoff {
    /// A fresh backoff.
    pub const fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Starts over.
    pub fn reset(&mut self) {
        self.step = 0;
    }

    /// Spins `2^step` times (capped), for retrying a failed compare-and-swap.
    #[inline]
    pub fn spin(&mut self) {
        for _ in 0..1u32 << self.step.min(SPIN_LIMIT) {
            spin_loop();
        }
        if self.step <= SPIN_LIMIT {
            self.step += 1;
        }
    }

    /// Spins, and after a while yields the CPU, for waiting on another thread's progress.
    pub fn snooze(&mut self) {
        if self.step <= SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                spin_loop();
            }
        } else {
            #[cfg(not(loom))]
            std::thread::yield_now();
            #[cfg(loom)]
            loom::thread::yield_now();
        }
        if self.step <= YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// True once the backoff has grown so long that the caller should block instead.
    pub fn is_completed(&self) -> bool {
        self.step > YIELD_LIMIT
    }
}

/// Whether spinning before sleeping can pay off: true when this process may run on more than
/// one CPU (so the thread we wait for can make progress while we spin). Computed once.
pub fn spinning_pays() -> bool {
    #[cfg(loom)]
    {
        false
    }
    #[cfg(not(loom))]
    {
        static MULTI: OnceLock<bool> = OnceLock::new();
        *MULTI.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()) > 1)
    }
}

/// Spins until `ready()` returns true or `budget` has passed; returns the last `ready()`.
///
/// Returns `false` at once when [`spinning_pays`] is false. The clock is read only every few
/// dozen iterations, so the loop mostly issues `pause` instructions and plain loads.
#[inline]
pub(crate) fn spin_until(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    if !spinning_pays() {
        return ready();
    }
    let mut step = 0u32;
    let mut start: Option<Instant> = None;
    loop {
        if ready() {
            return true;
        }
        for _ in 0..1u32 << step {
            spin_loop();
        }
        if step < SPIN_LIMIT {
            step += 1;
        } else {
            let s = *start.get_or_insert_with(Instant::now);
            if s.elapsed() >= budget {
                return ready();
            }
        }
    }
}

// Keep `OnceLock` used under loom too.
#[cfg(loom)]
const _: Option<OnceLock<()>> = None;

/// How long a lock waiter spins before it sleeps.
pub(crate) const LOCK_SPIN: Duration = Duration::from_micros(5);
/// How long a signal waiter (semaphore, event, condition) spins before it sleeps: about the
/// cost of a sleep and wake-up on a virtual machine, which bounds the loss at 2x.
pub(crate) const SIGNAL_SPIN: Duration = Duration::from_micros(30);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_completes() {
        let mut b = Backoff::new();
        let mut n = 0;
        while !b.is_completed() {
            b.snooze();
            n += 1;
        }
        assert_eq!(n, YIELD_LIMIT + 1);
        b.reset();
        assert!(!b.is_completed());
    }

    #[test]
    fn spin_until_stops() {
        assert!(spin_until(Duration::from_micros(10), || true));
        let t = Instant::now();
        assert!(!spin_until(Duration::from_micros(100), || false));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
