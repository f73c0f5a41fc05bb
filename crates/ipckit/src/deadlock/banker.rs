//! Deadlock avoidance: the banker's algorithm (Dijkstra 1965, for several resource classes
//! Habermann 1969; Silberschatz, *Operating System Concepts*, §"Banker's Algorithm").
//!
//! Each process declares its maximum claim. `need = maximum − allocation` is what it may still
//! ask for. A state is **safe** when there is an order (a *safe sequence*) in which every
//! process can obtain its whole need from what is available plus what the processes before it
//! release. That is the detection algorithm with `need` in place of `request`
//! ([`detect`](fn@super::detect)), so the safety check is `O(n m log n)` and uses the same tie
//! rule: when several processes could go next, the smallest index does.
//!
//! The banker grants a request only if the state that would result is safe; otherwise the
//! process waits, even though the resources are free. Unsafe is not deadlocked: it only means
//! the banker can no longer guarantee that everyone finishes if everyone asks for their
//! maximum.

use super::detect::{Detection, detect_with};
use super::scenario::{Matrix, Scenario};

/// The scenario has no `maximum` matrix, so the banker cannot compute needs (EINVAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the banker's algorithm needs the `maximum` matrix (each process's maximum claim)")]
pub struct NoMaximum;

/// Why [`Banker::request`] did not grant a request. [`ExceedsNeed`](Self::ExceedsNeed) and
/// the shape errors are errors (the caller broke the rules, EINVAL);
/// [`Unavailable`](Self::Unavailable) and [`Unsafe`](Self::Unsafe) mean *wait* (EAGAIN): ask
/// again after another process releases something. See [`RequestError::is_wait`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No such process (EINVAL).
    #[error("no process {process} (there are {count})")]
    NoSuchProcess {
        /// The index given.
        process: usize,
        /// How many there are.
        count: usize,
    },
    /// The request vector does not have one entry per resource class (EINVAL).
    #[error("the request has {found} entries but there are {expected} resource classes")]
    WrongLength {
        /// Entries given.
        found: usize,
        /// Classes.
        expected: usize,
    },
    /// The process asks for more than its remaining need: it exceeded its declared maximum
    /// claim. An error, not a wait (EINVAL).
    #[error("process {process} asks for {requested} of resource {resource} but its need is {need}")]
    ExceedsNeed {
        /// The process.
        process: usize,
        /// The first class where the request exceeds the need.
        resource: usize,
        /// Asked for.
        requested: u64,
        /// `maximum − allocation` for that class.
        need: u64,
    },
    /// Not enough is free now: wait (EAGAIN).
    #[error(
        "process {process} must wait: it asks for {requested} of resource {resource} but only {available} are available"
    )]
    Unavailable {
        /// The process.
        process: usize,
        /// The first class where the request exceeds what is available.
        resource: usize,
        /// Asked for.
        requested: u64,
        /// Free now.
        available: u64,
    },
    /// Enough is free, but granting would leave an unsafe state: wait (EAGAIN).
    #[error("process {process} must wait: granting the request would leave the state unsafe")]
    Unsafe {
        /// The process.
        process: usize,
    },
}

impl RequestError {
    /// Whether the process should wait and retry ([`Unavailable`](Self::Unavailable),
    /// [`Unsafe`](Self::Unsafe)) rather than having made an error.
    pub fn is_wait(&self) -> bool {
        matches!(self, RequestError::Unavailable { .. } | RequestError::Unsafe { .. })
    }
}

/// Whether the state of `scenario` is safe: `Ok(Some(sequence))` with a safe sequence of
/// process indices (smallest index first among those that could go), `Ok(None)` if unsafe.
///
/// # Errors
/// [`NoMaximum`] if the scenario has no maximum claims.
///
/// ```
/// use ipckit::deadlock::{Scenario, banker};
///
/// // Silberschatz's example: 5 processes, classes A B C with 10, 5, 7 instances.
/// let s = Scenario::new(
///     &[10, 5, 7],
///     &[vec![0, 1, 0], vec![2, 0, 0], vec![3, 0, 2], vec![2, 1, 1], vec![0, 0, 2]],
///     &[vec![0; 3], vec![0; 3], vec![0; 3], vec![0; 3], vec![0; 3]],
/// )?
/// .with_maximum(&[vec![7, 5, 3], vec![3, 2, 2], vec![9, 0, 2], vec![2, 2, 2], vec![4, 3, 3]])?;
/// assert_eq!(banker::is_safe(&s)?, Some(vec![1, 3, 0, 2, 4]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_safe(scenario: &Scenario) -> Result<Option<Vec<usize>>, NoMaximum> {
    Ok(Banker::new(scenario)?.is_safe())
}

/// The banker's state: available, allocation, maximum and need. Starts from a scenario and
/// changes with each granted [`request`](Banker::request) and [`release`](Banker::release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banker {
    available: Vec<u64>,
    allocation: Matrix,
    maximum: Matrix,
    need: Matrix,
}

