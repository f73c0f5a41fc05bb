//! Unit tests of the message queue in one process (threads stand in for processes where a
//! test needs someone to block; the multi-process tests are in `tests/mq_processes.rs`).

use super::*;
use std::sync::Arc;

fn ns() -> (tempfile::TempDir, Namespace) {
    let d = tempfile::tempdir().unwrap();
    let ns = Namespace::at(&d.path().join("ns")).unwrap();
    (d, ns)
}

fn queue(ns: &Namespace, key: i32, max_bytes: u64) -> MessageQueue {
    MessageQueue::obtain(
        ns,
        Key(key),
        CreateMode::CreateExclusive,
        0o600,
        QueueConfig::with_max_bytes(max_bytes),
    )
    .unwrap()
    .0
}

const T: Duration = Duration::from_secs(10);

#[test]
fn create_open_and_errors() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    assert!(matches!(
        MessageQueue::create(&ns, Key(1), 0o600),
        Err(ObjectError::AlreadyExists { .. })
    ));
    assert!(matches!(MessageQueue::open(&ns, Key(2)), Err(ObjectError::NotFound { .. })));
    let o = MessageQueue::open_or_create(&ns, Key(1), 0o600).unwrap();
    assert_eq!(o.id(), q.id());
    let p1 = MessageQueue::open_or_create(&ns, Key::PRIVATE, 0o600).unwrap();
    let p2 = MessageQueue::open_or_create(&ns, Key::PRIVATE, 0o600).unwrap();
    assert_ne!(p1.id(), p2.id());
    assert_eq!(MessageQueue::open_id(&ns, p2.id()).unwrap().id(), p2.id());
    assert_eq!(MessageQueue::open_path(q.path()).unwrap().id(), q.id());
    // A bad configuration is refused.
    let bad = QueueConfig { max_bytes: 100, max_message_size: 10, capacity: 50 };
    assert!(matches!(
        MessageQueue::obtain(&ns, Key(3), CreateMode::CreateExclusive, 0o600, bad),
        Err(ObjectError::InvalidArgument(_))
    ));
    // A segment of another kind with the same key does not count.
    assert!(matches!(MessageQueue::open(&ns, Key(9)), Err(ObjectError::NotFound { .. })));
}

#[test]
fn permission_denied_when_mode_forbids() {
    if sys::current_uid() == 0 {
        return; // root passes every permission check
    }
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o400).unwrap();
    drop(q);
    assert!(matches!(MessageQueue::open(&ns, Key(1)), Err(ObjectError::PermissionDenied { .. })));
}

#[test]
fn fifo_and_every_selector() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    for (t, s) in [(3, "a3"), (1, "b1"), (2, "c2"), (1, "d1"), (3, "e3"), (2, "f2")] {
        q.send(t, s.as_bytes()).unwrap();
    }
    let take = |sel| {
        let m = q.try_recv(sel, 64).unwrap();
        (m.mtype, String::from_utf8(m.data).unwrap())
    };
    assert_eq!(take(Selector::Type(2)), (2, "c2".into()));
    assert_eq!(take(Selector::Except(3)), (1, "b1".into()));
    assert_eq!(take(Selector::UpTo(3)), (1, "d1".into()), "lowest type first");
    assert_eq!(take(Selector::UpTo(2)), (2, "f2".into()));
    assert_eq!(q.try_recv(Selector::UpTo(2), 64), Err(RecvError::NoMessage));
    assert_eq!(q.try_recv(Selector::Type(7), 64), Err(RecvError::NoMessage));
    assert_eq!(q.try_recv(Selector::Except(3), 64), Err(RecvError::NoMessage));
    assert_eq!(take(Selector::Any), (3, "a3".into()));
    assert_eq!(take(Selector::Any), (3, "e3".into()));
    assert_eq!(q.try_recv(Selector::Any, 64), Err(RecvError::NoMessage));
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (0, 0));
}

#[test]
fn selection_never_skips_an_older_eligible_message() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    for i in 0..50u8 {
        q.send(1 + (i % 5) as i64, [i]).unwrap();
    }
    for t in 1..=5i64 {
        let mut last = None;
        while let Ok(m) = q.try_recv(Selector::Type(t), 8) {
            assert_eq!(m.mtype, t);
            assert!(last.is_none_or(|l| l < m.data[0]), "order within a type");
            last = Some(m.data[0]);
        }
    }
    assert_eq!(q.stat().unwrap().messages, 0);
}

