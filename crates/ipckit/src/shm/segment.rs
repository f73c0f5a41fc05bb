//! Shared memory segments (`shmget`, `shmat`, `shmdt`, `shmctl`), in user space.
//!
//! A segment is an object file in the [namespace](crate::ns): the [`Header`](crate::ns::Header),
//! the segment's own state, then the user's bytes starting at a page boundary
//! ([`DATA_OFFSET`]), so that typed data laid out by the user is page-aligned.
//!
//! | System V | ipckit |
//! |---|---|
//! | `shmget(key, size, IPC_CREAT\|IPC_EXCL\|mode)` | [`Segment::create`], [`Segment::open`], [`Segment::open_or_create`] |
//! | `shmat(id, NULL, 0)` / `SHM_RDONLY` | [`Segment::attach`] / [`Segment::attach_read_only`] |
//! | `shmdt` | dropping the [`Attachment`] |
//! | `shmctl(IPC_STAT)` | [`Segment::stat`] |
//! | `shmctl(IPC_RMID)` | [`Segment::remove`] |
//!
//! **Attachments are counted by the kernel.** Each attachment opens the file anew and holds
//! a shared `flock` on it; `nattch` is the number of such locks in `/proc/locks`. The kernel
//! drops a lock when its process dies, so a process killed without detaching stops counting
//! at once. A child made by `fork` inherits the attachment, as with System V, and counts
//! separately: a fork hook gives it its own open file and lock (see
//! [`ForkRelock`](crate::sys::ForkRelock)).
//!
//! **No SIGBUS.** The file's storage is reserved at creation (`posix_fallocate`), so a full
//! tmpfs is reported as an error then; and [`Attachment::read`]/[`Attachment::write`] check
//! the file's size before copying, so a segment shrunk behind ipckit's back (only a process
//! with write permission can) is an error, not a crash.

use crate::ns::{CreateMode, Key, Namespace, ObjectError, ObjectFile, ObjectKind, OpenAccess};
use crate::shm::{Mapping, MappingError, ShmSafe};
use crate::sys;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Where the user's bytes start in a segment file.
pub const DATA_OFFSET: usize = 4096;

/// The largest segment: 1 TiB (System V's `SHMMAX` is larger still, but tmpfs is memory).
pub const MAX_SIZE: u64 = 1 << 40;

#[repr(C)]
struct SegmentState {
    size: AtomicU64,
    data_offset: AtomicU64,
    last_pid: AtomicU32,
    _pad: AtomicU32,
    atime: AtomicU64,
    dtime: AtomicU64,
}

// SAFETY: repr(C), atomics only; every value is validated before use (size and offset
// against the file's size); zeroed is "not initialized", which validation rejects; no Drop.
#[allow(unsafe_code)]
unsafe impl ShmSafe for SegmentState {}

/// What [`Segment::stat`] reports (`struct shmid_ds`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentStat {
    /// The key.
    pub key: crate::ns::Key,
    /// The id (`shmid`).
    pub id: i32,
    /// Owner's user id (the file's owner).
    pub owner_uid: u32,
    /// Creator's user id.
    pub creator_uid: u32,
    /// Creator's process id (`shm_cpid`).
    pub creator_pid: u32,
    /// Last process to attach or detach (`shm_lpid`); 0 if none yet.
    pub last_pid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes (`shm_segsz`).
    pub size: u64,
    /// Live attachments (`shm_nattch`).
    pub nattch: usize,
    /// Last attach, seconds since the epoch (0: never).
    pub atime: u64,
    /// Last detach, seconds since the epoch (0: never).
    pub dtime: u64,
    /// Creation or last change.
    pub ctime: u64,
}

