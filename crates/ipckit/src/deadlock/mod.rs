//! Deadlock: detection with the matrix algorithm, resource-allocation graphs, and avoidance
//! with the banker's algorithm. Pure computation: no OS calls, nothing blocks.
//!
//! ## What a deadlock is
//!
//! A set of processes is deadlocked when each of them waits for something that only another
//! process of the set can do (release a resource), so none ever proceeds. Coffman, Elphick and
//! Shoshani (1971) showed that four conditions must hold together for it:
//!
//! | condition | meaning |
//! |---|---|
//! | mutual exclusion | each resource is held by at most one process at a time (per instance) |
//! | hold and wait | a process holding resources may ask for more |
//! | no preemption | a resource is given back only by the process that holds it |
//! | circular wait | there is a cycle of processes, each waiting for a resource the next holds |
//!
//! ## Two models
//!
//! **Resource-allocation graph** (Holt 1972), for resources with one instance each:
//! processes are circles, resources rectangles; an edge process → resource means "waits for",
//! resource → process means "holds". A cycle is then exactly a deadlock.
//! [`ResourceGraph`] finds the cycles in `O(V + E)`.
//!
//! **Matrices**, for resource classes with several instances (Tanenbaum, *Modern Operating
//! Systems*): `m` classes and `n` processes,
//!
//! | name | shape | meaning |
//! |---|---|---|
//! | E | `m` | existing: the instances of each class |
//! | A | `m` | available: the free instances |
//! | C | `n × m` | current allocation: row `i` is what process `i` holds |
//! | R | `n × m` | requests: row `i` is what process `i` waits for |
//!
//! with `A[j] + Σᵢ C[i][j] = E[j]`. [`detect`](fn@detect) lets every process whose request fits in `A`
//! finish and give back what it holds, until none fits; the rest are deadlocked. A cycle in
//! the graph is necessary for deadlock but, with several instances, no longer sufficient; the
//! matrix algorithm decides.
//!
//! **Avoidance.** The [`banker`] grants a request only if the state stays *safe*: some order
//! lets every process obtain its declared maximum (Dijkstra 1965).
//!
//! ## Example: the course's scenario
//!
//! ```
//! use ipckit::deadlock::{Scenario, detect};
//!
//! let s = Scenario::from_toml(r#"
//!     resources = ["tape", "plotter", "scanner", "cd"]
//!     existing = [4, 2, 3, 1]
//!     allocation = [[0, 0, 1, 0], [2, 0, 0, 1], [0, 1, 2, 0]]
//!     request = [[2, 0, 0, 1], [1, 0, 1, 0], [2, 1, 0, 0]]
//! "#)?;
//! assert_eq!(s.available(), &[2, 1, 0, 0]);
//! let d = detect(&s);
//! let names: Vec<&str> = d.order.iter().map(|&i| s.process_name(i)).collect();
//! assert_eq!(names, ["P3", "P2", "P1"]);
//! let after: Vec<&[u64]> = d.steps().map(|step| step.available).collect();
//! assert_eq!(after, [&[2, 2, 2, 0][..], &[4, 2, 2, 1], &[4, 2, 3, 1]]);
//! # Ok::<(), ipckit::deadlock::ScenarioError>(())
//! ```

pub mod banker;
mod detect;
mod graph;
pub mod live;
pub mod render;
mod scenario;

pub use detect::{Detection, Step, detect, detect_naive};
pub use graph::{Cycle, GraphError, Node, ResourceGraph};
pub use scenario::{Matrix, Scenario, ScenarioError, ScenarioInput};

#[cfg(test)]
mod tests;
