//! An event count: waiting for a change of a condition that lives elsewhere, with nothing to
//! pay on the changer's side while nobody waits.
//!
//! A queue in shared memory knows whether it holds a message; what it needs besides is a way
//! for a receiver to sleep until that may have changed, and for a sender to wake it — without
//! a system call, and without even writing a shared cache line, in the common case where
//! nobody sleeps. An event count (Vyukov's eventcount, folly's `EventCount`) is that: one
//! futex word holding a sequence number in bits 2 and up and two flags.
//!
//! | bit | meaning | set by | cleared by |
//! |---|---|---|---|
//! | 0 `WATCH` | someone spins or sleeps on the word: the next change must advance it | [`watch`](EventCount::watch) | the change that advances it |
//! | 1 `SLEEP` | someone sleeps (or is about to) in `futex_wait`: the change must wake | [`sleep`](EventCount::sleep) | the change that advances it |
//!
//! The protocol (the Dekker pattern: each side makes its write, then reads the other's, with
//! sequentially consistent operations, so at least one sees the other):
//!
//! * a waiter calls [`watch`](EventCount::watch) (one atomic OR, which also reads the word as
//!   its ticket), **then looks at the condition again**, and only if it still does not hold
//!   sleeps with [`sleep`](EventCount::sleep) on the ticket;
//! * a changer makes its change with a sequentially consistent operation, then calls
//!   [`advance`](EventCount::advance): a plain load of the word while no flag is set; else a
//!   CAS to (sequence + 1, no flags), and [`wake_all`](EventCount::wake_all) if `SLEEP` was
//!   set — best after unlocking whatever lock the change was made under.
//!
//! Either the changer sees the flag (and advances the word, so the waiter's ticket no longer
//! matches and its `futex_wait` returns at once or is woken), or the waiter's second look sees
//! the change. Because the flags live in the same word as the sequence, the changer that
//! advances the word is the one that sees the `SLEEP` set before it, so a wake-up cannot be
//! lost between two changers (the loom models in `tests/loom.rs` check this). A waiter that
//! registered and then found its condition true leaves `WATCH` set: the next change pays one
//! needless CAS, nothing else.
//!
//! ```
//! use ipckit::sync::EventCount;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! let ec = Arc::new(EventCount::new());
//! let ready = Arc::new(AtomicBool::new(false));
//! let waiter = {
//!     let (ec, ready) = (ec.clone(), ready.clone());
//!     std::thread::spawn(move || {
//!         while !ready.load(Ordering::SeqCst) {
//!             let ticket = ec.watch();
//!             if ready.load(Ordering::SeqCst) {
//!                 break; // the second look
//!             }
//!             ec.sleep(ticket, None);
//!         }
//!     })
//! };
//! ready.store(true, Ordering::SeqCst); // the change...
//! ec.notify(); // ...then the event count
//! waiter.join().unwrap();
//! ```

use crate::atomic::{AtomicU32, Ordering, dekker_point};
use crate::shm::ShmSafe;
use crate::sync::backoff::snooze_until;
use crate::sys::{self, FutexWait};
use std::fmt;
use std::time::{Duration, Instant};

const WATCH: u32 = 1;
const SLEEP: u32 = 2;
const SEQ_ONE: u32 = 4;

/// An event count (see the [module docs](self)). Zeroed memory is a valid, unwatched one.
#[repr(C)]
pub struct EventCount {
    word: AtomicU32,
}

// SAFETY: repr(C), one atomic; any value is valid (it only causes an extra or a missing
// wake-up, which the protocol's users bound with timeouts where a peer may die); no Drop.
unsafe impl ShmSafe for EventCount {}

/// What [`EventCount::watch`] returns: the word as it was, to sleep on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u32);

