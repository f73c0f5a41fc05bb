use super::banker::{self, Banker, ReleaseError, RequestError};
use super::*;
use proptest::prelude::*;

const COURSE: &str = r#"
processes = ["P1", "P2", "P3"]
resources = ["tape", "plotter", "scanner", "cd"]
existing = [4, 2, 3, 1]
available = [2, 1, 0, 0]
allocation = [[0, 0, 1, 0], [2, 0, 0, 1], [0, 1, 2, 0]]
request = [[2, 0, 0, 1], [1, 0, 1, 0], [2, 1, 0, 0]]
"#;

fn names(s: &Scenario, v: &[usize]) -> Vec<String> {
    v.iter().map(|&i| s.process_name(i).to_string()).collect()
}

fn err(text: &str) -> String {
    Scenario::from_toml(text).expect_err("the scenario must be rejected").to_string()
}

#[test]
fn course_example_has_no_deadlock_and_finishes_p3_p2_p1() {
    let s = Scenario::from_toml(COURSE).unwrap();
    let d = detect(&s);
    assert!(!d.is_deadlock());
    assert_eq!(names(&s, &d.order), ["P3", "P2", "P1"]);
    let steps: Vec<(usize, Vec<u64>)> =
        d.steps().map(|x| (x.process, x.available.to_vec())).collect();
    assert_eq!(steps, [(2, vec![2, 2, 2, 0]), (1, vec![4, 2, 2, 1]), (0, vec![4, 2, 3, 1])]);
    assert_eq!(d.final_available(&s), s.existing());
    assert_eq!(d, detect_naive(&s));
}

#[test]
fn default_names_and_available() {
    let s = Scenario::from_toml(
        "existing = [4, 2, 3, 1]\nallocation = [[0, 0, 1, 0], [2, 0, 0, 1], [0, 1, 2, 0]]",
    )
    .unwrap();
    assert_eq!(s.processes(), ["P1", "P2", "P3"]);
    assert_eq!(s.resources(), ["R1", "R2", "R3", "R4"]);
    assert_eq!(s.available(), &[2, 1, 0, 0]);
    assert_eq!(s.request(), &Matrix::zeros(3, 4));
    // Nobody waits: everyone finishes, in index order.
    assert_eq!(detect(&s).order, [0, 1, 2]);
}

#[test]
fn course_example_deadlocks_when_p3_also_wants_the_cd() {
    // Tanenbaum's variation: P3 needs the CD-ROM drive as well. Nobody fits any more.
    let text = COURSE.replace("[2, 1, 0, 0]]", "[2, 1, 0, 1]]");
    let s = Scenario::from_toml(&text).unwrap();
    let d = detect(&s);
    assert!(d.is_deadlock());
    assert_eq!(names(&s, &d.deadlocked), ["P1", "P2", "P3"]);
    assert!(d.order.is_empty());
    assert_eq!(d.final_available(&s), s.available());
    assert_eq!(d, detect_naive(&s));
}

#[test]
fn partial_deadlock_lets_the_others_finish() {
    // P1 and P2 each hold one printer-like resource and want the other's; P3 and P4 are free to go.
    let s = Scenario::new(
        &[1, 1, 3],
        &[vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 1], vec![0, 0, 0]],
        &[vec![0, 1, 0], vec![1, 0, 0], vec![0, 0, 1], vec![0, 0, 2]],
    )
    .unwrap();
    let d = detect(&s);
    assert_eq!(d.deadlocked, [0, 1]);
    // P3 fits at once (one of class 3 is free); P4 needs two, so only after P3.
    assert_eq!(d.order, [2, 3]);
    assert_eq!(d, detect_naive(&s));
}

#[test]
fn tie_rule_is_smallest_index_first() {
    // Everyone fits from the start: index order. A release that frees P1 must not let P3
    // (which fit all along) go after P1 if P1 has the smaller index.
    let s = Scenario::new(
        &[2, 1],
        &[vec![0, 0], vec![0, 1], vec![0, 0]],
        &[vec![0, 1], vec![0, 0], vec![0, 0]],
    )
    .unwrap();
    // Initially P2 and P3 fit; P2 (smaller) goes, releases the second class; now P1 fits and
    // has the smallest index.
    assert_eq!(detect(&s).order, [1, 0, 2]);
    assert_eq!(detect_naive(&s).order, [1, 0, 2]);
}