#[test]
fn invalid_types_are_refused() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    assert!(matches!(q.send(0, b"x"), Err(SendError::InvalidType(0))));
    assert!(matches!(q.try_send(-4, b"x"), Err(SendError::InvalidType(-4))));
    assert_eq!(q.try_recv(Selector::Type(0), 8), Err(RecvError::InvalidType(0)));
    assert_eq!(q.try_recv(Selector::UpTo(-1), 8), Err(RecvError::InvalidType(-1)));
    assert_eq!(q.stat().unwrap().messages, 0);
}

#[test]
fn too_long_stays_queued_unless_truncated() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    q.send(5, b"hello world").unwrap();
    assert_eq!(q.try_recv(Selector::Any, 5), Err(RecvError::TooBig { len: 11, max: 5 }));
    assert_eq!(q.stat().unwrap().messages, 1, "E2BIG leaves the message queued");
    let m = q.recv_with(Selector::Any, 5, true, Wait::NoWait).unwrap();
    assert_eq!((m.mtype, &m.data[..]), (5, &b"hello"[..]));
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (0, 0), "MSG_NOERROR removes it");
}

#[test]
fn receive_into_a_slice() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    q.send(3, b"abcdef").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        q.recv_into_slice(Selector::Any, &mut small, false, Wait::NoWait),
        Err(RecvError::TooBig { len: 6, max: 4 })
    );
    let mut big = [0u8; 16];
    assert_eq!(q.recv_into_slice(Selector::Any, &mut big, false, Wait::NoWait), Ok((3, 6)));
    assert_eq!(&big[..6], b"abcdef");
    q.send(3, b"abcdef").unwrap();
    assert_eq!(q.recv_into_slice(Selector::Type(3), &mut small, true, Wait::NoWait), Ok((3, 4)));
    assert_eq!(&small, b"abcd");
}

#[test]
fn too_big_messages_are_refused() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    let big = vec![0u8; DEFAULT_MAX_MESSAGE_SIZE as usize + 1];
    assert!(matches!(q.try_send(1, &big), Err(SendError::TooBig { len: 8193, max: 8192 })));
    q.send(1, &big[..8192]).unwrap();
    assert_eq!(q.recv(Selector::Any, 8192).unwrap().data.len(), 8192);
    // Above the queue's current max_bytes, too.
    q.set_max_bytes(100).unwrap();
    assert!(matches!(q.try_send(1, &big[..101]), Err(SendError::TooBig { len: 101, max: 100 })));
}

#[test]
fn full_follows_linux_bytes_and_count() {
    let (_d, ns) = ns();
    let q = queue(&ns, 1, 100);
    q.send(1, [7u8; 60]).unwrap();
    q.send(1, [7u8; 40]).unwrap();
    let e = q.try_send(1, vec![1u8]).unwrap_err();
    assert!(matches!(&e, SendError::Full(_)));
    assert_eq!(e.into_message(), Some(vec![1u8]), "Full hands the message back");
    assert!(matches!(
        q.send_timeout(1, b"x", Duration::from_millis(20)),
        Err(SendError::TimedOut(_))
    ));
    q.recv(Selector::Any, 100).unwrap();
    q.try_send(1, [0u8; 60]).unwrap();
    // Count limit: at most max_bytes messages, even empty ones.
    let q2 = queue(&ns, 2, 4);
    for _ in 0..4 {
        q2.try_send(1, b"").unwrap();
    }
    assert!(matches!(q2.try_send(1, b""), Err(SendError::Full(_))));
    assert_eq!(q2.stat().unwrap().messages, 4);
}

#[test]
fn raising_max_bytes_wakes_a_blocked_sender() {
    let (_d, ns) = ns();
    let q = Arc::new(queue(&ns, 1, 10));
    q.send(1, [0u8; 10]).unwrap();
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.send_timeout(1, [1u8; 5], T).map_err(|e| e.to_string()));
    std::thread::sleep(Duration::from_millis(50));
    q.set_max_bytes(20).unwrap();
    t.join().unwrap().unwrap();
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes, s.max_bytes), (2, 15, 20));
    assert!(matches!(q.set_max_bytes(0), Err(ObjectError::InvalidArgument(_))));
    assert!(matches!(q.set_max_bytes(1 << 40), Err(ObjectError::InvalidArgument(_))));
}

