//! Shared memory segments across real processes: unrelated writer and reader, attachment
//! counting through spawn and SIGKILL, permissions for another user, and a creator killed
//! in the middle of creating.

mod support;

use ipckit::ns::waits::{Part, WaitSnapshot};
use ipckit::ns::{CreateMode, Key, Namespace, ObjectError, ObjectFile, ObjectKind};
use ipckit::shm::Segment;
use ipckit::sync::Mutex;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;
use support::{eventually, scratch, spawn, wait, wait_ok};

fn main() {
    support::main(
        &[
            ("writer_and_unrelated_reader_see_the_same_bytes", writer_and_reader),
            ("nattch_counts_live_attachments_across_processes", nattch_counts),
            ("remove_while_another_process_is_attached", remove_while_attached),
            ("other_user_is_denied_a_0600_segment", permission_denied_for_other_user),
            ("creator_killed_midway_leaves_nothing_visible", creator_killed_midway),
            ("two_process_mutex_deadlock_is_seen_live", mutex_deadlock_seen_live),
        ],
        child,
    );
}

fn ns_at(dir: &str) -> Namespace {
    Namespace::at(Path::new(dir)).unwrap()
}

fn child(role: &str, args: &[String]) {
    let ns = ns_at(&args[0]);
    match role {
        "write" => {
            let seg = Segment::open(&ns, Key(0x51)).unwrap();
            seg.attach().unwrap().write(0, args[1].as_bytes()).unwrap();
        }
        "read" => {
            let seg = Segment::open(&ns, Key(0x51)).unwrap();
            let mut buf = vec![0u8; args[1].len()];
            seg.attach_read_only().unwrap().read(0, &mut buf).unwrap();
            assert_eq!(buf, args[1].as_bytes(), "reader saw other bytes");
        }
        "attach-and-wait" => {
            let seg = Segment::open(&ns, Key(0x52)).unwrap();
            let _a = seg.attach().unwrap();
            // Tell the parent, then wait to be killed or told to go.
            std::fs::write(format!("{}/attached.{}", args[0], std::process::id()), b"").unwrap();
            let go = format!("{}/go", args[0]);
            assert!(eventually(support::LIMIT, || Path::new(&go).exists()));
        }
        "open-as-other-user" => {
            match Segment::open(&ns, Key(0x53)) {
                Err(ObjectError::PermissionDenied { .. }) => {}
                other => panic!("expected PermissionDenied, got {other:?}"),
            }
            // Readable (0644) but not writable: read-only attach works, read-write does not.
            let seg = Segment::open(&ns, Key(0x54)).unwrap();
            assert!(seg.attach_read_only().is_ok());
            match seg.attach() {
                Err(ObjectError::PermissionDenied { .. }) => {}
                other => panic!("expected PermissionDenied, got {other:?}"),
            }
        }
        "create-and-hang" => {
            let _ = ObjectFile::obtain(
                &ns,
                ObjectKind::Shm,
                Key(0x55),
                CreateMode::CreateExclusive,
                0o600,
                64,
                |_, _| {
                    std::fs::write(format!("{}/midway", args[0]), b"").unwrap();
                    std::thread::sleep(Duration::from_secs(60));
                    Ok(())
                },
            );
        }
        "lock-two" => {
            let seg = Segment::open(&ns, Key(0x56)).unwrap();
            let a = seg.attach().unwrap();
            let (first, second): (usize, usize) =
                (args[1].parse().unwrap(), args[2].parse().unwrap());
            let _g1 = a.get::<Mutex<u64>>(first).unwrap().lock().unwrap();
            std::fs::write(format!("{}/holds.{first}", args[0]), b"").unwrap();
            let other = format!("{}/holds.{second}", args[0]);
            assert!(eventually(support::LIMIT, || Path::new(&other).exists()));
            // Deadlock: the other process holds `second` and waits for `first`.
            let _g2 = a.get::<Mutex<u64>>(second).unwrap().lock();
            unreachable!("the deadlock ended");
        }
        other => panic!("unknown role {other}"),
    }
}

fn writer_and_reader() {
    let d = scratch();
    let dir = d.path().to_str().unwrap();
    let ns = ns_at(dir);
    Segment::create(&ns, Key(0x51), 4096, 0o600).unwrap();
    let text = "bytes from another process";
    wait_ok(spawn("write", &[dir, text]));
    wait_ok(spawn("read", &[dir, text])); // a second, unrelated process
    let mut buf = vec![0u8; text.len()];
    Segment::open(&ns, Key(0x51)).unwrap().attach().unwrap().read(0, &mut buf).unwrap();
    assert_eq!(buf, text.as_bytes());
}

