//! Loom models of the futex state machines: every interleaving (up to loom's preemption
//! bound) of a few threads. The futex is emulated in `sys` under `--cfg loom` so that a lost
//! wake-up shows as a deadlock, which loom reports.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p ipckit --release --test loom`
#![cfg(loom)]

use ipckit::sync::{Condvar, Event, EventCount, EventMode, Mutex, Semaphore};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use loom::thread;

#[test]
fn mutex_excludes_and_wakes() {
    loom::model(|| {
        let m = Arc::new(Mutex::new(0usize));
        let inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (m, inside) = (m.clone(), inside.clone());
                thread::spawn(move || {
                    let mut g = m.lock().unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two threads inside");
                    *g += 1;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        {
            let mut g = m.lock().unwrap();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two threads inside");
            *g += 1;
            inside.fetch_sub(1, Ordering::SeqCst);
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 3);
    });
}

#[test]
fn semaphore_signals_without_lost_wakeups() {
    loom::model(|| {
        let s = Arc::new(Semaphore::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.p())
            })
            .collect();
        s.v().unwrap();
        s.v().unwrap();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(s.count(), 0);
    });
}

#[test]
fn semaphore_mixed_sizes_strand_nobody() {
    loom::model(|| {
        let s = Arc::new(Semaphore::new(0));
        let big = {
            let s = s.clone();
            thread::spawn(move || s.p_n(2))
        };
        let small = {
            let s = s.clone();
            thread::spawn(move || s.p())
        };
        s.v_n(3).unwrap();
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(s.count(), 0);
    });
}

#[test]
fn condvar_does_not_lose_a_notify() {
    loom::model(|| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = pair.clone();
        let t = thread::spawn(move || {
            let (m, cv) = &*p2;
            *m.lock().unwrap() = true;
            cv.notify_one();
        });
        let (m, cv) = &*pair;
        let g = cv.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap();
        assert!(*g);
        drop(g);
        t.join().unwrap();
    });
}

#[test]
fn auto_reset_event_passes_one_per_set() {
    loom::model(|| {
        let e = Arc::new(Event::new(EventMode::AutoReset));
        let e2 = e.clone();
        let t = thread::spawn(move || e2.wait());
        e.set();
        t.join().unwrap();
        assert!(!e.is_set());
    });
}

// ---- coordination structures (ipckit::coord) ----

use ipckit::coord::{BoundedBuffer, SlotBuffer};

#[test]
fn slot_buffer_one_slot_blocks_both_ways_and_keeps_order() {
    loom::model(|| {
        let b = Arc::new(SlotBuffer::new(1));
        let b2 = b.clone();
        let producer = thread::spawn(move || {
            b2.put(1u32);
            b2.put(2u32); // blocks until the first is taken
        });
        assert_eq!(b.take(), 1);
        assert_eq!(b.take(), 2);
        producer.join().unwrap();
        assert!(b.is_empty());
    });
}

#[test]
fn slot_buffer_two_producers_two_slots_no_lost_item() {
    loom::model(|| {
        let b = Arc::new(SlotBuffer::new(2));
        let hs: Vec<_> = (1..=2u32)
            .map(|i| {
                let b = b.clone();
                thread::spawn(move || b.put(i))
            })
            .collect();
        let (x, y) = (b.take(), b.take());
        assert_eq!(x + y, 3);
        assert_ne!(x, y);
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn slot_buffer_two_consumers_one_slot_strand_nobody() {
    loom::model(|| {
        let b = Arc::new(SlotBuffer::new(1));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.take())
            })
            .collect();
        b.put(10u32);
        b.put(20u32);
        let mut got: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![10, 20]);
    });
}

#[test]
fn bounded_buffer_one_slot_blocks_both_ways_and_keeps_order() {
    loom::model(|| {
        let b = Arc::new(BoundedBuffer::new(1));
        let b2 = b.clone();
        let producer = thread::spawn(move || {
            b2.put(1u32);
            b2.put(2u32);
        });
        assert_eq!(b.take(), 1);
        assert_eq!(b.take(), 2);
        producer.join().unwrap();
    });
}

