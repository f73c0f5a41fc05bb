//! The namespace: a directory that *is* the table of IPC objects.
//!
//! System V keeps its IPC objects in kernel tables (`ipcs` lists them). ipckit keeps them as
//! files in one directory — by default `/dev/shm/ipckit` (tmpfs: memory, not disk), or
//! `IPCKIT_DIR`, or any directory given explicitly. The filesystem then provides what the
//! kernel tables did:
//!
//! | System V | ipckit namespace |
//! |---|---|
//! | `IPC_CREAT \| IPC_EXCL` | `link(2)` of a fully built file to its final name fails with `EEXIST` |
//! | permission bits `shm_perm.mode` | the file's mode, checked by `open(2)` |
//! | owner `uid` | the file's owner |
//! | `ipcs` | listing the directory |
//! | `IPC_RMID` | `unlink(2)`: the key is free at once, attached processes keep their mapping |
//!
//! One file per object, named `KIND.KEY` (`shm.0x0000abcd`) or, for [`Key::PRIVATE`],
//! `KIND.private.ID`. Every file starts with a [`Header`] (magic, layout version, kind, sizes,
//! key, id, creator, times, the `removed` flag) followed by the kind's own state.
//!
//! ## Two-phase creation
//! An object is built under a temporary name (`.tmp.PID.START.N`), initialized completely,
//! its magic written last, and only then linked to its final name. Nobody can open a
//! half-made object; a creator killed midway leaves only a temporary file, which
//! [`Namespace::collect_garbage`] removes once its creator is dead.
//!
//! ## Ids
//! Besides its key, each object has an id (like a `shmid`), drawn from a counter in the file
//! `.ids` of the namespace: unique among live objects, not reused until the 31-bit counter
//! wraps.

mod header;
mod key;
mod object;
pub mod waits;

pub use header::{Header, LAYOUT_VERSION, MAGIC};
pub use key::{Key, ParseKeyError};
pub use object::{CreateMode, Entry, ObjectFile, OpenAccess};

use crate::shm::Mapping;
use crate::sys::ProcessId;
use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The kinds of object a namespace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// Shared memory segment (`shmget`).
    Shm = 1,
    /// Message queue (`msgget`).
    Mq = 2,
    /// Semaphore set (`semget`).
    Sem = 3,
}

impl ObjectKind {
    /// All kinds, in `ipcs` order.
    pub const ALL: [ObjectKind; 3] = [ObjectKind::Shm, ObjectKind::Mq, ObjectKind::Sem];

    /// The file-name prefix and CLI noun: `shm`, `mq`, `sem`.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Shm => "shm",
            ObjectKind::Mq => "mq",
            ObjectKind::Sem => "sem",
        }
    }

    /// The kind stored in a header.
    pub fn from_u32(v: u32) -> Option<ObjectKind> {
        match v {
            1 => Some(ObjectKind::Shm),
            2 => Some(ObjectKind::Mq),
            3 => Some(ObjectKind::Sem),
            _ => None,
        }
    }

    /// Parses `shm`, `mq` or `sem`.
    pub fn from_name(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of opening, creating, listing and removing objects. The System V `errno` each
/// corresponds to is named in brackets.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// No object of this kind with this key or id (`ENOENT`).
    #[error("no {kind} object with {what}")]
    NotFound {
        /// Kind looked for.
        kind: ObjectKind,
        /// `key 0x...` or `id N`.
        what: String,
    },
    /// An exclusive create found the key taken (`EEXIST`).
    #[error("a {kind} object with key {key} already exists")]
    AlreadyExists {
        /// Kind.
        kind: ObjectKind,
        /// The key.
        key: Key,
    },
    /// The object's mode does not allow this access (`EACCES`).
    #[error("permission denied for {path}")]
    PermissionDenied {
        /// The object's file.
        path: PathBuf,
    },
    /// A parameter is out of range or does not fit the existing object (`EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The file is not a valid ipckit object: not made by ipckit, a symbolic link, truncated,
    /// another layout version, or corrupted (`EINVAL`).
    #[error("{path} is not a valid ipckit object: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The object was removed (`EIDRM`).
    #[error("the object was removed (EIDRM)")]
    Removed,
    /// Any other I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl ObjectError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ObjectError {
        ObjectError::Io { context: context.into(), source }
    }

    /// True for the errors a CLI reports as "absent" (exit 1): `NotFound`, `Removed`.
    pub fn is_absent(&self) -> bool {
        matches!(self, ObjectError::NotFound { .. } | ObjectError::Removed)
    }
}

/// A directory of IPC objects.
///
/// ```
/// use ipckit::ns::Namespace;
///
/// let dir = tempfile::tempdir().unwrap();
/// let ns = Namespace::at(dir.path()).unwrap();
/// assert!(ns.entries(None).unwrap().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Namespace {
    dir: PathBuf,
}

/// The default namespace directory.
pub const DEFAULT_DIR: &str = "/dev/shm/ipckit";

impl Namespace {
    /// The namespace named by `IPCKIT_DIR`, or [`DEFAULT_DIR`]; created on first use (mode
    /// 1777 for the shared default, like `/dev/shm` itself: everyone may create objects, only
    /// owners may remove theirs).
    pub fn from_env() -> Result<Namespace, ObjectError> {
        match std::env::var_os("IPCKIT_DIR") {
            Some(d) if !d.is_empty() => Namespace::at(Path::new(&d)),
            _ => Namespace::shared_default(),
        }
    }