#[test]
fn blocked_receiver_gets_a_later_message() {
    let (_d, ns) = ns();
    let q = Arc::new(MessageQueue::create(&ns, Key(1), 0o600).unwrap());
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.recv_timeout(Selector::Type(2), 64, T));
    std::thread::sleep(Duration::from_millis(50));
    q.send(1, b"not for it").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    q.send(2, b"for it").unwrap();
    let m = t.join().unwrap().unwrap();
    assert_eq!(m.data, b"for it");
    assert_eq!(q.try_recv(Selector::Any, 64).unwrap().data, b"not for it");
    assert_eq!(
        q.recv_timeout(Selector::Any, 8, Duration::from_millis(10)),
        Err(RecvError::TimedOut)
    );
}

#[test]
fn remove_wakes_every_blocked_sender_and_receiver() {
    let (_d, ns) = ns();
    let q = Arc::new(queue(&ns, 1, 8));
    let full = Arc::new(queue(&ns, 2, 8));
    full.send(1, [0u8; 8]).unwrap();
    let mut ts = Vec::new();
    for _ in 0..3 {
        let q = q.clone();
        ts.push(std::thread::spawn(move || q.recv_timeout(Selector::Any, 8, T).err()));
    }
    let mut ss = Vec::new();
    for _ in 0..2 {
        let f = full.clone();
        ss.push(std::thread::spawn(move || {
            matches!(f.send_timeout(1, [1u8; 4], T), Err(SendError::Removed))
        }));
    }
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    q.remove().unwrap();
    full.remove().unwrap();
    for t in ts {
        assert_eq!(t.join().unwrap(), Some(RecvError::Removed));
    }
    for s in ss {
        assert!(s.join().unwrap());
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "promptly, not at a timeout");
    assert_eq!(q.try_recv(Selector::Any, 8), Err(RecvError::Removed));
    assert!(matches!(q.send(1, b"x"), Err(SendError::Removed)));
    assert!(matches!(MessageQueue::open(&ns, Key(1)), Err(ObjectError::NotFound { .. })));
    assert!(matches!(q.remove(), Err(ObjectError::Removed)));
    assert!(q.stat().unwrap().removed);
}

#[test]
fn peek_copies_without_taking() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    q.send(4, b"zero").unwrap();
    q.send(9, b"one").unwrap();
    assert_eq!(q.peek(1).unwrap(), Some(Message { mtype: 9, data: b"one".to_vec() }));
    assert_eq!(q.peek(0).unwrap().unwrap().data, b"zero");
    assert_eq!(q.peek(2).unwrap(), None);
    assert_eq!(q.stat().unwrap().messages, 2);
}

#[test]
fn stat_reports_counts_pids_and_times() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(0x42), 0o640).unwrap();
    let s = q.stat().unwrap();
    assert_eq!((s.key, s.mode, s.max_bytes, s.messages), (Key(0x42), 0o640, 16_384, 0));
    assert_eq!((s.last_send_pid, s.last_recv_pid, s.last_send_time), (0, 0, 0));
    assert!(s.change_time > 0);
    q.send(1, b"abc").unwrap();
    q.send(1, b"de").unwrap();
    q.recv(Selector::Any, 8).unwrap();
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (1, 2));
    assert_eq!(s.last_send_pid, std::process::id());
    assert_eq!(s.last_recv_pid, std::process::id());
    assert!(s.last_send_time > 0 && s.last_recv_time > 0);
    let json = serde_json::to_value(&s).unwrap();
    for f in ["messages", "used_bytes", "max_bytes", "last_send_pid", "last_recv_pid"] {
        assert!(json.get(f).is_some(), "{f} missing in {json}");
    }
    // A read-only handle gives a snapshot and refuses to send or receive.
    let e = ns.find_key(ObjectKind::Mq, Key(0x42)).unwrap();
    let ro = MessageQueue::open_entry(&e, OpenAccess::ReadOnly).unwrap();
    assert_eq!(ro.stat().unwrap().messages, 1);
    assert!(matches!(ro.send(1, b"x"), Err(SendError::PermissionDenied)));
    assert_eq!(ro.try_recv(Selector::Any, 8), Err(RecvError::PermissionDenied));
}

