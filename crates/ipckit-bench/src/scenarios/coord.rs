//! `bounded-buffer` and `stm-transfer`: ipckit's coordination structures next to their peers.
//!
//! `bounded-buffer` moves items from producer threads to consumer threads through a buffer of
//! 64 slots: ipckit's monitor `BoundedBuffer`, its lock-free `SlotBuffer` (also read in
//! place with `take_with`, which no channel offers),
//! `crossbeam_channel::bounded` and `std::sync::mpsc::sync_channel` (single consumer: for
//! 2→2 its receiver is shared behind a `std::sync::Mutex`, which is how one would have to use
//! it). `stm-transfer` runs random transfers between 64 accounts on 2 threads: ipckit's STM
//! against a bank with one `std::sync::Mutex` per account (locked in index order) and one with
//! a single global `std::sync::Mutex`.

use crate::harness::{Report, median};
use ipckit::coord::stm::{TVar, atomically};
use ipckit::coord::{BoundedBuffer, SlotBuffer};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const CAPACITY: usize = 64;
const SAMPLES: usize = 5;

/// A blocking bounded channel, whatever the implementation.
trait Chan<T>: Send + Sync + 'static {
    fn put(&self, t: T);
    fn take(&self) -> T;
    /// Takes an item and looks at it (by default: moved out, then looked at).
    fn take_peek(&self, peek: fn(&T) -> u8) -> u8 {
        peek(&self.take())
    }
}

/// `SlotBuffer` read in place with `take_with`: no copy out of the slot.
struct InPlace<T>(SlotBuffer<T>);

impl<T: Send + 'static> Chan<T> for InPlace<T> {
    fn put(&self, t: T) {
        self.0.put(t)
    }
    fn take(&self) -> T {
        self.0.take()
    }
    fn take_peek(&self, peek: fn(&T) -> u8) -> u8 {
        self.0.take_with(peek)
    }
}

impl<T: Send + 'static> Chan<T> for BoundedBuffer<T> {
    fn put(&self, t: T) {
        BoundedBuffer::put(self, t)
    }
    fn take(&self) -> T {
        BoundedBuffer::take(self)
    }
}

impl<T: Send + 'static> Chan<T> for SlotBuffer<T> {
    fn put(&self, t: T) {
        SlotBuffer::put(self, t)
    }
    fn take(&self) -> T {
        SlotBuffer::take(self)
    }
}

struct Crossbeam<T>(crossbeam_channel::Sender<T>, crossbeam_channel::Receiver<T>);

impl<T: Send + 'static> Chan<T> for Crossbeam<T> {
    fn put(&self, t: T) {
        self.0.send(t).expect("receiver alive");
    }
    fn take(&self) -> T {
        self.1.recv().expect("sender alive")
    }
}

struct Mpsc<T>(std::sync::mpsc::SyncSender<T>, std::sync::Mutex<std::sync::mpsc::Receiver<T>>);

impl<T: Send + 'static> Chan<T> for Mpsc<T> {
    fn put(&self, t: T) {
        self.0.send(t).expect("receiver alive");
    }
    fn take(&self) -> T {
        self.1.lock().expect("not poisoned").recv().expect("sender alive")
    }
}

/// Items per second through `chan`, `pairs` producers and `pairs` consumers, median of
/// `SAMPLES` runs of `items` items each.
fn rate<T: 'static, C: Chan<T>>(
    make: impl Fn() -> C,
    pairs: usize,
    items: u64,
    item: fn(u64) -> T,
    peek: fn(&T) -> u8,
) -> f64 {
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let chan = Arc::new(make());
            let per = items / pairs as u64;
            let t = Instant::now();
            let mut hs = Vec::new();
            for _ in 0..pairs {
                let c = chan.clone();
                hs.push(std::thread::spawn(move || {
                    for i in 0..per {
                        c.put(item(i));
                    }
                }));
                let c = chan.clone();
                hs.push(std::thread::spawn(move || {
                    for _ in 0..per {
                        black_box(c.take_peek(peek));
                    }
                }));
            }
            for h in hs {
                h.join().expect("benchmark thread");
            }
            (per * pairs as u64) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut samples)
}

fn small(i: u64) -> u64 {
    i
}

fn peek_small(v: &u64) -> u8 {
    *v as u8
}

type Page = [u8; 4096];

fn page(i: u64) -> Page {
    let mut p = [0u8; 4096];
    p[0] = i as u8;
    p[4095] = (i >> 8) as u8;
    p
}

fn peek_page(p: &Page) -> u8 {
    p[0] ^ p[4095]
}

