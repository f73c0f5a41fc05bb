//! Pipes: anonymous pipes between related processes, named pipes (FIFOs) between unrelated ones.
//!
//! A pipe is the oldest Unix IPC mechanism (Thompson and McIlroy, Unix 3rd edition, 1973): a
//! one-way byte channel kept in the kernel, with a bounded buffer between a write end and a
//! read end. A reader blocks while the pipe is empty, a writer while it is full: the pipe
//! *synchronizes itself*, the bounded-buffer problem solved in the kernel. Reading after every
//! writer has closed gives end of file; writing after every reader has closed gives `EPIPE`
//! (and `SIGPIPE`, which Rust programs ignore). See
//! [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html).
//!
//! ## Anonymous pipes: [`Pipe`]
//!
//! An anonymous pipe has no name: only processes that *inherit* its descriptors can use it,
//! i.e. a process and the children it starts. ipckit makes both ends close-on-exec
//! (`O_CLOEXEC`), so they do not leak into every program this process starts; pass an end to a
//! child in one of two ways:
//!
//! * as one of its standard streams — `Command::stdin(reader)` (ends convert into
//!   [`Stdio`]): the child reads its stdin;
//! * under its own number — [`set_inheritable(true)`](PipeReader::set_inheritable) on the end,
//!   pass its number ([`AsRawFd::as_raw_fd`]) on the command line, spawn, then drop the
//!   parent's copy. The child takes it with `OwnedFd::from_raw_fd(n)` and
//!   [`PipeReader::try_from`]. Another thread that spawns at the same moment would also
//!   inherit the end: do this from one thread, or use the first way.
//!
//! ```no_run
//! // (Run by the tests in `pipe::tests`, with a timeout on the child.)
//! use ipckit::pipe::Pipe;
//! use std::io::{Read, Write};
//! use std::process::{Command, Stdio};
//!
//! let Pipe { reader, mut writer } = Pipe::new().unwrap();
//! let mut child = Command::new("cat").stdin(reader).stdout(Stdio::piped()).spawn().unwrap();
//! writer.write_all(b"through the pipe").unwrap();
//! drop(writer); // end of file for cat
//! let mut out = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
//! child.wait().unwrap();
//! assert_eq!(out, "through the pipe");
//! ```
//!
//! Both ends are [`Read`]/[`Write`] and descriptors, so [`net::Framed`](crate::net::Framed)
//! carries messages over them.
//!
//! ## Capacity
//!
//! Linux gives a pipe 64 KiB (16 pages) by default. [`PipeWriter::capacity`] reads it
//! (`F_GETPIPE_SZ`) and [`PipeWriter::set_capacity`] changes it (`F_SETPIPE_SZ`), up to
//! `/proc/sys/fs/pipe-max-size` (1 MiB by default) for an unprivileged process. Writes of at
//! most `PIPE_BUF` (4096) bytes are atomic: they are never interleaved with other writers'.
//!
//! ## Named pipes: [`NamedPipe`]
//!
//! A FIFO is a pipe with a name in the file system
//! ([fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html)): unrelated processes meet by
//! opening the same path, one for reading, one for writing. The name survives the processes
//! (until [`NamedPipe::remove`]); the data does not, it lives in the kernel only while the
//! pipe is open. Opening one end *blocks until the other end is opened too*; a non-blocking
//! open of the read end succeeds at once, of the write end fails with `ENXIO` while no reader
//! exists: [`PipeError::NoReader`].

#![allow(unsafe_code)] // Only `FromRawFd`; SAFETY obligations are documented there.

