//! System V style semaphore sets in user space (`semget`, `semop`, `semctl`).
//!
//! Dijkstra's semaphore (1965) has one counter and two operations that move it by one. The
//! semaphores of System V (AT&T, 1983; today `semget(2)`, `semop(2)`, `semctl(2)`) go
//! further, and ipckit's [`SemaphoreSet`] follows them:
//!
//! * an operation adds or subtracts any amount, or waits until the value is **zero**;
//! * a *set* of semaphores is one object, and a list of operations on several of its
//!   semaphores ([`SemaphoreSet::apply`]) happens **atomically**: all of them, in array order,
//!   as one step, or none;
//! * an operation flagged [`SemFlags::UNDO`] is reversed when the process that made it dies,
//!   however it dies;
//! * sets live in a table — here the [namespace](crate::ns), one file per set — where
//!   `ipckit ls` finds them, as `ipcs -s` does.
//!
//! ## How it works
//!
//! The whole state of a set — values, last pids, the undo table, the waiter table — sits in
//! the set's file behind one robust [`Mutex`](crate::sync::Mutex) (see [`layout`] for the
//! byte layout). `apply` takes the lock (one compare-and-swap when uncontended), evaluates the
//! operations on a private copy of the values they touch, and either commits all of the new
//! values or none. Every commit bumps the futex word `seq` (on a cache line of its own). The
//! repair after a crash also unfreezes every value word (see the fast path below).
//!
//! **Fast path.** A single operation without `UNDO` (a plain P or V, the common case) does
//! not take the lock: it changes the value word with one compare-and-swap. To keep
//! multi-operation steps atomic against it, the lock holder *freezes* (bit 31) every value
//! word it reads before evaluating, and unfreezes it by storing the new value; the fast path
//! never touches a frozen word (it takes the slow path instead). The fast path is inlined
//! into `apply` and its siblings and checks only what it must (a writable handle, the
//! semaphore number, no `UNDO`); everything else, errors included, is decided out of line. So a step never sees half
//! of a fast operation, and never overwrites one. After its CAS the fast path bumps `seq`
//! only if someone spins or waits, and wakes sleepers only if its change can satisfy one.
//!
//! An operation list that cannot proceed first spins *without the lock* while a lock-free
//! snapshot of the values says it would block, watching `seq` (adaptively, like
//! [`spinning_pays`](crate::sync::spinning_pays): not at all when the peer cannot run meanwhile — then it does not even
//! announce itself as a spinner, see `spin_plan`); the lock stays free for the process that
//! will make it possible. When spinning does not pay, the process that can help is most
//! likely waiting for our own CPU: the caller then yields it once (`sched_yield`) and looks
//! again — the peer runs at once, and its change finds nobody registered, so neither side
//! makes a futex call (the yield-before-park step of parking_lot's `SpinWait` and
//! crossbeam's `Backoff::snooze`, made adaptive like the spinning: see `sync`'s `yield_until`). Two
//! processes ping-ponging on one CPU so pay one cheap syscall per wait instead of a
//! `futex_wait` plus a `futex_wake`. If that does not pay either, the caller takes the lock,
//! registers in the waiter table (what `GETNCNT`/`GETZCNT` count; per-semaphore counts are
//! kept beside the values), notes `seq`, unlocks and sleeps on `seq`.
//!
//! A committer wakes the sleepers (`futex_wake`, only if someone sleeps) when its step can
//! satisfy a registered waiter, as Linux decides it: a value grows where a single-operation
//! waiter waits for an increase, or reaches 0 where one waits for zero; waiters with several
//! operations are woken by every change, since any change may complete their list. Each
//! woken waiter re-evaluates its whole list under the lock, so none that a change can
//! satisfy stays asleep (no lost wake-ups), and the others go back to sleep.
//!
//! ### Dying in the middle
//!
//! A process can be killed at any instruction, also while it writes a multi-operation
//! update. Every update of more than one word is therefore journaled: the writer first
//! copies the old value of each semaphore and undo entry it will change into a journal slot
//! and lists it, then sets `journal_active`, writes the new values, and clears
//! `journal_active` (an update of one value is a single store: done or not done). The next
//! holder of the lock gets [`OwnerDied`](crate::sync::LockError::OwnerDied); if the journal
//! is active it rolls every listed item back, so the update is entirely undone, then
//! recounts the waiters and marks the lock consistent. A half-applied operation list is never
//! seen. (A process killed while asleep leaves the `sleeping` count one too high; that only
//! costs spare `futex_wake` calls.)
//!
//! ### Undo
//!
//! The undo table holds (process, semaphore, adjustment) entries, the process named by
//! [`ProcessId`] (pid *and* start time, so a reused pid is not taken
//! for the dead process). An `UNDO` operation adds `-delta` to its entry. Dead owners are
//! found by sweeping the table: a sleeping waiter wakes at least every [`WAIT_SLICE`] to
//! sweep, `get`/`get_all`/`stat` sweep, and `apply` sweeps at most every half
//! [`WAIT_SLICE`] when the table is not empty. A dead owner's adjustments are added to the values (clamped to
//! `0..=`[`SEMVMX`], as Linux does) and the waiters are woken. So a death is repaired within
//! about a quarter of a second when anybody waits, and before anybody can observe the set
//! otherwise.
//!
//! ## Limits
//!
//! | limit | value | System V name and reason |
//! |---|---|---|
//! | semaphores per set | 1..=[`SEMMSL`] (32000) | `SEMMSL`, as on Linux |
//! | value | 0..=[`SEMVMX`] (32767) | `SEMVMX` |
//! | operations per `apply` | [`SEMOPM`] (64) | `SEMOPM` (Linux: 500); bounds the work done under the lock |
//! | undo entries per set | [`UNDO_CAPACITY`] (512) | like `SEMMNU`: (process, semaphore) pairs with a non-zero adjustment; beyond: [`SemError::NoSpace`] |
//! | counted waiters per set | [`WAITER_CAPACITY`] (1024) | beyond, waiters still wait correctly (polling every 5 ms) but are not counted by `GETNCNT`/`GETZCNT` |
//!
//! ## Example
//!
//! ```
//! use ipckit::ns::{Key, Namespace};
//! use ipckit::sem::{SemFlags, SemOp, SemaphoreSet, SemError};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let ns = Namespace::at(dir.path()).unwrap();
//! let set = SemaphoreSet::create(&ns, Key(42), 2, 0o600).unwrap();
//! set.set_all(&[1, 0]).unwrap();
//! // Take semaphore 0 and give semaphore 1 two units, in one atomic step.
//! set.apply(&[SemOp::new(0, -1), SemOp::new(1, 2)]).unwrap();
//! assert_eq!(set.get_all().unwrap(), vec![0, 2]);
//! // Semaphore 0 is empty: a non-blocking take fails and changes nothing.
//! let r = set.apply(&[SemOp::new(1, -1), SemOp::new(0, -1).with(SemFlags::NOWAIT)]);
//! assert!(matches!(r, Err(SemError::WouldBlock)));
//! assert_eq!(set.get_all().unwrap(), vec![0, 2]);
//! set.remove().unwrap();
//! ```

pub mod layout;

use crate::ns::{
    CreateMode, Entry, Header, Key, Namespace, ObjectError, ObjectFile, ObjectKind, OpenAccess,
};
use crate::sync::{LockError, MutexGuard, SIGNAL_SPIN, SpinPlan, spin_as_planned, yield_until};
use crate::sys::{self, FutexWait, Liveness, ProcessId};
use layout::{COMPLEX, Control, Layout, SemSlot, UndoEntry, WaiterRecord};
pub use layout::{UNDO_CAPACITY, WAITER_CAPACITY};
use std::cell::Cell;
use std::fmt;
use std::ops::BitOr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

