//! The robust mutex: [`RawMutex`] (the state word) and [`Mutex<T>`] (data plus guard).
//!
//! ## The lock word
//!
//! One `u32`, which the futex sleeps on:
//!
//! | bits | meaning |
//! |---|---|
//! | 0..=29 | owner's thread id (0: unlocked) |
//! | 30 `WAITERS` | someone may sleep on the word: unlock must call `futex_wake` |
//! | 31 `INCONSISTENT` | the owner took the lock over from a dead owner and has not marked it consistent |
//! | all of 0..=29 set, no flag (`NOT_RECOVERABLE`) | unlocked with `INCONSISTENT` set: unusable for good |
//!
//! Linux thread ids are at most 2^22 (`pid_max`), so the id always fits and `NOT_RECOVERABLE`
//! is never a real id. Transitions:
//!
//! * lock: `0 → tid` by compare-and-swap (fast path); a waiter that has slept acquires with
//!   `0 → tid|WAITERS`, since others may still sleep (the scheme of Rust std's futex mutex).
//! * wait: set `WAITERS`, then `futex_wait` on the exact value seen.
//! * unlock: `swap(0)`; `futex_wake(1)` only if `WAITERS` was set.
//! * takeover: a waiter finds the owner dead and swaps `old → tid|INCONSISTENT|WAITERS`
//!   by compare-and-swap on the exact old value, so two waiters never both take over.
//! * unlock while `INCONSISTENT`: `→ NOT_RECOVERABLE`, wake everyone.
//!
//! ## Robustness
//!
//! The thread id alone does not identify an owner (ids are reused), so the owner also
//! publishes its [`ProcessId`] token (id and start time) in a second word right after
//! acquiring, and clears it before releasing. A waiter that has slept a
//! [`LIVENESS_PERIOD`] checks the owner with [`crate::sys::liveness`]; a dead
//! owner is detected within that period even when nobody will ever wake the waiter. This is
//! the POSIX robust-mutex contract (`PTHREAD_MUTEX_ROBUST`, `EOWNERDEAD`,
//! `pthread_mutex_consistent`, `ENOTRECOVERABLE`) built without the kernel's robust list,
//! which glibc already owns.

use super::backoff::{LOCK_SPIN, spin_until_backoff};
use super::raw::{Acquired, RawLock, RawLockError};
use crate::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::shm::ShmSafe;
use crate::sys::{self, FutexWait, ProcessId};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

const TID_MASK: u32 = (1 << 30) - 1;
const WAITERS: u32 = 1 << 30;
const INCONSISTENT: u32 = 1 << 31;
const NOT_RECOVERABLE: u32 = TID_MASK;

/// How often a sleeping waiter checks whether the owner still lives.
pub const LIVENESS_PERIOD: Duration = Duration::from_millis(100);

/// A robust, process-shared mutex state word (see the [module docs](self)).
///
/// Zeroed memory is an unlocked `RawMutex`, so one can be placed in a fresh shared mapping.
#[repr(C)]
pub struct RawMutex {
    word: AtomicU32,
    _pad: u32,
    owner: AtomicU64,
}

// SAFETY: repr(C), two atomics and padding; every bit pattern of `word` is handled (unknown
// owners are checked for liveness, NOT_RECOVERABLE is terminal), `owner` is only advisory and
// checked against /proc before it is believed; zero is the unlocked state; no Drop.
unsafe impl ShmSafe for RawMutex {}

