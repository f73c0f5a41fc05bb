use super::*;
use std::sync::Arc;

fn ns() -> (tempfile::TempDir, Namespace) {
    let d = tempfile::tempdir().unwrap();
    let ns = Namespace::at(&d.path().join("ns")).unwrap();
    (d, ns)
}

fn op(num: u16, delta: i16) -> SemOp {
    SemOp::new(num, delta)
}

const LIMIT: Duration = Duration::from_secs(20);

thread_local! {
    /// Set in a waiter thread: sleep without the periodic re-check, so that a lost wake-up
    /// hangs the waiter (and the test fails by its timeout) instead of being papered over.
    pub(super) static NO_SLICE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

thread_local! {
    /// Set in a thread: never spin before waiting (as when spinning has stopped paying).
    pub(super) static NO_SPIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Yields this thread made before waiting.
    pub(super) static YIELDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn strict() {
    NO_SLICE.with(|c| c.set(true));
}

/// Joins `h`, failing the test if it takes longer than `LIMIT`.
fn join<T>(h: std::thread::JoinHandle<T>) -> T {
    let t = Instant::now();
    while !h.is_finished() {
        assert!(t.elapsed() < LIMIT, "thread did not finish in time");
        std::thread::sleep(Duration::from_millis(2));
    }
    h.join().unwrap()
}

#[test]
fn create_open_and_sizes() {
    let (_d, ns) = ns();
    let a = SemaphoreSet::create(&ns, Key(5), 3, 0o600).unwrap();
    assert_eq!(a.len(), 3);
    assert!(matches!(
        SemaphoreSet::create(&ns, Key(5), 3, 0o600),
        Err(ObjectError::AlreadyExists { .. })
    ));
    let b = SemaphoreSet::open(&ns, Key(5)).unwrap();
    assert_eq!(b.id(), a.id());
    // Smaller or equal is fine, larger is EINVAL.
    assert!(SemaphoreSet::open_or_create(&ns, Key(5), 2, 0o600).is_ok());
    assert!(matches!(
        SemaphoreSet::open_or_create(&ns, Key(5), 4, 0o600),
        Err(ObjectError::InvalidArgument(_))
    ));
    for bad in [0, SEMMSL + 1] {
        assert!(matches!(
            SemaphoreSet::create(&ns, Key(6), bad, 0o600),
            Err(ObjectError::InvalidArgument(_))
        ));
    }
    assert!(matches!(SemaphoreSet::open(&ns, Key(7)), Err(ObjectError::NotFound { .. })));
    let c = SemaphoreSet::open_id(&ns, a.id()).unwrap();
    assert_eq!(c.key(), Key(5));
    let e = ns.find_key(ObjectKind::Sem, Key(5)).unwrap();
    let st = SemaphoreSet::open_entry(&e).unwrap().stat().unwrap();
    assert_eq!((st.key, st.id, st.nsems, st.mode), (Key(5), a.id(), 3, 0o600));
    let (v, created) =
        SemaphoreSet::obtain_with_value(&ns, Key(8), 2, 7, 0o600, CreateMode::OpenOrCreate)
            .unwrap();
    assert!(created);
    assert_eq!(v.get_all().unwrap(), vec![7, 7]);
}

#[test]
fn multi_op_is_all_or_nothing() {
    let (_d, ns) = ns();
    let s = SemaphoreSet::create(&ns, Key(1), 3, 0o600).unwrap();
    s.set_all(&[2, 1, 0]).unwrap();
    // The last op cannot proceed: nothing happens.
    let r = s.try_apply(&[op(0, -1), op(2, 5), op(1, -2)]);
    assert!(matches!(r, Err(SemError::WouldBlock)));
    assert_eq!(s.get_all().unwrap(), vec![2, 1, 0]);
    // Out of range in the middle: nothing happens.
    let r = s.apply(&[op(0, -1), op(2, SEMVMX as i16), op(2, 1)]);
    assert!(matches!(r, Err(SemError::OutOfRange { num: 2, .. })));
    assert_eq!(s.get_all().unwrap(), vec![2, 1, 0]);
    // Array order: add then take the same semaphore in one step.
    s.apply(&[op(2, 3), op(2, -3), op(0, -2), op(1, 1)]).unwrap();
    assert_eq!(s.get_all().unwrap(), vec![0, 2, 0]);
    // Wait-for-zero satisfied at once.
    s.apply(&[op(0, 0), op(2, 0)]).unwrap();
    assert_eq!(s.last_pid(1).unwrap(), std::process::id());
}

#[test]
fn range_and_argument_errors() {
    let (_d, ns) = ns();
    let s = SemaphoreSet::create(&ns, Key(1), 2, 0o600).unwrap();
    assert!(matches!(s.apply(&[op(2, 1)]), Err(SemError::InvalidArgument(_))));
    assert!(matches!(s.apply(&[]), Err(SemError::InvalidArgument(_))));
    assert!(matches!(s.apply(&[op(0, 1); SEMOPM + 1]), Err(SemError::TooManyOperations(65))));
    assert!(matches!(s.set(0, SEMVMX + 1), Err(SemError::OutOfRange { .. })));
    assert!(matches!(s.set(0, -1), Err(SemError::OutOfRange { .. })));
    assert!(matches!(s.set(2, 0), Err(SemError::InvalidArgument(_))));
    assert!(matches!(s.set_all(&[1]), Err(SemError::InvalidArgument(_))));
    assert!(matches!(s.get(2), Err(SemError::InvalidArgument(_))));
    s.set(0, SEMVMX).unwrap();
    assert!(matches!(s.apply(&[op(0, 1)]), Err(SemError::OutOfRange { .. })));
    assert_eq!(s.get(0).unwrap(), SEMVMX);
}

#[test]
fn timeout_and_nowait_flag() {
    let (_d, ns) = ns();
    let s = SemaphoreSet::create(&ns, Key(1), 1, 0o600).unwrap();
    let t = Instant::now();
    assert!(matches!(
        s.apply_timeout(&[op(0, -1)], Duration::from_millis(50)),
        Err(SemError::TimedOut)
    ));
    assert!(t.elapsed() >= Duration::from_millis(45));
    assert!(matches!(s.apply(&[op(0, -1).with(SemFlags::NOWAIT)]), Err(SemError::WouldBlock)));
    assert_eq!(s.waiting_for_increase(0).unwrap(), 0);
}

#[test]
fn waiters_are_woken_and_counted() {
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 2, 0o600).unwrap());
    s.set(1, 1).unwrap();
    // Two want an increase of semaphore 0 (by 1 and by 2), one waits for semaphore 1 to be 0.
    let hs: Vec<_> = [(0u16, -1i16), (0, -2), (1, 0)]
        .into_iter()
        .map(|(n, d)| {
            let s = s.clone();
            std::thread::spawn(move || {
                strict();
                s.apply(&[op(n, d)]).unwrap()
            })
        })
        .collect();
    let t = Instant::now();
    while s.waiting_for_increase(0).unwrap() != 2 || s.waiting_for_zero(1).unwrap() != 1 {
        assert!(t.elapsed() < LIMIT);
        std::thread::sleep(Duration::from_millis(1));
    }
    // One step satisfies all three: none may be left asleep.
    s.apply(&[op(0, 3), op(1, -1)]).unwrap();
    for h in hs {
        join(h);
    }
    assert_eq!(s.get_all().unwrap(), vec![0, 0]);
    assert_eq!(s.waiting_for_increase(0).unwrap(), 0);
}

