//! Synchronization primitives on a 32-bit futex word.
//!
//! Every type here works between the threads of one process and, placed in a `MAP_SHARED`
//! mapping (they implement [`ShmSafe`](crate::shm::ShmSafe)), between processes. Fast paths
//! are one atomic instruction; a waiter spins briefly (see [`Backoff`] and
//! [`spinning_pays`]) and then sleeps on the futex; wake-up system calls are made only when
//! someone sleeps.
//!
//! | type | the course's name | origin |
//! |---|---|---|
//! | [`Mutex`], [`RawMutex`] | mutex, robust (knows when its owner died) | POSIX robust mutexes |
//! | [`Semaphore`] | counting semaphore, P and V | Dijkstra 1965 |
//! | [`Condvar`] | condition variable, Mesa semantics | Lampson & Redell 1980 |
//! | [`Event`] | signaling: X before Y | |
//! | [`EventCount`] | waiting for a condition kept elsewhere (a queue in shared memory), free for the changer while nobody waits | Vyukov's eventcount |
//! | [`Barrier`] | barrier | |
//! | [`TasLock`], [`TtasLock`] ([`SpinLock`]), [`TicketLock`], [`McsLock`] | spinlocks: test-and-set, test-and-test-and-set, ticket (FIFO), queue lock | Anderson 1990; Reed & Kanodia 1979; Mellor-Crummey & Scott 1991 |
//! | [`RwLock`], [`RawRwLock`] with a [`Policy`] | readers-writers: reader- or writer-preferred, phase-fair, unordered | Courtois, Heymans & Parnas 1971; Brandenburg & Anderson 2010 |
//! | [`Monitor`], [`HoareMonitor`] | monitors with condition variables: Mesa and Hoare semantics | Hoare 1974; Lampson & Redell 1980 |
//! | [`Peterson`], [`EisenbergMcGuire`], [`Bakery`] | mutual exclusion in software only | Peterson 1981; Eisenberg & McGuire 1972; Lamport 1974 |
//!
//! The spinlocks, the reader-writer lock and the software algorithms are plain atomics and
//! may live in shared memory ([`McsLock`] and the monitors are in-process only).

#![allow(unsafe_code)] // SAFETY obligations are documented at each block.

pub mod algorithms;
mod backoff;
pub mod barrier;
pub mod condvar;
pub mod event;
pub mod eventcount;
pub mod monitor;
pub mod mutex;
mod raw;
pub mod rwlock;
pub mod semaphore;
pub mod spin;

pub use algorithms::{Bakery, EisenbergMcGuire, Peterson};
#[cfg(not(loom))]
pub(crate) use backoff::SIGNAL_SPIN;
pub use backoff::{Backoff, spinning_pays};
#[cfg(not(loom))] // for `mq`, which loom builds leave out
pub(crate) use backoff::{SpinPlan, spin_as_planned, spin_or_yield_until, spin_plan, yield_until};
pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::{Event, EventMode};
pub use eventcount::{EventCount, Ticket};
pub use monitor::{Cond, HoareGuard, HoareMonitor, Monitor, MonitorGuard};
pub use mutex::{LIVENESS_PERIOD, LockError, LockResult, Mutex, MutexGuard, RawMutex};
pub use raw::{Acquired, RawLock, RawLockError};
pub use rwlock::{
    Policy, RawRwLock, RwLock, RwLockError, RwLockReadGuard, RwLockState,
    RwLockUpgradableReadGuard, RwLockWriteGuard,
};
pub use semaphore::{Overflow, Semaphore};
pub use spin::{McsLock, SpinLock, TasLock, TicketLock, TtasLock};

/// Helpers shared by the unit tests of the primitives.
#[cfg(all(test, not(loom)))]
pub(crate) mod tests_common {
    use std::time::{Duration, Instant};

    /// Polls `f` every millisecond until it holds; fails the test after 10 s.
    pub(crate) fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