/// The largest value of a semaphore (`SEMVMX`).
pub const SEMVMX: i32 = 32767;
/// The most semaphores in one set (`SEMMSL`).
pub const SEMMSL: usize = 32000;
/// The most operations in one [`SemaphoreSet::apply`] (`SEMOPM`).
pub const SEMOPM: usize = 64;
/// A waiter sleeps at most this long before it re-checks and sweeps the undo table for dead
/// processes.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);
/// How long a waiter that found the waiter table full sleeps between polls.
const POLL_SLICE: Duration = Duration::from_millis(5);
/// Operation lists up to this long are planned in stack buffers.
const SMALL: usize = 8;
/// Bit of a value word: the holder of the set's lock is evaluating or rewriting this value;
/// the lock-free fast path must not touch it.
const FROZEN: u32 = 1 << 31;
/// The value bits of a value word.
const VALUE_MASK: u32 = 0xffff;

/// The value in a value word.
#[inline]
fn value_of(word: u32) -> i32 {
    (word & VALUE_MASK) as i32
}

/// Flags of one [`SemOp`] (`sem_flg`). Combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SemFlags(u8);

impl SemFlags {
    /// No flag: wait as long as needed, no undo.
    pub const NONE: SemFlags = SemFlags(0);
    /// `IPC_NOWAIT`: if this operation would have to wait, fail with
    /// [`SemError::WouldBlock`] instead and apply nothing.
    pub const NOWAIT: SemFlags = SemFlags(1);
    /// `SEM_UNDO`: reverse this operation when the calling process dies.
    pub const UNDO: SemFlags = SemFlags(2);

    /// True if every flag of `other` is set.
    pub fn contains(self, other: SemFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for SemFlags {
    type Output = SemFlags;
    fn bitor(self, rhs: SemFlags) -> SemFlags {
        SemFlags(self.0 | rhs.0)
    }
}

/// One operation on one semaphore of a set (`struct sembuf`).
///
/// * `delta < 0`: wait until the value is at least `|delta|`, then subtract (P, by any amount);
/// * `delta == 0`: wait until the value is 0;
/// * `delta > 0`: add (V, by any amount); never waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SemOp {
    /// Semaphore number in the set (`sem_num`).
    pub num: u16,
    /// The change (`sem_op`).
    pub delta: i16,
    /// Flags (`sem_flg`).
    pub flags: SemFlags,
}

impl SemOp {
    /// `delta` on semaphore `num`, no flags.
    pub const fn new(num: u16, delta: i16) -> SemOp {
        SemOp { num, delta, flags: SemFlags::NONE }
    }

    /// The same operation with `flags` added.
    pub const fn with(self, flags: SemFlags) -> SemOp {
        SemOp { flags: SemFlags(self.flags.0 | flags.0), ..self }
    }
}

/// Errors of semaphore operations (`apply`, `get`, `set`, ...). The System V `errno` is named
/// in brackets.
#[derive(Debug, thiserror::Error)]
pub enum SemError {
    /// An operation flagged `NOWAIT` would have to wait; nothing was applied (`EAGAIN`).
    #[error("the operation would block (EAGAIN); nothing was applied")]
    WouldBlock,
    /// The timeout of `apply_timeout` passed; nothing was applied (`EAGAIN` from
    /// `semtimedop`).
    #[error("timed out (EAGAIN); nothing was applied")]
    TimedOut,
    /// A value (or an undo adjustment) would leave `0..=32767`; nothing was applied
    /// (`ERANGE`).
    #[error("semaphore {num}: value {value} is out of range 0..=32767 (ERANGE)")]
    OutOfRange {
        /// The semaphore.
        num: usize,
        /// The value it would have had.
        value: i64,
    },
    /// A semaphore number outside the set, an empty operation list, a wrong number of values
    /// (`EINVAL`).
    #[error("invalid argument: {0} (EINVAL)")]
    InvalidArgument(String),
    /// More than [`SEMOPM`] operations in one call (`E2BIG`).
    #[error("{0} operations in one call; at most 64 (E2BIG)")]
    TooManyOperations(usize),
    /// The undo table of the set is full (`ENOSPC`).
    #[error("the set's undo table is full: 512 entries (ENOSPC)")]
    NoSpace,
    /// The set was removed; every waiter gets this (`EIDRM`).
    #[error("the semaphore set was removed (EIDRM)")]
    Removed,
    /// The handle was opened read-only and the call changes the set (`EACCES`).
    #[error("the set was opened read-only (EACCES)")]
    PermissionDenied,
    /// The set's lock cannot be recovered after a crash (`ENOTRECOVERABLE`); remove the set.
    #[error("the set's lock is not recoverable (ENOTRECOVERABLE)")]
    NotRecoverable,
}

/// What `stat()` tells about a set (`semctl(IPC_STAT)`, `struct semid_ds`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SemaphoreSetStat {
    /// The key (`Key::PRIVATE` for a private set).
    pub key: Key,
    /// The id (`semid`).
    pub id: i32,
    /// Owner's user id (the file's owner).
    pub owner_uid: u32,
    /// Creator's user id.
    pub creator_uid: u32,
    /// Creator's process id.
    pub creator_pid: u32,
    /// Permission bits (the file's mode).
    pub mode: u32,
    /// Number of semaphores (`sem_nsems`).
    pub nsems: usize,
    /// Last `apply`, seconds since the epoch; 0 if never (`sem_otime`).
    pub otime: u64,
    /// Creation or last `set`, seconds since the epoch (`sem_ctime`).
    pub ctime: u64,
}

/// The calling thread's spin plan (`sync`'s adaptive budget), or none in tests that turn
/// spinning off.
fn spin_plan(max: Duration) -> SpinPlan {
    #[cfg(test)]
    if tests::NO_SPIN.with(|c| c.get()) {
        return SpinPlan::NONE;
    }
    crate::sync::spin_plan(max)
}

/// Spins (as [`spin_plan`] allows) until `ready()`; returns the last `ready()`.
fn spin_wait(max: Duration, ready: impl FnMut() -> bool) -> bool {
    spin_as_planned(max, spin_plan(max), ready)
}

/// Who is calling: cached per thread (refreshed after `fork`, when the thread id changes).
#[derive(Debug, Clone, Copy)]
struct Me {
    tid: u32,
    pid: u32,
    process: u64,
    thread: u64,
}

thread_local! {
    static ME: Cell<Option<Me>> = const { Cell::new(None) };
}

#[inline]
fn me() -> Me {
    let tid = sys::current_tid();
    match ME.with(Cell::get) {
        Some(m) if m.tid == tid => m,
        _ => me_slow(tid),
    }
}

#[cold]
fn me_slow(tid: u32) -> Me {
    let m = Me {
        tid,
        pid: sys::current_pid(),
        process: ProcessId::current_process().token(),
        thread: ProcessId::current_thread().token(),
    };
    ME.with(|c| c.set(Some(m)));
    m
}

/// What [`SemaphoreSet::wait_state`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemWaitState {
    /// The values now.
    pub values: Vec<u32>,
    /// The threads asleep (or about to sleep) in `apply`.
    pub waiters: Vec<SemWaiter>,
    /// The processes holding units taken with `UNDO`.
    pub holders: Vec<SemHolder>,
}

/// A thread waiting in `apply` (the first operation it cannot do yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemWaiter {
    /// The waiting thread (id and start time).
    pub thread: ProcessId,
    /// The semaphore it waits on.
    pub num: usize,
    /// Waits for the value to become zero (else: to increase).
    pub for_zero: bool,
}

/// A process holding `units` of semaphore `num`: its positive undo adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemHolder {
    /// The process (id and start time).
    pub process: ProcessId,
    /// The semaphore.
    pub num: usize,
    /// Units it holds.
    pub units: u32,
}

/// A semaphore set in a [`Namespace`]: System V's `semget`/`semop`/`semctl` as methods.
///
/// Open it in any number of processes (each opens the file and maps it); all see the same
/// semaphores. See the [module docs](self) for the algorithm and the limits.
pub struct SemaphoreSet {
    obj: ObjectFile,
    nsems: usize,
    base: usize,
    layout: Layout,
    /// Address of the `Control` in the mapping, validated (in bounds, aligned) at open.
    ctl_addr: usize,
    /// Address of the first `SemSlot` (`nsems` of them), validated at open.
    slots_addr: usize,
    /// Address of the object's `Header`, validated at open.
    header_addr: usize,
    /// Opened read-write (`apply` allowed).
    writable: bool,
}

