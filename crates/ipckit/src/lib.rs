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
//! | [`sys`] | the only place that calls the OS: futex wait/wake, process identity and liveness, clocks, file descriptors (pipes, FIFOs, `poll`) |
//! | [`shm`] | the [`ShmSafe`](shm::ShmSafe) marker for types that may live in a shared mapping |
//! | [`ns`] | the namespace: a directory that is the table of IPC objects; keys, ids, headers, two-phase creation |
//! | [`transport`] | the [`Sender`](transport::Sender) / [`Receiver`](transport::Receiver) traits every message transport implements |
//! | [`pipe`] | anonymous [`Pipe`](pipe::Pipe)s and [`NamedPipe`](pipe::NamedPipe)s (FIFOs): inheritance, capacity, blocking and non-blocking opens |
//! | [`net`] | length-prefixed messages over byte streams ([`Framed`](net::Framed): pipes, Unix and TCP sockets) and datagrams ([`Datagrams`](net::Datagrams): UDP, Unix datagram) |
//! | [`sem`] | System V style semaphore sets: atomic multi-operations, wait-for-zero, undo at process death |
//! | [`sync`] | robust [`Mutex`](sync::Mutex), [`Semaphore`](sync::Semaphore), [`Condvar`](sync::Condvar), [`Event`](sync::Event), [`Barrier`](sync::Barrier), [`Backoff`](sync::Backoff); spinlocks, reader-writer locks with policies, monitors, software mutual exclusion |
//! | [`deadlock`] | the matrix detection algorithm, resource-allocation graphs, the banker's algorithm (pure, no OS calls) |
//! | [`coord`] | coordination structures: bounded buffers, resource allocators, an alarm clock, software transactional memory |
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
pub mod coord;
pub mod deadlock;
#[cfg(not(loom))]
pub mod mq;
pub mod net;
pub mod ns;
pub mod pipe;
#[cfg(not(loom))]
pub mod sem;
pub mod shm;
pub mod sync;
pub mod sys;
pub mod transport;
