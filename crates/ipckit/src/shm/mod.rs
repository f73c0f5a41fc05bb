//! Shared memory: what may live in it ([`ShmSafe`]), file mappings ([`Mapping`]), and
//! System V style shared memory segments in a namespace ([`Segment`]).
//!
//! ## What may live in memory shared between processes
//!
//! A mapping shared by several processes is read and written by code that the compiler of
//! this process never saw, possibly built from another version of ipckit, possibly hostile.
//! Only *plain data* may live there: fixed size, `#[repr(C)]`, integers and atomics, offsets
//! instead of pointers. [`ShmSafe`] marks such types; every ipckit primitive that works
//! across processes implements it.

#![allow(unsafe_code)] // SAFETY obligations are documented at each block.

/// Marker for types that may be placed in a `MAP_SHARED` mapping used by several processes.
///
/// # Safety
///
/// Implement this only for types that
///
/// * have a stable layout (`#[repr(C)]` or `#[repr(transparent)]`, or a primitive),
/// * contain no pointers or references (a pointer means nothing in another address space),
///   no file descriptors, no `String`/`Vec`/`Box` or other owners of process-local memory,
/// * are valid for *every* bit pattern another process may leave behind, or are only ever
///   read through atomics whose every value the type's code validates (a process can die in
///   the middle of an update, and a hostile process can write anything),
/// * need no `Drop` to run (a process that dies runs no destructor), and
/// * synchronize every access that another process may race with through atomics.
///
/// Zeroed memory (what `ftruncate` gives a new file) must be a valid initial value, or the
/// type must document the two-phase initialization it needs before others may see it.
pub unsafe trait ShmSafe: Sync {}

macro_rules! impl_shm_safe {
    ($($t:ty),*) => { $(
        // SAFETY: primitive integers: any bit pattern is valid, no pointers, no Drop.
        unsafe impl ShmSafe for $t {}
    )* };
}
impl_shm_safe!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

// std's atomics (also under loom: these are the real ones, used in mappings).
mod atomics {
    use super::ShmSafe;
    use std::sync::atomic::*;
    // SAFETY: atomics of integers are `repr(C)`-compatible plain integers accessed atomically.
    unsafe impl ShmSafe for AtomicU8 {}
    // SAFETY: as above.
    unsafe impl ShmSafe for AtomicU16 {}
    // SAFETY: as above.
    unsafe impl ShmSafe for AtomicU32 {}
    // SAFETY: as above.
    unsafe impl ShmSafe for AtomicU64 {}
    // SAFETY: as above.
    unsafe impl ShmSafe for AtomicI32 {}
    // SAFETY: as above.
    unsafe impl ShmSafe for AtomicI64 {}
    // SAFETY: as above.
    unsafe impl ShmSafe for AtomicUsize {}
}

// SAFETY: an array of plain data is plain data.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

mod mapping;
mod segment;
pub use mapping::{Mapping, MappingError};
pub use segment::{AccessError, Attachment, DATA_OFFSET, MAX_SIZE, Segment, SegmentStat};
