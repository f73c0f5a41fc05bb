//! Spinlocks: locks whose waiters burn CPU instead of sleeping.
//!
//! Four classic designs, all built on one atomic read-modify-write (RMW) instruction, all
//! implementing [`RawLock`] so that `Mutex::<T, TtasLock>::with_raw(value)` gives a typed lock
//! with a guard:
//!
//! | type | acquire | fairness | traffic while waiting | shared memory |
//! |---|---|---|---|---|
//! | [`TasLock`] | `swap(1)` until it returns 0 (test-and-set) | none | every attempt is an RMW: the cache line ping-pongs between waiters | yes |
//! | [`TtasLock`] | spin on a plain load while locked; `compare_exchange(0, 1)` only when it looks free | none | waiters read a shared copy; one RMW per release | yes |
//! | [`TicketLock`] | take a ticket with `fetch_add`; wait until `serving` shows it | FIFO | one RMW per acquisition; waiters read `serving` | yes (a process that dies holding a ticket blocks the lock for good) |
//! | [`McsLock`] | enqueue a node with `swap` on the tail; spin on *your own* node | FIFO | each waiter spins on its own cache line | no: the queue links nodes by address |
//!
//! Every waiting loop uses [`Backoff`]: a waiter spins a growing number of iterations and then
//! yields its CPU, so that a preempted lock holder gets to run. The test-and-set lock is the
//! textbook `TestAndSet` loop; test-and-test-and-set is the correct form of the "compare,
//! then compare-and-swap" idiom: the plain load only *filters* (it may be stale), the CAS
//! *decides*. Anderson (1990) measured why the filter matters: with TAS every waiting
//! iteration invalidates the line in every other cache. The ticket lock is Reed and Kanodia's
//! (1979) sequencer, as used by Mellor-Crummey and Scott (1991), whose MCS queue lock ends the
//! shared spinning entirely.
//!
//! ## When a spinlock beats a sleeping mutex — and when it must not be used
//!
//! A spinlock wins when critical sections are *short* (tens to hundreds of nanoseconds) and
//! the holder is *running on another core*: the waiter gets the lock a cache-line transfer
//! after its release (~100 ns), where a sleeping mutex pays a futex sleep and wake-up
//! (microseconds). ipckit's [`Mutex`](super::Mutex) already spins briefly before it sleeps, so
//! the pure spinlock's advantage is small and bought with wasted CPU.
//!
//! Do **not** use a spinlock when the holder may sleep, block on I/O, take a page fault on
//! purpose or be preempted for long (a waiter then burns its whole time slice for nothing),
//! nor on a single core (the holder cannot run while the waiter spins: the [`Backoff`] yield
//! only limits the damage), nor between processes of unequal priority. A spinlock knows no
//! owner: if the holder dies, the lock stays locked. The ticket and MCS locks are FIFO,
//! which makes them fair but fragile under preemption: if the next ticket holder is
//! descheduled, everyone behind it waits too.

use super::backoff::Backoff;
use super::raw::{Acquired, RawLock, RawLockError};
use crate::atomic::{AtomicPtr, AtomicU32, Ordering, spin_loop};
use crate::shm::ShmSafe;
use std::cell::RefCell;
use std::fmt;
use std::ptr;

/// The spinlock ipckit recommends for general use: [`TtasLock`].
pub type SpinLock = TtasLock;

/// One step of a waiting loop: [`Backoff::snooze`]; under loom a single yield, so that a
/// model explores interleavings rather than spin iterations.
#[inline]
fn wait_step(backoff: &mut Backoff) {
    if cfg!(loom) {
        spin_loop();
    } else {
        backoff.snooze();
    }
}

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;

/// Test-and-set spinlock: `swap(1)` until the old value is 0.
///
/// The lock word: 0 unlocked, 1 locked (anything else is treated as locked). Zeroed memory is
/// unlocked; the lock may live in a shared mapping.
///
/// ```
/// use ipckit::sync::{Mutex, TasLock};
///
/// let m = Mutex::<u32, TasLock>::with_raw(0);
/// *m.lock().unwrap() += 1;
/// assert_eq!(*m.lock().unwrap(), 1);
/// ```
#[repr(C)]
pub struct TasLock {
    word: AtomicU32,
}

