//! [`AlarmClock`]: the alarm-clock monitor (Hoare 1974). `delay(n)` puts the caller to sleep
//! until `tick()` has been called `n` more times.
//!
//! Hoare's version keeps sleepers on a priority-ordered condition ("scheduled wait") and each
//! tick wakes the first sleeper, who wakes the next if it is due too. Here the monitor keeps a
//! priority queue of (deadline, arrival) → the sleeper's own wake-up [`Event`]; `tick`
//! advances the time and pops exactly the entries that are due, waking those sleepers and no
//! others. Sleepers with the same deadline wake in arrival order.
//!
//! [`TickingAlarmClock`] drives a clock from real time: a background thread ticks it every
//! `period`, and [`delay_for`](TickingAlarmClock::delay_for) converts a duration to ticks.

use super::lock;
use crate::sync::{Event, EventMode, Mutex};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct State {
    now: u64,
    /// (deadline, ticket) → the sleeper's wake-up.
    sleepers: BTreeMap<(u64, u64), Arc<Event>>,
    next_ticket: u64,
}

/// A clock advanced by [`tick`](Self::tick); callers sleep for a number of ticks (see the
/// [module docs](self)).
///
/// ```
/// use ipckit::coord::AlarmClock;
/// use std::sync::Arc;
///
/// let clock = Arc::new(AlarmClock::new());
/// let c = clock.clone();
/// let sleeper = std::thread::spawn(move || {
///     c.delay(3);
///     c.now()
/// });
/// while clock.sleepers() == 0 {
///     std::thread::yield_now();
/// }
/// for _ in 0..3 {
///     clock.tick();
/// }
/// assert_eq!(sleeper.join().unwrap(), 3);
/// ```
pub struct AlarmClock {
    state: Mutex<State>,
}

impl Default for AlarmClock {
    fn default() -> Self {
        Self::new()
    }
}

impl AlarmClock {
    /// A clock at time 0 with nobody asleep.
    pub fn new() -> Self {
        AlarmClock {
            state: Mutex::new(State { now: 0, sleepers: BTreeMap::new(), next_ticket: 0 }),
        }
    }

    /// The number of ticks so far.
    pub fn now(&self) -> u64 {
        lock(&self.state).now
    }

    /// How many callers sleep now (a snapshot).
    pub fn sleepers(&self) -> usize {
        lock(&self.state).sleepers.len()
    }

    /// Sleeps until `tick()` has been called `ticks` more times; returns at once for 0.
    pub fn delay(&self, ticks: u64) {
        let _ = self.delay_until(ticks, None);
    }

    /// Like [`delay`](Self::delay), but gives up after `timeout` of real time; `false` if it
    /// gave up (the alarm is then cancelled).
    pub fn delay_timeout(&self, ticks: u64, timeout: Duration) -> bool {
        self.delay_until(ticks, Some(Instant::now() + timeout))
    }

    fn delay_until(&self, ticks: u64, deadline: Option<Instant>) -> bool {
        if ticks == 0 {
            return true;
        }
        let mut s = lock(&self.state);
        let key = (s.now.saturating_add(ticks), s.next_ticket);
        s.next_ticket += 1;
        let wake = Arc::new(Event::new(EventMode::ManualReset));
        s.sleepers.insert(key, wake.clone());
        drop(s);
        match deadline {
            None => {
                wake.wait();
                true
            }
            Some(d) => {
                if wake.wait_timeout(d.saturating_duration_since(Instant::now())) {
                    return true;
                }
                // Timed out; but a tick may have popped us meanwhile: then we are due.
                lock(&self.state).sleepers.remove(&key).is_none()
            }
        }
    }

    /// Advances the clock by one tick and wakes exactly the sleepers now due; returns how
    /// many it woke. Never blocks beyond the monitor's lock.
    pub fn tick(&self) -> usize {
        let mut s = lock(&self.state);
        s.now += 1;
        let now = s.now;
        let mut due = Vec::new();
        while let Some(entry) = s.sleepers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        drop(s);
        for w in &due {
            w.set();
        }
        due.len()
    }
}

impl fmt::Debug for AlarmClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("AlarmClock")
            .field("now", &s.now)
            .field("sleepers", &s.sleepers.len())
            .finish()
    }
}

