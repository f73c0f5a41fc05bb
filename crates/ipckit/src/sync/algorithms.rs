//! Mutual exclusion in pure software: no atomic read-modify-write, only loads and stores.
//!
//! Before test-and-set hardware, mutual exclusion was an algorithmic puzzle: processes that
//! can only read and write shared variables must never be in their critical sections at
//! once, must not block each other when nobody is inside (progress), and must not wait
//! forever (bounded waiting). Three classic answers:
//!
//! | type | processes | idea | bounded waiting |
//! |---|---|---|---|
//! | [`Peterson`] (1981) | 2 | "I want in" flag plus a `turn` that the *last* to arrive gives away | 1 turn |
//! | [`EisenbergMcGuire`] (1972) | n | flags IDLE / WAITING / ACTIVE; `turn` walks around the ring, and a leaving process hands it to the next waiter | n − 1 turns |
//! | [`Bakery`] (Lamport 1974) | n | take a number one higher than any you see; lowest (number, id) goes first | first come, first served |
//!
//! They are taught, not used: they spin, they need one slot per process, and they are slower
//! than one compare-and-swap. They are here to be read, run and checked.
//!
//! ## Memory ordering
//!
//! Each algorithm relies on a *store then load* order: "I raise my flag, then I look at
//! yours". Modern CPUs reorder a store after a later load (x86's store buffer does exactly
//! that), so with plain or acquire/release accesses two processes can each miss the other's
//! flag and both enter. The algorithms therefore use sequentially consistent (`SeqCst`)
//! loads and stores throughout, which restores one global order.
//!
//! The loom models (`tests/loom.rs`) check these algorithms too, but loom treats `SeqCst`
//! loads and stores as acquire/release (tokio-rs/loom#180); it does model `SeqCst` *fences*.
//! So wherever an algorithm needs the store→load order, the code also calls
//! `dekker_point` (in the crate's private atomics module) — a `fence(SeqCst)` under loom, nothing otherwise (the
//! `SeqCst` accesses already give it) — and the models check the algorithm as intended.
//! Peterson's `turn` is written with an atomic exchange, which orders the two writers'
//! flags even under acquire/release alone.
//!
//! All three are plain atomics and may live in a shared mapping ([`ShmSafe`]); each
//! process then uses its own slot index. A process that dies inside, or with its flag
//! raised, blocks the others for good.

use crate::atomic::{AtomicU32, Ordering, dekker_point, spin_loop};
use crate::shm::ShmSafe;
use std::fmt;

const SC: Ordering = Ordering::SeqCst;

fn check_slot(me: usize, n: usize) {
    assert!(me < n, "slot {me} out of range: this lock has {n} slots");
}

/// Waits (spinning, then yielding) until `f` is true.
#[inline]
fn spin_while(mut f: impl FnMut() -> bool) {
    let mut backoff = super::Backoff::new();
    while f() {
        if cfg!(loom) {
            spin_loop();
        } else {
            backoff.snooze();
        }
    }
}

/// Peterson's algorithm for two processes, slots 0 and 1.
///
/// ```text
/// lock(me):   flag[me] = 1; turn = other; while flag[other] == 1 && turn == other {}
/// unlock(me): flag[me] = 0
/// ```
///
/// Whoever writes `turn` last waits: if both want in, the one that arrived first goes.
///
/// ```
/// use ipckit::sync::Peterson;
/// use std::sync::Arc;
///
/// let p = Arc::new(Peterson::new());
/// let p2 = p.clone();
/// let t = std::thread::spawn(move || p2.critical_section(1, || 1));
/// assert_eq!(p.critical_section(0, || 2) + t.join().unwrap(), 3);
/// ```
#[repr(C)]
pub struct Peterson {
    flag: [AtomicU32; 2],
    turn: AtomicU32,
}

