//! Multi-process tests of the `sync` primitives: real child processes sharing a mapping.
//!
//! This test binary has its own `main` (`harness = false`): run without `IPCKIT_TEST_ROLE` it
//! runs the tests; each test re-executes the binary with `IPCKIT_TEST_ROLE` set to play a
//! child's part. Every wait on a child is bounded, so a bug fails a test instead of hanging.

use ipckit::shm::{Mapping, ShmSafe};
use ipckit::sync::{Event, EventMode, LockError, Mutex, Semaphore};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;

use support::{scratch, spawn, wait_ok};

fn main() {
    support::main(
        &[
            ("mutex_counter_4_processes", mutex_counter_4_processes),
            ("prodcons_three_semaphores", prodcons_three_semaphores),
            ("pingpong_alternates", pingpong_alternates),
            ("owner_killed_gives_owner_died", owner_killed_gives_owner_died),
            ("sleeping_waiter_sees_owner_death", sleeping_waiter_sees_owner_death),
            ("event_orders_sections_across_processes", event_orders_sections_across_processes),
        ],
        child,
    );
}

// ---------------------------------------------------------------------------------------
// Layouts shared by parent and children.

#[repr(C)]
struct Ring {
    empty: Semaphore,
    filled: Semaphore,
    mutex: Semaphore,
    next_in: AtomicU32,
    next_out: AtomicU32,
    slots: [AtomicU64; 8],
}
// SAFETY: repr(C) of ShmSafe semaphores and atomics, valid for all bit patterns (indices are
// taken modulo 8), zeroed is a valid start, no Drop.
unsafe impl ShmSafe for Ring {}

#[repr(C)]
struct Pair {
    first: Semaphore,
    second: Semaphore,
}
// SAFETY: two ShmSafe semaphores.
unsafe impl ShmSafe for Pair {}

#[repr(C)]
struct Handshake {
    locked: Event,
    section_x_done: Event,
    order: AtomicU32,
    mutex: Mutex<u64>,
}
// SAFETY: repr(C) of ShmSafe parts.
unsafe impl ShmSafe for Handshake {}

