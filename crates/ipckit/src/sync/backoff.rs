//! Adaptive waiting: spin briefly, then sleep.
//!
//! Waking a sleeping process costs microseconds (tens on a virtual machine); handing a cache
//! line to another core costs about 100 ns. So a waiter first spins for a bounded time,
//! re-checking its condition with plain loads, and only then sleeps on a futex. Spinning is
//! pointless — and harmful — when the process may use only one CPU: the peer it waits for
//! cannot run while it spins. [`spinning_pays`] tells which case holds (it respects
//! `taskset`/`sched_setaffinity`).

use crate::atomic::spin_loop;
use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

/// Exponential backoff for spin loops, in the style of `crossbeam_utils::Backoff`.
///
/// ```
/// use ipckit::sync::Backoff;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let ready = AtomicBool::new(true);
/// let mut backoff = Backoff::new();
/// while !ready.load(Ordering::Acquire) {
///     backoff.snooze();
/// }
/// ```
#[derive(Debug, Default)]
pub struct Backoff {
    step: u32,
}

const SPIN_LIMIT: u32 = 6;
const YIELD_LIMIT: u32 = 10;

impl Backoff {
    /// A fresh backoff.
    pub const fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Starts over.
    pub fn reset(&mut self) {
        self.step = 0;
    }

    /// Spins `2^step` times (capped), for retrying a failed compare-and-swap.
    #[inline]
    pub fn spin(&mut self) {
        for _ in 0..1u32 << self.step.min(SPIN_LIMIT) {
            spin_loop();
        }
        if self.step <= SPIN_LIMIT {
            self.step += 1;
        }
    }

    /// Spins, and after a while yields the CPU, for waiting on another thread's progress.
    pub fn snooze(&mut self) {
        if self.step <= SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                spin_loop();
            }
        } else {
            #[cfg(not(loom))]
            std::thread::yield_now();
            #[cfg(loom)]
            loom::thread::yield_now();
        }
        if self.step <= YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// True once the backoff has grown so long that the caller should block instead.
    pub fn is_completed(&self) -> bool {
        self.step > YIELD_LIMIT
    }
}

/// Waits briefly for `ready()`: [`Backoff`] steps (a few spins, growing, then a few yields,
/// crossbeam's `snooze` schedule) until it holds or the backoff completes; returns the last
/// `ready()`. For waits that are usually over within a step, before anything adaptive or a
/// sleep.
pub(crate) fn snooze_until(mut ready: impl FnMut() -> bool) -> bool {
    let mut backoff = Backoff::new();
    while !backoff.is_completed() {
        if ready() {
            return true;
        }
        backoff.snooze();
    }
    ready()
}

/// Whether spinning before sleeping can pay off at all: false when the machine has only one
/// CPU online (the thread we wait for cannot run while we spin). Computed once.
pub fn spinning_pays() -> bool {
    #[cfg(loom)]
    {
        false
    }
    #[cfg(not(loom))]
    {
        static MULTI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *MULTI.get_or_init(|| crate::sys::cpus_online() > 1)
    }
}

/// Spins until `ready()` returns true or the spin budget has passed; returns the last
/// `ready()`.
///
/// The budget adapts per thread, like glibc's adaptive mutexes but driven by outcome: a spin
/// that succeeds doubles it (up to `max`), a spin that runs out halves it. When the two
/// processes share one CPU (pinned with `taskset`, or a busy machine), spinning never
/// succeeds — the peer cannot run while we spin — so the budget falls to zero within a few
/// waits, and then only a probe spins, every [`PROBE_EVERY`]th wait at first. A probe that
/// fails doubles both its length and the gap to the next one (up to `max` and
/// [`PROBE_GAP_MAX`] waits), so that two processes that fell into sleeping on every wait
/// (where a hand-over takes a wake-up's microseconds, longer than a short probe) find their
/// way back to spinning, while a thread whose peer truly shares its CPU loses little. The
/// clock is read only every few dozen polls.
///
/// This is the form for waiting on a signal (a value another thread will set): it polls
/// every few pauses. Lock waiters use [`spin_until_backoff`].
#[inline]
pub(crate) fn spin_until(max: Duration, ready: impl FnMut() -> bool) -> bool {
    spin_adaptive(max, ready, Poll::Often)
}

