//! [`BoundedBuffer`] and [`SharedBoundedBuffer`]: the producer/consumer buffer as a monitor.
//!
//! Hoare's monitor solution (1974) with Mesa condition variables: one mutex guards the ring,
//! `not_full` is where producers wait and `not_empty` where consumers wait.
//!
//! ```text
//! put:  lock; while full  { wait(not_full)  }; store; unlock; notify_one(not_empty)
//! take: lock; while empty { wait(not_empty) }; remove; unlock; notify_one(not_full)
//! ```
//!
//! Each put makes one item and wakes at most one consumer; a woken consumer that finds the
//! item already gone (another consumer came first: Mesa semantics) waits again, so no item is
//! stranded and no consumer is woken for nothing twice. The whole item is copied *under the
//! lock*: fine for small items, a bottleneck for large ones — see
//! [`SlotBuffer`](super::SlotBuffer) for those.
//!
//! ## The shared form
//!
//! [`SharedBoundedBuffer`] puts the same monitor in a mapping: a robust
//! [`Mutex`] around `head_len` (head index in the high 32 bits, length in
//! the low 32) and the item array, plus two [`Condvar`]s. `head_len` is the only word a
//! `put` or `take` changes after copying the item, and it changes in one store, so a process
//! that dies holding the lock leaves a consistent ring: the next owner gets `OwnerDied`,
//! re-validates `head_len` and marks the lock consistent. `head_len` comes from shared memory
//! and is checked (`head < N`, `len <= N`) every time before it is used; a bad value makes the
//! operation fail with `Broken` rather than index outside the array.

#![allow(unsafe_code)] // SAFETY obligations are documented at each block.

use super::{PutError, TakeError, lock, recover};
use crate::shm::ShmSafe;
use crate::sync::{Condvar, LockError, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// A bounded FIFO buffer for many producers and many consumers, as a monitor (see the
/// [module docs](self)).
///
/// ```
/// use ipckit::coord::{BoundedBuffer, TakeError};
/// use std::sync::Arc;
///
/// let buf = Arc::new(BoundedBuffer::new(2));
/// let b = buf.clone();
/// let producer = std::thread::spawn(move || (0..10).for_each(|i| b.put(i)));
/// let got: Vec<i32> = (0..10).map(|_| buf.take()).collect();
/// producer.join().unwrap();
/// assert_eq!(got, (0..10).collect::<Vec<_>>());
/// assert_eq!(buf.try_take(), Err(TakeError::Empty));
/// ```
pub struct BoundedBuffer<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    not_full: Condvar,
    not_empty: Condvar,
}

impl<T> BoundedBuffer<T> {
    /// An empty buffer with room for `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "BoundedBuffer capacity must be at least 1");
        BoundedBuffer {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
        }
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many items are in the buffer (a snapshot).
    pub fn len(&self) -> usize {
        lock(&self.items).len()
    }

    /// True if the buffer holds no item (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `item`, blocking while the buffer is full.
    pub fn put(&self, item: T) {
        let q = lock(&self.items);
        let mut q =
            self.not_full.wait_while(q, |q| q.len() >= self.capacity).unwrap_or_else(recover);
        q.push_back(item);
        drop(q);
        self.not_empty.notify_one();
    }

    /// Stores `item` if there is room now; otherwise hands it back as [`PutError::Full`].
    /// Never blocks (beyond the monitor's lock).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        let mut q = lock(&self.items);
        if q.len() >= self.capacity {
            return Err(PutError::Full(item));
        }
        q.push_back(item);
        drop(q);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Stores `item`, waiting at most `timeout` for room; hands it back as
    /// [`PutError::TimedOut`] otherwise.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        let q = lock(&self.items);
        let (mut q, _) = self
            .not_full
            .wait_timeout_while(q, timeout, |q| q.len() >= self.capacity)
            .unwrap_or_else(recover);
        if q.len() >= self.capacity {
            return Err(PutError::TimedOut(item));
        }
        q.push_back(item);
        drop(q);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Removes the oldest item, blocking while the buffer is empty.
    pub fn take(&self) -> T {
        let q = lock(&self.items);
        let mut q = self.not_empty.wait_while(q, |q| q.is_empty()).unwrap_or_else(recover);
        let item = q.pop_front().expect("not empty");
        drop(q);
        self.not_full.notify_one();
        item
    }