impl fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.word.load(Ordering::Relaxed);
        f.debug_struct("RawMutex")
            .field("owner_tid", &(w & TID_MASK))
            .field("waiters", &(w & WAITERS != 0))
            .field("inconsistent", &(w & INCONSISTENT != 0))
            .finish()
    }
}

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawMutex {
    /// An unlocked mutex.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RawMutex { word: AtomicU32::new(0), _pad: 0, owner: AtomicU64::new(0) }
    }

    /// An unlocked mutex.
    #[cfg(loom)]
    pub fn new() -> Self {
        RawMutex { word: AtomicU32::new(0), _pad: 0, owner: AtomicU64::new(0) }
    }

    /// The thread id of the current owner, if locked (a snapshot, for diagnostics and
    /// deadlock detection).
    pub fn owner_tid(&self) -> Option<u32> {
        let w = self.word.load(Ordering::Relaxed);
        let tid = w & TID_MASK;
        (tid != 0 && w != NOT_RECOVERABLE).then_some(tid)
    }

    /// The owner's thread id if `word` is a value a *waiter* sleeps on (an owner and the
    /// `WAITERS` bit): for detectors that find a thread asleep on a word and ask whether it
    /// is a mutex, and whose.
    pub fn owner_of_waited_word(word: u32) -> Option<u32> {
        let tid = word & TID_MASK;
        (word & WAITERS != 0 && tid != 0 && tid != NOT_RECOVERABLE).then_some(tid)
    }

    #[inline]
    fn me() -> ProcessId {
        #[cfg(loom)]
        {
            ProcessId { pid: sys::current_tid(), start_time: 0 }
        }
        #[cfg(not(loom))]
        {
            ProcessId::current_thread()
        }
    }

    #[inline]
    fn acquired(&self, me: ProcessId) {
        // Relaxed: the token is advisory; a checker that reads a stale or zero token falls
        // back on the weaker "does the id exist" test (see `owner_is_dead`).
        self.owner.store(me.token(), Ordering::Relaxed);
    }

    /// Is the owner recorded in `word` dead? Called only after a sleep of a full
    /// `LIVENESS_PERIOD` (or by `try_lock`), so the /proc read is off every fast path.
    fn owner_is_dead(&self, word: u32, me: ProcessId) -> bool {
        if cfg!(loom) {
            return false;
        }
        let tid = word & TID_MASK;
        let token = self.owner.load(Ordering::Acquire);
        let recorded = ProcessId::from_token(token);
        if tid == me.pid {
            // Our own id, yet we do not hold it: a dead earlier thread with the same id.
            return token != me.token();
        }
        if recorded.pid == tid {
            !recorded.is_alive()
        } else {
            // Owner died (or is about to publish) between its CAS and its token store: only
            // the id's absence proves death.
            !ProcessId { pid: tid, start_time: 0 }.is_alive()
        }
    }

    /// The fast path: `0 → tid` in one compare-and-swap.
    #[inline]
    fn try_lock_fast(&self) -> bool {
        let me = Self::me();
        // Acquire: pairs with the Release in `unlock`, so the previous critical section
        // happens-before ours.
        let won =
            self.word.compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed).is_ok();
        if won {
            self.acquired(me);
        }
        won
    }

    /// Takes over a lock whose owner died; `seen` is the exact word observed.
    fn take_over(&self, seen: u32, me: ProcessId) -> bool {
        let new = me.pid | INCONSISTENT | WAITERS;
        if self.word.compare_exchange(seen, new, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.acquired(me);
            true
        } else {
            false
        }
    }

    #[cold]
    fn lock_contended(&self, deadline: Option<Instant>) -> Result<Acquired, RawLockError> {
        let me = Self::me();
        // Phase 1: spin with loads only, while the owner may be about to release.
        let mut w = self.word.load(Ordering::Relaxed);
        spin_until_backoff(LOCK_SPIN, || {
            w = self.word.load(Ordering::Relaxed);
            w == 0 || w == NOT_RECOVERABLE
        });
        if w == 0
            && self.word.compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            self.acquired(me);
            return Ok(Acquired::Clean);
        }
        // Phase 2: sleep. From now on acquire with WAITERS set: others may sleep too.
        let mut slept = Duration::ZERO;
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == NOT_RECOVERABLE {
                return Err(RawLockError::NotRecoverable);
            }
            if w & TID_MASK == 0 {
                if self
                    .word
                    .compare_exchange(w, me.pid | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.acquired(me);
                    return Ok(Acquired::Clean);
                }
                continue;
            }
            if w & TID_MASK == me.pid
                && deadline.is_none()
                && self.owner.load(Ordering::Relaxed) == me.token()
            {
                panic!("Mutex::lock: this thread already holds this mutex (self-deadlock)");
            }
            if (w & TID_MASK == me.pid || slept >= LIVENESS_PERIOD) && self.owner_is_dead(w, me) {
                if self.take_over(w, me) {
                    return Ok(Acquired::OwnerDied);
                }
                continue;
            }
            if w & WAITERS == 0
                && self
                    .word
                    .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let mut slice = LIVENESS_PERIOD;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(RawLockError::TimedOut);
                }
                slice = slice.min(d - now);
            }
            if slept >= LIVENESS_PERIOD {
                slept = Duration::ZERO;
            }
            let t0 = Instant::now();
            let r = sys::futex_wait(&self.word, w | WAITERS, Some(slice));
            if r != FutexWait::Mismatch {
                slept += t0.elapsed();
            }
        }
    }
}

