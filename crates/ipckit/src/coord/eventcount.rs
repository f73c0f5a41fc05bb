//! An event count (Reed & Kanodia 1979): the futex wait side of a lock-free structure.
//!
//! A lock-free buffer has no mutex for a condition variable to release, so a consumer that
//! finds it empty sleeps on an event count instead:
//!
//! | word | meaning |
//! |---|---|
//! | `seq` | bumped by every notify that found a waiter; the futex word |
//! | `waiting` | threads between announcing themselves and leaving the futex call; notify skips both the bump and the wake system call while it is zero |
//!
//! Before announcing itself a waiter snoozes briefly (spins, then yields), because a futex
//! sleep and wake cost microseconds while the next item is often nanoseconds away.
//!
//! Waiter: read `seq`, `waiting += 1` (sequentially consistent), re-check the condition,
//! sleep only if `seq` is unchanged. Notifier: make the condition true with a sequentially
//! consistent store, then read `waiting`. In the single total order of these operations
//! either the notifier sees the waiter (and bumps `seq`, so the waiter's futex call returns
//! at once or is woken) or the waiter's re-check sees the condition.
//!
//! Notify wakes *one* sleeper (no herd). That alone could strand an item: a consumer of a
//! Vyukov queue woken for item `h+1` may find the head slot `h` not yet published and sleep
//! again, using up the wake of `h+1`; when `h` is published its one wake lets one consumer
//! take `h`, and `h+1` would wait with the other asleep. So a waiter that succeeds after
//! having been counted in `waiting` *passes the wake on*: if more is ready, it notifies
//! again. Every published item thus either finds an awake taker or wakes one, and every
//! wake not used for its own item is handed on by whoever took the earlier one.

use crate::atomic::{AtomicU32, Ordering, dekker_point};
use crate::sync::Backoff;
use crate::sys;
use std::time::Instant;

/// See the [module docs](self). Zeroed memory is a valid event count.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct EventCount {
    seq: AtomicU32,
    waiting: AtomicU32,
}

impl EventCount {
    pub(crate) fn new() -> Self {
        EventCount { seq: AtomicU32::new(0), waiting: AtomicU32::new(0) }
    }

    /// Call after a sequentially consistent store made some waiter's condition true.
    #[inline]
    pub(crate) fn notify(&self) {
        dekker_point();
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.notify_slow();
        }
    }

    #[cold]
    fn notify_slow(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(&self.seq, 1);
    }

    /// Waits briefly for `ready`: exponential spinning, then a few `yield_now`s (crossbeam's
    /// `Backoff::snooze` schedule), so that on a busy or oversubscribed machine the peer gets
    /// the CPU and the item arrives without a futex sleep and wake (microseconds each).
    /// Under loom, not at all (the model checks the sleeping path).
    fn snooze_until(&self, ready: &mut impl FnMut() -> bool) -> bool {
        if cfg!(loom) {
            return false;
        }
        let mut backoff = Backoff::new();
        while !backoff.is_completed() {
            if ready() {
                return true;
            }
            backoff.snooze();
        }
        ready()
    }

    /// Runs `attempt` until it succeeds, spinning briefly while `ready` says it might, then
    /// sleeping; `None` once `deadline` has passed. `attempt` must read the condition with
    /// sequentially consistent loads.
    pub(crate) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        loop {
            if let Some(r) = attempt() {
                return Some(r);
            }
            if self.snooze_until(&mut ready) {
                continue;
            }
            let seq = self.seq.load(Ordering::SeqCst);
            self.waiting.fetch_add(1, Ordering::SeqCst);
            dekker_point();
            if let Some(r) = attempt() {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.pass_on(&mut ready);
                return Some(r);
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.waiting.fetch_sub(1, Ordering::Relaxed);
                        return None;
                    }
                    Some(d - now)
                }
            };
            sys::futex_wait(&self.seq, seq, timeout);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            if let Some(r) = attempt() {
                self.pass_on(&mut ready);
                return Some(r);
            }
        }
    }

    /// Chain wake-up: a waiter that was counted in `waiting` and then succeeded may have used
    /// up a wake meant for another item, so if more is ready it wakes the next sleeper.
    fn pass_on(&self, ready: &mut impl FnMut() -> bool) {
        if ready() {
            self.notify();
        }
    }
}
