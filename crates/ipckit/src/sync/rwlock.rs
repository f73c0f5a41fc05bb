//! Reader-writer locks with a policy: who goes first when readers and writers both wait.
//!
//! Courtois, Heymans and Parnas (1971) posed the readers-writers problem: many readers may
//! share the data, a writer needs it alone. Their first solution prefers readers (a writer
//! may starve), their second prefers writers (readers may starve). Brandenburg and Anderson
//! (2010) describe *phase-fair* locks, where reader and writer phases alternate so neither
//! side starves. [`RawRwLock`] implements these choices over one state machine, picked by a
//! [`Policy`] at construction:
//!
//! | policy | a reader enters when | a writer enters when | on a writer's release |
//! |---|---|---|---|
//! | [`Fair`](Policy::Fair) (default) | no writer holds **and none waits** | no reader or writer holds, and (if it just arrived) no writer waits | every waiting reader is admitted at once (a reader phase), then the next writer |
//! | [`ReaderPreferred`](Policy::ReaderPreferred) | no writer holds | no reader or writer holds | waiting readers are admitted; writers wait until no reader is left — a stream of readers starves them |
//! | [`WriterPreferred`](Policy::WriterPreferred) | no writer holds and none waits | no reader or writer holds | the next writer goes; readers are admitted only when no writer waits — a stream of writers starves them |
//! | [`Unordered`](Policy::Unordered) | no writer holds | no reader or writer holds | everyone is woken and races: no preference, no handoff ("slim" lock) |
//!
//! Under `Fair`, a waiting writer blocks readers that arrive after it, and readers that were
//! already waiting when it arrived are admitted before it (they were queued behind the
//! previous writer and enter in the reader phase that writer's release starts). Among
//! writers there is no strict FIFO: registered waiters are woken one at a time by the kernel
//! (in arrival order in practice); a newly arriving writer does not barge past them.
//!
//! ## Upgrade and downgrade
//!
//! * **Downgrade** (write → read, every policy): one compare-and-swap turns the write hold
//!   into a read hold, so no writer can get in between ([`RwLockWriteGuard::downgrade`]).
//!   Waiting readers are admitted with it unless the policy holds them back for a waiting
//!   writer (`WriterPreferred`).
//! * **Upgradable read** (every policy): at most one [`RwLockUpgradableReadGuard`] at a
//!   time; it shares the lock with plain readers and excludes writers, so its upgrade to a
//!   write hold only waits for the plain readers to leave and can never deadlock against
//!   another upgrader (two plain readers that both tried to upgrade would wait for each other
//!   forever, which is why plain read guards cannot upgrade). While it waits to upgrade it
//!   counts as a waiting writer: under `Fair` and `WriterPreferred` that holds back new
//!   readers, so the upgrade cannot starve; under `ReaderPreferred` and `Unordered` a
//!   continuous stream of readers can delay it forever (use `upgrade_timeout`).
//!
//! ## The state word
//!
//! One 64-bit word holds the whole state, so every transition is one compare-and-swap:
//!
//! | bits | meaning |
//! |---|---|
//! | 0..=17 | active readers |
//! | 18 `WRITER` | a writer holds the lock |
//! | 19 `UPGRADABLE` | an upgradable reader holds the lock (shares it with readers, excludes writers) |
//! | 20..=37 | waiting readers (registered, asleep or about to sleep) |
//! | 38..=55 | waiting writers (including upgradable readers waiting to enter or to upgrade) |
//! | 56..=63 | reader phase: bumped when waiting readers are admitted by a *handoff* |
//!
//! A *handoff* moves every waiting reader to the active count in the same compare-and-swap
//! that releases the write lock, and bumps the phase. A sleeping reader that sees the phase
//! change knows it was admitted; no later arrival can slip in before it. (`Unordered` skips
//! the handoff: woken readers retry.)
//!
//! Sleepers sleep on two 32-bit futex words, `read_seq` for readers and `write_seq` for
//! writers. A waiter registers in the state word (a compare-and-swap), reads the sequence
//! word, re-checks the state, and sleeps only if the sequence is unchanged; whoever changes
//! the state in a way that may let a registered waiter in bumps the sequence and calls
//! `futex_wake` — only when the state word showed a waiter. Registration and release are
//! RMWs on the same word, so the releaser always sees the registration or the waiter sees
//! the release.
//!
//! Zeroed memory is an unlocked lock with the `Fair` policy, so a `RawRwLock` (and an
//! [`RwLock<T>`] with `T: ShmSafe`) may be placed in a fresh shared mapping. The lock is not
//! robust: a process that dies holding it (or registered as a waiter) leaves it held; use
//! the `_timeout` forms between processes that may die.

use super::backoff::{LOCK_SPIN, futex_wait_until, snooze_until, spin_until_backoff};
use crate::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::shm::ShmSafe;
use crate::sys;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

const READER: u64 = 1;
const READERS_MASK: u64 = (1 << 18) - 1;
const WRITER: u64 = 1 << 18;
const UPGRADABLE: u64 = 1 << 19;
const WAIT_READER: u64 = 1 << 20;
const WAIT_READERS_MASK: u64 = READERS_MASK << 20;
const WAIT_WRITER: u64 = 1 << 38;
const WAIT_WRITERS_MASK: u64 = READERS_MASK << 38;
const PHASE: u64 = 1 << 56;

