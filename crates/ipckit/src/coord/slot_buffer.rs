//! [`SlotBuffer`] and [`SharedSlotBuffer`]: a bounded buffer whose producers and consumers
//! copy into and out of *different* slots at the same time.
//!
//! The course's answer for large portions: with one lock around the buffer, a producer copying
//! 4 KiB holds every consumer up. Here only the *claiming* of a slot is serialized — one
//! compare-and-swap on a position counter — and the copying runs in parallel. The design is
//! Dmitry Vyukov's bounded multi-producer multi-consumer queue (2010), with an event count
//! (futex) for sleeping when the buffer is full or empty instead of spinning forever.
//!
//! ## State
//!
//! | word | meaning |
//! |---|---|
//! | `tail` | the next position a producer claims (counts up forever; slot = position mod capacity) |
//! | `head` | the next position a consumer claims |
//! | slot `stamp` | the slot's state for its position `p`: `2p` free for the producer of `p`; `2p+1` holds the item of `p`; after the take it becomes `2(p+capacity)`, free for the producer one lap later |
//! | `not_empty`, `not_full` | [`EventCount`]s consumers and producers sleep on |
//!
//! A slot's stamp is stored *relative to its index* (`stamp - 2·index`), so all-zero memory
//! is the empty buffer: what a fresh shared mapping holds. Doubling positions (instead of
//! Vyukov's `p` / `p+1`) keeps a capacity of one unambiguous.
//!
//! Put at position `p` (take is symmetric):
//!
//! 1. read `tail = p` and the stamp of slot `p mod N`;
//! 2. stamp `== 2p`: claim the position with `CAS(tail, p, p+1)`; on success copy the item
//!    in, then publish it with one store, `stamp = 2p+1`; the copy is outside any lock;
//! 3. stamp `< 2p`: the slot still holds the item of the previous lap: the buffer is full;
//! 4. stamp `> 2p`: another producer got there first: reload `tail` and try again.
//!
//! The stamp store is the one atomic publication (design rule 4): an item is in the buffer
//! whole or not at all. The order of items is FIFO by claimed position.
//!
//! ## Sleeping
//!
//! A taker that finds the buffer empty spins briefly (only on a multi-core machine), then
//! sleeps on `not_empty` ([`EventCount::wait_for`]); a putter only reads the event count
//! unless someone watches it, and calls `futex_wake` only when someone announced it sleeps.
//! Consumers can find the *head* slot still being filled while a later one is ready (its
//! producer was slower); a woken consumer then sleeps again until the head's producer
//! publishes. A waker wakes every sleeper (those that lose the race sleep again), so no item
//! is stranded by a wake-up used up on a slot that was not ready.
//!
//! ## Between processes
//!
//! [`SharedSlotBuffer`] is the same algorithm over `#[repr(C)]` memory. Nothing read from the
//! mapping is trusted: positions are taken modulo the capacity before indexing, and stamps are
//! only compared. A hostile process can make the buffer look full or empty, or deliver
//! garbage `T`s (any bit pattern is a valid `ShmSafe` value), but cannot cause an
//! out-of-bounds access. A producer that dies between claiming and publishing leaves its slot
//! unpublished: consumers behind it then wait, so use the `_timeout` forms between processes.

#![allow(unsafe_code)] // SAFETY obligations are documented at each block.

use super::{Padded, PutError, TakeError};
use crate::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
use crate::shm::ShmSafe;
use crate::sync::EventCount;
use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// One slot: a stamp and room for one item.
#[repr(C)]
struct Slot<T> {
    /// `stamp - 2·index`, wrapping (see the module docs).
    rel_stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot { rel_stamp: AtomicU64::new(0), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }
}

/// The positions and the two event counts. All-zero is the empty buffer.
#[repr(C)]
struct Ring {
    tail: Padded<AtomicU64>,
    head: Padded<AtomicU64>,
    not_empty: Padded<EventCount>,
    not_full: Padded<EventCount>,
}

impl Ring {
    fn new() -> Self {
        Ring {
            tail: Padded(AtomicU64::new(0)),
            head: Padded(AtomicU64::new(0)),
            not_empty: Padded(EventCount::new()),
            not_full: Padded(EventCount::new()),
        }
    }
}

/// A claimed position and its slot: the claimant alone may copy into or out of it.
struct Claim<'a, T> {
    pos: u64,
    slot: &'a Slot<T>,
}