/// [`spin_until`] for lock waiters: polls with exponential backoff (up to 64 pauses apart),
/// so that a waiter does not keep pulling the lock's line from an owner that releases and
/// re-acquires it in a loop.
#[inline]
pub(crate) fn spin_until_backoff(max: Duration, ready: impl FnMut() -> bool) -> bool {
    spin_adaptive(max, ready, Poll::Backoff)
}

/// How a spinning waiter spaces its polls.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(loom, allow(dead_code))]
enum Poll {
    /// Every few pauses: for a signal (the line stays in our cache until the peer writes it).
    Often,
    /// Exponentially further apart: for a lock.
    Backoff,
}

#[inline]
fn spin_adaptive(max: Duration, mut ready: impl FnMut() -> bool, poll: Poll) -> bool {
    #[cfg(loom)]
    {
        let _ = (max, poll);
        ready()
    }
    #[cfg(not(loom))]
    {
        let plan = spin_plan(max);
        if !plan.spins() {
            return ready();
        }
        let limit = Duration::from_nanos(plan.ns as u64);
        let hit = match poll {
            Poll::Often => spin_for(limit, &mut ready),
            Poll::Backoff => spin_for_backoff(limit, &mut ready),
        };
        spin_outcome(max, plan, hit);
        hit
    }
}

/// What the calling thread's spin budget allows for its next wait (see [`spin_until`]).
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpinPlan {
    /// How long to spin, in ns; 0: not at all.
    ns: u32,
    /// Whether this spin is a probe (the budget is zero).
    probe: bool,
}

#[cfg(not(loom))]
impl SpinPlan {
    /// No spinning.
    pub(crate) const NONE: SpinPlan = SpinPlan { ns: 0, probe: false };

    /// Whether to spin at all.
    pub(crate) fn spins(self) -> bool {
        self.ns != 0
    }
}

/// The calling thread's plan for its next wait of at most `max` spinning: for callers that
/// must act between deciding to spin and spinning (announce themselves as spinners), then
/// spin with [`spin_as_planned`]. [`spin_until`] is both in one.
#[cfg(not(loom))]
pub(crate) fn spin_plan(max: Duration) -> SpinPlan {
    if !spinning_pays() {
        return SpinPlan::NONE;
    }
    let max_ns = max.as_nanos().min(u32::MAX as u128) as u32;
    BUDGET.with(|b| {
        let mut s = b.get();
        if s.ns > 0 {
            return SpinPlan { ns: s.ns.min(max_ns), probe: false };
        }
        s.skipped += 1;
        let probe = s.skipped >= s.gap;
        if probe {
            s.skipped = 0;
        }
        b.set(s);
        if probe { SpinPlan { ns: s.probe_ns.min(max_ns), probe } } else { SpinPlan::NONE }
    })
}

/// Spins (polling every few pauses, as [`spin_until`]) as `plan` allows, until `ready()`;
/// adapts the thread's budget to the outcome and returns the last `ready()`.
#[cfg(not(loom))]
pub(crate) fn spin_as_planned(
    max: Duration,
    plan: SpinPlan,
    mut ready: impl FnMut() -> bool,
) -> bool {
    if !plan.spins() {
        return ready();
    }
    let hit = spin_for(Duration::from_nanos(plan.ns as u64), &mut ready);
    spin_outcome(max, plan, hit);
    hit
}

/// Adapts the thread's budget: a hit doubles it and resets probing; a failed probe doubles
/// the probe's length and the gap to the next; another miss halves the budget.
#[cfg(not(loom))]
fn spin_outcome(max: Duration, plan: SpinPlan, hit: bool) {
    let max_ns = max.as_nanos().min(u32::MAX as u128) as u32;
    BUDGET.with(|b| {
        let mut s = b.get();
        if hit {
            s.ns = s.ns.min(max_ns).max(plan.ns).saturating_mul(2).clamp(PROBE_NS, max_ns);
            s.probe_ns = PROBE_NS;
            s.gap = PROBE_EVERY;
        } else if plan.probe {
            s.probe_ns = s.probe_ns.saturating_mul(2).min(max_ns);
            s.gap = (s.gap * 2).min(PROBE_GAP_MAX);
        } else {
            let ns = s.ns.min(max_ns);
            s.ns = if ns / 2 < PROBE_NS { 0 } else { ns / 2 };
        }
        b.set(s);
    });
}

