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
//! | [`Barrier`] | barrier | |

#![allow(unsafe_code)] // SAFETY obligations are documented at each block.

mod backoff;
mod barrier;
mod condvar;
mod event;
mod mutex;
mod raw;
mod semaphore;

#[cfg(not(loom))]
pub(crate) use backoff::SIGNAL_SPIN;
#[cfg(not(loom))] // for `mq`, which loom builds leave out
pub(crate) use backoff::spin_until;
pub use backoff::{Backoff, spinning_pays};
pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::{Event, EventMode};
pub use mutex::{LIVENESS_PERIOD, LockError, LockResult, Mutex, MutexGuard, RawMutex};
pub use raw::{Acquired, RawLock, RawLockError};
pub use semaphore::{Overflow, Semaphore};