#[test]
fn slot_buffer_two_producers_two_consumers_strand_nobody() {
    // The case chain wake-up exists for: with two slots both producers claim at once; a
    // consumer woken for the second item can find the head slot not yet published and sleep
    // again, using up that item's wake.
    loom::model(|| {
        let b = Arc::new(SlotBuffer::new(2));
        let producers: Vec<_> = (1..=2u32)
            .map(|i| {
                let b = b.clone();
                thread::spawn(move || b.put(i))
            })
            .collect();
        let b2 = b.clone();
        let consumer = thread::spawn(move || b2.take());
        let mine = b.take();
        let theirs = consumer.join().unwrap();
        assert_eq!(mine + theirs, 3);
        for p in producers {
            p.join().unwrap();
        }
    });
}
// ---- spinlocks ----

use ipckit::sync::{
    Bakery, EisenbergMcGuire, McsLock, Peterson, Policy, RawLock, RwLock, TasLock, TicketLock,
    TtasLock,
};

/// Two threads and the main thread each take `lock` once; at most one is ever inside.
fn raw_lock_excludes<L: RawLock + Send + Sync + 'static>(new: fn() -> L) {
    loom::model(move || {
        let l = Arc::new(new());
        let inside = Arc::new(AtomicUsize::new(0));
        let enter = |l: &L, inside: &AtomicUsize| {
            l.lock().unwrap();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two threads inside");
            inside.fetch_sub(1, Ordering::SeqCst);
            // SAFETY: locked just above on this thread.
            unsafe { l.unlock() };
        };
        let t = {
            let (l, inside) = (l.clone(), inside.clone());
            thread::spawn(move || enter(&l, &inside))
        };
        enter(&l, &inside);
        t.join().unwrap();
        assert!(!l.is_locked());
    });
}

/// Under loom the test-and-set lock decides with a compare-and-swap instead of a swap (see
/// `TasLock::try_acquire`); its waiting loop is the real one.
#[test]
fn tas_lock_excludes() {
    raw_lock_excludes(TasLock::new);
}

#[test]
fn ttas_lock_excludes() {
    raw_lock_excludes(TtasLock::new);
}

#[test]
fn ticket_lock_excludes() {
    raw_lock_excludes(TicketLock::new);
}

#[test]
fn mcs_lock_excludes_through_thread_local_nodes() {
    raw_lock_excludes(McsLock::new);
}