// SAFETY: repr(C), atomics only; any value is read as "flag raised" or a slot number; zero is
// the initial state.
unsafe impl ShmSafe for Peterson {}

impl fmt::Debug for Peterson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peterson").finish_non_exhaustive()
    }
}

impl Default for Peterson {
    fn default() -> Self {
        Self::new()
    }
}

impl Peterson {
    /// Both flags down.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Peterson { flag: [AtomicU32::new(0), AtomicU32::new(0)], turn: AtomicU32::new(0) }
    }

    /// Both flags down.
    #[cfg(loom)]
    pub fn new() -> Self {
        Peterson { flag: [AtomicU32::new(0), AtomicU32::new(0)], turn: AtomicU32::new(0) }
    }

    /// Enters the critical section as process `me` (0 or 1), spinning until allowed.
    ///
    /// # Panics
    ///
    /// If `me` is not 0 or 1.
    pub fn lock(&self, me: usize) {
        check_slot(me, 2);
        let other = 1 - me;
        self.flag[me].store(1, SC);
        // An exchange, not a store: whoever exchanges second reads the first's `turn` and
        // synchronizes with it, so it sees the first's flag (see the module docs).
        self.turn.swap(other as u32, SC);
        dekker_point();
        spin_while(|| self.flag[other].load(SC) == 1 && self.turn.load(SC) == other as u32);
    }

    /// Leaves the critical section as process `me`. Call only after [`lock`](Self::lock).
    pub fn unlock(&self, me: usize) {
        check_slot(me, 2);
        self.flag[me].store(0, SC);
    }

    /// Runs `f` inside the critical section as process `me`; leaves it when `f` returns or
    /// panics.
    pub fn critical_section<R>(&self, me: usize, f: impl FnOnce() -> R) -> R {
        self.lock(me);
        let _leave = Leave(|| self.unlock(me));
        f()
    }
}

struct Leave<F: FnMut()>(F);
impl<F: FnMut()> Drop for Leave<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

const IDLE: u32 = 0;
const WAITING: u32 = 1;
const ACTIVE: u32 = 2;

/// Eisenberg and McGuire's algorithm for `N` processes, slots `0..N`: the first n-process
/// solution with bounded waiting of n − 1 turns.
///
/// ```text
/// lock(i):
///   repeat
///     flag[i] = WAITING
///     j = turn; while j != i: if flag[j] != IDLE { j = turn } else { j = (j+1) % n }
///     flag[i] = ACTIVE
///     j = 0; while j < n && (j == i || flag[j] != ACTIVE): j += 1
///   until j >= n && (turn == i || flag[turn] == IDLE)
///   turn = i
/// unlock(i):
///   j = (turn+1) % n; while flag[j] == IDLE: j = (j+1) % n
///   turn = j; flag[i] = IDLE
/// ```
///
/// A leaving process hands `turn` to the next process (in ring order) that wants in, so once
/// a process has raised its flag, each other process enters at most once before it.
///
/// ```
/// use ipckit::sync::EisenbergMcGuire;
///
/// let em = EisenbergMcGuire::<3>::new();
/// em.critical_section(2, || ());
/// ```
#[repr(C)]
pub struct EisenbergMcGuire<const N: usize> {
    flag: [AtomicU32; N],
    turn: AtomicU32,
}

// SAFETY: repr(C), atomics only; unknown flag values read as "not idle", a `turn` out of
// range is reduced modulo N; zero is the initial state.
unsafe impl<const N: usize> ShmSafe for EisenbergMcGuire<N> {}

impl<const N: usize> fmt::Debug for EisenbergMcGuire<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EisenbergMcGuire").field("n", &N).finish_non_exhaustive()
    }
}

