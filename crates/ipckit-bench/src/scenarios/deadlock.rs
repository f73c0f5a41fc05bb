//! `deadlock-detect`: ipckit's matrix algorithm next to the textbook loop (rescan every row
//! after each step) on 1,000 × 10, 10,000 × 100 and 100,000 × 10 scenarios; `graph-cycles`:
//! cycles and deadlocked processes of a resource-allocation graph with 1,000,000 edges.
//!
//! The scenarios are built to be hard for the textbook loop: a long chain in which each
//! process (in a random order) can only finish after nearly all the ones before it, plus a
//! group of processes deadlocked on the first class. The textbook loop then scans about half
//! the rows per step: `O(n²)` row checks.

use crate::harness::{Report, SharedAnon, fork_child, median, wait_child};
use ipckit::deadlock::{ResourceGraph, Scenario, detect, detect_naive};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The textbook loop is skipped (killed) beyond this.
const NAIVE_LIMIT: Duration = Duration::from_secs(10);

/// xorshift64*: a small, deterministic generator (no dependency needed for benchmark data).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=max` (bias is irrelevant here).
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// A chain of `n - d` processes that finish one after the other in a random order, and `d`
/// processes deadlocked on class 0.
pub fn chain_scenario(n: usize, m: usize, seed: u64) -> Scenario {
    let mut rng = Rng(seed | 1);
    let d = (n / 100).max(2);
    let mut alloc: Vec<Vec<u64>> = (0..n).map(|_| (0..m).map(|_| rng.upto(2)).collect()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    for k in (1..n).rev() {
        order.swap(k, rng.upto(k as u64) as usize);
    }
    let (chain, stuck) = order.split_at(n - d);
    for &p in stuck {
        alloc[p][0] = alloc[p][0].max(1);
    }
    let free: Vec<u64> = (0..m).map(|_| 1 + rng.upto(2)).collect();
    let existing: Vec<u64> =
        (0..m).map(|j| free[j] + alloc.iter().map(|r| r[j]).sum::<u64>()).collect();
    let mut request = vec![vec![0u64; m]; n];
    let mut avail = free.clone();
    for &p in chain {
        for j in 0..m {
            request[p][j] = avail[j] - rng.upto(avail[j].min(2));
        }
        for j in 0..m {
            avail[j] += alloc[p][j];
        }
    }
    for &p in stuck {
        request[p][0] = avail[0] + 1;
    }
    Scenario::new(&existing, &alloc, &request).expect("the generated scenario is valid")
}

fn ms_median(samples: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut v)
}

pub fn detect_bench(r: &mut Report) -> anyhow::Result<()> {
    for (n, m, fast_samples, naive_samples) in
        [(1_000, 10, 21, 11), (10_000, 100, 11, 3), (100_000, 10, 7, 1)]
    {
        let s = chain_scenario(n, m, 0x1dea_d10c ^ (n as u64));
        let metric = format!("ms {n}x{m}");
        let fast = detect(&s);
        anyhow::ensure!(fast.is_deadlock() && fast.order.len() > n * 9 / 10, "unexpected scenario");
        let ms = ms_median(fast_samples, || {
            std::hint::black_box(detect(std::hint::black_box(&s)));
        });
        r.push("ipckit detect", &metric, ms, "ms");

        // The textbook loop runs in a child process so it can be stopped after NAIVE_LIMIT.
        let mem = SharedAnon::new(4096);
        let slot = mem.get::<AtomicU64>(0);
        let same = mem.get::<AtomicU64>(64);
        let pid = fork_child(None, || {
            let mut v = Vec::new();
            for _ in 0..naive_samples {
                let t = Instant::now();
                let d = detect_naive(&s);
                v.push(t.elapsed().as_secs_f64() * 1e3);
                same.store(u64::from(d == fast), Ordering::Relaxed);
            }
            slot.store(median(&mut v).to_bits(), Ordering::Release);
        });
        let limit = NAIVE_LIMIT * naive_samples as u32 + Duration::from_secs(5);
        if wait_child(pid, limit) {
            anyhow::ensure!(
                same.load(Ordering::Relaxed) == 1,
                "detect and detect_naive disagree at {n}x{m}"
            );
            let ms = f64::from_bits(slot.load(Ordering::Acquire));
            r.push("naive (textbook rescan)", &metric, ms, "ms");
        } else {
            eprintln!(
                "deadlock-detect: naive (textbook rescan) at {n}x{m} skipped: it did not finish \
                 within {:?}",
                limit
            );
            r.push("naive: skipped (> 10 s)", &metric, f64::NAN, "ms");
        }
    }
    Ok(())
}

pub fn graph_bench(r: &mut Report) -> anyhow::Result<()> {
    // 300,000 processes, 500,000 resources: every resource held by a random process, and
    // 500,000 random "waits for" edges: 1,000,000 edges, a giant knot and many small ones.
    let (np, nr, waits) = (300_000usize, 500_000usize, 500_000usize);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let holders: Vec<usize> = (0..nr).map(|_| rng.upto(np as u64 - 1) as usize).collect();
    let edges: Vec<(usize, usize)> = (0..waits)
        .map(|_| (rng.upto(np as u64 - 1) as usize, rng.upto(nr as u64 - 1) as usize))
        .collect();
    let build = || {
        let mut g = ResourceGraph::new(np, nr);
        for (j, &p) in holders.iter().enumerate() {
            g.hold(p, j).unwrap();
        }
        for &(p, j) in &edges {
            g.wait(p, j).unwrap();
        }
        g
    };
    let g = build();
    anyhow::ensure!(g.edge_count() == 1_000_000);
    let metric = "ms 1000000 edges";
    r.push(
        "ipckit ResourceGraph build",
        metric,
        ms_median(5, || drop(std::hint::black_box(build()))),
        "ms",
    );
    let cycles = g.cycles();
    r.push(
        "ipckit ResourceGraph::cycles",
        metric,
        ms_median(7, || {
            std::hint::black_box(g.cycles());
        }),
        "ms",
    );
    r.push(
        "ipckit ResourceGraph::deadlocked",
        metric,
        ms_median(7, || {
            std::hint::black_box(g.deadlocked());
        }),
        "ms",
    );
    let longest = cycles.iter().map(|c| c.nodes.len()).max().unwrap_or(0);
    eprintln!(
        "graph-cycles: {} cycles (one per knot), longest {} nodes, {} processes deadlocked",
        cycles.len(),
        longest,
        g.deadlocked().len()
    );
    Ok(())
}
