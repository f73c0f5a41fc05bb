//! Opening, creating and removing object files, with validation of everything read.

use super::header::HeaderCopy;
use super::{Header, Key, LAYOUT_VERSION, MAGIC, Namespace, ObjectError, ObjectKind};
use crate::shm::Mapping;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// How to obtain an object (`msgget`/`shmget`/`semget` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// Open an existing object only (no `IPC_CREAT`): `NotFound` if absent.
    Open,
    /// Open it, or create it if absent (`IPC_CREAT`).
    OpenOrCreate,
    /// Create it; `AlreadyExists` if the key is taken (`IPC_CREAT | IPC_EXCL`).
    CreateExclusive,
}

/// Read-write or read-only access to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAccess {
    /// Needs read and write permission.
    ReadWrite,
    /// Needs read permission only.
    ReadOnly,
}

/// A line of the object table: what listing the namespace tells about one object, read
/// from its header without mapping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Kind.
    pub kind: ObjectKind,
    /// Key (`Key::PRIVATE` for private objects).
    pub key: Key,
    /// Id.
    pub id: i32,
    /// The object's file.
    pub path: PathBuf,
    /// Owner's user id (the file's owner).
    pub owner_uid: u32,
    /// Permission bits (the file's mode).
    pub mode: u32,
    /// Creator's user id.
    pub creator_uid: u32,
    /// Creator's process id.
    pub creator_pid: u32,
    /// Creation or last change time (seconds since the epoch).
    pub ctime: u64,
    /// The file's size.
    pub file_size: u64,
}

fn open_error(
    e: io::Error,
    path: &Path,
    kind: ObjectKind,
    what: impl FnOnce() -> String,
) -> ObjectError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => ObjectError::NotFound { kind, what: what() },
        Some(libc::EACCES) | Some(libc::EPERM) => {
            ObjectError::PermissionDenied { path: path.to_path_buf() }
        }
        Some(libc::ELOOP) => ObjectError::Corrupt {
            path: path.to_path_buf(),
            reason: "it is a symbolic link (refused)".into(),
        },
        _ => ObjectError::io(format!("cannot open {}", path.display()), e),
    }
}

/// Reads and validates the header of an open file; returns it and the file's metadata.
fn validate(
    file: &File,
    path: &Path,
    kind: ObjectKind,
) -> Result<(HeaderCopy, std::fs::Metadata), ObjectError> {
    let corrupt = |reason: String| ObjectError::Corrupt { path: path.to_path_buf(), reason };
    let meta = file.metadata().map_err(|e| ObjectError::io("fstat", e))?;
    if !meta.file_type().is_file() {
        return Err(corrupt("not a regular file".into()));
    }
    if meta.len() < Header::SIZE as u64 {
        return Err(corrupt(format!("{} bytes, too short for a header", meta.len())));
    }
    let mut raw = [0u8; Header::SIZE];
    file.read_exact_at(&mut raw, 0).map_err(|e| ObjectError::io("reading the header", e))?;
    let h = HeaderCopy::decode(&raw);
    if h.magic != MAGIC {
        return Err(corrupt("no ipckit magic: not made by ipckit, or not fully created".into()));
    }
    if h.version != LAYOUT_VERSION {
        return Err(corrupt(format!(
            "layout version {} (this ipckit reads version {LAYOUT_VERSION})",
            h.version
        )));
    }
    match ObjectKind::from_u32(h.kind) {
        Some(k) if k == kind => {}
        Some(k) => return Err(corrupt(format!("it is a {k} object, not a {kind}"))),
        None => return Err(corrupt(format!("unknown kind {}", h.kind))),
    }
    if h.total_size != meta.len() {
        return Err(corrupt(format!(
            "the file has {} bytes but its header says {} (truncated or resized)",
            meta.len(),
            h.total_size
        )));
    }
    let so = h.state_offset as u64;
    if so < Header::SIZE as u64 || so % 8 != 0 || so > meta.len() {
        return Err(corrupt(format!("state offset {so} out of range")));
    }
    Ok((h, meta))
}