use crate::sys;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Why a pipe operation failed. The `errno` each variant stands for is given in brackets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipeError {
    /// A non-blocking open of a FIFO's write end found no process with the read end open
    /// (`ENXIO`). Open the reader first, or use a blocking open.
    #[error("no process has the FIFO open for reading (ENXIO)")]
    NoReader,
    /// Something already exists at the path (`EEXIST`).
    #[error("{0} already exists (EEXIST)")]
    Exists(PathBuf),
    /// The path, or a directory on it, does not exist (`ENOENT`).
    #[error("{0} does not exist (ENOENT)")]
    NotFound(PathBuf),
    /// The caller may not open or create the path (`EACCES`).
    #[error("permission denied on {0} (EACCES)")]
    PermissionDenied(PathBuf),
    /// The path, or the descriptor, is not a pipe or FIFO.
    #[error("{0} is not a FIFO")]
    NotAFifo(PathBuf),
    /// The other end did not open in time (`ETIMEDOUT`).
    #[error("the other end of the FIFO did not open in time (ETIMEDOUT)")]
    Timeout,
    /// The capacity asked for exceeds `/proc/sys/fs/pipe-max-size` and the caller lacks
    /// `CAP_SYS_RESOURCE` (`EPERM`).
    #[error(
        "pipe capacity of {requested} bytes exceeds the limit in /proc/sys/fs/pipe-max-size (EPERM)"
    )]
    CapacityAboveLimit {
        /// Bytes asked for.
        requested: usize,
    },
    /// The capacity asked for is smaller than the data now in the pipe (`EBUSY`).
    #[error("pipe holds more than {requested} bytes (EBUSY)")]
    CapacityInUse {
        /// Bytes asked for.
        requested: usize,
    },
    /// The capacity asked for is invalid (e.g. above `i32::MAX`) (`EINVAL`).
    #[error("invalid pipe capacity {requested} (EINVAL)")]
    InvalidCapacity {
        /// Bytes asked for.
        requested: usize,
    },
    /// Any other operating-system error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl PipeError {
    fn at(path: &Path, e: io::Error) -> PipeError {
        match e.raw_os_error() {
            Some(libc::ENXIO) => PipeError::NoReader,
            Some(libc::EEXIST) => PipeError::Exists(path.to_owned()),
            Some(libc::ENOENT) => PipeError::NotFound(path.to_owned()),
            Some(libc::EACCES) => PipeError::PermissionDenied(path.to_owned()),
            _ => PipeError::Io(e),
        }
    }

    fn capacity(requested: usize, e: io::Error) -> PipeError {
        match e.raw_os_error() {
            Some(libc::EPERM) => PipeError::CapacityAboveLimit { requested },
            Some(libc::EBUSY) => PipeError::CapacityInUse { requested },
            Some(libc::EINVAL) => PipeError::InvalidCapacity { requested },
            _ => PipeError::Io(e),
        }
    }
}

/// A new anonymous pipe: both ends, close-on-exec and blocking.
///
/// ```
/// use ipckit::pipe::Pipe;
/// use std::io::{Read, Write};
///
/// let Pipe { mut reader, mut writer } = Pipe::new().unwrap();
/// writer.write_all(b"hi").unwrap();
/// let mut buf = [0; 2];
/// reader.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// ```
#[derive(Debug)]
pub struct Pipe {
    /// The read end.
    pub reader: PipeReader,
    /// The write end.
    pub writer: PipeWriter,
}

impl Pipe {
    /// Makes a pipe ([pipe2(2)](https://man7.org/linux/man-pages/man2/pipe.2.html) with
    /// `O_CLOEXEC`). Errors: [`PipeError::Io`] with `EMFILE`/`ENFILE` (too many open files).
    pub fn new() -> Result<Pipe, PipeError> {
        let (r, w) = sys::pipe2(false)?;
        Ok(Pipe {
            reader: PipeReader { file: File::from(r) },
            writer: PipeWriter { file: File::from(w) },
        })
    }
}

