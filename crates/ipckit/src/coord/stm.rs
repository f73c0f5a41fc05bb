//! Software transactional memory: [`TVar`]s changed only inside [`atomically`] transactions,
//! with [`retry`] and [`Transaction::or_else`] for blocking.
//!
//! Instead of locks, a block of code runs as a transaction: it reads and writes transactional
//! variables, and either all of its writes appear at once or none do (Shavit & Touitou 1995;
//! the `retry` / `orElse` interface is from Harris, Marlow, Peyton Jones & Herlihy,
//! "Composable memory transactions", 2005). Transactions are *serializable* — the outcome is
//! that of some one-at-a-time order — and *opaque*: even a transaction that will be aborted
//! never sees an inconsistent state, so code inside one may rely on invariants.
//!
//! ## The algorithm: TL2 (Dice, Shalev & Shavit, "Transactional Locking II", 2006)
//!
//! | word | meaning |
//! |---|---|
//! | global clock | a counter; every committing writer takes the next value as its write version |
//! | a variable's `stamp` | `version << 1 \| LOCKED`: the write version of the last commit to it, and whether a committer holds it now |
//! | a variable's value | an `Arc<T>` behind a mutex, so a read copies a whole value (no torn reads) |
//!
//! 1. **Begin**: read the global clock into `rv` (read version).
//! 2. **Read** `x` (not written by us yet): load `x.stamp`, copy the value, load the stamp
//!    again. If it is locked, changed, or its version is newer than `rv`, someone committed to
//!    `x` after we began: abort and rerun. Otherwise every value read so far existed together
//!    at time `rv`: the snapshot is consistent (opacity). Writes go to a private log.
//! 3. **Commit** (only if something was written): lock the written variables' stamps *in the
//!    order of their ids* (a global order, so two committers cannot deadlock); take a write
//!    version `wv` from the clock; check every variable read still has the version we saw
//!    (skipped when `wv == rv + 1`: nobody committed in between); store the new values and
//!    release each stamp with version `wv`. A failed check unlocks and reruns.
//!    A read-only transaction commits without any of this: its reads were all checked
//!    against `rv`.
//!
//! ## Blocking: `retry` and `or_else`
//!
//! [`retry`] abandons the run and blocks until some variable the transaction read changes,
//! then reruns it. The transaction hangs its own wake-up [`Event`] on each variable it read,
//! then re-checks their versions (so a commit that came just before cannot be missed); a
//! committer, after publishing, wakes every event hung on the variables it wrote. Wake-ups are
//! driven by commits only, never by polling. [`Transaction::or_else`] runs its first
//! alternative; if that retries, its writes are dropped and the second alternative runs; if
//! both retry, the whole transaction waits on everything either one read.
//!
//! This module is for threads of one process: values are arbitrary Rust types.

use super::lock;
use crate::sync::{Backoff, Event, EventMode, Mutex};
use std::any::Any;
use std::fmt;
use std::sync::Arc;
// The clock and ids are process-wide statics, so std atomics (loom's cannot live in
// statics); the STM is not among the loom models.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The global version clock.
static CLOCK: AtomicU64 = AtomicU64::new(0);
/// Variable ids: the global lock order.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const LOCKED: u64 = 1;

type AnyValue = Arc<dyn Any + Send + Sync>;

struct VarCore<T> {
    id: u64,
    stamp: AtomicU64,
    value: Mutex<Arc<T>>,
    waiters: Mutex<Vec<Arc<Event>>>,
    /// Retrying transactions registered on `waiters` and not yet gone: a committer locks
    /// `waiters` only when this is non-zero (store-then-load with the stamp, SeqCst).
    n_waiters: AtomicU64,
}

/// What a transaction needs from a variable, whatever its type.
trait AnyVar: Send + Sync {
    fn stamp(&self) -> &AtomicU64;
    fn waiters(&self) -> &Mutex<Vec<Arc<Event>>>;
    fn n_waiters(&self) -> &AtomicU64;
    fn store(&self, value: AnyValue);
}

