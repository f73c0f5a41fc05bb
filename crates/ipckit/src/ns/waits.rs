//! Who waits for what in a namespace, and who holds it: the live wait-for state.
//!
//! Nothing is published by the waiters: a [snapshot](WaitSnapshot::take) finds the threads
//! asleep in futex waits on words of the namespace's object files
//! ([`crate::sys::futex_sleepers`]), then asks each object's kind what
//! that word is:
//!
//! * in a shared memory segment, a word a waiter sleeps on that has the shape of a
//!   [`RawMutex`] word (an owner's thread id and the waiters bit) is a mutex; its owner is in
//!   the word itself, so the snapshot records both "P waits for mutex M" and "Q holds M";
//! * a semaphore set publishes its own records: which thread waits for which semaphore, and
//!   the undo table, whose positive adjustments are units *held* (taken with `UNDO`);
//! * a thread asleep on a message queue's word waits for the queue (messages or space).
//!
//! A thread between two slices of a timed sleep is briefly not in the futex call, so a
//! snapshot samples a few times and merges. The result feeds the deadlock detector: a cycle
//! in the process/resource graph is a deadlock.

use super::{Entry, Key, Namespace, ObjectError, ObjectKind};
use crate::sync::RawMutex;
use crate::sys;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Duration;

/// What inside an object a process waits for or holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// A mutex at this offset of a segment's data.
    Mutex {
        /// Offset in the segment's data.
        offset: u64,
    },
    /// Semaphore `num` of a set (waits: units or zero; holds: units taken with `UNDO`).
    Semaphore {
        /// The semaphore's number.
        num: u32,
    },
    /// A message queue: messages to arrive, or space to send.
    Queue,
    /// The whole object (kinds that cannot say more).
    Object,
}

/// A resource: a part of an object in the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Resource {
    /// The object's kind.
    pub kind: ObjectKind,
    /// The object's id.
    pub id: i32,
    /// The object's key.
    pub key: Key,
    /// The part of it.
    pub part: Part,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.part {
            Part::Mutex { offset } => write!(f, "mutex@{}+{offset}", self.kind_id()),
            Part::Semaphore { num } => write!(f, "{}[{num}]", self.kind_id()),
            Part::Queue | Part::Object => f.write_str(&self.kind_id()),
        }
    }
}

impl Resource {
    fn kind_id(&self) -> String {
        format!("{}#{}", self.kind, self.id)
    }
}

/// "Process `pid` waits for / holds `resource`".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Edge {
    /// The process.
    pub pid: u32,
    /// The resource.
    pub resource: Resource,
    /// Units (semaphores); 1 otherwise.
    pub units: u32,
}

/// The wait-for state of a namespace at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WaitSnapshot {
    /// Who waits for what.
    pub waits: Vec<Edge>,
    /// Who holds what (as far as it can be known: semaphore units taken without `UNDO` have
    /// no holder).
    pub holds: Vec<Edge>,
    /// Units free now, for the resources whose count is known (semaphores); a held mutex has
    /// none.
    #[serde(skip)]
    pub free: BTreeMap<Resource, u32>,
}

/// How many samples a snapshot merges, and how far apart.
const SAMPLES: usize = 3;
const SAMPLE_GAP: Duration = Duration::from_millis(15);