/// The algorithm, over any ring and slot array (owned or in a mapping).
struct Core<'a, T> {
    ring: &'a Ring,
    slots: &'a [Slot<T>],
}

impl<T> Core<'_, T> {
    #[inline]
    fn index(&self, pos: u64) -> usize {
        let n = self.slots.len() as u64;
        // The result is < n whatever `pos` holds, so an index read from shared memory can
        // never point outside the array.
        (if n.is_power_of_two() { pos & (n - 1) } else { pos % n }) as usize
    }

    /// The stamp of the slot for `pos`, and the slot.
    #[inline]
    fn slot(&self, pos: u64) -> (u64, &Slot<T>) {
        let i = self.index(pos);
        let slot = &self.slots[i];
        // SeqCst: the event count's re-check (see `EventCount`); it includes Acquire, which
        // orders our copy after the previous owner's copy of this slot.
        let rel = slot.rel_stamp.load(Ordering::SeqCst);
        (rel.wrapping_add(2 * i as u64), slot)
    }

    #[inline]
    fn publish(&self, slot: &Slot<T>, pos: u64, stamp: u64) {
        let i = self.index(pos) as u64;
        // SeqCst (includes Release): publishes the copy, and is the store half of the event
        // count's store-then-load.
        slot.rel_stamp.store(stamp.wrapping_sub(2 * i), Ordering::SeqCst);
    }

    /// Claims the next position for a producer: `None` if the buffer is full.
    #[inline]
    fn claim_put(&self) -> Option<Claim<'_, T>> {
        let mut pos = self.ring.tail.load(Ordering::Relaxed);
        loop {
            let (stamp, slot) = self.slot(pos);
            let diff = stamp.wrapping_sub(pos.wrapping_mul(2)) as i64;
            if diff == 0 {
                match self.ring.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(Claim { pos, slot }),
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                return None;
            } else {
                // Someone claimed `pos` already. The stamp was stored after that claim and we
                // loaded it with Acquire, so the reload sees `tail` moved on; if it has not,
                // the memory is corrupt (a hostile process): report "full" instead of
                // spinning forever.
                let now = self.ring.tail.load(Ordering::Relaxed);
                if now == pos {
                    return None;
                }
                pos = now;
            }
        }
    }

    /// Claims the next position for a consumer: `None` if the buffer is empty.
    #[inline]
    fn claim_take(&self) -> Option<Claim<'_, T>> {
        let mut pos = self.ring.head.load(Ordering::Relaxed);
        loop {
            let (stamp, slot) = self.slot(pos);
            let diff = stamp.wrapping_sub(pos.wrapping_mul(2).wrapping_add(1)) as i64;
            if diff == 0 {
                match self.ring.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(Claim { pos, slot }),
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                return None;
            } else {
                // As in `claim_put`: an unmoved `head` means corrupt memory: "empty".
                let now = self.ring.head.load(Ordering::Relaxed);
                if now == pos {
                    return None;
                }
                pos = now;
            }
        }
    }

    /// Copies `item` into a claimed slot and publishes it.
    #[inline]
    fn fill(&self, c: Claim<'_, T>, item: T) {
        // SAFETY: the claim's CAS made us the only claimant of position `c.pos`, and the
        // stamp (loaded with Acquire) said its previous item was taken: nobody else touches
        // this slot until we publish.
        unsafe { (*c.slot.value.get()).write(item) };
        self.publish(c.slot, c.pos, c.pos.wrapping_mul(2).wrapping_add(1));
        self.ring.not_empty.notify();
    }

    /// Copies the item out of a claimed slot and frees the slot for the next lap.
    #[inline]
    fn empty(&self, c: Claim<'_, T>) -> T {
        // SAFETY: the claim made us the only claimant of `c.pos`; the stamp (Acquire) said its
        // producer finished writing the item, which we now move out exactly once.
        let item = unsafe { (*c.slot.value.get()).assume_init_read() };
        let next = c.pos.wrapping_add(self.slots.len() as u64).wrapping_mul(2);
        self.publish(c.slot, c.pos, next);
        self.ring.not_full.notify();
        item
    }

    /// Lets `f` read the item where it lies, then drops it there and frees the slot: no copy
    /// out. If `f` panics the item is still dropped and the slot freed (by `Release`), so
    /// the buffer stays usable.
    #[inline]
    fn empty_with<R>(&self, c: Claim<'_, T>, f: impl FnOnce(&T) -> R) -> R {
        struct Release<'c, 'b, T> {
            core: &'c Core<'b, T>,
            pos: u64,
            slot: &'c Slot<T>,
        }
        impl<T> Drop for Release<'_, '_, T> {
            fn drop(&mut self) {
                // SAFETY: we hold the claim on this slot and its item is initialized; it is
                // dropped exactly once, here, before the slot is handed to the next producer.
                unsafe { (*self.slot.value.get()).assume_init_drop() };
                let next = self.pos.wrapping_add(self.core.slots.len() as u64).wrapping_mul(2);
                self.core.publish(self.slot, self.pos, next);
                self.core.ring.not_full.notify();
            }
        }
        let release = Release { core: self, pos: c.pos, slot: c.slot };
        // SAFETY: as in `empty`: the claim gives us the initialized item alone; `release`
        // keeps the slot claimed until `f`'s borrow has ended.
        let r = f(unsafe { (*c.slot.value.get()).assume_init_ref() });
        drop(release);
        r
    }

    fn try_put(&self, item: T) -> Result<(), T> {
        match self.claim_put() {
            Some(c) => {
                self.fill(c, item);
                Ok(())
            }
            None => Err(item),
        }
    }

    fn try_take(&self) -> Option<T> {
        self.claim_take().map(|c| self.empty(c))
    }

    /// Might a put succeed now? (For spinning; loads only.)
    fn put_ready(&self) -> bool {
        let pos = self.ring.tail.load(Ordering::Relaxed);
        self.slot(pos).0 == pos.wrapping_mul(2)
    }

    /// Might a take succeed now?
    fn take_ready(&self) -> bool {
        let pos = self.ring.head.load(Ordering::Relaxed);
        self.slot(pos).0 == pos.wrapping_mul(2).wrapping_add(1)
    }

    /// Waits for a slot (the item is not moved until one is claimed, so a large item is
    /// copied once).
    #[inline]
    fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), T> {
        let claim = self.claim_put().or_else(|| {
            self.ring.not_full.wait_for(deadline, || self.put_ready(), || self.claim_put())
        });
        match claim {
            Some(c) => {
                self.fill(c, item);
                Ok(())
            }
            None => Err(item),
        }
    }

    #[inline]
    fn take_until(&self, deadline: Option<Instant>) -> Option<T> {
        self.claim_take_until(deadline).map(|c| self.empty(c))
    }

    #[inline]
    fn claim_take_until(&self, deadline: Option<Instant>) -> Option<Claim<'_, T>> {
        self.claim_take().or_else(|| {
            self.ring.not_empty.wait_for(deadline, || self.take_ready(), || self.claim_take())
        })
    }

    /// Items in the buffer now (a snapshot: may be stale by the time it is read).
    fn len(&self) -> usize {
        let tail = self.ring.tail.load(Ordering::Relaxed);
        let head = self.ring.head.load(Ordering::Relaxed);
        (tail.wrapping_sub(head) as i64).clamp(0, self.slots.len() as i64) as usize
    }
}

fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A bounded multi-producer multi-consumer buffer for large items: producers and consumers
/// copy into and out of different slots concurrently; only claiming a slot is serialized (see
/// the [module docs](self)).
///
/// ```
/// use ipckit::coord::{PutError, SlotBuffer};
///
/// let buf = SlotBuffer::new(2);
/// buf.put([1u8; 4096]);
/// buf.try_put([2u8; 4096]).unwrap();
/// assert!(matches!(buf.try_put([3u8; 4096]), Err(PutError::Full(_))));
/// assert_eq!(buf.take()[0], 1);
/// ```
pub struct SlotBuffer<T> {
    ring: Ring,
    slots: Box<[Slot<T>]>,
}

// SAFETY: items move between threads through the slots (hence `T: Send`); every slot access
// is made exclusive by the claim protocol.
unsafe impl<T: Send> Send for SlotBuffer<T> {}
// SAFETY: as above; `&SlotBuffer` only moves whole items in and out.
unsafe impl<T: Send> Sync for SlotBuffer<T> {}

impl<T> SlotBuffer<T> {
    /// An empty buffer with room for `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "SlotBuffer capacity must be at least 1");
        SlotBuffer { ring: Ring::new(), slots: (0..capacity).map(|_| Slot::new()).collect() }
    }

    fn core(&self) -> Core<'_, T> {
        Core { ring: &self.ring, slots: &self.slots }
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// How many items are in the buffer (a snapshot).
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// True if the buffer holds no item (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `item`, blocking while the buffer is full.
    #[inline]
    pub fn put(&self, item: T) {
        // No deadline: returns only once stored.
        let _ = self.core().put_until(item, None);
    }

    /// Stores `item` if a slot is free now; otherwise hands it back as
    /// [`PutError::Full`]. Never blocks.
    #[inline]
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.core().try_put(item).map_err(PutError::Full)
    }

    /// Stores `item`, waiting at most `timeout` for a free slot; hands it back as
    /// [`PutError::TimedOut`] otherwise.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.core().put_until(item, deadline(timeout)).map_err(PutError::TimedOut)
    }

    /// Removes the oldest item, blocking while the buffer is empty.
    #[inline]
    pub fn take(&self) -> T {
        self.core().take_until(None).expect("no deadline")
    }

    /// Removes the oldest item if there is one now: [`TakeError::Empty`] otherwise.
    #[inline]
    pub fn try_take(&self) -> Result<T, TakeError> {
        self.core().try_take().ok_or(TakeError::Empty)
    }

    /// Removes the oldest item, waiting at most `timeout`: [`TakeError::TimedOut`] otherwise.
    pub fn take_timeout(&self, timeout: Duration) -> Result<T, TakeError> {
        self.core().take_until(deadline(timeout)).ok_or(TakeError::TimedOut)
    }

    /// Removes the oldest item *in place*: `f` reads it inside its slot, then it is dropped
    /// there, so a large item is never copied out. Blocks while the buffer is empty. Other
    /// slots keep moving while `f` runs; this one is freed when `f` returns (or panics).
    ///
    /// ```
    /// use ipckit::coord::SlotBuffer;
    ///
    /// let buf = SlotBuffer::new(2);
    /// buf.put([7u8; 4096]);
    /// let sum: u32 = buf.take_with(|page| page.iter().map(|&b| b as u32).sum());
    /// assert_eq!(sum, 7 * 4096);
    /// ```
    #[inline]
    pub fn take_with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let core = self.core();
        let c = core.claim_take_until(None).expect("no deadline");
        core.empty_with(c, f)
    }

    /// Like [`take_with`](Self::take_with) if an item is there now: [`TakeError::Empty`]
    /// otherwise.
    pub fn try_take_with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, TakeError> {
        let core = self.core();
        let c = core.claim_take().ok_or(TakeError::Empty)?;
        Ok(core.empty_with(c, f))
    }

    /// Like [`take_with`](Self::take_with), waiting at most `timeout`:
    /// [`TakeError::TimedOut`] otherwise.
    pub fn take_with_timeout<R>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, TakeError> {
        let core = self.core();
        let c = core.claim_take_until(deadline(timeout)).ok_or(TakeError::TimedOut)?;
        Ok(core.empty_with(c, f))
    }
}

