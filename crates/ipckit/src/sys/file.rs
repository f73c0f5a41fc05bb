//! File-level calls: space reservation, advisory locks, and reading the kernel's lock table.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Reserves `len` bytes of real storage for `file` (`posix_fallocate`), so that later
/// writes through a mapping cannot fault with `SIGBUS` on a full tmpfs: the shortage is
/// reported here, as `ENOSPC`, instead.
#[doc(alias = "posix_fallocate")]
pub fn allocate(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: a valid fd for the duration of the call; offsets are plain integers.
    let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match r {
        0 => Ok(()),
        // Filesystems without fallocate: fall back on the plain (sparse) size.
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Takes a shared advisory lock on the open file description (`flock(LOCK_SH)`). The kernel
/// drops it when the last descriptor of that description closes — including when the
/// process dies — which makes it a reliable "I am attached" marker.
#[doc(alias = "flock")]
pub fn lock_shared(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: a valid fd for the duration of the call.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Counts the `flock` locks held on the file with device `dev` and inode `ino`, from
/// [`/proc/locks`](https://man7.org/linux/man-pages/man5/proc_locks.5.html). Waiting (`->`)
/// entries are not counted.
pub fn count_flocks(dev: u64, ino: u64) -> io::Result<usize> {
    let text = std::fs::read_to_string("/proc/locks")?;
    Ok(count_flocks_in(&text, dev, ino))
}

fn count_flocks_in(text: &str, dev: u64, ino: u64) -> usize {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    text.lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            let _index = f.next(); // then: FLOCK ADVISORY READ|WRITE PID MAJ:MIN:INODE START END
            match f.next() {
                Some("FLOCK") => f.nth(3) == Some(want.as_str()),
                _ => false,
            }
        })
        .count()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parses_proc_locks() {
        let text = "1: FLOCK  ADVISORY  READ  123 00:1a:42 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 124 00:1a:42 0 EOF\n\
                    2: POSIX  ADVISORY  READ  125 00:1a:42 0 EOF\n\
                    3: FLOCK  ADVISORY  READ  126 00:1a:43 0 EOF\n\
                    4: FLOCK  ADVISORY  READ  127 00:1a:42 0 EOF\n";
        assert_eq!(count_flocks_in(text, 0x1a, 42), 2);
    }

    #[test]
    fn counts_our_own_locks() {
        let f = tempfile::tempfile().unwrap();
        let m = f.metadata().unwrap();
        assert_eq!(count_flocks(m.dev(), m.ino()).unwrap(), 0);
        lock_shared(&f).unwrap();
        assert_eq!(count_flocks(m.dev(), m.ino()).unwrap(), 1);
        drop(f);
        assert_eq!(count_flocks(m.dev(), m.ino()).unwrap(), 0);
    }
}

/// File descriptors whose `flock` must be re-taken in a child made by `fork` (see
/// [`ForkRelock`]). -1 is a free slot.
static RELOCK_FDS: [std::sync::atomic::AtomicI32; RELOCK_SLOTS] =
    [const { std::sync::atomic::AtomicI32::new(-1) }; RELOCK_SLOTS];
const RELOCK_SLOTS: usize = 256;
static RELOCK_HOOK: std::sync::Once = std::sync::Once::new();

/// Keeps a shared `flock` "per process" across `fork`.
///
/// A child made by `fork` inherits its parent's descriptors, which share the parent's open
/// file descriptions, and with them the parent's `flock`s: the child would not count as a
/// holder of its own. While a `ForkRelock` lives, a `pthread_atfork` hook gives the child a
/// fresh open file description of the same file under the same descriptor number and takes
/// a shared lock on it — so a forked child counts, and stops counting when it dies, exactly
/// like the parent. Only async-signal-safe calls run in the hook. At most 256 descriptors are
/// tracked at once; beyond that a forked child shares its parent's lock.
#[derive(Debug)]
pub struct ForkRelock {
    slot: Option<usize>,
}

impl ForkRelock {
    /// Tracks `file` until the returned guard is dropped.
    pub fn new(file: &File) -> ForkRelock {
        use std::sync::atomic::Ordering;
        RELOCK_HOOK.call_once(|| {
            // SAFETY: registers a child handler that uses only async-signal-safe calls and
            // touches only the static table.
            unsafe { libc::pthread_atfork(None, None, Some(relock_in_child)) };
        });
        let fd = file.as_raw_fd();
        let slot = RELOCK_FDS
            .iter()
            .position(|s| s.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed).is_ok());
        ForkRelock { slot }
    }
}

impl Drop for ForkRelock {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            RELOCK_FDS[i].store(-1, std::sync::atomic::Ordering::Release);
        }
    }
}

extern "C" fn relock_in_child() {
    for slot in &RELOCK_FDS {
        let fd = slot.load(std::sync::atomic::Ordering::Acquire);
        if fd >= 0 {
            relock_fd(fd);
        }
    }
}

/// Replaces `fd` by a new open file description of the same file, with a shared flock.
fn relock_fd(fd: i32) {
    // "/proc/self/fd/" + decimal fd + NUL, built without allocating (we may be in a fork
    // child of a multi-threaded process).
    let mut path = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 12];
    let (mut n, mut len) = (fd as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        path[prefix.len() + i] = digits[len - 1 - i];
    }
    // SAFETY: `path` is NUL-terminated (zero-initialized, and prefix + digits < 32 bytes);
    // open/flock/dup3/close on descriptors this process owns; fcntl(F_GETFL) only reads.
    unsafe {
        let mode = libc::fcntl(fd, libc::F_GETFL) & libc::O_ACCMODE;
        if mode < 0 {
            return;
        }
        let new = libc::open(path.as_ptr().cast(), mode | libc::O_CLOEXEC);
        if new < 0 {
            return;
        }
        if libc::flock(new, libc::LOCK_SH) == 0 {
            libc::dup3(new, fd, libc::O_CLOEXEC);
        }
        libc::close(new);
    }
}
