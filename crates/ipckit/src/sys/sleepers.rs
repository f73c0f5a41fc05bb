//! Which threads of the machine sleep in `futex_wait`, and on which word of which file.
//!
//! A thread blocked in a system call shows it in
//! [`/proc/PID/task/TID/syscall`](https://man7.org/linux/man-pages/man5/proc_pid_syscall.5.html):
//! the call's number and arguments; for a futex wait, the first argument is the word's
//! address. [`/proc/PID/maps`](https://man7.org/linux/man-pages/man5/proc_pid_maps.5.html)
//! turns that address into a file (device, inode, path) and an offset in it. This lets a
//! detector see who waits for what without the waiters publishing anything. It sees only the
//! processes whose `/proc` entries the caller may read (its own user's, or all for root).

use std::path::PathBuf;

/// A thread asleep in a futex wait on a word inside a file mapping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FutexSleeper {
    /// The process (thread group) id.
    pub pid: u32,
    /// The thread id.
    pub tid: u32,
    /// Device of the mapped file, as `(major, minor)`.
    pub dev: (u32, u32),
    /// Inode of the mapped file.
    pub ino: u64,
    /// The file's path as the kernel reports it (may end in ` (deleted)`).
    pub path: PathBuf,
    /// Offset of the futex word in the file.
    pub offset: u64,
}

#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: u64 = 202;
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: u64 = 98;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_FUTEX: u64 = libc::SYS_futex as u64;

/// Every thread (that the caller may inspect) now asleep in a futex wait on a file-backed
/// word. Threads not in a system call, or waiting on anonymous memory, are left out.
pub fn futex_sleepers() -> Vec<FutexSleeper> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else { continue };
        let mut maps: Option<Vec<MapLine>> = None;
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(sc) = std::fs::read_to_string(t.path().join("syscall")) else { continue };
            let Some(addr) = futex_address(&sc) else { continue };
            let maps = maps.get_or_insert_with(|| read_maps(pid));
            if let Some(m) = maps.iter().find(|m| m.start <= addr && addr < m.end) {
                out.push(FutexSleeper {
                    pid,
                    tid,
                    dev: m.dev,
                    ino: m.ino,
                    path: m.path.clone(),
                    offset: addr - m.start + m.offset,
                });
            }
        }
    }
    out
}

/// The address argument of a futex call in a `syscall` line, if the line is one.
fn futex_address(line: &str) -> Option<u64> {
    let mut f = line.split_whitespace();
    if f.next()?.parse::<u64>().ok()? != SYS_FUTEX {
        return None;
    }
    u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()
}

struct MapLine {
    start: u64,
    end: u64,
    offset: u64,
    dev: (u32, u32),
    ino: u64,
    path: PathBuf,
}

fn read_maps(pid: u32) -> Vec<MapLine> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    text.lines().filter_map(parse_map_line).collect()
}

/// `start-end perms offset maj:min inode path`
fn parse_map_line(l: &str) -> Option<MapLine> {
    let mut f = l.splitn(6, ' ').filter(|s| !s.is_empty());
    let (range, _perms, off, dev, ino) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let path = l.get(l.find('/')?..)?.trim_end();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    let ino: u64 = ino.parse().ok()?;
    if ino == 0 {
        return None;
    }
    Some(MapLine {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        offset: u64::from_str_radix(off, 16).ok()?,
        dev: (u32::from_str_radix(maj, 16).ok()?, u32::from_str_radix(min, 16).ok()?),
        ino,
        path: PathBuf::from(path),
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parses_syscall_and_maps_lines() {
        let sc = format!("{SYS_FUTEX} 0x7fa0c828d008 0x0 0x0 0x0 0x0 0x0 0x7ffd 0x7fa0");
        assert_eq!(futex_address(&sc), Some(0x7fa0c828d008));
        assert_eq!(futex_address("running"), None);
        assert_eq!(futex_address("0 0x3 0x1 0x2"), if SYS_FUTEX == 0 { Some(3) } else { None });
        let m = parse_map_line(
            "7fa0c828d000-7fa0c828e000 rw-s 00001000 00:1b 1874                       /dev/shm/a b",
        )
        .unwrap();
        assert_eq!(
            (m.start, m.end, m.offset, m.dev, m.ino),
            (0x7fa0c828d000, 0x7fa0c828e000, 0x1000, (0, 0x1b), 1874)
        );
        assert_eq!(m.path, PathBuf::from("/dev/shm/a b"));
        assert!(parse_map_line("7fff-8000 r-xp 00000000 00:00 0 [vdso]").is_none());
    }

    #[test]
    fn sees_a_thread_sleeping_on_a_mapped_word() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("word");
        let map = std::sync::Arc::new(crate::shm::Mapping::create(&path, 4096, 0o600).unwrap());
        let m2 = map.clone();
        let t = std::thread::spawn(move || {
            let w = m2.get::<AtomicU32>(64).unwrap();
            while w.load(Ordering::Acquire) == 0 {
                crate::sys::futex_wait(w, 0, Some(std::time::Duration::from_secs(10)));
            }
        });
        let me = std::process::id();
        let mut found = None;
        for _ in 0..500 {
            found = futex_sleepers().into_iter().find(|s| s.pid == me && s.offset == 64);
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let w = map.get::<AtomicU32>(64).unwrap();
        w.store(1, Ordering::Release);
        crate::sys::futex_wake(w, 1);
        t.join().unwrap();
        let s = found.expect("the sleeping thread is seen");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(s.ino, std::fs::metadata(&path).unwrap().ino());
    }
}