/// Errors of reading and writing an [`Attachment`].
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The range is outside the segment (`EINVAL`).
    #[error("bytes {offset}..{end} are outside the {size}-byte segment")]
    OutOfBounds {
        /// Start.
        offset: usize,
        /// End (exclusive).
        end: usize,
        /// Segment size.
        size: usize,
    },
    /// Writing through a read-only attachment (`EACCES`).
    #[error("the segment is attached read-only")]
    ReadOnly,
    /// The file was shrunk behind ipckit's back; touching it would fault.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Typed access at a misaligned offset.
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

/// A shared memory segment in a namespace: a handle like a `shmid`. Attach it to use its
/// bytes.
///
/// ```
/// use ipckit::ns::{Key, Namespace};
/// use ipckit::shm::Segment;
///
/// let dir = tempfile::tempdir().unwrap();
/// let ns = Namespace::at(dir.path()).unwrap();
/// let seg = Segment::create(&ns, Key(0x1234), 4096, 0o600).unwrap();
/// let a = seg.attach().unwrap();
/// a.write(0, b"hello").unwrap();
///
/// // Another process would do the same: open by key, attach, read.
/// let b = Segment::open(&ns, Key(0x1234)).unwrap().attach_read_only().unwrap();
/// let mut buf = [0u8; 5];
/// b.read(0, &mut buf).unwrap();
/// assert_eq!(&buf, b"hello");
/// assert_eq!(seg.stat().unwrap().nattch, 2);
/// seg.remove().unwrap();
/// ```
#[derive(Debug)]
pub struct Segment {
    obj: ObjectFile,
    size: u64,
}

impl Segment {
    /// Creates a segment of `size` zeroed bytes; `AlreadyExists` if the key is taken
    /// (`IPC_CREAT | IPC_EXCL`). `Key::PRIVATE` always creates a new one.
    pub fn create(ns: &Namespace, key: Key, size: u64, mode: u32) -> Result<Segment, ObjectError> {
        Self::obtain(ns, key, size, mode, CreateMode::CreateExclusive)
    }

    /// Opens the segment with `key` (`NotFound` if absent).
    pub fn open(ns: &Namespace, key: Key) -> Result<Segment, ObjectError> {
        Self::from_object(ObjectFile::open(ns, ObjectKind::Shm, key, OpenAccess::ReadOnly)?)
    }

    /// Opens the segment with `key`, creating it if absent (`IPC_CREAT`); with `exclusive`,
    /// an existing key is `AlreadyExists` (`IPC_EXCL`). An existing segment smaller than
    /// `size` is `InvalidArgument`, as with `shmget`.
    pub fn open_or_create(
        ns: &Namespace,
        key: Key,
        size: u64,
        mode: u32,
        exclusive: bool,
    ) -> Result<Segment, ObjectError> {
        let how = if exclusive { CreateMode::CreateExclusive } else { CreateMode::OpenOrCreate };
        Self::obtain(ns, key, size, mode, how)
    }

    /// Opens the segment with id `id`.
    pub fn open_id(ns: &Namespace, id: i32) -> Result<Segment, ObjectError> {
        Self::from_object(ObjectFile::open_id(ns, ObjectKind::Shm, id, OpenAccess::ReadOnly)?)
    }

    /// Opens the segment file at `path` (for listings).
    pub fn open_path(path: &Path) -> Result<Segment, ObjectError> {
        Self::from_object(ObjectFile::open_path(path, ObjectKind::Shm, OpenAccess::ReadOnly)?)
    }

    fn obtain(
        ns: &Namespace,
        key: Key,
        size: u64,
        mode: u32,
        how: CreateMode,
    ) -> Result<Segment, ObjectError> {
        if size == 0 || size > MAX_SIZE {
            return Err(ObjectError::InvalidArgument(format!(
                "segment size {size} is not in 1..={MAX_SIZE}"
            )));
        }
        let state_size = DATA_OFFSET - crate::ns::Header::SIZE + size as usize;
        let (obj, created) =
            ObjectFile::obtain(ns, ObjectKind::Shm, key, how, mode, state_size, |m, off| {
                let s = state(m, off)?;
                s.size.store(size, Ordering::Relaxed);
                s.data_offset.store(DATA_OFFSET as u64, Ordering::Relaxed);
                Ok(())
            })?;
        let seg = Self::from_object(obj)?;
        if !created && seg.size < size {
            return Err(ObjectError::InvalidArgument(format!(
                "segment {} exists with {} bytes, fewer than the {size} asked for",
                seg.key(),
                seg.size
            )));
        }
        Ok(seg)
    }

