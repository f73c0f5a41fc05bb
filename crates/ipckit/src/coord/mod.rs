//! Coordination structures: the synchronization problems an operating-systems course works
//! through with monitors and semaphores, as reusable, tested structures.
//!
//! | type | the course's problem | how |
//! |---|---|---|
//! | [`BoundedBuffer`] | producers and consumers (Dijkstra 1965) | a monitor: one [`Mutex`], two [`Condvar`](crate::sync::Condvar)s |
//! | [`SlotBuffer`] | the same, for *large* items: copy in and out of different slots at once | per-slot sequence numbers (Vyukov's bounded MPMC queue), futex sleeping when full/empty |
//! | [`SharedSlotBuffer`], [`SharedBoundedBuffer`] | producer/consumer between processes, without the kernel | the same two designs as `#[repr(C)]` structures in a shared mapping |
//! | [`PriorityAllocator`] | k identical printers, handed out by priority | a monitor with direct hand-off to the best waiter |
//! | [`SumLimiter`] | processes with unique numbers share a file while the sum of their numbers stays below a limit | a monitor that admits every waiter that fits, in arrival order |
//! | [`AlarmClock`], [`TickingAlarmClock`] | the alarm clock monitor (Hoare 1974) | a priority queue of deadlines; `tick` wakes exactly the due sleepers |
//! | [`stm`] | transactions instead of locks (Shavit & Touitou 1995; Harris et al. 2005) | TL2 (Dice, Shalev & Shavit 2006): a global version clock, versioned locks, `retry` and `or_else` |
//!
//! Each structure's module explains its algorithm, state and policy; the types are
//! re-exported here.
//!
//! Every blocking operation comes in three forms: blocking, `try_` (never blocks) and
//! `_timeout`. Errors give the payload back ([`PutError::Full`]).

pub mod alarm_clock;
pub mod bounded_buffer;
pub mod priority_allocator;
pub mod slot_buffer;
pub mod stm;
pub mod sum_limiter;

pub use alarm_clock::{AlarmClock, TickingAlarmClock};
pub use bounded_buffer::{BoundedBuffer, SharedBoundedBuffer};
pub use priority_allocator::{PriorityAllocator, PriorityGuard};
pub use slot_buffer::{SharedSlotBuffer, SlotBuffer};
pub use sum_limiter::{SumGuard, SumLimiter, SumLimiterError};

use crate::sync::{LockError, Mutex, MutexGuard};
use std::fmt;

/// Why a `put` did not store the item; the item is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum PutError<T> {
    /// `try_put`: the buffer is full (`EAGAIN`).
    Full(T),
    /// `put_timeout`: the buffer stayed full for the whole timeout (`ETIMEDOUT`).
    TimedOut(T),
    /// Shared buffers only: the buffer's state in the mapping is invalid (`EINVAL`), or its
    /// lock became unusable (`ENOTRECOVERABLE`). The buffer cannot be used any more.
    Broken(T),
}

impl<T> PutError<T> {
    /// The item that was not stored.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::TimedOut(t) | PutError::Broken(t) => t,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "Full(..)",
            PutError::TimedOut(_) => "TimedOut(..)",
            PutError::Broken(_) => "Broken(..)",
        })
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "the buffer is full (EAGAIN)",
            PutError::TimedOut(_) => "timed out waiting for a free slot (ETIMEDOUT)",
            PutError::Broken(_) => "the shared buffer is corrupt or its lock unrecoverable",
        })
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a `take` returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    /// `try_take`: the buffer is empty (`EAGAIN`; `ENOMSG` in System V message queues).
    #[error("the buffer is empty (EAGAIN)")]
    Empty,
    /// `take_timeout`: the buffer stayed empty for the whole timeout (`ETIMEDOUT`).
    #[error("timed out waiting for an item (ETIMEDOUT)")]
    TimedOut,
    /// Shared buffers only: the state in the mapping is invalid (`EINVAL`) or the lock
    /// became unusable (`ENOTRECOVERABLE`).
    #[error("the shared buffer is corrupt or its lock unrecoverable")]
    Broken,
}

/// Why an allocator's `try_acquire` / `acquire_timeout` returned no guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// `try_acquire`: nothing is free for this caller now (`EAGAIN`).
    #[error("no resource is free (EAGAIN)")]
    WouldBlock,
    /// `acquire_timeout`: nothing became free in time (`ETIMEDOUT`).
    #[error("timed out waiting for a resource (ETIMEDOUT)")]
    TimedOut,
}

/// Locks a process-local monitor. Its state is only changed by our own code, in steps that
/// cannot fail half-way, so a thread that ended while holding the lock (the only way to get
/// `OwnerDied` inside one process: the guard is leaked) left it consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(e) => recover(e),
    }
}

/// The `OwnerDied` case of [`lock`], shared with condition-variable waits.
pub(crate) fn recover<G: MarkConsistent>(e: LockError<G>) -> G {
    match e {
        LockError::OwnerDied(g) => {
            g.mark();
            g
        }
        // Never marked inconsistent above, so never unrecoverable; no timeouts are asked for.
        e => panic!("coordination monitor lock failed: {e}"),
    }
}

/// Guards (or guard tuples from timed waits) that can declare their state repaired.
pub(crate) trait MarkConsistent {
    fn mark(&self);
}

impl<T> MarkConsistent for MutexGuard<'_, T> {
    fn mark(&self) {
        self.mark_consistent();
    }
}

impl<T, X> MarkConsistent for (MutexGuard<'_, T>, X) {
    fn mark(&self) {
        self.0.mark_consistent();
    }
}

/// Aligns `T` to two cache lines, so that words written by producers and words written by
/// consumers never share a line (or an adjacent-line prefetch pair), as `crossbeam`'s
/// `CachePadded` does.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