macro_rules! pipe_end {
    ($name:ident, $what:literal) => {
        impl $name {
            /// Sets or clears `O_NONBLOCK`. On a non-blocking end, a call that would block
            #[doc = concat!("(", $what, ") fails with `io::ErrorKind::WouldBlock` (`EAGAIN`) instead. The flag")]
            /// belongs to the open file description, shared with duplicates and with a child
            /// that inherited the end.
            pub fn set_nonblocking(&self, on: bool) -> Result<(), PipeError> {
                Ok(sys::set_nonblocking(self.as_fd(), on)?)
            }

            /// Whether `O_NONBLOCK` is set.
            pub fn is_nonblocking(&self) -> Result<bool, PipeError> {
                Ok(sys::is_nonblocking(self.as_fd())?)
            }

            /// Makes this end inheritable (`inheritable = true`: clears `FD_CLOEXEC`) or not:
            /// an inheritable end stays open, under the same number, in programs this process
            /// starts from now on. See the [module docs](self) for passing an end to a child.
            pub fn set_inheritable(&self, inheritable: bool) -> Result<(), PipeError> {
                Ok(sys::set_inheritable(self.as_fd(), inheritable)?)
            }

            /// Whether this end is inheritable (`FD_CLOEXEC` is clear).
            pub fn is_inheritable(&self) -> Result<bool, PipeError> {
                Ok(sys::is_inheritable(self.as_fd())?)
            }

            /// The pipe's capacity in bytes (`F_GETPIPE_SZ`): how much a writer can put in
            /// before it blocks.
            #[doc(alias = "F_GETPIPE_SZ")]
            pub fn capacity(&self) -> Result<usize, PipeError> {
                Ok(sys::pipe_capacity(self.as_fd())?)
            }

            /// Sets the pipe's capacity to at least `bytes` (`F_SETPIPE_SZ`); the kernel rounds
            /// up to a power-of-two number of pages. Returns the capacity set.
            ///
            /// Errors: [`PipeError::CapacityAboveLimit`] (over `/proc/sys/fs/pipe-max-size`),
            /// [`PipeError::CapacityInUse`] (less than the data in the pipe),
            /// [`PipeError::InvalidCapacity`].
            #[doc(alias = "F_SETPIPE_SZ")]
            pub fn set_capacity(&self, bytes: usize) -> Result<usize, PipeError> {
                sys::set_pipe_capacity(self.as_fd(), bytes)
                    .map_err(|e| PipeError::capacity(bytes, e))
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.file.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.file.as_raw_fd()
            }
        }

        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                self.file.into_raw_fd()
            }
        }

        impl FromRawFd for $name {
            /// Takes ownership of descriptor `fd`, e.g. one inherited from a parent.
            ///
            /// # Safety
            ///
            /// `fd` must be an open descriptor of a pipe or FIFO that nothing else owns (it
            /// will be closed when the end is dropped). Prefer [`TryFrom<OwnedFd>`], which
            /// checks that the descriptor is a pipe.
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: the caller guarantees `fd` is open and owned by nobody else.
                $name { file: unsafe { File::from_raw_fd(fd) } }
            }
        }

        impl From<$name> for OwnedFd {
            fn from(end: $name) -> OwnedFd {
                end.file.into()
            }
        }

        impl From<$name> for Stdio {
            /// Hands the end to a child as one of its standard streams.
            fn from(end: $name) -> Stdio {
                Stdio::from(OwnedFd::from(end))
            }
        }

        impl TryFrom<OwnedFd> for $name {
            type Error = PipeError;

            /// Wraps a descriptor after checking that it is a pipe or FIFO
            /// ([`PipeError::NotAFifo`] otherwise, with the path `/proc/self/fd/N`).
            fn try_from(fd: OwnedFd) -> Result<Self, PipeError> {
                if !sys::is_fifo(fd.as_fd())? {
                    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                    return Err(PipeError::NotAFifo(path));
                }
                Ok($name { file: File::from(fd) })
            }
        }
    };
}

/// The read end of a pipe or FIFO. Reads block while the pipe is empty and some writer has it
/// open; they return 0 (end of file) once every writer has closed it.
#[derive(Debug)]
pub struct PipeReader {
    file: File,
}

/// The write end of a pipe or FIFO. Writes block while the pipe is full; they fail with
/// `BrokenPipe` (`EPIPE`) once every reader has closed it.
#[derive(Debug)]
pub struct PipeWriter {
    file: File,
}