impl<T> Drop for SlotBuffer<T> {
    fn drop(&mut self) {
        while self.core().try_take().is_some() {}
    }
}

impl<T> fmt::Debug for SlotBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotBuffer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

/// [`SlotBuffer`]'s algorithm as plain `#[repr(C)]` data for a shared mapping: the
/// producer/consumer buffer between processes, without the kernel on the fast path.
///
/// All-zero memory is an empty buffer, so a freshly created [`Mapping`](crate::shm::Mapping)
/// needs no initialization step. `T` must be `Copy + ShmSafe` (plain data, valid for every
/// bit pattern) and `N` at least 1. See the [module docs](self) for what a hostile or dying
/// process can and cannot do.
///
/// ```
/// use ipckit::coord::SharedSlotBuffer;
/// use ipckit::shm::Mapping;
///
/// type Buf = SharedSlotBuffer<u64, 16>;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("buf");
/// let producer = Mapping::create(&path, size_of::<Buf>(), 0o600).unwrap();
/// let consumer = Mapping::open(&path).unwrap(); // in another process, normally
/// producer.get::<Buf>(0).unwrap().put(42);
/// assert_eq!(consumer.get::<Buf>(0).unwrap().take(), 42);
/// ```
#[repr(C)]
pub struct SharedSlotBuffer<T, const N: usize> {
    ring: Ring,
    slots: [Slot<T>; N],
}