/// Test-and-test-and-set spinlock: spin on a plain load while the lock looks taken; try the
/// compare-and-swap only when it looks free.
///
/// The lock word: 0 unlocked, 1 locked. Zeroed memory is unlocked; the lock may live in a
/// shared mapping.
///
/// ```
/// use ipckit::sync::{Mutex, SpinLock};
///
/// let m = Mutex::<Vec<u8>, SpinLock>::with_raw(Vec::new());
/// m.lock().unwrap().push(1);
/// assert_eq!(m.lock().unwrap().len(), 1);
/// ```
#[repr(C)]
pub struct TtasLock {
    word: AtomicU32,
}

// SAFETY: repr(C), one atomic; every value is handled (non-zero = locked); zero is unlocked;
// no Drop.
unsafe impl ShmSafe for TasLock {}
// SAFETY: as for TasLock.
unsafe impl ShmSafe for TtasLock {}

macro_rules! word_lock_common {
    ($t:ident) => {
        impl $t {
            /// An unlocked lock.
            #[cfg(not(loom))]
            pub const fn new() -> Self {
                $t { word: AtomicU32::new(UNLOCKED) }
            }

            /// An unlocked lock.
            #[cfg(loom)]
            pub fn new() -> Self {
                $t { word: AtomicU32::new(UNLOCKED) }
            }

            /// Acquires the lock, spinning (with [`Backoff`]) until it is free, and returns how
            /// many atomic read-modify-write instructions this acquisition issued: the
            /// number the demos print to show the cost of contention. [`RawLock::lock`] is
            /// this without the count.
            #[inline]
            pub fn lock_counting_rmw(&self) -> u32 {
                self.acquire()
            }
        }

        impl Default for $t {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).field("locked", &self.is_locked()).finish()
            }
        }

        // SAFETY: the word goes 0 → 1 only by an atomic RMW that observed 0 (swap or CAS), and
        // only the holder stores 0.
        unsafe impl RawLock for $t {
            #[allow(clippy::declare_interior_mutable_const)]
            #[cfg(not(loom))]
            const INIT: Self = $t::new();
            #[allow(clippy::declare_interior_mutable_const)]
            #[cfg(loom)]
            const INIT: Self = panic!("use new() under loom");

            #[inline]
            fn lock(&self) -> Result<Acquired, RawLockError> {
                self.acquire();
                Ok(Acquired::Clean)
            }

            #[inline]
            fn try_lock(&self) -> Result<Acquired, RawLockError> {
                if self.try_acquire() { Ok(Acquired::Clean) } else { Err(RawLockError::WouldBlock) }
            }

            #[inline]
            unsafe fn unlock(&self) {
                // Release: publishes the critical section to the next holder.
                self.word.store(UNLOCKED, Ordering::Release);
            }

            fn is_locked(&self) -> bool {
                self.word.load(Ordering::Relaxed) != UNLOCKED
            }
        }
    };
}

word_lock_common!(TasLock);
word_lock_common!(TtasLock);

impl TasLock {
    /// One test-and-set: `swap(1)`; acquired if the old value was 0. (Writing 1 over 1 when
    /// the lock is held changes nothing.)
    #[inline]
    fn try_acquire(&self) -> bool {
        // Acquire: pairs with the Release store in `unlock`.
        #[cfg(not(loom))]
        return self.word.swap(LOCKED, Ordering::Acquire) == UNLOCKED;
        // Loom may order the holder's unlocking store before a contender's failed swap (which
        // read the holder's 1 and wrote 1 again), leaving a phantom 1 that no hardware
        // produces, and it cannot bound a loop of swaps. Under loom the same decision is made
        // by a compare-and-swap, which writes nothing when it fails.
        #[cfg(loom)]
        return self
            .word
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
    }

    #[inline]
    fn acquire(&self) -> u32 {
        let mut rmw = 1;
        if self.try_acquire() {
            return rmw;
        }
        let mut backoff = Backoff::new();
        loop {
            wait_step(&mut backoff);
            rmw += 1;
            if self.try_acquire() {
                return rmw;
            }
        }
    }
}

