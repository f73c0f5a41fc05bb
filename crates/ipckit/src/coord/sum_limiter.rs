//! [`SumLimiter`]: the shared-file exercise. Processes with unique numbers share a file; the
//! sum of the numbers of the processes using it must stay below a limit.
//!
//! A monitor whose release *admits* waiters itself (hand-off, as in
//! [`PriorityAllocator`](super::PriorityAllocator)): after subtracting the leaver's number it
//! scans the waiters in arrival order and admits every one that now fits, adding its number
//! to the sum and waking that waiter alone. A newcomer that fits enters at once.
//!
//! ## Policy
//!
//! * **Nobody who could enter stays asleep.** After every release the scan leaves only
//!   waiters that do not fit; an arrival that fits never waits. (A strictly FIFO policy would
//!   violate this: a small number would sleep behind a big one that does not fit.)
//! * **Not FIFO**: a later, smaller number may overtake an earlier, bigger one. The scan
//!   itself goes in arrival order, so among waiters that fit the earlier ones win.
//! * **Starvation is possible**: a big number can wait forever while small numbers keep the
//!   sum high. Callers that need a bound use [`enter_timeout`](SumLimiter::enter_timeout).
//!
//! The classic textbook solution (`notify_all` on every release, every waiter re-checks) has
//! the same admission set but wakes every waiter each time; hand-off wakes only those admitted.

use super::lock;
use crate::sync::{Event, EventMode, Mutex};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why [`SumLimiter::enter`] and friends did not admit the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SumLimiterError {
    /// The number is not below the limit on its own, so it can never enter (`EINVAL`).
    #[error("number {n} can never enter: the limit is {limit} (EINVAL)")]
    TooLarge {
        /// The caller's number.
        n: u64,
        /// The limit.
        limit: u64,
    },
    /// `try_enter`: the sum is too high now (`EAGAIN`).
    #[error("the sum is too high to enter now (EAGAIN)")]
    WouldBlock,
    /// `enter_timeout`: the caller could not enter in time (`ETIMEDOUT`).
    #[error("timed out waiting to enter (ETIMEDOUT)")]
    TimedOut,
}

struct State {
    sum: u64,
    /// ticket (arrival order) → (number, wake-up).
    waiting: BTreeMap<u64, (u64, Arc<Event>)>,
    admitted: HashSet<u64>,
    next_ticket: u64,
}

/// Admits callers, each with a number `n`, while the sum of the admitted numbers stays below
/// a limit (see the [module docs](self) for the policy).
///
/// ```
/// use ipckit::coord::{SumLimiter, SumLimiterError};
///
/// let file = SumLimiter::new(10);
/// let a = file.enter(4).unwrap();
/// let b = file.enter(5).unwrap(); // 4 + 5 < 10
/// assert_eq!(file.try_enter(1).unwrap_err(), SumLimiterError::WouldBlock); // 10 is not < 10
/// drop(a);
/// assert_eq!(file.sum(), 5);
/// assert!(matches!(file.enter(10), Err(SumLimiterError::TooLarge { .. })));
/// # drop(b);
/// ```
pub struct SumLimiter {
    state: Mutex<State>,
    limit: u64,
}

/// An admitted caller; dropping it leaves and admits whoever now fits.
#[must_use = "dropping the guard leaves at once"]
pub struct SumGuard<'a> {
    limiter: &'a SumLimiter,
    n: u64,
}

impl SumGuard<'_> {
    /// The number this caller entered with.
    pub fn number(&self) -> u64 {
        self.n
    }
}

impl Drop for SumGuard<'_> {
    fn drop(&mut self) {
        self.limiter.leave(self.n);
    }
}

impl fmt::Debug for SumGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SumGuard").field("n", &self.n).finish()
    }
}

impl SumLimiter {
    /// A limiter admitting callers while the sum of their numbers is `< limit`.
    pub fn new(limit: u64) -> Self {
        SumLimiter {
            state: Mutex::new(State {
                sum: 0,
                waiting: BTreeMap::new(),
                admitted: HashSet::new(),
                next_ticket: 0,
            }),
            limit,
        }
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The sum of the numbers admitted now (a snapshot).
    pub fn sum(&self) -> u64 {
        lock(&self.state).sum
    }

    /// How many callers wait now (a snapshot).
    pub fn waiting(&self) -> usize {
        lock(&self.state).waiting.len()
    }

    fn fits(&self, sum: u64, n: u64) -> bool {
        sum.checked_add(n).is_some_and(|s| s < self.limit)
    }

    /// Enters with number `n`, blocking until `sum + n < limit`. Errors:
    /// [`SumLimiterError::TooLarge`] if `n >= limit` (it could never enter).
    pub fn enter(&self, n: u64) -> Result<SumGuard<'_>, SumLimiterError> {
        self.enter_until(n, None)
    }

