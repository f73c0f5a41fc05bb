//! The alarm clock: [`ipckit::coord::AlarmClock`]. Sleepers ask for different numbers of
//! ticks; the clock ticks, and each tick wakes exactly the sleepers that are due — in
//! order, and none early. Then the real-time variant, [`ipckit::coord::TickingAlarmClock`],
//! sleeps for a duration.

use anyhow::ensure;
use ipckit::coord::{AlarmClock, TickingAlarmClock};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Options of the alarm-clock demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ticks each sleeper asks for (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "5,2,7,2,4,1")]
    pub ticks: Vec<u64>,
    /// Milliseconds between ticks
    #[arg(long, default_value_t = 80)]
    pub tick_ms: u64,
}

const LIMIT: Duration = Duration::from_secs(20);

/// Runs the demo.
pub fn run(_ctx: &crate::Context, a: Args) -> anyhow::Result<()> {
    ensure!(!a.ticks.is_empty(), "give at least one sleeper");
    ensure!(a.ticks.iter().all(|&t| (1..=50).contains(&t)), "ticks must be 1..=50");
    let clock = Arc::new(AlarmClock::new());
    let (tx, rx) = mpsc::channel();
    let names: Vec<char> = ('A'..='Z').cycle().take(a.ticks.len()).collect();
    let mut hs = Vec::new();
    for (i, &t) in a.ticks.iter().enumerate() {
        let (clock, tx) = (clock.clone(), tx.clone());
        hs.push(std::thread::spawn(move || {
            let ok = clock.delay_timeout(t, LIMIT);
            let _ = tx.send((i, clock.now(), ok));
        }));
    }
    drop(tx);
    let t0 = Instant::now();
    while clock.sleepers() < a.ticks.len() {
        ensure!(t0.elapsed() < LIMIT, "sleepers never went to sleep");
        std::thread::yield_now();
    }
    for (i, &t) in a.ticks.iter().enumerate() {
        println!("sleeper {} calls delay({t})", names[i]);
    }
    let last = *a.ticks.iter().max().expect("not empty");
    let mut woken = 0;
    for tick in 1..=last {
        std::thread::sleep(Duration::from_millis(a.tick_ms));
        let n = clock.tick();
        let mut line = format!("tick {tick:>2}:");
        let mut now_woken = Vec::new();
        for _ in 0..n {
            let (i, at, ok) = rx.recv_timeout(LIMIT)?;
            ensure!(
                ok && at == tick && a.ticks[i] == tick,
                "sleeper {} woke at tick {at}",
                names[i]
            );
            now_woken.push(i);
        }
        now_woken.sort_unstable(); // woken by the same tick: list them by name
        for i in now_woken {
            line.push_str(&format!(" wakes {} (asked for {})", names[i], a.ticks[i]));
            woken += 1;
        }
        ensure!(rx.try_recv().is_err(), "a sleeper woke before its tick");
        println!("{line}");
    }
    for h in hs {
        h.join().map_err(|_| anyhow::anyhow!("a sleeper panicked"))?;
    }
    ensure!(woken == a.ticks.len(), "only {woken} sleepers woke");
    let real = TickingAlarmClock::new(Duration::from_millis(10));
    let t = Instant::now();
    real.delay_for(Duration::from_millis(100));
    let took = t.elapsed();
    ensure!(took >= Duration::from_millis(100), "delay_for returned early");
    println!(
        "real time: a clock ticking every 10 ms; delay_for(100 ms) slept {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    Ok(())
}
