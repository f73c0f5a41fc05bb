//! Resource-allocation graphs for single-instance resources (Holt 1972): processes and
//! resources are nodes; an edge process → resource means "waits for", resource → process
//! means "is held by". With one instance per resource, a cycle is a deadlock.

use super::scenario::Scenario;
use std::fmt;

/// A node of a [`ResourceGraph`]: a process (drawn as a circle) or a resource (a rectangle),
/// by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// Process `i`.
    Process(usize),
    /// Resource `j`.
    Resource(usize),
}

/// Why a graph edge or conversion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A process or resource index is out of range (EINVAL).
    #[error("no {what} with index {index} (there are {count})")]
    NoSuchNode {
        /// `process` or `resource`.
        what: &'static str,
        /// The index given.
        index: usize,
        /// How many there are.
        count: usize,
    },
    /// The resource already has a holder: it has only one instance (EBUSY).
    #[error("resource {resource} is already held by process {holder}")]
    AlreadyHeld {
        /// The resource.
        resource: usize,
        /// Its current holder.
        holder: usize,
    },
    /// The scenario has a class with more (or fewer) than one instance; use
    /// [`detect`](fn@super::detect) instead.
    #[error(
        "resource {resource} has {existing} instances; a resource graph needs exactly one per \
         resource (use the matrix algorithm)"
    )]
    NotSingleInstance {
        /// The class's name.
        resource: String,
        /// Its E.
        existing: u64,
    },
}

/// One cycle: the nodes in edge order, starting at the process with the smallest index; the
/// last node has an edge back to the first. Processes and resources alternate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The nodes, `P → R → P → R …`.
    pub nodes: Vec<Node>,
}

impl Cycle {
    /// The processes on the cycle, in cycle order.
    pub fn processes(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes.iter().filter_map(|n| match n {
            Node::Process(i) => Some(*i),
            Node::Resource(_) => None,
        })
    }
}

/// A resource-allocation graph with single-instance resources: each resource has at most one
/// holder; a process may wait for any number of resources.
///
/// ```
/// use ipckit::deadlock::{Node, ResourceGraph};
///
/// // P0 holds R0 and waits for R1; P1 holds R1 and waits for R0.
/// let mut g = ResourceGraph::new(2, 2);
/// g.hold(0, 0)?;
/// g.hold(1, 1)?;
/// g.wait(0, 1)?;
/// g.wait(1, 0)?;
/// let cycles = g.cycles();
/// assert_eq!(
///     cycles[0].nodes,
///     [Node::Process(0), Node::Resource(1), Node::Process(1), Node::Resource(0)]
/// );
/// assert_eq!(g.deadlocked(), [0, 1]);
/// # Ok::<(), ipckit::deadlock::GraphError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGraph {
    processes: usize,
    holder: Vec<Option<u32>>,
    /// (process, resource) "waits for" edges, in insertion order.
    waits: Vec<(u32, u32)>,
}

impl ResourceGraph {
    /// A graph with `processes` processes, `resources` resources and no edges.
    ///
    /// # Panics
    /// If either count exceeds `u32::MAX` (nodes are stored as 32-bit indices).
    pub fn new(processes: usize, resources: usize) -> ResourceGraph {
        assert!(processes <= u32::MAX as usize && resources <= u32::MAX as usize);
        ResourceGraph { processes, holder: vec![None; resources], waits: Vec::new() }
    }