/// Polls `ready()` every few pauses until it holds or `budget` passes.
///
/// No exponential backoff: the polls are loads of a line that stays in our cache until the
/// peer writes it, so polling often costs nothing, while backing off would notice the
/// peer's change late (a `pause` costs up to 140 cycles; after six doublings a waiter looks
/// only every 64 pauses, up to microseconds after a hand-over that itself takes one).
#[cfg(not(loom))]
fn spin_for(budget: Duration, ready: &mut impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            for _ in 0..4 {
                spin_loop();
            }
        }
        if start.elapsed() >= budget {
            return ready();
        }
    }
}

/// A thread's spinning state: see [`spin_until`].
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug)]
struct SpinBudget {
    /// The spin budget in ns; 0: only probes spin.
    ns: u32,
    /// Waits since the last probe (or since the budget fell to zero).
    skipped: u32,
    /// How long the next probe spins.
    probe_ns: u32,
    /// Waits between probes.
    gap: u32,
}

/// Polls `ready()` with exponential backoff (up to `2^SPIN_LIMIT` pauses apart) until it
/// holds or `budget` passes.
#[cfg(not(loom))]
fn spin_for_backoff(budget: Duration, ready: &mut impl FnMut() -> bool) -> bool {
    let mut step = 0u32;
    let mut start: Option<Instant> = None;
    loop {
        if ready() {
            return true;
        }
        for _ in 0..1u32 << step {
            spin_loop();
        }
        if step < SPIN_LIMIT {
            step += 1;
        } else {
            let s = *start.get_or_insert_with(Instant::now);
            if s.elapsed() >= budget {
                return ready();
            }
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// Starts generous.
    static BUDGET: std::cell::Cell<SpinBudget> = const {
        std::cell::Cell::new(SpinBudget { ns: u32::MAX, skipped: 0, probe_ns: PROBE_NS, gap: PROBE_EVERY })
    };
}

/// With a zero budget, every `PROBE_EVERY`th wait spins briefly to see if spinning pays again
/// (at first: the gap doubles with every probe that fails).
#[cfg_attr(loom, allow(dead_code))]
pub const PROBE_EVERY: u32 = 64;
/// The longest gap between two probes, in waits.
#[cfg(not(loom))]
const PROBE_GAP_MAX: u32 = 1024;
#[cfg(not(loom))]
const PROBE_NS: u32 = 1_000;

/// Sleeps on `word` while it holds `expected`, until `deadline` (`None`: no limit). Returns
/// `false` without sleeping when the deadline has passed. Wake-ups may be spurious: callers
/// re-check their condition in a loop.
pub(crate) fn futex_wait_until(
    word: &crate::atomic::AtomicU32,
    expected: u32,
    deadline: Option<std::time::Instant>,
) -> bool {
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return false,
        },
    };
    crate::sys::futex_wait(word, expected, timeout);
    true
}

/// First gap (in waits) between yield probes once yielding stopped paying.
#[cfg(not(loom))]
pub(crate) const YIELD_PROBE_FIRST: u32 = 64;
/// Longest gap between yield probes.
#[cfg(not(loom))]
pub(crate) const YIELD_PROBE_LAST: u32 = 1024;

/// Yield credit of a thread that has just seen a yield pay: this many yields in a row must
/// miss (each halves the credit) before the thread stops yielding.
#[cfg(not(loom))]
pub(crate) const YIELD_CREDIT: u32 = 16;

/// This thread's yielding state: see [`yield_plan`].
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct YieldState {
    /// Doubled by a yield that pays, halved by one that does not; 0: yield only to probe.
    pub credit: u32,
    /// Waits since the credit fell to 0 or since the last probe.
    pub skipped: u32,
    /// Waits between two probes while the credit is 0.
    pub gap: u32,
}