impl Entry {
    /// Reads the entry of the object file at `path`. Needs read permission on the object, so
    /// a listing shows the objects the caller may read.
    pub fn read(path: &Path, kind: ObjectKind) -> Result<Entry, ObjectError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| open_error(e, path, kind, || format!("file {}", path.display())))?;
        let (h, meta) = validate(&file, path, kind)?;
        Ok(Entry {
            kind,
            key: Key(h.key),
            id: h.id,
            path: path.to_path_buf(),
            owner_uid: meta.uid(),
            mode: meta.mode() & 0o777,
            creator_uid: h.creator_uid,
            creator_pid: h.creator_pid,
            ctime: h.ctime,
            file_size: meta.len(),
        })
    }
}

/// An object file: opened, validated and mapped. The kinds (`shm`, `mq`, `sem`) build on it.
#[derive(Debug)]
pub struct ObjectFile {
    map: Mapping,
    path: PathBuf,
    kind: ObjectKind,
    key: Key,
    id: i32,
    state_offset: usize,
    ino: u64,
    access: OpenAccess,
}

impl ObjectFile {
    /// Opens the object of `kind` with `key`, or creates it with `state_size` bytes of state
    /// (zeroed, then `init` runs on the mapping before anyone else can see it).
    ///
    /// Returns the object and whether this call created it. `init` gets the mapping and the
    /// state's offset in it.
    pub fn obtain(
        ns: &Namespace,
        kind: ObjectKind,
        key: Key,
        how: CreateMode,
        mode: u32,
        state_size: usize,
        init: impl FnOnce(&Mapping, usize) -> Result<(), ObjectError>,
    ) -> Result<(ObjectFile, bool), ObjectError> {
        if mode & !0o777 != 0 {
            return Err(ObjectError::InvalidArgument(format!(
                "mode {mode:o} has bits beyond 0777"
            )));
        }
        if key.is_private() {
            if how == CreateMode::Open {
                return Err(ObjectError::InvalidArgument(
                    "Key::PRIVATE always creates: open a private object by id".into(),
                ));
            }
        } else if how != CreateMode::CreateExclusive {
            match ObjectFile::open(ns, kind, key, OpenAccess::ReadWrite) {
                Ok(o) => return Ok((o, false)),
                Err(ObjectError::NotFound { .. }) if how == CreateMode::OpenOrCreate => {}
                Err(e) => return Err(e),
            }
        }
        let id = ns.next_id()?;
        let final_path =
            if key.is_private() { ns.private_path(kind, id) } else { ns.path_of(kind, key) };
        let state_offset = Header::SIZE;
        let total = state_offset + state_size;
        let tmp = ns.temp_path();
        let map = Mapping::create(&tmp, total, mode)
            .map_err(|e| ObjectError::io(format!("cannot create {}", tmp.display()), e))?;
        let cleanup = TempGuard(&tmp);
        // The umask may have cleared bits: System V modes are taken as given.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ObjectError::io("chmod", e))?;
        let h = map.get::<Header>(0).map_err(|e| ObjectError::io("map", io::Error::other(e)))?;
        h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        h.kind.store(kind as u32, Ordering::Relaxed);
        h.state_offset.store(state_offset as u32, Ordering::Relaxed);
        h.total_size.store(total as u64, Ordering::Relaxed);
        h.key.store(key.0, Ordering::Relaxed);
        h.id.store(id, Ordering::Relaxed);
        h.creator_uid.store(crate::sys::current_uid(), Ordering::Relaxed);
        h.creator_pid.store(crate::sys::current_pid(), Ordering::Relaxed);
        h.mode.store(mode, Ordering::Relaxed);
        h.touch();
        init(&map, state_offset)?;
        // Release: everything above is visible to whoever sees the magic.
        h.magic.store(MAGIC, Ordering::Release);
        match std::fs::hard_link(&tmp, &final_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                drop(cleanup);
                return match how {
                    CreateMode::OpenOrCreate => {
                        // Another process created it first: use theirs.
                        ObjectFile::open(ns, kind, key, OpenAccess::ReadWrite).map(|o| (o, false))
                    }
                    _ => Err(ObjectError::AlreadyExists { kind, key }),
                };
            }
            Err(e) => {
                return Err(ObjectError::io(format!("cannot publish {}", final_path.display()), e));
            }
        }
        drop(cleanup);
        let ino = map.file().metadata().map_err(|e| ObjectError::io("fstat", e))?.ino();
        Ok((
            ObjectFile {
                map,
                path: final_path,
                kind,
                key,
                id,
                state_offset,
                ino,
                access: OpenAccess::ReadWrite,
            },
            true,
        ))
    }

    /// Opens the existing object of `kind` with `key`.
    pub fn open(
        ns: &Namespace,
        kind: ObjectKind,
        key: Key,
        access: OpenAccess,
    ) -> Result<ObjectFile, ObjectError> {
        if key.is_private() {
            return Err(ObjectError::InvalidArgument(
                "Key::PRIVATE names no object: open a private object by id".into(),
            ));
        }
        let path = ns.path_of(kind, key);
        ObjectFile::open_path(&path, kind, access).map_err(|e| match e {
            ObjectError::NotFound { kind, .. } => {
                ObjectError::NotFound { kind, what: format!("key {key}") }
            }
            e => e,
        })
    }

    /// Opens the object of `kind` with id `id`.
    pub fn open_id(
        ns: &Namespace,
        kind: ObjectKind,
        id: i32,
        access: OpenAccess,
    ) -> Result<ObjectFile, ObjectError> {
        let e = ns.find_id(kind, id)?;
        ObjectFile::open_path(&e.path, kind, access)
    }

    /// Opens the object file at `path`, validating it.
    pub fn open_path(
        path: &Path,
        kind: ObjectKind,
        access: OpenAccess,
    ) -> Result<ObjectFile, ObjectError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == OpenAccess::ReadWrite)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| open_error(e, path, kind, || format!("file {}", path.display())))?;
        let (h, meta) = validate(&file, path, kind)?;
        // The size was just validated against fstat: map exactly that.
        let len = h.total_size as usize;
        let map = match access {
            OpenAccess::ReadWrite => Mapping::from_file_len(file, len),
            OpenAccess::ReadOnly => Mapping::from_file_read_only_len(file, len),
        }
        .map_err(|e| ObjectError::io(format!("cannot map {}", path.display()), e))?;
        if map.len() as u64 != h.total_size {
            return Err(ObjectError::Corrupt {
                path: path.to_path_buf(),
                reason: "the file changed size while being opened".into(),
            });
        }
        Ok(ObjectFile {
            map,
            path: path.to_path_buf(),
            kind,
            key: Key(h.key),
            id: h.id,
            state_offset: h.state_offset as usize,
            ino: meta.ino(),
            access,
        })
    }

    /// The header. Its fields are atomics: read them once, check, use the copy.
    pub fn header(&self) -> &Header {
        // The header was validated at open: in bounds and aligned (mappings are page-aligned).
        self.map.get::<Header>(0).expect("validated at open")
    }

    /// The mapping of the whole file.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// Offset of the kind's state in the mapping.
    pub fn state_offset(&self) -> usize {
        self.state_offset
    }

    /// The object's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Kind.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// Key.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// How the object was opened.
    pub fn access(&self) -> OpenAccess {
        self.access
    }

    /// The file's current metadata (owner, mode, size).
    pub fn metadata(&self) -> Result<std::fs::Metadata, ObjectError> {
        self.map.file().metadata().map_err(|e| ObjectError::io("fstat", e))
    }

    /// Fails with `Corrupt` if the file no longer has the size it had at open (a process
    /// with write permission truncated it): touching the lost pages would raise SIGBUS.
    pub fn check_size(&self) -> Result<(), ObjectError> {
        let len = self.metadata()?.len();
        if len != self.map.len() as u64 {
            return Err(ObjectError::Corrupt {
                path: self.path.clone(),
                reason: format!("the file was resized to {len} bytes behind ipckit's back"),
            });
        }
        Ok(())
    }

    /// `IPC_RMID`: marks the object removed (waiters fail with `Removed`) and unlinks its
    /// file, so its key is free at once. Processes that have it open keep their mapping until
    /// they drop it. Only the owner (or root) may remove an object in a shared namespace.
    ///
    /// The kinds call this, then wake their sleepers.
    pub fn remove(&self) -> Result<(), ObjectError> {
        // Make sure the name still refers to *our* file (the key may have been removed and
        // created again by someone else).
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.ino() == self.ino => {}
            Ok(_) | Err(_) => return Err(ObjectError::Removed),
        }
        std::fs::remove_file(&self.path).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                ObjectError::PermissionDenied { path: self.path.clone() }
            }
            Some(libc::ENOENT) => ObjectError::Removed,
            _ => ObjectError::io(format!("cannot remove {}", self.path.display()), e),
        })?;
        if self.access == OpenAccess::ReadWrite {
            self.header().removed.store(1, Ordering::Release);
        }
        Ok(())
    }

    /// True once the object was removed (by anyone).
    pub fn is_removed(&self) -> bool {
        self.header().is_removed()
    }
}

