//! `ipckit tour`: a guided, narrated run of the whole system on a temporary namespace.
//!
//! The tour is a list of [`Step`]s; each explains one mechanism in a few lines and then runs
//! it with real processes (usually by running a demo with small parameters). Every object it
//! creates lives in a temporary namespace directory that is removed at the end, whatever
//! happens. `--step NAME` runs one step, `--list` lists them.

use super::demo::{self, Scratch};
use crate::Context;
use crate::exit::Failure;
use anyhow::Context as _;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `ipckit tour`.
#[derive(Debug, clap::Args)]
pub struct TourArgs {
    /// Run only this step (repeatable)
    #[arg(long, value_name = "NAME")]
    step: Vec<String>,
    /// List the steps and exit
    #[arg(long)]
    list: bool,
}

/// One stop of the tour.
pub struct Step {
    /// Name for `--step`.
    pub name: &'static str,
    /// Heading.
    pub title: &'static str,
    /// What the course says, in a few lines.
    pub story: &'static str,
    /// Runs the step in the tour's namespace.
    pub run: fn(&Context) -> anyhow::Result<()>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The steps, in order.
pub const STEPS: &[Step] = &[
    Step {
        name: "race",
        title: "Race conditions and the critical section",
        story: "Four processes each add 1 to a counter in shared memory 100,000 times. \
                `counter++` is load, add, store: without mutual exclusion, increments get \
                lost. Inside a critical section guarded by ipckit's robust mutex (a futex \
                word in the shared mapping), none are.",
        run: |ctx| {
            demo::counter::run(
                ctx,
                demo::counter::Args {
                    processes: 4,
                    increments: 100_000,
                    lock: demo::counter::Protection::None,
                },
            )?;
            demo::counter::run(
                ctx,
                demo::counter::Args {
                    processes: 4,
                    increments: 100_000,
                    lock: demo::counter::Protection::Mutex,
                },
            )
        },
    },
    Step {
        name: "signaling",
        title: "Signaling with semaphores: ping-pong",
        story: "Two processes take turns: each waits (P) on its own semaphore and signals (V) \
                the other's. The lines alternate strictly, whatever the scheduler does.",
        run: |ctx| demo::pingpong::run(ctx, demo::pingpong::Args { rounds: 6 }),
    },
    Step {
        name: "semaphores",
        title: "Semaphore sets: ordering processes (the three runners)",
        story: "System V semaphores come in sets, change by any amount, and apply several \
                operations as one atomic step; ipckit keeps them in the namespace. Three \
                runner processes must run 1, then 2, then 3. With one semaphore that runner 1 \
                signals twice, the two units release runners 2 and 3 together: runner 3 \
                starts before runner 2 is done. With one semaphore per hand-over the order \
                always holds.",
        run: |ctx| {
            demo::runners::run(
                ctx,
                demo::runners::Args { variant: demo::runners::Version::Both, leg_ms: 250 },
            )
        },
    },
    Step {
        name: "prodcons",
        title: "The bounded buffer: producers and consumers",
        story: "Two producer and two consumer processes share an 8-slot ring buffer guarded \
                by three semaphores: empty (free slots), filled (full slots) and a binary \
                mutex. Every item is consumed exactly once.",
        run: |ctx| {
            demo::prodcons::run(
                ctx,
                demo::prodcons::Args { items: 20_000, producers: 2, consumers: 2, progress: true },
            )
        },
    },
    Step {
        name: "locks",
        title: "Locks: spinning, and readers with writers",
        story: "A spinlock waiter burns CPU instead of sleeping. Test-and-set retries its \
                atomic swap over and over, each one stealing the lock's cache line; \
                test-and-test-and-set watches with plain loads and tries its compare-and-swap \
                only when the lock looks free. Then a reader-writer lock under two policies: \
                with readers preferred, an overlapping stream of reader processes starves the \
                writer processes; \
                with the phase-fair policy a waiting writer holds back new readers, and the \
                readers it held back enter together after it.",
        run: |ctx| {
            demo::spinlock::run(ctx, demo::spinlock::Args { threads: None, acquisitions: 20_000 })?;
            for policy in [
                demo::readers_writers::PolicyArg::ReaderPreferred,
                demo::readers_writers::PolicyArg::Fair,
            ] {
                println!();
                demo::readers_writers::run(
                    ctx,
                    demo::readers_writers::Args { policy, duration_ms: 800 },
                )?;
            }
            Ok(())
        },
    },
    Step {
        name: "coordination",
        title: "Coordination: printers by priority, an alarm clock, transactions",
        story: "Three structures from the course's monitor problems. Jobs queue for three \
                printers and get them lowest priority number first. Sleepers ask an alarm \
                clock for different numbers of ticks; each tick wakes exactly those due. \
                Tellers move money between accounts in software transactions: an auditor \
                never sees money in flight, and a customer blocked in `retry` is woken by \
                the deposit it waits for.",
        run: |ctx| {
            demo::printers::run(ctx, demo::printers::Args { printers: 3, jobs: 6, print_ms: 40 })?;
            demo::alarm::run(ctx, demo::alarm::Args { ticks: vec![3, 1, 4, 1, 2], tick_ms: 40 })?;
            demo::bank::run(ctx, demo::bank::Args { accounts: 5, tellers: 4, transfers: 5_000 })
        },
    },
    Step {
        name: "shm",
        title: "Shared memory segments: the namespace is the table",
        story: "A segment is created by key in the tour's namespace (a directory of object \
                files on tmpfs). One process (`ipckit shm write`) writes into it and exits; an \
                unrelated process (`ipckit shm read`) attaches it later and reads the same \
                bytes: the segment outlives its writer, as System V's do. `ipckit ls` lists it \
                the way `ipcs` would.",
        run: shm_step,
    },
    Step {
        name: "mq",
        title: "Message queues: typed messages that outlive their sender",
        story: "A process creates a System V style message queue, sends five typed messages \
                and exits. Only then does another process start and receive them, choosing \
                by type: urgent ones (type 2) first, then all but the logs, then the rest. \
                The queue lives in a file of the namespace, so it outlives its creator until \
                it is removed (IPC_RMID).",
        run: super::mq::tour,
    },
    Step {
        name: "pipes",
        title: "Pipes: anonymous between relatives, named between strangers",
        story: "A pipe is a one-way byte channel with a bounded buffer in the kernel: the \
                reader waits while it is empty, the writer while it is full, so the pipe \
                synchronizes the two by itself. An anonymous pipe has no name: a parent makes \
                it and its child inherits the read end. A named pipe (FIFO) has a path, so two \
                unrelated processes meet there; opening one end waits for the other, and a \
                non-blocking open for writing with no reader fails with ENXIO. ipckit frames \
                the byte stream into messages (a length, then the bytes).",
        run: |ctx| {
            demo::pipe::run(ctx, demo::pipe::Args { messages: 3 })?;
            println!();
            demo::fifo::run(ctx, demo::fifo::Args { messages: 3 })
        },
    },
    Step {
        name: "sockets",
        title: "Sockets: the echo server over TCP and UDP",
        story: "Sockets also cross machines (here they stay on loopback). TCP is \
                connection-oriented: connect, then a reliable byte stream. UDP is \
                connectionless: each message is one datagram, which may be lost. An echo \
                server in its own process sends every message back. A blocking receive waits \
                for data; on a non-blocking socket the same call returns WouldBlock (EAGAIN) \
                at once.",
        run: |ctx| demo::sockets::run(ctx, demo::sockets::Args {}),
    },
    Step {
        name: "deadlock",
        title: "Deadlock: detection and avoidance",
        story: "Coffman (1971): a deadlock needs four conditions at once: mutual exclusion \
                (a resource is held by one process), hold and wait (holding, a process asks for \
                more), no preemption (only the holder gives it back) and circular wait (a cycle \
                of processes, each waiting for the next). With several instances per resource \
                the course detects it with the vectors E (existing) and A (available) and the \
                matrices C (allocation) and R (request): let every process whose request fits \
                in A finish and give back what it holds; whoever is left is deadlocked. The \
                banker avoids deadlock instead: it grants a request only if some order still \
                lets every process reach its declared maximum (a safe state). Last, a real \
                deadlock between two processes on two ipckit mutexes, found live, and the \
                dining philosophers: deadlocked, detected, then cured by ordering the forks.",
        run: |ctx| {
            super::deadlock::tour_step()?;
            super::deadlock::live_demo(ctx)?;
            println!("\n-- the dining philosophers: five processes, forks as semaphores");
            demo::philosophers::run(ctx, demo::philosophers::Args { meals: 2 })
        },
    },
];

fn shm_step(ctx: &Context) -> anyhow::Result<()> {
    use super::child;
    let run = |args: &[&str]| -> anyhow::Result<Vec<u8>> {
        let out = child::ipckit(ctx, args)?.output().context("cannot run ipckit")?;
        anyhow::ensure!(
            out.status.success(),
            "ipckit {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(out.stdout)
    };
    println!("$ ipckit shm create --key 0x1234 --size 4096");
    let id = run(&["shm", "create", "--key", "0x1234", "--size", "4096"])?;
    println!("{}", String::from_utf8_lossy(&id).trim());
    println!("$ ipckit shm write --key 0x1234 'Hello from process A'      # process A, then exits");
    run(&["shm", "write", "--key", "0x1234", "Hello from process A"])?;
    println!("$ ipckit shm read --key 0x1234 --len 20                       # process B, later");
    let text = run(&["shm", "read", "--key", "0x1234", "--len", "20"])?;
    println!("{}", String::from_utf8_lossy(&text));
    anyhow::ensure!(text == b"Hello from process A", "process B read other bytes");
    println!("$ ipckit ls shm");
    print!("{}", String::from_utf8_lossy(&run(&["ls", "shm"])?));
    println!("$ ipckit rm shm --key 0x1234");
    run(&["rm", "shm", "--key", "0x1234"])?;
    Ok(())
}

/// Runs `ipckit tour`.
/// The tour always works in a temporary namespace of its own, whatever `--dir` says.
pub fn run(_ctx: &Context, a: TourArgs) -> anyhow::Result<ExitCode> {
    if a.list {
        for s in STEPS {
            println!("{:<12} {}", s.name, s.title);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for name in &a.step {
        if !STEPS.iter().any(|s| s.name == name) {
            let names: Vec<_> = STEPS.iter().map(|s| s.name).collect();
            return Err(Failure::bad_input(format!(
                "no tour step {name:?} (steps: {})",
                names.join(", ")
            )));
        }
    }
    // A namespace of our own, removed on every exit path when `scratch` drops.
    let scratch = Scratch::new("tour")?;
    let ns = scratch.path("ns");
    std::fs::create_dir(&ns).context("cannot make the tour's namespace")?;
    let tour_ctx = Context { dir: Some(ns.clone()) };
    println!("ipckit tour: every object lives in {} (removed at the end)\n", ns.display());
    let start = Instant::now();
    let chosen: Vec<&Step> =
        STEPS.iter().filter(|s| a.step.is_empty() || a.step.iter().any(|n| n == s.name)).collect();
    for (i, s) in chosen.iter().enumerate() {
        println!("== {}/{}: {} ==", i + 1, chosen.len(), s.title);
        println!("{}\n", wrap(s.story, 90));
        let t = Instant::now();
        (s.run)(&tour_ctx).with_context(|| format!("tour step {}", s.name))?;
        println!("({} took {:.1?})\n", s.name, t.elapsed());
    }
    println!("Tour done in {:.1?}; its namespace is removed.", start.elapsed());
    Ok(ExitCode::SUCCESS)
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}