#[test]
fn empty_scenarios() {
    let s = Scenario::new(&[], &[], &[]).unwrap();
    assert_eq!(detect(&s), detect_naive(&s));
    assert!(!detect(&s).is_deadlock());
    let s = Scenario::new(&[], &[vec![], vec![]], &[vec![], vec![]]).unwrap();
    assert_eq!(detect(&s).order, [0, 1]);
}

#[test]
fn counts_up_to_u64_max() {
    let big = u64::MAX;
    let s = Scenario::new(&[big, 3], &[vec![big - 1, 1], vec![0, 2]], &[vec![1, 0], vec![1, 0]])
        .unwrap();
    assert_eq!(s.available(), &[1, 0]);
    let d = detect(&s);
    assert_eq!(d.order, [0, 1]);
    assert_eq!(d.final_available(&s), &[big, 3]);
    assert_eq!(d, detect_naive(&s));
}

// ---- bad input: every message names the row and the column ----

#[test]
fn negative_entries_name_row_and_column() {
    let e =
        err("resources = [\"tape\", \"cd\"]\nexisting = [1, 1]\nallocation = [[0, 0], [0, -1]]");
    assert!(e.contains("`allocation` row 2 (P2), column 2 (cd)") && e.contains("-1"), "{e}");
    let e = err("existing = [1, -3]\nallocation = [[0, 0]]");
    assert!(e.contains("`existing` column 2 (R2)") && e.contains("-3"), "{e}");
    let e = err("existing = [1, 3]\nallocation = [[0, 0]]\nrequest = [[-2, 0]]");
    assert!(e.contains("`request` row 1 (P1), column 1 (R1)"), "{e}");
    let e = err("existing = [1, 3]\navailable = [1, -1]\nallocation = [[0, 0]]");
    assert!(e.contains("`available` column 2 (R2)"), "{e}");
    let e = err("existing = [1, 3]\nallocation = [[0, 0]]\nmaximum = [[0, -4]]");
    assert!(e.contains("`maximum` row 1 (P1), column 2 (R2)"), "{e}");
}

#[test]
fn rows_of_different_lengths_name_row_and_column() {
    let e = err("processes = [\"A\", \"B\"]\nresources = [\"tape\", \"plotter\", \"cd\"]\n\
         existing = [4, 2, 1]\nallocation = [[0, 0, 1], [2, 0]]");
    assert!(e.contains("`allocation` row 2 (B)") && e.contains("column 3 (cd) is missing"), "{e}");
    let e = err("existing = [4, 2]\nallocation = [[0, 0]]\nrequest = [[0, 0, 1]]");
    assert!(e.contains("`request` row 1 (P1)") && e.contains("column 3 is extra"), "{e}");
    let e = err("existing = [4, 2]\nallocation = [[0, 0], [0, 0]]\nrequest = [[0, 0]]");
    assert!(e.contains("`request` has 1 rows but `allocation` has 2"), "{e}");
    let e = err("existing = [4, 2]\navailable = [4]\nallocation = [[0, 0]]");
    assert!(
        e.contains("`available` has 1 entries") && e.contains("column 2 (R2) is missing"),
        "{e}"
    );
    let e = err("processes = [\"A\"]\nexisting = [4]\nallocation = [[0], [1]]");
    assert!(e.contains("`processes` has 1 names but there are 2 processes"), "{e}");
    let e = err("resources = [\"x\", \"x\"]\nexisting = [4, 1]\nallocation = [[0, 1]]");
    assert!(e.contains("\"x\""), "{e}");
}

#[test]
fn allocation_exceeding_existing_names_row_and_column() {
    let e = err("resources = [\"tape\", \"scanner\"]\nexisting = [4, 3]\n\
         allocation = [[0, 1], [2, 2], [0, 1], [0, 0]]");
    assert!(
        e.contains("`allocation` column 2 (scanner)")
            && e.contains("hold 4 but only 3 exist")
            && e.contains("row 3 (P3)"),
        "{e}"
    );
}

#[test]
fn inconsistent_available_names_the_column() {
    let text = COURSE.replace("available = [2, 1, 0, 0]", "available = [2, 1, 0, 1]");
    let e = err(&text);
    assert!(e.contains("`available` column 4 (cd) is 1") && e.contains("is 0"), "{e}");
}

#[test]
fn impossible_request_names_row_and_column() {
    let text = COURSE.replace("[1, 0, 1, 0]", "[1, 0, 1, 1]");
    let e = err(&text);
    // P2 holds the only CD and asks for another.
    assert!(e.contains("`request` row 2 (P2), column 4 (cd)"), "{e}");
}

