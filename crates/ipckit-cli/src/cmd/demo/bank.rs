//! A bank with software transactional memory: [`ipckit::coord::stm`].
//!
//! Teller threads move random amounts between accounts, each transfer one transaction;
//! an auditor sums all balances in a transaction of its own and must always find the same
//! total (no money in flight is ever visible). A customer waits with `retry` until an
//! account holds enough to withdraw, and is woken by the deposit that makes it so.

use anyhow::ensure;
use ipckit::coord::stm::{StmResult, TVar, Transaction, atomically, atomically_timeout, retry};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of the bank demo.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accounts
    #[arg(long, default_value_t = 5)]
    pub accounts: usize,
    /// Teller threads
    #[arg(long, default_value_t = 4)]
    pub tellers: usize,
    /// Transfers per teller
    #[arg(long, default_value_t = 20_000)]
    pub transfers: u64,
}

const START: i64 = 100;

fn transfer(tx: &mut Transaction, from: &TVar<i64>, to: &TVar<i64>, n: i64) -> StmResult<bool> {
    let f = tx.read(from)?;
    if f < n {
        return Ok(false); // not enough: skip
    }
    tx.write(from, f - n)?;
    tx.modify(to, |t| t + n)?;
    Ok(true)
}

/// Runs the demo.
pub fn run(_ctx: &crate::Context, a: Args) -> anyhow::Result<()> {
    ensure!(a.accounts >= 2, "need at least two accounts");
    let total = START * a.accounts as i64;
    let acc: Arc<Vec<TVar<i64>>> = Arc::new((0..a.accounts).map(|_| TVar::new(START)).collect());
    let vault = TVar::new(0i64);
    println!("{} accounts of {START}: total {total}; {} tellers", a.accounts, a.tellers);

    // The customer: withdraw 250 from the vault, waiting (retry) until it holds that much.
    let runs = Arc::new(AtomicU64::new(0));
    let customer = {
        let (vault, runs) = (vault.clone(), runs.clone());
        std::thread::spawn(move || {
            atomically_timeout(Duration::from_secs(20), |tx| {
                runs.fetch_add(1, Ordering::Relaxed);
                let v = tx.read(&vault)?;
                if v < 250 {
                    return retry(); // sleeps until a commit changes `vault`
                }
                tx.write(&vault, v - 250)?;
                Ok(v)
            })
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let auditor = {
        let (acc, stop) = (acc.clone(), stop.clone());
        std::thread::spawn(move || -> anyhow::Result<u64> {
            let mut audits = 0;
            while !stop.load(Ordering::Relaxed) {
                let sum: i64 = atomically(|tx| {
                    let mut s = 0;
                    for a in acc.iter() {
                        s += tx.read(a)?;
                    }
                    Ok(s)
                });
                ensure!(sum == total, "audit saw total {sum}, not {total}");
                audits += 1;
            }
            Ok(audits)
        })
    };

    let t = Instant::now();
    let moved = Arc::new(AtomicU64::new(0));
    let tellers: Vec<_> = (0..a.tellers as u64)
        .map(|k| {
            let (acc, moved) = (acc.clone(), moved.clone());
            let n = a.transfers;
            std::thread::spawn(move || {
                let mut s = 0x2545_f491_4f6c_dd1d ^ (k + 1);
                for _ in 0..n {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let from = (s % acc.len() as u64) as usize;
                    let to = (from + 1 + ((s >> 20) % (acc.len() as u64 - 1)) as usize) % acc.len();
                    let amount = ((s >> 40) % 40) as i64 + 1;
                    if atomically(|tx| transfer(tx, &acc[from], &acc[to], amount)) {
                        moved.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for th in tellers {
        th.join().map_err(|_| anyhow::anyhow!("a teller panicked"))?;
    }
    let elapsed = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let audits = auditor.join().map_err(|_| anyhow::anyhow!("the auditor panicked"))??;
    let balances: Vec<i64> = acc.iter().map(|a| a.read_atomic()).collect();
    let sum: i64 = balances.iter().sum();
    println!(
        "{} transfers committed ({} skipped for lack of funds) in {:.0} ms; {audits} audits all saw {total}",
        moved.load(Ordering::Relaxed),
        a.tellers as u64 * a.transfers - moved.load(Ordering::Relaxed),
        elapsed.as_secs_f64() * 1e3
    );
    println!("balances {balances:?}, total {sum}");
    ensure!(sum == total, "money created or lost: {sum} != {total}");
    ensure!(balances.iter().all(|&b| b >= 0), "a balance went negative");

    println!("a customer waits (retry) to withdraw 250 from the vault, which holds 0");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        let v = atomically(|tx| {
            let v = tx.read(&vault)? + 100;
            tx.write(&vault, v)?;
            Ok(v)
        });
        println!("  deposit 100 -> vault {v}");
    }
    let got = customer.join().map_err(|_| anyhow::anyhow!("the customer panicked"))?;
    let had = got.map_err(|e| anyhow::anyhow!("customer: {e}"))?;
    println!(
        "the customer withdrew 250 when the vault held {had}; its transaction ran {} times \
         (the first run, then once per deposit that woke it: no polling)",
        runs.load(Ordering::Relaxed)
    );
    ensure!(vault.read_atomic() == 50, "vault should hold 50");
    Ok(())
}
