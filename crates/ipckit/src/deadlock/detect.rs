//! Deadlock detection with several instances per resource class: the matrix algorithm, a fast
//! implementation ([`detect`]) and the textbook loop it must agree with ([`detect_naive`]).

use super::scenario::{Matrix, Scenario};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What [`detect`] found: who is deadlocked, in which order the others can finish, and the
/// available vector after each of them finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The processes that can never finish, by index, ascending. Empty: no deadlock.
    pub deadlocked: Vec<usize>,
    /// The processes that can finish, in the order the algorithm lets them finish.
    pub order: Vec<usize>,
    /// Number of resource classes (the width of `after`).
    resources: usize,
    /// A after each step, one row per entry of `order`.
    after: Vec<u64>,
}

/// One step of the algorithm: `process` fit, ran to completion and released what it held,
/// leaving `available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    /// The process that finished (index).
    pub process: usize,
    /// A after it released its allocation.
    pub available: &'a [u64],
}

impl Detection {
    /// Whether some process is deadlocked.
    pub fn is_deadlock(&self) -> bool {
        !self.deadlocked.is_empty()
    }

    /// The steps, in order: which process finished and the available vector it left.
    pub fn steps(&self) -> impl ExactSizeIterator<Item = Step<'_>> + '_ {
        self.order.iter().enumerate().map(move |(k, &process)| Step {
            process,
            available: &self.after[k * self.resources..(k + 1) * self.resources],
        })
    }

    /// A at the end: what is free once every process that can finish has finished.
    pub fn final_available<'a>(&'a self, scenario: &'a Scenario) -> &'a [u64] {
        match self.order.len() {
            0 => scenario.available(),
            k => &self.after[(k - 1) * self.resources..k * self.resources],
        }
    }
}

/// Runs the deadlock-detection algorithm (Coffman, Elphick & Shoshani 1971; Tanenbaum,
/// *Modern Operating Systems*, "Deadlock detection with multiple resources of each type").
///
/// 1. Look for an unfinished process `Pi` whose request row fits: `R[i] <= A` componentwise.
/// 2. If there is one, it can run to completion: add its allocation `C[i]` to `A`, mark it
///    finished, and go back to 1.
/// 3. Otherwise stop: the unfinished processes are deadlocked.
///
/// **Tie rule.** When several processes fit, the one with the smallest index finishes first
/// (step 1 scans the rows from the top, as the course does by hand). Since `A` only grows, a
/// process that fits keeps fitting, so the set of finished processes does not depend on the
/// rule; the order does, and this rule makes it unique.
///
/// **Cost.** The textbook loop rescans every row after each step: `O(n² m)`. This one does
/// `O(n m log n)` work in total (`O(n m)` when the counts are small, thanks to a counting
/// sort) and re-examines a process only when a release may have
/// satisfied it:
/// * each process keeps a counter of the classes whose request is not yet covered by `A`;
/// * each class keeps its waiting processes in a queue sorted by their request, with a cursor:
///   when `A[j]` grows, the cursor moves over the requests that now fit and decrements those
///   processes' counters;
/// * a process whose counter reaches 0 enters a min-heap of ready processes by index; each
///   step pops the smallest index, which is exactly the textbook's choice.
///
/// Every (process, class) pair passes a cursor at most once. The result is identical to
/// [`detect_naive`] (property-tested), including the order and the steps.
///
/// Never blocks, never fails: a [`Scenario`] is valid by construction.
///
/// ```
/// use ipckit::deadlock::{Scenario, detect};
///
/// // The course's example: E = (4 2 3 1).
/// let s = Scenario::new(
///     &[4, 2, 3, 1],
///     &[vec![0, 0, 1, 0], vec![2, 0, 0, 1], vec![0, 1, 2, 0]],
///     &[vec![2, 0, 0, 1], vec![1, 0, 1, 0], vec![2, 1, 0, 0]],
/// )?;
/// let d = detect(&s);
/// assert!(!d.is_deadlock());
/// assert_eq!(d.order, [2, 1, 0]); // P3, P2, P1
/// # Ok::<(), ipckit::deadlock::ScenarioError>(())
/// ```
pub fn detect(scenario: &Scenario) -> Detection {
    detect_with(scenario.available(), scenario.allocation(), scenario.request())
}

