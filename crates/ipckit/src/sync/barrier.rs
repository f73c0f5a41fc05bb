//! A barrier: `n` parties wait until all have arrived, then all go on; reusable.
//!
//! | word | meaning |
//! |---|---|
//! | `arrived` | parties in the current round so far |
//! | `generation` | bumped by the last arrival of a round; the futex word |
//! | `sleepers` | parties asleep; the last arrival wakes only when non-zero |
//!
//! A party reads `generation` *before* adding itself to `arrived`; the last one resets
//! `arrived` to 0 and then bumps `generation` (release), so no party of the next round can
//! count itself into the old one.

use super::backoff::{SIGNAL_SPIN, futex_wait_until, spin_until};
use crate::atomic::{AtomicU32, Ordering, dekker_point};
use crate::shm::ShmSafe;
use crate::sys;
use std::fmt;
use std::time::{Duration, Instant};

/// What [`Barrier::wait`] tells a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one party per round: the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

/// A reusable barrier for `n` parties, process-shared when placed in a shared mapping.
///
/// ```
/// use ipckit::sync::Barrier;
/// use std::sync::Arc;
///
/// let b = Arc::new(Barrier::new(3));
/// let hs: Vec<_> = (0..3).map(|_| { let b = b.clone(); std::thread::spawn(move || b.wait().is_leader()) }).collect();
/// let leaders = hs.into_iter().filter(|_| true).map(|h| h.join().unwrap()).filter(|&l| l).count();
/// assert_eq!(leaders, 1);
/// ```
#[repr(C)]
pub struct Barrier {
    parties: AtomicU32,
    arrived: AtomicU32,
    generation: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: repr(C), atomics only; a corrupt `arrived` is clamped by the `>= parties` test; no
// Drop. Zeroed memory is a 0-party barrier, which `wait` treats as 1 party.
unsafe impl ShmSafe for Barrier {}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("parties", &self.parties()).finish()
    }
}

impl Barrier {
    /// A barrier for `parties` parties (0 is treated as 1).
    pub fn new(parties: u32) -> Self {
        Barrier {
            parties: AtomicU32::new(parties.max(1)),
            arrived: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed).max(1)
    }

    /// Blocks until all parties have called `wait` in this round.
    pub fn wait(&self) -> BarrierWaitResult {
        self.wait_inner(None).expect("no deadline, no timeout")
    }

    /// Like [`wait`](Self::wait), for at most `timeout`. On timeout the party withdraws from
    /// the round (as if it had not arrived) and `None` is returned.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<BarrierWaitResult> {
        self.wait_inner(Some(Instant::now() + timeout))
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> Option<BarrierWaitResult> {
        let gen_ = self.generation.load(Ordering::Acquire);
        let n = self.arrived.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.parties() {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::SeqCst);
            dekker_point();
            if self.sleepers.load(Ordering::SeqCst) != 0 {
                sys::futex_wake(&self.generation, u32::MAX);
            }
            return Some(BarrierWaitResult(true));
        }
        let moved = || self.generation.load(Ordering::Acquire) != gen_;
        if spin_until(SIGNAL_SPIN, moved) {
            return Some(BarrierWaitResult(false));
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        dekker_point();
        let passed = loop {
            if moved() {
                break true;
            }
            if !futex_wait_until(&self.generation, gen_, deadline) {
                break self.withdraw(gen_);
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        passed.then_some(BarrierWaitResult(false))
    }

    /// Undoes an arrival after a timeout; returns true if the round completed after all.
    fn withdraw(&self, gen_: u32) -> bool {
        loop {
            if self.generation.load(Ordering::Acquire) != gen_ {
                return true;
            }
            let a = self.arrived.load(Ordering::Acquire);
            if a == 0 {
                // The leader reset the count and is about to bump the generation.
                std::hint::spin_loop();
                continue;
            }
            if self.arrived.compare_exchange(a, a - 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return false;
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rounds_repeat_with_one_leader_each() {
        let b = Arc::new(Barrier::new(3));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..100).filter(|_| b.wait().is_leader()).count())
            })
            .collect();
        let leaders: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(leaders, 100);
    }

    #[test]
    fn timeout_withdraws() {
        let b = Barrier::new(2);
        assert!(b.wait_timeout(Duration::from_millis(10)).is_none());
        // The withdrawn party does not count: the next round still needs two.
        assert!(b.wait_timeout(Duration::from_millis(10)).is_none());
        let b = Arc::new(b);
        let b2 = b.clone();
        let h = std::thread::spawn(move || b2.wait_timeout(Duration::from_secs(5)).is_some());
        assert!(b.wait_timeout(Duration::from_secs(5)).is_some());
        assert!(h.join().unwrap());
    }
}
