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