// SAFETY: mutual exclusion: the word goes from "no owner" to "owner = tid" only by CAS, and
// the only other way to own it (take_over) is a CAS on the exact word of a dead owner.
unsafe impl RawLock for RawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(not(loom))]
    const INIT: Self = RawMutex::new();
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(loom)]
    const INIT: Self = panic!("use RawMutex::new() under loom");

    #[inline]
    fn lock(&self) -> Result<Acquired, RawLockError> {
        if self.try_lock_fast() {
            return Ok(Acquired::Clean);
        }
        self.lock_contended(None)
    }

    fn try_lock(&self) -> Result<Acquired, RawLockError> {
        let me = Self::me();
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == NOT_RECOVERABLE {
                return Err(RawLockError::NotRecoverable);
            }
            if w & TID_MASK == 0 {
                // Keep WAITERS if a sleeper set it; never lose a wake-up.
                if self
                    .word
                    .compare_exchange(w, w | me.pid, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.acquired(me);
                    return Ok(Acquired::Clean);
                }
                continue;
            }
            if self.owner_is_dead(w, me) {
                if self.take_over(w, me) {
                    return Ok(Acquired::OwnerDied);
                }
                continue;
            }
            return Err(RawLockError::WouldBlock);
        }
    }

    fn lock_timeout(&self, timeout: Duration) -> Result<Acquired, RawLockError> {
        if self.try_lock_fast() {
            return Ok(Acquired::Clean);
        }
        self.lock_contended(Some(Instant::now() + timeout))
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        // Only the owner changes INCONSISTENT, so a plain load is enough to read it.
        if self.word.load(Ordering::Relaxed) & INCONSISTENT != 0 {
            self.word.store(NOT_RECOVERABLE, Ordering::Release);
            sys::futex_wake(&self.word, u32::MAX);
            return;
        }
        // Release: publishes the critical section to the next owner.
        if self.word.swap(0, Ordering::Release) & WAITERS != 0 {
            sys::futex_wake(&self.word, 1);
        }
    }

    fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & TID_MASK != 0
    }

    fn mark_consistent(&self) {
        self.word.fetch_and(!INCONSISTENT, Ordering::Relaxed);
    }
}

/// Why [`Mutex::lock`] and friends did not simply return a guard.
///
/// `OwnerDied` *does* hand over the lock: the guard inside is yours. Repair the data, call
/// [`MutexGuard::mark_consistent`], and go on; if the guard is dropped without that, the
/// mutex becomes `NotRecoverable` for everyone.
pub enum LockError<G> {
    /// The previous owner died holding the lock (`EOWNERDEAD`); here is the guard.
    OwnerDied(G),
    /// The lock can never be acquired again (`ENOTRECOVERABLE`).
    NotRecoverable,
    /// `try_lock`: held by a live owner (`EBUSY`).
    WouldBlock,
    /// `lock_timeout`: the time ran out (`ETIMEDOUT`).
    TimedOut,
}

/// The result of locking: a guard, or a [`LockError`].
pub type LockResult<G> = Result<G, LockError<G>>;

impl<G> LockError<G> {
    /// The guard, if the lock was acquired despite the error (`OwnerDied`).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    pub(crate) fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(g) => LockError::OwnerDied(f(g)),
            LockError::NotRecoverable => LockError::NotRecoverable,
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::TimedOut => LockError::TimedOut,
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied(_) => "OwnerDied(..)",
            LockError::NotRecoverable => "NotRecoverable",
            LockError::WouldBlock => "WouldBlock",
            LockError::TimedOut => "TimedOut",
        })
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied(_) => "the previous owner died holding the lock (EOWNERDEAD)",
            LockError::NotRecoverable => "the lock is not recoverable (ENOTRECOVERABLE)",
            LockError::WouldBlock => "the lock is held (EBUSY)",
            LockError::TimedOut => "timed out waiting for the lock (ETIMEDOUT)",
        })
    }
}

