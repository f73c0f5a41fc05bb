//! `ipckit deadlock`: detection, the banker's safety check and resource-allocation graphs on a
//! scenario file (TOML; see `examples/deadlock/`).
//!
//! | command | exit 0 | exit 1 | exit 2 |
//! |---|---|---|---|
//! | `detect FILE [--explain] [--json]` | no deadlock | deadlock | bad input |
//! | `safe FILE [--explain] [--json]` | safe | unsafe | bad input, no `maximum` |
//! | `graph FILE [--format dot\|svg] [-o OUT]` | written | — | bad input, cannot write |

use crate::Context;
use crate::exit::Failure;
use anyhow::Context as _;
use ipckit::deadlock::{Detection, ResourceGraph, Scenario, banker, detect, render};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `ipckit deadlock`.
#[derive(Debug, clap::Args)]
pub struct DeadlockArgs {
    #[command(subcommand)]
    command: DeadlockCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeadlockCommand {
    /// Detect deadlock with the matrix algorithm (E, A, C, R): exit 0 none, 1 deadlock
    Detect {
        /// Scenario file (TOML)
        file: PathBuf,
        /// Print the matrices and every step, as done by hand in the course
        #[arg(long)]
        explain: bool,
        /// Print {"deadlocked", "order", "steps"} as JSON
        #[arg(long, conflicts_with = "explain")]
        json: bool,
    },
    /// Banker's algorithm: is the state safe? (needs `maximum`): exit 0 safe, 1 unsafe
    Safe {
        /// Scenario file (TOML) with a `maximum` matrix
        file: PathBuf,
        /// Print need = maximum - allocation and every step
        #[arg(long)]
        explain: bool,
        /// Print {"safe", "sequence"} as JSON
        #[arg(long, conflicts_with = "explain")]
        json: bool,
    },
    /// Who waits for which ipckit objects right now, who holds them, and any deadlock cycle
    /// (exit 0 none, 1 deadlock)
    Live {
        /// Print {"processes", "objects", "waits", "holds", "deadlocked", "cycles"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Draw the resource-allocation graph, the deadlock in red (SVG needs no Graphviz)
    Graph {
        /// Scenario file (TOML)
        file: PathBuf,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Dot)]
        format: Format,
        /// Write here instead of stdout
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

/// Output format of `ipckit deadlock graph`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Graphviz DOT (render with `dot -Tpng`)
    Dot,
    /// Standalone SVG, laid out by ipckit
    Svg,
}

/// Runs `ipckit deadlock`.
pub fn run(ctx: &Context, a: DeadlockArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        DeadlockCommand::Live { json } => live(ctx, json),
        DeadlockCommand::Detect { file, explain, json } => {
            let s = load(&file)?;
            let d = detect(&s);
            let out = if json {
                detect_json(&s, &d)?
            } else if explain {
                explain_detect(&s, &d)
            } else {
                verdict(&s, &d)
            };
            write_stdout(&out)?;
            Ok(ExitCode::from(u8::from(d.is_deadlock())))
        }
        DeadlockCommand::Safe { file, explain, json } => {
            let s = load(&file)?;
            let b = banker::Banker::new(&s)
                .map_err(|e| Failure::bad_input(format!("{}: {e}", file.display())))?;
            let d = b.safety();
            let out = if json {
                let sequence = if d.is_deadlock() { Vec::new() } else { names(&s, &d.order) };
                let v = SafeJson { safe: !d.is_deadlock(), sequence };
                serde_json::to_string_pretty(&v)? + "\n"
            } else if explain {
                explain_safe(&s, &b, &d)
            } else {
                safe_verdict(&s, &d)
            };
            write_stdout(&out)?;
            Ok(ExitCode::from(u8::from(d.is_deadlock())))
        }
        DeadlockCommand::Graph { file, format, output } => {
            let s = load(&file)?;
            let d = detect(&s);
            let text = match format {
                Format::Dot => render::dot(&s, &d),
                Format::Svg => render::svg(&s, &d),
            };
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => write_stdout(&text)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads and checks a scenario file; any problem is bad input (exit 2).
fn load(file: &Path) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))?;
    Scenario::from_toml(&text).map_err(|e| Failure::bad_input(format!("{}: {e}", file.display())))
}

fn write_stdout(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}

fn names(s: &Scenario, v: &[usize]) -> Vec<String> {
    v.iter().map(|&i| s.process_name(i).to_string()).collect()
}