#[test]
fn bad_maximum_names_row_and_column() {
    let e = err("existing = [4, 2]\nallocation = [[1, 2]]\nmaximum = [[1, 1]]");
    assert!(e.contains("`allocation` row 1 (P1), column 2 (R2) is 2, above"), "{e}");
    let e = err("existing = [4, 2]\nallocation = [[1, 0]]\nmaximum = [[5, 1]]");
    assert!(e.contains("`maximum` row 1 (P1), column 1 (R1) is 5, more than the 4"), "{e}");
}

#[test]
fn syntax_and_type_errors_are_one_line_with_location() {
    for text in [
        "existing = [1, 2\nallocation = []",
        "existing = [1.5]\nallocation = [[1]]",
        "existing = [1]\nallocation = [[1]]\nrequests = [[0]]",
        "allocation = [[1]]",
    ] {
        let e = err(text);
        assert!(!e.contains('\n'), "{e}");
        assert!(!e.is_empty());
    }
    assert!(err("existing = [1]\nallocation = [[1]]\nrequests = [[0]]").contains("requests"));
    assert!(err("allocation = [[1]]").contains("existing"));
}

// ---- banker ----

fn silberschatz() -> Scenario {
    Scenario::from_toml(
        r#"
        processes = ["P0", "P1", "P2", "P3", "P4"]
        resources = ["A", "B", "C"]
        existing = [10, 5, 7]
        allocation = [[0, 1, 0], [2, 0, 0], [3, 0, 2], [2, 1, 1], [0, 0, 2]]
        maximum = [[7, 5, 3], [3, 2, 2], [9, 0, 2], [2, 2, 2], [4, 3, 3]]
        "#,
    )
    .unwrap()
}

#[test]
fn banker_silberschatz_example() {
    let s = silberschatz();
    assert_eq!(s.available(), &[3, 3, 2]);
    let mut b = Banker::new(&s).unwrap();
    assert_eq!(b.need().row(0), &[7, 4, 3]);
    assert_eq!(b.need().row(4), &[4, 3, 1]);
    // Smallest index first: P1 (need 1 2 2), then P3, then P0 fits with A = (7 4 3).
    assert_eq!(banker::is_safe(&s).unwrap(), Some(vec![1, 3, 0, 2, 4]));
    // The book's request: P1 asks for (1 0 2); granted, the state stays safe.
    assert_eq!(b.request(1, &[1, 0, 2]), Ok(vec![1, 3, 0, 2, 4]));
    assert_eq!(b.available(), &[2, 3, 0]);
    // P4 asks for (3 3 0): not available, wait.
    let e = b.request(4, &[3, 3, 0]).unwrap_err();
    assert_eq!(
        e,
        RequestError::Unavailable { process: 4, resource: 0, requested: 3, available: 2 }
    );
    assert!(e.is_wait());
    // P0 asks for (0 2 0): available, but the state would be unsafe, wait.
    let before = b.clone();
    let e = b.request(0, &[0, 2, 0]).unwrap_err();
    assert_eq!(e, RequestError::Unsafe { process: 0 });
    assert!(e.is_wait());
    assert_eq!(b, before, "a refused request leaves the state unchanged");
    // Above the need: an error, not a wait.
    let e = b.request(3, &[0, 2, 0]).unwrap_err();
    assert_eq!(e, RequestError::ExceedsNeed { process: 3, resource: 1, requested: 2, need: 1 });
    assert!(!e.is_wait());
    assert!(matches!(b.request(9, &[0, 0, 0]), Err(RequestError::NoSuchProcess { .. })));
    assert!(matches!(b.request(0, &[0, 0]), Err(RequestError::WrongLength { .. })));
    // Releasing gives back and restores the need.
    b.release(1, &[1, 0, 2]).unwrap();
    assert_eq!(b, Banker::new(&s).unwrap());
    assert!(matches!(b.release(1, &[9, 0, 0]), Err(ReleaseError::NotHeld { .. })));
}