// SAFETY: `T: Copy` items are copied in and out of slots made exclusive by the claim protocol.
unsafe impl<T: Copy + Send, const N: usize> Send for SharedSlotBuffer<T, N> {}
// SAFETY: as above.
unsafe impl<T: Copy + Send, const N: usize> Sync for SharedSlotBuffer<T, N> {}
// SAFETY: repr(C) of atomics and `MaybeUninit<T>` for a ShmSafe `T` (valid for every bit
// pattern, no Drop since `Copy`); all-zero is the empty buffer; positions are reduced modulo
// N before indexing and stamps are only compared, so no value another process writes leads
// outside the structure.
#[cfg(not(loom))]
unsafe impl<T: Copy + ShmSafe + Send, const N: usize> ShmSafe for SharedSlotBuffer<T, N> {}

impl<T: Copy, const N: usize> Default for SharedSlotBuffer<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> SharedSlotBuffer<T, N> {
    const NONEMPTY: () = assert!(N > 0, "SharedSlotBuffer needs N >= 1");

    /// An empty buffer in process memory (equal to all-zero memory); in a mapping, use the
    /// zeroed bytes of a new file instead.
    pub fn new() -> Self {
        let () = Self::NONEMPTY;
        SharedSlotBuffer { ring: Ring::new(), slots: std::array::from_fn(|_| Slot::new()) }
    }

    fn core(&self) -> Core<'_, T> {
        let () = Self::NONEMPTY;
        Core { ring: &self.ring, slots: &self.slots }
    }

    /// How many items fit: `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many items are in the buffer (a snapshot).
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// True if the buffer holds no item (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `item`, blocking while the buffer is full. Between processes prefer
    /// [`put_timeout`](Self::put_timeout): a dead consumer never frees a slot.
    #[inline]
    pub fn put(&self, item: T) {
        let _ = self.core().put_until(item, None);
    }

    /// Stores `item` if a slot is free now: [`PutError::Full`] otherwise. Never blocks.
    #[inline]
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.core().try_put(item).map_err(PutError::Full)
    }

    /// Stores `item`, waiting at most `timeout`: [`PutError::TimedOut`] otherwise.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.core().put_until(item, deadline(timeout)).map_err(PutError::TimedOut)
    }

    /// Removes the oldest item, blocking while the buffer is empty. Between processes prefer
    /// [`take_timeout`](Self::take_timeout).
    #[inline]
    pub fn take(&self) -> T {
        self.core().take_until(None).expect("no deadline")
    }

    /// Removes the oldest item if there is one now: [`TakeError::Empty`] otherwise.
    #[inline]
    pub fn try_take(&self) -> Result<T, TakeError> {
        self.core().try_take().ok_or(TakeError::Empty)
    }

    /// Removes the oldest item, waiting at most `timeout`: [`TakeError::TimedOut`] otherwise.
    pub fn take_timeout(&self, timeout: Duration) -> Result<T, TakeError> {
        self.core().take_until(deadline(timeout)).ok_or(TakeError::TimedOut)
    }
}