#[test]
fn random_sizes_and_types_round_trip_through_a_fragmented_arena() {
    use rand::{Rng, SeedableRng};
    let (_d, ns) = ns();
    let q = queue(&ns, 1, 16_384);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model: std::collections::VecDeque<(i64, Vec<u8>)> = Default::default();
    for round in 0..20_000u32 {
        if rng.gen_bool(0.55) {
            let len = rng.gen_range(0..2000);
            let t = rng.gen_range(1..4);
            let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ round) as u8).collect();
            match q.try_send(t, data.clone()) {
                Ok(()) => model.push_back((t, data)),
                Err(SendError::Full(_)) => {
                    let used: usize = model.iter().map(|(_, d)| d.len()).sum();
                    assert!(used + len > 16_384, "full although {used} + {len} fits");
                }
                Err(e) => panic!("{e}"),
            }
        } else {
            let t = rng.gen_range(1..4);
            let sel = match rng.gen_range(0..4) {
                0 => Selector::Any,
                1 => Selector::Type(t),
                2 => Selector::Except(t),
                _ => Selector::UpTo(t),
            };
            let want = match sel {
                Selector::Any => model.iter().position(|_| true),
                Selector::Type(t) => model.iter().position(|m| m.0 == t),
                Selector::Except(t) => model.iter().position(|m| m.0 != t),
                Selector::UpTo(t) => model
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.0 <= t)
                    .min_by_key(|(i, m)| (m.0, *i))
                    .map(|(i, _)| i),
            };
            match (q.try_recv(sel, 4096), want) {
                (Ok(m), Some(i)) => {
                    let (t, d) = model.remove(i).unwrap();
                    assert_eq!((m.mtype, m.data), (t, d));
                }
                (Err(RecvError::NoMessage), None) => {}
                (r, w) => panic!("{sel:?}: got {r:?}, model says {w:?}"),
            }
        }
        if round % 1000 == 0 {
            let s = q.stat().unwrap();
            assert_eq!(s.messages as usize, model.len());
            assert_eq!(s.used_bytes as usize, model.iter().map(|(_, d)| d.len()).sum::<usize>());
        }
    }
}

/// Runs `f` on a thread that then exits, so that whatever locks `f` forgot are held by a dead
/// thread (as after a SIGKILL mid-operation).
fn die_holding(q: &Arc<MessageQueue>, f: impl FnOnce(&MessageQueue) + Send + 'static) {
    let q2 = q.clone();
    std::thread::spawn(move || f(&q2)).join().unwrap();
}

fn fill_to_the_limit(q: &MessageQueue) {
    for _ in 0..4 {
        q.try_send(1, [3u8; 4096]).unwrap();
    }
    assert!(matches!(q.try_send(1, [3u8; 1]), Err(SendError::Full(_))));
    for _ in 0..4 {
        assert_eq!(q.try_recv(Selector::Any, 4096).unwrap().data, [3u8; 4096]);
    }
}

#[test]
fn owner_death_mid_send_is_repaired() {
    let (_d, ns) = ns();
    let q = Arc::new(MessageQueue::create(&ns, Key(1), 0o600).unwrap());
    q.send(1, b"kept").unwrap();
    // A sender allocates blocks for a message, writes half of it, and dies before linking.
    die_holding(&q, |q| {
        let mut t = q.lock_tail().unwrap();
        let m = q.obj.mapping();
        let mut hint = t.alloc_hint;
        let region = (q.arena.soft_blocks(t.max_bytes), q.arena.active_blocks(t.max_bytes));
        let (first, _) = q.arena.alloc(m, 10, region, &mut hint).unwrap();
        t.alloc_hint = hint;
        q.arena.header(m, first).unwrap().len.store(500, Ordering::Relaxed);
        t.sent_bytes += 500; // half-done bookkeeping
        std::mem::forget(t);
    });
    // The next sender finds the owner dead, and rebuilds under both locks.
    q.try_send(2, b"after").unwrap();
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (2, 9), "repaired from the list");
    assert_eq!(q.recv(Selector::Any, 8).unwrap().data, b"kept");
    assert_eq!(q.recv(Selector::Any, 8).unwrap().data, b"after");
    fill_to_the_limit(&q); // every block is free again
}