#[test]
fn mcs_lock_with_stack_nodes_hands_over() {
    loom::model(|| {
        let l = Arc::new(McsLock::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (l, inside) = (l.clone(), inside.clone());
                thread::spawn(move || {
                    l.with_lock(|| {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(!l.is_locked());
    });
}

// ---- reader-writer lock ----

struct Inside {
    readers: AtomicUsize,
    writers: AtomicUsize,
}

impl Inside {
    fn write(&self) {
        assert_eq!(self.writers.fetch_add(1, Ordering::SeqCst), 0, "two writers");
        assert_eq!(self.readers.load(Ordering::SeqCst), 0, "writer with readers");
        self.writers.fetch_sub(1, Ordering::SeqCst);
    }
    fn read(&self) {
        self.readers.fetch_add(1, Ordering::SeqCst);
        assert_eq!(self.writers.load(Ordering::SeqCst), 0, "reader with a writer");
        self.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A writer, a reader and a second writer (the main thread): exclusion, and no lost wake-up
/// (a lost wake-up deadlocks the emulated futex, which loom reports).
fn rwlock_model(p: Policy) {
    loom::model(move || {
        let l = Arc::new(RwLock::with_policy((), p));
        let c = Arc::new(Inside { readers: AtomicUsize::new(0), writers: AtomicUsize::new(0) });
        let w = {
            let (l, c) = (l.clone(), c.clone());
            thread::spawn(move || {
                let _g = l.write();
                c.write();
            })
        };
        let r = {
            let (l, c) = (l.clone(), c.clone());
            thread::spawn(move || {
                let _g = l.read();
                c.read();
            })
        };
        {
            let g = l.write();
            c.write();
            let _r = g.downgrade();
            c.read();
        }
        w.join().unwrap();
        r.join().unwrap();
        let s = l.raw().state();
        assert_eq!((s.readers, s.writer, s.waiting_readers, s.waiting_writers), (0, false, 0, 0));
    });
}

#[test]
fn rwlock_fair() {
    rwlock_model(Policy::Fair);
}

#[test]
fn rwlock_reader_preferred() {
    rwlock_model(Policy::ReaderPreferred);
}

#[test]
fn rwlock_writer_preferred() {
    rwlock_model(Policy::WriterPreferred);
}

#[test]
fn rwlock_unordered() {
    rwlock_model(Policy::Unordered);
}

#[test]
fn rwlock_upgrade_excludes_readers() {
    loom::model(|| {
        let l = Arc::new(RwLock::new(()));
        let c = Arc::new(Inside { readers: AtomicUsize::new(0), writers: AtomicUsize::new(0) });
        let r = {
            let (l, c) = (l.clone(), c.clone());
            thread::spawn(move || {
                let _g = l.read();
                c.read();
            })
        };
        let u = l.upgradable_read();
        let _w = u.upgrade();
        c.write();
        drop(_w);
        r.join().unwrap();
    });
}

// ---- software mutual exclusion ----

/// Processes 0 and 1 each enter once through `enter(slot, body)`.
fn software_excludes<L: Send + Sync + 'static>(new: fn() -> L, enter: fn(&L, usize, &dyn Fn())) {
    loom::model(move || {
        let l = Arc::new(new());
        let inside = Arc::new(AtomicUsize::new(0));
        let body = |inside: &AtomicUsize| {
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two processes inside");
            inside.fetch_sub(1, Ordering::SeqCst);
        };
        let t = {
            let (l, inside) = (l.clone(), inside.clone());
            thread::spawn(move || enter(&l, 1, &|| body(&inside)))
        };
        enter(&l, 0, &|| body(&inside));
        t.join().unwrap();
    });
}

#[test]
fn peterson_excludes() {
    software_excludes(Peterson::new, |l, me, f| l.critical_section(me, f));
}

#[test]
fn eisenberg_mcguire_excludes() {
    software_excludes(EisenbergMcGuire::<2>::new, |l, me, f| l.critical_section(me, f));
}

#[test]
fn bakery_excludes() {
    software_excludes(Bakery::<2>::new, |l, me, f| l.critical_section(me, f));
}

/// A waiter's loop on an event count: until `n` reaches `goal`.
fn wait_for_count(ec: &EventCount, n: &AtomicU32, goal: u32) {
    loop {
        if n.load(Ordering::SeqCst) >= goal {
            return;
        }
        let ticket = ec.watch();
        if n.load(Ordering::SeqCst) >= goal {
            return;
        }
        ec.sleep(ticket, None);
    }
}

#[test]
fn event_count_loses_no_wakeup() {
    loom::model(|| {
        let ec = Arc::new(EventCount::new());
        let n = Arc::new(AtomicU32::new(0));
        let waiter = {
            let (ec, n) = (ec.clone(), n.clone());
            thread::spawn(move || wait_for_count(&ec, &n, 1))
        };
        n.fetch_add(1, Ordering::SeqCst);
        ec.notify();
        waiter.join().unwrap();
    });
}

#[test]
fn event_count_two_changers_wake_a_sleeper() {
    // The flags live in the word the changers advance: the one that advances it after the
    // waiter announced its sleep is the one that wakes it.
    loom::model(|| {
        let ec = Arc::new(EventCount::new());
        let n = Arc::new(AtomicU32::new(0));
        let changers: Vec<_> = (0..2)
            .map(|_| {
                let (ec, n) = (ec.clone(), n.clone());
                thread::spawn(move || {
                    n.fetch_add(1, Ordering::SeqCst);
                    ec.notify();
                })
            })
            .collect();
        wait_for_count(&ec, &n, 2);
        for c in changers {
            c.join().unwrap();
        }
    });
}

#[test]
fn event_count_two_waiters_both_woken() {
    loom::model(|| {
        let ec = Arc::new(EventCount::new());
        let n = Arc::new(AtomicU32::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (ec, n) = (ec.clone(), n.clone());
                thread::spawn(move || wait_for_count(&ec, &n, 1))
            })
            .collect();
        n.fetch_add(1, Ordering::SeqCst);
        ec.notify();
        for w in waiters {
            w.join().unwrap();
        }
    });
}
