//! [`PriorityAllocator`]: k identical resources (the course's three printers) handed out by
//! priority.
//!
//! A monitor (Hoare 1974, "a resource allocator" with priorities — his "scheduled waits")
//! with *direct hand-off*: a release does not put the printer back for whoever runs first; it
//! gives it to the best waiter — lowest priority number, and among equal numbers the one that
//! asked first — and wakes that waiter alone. So the order of grants is exactly priority then
//! arrival, with no barging: a newcomer gets a free printer at once only if nobody waits (and
//! when somebody waits, no printer is free).
//!
//! | state (under the mutex) | meaning |
//! |---|---|
//! | `free` | printers nobody holds; non-empty only while `waiting` is empty |
//! | `waiting` | ordered by (priority, ticket): each waiter's own wake-up [`Event`] |
//! | `granted` | ticket → printer handed off but not yet picked up by its waiter |
//!
//! Starvation: a low-priority job waits as long as higher-priority jobs keep coming; that is
//! what priority means. Within one priority the order is FIFO.

use super::{AcquireError, lock};
use crate::sync::{Event, EventMode, Mutex};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct State {
    free: Vec<usize>,
    waiting: BTreeMap<(u32, u64), Arc<Event>>,
    /// ticket → (resource, grant number)
    granted: HashMap<u64, (usize, u64)>,
    next_ticket: u64,
    next_grant: u64,
}

impl State {
    fn grant_number(&mut self) -> u64 {
        self.next_grant += 1;
        self.next_grant - 1
    }
}

/// `k` identical resources, numbered `0..k`, handed out lowest priority number first, FIFO
/// among equal priorities (see the [module docs](self)).
///
/// ```
/// use ipckit::coord::{AcquireError, PriorityAllocator};
///
/// let printers = PriorityAllocator::new(1);
/// let job = printers.acquire(5);
/// assert_eq!(job.resource(), 0);
/// assert_eq!(printers.try_acquire(0).unwrap_err(), AcquireError::WouldBlock);
/// drop(job); // releases the printer
/// assert!(printers.try_acquire(9).is_ok());
/// ```
pub struct PriorityAllocator {
    state: Mutex<State>,
    total: usize,
}

/// A held resource; dropping it releases the resource to the best waiter.
#[must_use = "dropping the guard releases the resource at once"]
pub struct PriorityGuard<'a> {
    alloc: &'a PriorityAllocator,
    resource: usize,
    grant: u64,
}

impl PriorityGuard<'_> {
    /// Which resource (`0..k`) this guard holds.
    pub fn resource(&self) -> usize {
        self.resource
    }

    /// This grant's place in the order of all grants (0, 1, 2, ...), fixed under the
    /// allocator's lock when the resource was handed over: the true grant order, even when
    /// several waiters wake at once.
    pub fn grant_number(&self) -> u64 {
        self.grant
    }
}

impl Drop for PriorityGuard<'_> {
    fn drop(&mut self) {
        self.alloc.release(self.resource);
    }
}

impl fmt::Debug for PriorityGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriorityGuard").field("resource", &self.resource).finish()
    }
}

impl PriorityAllocator {
    /// `k` free resources.
    pub fn new(k: usize) -> Self {
        PriorityAllocator {
            state: Mutex::new(State {
                // Popped from the end: resource 0 goes out first.
                free: (0..k).rev().collect(),
                waiting: BTreeMap::new(),
                granted: HashMap::new(),
                next_ticket: 0,
                next_grant: 0,
            }),
            total: k,
        }
    }

    /// How many resources there are.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many resources are free now (a snapshot).
    pub fn available(&self) -> usize {
        lock(&self.state).free.len()
    }

    /// How many callers are waiting now (a snapshot).
    pub fn waiting(&self) -> usize {
        lock(&self.state).waiting.len()
    }