    fn from_object(obj: ObjectFile) -> Result<Segment, ObjectError> {
        let corrupt = |reason: String| ObjectError::Corrupt { path: obj.path().into(), reason };
        let s = state(obj.mapping(), obj.state_offset())?;
        let size = s.size.load(Ordering::Relaxed);
        let off = s.data_offset.load(Ordering::Relaxed);
        let len = obj.mapping().len() as u64;
        if off != DATA_OFFSET as u64 {
            return Err(corrupt(format!("data offset {off}, expected {DATA_OFFSET}")));
        }
        if off.checked_add(size) != Some(len) || size == 0 {
            return Err(corrupt(format!(
                "segment size {size} does not match the file ({len} bytes)"
            )));
        }
        Ok(Segment { obj, size })
    }

    /// The key.
    pub fn key(&self) -> Key {
        self.obj.key()
    }

    /// The id.
    pub fn id(&self) -> i32 {
        self.obj.id()
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The segment's file.
    pub fn path(&self) -> &Path {
        self.obj.path()
    }

    /// Attaches the segment read-write (`shmat`); needs write permission. Detaches on drop.
    pub fn attach(&self) -> Result<Attachment, ObjectError> {
        self.attach_with(OpenAccess::ReadWrite)
    }

    /// Attaches the segment read-only (`SHM_RDONLY`); needs read permission.
    pub fn attach_read_only(&self) -> Result<Attachment, ObjectError> {
        self.attach_with(OpenAccess::ReadOnly)
    }

    fn attach_with(&self, access: OpenAccess) -> Result<Attachment, ObjectError> {
        if self.obj.is_removed() {
            return Err(ObjectError::Removed);
        }
        // A fresh open file description per attachment: its flock is the attach record.
        let obj = ObjectFile::open_path(self.obj.path(), ObjectKind::Shm, access)?;
        let seg = Segment::from_object(obj)?;
        sys::lock_shared(seg.obj.mapping().file())
            .map_err(|e| ObjectError::io("cannot record the attachment (flock)", e))?;
        let relock = sys::ForkRelock::new(seg.obj.mapping().file());
        let a = Attachment { seg, _relock: relock };
        a.record(true);
        Ok(a)
    }

    /// The segment's status (`IPC_STAT`).
    pub fn stat(&self) -> Result<SegmentStat, ObjectError> {
        let meta = self.obj.metadata()?;
        let h = self.obj.header();
        let s = state(self.obj.mapping(), self.obj.state_offset())?;
        let nattch = sys::count_flocks(meta.dev(), meta.ino())
            .map_err(|e| ObjectError::io("cannot read /proc/locks", e))?;
        Ok(SegmentStat {
            key: self.key(),
            id: self.id(),
            owner_uid: meta.uid(),
            creator_uid: h.creator_uid.load(Ordering::Relaxed),
            creator_pid: h.creator_pid.load(Ordering::Relaxed),
            last_pid: s.last_pid.load(Ordering::Relaxed),
            mode: meta.mode() & 0o777,
            size: self.size,
            nattch,
            atime: s.atime.load(Ordering::Relaxed),
            dtime: s.dtime.load(Ordering::Relaxed),
            ctime: h.ctime.load(Ordering::Relaxed),
        })
    }

    /// Removes the segment (`IPC_RMID`): its key is free at once; attached processes keep
    /// their memory until they detach; then it is gone. New attaches through this handle fail
    /// with `Removed`.
    pub fn remove(&self) -> Result<(), ObjectError> {
        self.obj.remove()
    }
}

fn state(m: &Mapping, off: usize) -> Result<&SegmentState, ObjectError> {
    m.get::<SegmentState>(off).map_err(|e| ObjectError::Corrupt {
        path: Default::default(),
        reason: format!("segment state: {e}"),
    })
}

/// An attached segment: the bytes of a [`Segment`] in this process (`shmat`). Dropping it
/// detaches (`shmdt`).
#[derive(Debug)]
pub struct Attachment {
    seg: Segment,
    /// A child made by `fork` inherits the attachment and counts as attached too.
    _relock: sys::ForkRelock,
}

impl Attachment {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.seg.size as usize
    }