#[test]
fn multi_op_waiter_is_woken_by_a_change_that_is_not_an_increase_or_zero() {
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 2, 0o600).unwrap());
    s.set(0, 3).unwrap();
    // Waits until it can take one from semaphore 0 and find it 0 after: that is, until the
    // value is exactly 1. It blocks on "semaphore 0 is zero", yet 3 -> 1 satisfies it.
    let s2 = s.clone();
    let h = std::thread::spawn(move || {
        strict();
        s2.apply(&[op(0, -1), op(0, 0), op(1, 1)]).unwrap()
    });
    let t = Instant::now();
    while s.waiting_for_zero(0).unwrap() != 1 {
        assert!(t.elapsed() < LIMIT);
        std::thread::sleep(Duration::from_millis(1));
    }
    s.apply(&[op(0, -2)]).unwrap();
    join(h);
    assert_eq!(s.get_all().unwrap(), vec![0, 1]);
}

#[test]
fn pingpong_threads_alternate_without_lost_wakeups() {
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 2, 0o600).unwrap());
    s.set(0, 1).unwrap();
    let s2 = s.clone();
    let h = std::thread::spawn(move || {
        strict();
        for _ in 0..2000 {
            s2.apply(&[op(1, -1)]).unwrap();
            s2.apply(&[op(0, 1)]).unwrap();
        }
    });
    strict();
    let t = std::thread::spawn(move || {
        strict();
        for _ in 0..2000 {
            s.apply(&[op(0, -1)]).unwrap();
            s.apply(&[op(1, 1)]).unwrap();
        }
        s
    });
    join(h);
    let s = join(t);
    assert_eq!(s.get_all().unwrap(), vec![1, 0]);
}

