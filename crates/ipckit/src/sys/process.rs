//! Process and thread identity, liveness, and clocks.
//!
//! A bare pid is not an identity: Linux reuses pids (and thread ids, which share the same
//! number space). ipckit therefore names a process or thread by `(id, start time)`, the start
//! time being field 22 of [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)
//! (clock ticks since boot). A reused id has a later start time, so it is not taken for the
//! process that died.

use std::cell::Cell;
use std::io::Read;
use std::time::Duration;

/// A process or thread: its id and its start time.
///
/// Two `ProcessId`s are equal only if they name the same incarnation of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid (or tid, for a thread).
    pub pid: u32,
    /// Start time in clock ticks after boot, as in `/proc/<pid>/stat`.
    pub start_time: u64,
}

/// What [`liveness`] found out about a [`ProcessId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The process runs (or sleeps): it may still act.
    Alive,
    /// The process is gone: exited, killed, a zombie waiting to be reaped, or its id now
    /// belongs to a younger process.
    Dead,
}

impl ProcessId {
    /// The identity of the live process or thread `pid`, or `None` if there is none.
    pub fn of(pid: u32) -> Option<ProcessId> {
        match read_stat(pid)? {
            Stat { zombie: true, .. } => None,
            Stat { start_time, .. } => Some(ProcessId { pid, start_time }),
        }
    }

    /// The calling process (its thread-group leader's id). Cached; the cache is keyed by pid,
    /// so a child made by `fork` reads its own.
    pub fn current_process() -> ProcessId {
        use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        static PID: AtomicU32 = AtomicU32::new(0);
        static START: AtomicU64 = AtomicU64::new(0);
        let pid = current_pid();
        // Acquire: pairs with the Release below, so START belongs to this PID.
        if PID.load(Ordering::Acquire) == pid {
            return ProcessId { pid, start_time: START.load(Ordering::Relaxed) };
        }
        let me = ProcessId::of(pid).unwrap_or(ProcessId { pid, start_time: 0 });
        if me.start_time != 0 {
            START.store(me.start_time, Ordering::Relaxed);
            PID.store(pid, Ordering::Release);
        }
        me
    }

    /// The calling thread. Cached per thread (and refreshed in the child after `fork`).
    pub fn current_thread() -> ProcessId {
        let tid = current_tid();
        let start = THREAD_START.with(|c| c.get());
        if let Some(start_time) = start {
            return ProcessId { pid: tid, start_time };
        }
        let start_time = read_stat(tid).map_or(0, |s| s.start_time);
        THREAD_START.with(|c| c.set(Some(start_time)));
        ProcessId { pid: tid, start_time }
    }

    /// Packs the identity into 64 bits: the id in the high half, the low 32 bits of the start
    /// time in the low half. Used where one atomic store must publish an owner.
    pub fn token(self) -> u64 {
        ((self.pid as u64) << 32) | (self.start_time & 0xffff_ffff)
    }

    /// Inverse of [`token`](Self::token) (the start time keeps only its low 32 bits).
    pub fn from_token(token: u64) -> ProcessId {
        ProcessId { pid: (token >> 32) as u32, start_time: token & 0xffff_ffff }
    }

    /// Whether this process is still the one it was (see [`liveness`]).
    pub fn is_alive(self) -> bool {
        liveness(self) == Liveness::Alive
    }
}

/// Is the process or thread `id` still alive?
///
/// `Dead` when `/proc/<pid>` is gone, is a zombie, or belongs to a process with another start
/// time (the id was reused). A start time of 0 in `id` means "unknown": then only the first
/// two tests apply. Only the low 32 bits of the start time are compared when `id` came from a
/// [token](ProcessId::token).
pub fn liveness(id: ProcessId) -> Liveness {
    if id.pid == 0 {
        return Liveness::Dead;
    }
    match read_stat(id.pid) {
        None => {
            // /proc may be hidden (hidepid): fall back on kill(pid, 0).
            if std::path::Path::new("/proc/self/stat").exists() {
                Liveness::Dead
            } else {
                pid_exists_by_signal(id.pid)
            }
        }
        Some(s) if s.zombie => Liveness::Dead,
        Some(s) => {
            let same = id.start_time == 0
                || s.start_time == id.start_time
                || (id.start_time <= 0xffff_ffff && s.start_time & 0xffff_ffff == id.start_time);
            if same { Liveness::Alive } else { Liveness::Dead }
        }
    }
}

fn pid_exists_by_signal(pid: u32) -> Liveness {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        Liveness::Alive
    } else {
        Liveness::Dead
    }
}

struct Stat {
    zombie: bool,
    start_time: u64,
}

/// Reads state and start time from `/proc/<pid>/stat` (works for thread ids too).
fn read_stat(pid: u32) -> Option<Stat> {
    let mut path = [0u8; 32];
    let p = format_proc_path(&mut path, pid);
    let mut f = std::fs::File::open(p).ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

fn format_proc_path(buf: &mut [u8; 32], pid: u32) -> &str {
    use std::io::Write;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "/proc/{pid}/stat");
    let n = cur.position() as usize;
    std::str::from_utf8(&buf[..n]).unwrap_or("/proc/self/stat")
}

/// Parses `pid (comm) state ppid ...`; `comm` may hold spaces and parentheses, so fields are
/// counted after the *last* `)`.
fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let close = buf.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&buf[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    let start_time = fields.nth(18)?.parse().ok()?; // field 22
    Some(Stat { zombie: matches!(state, "Z" | "X" | "x"), start_time })
}

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
    static THREAD_START: Cell<Option<u64>> = const { Cell::new(None) };
}