    /// The graph of a scenario whose every resource has exactly one instance: `C[i][j] = 1`
    /// becomes `Rj → Pi`, `R[i][j] = 1` becomes `Pi → Rj`.
    ///
    /// # Errors
    /// [`GraphError::NotSingleInstance`] naming the first class with `E[j] != 1`.
    pub fn from_scenario(s: &Scenario) -> Result<ResourceGraph, GraphError> {
        for (j, &e) in s.existing().iter().enumerate() {
            if e != 1 {
                return Err(GraphError::NotSingleInstance {
                    resource: s.resource_name(j).to_string(),
                    existing: e,
                });
            }
        }
        let mut g = ResourceGraph::new(s.process_count(), s.resource_count());
        for i in 0..s.process_count() {
            for j in 0..s.resource_count() {
                if s.allocation().get(i, j) == 1 {
                    g.hold(i, j)?;
                }
                if s.request().get(i, j) == 1 {
                    g.wait(i, j)?;
                }
            }
        }
        Ok(g)
    }

    /// Number of processes.
    pub fn process_count(&self) -> usize {
        self.processes
    }

    /// Number of resources.
    pub fn resource_count(&self) -> usize {
        self.holder.len()
    }

    /// Number of edges (holds plus waits).
    pub fn edge_count(&self) -> usize {
        self.waits.len() + self.holder.iter().filter(|h| h.is_some()).count()
    }

    /// Adds the edge `resource → process`: the process holds the resource.
    ///
    /// # Errors
    /// [`GraphError::NoSuchNode`] for an index out of range; [`GraphError::AlreadyHeld`] if
    /// another process holds it (holding it again is a no-op).
    pub fn hold(&mut self, process: usize, resource: usize) -> Result<(), GraphError> {
        self.check(process, resource)?;
        match self.holder[resource] {
            Some(h) if h as usize != process => {
                Err(GraphError::AlreadyHeld { resource, holder: h as usize })
            }
            _ => {
                self.holder[resource] = Some(process as u32);
                Ok(())
            }
        }
    }

    /// Adds the edge `process → resource`: the process waits for the resource.
    ///
    /// # Errors
    /// [`GraphError::NoSuchNode`] for an index out of range.
    pub fn wait(&mut self, process: usize, resource: usize) -> Result<(), GraphError> {
        self.check(process, resource)?;
        self.waits.push((process as u32, resource as u32));
        Ok(())
    }

    /// The holder of `resource`, if any.
    ///
    /// # Panics
    /// If `resource` is out of range.
    pub fn holder(&self, resource: usize) -> Option<usize> {
        self.holder[resource].map(|h| h as usize)
    }

