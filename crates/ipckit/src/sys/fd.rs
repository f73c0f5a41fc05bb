//! File descriptors: pipes, FIFOs, descriptor flags, pipe capacity, and waiting for readiness.
//!
//! Each function wraps one C call (man page linked), takes and returns owned or borrowed
//! descriptors (`OwnedFd`, `BorrowedFd`) so that no descriptor is used after it was closed,
//! and reports failure as the raw `std::io::Error` (its `raw_os_error()` is the C `errno`);
//! the `pipe` and `net` modules turn those into errors a caller can act on.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Makes an anonymous pipe: `(read end, write end)`, both close-on-exec (`O_CLOEXEC`), and
/// both non-blocking if `nonblocking` (`O_NONBLOCK`).
///
/// See [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html). Errors: `EMFILE`/`ENFILE`
/// (too many open files).
#[doc(alias = "pipe")]
pub fn pipe2(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    // SAFETY: pipe2 succeeded, so both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Makes a FIFO (named pipe) at `path` with permission bits `mode` (minus the umask).
///
/// See [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html). Errors: `EEXIST`
/// (something is already there), `ENOENT` (a directory on the path is missing), `EACCES`.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let p = c_path(path)?;
    // SAFETY: `p` is a NUL-terminated string that outlives the call.
    cvt(unsafe { libc::mkfifo(p.as_ptr(), mode as libc::mode_t) })?;
    Ok(())
}

/// Opens `path` with `flags` (`O_RDONLY`, `O_WRONLY`, `O_NONBLOCK`, ...); `O_CLOEXEC` is always
/// added. On a FIFO, a blocking open waits for the other side (see
/// [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html)); a non-blocking open for
/// writing with no reader fails with `ENXIO`.
///
/// See [open(2)](https://man7.org/linux/man-pages/man2/open.2.html). `EINTR` is retried.
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let p = c_path(path)?;
    loop {
        // SAFETY: `p` is a NUL-terminated string that outlives the call; no mode is needed
        // because O_CREAT is not passed.
        match cvt(unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) }) {
            // SAFETY: open succeeded: a fresh descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn fcntl_get(fd: BorrowedFd<'_>, cmd: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFD/F_GETFL/F_GETPIPE_SZ take no argument and only read kernel state of a
    // descriptor that `fd` keeps open.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), cmd) })
}

fn fcntl_set(fd: BorrowedFd<'_>, cmd: libc::c_int, arg: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: F_SETFD/F_SETFL/F_SETPIPE_SZ take an int argument; `fd` stays open for the call.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, arg) })
}

/// Whether `O_NONBLOCK` is set on the open file description behind `fd` (shared by every
/// duplicate of it). See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), `F_GETFL`.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(fcntl_get(fd, libc::F_GETFL)? & libc::O_NONBLOCK != 0)
}

/// Sets or clears `O_NONBLOCK` on the open file description behind `fd`.
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), `F_SETFL`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let fl = fcntl_get(fd, libc::F_GETFL)?;
    let new = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
    if new != fl {
        fcntl_set(fd, libc::F_SETFL, new)?;
    }
    Ok(())
}

/// Whether `fd` stays open across `execve` (its `FD_CLOEXEC` flag is clear).
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), `F_GETFD`.
pub fn is_inheritable(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(fcntl_get(fd, libc::F_GETFD)? & libc::FD_CLOEXEC == 0)
}

/// Clears (`inheritable`) or sets `FD_CLOEXEC` on `fd`: an inheritable descriptor is still open,
/// under the same number, in a program started with `execve` (e.g. by
/// `std::process::Command`). The flag belongs to this descriptor only, not to its duplicates.
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), `F_SETFD`.
pub fn set_inheritable(fd: BorrowedFd<'_>, inheritable: bool) -> io::Result<()> {
    let fl = fcntl_get(fd, libc::F_GETFD)?;
    let new = if inheritable { fl & !libc::FD_CLOEXEC } else { fl | libc::FD_CLOEXEC };
    if new != fl {
        fcntl_set(fd, libc::F_SETFD, new)?;
    }
    Ok(())
}

/// The capacity of the pipe or FIFO behind `fd`, in bytes (`F_GETPIPE_SZ`; 65536 by default).
/// `EBADF`/`EINVAL` if `fd` is not a pipe.
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Changing the capacity of a pipe".
#[doc(alias = "F_GETPIPE_SZ")]
pub fn pipe_capacity(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(fcntl_get(fd, libc::F_GETPIPE_SZ)? as usize)
}

/// Asks for a pipe capacity of at least `bytes` (`F_SETPIPE_SZ`); the kernel rounds up to a
/// power-of-two number of pages and returns the capacity it set. Errors: `EINVAL` (too small
/// or not a pipe), `EPERM` (above `/proc/sys/fs/pipe-max-size` without `CAP_SYS_RESOURCE`),
/// `EBUSY` (smaller than the data now in the pipe).
#[doc(alias = "F_SETPIPE_SZ")]
pub fn set_pipe_capacity(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let arg =
        libc::c_int::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(fcntl_set(fd, libc::F_SETPIPE_SZ, arg)? as usize)
}

/// Which readiness [`poll_fd`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Data to read, end of file, or an error (`POLLIN`).
    Read,
    /// Room to write, or an error (`POLLOUT`).
    Write,
}

/// Waits until `fd` is ready for `what`, for at most `timeout` (`None`: no limit). Returns
/// `false` when the time ran out. A hang-up or error on `fd` counts as ready: the next read or
/// write reports it. Interrupted waits (`EINTR`) continue with the time left.
///
/// See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
#[doc(alias = "poll")]
pub fn poll_fd(fd: BorrowedFd<'_>, what: Readiness, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let events = match what {
        Readiness::Read => libc::POLLIN,
        Readiness::Write => libc::POLLOUT,
    };
    loop {
        let ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so that a sub-millisecond remainder still waits.
                left.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: one valid pollfd that outlives the call; `fd` stays open.
        match cvt(unsafe { libc::poll(&mut p, 1, ms) }) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether `fd` is a FIFO or pipe (`S_ISFIFO` from
/// [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html)).
pub fn is_fifo(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and outlives the call; `fd` stays open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFIFO)
}
