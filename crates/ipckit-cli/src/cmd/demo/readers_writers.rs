//! The readers-writers problem (Courtois, Heymans and Parnas 1971), shown as a timeline.
//!
//! Three reader threads read in an overlapping stream (each holds the lock for a while and
//! comes back almost at once, staggered so that some reader is always inside); two writers
//! arrive a little later. With `reader-preferred` the stream never lets the read count fall
//! to zero and the writers starve (bounded: they give up at the end of the run); with
//! `writer-preferred` and `fair` a waiting writer holds back new readers and gets in as
//! soon as the readers already inside leave; `unordered` makes no promise. Every line is an
//! event with the time since the start.

use crate::Context;
use anyhow::bail;
use ipckit::sync::{Policy, RwLock};
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The lock's policy, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Readers enter whenever no writer holds the lock: writers can starve
    ReaderPreferred,
    /// A waiting writer blocks new readers: readers can starve
    WriterPreferred,
    /// Phase-fair: neither side starves
    Fair,
    /// No preference: whoever wins the race
    Unordered,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::ReaderPreferred => Policy::ReaderPreferred,
            PolicyArg::WriterPreferred => Policy::WriterPreferred,
            PolicyArg::Fair => Policy::Fair,
            PolicyArg::Unordered => Policy::Unordered,
        }
    }
}

/// Options of the readers-writers demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Who goes first when readers and writers both wait
    #[arg(long, value_enum, default_value_t = PolicyArg::Fair)]
    pub policy: PolicyArg,
    /// Length of the run in milliseconds, at least 500 (writers that have not got in shortly before the end give up)
    #[arg(long, default_value_t = 1000)]
    pub duration_ms: u64,
}

const READERS: usize = 3;
const READ_HOLD: Duration = Duration::from_millis(80);
const READ_PAUSE: Duration = Duration::from_millis(3);
const WRITE_HOLD: Duration = Duration::from_millis(40);

/// The shared scene: the lock, who is inside, the clock.
struct Scene {
    lock: RwLock<u64>,
    inside: StdMutex<BTreeSet<String>>,
    start: Instant,
    end: Instant,
    /// Stdout was closed (e.g. by `head`): stop printing, exit quietly at the end.
    closed: AtomicBool,
}