impl TtasLock {
    #[inline]
    fn try_acquire(&self) -> bool {
        // Acquire: pairs with the Release in `unlock`.
        self.word.compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    #[inline]
    fn acquire(&self) -> u32 {
        let mut rmw = 0;
        let mut backoff = Backoff::new();
        loop {
            // Test: a plain load, served from this core's cache while the holder keeps the
            // lock. It may be stale; it only decides whether trying is worthwhile.
            if self.word.load(Ordering::Relaxed) == UNLOCKED {
                rmw += 1;
                // Test-and-set: the CAS decides. Acquire pairs with the Release in `unlock`.
                if self
                    .word
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return rmw;
                }
            }
            wait_step(&mut backoff);
        }
    }
}

/// Ticket lock: first come, first served.
///
/// | word | meaning |
/// |---|---|
/// | `next` | the next ticket to hand out; `fetch_add(1)` takes one |
/// | `serving` | the ticket allowed in; only the holder advances it |
///
/// Unlocked when `next == serving`; zeroed memory is unlocked. Both counters wrap, which is
/// fine while fewer than 2³² threads wait at once. A waiter backs off in proportion to the
/// number of tickets ahead of it. In a shared mapping, a process that dies holding a ticket
/// (waiting or holding) blocks the lock for good: use it only between processes that do not
/// die, or prefer the robust [`Mutex`](super::Mutex).
///
/// [`RawLock::try_lock`] and [`RawLock::lock_timeout`] never take a ticket they might have to
/// abandon: they succeed only when the lock is free and no one is queued, so a timed waiter
/// does not keep its place in the line.
///
/// ```
/// use ipckit::sync::{Mutex, TicketLock};
///
/// let m = Mutex::<u32, TicketLock>::with_raw(1);
/// assert_eq!(*m.lock().unwrap(), 1);
/// ```
#[repr(C)]
pub struct TicketLock {
    next: AtomicU32,
    serving: AtomicU32,
}

// SAFETY: repr(C), two atomic counters; every pair of values is a state (possibly one that
// blocks, as documented); zero is unlocked; no Drop.
unsafe impl ShmSafe for TicketLock {}

impl TicketLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        TicketLock { next: AtomicU32::new(0), serving: AtomicU32::new(0) }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub fn new() -> Self {
        TicketLock { next: AtomicU32::new(0), serving: AtomicU32::new(0) }
    }

    /// Threads holding or waiting for the lock (a snapshot).
    pub fn queue_len(&self) -> u32 {
        let s = self.serving.load(Ordering::Relaxed);
        self.next.load(Ordering::Relaxed).wrapping_sub(s)
    }
}

impl Default for TicketLock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TicketLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketLock").field("queue_len", &self.queue_len()).finish()
    }
}

// SAFETY: tickets are unique (fetch_add); only the holder of ticket `serving` is inside, and
// only it advances `serving`, by one.
unsafe impl RawLock for TicketLock {
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(not(loom))]
    const INIT: Self = TicketLock::new();
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(loom)]
    const INIT: Self = panic!("use TicketLock::new() under loom");

    #[inline]
    fn lock(&self) -> Result<Acquired, RawLockError> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut rounds = 0u32;
        loop {
            // Acquire: pairs with the Release in `unlock`.
            let serving = self.serving.load(Ordering::Acquire);
            if serving == ticket {
                return Ok(Acquired::Clean);
            }
            // Proportional backoff: each ticket ahead is one critical section to wait out.
            let ahead = ticket.wrapping_sub(serving).min(64);
            if cfg!(loom) {
                spin_loop();
            } else if rounds < 16 {
                for _ in 0..ahead * 8 {
                    spin_loop();
                }
                rounds += 1;
            } else {
                // Spinning has not paid: the holder is probably not running. Let it.
                std::thread::yield_now();
            }
        }
    }

    fn try_lock(&self) -> Result<Acquired, RawLockError> {
        let serving = self.serving.load(Ordering::Acquire);
        // Take ticket `serving` only if it is also the next one: nobody holds or waits.
        match self.next.compare_exchange(
            serving,
            serving.wrapping_add(1),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(Acquired::Clean),
            Err(_) => Err(RawLockError::WouldBlock),
        }
    }

    #[inline]
    unsafe fn unlock(&self) {
        // Only the holder writes `serving`, so a load and a store suffice. Release: publishes
        // the critical section to the next ticket holder.
        let s = self.serving.load(Ordering::Relaxed);
        self.serving.store(s.wrapping_add(1), Ordering::Release);
    }

    fn is_locked(&self) -> bool {
        self.queue_len() != 0
    }
}