#[test]
fn blocks_lost_without_a_death_are_found_by_a_rebuild() {
    let (_d, ns) = ns();
    let q = queue(&ns, 1, 4096);
    // Damage: every free block of the allocation region marked used, with no owner dying
    // (so no repair runs): the counts say there is room, the bitmap says there is none.
    {
        let mut t = q.lock_tail().unwrap();
        let m = q.obj.mapping();
        let region = (q.arena.soft_blocks(t.max_bytes), q.arena.active_blocks(t.max_bytes));
        let mut hint = t.alloc_hint;
        while q.arena.alloc(m, 1, region, &mut hint).is_some() {}
        t.alloc_hint = hint;
    }
    // The sender finds no blocks, rebuilds the bitmap from the list (once), and sends.
    q.try_send(1, [7u8; 1000]).unwrap();
    assert_eq!(q.try_recv(Selector::Any, 1000).unwrap().data, [7u8; 1000]);
    // Every block is back: the queue fills to its limit of 4096 bytes.
    for _ in 0..4 {
        q.try_send(1, [8u8; 1024]).unwrap();
    }
    assert!(matches!(q.try_send(1, [8u8; 1]), Err(SendError::Full(_))));
}

#[test]
fn owner_death_after_linking_counts_the_message() {
    let (_d, ns) = ns();
    let q = Arc::new(MessageQueue::create(&ns, Key(1), 0o600).unwrap());
    q.send(1, b"one").unwrap();
    // Dies after the link store, before counting: the message is in the queue.
    die_holding(&q, |q| {
        let mut t = q.lock_tail().unwrap();
        assert_eq!(q.append(&mut t, 2, b"two").unwrap(), Appended::Linked { wake: false });
        t.sent_messages -= 1;
        t.sent_bytes -= 3;
        std::mem::forget(t);
    });
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (2, 6));
    assert_eq!(q.recv(Selector::Any, 8).unwrap().data, b"one");
    assert_eq!(q.recv(Selector::Type(2), 8).unwrap().data, b"two");
    fill_to_the_limit(&q);
}

#[test]
fn owner_death_mid_receive_keeps_the_message_whole_or_gone() {
    let (_d, ns) = ns();
    let q = Arc::new(MessageQueue::create(&ns, Key(1), 0o600).unwrap());
    q.send(1, b"first").unwrap();
    q.send(2, b"second").unwrap();
    q.send(3, b"third").unwrap();
    // A receiver of the first message commits (the message becomes the dummy) and dies
    // before freeing blocks or counting: the message is gone, wholly.
    die_holding(&q, |q| {
        let mut h = q.lock_head().unwrap();
        let m = q.obj.mapping();
        h.dummy = q.arena.header(m, h.dummy).unwrap().next.load(Ordering::Acquire);
        std::mem::forget(h);
    });
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (2, 11));
    // A receiver searching inside the list unlinks the middle message and dies.
    die_holding(&q, |q| {
        let (h, t) = q.lock_both().unwrap();
        let m = q.obj.mapping();
        let first = q.arena.header(m, h.dummy).unwrap().next.load(Ordering::Acquire);
        let (_, _, second) = q.arena.read_header(m, first).unwrap();
        let (_, _, third) = q.arena.read_header(m, second).unwrap();
        assert_eq!(third, NIL);
        q.arena.header(m, first).unwrap().next.store(third, Ordering::Release);
        std::mem::forget((h, t));
    });
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (1, 6));
    assert_eq!(q.recv(Selector::Any, 8).unwrap().data, b"second");
    assert_eq!(q.try_recv(Selector::Any, 8), Err(RecvError::NoMessage));
    // The tail was the unlinked message: the repair moved it, so new messages are reachable.
    q.send(4, b"fourth").unwrap();
    assert_eq!(q.recv(Selector::Any, 8).unwrap().data, b"fourth");
    fill_to_the_limit(&q);
}

#[test]
fn a_sender_recovers_room_from_a_dead_receiver() {
    let (_d, ns) = ns();
    let q = Arc::new(queue(&ns, 1, 4096));
    // A receiver takes the message and dies before counting it: by the counts the queue is
    // still full, and nobody else will ever take the head lock.
    let die_taking = |q: &Arc<MessageQueue>| {
        die_holding(q, |q| {
            let mut h = q.lock_head().unwrap();
            let m = q.obj.mapping();
            h.dummy = q.arena.header(m, h.dummy).unwrap().next.load(Ordering::Acquire);
            std::mem::forget(h);
        })
    };
    q.send(1, [1u8; 4096]).unwrap();
    die_taking(&q);
    // A sender that finds the queue full looks at the receivers' side (for takes they have
    // not published), finds the dead owner there and repairs: even without waiting.
    q.try_send(1, [2u8; 4096]).unwrap();
    die_taking(&q);
    q.send_timeout(1, [3u8; 4096], T).unwrap();
    assert_eq!(q.try_recv(Selector::Any, 4096).unwrap().data, [3u8; 4096]);
    assert_eq!(q.try_recv(Selector::Any, 4096), Err(RecvError::NoMessage));
}