impl<G> std::error::Error for LockError<G> {}

/// A mutual-exclusion lock protecting a `T`, robust by default.
///
/// `R` is the lock's state machine: the robust, process-shared [`RawMutex`] unless another
/// [`RawLock`] (e.g. a spinlock) is named. With `T: ShmSafe` the whole `Mutex` is
/// [`ShmSafe`] and may be placed in a shared mapping: zeroed memory is an unlocked mutex
/// around a zeroed `T`.
///
/// # Example
///
/// ```
/// use ipckit::sync::{LockError, Mutex};
///
/// let m = Mutex::new(vec![1, 2]);
/// match m.lock() {
///     Ok(mut v) => v.push(3),
///     Err(LockError::OwnerDied(mut v)) => {
///         v.clear(); // repair what the dead owner left, then:
///         v.mark_consistent();
///     }
///     Err(e) => panic!("{e}"),
/// }
/// assert_eq!(m.lock().unwrap().len(), 3);
/// ```
#[repr(C)]
pub struct Mutex<T: ?Sized, R = RawMutex> {
    raw: R,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one thread at a time.
unsafe impl<T: ?Sized + Send, R: RawLock + Send> Send for Mutex<T, R> {}
// SAFETY: as above; `&Mutex` only gives `&mut T` under the lock.
unsafe impl<T: ?Sized + Send, R: RawLock + Sync> Sync for Mutex<T, R> {}
// SAFETY: repr(C) of a ShmSafe raw lock and a ShmSafe value; the value is only touched under
// the lock.
unsafe impl<T: ShmSafe + Send, R: RawLock + ShmSafe + Sync> ShmSafe for Mutex<T, R> {}

#[cfg(not(loom))]
impl<T> Mutex<T, RawMutex> {
    /// A new unlocked robust mutex around `value`.
    pub const fn new(value: T) -> Self {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(value) }
    }
}

impl<T, R: RawLock> Mutex<T, R> {
    /// A new unlocked mutex around `value`, with the lock state machine `R` (for example a
    /// spinlock): `Mutex::<u64, SomeSpinLock>::with_raw(0)`.
    #[cfg(not(loom))]
    pub const fn with_raw(value: T) -> Self {
        Mutex { raw: R::INIT, data: UnsafeCell::new(value) }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

#[cfg(loom)]
impl<T> Mutex<T, RawMutex> {
    /// A new unlocked mutex around `value`.
    pub fn new(value: T) -> Self {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(value) }
    }
}

impl<T: ?Sized, R: RawLock> Mutex<T, R> {
    pub(crate) fn guard(
        &self,
        how: Result<Acquired, RawLockError>,
    ) -> LockResult<MutexGuard<'_, T, R>> {
        match how {
            Ok(Acquired::Clean) => Ok(MutexGuard::new(self)),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(MutexGuard::new(self))),
            Err(RawLockError::NotRecoverable) => Err(LockError::NotRecoverable),
            Err(RawLockError::WouldBlock) => Err(LockError::WouldBlock),
            Err(RawLockError::TimedOut) => Err(LockError::TimedOut),
        }
    }

    /// Acquires the mutex, blocking until it is free.
    ///
    /// Errors: `OwnerDied(guard)` (you own it; repair and
    /// [`mark_consistent`](MutexGuard::mark_consistent)), `NotRecoverable`.
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T, R>> {
        self.guard(self.raw.lock())
    }

    /// Acquires the mutex only if that needs no waiting: `WouldBlock` otherwise.
    pub fn try_lock(&self) -> LockResult<MutexGuard<'_, T, R>> {
        self.guard(self.raw.try_lock())
    }

    /// Acquires the mutex, waiting at most `timeout`: `TimedOut` otherwise.
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_, T, R>> {
        self.guard(self.raw.lock_timeout(timeout))
    }

    /// The raw lock.
    pub fn raw(&self) -> &R {
        &self.raw
    }

    /// Mutable access without locking: `&mut self` proves nobody else can hold it.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default, R: RawLock> Default for Mutex<T, R> {
    fn default() -> Self {
        Mutex { raw: R::INIT, data: UnsafeCell::new(T::default()) }
    }
}

