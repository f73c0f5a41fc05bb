//! Events: "section X of process A runs before section Y of process B".
//!
//! The signaling use of semaphores, made explicit. B calls [`Event::wait`] before Y; A calls
//! [`Event::set`] after X. A *manual-reset* event stays set (a gate that opens for good, until
//! [`reset`](Event::reset)); an *auto-reset* event lets exactly one waiter through per `set`
//! and closes again.
//!
//! | word | meaning |
//! |---|---|
//! | `state` | 0 unset, 1 set; the futex word |
//! | `sleepers` | threads about to sleep or sleeping; `set` wakes only when non-zero |
//! | `mode` | 0 manual-reset, 1 auto-reset; fixed at creation |

use super::backoff::{SIGNAL_SPIN, futex_wait_until, spin_until};
use crate::atomic::{AtomicU32, Ordering, dekker_point};
use crate::shm::ShmSafe;
use crate::sys;
use std::fmt;
use std::time::{Duration, Instant};

/// Whether an [`Event`] closes again after letting one waiter through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode {
    /// Stays set until [`Event::reset`]: every waiter passes.
    ManualReset,
    /// Each `set` lets exactly one waiter through.
    AutoReset,
}

/// A manual- or auto-reset event; process-shared when placed in a shared mapping. Zeroed
/// memory is an unset manual-reset event.
///
/// ```
/// use ipckit::sync::{Event, EventMode};
/// use std::sync::Arc;
///
/// let x_done = Arc::new(Event::new(EventMode::ManualReset));
/// let e = x_done.clone();
/// let b = std::thread::spawn(move || {
///     e.wait();            // Y runs only after X
///     "Y"
/// });
/// // ... section X ...
/// x_done.set();
/// assert_eq!(b.join().unwrap(), "Y");
/// ```
#[repr(C)]
pub struct Event {
    state: AtomicU32,
    sleepers: AtomicU32,
    mode: AtomicU32,
}

// SAFETY: repr(C), atomics only; every value of `state`/`mode` is read as set/unset and
// manual/auto (non-zero = set / auto); no Drop.
unsafe impl ShmSafe for Event {}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("mode", &self.mode()).field("set", &self.is_set()).finish()
    }
}

impl Event {
    /// A new, unset event.
    pub fn new(mode: EventMode) -> Self {
        Event {
            state: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            mode: AtomicU32::new(matches!(mode, EventMode::AutoReset) as u32),
        }
    }

    /// The event's mode.
    pub fn mode(&self) -> EventMode {
        if self.mode.load(Ordering::Relaxed) != 0 {
            EventMode::AutoReset
        } else {
            EventMode::ManualReset
        }
    }

    /// Whether the event is set now (a snapshot).
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    /// Sets the event: wakes all waiters (manual-reset) or lets one through (auto-reset).
    pub fn set(&self) {
        self.state.store(1, Ordering::SeqCst);
        dekker_point();
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            let n = if self.mode() == EventMode::AutoReset { 1 } else { u32::MAX };
            sys::futex_wake(&self.state, n);
        }
    }

    /// Clears the event, so later waiters block.
    pub fn reset(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// Passes if the event is set now (consuming it, for auto-reset). Never blocks.
    pub fn try_wait(&self) -> bool {
        match self.mode() {
            EventMode::ManualReset => self.state.load(Ordering::Acquire) != 0,
            EventMode::AutoReset => {
                self.state.compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed).is_ok()
            }
        }
    }

    /// Blocks until the event is set (and, for auto-reset, consumes it).
    pub fn wait(&self) {
        if !self.try_wait() {
            self.wait_slow(None);
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout`; `false` if the time ran out.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.try_wait() || self.wait_slow(Some(Instant::now() + timeout))
    }

    #[cold]
    fn wait_slow(&self, deadline: Option<Instant>) -> bool {
        if spin_until(SIGNAL_SPIN, || self.state.load(Ordering::Relaxed) != 0) && self.try_wait() {
            return true;
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        dekker_point();
        let passed = loop {
            if self.try_wait() {
                break true;
            }
            if !futex_wait_until(&self.state, 0, deadline) {
                break false;
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        passed
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn manual_reset_lets_everyone_through() {
        let e = Arc::new(Event::new(EventMode::ManualReset));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let e = e.clone();
                std::thread::spawn(move || e.wait_timeout(Duration::from_secs(5)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(10));
        e.set();
        assert!(hs.into_iter().all(|h| h.join().unwrap()));
        assert!(e.is_set());
        e.reset();
        assert!(!e.wait_timeout(Duration::from_millis(10)));
    }

    #[test]
    fn auto_reset_lets_one_through_per_set() {
        let e = Arc::new(Event::new(EventMode::AutoReset));
        let passed = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (e, passed) = (e.clone(), passed.clone());
                std::thread::spawn(move || {
                    if e.wait_timeout(Duration::from_secs(5)) {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for i in 1..=3 {
            e.set();
            let t = Instant::now();
            while passed.load(std::sync::atomic::Ordering::SeqCst) < i {
                assert!(t.elapsed() < Duration::from_secs(5));
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(passed.load(std::sync::atomic::Ordering::SeqCst), i);
        }
        for h in hs {
            h.join().unwrap();
        }
        assert!(!e.is_set());
    }
}