impl WaitSnapshot {
    /// Takes a snapshot of `ns`.
    pub fn take(ns: &Namespace) -> Result<WaitSnapshot, ObjectError> {
        let mut by_file: BTreeMap<(u64, u64), Entry> = BTreeMap::new();
        for e in ns.entries(None)? {
            if let Ok(m) = std::fs::metadata(&e.path) {
                by_file.insert((dev_pair(m.dev()), m.ino()), e);
            }
        }
        let mut waits = BTreeSet::new();
        let mut holds = BTreeSet::new();
        #[cfg_attr(loom, allow(unused_mut))]
        let mut free = BTreeMap::new();
        // Semaphore sets publish who waits for which semaphore and who holds units (undo).
        #[cfg(not(loom))]
        for e in by_file.values().filter(|e| e.kind == ObjectKind::Sem) {
            sem_state(e, &mut waits, &mut holds, &mut free);
        }
        for i in 0..SAMPLES {
            if i > 0 {
                std::thread::sleep(SAMPLE_GAP);
            }
            for s in sys::futex_sleepers() {
                let key = (((s.dev.0 as u64) << 32) | s.dev.1 as u64, s.ino);
                let Some(entry) = by_file.get(&key) else { continue };
                describe(entry, s.pid, s.offset, &mut waits, &mut holds);
            }
        }
        Ok(WaitSnapshot {
            waits: waits.into_iter().collect(),
            holds: holds.into_iter().collect(),
            free,
        })
    }

    /// Processes that appear in the snapshot.
    pub fn processes(&self) -> BTreeSet<u32> {
        self.waits.iter().chain(&self.holds).map(|e| e.pid).collect()
    }
}

/// `st_dev` as `(major << 32) | minor`, the form `futex_sleepers` reports.
fn dev_pair(dev: u64) -> u64 {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major << 32) | minor
}

fn read_word(entry: &Entry, offset: u64) -> Option<u32> {
    let f = std::fs::File::open(&entry.path).ok()?;
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, offset).ok()?;
    Some(u32::from_ne_bytes(b))
}

/// Adds what a sleeper on `offset` of `entry` means.
fn describe(
    entry: &Entry,
    pid: u32,
    offset: u64,
    waits: &mut BTreeSet<Edge>,
    holds: &mut BTreeSet<Edge>,
) {
    let resource = |part| Resource { kind: entry.kind, id: entry.id, key: entry.key, part };
    match entry.kind {
        ObjectKind::Shm => {
            let data = crate::shm::DATA_OFFSET as u64;
            if offset < data || offset % 4 != 0 {
                return;
            }
            let Some(word) = read_word(entry, offset) else { return };
            let Some(owner_tid) = RawMutex::owner_of_waited_word(word) else { return };
            let r = resource(Part::Mutex { offset: offset - data });
            waits.insert(Edge { pid, resource: r.clone(), units: 1 });
            if let Some(owner) = sys::thread_group_of(owner_tid) {
                holds.insert(Edge { pid: owner, resource: r, units: 1 });
            }
        }
        // Semaphore sets are read from their own records (see `sem_state`).
        ObjectKind::Sem => {}
        ObjectKind::Mq => {
            waits.insert(Edge { pid, resource: resource(Part::Queue), units: 1 });
        }
    }
}

/// Waiters and holders of a semaphore set, from the set's waiter records and undo table.
#[cfg(not(loom))]
fn sem_state(
    entry: &Entry,
    waits: &mut BTreeSet<Edge>,
    holds: &mut BTreeSet<Edge>,
    free: &mut BTreeMap<Resource, u32>,
) {
    let Ok(set) = crate::sem::SemaphoreSet::open_entry(entry) else { return };
    let Ok(state) = set.wait_state() else { return };
    let resource = |num: usize| Resource {
        kind: entry.kind,
        id: entry.id,
        key: entry.key,
        part: Part::Semaphore { num: num as u32 },
    };
    for w in &state.waiters {
        if let Some(pid) = sys::thread_group_of(w.thread.pid).filter(|_| w.thread.is_alive()) {
            // A wait for zero is no request for units; it is listed, but asks for none.
            let units = if w.for_zero { 0 } else { 1 };
            waits.insert(Edge { pid, resource: resource(w.num), units });
        }
    }
    for h in &state.holders {
        if h.process.is_alive() {
            holds.insert(Edge { pid: h.process.pid, resource: resource(h.num), units: h.units });
        }
    }
    for (num, &v) in state.values.iter().enumerate() {
        free.insert(resource(num), v);
    }
}