    /// The `process → resource` edges, in the order they were added.
    pub fn waits(&self) -> impl ExactSizeIterator<Item = (usize, usize)> + '_ {
        self.waits.iter().map(|&(p, r)| (p as usize, r as usize))
    }

    fn check(&self, process: usize, resource: usize) -> Result<(), GraphError> {
        if process >= self.processes {
            return Err(GraphError::NoSuchNode {
                what: "process",
                index: process,
                count: self.processes,
            });
        }
        if resource >= self.holder.len() {
            return Err(GraphError::NoSuchNode {
                what: "resource",
                index: resource,
                count: self.holder.len(),
            });
        }
        Ok(())
    }

    /// The wait-for graph: an edge `P → Q` labelled `R` for every `P → R → Q` (P waits for
    /// R, which Q holds). Resources have at most one outgoing edge, so every cycle of the
    /// resource graph is a cycle of this one with the resources as labels, and the algorithms
    /// run on half the nodes. A wait for a free resource leads nowhere and is dropped.
    ///
    /// CSR form `(start, targets, labels)`: the edges of process `p` go to
    /// `targets[start[p]..start[p + 1]]` through the resources `labels[..]` at the same
    /// positions, in insertion order.
    fn wait_for(&self) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let n = self.processes;
        let mut start = vec![0u32; n + 1];
        for &(p, r) in &self.waits {
            if self.holder[r as usize].is_some() {
                start[p as usize + 1] += 1;
            }
        }
        for k in 0..n {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut targets = vec![0u32; start[n] as usize];
        let mut labels = vec![0u32; start[n] as usize];
        for &(p, r) in &self.waits {
            if let Some(h) = self.holder[r as usize] {
                let k = fill[p as usize] as usize;
                targets[k] = h;
                labels[k] = r;
                fill[p as usize] += 1;
            }
        }
        (start, targets, labels)
    }

    /// The cycles, one per knot of mutually waiting processes: for every strongly connected
    /// component with a cycle, the shortest cycle through its smallest-indexed process.
    /// Components are listed by that process's index.
    ///
    /// Why not every cycle: a graph can hold exponentially many elementary cycles (Johnson
    /// 1975), but each strongly connected component is one deadlock, and one cycle shows it.
    /// The components come from Tarjan's algorithm (1972), iterative so a million-node chain
    /// cannot overflow the stack, run on the wait-for graph (processes only); each cycle from a
    /// breadth-first search inside its component. `O(V + E)` time. Deterministic for a given
    /// insertion order of the edges.
    pub fn cycles(&self) -> Vec<Cycle> {
        let (start, targets, labels) = self.wait_for();
        let n = self.processes;
        let comp = tarjan(&start, &targets);
        let components = comp.iter().copied().max().map_or(0, |c| c as usize + 1);
        // A component has a cycle if it has two processes or a process waits for itself
        // (for a resource it holds). Its representative: its smallest process.
        let mut size = vec![0u32; components];
        let mut first = vec![u32::MAX; components];
        for (x, &c) in comp.iter().enumerate() {
            size[c as usize] += 1;
            first[c as usize] = first[c as usize].min(x as u32);
        }
        let mut self_loop = vec![false; components];
        for x in 0..n {
            let edges = &targets[start[x] as usize..start[x + 1] as usize];
            if edges.contains(&(x as u32)) {
                self_loop[comp[x] as usize] = true;
            }
        }
        let mut roots: Vec<u32> =
            (0..components).filter(|&c| size[c] > 1 || self_loop[c]).map(|c| first[c]).collect();
        roots.sort_unstable();
        // parent[y] = (x, r): the search reached y from x through resource r.
        let mut parent = vec![(u32::MAX, 0u32); n];
        let mut out = Vec::with_capacity(roots.len());
        let mut frontier = std::collections::VecDeque::new();
        for s in roots {
            let c = comp[s as usize];
            // Breadth-first search from s inside its component until an edge returns to s.
            frontier.clear();
            frontier.push_back(s);
            parent[s as usize] = (s, 0);
            let mut closing = None;
            'bfs: while let Some(x) = frontier.pop_front() {
                let range = start[x as usize] as usize..start[x as usize + 1] as usize;
                for (&y, &r) in targets[range.clone()].iter().zip(&labels[range]) {
                    if comp[y as usize] != c {
                        continue;
                    }
                    if y == s {
                        closing = Some((x, r));
                        break 'bfs;
                    }
                    if parent[y as usize].0 == u32::MAX {
                        parent[y as usize] = (x, r);
                        frontier.push_back(y);
                    }
                }
            }
            let (mut x, r) = closing.expect("a cyclic component has a cycle through s");
            // Walk back from the last process to s, collecting P and R in reverse.
            let mut nodes = vec![Node::Resource(r as usize), Node::Process(x as usize)];
            while x != s {
                let (px, pr) = parent[x as usize];
                nodes.push(Node::Resource(pr as usize));
                nodes.push(Node::Process(px as usize));
                x = px;
            }
            nodes.reverse();
            out.push(Cycle { nodes });
        }
        out
    }

    /// The processes that can never finish, ascending: those on a cycle and those that wait,
    /// directly or through a chain of holders, for a resource held on a cycle. This is the
    /// set [`detect`](fn@super::detect) reports for the same single-instance scenario.
    pub fn deadlocked(&self) -> Vec<usize> {
        let (start, targets, _) = self.wait_for();
        let n = self.processes;
        let comp = tarjan(&start, &targets);
        let components = comp.iter().copied().max().map_or(0, |c| c as usize + 1);
        let mut size = vec![0u32; components];
        for &c in &comp {
            size[c as usize] += 1;
        }
        // Reverse edges, then mark everything that can reach a cyclic component.
        let mut rstart = vec![0u32; n + 1];
        for &t in &targets {
            rstart[t as usize + 1] += 1;
        }
        for k in 0..n {
            rstart[k + 1] += rstart[k];
        }
        let mut fill = rstart.clone();
        let mut sources = vec![0u32; targets.len()];
        let mut stuck = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        for x in 0..n {
            for &y in &targets[start[x] as usize..start[x + 1] as usize] {
                sources[fill[y as usize] as usize] = x as u32;
                fill[y as usize] += 1;
                if y as usize == x && !stuck[x] {
                    stuck[x] = true; // waits for what it holds itself
                    stack.push(x as u32);
                }
            }
        }
        for x in 0..n {
            if size[comp[x] as usize] > 1 && !stuck[x] {
                stuck[x] = true;
                stack.push(x as u32);
            }
        }
        while let Some(y) = stack.pop() {
            for &x in &sources[rstart[y as usize] as usize..rstart[y as usize + 1] as usize] {
                if !stuck[x as usize] {
                    stuck[x as usize] = true;
                    stack.push(x);
                }
            }
        }
        (0..n).filter(|&i| stuck[i]).collect()
    }
}