impl<T: Any + Send + Sync> AnyVar for VarCore<T> {
    fn stamp(&self) -> &AtomicU64 {
        &self.stamp
    }
    fn waiters(&self) -> &Mutex<Vec<Arc<Event>>> {
        &self.waiters
    }
    fn n_waiters(&self) -> &AtomicU64 {
        &self.n_waiters
    }
    fn store(&self, value: AnyValue) {
        let v = value.downcast::<T>().unwrap_or_else(|_| unreachable!("logged under its own id"));
        *lock(&self.value) = v;
    }
}

/// A transactional variable holding a `T`. Cloning gives another handle to the same variable.
///
/// ```
/// use ipckit::coord::stm::{TVar, atomically};
///
/// let a = TVar::new(10);
/// let b = TVar::new(0);
/// atomically(|tx| {
///     let x = tx.read(&a)?;
///     tx.write(&a, x - 3)?;
///     tx.modify(&b, |y| y + 3)
/// });
/// assert_eq!((a.read_atomic(), b.read_atomic()), (7, 3));
/// ```
pub struct TVar<T> {
    core: Arc<VarCore<T>>,
}

impl<T> Clone for TVar<T> {
    fn clone(&self) -> Self {
        TVar { core: self.core.clone() }
    }
}

impl<T: Clone + Send + Sync + 'static> TVar<T> {
    /// A new variable holding `value`.
    pub fn new(value: T) -> Self {
        TVar {
            core: Arc::new(VarCore {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                stamp: AtomicU64::new(0),
                value: Mutex::new(Arc::new(value)),
                waiters: Mutex::new(Vec::new()),
                n_waiters: AtomicU64::new(0),
            }),
        }
    }

    /// The current value, read in a transaction of its own.
    pub fn read_atomic(&self) -> T {
        atomically(|tx| tx.read(self))
    }
}

impl<T: fmt::Debug + Clone + Send + Sync + 'static> fmt::Debug for TVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TVar").field("id", &self.core.id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Conflict,
    Retry,
}

/// Control flow out of a transaction body: propagate it with `?`. It says the run is over —
/// because of a conflicting commit (the transaction reruns at once) or because the body
/// called [`retry`] (it reruns once a variable it read changes). Never an error for the
/// caller of [`atomically`]: it does not escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StmControl(Reason);

impl fmt::Display for StmControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Reason::Conflict => "transaction conflicted with a commit and must rerun",
            Reason::Retry => "transaction called retry",
        })
    }
}

impl std::error::Error for StmControl {}

/// What a transaction body returns.
pub type StmResult<T> = Result<T, StmControl>;

/// [`atomically_timeout`]: the transaction kept retrying until the time ran out
/// (`ETIMEDOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the transaction was still retrying when the timeout passed (ETIMEDOUT)")]
pub struct StmTimedOut;

/// Abandons this run of the transaction; [`atomically`] blocks until a variable the run read
/// is changed by a commit, then reruns the body. Inside [`Transaction::or_else`], switches to
/// the other alternative.
///
/// ```
/// use ipckit::coord::stm::{TVar, atomically, retry};
///
/// let stock = TVar::new(1u32);
/// // Take one item, waiting while there is none.
/// atomically(|tx| {
///     let n = tx.read(&stock)?;
///     if n == 0 {
///         return retry();
///     }
///     tx.write(&stock, n - 1)
/// });
/// assert_eq!(stock.read_atomic(), 0);
/// ```
pub fn retry<T>() -> StmResult<T> {
    Err(StmControl(Reason::Retry))
}

/// One run of a transaction body: the snapshot time, the read set and the write log.
pub struct Transaction {
    rv: u64,
    /// (id, version seen, variable); a variable read twice may appear twice (harmless: both
    /// entries hold the same version, or the second read conflicted).
    reads: Vec<(u64, u64, Arc<dyn AnyVar>)>,
    /// (id, variable, new value), one entry per variable. Transactions touch few variables,
    /// so vectors with linear search beat hash maps (no hashing, one allocation each).
    writes: Vec<(u64, Arc<dyn AnyVar>, AnyValue)>,
    /// A read conflicted: this run may not commit, whatever the body did with the error.
    doomed: bool,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("read_version", &self.rv)
            .field("reads", &self.reads.len())
            .field("writes", &self.writes.len())
            .finish()
    }
}