#[derive(Serialize)]
struct DetectJson {
    deadlocked: Vec<String>,
    order: Vec<String>,
    steps: Vec<StepJson>,
}

#[derive(Serialize)]
struct StepJson {
    process: String,
    available: Vec<u64>,
}

#[derive(Serialize)]
struct SafeJson {
    safe: bool,
    sequence: Vec<String>,
}

fn detect_json(s: &Scenario, d: &Detection) -> anyhow::Result<String> {
    let v = DetectJson {
        deadlocked: names(s, &d.deadlocked),
        order: names(s, &d.order),
        steps: d
            .steps()
            .map(|x| StepJson {
                process: s.process_name(x.process).to_string(),
                available: x.available.to_vec(),
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// The one-line answer of `detect`.
pub fn verdict(s: &Scenario, d: &Detection) -> String {
    if !d.is_deadlock() {
        return format!(
            "no deadlock: every process can finish, in the order {}\n",
            names(s, &d.order).join(", ")
        );
    }
    let mut line = format!("deadlock: {} can never finish", names(s, &d.deadlocked).join(", "));
    if !d.order.is_empty() {
        line += &format!(" ({} can, in this order)", names(s, &d.order).join(", "));
    }
    line + "\n"
}

fn safe_verdict(s: &Scenario, d: &Detection) -> String {
    if d.is_deadlock() {
        format!(
            "unsafe: no order lets every process obtain its maximum ({} might never finish)\n",
            names(s, &d.deadlocked).join(", ")
        )
    } else {
        format!("safe: {}\n", names(s, &d.order).join(", "))
    }
}

fn vector(v: &[u64]) -> String {
    let parts: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("({})", parts.join(" "))
}

/// A table with a header row; every column as wide as its widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|x| x.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = width[c] - cell.chars().count();
            if c == 0 {
                line += &format!("  {cell}{}", " ".repeat(pad));
            } else {
                line += &format!("  {}{cell}", " ".repeat(pad));
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// A matrix section: one row per process, `label` above, `|` between the matrices.
fn matrices(s: &Scenario, parts: &[(&str, &ipckit::deadlock::Matrix)]) -> String {
    let m = s.resource_count();
    let mut header = vec![String::new()];
    let mut names_row = vec!["process".to_string()];
    for (k, (label, _)) in parts.iter().enumerate() {
        if k > 0 {
            header.push(String::new());
            names_row.push("|".into());
        }
        for j in 0..m {
            header.push(if j == 0 { label.to_string() } else { String::new() });
            names_row.push(s.resource_name(j).to_string());
        }
    }
    let mut rows = vec![names_row];
    for i in 0..s.process_count() {
        let mut r = vec![s.process_name(i).to_string()];
        for (k, (_, mat)) in parts.iter().enumerate() {
            if k > 0 {
                r.push("|".into());
            }
            r.extend(mat.row(i).iter().map(u64::to_string));
        }
        rows.push(r);
    }
    let labels: Vec<String> = parts.iter().map(|(l, _)| l.to_string()).collect();
    format!("  {}\n{}", labels.join("  |  "), table(&rows))
}

fn vectors(s: &Scenario, parts: &[(&str, &[u64])]) -> String {
    let mut rows = vec![
        std::iter::once(String::new()).chain(s.resources().iter().cloned()).collect::<Vec<_>>(),
    ];
    for (label, v) in parts {
        rows.push(std::iter::once(label.to_string()).chain(v.iter().map(u64::to_string)).collect());
    }
    table(&rows)
}

/// `detect --explain`: the data, every step, why the rest are stuck, and the verdict.
pub fn explain_detect(s: &Scenario, d: &Detection) -> String {
    let mut o = vectors(s, &[("E (existing)", s.existing()), ("A (available)", s.available())]);
    o.push('\n');
    o += &matrices(s, &[("C (allocation)", s.allocation()), ("R (request)", s.request())]);
    o.push('\n');
    o += "Repeatedly pick the first process (top to bottom) whose request fits in A:\n\
          it can finish, and releases what it holds.\n";
    let mut avail = s.available().to_vec();
    for (k, step) in d.steps().enumerate() {
        let p = step.process;
        o += &format!(
            "  step {}: {} requests {} <= A = {}: it finishes and releases {}; A = {}\n",
            k + 1,
            s.process_name(p),
            vector(s.request().row(p)),
            vector(&avail),
            vector(s.allocation().row(p)),
            vector(step.available),
        );
        avail = step.available.to_vec();
    }
    if d.is_deadlock() {
        let other = if d.order.is_empty() { "" } else { "other " };
        o += &format!("  no {other}request fits in A = {}:\n", vector(&avail));
        for &i in &d.deadlocked {
            let r = s.request().row(i);
            let blocking: Vec<String> = (0..s.resource_count())
                .filter(|&j| r[j] > avail[j])
                .map(|j| format!("{} {} (free: {})", r[j], s.resource_name(j), avail[j]))
                .collect();
            o += &format!("    {} waits for {}\n", s.process_name(i), blocking.join(", "));
        }
        // With one instance per resource, show the cycles of the resource-allocation graph.
        if let Ok(g) = ResourceGraph::from_scenario(s) {
            for c in g.cycles() {
                o += &format!("  cycle: {}\n", c.describe(s.processes(), s.resources()));
            }
        }
    }
    o += &verdict(s, d);
    o
}

/// `safe --explain`: need, every step of the safety check, and the verdict.
pub fn explain_safe(s: &Scenario, b: &banker::Banker, d: &Detection) -> String {
    let mut o = vectors(s, &[("E (existing)", s.existing()), ("A (available)", s.available())]);
    o.push('\n');
    o += &matrices(
        s,
        &[
            ("allocation", s.allocation()),
            ("maximum", b.maximum()),
            ("need = max - alloc", b.need()),
        ],
    );
    o.push('\n');
    o += "The state is safe if some order lets every process obtain its whole need: pick the\n\
          first process whose need fits in work (= A at first); it finishes and returns what it\n\
          holds.\n";
    let mut work = s.available().to_vec();
    for (k, step) in d.steps().enumerate() {
        let p = step.process;
        o += &format!(
            "  step {}: {} needs {} <= work = {}: returns {}; work = {}\n",
            k + 1,
            s.process_name(p),
            vector(b.need().row(p)),
            vector(&work),
            vector(s.allocation().row(p)),
            vector(step.available),
        );
        work = step.available.to_vec();
    }
    if d.is_deadlock() {
        let other = if d.order.is_empty() { "" } else { "other " };
        o += &format!("  no {other}need fits in work = {}\n", vector(&work));
    }
    o += &safe_verdict(s, d);
    o
}

/// The shipped examples, built into the binary for the tour.
const COURSE: &str = include_str!("../../../../examples/deadlock/course.toml");
const DEADLOCKED: &str = include_str!("../../../../examples/deadlock/deadlocked.toml");
const BANKER: &str = include_str!("../../../../examples/deadlock/banker.toml");
const UNSAFE: &str = include_str!("../../../../examples/deadlock/unsafe.toml");

/// The tour's `deadlock` step: detection on the course's example and on a deadlocked variant,
/// then the banker's safety check and two requests.
pub fn tour_step() -> anyhow::Result<()> {
    let parse = |name: &str, text: &str| {
        Scenario::from_toml(text).with_context(|| format!("built-in example {name}"))
    };
    let course = parse("course.toml", COURSE)?;
    println!("-- examples/deadlock/course.toml: ipckit deadlock detect --explain");
    print!("{}", explain_detect(&course, &detect(&course)));
    let stuck = parse("deadlocked.toml", DEADLOCKED)?;
    println!("\n-- examples/deadlock/deadlocked.toml: the same, but P3 also wants the cd");
    let d = detect(&stuck);
    anyhow::ensure!(d.is_deadlock(), "the deadlocked example must deadlock");
    print!("{}", explain_detect(&stuck, &d));

    let bank = parse("banker.toml", BANKER)?;
    println!("\n-- examples/deadlock/banker.toml: ipckit deadlock safe (Silberschatz's example)");
    let mut b = banker::Banker::new(&bank)?;
    print!("{}", safe_verdict(&bank, &b.safety()));
    let show = |v: &[u64]| vector(v);
    let name = |i: usize| bank.process_name(i).to_string();
    for (p, req) in [(1usize, [1u64, 0, 2]), (4, [3, 3, 0]), (0, [0, 2, 0])] {
        match b.request(p, &req) {
            Ok(seq) => println!(
                "{} asks for {}: granted, still safe ({})",
                name(p),
                show(&req),
                seq.iter().map(|&i| name(i)).collect::<Vec<_>>().join(", ")
            ),
            Err(e) if e.is_wait() => {
                let why = match e {
                    banker::RequestError::Unsafe { .. } => "the state would be unsafe",
                    _ => "not enough is available",
                };
                println!("{} asks for {}: must wait, {why}", name(p), show(&req));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let unsafe_state = parse("unsafe.toml", UNSAFE)?;
    println!("\n-- examples/deadlock/unsafe.toml (Tanenbaum's unsafe state)");
    print!("{}", safe_verdict(&unsafe_state, &banker::Banker::new(&unsafe_state)?.safety()));
    Ok(())
}

/// `ipckit deadlock live`.
fn live(ctx: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let ns = super::objects::namespace(ctx)?;
    let r = ipckit::deadlock::live::live(&ns).map_err(super::objects::object_error)?;
    if json {
        super::objects::print_json(&r)?;
    } else {
        let mut out = std::io::stdout().lock();
        if r.processes.is_empty() {
            writeln!(out, "nobody waits for an ipckit object in {}", ns.dir().display())?;
        }
        for p in &r.processes {
            let list = |edges: &[ipckit::ns::waits::Edge]| {
                edges
                    .iter()
                    .filter(|e| e.pid == p.pid)
                    .map(|e| e.resource.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (w, h) = (list(&r.waits), list(&r.holds));
            write!(out, "P{} ({})", p.pid, p.name)?;
            if !w.is_empty() {
                write!(out, " waits for {w}")?;
            }
            if !h.is_empty() {
                write!(out, "{} holds {h}", if w.is_empty() { "" } else { ";" })?;
            }
            writeln!(out)?;
        }
        if r.deadlocked.is_empty() {
            writeln!(out, "no deadlock")?;
        } else {
            let names: Vec<String> = r.deadlocked.iter().map(|p| format!("P{p}")).collect();
            writeln!(out, "deadlock: {}", names.join(", "))?;
            for c in &r.cycles {
                writeln!(out, "cycle: {}", c.join(" -> "))?;
            }
        }
    }
    Ok(if r.deadlocked.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The tour's live part: two processes lock two mutexes of a segment in opposite orders and
/// deadlock; `deadlock live` finds the cycle; then both are killed and the segment removed.
pub fn live_demo(ctx: &Context) -> anyhow::Result<()> {
    use ipckit::ns::Key;
    use ipckit::shm::Segment;
    use std::time::{Duration, Instant};
    let ns = super::objects::namespace(ctx)?;
    let seg = Segment::create(&ns, Key(0xdead), 4096, 0o600)?;
    println!(
        "\n-- live: processes A and B lock mutexes M0 and M64 of segment 0x0000dead in opposite orders"
    );
    let mut kids = vec![
        super::child::spawn(ctx, "lock-two", &["0", "64"])?,
        super::child::spawn(ctx, "lock-two", &["64", "0"])?,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let r = ipckit::deadlock::live::live(&ns)?;
        if !r.deadlocked.is_empty() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    seg.remove()?;
    anyhow::ensure!(!report.deadlocked.is_empty(), "the live detector saw no deadlock");
    println!("$ ipckit deadlock live");
    for c in &report.cycles {
        println!("cycle: {}", c.join(" -> "));
    }
    let names: Vec<String> = report.deadlocked.iter().map(|p| format!("P{p}")).collect();
    println!("deadlock: {} (then killed, segment removed)", names.join(", "));
    Ok(())
}

/// Child role `lock-two FIRST SECOND`: locks the mutex at offset FIRST of segment 0xdead,
/// waits until the other process holds SECOND, then locks SECOND — a deadlock, by design.
pub fn lock_two_child(ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    use ipckit::ns::Key;
    use ipckit::shm::Segment;
    use ipckit::sync::Mutex;
    let ns = super::objects::namespace(ctx)?;
    let (first, second): (usize, usize) = (super::demo::arg(args, 0)?, super::demo::arg(args, 1)?);
    let att = Segment::open(&ns, Key(0xdead))?.attach()?;
    let m1 = att.get::<Mutex<u64>>(first)?;
    let m2 = att.get::<Mutex<u64>>(second)?;
    let _g1 = m1.lock().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Wait (bounded) until the other process holds `second`.
    let t = std::time::Instant::now();
    while m2.raw().owner_tid().is_none() && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _g2 = m2.lock_timeout(std::time::Duration::from_secs(30));
    Ok(())
}