/// Tarjan's strongly connected components, iteratively. Returns each node's component id.
fn tarjan(start: &[u32], targets: &[u32]) -> Vec<u32> {
    const UNSEEN: u32 = u32::MAX;
    let v = start.len() - 1;
    let mut index = vec![UNSEEN; v];
    let mut low = vec![0u32; v];
    let mut on_stack = vec![false; v];
    let mut comp = vec![UNSEEN; v];
    let mut stack: Vec<u32> = Vec::new();
    // Call stack of (node, next edge position).
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let mut next_index = 0u32;
    let mut next_comp = 0u32;
    for root in 0..v as u32 {
        if index[root as usize] != UNSEEN {
            continue;
        }
        calls.push((root, start[root as usize]));
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&(x, e)) = calls.last() {
            let xs = x as usize;
            if e < start[xs + 1] {
                let y = targets[e as usize];
                if let Some(top) = calls.last_mut() {
                    top.1 = e + 1;
                }
                let ys = y as usize;
                if index[ys] == UNSEEN {
                    index[ys] = next_index;
                    low[ys] = next_index;
                    next_index += 1;
                    stack.push(y);
                    on_stack[ys] = true;
                    calls.push((y, start[ys]));
                } else if on_stack[ys] {
                    low[xs] = low[xs].min(index[ys]);
                }
                continue;
            }
            calls.pop();
            if low[xs] == index[xs] {
                loop {
                    let w = stack.pop().expect("x is on the stack");
                    on_stack[w as usize] = false;
                    comp[w as usize] = next_comp;
                    if w == x {
                        break;
                    }
                }
                next_comp += 1;
            }
            if let Some(&(parent, _)) = calls.last() {
                let p = parent as usize;
                low[p] = low[p].min(low[xs]);
            }
        }
    }
    comp
}

impl Cycle {
    /// The cycle with the given names, closed: `P1 → cd → P2 → tape → P1`.
    pub fn describe(&self, processes: &[String], resources: &[String]) -> String {
        let label = |n: &Node| match *n {
            Node::Process(i) => processes.get(i).cloned().unwrap_or_else(|| format!("P{}", i + 1)),
            Node::Resource(j) => resources.get(j).cloned().unwrap_or_else(|| format!("R{}", j + 1)),
        };
        let parts: Vec<String> = self.nodes.iter().chain(self.nodes.first()).map(label).collect();
        parts.join(" → ")
    }
}

impl fmt::Display for Cycle {
    /// With default names, 1-based: `P1 → R2 → P2 → R1 → P1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&[], &[]))
    }
}