impl Banker {
    /// The banker for `scenario`'s current state (its `request` matrix is ignored).
    ///
    /// # Errors
    /// [`NoMaximum`] if the scenario has no maximum claims.
    pub fn new(scenario: &Scenario) -> Result<Banker, NoMaximum> {
        let maximum = scenario.maximum().ok_or(NoMaximum)?.clone();
        let allocation = scenario.allocation().clone();
        let mut need = maximum.clone();
        for i in 0..need.rows() {
            for (x, c) in need.row_mut(i).iter_mut().zip(allocation.row(i)) {
                // The scenario checked allocation <= maximum.
                *x -= c;
            }
        }
        Ok(Banker { available: scenario.available().to_vec(), allocation, maximum, need })
    }

    /// What is free now.
    pub fn available(&self) -> &[u64] {
        &self.available
    }

    /// What each process holds now.
    pub fn allocation(&self) -> &Matrix {
        &self.allocation
    }

    /// The maximum claims.
    pub fn maximum(&self) -> &Matrix {
        &self.maximum
    }

    /// `maximum − allocation`: what each process may still ask for.
    pub fn need(&self) -> &Matrix {
        &self.need
    }

    /// A safe sequence of the current state, or `None` if it is unsafe. Never blocks.
    pub fn is_safe(&self) -> Option<Vec<usize>> {
        let d = self.safety();
        d.deadlocked.is_empty().then_some(d.order)
    }

    /// The safety check in full, to show how it went: the detection algorithm run with `need`
    /// as the request matrix. `order` is the (possibly partial) sequence, each step carries
    /// the work vector after that process returned its allocation, and `deadlocked` lists the
    /// processes that might not finish (empty: safe).
    pub fn safety(&self) -> Detection {
        detect_with(&self.available, &self.allocation, &self.need)
    }

    /// Process `process` asks for `request` more instances. Granted only if
    /// `request <= need`, `request <= available`, and the resulting state is safe; then the
    /// state changes and the new safe sequence is returned. Otherwise the state is unchanged.
    ///
    /// # Errors
    /// [`RequestError::ExceedsNeed`] (an error: beyond the declared maximum),
    /// [`RequestError::Unavailable`] or [`RequestError::Unsafe`] (wait and retry; see
    /// [`RequestError::is_wait`]), or a shape error.
    pub fn request(&mut self, process: usize, request: &[u64]) -> Result<Vec<usize>, RequestError> {
        self.check(process, request)?;
        for (j, &r) in request.iter().enumerate() {
            let need = self.need.get(process, j);
            if r > need {
                return Err(RequestError::ExceedsNeed { process, resource: j, requested: r, need });
            }
        }
        for (j, &r) in request.iter().enumerate() {
            if r > self.available[j] {
                return Err(RequestError::Unavailable {
                    process,
                    resource: j,
                    requested: r,
                    available: self.available[j],
                });
            }
        }
        self.apply(process, request, true);
        match self.is_safe() {
            Some(sequence) => Ok(sequence),
            None => {
                self.apply(process, request, false);
                Err(RequestError::Unsafe { process })
            }
        }
    }

    /// Process `process` gives back `release` instances; its need grows back by as much.
    ///
    /// # Errors
    /// [`ReleaseError::Shape`] for a bad process index or vector length;
    /// [`ReleaseError::NotHeld`] if it gives back more than it holds. Either way the state is
    /// unchanged.
    pub fn release(&mut self, process: usize, release: &[u64]) -> Result<(), ReleaseError> {
        self.check(process, release).map_err(ReleaseError::Shape)?;
        for (j, &r) in release.iter().enumerate() {
            let held = self.allocation.get(process, j);
            if r > held {
                return Err(ReleaseError::NotHeld { process, resource: j, released: r, held });
            }
        }
        self.apply(process, release, false);
        Ok(())
    }

    fn check(&self, process: usize, v: &[u64]) -> Result<(), RequestError> {
        if process >= self.allocation.rows() {
            return Err(RequestError::NoSuchProcess { process, count: self.allocation.rows() });
        }
        if v.len() != self.available.len() {
            return Err(RequestError::WrongLength {
                found: v.len(),
                expected: self.available.len(),
            });
        }
        Ok(())
    }

    /// Moves `v` from available to the process (`grant`) or back.
    fn apply(&mut self, process: usize, v: &[u64], grant: bool) {
        let alloc = self.allocation.row_mut(process);
        for (j, &x) in v.iter().enumerate() {
            if grant {
                self.available[j] -= x;
                alloc[j] += x;
            } else {
                self.available[j] += x;
                alloc[j] -= x;
            }
        }
        let need = self.need.row_mut(process);
        for (j, &x) in v.iter().enumerate() {
            if grant {
                need[j] -= x;
            } else {
                need[j] += x;
            }
        }
    }
}

/// Why [`Banker::release`] failed; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// No such process, or the vector has the wrong length (EINVAL).
    #[error(transparent)]
    Shape(RequestError),
    /// The process gives back more than it holds (EINVAL).
    #[error("process {process} releases {released} of resource {resource} but holds {held}")]
    NotHeld {
        /// The process.
        process: usize,
        /// The first class where the release exceeds the allocation.
        resource: usize,
        /// Given back.
        released: u64,
        /// Held.
        held: u64,
    },
}
