//! The header every object file starts with.

use crate::shm::ShmSafe;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// `b"IPCKIT\x01\x00"` as a little-endian `u64`: written *last* at creation, so a file whose
/// magic is right was fully initialized.
pub const MAGIC: u64 = u64::from_le_bytes(*b"IPCKIT\x01\x00");

/// The layout version of [`Header`] and of the kinds' state behind it. An object made by
/// another version is refused with a clear error instead of being misread.
pub const LAYOUT_VERSION: u32 = 1;

/// The fixed part at the start of every object file (128 bytes).
///
/// Every field is an atomic: other processes may update some of them at any time, and a
/// `&Header` into a shared mapping must not assume otherwise. Fields are read once, checked,
/// then used as copies.
///
/// | offset | field | meaning |
/// |---|---|---|
/// | 0 | `magic` | [`MAGIC`], stored last at creation |
/// | 8 | `version` | [`LAYOUT_VERSION`] |
/// | 12 | `kind` | [`ObjectKind`](super::ObjectKind) as a number |
/// | 16 | `state_offset` | where the kind's state starts (>= 128, 8-aligned) |
/// | 20 | `removed` | 0, or 1 once removed: waiters fail with `Removed` (`EIDRM`) |
/// | 24 | `total_size` | the file's size; must equal `fstat`'s |
/// | 32 | `key`, `id` | the object's key and id |
/// | 40 | `creator_uid`, `creator_pid` | who made it |
/// | 48 | `ctime` | creation or last change, seconds since the epoch |
/// | 56 | `mode` | permission bits given at creation (the file's mode is authoritative) |
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    /// [`MAGIC`] once initialized.
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// The object kind.
    pub kind: AtomicU32,
    /// Offset of the kind's state.
    pub state_offset: AtomicU32,
    /// Set by remove.
    pub removed: AtomicU32,
    /// Expected file size.
    pub total_size: AtomicU64,
    /// The key.
    pub key: AtomicI32,
    /// The id.
    pub id: AtomicI32,
    /// Creator's user id.
    pub creator_uid: AtomicU32,
    /// Creator's process id.
    pub creator_pid: AtomicU32,
    /// Creation or last change time.
    pub ctime: AtomicU64,
    /// Mode given at creation.
    pub mode: AtomicU32,
    _reserved0: AtomicU32,
    _reserved: [AtomicU64; 8],
}

// SAFETY: repr(C), only atomics; every bit pattern is a valid value and is validated before it
// is believed; zeroed is "not initialized" (magic 0); no Drop.
#[allow(unsafe_code)]
unsafe impl ShmSafe for Header {}

const _: () = assert!(size_of::<Header>() == Header::SIZE);

impl Header {
    /// Size of the header in bytes.
    pub const SIZE: usize = 128;

    /// True once the object has been removed.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire) != 0
    }

    /// Records a change (`ctime`) now.
    pub fn touch(&self) {
        self.ctime.store(crate::sys::unix_time_secs(), Ordering::Relaxed);
    }
}

/// A plain copy of a header's fields, read from the file without mapping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderCopy {
    pub magic: u64,
    pub version: u32,
    pub kind: u32,
    pub state_offset: u32,
    pub removed: u32,
    pub total_size: u64,
    pub key: i32,
    pub id: i32,
    pub creator_uid: u32,
    pub creator_pid: u32,
    pub ctime: u64,
    pub mode: u32,
}

impl HeaderCopy {
    /// Decodes the first [`Header::SIZE`] bytes of a file.
    pub fn decode(b: &[u8; Header::SIZE]) -> HeaderCopy {
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
        HeaderCopy {
            magic: u64_at(0),
            version: u32_at(8),
            kind: u32_at(12),
            state_offset: u32_at(16),
            removed: u32_at(20),
            total_size: u64_at(24),
            key: u32_at(32) as i32,
            id: u32_at(36) as i32,
            creator_uid: u32_at(40),
            creator_pid: u32_at(44),
            ctime: u64_at(48),
            mode: u32_at(56),
        }
    }
}
