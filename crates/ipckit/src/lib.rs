//! # ipckit — interprocess communication and synchronization for Linux
//!
//! ipckit implements, as real software, the system an operating-systems course describes when
//! it explains how processes cooperate: critical sections, locks and semaphores, monitors,
//! shared memory, message queues and deadlock detection. Everything that synchronizes runs in
//! user space on a 32-bit futex word, so the same primitive works between the threads of one
//! process *and* between unrelated processes that map the same memory.
//!
//! The crate is layered; each layer uses only the ones listed before it:
//!
//! | module | what lives there |
//! |---|---|
//! | [`sys`] | the only place that calls the OS: futex wait/wake, process identity and liveness, clocks |
//! | [`shm`] | the [`ShmSafe`](shm::ShmSafe) marker for types that may live in a shared mapping |
//! | [`ns`] | the namespace: a directory that is the table of IPC objects; keys, ids, headers, two-phase creation |
//! | [`sync`] | robust [`Mutex`](sync::Mutex), [`Semaphore`](sync::Semaphore), [`Condvar`](sync::Condvar), [`Event`](sync::Event), [`Barrier`](sync::Barrier), [`Backoff`](sync::Backoff) |
//! | [`mq`] | System V style message queues: typed messages, selection by type, crash-safe |
//!
//! ## Example: a robust mutex
//!
//! ```
//! use ipckit::sync::Mutex;
//!
//! let m = Mutex::new(0u64);
//! *m.lock().unwrap() += 1;
//! assert_eq!(*m.lock().unwrap(), 1);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod atomic;
#[cfg(not(loom))]
pub mod mq;
pub mod ns;
pub mod shm;
pub mod sync;
pub mod sys;