#[cfg(not(loom))]
static ATFORK: std::sync::Once = std::sync::Once::new();

#[cfg(not(loom))]
extern "C" fn reset_after_fork() {
    // Runs in the child's only thread, whose cached ids are the parent thread's.
    TID.with(|c| c.set(0));
    THREAD_START.with(|c| c.set(None));
    PID.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// The calling thread's id (`gettid`), cached in a thread-local.
///
/// The cache is cleared in the child of `fork` (through `pthread_atfork`), so a forked child
/// sees its own id. A child made with a raw `clone` system call bypasses that hook.
#[doc(alias = "gettid")]
#[inline]
#[cfg(not(loom))]
pub fn current_tid() -> u32 {
    let t = TID.with(|c| c.get());
    if t != 0 { t } else { current_tid_slow() }
}

/// Under loom every model thread runs on one OS thread: hand out distinct ids instead.
#[cfg(loom)]
pub fn current_tid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    loom::thread_local! { static LOOM_TID: Cell<u32> = Cell::new(0); }
    LOOM_TID.with(|c| {
        if c.get() == 0 {
            c.set(NEXT.fetch_add(1, Ordering::Relaxed) % (1 << 29) + 1);
        }
        c.get()
    })
}

#[cold]
#[cfg(not(loom))]
fn current_tid_slow() -> u32 {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only touches this crate's thread-locals; it is
        // async-signal-safe enough for the fork child (no allocation, no locks).
        unsafe {
            libc::pthread_atfork(None, None, Some(reset_after_fork));
        }
    });
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    TID.with(|c| c.set(tid));
    tid
}

/// The process (thread group) that thread `tid` belongs to, from `/proc/TID/status`.
pub fn thread_group_of(tid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse().ok())
}

/// The calling process's real user id.
#[doc(alias = "getuid")]
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

pub(super) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: passwd is plain data, zeroed is valid; getpwuid_r writes the entry into `pw`
    // and its strings into `buf` (whose length we pass), and sets `result` to &pw or null.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if r != 0 || result.is_null() || pw.pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned())
    }
}

/// The calling process's id, cached (glibc no longer caches `getpid`, and on a virtual
/// machine each system call costs a fraction of a microsecond). The cache is cleared in the
/// child of `fork` by the same `pthread_atfork` hook as [`current_tid`]'s.
#[doc(alias = "getpid")]
pub fn current_pid() -> u32 {
    #[cfg(loom)]
    {
        std::process::id()
    }
    #[cfg(not(loom))]
    {
        let p = PID.load(std::sync::atomic::Ordering::Relaxed);
        if p != 0 {
            return p;
        }
        // Make sure the fork hook that clears the cache is registered first.
        let _ = current_tid();
        let p = std::process::id();
        PID.store(p, std::sync::atomic::Ordering::Relaxed);
        p
    }
}

/// `current_pid`'s cache; 0 = unknown. Cleared in fork children.
#[cfg(not(loom))]
static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// How many CPUs are online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
pub fn cpus_online() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).max(1) as usize
}

/// How many CPUs the calling thread may run on (its `sched_getaffinity` mask), at least 1.
#[doc(alias = "sched_getaffinity")]
pub fn cpus_available() -> usize {
    // SAFETY: cpu_set_t is plain data, zeroed is the empty set; sched_getaffinity writes at
    // most size_of::<cpu_set_t>() bytes into it; CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        (libc::CPU_COUNT(&set) as usize).max(1)
    }
}

pub(super) fn monotonic_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_parens_and_spaces() {
        let line =
            b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
        let s = parse_stat(line).unwrap();
        assert!(!s.zombie);
        assert_eq!(s.start_time, 123456);
        let z = parse_stat(b"7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0").unwrap();
        assert!(z.zombie);
        assert!(parse_stat(b"garbage").is_none());
    }

    #[test]
    fn self_is_alive_and_reused_id_is_not() {
        let me = ProcessId::current_process();
        assert!(me.start_time > 0);
        assert_eq!(liveness(me), Liveness::Alive);
        let older = ProcessId { pid: me.pid, start_time: me.start_time + 1 };
        assert_eq!(liveness(older), Liveness::Dead, "same pid, other start time: not the same");
        assert_eq!(liveness(ProcessId::from_token(me.token())), Liveness::Alive);
    }

    #[test]
    fn exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessId::of(child.id());
        child.wait().unwrap();
        if let Some(id) = id {
            assert_eq!(liveness(id), Liveness::Dead);
        }
    }

    #[test]
    fn threads_have_their_own_tid() {
        let main = current_tid();
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(main, other);
        assert_eq!(main, current_tid());
        assert!(ProcessId::current_thread().is_alive());
    }

    #[test]
    fn cached_pid_is_the_real_one_also_after_fork() {
        assert_eq!(current_pid(), std::process::id());
        assert_eq!(current_pid(), std::process::id());
        // SAFETY: the child only compares two numbers and `_exit`s (no allocation, no locks).
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            // SAFETY: getpid has no preconditions; _exit ends the child at once.
            unsafe { libc::_exit(if current_pid() == libc::getpid() as u32 { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child saw its parent's pid"
        );
    }

    #[test]
    fn monotonic_clock_advances() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(b >= a);
    }
}