impl<T: ?Sized, R: RawLock> fmt::Debug for Mutex<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex").field("locked", &self.raw.is_locked()).finish_non_exhaustive()
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped.
///
/// Not `Send`: a robust mutex is owned by a thread, and must be unlocked by it.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized, R: RawLock = RawMutex> {
    mutex: &'a Mutex<T, R>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing `&MutexGuard` only shares `&T`.
unsafe impl<T: ?Sized + Sync, R: RawLock + Sync> Sync for MutexGuard<'_, T, R> {}

impl<'a, T: ?Sized, R: RawLock> MutexGuard<'a, T, R> {
    fn new(mutex: &'a Mutex<T, R>) -> Self {
        MutexGuard { mutex, _not_send: PhantomData }
    }

    /// Declares the protected state repaired after [`LockError::OwnerDied`]
    /// (`pthread_mutex_consistent`).
    pub fn mark_consistent(&self) {
        self.mutex.raw.mark_consistent();
    }

    /// The mutex this guard locks.
    pub fn mutex(&self) -> &'a Mutex<T, R> {
        self.mutex
    }

    /// Releases the lock without dropping the borrow: for condition variables.
    pub(crate) fn into_mutex(self) -> &'a Mutex<T, R> {
        let m = self.mutex;
        std::mem::forget(self);
        // SAFETY: this guard proved we hold the lock; forgetting it skips the Drop unlock.
        unsafe { m.raw.unlock() };
        m
    }
}

impl<T: ?Sized, R: RawLock> Deref for MutexGuard<'_, T, R> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized, R: RawLock> DerefMut for MutexGuard<'_, T, R> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the lock is held, and `&mut self` is unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized, R: RawLock> Drop for MutexGuard<'_, T, R> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while the lock is held by this thread.
        unsafe { self.mutex.raw.unlock() }
    }
}

impl<T: ?Sized + fmt::Debug, R: RawLock> fmt::Debug for MutexGuard<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_unlock_and_try() {
        let m = Mutex::new(5);
        {
            let g = m.lock().unwrap();
            assert_eq!(*g, 5);
            assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
            assert!(matches!(m.lock_timeout(Duration::from_millis(20)), Err(LockError::TimedOut)));
        }
        assert!(m.try_lock().is_ok());
    }

    #[test]
    fn threads_count_exactly() {
        let m = Arc::new(Mutex::new(0u64));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 80_000);
    }

    #[test]
    fn dead_thread_owner_is_detected_then_not_recoverable() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        std::thread::spawn(move || std::mem::forget(m2.lock().unwrap())).join().unwrap();
        let t = Instant::now();
        match m.lock() {
            Err(LockError::OwnerDied(g)) => drop(g), // not marked consistent
            other => panic!("expected OwnerDied, got {:?}", other.map(|_| ())),
        }
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(matches!(m.lock(), Err(LockError::NotRecoverable)));
        assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
    }

    #[test]
    fn dead_owner_repaired_mutex_keeps_working() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        std::thread::spawn(move || std::mem::forget(m2.lock().unwrap())).join().unwrap();
        let g = m.try_lock().unwrap_err().into_guard().expect("OwnerDied from try_lock");
        g.mark_consistent();
        drop(g);
        assert_eq!(*m.lock().unwrap(), 1);
    }

    #[test]
    fn waiter_sleeping_on_dead_owner_wakes_within_a_second() {
        let m = Arc::new(Mutex::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let m2 = m.clone();
        let owner = std::thread::spawn(move || {
            let g = m2.lock().unwrap();
            locked_tx.send(()).unwrap();
            rx.recv().unwrap();
            std::mem::forget(g);
        });
        locked_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let m3 = m.clone();
        let waiter = std::thread::spawn(move || {
            let r = m3.lock();
            let t = Instant::now();
            (matches!(r, Err(LockError::OwnerDied(_))), t)
        });
        std::thread::sleep(Duration::from_millis(50));
        tx.send(()).unwrap();
        owner.join().unwrap();
        let died_at = Instant::now();
        let (owner_died, woke_at) = waiter.join().unwrap();
        assert!(owner_died);
        assert!(woke_at.duration_since(died_at) < Duration::from_secs(1));
    }
}