fn child(role: &str, args: &[String]) {
    let m = Mapping::open(Path::new(&args[0])).unwrap();
    match role {
        "count" => {
            let c = m.get::<Mutex<u64>>(0).unwrap();
            let n: u64 = args[1].parse().unwrap();
            for _ in 0..n {
                *c.lock().unwrap() += 1;
            }
        }
        "produce" | "consume" => {
            let r = m.get::<Ring>(0).unwrap();
            let items: usize = args[1].parse().unwrap();
            let seen = m.get_slice::<AtomicU8>(size_of::<Ring>(), items).unwrap();
            if role == "produce" {
                let (first, last): (u64, u64) =
                    (args[2].parse().unwrap(), args[3].parse().unwrap());
                for item in first..=last {
                    put(r, item);
                }
            } else {
                loop {
                    let item = take(r);
                    if item == 0 {
                        break;
                    }
                    seen[item as usize - 1].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        "ping" | "pong" => {
            let p = m.get::<Pair>(0).unwrap();
            let (mine, theirs) =
                if role == "ping" { (&p.first, &p.second) } else { (&p.second, &p.first) };
            let word = if role == "ping" { "Ping" } else { "Pong" };
            let rounds: u32 = args[1].parse().unwrap();
            let mut out = std::io::stdout().lock();
            for _ in 0..rounds {
                assert!(mine.p_timeout(Duration::from_secs(20)), "{word}: partner stopped");
                writeln!(out, "{word}").unwrap();
                out.flush().unwrap();
                theirs.v().unwrap();
            }
        }
        "hold" => {
            let h = m.get::<Handshake>(0).unwrap();
            let g = h.mutex.lock().unwrap();
            std::mem::forget(g);
            h.locked.set();
            std::thread::sleep(Duration::from_secs(60)); // until SIGKILLed
        }
        "section-y" => {
            let h = m.get::<Handshake>(0).unwrap();
            assert!(h.section_x_done.wait_timeout(Duration::from_secs(20)));
            // Y runs only after X: X wrote 1.
            assert_eq!(h.order.load(Ordering::Acquire), 1);
            h.order.store(2, Ordering::Release);
        }
        other => panic!("unknown role {other}"),
    }
}

fn put(r: &Ring, item: u64) {
    assert!(r.empty.p_timeout(Duration::from_secs(20)), "producer starved");
    r.mutex.p();
    let i = r.next_in.load(Ordering::Relaxed) as usize % 8;
    r.slots[i].store(item, Ordering::Relaxed);
    r.next_in.store((i as u32 + 1) % 8, Ordering::Relaxed);
    r.mutex.v().unwrap();
    r.filled.v().unwrap();
}

fn take(r: &Ring) -> u64 {
    assert!(r.filled.p_timeout(Duration::from_secs(20)), "consumer starved");
    r.mutex.p();
    let i = r.next_out.load(Ordering::Relaxed) as usize % 8;
    let item = r.slots[i].load(Ordering::Relaxed);
    r.next_out.store((i as u32 + 1) % 8, Ordering::Relaxed);
    r.mutex.v().unwrap();
    r.empty.v().unwrap();
    item
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------
// The tests.

/// 4 processes x 100,000 increments of one counter under the robust Mutex: exact.
fn mutex_counter_4_processes() {
    let d = scratch();
    let p = d.path().join("counter");
    let m = Mapping::create(&p, 4096, 0o600).unwrap();
    let kids: Vec<_> = (0..4).map(|_| spawn("count", &[path_str(&p), "100000"])).collect();
    kids.into_iter().for_each(wait_ok);
    assert_eq!(*m.get::<Mutex<u64>>(0).unwrap().lock().unwrap(), 400_000);
}

/// The course's producer/consumer: 2 producers, 2 consumers, 100,000 numbered items through
/// an 8-slot buffer with empty = 8, filled = 0, mutex = 1: every item consumed exactly once.
fn prodcons_three_semaphores() {
    const ITEMS: u64 = 100_000;
    let d = scratch();
    let p = d.path().join("ring");
    let m = Mapping::create(&p, size_of::<Ring>() + ITEMS as usize, 0o600).unwrap();
    let r = m.get::<Ring>(0).unwrap();
    r.empty.v_n(8).unwrap();
    r.mutex.v().unwrap();
    let items = ITEMS.to_string();
    let consumers: Vec<_> = (0..2).map(|_| spawn("consume", &[path_str(&p), &items])).collect();
    let half = (ITEMS / 2).to_string();
    let half1 = (ITEMS / 2 + 1).to_string();
    let producers = vec![
        spawn("produce", &[path_str(&p), &items, "1", &half]),
        spawn("produce", &[path_str(&p), &items, &half1, &items]),
    ];
    producers.into_iter().for_each(wait_ok);
    put(r, 0);
    put(r, 0);
    consumers.into_iter().for_each(wait_ok);
    let seen = m.get_slice::<AtomicU8>(size_of::<Ring>(), ITEMS as usize).unwrap();
    let bad = seen.iter().filter(|c| c.load(Ordering::Relaxed) != 1).count();
    assert_eq!(bad, 0, "{bad} items not consumed exactly once");
    assert_eq!(r.filled.count(), 0);
    assert_eq!(r.empty.count(), 8);
}

/// Two processes, two semaphores: 1,000 strictly alternating Ping/Pong lines.
fn pingpong_alternates() {
    let d = scratch();
    let p = d.path().join("pair");
    let m = Mapping::create(&p, 4096, 0o600).unwrap();
    m.get::<Pair>(0).unwrap().first.v().unwrap();
    let out_path: PathBuf = d.path().join("out");
    let out = std::fs::File::create(&out_path).unwrap();
    let kids: Vec<_> = ["ping", "pong"]
        .iter()
        .map(|role| {
            support::command(role, &[path_str(&p), "1000"])
                .stdout(Stdio::from(out.try_clone().unwrap()))
                .spawn()
                .unwrap()
        })
        .collect();
    kids.into_iter().for_each(wait_ok);
    let text = std::fs::read_to_string(&out_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, if i % 2 == 0 { "Ping" } else { "Pong" }, "line {i}");
    }
}

fn start_holder(p: &Path) -> Child {
    let m = Mapping::open(p).unwrap();
    let kid = spawn("hold", &[path_str(p)]);
    assert!(m.get::<Handshake>(0).unwrap().locked.wait_timeout(Duration::from_secs(20)));
    kid
}

/// A child locks the mutex and is SIGKILLed: the next lock returns OwnerDied within 1 s;
/// unlocking without marking consistent makes the mutex NotRecoverable.
fn owner_killed_gives_owner_died() {
    let d = scratch();
    let p = d.path().join("hs");
    let m = Mapping::create(&p, 4096, 0o600).unwrap();
    let h = m.get::<Handshake>(0).unwrap();
    let mut kid = start_holder(&p);
    kid.kill().unwrap(); // SIGKILL; not reaped yet: a zombie must count as dead too
    let t = Instant::now();
    let g = match h.mutex.lock() {
        Err(LockError::OwnerDied(g)) => g,
        other => panic!("expected OwnerDied, got {:?}", other.map(|_| ())),
    };
    assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
    drop(g); // without mark_consistent
    assert!(matches!(h.mutex.lock(), Err(LockError::NotRecoverable)));
    assert!(matches!(h.mutex.try_lock(), Err(LockError::NotRecoverable)));
    kid.wait().unwrap();

    // And the good path: repair, mark consistent, keep using it.
    let p2 = d.path().join("hs2");
    let m2 = Mapping::create(&p2, 4096, 0o600).unwrap();
    let h2 = m2.get::<Handshake>(0).unwrap();
    let mut kid = start_holder(&p2);
    kid.kill().unwrap();
    kid.wait().unwrap();
    let g = h2.mutex.lock().unwrap_err().into_guard().expect("OwnerDied");
    g.mark_consistent();
    drop(g);
    assert!(h2.mutex.lock().is_ok());
}

/// The waiter is already asleep in `lock` when the owner dies, and nobody will ever wake it:
/// it must notice the death by itself within 1 s.
fn sleeping_waiter_sees_owner_death() {
    let d = scratch();
    let p = d.path().join("hs");
    let m = Mapping::create(&p, 4096, 0o600).unwrap();
    let h = m.get::<Handshake>(0).unwrap();
    let mut kid = start_holder(&p);
    let pid = kid.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let killed_at = Instant::now();
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let r = unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        assert_eq!(r, 0);
        killed_at
    });
    let r = h.mutex.lock_timeout(Duration::from_secs(10));
    let woke = Instant::now();
    let killed_at = killer.join().unwrap();
    assert!(matches!(r, Err(LockError::OwnerDied(_))), "got {:?}", r.map(|_| ()));
    assert!(woke.duration_since(killed_at) < Duration::from_secs(1));
    kid.wait().unwrap();
}

/// Event: section Y of process B runs only after section X of process A.
fn event_orders_sections_across_processes() {
    let d = scratch();
    let p = d.path().join("ev");
    let m = Mapping::create(&p, 4096, 0o600).unwrap();
    let h = m.get::<Handshake>(0).unwrap();
    let kid = spawn("section-y", &[path_str(&p)]);
    std::thread::sleep(Duration::from_millis(50)); // B is (probably) waiting already
    h.order.store(1, Ordering::Release); // section X
    h.section_x_done.set();
    wait_ok(kid);
    assert_eq!(h.order.load(Ordering::Acquire), 2);
    assert_eq!(h.section_x_done.mode(), EventMode::ManualReset);
}
