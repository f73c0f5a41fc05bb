//! The shared coordination buffers across real processes: two producer and two consumer
//! processes move items through a [`SharedSlotBuffer`] / [`SharedBoundedBuffer`] in a file
//! mapping. Children are this test binary, re-executed to run only [`coord_child`] with its
//! role in `IPCKIT_COORD_CHILD`. Every wait is bounded by a timeout.
#![cfg(not(loom))]

use ipckit::coord::{SharedBoundedBuffer, SharedSlotBuffer};
use ipckit::shm::Mapping;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "IPCKIT_COORD_CHILD";
const PER_PRODUCER: u64 = 3_000;
const PRODUCERS: u64 = 2;
const CONSUMERS: u64 = 2;
const TOTAL: u64 = PER_PRODUCER * PRODUCERS;
const WAIT: Duration = Duration::from_secs(30);

/// An item with redundancy, so that a torn copy (half old, half new) is detected.
type Item = [u64; 4];

fn item(v: u64) -> Item {
    [v, v.wrapping_mul(0x9e37_79b9_7f4a_7c15), !v, v ^ 0xabcd]
}

fn check(it: Item) -> u64 {
    assert_eq!(it, item(it[0]), "torn or corrupt item");
    it[0]
}

type Slots = SharedSlotBuffer<Item, 8>;
type Monitor = SharedBoundedBuffer<Item, 8>;

fn counts_offset() -> usize {
    size_of::<Slots>().max(size_of::<Monitor>()).next_multiple_of(4096)
}

fn region_len() -> usize {
    counts_offset() + TOTAL as usize * 4
}

/// What a child does: `KIND:producer:ID` or `KIND:consumer:ID` with the file's path.
#[test]
fn coord_child() {
    let Ok(role) = std::env::var(ROLE_ENV) else { return }; // a normal run: nothing to do
    let parts: Vec<&str> = role.split(':').collect();
    let (kind, what, id, path) = (parts[0], parts[1], parts[2], parts[3..].join(":"));
    let id: u64 = id.parse().unwrap();
    let m = Mapping::open(Path::new(&path)).unwrap();
    let counts = m.get_slice::<AtomicU32>(counts_offset(), TOTAL as usize).unwrap();
    let put = |v: u64| match kind {
        "slot" => m.get::<Slots>(0).unwrap().put_timeout(item(v), WAIT).unwrap(),
        _ => m.get::<Monitor>(0).unwrap().put_timeout(item(v), WAIT).unwrap(),
    };
    let take = || match kind {
        "slot" => m.get::<Slots>(0).unwrap().take_timeout(WAIT).unwrap(),
        _ => m.get::<Monitor>(0).unwrap().take_timeout(WAIT).unwrap(),
    };
    match what {
        "producer" => (0..PER_PRODUCER).for_each(|i| put(id * PER_PRODUCER + i)),
        "consumer" => {
            for _ in 0..TOTAL / CONSUMERS {
                let v = check(take());
                counts[v as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: String) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "coord_child", "--nocapture", "--test-threads", "1"])
        .env(ROLE_ENV, role)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_all(children: Vec<Child>) {
    let deadline = Instant::now() + 2 * WAIT;
    let mut failed = Vec::new();
    for mut c in children {
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                if !st.success() {
                    failed.push(format!("child {} ended with {st}", c.id()));
                }
                break;
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                let _ = c.wait();
                failed.push(format!("child {} timed out", c.id()));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
}

fn run(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer");
    let m = Mapping::create(&path, region_len(), 0o600).unwrap(); // zeroed: an empty buffer
    let p = path.to_str().unwrap();
    let mut kids = Vec::new();
    for id in 0..CONSUMERS {
        kids.push(spawn(format!("{kind}:consumer:{id}:{p}")));
    }
    for id in 0..PRODUCERS {
        kids.push(spawn(format!("{kind}:producer:{id}:{p}")));
    }
    wait_all(kids);
    let counts = m.get_slice::<AtomicU32>(counts_offset(), TOTAL as usize).unwrap();
    for (v, c) in counts.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "item {v} consumed the wrong number of times");
    }
    match kind {
        "slot" => assert!(m.get::<Slots>(0).unwrap().is_empty()),
        _ => assert!(m.get::<Monitor>(0).unwrap().is_empty()),
    }
}

#[test]
fn shared_slot_buffer_across_processes() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    run("slot");
}

#[test]
fn shared_bounded_buffer_across_processes() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    run("monitor");
}