#[inline]
fn readers(s: u64) -> u64 {
    s & READERS_MASK
}
#[inline]
fn waiting_readers(s: u64) -> u64 {
    (s & WAIT_READERS_MASK) >> 20
}
#[inline]
fn waiting_writers(s: u64) -> u64 {
    (s & WAIT_WRITERS_MASK) >> 38
}
#[inline]
fn phase(s: u64) -> u64 {
    s >> 56
}

/// A short fixed wait before the adaptive spin: [`Backoff`](super::Backoff) steps (a few spins, growing,
/// then a few yields), like `parking_lot`'s `SpinWait`. Read and write sections are often
/// shorter than one step; the yields let a holder that shares our CPU finish. The adaptive
/// spin ([`spin_until_backoff`]) after it learns from outcome and may be skipped entirely, so this
/// keeps the common brief conflict off the futex even on a loaded machine.
#[inline]
fn brief_wait(mut ready: impl FnMut() -> bool) -> bool {
    if cfg!(loom) {
        return ready();
    }
    snooze_until(ready)
}

/// Who goes first when readers and writers both wait (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum Policy {
    /// Phase-fair: neither side starves. The default, and what zeroed memory means.
    #[default]
    Fair = 0,
    /// Readers first: readers enter whenever no writer holds the lock; writers can starve.
    ReaderPreferred = 1,
    /// Writers first: a waiting writer blocks new readers; readers can starve.
    WriterPreferred = 2,
    /// No preference, no handoff: every waiter is woken and races ("slim" lock).
    Unordered = 3,
}

impl Policy {
    /// All policies, for demos and tests.
    pub const ALL: [Policy; 4] =
        [Policy::Fair, Policy::ReaderPreferred, Policy::WriterPreferred, Policy::Unordered];

    fn from_u32(v: u32) -> Policy {
        match v {
            1 => Policy::ReaderPreferred,
            2 => Policy::WriterPreferred,
            3 => Policy::Unordered,
            _ => Policy::Fair, // 0, or an unknown value left in shared memory
        }
    }

    /// The policy's name in kebab case (`fair`, `reader-preferred`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Policy::Fair => "fair",
            Policy::ReaderPreferred => "reader-preferred",
            Policy::WriterPreferred => "writer-preferred",
            Policy::Unordered => "unordered",
        }
    }

    /// Do arriving readers queue behind waiting writers?
    fn readers_yield_to_waiting_writers(self) -> bool {
        matches!(self, Policy::Fair | Policy::WriterPreferred)
    }

    /// Are waiting readers admitted by handoff (rather than woken to retry)?
    fn hands_off(self) -> bool {
        !matches!(self, Policy::Unordered)
    }
}

/// A snapshot of a [`RawRwLock`]'s state word, for diagnostics, demos and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RwLockState {
    /// Readers holding the lock.
    pub readers: u32,
    /// A writer holds the lock.
    pub writer: bool,
    /// An upgradable reader holds the lock.
    pub upgradable: bool,
    /// Readers waiting.
    pub waiting_readers: u32,
    /// Writers (and upgradable readers) waiting.
    pub waiting_writers: u32,
}

/// Why a `try_` or `_timeout` lock call returned without the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RwLockError {
    /// `try_*`: the lock is not available in the wanted mode right now (`EBUSY`).
    #[error("the lock is held (EBUSY)")]
    WouldBlock,
    /// `*_timeout`: the time ran out (`ETIMEDOUT`).
    #[error("timed out waiting for the lock (ETIMEDOUT)")]
    TimedOut,
}

/// The state machine of a reader-writer lock with a [`Policy`] (see the [module docs](self)).
///
/// Process-shared: plain atomics, `#[repr(C)]`, zeroed = unlocked and `Fair`.
#[repr(C)]
pub struct RawRwLock {
    state: AtomicU64,
    read_seq: AtomicU32,
    write_seq: AtomicU32,
    policy: AtomicU32,
    _pad: u32,
}

// SAFETY: repr(C), atomics only; an unknown policy value means Fair; any state word is a
// state (a hostile one can only block, and the timeout forms bound that); zero is unlocked.
unsafe impl ShmSafe for RawRwLock {}

impl fmt::Debug for RawRwLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRwLock")
            .field("policy", &self.policy())
            .field("state", &self.state())
            .finish()
    }
}

impl Default for RawRwLock {
    fn default() -> Self {
        Self::new(Policy::Fair)
    }
}

/// What a waiter waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Write,
    Upgradable,
    Upgrade,
}

impl RawRwLock {
    /// An unlocked lock with `policy`.
    #[cfg(not(loom))]
    pub const fn new(policy: Policy) -> Self {
        RawRwLock {
            state: AtomicU64::new(0),
            read_seq: AtomicU32::new(0),
            write_seq: AtomicU32::new(0),
            policy: AtomicU32::new(policy as u32),
            _pad: 0,
        }
    }

    /// An unlocked lock with `policy`.
    #[cfg(loom)]
    pub fn new(policy: Policy) -> Self {
        RawRwLock {
            state: AtomicU64::new(0),
            read_seq: AtomicU32::new(0),
            write_seq: AtomicU32::new(0),
            policy: AtomicU32::new(policy as u32),
            _pad: 0,
        }
    }