    /// Removes the oldest item if there is one now: [`TakeError::Empty`] otherwise.
    pub fn try_take(&self) -> Result<T, TakeError> {
        let item = lock(&self.items).pop_front().ok_or(TakeError::Empty)?;
        self.not_full.notify_one();
        Ok(item)
    }

    /// Removes the oldest item, waiting at most `timeout`: [`TakeError::TimedOut`] otherwise.
    pub fn take_timeout(&self, timeout: Duration) -> Result<T, TakeError> {
        let q = lock(&self.items);
        let (mut q, _) =
            self.not_empty.wait_timeout_while(q, timeout, |q| q.is_empty()).unwrap_or_else(recover);
        let item = q.pop_front().ok_or(TakeError::TimedOut)?;
        drop(q);
        self.not_full.notify_one();
        Ok(item)
    }
}

impl<T> fmt::Debug for BoundedBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedBuffer")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// The ring inside [`SharedBoundedBuffer`]'s mutex.
#[repr(C)]
struct Ring<T, const N: usize> {
    /// `head << 32 | len`; written in one store (see the module docs).
    head_len: u64,
    items: [T; N],
}

// SAFETY: repr(C) of an integer and an array of ShmSafe items: plain data, valid for every
// bit pattern (head_len is validated before use), no Drop (`T: Copy`).
unsafe impl<T: Copy + ShmSafe, const N: usize> ShmSafe for Ring<T, N> {}

impl<T, const N: usize> Ring<T, N> {
    /// The validated (head, len), or `None` if another process left garbage.
    fn head_len(&self) -> Option<(usize, usize)> {
        let (head, len) = ((self.head_len >> 32) as usize, self.head_len as u32 as usize);
        (head < N && len <= N).then_some((head, len))
    }

    fn set(&mut self, head: usize, len: usize) {
        self.head_len = ((head as u64) << 32) | len as u64;
    }
}

/// [`BoundedBuffer`] as `#[repr(C)]` plain data for a shared mapping, for `Copy` items.
///
/// All-zero memory is an empty buffer. A robust mutex guards the ring, so a process that
/// dies inside `put` or `take` does not block the others (see the [module docs](self)).
/// Between processes use the `_timeout` forms: a dead peer never puts or takes again.
///
/// ```
/// use ipckit::coord::SharedBoundedBuffer;
/// use ipckit::shm::Mapping;
///
/// type Buf = SharedBoundedBuffer<u32, 4>;
/// let dir = tempfile::tempdir().unwrap();
/// let m = Mapping::create(&dir.path().join("b"), size_of::<Buf>(), 0o600).unwrap();
/// let buf = m.get::<Buf>(0).unwrap();
/// buf.put(7).unwrap();
/// assert_eq!(buf.take().unwrap(), 7);
/// ```
#[repr(C)]
pub struct SharedBoundedBuffer<T, const N: usize> {
    ring: Mutex<Ring<T, N>>,
    not_full: Condvar,
    not_empty: Condvar,
}

// SAFETY: repr(C) of a ShmSafe robust mutex around a ShmSafe ring and two ShmSafe condition
// variables; all-zero memory is an unlocked mutex around an empty ring.
#[cfg(not(loom))]
unsafe impl<T: Copy + ShmSafe + Send, const N: usize> ShmSafe for SharedBoundedBuffer<T, N> {}

type RingGuard<'a, T, const N: usize> = MutexGuard<'a, Ring<T, N>>;

impl<T: Copy + Send, const N: usize> SharedBoundedBuffer<T, N> {
    const NONEMPTY: () = assert!(N > 0 && N < u32::MAX as usize, "need 1 <= N < 2^32");