impl Transaction {
    fn begin() -> Self {
        Transaction {
            // Acquire: pairs with the committers' stamp releases; see `read`.
            rv: CLOCK.load(Ordering::Acquire),
            reads: Vec::new(),
            writes: Vec::new(),
            doomed: false,
        }
    }

    fn conflict<T>(&mut self) -> StmResult<T> {
        self.doomed = true;
        Err(StmControl(Reason::Conflict))
    }

    /// Reads `var` as of this transaction's snapshot (or its own earlier write). Errors: a
    /// conflict with a newer commit, to be propagated with `?`.
    pub fn read<T: Clone + Send + Sync + 'static>(&mut self, var: &TVar<T>) -> StmResult<T> {
        let c = &var.core;
        if let Some((_, _, v)) = self.writes.iter().find(|w| w.0 == c.id) {
            return Ok(v.downcast_ref::<T>().expect("logged under its own id").clone());
        }
        let s1 = c.stamp.load(Ordering::Acquire);
        if s1 & LOCKED != 0 || s1 >> 1 > self.rv {
            return self.conflict();
        }
        let value = lock(&c.value).clone();
        // A commit that stored a value we copied locked the stamp first, so it is seen here.
        let s2 = c.stamp.load(Ordering::Acquire);
        if s1 != s2 {
            return self.conflict();
        }
        self.reads.push((c.id, s1 >> 1, c.clone() as Arc<dyn AnyVar>));
        Ok((*value).clone())
    }

    /// Writes `value` to `var` when (if) the transaction commits; later reads in this
    /// transaction see it. Never fails; returns a result to compose with `?`.
    pub fn write<T: Clone + Send + Sync + 'static>(
        &mut self,
        var: &TVar<T>,
        value: T,
    ) -> StmResult<()> {
        let c = &var.core;
        let value: AnyValue = Arc::new(value);
        match self.writes.iter_mut().find(|w| w.0 == c.id) {
            Some(w) => w.2 = value,
            None => self.writes.push((c.id, c.clone() as Arc<dyn AnyVar>, value)),
        }
        Ok(())
    }

    /// Replaces `var`'s value with `f(value)`.
    pub fn modify<T: Clone + Send + Sync + 'static>(
        &mut self,
        var: &TVar<T>,
        f: impl FnOnce(T) -> T,
    ) -> StmResult<()> {
        let v = self.read(var)?;
        self.write(var, f(v))
    }

    /// Runs `first`; if it calls [`retry`], drops its writes and runs `second` instead. If
    /// both retry, the transaction retries, waiting on the variables either one read.
    pub fn or_else<R>(
        &mut self,
        first: impl FnOnce(&mut Transaction) -> StmResult<R>,
        second: impl FnOnce(&mut Transaction) -> StmResult<R>,
    ) -> StmResult<R> {
        let saved = self.writes.clone();
        match first(self) {
            Err(StmControl(Reason::Retry)) => {
                self.writes = saved;
                second(self)
            }
            other => other,
        }
    }

    /// Tries to commit; `false` means rerun.
    fn commit(&mut self) -> bool {
        if self.doomed {
            return false;
        }
        if self.writes.is_empty() {
            return true;
        }
        // The global lock order: by id.
        self.writes.sort_unstable_by_key(|w| w.0);
        for (_, var, _) in &self.writes {
            let mut backoff = Backoff::new();
            loop {
                let s = var.stamp().load(Ordering::Relaxed);
                if s & LOCKED == 0
                    && var
                        .stamp()
                        .compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    break;
                }
                // Held by another committer, which finishes in bounded time and never waits
                // for a lock after ours in the id order: no deadlock.
                backoff.snooze();
            }
        }
        let wv = CLOCK.fetch_add(1, Ordering::AcqRel) + 1;
        if wv != self.rv + 1 {
            for (id, version, var) in &self.reads {
                let s = var.stamp().load(Ordering::Acquire);
                let locked_by_other =
                    s & LOCKED != 0 && self.writes.binary_search_by_key(id, |w| w.0).is_err();
                if locked_by_other || s >> 1 != *version {
                    for (_, var, _) in &self.writes {
                        // Unlock with the old version: only we changed the stamp since.
                        let old = var.stamp().load(Ordering::Relaxed) & !LOCKED;
                        var.stamp().store(old, Ordering::Release);
                    }
                    return false;
                }
            }
        }
        for (_, var, value) in &self.writes {
            var.store(value.clone());
            // Release: publishes the value store to readers that see the new version. SeqCst:
            // the store half of the store-then-load with a retrying waiter (`n_waiters`).
            var.stamp().store(wv << 1, Ordering::SeqCst);
        }
        for (_, var, _) in &self.writes {
            if var.n_waiters().load(Ordering::SeqCst) == 0 {
                continue; // nobody can be waiting on it: see `wait_for_change`
            }
            let waiters = std::mem::take(&mut *lock(var.waiters()));
            for w in waiters {
                w.set();
            }
        }
        true
    }

    /// After `retry`: blocks until a variable this run read has a new version, or the
    /// deadline passes (`false`).
    fn wait_for_change(&self, deadline: Option<Instant>) -> bool {
        if self.reads.is_empty() {
            match deadline {
                None => panic!("retry in a transaction that read no variable blocks forever"),
                Some(d) => {
                    std::thread::sleep(d.saturating_duration_since(Instant::now()));
                    return false;
                }
            }
        }
        let wake = Arc::new(Event::new(EventMode::ManualReset));
        for (_, _, var) in &self.reads {
            var.n_waiters().fetch_add(1, Ordering::SeqCst);
            lock(var.waiters()).push(wake.clone());
        }
        // After hanging the event: a commit that published before we counted ourselves in
        // `n_waiters` is seen here (SeqCst store-then-load on both sides); one that publishes
        // later sees the count, locks `waiters`, finds the event and sets it.
        let changed = self
            .reads
            .iter()
            .any(|(_, version, var)| var.stamp().load(Ordering::SeqCst) >> 1 != *version);
        let woken = changed
            || match deadline {
                None => {
                    wake.wait();
                    true
                }
                Some(d) => wake.wait_timeout(d.saturating_duration_since(Instant::now())),
            };
        for (_, _, var) in &self.reads {
            lock(var.waiters()).retain(|w| !Arc::ptr_eq(w, &wake));
            var.n_waiters().fetch_sub(1, Ordering::Relaxed);
        }
        woken
    }
}