impl EventCount {
    /// A new, unwatched event count.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        EventCount { word: AtomicU32::new(0) }
    }

    /// A new, unwatched event count.
    #[cfg(loom)]
    pub fn new() -> Self {
        EventCount { word: AtomicU32::new(0) }
    }

    /// Registers the caller as a watcher and returns its ticket. The caller must then look at
    /// its condition again before it sleeps on the ticket.
    pub fn watch(&self) -> Ticket {
        let t = Ticket(self.word.fetch_or(WATCH, Ordering::SeqCst) | WATCH);
        dekker_point();
        t
    }

    /// Whether the word still holds `ticket`: nothing has advanced it since (for spinning).
    #[inline]
    pub fn is_current(&self, ticket: Ticket) -> bool {
        self.word.load(Ordering::Acquire) == ticket.0
    }

    /// Whether someone watches (or sleeps on) the word: the next [`advance`](Self::advance)
    /// will write it.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.word.load(Ordering::Relaxed) & (WATCH | SLEEP) != 0
    }

    /// To be called after a change a watcher may wait for (made with a sequentially
    /// consistent operation): ends every watch. Returns whether a sleeper must be woken
    /// with [`wake_all`](Self::wake_all). While nobody watches, only reads the word.
    #[inline]
    pub fn advance(&self) -> bool {
        dekker_point();
        let mut w = self.word.load(Ordering::SeqCst);
        loop {
            if w & (WATCH | SLEEP) == 0 {
                return false;
            }
            let next = (w & !(WATCH | SLEEP)).wrapping_add(SEQ_ONE);
            match self.word.compare_exchange_weak(w, next, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return w & SLEEP != 0,
                // Another changer advanced it (and owns the wake-up of whoever slept before),
                // or a watcher set a flag: look again.
                Err(now) => w = now,
            }
        }
    }

    /// Wakes every thread asleep on the word.
    pub fn wake_all(&self) {
        sys::futex_wake(&self.word, u32::MAX);
    }

    /// [`advance`](Self::advance), then [`wake_all`](Self::wake_all) if needed.
    pub fn notify(&self) {
        if self.advance() {
            self.wake_all();
        }
    }

    /// Advances the sequence whatever the flags and wakes everyone: for a change every waiter
    /// must see at once (removal of the object the waiters wait for).
    pub fn interrupt(&self) {
        self.word.fetch_add(SEQ_ONE, Ordering::SeqCst);
        self.wake_all();
    }

    /// Sleeps while the word holds `ticket` (announcing the sleep in the word first), at most
    /// `timeout` (`None`: no limit). Returns `false` if the time ran out, `true` otherwise
    /// (woken, the word moved, or a spurious wake-up: look at the condition again).
    pub fn sleep(&self, ticket: Ticket, timeout: Option<Duration>) -> bool {
        let target = ticket.0 | SLEEP;
        if target != ticket.0
            && let Err(now) =
                self.word.compare_exchange(ticket.0, target, Ordering::SeqCst, Ordering::Relaxed)
            && now != target
        {
            return true; // advanced meanwhile
        }
        sys::futex_wait(&self.word, target, timeout) != FutexWait::TimedOut
    }

    /// The whole waiter's side for a lock-free structure: runs `attempt` until it succeeds,
    /// waiting on this event count in between — first briefly, spinning and then yielding
    /// while `ready` says an attempt might succeed (crossbeam's `Backoff::snooze` schedule:
    /// a sleep and a wake cost microseconds, the next item is often nanoseconds away), then
    /// watching, attempting once more, and sleeping. `None` once `deadline` has passed.
    ///
    /// `attempt` must read the condition with sequentially consistent loads, and whoever
    /// makes it true must then call [`notify`](Self::notify). Every sleeper is woken, and
    /// those that lose the race watch and sleep again, so no wake-up can be used up by a
    /// waiter that then finds nothing (as a wake-one scheme must guard against).
    pub fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        loop {
            if let Some(r) = attempt() {
                return Some(r);
            }
            // Under loom, no snoozing: the models check the sleeping path.
            if !cfg!(loom) && snooze_until(&mut ready) {
                continue;
            }
            let ticket = self.watch();
            if let Some(r) = attempt() {
                return Some(r);
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    Some(d - now)
                }
            };
            self.sleep(ticket, timeout);
        }
    }
}

impl Default for EventCount {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.word.load(Ordering::Relaxed);
        f.debug_struct("EventCount")
            .field("sequence", &(w >> 2))
            .field("watched", &(w & WATCH != 0))
            .field("slept_on", &(w & SLEEP != 0))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    #[test]
    fn advance_writes_only_when_watched() {
        let ec = EventCount::new();
        assert!(!ec.advance());
        assert_eq!(ec.word.load(Ordering::Relaxed), 0, "unwatched: untouched");
        let t = ec.watch();
        assert!(ec.is_watched() && ec.is_current(t));
        assert!(!ec.advance(), "watched but nobody sleeps: no wake-up needed");
        assert!(!ec.is_current(t) && !ec.is_watched());
        // A sleep on an old ticket returns at once.
        assert!(ec.sleep(t, Some(Duration::from_secs(5))));
    }

    #[test]
    fn sleep_times_out_and_interrupt_wakes() {
        let ec = Arc::new(EventCount::new());
        let t = ec.watch();
        let start = Instant::now();
        assert!(!ec.sleep(t, Some(Duration::from_millis(20))));
        assert!(start.elapsed() >= Duration::from_millis(20));
        let t = ec.watch();
        let ec2 = ec.clone();
        let h = std::thread::spawn(move || ec2.sleep(t, Some(Duration::from_secs(10))));
        std::thread::sleep(Duration::from_millis(20));
        ec.interrupt();
        assert!(h.join().unwrap(), "woken, not timed out");
    }

    #[test]
    fn many_waiters_and_changers_lose_no_wakeup() {
        // Each waiter waits for the counter to pass each value in turn; changers add to it.
        // A sleep that times out means nobody woke a waiter whose condition had changed: a
        // lost wake-up (the changers never pause for 10 s).
        let ec = Arc::new(EventCount::new());
        let n = Arc::new(AtomicU64::new(0));
        const STEPS: u64 = 20_000;
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (ec, n) = (ec.clone(), n.clone());
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while seen < 2 * STEPS {
                        let now = n.load(Ordering::SeqCst);
                        if now > seen {
                            seen = now;
                            continue;
                        }
                        let t = ec.watch();
                        if n.load(Ordering::SeqCst) > seen {
                            continue;
                        }
                        let changing = n.load(Ordering::SeqCst) < 2 * STEPS;
                        let woken = ec.sleep(t, Some(Duration::from_secs(10)));
                        assert!(woken || !changing, "lost wake-up at {seen}");
                    }
                })
            })
            .collect();
        let changers: Vec<_> = (0..2)
            .map(|_| {
                let (ec, n) = (ec.clone(), n.clone());
                std::thread::spawn(move || {
                    for _ in 0..STEPS {
                        n.fetch_add(1, Ordering::SeqCst);
                        ec.notify();
                    }
                })
            })
            .collect();
        for h in changers.into_iter().chain(waiters) {
            h.join().unwrap();
        }
    }
}