/// A waiter's place in an [`McsLock`] queue.
///
/// Each acquisition needs its own node that stays at one address until the lock is released.
/// [`McsLock::with_lock`] keeps it on the stack; the [`RawLock`] methods keep it in
/// thread-local storage (see [`McsLock`]).
#[derive(Debug)]
pub(crate) struct McsNode {
    next: AtomicPtr<McsNode>,
    locked: AtomicU32,
}

impl McsNode {
    /// A fresh node.
    pub(crate) fn new() -> Self {
        McsNode { next: AtomicPtr::new(ptr::null_mut()), locked: AtomicU32::new(0) }
    }
}

impl Default for McsNode {
    fn default() -> Self {
        Self::new()
    }
}

/// The Mellor-Crummey–Scott queue lock (1991): FIFO, and each waiter spins on a flag in its
/// own queue node, so a release disturbs only the next waiter's cache.
///
/// | field | meaning |
/// |---|---|
/// | `tail` | the last node in the queue; null: unlocked |
/// | node `next` | the node behind this one (set by that waiter after it swapped itself in) |
/// | node `locked` | 1 while this node's owner must wait; its predecessor clears it to hand over |
///
/// Acquire: prepare a node, `swap` it into `tail`; if there was a predecessor, link behind it
/// and spin on your own `locked`. Release: if nobody is linked behind you, `compare_exchange`
/// the tail from your node back to null; if that fails a successor is linking in, so wait
/// for the link, then clear its `locked`.
///
/// ## Where the node lives
///
/// [`with_lock`](Self::with_lock) keeps the node on the caller's stack. The [`RawLock`]
/// interface (and so `Mutex::<T, McsLock>`) has no place to pass a node, so `lock` takes one
/// from a small per-thread pool and records it in a thread-local list keyed by the lock's
/// address; `unlock`, which must run on the same thread (the guard is not `Send`), finds it
/// there and returns it to the pool. A thread that exits while holding an MCS lock leaks its
/// node rather than leaving a dangling pointer in the queue.
///
/// The per-thread bookkeeping costs some nanoseconds per acquisition (see the
/// `spin-vs-mutex` benchmark); `with_lock` has none.
///
/// The queue links nodes by address, so an `McsLock` works between the threads of one process
/// only (it is not [`ShmSafe`]).
///
/// ```
/// use ipckit::sync::{McsLock, Mutex};
///
/// let m = Mutex::<u32, McsLock>::with_raw(0);
/// *m.lock().unwrap() += 2;
/// let lock = McsLock::new();
/// assert_eq!(lock.with_lock(|| 40 + *m.lock().unwrap()), 42);
/// ```
pub struct McsLock {
    tail: AtomicPtr<McsNode>,
}

impl fmt::Debug for McsLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McsLock").field("locked", &self.is_locked()).finish()
    }
}