impl fmt::Debug for SemaphoreSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreSet")
            .field("key", &self.obj.key())
            .field("id", &self.obj.id())
            .field("nsems", &self.nsems)
            .finish()
    }
}

/// Where one operation list stopped.
struct Blocked {
    num: usize,
    zero: bool,
    nowait: bool,
}

/// One planned change of an undo entry: index, new (owner, num, adj); owner 0 frees it.
type UndoChange = (usize, u64, u32, i32);

impl SemaphoreSet {
    // ----- opening -------------------------------------------------------------------------

    /// `semget`: opens the set with `key`, or creates it with `nsems` semaphores, all 0,
    /// according to `how`. Returns the set and whether this call created it.
    ///
    /// Errors: `InvalidArgument` if `nsems` is 0 or above [`SEMMSL`] when creating, or above
    /// the existing set's size when opening (`EINVAL`); `NotFound` (`ENOENT`),
    /// `AlreadyExists` (`EEXIST`), `PermissionDenied` (`EACCES`), `Corrupt`, `Io`.
    pub fn obtain(
        ns: &Namespace,
        key: Key,
        nsems: usize,
        mode: u32,
        how: CreateMode,
    ) -> Result<(SemaphoreSet, bool), ObjectError> {
        SemaphoreSet::obtain_with_value(ns, key, nsems, 0, mode, how)
    }

    /// Like [`obtain`](Self::obtain), but a set created by this call starts with every
    /// semaphore at `value` (set before anyone else can open it). `value` must be in
    /// `0..=`[`SEMVMX`].
    pub fn obtain_with_value(
        ns: &Namespace,
        key: Key,
        nsems: usize,
        value: i32,
        mode: u32,
        how: CreateMode,
    ) -> Result<(SemaphoreSet, bool), ObjectError> {
        if nsems == 0 && how != CreateMode::Open {
            return Err(ObjectError::InvalidArgument(
                "a semaphore set needs at least 1 semaphore".into(),
            ));
        }
        if nsems > SEMMSL {
            return Err(ObjectError::InvalidArgument(format!(
                "{nsems} semaphores; a set has at most {SEMMSL} (SEMMSL)"
            )));
        }
        if !(0..=SEMVMX).contains(&value) {
            return Err(ObjectError::InvalidArgument(format!(
                "initial value {value} is out of range 0..={SEMVMX}"
            )));
        }
        let layout = Layout::of(nsems.max(1));
        let (obj, created) =
            ObjectFile::obtain(ns, ObjectKind::Sem, key, how, mode, layout.size, |map, off| {
                let bad = |e: crate::shm::MappingError| ObjectError::InvalidArgument(e.to_string());
                let ctl = map.get::<Control>(off).map_err(bad)?;
                ctl.nsems.store(nsems as u32, Ordering::Relaxed);
                let slots = map.get_slice::<SemSlot>(off + layout.slots, nsems).map_err(bad)?;
                for s in slots {
                    s.value.store(value as u32, Ordering::Relaxed);
                }
                Ok(())
            })?;
        let set = SemaphoreSet::from_object(obj)?;
        if !created && nsems > set.nsems {
            return Err(ObjectError::InvalidArgument(format!(
                "the set with key {key} has {} semaphores, fewer than the {nsems} asked for",
                set.nsems
            )));
        }
        Ok((set, created))
    }

    /// Creates a new set of `nsems` semaphores, all 0 (`IPC_CREAT | IPC_EXCL`; with
    /// [`Key::PRIVATE`], always a new private set). `AlreadyExists` if the key is taken.
    pub fn create(
        ns: &Namespace,
        key: Key,
        nsems: usize,
        mode: u32,
    ) -> Result<SemaphoreSet, ObjectError> {
        Ok(SemaphoreSet::obtain(ns, key, nsems, mode, CreateMode::CreateExclusive)?.0)
    }

    /// Opens the existing set with `key`; `NotFound` if there is none.
    pub fn open(ns: &Namespace, key: Key) -> Result<SemaphoreSet, ObjectError> {
        let obj = ObjectFile::open(ns, ObjectKind::Sem, key, OpenAccess::ReadWrite)?;
        SemaphoreSet::from_object(obj)
    }

    /// Opens the set with `key`, or creates it with `nsems` semaphores (`IPC_CREAT`).
    pub fn open_or_create(
        ns: &Namespace,
        key: Key,
        nsems: usize,
        mode: u32,
    ) -> Result<SemaphoreSet, ObjectError> {
        Ok(SemaphoreSet::obtain(ns, key, nsems, mode, CreateMode::OpenOrCreate)?.0)
    }

    /// Opens the set with id `id` (for private sets, or as `ipcs` shows them).
    pub fn open_id(ns: &Namespace, id: i32) -> Result<SemaphoreSet, ObjectError> {
        let obj = ObjectFile::open_id(ns, ObjectKind::Sem, id, OpenAccess::ReadWrite)?;
        SemaphoreSet::from_object(obj)
    }

    /// Opens the set file at `path` for reading and writing (what `ipckit rm` needs).
    pub fn open_path(path: &Path) -> Result<SemaphoreSet, ObjectError> {
        SemaphoreSet::open_path_with(path, OpenAccess::ReadWrite)
    }

    /// Opens the set file at `path` with `access`. A read-only handle can `get`, `stat`
    /// and count waiters (without sweeping for dead processes); everything else fails with
    /// [`SemError::PermissionDenied`].
    pub fn open_path_with(path: &Path, access: OpenAccess) -> Result<SemaphoreSet, ObjectError> {
        let obj = ObjectFile::open_path(path, ObjectKind::Sem, access)?;
        SemaphoreSet::from_object(obj)
    }

    /// Opens the set a namespace listing found (read-write if permitted, else read-only).
    pub fn open_entry(entry: &Entry) -> Result<SemaphoreSet, ObjectError> {
        match SemaphoreSet::open_path_with(&entry.path, OpenAccess::ReadWrite) {
            Err(ObjectError::PermissionDenied { .. }) => {
                SemaphoreSet::open_path_with(&entry.path, OpenAccess::ReadOnly)
            }
            r => r,
        }
    }

    fn from_object(obj: ObjectFile) -> Result<SemaphoreSet, ObjectError> {
        let base = obj.state_offset();
        let corrupt =
            |reason: String| ObjectError::Corrupt { path: obj.path().to_path_buf(), reason };
        let ctl = obj.mapping().get::<Control>(base).map_err(|e| corrupt(e.to_string()))?;
        let nsems = ctl.nsems.load(Ordering::Relaxed) as usize;
        if nsems == 0 || nsems > SEMMSL {
            return Err(corrupt(format!("{nsems} semaphores in a set")));
        }
        let layout = Layout::of(nsems);
        if base + layout.size != obj.mapping().len() {
            return Err(corrupt(format!(
                "a set of {nsems} semaphores needs {} bytes, the file has {}",
                base + layout.size,
                obj.mapping().len()
            )));
        }
        // Validate the hot parts once; `ctl`, `slots` and `header` then skip the checks.
        let map = obj.mapping();
        let ctl_addr = ctl as *const Control as usize;
        let slots_addr = map
            .get_slice::<SemSlot>(base + layout.slots, nsems)
            .map_err(|e| corrupt(e.to_string()))?
            .as_ptr() as usize;
        let header_addr = obj.header() as *const Header as usize;
        let writable = obj.access() == OpenAccess::ReadWrite;
        Ok(SemaphoreSet { obj, nsems, base, layout, ctl_addr, slots_addr, header_addr, writable })
    }

    // ----- the parts of the state ----------------------------------------------------------

    // The three accessors below run on every `apply`; they use the addresses validated at
    // open instead of re-checking bounds and alignment at each call.

    #[inline]
    #[allow(unsafe_code)]
    fn ctl(&self) -> &Control {
        // SAFETY: `ctl_addr` points into `self.obj`'s mapping, in bounds and aligned for a
        // `Control` (checked by `Mapping::get` at open). The mapping is never remapped or
        // unmapped while `self.obj` lives, and the reference cannot outlive `&self`.
        // `Control` is `ShmSafe`: valid for every bit pattern, shared only through atomics.
        unsafe { &*(self.ctl_addr as *const Control) }
    }

