//! `shm-attach`: the cost of making and using a segment: create + attach + detach + remove,
//! and attach + detach of an existing one, for ipckit `Segment` and System V
//! `shmget`/`shmat`/`shmdt`/`shmctl(IPC_RMID)`.

use crate::harness::{Report, ns_per_iter};
use ipckit::ns::{Key, Namespace};
use ipckit::shm::Segment;

const SIZE: usize = 64 * 1024;

pub fn run(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("ipckit-bench-").tempdir_in("/dev/shm")?;
    let ns = Namespace::at(dir.path())?;

    let us = ns_per_iter(7, 200, |n| {
        for _ in 0..n {
            let s = Segment::create(&ns, Key(0x77), SIZE as u64, 0o600).unwrap();
            drop(s.attach().unwrap());
            s.remove().unwrap();
        }
    }) / 1e3;
    r.push("ipckit Segment", "create+attach+detach+rm 64K", us, "us");
    let us = ns_per_iter(7, 200, |n| {
        for _ in 0..n {
            // SAFETY: a private System V segment, attached, detached and removed at once.
            unsafe {
                let id = libc::shmget(libc::IPC_PRIVATE, SIZE, 0o600 | libc::IPC_CREAT);
                assert!(id >= 0);
                let p = libc::shmat(id, std::ptr::null(), 0);
                assert_ne!(p as isize, -1);
                libc::shmdt(p);
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        }
    }) / 1e3;
    r.push("System V shm", "create+attach+detach+rm 64K", us, "us");

    let seg = Segment::create(&ns, Key(0x78), SIZE as u64, 0o600)?;
    let us = ns_per_iter(7, 500, |n| {
        for _ in 0..n {
            drop(Segment::open(&ns, Key(0x78)).unwrap().attach().unwrap());
        }
    }) / 1e3;
    r.push("ipckit Segment", "open+attach+detach 64K", us, "us");
    seg.remove()?;
    // SAFETY: a private System V segment, removed at the end.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, SIZE, 0o600 | libc::IPC_CREAT) };
    anyhow::ensure!(id >= 0, "shmget failed");
    let us = ns_per_iter(7, 500, |n| {
        for _ in 0..n {
            // SAFETY: attaches and detaches the segment made above.
            unsafe {
                let p = libc::shmat(id, std::ptr::null(), 0);
                assert_ne!(p as isize, -1);
                libc::shmdt(p);
            }
        }
    }) / 1e3;
    r.push("System V shm", "attach+detach 64K", us, "us");
    // SAFETY: removes the segment made above.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    Ok(())
}
