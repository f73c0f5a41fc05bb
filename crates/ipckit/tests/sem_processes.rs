//! Multi-process tests of `ipckit::sem::SemaphoreSet`: real child processes that open the same
//! set in a temporary namespace.
//!
//! As in `multiprocess.rs`, this binary has its own `main` (`harness = false`): without
//! `IPCKIT_TEST_ROLE` it runs the tests, with it it plays a child's part. Every wait on a
//! child is bounded, so a bug fails a test instead of hanging it.
//!
//! `IPCKIT_SEM_KILL_ROUNDS` sets the rounds of the SIGKILL test (default 500: about 10 s on
//! two cores).

use ipckit::ns::{Key, Namespace};
use ipckit::sem::{SemError, SemFlags, SemOp, SemaphoreSet};
use rand::Rng;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const KEY: Key = Key(0x5e4);

mod support;

fn main() {
    support::main(
        &[
            ("multi_op_atomic_under_contention", multi_op_atomic_under_contention),
            (
                "fast_single_ops_and_multi_ops_lose_nothing",
                fast_single_ops_and_multi_ops_lose_nothing,
            ),
            ("undo_on_normal_exit", undo_on_normal_exit),
            ("undo_on_sigkill_wakes_a_sleeper_within_a_second", undo_on_sigkill_wakes_a_sleeper),
            ("remove_while_blocked_in_another_process", remove_while_blocked),
            ("wait_for_zero_across_processes", wait_for_zero_across_processes),
            ("sixteen_processes_killed_at_random_keep_the_values", killed_at_random),
        ],
        child,
    );
}

fn scratch() -> (tempfile::TempDir, Namespace) {
    let d = tempfile::Builder::new()
        .prefix("ipckit-sem-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let ns = Namespace::at(d.path()).unwrap();
    (d, ns)
}

fn spawn(role: &str, ns: &Namespace, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .arg(ns.dir())
        .args(args)
        .env("IPCKIT_TEST_ROLE", role)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `c` (bounded); returns its exit code.
fn wait_code(c: Child) -> i32 {
    support::wait(c).code().unwrap_or(-1)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn op(num: u16, delta: i16) -> SemOp {
    SemOp::new(num, delta)
}

fn child(role: &str, args: &[String]) {
    let ns = Namespace::at(Path::new(&args[0])).unwrap();
    let set = SemaphoreSet::open(&ns, KEY).unwrap();
    let n = |i: usize| -> u64 { args[i].parse().unwrap() };
    match role {
        "transfer" => {
            // Sems: 0 = A, 1 = B (A + B constant), 2 = Z (always 0).
            for _ in 0..n(1) {
                set.apply_timeout(&[op(0, -1), op(1, 1)], LIMIT).unwrap();
                set.apply_timeout(&[op(1, -1), op(0, 1)], LIMIT).unwrap();
                let r = set.apply(&[op(0, -1), op(1, -1), op(2, -1).with(SemFlags::NOWAIT)]);
                assert!(matches!(r, Err(SemError::WouldBlock)), "{r:?}");
            }
        }
        "single" => {
            // Single operations (the lock-free fast path) on semaphore 0, racing with the
            // multi-operation transfers: none may be lost or overwritten.
            for _ in 0..n(1) {
                set.apply_timeout(&[op(0, -1)], LIMIT).unwrap();
                set.apply(&[op(0, 1)]).unwrap();
            }
        }
        "take-undo-exit" => {
            set.apply(&[op(0, -1).with(SemFlags::UNDO), op(1, 2).with(SemFlags::UNDO)]).unwrap();
        }
        "take-undo-hang" => {
            set.apply(&[op(0, -1).with(SemFlags::UNDO)]).unwrap();
            set.apply(&[op(1, 1)]).unwrap(); // "I hold it"
            std::thread::sleep(Duration::from_secs(60)); // until SIGKILLed
        }
        "block" => match set.apply_timeout(&[op(0, -1)], LIMIT) {
            Err(SemError::Removed) => std::process::exit(7),
            other => panic!("expected Removed, got {other:?}"),
        },
        "zero" => {
            set.apply_timeout(&[op(0, 0)], LIMIT).unwrap();
            set.apply(&[op(1, 1)]).unwrap();
        }
        "churn" => loop {
            // Take 2 of sem 0 and 1 of sem 1 together, with undo; give them back.
            set.apply(&[op(0, -2).with(SemFlags::UNDO), op(1, -1).with(SemFlags::UNDO)]).unwrap();
            std::hint::spin_loop();
            set.apply(&[op(1, 1).with(SemFlags::UNDO), op(0, 2).with(SemFlags::UNDO)]).unwrap();
        },
        other => panic!("unknown role {other}"),
    }
}

fn multi_op_atomic_under_contention() {
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 3, 0o600).unwrap();
    set.set_all(&[3, 2, 0]).unwrap();
    let mut kids: Vec<Child> = (0..4).map(|_| spawn("transfer", &ns, &["3000"])).collect();
    let t = Instant::now();
    let mut looks = 0u64;
    // Look while the children run: every snapshot must be a whole number of steps.
    while !kids.iter_mut().all(|k| k.try_wait().unwrap().is_some()) {
        assert!(t.elapsed() < LIMIT, "children did not finish");
        let v = set.get_all().unwrap();
        assert_eq!(v[0] + v[1], 5, "a transfer was seen half done: {v:?}");
        assert_eq!(v[2], 0, "a failed multi-op changed something: {v:?}");
        looks += 1;
    }
    assert!(looks > 0);
    for k in kids {
        assert_eq!(wait_code(k), 0);
    }
    assert_eq!(set.get_all().unwrap(), vec![3, 2, 0]);
}

fn fast_single_ops_and_multi_ops_lose_nothing() {
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 3, 0o600).unwrap();
    set.set_all(&[3, 2, 0]).unwrap();
    let mut kids: Vec<Child> = (0..2).map(|_| spawn("transfer", &ns, &["3000"])).collect();
    kids.extend((0..2).map(|_| spawn("single", &ns, &["5000"])));
    while !kids.iter_mut().all(|k| k.try_wait().unwrap().is_some()) {
        let v = set.get_all().unwrap();
        // Each "single" child holds at most one unit.
        assert!((3..=5).contains(&(v[0] + v[1])), "units appeared or vanished: {v:?}");
        assert_eq!(v[2], 0);
    }
    for k in kids {
        assert_eq!(wait_code(k), 0);
    }
    assert_eq!(set.get_all().unwrap(), vec![3, 2, 0], "an update was lost");
}

fn undo_on_normal_exit() {
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600).unwrap();
    set.set_all(&[1, 0]).unwrap();
    assert_eq!(wait_code(spawn("take-undo-exit", &ns, &[])), 0);
    // The child took 1 and added 2 and exited: both are reversed.
    assert_eq!(set.get_all().unwrap(), vec![1, 0]);
}