    /// Sets the policy of a lock that nobody uses yet: the second phase of placing a lock in
    /// a fresh (zeroed, hence `Fair`) shared mapping. Changing the policy of a lock in use is
    /// memory-safe but may leave a waiter that started under the old policy waiting for a
    /// handoff that the new one never makes.
    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(policy as u32, Ordering::Relaxed);
    }

    /// The lock's policy.
    #[inline]
    pub fn policy(&self) -> Policy {
        Policy::from_u32(self.policy.load(Ordering::Relaxed))
    }

    /// A snapshot of the state word.
    pub fn state(&self) -> RwLockState {
        let s = self.state.load(Ordering::Relaxed);
        RwLockState {
            readers: readers(s) as u32,
            writer: s & WRITER != 0,
            upgradable: s & UPGRADABLE != 0,
            waiting_readers: waiting_readers(s) as u32,
            waiting_writers: waiting_writers(s) as u32,
        }
    }

    #[inline]
    fn reader_may_enter(p: Policy, s: u64) -> bool {
        s & WRITER == 0
            && (!p.readers_yield_to_waiting_writers() || s & WAIT_WRITERS_MASK == 0)
            && readers(s) < READERS_MASK
    }

    /// `registered`: the caller is counted among the waiting writers.
    #[inline]
    fn may_enter(p: Policy, s: u64, want: Want, registered: bool) -> bool {
        let others_waiting = waiting_writers(s) > registered as u64;
        match want {
            Want::Write => {
                s & (WRITER | UPGRADABLE | READERS_MASK) == 0
                    && !(p == Policy::Fair && !registered && others_waiting)
            }
            Want::Upgradable => {
                s & (WRITER | UPGRADABLE) == 0
                    && !(p.readers_yield_to_waiting_writers() && others_waiting)
            }
            Want::Upgrade => s & READERS_MASK == 0,
        }
    }

    /// The state after `want` is granted to a caller (registered or not).
    #[inline]
    fn granted(s: u64, want: Want, registered: bool) -> u64 {
        let s = if registered { s - WAIT_WRITER } else { s };
        match want {
            Want::Write => s | WRITER,
            Want::Upgradable => s | UPGRADABLE,
            Want::Upgrade => (s & !UPGRADABLE) | WRITER,
        }
    }

    /// Readers held back only by waiting writers are due once the last writer stops waiting
    /// without taking the write lock (it gave up, or entered as an upgradable reader).
    #[inline]
    fn readers_due(p: Policy, n: u64) -> bool {
        p.readers_yield_to_waiting_writers()
            && waiting_writers(n) == 0
            && n & WRITER == 0
            && waiting_readers(n) > 0
    }

    /// Moves every waiting reader to the active count and starts a new reader phase.
    #[inline]
    fn admit_readers(s: u64) -> u64 {
        let w = waiting_readers(s);
        ((s & !WAIT_READERS_MASK) + w * READER).wrapping_add(PHASE)
    }

    fn wake_readers(&self) {
        self.read_seq.fetch_add(1, Ordering::Release);
        sys::futex_wake(&self.read_seq, u32::MAX);
    }

    /// Wakes a writer; all writers when an upgradable reader holds or waits among them (the
    /// one woken must be the one that can go on).
    fn wake_writers(&self, s: u64) {
        self.write_seq.fetch_add(1, Ordering::Release);
        let n = if s & UPGRADABLE != 0 { u32::MAX } else { 1 };
        sys::futex_wake(&self.write_seq, n);
    }

    // ---- shared (read) mode ----

    /// Acquires the lock shared, blocking while the policy says readers must wait.
    ///
    /// # Panics
    ///
    /// If 2¹⁸ − 1 readers hold the lock at once.
    #[inline]
    pub fn lock_shared(&self) {
        if !self.try_lock_shared_fast() {
            self.lock_shared_slow(None);
        }
    }

    #[inline]
    fn try_lock_shared_fast(&self) -> bool {
        let p = self.policy();
        let s = self.state.load(Ordering::Relaxed);
        // Acquire: pairs with the Release of the last writer's unlock.
        Self::reader_may_enter(p, s)
            && self
                .state
                .compare_exchange_weak(s, s + READER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Acquires the lock shared if the policy lets a reader in right now. Never blocks
    /// (retries only while other readers race it for the word).
    pub fn try_lock_shared(&self) -> bool {
        let p = self.policy();
        let mut s = self.state.load(Ordering::Relaxed);
        while Self::reader_may_enter(p, s) {
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Acquires the lock shared, waiting at most `timeout`; `false` if the time ran out.
    pub fn lock_shared_timeout(&self, timeout: Duration) -> bool {
        self.try_lock_shared_fast() || self.lock_shared_slow(Some(Instant::now() + timeout))
    }

    #[cold]
    fn lock_shared_slow(&self, deadline: Option<Instant>) -> bool {
        let p = self.policy();
        let ready = || Self::reader_may_enter(p, self.state.load(Ordering::Relaxed));
        if !brief_wait(ready) {
            spin_until_backoff(LOCK_SPIN, ready);
        }
        // Enter, or register as a waiting reader.
        let mut s = self.state.load(Ordering::Relaxed);
        let my_phase = loop {
            if Self::reader_may_enter(p, s) {
                match self.state.compare_exchange_weak(
                    s,
                    s + READER,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(now) => s = now,
                }
                continue;
            }
            if readers(s) == READERS_MASK {
                panic!("RwLock: too many readers ({READERS_MASK})");
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s + WAIT_READER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break phase(s),
                Err(now) => s = now,
            }
        };
        loop {
            // Sequence before state: a release between the two changes the sequence.
            let seq = self.read_seq.load(Ordering::Acquire);
            let s = self.state.load(Ordering::Acquire);
            if p.hands_off() {
                if phase(s) != my_phase {
                    return true; // admitted by a handoff; our count is in `readers`
                }
            } else if s & WRITER == 0 {
                if self
                    .state
                    .compare_exchange(
                        s,
                        s - WAIT_READER + READER,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if !futex_wait_until(&self.read_seq, seq, deadline) {
                return self.abandon_shared_wait(p, my_phase);
            }
        }
    }

    /// A waiting reader gives up: deregisters, unless a handoff admitted it meanwhile.
    fn abandon_shared_wait(&self, p: Policy, my_phase: u64) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if p.hands_off() && phase(s) != my_phase {
                return true;
            }
            match self.state.compare_exchange_weak(
                s,
                s - WAIT_READER,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return false,
                Err(now) => s = now,
            }
        }
    }

    /// Releases a shared hold.
    ///
    /// # Safety
    ///
    /// The caller holds the lock shared (this thread or, since the lock tracks no owner, a
    /// thread that took over the hold).
    #[inline]
    pub unsafe fn unlock_shared(&self) {
        // Release: our reads happen-before the next writer's writes.
        let s = self.state.fetch_sub(READER, Ordering::Release);
        if readers(s) == 1 && s & WAIT_WRITERS_MASK != 0 {
            self.wake_writers(s);
        }
    }

    // ---- exclusive (write) mode ----

    /// Acquires the lock exclusively, blocking while anyone else holds it (and, under `Fair`,
    /// while other writers wait).
    #[inline]
    pub fn lock_exclusive(&self) {
        if !self.try_lock_exclusive() {
            self.lock_slow(Want::Write, None);
        }
    }

    /// Acquires the lock exclusively if nobody holds it (and, under `Fair`, no writer waits).
    /// Never blocks.
    #[inline]
    pub fn try_lock_exclusive(&self) -> bool {
        let p = self.policy();
        let s = self.state.load(Ordering::Relaxed);
        Self::may_enter(p, s, Want::Write, false)
            && self
                .state
                .compare_exchange(s, s | WRITER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Acquires the lock exclusively, waiting at most `timeout`; `false` if the time ran out.
    pub fn lock_exclusive_timeout(&self, timeout: Duration) -> bool {
        self.try_lock_exclusive() || self.lock_slow(Want::Write, Some(Instant::now() + timeout))
    }

    /// Waits for `want` (for `Upgrade`, the caller holds `UPGRADABLE`).
    #[cold]
    fn lock_slow(&self, want: Want, deadline: Option<Instant>) -> bool {
        let p = self.policy();
        // Where a waiting writer holds back new readers (Fair, WriterPreferred), register at
        // once and spin afterwards: the readers inside drain while no new one enters, as in
        // parking_lot. Elsewhere registering changes nothing for readers, so spin first.
        let register_first = p.readers_yield_to_waiting_writers() && want != Want::Upgradable;
        if !register_first {
            let ready = || Self::may_enter(p, self.state.load(Ordering::Relaxed), want, false);
            if !brief_wait(ready) {
                spin_until_backoff(LOCK_SPIN, ready);
            }
        }
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if Self::may_enter(p, s, want, false) {
                match self.state.compare_exchange_weak(
                    s,
                    Self::granted(s, want, false),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(now) => s = now,
                }
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            if waiting_writers(s) == READERS_MASK {
                panic!("RwLock: too many waiting writers");
            }
            match self.state.compare_exchange_weak(
                s,
                s + WAIT_WRITER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let mut spun = !register_first;
        loop {
            let seq = self.write_seq.load(Ordering::Acquire);
            let s = self.state.load(Ordering::Acquire);
            if !spun && !Self::may_enter(p, s, want, true) {
                spun = true;
                let ready = || Self::may_enter(p, self.state.load(Ordering::Relaxed), want, true);
                if !brief_wait(ready) {
                    spin_until_backoff(LOCK_SPIN, ready);
                }
                continue;
            }
            if Self::may_enter(p, s, want, true) {
                let mut n = Self::granted(s, want, true);
                let admit = Self::readers_due(p, n);
                if admit {
                    n = Self::admit_readers(n);
                }
                if self.state.compare_exchange(s, n, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    if admit {
                        self.wake_readers();
                    }
                    return true;
                }
                continue;
            }
            if !futex_wait_until(&self.write_seq, seq, deadline) {
                self.abandon_exclusive_wait(p);
                return false;
            }
        }
    }

    /// A waiting writer gives up: deregisters, and passes on what its leaving makes possible
    /// (readers that were held back only by waiting writers; a wake-up it may have consumed).
    fn abandon_exclusive_wait(&self, p: Policy) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let mut n = s - WAIT_WRITER;
            let admit = Self::readers_due(p, n);
            if admit {
                n = Self::admit_readers(n);
            }
            match self.state.compare_exchange_weak(s, n, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if admit {
                        self.wake_readers();
                    }
                    if waiting_writers(n) > 0 && n & (WRITER | READERS_MASK) == 0 {
                        self.wake_writers(n);
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Releases the exclusive hold (`keep_shared`: and keeps a shared one: a downgrade).
    fn release_exclusive(&self, keep_shared: bool) {
        let p = self.policy();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let mut n = s & !WRITER;
            if keep_shared {
                n += READER;
            }
            let wr = waiting_readers(s);
            let ww = waiting_writers(s);
            let admit = wr > 0
                && match p {
                    Policy::Fair | Policy::ReaderPreferred => true,
                    Policy::WriterPreferred => ww == 0,
                    Policy::Unordered => false,
                };
            if admit {
                n = Self::admit_readers(n);
            }
            // Release: our writes happen-before the next holder's reads.
            match self.state.compare_exchange_weak(s, n, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => {
                    if admit || (p == Policy::Unordered && wr > 0) {
                        self.wake_readers();
                    }
                    if ww > 0 && readers(n) == 0 {
                        self.wake_writers(n);
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Releases the exclusive hold.
    ///
    /// # Safety
    ///
    /// The caller holds the lock exclusively.
    #[inline]
    pub unsafe fn unlock_exclusive(&self) {
        self.release_exclusive(false);
    }

    /// Turns an exclusive hold into a shared one without letting a writer in between.
    /// Waiting readers are admitted with it unless the policy holds them back for a waiting
    /// writer (`WriterPreferred`).
    ///
    /// # Safety
    ///
    /// The caller holds the lock exclusively.
    pub unsafe fn downgrade(&self) {
        self.release_exclusive(true);
    }

    // ---- upgradable mode ----

    /// Acquires an upgradable shared hold: it coexists with readers but not with writers or
    /// another upgradable hold, and can later become exclusive with
    /// [`upgrade`](Self::upgrade) without letting any writer in between.
    pub fn lock_upgradable(&self) {
        if !self.try_lock_upgradable() {
            self.lock_slow(Want::Upgradable, None);
        }
    }

    /// Acquires an upgradable hold if that needs no waiting.
    pub fn try_lock_upgradable(&self) -> bool {
        let p = self.policy();
        let mut s = self.state.load(Ordering::Relaxed);
        while Self::may_enter(p, s, Want::Upgradable, false) {
            match self.state.compare_exchange_weak(
                s,
                s | UPGRADABLE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Acquires an upgradable hold, waiting at most `timeout`.
    pub fn lock_upgradable_timeout(&self, timeout: Duration) -> bool {
        self.try_lock_upgradable()
            || self.lock_slow(Want::Upgradable, Some(Instant::now() + timeout))
    }

    /// Releases an upgradable hold.
    ///
    /// # Safety
    ///
    /// The caller holds the lock upgradable.
    pub unsafe fn unlock_upgradable(&self) {
        let s = self.state.fetch_and(!UPGRADABLE, Ordering::Release);
        if s & WAIT_WRITERS_MASK != 0 {
            // A writer (if no reader is left) or another upgradable waiter may go on: wake
            // them all (`s` has UPGRADABLE), the ones that cannot go on sleep again.
            self.wake_writers(s);
        }
    }

    /// Upgradable → exclusive: waits until the other readers have left. Under `Fair` and
    /// `WriterPreferred` the upgrade waits like a writer and holds back new readers, so it
    /// cannot starve; under the other policies a stream of readers can delay it forever.
    ///
    /// # Safety
    ///
    /// The caller holds the lock upgradable.
    pub unsafe fn upgrade(&self) {
        // SAFETY: forwarded contract.
        if !unsafe { self.try_upgrade() } {
            self.lock_slow(Want::Upgrade, None);
        }
    }

    /// Upgradable → exclusive if no other reader holds the lock.
    ///
    /// # Safety
    ///
    /// The caller holds the lock upgradable.
    pub unsafe fn try_upgrade(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while readers(s) == 0 {
            match self.state.compare_exchange_weak(
                s,
                Self::granted(s, Want::Upgrade, false),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Upgradable → exclusive, waiting at most `timeout`; on `false` the caller still holds
    /// the lock upgradable.
    ///
    /// # Safety
    ///
    /// The caller holds the lock upgradable.
    pub unsafe fn upgrade_timeout(&self, timeout: Duration) -> bool {
        // SAFETY: forwarded contract.
        let now = unsafe { self.try_upgrade() };
        now || self.lock_slow(Want::Upgrade, Some(Instant::now() + timeout))
    }

    /// Upgradable → shared.
    ///
    /// # Safety
    ///
    /// The caller holds the lock upgradable.
    pub unsafe fn downgrade_upgradable(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            match self.state.compare_exchange_weak(
                s,
                (s & !UPGRADABLE) + READER,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & WAIT_WRITERS_MASK != 0 {
            self.wake_writers(s | UPGRADABLE);
        }
    }
}

/// A reader-writer lock protecting a `T`, with a [`Policy`].
///
/// With `T: ShmSafe` it may be placed in a shared mapping (zeroed memory is an unlocked,
/// `Fair` lock around a zeroed `T`).
///
/// ```
/// use ipckit::sync::{Policy, RwLock};
///
/// let lock = RwLock::with_policy(vec![1, 2], Policy::WriterPreferred);
/// {
///     let a = lock.read();
///     let b = lock.read(); // readers share
///     assert_eq!(a.len() + b.len(), 4);
///     assert!(lock.try_write().is_err());
/// }
/// let mut w = lock.write();
/// w.push(3);
/// let r = w.downgrade(); // no writer can slip in between
/// assert_eq!(*r, [1, 2, 3]);
/// ```
#[repr(C)]
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands `&mut T` to one thread at a time, `&T` to many (hence `T: Sync`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: repr(C) of a ShmSafe raw lock and a ShmSafe value, touched only under the lock.
unsafe impl<T: ShmSafe + Send> ShmSafe for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new unlocked `Fair` lock around `value`.
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Self {
        Self::with_policy(value, Policy::Fair)
    }

    /// A new unlocked lock around `value` with `policy`.
    #[cfg(not(loom))]
    pub const fn with_policy(value: T, policy: Policy) -> Self {
        RwLock { raw: RawRwLock::new(policy), data: UnsafeCell::new(value) }
    }

    /// A new unlocked `Fair` lock around `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Self::with_policy(value, Policy::Fair)
    }

    /// A new unlocked lock around `value` with `policy`.
    #[cfg(loom)]
    pub fn with_policy(value: T, policy: Policy) -> Self {
        RwLock { raw: RawRwLock::new(policy), data: UnsafeCell::new(value) }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock { raw: RawRwLock::default(), data: UnsafeCell::new(T::default()) }
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock").field("raw", &self.raw).finish_non_exhaustive()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// The raw lock (policy, state snapshot).
    pub fn raw(&self) -> &RawRwLock {
        &self.raw
    }

    /// Mutable access without locking: `&mut self` proves nobody else holds it.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard { lock: self, _not_send: PhantomData }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard { lock: self, _not_send: PhantomData }
    }

    fn upgradable_guard(&self) -> RwLockUpgradableReadGuard<'_, T> {
        RwLockUpgradableReadGuard { lock: self, _not_send: PhantomData }
    }

    /// Shared access, blocking while the policy makes readers wait.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.raw.lock_shared();
        self.read_guard()
    }

    /// Shared access if the policy lets a reader in now; `WouldBlock` otherwise.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, RwLockError> {
        self.raw.try_lock_shared().then(|| self.read_guard()).ok_or(RwLockError::WouldBlock)
    }

    /// Shared access, waiting at most `timeout`; `TimedOut` otherwise.
    pub fn read_timeout(&self, timeout: Duration) -> Result<RwLockReadGuard<'_, T>, RwLockError> {
        self.raw
            .lock_shared_timeout(timeout)
            .then(|| self.read_guard())
            .ok_or(RwLockError::TimedOut)
    }

    /// Exclusive access, blocking while anyone else holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.raw.lock_exclusive();
        self.write_guard()
    }

    /// Exclusive access if available now; `WouldBlock` otherwise.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, RwLockError> {
        self.raw.try_lock_exclusive().then(|| self.write_guard()).ok_or(RwLockError::WouldBlock)
    }

    /// Exclusive access, waiting at most `timeout`; `TimedOut` otherwise.
    pub fn write_timeout(&self, timeout: Duration) -> Result<RwLockWriteGuard<'_, T>, RwLockError> {
        self.raw
            .lock_exclusive_timeout(timeout)
            .then(|| self.write_guard())
            .ok_or(RwLockError::TimedOut)
    }

    /// Upgradable shared access (see [`RawRwLock::lock_upgradable`]), blocking.
    pub fn upgradable_read(&self) -> RwLockUpgradableReadGuard<'_, T> {
        self.raw.lock_upgradable();
        self.upgradable_guard()
    }

    /// Upgradable shared access if available now; `WouldBlock` otherwise.
    pub fn try_upgradable_read(&self) -> Result<RwLockUpgradableReadGuard<'_, T>, RwLockError> {
        self.raw
            .try_lock_upgradable()
            .then(|| self.upgradable_guard())
            .ok_or(RwLockError::WouldBlock)
    }

    /// Upgradable shared access, waiting at most `timeout`; `TimedOut` otherwise.
    pub fn upgradable_read_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RwLockUpgradableReadGuard<'_, T>, RwLockError> {
        self.raw
            .lock_upgradable_timeout(timeout)
            .then(|| self.upgradable_guard())
            .ok_or(RwLockError::TimedOut)
    }
}

/// Shared access to an [`RwLock`]'s data; releases when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s data; releases when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Upgradable shared access to an [`RwLock`]'s data; releases when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockUpgradableReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing a guard shares only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockUpgradableReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns exclusive access into shared access atomically: no writer gets in between.
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let lock = self.lock;
        std::mem::forget(self);
        // SAFETY: the write guard proved the exclusive hold; forgetting it skips its unlock.
        unsafe { lock.raw.downgrade() };
        lock.read_guard()
    }
}

impl<'a, T: ?Sized> RwLockUpgradableReadGuard<'a, T> {
    /// Becomes exclusive once the other readers have left (blocking).
    pub fn upgrade(self) -> RwLockWriteGuard<'a, T> {
        let lock = self.lock;
        std::mem::forget(self);
        // SAFETY: the guard proved the upgradable hold.
        unsafe { lock.raw.upgrade() };
        lock.write_guard()
    }

    /// Becomes exclusive if no other reader holds the lock; gives the guard back otherwise.
    pub fn try_upgrade(self) -> Result<RwLockWriteGuard<'a, T>, Self> {
        // SAFETY: the guard proves the upgradable hold.
        if unsafe { self.lock.raw.try_upgrade() } {
            let lock = self.lock;
            std::mem::forget(self);
            Ok(lock.write_guard())
        } else {
            Err(self)
        }
    }

    /// Becomes exclusive, waiting at most `timeout`; gives the guard back if time ran out.
    pub fn upgrade_timeout(self, timeout: Duration) -> Result<RwLockWriteGuard<'a, T>, Self> {
        // SAFETY: the guard proves the upgradable hold.
        if unsafe { self.lock.raw.upgrade_timeout(timeout) } {
            let lock = self.lock;
            std::mem::forget(self);
            Ok(lock.write_guard())
        } else {
            Err(self)
        }
    }

    /// Becomes a plain shared hold.
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let lock = self.lock;
        std::mem::forget(self);
        // SAFETY: the guard proved the upgradable hold.
        unsafe { lock.raw.downgrade_upgradable() };
        lock.read_guard()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a shared hold: no writer exists while the guard lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockUpgradableReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: an upgradable hold excludes writers.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: an exclusive hold.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: an exclusive hold, and `&mut self` is unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while the shared hold does.
        unsafe { self.lock.raw.unlock_shared() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while the exclusive hold does.
        unsafe { self.lock.raw.unlock_exclusive() }
    }
}

impl<T: ?Sized> Drop for RwLockUpgradableReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while the upgradable hold does.
        unsafe { self.lock.raw.unlock_upgradable() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockUpgradableReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::tests_common::wait_for;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64 as StdU64};

    #[test]
    fn zeroed_is_unlocked_fair() {
        // SAFETY: RawRwLock is atomics only; zero is its documented unlocked state.
        let raw: RawRwLock = unsafe { std::mem::zeroed() };
        assert_eq!(raw.policy(), Policy::Fair);
        assert!(raw.try_lock_exclusive());
        // SAFETY: held exclusively just above.
        unsafe { raw.unlock_exclusive() };
        assert_eq!(raw.state().readers, 0);
    }

    #[test]
    fn modes_exclude_as_they_should_under_every_policy() {
        for p in Policy::ALL {
            let l = RwLock::with_policy(0u32, p);
            let r1 = l.read();
            let r2 = l.try_read().unwrap();
            assert_eq!(l.try_write().unwrap_err(), RwLockError::WouldBlock);
            assert_eq!(
                l.write_timeout(Duration::from_millis(5)).unwrap_err(),
                RwLockError::TimedOut
            );
            let u = l.try_upgradable_read().unwrap();
            assert!(l.try_upgradable_read().is_err(), "{p:?}: two upgradable");
            drop((r1, r2));
            let mut w = u.upgrade();
            *w += 1;
            assert!(l.try_read().is_err());
            assert!(l.read_timeout(Duration::from_millis(5)).is_err());
            let r = w.downgrade();
            assert_eq!(*r, 1);
            assert!(l.try_read().is_ok());
            drop(r);
            assert_eq!(
                l.raw().state(),
                RwLockState {
                    readers: 0,
                    writer: false,
                    upgradable: false,
                    waiting_readers: 0,
                    waiting_writers: 0
                }
            );
        }
    }

    #[test]
    fn counts_exactly_under_every_policy() {
        for p in Policy::ALL {
            let l = Arc::new(RwLock::with_policy((0u64, 0u64), p));
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let l = l.clone();
                    std::thread::spawn(move || {
                        for k in 0..3_000u64 {
                            if (k + i) % 4 == 0 {
                                let mut w = l.write();
                                w.0 += 1;
                                w.1 += 1;
                            } else {
                                let r = l.read();
                                assert_eq!(r.0, r.1, "torn read under {p:?}");
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(l.read().0, 3_000, "{p:?}");
            assert_eq!(l.raw().state().waiting_readers, 0);
            assert_eq!(l.raw().state().waiting_writers, 0);
        }
    }

    #[test]
    fn timed_out_waiters_leave_no_trace() {
        for p in Policy::ALL {
            let l = Arc::new(RwLock::with_policy((), p));
            let w = l.write();
            let l2 = l.clone();
            let t = std::thread::spawn(move || {
                (
                    l2.read_timeout(Duration::from_millis(20)).is_err(),
                    l2.write_timeout(Duration::from_millis(20)).is_err(),
                )
            });
            assert_eq!(t.join().unwrap(), (true, true), "{p:?}");
            drop(w);
            assert_eq!(l.raw().state().waiting_readers, 0);
            assert_eq!(l.raw().state().waiting_writers, 0);
            drop(l.write());
            drop(l.read());
        }
    }

    #[test]
    fn fair_writer_timeout_releases_queued_readers() {
        // Reader holds; a writer waits (so a new reader queues); the writer gives up: the
        // queued reader must get in at once, not wait for some later release.
        let l = Arc::new(RwLock::with_policy((), Policy::Fair));
        let r = l.read();
        let l2 = l.clone();
        let w = std::thread::spawn(move || l2.write_timeout(Duration::from_millis(500)).is_err());
        wait_for("writer to wait", || l.raw().state().waiting_writers == 1);
        let l3 = l.clone();
        let late = std::thread::spawn(move || l3.read_timeout(Duration::from_secs(10)).is_ok());
        wait_for("reader to queue", || l.raw().state().waiting_readers == 1);
        assert!(w.join().unwrap(), "writer should time out while the reader holds");
        assert!(late.join().unwrap());
        drop(r);
    }

    /// Readers overlap continuously (each holds for a while; a new one enters before the
    /// old leaves). Returns how many reader sections completed before the writer got in, or
    /// None if it did not get in within `limit`.
    fn writer_under_reader_stream(p: Policy, limit: Duration) -> Option<u64> {
        let l = Arc::new(RwLock::with_policy((), p));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(StdU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (l, stop, done) = (l.clone(), stop.clone(), done.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(g) = l.read_timeout(Duration::from_millis(100)) {
                            std::thread::sleep(Duration::from_millis(2));
                            done.fetch_add(1, Ordering::Relaxed);
                            drop(g);
                        }
                    }
                })
            })
            .collect();
        wait_for("readers to start", || done.load(Ordering::Relaxed) >= 2);
        let writer = {
            let (l, done) = (l.clone(), done.clone());
            std::thread::spawn(move || {
                // `done` counts inside the sections: while we hold the lock none is running.
                l.write_timeout(limit).ok().map(|_g| done.load(Ordering::Relaxed))
            })
        };
        wait_for("the writer to queue or enter", || {
            l.raw().state().waiting_writers == 1 || writer.is_finished()
        });
        let before = done.load(Ordering::Relaxed);
        let got_in_at = writer.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        for h in readers {
            h.join().unwrap();
        }
        got_in_at.map(|at| at.saturating_sub(before))
    }

    #[test]
    fn writer_gets_in_under_fair_and_writer_preferred() {
        for p in [Policy::Fair, Policy::WriterPreferred] {
            let sections = writer_under_reader_stream(p, Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{p:?}: writer starved"));
            // Only the sections already running when the writer queued may finish first.
            assert!(sections <= 2, "{p:?}: {sections} reader sections overtook the writer");
        }
    }

    #[test]
    fn reader_preferred_lets_overlapping_readers_starve_a_writer() {
        // The mechanism of starvation, step by step: reader A holds; a writer queues; reader
        // B arrives. Under ReaderPreferred (and Unordered) B gets in beside A, so when A
        // leaves the writer still waits — a stream of such overlapping readers keeps it out
        // forever. Under Fair and WriterPreferred B must wait behind the writer.
        for p in Policy::ALL {
            let l = Arc::new(RwLock::with_policy(0u32, p));
            let a = l.read();
            let l2 = l.clone();
            let w = std::thread::spawn(move || {
                *l2.write_timeout(Duration::from_secs(10)).expect("writer never got in") += 1;
            });
            wait_for("the writer to queue", || l.raw().state().waiting_writers == 1);
            match p {
                Policy::ReaderPreferred | Policy::Unordered => {
                    let b = l.try_read().expect("a new reader joins despite the waiting writer");
                    drop(a);
                    std::thread::sleep(Duration::from_millis(20));
                    let s = l.raw().state();
                    assert!(!s.writer && s.waiting_writers == 1, "{p:?}: writer got in: {s:?}");
                    assert_eq!(*b, 0);
                    drop(b);
                }
                Policy::Fair | Policy::WriterPreferred => {
                    assert!(l.try_read().is_err(), "{p:?}: a reader overtook a waiting writer");
                    drop(a);
                }
            }
            w.join().unwrap();
            assert_eq!(*l.read(), 1);
        }
    }

    #[test]
    fn fair_readers_waiting_before_a_writer_go_first() {
        // W1 holds; R waits; then W2 waits. At W1's release R must enter before W2.
        let l = Arc::new(RwLock::with_policy(Vec::new(), Policy::Fair));
        let w1 = l.write();
        let l2 = l.clone();
        let r = std::thread::spawn(move || {
            let g = l2.read_timeout(Duration::from_secs(10)).unwrap();
            let seen = g.clone();
            std::thread::sleep(Duration::from_millis(20));
            drop(g);
            seen
        });
        wait_for("reader to queue", || l.raw().state().waiting_readers == 1);
        let l3 = l.clone();
        let w2 =
            std::thread::spawn(move || l3.write_timeout(Duration::from_secs(10)).unwrap().push(2));
        wait_for("writer to queue", || l.raw().state().waiting_writers == 1);
        drop(w1);
        assert_eq!(r.join().unwrap(), Vec::<i32>::new(), "the reader saw W2's write");
        w2.join().unwrap();
        assert_eq!(*l.read(), vec![2]);
    }

    #[test]
    fn writer_preferred_holds_back_readers_for_waiting_writers() {
        let l = Arc::new(RwLock::with_policy(0, Policy::WriterPreferred));
        let w1 = l.write();
        let l2 = l.clone();
        let r = std::thread::spawn(move || *l2.read_timeout(Duration::from_secs(10)).unwrap());
        wait_for("reader to queue", || l.raw().state().waiting_readers == 1);
        let l3 = l.clone();
        let w2 =
            std::thread::spawn(move || *l3.write_timeout(Duration::from_secs(10)).unwrap() = 2);
        wait_for("writer to queue", || l.raw().state().waiting_writers == 1);
        drop(w1);
        w2.join().unwrap();
        assert_eq!(r.join().unwrap(), 2, "the writer went first");
    }

    #[test]
    fn upgrade_waits_for_readers_then_excludes() {
        let l = Arc::new(RwLock::new(0));
        let u = l.upgradable_read();
        let r = l.read();
        let l2 = l.clone();
        let t = std::thread::spawn(move || {
            let g = l2.read_timeout(Duration::from_secs(10)).unwrap();
            std::thread::sleep(Duration::from_millis(10));
            *g
        });
        let u = match u.upgrade_timeout(Duration::from_millis(10)) {
            Err(u) => u,
            Ok(_) => panic!("upgraded while another reader holds"),
        };
        drop(r);
        let mut w = u.upgrade_timeout(Duration::from_secs(10)).expect("upgrade");
        *w = 7;
        drop(w);
        let seen = t.join().unwrap();
        assert!(seen == 0 || seen == 7);
        assert_eq!(*l.read(), 7);
    }
}
