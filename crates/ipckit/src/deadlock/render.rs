//! Drawing a scenario as a resource-allocation graph, in Graphviz DOT or directly in SVG (no
//! Graphviz needed).
//!
//! The drawing follows the textbook: processes are circles, resources are rectangles with one
//! dot per instance, an arrow process → resource means "waits for" (labelled with the count
//! when it is more than one), resource → process means "holds". What [`detect`](fn@super::detect)
//! found is drawn in red:
//! * a deadlocked process;
//! * a resource that blocks one: some deadlocked process requests more of it than will ever be
//!   free (A at the end of the algorithm);
//! * the request edge from a deadlocked process to such a resource, and the hold edges from
//!   such a resource to deadlocked processes. With single-instance resources these are the
//!   edges of the cycles (and of the chains waiting on them).
//!
//! The SVG layout is simple and deterministic: processes evenly spaced on one row, resources on
//! a row below, edges as straight lines with arrowheads.

use super::detect::Detection;
use super::scenario::Scenario;
use std::fmt::Write as _;

const RED: &str = "#d62728";
const BLACK: &str = "#222222";

/// Which parts are drawn in red.
struct Highlight {
    process: Vec<bool>,
    resource: Vec<bool>,
    final_available: Vec<u64>,
}

impl Highlight {
    fn new(s: &Scenario, d: &Detection) -> Highlight {
        let final_available = d.final_available(s).to_vec();
        let mut process = vec![false; s.process_count()];
        let mut resource = vec![false; s.resource_count()];
        for &i in &d.deadlocked {
            process[i] = true;
            for (j, &r) in s.request().row(i).iter().enumerate() {
                if r > final_available[j] {
                    resource[j] = true;
                }
            }
        }
        Highlight { process, resource, final_available }
    }

    fn request_edge(&self, s: &Scenario, i: usize, j: usize) -> bool {
        self.process[i] && self.resource[j] && s.request().get(i, j) > self.final_available[j]
    }

    fn hold_edge(&self, i: usize, j: usize) -> bool {
        self.process[i] && self.resource[j]
    }
}

/// The graph in Graphviz DOT: `dot -Tpng` draws it. Processes on one rank, resources on the
/// next, deadlocked parts red (see the [module docs](self)).
pub fn dot(s: &Scenario, d: &Detection) -> String {
    let h = Highlight::new(s, d);
    let mut out = String::new();
    let _ = writeln!(out, "// resource-allocation graph: P -> R waits for, R -> P holds");
    let _ = writeln!(out, "digraph deadlock {{");
    let _ = writeln!(out, "  rankdir=TB;");
    let _ = writeln!(out, "  node [fontname=\"Helvetica\"];");
    let _ = writeln!(out, "  {{ rank=same;");
    for i in 0..s.process_count() {
        let color = if h.process[i] { RED } else { BLACK };
        let _ = writeln!(
            out,
            "    p{i} [label=\"{}\", shape=circle, color=\"{color}\", fontcolor=\"{color}\"];",
            dot_escape(s.process_name(i))
        );
    }
    let _ = writeln!(out, "  }}");
    let _ = writeln!(out, "  {{ rank=same;");
    for j in 0..s.resource_count() {
        let color = if h.resource[j] { RED } else { BLACK };
        let dots = instance_dots(s.existing()[j]);
        let _ = writeln!(
            out,
            "    r{j} [label=\"{}\\n{dots}\", shape=box, color=\"{color}\", fontcolor=\"{color}\"];",
            dot_escape(s.resource_name(j))
        );
    }
    let _ = writeln!(out, "  }}");
    for i in 0..s.process_count() {
        for j in 0..s.resource_count() {
            let r = s.request().get(i, j);
            if r > 0 {
                let color = if h.request_edge(s, i, j) { RED } else { BLACK };
                let _ = writeln!(out, "  p{i} -> r{j} [color=\"{color}\"{}];", count_label(r));
            }
            let c = s.allocation().get(i, j);
            if c > 0 {
                let color = if h.hold_edge(i, j) { RED } else { BLACK };
                let _ = writeln!(out, "  r{j} -> p{i} [color=\"{color}\"{}];", count_label(c));
            }
        }
    }
    let _ = writeln!(out, "}}");
    out
}

fn count_label(k: u64) -> String {
    if k > 1 { format!(", label=\"{k}\"") } else { String::new() }
}