impl<T: Copy, const N: usize> fmt::Debug for SharedSlotBuffer<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSlotBuffer").field("capacity", &N).field("len", &self.len()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::sync::Arc;

    #[test]
    fn capacity_one_alternates() {
        let b = SlotBuffer::new(1);
        for i in 0..5 {
            b.try_put(i).unwrap();
            assert_eq!(b.try_put(99).unwrap_err(), PutError::Full(99));
            assert_eq!(b.try_take(), Ok(i));
            assert_eq!(b.try_take(), Err(TakeError::Empty));
        }
    }

    #[test]
    fn timeouts_hand_the_item_back() {
        let b = SlotBuffer::new(1);
        assert_eq!(b.take_timeout(Duration::from_millis(10)), Err(TakeError::TimedOut));
        b.put(String::from("a"));
        let e = b.put_timeout(String::from("b"), Duration::from_millis(10)).unwrap_err();
        assert_eq!(e.into_inner(), "b");
    }

    #[test]
    fn take_with_reads_in_place_and_survives_a_panic() {
        let item = Arc::new(5);
        let b = SlotBuffer::new(1);
        b.put(item.clone());
        assert_eq!(b.take_with(|v| **v), 5);
        assert_eq!(Arc::strong_count(&item), 1, "dropped in its slot");
        b.put(item.clone());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.take_with(|_| panic!("reader fails"))
        }));
        assert!(r.is_err());
        assert_eq!(Arc::strong_count(&item), 1, "dropped despite the panic");
        b.try_put(item.clone()).expect("the slot was freed");
        assert_eq!(b.try_take_with(|v| **v), Ok(5));
        assert_eq!(
            b.take_with_timeout(Duration::from_millis(5), |v| **v),
            Err(TakeError::TimedOut)
        );
    }

    #[test]
    fn drop_drops_remaining_items() {
        let item = Arc::new(());
        {
            let b = SlotBuffer::new(4);
            b.put(item.clone());
            b.put(item.clone());
            let _ = b.take();
        }
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn zeroed_shared_buffer_is_empty_and_works() {
        // What a fresh mapping holds.
        let m = crate::shm::Mapping::create(
            &tempfile::tempdir().unwrap().path().join("b"),
            size_of::<SharedSlotBuffer<u32, 3>>(),
            0o600,
        )
        .unwrap();
        let b = m.get::<SharedSlotBuffer<u32, 3>>(0).unwrap();
        assert!(b.is_empty());
        for round in 0..4 {
            for i in 0..3 {
                b.try_put(round * 10 + i).unwrap();
            }
            assert!(b.try_put(7).is_err());
            for i in 0..3 {
                assert_eq!(b.try_take(), Ok(round * 10 + i));
            }
        }
    }

    #[test]
    fn hostile_positions_stay_in_bounds() {
        let b = SharedSlotBuffer::<u64, 3>::new();
        b.ring.tail.store(u64::MAX - 1, Ordering::Relaxed);
        b.ring.head.store(12345, Ordering::Relaxed);
        b.slots[1].rel_stamp.store(0xdead_beef, Ordering::Relaxed);
        // Nothing panics or indexes out of bounds; the buffer merely looks full or empty.
        let _ = b.try_put(1);
        let _ = b.try_take();
        assert!(b.len() <= 3);
        let _ = b.take_timeout(Duration::from_millis(5));
    }

    #[test]
    fn many_producers_and_consumers_move_every_item_once() {
        const PER: u64 = 20_000;
        let b = Arc::new(SlotBuffer::new(4));
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        b.put_timeout(p * PER + i, Duration::from_secs(20)).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..PER {
                        got.push(b.take_timeout(Duration::from_secs(20)).unwrap());
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut all: Vec<u64> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..2 * PER).collect::<Vec<_>>());
    }

    /// Wake-ups go to one sleeper and are passed on (chain wake-up); a stranded item would
    /// leave a consumer asleep until its timeout, failing the test. Small capacities make
    /// "head slot not yet published" frequent.
    #[test]
    fn one_wake_per_item_strands_nothing() {
        const PER: u64 = 3_000;
        for cap in [1usize, 2, 3] {
            let b = Arc::new(SlotBuffer::new(cap));
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
                            .sum::<u64>()
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            let sum: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
            assert_eq!(sum, (0..3 * PER).sum::<u64>(), "capacity {cap}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u16),
        Take,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![any::<u16>().prop_map(Op::Put), Just(Op::Take)]
    }

    proptest! {
        /// Single-threaded, the buffer is a bounded FIFO queue: same answers as the model.
        #[test]
        fn matches_a_bounded_queue(cap in 1usize..6, ops in proptest::collection::vec(op(), 0..200)) {
            let b = SlotBuffer::new(cap);
            let s = SharedSlotBuffer::<u16, 5>::new();
            let mut model = VecDeque::new();
            let mut shared_model = VecDeque::new();
            for op in ops {
                match op {
                    Op::Put(v) => {
                        let r = b.try_put(v);
                        if model.len() < cap {
                            prop_assert!(r.is_ok());
                            model.push_back(v);
                        } else {
                            prop_assert_eq!(r, Err(PutError::Full(v)));
                        }
                        let r = s.try_put(v);
                        if shared_model.len() < 5 {
                            prop_assert!(r.is_ok());
                            shared_model.push_back(v);
                        } else {
                            prop_assert_eq!(r, Err(PutError::Full(v)));
                        }
                    }
                    Op::Take => {
                        prop_assert_eq!(b.try_take().ok(), model.pop_front());
                        prop_assert_eq!(s.try_take().ok(), shared_model.pop_front());
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(s.len(), shared_model.len());
            }
        }
    }
}