    /// Acquires a resource, blocking until it is this caller's turn: lower `priority`
    /// numbers first, FIFO within a priority.
    pub fn acquire(&self, priority: u32) -> PriorityGuard<'_> {
        self.acquire_until(priority, None).expect("no deadline")
    }

    /// Acquires a resource if one is free now. Errors: [`AcquireError::WouldBlock`].
    pub fn try_acquire(&self, priority: u32) -> Result<PriorityGuard<'_>, AcquireError> {
        let _ = priority; // a free resource means nobody waits: priority cannot matter
        let mut s = lock(&self.state);
        let r = s.free.pop().ok_or(AcquireError::WouldBlock)?;
        Ok(PriorityGuard { alloc: self, resource: r, grant: s.grant_number() })
    }

    /// Like [`acquire`](Self::acquire), waiting at most `timeout`. Errors:
    /// [`AcquireError::TimedOut`] (the caller's place in the queue is given up).
    pub fn acquire_timeout(
        &self,
        priority: u32,
        timeout: Duration,
    ) -> Result<PriorityGuard<'_>, AcquireError> {
        self.acquire_until(priority, Some(Instant::now() + timeout))
    }

    fn acquire_until(
        &self,
        priority: u32,
        deadline: Option<Instant>,
    ) -> Result<PriorityGuard<'_>, AcquireError> {
        let mut s = lock(&self.state);
        if let Some(r) = s.free.pop() {
            return Ok(PriorityGuard { alloc: self, resource: r, grant: s.grant_number() });
        }
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        let wake = Arc::new(Event::new(EventMode::ManualReset));
        s.waiting.insert((priority, ticket), wake.clone());
        drop(s);
        let woken = match deadline {
            None => {
                wake.wait();
                true
            }
            Some(d) => wake.wait_timeout(d.saturating_duration_since(Instant::now())),
        };
        let mut s = lock(&self.state);
        // Granted between the timeout and relocking counts as granted: never lose a resource.
        if let Some((r, grant)) = s.granted.remove(&ticket) {
            return Ok(PriorityGuard { alloc: self, resource: r, grant });
        }
        debug_assert!(!woken, "woken without a grant");
        s.waiting.remove(&(priority, ticket));
        Err(AcquireError::TimedOut)
    }

    fn release(&self, resource: usize) {
        let mut s = lock(&self.state);
        match s.waiting.pop_first() {
            Some(((_, ticket), wake)) => {
                let grant = s.grant_number();
                s.granted.insert(ticket, (resource, grant));
                drop(s);
                wake.set();
            }
            None => s.free.push(resource),
        }
    }
}

impl fmt::Debug for PriorityAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("PriorityAllocator")
            .field("total", &self.total)
            .field("free", &s.free.len())
            .field("waiting", &s.waiting.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::mpsc;

    /// Starts `jobs` waiters (priority, label) one by one (each is queued before the next
    /// starts), then releases the held resources and returns the labels in grant order.
    fn grant_order(k: usize, jobs: &[(u32, usize)]) -> Vec<usize> {
        let alloc = Arc::new(PriorityAllocator::new(k));
        // Held "by the test": the guards are forgotten and the resources released by hand.
        let held: Vec<usize> = (0..k)
            .map(|_| std::mem::ManuallyDrop::new(alloc.try_acquire(0).unwrap()).resource)
            .collect();
        let (tx, rx) = mpsc::channel();
        let mut hs = Vec::new();
        for (i, &(prio, label)) in jobs.iter().enumerate() {
            let (a, tx) = (alloc.clone(), tx.clone());
            hs.push(std::thread::spawn(move || {
                let g = a.acquire_timeout(prio, Duration::from_secs(20)).unwrap();
                tx.send(label).unwrap();
                drop(g);
            }));
            let t = Instant::now();
            while alloc.waiting() < i + 1 {
                assert!(t.elapsed() < Duration::from_secs(10), "waiter never queued");
                std::thread::yield_now();
            }
        }
        for r in held {
            alloc.release(r);
        }
        let order: Vec<usize> =
            (0..jobs.len()).map(|_| rx.recv_timeout(Duration::from_secs(20)).unwrap()).collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(alloc.available(), k);
        order
    }

    #[test]
    fn priority_first_then_fifo() {
        let jobs = [(3, 0), (1, 1), (2, 2), (1, 3), (3, 4), (0, 5)];
        assert_eq!(grant_order(1, &jobs), vec![5, 1, 3, 2, 0, 4]);
    }

    #[test]
    fn timeout_gives_up_the_place() {
        let a = PriorityAllocator::new(1);
        let g = a.acquire(0);
        assert_eq!(
            a.acquire_timeout(0, Duration::from_millis(10)).unwrap_err(),
            AcquireError::TimedOut
        );
        assert_eq!(a.waiting(), 0);
        drop(g);
        assert_eq!(a.available(), 1);
    }

    #[test]
    fn three_printers_never_overbooked() {
        let a = Arc::new(PriorityAllocator::new(3));
        let busy = Arc::new(std::sync::Mutex::new([false; 3]));
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let (a, busy) = (a.clone(), busy.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let g = a.acquire_timeout(i % 3, Duration::from_secs(20)).unwrap();
                        let r = g.resource();
                        assert!(!std::mem::replace(&mut busy.lock().unwrap()[r], true));
                        std::thread::yield_now();
                        busy.lock().unwrap()[r] = false;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(a.available(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// The grant order equals the model's: sort by (priority, arrival).
        #[test]
        fn grants_follow_the_sequential_model(prios in proptest::collection::vec(0u32..3, 1..6)) {
            let jobs: Vec<(u32, usize)> = prios.iter().copied().zip(0..).collect();
            let mut model = jobs.clone();
            model.sort_by_key(|&(p, i)| (p, i));
            let expect: Vec<usize> = model.into_iter().map(|(_, i)| i).collect();
            prop_assert_eq!(grant_order(1, &jobs), expect);
        }
    }
}