fn undo_on_sigkill_wakes_a_sleeper() {
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600).unwrap();
    set.set(0, 1).unwrap();
    let mut kid = spawn("take-undo-hang", &ns, &[]);
    set.apply_timeout(&[op(1, -1)], LIMIT).unwrap(); // the child holds the unit
    let waiter = std::thread::spawn(move || {
        let r = set.apply_timeout(&[op(0, -1)], LIMIT);
        (r.is_ok(), Instant::now(), set)
    });
    std::thread::sleep(Duration::from_millis(100));
    kid.kill().unwrap();
    let killed = Instant::now();
    kid.wait().unwrap();
    let (ok, woke, set) = waiter.join().unwrap();
    assert!(ok, "the waiter did not get the unit back");
    let lag = woke.duration_since(killed);
    assert!(lag < Duration::from_secs(1), "undo took {lag:?}");
    assert_eq!(set.get_all().unwrap(), vec![0, 0]);
}

fn remove_while_blocked() {
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 1, 0o600).unwrap();
    let kids: Vec<Child> = (0..3).map(|_| spawn("block", &ns, &[])).collect();
    wait_until("three blocked children", || set.waiting_for_increase(0).unwrap() == 3);
    set.remove().unwrap();
    for k in kids {
        assert_eq!(wait_code(k), 7, "a child did not see Removed");
    }
}

fn wait_for_zero_across_processes() {
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600).unwrap();
    set.set(0, 2).unwrap();
    let kids: Vec<Child> = (0..2).map(|_| spawn("zero", &ns, &[])).collect();
    wait_until("two zero-waiters", || set.waiting_for_zero(0).unwrap() == 2);
    set.apply(&[op(0, -1)]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(set.get(1).unwrap(), 0, "woke before the value was zero");
    set.apply(&[op(0, -1)]).unwrap();
    for k in kids {
        assert_eq!(wait_code(k), 0);
    }
    assert_eq!(set.get(1).unwrap(), 2);
}

fn killed_at_random() {
    let rounds: usize =
        std::env::var("IPCKIT_SEM_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let (_d, ns) = scratch();
    let set = SemaphoreSet::create(&ns, KEY, 2, 0o600).unwrap();
    let initial = vec![6, 4];
    set.set_all(&initial).unwrap();
    let mut kids: Vec<Child> = (0..16).map(|_| spawn("churn", &ns, &[])).collect();
    let mut rng = rand::thread_rng();
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..2000)));
        let i = rng.gen_range(0..kids.len());
        kids[i].kill().unwrap();
        kids[i].wait().unwrap();
        kids[i] = spawn("churn", &ns, &[]);
        let v = set.get_all().unwrap();
        assert!(v[0] <= 6 && v[1] <= 4, "more units than exist: {v:?}");
    }
    for k in &mut kids {
        k.kill().unwrap();
        k.wait().unwrap();
    }
    assert_eq!(set.get_all().unwrap(), initial, "after {rounds} rounds of SIGKILL");
    // Nobody is left counted as waiting.
    assert_eq!(set.waiting_for_increase(0).unwrap(), 0);
}