pipe_end!(PipeReader, "reading an empty pipe");
pipe_end!(PipeWriter, "writing a full pipe");

impl PipeReader {
    /// A second descriptor for the same read end (`dup` with `F_DUPFD_CLOEXEC`).
    pub fn try_clone(&self) -> Result<PipeReader, PipeError> {
        Ok(PipeReader { file: self.file.try_clone()? })
    }
}

impl PipeWriter {
    /// A second descriptor for the same write end (`dup` with `F_DUPFD_CLOEXEC`).
    pub fn try_clone(&self) -> Result<PipeWriter, PipeError> {
        Ok(PipeWriter { file: self.file.try_clone()? })
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.file.read_vectored(bufs)
    }
}

impl Read for &PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A FIFO (named pipe) in the file system: the meeting point of unrelated processes.
///
/// A `NamedPipe` is only the name; opening it gives a [`PipeReader`] or [`PipeWriter`]. The
/// FIFO stays in the file system when the value is dropped (it *survives its processes*);
/// [`remove`](Self::remove) unlinks it.
///
/// ```
/// use ipckit::pipe::{NamedPipe, PipeError};
/// use std::io::{Read, Write};
///
/// let dir = tempfile::tempdir().unwrap();
/// let fifo = NamedPipe::create(&dir.path().join("fifo"), 0o600).unwrap();
/// // Nobody reads yet: a non-blocking open of the write end fails.
/// assert!(matches!(fifo.try_open_writer(), Err(PipeError::NoReader)));
/// let mut r = fifo.try_open_reader().unwrap(); // never blocks
/// let mut w = fifo.open_writer().unwrap(); // a reader exists: does not block
/// w.write_all(b"hello").unwrap();
/// drop(w);
/// r.set_nonblocking(false).unwrap();
/// let mut s = String::new();
/// r.read_to_string(&mut s).unwrap();
/// assert_eq!(s, "hello");
/// fifo.remove().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPipe {
    path: PathBuf,
}

impl NamedPipe {
    /// Creates a FIFO at `path` with permission bits `mode` (less the umask), like
    /// [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html).
    ///
    /// Errors: [`PipeError::Exists`] (anything already at `path`), [`PipeError::NotFound`]
    /// (missing directory), [`PipeError::PermissionDenied`].
    #[doc(alias = "mkfifo")]
    pub fn create(path: &Path, mode: u32) -> Result<NamedPipe, PipeError> {
        sys::mkfifo(path, mode).map_err(|e| PipeError::at(path, e))?;
        Ok(NamedPipe { path: path.to_owned() })
    }

    /// Names an existing FIFO at `path` (opens nothing).
    ///
    /// Errors: [`PipeError::NotFound`], [`PipeError::NotAFifo`] (something else is there),
    /// [`PipeError::PermissionDenied`].
    pub fn at(path: &Path) -> Result<NamedPipe, PipeError> {
        let meta = std::fs::metadata(path).map_err(|e| PipeError::at(path, e))?;
        if !meta.file_type().is_fifo() {
            return Err(PipeError::NotAFifo(path.to_owned()));
        }
        Ok(NamedPipe { path: path.to_owned() })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self, flags: libc::c_int) -> Result<File, PipeError> {
        let fd = sys::open(&self.path, flags).map_err(|e| PipeError::at(&self.path, e))?;
        if !sys::is_fifo(fd.as_fd())? {
            return Err(PipeError::NotAFifo(self.path.clone()));
        }
        Ok(File::from(fd))
    }

    /// Opens the read end, **blocking until some process opens the write end** (or has it
    /// open already). The end returned is blocking.
    ///
    /// Errors: [`PipeError::NotFound`], [`PipeError::PermissionDenied`],
    /// [`PipeError::NotAFifo`].
    pub fn open_reader(&self) -> Result<PipeReader, PipeError> {
        Ok(PipeReader { file: self.open(libc::O_RDONLY)? })
    }