/// The matrix algorithm on raw parts: `available`, `allocation` and `request` (or `need`, for
/// the banker's safety check). Rows and widths must agree (a [`Scenario`] guarantees it).
pub(crate) fn detect_with(available: &[u64], allocation: &Matrix, request: &Matrix) -> Detection {
    let (n, m) = (request.rows(), request.cols());
    let mut avail = available.to_vec();

    // Queues: for each class j, the processes whose request for j exceeds A[j] now, as
    // (request, process), stored back to back (CSR layout) and sorted by request.
    let mut unsatisfied = vec![0u32; n];
    let mut start = vec![0usize; m + 1];
    let mut max_request = vec![0u64; m];
    for row in request.iter_rows() {
        for (j, &r) in row.iter().enumerate() {
            if r > avail[j] {
                start[j + 1] += 1;
                max_request[j] = max_request[j].max(r);
            }
        }
    }
    for j in 0..m {
        start[j + 1] += start[j];
    }
    // Two parallel arrays: the requests (what the cursors compare) and the processes.
    let mut fill = start.clone();
    let mut queue_request = vec![0u64; start[m]];
    let mut queue_process = vec![0u32; start[m]];
    for (i, row) in request.iter_rows().enumerate() {
        for (j, &r) in row.iter().enumerate() {
            if r > avail[j] {
                queue_request[fill[j]] = r;
                queue_process[fill[j]] = i as u32;
                fill[j] += 1;
                unsatisfied[i] += 1;
            }
        }
    }
    let mut sorter = Sorter::default();
    for j in 0..m {
        let seg = start[j]..start[j + 1];
        sorter.sort(
            &mut queue_request[seg.clone()],
            &mut queue_process[seg],
            avail[j].saturating_add(1),
            max_request[j],
        );
    }
    let mut cursor: Vec<usize> = start[..m].to_vec();
    // The request at each cursor (u64::MAX past the end): a release that leaves A[j] below
    // it changes nothing for class j, and the queue is not touched.
    let mut next: Vec<u64> = (0..m)
        .map(|j| if start[j] < start[j + 1] { queue_request[start[j]] } else { u64::MAX })
        .collect();

    let mut ready: BinaryHeap<Reverse<u32>> =
        (0..n as u32).filter(|&i| unsatisfied[i as usize] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut after = Vec::with_capacity(n * m);
    let mut finished = vec![false; n];
    while let Some(Reverse(p)) = ready.pop() {
        let p = p as usize;
        finished[p] = true;
        order.push(p);
        for (a, c) in avail.iter_mut().zip(allocation.row(p)) {
            *a += c;
        }
        for j in 0..m {
            let a = avail[j];
            if a < next[j] {
                continue;
            }
            let end = start[j + 1];
            let mut k = cursor[j];
            while k < end && queue_request[k] <= a {
                let q = queue_process[k] as usize;
                unsatisfied[q] -= 1;
                if unsatisfied[q] == 0 {
                    ready.push(Reverse(q as u32));
                }
                k += 1;
            }
            cursor[j] = k;
            next[j] = if k < end { queue_request[k] } else { u64::MAX };
        }
        after.extend_from_slice(&avail);
    }
    let deadlocked = (0..n).filter(|&i| !finished[i]).collect();
    Detection { deadlocked, order, resources: m, after }
}

/// Sorts queue segments by request: a counting sort when the requests span a small range
/// (the common case: counts are small numbers), otherwise pattern-defeating quicksort.
/// Either way processes with equal requests stay in index order (not needed for the result,
/// which does not depend on it, but it keeps the work reproducible).
#[derive(Default)]
struct Sorter {
    counts: Vec<usize>,
    pairs: Vec<(u64, u32)>,
}

impl Sorter {
    /// Sorts the segment `(request, process)` by request; every request lies in `lo..=hi`.
    fn sort(&mut self, request: &mut [u64], process: &mut [u32], lo: u64, hi: u64) {
        let len = request.len();
        if len < 2 {
            return;
        }
        let range = hi - lo + 1;
        if range > (4 * len as u64).max(1024) {
            self.pairs.clear();
            self.pairs.extend(request.iter().copied().zip(process.iter().copied()));
            self.pairs.sort_by_key(|e| e.0);
            for (k, &(r, p)) in self.pairs.iter().enumerate() {
                request[k] = r;
                process[k] = p;
            }
            return;
        }
        let range = range as usize;
        self.counts.clear();
        self.counts.resize(range + 1, 0);
        for &r in request.iter() {
            self.counts[(r - lo) as usize + 1] += 1;
        }
        for k in 0..range {
            self.counts[k + 1] += self.counts[k];
        }
        // Scatter the processes; the requests are then the bucket values, rewritten in order.
        self.pairs.clear();
        self.pairs.resize(len, (0, 0));
        for (&r, &p) in request.iter().zip(process.iter()) {
            let slot = &mut self.counts[(r - lo) as usize];
            self.pairs[*slot] = (r, p);
            *slot += 1;
        }
        for (k, &(r, p)) in self.pairs.iter().enumerate() {
            request[k] = r;
            process[k] = p;
        }
    }
}

/// The matrix algorithm exactly as the textbook runs it by hand: scan the rows from the top
/// for the first unfinished process whose request fits, release its allocation, start over.
/// `O(n² m)`; kept as the reference that [`detect`] is tested and benchmarked against. Same
/// result as [`detect`], including the order.
pub fn detect_naive(scenario: &Scenario) -> Detection {
    let (n, m) = (scenario.process_count(), scenario.resource_count());
    let (allocation, request) = (scenario.allocation(), scenario.request());
    let mut avail = scenario.available().to_vec();
    let mut finished = vec![false; n];
    let mut order = Vec::new();
    let mut after = Vec::new();
    'step: loop {
        for (i, done) in finished.iter_mut().enumerate() {
            if !*done && request.row(i).iter().zip(&avail).all(|(r, a)| r <= a) {
                *done = true;
                order.push(i);
                for (a, c) in avail.iter_mut().zip(allocation.row(i)) {
                    *a += c;
                }
                after.extend_from_slice(&avail);
                continue 'step;
            }
        }
        break;
    }
    let deadlocked = (0..n).filter(|&i| !finished[i]).collect();
    Detection { deadlocked, order, resources: m, after }
}