#[cfg(not(loom))]
thread_local! {
    pub(crate) static YIELD: std::cell::Cell<YieldState> =
        const { std::cell::Cell::new(YieldState { credit: YIELD_CREDIT, skipped: 0, gap: YIELD_PROBE_FIRST }) };
}

/// Whether the calling thread, about to wait with no spin budget, should first give up its
/// CPU once (`sched_yield`) and look again.
///
/// With no spin budget the process that can satisfy us is most likely waiting for *our* CPU
/// (two processes pinned to one CPU, or more runnable threads than CPUs). Sleeping then costs
/// a `futex_wait` here and a `futex_wake` there (the peer sees us registered); a yield runs the
/// peer at once and costs neither, the peer's change finding nobody to wake. It pays only when
/// the peer is runnable, so the decision adapts like the spin budget ([`yield_outcome`]): a
/// yield that finds the operations able to proceed doubles the thread's credit (up to
/// [`YIELD_CREDIT`]), one that does not halves it, and at zero only a probe yields, every
/// [`YIELD_PROBE_FIRST`] to [`YIELD_PROBE_LAST`] waits (the gap doubling with each failed probe). A miss
/// costs one `sched_yield` (0.16 µs on the 2-core test machine) before the usual sleep.
#[cfg(not(loom))]
pub(crate) fn yield_plan() -> bool {
    YIELD.with(|c| {
        let mut s = c.get();
        if s.credit > 0 {
            return true;
        }
        s.skipped += 1;
        let probe = s.skipped >= s.gap;
        if probe {
            s.skipped = 0;
        }
        c.set(s);
        probe
    })
}

/// Adapts the thread's yielding to the outcome of a yield planned by [`yield_plan`]: `hit`
/// if the operations could proceed afterwards.
#[cfg(not(loom))]
pub(crate) fn yield_outcome(hit: bool) {
    YIELD.with(|c| {
        let mut s = c.get();
        if hit {
            s.credit = s.credit.saturating_mul(2).clamp(1, YIELD_CREDIT);
            s.gap = YIELD_PROBE_FIRST;
        } else if s.credit == 0 {
            s.gap = (s.gap * 2).min(YIELD_PROBE_LAST);
        } else {
            s.credit /= 2;
        }
        s.skipped = 0;
        c.set(s);
    })
}

/// Under loom: never yields (loom explores the interleavings itself).
#[cfg(loom)]
pub(crate) fn yield_until(_ready: impl FnOnce() -> bool) -> bool {
    false
}

/// With no spin budget (see [`spin_until`]), gives up the CPU once, if yielding has paid
/// lately ([`yield_plan`]), and returns whether `ready()` holds afterwards (adapting the
/// thread's credit to the outcome). False without yielding when the plan says no.
///
/// Used by waiters whose peer most likely waits for their own CPU: the peer runs at once,
/// and its change finds nobody to wake, so neither side makes a futex call.
#[cfg(not(loom))]
pub(crate) fn yield_until(ready: impl FnOnce() -> bool) -> bool {
    if !yield_plan() {
        return false;
    }
    std::thread::yield_now();
    let hit = ready();
    yield_outcome(hit);
    hit
}

/// The whole brief wait of a signal waiter before it registers and sleeps: spin while that
/// pays ([`spin_until`]), else yield once if that pays ([`yield_until`]). Returns whether
/// `ready()` held.
pub(crate) fn spin_or_yield_until(max: Duration, mut ready: impl FnMut() -> bool) -> bool {
    spin_until(max, &mut ready) || yield_until(ready)
}