    /// Opens the read end without waiting for a writer (`O_NONBLOCK`). The end returned is
    /// **non-blocking**: reads fail with `WouldBlock` while the pipe is empty and a writer has
    /// it open, and return 0 (end of file) while no writer has it open. Errors as
    /// [`open_reader`](Self::open_reader).
    pub fn try_open_reader(&self) -> Result<PipeReader, PipeError> {
        Ok(PipeReader { file: self.open(libc::O_RDONLY | libc::O_NONBLOCK)? })
    }

    /// Opens the read end, waiting at most `timeout` for a process to open the write end. The
    /// end returned is blocking.
    ///
    /// A FIFO offers no way to wait for a writer with a timeout (`poll` on a read end reports
    /// data or hang-up, not the arrival of a writer), so the blocking open runs on a helper
    /// thread. On timeout the helper is released by opening the write end here for a moment
    /// (which a pending reader lets succeed) and both ends are closed again; a writer that
    /// arrives in that same instant may then see its reader vanish (`EPIPE`).
    ///
    /// Errors: [`PipeError::Timeout`], and those of [`open_reader`](Self::open_reader).
    pub fn open_reader_timeout(&self, timeout: Duration) -> Result<PipeReader, PipeError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let fifo = self.clone();
        std::thread::Builder::new().name("ipckit-fifo-open".into()).spawn(move || {
            let _ = tx.send(fifo.open_reader());
        })?;
        match rx.recv_timeout(timeout) {
            Ok(r) => return r,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PipeError::Io(io::Error::other("FIFO open thread vanished")));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        // Release the helper: it counts as a reader, so a non-blocking open for writing
        // succeeds (or, if the helper has not reached `open` yet, fails and is retried).
        let mut release = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(_) => return Err(PipeError::Timeout), // the helper's end is closed here
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PipeError::Timeout);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            match sys::open(&self.path, libc::O_WRONLY | libc::O_NONBLOCK) {
                Ok(fd) => release.push(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
                Err(e) => return Err(PipeError::at(&self.path, e)),
            }
        }
    }

    /// Opens the write end, **blocking until some process opens the read end** (or has it open
    /// already). The end returned is blocking.
    ///
    /// Errors: [`PipeError::NotFound`], [`PipeError::PermissionDenied`],
    /// [`PipeError::NotAFifo`].
    pub fn open_writer(&self) -> Result<PipeWriter, PipeError> {
        Ok(PipeWriter { file: self.open(libc::O_WRONLY)? })
    }

    /// Opens the write end without waiting (`O_NONBLOCK`). The end returned is
    /// **non-blocking**: writes to a full pipe fail with `WouldBlock`.
    ///
    /// Errors: [`PipeError::NoReader`] if no process has the read end open (`ENXIO`), and those
    /// of [`open_writer`](Self::open_writer).
    pub fn try_open_writer(&self) -> Result<PipeWriter, PipeError> {
        Ok(PipeWriter { file: self.open(libc::O_WRONLY | libc::O_NONBLOCK)? })
    }

    /// Opens the write end, waiting at most `timeout` for a reader (retries a non-blocking open,
    /// sleeping 1 to 10 ms between tries). The end returned is blocking.
    ///
    /// Errors: [`PipeError::Timeout`], and those of [`open_writer`](Self::open_writer).
    pub fn open_writer_timeout(&self, timeout: Duration) -> Result<PipeWriter, PipeError> {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_millis(1);
        loop {
            match self.try_open_writer() {
                Ok(w) => {
                    w.set_nonblocking(false)?;
                    return Ok(w);
                }
                Err(PipeError::NoReader) => {}
                Err(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PipeError::Timeout);
            }
            std::thread::sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(10));
        }
    }

    /// Unlinks the FIFO. Processes that have it open keep their ends; new opens fail with
    /// [`PipeError::NotFound`]. Errors: [`PipeError::NotFound`], [`PipeError::PermissionDenied`].
    pub fn remove(self) -> Result<(), PipeError> {
        std::fs::remove_file(&self.path).map_err(|e| PipeError::at(&self.path, e))
    }
}

#[cfg(test)]
mod tests;