    /// Locks, repairing after a dead owner; `None` if the lock is unrecoverable.
    fn locked(&self) -> Option<RingGuard<'_, T, N>> {
        let () = Self::NONEMPTY;
        match self.ring.lock() {
            Ok(g) => Some(g),
            Err(LockError::OwnerDied(g)) => {
                // The ring is published by one store, so it is whole; validity is checked by
                // every caller before use.
                g.mark_consistent();
                Some(g)
            }
            Err(_) => None,
        }
    }

    fn wait<'a>(
        &self,
        cv: &Condvar,
        g: RingGuard<'a, T, N>,
        deadline: Option<Instant>,
    ) -> Option<RingGuard<'a, T, N>> {
        let r = match deadline {
            None => cv.wait(g),
            Some(d) => cv
                .wait_timeout(g, d.saturating_duration_since(Instant::now()))
                .map(|(g, _)| g)
                .map_err(|e| e.map(|(g, _)| g)),
        };
        match r {
            Ok(g) => Some(g),
            Err(LockError::OwnerDied(g)) => {
                g.mark_consistent();
                Some(g)
            }
            Err(_) => None,
        }
    }

    /// `deadline`: `None` blocks; `Some(None)` never waits (`try_`).
    fn put_inner(&self, item: T, deadline: Option<Option<Instant>>) -> Result<(), PutError<T>> {
        let Some(mut g) = self.locked() else { return Err(PutError::Broken(item)) };
        loop {
            let Some((head, len)) = g.head_len() else { return Err(PutError::Broken(item)) };
            if len < N {
                g.items[(head + len) % N] = item;
                g.set(head, len + 1);
                drop(g);
                self.not_empty.notify_one();
                return Ok(());
            }
            let until = match deadline {
                Some(None) => return Err(PutError::Full(item)),
                Some(Some(d)) if Instant::now() >= d => return Err(PutError::TimedOut(item)),
                Some(d) => d,
                None => None,
            };
            let Some(g2) = self.wait(&self.not_full, g, until) else {
                return Err(PutError::Broken(item));
            };
            g = g2;
        }
    }

    fn take_inner(&self, deadline: Option<Option<Instant>>) -> Result<T, TakeError> {
        let mut g = self.locked().ok_or(TakeError::Broken)?;
        loop {
            let (head, len) = g.head_len().ok_or(TakeError::Broken)?;
            if len > 0 {
                let item = g.items[head];
                g.set((head + 1) % N, len - 1);
                drop(g);
                self.not_full.notify_one();
                return Ok(item);
            }
            let until = match deadline {
                Some(None) => return Err(TakeError::Empty),
                Some(Some(d)) if Instant::now() >= d => return Err(TakeError::TimedOut),
                Some(d) => d,
                None => None,
            };
            g = self.wait(&self.not_empty, g, until).ok_or(TakeError::Broken)?;
        }
    }

    /// How many items are in the buffer (a snapshot); 0 if the ring is broken.
    pub fn len(&self) -> usize {
        self.locked().and_then(|g| g.head_len()).map_or(0, |(_, len)| len)
    }

    /// True if the buffer holds no item (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `item`, blocking while the buffer is full. Errors: [`PutError::Broken`].
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_inner(item, None)
    }

    /// Stores `item` if there is room now. Errors: [`PutError::Full`], [`PutError::Broken`].
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_inner(item, Some(None))
    }

    /// Stores `item`, waiting at most `timeout`. Errors: [`PutError::TimedOut`],
    /// [`PutError::Broken`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_inner(item, Some(Instant::now().checked_add(timeout)))
    }

    /// Removes the oldest item, blocking while the buffer is empty. Errors:
    /// [`TakeError::Broken`].
    pub fn take(&self) -> Result<T, TakeError> {
        self.take_inner(None)
    }

    /// Removes the oldest item if there is one now. Errors: [`TakeError::Empty`],
    /// [`TakeError::Broken`].
    pub fn try_take(&self) -> Result<T, TakeError> {
        self.take_inner(Some(None))
    }

    /// Removes the oldest item, waiting at most `timeout`. Errors: [`TakeError::TimedOut`],
    /// [`TakeError::Broken`].
    pub fn take_timeout(&self, timeout: Duration) -> Result<T, TakeError> {
        self.take_inner(Some(Instant::now().checked_add(timeout)))
    }
}