fn run<R>(
    mut body: impl FnMut(&mut Transaction) -> StmResult<R>,
    deadline: Option<Instant>,
) -> Result<R, StmTimedOut> {
    let mut backoff = Backoff::new();
    loop {
        let mut tx = Transaction::begin();
        match body(&mut tx) {
            Ok(r) if tx.commit() => return Ok(r),
            Ok(_) | Err(StmControl(Reason::Conflict)) => backoff.snooze(),
            Err(StmControl(Reason::Retry)) => {
                // A retry decided on an inconsistent view must not block: rerun instead.
                if tx.doomed {
                    continue;
                }
                if !tx.wait_for_change(deadline) {
                    return Err(StmTimedOut);
                }
                backoff.reset();
            }
        }
    }
}

/// Runs `body` as one transaction, rerunning it after conflicts and after [`retry`] (then
/// only once a variable it read has changed), and returns its result once it commits. Blocks
/// as long as the body keeps retrying.
///
/// # Panics
///
/// If the body retries without having read any variable (it could never be woken).
pub fn atomically<R>(body: impl FnMut(&mut Transaction) -> StmResult<R>) -> R {
    run(body, None).unwrap_or_else(|_| unreachable!("no deadline"))
}

/// Like [`atomically`], but gives up when the body is still retrying after `timeout`.
/// Errors: [`StmTimedOut`] (nothing was committed).
pub fn atomically_timeout<R>(
    timeout: Duration,
    body: impl FnMut(&mut Transaction) -> StmResult<R>,
) -> Result<R, StmTimedOut> {
    run(body, Some(Instant::now() + timeout))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use rand::Rng;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    fn transfer(
        tx: &mut Transaction,
        from: &TVar<i64>,
        to: &TVar<i64>,
        amount: i64,
    ) -> StmResult<()> {
        let f = tx.read(from)?;
        if f < amount {
            return retry();
        }
        tx.write(from, f - amount)?;
        tx.modify(to, |t| t + amount)
    }

    #[test]
    fn bank_total_is_preserved_and_no_balance_goes_negative() {
        const ACCOUNTS: usize = 6;
        const START: i64 = 100;
        let accounts: Arc<Vec<TVar<i64>>> =
            Arc::new((0..ACCOUNTS).map(|_| TVar::new(START)).collect());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let auditor = {
            let (acc, stop) = (accounts.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut audits = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Checked *inside* the transaction: opacity means even a run that will
                    // abort never sees money in flight.
                    atomically(|tx| {
                        let mut sum = 0;
                        for a in acc.iter() {
                            let b = tx.read(a)?;
                            assert!(b >= 0, "negative balance {b}");
                            sum += b;
                        }
                        assert_eq!(sum, START * ACCOUNTS as i64, "money created or lost");
                        Ok(())
                    });
                    audits += 1;
                }
                audits
            })
        };
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let acc = accounts.clone();
                std::thread::spawn(move || {
                    let mut rng = rand::thread_rng();
                    let mut done = 0;
                    for _ in 0..3_000 {
                        let (i, j) = (rng.gen_range(0..ACCOUNTS), rng.gen_range(0..ACCOUNTS));
                        if i == j {
                            continue;
                        }
                        let amount = rng.gen_range(1..60);
                        // Transfer if the money is there, otherwise skip: or_else.
                        let moved = atomically(|tx| {
                            tx.or_else(
                                |tx| transfer(tx, &acc[i], &acc[j], amount).map(|_| true),
                                |_| Ok(false),
                            )
                        });
                        done += moved as u32;
                    }
                    done
                })
            })
            .collect();
        let moved: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        assert!(auditor.join().unwrap() > 0);
        assert!(moved > 0);
        let total: i64 = accounts.iter().map(|a| a.read_atomic()).sum();
        assert_eq!(total, START * ACCOUNTS as i64);
    }

    #[test]
    fn concurrent_increments_are_serializable() {
        let c = TVar::new(0u64);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        atomically(|tx| tx.modify(&c, |v| v + 1));
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.read_atomic(), 8_000);
    }

    #[test]
    fn retry_blocks_until_a_commit_changes_what_it_read() {
        let x = TVar::new(0u32);
        let unrelated = TVar::new(0u32);
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx_done, rx_done) = mpsc::channel();
        let waiter = {
            let (x, runs) = (x.clone(), runs.clone());
            std::thread::spawn(move || {
                let v = atomically_timeout(Duration::from_secs(20), |tx| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let v = tx.read(&x)?;
                    if v < 3 { retry() } else { Ok(v) }
                });
                tx_done.send(v).unwrap();
            })
        };
        for _ in 0..50 {
            atomically(|tx| tx.modify(&unrelated, |v| v + 1));
        }
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            atomically(|tx| tx.modify(&x, |v| v + 1));
        }
        assert_eq!(rx_done.recv_timeout(Duration::from_secs(20)).unwrap(), Ok(3));
        waiter.join().unwrap();
        // One run per commit to `x` (plus the first, plus rare conflicts): commits to other
        // variables do not wake it, and it never polls.
        let n = runs.load(Ordering::SeqCst);
        assert!((2..=8).contains(&n), "the body ran {n} times");
    }

    #[test]
    fn or_else_takes_the_second_branch_and_drops_the_first_writes() {
        let a = TVar::new(0i64);
        let b = TVar::new(5i64);
        let log = TVar::new(0i64);
        let got = atomically(|tx| {
            tx.or_else(
                |tx| {
                    tx.write(&log, 99)?; // dropped: this branch retries
                    transfer(tx, &a, &b, 1).map(|_| "a")
                },
                |tx| transfer(tx, &b, &a, 1).map(|_| "b"),
            )
        });
        assert_eq!(got, "b");
        assert_eq!((a.read_atomic(), b.read_atomic(), log.read_atomic()), (1, 4, 0));
        // Both branches retry: the whole transaction waits, here until the timeout.
        let r = atomically_timeout(Duration::from_millis(20), |tx| {
            tx.or_else(|tx| transfer(tx, &a, &b, 10), |tx| transfer(tx, &b, &a, 10))
        });
        assert_eq!(r, Err(StmTimedOut));
    }
}