    /// Enters only if that needs no waiting. Errors: `TooLarge`, `WouldBlock`.
    pub fn try_enter(&self, n: u64) -> Result<SumGuard<'_>, SumLimiterError> {
        self.check(n)?;
        let mut s = lock(&self.state);
        if !self.fits(s.sum, n) {
            return Err(SumLimiterError::WouldBlock);
        }
        s.sum += n;
        Ok(SumGuard { limiter: self, n })
    }

    /// Like [`enter`](Self::enter), waiting at most `timeout`. Errors: `TooLarge`,
    /// `TimedOut` (the caller gives up its wait).
    pub fn enter_timeout(
        &self,
        n: u64,
        timeout: Duration,
    ) -> Result<SumGuard<'_>, SumLimiterError> {
        self.enter_until(n, Some(Instant::now() + timeout))
    }

    fn check(&self, n: u64) -> Result<(), SumLimiterError> {
        if n >= self.limit {
            return Err(SumLimiterError::TooLarge { n, limit: self.limit });
        }
        Ok(())
    }

    fn enter_until(
        &self,
        n: u64,
        deadline: Option<Instant>,
    ) -> Result<SumGuard<'_>, SumLimiterError> {
        self.check(n)?;
        let mut s = lock(&self.state);
        if self.fits(s.sum, n) {
            s.sum += n;
            return Ok(SumGuard { limiter: self, n });
        }
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        let wake = Arc::new(Event::new(EventMode::ManualReset));
        s.waiting.insert(ticket, (n, wake.clone()));
        drop(s);
        match deadline {
            None => wake.wait(),
            Some(d) => {
                wake.wait_timeout(d.saturating_duration_since(Instant::now()));
            }
        }
        let mut s = lock(&self.state);
        // Admitted (its number already added) even if the time ran out meanwhile.
        if s.admitted.remove(&ticket) {
            return Ok(SumGuard { limiter: self, n });
        }
        s.waiting.remove(&ticket);
        Err(SumLimiterError::TimedOut)
    }

    fn leave(&self, n: u64) {
        let mut s = lock(&self.state);
        s.sum -= n;
        let mut admit = Vec::new();
        let mut sum = s.sum;
        for (&ticket, &(m, _)) in &s.waiting {
            if self.fits(sum, m) {
                sum += m;
                admit.push(ticket);
            }
        }
        s.sum = sum;
        let mut wakes = Vec::with_capacity(admit.len());
        for ticket in admit {
            let (_, wake) = s.waiting.remove(&ticket).expect("scanned above");
            s.admitted.insert(ticket);
            wakes.push(wake);
        }
        drop(s);
        for w in wakes {
            w.set();
        }
    }
}

impl fmt::Debug for SumLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("SumLimiter")
            .field("limit", &self.limit)
            .field("sum", &s.sum)
            .field("waiting", &s.waiting.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn small_number_overtakes_a_big_one_that_does_not_fit() {
        let l = Arc::new(SumLimiter::new(10));
        let a = l.enter(6).unwrap();
        let l2 = l.clone();
        let big = std::thread::spawn(move || l2.enter_timeout(5, Duration::from_secs(10)).is_ok());
        let t = Instant::now();
        while l.waiting() < 1 {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::yield_now();
        }
        // 6 + 3 < 10: enters although the 5 waits.
        let small = l.try_enter(3).unwrap();
        drop(a); // sum 3: the 5 now fits and is admitted by the release
        assert!(big.join().unwrap());
        assert_eq!(l.sum(), 3);
        drop(small);
        assert_eq!(l.sum(), 0);
    }

    #[test]
    fn release_admits_everyone_who_fits() {
        let l = Arc::new(SumLimiter::new(10));
        let hog = l.enter(9).unwrap();
        // Queued in this order (each waits before the next starts): arrival order matters.
        let mut hs = Vec::new();
        for (i, n) in [2u64, 3, 4, 8].into_iter().enumerate() {
            let l2 = l.clone();
            hs.push(std::thread::spawn(move || {
                let g = l2.enter_timeout(n, Duration::from_secs(2));
                (n, g.map(|g| std::mem::ManuallyDrop::new(g).number()))
            }));
            let t = Instant::now();
            while l.waiting() < i + 1 {
                assert!(t.elapsed() < Duration::from_secs(10));
                std::thread::yield_now();
            }
        }
        drop(hog);
        // 2+3+4 = 9 < 10 are admitted at once; 8 cannot fit while they stay (they never
        // leave: their guards are forgotten), so it times out.
        let mut results: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        results.sort_by_key(|r| r.0);
        assert_eq!(
            results,
            vec![(2, Ok(2)), (3, Ok(3)), (4, Ok(4)), (8, Err(SumLimiterError::TimedOut))]
        );
        assert_eq!(l.sum(), 9);
        assert_eq!(l.waiting(), 0);
    }

    #[test]
    fn never_exceeds_the_limit_and_strands_nobody() {
        const LIMIT: u64 = 12;
        let l = Arc::new(SumLimiter::new(LIMIT));
        let inside = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (1..=6u64)
            .map(|n| {
                let (l, inside) = (l.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        // A stranded caller would time out here and fail the test.
                        let g = l.enter_timeout(n, Duration::from_secs(20)).unwrap();
                        let now = inside.fetch_add(n, Ordering::SeqCst) + n;
                        assert!(now < LIMIT, "sum {now} reached the limit");
                        std::thread::yield_now();
                        inside.fetch_sub(n, Ordering::SeqCst);
                        drop(g);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(l.sum(), 0);
        assert_eq!(l.waiting(), 0);
    }
}