/// The CPU the calling thread runs on now (one it may run on).
#[allow(unsafe_code)]
fn current_cpu() -> usize {
    // SAFETY: sched_getcpu takes no arguments and only returns a number (-1 on error).
    let cpu = unsafe { libc::sched_getcpu() };
    cpu.max(0) as usize
}

/// Pins the calling thread to CPU `cpu` (if the process may run there).
#[allow(unsafe_code)]
fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data, CPU_ZERO/CPU_SET write inside it; sched_setaffinity
    // with pid 0 changes only the calling thread. A failure leaves the thread unpinned, which
    // only makes the test less pointed, not wrong.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

#[test]
fn pingpong_on_one_cpu_yields_instead_of_spinning_and_loses_nothing() {
    // Both threads on one CPU, spinning off: each wait yields to the peer first. Single
    // operations (the fast path after a yield) and two-operation lists (the lock after a
    // yield) alternate; strict sleeps make a lost wake-up hang (and fail by timeout).
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 3, 0o600).unwrap());
    s.set(0, 1).unwrap();
    let cpu = current_cpu();
    let player = |s: Arc<SemaphoreSet>, mine: u16, theirs: u16| {
        std::thread::spawn(move || {
            strict();
            NO_SPIN.with(|c| c.set(true));
            pin_to_cpu(cpu);
            for i in 0..1000 {
                if i % 2 == 0 {
                    s.apply(&[op(mine, -1)]).unwrap();
                    s.apply(&[op(theirs, 1)]).unwrap();
                } else {
                    s.apply(&[op(mine, -1), op(2, 1)]).unwrap();
                    s.apply(&[op(2, -1), op(theirs, 1)]).unwrap();
                }
            }
            YIELDS.with(|c| c.get())
        })
    };
    let a = player(s.clone(), 0, 1);
    let b = player(s.clone(), 1, 0);
    let yields = join(a) + join(b);
    assert_eq!(s.get_all().unwrap(), vec![1, 0, 0]);
    // 2000 waits for the peer, each preceded by a yield: some must have found the peer's
    // change not yet made (and yielded).
    assert!(yields > 0);
}

#[test]
fn remove_wakes_every_waiter() {
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 1, 0o600).unwrap());
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                strict();
                s.apply(&[op(0, -1)])
            })
        })
        .collect();
    let t = Instant::now();
    while s.waiting_for_increase(0).unwrap() != 3 {
        assert!(t.elapsed() < LIMIT);
        std::thread::sleep(Duration::from_millis(1));
    }
    s.remove().unwrap();
    for h in hs {
        assert!(matches!(join(h), Err(SemError::Removed)));
    }
    assert!(matches!(s.apply(&[op(0, 1)]), Err(SemError::Removed)));
    assert!(matches!(SemaphoreSet::open(&ns, Key(1)), Err(ObjectError::NotFound { .. })));
}

