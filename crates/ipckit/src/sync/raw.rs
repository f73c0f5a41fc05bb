//! The raw-lock trait: the state machine of a lock without the data it protects.
//!
//! Following `lock_api`, a raw lock owns only its state word; [`Mutex<T, R>`](super::Mutex)
//! and its guard are generic over it. The robust [`RawMutex`](super::RawMutex) and the
//! spinlocks all implement [`RawLock`].

use std::time::Duration;

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The normal case.
    Clean,
    /// The previous owner died holding the lock; the caller now owns it, and the data it
    /// protects may be half-updated. Repair it, then call [`RawLock::mark_consistent`], or
    /// the lock becomes unusable at unlock (robust locks only).
    OwnerDied,
}

/// Why a raw lock was not acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RawLockError {
    /// `try_lock`: the lock is held by a live owner.
    #[error("the lock is held (EBUSY)")]
    WouldBlock,
    /// `lock_timeout`: the time ran out.
    #[error("timed out waiting for the lock (ETIMEDOUT)")]
    TimedOut,
    /// A robust lock whose owner died was unlocked without being marked consistent: it can
    /// never be acquired again (`ENOTRECOVERABLE`).
    #[error(
        "the lock is not recoverable: a previous owner died and the state was not repaired (ENOTRECOVERABLE)"
    )]
    NotRecoverable,
}

/// A lock's state machine.
///
/// # Safety
///
/// Implementations must provide mutual exclusion: between a successful `lock`/`try_lock`/
/// `lock_timeout` and the matching `unlock`, no other call may succeed.
pub unsafe trait RawLock {
    /// An unlocked lock.
    const INIT: Self;

    /// Acquires the lock, blocking (or spinning) until it is free.
    fn lock(&self) -> Result<Acquired, RawLockError>;

    /// Acquires the lock if that needs no waiting; `Err(WouldBlock)` otherwise.
    fn try_lock(&self) -> Result<Acquired, RawLockError>;

    /// Acquires the lock, waiting at most `timeout`.
    ///
    /// The default retries `try_lock` with [`Backoff`](super::Backoff).
    fn lock_timeout(&self, timeout: Duration) -> Result<Acquired, RawLockError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut backoff = super::Backoff::new();
        loop {
            match self.try_lock() {
                Err(RawLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    backoff.snooze()
                }
                Err(RawLockError::WouldBlock) => return Err(RawLockError::TimedOut),
                other => return other,
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The caller must hold the lock (acquired on this thread, for locks that track owners).
    unsafe fn unlock(&self);

    /// Whether the lock is held right now (a snapshot, for diagnostics).
    fn is_locked(&self) -> bool;

    /// Declares the state repaired after [`Acquired::OwnerDied`]. A no-op for locks that do
    /// not track owners. The caller must hold the lock.
    fn mark_consistent(&self) {}
}