fn instance_dots(e: u64) -> String {
    if e <= 8 { vec!["●"; e as usize].join(" ") } else { format!("{e} instances") }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The graph as a standalone SVG document, laid out without Graphviz (see the
/// [module docs](self)).
pub fn svg(s: &Scenario, d: &Detection) -> String {
    const GAP: f64 = 90.0;
    const MARGIN: f64 = 40.0;
    const PY: f64 = 95.0;
    const RY: f64 = 265.0;
    const PR: f64 = 22.0;
    const RW: f64 = 64.0;
    const RH: f64 = 34.0;
    let h = Highlight::new(s, d);
    let (n, m) = (s.process_count(), s.resource_count());
    let inner = ((n.max(m).max(1) as f64) * GAP).max(560.0);
    let width = inner + 2.0 * MARGIN;
    let height = RY + RH / 2.0 + 100.0;
    let px = |i: usize| MARGIN + (i as f64 + 0.5) * inner / n as f64;
    let rx = |j: usize| MARGIN + (j as f64 + 0.5) * inner / m as f64;

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"Helvetica, Arial, sans-serif\" \
         font-size=\"13\">"
    );
    let _ = writeln!(o, "<defs>");
    for (id, color) in [("arrow", BLACK), ("arrow-red", RED)] {
        let _ = writeln!(
            o,
            "  <marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"9\" \
             markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" \
             fill=\"{color}\"/></marker>"
        );
    }
    let _ = writeln!(o, "</defs>");
    let _ = writeln!(o, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let title = if d.is_deadlock() {
        let names: Vec<&str> = d.deadlocked.iter().map(|&i| s.process_name(i)).collect();
        format!("deadlock: {}", names.join(", "))
    } else {
        "no deadlock".to_string()
    };
    let color = if d.is_deadlock() { RED } else { BLACK };
    let _ = writeln!(
        o,
        "<text x=\"{MARGIN}\" y=\"24\" fill=\"{color}\" font-weight=\"bold\">{}</text>",
        xml_escape(&title)
    );

    // Edges first, so nodes are drawn over their ends.
    for i in 0..n {
        for j in 0..m {
            let (p, r) = ((px(i), PY), (rx(j), RY));
            let req = s.request().get(i, j);
            if req > 0 {
                let red = h.request_edge(s, i, j);
                edge(&mut o, p, r, 4.0, Some(PR), None, req, red);
            }
            let c = s.allocation().get(i, j);
            if c > 0 {
                let red = h.hold_edge(i, j);
                edge(&mut o, r, p, 4.0, None, Some(PR), c, red);
            }
        }
    }
    // Short names inside the circles, as in the textbook; if any is long, all above them.
    let inside = s.processes().iter().all(|p| p.chars().count() <= 5);
    let y = if inside { PY + 4.5 } else { PY - PR - 8.0 };
    for i in 0..n {
        let color = if h.process[i] { RED } else { BLACK };
        let name = s.process_name(i);
        let _ = writeln!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{PY}\" r=\"{PR}\" fill=\"white\" stroke=\"{color}\" \
             stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" \
             fill=\"{color}\">{}</text>",
            px(i),
            px(i),
            xml_escape(name)
        );
    }
    for j in 0..m {
        let color = if h.resource[j] { RED } else { BLACK };
        let (x, y) = (rx(j) - RW / 2.0, RY - RH / 2.0);
        let _ = writeln!(
            o,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{RW}\" height=\"{RH}\" fill=\"white\" \
             stroke=\"{color}\" stroke-width=\"2\"/>"
        );
        let e = s.existing()[j];
        if e <= 10 {
            // One dot per instance, in up to two rows of five.
            for k in 0..e {
                let row = k / 5;
                let in_row = (e - row * 5).min(5);
                let col = k % 5;
                let cx = rx(j) + (col as f64 - (in_row as f64 - 1.0) / 2.0) * 11.0;
                let rows = e.div_ceil(5);
                let cy = RY + (row as f64 - (rows as f64 - 1.0) / 2.0) * 11.0;
                let _ = writeln!(
                    o,
                    "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3.5\" fill=\"{color}\"/>"
                );
            }
        } else {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{color}\">×{e}</text>",
                rx(j),
                RY + 4.5
            );
        }
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{color}\">{}</text>",
            rx(j),
            RY + RH / 2.0 + 18.0,
            xml_escape(s.resource_name(j))
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{MARGIN}\" y=\"{:.0}\" fill=\"#555555\" font-size=\"11\">circle: process; \
         rectangle: resource, one dot per instance; red: deadlocked</text>",
        height - 30.0
    );
    let _ = writeln!(
        o,
        "<text x=\"{MARGIN}\" y=\"{:.0}\" fill=\"#555555\" font-size=\"11\">process → \
         resource: waits for (label: how many); resource → process: holds</text>",
        height - 14.0
    );
    let _ = writeln!(o, "</svg>");
    o
}

/// A straight arrow from `a` to `b`, shifted sideways by `offset` (to its left when going
/// from `a` to `b`, so the two arrows between one process and one resource never overlap), trimmed to the circle of
/// radius `ra`/`rb` at an end (or to the resource rectangle when `None`), with a count label.
#[allow(clippy::too_many_arguments)]
fn edge(
    o: &mut String,
    a: (f64, f64),
    b: (f64, f64),
    offset: f64,
    ra: Option<f64>,
    rb: Option<f64>,
    count: u64,
    red: bool,
) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (dx / len, dy / len);
    let (nx, ny) = (-uy * offset, ux * offset);
    // Distance from a node's centre to its border along the edge.
    let trim = |r: Option<f64>| match r {
        Some(r) => r,
        None => {
            let tx = if ux.abs() > 1e-9 { 32.0 / ux.abs() } else { f64::INFINITY };
            let ty = if uy.abs() > 1e-9 { 17.0 / uy.abs() } else { f64::INFINITY };
            tx.min(ty)
        }
    };
    let (ta, tb) = (trim(ra), trim(rb));
    let (x1, y1) = (a.0 + ux * ta + nx, a.1 + uy * ta + ny);
    let (x2, y2) = (b.0 - ux * tb + nx, b.1 - uy * tb + ny);
    let (color, marker) = if red { (RED, "arrow-red") } else { (BLACK, "arrow") };
    let width = if red { 2.2 } else { 1.3 };
    let _ = writeln!(
        o,
        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{color}\" \
         stroke-width=\"{width}\" marker-end=\"url(#{marker})\"/>"
    );
    if count > 1 {
        let (mx, my) = ((x1 + x2) / 2.0 + nx * 3.0, (y1 + y2) / 2.0 + ny * 3.0);
        let _ = writeln!(
            o,
            "<text x=\"{mx:.1}\" y=\"{my:.1}\" text-anchor=\"middle\" fill=\"{color}\" \
             font-size=\"11\">{count}</text>"
        );
    }
}