#[test]
fn threads_take_and_give_exactly() {
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 2, 0o600).unwrap());
    s.set_all(&[1, 0]).unwrap();
    // Semaphore 0 is a mutex around "counter" semaphore 1.
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    s.apply(&[op(0, -1)]).unwrap();
                    s.apply(&[op(1, 1), op(0, 1)]).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        join(h);
    }
    assert_eq!(s.get_all().unwrap(), vec![1, 8000]);
}

#[test]
fn undo_of_a_dead_process_is_reversed_and_a_reused_pid_is_not_confused() {
    let (_d, ns) = ns();
    let s = SemaphoreSet::create(&ns, Key(1), 2, 0o600).unwrap();
    s.set_all(&[5, 5]).unwrap();
    // Our own undo entry: we are alive, so nothing is reversed.
    s.apply(&[op(0, -2).with(SemFlags::UNDO)]).unwrap();
    assert_eq!(s.get(0).unwrap(), 3);
    // Forge entries: our pid with another start time (a "reused pid": the entry's owner is
    // dead) owes +1 on semaphore 1; a pid that surely does not exist owes -10 (clamped).
    let me = ProcessId::current_process();
    let g = s.lock().unwrap();
    let ghost = ProcessId { pid: me.pid, start_time: me.start_time + 1 };
    s.commit(
        &[],
        &[
            (10, ghost.token(), 1, 1),
            (11, ProcessId { pid: 0x3fff_fff0, start_time: 1 }.token(), 0, -10),
        ],
    );
    drop(g);
    assert_eq!(s.get_all().unwrap(), vec![0, 6]);
    // Our own entry survived; undo still balances it when we "give back".
    s.apply(&[op(0, 2).with(SemFlags::UNDO)]).unwrap();
    assert_eq!(s.undo().iter().filter(|u| u.owner.load(Ordering::Relaxed) != 0).count(), 0);
    // SETVAL clears adjustments.
    s.apply(&[op(1, -1).with(SemFlags::UNDO)]).unwrap();
    s.set(1, 4).unwrap();
    assert_eq!(s.undo().iter().filter(|u| u.owner.load(Ordering::Relaxed) != 0).count(), 0);
}

#[test]
fn a_half_written_update_is_rolled_back_by_the_next_holder() {
    let (_d, ns) = ns();
    let s = Arc::new(SemaphoreSet::create(&ns, Key(1), 3, 0o600).unwrap());
    s.set_all(&[1, 1, 1]).unwrap();
    // A thread takes the lock, journals a 3-value update, writes one value, and dies.
    let s2 = s.clone();
    std::thread::spawn(move || {
        let g = s2.lock().unwrap();
        let ctl = s2.ctl();
        let slots = s2.slots();
        for (i, num) in [0usize, 1, 2].into_iter().enumerate() {
            slots[num].saved.store(slots[num].value.load(Ordering::Relaxed), Ordering::Relaxed);
            slots[i].journal_num.store(num as u32, Ordering::Relaxed);
        }
        ctl.journal_values.store(3, Ordering::Relaxed);
        ctl.journal_undo.store(0, Ordering::Relaxed);
        ctl.journal_active.store(1, Ordering::Relaxed);
        slots[0].value.store(0, Ordering::Relaxed);
        std::mem::forget(g);
    })
    .join()
    .unwrap();
    assert_eq!(s.get_all().unwrap(), vec![1, 1, 1], "rolled back");
    s.apply(&[op(0, -1), op(1, -1), op(2, -1)]).unwrap();
    assert_eq!(s.get_all().unwrap(), vec![0, 0, 0]);
}

#[test]
fn read_only_handles_read_but_do_not_write() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, ns) = ns();
    let s = SemaphoreSet::create(&ns, Key(1), 2, 0o400).unwrap();
    s.set_all(&[3, 4]).unwrap();
    let _ = std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o400));
    let r = SemaphoreSet::open_path_with(s.path(), OpenAccess::ReadOnly).unwrap();
    assert_eq!(r.get_all().unwrap(), vec![3, 4]);
    assert_eq!(r.stat().unwrap().nsems, 2);
    assert!(matches!(r.apply(&[op(0, 1)]), Err(SemError::PermissionDenied)));
    assert!(matches!(r.set(0, 1), Err(SemError::PermissionDenied)));
}
