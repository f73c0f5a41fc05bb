//! Live detection: deadlocks among the processes using ipckit's objects right now.
//!
//! A [`WaitSnapshot`] says which processes sleep waiting for which resource (a mutex in a
//! shared memory segment, semaphore units of a set, a queue) and who holds what. From it
//! [`live`] builds the course's matrices — one resource class per resource, allocation =
//! units held, request = units waited for, available = what is free now — and runs the
//! matrix algorithm ([`detect`](fn@super::detect)); the resource-allocation graph gives the cycle's path.
//!
//! Only resources with a known holder take part: a process waiting for a message, or for
//! semaphore units nobody holds (taken without `UNDO`, so without an owner), waits for an
//! *event* another process may still cause; that is no deadlock the algorithm can prove, and
//! it is listed as a wait but never reported as deadlocked.

use super::{ResourceGraph, Scenario, detect};
use crate::ns::waits::{Edge, Resource, WaitSnapshot};
use crate::ns::{Namespace, ObjectError};
use std::collections::{BTreeMap, BTreeSet};

/// A process seen waiting or holding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveProcess {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub name: String,
}

/// What [`live`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveReport {
    /// Every process that waits for or holds something.
    pub processes: Vec<LiveProcess>,
    /// Every object part that is waited for or held.
    pub objects: Vec<Resource>,
    /// Who waits for what.
    pub waits: Vec<Edge>,
    /// Who holds what.
    pub holds: Vec<Edge>,
    /// The deadlocked processes' pids, ascending (empty: no deadlock).
    pub deadlocked: Vec<u32>,
    /// Each cycle as a path of labels, `P<pid>` and resources, ending where it starts.
    pub cycles: Vec<Vec<String>>,
}

/// Looks at the namespace now and reports waits, holds and deadlocks.
pub fn live(ns: &Namespace) -> Result<LiveReport, ObjectError> {
    Ok(analyze(&WaitSnapshot::take(ns)?))
}

/// The analysis of a snapshot (separate from taking it, for tests).
pub fn analyze(snap: &WaitSnapshot) -> LiveReport {
    let pids: Vec<u32> = snap.processes().into_iter().collect();
    let held: BTreeSet<&Resource> = snap.holds.iter().map(|e| &e.resource).collect();
    // Resource classes: held resources (waits on unheld ones are events, see module docs).
    let resources: Vec<&Resource> = held.iter().copied().collect();
    let pix: BTreeMap<u32, usize> = pids.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let rix: BTreeMap<&Resource, usize> =
        resources.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    let (n, m) = (pids.len(), resources.len());
    let mut allocation = vec![vec![0u64; m]; n];
    let mut request = vec![vec![0u64; m]; n];
    for e in &snap.holds {
        allocation[pix[&e.pid]][rix[&e.resource]] += e.units as u64;
    }
    for e in &snap.waits {
        if let Some(&r) = rix.get(&e.resource) {
            request[pix[&e.pid]][r] += e.units as u64;
        }
    }
    let existing: Vec<u64> = (0..m)
        .map(|r| {
            let held: u64 = allocation.iter().map(|row| row[r]).sum();
            held + snap.free.get(resources[r]).copied().unwrap_or(0) as u64
        })
        .collect();
    let deadlocked = match Scenario::new(&existing, &allocation, &request) {
        Ok(s) => detect(&s).deadlocked.into_iter().map(|i| pids[i]).collect(),
        Err(_) => Vec::new(), // cannot happen: existing >= column sums by construction
    };
    LiveReport {
        processes: pids.iter().map(|&pid| LiveProcess { pid, name: comm(pid) }).collect(),
        objects: snap
            .waits
            .iter()
            .chain(&snap.holds)
            .map(|e| e.resource.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        waits: snap.waits.clone(),
        holds: snap.holds.clone(),
        deadlocked,
        cycles: cycles(&pids, &resources, &pix, &rix, snap),
    }
}

/// Cycle paths from the resource graph of the single-holder resources.
fn cycles(
    pids: &[u32],
    resources: &[&Resource],
    pix: &BTreeMap<u32, usize>,
    rix: &BTreeMap<&Resource, usize>,
    snap: &WaitSnapshot,
) -> Vec<Vec<String>> {
    let mut g = ResourceGraph::new(pids.len(), resources.len());
    let mut holders: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for e in &snap.holds {
        holders.entry(rix[&e.resource]).or_default().insert(pix[&e.pid]);
    }
    for (&r, hs) in &holders {
        if hs.len() == 1 {
            let _ = g.hold(*hs.first().expect("one holder"), r);
        }
    }
    for e in &snap.waits {
        if let Some(&r) = rix.get(&e.resource) {
            let _ = g.wait(pix[&e.pid], r);
        }
    }
    g.cycles()
        .into_iter()
        .map(|c| {
            let mut path: Vec<String> = c
                .nodes
                .iter()
                .map(|n| match n {
                    super::Node::Process(i) => format!("P{}", pids[*i]),
                    super::Node::Resource(j) => resources[*j].to_string(),
                })
                .collect();
            if let Some(first) = path.first().cloned() {
                path.push(first);
            }
            path
        })
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::waits::Part;
    use crate::ns::{Key, ObjectKind};

    fn mutex(offset: u64) -> Resource {
        Resource { kind: ObjectKind::Shm, id: 1, key: Key(5), part: Part::Mutex { offset } }
    }

    fn edge(pid: u32, r: Resource) -> Edge {
        Edge { pid, resource: r, units: 1 }
    }

    #[test]
    fn two_mutex_cycle_is_a_deadlock_with_its_path() {
        let snap = WaitSnapshot {
            waits: vec![edge(10, mutex(64)), edge(20, mutex(0))],
            holds: vec![edge(10, mutex(0)), edge(20, mutex(64))],
            free: Default::default(),
        };
        let r = analyze(&snap);
        assert_eq!(r.deadlocked, [10, 20]);
        assert_eq!(r.cycles.len(), 1);
        assert_eq!(r.cycles[0], ["P10", "mutex@shm#1+64", "P20", "mutex@shm#1+0", "P10"]);
    }

    #[test]
    fn a_plain_wait_is_no_deadlock() {
        // 10 waits for a mutex 20 holds; 20 waits for nothing held.
        let snap = WaitSnapshot {
            waits: vec![edge(10, mutex(0))],
            holds: vec![edge(20, mutex(0))],
            free: Default::default(),
        };
        let r = analyze(&snap);
        assert!(r.deadlocked.is_empty());
        assert!(r.cycles.is_empty());
    }

    #[test]
    fn waiting_for_an_unheld_resource_is_not_deadlock() {
        let q = Resource { kind: ObjectKind::Mq, id: 2, key: Key(1), part: Part::Queue };
        let snap =
            WaitSnapshot { waits: vec![edge(10, q)], holds: vec![], free: Default::default() };
        assert!(analyze(&snap).deadlocked.is_empty());
    }
}