#[test]
fn takes_are_published_in_batches_but_never_hide_room() {
    let (_d, ns) = ns();
    let q = queue(&ns, 1, 1024); // publishes every 128 bytes or messages
    for round in 0..50u8 {
        // Fill to the limit, take a few (fewer than a batch), and the room they made is
        // there for try_send at once.
        while q.try_send(1, [round; 100]).is_ok() {}
        assert_eq!(q.stat().unwrap().messages, 10);
        q.try_recv(Selector::Any, 100).unwrap();
        q.try_send(1, [round; 100]).unwrap();
        assert!(matches!(q.try_send(1, [round; 100]), Err(SendError::Full(_))));
        while q.try_recv(Selector::Any, 100).is_ok() {}
        let s = q.stat().unwrap();
        assert_eq!((s.messages, s.used_bytes), (0, 0));
    }
    // A blocked sender gets room from a receiver that takes one message and stops.
    let q = Arc::new(q);
    while q.try_send(1, [9u8; 100]).is_ok() {}
    let q2 = q.clone();
    let sender = std::thread::spawn(move || q2.send_timeout(2, [7u8; 100], T).is_ok());
    std::thread::sleep(Duration::from_millis(50));
    q.recv_timeout(Selector::Any, 100, T).unwrap();
    assert!(sender.join().unwrap(), "the sender got the room");
    assert_eq!(q.try_recv(Selector::Type(2), 100).unwrap().data, [7u8; 100]);
}

#[test]
fn corrupt_state_is_an_error_not_a_crash() {
    let (_d, ns) = ns();
    let q = MessageQueue::create(&ns, Key(1), 0o600).unwrap();
    q.send(1, b"x").unwrap();
    let good = {
        let mut h = q.lock_head().unwrap();
        std::mem::replace(&mut h.dummy, 0x7fff_fff0) // out of range
    };
    assert!(matches!(q.try_recv(Selector::Any, 8), Err(RecvError::Corrupt(_))));
    assert!(matches!(q.peek(0), Err(RecvError::Corrupt(_))));
    {
        let mut h = q.lock_head().unwrap();
        h.dummy = good;
        let m = q.obj.mapping();
        let first = q.arena.header(m, good).unwrap().next.load(Ordering::Relaxed);
        q.arena.header(m, first).unwrap().next.store(first, Ordering::Relaxed); // a cycle
    }
    assert!(matches!(q.try_recv(Selector::Type(9), 8), Err(RecvError::Corrupt(_))));
    // A file whose geometry does not match its size is refused at open, and so is one of
    // another layout version.
    let g = q.obj.mapping();
    let at = q.arena.state + arena::GEOMETRY_AT;
    g.write(at + 16, &1u32.to_ne_bytes()).unwrap();
    assert!(matches!(MessageQueue::open(&ns, Key(1)), Err(ObjectError::Corrupt { .. })));
    g.write(at + 16, &arena::LAYOUT.to_ne_bytes()).unwrap();
    MessageQueue::open(&ns, Key(1)).unwrap();
    g.write(at + 8, &7u32.to_ne_bytes()).unwrap();
    assert!(matches!(MessageQueue::open(&ns, Key(1)), Err(ObjectError::Corrupt { .. })));
}

#[test]
fn long_messages_keep_order_and_content_while_both_sides_copy() {
    let (_d, ns) = ns();
    let q = Arc::new(queue(&ns, 1, 65_536));
    let q2 = q.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..2000u32 {
            let len = 1000 + (i as usize * 37) % 7000;
            let data: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
            q2.send_timeout(1, data, T).unwrap();
        }
    });
    let mut buf = Vec::new();
    for i in 0..2000u32 {
        q.recv_into(Selector::Any, &mut buf, 8192, false, Wait::Timeout(T)).unwrap();
        let len = 1000 + (i as usize * 37) % 7000;
        assert_eq!(buf.len(), len);
        assert!(buf.iter().enumerate().all(|(j, &b)| b == (j as u32 ^ i) as u8), "message {i}");
    }
    producer.join().unwrap();
    let s = q.stat().unwrap();
    assert_eq!((s.messages, s.used_bytes), (0, 0));
}
