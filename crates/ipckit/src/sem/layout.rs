//! The layout of a semaphore set's file after the [`Header`](crate::ns::Header).
//!
//! Every field is an atomic; the ones marked "under the lock" are read and written only by
//! the holder of `Control::lock` (with relaxed orderings: the lock orders them), the others
//! are read without it.
//!
//! | part | size | what |
//! |---|---|---|
//! | `Control` | 128 bytes | line 1: the robust lock, counters, the journal's flag and lengths; line 2: the futex word `seq` |
//! | `[SemSlot; nsems]` | 20 bytes each | value, its journal copy, last pid, one journal list entry, waiter counts |
//! | `[WaiterRecord; WAITER_CAPACITY]` | 16 bytes each | who waits for what (`GETNCNT`, `GETZCNT`) |
//! | `[UndoEntry; UNDO_CAPACITY]` | 16 bytes each | the undo table: (process, semaphore, adjustment) |
//! | `[UndoEntry; UNDO_CAPACITY]` | 16 bytes each | journal copies of undo entries |
//! | `[AtomicU32; UNDO_CAPACITY]` | 4 bytes each | the journal's list of undo entries touched |

#![allow(unsafe_code)] // only the ShmSafe marker impls below.

use crate::shm::ShmSafe;
use crate::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Undo-table capacity of one set: (process, semaphore) pairs with a non-zero adjustment.
pub const UNDO_CAPACITY: usize = 512;
/// Waiter records of one set: processes or threads counted by `GETNCNT`/`GETZCNT`.
pub const WAITER_CAPACITY: usize = 1024;

/// The fixed part of a set's state: two cache lines. The first holds the lock and what its
/// holder reads and writes; the second the futex word `seq`, which spinning waiters read in
/// a loop — apart, so that their reads do not steal the lock's line from the holder at
/// every access (false sharing).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    /// Guards everything marked "under the lock". Robust: the next holder after a death
    /// repairs from the journal. The `u32` inside is unused.
    pub lock: Mutex<u32>,
    /// Number of semaphores (set at creation, never changed).
    pub nsems: AtomicU32,
    /// Waiters registered in the waiter table (under the lock).
    pub waiters: AtomicU32,
    /// 1 while a journaled update is being written (under the lock).
    pub journal_active: AtomicU32,
    /// Entries in the journal's value list (under the lock).
    pub journal_values: AtomicU32,
    /// Entries in the journal's undo list (under the lock).
    pub journal_undo: AtomicU32,
    /// One past the highest undo entry ever used (under the lock).
    pub undo_len: AtomicU32,
    /// Last successful `apply`, seconds since the epoch (`sem_otime`).
    pub otime: AtomicU64,
    /// Monotonic nanoseconds of the last sweep for dead processes.
    pub last_sweep: AtomicU64,
    /// The futex word: bumped (under the lock) by every change.
    pub seq: AtomicU32,
    /// Threads about to sleep or asleep on `seq` (Dekker with the bump; not under the lock).
    pub sleeping: AtomicU32,
    /// Registered waiters with more than one operation (under the lock): any change may
    /// satisfy them, so every change wakes them.
    pub complex_waiters: AtomicU32,
    /// Threads spinning without the lock, watching `seq` (not under the lock): the lock-free
    /// fast path bumps `seq` only when someone watches.
    pub spinners: AtomicU32,
    _pad: [AtomicU32; 12],
}

/// One semaphore.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SemSlot {
    /// The value, 0..=SEMVMX (under the lock to write; readable without it as a snapshot).
    pub value: AtomicU32,
    /// The journal's copy of `value` before the update in progress.
    pub saved: AtomicU32,
    /// Pid of the last process that changed it (`sempid`).
    pub pid: AtomicU32,
    /// Entry `i` of the journal's value list is stored in slot `i` (not slot `num`).
    pub journal_num: AtomicU32,
    /// Registered waiters blocked on this semaphore (under the lock): bits 0..16 wait for
    /// an increase, bits 16..32 for zero. Kept in step with the waiter table, recounted from
    /// it after a crash; tells a committer whether its change can satisfy a sleeper.
    pub waiting: AtomicU32,
}

/// One entry of the undo table; `owner == 0` is free.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct UndoEntry {
    /// [`ProcessId::token`](crate::sys::ProcessId::token) of the process.
    pub owner: AtomicU64,
    /// Semaphore number.
    pub num: AtomicU32,
    /// The adjustment to apply at its death, an `i32` stored as bits.
    pub adj: AtomicU32,
}

/// Bit of [`WaiterRecord::what`]: the waiter's list has more than one operation.
pub(crate) const COMPLEX: u32 = 1 << 31;

/// One waiter; `owner == 0` is free.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct WaiterRecord {
    /// [`ProcessId::token`](crate::sys::ProcessId::token) of the waiting thread.
    pub owner: AtomicU64,
    /// `num << 1 | 1` for "waits for zero", `num << 1` for "waits for an increase"; bit 31
    /// (`COMPLEX`) set if the waiter's list has more than one operation.
    pub what: AtomicU32,
    _pad: AtomicU32,
}

// SAFETY: repr(C), only atomics and a robust Mutex<u32> (itself ShmSafe); every value is
// validated where it matters (nsems against the file size at open, semaphore numbers against
// nsems before indexing, journal indices against capacities, values clamped); zeroed memory
// is a valid empty state; no Drop. The same holds for the three types below.
unsafe impl ShmSafe for Control {}
// SAFETY: see above.
unsafe impl ShmSafe for SemSlot {}
// SAFETY: see above.
unsafe impl ShmSafe for UndoEntry {}
// SAFETY: see above.
unsafe impl ShmSafe for WaiterRecord {}

const _: () = assert!(size_of::<Control>() == 128);
const _: () = assert!(std::mem::offset_of!(Control, seq) == 64);
const _: () = assert!(size_of::<SemSlot>() == 20);
const _: () = assert!(size_of::<UndoEntry>() == 16);
const _: () = assert!(size_of::<WaiterRecord>() == 16);

/// Offsets of the parts, relative to the start of the state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub slots: usize,
    pub undo: usize,
    pub undo_saved: usize,
    pub undo_journal: usize,
    pub waiters: usize,
    pub size: usize,
}

impl Layout {
    pub fn of(nsems: usize) -> Layout {
        // What `apply` touches comes first, so that a small set's hot state shares a page
        // with the header (fewer TLB misses after a context switch).
        let slots = size_of::<Control>();
        let waiters = slots + nsems * size_of::<SemSlot>();
        let waiters = waiters.next_multiple_of(8);
        let undo = waiters + WAITER_CAPACITY * size_of::<WaiterRecord>();
        let undo_saved = undo + UNDO_CAPACITY * size_of::<UndoEntry>();
        let undo_journal = undo_saved + UNDO_CAPACITY * size_of::<UndoEntry>();
        let size = undo_journal + UNDO_CAPACITY * 4;
        Layout { slots, undo, undo_saved, undo_journal, waiters, size }
    }
}