#[test]
fn banker_tanenbaum_single_resource() {
    // Tanenbaum Fig. 6-9: 10 instances; A has 3 (max 9), B 2 (max 4), C 2 (max 7): safe.
    let s = Scenario::from_toml(
        "processes = [\"A\", \"B\", \"C\"]\nexisting = [10]\nallocation = [[3], [2], [2]]\n\
         maximum = [[9], [4], [7]]",
    )
    .unwrap();
    assert_eq!(banker::is_safe(&s).unwrap(), Some(vec![1, 2, 0]));
    // Fig. 6-10: giving A one more leaves an unsafe state.
    let mut b = Banker::new(&s).unwrap();
    assert_eq!(b.request(0, &[1]), Err(RequestError::Unsafe { process: 0 }));
    // Giving B its remaining 2 is safe.
    assert!(b.request(1, &[2]).is_ok());
    let unsafe_state = Scenario::from_toml(
        "existing = [10]\nallocation = [[4], [2], [2]]\nmaximum = [[9], [4], [7]]",
    )
    .unwrap();
    assert_eq!(banker::is_safe(&unsafe_state).unwrap(), None);
}

#[test]
fn banker_needs_maximum() {
    let s = Scenario::from_toml(COURSE).unwrap();
    assert_eq!(banker::is_safe(&s), Err(banker::NoMaximum));
}

// ---- graphs ----

#[test]
fn graph_two_process_cycle() {
    let mut g = ResourceGraph::new(3, 3);
    g.hold(0, 0).unwrap();
    g.hold(1, 1).unwrap();
    g.wait(0, 1).unwrap();
    g.wait(1, 0).unwrap();
    g.wait(2, 2).unwrap(); // free resource: P3 just waits for it
    let c = g.cycles();
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].nodes,
        [Node::Process(0), Node::Resource(1), Node::Process(1), Node::Resource(0)]
    );
    assert_eq!(c[0].to_string(), "P1 → R2 → P2 → R1 → P1");
    assert_eq!(g.deadlocked(), [0, 1]);
    assert_eq!(g.edge_count(), 5);
    assert_eq!(g.hold(2, 0), Err(GraphError::AlreadyHeld { resource: 0, holder: 0 }));
    assert!(matches!(g.wait(3, 0), Err(GraphError::NoSuchNode { what: "process", .. })));
    assert!(matches!(g.hold(0, 7), Err(GraphError::NoSuchNode { what: "resource", .. })));
}

#[test]
fn graph_several_cycles_and_a_chain_waiting_on_one() {
    // Cycle A: P2 → R1 → P4 → R3 → P2 (0-based: P1 → R0 → P3 → R2 → P1).
    // Cycle B: P5 → R4 → P5 (waits for what it holds: a self-deadlock).
    // P1 waits for R2, held by P2 on cycle A: stuck but not on a cycle.
    // P3 holds nothing, waits for nothing.
    let mut g = ResourceGraph::new(5, 5);
    g.hold(3, 0).unwrap();
    g.hold(1, 2).unwrap();
    g.wait(1, 0).unwrap();
    g.wait(3, 2).unwrap();
    g.hold(4, 4).unwrap();
    g.wait(4, 4).unwrap();
    g.hold(1, 1).unwrap();
    g.wait(0, 1).unwrap();
    let c = g.cycles();
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[0].nodes,
        [Node::Process(1), Node::Resource(0), Node::Process(3), Node::Resource(2)]
    );
    assert_eq!(c[1].nodes, [Node::Process(4), Node::Resource(4)]);
    assert_eq!(c[0].processes().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(g.deadlocked(), [0, 1, 3, 4]);
}

#[test]
fn graph_without_cycles() {
    let mut g = ResourceGraph::new(3, 2);
    g.hold(0, 0).unwrap();
    g.wait(1, 0).unwrap();
    g.hold(1, 1).unwrap();
    g.wait(2, 1).unwrap();
    assert!(g.cycles().is_empty());
    assert!(g.deadlocked().is_empty());
}

#[test]
fn graph_long_cycle_does_not_overflow_the_stack() {
    let n = 200_000;
    let mut g = ResourceGraph::new(n, n);
    for i in 0..n {
        g.hold(i, i).unwrap();
        g.wait(i, (i + 1) % n).unwrap();
    }
    let c = g.cycles();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].nodes.len(), 2 * n);
    assert_eq!(
        c[0].nodes[..4],
        [Node::Process(0), Node::Resource(1), Node::Process(1), Node::Resource(2)]
    );
    assert_eq!(g.deadlocked().len(), n);
}

