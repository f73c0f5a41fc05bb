//! [`Mapping`]: a file mapped `MAP_SHARED`, with bounds- and alignment-checked typed access.

use super::ShmSafe;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why a typed view into a [`Mapping`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The requested range does not lie inside the mapping.
    #[error("range {offset}..{offset}+{size} is outside the {len}-byte mapping")]
    OutOfBounds {
        /// Start of the range.
        offset: usize,
        /// Size of the range.
        size: usize,
        /// Length of the mapping.
        len: usize,
    },
    /// The offset is not aligned for the type.
    #[error("offset {offset} is not aligned to {align} bytes")]
    Misaligned {
        /// The offset asked for.
        offset: usize,
        /// The type's alignment.
        align: usize,
    },
}

/// A file (normally on tmpfs, e.g. `/dev/shm`) mapped read-write and shared: every process
/// that maps the same file sees the same bytes.
///
/// Typed access ([`get`](Self::get)) is limited to [`ShmSafe`] types, checked for bounds and
/// alignment. Byte access copies ([`read`](Self::read), [`write`](Self::write)), so no `&[u8]`
/// to memory another process may be changing is ever handed out.
///
/// ```
/// use ipckit::shm::Mapping;
/// use ipckit::sync::Semaphore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("region");
/// let a = Mapping::create(&path, 4096, 0o600).unwrap();
/// let b = Mapping::open(&path).unwrap(); // as another process would
/// a.get::<Semaphore>(0).unwrap().v().unwrap();
/// assert_eq!(b.get::<Semaphore>(0).unwrap().count(), 1);
/// ```
#[derive(Debug)]
pub struct Mapping {
    map: memmap2::MmapRaw,
    file: File,
}

impl Mapping {
    /// Creates `path` (which must not exist: `O_EXCL`), sizes it to `len` zeroed bytes and
    /// maps it. Zeroed memory is a valid initial state for ipckit's primitives.
    pub fn create(path: &Path, len: usize, mode: u32) -> io::Result<Mapping> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let sized = file.set_len(len as u64).and_then(|()| {
            // Reserve the memory now: a full tmpfs then fails here with ENOSPC instead of
            // killing a later writer with SIGBUS.
            crate::sys::allocate(&file, len as u64)
        });
        if let Err(e) = sized {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Self::from_file(file)
    }

    /// Maps an existing file read-write, refusing symbolic links.
    pub fn open(path: &Path) -> io::Result<Mapping> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Self::from_file(file)
    }

    /// Maps an already open file, read-write, at its current size.
    pub fn from_file(file: File) -> io::Result<Mapping> {
        let map = memmap2::MmapOptions::new().map_raw(&file)?;
        Ok(Mapping { map, file })
    }

    /// Maps the first `len` bytes of an already open file, read-write, when the caller knows
    /// the size (saves the `fstat` that [`from_file`](Self::from_file) makes).
    pub fn from_file_len(file: File, len: usize) -> io::Result<Mapping> {
        let map = memmap2::MmapOptions::new().len(len).map_raw(&file)?;
        Ok(Mapping { map, file })
    }

    /// Maps an already open file read-only. Writing through the mapping would fault, so use
    /// only [`read`](Self::read) and [`read_value`](Self::read_value) on it.
    pub fn from_file_read_only(file: File) -> io::Result<Mapping> {
        let map = memmap2::MmapOptions::new().map_raw_read_only(&file)?;
        Ok(Mapping { map, file })
    }

    /// Maps the first `len` bytes of an already open file read-only (see
    /// [`from_file_len`](Self::from_file_len)).
    pub fn from_file_read_only_len(file: File, len: usize) -> io::Result<Mapping> {
        let map = memmap2::MmapOptions::new().len(len).map_raw_read_only(&file)?;
        Ok(Mapping { map, file })
    }

    /// The file behind the mapping.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True for a zero-length mapping.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The first byte (for code that lays out its own structures).
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn check(&self, offset: usize, size: usize, align: usize) -> Result<(), MappingError> {
        let len = self.len();
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(MappingError::OutOfBounds { offset, size, len });
        }
        if (self.as_ptr() as usize + offset) % align != 0 {
            return Err(MappingError::Misaligned { offset, align });
        }
        Ok(())
    }

    /// A shared reference to the `T` at `offset`.
    pub fn get<T: ShmSafe>(&self, offset: usize) -> Result<&T, MappingError> {
        self.check(offset, size_of::<T>(), align_of::<T>())?;
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `&self`; `T:
        // ShmSafe` is valid for every bit pattern (or validates through atomics) and is Sync,
        // mutated by others only through interior mutability.
        Ok(unsafe { &*(self.as_ptr().add(offset) as *const T) })
    }

    /// A slice of `n` `T`s starting at `offset`.
    pub fn get_slice<T: ShmSafe>(&self, offset: usize, n: usize) -> Result<&[T], MappingError> {
        let size = size_of::<T>().checked_mul(n).ok_or(MappingError::OutOfBounds {
            offset,
            size: usize::MAX,
            len: self.len(),
        })?;
        self.check(offset, size, align_of::<T>())?;
        // SAFETY: as in `get`, for `n` consecutive elements.
        Ok(unsafe { std::slice::from_raw_parts(self.as_ptr().add(offset) as *const T, n) })
    }

    /// Copies bytes out of the mapping.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), MappingError> {
        self.check(offset, buf.len(), 1)?;
        // SAFETY: the source range is inside the mapping (checked) and cannot overlap `buf`,
        // which is process-local memory.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// A copy of the `T` at `offset` (for read-only mappings, where a reference to an atomic
    /// could be used to write and fault).
    pub fn read_value<T: ShmSafe + Copy>(&self, offset: usize) -> Result<T, MappingError> {
        self.check(offset, size_of::<T>(), 1)?;
        // SAFETY: in bounds (checked); read_unaligned copies bytes that are valid for every
        // bit pattern of a ShmSafe + Copy type.
        Ok(unsafe { std::ptr::read_unaligned(self.as_ptr().add(offset) as *const T) })
    }

    /// Copies bytes into the mapping.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), MappingError> {
        self.check(offset, data.len(), 1)?;
        // SAFETY: the destination range is inside the mapping (checked); `data` is local.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(offset), data.len())
        };
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::atomic::{AtomicU32, Ordering};

    #[test]
    fn two_mappings_share_bytes_and_bounds_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let a = Mapping::create(&p, 64, 0o600).unwrap();
        let b = Mapping::open(&p).unwrap();
        a.write(8, b"hello").unwrap();
        let mut buf = [0u8; 5];
        b.read(8, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        a.get::<AtomicU32>(0).unwrap().store(7, Ordering::Relaxed);
        assert_eq!(b.get::<AtomicU32>(0).unwrap().load(Ordering::Relaxed), 7);
        assert!(matches!(a.get::<AtomicU32>(62), Err(MappingError::OutOfBounds { .. })));
        assert!(matches!(a.get::<AtomicU32>(1), Err(MappingError::Misaligned { .. })));
        assert!(a.write(60, b"12345").is_err());
        assert!(Mapping::create(&p, 64, 0o600).is_err(), "create is exclusive");
        assert_eq!(a.get_slice::<u32>(0, 16).unwrap().len(), 16);
        assert!(a.get_slice::<u32>(0, 17).is_err());
    }

    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        Mapping::create(&p, 8, 0o600).unwrap();
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert!(Mapping::open(&l).is_err());
    }
}