    #[inline]
    #[allow(unsafe_code)]
    fn slots(&self) -> &[SemSlot] {
        // SAFETY: as in `ctl`: `nsems` `SemSlot`s at `slots_addr`, checked by
        // `Mapping::get_slice` at open, in a mapping that lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.slots_addr as *const SemSlot, self.nsems) }
    }

    #[inline]
    #[allow(unsafe_code)]
    fn header(&self) -> &Header {
        // SAFETY: as in `ctl`: the object's header, checked when the object was opened
        // (`ObjectFile::header` returns a reference into the same mapping).
        unsafe { &*(self.header_addr as *const Header) }
    }

    fn undo(&self) -> &[UndoEntry] {
        self.obj
            .mapping()
            .get_slice(self.base + self.layout.undo, UNDO_CAPACITY)
            .expect("validated at open")
    }

    fn undo_saved(&self) -> &[UndoEntry] {
        self.obj
            .mapping()
            .get_slice(self.base + self.layout.undo_saved, UNDO_CAPACITY)
            .expect("validated at open")
    }

    fn undo_journal(&self) -> &[AtomicU32] {
        self.obj
            .mapping()
            .get_slice(self.base + self.layout.undo_journal, UNDO_CAPACITY)
            .expect("validated at open")
    }

    fn waiter_table(&self) -> &[WaiterRecord] {
        self.obj
            .mapping()
            .get_slice(self.base + self.layout.waiters, WAITER_CAPACITY)
            .expect("validated at open")
    }

    /// Number of semaphores in the set.
    pub fn len(&self) -> usize {
        self.nsems
    }

    /// Always false: a set has at least one semaphore.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The set's key.
    pub fn key(&self) -> Key {
        self.obj.key()
    }

    /// The set's id.
    pub fn id(&self) -> i32 {
        self.obj.id()
    }

    /// The set's file.
    pub fn path(&self) -> &Path {
        self.obj.path()
    }

    fn writable(&self) -> Result<(), SemError> {
        if !self.writable {
            return Err(SemError::PermissionDenied);
        }
        Ok(())
    }

    fn check_num(&self, num: usize) -> Result<(), SemError> {
        if num >= self.nsems {
            return Err(SemError::InvalidArgument(format!(
                "semaphore {num} does not exist: the set has {} (0..={})",
                self.nsems,
                self.nsems - 1
            )));
        }
        Ok(())
    }

    fn check_value(num: usize, value: i32) -> Result<(), SemError> {
        if !(0..=SEMVMX).contains(&value) {
            return Err(SemError::OutOfRange { num, value: value as i64 });
        }
        Ok(())
    }

    // ----- the lock, the journal and repair ------------------------------------------------