/// Removes a temporary file when dropped.
struct TempGuard<'a>(&'a Path);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    use crate::ns::test_namespace as ns;

    fn make(ns: &Namespace, key: Key, how: CreateMode) -> Result<(ObjectFile, bool), ObjectError> {
        ObjectFile::obtain(ns, ObjectKind::Shm, key, how, 0o600, 64, |_, _| Ok(()))
    }

    #[test]
    fn create_open_exclusive_and_not_found() {
        let (_d, ns) = ns();
        let (a, created) = make(&ns, Key(7), CreateMode::CreateExclusive).unwrap();
        assert!(created);
        assert!(matches!(
            make(&ns, Key(7), CreateMode::CreateExclusive),
            Err(ObjectError::AlreadyExists { .. })
        ));
        let (b, created) = make(&ns, Key(7), CreateMode::OpenOrCreate).unwrap();
        assert!(!created);
        assert_eq!(a.id(), b.id());
        assert!(matches!(make(&ns, Key(8), CreateMode::Open), Err(ObjectError::NotFound { .. })));
        assert!(matches!(
            ObjectFile::open(&ns, ObjectKind::Mq, Key(7), OpenAccess::ReadWrite),
            Err(ObjectError::NotFound { .. })
        ));
        let entries = ns.entries(None).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key, Key(7));
        assert_eq!(entries[0].mode, 0o600);
        assert_eq!(ns.find_id(ObjectKind::Shm, a.id()).unwrap().key, Key(7));
    }

    #[test]
    fn private_objects_are_always_new_and_ids_unique() {
        let (_d, ns) = ns();
        let (a, _) = make(&ns, Key::PRIVATE, CreateMode::OpenOrCreate).unwrap();
        let (b, _) = make(&ns, Key::PRIVATE, CreateMode::OpenOrCreate).unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(ns.entries(Some(ObjectKind::Shm)).unwrap().len(), 2);
        let o = ObjectFile::open_id(&ns, ObjectKind::Shm, b.id(), OpenAccess::ReadOnly).unwrap();
        assert_eq!(o.key(), Key::PRIVATE);
    }

    #[test]
    fn remove_frees_the_key_and_keeps_the_mapping() {
        let (_d, ns) = ns();
        let (a, _) = make(&ns, Key(1), CreateMode::CreateExclusive).unwrap();
        a.mapping().write(a.state_offset(), b"still here").unwrap();
        a.remove().unwrap();
        assert!(a.is_removed());
        let mut buf = [0u8; 10];
        a.mapping().read(a.state_offset(), &mut buf).unwrap();
        assert_eq!(&buf, b"still here");
        let (b, created) = make(&ns, Key(1), CreateMode::CreateExclusive).unwrap();
        assert!(created);
        assert_ne!(a.id(), b.id());
        assert!(matches!(a.remove(), Err(ObjectError::Removed)), "must not remove the new one");
        assert!(ns.path_of(ObjectKind::Shm, Key(1)).exists());
    }

    #[test]
    fn foreign_corrupt_truncated_and_symlinked_files_are_refused() {
        let (_d, ns) = ns();
        let path = ns.path_of(ObjectKind::Shm, Key(2));
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let e = ObjectFile::open(&ns, ObjectKind::Shm, Key(2), OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("not made by ipckit"), "{e}");
        std::fs::write(&path, b"tiny").unwrap();
        let e = ObjectFile::open(&ns, ObjectKind::Shm, Key(2), OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        std::fs::remove_file(&path).unwrap();

        let (a, _) = make(&ns, Key(3), CreateMode::CreateExclusive).unwrap();
        let f = OpenOptions::new().write(true).open(a.path()).unwrap();
        f.set_len(100).unwrap();
        let e = ObjectFile::open(&ns, ObjectKind::Shm, Key(3), OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("too short") || e.to_string().contains("truncated"), "{e}");
        f.set_len(4000).unwrap();
        let e = ObjectFile::open(&ns, ObjectKind::Shm, Key(3), OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("truncated or resized"), "{e}");
        assert!(a.check_size().is_err());

        let (b, _) = make(&ns, Key(4), CreateMode::CreateExclusive).unwrap();
        // Wrong kind, wrong version.
        let e =
            ObjectFile::open_path(b.path(), ObjectKind::Sem, OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("not a sem"), "{e}");
        b.header().version.store(99, Ordering::Relaxed);
        let e = ObjectFile::open(&ns, ObjectKind::Shm, Key(4), OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("layout version 99"), "{e}");

        let link = ns.path_of(ObjectKind::Shm, Key(5));
        std::os::unix::fs::symlink(a.path(), &link).unwrap();
        let e = ObjectFile::open(&ns, ObjectKind::Shm, Key(5), OpenAccess::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Listing skips what is not a valid object.
        assert!(ns.entries(None).unwrap().iter().all(|e| e.key != Key(5) && e.key != Key(2)));
    }

    #[test]
    fn half_made_objects_are_invisible_and_collected() {
        let (_d, ns) = ns();
        let r = ObjectFile::obtain(
            &ns,
            ObjectKind::Shm,
            Key(9),
            CreateMode::CreateExclusive,
            0o600,
            8,
            |_, _| Err(ObjectError::InvalidArgument("init failed".into())),
        );
        assert!(r.is_err());
        assert!(!ns.path_of(ObjectKind::Shm, Key(9)).exists());
        // A leftover temporary file of a dead creator is garbage.
        let fake = ns.dir().join(".tmp.999999999.1.0.0");
        std::fs::write(&fake, b"x").unwrap();
        assert!(ns.entries(None).unwrap().is_empty());
        assert_eq!(ns.collect_garbage(), 1);
        assert!(!fake.exists());
    }

    #[test]
    fn modes_are_taken_as_given() {
        let (_d, ns) = ns();
        let (a, _) = ObjectFile::obtain(
            &ns,
            ObjectKind::Shm,
            Key(10),
            CreateMode::CreateExclusive,
            0o644,
            8,
            |_, _| Ok(()),
        )
        .unwrap();
        assert_eq!(a.metadata().unwrap().mode() & 0o777, 0o644);
        assert!(matches!(
            ObjectFile::obtain(
                &ns,
                ObjectKind::Shm,
                Key(11),
                CreateMode::CreateExclusive,
                0o4644,
                8,
                |_, _| Ok(())
            ),
            Err(ObjectError::InvalidArgument(_))
        ));
    }
}