fn sizes<T: Send + 'static>(
    r: &mut Report,
    metric: &str,
    items: u64,
    item: fn(u64) -> T,
    peek: fn(&T) -> u8,
) {
    for pairs in [1usize, 2] {
        let m = format!("items/s {metric} {pairs}->{pairs}");
        let v = rate(|| BoundedBuffer::new(CAPACITY), pairs, items, item, peek);
        r.push("BoundedBuffer", &m, v, "1/s");
        let v = rate(|| SlotBuffer::new(CAPACITY), pairs, items, item, peek);
        r.push("SlotBuffer", &m, v, "1/s");
        let v = rate(|| InPlace(SlotBuffer::new(CAPACITY)), pairs, items, item, peek);
        r.push("SlotBuffer take_with (in place)", &m, v, "1/s");
        let v = rate(
            || {
                let (s, rx) = crossbeam_channel::bounded(CAPACITY);
                Crossbeam(s, rx)
            },
            pairs,
            items,
            item,
            peek,
        );
        r.push("crossbeam_channel::bounded", &m, v, "1/s");
        let v = rate(
            || {
                let (s, rx) = std::sync::mpsc::sync_channel(CAPACITY);
                Mpsc(s, std::sync::Mutex::new(rx))
            },
            pairs,
            items,
            item,
            peek,
        );
        let name = if pairs == 1 { "mpsc::sync_channel" } else { "mpsc::sync_channel+Mutex rx" };
        r.push(name, &m, v, "1/s");
    }
}

pub fn bounded_buffer(r: &mut Report) -> anyhow::Result<()> {
    sizes(r, "8B", 400_000, small, peek_small);
    sizes(r, "4KiB", 60_000, page, peek_page);
    Ok(())
}

const ACCOUNTS: usize = 64;
const START: i64 = 1_000;
const TRANSFERS: u64 = 100_000;

/// A small xorshift: the benchmark needs cheap, reproducible pseudo-random account pairs.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn pair(s: &mut u64) -> (usize, usize, i64) {
    let v = next(s);
    let a = (v % ACCOUNTS as u64) as usize;
    let b = ((v >> 16) % (ACCOUNTS as u64 - 1)) as usize;
    let b = if b >= a { b + 1 } else { b };
    (a, b, ((v >> 32) % 50) as i64 + 1)
}

fn transfers_per_sec<B: Send + Sync + 'static>(
    bank: impl Fn() -> B,
    transfer: fn(&B, usize, usize, i64),
    total: fn(&B) -> i64,
) -> f64 {
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let b = Arc::new(bank());
            let t = Instant::now();
            let hs: Vec<_> = (0..2u64)
                .map(|k| {
                    let b = b.clone();
                    std::thread::spawn(move || {
                        let mut s = 0x9e37_79b9_7f4a_7c15 ^ (k + 1);
                        for _ in 0..TRANSFERS / 2 {
                            let (from, to, amount) = pair(&mut s);
                            transfer(&b, from, to, amount);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().expect("benchmark thread");
            }
            let rate = TRANSFERS as f64 / t.elapsed().as_secs_f64();
            assert_eq!(total(&b), START * ACCOUNTS as i64, "money created or lost");
            rate
        })
        .collect();
    median(&mut samples)
}

pub fn stm_transfer(r: &mut Report) -> anyhow::Result<()> {
    let m = "transfers/s 2 threads";
    let v = transfers_per_sec(
        || (0..ACCOUNTS).map(|_| TVar::new(START)).collect::<Vec<_>>(),
        |b, from, to, amount| {
            atomically(|tx| {
                let f = tx.read(&b[from])?;
                if f >= amount {
                    tx.write(&b[from], f - amount)?;
                    tx.modify(&b[to], |t| t + amount)?;
                }
                Ok(())
            })
        },
        |b| b.iter().map(|a| a.read_atomic()).sum(),
    );
    r.push("ipckit stm (TL2)", m, v, "1/s");
    let v = transfers_per_sec(
        || (0..ACCOUNTS).map(|_| std::sync::Mutex::new(START)).collect::<Vec<_>>(),
        |b, from, to, amount| {
            let (lo, hi) = (from.min(to), from.max(to));
            let mut g_lo = b[lo].lock().expect("not poisoned");
            let mut g_hi = b[hi].lock().expect("not poisoned");
            let (f, t) =
                if from == lo { (&mut *g_lo, &mut *g_hi) } else { (&mut *g_hi, &mut *g_lo) };
            if *f >= amount {
                *f -= amount;
                *t += amount;
            }
        },
        |b| b.iter().map(|a| *a.lock().expect("not poisoned")).sum(),
    );
    r.push("std Mutex per account", m, v, "1/s");
    let v = transfers_per_sec(
        || std::sync::Mutex::new(vec![START; ACCOUNTS]),
        |b, from, to, amount| {
            let mut g = b.lock().expect("not poisoned");
            if g[from] >= amount {
                g[from] -= amount;
                g[to] += amount;
            }
        },
        |b| b.lock().expect("not poisoned").iter().sum(),
    );
    r.push("std Mutex, one global", m, v, "1/s");
    Ok(())
}