impl Default for McsLock {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-thread MCS nodes: those in use (keyed by lock address) and a small free pool.
#[derive(Default)]
struct HeldNodes {
    held: Vec<(usize, Box<McsNode>)>,
    // Boxed so a node moves between the lists without moving in memory.
    #[allow(clippy::vec_box)]
    free: Vec<Box<McsNode>>,
}

impl Drop for HeldNodes {
    fn drop(&mut self) {
        // A node still held is linked into a lock's queue: leak it rather than free it.
        for (_, node) in self.held.drain(..) {
            std::mem::forget(node);
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static NODES: RefCell<HeldNodes> = RefCell::new(HeldNodes::default());
}
#[cfg(loom)]
loom::thread_local! {
    static NODES: RefCell<HeldNodes> = RefCell::new(HeldNodes::default());
}

const FREE_NODES_KEPT: usize = 8;

impl McsLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        McsLock { tail: AtomicPtr::new(ptr::null_mut()) }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub fn new() -> Self {
        McsLock { tail: AtomicPtr::new(ptr::null_mut()) }
    }

    /// Runs `f` holding the lock, with the queue node on this stack frame. Blocks (spins,
    /// then yields) until the lock is free. The lock is released when `f` returns or panics.
    pub fn with_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Release<'a>(&'a McsLock, &'a McsNode);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                // SAFETY: constructed only after `acquire` with this node returned.
                unsafe { self.0.release(self.1) }
            }
        }
        let node = McsNode::new();
        // SAFETY: `node` lives on this frame until after `Release` drops (declared later,
        // dropped first), and is used for this one acquisition only.
        unsafe { self.acquire(&node) };
        let _release = Release(self, &node);
        f()
    }

    /// Joins the queue with `node` and waits for the lock.
    ///
    /// # Safety
    ///
    /// `node` must stay at its address, unused by anyone else, until `release(node)` returns.
    unsafe fn acquire(&self, node: &McsNode) {
        node.next.store(ptr::null_mut(), Ordering::Relaxed);
        node.locked.store(1, Ordering::Relaxed);
        let me = node as *const McsNode as *mut McsNode;
        // AcqRel: Acquire pairs with the Release of a predecessor that emptied the queue;
        // Release publishes our node's initialization to the successor that finds it here.
        let pred = self.tail.swap(me, Ordering::AcqRel);
        if pred.is_null() {
            return;
        }
        // SAFETY: a predecessor's node stays valid until it has handed the lock to us, which
        // needs the link we store here; it waits for the link before it can go.
        unsafe { (*pred).next.store(me, Ordering::Release) };
        let mut backoff = Backoff::new();
        // Acquire: pairs with the predecessor's Release when it clears our flag.
        while node.locked.load(Ordering::Acquire) != 0 {
            wait_step(&mut backoff);
        }
    }

    /// Hands the lock to the next node in the queue, or empties the queue.
    ///
    /// # Safety
    ///
    /// The caller holds the lock through `node`.
    unsafe fn release(&self, node: &McsNode) {
        let me = node as *const McsNode as *mut McsNode;
        let mut next = node.next.load(Ordering::Acquire);
        if next.is_null() {
            // Release: publishes the critical section to the next thread that swaps the tail.
            if self
                .tail
                .compare_exchange(me, ptr::null_mut(), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // A successor swapped itself in and is about to link behind us.
            let mut backoff = Backoff::new();
            loop {
                next = node.next.load(Ordering::Acquire);
                if !next.is_null() {
                    break;
                }
                wait_step(&mut backoff);
            }
        }
        // SAFETY: the successor's node stays valid while it waits for this very store.
        // Release: publishes the critical section to it.
        unsafe { (*next).locked.store(0, Ordering::Release) };
    }
}

