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
    /// [`detect`](super::detect) instead.
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

    /// Node numbering for the algorithms: processes `0..n`, resources `n..n+m`.
    fn node(&self, v: u32) -> Node {
        let v = v as usize;
        if v < self.processes { Node::Process(v) } else { Node::Resource(v - self.processes) }
    }

    /// Adjacency in CSR form: `(start, targets)`; the edges of `v` are
    /// `targets[start[v]..start[v + 1]]`, waits in insertion order.
    fn adjacency(&self) -> (Vec<u32>, Vec<u32>) {
        let n = self.processes;
        let v = n + self.holder.len();
        let mut start = vec![0u32; v + 1];
        for &(p, _) in &self.waits {
            start[p as usize + 1] += 1;
        }
        for (j, h) in self.holder.iter().enumerate() {
            if h.is_some() {
                start[n + j + 1] += 1;
            }
        }
        for k in 0..v {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut targets = vec![0u32; start[v] as usize];
        for &(p, r) in &self.waits {
            targets[fill[p as usize] as usize] = n as u32 + r;
            fill[p as usize] += 1;
        }
        for (j, h) in self.holder.iter().enumerate() {
            if let Some(h) = h {
                targets[fill[n + j] as usize] = *h;
            }
        }
        (start, targets)
    }

    /// The cycles, one per knot of mutually waiting processes: for every strongly connected
    /// component with a cycle, the shortest cycle through its smallest-indexed process.
    /// Components are listed by that process's index.
    ///
    /// Why not every cycle: a graph can hold exponentially many elementary cycles (Johnson
    /// 1975), but each strongly connected component is one deadlock, and one cycle shows it.
    /// The components come from Tarjan's algorithm (1972), iterative so a million-node chain
    /// cannot overflow the stack; each cycle from a breadth-first search inside its component.
    /// `O(V + E)` time. Deterministic for a given insertion order of the edges.
    pub fn cycles(&self) -> Vec<Cycle> {
        let (start, targets) = self.adjacency();
        let comp = tarjan(&start, &targets);
        let v = start.len() - 1;
        // Size of each component and its smallest process.
        let components = comp.iter().copied().max().map_or(0, |c| c as usize + 1);
        let mut size = vec![0u32; components];
        let mut first: Vec<Option<u32>> = vec![None; components];
        for (x, &c) in comp.iter().enumerate() {
            size[c as usize] += 1;
            if x < self.processes && first[c as usize].is_none() {
                first[c as usize] = Some(x as u32);
            }
        }
        let mut roots: Vec<u32> =
            (0..components).filter(|&c| size[c] > 1).filter_map(|c| first[c]).collect();
        roots.sort_unstable();
        let mut parent = vec![u32::MAX; v];
        let mut out = Vec::with_capacity(roots.len());
        let mut frontier = std::collections::VecDeque::new();
        for s in roots {
            let c = comp[s as usize];
            // Breadth-first search from s inside its component until an edge returns to s.
            frontier.clear();
            frontier.push_back(s);
            parent[s as usize] = s;
            let mut last = None;
            'bfs: while let Some(x) = frontier.pop_front() {
                for &y in &targets[start[x as usize] as usize..start[x as usize + 1] as usize] {
                    if comp[y as usize] != c {
                        continue;
                    }
                    if y == s {
                        last = Some(x);
                        break 'bfs;
                    }
                    if parent[y as usize] == u32::MAX {
                        parent[y as usize] = x;
                        frontier.push_back(y);
                    }
                }
            }
            let mut x = last.expect("a component of two or more nodes has a cycle through s");
            let mut nodes = vec![self.node(x)];
            while x != s {
                x = parent[x as usize];
                nodes.push(self.node(x));
            }
            nodes.reverse();
            out.push(Cycle { nodes });
        }
        out
    }

    /// The processes that can never finish, ascending: those on a cycle and those that wait,
    /// directly or through a chain of holders, for a resource held on a cycle. This is the
    /// set [`detect`](super::detect) reports for the same single-instance scenario.
    pub fn deadlocked(&self) -> Vec<usize> {
        let (start, targets) = self.adjacency();
        let comp = tarjan(&start, &targets);
        let v = start.len() - 1;
        let components = comp.iter().copied().max().map_or(0, |c| c as usize + 1);
        let mut size = vec![0u32; components];
        for &c in &comp {
            size[c as usize] += 1;
        }
        // Reverse edges, then mark everything that can reach a cyclic component.
        let mut rstart = vec![0u32; v + 1];
        for &t in &targets {
            rstart[t as usize + 1] += 1;
        }
        for k in 0..v {
            rstart[k + 1] += rstart[k];
        }
        let mut fill = rstart.clone();
        let mut sources = vec![0u32; targets.len()];
        for x in 0..v {
            for &y in &targets[start[x] as usize..start[x + 1] as usize] {
                sources[fill[y as usize] as usize] = x as u32;
                fill[y as usize] += 1;
            }
        }
        let mut stuck = vec![false; v];
        let mut stack: Vec<u32> = Vec::new();
        for x in 0..v {
            if size[comp[x] as usize] > 1 {
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
        (0..self.processes).filter(|&i| stuck[i]).collect()
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
