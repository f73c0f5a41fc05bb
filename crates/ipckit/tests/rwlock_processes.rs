//! A process-shared reader-writer lock in a shared mapping, used by real processes: writers
//! and readers in separate processes never see a torn value, a writer in one process blocks
//! readers in another, and a sleeping waiter in one process is woken by a release in another.

mod support;

use ipckit::shm::Mapping;
use ipckit::sync::{Policy, RwLock};
use std::path::Path;
use std::time::Duration;
use support::{eventually, scratch, spawn, wait_ok};

type Shared = RwLock<[u64; 8]>;

const ROUNDS: u64 = 2_000;
const WAIT: Duration = Duration::from_secs(20);

fn main() {
    support::main(
        &[
            ("zeroed_fair_rwlock_readers_and_writers_across_processes", zeroed_fair),
            ("writer_preferred_rwlock_placed_in_a_mapping", writer_preferred),
            ("writer_in_one_process_blocks_and_wakes_a_reader_in_another", blocks_and_wakes),
        ],
        child,
    );
}

fn lock_at(m: &Mapping) -> &Shared {
    m.get::<Shared>(0).expect("the lock fits the mapping")
}

fn child(role: &str, args: &[String]) {
    let m = Mapping::open(Path::new(&args[0])).expect("open mapping");
    let l = lock_at(&m);
    match role {
        "writer" => {
            for _ in 0..ROUNDS {
                let mut g = l.write_timeout(WAIT).expect("writer waited too long");
                let v = g[0];
                assert!(g.iter().all(|&x| x == v), "writer found a torn value: {:?}", *g);
                for x in g.iter_mut() {
                    *x = v + 1;
                }
            }
        }
        "reader" => {
            for _ in 0..ROUNDS {
                let g = l.read_timeout(WAIT).expect("reader waited too long");
                let v = g[0];
                assert!(g.iter().all(|&x| x == v), "reader saw a torn value: {:?}", *g);
            }
        }
        "blocked-reader" => {
            // The parent holds the write lock: a reader must not get in now...
            assert!(l.try_read().is_err(), "read lock taken while another process writes");
            assert!(l.read_timeout(Duration::from_millis(30)).is_err());
            std::fs::write(format!("{}.ready", args[0]), b"").unwrap();
            // ...and must be woken when the parent releases.
            let g = l.read_timeout(WAIT).expect("never woken by the other process's release");
            assert_eq!(g[0], 42, "the writer's value is visible");
        }
        other => panic!("unknown role {other}"),
    }
}

fn run_mix(path: &Path, m: &Mapping) {
    let p = path.to_str().unwrap();
    let kids: Vec<_> =
        ["writer", "writer", "reader", "reader"].iter().map(|role| spawn(role, &[p])).collect();
    for k in kids {
        wait_ok(k);
    }
    let g = lock_at(m).read();
    assert_eq!(*g, [2 * ROUNDS; 8], "lost or torn writes");
    drop(g);
    let s = lock_at(m).raw().state();
    assert_eq!((s.readers, s.writer, s.waiting_readers, s.waiting_writers), (0, false, 0, 0));
}

fn zeroed_fair() {
    let dir = scratch();
    let path = dir.path().join("rw");
    let m = Mapping::create(&path, 4096, 0o600).unwrap();
    assert_eq!(lock_at(&m).raw().policy(), Policy::Fair, "zeroed memory is a Fair lock");
    run_mix(&path, &m);
}

fn writer_preferred() {
    let dir = scratch();
    let path = dir.path().join("rw");
    let m = Mapping::create(&path, 4096, 0o600).unwrap();
    // Two-phase initialization: build the lock in place before any other process opens it.
    // SAFETY: the mapping is 4096 bytes and page-aligned, so offset 0 holds a `Shared` in
    // bounds and aligned; no other process has opened the file yet, so nobody races the write.
    unsafe {
        std::ptr::write(
            m.as_ptr() as *mut Shared,
            RwLock::with_policy([0; 8], Policy::WriterPreferred),
        )
    };
    assert_eq!(lock_at(&m).raw().policy(), Policy::WriterPreferred);
    run_mix(&path, &m);
}

fn blocks_and_wakes() {
    let dir = scratch();
    let path = dir.path().join("rw");
    let m = Mapping::create(&path, 4096, 0o600).unwrap();
    let l = lock_at(&m);
    let mut g = l.write();
    let kid = spawn("blocked-reader", &[path.to_str().unwrap()]);
    let ready = format!("{}.ready", path.display());
    assert!(eventually(WAIT, || Path::new(&ready).exists()), "child never got ready");
    // Give the child time to fall asleep on the futex, then publish and release.
    assert!(eventually(WAIT, || l.raw().state().waiting_readers == 1), "child never waited");
    g[0] = 42;
    drop(g);
    wait_ok(kid);
}