// SAFETY: the tail swap orders acquirers; a node's owner enters only when its queue
// predecessor clears its flag, which it does once, when leaving.
unsafe impl RawLock for McsLock {
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(not(loom))]
    const INIT: Self = McsLock::new();
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(loom)]
    const INIT: Self = panic!("use McsLock::new() under loom");

    fn lock(&self) -> Result<Acquired, RawLockError> {
        let node = NODES.with(|n| n.borrow_mut().free.pop()).unwrap_or_default();
        // SAFETY: the boxed node does not move (only the Box does) and is recorded as held
        // below until `unlock` releases it.
        unsafe { self.acquire(&node) };
        NODES.with(|n| n.borrow_mut().held.push((self as *const Self as usize, node)));
        Ok(Acquired::Clean)
    }

    fn try_lock(&self) -> Result<Acquired, RawLockError> {
        let node = NODES.with(|n| n.borrow_mut().free.pop()).unwrap_or_default();
        node.next.store(ptr::null_mut(), Ordering::Relaxed);
        node.locked.store(0, Ordering::Relaxed);
        let me = &*node as *const McsNode as *mut McsNode;
        // Acquire: pairs with the Release of the holder that emptied the queue.
        if self
            .tail
            .compare_exchange(ptr::null_mut(), me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            NODES.with(|n| n.borrow_mut().held.push((self as *const Self as usize, node)));
            Ok(Acquired::Clean)
        } else {
            NODES.with(|n| n.borrow_mut().free.push(node));
            Err(RawLockError::WouldBlock)
        }
    }

    unsafe fn unlock(&self) {
        let key = self as *const Self as usize;
        let node = NODES.with(|n| {
            let mut n = n.borrow_mut();
            let i = n
                .held
                .iter()
                .rposition(|(k, _)| *k == key)
                .expect("McsLock::unlock: this thread does not hold the lock");
            n.held.swap_remove(i).1
        });
        // SAFETY: the caller holds the lock, acquired on this thread with this node.
        unsafe { self.release(&node) };
        NODES.with(|n| {
            let mut n = n.borrow_mut();
            if n.free.len() < FREE_NODES_KEPT {
                n.free.push(node);
            }
        });
    }

    fn is_locked(&self) -> bool {
        !self.tail.load(Ordering::Relaxed).is_null()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Mutex;
    use std::sync::Arc;
    use std::time::Duration;

    fn hammer<R: RawLock + Send + Sync + 'static>(m: Arc<Mutex<u64, R>>) {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 15_000);
    }

    #[test]
    fn every_spinlock_excludes() {
        hammer(Arc::new(Mutex::<u64, TasLock>::with_raw(0)));
        hammer(Arc::new(Mutex::<u64, TtasLock>::with_raw(0)));
        hammer(Arc::new(Mutex::<u64, TicketLock>::with_raw(0)));
        hammer(Arc::new(Mutex::<u64, McsLock>::with_raw(0)));
    }

    fn try_and_timeout<R: RawLock>(m: &Mutex<(), R>) {
        let g = m.lock().unwrap();
        assert!(m.raw().is_locked());
        assert!(m.try_lock().is_err());
        assert!(m.lock_timeout(Duration::from_millis(5)).is_err());
        drop(g);
        assert!(!m.raw().is_locked());
        drop(m.try_lock().unwrap());
        drop(m.lock_timeout(Duration::from_millis(5)).unwrap());
    }

    #[test]
    fn try_and_timeout_forms() {
        try_and_timeout(&Mutex::<(), TasLock>::with_raw(()));
        try_and_timeout(&Mutex::<(), TtasLock>::with_raw(()));
        try_and_timeout(&Mutex::<(), TicketLock>::with_raw(()));
        try_and_timeout(&Mutex::<(), McsLock>::with_raw(()));
    }

    #[test]
    fn mcs_nested_locks_and_with_lock() {
        let a = Mutex::<u32, McsLock>::with_raw(1);
        let b = Mutex::<u32, McsLock>::with_raw(2);
        let ga = a.lock().unwrap();
        let gb = b.lock().unwrap();
        drop(ga); // out of order release: nodes are keyed by lock
        assert_eq!(*gb, 2);
        drop(gb);
        let l = Arc::new(McsLock::new());
        let n = Arc::new(crate::atomic::AtomicU32::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (l, n) = (l.clone(), n.clone());
                std::thread::spawn(move || {
                    for _ in 0..3_000 {
                        l.with_lock(|| {
                            let v = n.load(Ordering::Relaxed);
                            n.store(v + 1, Ordering::Relaxed);
                        });
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(n.load(Ordering::Relaxed), 9_000);
    }

    #[test]
    fn ticket_lock_is_fifo() {
        // Threads queue up in a known order while the lock is held; they must enter in it.
        let m = Arc::new(Mutex::<Vec<u32>, TicketLock>::with_raw(Vec::new()));
        let g = m.lock().unwrap();
        let mut hs = Vec::new();
        for i in 0..3u32 {
            let m2 = m.clone();
            hs.push(std::thread::spawn(move || m2.lock().unwrap().push(i)));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while m.raw().queue_len() < i + 2 {
                assert!(std::time::Instant::now() < deadline, "thread {i} never queued");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(g);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn tas_uses_more_rmw_than_ttas_never_fewer_than_one() {
        let t = TasLock::new();
        assert_eq!(t.lock_counting_rmw(), 1);
        // SAFETY: held by this thread.
        unsafe { t.unlock() };
        let tt = TtasLock::new();
        assert_eq!(tt.lock_counting_rmw(), 1);
        // SAFETY: held by this thread.
        unsafe { tt.unlock() };
    }
}