/// How long a lock waiter spins before it sleeps.
pub(crate) const LOCK_SPIN: Duration = Duration::from_micros(5);
/// How long a signal waiter (semaphore, event, condition) spins before it sleeps: about the
/// cost of a sleep and wake-up on a virtual machine, which bounds the loss at 2x.
pub(crate) const SIGNAL_SPIN: Duration = Duration::from_micros(30);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_completes() {
        let mut b = Backoff::new();
        let mut n = 0;
        while !b.is_completed() {
            b.snooze();
            n += 1;
        }
        assert_eq!(n, YIELD_LIMIT + 1);
        b.reset();
        assert!(!b.is_completed());
    }

    #[test]
    fn spin_budget_adapts() {
        // Misses drive the budget to zero; then only a probe every PROBE_EVERY waits spins.
        for _ in 0..20 {
            spin_until(Duration::from_micros(20), || false);
        }
        assert_eq!(BUDGET.with(|b| b.get().ns), 0);
        // Hits bring it back after a probe.
        for _ in 0..PROBE_EVERY + 5 {
            spin_until(Duration::from_micros(20), || true);
        }
        if spinning_pays() {
            assert!(BUDGET.with(|b| b.get().ns) > 0);
        }
    }

    #[test]
    fn failed_probes_back_off_and_a_hit_restores_spinning() {
        if !spinning_pays() {
            return; // one CPU: nothing spins
        }
        let state = || BUDGET.with(|b| b.get());
        BUDGET.with(|b| {
            b.set(SpinBudget { ns: 0, skipped: 0, probe_ns: PROBE_NS, gap: PROBE_EVERY })
        });
        let max = Duration::from_micros(8);
        // Each failed probe doubles its length (up to max) and the gap to the next one.
        let (mut probe_ns, mut gap) = (PROBE_NS, PROBE_EVERY);
        for _ in 0..4 {
            let waits = (1..=PROBE_GAP_MAX)
                .find(|_| {
                    spin_until(max, || false);
                    state().probe_ns != probe_ns || state().gap != gap
                })
                .unwrap();
            assert_eq!(waits, gap);
            probe_ns = (probe_ns * 2).min(8_000);
            gap = (gap * 2).min(PROBE_GAP_MAX);
            assert_eq!((state().ns, state().probe_ns, state().gap), (0, probe_ns, gap));
        }
        // A probe that finds the condition restores a budget and the first probing pace.
        for _ in 0..PROBE_GAP_MAX {
            spin_until(max, || true);
        }
        let s = state();
        assert!(s.ns > 0);
        assert_eq!((s.probe_ns, s.gap), (PROBE_NS, PROBE_EVERY));
    }

    #[test]
    fn spin_until_stops() {
        assert!(spin_until(Duration::from_micros(10), || true));
        let t = Instant::now();
        assert!(!spin_until(Duration::from_micros(100), || false));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn yielding_backs_off_when_it_does_not_pay_and_comes_back_when_it_does() {
        let state = || YIELD.with(|c| c.get());
        YIELD.with(|c| {
            c.set(YieldState { credit: YIELD_CREDIT, skipped: 0, gap: YIELD_PROBE_FIRST })
        });
        // Misses halve the credit: 16, 8, 4, 2, 1 yield; then no more.
        let mut yielded = 0;
        while yield_plan() {
            yielded += 1;
            yield_outcome(false);
        }
        assert_eq!(yielded, 5);
        assert_eq!(state().credit, 0);
        // At zero, every YIELD_PROBE_FIRST-th wait probes (the wait that found the credit at 0 was
        // the first); a failed probe doubles the gap.
        let waits_to_probe = || (1..=YIELD_PROBE_LAST + 1).find(|_| yield_plan()).unwrap();
        assert_eq!(waits_to_probe(), YIELD_PROBE_FIRST - 1);
        yield_outcome(false);
        assert_eq!(waits_to_probe(), 2 * YIELD_PROBE_FIRST);
        yield_outcome(false);
        for _ in 0..10 {
            waits_to_probe();
            yield_outcome(false);
        }
        assert_eq!(waits_to_probe(), YIELD_PROBE_LAST);
        // A probe that pays turns yielding back on, and hits build the credit up again.
        yield_outcome(true);
        assert_eq!(state(), YieldState { credit: 1, skipped: 0, gap: YIELD_PROBE_FIRST });
        assert!(yield_plan());
        for _ in 0..10 {
            yield_outcome(true);
        }
        assert_eq!(state().credit, YIELD_CREDIT);
    }
}