    /// Takes the set's lock; repairs the state if the previous holder died.
    fn lock(&self) -> Result<MutexGuard<'_, u32>, SemError> {
        match self.ctl().lock.lock() {
            Ok(g) => Ok(g),
            Err(LockError::OwnerDied(g)) => {
                self.repair();
                g.mark_consistent();
                Ok(g)
            }
            Err(_) => Err(SemError::NotRecoverable),
        }
    }

    /// After a holder died: roll back a journaled update in progress, clamp the values,
    /// recount the waiters. Called with the lock held.
    #[cold]
    fn repair(&self) {
        let ctl = self.ctl();
        let slots = self.slots();
        let undo = self.undo();
        if ctl.journal_active.load(Ordering::Acquire) != 0 {
            let nv = (ctl.journal_values.load(Ordering::Relaxed) as usize).min(self.nsems);
            for i in 0..nv {
                let num = slots[i].journal_num.load(Ordering::Relaxed) as usize;
                if num < self.nsems {
                    let old = slots[num].saved.load(Ordering::Relaxed);
                    slots[num].value.store(old, Ordering::Relaxed);
                }
            }
            let nu = (ctl.journal_undo.load(Ordering::Relaxed) as usize).min(UNDO_CAPACITY);
            let saved = self.undo_saved();
            for i in 0..nu {
                let idx = self.undo_journal()[i].load(Ordering::Relaxed) as usize;
                if idx < UNDO_CAPACITY {
                    let s = &saved[idx];
                    undo[idx].num.store(s.num.load(Ordering::Relaxed), Ordering::Relaxed);
                    undo[idx].adj.store(s.adj.load(Ordering::Relaxed), Ordering::Relaxed);
                    undo[idx].owner.store(s.owner.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
            ctl.journal_active.store(0, Ordering::Release);
        }
        for s in slots {
            // Unfreeze what the dead holder froze (the value bits are the valid ones: the
            // journal restored what it had begun to write), and clamp.
            let w = s.value.load(Ordering::Relaxed);
            let v = value_of(w).min(SEMVMX) as u32;
            if w != v {
                s.value.store(v, Ordering::Release);
            }
        }
        if ctl.undo_len.load(Ordering::Relaxed) as usize > UNDO_CAPACITY {
            ctl.undo_len.store(UNDO_CAPACITY as u32, Ordering::Relaxed);
        }
        self.recount_waiters(|_| false);
        // Whatever the dead holder changed, sleepers must re-check.
        ctl.seq.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(&ctl.seq, u32::MAX);
    }

    /// Writes new values and undo entries as one journaled step. Lock held, and every value
    /// word in `values` frozen by the caller (the new values are stored unfrozen). Bumps
    /// `seq`.
    fn commit(&self, values: &[(usize, i32)], undos: &[UndoChange]) {
        let ctl = self.ctl();
        let slots = self.slots();
        if let ([(num, v)], []) = (values, undos) {
            // One store is done or not done: nothing to journal (the common P or V).
            slots[*num].value.store(*v as u32, Ordering::Relaxed);
            ctl.seq.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let undo = self.undo();
        // 1. The journal: old values and the list of what will change.
        for (i, &(num, _)) in values.iter().enumerate() {
            let old = slots[num].value.load(Ordering::Relaxed) & VALUE_MASK;
            slots[num].saved.store(old, Ordering::Relaxed);
            slots[i].journal_num.store(num as u32, Ordering::Relaxed);
        }
        if !undos.is_empty() {
            let saved = self.undo_saved();
            let list = self.undo_journal();
            for (i, &(idx, ..)) in undos.iter().enumerate() {
                let (u, s) = (&undo[idx], &saved[idx]);
                s.owner.store(u.owner.load(Ordering::Relaxed), Ordering::Relaxed);
                s.num.store(u.num.load(Ordering::Relaxed), Ordering::Relaxed);
                s.adj.store(u.adj.load(Ordering::Relaxed), Ordering::Relaxed);
                list[i].store(idx as u32, Ordering::Relaxed);
            }
        }
        ctl.journal_values.store(values.len() as u32, Ordering::Relaxed);
        ctl.journal_undo.store(undos.len() as u32, Ordering::Relaxed);
        // 2. Active. The fence orders the journal (and the flag) before the writes below
        // for a repairer that reads the flag after this process died.
        ctl.journal_active.store(1, Ordering::Relaxed);
        fence(Ordering::Release);
        // 3. The new state.
        for &(num, v) in values {
            slots[num].value.store(v as u32, Ordering::Relaxed);
        }
        for &(idx, owner, num, adj) in undos {
            let u = &undo[idx];
            if owner == 0 {
                u.owner.store(0, Ordering::Relaxed);
            } else {
                u.num.store(num, Ordering::Relaxed);
                u.adj.store(adj as u32, Ordering::Relaxed);
                u.owner.store(owner, Ordering::Relaxed);
                if idx as u32 >= ctl.undo_len.load(Ordering::Relaxed) {
                    ctl.undo_len.store(idx as u32 + 1, Ordering::Relaxed);
                }
            }
        }
        // 4. Done; tell spinners and registered waiters that something changed.
        ctl.journal_active.store(0, Ordering::Release);
        ctl.seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Wakes the sleepers, if any, after a change (`commit` bumped `seq`). Called after
    /// unlocking, when a waiter was registered.
    fn wake_waiters(&self) {
        let ctl = self.ctl();
        // Dekker with `wait_for_change`: we bumped `seq` (every caller did, with a SeqCst
        // read-modify-write), then load `sleeping`; the sleeper increments `sleeping`, then
        // loads `seq`, all four SeqCst. In their single total order, if our load misses the
        // increment, it comes before it, so the bump does too and the sleeper's load sees
        // it. One of us sees the other; no separate fence needed.
        if ctl.sleeping.load(Ordering::SeqCst) != 0 {
            sys::futex_wake(&ctl.seq, u32::MAX);
        }
    }

    /// Reverses the adjustments of dead processes and forgets dead waiters. Lock held.
    /// Returns true if a value changed.
    fn sweep(&self) -> bool {
        let ctl = self.ctl();
        ctl.last_sweep.store(sys::monotonic_now().as_nanos() as u64, Ordering::Relaxed);
        let mut dead_cache: Vec<(u64, bool)> = Vec::new();
        let mut is_dead = |token: u64| -> bool {
            if let Some(&(_, d)) = dead_cache.iter().find(|(t, _)| *t == token) {
                return d;
            }
            let d = sys::liveness(ProcessId::from_token(token)) == Liveness::Dead;
            dead_cache.push((token, d));
            d
        };
        let mut changed = false;
        let undo = self.undo();
        let len = (ctl.undo_len.load(Ordering::Relaxed) as usize).min(UNDO_CAPACITY);
        for (idx, u) in undo.iter().enumerate().take(len) {
            let owner = u.owner.load(Ordering::Relaxed);
            if owner == 0 || !is_dead(owner) {
                continue;
            }
            let num = u.num.load(Ordering::Relaxed) as usize;
            let adj = u.adj.load(Ordering::Relaxed) as i32;
            if num < self.nsems {
                let v = self.freeze(num) as i64;
                let nv = (v + adj as i64).clamp(0, SEMVMX as i64) as i32;
                self.commit(&[(num, nv)], &[(idx, 0, 0, 0)]);
                self.slots()[num].pid.store(ProcessId::from_token(owner).pid, Ordering::Relaxed);
                changed = true;
            } else {
                self.commit(&[], &[(idx, 0, 0, 0)]);
            }
        }
        let mut len = len;
        while len > 0 && undo[len - 1].owner.load(Ordering::Relaxed) == 0 {
            len -= 1;
        }
        ctl.undo_len.store(len as u32, Ordering::Relaxed);
        if ctl.waiters.load(Ordering::Relaxed) != 0 {
            self.recount_waiters(is_dead);
        }
        changed
    }

    /// Frees the waiter records whose owner `is_dead`, then recounts the per-semaphore and
    /// total waiter counts from the table. Lock held.
    fn recount_waiters(&self, mut is_dead: impl FnMut(u64) -> bool) {
        let slots = self.slots();
        for s in slots {
            s.waiting.store(0, Ordering::Relaxed);
        }
        let (mut n, mut complex) = (0, 0);
        for w in self.waiter_table() {
            let owner = w.owner.load(Ordering::Relaxed);
            if owner == 0 {
                continue;
            }
            let what = w.what.load(Ordering::Relaxed);
            let num = ((what & !COMPLEX) >> 1) as usize;
            if is_dead(owner) || num >= self.nsems {
                w.owner.store(0, Ordering::Relaxed);
                continue;
            }
            n += 1;
            complex += (what & COMPLEX != 0) as u32;
            let add = if what & 1 != 0 { 1 << 16 } else { 1 };
            let c = &slots[num].waiting;
            c.store(c.load(Ordering::Relaxed).wrapping_add(add), Ordering::Relaxed);
        }
        self.ctl().waiters.store(n, Ordering::Relaxed);
        self.ctl().complex_waiters.store(complex, Ordering::Relaxed);
    }

    /// Can changing semaphore `num` from `old` to `new` satisfy a registered single-operation
    /// waiter? (Waiters with several operations are woken by every change.) Lock held.
    fn satisfies_someone(&self, num: usize, old: i32, new: i32) -> bool {
        let w = self.slots()[num].waiting.load(Ordering::Relaxed);
        (new > old && w & 0xffff != 0) || (new == 0 && old != 0 && w >> 16 != 0)
    }

    /// Locks, sweeps if writable, runs `f`, unlocks, wakes if the sweep changed something.
    fn locked_read<R>(&self, f: impl FnOnce() -> R) -> Result<R, SemError> {
        if self.obj.access() == OpenAccess::ReadOnly {
            return Ok(f());
        }
        let g = self.lock()?;
        let changed = self.sweep();
        let r = f();
        drop(g);
        if changed {
            self.wake_waiters();
        }
        Ok(r)
    }

    fn register_waiter(&self, me: Me, num: usize, zero: bool, complex: bool) -> Option<usize> {
        let table = self.waiter_table();
        let idx = table.iter().position(|w| w.owner.load(Ordering::Relaxed) == 0)?;
        let flag = if complex { COMPLEX } else { 0 };
        table[idx].what.store(((num as u32) << 1) | zero as u32 | flag, Ordering::Relaxed);
        table[idx].owner.store(me.thread, Ordering::Relaxed);
        let ctl = self.ctl();
        ctl.waiters.store(ctl.waiters.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if complex {
            let c = &ctl.complex_waiters;
            c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        let c = &self.slots()[num].waiting;
        let add = if zero { 1 << 16 } else { 1 };
        c.store(c.load(Ordering::Relaxed).wrapping_add(add), Ordering::Relaxed);
        Some(idx)
    }

    fn unregister_waiter(&self, idx: usize) {
        let w = &self.waiter_table()[idx];
        // A sweep may have freed (and someone reused) it if we were thought dead: only
        // free our own.
        if w.owner.load(Ordering::Relaxed) == me().thread {
            w.owner.store(0, Ordering::Relaxed);
            let ctl = self.ctl();
            let n = ctl.waiters.load(Ordering::Relaxed);
            ctl.waiters.store(n.saturating_sub(1), Ordering::Relaxed);
            let what = w.what.load(Ordering::Relaxed);
            if what & COMPLEX != 0 {
                let c = &ctl.complex_waiters;
                c.store(c.load(Ordering::Relaxed).saturating_sub(1), Ordering::Relaxed);
            }
            if let Some(s) = self.slots().get(((what & !COMPLEX) >> 1) as usize) {
                let sub = if what & 1 != 0 { 1 << 16 } else { 1 };
                let c = s.waiting.load(Ordering::Relaxed);
                // Saturating per half: a count is never taken below zero.
                if (what & 1 != 0 && c >> 16 != 0) || (what & 1 == 0 && c & 0xffff != 0) {
                    s.waiting.store(c - sub, Ordering::Relaxed);
                }
            }
        }
    }

    // ----- semop ---------------------------------------------------------------------------

    /// `semop`: applies all `ops` as one atomic step, in array order, waiting as long as
    /// needed until all of them can proceed together.
    ///
    /// Blocks while some operation cannot proceed (a `delta < 0` larger than the value, or
    /// a `delta == 0` on a non-zero value), unless that operation is flagged `NOWAIT`.
    ///
    /// Errors (nothing is applied): `WouldBlock` (`NOWAIT`), `OutOfRange` (a value or an
    /// undo adjustment would leave `0..=32767`), `InvalidArgument` (a `num` outside the set,
    /// no operations), `TooManyOperations`, `NoSpace` (undo table full), `Removed` (also
    /// while waiting), `PermissionDenied` (read-only handle), `NotRecoverable`.
    ///
    /// ```
    /// # use ipckit::ns::{Key, Namespace};
    /// # use ipckit::sem::{SemOp, SemaphoreSet};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ns = Namespace::at(dir.path()).unwrap();
    /// let set = SemaphoreSet::create(&ns, Key::PRIVATE, 1, 0o600).unwrap();
    /// set.apply(&[SemOp::new(0, 3)]).unwrap();  // V by 3
    /// set.apply(&[SemOp::new(0, -2)]).unwrap(); // P by 2
    /// assert_eq!(set.get(0).unwrap(), 1);
    /// # set.remove().unwrap();
    /// ```
    pub fn apply(&self, ops: &[SemOp]) -> Result<(), SemError> {
        self.apply_inner(ops, None, false)
    }

    /// `semop` with every operation `NOWAIT`: applies `ops` only if that needs no waiting,
    /// else `WouldBlock` and nothing changes. Other errors as [`apply`](Self::apply).
    pub fn try_apply(&self, ops: &[SemOp]) -> Result<(), SemError> {
        self.apply_inner(ops, None, true)
    }

    /// `semtimedop`: like [`apply`](Self::apply), but waits at most `timeout`, then fails
    /// with `TimedOut` having applied nothing.
    pub fn apply_timeout(&self, ops: &[SemOp], timeout: Duration) -> Result<(), SemError> {
        self.apply_inner(ops, Some(Instant::now() + timeout), false)
    }

    /// The lock-free fast path, inlined into the callers: a single operation without `UNDO`
    /// on a writable handle. Everything else, and a fast path that cannot proceed, goes to
    /// [`apply_checked`](Self::apply_checked), which also reports the errors.
    #[inline]
    fn apply_inner(
        &self,
        ops: &[SemOp],
        deadline: Option<Instant>,
        all_nowait: bool,
    ) -> Result<(), SemError> {
        if let [op] = ops {
            if self.writable
                && (op.num as usize) < self.nsems
                && !op.flags.contains(SemFlags::UNDO)
                && self.try_fast(*op, me().pid)
            {
                return Ok(());
            }
        }
        self.apply_checked(ops, deadline, all_nowait)
    }

    /// Checks the arguments, then the slow path (the fast path, if it applies, has just
    /// failed).
    #[inline(never)]
    fn apply_checked(
        &self,
        ops: &[SemOp],
        deadline: Option<Instant>,
        all_nowait: bool,
    ) -> Result<(), SemError> {
        self.writable()?;
        if ops.is_empty() {
            return Err(SemError::InvalidArgument("no operations".into()));
        }
        if ops.len() > SEMOPM {
            return Err(SemError::TooManyOperations(ops.len()));
        }
        for op in ops {
            self.check_num(op.num as usize)?;
        }
        let me = me();
        let fast = match ops {
            [op] if !op.flags.contains(SemFlags::UNDO) => Some(*op),
            _ => None,
        };
        self.apply_slow(ops, deadline, all_nowait, me, fast)
    }

    /// Everything but the fast path: the lock, waiting, undo.
    #[inline(never)]
    fn apply_slow(
        &self,
        ops: &[SemOp],
        deadline: Option<Instant>,
        all_nowait: bool,
        me: Me,
        fast: Option<SemOp>,
    ) -> Result<(), SemError> {
        let ctl = self.ctl();
        let header = self.header();
        // Spin (without the lock) while a snapshot says the operations would block: the
        // lock stays free for the process that will make them possible.
        let mut spin = !all_nowait && !ops.iter().any(|o| o.flags.contains(SemFlags::NOWAIT));
        // Bounds the lock-free spinning when others keep changing the set without ever
        // satisfying us: then we register and sleep.
        let mut optimistic_rounds = 0;
        // None: not registered; Some(Some(i)): waiter record i; Some(None): waiting without
        // a record (the table was full), polling.
        let mut registered: Option<Option<usize>> = None;
        let mut force_sweep = false;
        let (mut small_v, mut small_u) = ([(0usize, 0i32); SMALL], [(0, 0, 0, 0); SMALL]);
        let (mut big_v, mut big_u) = (Vec::new(), Vec::new());
        let (values, undos): (&mut [(usize, i32)], &mut [UndoChange]) = if ops.len() <= SMALL {
            (&mut small_v, &mut small_u)
        } else {
            big_v.resize(ops.len(), (0, 0));
            big_u.resize(ops.len(), (0, 0, 0, 0));
            (&mut big_v, &mut big_u)
        };
        loop {
            if spin && registered.is_none() && optimistic_rounds < 16 && self.snapshot_blocks(ops) {
                optimistic_rounds += 1;
                let plan = spin_plan(SIGNAL_SPIN);
                // No budget (spinning has not paid, e.g. the peer shares our CPU): no
                // spinner is announced; yield the CPU once (if that has paid lately), then
                // the lock.
                if !plan.spins() {
                    let yielded = yield_until(|| {
                        #[cfg(test)]
                        tests::YIELDS.with(|c| c.set(c.get() + 1));
                        !self.snapshot_blocks(ops)
                    });
                    if yielded && !header.is_removed() {
                        if fast.is_some_and(|op| self.try_fast(op, me.pid)) {
                            return Ok(());
                        }
                        continue;
                    }
                } else {
                    // Announce the spinner, then look again (Dekker with the fast path: it
                    // changes a value, then reads `spinners`): either it sees us and bumps
                    // `seq`, or we see its change.
                    ctl.spinners.fetch_add(1, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    let seen = ctl.seq.load(Ordering::Acquire);
                    let hit = !self.snapshot_blocks(ops)
                        || spin_as_planned(SIGNAL_SPIN, plan, || {
                            ctl.seq.load(Ordering::Relaxed) != seen || header.is_removed()
                        });
                    ctl.spinners.fetch_sub(1, Ordering::Release);
                    if hit {
                        if fast.is_some_and(|op| self.try_fast(op, me.pid)) {
                            return Ok(());
                        }
                        continue;
                    }
                }
                spin = false; // spun (or yielded) out: register and sleep
            }
            let g = self.lock()?;
            if let Some(Some(idx)) = registered.take() {
                self.unregister_waiter(idx);
            }
            if header.is_removed() {
                return Err(SemError::Removed);
            }
            let mut swept = false;
            if force_sweep || ctl.undo_len.load(Ordering::Relaxed) != 0 {
                let now = sys::monotonic_now().as_nanos() as u64;
                let last = ctl.last_sweep.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= WAIT_SLICE.as_nanos() as u64 / 2 {
                    swept = self.sweep();
                }
            }
            let waiting = ctl.waiters.load(Ordering::Relaxed) != 0;
            let mut nv = 0;
            let nu = match self.evaluate(ops, me, values, &mut nv, undos) {
                Ok(Ok(nu)) => nu,
                Ok(Err(b)) => {
                    let early = if b.nowait || all_nowait {
                        Some(SemError::WouldBlock)
                    } else if deadline.is_some_and(|d| Instant::now() >= d) {
                        Some(SemError::TimedOut)
                    } else {
                        None
                    };
                    if let Some(e) = early {
                        self.unfreeze(&values[..nv]);
                        drop(g);
                        if swept && waiting {
                            self.wake_waiters();
                        }
                        return Err(e);
                    }
                    // Register, note `seq`, and only then unfreeze: a fast-path change of our
                    // semaphores comes after, sees the registration and bumps `seq`.
                    let idx = self.register_waiter(me, b.num, b.zero, ops.len() > 1);
                    registered = Some(idx);
                    let seen = ctl.seq.load(Ordering::Relaxed);
                    self.unfreeze(&values[..nv]);
                    drop(g);
                    if swept && waiting {
                        self.wake_waiters();
                    }
                    force_sweep = self.wait_for_change(seen, deadline, idx.is_none(), spin);
                    spin = true;
                    continue;
                }
                Err(e) => {
                    self.unfreeze(&values[..nv]);
                    return Err(e);
                }
            };
            // Wake only if this step can satisfy a registered waiter (as Linux does): a
            // value that grows where someone waits for an increase, or reaches 0 where
            // someone waits for zero. Spinners notice the `seq` bump of every commit.
            let wake = swept
                || (waiting && ctl.complex_waiters.load(Ordering::Relaxed) != 0)
                || (waiting
                    && values[..nv].iter().any(|&(num, new)| {
                        let old = value_of(self.slots()[num].value.load(Ordering::Relaxed));
                        self.satisfies_someone(num, old, new)
                    }));
            self.commit(&values[..nv], &undos[..nu]);
            let slots = self.slots();
            for op in ops {
                slots[op.num as usize].pid.store(me.pid, Ordering::Relaxed);
            }
            ctl.otime.store(sys::unix_time_secs_coarse(), Ordering::Relaxed);
            drop(g);
            if wake {
                self.wake_waiters();
            }
            return Ok(());
        }
    }

    /// The lock-free fast path of a single operation without `UNDO`: one compare-and-swap
    /// on the value word, if it is not frozen by the lock holder and the operation can
    /// proceed and stays in range. Returns false to take the slow path (which also reports
    /// the errors). Linearizes at the CAS: a multi-operation step freezes every word it
    /// reads, so it never sees half of a fast operation, nor loses one.
    #[inline]
    fn try_fast(&self, op: SemOp, pid: u32) -> bool {
        let header = self.header();
        if header.is_removed() {
            return false;
        }
        let slot = &self.slots()[op.num as usize];
        let delta = op.delta as i32;
        let mut w = slot.value.load(Ordering::Relaxed);
        loop {
            if w & FROZEN != 0 {
                return false;
            }
            let old = value_of(w);
            let new = old + delta;
            if !(0..=SEMVMX).contains(&new) || (delta == 0 && old != 0) {
                return false;
            }
            if delta == 0 {
                break;
            }
            // SeqCst: Dekker with spinners (they bump `spinners`, then read values) and
            // synchronizes with the Release unfreeze of a registering waiter.
            match slot.value.compare_exchange_weak(
                w,
                new as u32,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.after_fast(op.num as usize, old, new);
                    break;
                }
                Err(cur) => w = cur,
            }
        }
        // Write only what changed: these words share cache lines with state other
        // processes read, and an unchanged store would still take the line exclusively.
        if slot.pid.load(Ordering::Relaxed) != pid {
            slot.pid.store(pid, Ordering::Relaxed);
        }
        let now = sys::unix_time_secs_coarse();
        let otime = &self.ctl().otime;
        if otime.load(Ordering::Relaxed) != now {
            otime.store(now, Ordering::Relaxed);
        }
        true
    }

    /// After a fast-path change from `old` to `new`: if anyone watches, bump `seq`, and wake
    /// the sleepers if the change can satisfy a registered waiter.
    #[inline]
    fn after_fast(&self, num: usize, old: i32, new: i32) {
        let ctl = self.ctl();
        if ctl.spinners.load(Ordering::SeqCst) == 0 && ctl.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        ctl.seq.fetch_add(1, Ordering::SeqCst);
        if ctl.complex_waiters.load(Ordering::Relaxed) != 0 || self.satisfies_someone(num, old, new)
        {
            self.wake_waiters();
        }
    }

    /// Would `ops` block, judging by a lock-free snapshot of the values? Only a hint for
    /// spinning (the answer under the lock decides); false for long lists.
    fn snapshot_blocks(&self, ops: &[SemOp]) -> bool {
        if ops.len() > SMALL {
            return false;
        }
        let slots = self.slots();
        let mut seen = [(0usize, 0i32); SMALL];
        let mut n = 0;
        for op in ops {
            let num = op.num as usize;
            let k = match seen[..n].iter().position(|&(m, _)| m == num) {
                Some(k) => k,
                None => {
                    seen[n] = (num, value_of(slots[num].value.load(Ordering::Acquire)));
                    n += 1;
                    n - 1
                }
            };
            let (cur, d) = (seen[k].1, op.delta as i32);
            if (d < 0 && cur < -d) || (d == 0 && cur != 0) {
                return true;
            }
            seen[k].1 = cur + d;
        }
        false
    }

    /// Evaluates `ops` on a private copy of the values. Lock held. Returns the changes to
    /// commit (counts of `values` and `undos` filled in), or where it blocked.
    /// Freezes each value word it reads and counts it in `*nv`: the caller commits or
    /// [`unfreezes`](Self::unfreeze) `values[..*nv]`.
    fn evaluate(
        &self,
        ops: &[SemOp],
        me: Me,
        values: &mut [(usize, i32)],
        nv: &mut usize,
        undos: &mut [UndoChange],
    ) -> Result<Result<usize, Blocked>, SemError> {
        let mut nu = 0usize;
        *nv = 0;
        for op in ops {
            let num = op.num as usize;
            let k = match values[..*nv].iter().position(|&(n, _)| n == num) {
                Some(k) => k,
                None => {
                    values[*nv] = (num, self.freeze(num));
                    *nv += 1;
                    *nv - 1
                }
            };
            let cur = values[k].1;
            let delta = op.delta as i32;
            let nowait = op.flags.contains(SemFlags::NOWAIT);
            if delta < 0 && cur < -delta {
                return Ok(Err(Blocked { num, zero: false, nowait }));
            }
            if delta == 0 {
                if cur != 0 {
                    return Ok(Err(Blocked { num, zero: true, nowait }));
                }
                continue;
            }
            let next = cur + delta;
            if next > SEMVMX {
                return Err(SemError::OutOfRange { num, value: next as i64 });
            }
            values[k].1 = next;
            if op.flags.contains(SemFlags::UNDO) {
                let j = match undos[..nu].iter().position(|&(_, _, n, _)| n as usize == num) {
                    Some(j) => j,
                    None => {
                        undos[nu] = self.find_undo(me.process, num, &undos[..nu])?;
                        nu += 1;
                        nu - 1
                    }
                };
                let adj = undos[j].3 - delta;
                if !(-SEMVMX - 1..=SEMVMX).contains(&adj) {
                    return Err(SemError::OutOfRange { num, value: adj as i64 });
                }
                undos[j].3 = adj;
                undos[j].1 = if adj == 0 { 0 } else { me.process };
            }
        }
        Ok(Ok(nu))
    }

    /// Freezes value word `num` (so the fast path keeps off) and returns its value. Lock
    /// held; the word is not frozen yet.
    fn freeze(&self, num: usize) -> i32 {
        // AcqRel: sees every fast-path change before it, and orders our later writes.
        let old = self.slots()[num].value.fetch_or(FROZEN, Ordering::AcqRel);
        value_of(old)
    }

    /// Unfreezes the value words of `values` without changing them. Lock held. Release: a
    /// fast-path CAS that sees the unfrozen word also sees everything written before (the
    /// waiter registration in particular).
    fn unfreeze(&self, values: &[(usize, i32)]) {
        let slots = self.slots();
        for &(num, _) in values {
            slots[num].value.fetch_and(!FROZEN, Ordering::Release);
        }
    }

    /// The undo entry of (`owner`, `num`) as a planned change: the existing one, or a free
    /// slot not already planned. Lock held.
    fn find_undo(
        &self,
        owner: u64,
        num: usize,
        planned: &[UndoChange],
    ) -> Result<UndoChange, SemError> {
        let undo = self.undo();
        let len = (self.ctl().undo_len.load(Ordering::Relaxed) as usize).min(UNDO_CAPACITY);
        let mut free = None;
        for (idx, u) in undo.iter().enumerate().take(len) {
            let o = u.owner.load(Ordering::Relaxed);
            if o == owner && u.num.load(Ordering::Relaxed) as usize == num {
                return Ok((idx, owner, num as u32, u.adj.load(Ordering::Relaxed) as i32));
            }
            if o == 0 && free.is_none() && !planned.iter().any(|p| p.0 == idx) {
                free = Some(idx);
            }
        }
        if free.is_none() {
            free = (len..UNDO_CAPACITY).find(|i| !planned.iter().any(|p| p.0 == *i));
        }
        match free {
            Some(idx) => Ok((idx, 0, num as u32, 0)),
            None => Err(SemError::NoSpace),
        }
    }

    /// Waits until `seq` moves away from `seen` (or the set is removed, or the deadline or a
    /// slice passes). Spins first, then sleeps. Returns true if a whole slice passed (time
    /// to sweep for dead processes).
    fn wait_for_change(
        &self,
        seen: u32,
        deadline: Option<Instant>,
        polling: bool,
        spin: bool,
    ) -> bool {
        let ctl = self.ctl();
        let header = self.header();
        if spin
            && spin_wait(SIGNAL_SPIN, || {
                ctl.seq.load(Ordering::Relaxed) != seen || header.is_removed()
            })
        {
            return false;
        }
        let mut slice = if polling { POLL_SLICE } else { WAIT_SLICE };
        #[cfg(test)]
        if tests::NO_SLICE.with(|c| c.get()) {
            // Tests of wake-ups: a lost one must hang (and fail by timeout), not be hidden
            // by the periodic re-check.
            slice = Duration::from_secs(3600);
        }
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            slice = slice.min(left);
        }
        ctl.sleeping.fetch_add(1, Ordering::SeqCst);
        let mut timed_out = false;
        if ctl.seq.load(Ordering::SeqCst) == seen && !header.is_removed() {
            timed_out = sys::futex_wait(&ctl.seq, seen, Some(slice)) == FutexWait::TimedOut;
        }
        ctl.sleeping.fetch_sub(1, Ordering::SeqCst);
        timed_out
    }

    // ----- semctl --------------------------------------------------------------------------

    /// `GETVAL`: the value of semaphore `num`. Sweeps for dead processes first (read-write
    /// handles), so an undo owed by a dead process is already applied.
    ///
    /// Errors: `InvalidArgument` (no such semaphore), `NotRecoverable`.
    pub fn get(&self, num: usize) -> Result<i32, SemError> {
        self.check_num(num)?;
        self.locked_read(|| value_of(self.slots()[num].value.load(Ordering::Relaxed)))
    }

    /// `GETALL`: all values, read in one step under the lock. Sweeps as [`get`](Self::get).
    pub fn get_all(&self) -> Result<Vec<i32>, SemError> {
        self.locked_read(|| {
            self.slots().iter().map(|s| value_of(s.value.load(Ordering::Relaxed))).collect()
        })
    }

    /// `SETVAL`: sets semaphore `num` to `value`, clears every process's undo adjustment for
    /// it (as Linux does) and wakes the waiters it may satisfy.
    ///
    /// Errors: `InvalidArgument`, `OutOfRange` (`value` outside `0..=32767`),
    /// `PermissionDenied`, `NotRecoverable`.
    pub fn set(&self, num: usize, value: i32) -> Result<(), SemError> {
        self.writable()?;
        self.check_num(num)?;
        Self::check_value(num, value)?;
        self.set_values(&[(num, value)])
    }

    /// `SETALL`: sets every value at once (`values.len()` must equal the set's size), clears
    /// all undo adjustments, wakes the waiters. Errors as [`set`](Self::set).
    pub fn set_all(&self, values: &[i32]) -> Result<(), SemError> {
        self.writable()?;
        if values.len() != self.nsems {
            return Err(SemError::InvalidArgument(format!(
                "{} values for a set of {} semaphores",
                values.len(),
                self.nsems
            )));
        }
        for (num, &v) in values.iter().enumerate() {
            Self::check_value(num, v)?;
        }
        let changes: Vec<(usize, i32)> = values.iter().copied().enumerate().collect();
        self.set_values(&changes)
    }

    fn set_values(&self, changes: &[(usize, i32)]) -> Result<(), SemError> {
        let g = self.lock()?;
        if self.obj.is_removed() {
            return Err(SemError::Removed);
        }
        let all = changes.len() == self.nsems;
        let len = (self.ctl().undo_len.load(Ordering::Relaxed) as usize).min(UNDO_CAPACITY);
        let clear: Vec<UndoChange> = self
            .undo()
            .iter()
            .enumerate()
            .take(len)
            .filter(|(_, u)| {
                u.owner.load(Ordering::Relaxed) != 0
                    && (all || u.num.load(Ordering::Relaxed) as usize == changes[0].0)
            })
            .map(|(idx, _)| (idx, 0, 0, 0))
            .collect();
        for &(num, _) in changes {
            self.freeze(num);
        }
        self.commit(changes, &clear);
        let pid = me().pid;
        for &(num, _) in changes {
            self.slots()[num].pid.store(pid, Ordering::Relaxed);
        }
        self.header().touch();
        drop(g);
        self.wake_waiters();
        Ok(())
    }

    /// `GETNCNT`: how many processes (threads) wait for semaphore `num` to increase.
    pub fn waiting_for_increase(&self, num: usize) -> Result<usize, SemError> {
        self.count_waiters(num, false)
    }

    /// `GETZCNT`: how many processes (threads) wait for semaphore `num` to become zero.
    pub fn waiting_for_zero(&self, num: usize) -> Result<usize, SemError> {
        self.count_waiters(num, true)
    }

    fn count_waiters(&self, num: usize, zero: bool) -> Result<usize, SemError> {
        self.check_num(num)?;
        let what = ((num as u32) << 1) | zero as u32;
        self.locked_read(|| {
            self.waiter_table()
                .iter()
                .filter(|w| {
                    w.owner.load(Ordering::Relaxed) != 0
                        && w.what.load(Ordering::Relaxed) & !COMPLEX == what
                })
                .count()
        })
    }

    /// Who waits for which semaphore, and who holds units of which, for live deadlock
    /// detection ([`ns::waits`](crate::ns::waits)). Holders are the processes with a positive
    /// undo adjustment (units taken with `UNDO`); units taken without `UNDO` have no holder.
    /// A consistent snapshot (taken under the lock when the set is open read-write).
    pub fn wait_state(&self) -> Result<SemWaitState, SemError> {
        self.locked_read(|| {
            let values = self
                .slots()
                .iter()
                .map(|s| s.value.load(Ordering::Relaxed).min(SEMVMX as u32))
                .collect();
            let waiters = self
                .waiter_table()
                .iter()
                .filter_map(|w| {
                    let owner = w.owner.load(Ordering::Relaxed);
                    let what = w.what.load(Ordering::Relaxed) & !COMPLEX;
                    let num = (what >> 1) as usize;
                    (owner != 0 && num < self.nsems).then(|| SemWaiter {
                        thread: ProcessId::from_token(owner),
                        num,
                        for_zero: what & 1 != 0,
                    })
                })
                .collect();
            let holders = self
                .undo()
                .iter()
                .filter_map(|u| {
                    let owner = u.owner.load(Ordering::Relaxed);
                    let num = u.num.load(Ordering::Relaxed) as usize;
                    let adj = u.adj.load(Ordering::Relaxed) as i32;
                    (owner != 0 && num < self.nsems && adj > 0).then(|| SemHolder {
                        process: ProcessId::from_token(owner),
                        num,
                        units: adj as u32,
                    })
                })
                .collect();
            SemWaitState { values, waiters, holders }
        })
    }

    /// `GETPID`: the pid of the last process that changed semaphore `num` (0 if none).
    pub fn last_pid(&self, num: usize) -> Result<u32, SemError> {
        self.check_num(num)?;
        Ok(self.slots()[num].pid.load(Ordering::Relaxed))
    }

    /// `IPC_STAT`: key, id, owner, mode, size and times. Sweeps as [`get`](Self::get).
    ///
    /// Errors: `Io` if the file cannot be `fstat`ed.
    pub fn stat(&self) -> Result<SemaphoreSetStat, ObjectError> {
        use std::os::unix::fs::MetadataExt;
        if self.obj.access() == OpenAccess::ReadWrite {
            // Best effort: a broken lock does not stop a listing.
            let _ = self.locked_read(|| ());
        }
        let meta = self.obj.metadata()?;
        let h = self.header();
        Ok(SemaphoreSetStat {
            key: self.obj.key(),
            id: self.obj.id(),
            owner_uid: meta.uid(),
            creator_uid: h.creator_uid.load(Ordering::Relaxed),
            creator_pid: h.creator_pid.load(Ordering::Relaxed),
            mode: meta.mode() & 0o777,
            nsems: self.nsems,
            otime: self.ctl().otime.load(Ordering::Relaxed),
            ctime: h.ctime.load(Ordering::Relaxed),
        })
    }

    /// `IPC_RMID`: removes the set. Its key is free at once; every process waiting in
    /// `apply` wakes with [`SemError::Removed`], and so does every later call on an open
    /// handle.
    ///
    /// Errors: `Removed` (already removed), `PermissionDenied` (not the owner), `Io`.
    pub fn remove(&self) -> Result<(), ObjectError> {
        self.obj.remove()?;
        let ctl = self.ctl();
        if self.obj.access() == OpenAccess::ReadWrite {
            ctl.seq.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake(&ctl.seq, u32::MAX);
        }
        Ok(())
    }

    /// True once the set was removed (by anyone).
    pub fn is_removed(&self) -> bool {
        self.obj.is_removed()
    }
}

#[cfg(test)]
mod tests;