impl<const N: usize> Default for EisenbergMcGuire<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> EisenbergMcGuire<N> {
    /// All processes idle, `turn` = 0.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        EisenbergMcGuire { flag: [const { AtomicU32::new(IDLE) }; N], turn: AtomicU32::new(0) }
    }

    /// All processes idle, `turn` = 0.
    #[cfg(loom)]
    pub fn new() -> Self {
        EisenbergMcGuire {
            flag: std::array::from_fn(|_| AtomicU32::new(IDLE)),
            turn: AtomicU32::new(0),
        }
    }

    fn turn(&self) -> usize {
        self.turn.load(SC) as usize % N
    }

    /// Enters the critical section as process `i`, spinning until allowed.
    ///
    /// # Panics
    ///
    /// If `i >= N`.
    pub fn lock(&self, i: usize) {
        self.lock_announced(i, || {});
    }

    /// `lock`, calling `announced` once the flag is first raised (the moment from which
    /// bounded waiting is counted).
    fn lock_announced(&self, i: usize, announced: impl FnOnce()) {
        check_slot(i, N);
        let mut announced = Some(announced);
        let mut backoff = super::Backoff::new();
        let mut pause = move || {
            if cfg!(loom) {
                spin_loop();
            } else {
                // Spin, then yield: a preempted process ahead of us must get to run.
                backoff.snooze();
            }
        };
        loop {
            self.flag[i].store(WAITING, SC);
            dekker_point();
            if let Some(f) = announced.take() {
                f();
            }
            // Walk from `turn` towards ourselves; restart from `turn` at every busy process.
            let mut j = self.turn();
            while j != i {
                if self.flag[j].load(SC) != IDLE {
                    pause();
                    j = self.turn();
                } else {
                    j = (j + 1) % N;
                }
            }
            self.flag[i].store(ACTIVE, SC);
            dekker_point();
            let alone = (0..N).all(|j| j == i || self.flag[j].load(SC) != ACTIVE);
            if alone {
                let t = self.turn();
                if t == i || self.flag[t].load(SC) == IDLE {
                    break;
                }
            }
            pause();
        }
        self.turn.store(i as u32, SC);
    }

    /// Leaves the critical section as process `i`, handing `turn` to the next process that
    /// wants in. Call only after [`lock`](Self::lock).
    pub fn unlock(&self, i: usize) {
        check_slot(i, N);
        let mut j = (self.turn() + 1) % N;
        while self.flag[j].load(SC) == IDLE {
            j = (j + 1) % N;
        }
        self.turn.store(j as u32, SC);
        self.flag[i].store(IDLE, SC);
    }

    /// Runs `f` inside the critical section as process `i`.
    pub fn critical_section<R>(&self, i: usize, f: impl FnOnce() -> R) -> R {
        self.lock(i);
        let _leave = Leave(|| self.unlock(i));
        f()
    }
}

/// Lamport's bakery algorithm for `N` processes, slots `0..N`.
///
/// ```text
/// lock(i):
///   choosing[i] = 1; number[i] = 1 + max(number); choosing[i] = 0
///   for j in 0..n:
///     while choosing[j] {}
///     while number[j] != 0 && (number[j], j) < (number[i], i) {}
/// unlock(i): number[i] = 0
/// ```
///
/// Like a bakery's ticket machine, except that two customers may draw the same number; the
/// lower slot then goes first. Numbers grow while someone is always waiting; they return to
/// zero whenever everyone is out (a `u32` would overflow only after 2³² entries without a
/// single idle moment).
///
/// ```
/// use ipckit::sync::Bakery;
///
/// let b = Bakery::<4>::new();
/// assert_eq!(b.critical_section(3, || 7), 7);
/// ```
#[repr(C)]
pub struct Bakery<const N: usize> {
    choosing: [AtomicU32; N],
    number: [AtomicU32; N],
}

// SAFETY: repr(C), atomics only; any value is a number or a flag; zero is the initial state.
unsafe impl<const N: usize> ShmSafe for Bakery<N> {}

impl<const N: usize> fmt::Debug for Bakery<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bakery").field("n", &N).finish_non_exhaustive()
    }
}