    /// Never true: segments have at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True for a read-only attachment.
    pub fn is_read_only(&self) -> bool {
        self.seg.obj.access() == OpenAccess::ReadOnly
    }

    fn record(&self, attach: bool) {
        if self.is_read_only() {
            return; // the header is not writable through this attachment
        }
        if let Ok(s) = state(self.seg.obj.mapping(), self.seg.obj.state_offset()) {
            s.last_pid.store(sys::current_pid(), Ordering::Relaxed);
            let t = if attach { &s.atime } else { &s.dtime };
            t.store(sys::unix_time_secs(), Ordering::Relaxed);
        }
    }

    fn range(&self, offset: usize, len: usize) -> Result<usize, AccessError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len()).ok_or(
            AccessError::OutOfBounds { offset, end: offset.saturating_add(len), size: self.len() },
        )?;
        let _ = end;
        self.seg.obj.check_size()?;
        Ok(DATA_OFFSET + offset)
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        let at = self.range(offset, buf.len())?;
        Ok(self.seg.obj.mapping().read(at, buf)?)
    }

    /// Copies `data` into the segment at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        if self.is_read_only() {
            return Err(AccessError::ReadOnly);
        }
        let at = self.range(offset, data.len())?;
        Ok(self.seg.obj.mapping().write(at, data)?)
    }

    /// A reference to the `T` at `offset` of a read-write attachment, for the process-shared
    /// primitives (`Mutex`, `Semaphore`, ...) and atomics laid out in the segment.
    ///
    /// The reference trusts that nobody shrinks the file while it is in use (only a process
    /// with write permission could).
    pub fn get<T: ShmSafe>(&self, offset: usize) -> Result<&T, AccessError> {
        if self.is_read_only() {
            return Err(AccessError::ReadOnly);
        }
        let at = self.range(offset, size_of::<T>())?;
        Ok(self.seg.obj.mapping().get::<T>(at)?)
    }

    /// A copy of the `T` at `offset` (works on read-only attachments too).
    pub fn read_value<T: ShmSafe + Copy>(&self, offset: usize) -> Result<T, AccessError> {
        let at = self.range(offset, size_of::<T>())?;
        Ok(self.seg.obj.mapping().read_value::<T>(at)?)
    }

    /// The first byte, for code that manages its own layout. Writing through it on a
    /// read-only attachment faults.
    pub fn as_ptr(&self) -> *mut u8 {
        // The data offset was validated against the mapping's length at attach.
        self.seg.obj.mapping().as_ptr().wrapping_add(DATA_OFFSET)
    }

    /// The segment this attachment belongs to.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.record(false);
        // The flock goes with the file descriptor when the mapping's file closes.
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    use crate::ns::test_namespace as ns;

    #[test]
    fn create_attach_write_read_and_count() {
        let (_d, ns) = ns();
        let seg = Segment::create(&ns, Key(1), 100, 0o600).unwrap();
        assert_eq!(seg.stat().unwrap().nattch, 0);
        let a = seg.attach().unwrap();
        a.write(10, b"abc").unwrap();
        let b = Segment::open(&ns, Key(1)).unwrap().attach_read_only().unwrap();
        let mut buf = [0u8; 3];
        b.read(10, &mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        assert!(matches!(b.write(0, b"x"), Err(AccessError::ReadOnly)));
        assert!(matches!(a.write(99, b"xy"), Err(AccessError::OutOfBounds { .. })));
        assert!(matches!(a.read(usize::MAX, &mut buf), Err(AccessError::OutOfBounds { .. })));
        let st = seg.stat().unwrap();
        assert_eq!(st.nattch, 2);
        assert_eq!(st.size, 100);
        assert_eq!(st.last_pid, std::process::id());
        assert!(st.atime > 0);
        drop(b);
        assert_eq!(seg.stat().unwrap().nattch, 1);
        drop(a);
        let st = seg.stat().unwrap();
        assert_eq!(st.nattch, 0);
        assert!(st.dtime > 0);
    }

    #[test]
    fn sizes_and_exclusive() {
        let (_d, ns) = ns();
        assert!(matches!(
            Segment::create(&ns, Key(2), 0, 0o600),
            Err(ObjectError::InvalidArgument(_))
        ));
        Segment::create(&ns, Key(2), 64, 0o600).unwrap();
        assert!(matches!(
            Segment::create(&ns, Key(2), 64, 0o600),
            Err(ObjectError::AlreadyExists { .. })
        ));
        assert!(matches!(
            Segment::open_or_create(&ns, Key(2), 65, 0o600, false),
            Err(ObjectError::InvalidArgument(_))
        ));
        assert_eq!(Segment::open_or_create(&ns, Key(2), 10, 0o600, false).unwrap().size(), 64);
        assert!(matches!(Segment::open(&ns, Key(3)), Err(ObjectError::NotFound { .. })));
    }

    #[test]
    fn remove_while_attached_keeps_memory_frees_key() {
        let (_d, ns) = ns();
        let seg = Segment::create(&ns, Key(4), 64, 0o600).unwrap();
        let a = seg.attach().unwrap();
        a.write(0, b"kept").unwrap();
        seg.remove().unwrap();
        let mut buf = [0u8; 4];
        a.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"kept");
        assert!(matches!(Segment::open(&ns, Key(4)), Err(ObjectError::NotFound { .. })));
        assert!(matches!(seg.attach(), Err(ObjectError::Removed)));
        let fresh = Segment::create(&ns, Key(4), 64, 0o600).unwrap();
        let mut buf = [1u8; 4];
        fresh.attach().unwrap().read(0, &mut buf).unwrap();
        assert_eq!(buf, [0; 4], "a new segment, not the removed one");
    }

    #[test]
    fn shrunk_file_is_an_error_not_sigbus() {
        let (_d, ns) = ns();
        let seg = Segment::create(&ns, Key(5), 2 * 4096, 0o600).unwrap();
        let a = seg.attach().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(seg.path()).unwrap();
        f.set_len(4096).unwrap(); // hostile shrink
        let mut buf = [0u8; 8];
        let e = a.read(4096 + 100, &mut buf).unwrap_err();
        assert!(e.to_string().contains("resized"), "{e}");
        assert!(a.write(0, b"x").is_err());
        assert!(Segment::open(&ns, Key(5)).is_err());
    }

    #[test]
    fn typed_access_for_shared_primitives() {
        let (_d, ns) = ns();
        let seg = Segment::create(&ns, Key::PRIVATE, 4096, 0o600).unwrap();
        let a = seg.attach().unwrap();
        let sem = a.get::<crate::sync::Semaphore>(0).unwrap();
        sem.v().unwrap();
        let again = Segment::open_id(&ns, seg.id()).unwrap().attach().unwrap();
        assert_eq!(again.get::<crate::sync::Semaphore>(0).unwrap().count(), 1);
        assert_eq!(again.read_value::<u32>(0).unwrap(), 1);
        assert!(a.get::<u64>(3).is_err(), "misaligned");
        assert_eq!(a.as_ptr() as usize % 4096, 0, "data is page-aligned");
    }
}