/// An [`AlarmClock`] ticked by a background thread every `period` of real time.
///
/// Consecutive ticks are at least `period` apart: a tick that comes late (the thread was not
/// scheduled) delays the following ones instead of bunching them up, so
/// [`delay_for`](Self::delay_for) never returns early; the price is that the clock can drift
/// behind real time under load. The thread stops when the `TickingAlarmClock` is dropped.
///
/// ```
/// use ipckit::coord::TickingAlarmClock;
/// use std::time::{Duration, Instant};
///
/// let clock = TickingAlarmClock::new(Duration::from_millis(1));
/// let t = Instant::now();
/// clock.delay_for(Duration::from_millis(5));
/// assert!(t.elapsed() >= Duration::from_millis(5));
/// ```
pub struct TickingAlarmClock {
    clock: Arc<AlarmClock>,
    period: Duration,
    stop: Arc<Event>,
    ticker: Option<JoinHandle<()>>,
}

impl TickingAlarmClock {
    /// Starts a clock that ticks every `period`.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn new(period: Duration) -> Self {
        assert!(!period.is_zero(), "the tick period must be positive");
        let clock = Arc::new(AlarmClock::new());
        let stop = Arc::new(Event::new(EventMode::ManualReset));
        let (c, st) = (clock.clone(), stop.clone());
        let ticker = std::thread::Builder::new()
            .name("ipckit-alarm-ticker".into())
            .spawn(move || {
                let mut last = Instant::now();
                loop {
                    let next = last + period;
                    if st.wait_timeout(next.saturating_duration_since(Instant::now())) {
                        return;
                    }
                    // At least `period` after the previous tick, even if this one is late.
                    last = Instant::now();
                    c.tick();
                }
            })
            .expect("cannot start the alarm clock's ticker thread");
        TickingAlarmClock { clock, period, stop, ticker: Some(ticker) }
    }

    /// The clock being ticked (for `delay(ticks)`, `now()`).
    pub fn clock(&self) -> &AlarmClock {
        &self.clock
    }

    /// The tick period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Sleeps at least `d`, and at most about one period more: `ceil(d / period) + 1` ticks
    /// (the tick now in progress is partly over, so it is not counted).
    pub fn delay_for(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        let ticks = d.as_nanos().div_ceil(self.period.as_nanos()) + 1;
        self.clock.delay(ticks.min(u64::MAX as u128) as u64);
    }
}

impl Drop for TickingAlarmClock {
    fn drop(&mut self) {
        self.stop.set();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl fmt::Debug for TickingAlarmClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TickingAlarmClock")
            .field("period", &self.period)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn each_sleeper_wakes_at_its_tick_not_before() {
        let clock = Arc::new(AlarmClock::new());
        let delays = [5u64, 1, 3, 3, 8, 2];
        let (tx, rx) = mpsc::channel();
        let hs: Vec<_> = delays
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let (c, tx) = (clock.clone(), tx.clone());
                std::thread::spawn(move || {
                    assert!(c.delay_timeout(d, Duration::from_secs(20)), "sleeper {i} gave up");
                    tx.send((i, c.now())).unwrap();
                })
            })
            .collect();
        let t = Instant::now();
        while clock.sleepers() < delays.len() {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::yield_now();
        }
        for tick in 1..=8u64 {
            let due = delays.iter().filter(|&&d| d == tick).count();
            assert_eq!(clock.tick(), due, "tick {tick} woke the wrong number");
            // Those due report in; nobody else does (a wrong wake would show up here).
            for _ in 0..due {
                let (i, at) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(delays[i], tick, "sleeper {i} woke at tick {tick}");
                assert_eq!(at, tick, "sleeper {i} saw time {at}");
            }
            assert!(rx.try_recv().is_err());
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn timeout_cancels_the_alarm() {
        let clock = AlarmClock::new();
        assert!(!clock.delay_timeout(2, Duration::from_millis(10)));
        assert_eq!(clock.sleepers(), 0);
        assert!(clock.delay_timeout(0, Duration::ZERO));
    }

    #[test]
    fn ticking_clock_sleeps_at_least_the_duration() {
        let clock = TickingAlarmClock::new(Duration::from_millis(2));
        for ms in [1u64, 7] {
            let t = Instant::now();
            clock.delay_for(Duration::from_millis(ms));
            assert!(t.elapsed() >= Duration::from_millis(ms));
        }
        assert!(clock.clock().now() >= 4);
    }
}