impl<const N: usize> Default for Bakery<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Bakery<N> {
    /// Nobody choosing, no numbers drawn.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Bakery {
            choosing: [const { AtomicU32::new(0) }; N],
            number: [const { AtomicU32::new(0) }; N],
        }
    }

    /// Nobody choosing, no numbers drawn.
    #[cfg(loom)]
    pub fn new() -> Self {
        Bakery {
            choosing: std::array::from_fn(|_| AtomicU32::new(0)),
            number: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Enters the critical section as process `i`, spinning until its number is the lowest.
    ///
    /// # Panics
    ///
    /// If `i >= N`.
    pub fn lock(&self, i: usize) {
        check_slot(i, N);
        self.choosing[i].store(1, SC);
        dekker_point();
        let max = self.number.iter().map(|n| n.load(SC)).max().unwrap_or(0);
        let mine = max.wrapping_add(1);
        self.number[i].store(mine, SC);
        self.choosing[i].store(0, SC);
        dekker_point();
        for j in (0..N).filter(|&j| j != i) {
            spin_while(|| self.choosing[j].load(SC) != 0);
            spin_while(|| {
                let theirs = self.number[j].load(SC);
                theirs != 0 && (theirs, j) < (mine, i)
            });
        }
    }

    /// Leaves the critical section as process `i`.
    pub fn unlock(&self, i: usize) {
        check_slot(i, N);
        self.number[i].store(0, SC);
    }

    /// Runs `f` inside the critical section as process `i`.
    pub fn critical_section<R>(&self, i: usize, f: impl FnOnce() -> R) -> R {
        self.lock(i);
        let _leave = Leave(|| self.unlock(i));
        f()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    /// Runs `threads` threads, each entering `rounds` times through `enter(slot, body)`, and
    /// checks that a non-atomic increment inside was never lost.
    fn excludes(
        threads: usize,
        rounds: u64,
        enter: impl Fn(usize, &dyn Fn()) + Send + Sync + 'static,
    ) {
        let enter = Arc::new(enter);
        let counter = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..threads)
            .map(|me| {
                let (enter, counter) = (enter.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        enter(me, &|| {
                            let v = counter.load(Ordering::Relaxed);
                            std::hint::spin_loop();
                            counter.store(v + 1, Ordering::Relaxed);
                        });
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), threads as u64 * rounds);
    }

    #[test]
    fn peterson_excludes() {
        let p = Arc::new(Peterson::new());
        excludes(2, 10_000, move |me, f| p.critical_section(me, f));
    }

    #[test]
    fn eisenberg_mcguire_excludes() {
        let em = Arc::new(EisenbergMcGuire::<3>::new());
        excludes(3, 3_000, move |me, f| em.critical_section(me, f));
    }

    #[test]
    fn bakery_excludes() {
        let b = Arc::new(Bakery::<3>::new());
        excludes(3, 3_000, move |me, f| b.critical_section(me, f));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn slots_are_checked() {
        Bakery::<2>::new().lock(2);
    }

    #[test]
    fn eisenberg_mcguire_bounded_waiting() {
        // From the moment a process raises its flag until it enters, the others together
        // enter at most N − 1 times (the one inside at that moment included).
        const N: usize = 3;
        let em = Arc::new(EisenbergMcGuire::<N>::new());
        let entries = Arc::new(AtomicU64::new(0));
        let worst = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let (em, entries, worst) = (em.clone(), entries.clone(), worst.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        let mut at_announce = 0;
                        em.lock_announced(i, || at_announce = entries.load(SC));
                        let overtaken = entries.load(SC) - at_announce;
                        worst.fetch_max(overtaken, Ordering::Relaxed);
                        entries.fetch_add(1, SC);
                        em.unlock(i);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let w = worst.load(Ordering::Relaxed);
        assert!(w <= (N - 1) as u64, "a process was overtaken {w} times");
    }
}