impl<T, const N: usize> fmt::Debug for SharedBoundedBuffer<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBoundedBuffer").field("capacity", &N).finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::Mapping;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[test]
    fn timeouts_and_try_forms() {
        let b = BoundedBuffer::new(1);
        assert_eq!(b.try_take(), Err(TakeError::Empty));
        assert_eq!(b.take_timeout(Duration::from_millis(10)), Err(TakeError::TimedOut));
        b.put(1);
        assert_eq!(b.try_put(2), Err(PutError::Full(2)));
        assert_eq!(b.put_timeout(3, Duration::from_millis(10)), Err(PutError::TimedOut(3)));
        assert_eq!(b.take(), 1);
    }

    #[test]
    fn blocked_producer_is_woken_by_a_take() {
        let b = Arc::new(BoundedBuffer::new(1));
        b.put(0);
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.put_timeout(1, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(b.take(), 0);
        t.join().unwrap().unwrap();
        assert_eq!(b.take_timeout(Duration::from_secs(10)), Ok(1));
    }

    #[test]
    fn many_producers_and_consumers_move_every_item_once() {
        const PER: u32 = 5_000;
        let b = Arc::new(BoundedBuffer::new(3));
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        b.put_timeout(p * PER + i, Duration::from_secs(20)).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    (0..PER)
                        .map(|_| b.take_timeout(Duration::from_secs(20)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut all: Vec<u32> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..3 * PER).collect::<Vec<_>>());
    }

    #[test]
    fn shared_buffer_rejects_corrupt_state() {
        type Buf = SharedBoundedBuffer<u64, 4>;
        let dir = tempfile::tempdir().unwrap();
        let m = Mapping::create(&dir.path().join("b"), size_of::<Buf>(), 0o600).unwrap();
        let b = m.get::<Buf>(0).unwrap();
        b.put(5).unwrap();
        b.ring.lock().unwrap().head_len = (9u64 << 32) | 1; // head out of range
        assert_eq!(b.try_take(), Err(TakeError::Broken));
        assert_eq!(b.try_put(6), Err(PutError::Broken(6)));
        b.ring.lock().unwrap().head_len = 5; // len > N
        assert_eq!(b.try_take(), Err(TakeError::Broken));
    }

    #[test]
    fn shared_buffer_survives_an_owner_that_died_holding_the_lock() {
        type Buf = SharedBoundedBuffer<u64, 2>;
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Mapping::create(&dir.path().join("b"), size_of::<Buf>(), 0o600).unwrap());
        m.get::<Buf>(0).unwrap().put(1).unwrap();
        let m2 = m.clone();
        std::thread::spawn(move || std::mem::forget(m2.get::<Buf>(0).unwrap().ring.lock()))
            .join()
            .unwrap();
        let b = m.get::<Buf>(0).unwrap();
        assert_eq!(b.take_timeout(Duration::from_secs(5)), Ok(1));
        b.put(2).unwrap();
        assert_eq!(b.try_take(), Ok(2));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8),
        Take,
    }

    proptest! {
        /// Both forms behave as a bounded FIFO queue, one thread at a time.
        #[test]
        fn matches_a_bounded_queue(
            ops in proptest::collection::vec(
                prop_oneof![any::<u8>().prop_map(Op::Put), Just(Op::Take)], 0..150)
        ) {
            let b = BoundedBuffer::new(3);
            let dir = tempfile::tempdir().unwrap();
            let m = Mapping::create(
                &dir.path().join("b"), size_of::<SharedBoundedBuffer<u8, 3>>(), 0o600).unwrap();
            let s = m.get::<SharedBoundedBuffer<u8, 3>>(0).unwrap();
            let mut model = VecDeque::new();
            for op in ops {
                match op {
                    Op::Put(v) => {
                        let expect = if model.len() < 3 { Ok(()) } else { Err(PutError::Full(v)) };
                        prop_assert_eq!(b.try_put(v), expect);
                        prop_assert_eq!(s.try_put(v), expect);
                        if expect.is_ok() {
                            model.push_back(v);
                        }
                    }
                    Op::Take => {
                        let expect = model.pop_front().ok_or(TakeError::Empty);
                        prop_assert_eq!(b.try_take(), expect);
                        prop_assert_eq!(s.try_take(), expect);
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(s.len(), model.len());
            }
        }
    }
}