fn nattch_counts() {
    let d = scratch();
    let dir = d.path().to_str().unwrap();
    let ns = ns_at(dir);
    let seg = Segment::create(&ns, Key(0x52), 4096, 0o600).unwrap();
    let _mine = seg.attach().unwrap();
    let mut kids: Vec<_> = (0..3).map(|_| spawn("attach-and-wait", &[dir])).collect();
    let attached = || {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("attached."))
            .count()
    };
    assert!(eventually(support::LIMIT, || attached() == 3));
    assert_eq!(seg.stat().unwrap().nattch, 4);
    // SIGKILL one: it never detaches, yet stops counting.
    let mut victim = kids.remove(0);
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(eventually(Duration::from_secs(5), || seg.stat().unwrap().nattch == 3));
    std::fs::write(d.path().join("go"), b"").unwrap();
    kids.into_iter().for_each(wait_ok);
    assert_eq!(seg.stat().unwrap().nattch, 1);
}

fn remove_while_attached() {
    let d = scratch();
    let dir = d.path().to_str().unwrap();
    let ns = ns_at(dir);
    let seg = Segment::create(&ns, Key(0x52), 4096, 0o600).unwrap();
    let kid = spawn("attach-and-wait", &[dir]);
    assert!(eventually(support::LIMIT, || {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("attached."))
    }));
    let a = seg.attach().unwrap();
    a.write(0, b"survives").unwrap();
    seg.remove().unwrap();
    assert!(matches!(Segment::open(&ns, Key(0x52)), Err(ObjectError::NotFound { .. })));
    assert!(ns.entries(None).unwrap().is_empty());
    let mut buf = [0u8; 8];
    a.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"survives");
    std::fs::write(d.path().join("go"), b"").unwrap();
    wait_ok(kid);
    // The key is free: a new segment, zeroed.
    let fresh = Segment::create(&ns, Key(0x52), 4096, 0o600).unwrap();
    let mut buf = [9u8; 8];
    fresh.attach().unwrap().read(0, &mut buf).unwrap();
    assert_eq!(buf, [0; 8]);
}

fn permission_denied_for_other_user() {
    if ipckit::sys::current_uid() != 0 {
        println!("  (skipped: needs root to run a child as nobody)");
        return;
    }
    let d = scratch();
    let dir = d.path().to_str().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ns = ns_at(dir);
    Segment::create(&ns, Key(0x53), 4096, 0o600).unwrap();
    Segment::create(&ns, Key(0x54), 4096, 0o644).unwrap();
    // The test binary must be reachable by nobody: run it from a world-readable copy.
    let exe = d.path().join("test-binary");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kid = std::process::Command::new(&exe)
        .arg(dir)
        .env("IPCKIT_TEST_ROLE", "open-as-other-user")
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    wait_ok(kid);
}

fn creator_killed_midway() {
    let d = scratch();
    let dir = d.path().to_str().unwrap();
    let ns = ns_at(dir);
    let mut kid = spawn("create-and-hang", &[dir]);
    assert!(eventually(support::LIMIT, || d.path().join("midway").exists()));
    kid.kill().unwrap();
    let _ = wait(kid);
    // Nothing visible: not listed, not openable; the key is free.
    assert!(ns.entries(None).unwrap().is_empty());
    assert!(matches!(Segment::open(&ns, Key(0x55)), Err(ObjectError::NotFound { .. })));
    Segment::create(&ns, Key(0x55), 64, 0o600).unwrap();
    // The dead creator's temporary file is garbage, and is collected.
    assert_eq!(ns.collect_garbage(), 1);
}

/// Two processes lock two mutexes of a segment in opposite orders: the live snapshot shows
/// each waiting for the mutex the other holds.
fn mutex_deadlock_seen_live() {
    let d = scratch();
    let dir = d.path().to_str().unwrap();
    let ns = ns_at(dir);
    let seg = Segment::create(&ns, Key(0x56), 4096, 0o600).unwrap();
    let mut a = spawn("lock-two", &[dir, "0", "64"]);
    let mut b = spawn("lock-two", &[dir, "64", "0"]);
    let (pa, pb) = (a.id(), b.id());
    let mut snap = WaitSnapshot::default();
    let seen = eventually(Duration::from_secs(20), || {
        snap = WaitSnapshot::take(&ns).unwrap();
        snap.waits.len() == 2
    });
    a.kill().unwrap();
    b.kill().unwrap();
    let _ = (a.wait(), b.wait());
    assert!(seen, "no deadlock seen: {snap:?}");
    let waits_for =
        |pid: u32| snap.waits.iter().find(|e| e.pid == pid).map(|e| e.resource.part.clone());
    let holds =
        |pid: u32| snap.holds.iter().find(|e| e.pid == pid).map(|e| e.resource.part.clone());
    assert_eq!(waits_for(pa), Some(Part::Mutex { offset: 64 }));
    assert_eq!(waits_for(pb), Some(Part::Mutex { offset: 0 }));
    assert_eq!(holds(pa), Some(Part::Mutex { offset: 0 }));
    assert_eq!(holds(pb), Some(Part::Mutex { offset: 64 }));
    assert!(snap.waits.iter().all(|e| e.resource.id == seg.id()));
}