#[test]
fn graph_from_scenario() {
    let s = Scenario::new(&[1, 1], &[vec![1, 0], vec![0, 1]], &[vec![0, 1], vec![1, 0]]).unwrap();
    let g = ResourceGraph::from_scenario(&s).unwrap();
    assert_eq!(g.cycles().len(), 1);
    assert_eq!(g.deadlocked(), detect(&s).deadlocked);
    let c = &g.cycles()[0];
    assert_eq!(c.describe(s.processes(), s.resources()), "P1 → R2 → P2 → R1 → P1");
    let course = Scenario::from_toml(COURSE).unwrap();
    let e = ResourceGraph::from_scenario(&course).unwrap_err();
    assert_eq!(e, GraphError::NotSingleInstance { resource: "tape".into(), existing: 4 });
}

// ---- rendering ----

#[test]
fn dot_and_svg_mark_the_deadlock() {
    let s = Scenario::new(
        &[1, 1, 3],
        &[vec![1, 0, 1], vec![0, 1, 0], vec![0, 0, 1]],
        &[vec![0, 1, 0], vec![1, 0, 0], vec![0, 0, 1]],
    )
    .unwrap();
    let d = detect(&s);
    assert_eq!(d.deadlocked, [0, 1]);
    let dot = render::dot(&s, &d);
    assert!(dot.starts_with("// resource-allocation graph"));
    assert!(dot.contains("p0 [label=\"P1\", shape=circle, color=\"#d62728\""), "{dot}");
    assert!(dot.contains("p2 [label=\"P3\", shape=circle, color=\"#222222\""), "{dot}");
    assert!(dot.contains("r2 [label=\"R3\\n● ● ●\", shape=box, color=\"#222222\""), "{dot}");
    assert!(dot.contains("p0 -> r1 [color=\"#d62728\"]"), "{dot}");
    assert!(dot.contains("r0 -> p0 [color=\"#d62728\"]"), "{dot}");
    assert!(dot.contains("r2 -> p0 [color=\"#222222\"]"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    let svg = render::svg(&s, &d);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("deadlock: P1, P2"));
    // Three process circles plus 1 + 1 + 3 instance dots.
    assert_eq!(svg.matches("<circle").count(), 3 + 5);
    assert_eq!(svg.matches("<rect x=").count(), 3);
    assert_eq!(svg.matches("<line").count(), 3 + 4);
    assert_eq!(svg.matches("marker-end=\"url(#arrow-red)\"").count(), 4);
    assert_eq!(svg, render::svg(&s, &d), "deterministic");
}

#[test]
fn render_escapes_names() {
    let s = Scenario::from_toml("processes = [\"a<b\\\"\"]\nexisting = [1]\nallocation = [[1]]")
        .unwrap();
    let d = detect(&s);
    assert!(render::svg(&s, &d).contains("a&lt;b&quot;"));
    assert!(render::dot(&s, &d).contains("label=\"a<b\\\"\""));
}

// ---- properties ----

/// A random valid scenario: `n` processes, `m` classes, small counts so that deadlocks, chains
/// and ties are all common.
fn scenario_strategy(
    max_n: usize,
    max_m: usize,
    max_count: u64,
) -> impl Strategy<Value = Scenario> {
    (0..=max_n, 1..=max_m)
        .prop_flat_map(move |(n, m)| {
            (
                proptest::collection::vec(proptest::collection::vec(0..=max_count, m), n),
                proptest::collection::vec(0..=max_count, m),
                proptest::collection::vec(proptest::collection::vec(0..=max_count * 2, m), n),
            )
        })
        .prop_map(|(alloc, slack, req)| {
            let m = slack.len();
            let existing: Vec<u64> =
                (0..m).map(|j| alloc.iter().map(|r| r[j]).sum::<u64>() + slack[j]).collect();
            // Clamp each request so that allocation + request <= existing.
            let req: Vec<Vec<u64>> = req
                .iter()
                .zip(&alloc)
                .map(|(r, c)| (0..m).map(|j| r[j].min(existing[j] - c[j])).collect())
                .collect();
            Scenario::new(&existing, &alloc, &req).expect("generated scenarios are valid")
        })
}

/// A random scenario where every resource has exactly one instance.
fn single_instance_strategy() -> impl Strategy<Value = Scenario> {
    (1usize..=10, 1usize..=10)
        .prop_flat_map(|(n, m)| {
            (
                proptest::collection::vec(proptest::option::of(0..n), m),
                proptest::collection::vec(proptest::collection::vec(any::<bool>(), m), n),
                Just((n, m)),
            )
        })
        .prop_map(|(holders, wants, (n, m))| {
            let mut alloc = vec![vec![0u64; m]; n];
            let mut req = vec![vec![0u64; m]; n];
            for (j, h) in holders.iter().enumerate() {
                if let Some(i) = h {
                    alloc[*i][j] = 1;
                }
            }
            for i in 0..n {
                for j in 0..m {
                    // Ask for resources not held by oneself (one instance: holding it and asking
                    // again could never be met, which the scenario rejects).
                    if wants[i][j] && alloc[i][j] == 0 {
                        req[i][j] = 1;
                    }
                }
            }
            Scenario::new(&vec![1; m], &alloc, &req).expect("valid")
        })
}

proptest! {
    // No regression files: tests leave nothing behind; a failure prints the minimal case.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fast_detect_equals_the_textbook_loop(s in scenario_strategy(14, 5, 3)) {
        let fast = detect(&s);
        let naive = detect_naive(&s);
        // Same deadlocked set, same order, same intermediate A.
        prop_assert_eq!(&fast, &naive);
        prop_assert_eq!(fast.order.len() + fast.deadlocked.len(), s.process_count());
    }

    #[test]
    fn fast_detect_equals_naive_with_large_counts(s in scenario_strategy(14, 4, 1_000_000)) {
        // Requests spread over a wide range: the comparison sort instead of the counting sort.
        prop_assert_eq!(detect(&s), detect_naive(&s));
    }

    #[test]
    fn fast_detect_equals_naive_with_many_ties(s in scenario_strategy(30, 2, 1)) {
        prop_assert_eq!(detect(&s), detect_naive(&s));
    }

    #[test]
    fn graph_agrees_with_detect_on_single_instances(s in single_instance_strategy()) {
        let g = ResourceGraph::from_scenario(&s).unwrap();
        let d = detect(&s);
        prop_assert_eq!(g.deadlocked(), d.deadlocked.clone());
        let cycles = g.cycles();
        prop_assert_eq!(cycles.is_empty(), !d.is_deadlock());
        for c in &cycles {
            // Alternating nodes, every edge present, every process deadlocked, starts at the
            // smallest process of the cycle.
            let k = c.nodes.len();
            prop_assert!(k >= 2 && k % 2 == 0);
            for t in 0..k {
                match (c.nodes[t], c.nodes[(t + 1) % k]) {
                    (Node::Process(i), Node::Resource(j)) => {
                        prop_assert_eq!(s.request().get(i, j), 1);
                        prop_assert!(d.deadlocked.contains(&i));
                    }
                    (Node::Resource(j), Node::Process(i)) => prop_assert_eq!(g.holder(j), Some(i)),
                    _ => prop_assert!(false, "nodes must alternate"),
                }
            }
            let first = c.processes().next().unwrap();
            prop_assert!(c.processes().all(|i| i >= first));
        }
    }

    #[test]
    fn banker_sequence_is_safe_and_matches_detection(
        s in scenario_strategy(10, 4, 3),
        extra in proptest::collection::vec(0u64..3, 40),
    ) {
        // Maximum = allocation + something, capped by existing.
        let (n, m) = (s.process_count(), s.resource_count());
        let max: Vec<Vec<u64>> = (0..n)
            .map(|i| (0..m).map(|j| {
                (s.allocation().get(i, j) + extra[(i * m + j) % extra.len()]).min(s.existing()[j])
            }).collect())
            .collect();
        let s = s.with_maximum(&max).unwrap();
        let b = Banker::new(&s).unwrap();
        let need: Vec<Vec<u64>> = b.need().iter_rows().map(<[u64]>::to_vec).collect();
        let as_request = Scenario::new(
            s.existing(),
            &s.allocation().iter_rows().map(<[u64]>::to_vec).collect::<Vec<_>>(),
            &need,
        )
        .unwrap();
        match banker::is_safe(&s).unwrap() {
            Some(seq) => {
                prop_assert_eq!(seq.len(), n);
                let mut work = s.available().to_vec();
                for &i in &seq {
                    prop_assert!(b.need().row(i).iter().zip(&work).all(|(x, w)| x <= w));
                    for (w, c) in work.iter_mut().zip(s.allocation().row(i)) {
                        *w += c;
                    }
                }
                prop_assert_eq!(detect_naive(&as_request).order, seq);
            }
            None => {
                prop_assert!(detect_naive(&as_request).is_deadlock());
            }
        }
    }
}