    fn shared_default() -> Result<Namespace, ObjectError> {
        let dir = PathBuf::from(DEFAULT_DIR);
        if !dir.is_dir() {
            match std::fs::DirBuilder::new().mode(0o1777).create(&dir) {
                Ok(()) => {
                    // The umask may have cleared bits: set them explicitly.
                    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(ObjectError::io(format!("cannot create {DEFAULT_DIR}"), e)),
            }
        }
        Namespace::at(&dir)
    }

    /// The namespace in `dir`, created (mode 0700) if missing.
    pub fn at(dir: &Path) -> Result<Namespace, ObjectError> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| ObjectError::io(format!("cannot create {}", dir.display()), e))?;
        }
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| ObjectError::io(format!("cannot stat {}", dir.display()), e))?;
        if !meta.is_dir() {
            return Err(ObjectError::InvalidArgument(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        Ok(Namespace { dir: dir.to_path_buf() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name of a keyed object.
    pub fn path_of(&self, kind: ObjectKind, key: Key) -> PathBuf {
        self.dir.join(format!("{}.{}", kind.name(), key))
    }

    fn private_path(&self, kind: ObjectKind, id: i32) -> PathBuf {
        self.dir.join(format!("{}.private.{id}", kind.name()))
    }

    /// Draws a new object id.
    pub(crate) fn next_id(&self) -> Result<i32, ObjectError> {
        use std::sync::atomic::{AtomicU32, Ordering};
        let path = self.dir.join(".ids");
        let map = match Mapping::open(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Build it under a temporary name, then link: concurrent creators agree.
                let tmp = self.temp_path();
                let m = Mapping::create(&tmp, 64, 0o666)
                    .map_err(|e| ObjectError::io("cannot create the id counter", e))?;
                let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666));
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => m,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Mapping::open(&path)
                        .map_err(|e| ObjectError::io("cannot open the id counter", e))?,
                    Err(e) => return Err(ObjectError::io("cannot create the id counter", e)),
                }
            }
            Err(e) => return Err(ObjectError::io("cannot open the id counter", e)),
        };
        let counter = map
            .get::<AtomicU32>(0)
            .map_err(|e| ObjectError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        // Ids are positive i32s; skip 0 and wrap within 1..=i32::MAX.
        let v = counter.fetch_add(1, Ordering::Relaxed);
        Ok((v % (i32::MAX as u32)) as i32 + 1)
    }

    /// A fresh temporary name that names its creator, for two-phase creation.
    pub(crate) fn temp_path(&self) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let me = ProcessId::current_process();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = crate::sys::monotonic_now().subsec_nanos();
        self.dir.join(format!(".tmp.{}.{}.{n}.{nanos}", me.pid, me.start_time))
    }

    /// Removes temporary files left by creators that died mid-creation. Returns how many.
    pub fn collect_garbage(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(".tmp.") else { continue };
            let mut parts = rest.split('.');
            let (Some(pid), Some(start)) = (parts.next(), parts.next()) else { continue };
            let (Ok(pid), Ok(start_time)) = (pid.parse(), start.parse()) else { continue };
            if !(ProcessId { pid, start_time }).is_alive() && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// The objects in the namespace, of one kind or all, sorted by kind then id. Files that
    /// are not valid objects are skipped (opening one by key reports what is wrong with it).
    pub fn entries(&self, kind: Option<ObjectKind>) -> Result<Vec<Entry>, ObjectError> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| ObjectError::io(format!("cannot list {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((k, _)) = name.split_once('.') else { continue };
            let Some(k) = ObjectKind::from_name(k) else { continue };
            if kind.is_some_and(|want| want != k) {
                continue;
            }
            if let Ok(entry) = Entry::read(&e.path(), k) {
                out.push(entry);
            }
        }
        out.sort_by_key(|e| (e.kind, e.id));
        Ok(out)
    }

    /// Finds the object of `kind` with id `id`.
    pub fn find_id(&self, kind: ObjectKind, id: i32) -> Result<Entry, ObjectError> {
        self.entries(Some(kind))?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ObjectError::NotFound { kind, what: format!("id {id}") })
    }

    /// Finds the object of `kind` with key `key` (not [`Key::PRIVATE`]).
    pub fn find_key(&self, kind: ObjectKind, key: Key) -> Result<Entry, ObjectError> {
        if key.is_private() {
            return Err(ObjectError::InvalidArgument(
                "a private object has no key to look it up by: use its id".into(),
            ));
        }
        Entry::read(&self.path_of(kind, key), kind).map_err(|e| match e {
            ObjectError::NotFound { kind, .. } => {
                ObjectError::NotFound { kind, what: format!("key {key}") }
            }
            e => e,
        })
    }
}

/// A private namespace in a temporary directory, for unit tests.
#[cfg(all(test, not(loom)))]
pub(crate) fn test_namespace() -> (tempfile::TempDir, Namespace) {
    let d = tempfile::tempdir().unwrap();
    let ns = Namespace::at(&d.path().join("ns")).unwrap();
    (d, ns)
}
