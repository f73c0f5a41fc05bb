//! Three printers handed out by priority: [`ipckit::coord::PriorityAllocator`].
//!
//! The first jobs take all printers and hold them until every other job has queued; then
//! each job prints for a moment and hands its printer on. The queued jobs must get printers
//! in priority order (lowest number first), first come first served within a priority; the
//! demo checks that and fails otherwise.

use anyhow::ensure;
use ipckit::coord::PriorityAllocator;
use ipckit::sync::{Event, EventMode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of the printers demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Printers
    #[arg(long, default_value_t = 3)]
    pub printers: usize,
    /// Jobs that queue while the printers are busy (priorities cycle 2, 0, 1, 0, 2, 1, ...)
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// How long each job prints, in milliseconds
    #[arg(long, default_value_t = 60)]
    pub print_ms: u64,
}

const PRIORITIES: [u32; 6] = [2, 0, 1, 0, 2, 1];
const LIMIT: Duration = Duration::from_secs(20);

/// Runs the demo.
pub fn run(_ctx: &crate::Context, a: Args) -> anyhow::Result<()> {
    ensure!(a.printers >= 1, "need at least one printer");
    let alloc = Arc::new(PriorityAllocator::new(a.printers));
    let start = Instant::now();
    let log = Arc::new(Mutex::new(Vec::<(u64, usize, u32)>::new()));
    let say = move |s: String| println!("{:>6} ms  {s}", start.elapsed().as_millis());
    println!(
        "{} printers, {} jobs queue behind {} jobs that hold them; lower priority number first",
        a.printers, a.jobs, a.printers
    );
    let release = Arc::new(Event::new(EventMode::ManualReset));
    let print = Duration::from_millis(a.print_ms);
    let mut hs = Vec::new();
    for h in 0..a.printers {
        let (alloc, release) = (alloc.clone(), release.clone());
        hs.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let g =
                alloc.acquire_timeout(0, LIMIT).map_err(|e| anyhow::anyhow!("holder {h}: {e}"))?;
            say(format!("holder {h} prints on printer {}", g.resource()));
            ensure!(release.wait_timeout(LIMIT), "never released");
            drop(g);
            Ok(())
        }));
    }
    let t = Instant::now();
    while alloc.available() > 0 {
        ensure!(t.elapsed() < LIMIT, "holders never got the printers");
        std::thread::yield_now();
    }
    for j in 0..a.jobs {
        let prio = PRIORITIES[j % PRIORITIES.len()];
        let (a2, log) = (alloc.clone(), log.clone());
        hs.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let g = a2.acquire_timeout(prio, LIMIT).map_err(|e| anyhow::anyhow!("job {j}: {e}"))?;
            log.lock().expect("log").push((g.grant_number(), j, prio));
            say(format!(
                "job {j:>2} (priority {prio}) prints on printer {} (grant #{})",
                g.resource(),
                g.grant_number()
            ));
            std::thread::sleep(print);
            drop(g);
            Ok(())
        }));
        let t = Instant::now();
        while alloc.waiting() < j + 1 {
            ensure!(t.elapsed() < LIMIT, "job {j} never queued");
            std::thread::yield_now();
        }
        say(format!("job {j:>2} (priority {prio}) waits"));
    }
    std::thread::sleep(print);
    say("holders release their printers".into());
    release.set();
    for h in hs {
        h.join().map_err(|_| anyhow::anyhow!("a job panicked"))??;
    }
    let mut granted: Vec<(u64, usize, u32)> = log.lock().expect("log").clone();
    granted.sort_unstable(); // by grant number: the allocator's true order
    let got: Vec<(usize, u32)> = granted.into_iter().map(|(_, j, p)| (j, p)).collect();
    let mut want = got.clone();
    want.sort_by_key(|&(j, p)| (p, j));
    ensure!(got == want, "grants out of priority order: {got:?}");
    println!(
        "all {} jobs printed; grant order {:?} is by priority, then arrival",
        a.jobs,
        got.iter().map(|&(j, _)| j).collect::<Vec<_>>()
    );
    Ok(())
}