impl Scene {
    fn say(&self, what: String) {
        let t = self.start.elapsed().as_secs_f64();
        if !self.closed.load(Ordering::Relaxed)
            && writeln!(std::io::stdout().lock(), "  {t:>7.3}s  {what}").is_err()
        {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    fn enter(&self, who: &str) -> String {
        let mut inside = self.inside.lock().unwrap();
        inside.insert(who.to_string());
        inside.iter().cloned().collect::<Vec<_>>().join(" ")
    }

    fn leave(&self, who: &str) {
        self.inside.lock().unwrap().remove(who);
    }
}

/// What a writer experienced.
struct WriterOutcome {
    name: String,
    waited: Duration,
    got_in: bool,
}

/// Runs the demo.
pub fn run(_ctx: &Context, a: Args) -> anyhow::Result<()> {
    let policy: Policy = a.policy.into();
    let start = Instant::now();
    let scene = Scene {
        lock: RwLock::with_policy(0, policy),
        inside: StdMutex::new(BTreeSet::new()),
        start,
        end: start + Duration::from_millis(a.duration_ms.max(500)),
        closed: AtomicBool::new(false),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "readers-writers, policy {}: {READERS} readers in an overlapping stream (each reads {:?}), \
         2 writers arriving at 0.100s and 0.150s (each writes {:?})",
        policy.name(),
        READ_HOLD,
        WRITE_HOLD
    )?;
    drop(out);
    let (outcomes, sections) = std::thread::scope(|s| {
        let scene = &scene;
        let readers: Vec<_> = (0..READERS).map(|i| s.spawn(move || reader(scene, i + 1))).collect();
        let writers: Vec<_> = [(1, 100u64), (2, 150)]
            .into_iter()
            .map(|(i, at)| s.spawn(move || writer(scene, i, Duration::from_millis(at))))
            .collect();
        let outcomes: Vec<WriterOutcome> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        let sections: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
        (outcomes, sections)
    });
    if scene.closed.load(Ordering::Relaxed) {
        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nsummary ({}):", policy.name())?;
    writeln!(out, "  reader sections completed: {sections}")?;
    for o in &outcomes {
        if o.got_in {
            writeln!(out, "  {} waited {:.3}s, then wrote", o.name, o.waited.as_secs_f64())?;
        } else {
            writeln!(
                out,
                "  {} STARVED: never got in within {:.3}s of waiting (readers kept the lock)",
                o.name,
                o.waited.as_secs_f64()
            )?;
        }
    }
    let verdict = match policy {
        Policy::ReaderPreferred => {
            "readers first: while any reader is inside, new readers enter, so an overlapping \
             stream of readers starves the writers"
        }
        Policy::WriterPreferred => {
            "writers first: a waiting writer holds back new readers; a stream of writers would \
             starve the readers instead"
        }
        Policy::Fair => {
            "phase-fair: a waiting writer holds back new readers, and the readers it held back \
             all enter together when it leaves: nobody starves"
        }
        Policy::Unordered => {
            "no preference: readers keep entering beside readers, so here the writers may \
             starve too; nothing is promised"
        }
    };
    writeln!(out, "  {verdict}")?;
    let writes = *scene.lock.read();
    let expected = outcomes.iter().filter(|o| o.got_in).count() as u64;
    if writes != expected {
        bail!("{writes} writes recorded, {expected} writers got in: the lock let a write get lost");
    }
    match policy {
        Policy::Fair | Policy::WriterPreferred if outcomes.iter().any(|o| !o.got_in) => {
            bail!("a writer starved under the {} policy", policy.name())
        }
        _ => {}
    }
    Ok(())
}

/// A reader: read, hold, leave, pause briefly, again, until the end of the run.
fn reader(scene: &Scene, i: usize) -> u64 {
    let me = format!("R{i}");
    // Stagger the readers so that their sections overlap.
    std::thread::sleep(Duration::from_millis(20 * (i as u64 - 1)));
    let mut sections = 0;
    while Instant::now() + READ_HOLD < scene.end {
        let left = scene.end.saturating_duration_since(Instant::now());
        let g = match scene.lock.try_read() {
            Ok(g) => g,
            Err(_) => {
                scene.say(format!("{me} waits to read"));
                let t = Instant::now();
                match scene.lock.read_timeout(left) {
                    Ok(g) => {
                        scene.say(format!(
                            "{me} stops waiting after {:.3}s",
                            t.elapsed().as_secs_f64()
                        ));
                        g
                    }
                    Err(_) => break,
                }
            }
        };
        let inside = scene.enter(&me);
        scene.say(format!("{me} reads            inside: {inside}"));
        std::thread::sleep(READ_HOLD);
        scene.leave(&me);
        drop(g);
        sections += 1;
        std::thread::sleep(READ_PAUSE);
    }
    sections
}

/// A writer: arrives at `at`, waits for the lock until the end of the run, writes once.
fn writer(scene: &Scene, i: usize, at: Duration) -> WriterOutcome {
    let me = format!("W{i}");
    std::thread::sleep(at);
    let t = Instant::now();
    scene.say(format!(
        "{me} wants to write   (readers inside: {})",
        scene.lock.raw().state().readers
    ));
    // Writers give up a little before the readers stop, so that the end of the reader
    // stream is not mistaken for fairness.
    let give_up = scene.end - 2 * READ_HOLD;
    let left = give_up.saturating_duration_since(Instant::now());
    match scene.lock.write_timeout(left) {
        Ok(mut g) => {
            let waited = t.elapsed();
            let inside = scene.enter(&me);
            scene.say(format!(
                "{me} WRITES after waiting {:.3}s   inside: {inside}",
                waited.as_secs_f64()
            ));
            *g += 1;
            std::thread::sleep(WRITE_HOLD);
            scene.leave(&me);
            scene.say(format!("{me} leaves"));
            WriterOutcome { name: me, waited, got_in: true }
        }
        Err(_) => {
            let waited = t.elapsed();
            scene.say(format!("{me} gives up after {:.3}s", waited.as_secs_f64()));
            WriterOutcome { name: me, waited, got_in: false }
        }
    }
}
