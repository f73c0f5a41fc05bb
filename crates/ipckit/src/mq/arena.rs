//! The layout of a message-queue file behind its [`Header`](crate::ns::Header), and the
//! block arena that holds the messages.
//!
//! Every function here that follows an index read from the file checks it first: a corrupt or
//! hostile file yields [`Fault::Corrupt`], never an out-of-bounds access.

use crate::shm::{Mapping, ShmSafe};
use crate::sync::{Mutex, RawMutex};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Bytes per arena block.
pub(super) const BLOCK: usize = 64;
/// Bytes of a message's header, at the start of its first block.
pub(super) const MSG_HEADER: usize = 16;
/// "No block": the end of a list.
pub(super) const NIL: u32 = u32::MAX;
/// Bit 31 of a message's `len` word: its blocks are scattered and chained through the links
/// (clear: one contiguous run from the first block, the links unused).
pub(super) const SCATTERED: u32 = 1 << 31;

/// Offsets inside the kind's state (which starts 64-aligned in the mapping).
pub(super) const GEOMETRY_AT: usize = 0;
pub(super) const LOCK_AT: usize = 64;
pub(super) const DATA_WAIT_AT: usize = 320;
pub(super) const SPACE_WAIT_AT: usize = 384;
pub(super) const LINKS_AT: usize = 448;
/// How many messages may be copied in or out outside the lock at once.
pub(super) const INFLIGHT: usize = 8;

/// Immutable after creation; validated against the file size at every open.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    /// The largest `max_bytes` can ever be set to; the arena is sized for it.
    pub capacity: u64,
    /// Blocks in the arena.
    pub nblocks: u32,
    /// The largest message, in bytes (`MSGMAX`).
    pub max_message: u32,
}

// SAFETY: repr(C) plain integers, any bit pattern is a value (validated at open), no Drop.
unsafe impl ShmSafe for Geometry {}

/// The mutable state of the queue, guarded by the robust mutex.
///
/// `head`/`tail` are block indices of the first blocks of the first and last message
/// (`NIL` when empty). `messages`, `used_bytes` are derived data: the repair after an owner
/// died recomputes them by walking the list.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct Control {
    pub head: u32,
    pub tail: u32,
    pub messages: u64,
    pub used_bytes: u64,
    pub max_bytes: u64,
    pub alloc_hint: u32,
    pub last_send_pid: u32,
    pub last_recv_pid: u32,
    pub _pad: u32,
    pub last_send_time: u64,
    pub last_recv_time: u64,
    pub change_time: u64,
    /// Bytes and messages held by in-flight copies (counted against `max_bytes`).
    pub pending_bytes: u64,
    pub pending_messages: u64,
    /// Messages being copied outside the lock: reserved by a sender and not yet linked, or
    /// unlinked by a receiver and not yet freed.
    pub inflight: [Inflight; INFLIGHT],
}

// SAFETY: repr(C) plain integers; every value is validated before it is followed; no Drop.
unsafe impl ShmSafe for Control {}

/// A message outside the list whose blocks a live thread is copying.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Inflight {
    /// The copying thread's [`ProcessId`](crate::sys::ProcessId) token; 0: the slot is free.
    pub owner: u64,
    /// First block.
    pub first: u32,
    /// Length in bytes.
    pub len: u32,
}

/// A futex word that waiters spin and sleep on, with the flags that tell a changer whether
/// anyone waits (so that, in the common case of nobody waiting, a send or receive does not
/// touch this cache line at all except to read it).
///
/// | word | meaning | written |
/// |---|---|---|
/// | `seq` | bumped by a change some waiter waits for; the futex word | under the queue lock |
/// | `watchers` | 1: someone will spin or sleep on `seq`: the next change must bump it | under the queue lock |
/// | `sleepers` | 1: someone is (about to be) asleep on `seq`: the change must `futex_wake` | by the sleeper without the lock (Dekker with `seq`) |
#[repr(C)]
#[derive(Debug)]
pub(super) struct WaitWord {
    pub seq: AtomicU32,
    pub watchers: AtomicU32,
    pub sleepers: AtomicU32,
}

// SAFETY: repr(C), two atomics; any value only causes an extra or a missing wake-up, and
// sleepers use bounded timeouts; no Drop.
unsafe impl ShmSafe for WaitWord {}

/// The header of a message, in its first block.
#[repr(C)]
#[derive(Debug)]
pub(super) struct MsgHeader {
    pub mtype: AtomicI64,
    /// Length in bytes, with [`SCATTERED`] in bit 31.
    pub len: AtomicU32,
    /// First block of the next message in FIFO order, or `NIL`.
    pub next: AtomicU32,
}

// SAFETY: repr(C), atomics only; values are validated before use; no Drop.
unsafe impl ShmSafe for MsgHeader {}

const _: () = assert!(size_of::<MsgHeader>() == MSG_HEADER);
const _: () = assert!(size_of::<Mutex<Control>>() <= DATA_WAIT_AT - LOCK_AT);
const _: () = assert!(size_of::<Geometry>() <= LOCK_AT);

/// What went wrong below the API: the caller maps it into its own error type.
#[derive(Debug)]
pub(super) enum Fault {
    Corrupt(String),
}

/// Blocks needed for a message of `len` bytes.
pub(super) fn blocks_for(len: usize) -> usize {
    (MSG_HEADER + len).div_ceil(BLOCK)
}

/// Blocks an arena needs so that any set of messages the Linux rule admits fits (at most
/// `cap` bytes in at most `cap` messages): each message of `l` bytes takes at most
/// `(l + 16 + 63) / 64` blocks, so `cap` bytes in `cap` messages take at most `80 cap / 64`.
pub(super) fn arena_blocks(cap: u64) -> u64 {
    (cap * 80).div_ceil(BLOCK as u64) + 1
}

/// Where the parts of the state lie, for an arena of `nblocks` blocks: (bitmap, blocks, total).
pub(super) fn layout(nblocks: u32) -> (usize, usize, usize) {
    let n = nblocks as usize;
    let bitmap = (LINKS_AT + 4 * n).next_multiple_of(8);
    let blocks = (bitmap + 8 * n.div_ceil(64)).next_multiple_of(BLOCK);
    (bitmap, blocks, blocks + n * BLOCK)
}

/// A validated view of the arena of one open queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arena {
    pub state: usize,
    pub nblocks: u32,
    pub max_message: u32,
    pub capacity: u64,
    bitmap: usize,
    blocks: usize,
}

impl Arena {
    pub fn new(state: usize, g: Geometry) -> Arena {
        let (bitmap, blocks, _) = layout(g.nblocks);
        Arena {
            state,
            nblocks: g.nblocks,
            max_message: g.max_message,
            capacity: g.capacity,
            bitmap: state + bitmap,
            blocks: state + blocks,
        }
    }

    /// Blocks the allocator may use while `max_bytes` is in force (a prefix of the arena, so
    /// a small queue touches only a few pages of a large arena).
    pub fn active_blocks(&self, max_bytes: u64) -> u32 {
        arena_blocks(max_bytes.min(self.capacity)).min(self.nblocks as u64) as u32
    }

    fn check(&self, b: u32) -> Result<(), Fault> {
        if b < self.nblocks {
            Ok(())
        } else {
            Err(Fault::Corrupt(format!("block index {b} out of range (arena of {})", self.nblocks)))
        }
    }

    fn link_word<'m>(&self, m: &'m Mapping, b: u32) -> &'m AtomicU32 {
        // In bounds: b < nblocks (checked by callers), and the layout was checked at open.
        m.get::<AtomicU32>(self.state + LINKS_AT + 4 * b as usize).expect("validated layout")
    }

    fn bit_word<'m>(&self, m: &'m Mapping, b: u32) -> &'m AtomicU64 {
        m.get::<AtomicU64>(self.bitmap + 8 * (b as usize / 64)).expect("validated layout")
    }

    /// The next block of the message after block `b`.
    pub fn link(&self, m: &Mapping, b: u32) -> Result<u32, Fault> {
        self.check(b)?;
        let n = self.link_word(m, b).load(Ordering::Relaxed);
        self.check(n)?;
        Ok(n)
    }

    /// The header of the message whose first block is `b`.
    pub fn header<'m>(&self, m: &'m Mapping, b: u32) -> Result<&'m MsgHeader, Fault> {
        self.check(b)?;
        Ok(m.get::<MsgHeader>(self.blocks + b as usize * BLOCK).expect("validated layout"))
    }

    /// Reads and validates a message header: (type, length, next).
    pub fn read_header(&self, m: &Mapping, b: u32) -> Result<(i64, usize, u32), Fault> {
        let h = self.header(m, b)?;
        let mtype = h.mtype.load(Ordering::Relaxed);
        let len = h.len.load(Ordering::Relaxed) & !SCATTERED;
        let next = h.next.load(Ordering::Acquire);
        if mtype < 1 {
            return Err(Fault::Corrupt(format!("message at block {b} has type {mtype}")));
        }
        if len > self.max_message {
            return Err(Fault::Corrupt(format!("message at block {b} claims {len} bytes")));
        }
        if next != NIL {
            self.check(next)?;
        }
        Ok((mtype, len as usize, next))
    }

    /// Whether the message at `b` lies in one contiguous run (checked to fit the arena).
    fn contiguous(&self, m: &Mapping, b: u32, len: usize) -> Result<bool, Fault> {
        let scattered = self.header(m, b)?.len.load(Ordering::Relaxed) & SCATTERED != 0;
        if !scattered && b as usize + blocks_for(len) > self.nblocks as usize {
            return Err(Fault::Corrupt(format!("message at block {b} runs past the arena")));
        }
        Ok(!scattered)
    }

    /// Marks blocks `first..first + k` used or free, a word at a time.
    fn set_range(&self, m: &Mapping, first: u32, k: usize, used: bool) {
        let (mut b, end) = (first as usize, first as usize + k);
        while b < end {
            let w = b / 64;
            let hi = end.min((w + 1) * 64);
            let bits = if hi - b == 64 { u64::MAX } else { ((1u64 << (hi - b)) - 1) << (b % 64) };
            let word = m.get::<AtomicU64>(self.bitmap + 8 * w).expect("validated layout");
            let v = word.load(Ordering::Relaxed);
            word.store(if used { v | bits } else { v & !bits }, Ordering::Relaxed);
            b = hi;
        }
    }

    fn is_free(&self, m: &Mapping, b: u32) -> bool {
        self.bit_word(m, b).load(Ordering::Relaxed) & (1 << (b % 64)) == 0
    }

    fn set_used(&self, m: &Mapping, b: u32, used: bool) {
        let w = self.bit_word(m, b);
        let bit = 1u64 << (b % 64);
        let v = w.load(Ordering::Relaxed);
        w.store(if used { v | bit } else { v & !bit }, Ordering::Relaxed);
    }

    /// Allocates `k` blocks among the first `active`: a contiguous run when there is one
    /// (found next-fit from `hint`), else scattered blocks chained through the links. Returns
    /// the first block and whether the run is contiguous, or `None` when fewer than `k` are
    /// free.
    pub fn alloc(&self, m: &Mapping, k: usize, active: u32, hint: &mut u32) -> Option<(u32, bool)> {
        let active = active.min(self.nblocks);
        let start = if *hint < active { *hint } else { 0 };
        let run = self.find_run(m, k, start, active).or_else(|| self.find_run(m, k, 0, active));
        if let Some(first) = run {
            self.set_range(m, first, k, true);
            *hint = first + k as u32;
            return Some((first, true));
        }
        // Fragmented: gather free blocks one by one.
        let mut got = Vec::with_capacity(k);
        let mut b = 0;
        while b < active && got.len() < k {
            if self.is_free(m, b) {
                got.push(b);
            }
            b += 1;
        }
        if got.len() < k {
            return None;
        }
        for (i, &b) in got.iter().enumerate() {
            self.set_used(m, b, true);
            let next = got.get(i + 1).copied().unwrap_or(b);
            self.link_word(m, b).store(next, Ordering::Relaxed);
        }
        Some((got[0], false))
    }

    /// First run of `k` free blocks in `lo..hi`.
    fn find_run(&self, m: &Mapping, k: usize, lo: u32, hi: u32) -> Option<u32> {
        let mut b = lo;
        let mut run_start = lo;
        let mut run = 0usize;
        while b < hi {
            if run >= k {
                break;
            }
            let word = self.bit_word(m, b).load(Ordering::Relaxed);
            if b % 64 == 0 && word == 0 && b + 64 <= hi {
                if run == 0 {
                    run_start = b;
                }
                run += 64;
                b += 64;
                continue;
            }
            if b % 64 == 0 && word == u64::MAX {
                run = 0;
                b += 64;
                continue;
            }
            if word & (1 << (b % 64)) == 0 {
                if run == 0 {
                    run_start = b;
                }
                run += 1;
            } else {
                run = 0;
            }
            b += 1;
        }
        (run >= k).then_some(run_start)
    }

    /// Frees the blocks of the `len`-byte message starting at `first`.
    pub fn free(&self, m: &Mapping, first: u32, len: usize) -> Result<(), Fault> {
        let k = blocks_for(len);
        if self.contiguous(m, first, len)? {
            self.set_range(m, first, k, false);
            return Ok(());
        }
        let mut b = first;
        for i in 0..k {
            self.check(b)?;
            let next = if i + 1 < k { self.link(m, b)? } else { b };
            self.set_used(m, b, false);
            b = next;
        }
        Ok(())
    }

    /// Calls `f(mapping_offset, payload_range)` for each contiguous run of the payload of the
    /// `len`-byte message starting at block `first`, in order, up to `limit` payload bytes.
    pub fn runs(
        &self,
        m: &Mapping,
        first: u32,
        len: usize,
        limit: usize,
        mut f: impl FnMut(usize, std::ops::Range<usize>),
    ) -> Result<(), Fault> {
        let total = MSG_HEADER + len.min(limit);
        self.check(first)?;
        if self.contiguous(m, first, len)? {
            if total > MSG_HEADER {
                f(self.blocks + first as usize * BLOCK + MSG_HEADER, 0..total - MSG_HEADER);
            }
            return Ok(());
        }
        let (mut b, mut i) = (first, 0usize); // block `b` is at position `i` of the chain
        loop {
            // Extend the run while the chain continues with the adjacent block.
            let (mut last, mut count, mut next) = (b, 1usize, NIL);
            while (i + count) * BLOCK < total {
                let n = self.link(m, last)?;
                if n == last + 1 {
                    last = n;
                    count += 1;
                } else {
                    next = n;
                    break;
                }
            }
            let lo = (i * BLOCK).max(MSG_HEADER);
            let hi = ((i + count) * BLOCK).min(total);
            if lo < hi {
                let at = self.blocks + b as usize * BLOCK + (lo - i * BLOCK);
                f(at, lo - MSG_HEADER..hi - MSG_HEADER);
            }
            i += count;
            if i * BLOCK >= total {
                return Ok(());
            }
            b = next;
        }
    }

    /// Rebuilds the derived state from the message list after an owner died mid-update: walks
    /// from `head`, keeps every message that is valid and whose blocks are not shared with
    /// an earlier one, cuts the list at the first that is not, recomputes tail, counts and the
    /// allocation bitmap (so blocks of half-sent or half-freed messages are reclaimed).
    /// Returns how many messages were dropped from the end.
    pub fn repair(&self, m: &Mapping, c: &mut Control) -> usize {
        for w in 0..(self.nblocks as usize).div_ceil(64) {
            m.get::<AtomicU64>(self.bitmap + 8 * w)
                .expect("validated layout")
                .store(0, Ordering::Relaxed);
        }
        let (mut prev, mut cur) = (NIL, c.head);
        let (mut count, mut used) = (0u64, 0u64);
        let mut cut = false;
        while cur != NIL {
            match self.claim(m, cur) {
                Ok((len, next)) => {
                    count += 1;
                    used += len as u64;
                    prev = cur;
                    cur = next;
                }
                Err(_) => {
                    cut = true;
                    if prev == NIL {
                        c.head = NIL;
                    } else if let Ok(h) = self.header(m, prev) {
                        h.next.store(NIL, Ordering::Release);
                    }
                    break;
                }
            }
        }
        c.tail = prev;
        if prev == NIL {
            c.head = NIL;
        }
        c.messages = count;
        c.used_bytes = used;
        c.alloc_hint = 0;
        // In-flight copies: keep those of live threads (their blocks stay theirs), drop the
        // rest (their blocks, not marked above, are free again).
        let (mut pending, mut pending_n) = (0u64, 0u64);
        for slot in c.inflight.iter_mut() {
            if slot.owner == 0 {
                continue;
            }
            let alive = crate::sys::ProcessId::from_token(slot.owner).is_alive();
            if alive && self.claim(m, slot.first).is_ok_and(|(len, _)| len == slot.len as usize) {
                pending += slot.len as u64;
                pending_n += 1;
            } else {
                *slot = Inflight::default();
            }
        }
        c.pending_bytes = pending;
        c.pending_messages = pending_n;
        usize::from(cut)
    }

    /// Frees the in-flight copies whose threads died (outside the lock, so no repair saw
    /// them). Called rarely: by a sender that waited a whole sleep slice for room. Returns
    /// whether anything was freed.
    pub fn sweep_dead(&self, m: &Mapping, c: &mut Control) -> bool {
        let mut freed = false;
        for i in 0..INFLIGHT {
            let slot = c.inflight[i];
            if slot.owner == 0 || crate::sys::ProcessId::from_token(slot.owner).is_alive() {
                continue;
            }
            let _ = self.free(m, slot.first, slot.len as usize);
            c.pending_bytes = c.pending_bytes.saturating_sub(slot.len as u64);
            c.pending_messages = c.pending_messages.saturating_sub(1);
            c.inflight[i] = Inflight::default();
            freed = true;
        }
        freed
    }

    /// Validates the message at `first` and marks its blocks used; fails (marking nothing)
    /// if any block is already used, by an earlier message or earlier in its own chain.
    fn claim(&self, m: &Mapping, first: u32) -> Result<(usize, u32), Fault> {
        let (_, len, next) = self.read_header(m, first)?;
        let k = blocks_for(len);
        if self.contiguous(m, first, len)? {
            if (first..first + k as u32).any(|b| !self.is_free(m, b)) {
                return Err(Fault::Corrupt(format!("message at {first} overlaps another")));
            }
            self.set_range(m, first, k, true);
            return Ok((len, next));
        }
        let mut marked = Vec::with_capacity(k);
        let mut b = first;
        let mut result = Ok((len, next));
        for i in 0..k {
            if let Err(e) = self.check(b) {
                result = Err(e);
                break;
            }
            if !self.is_free(m, b) {
                result = Err(Fault::Corrupt(format!("block {b} belongs to two messages")));
                break;
            }
            self.set_used(m, b, true);
            marked.push(b);
            if i + 1 < k {
                match self.link(m, b) {
                    Ok(n) => b = n,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if result.is_err() {
            for b in marked {
                self.set_used(m, b, false);
            }
        }
        result
    }
}

/// The parts of the state the queue touches on every operation.
pub(super) fn lock(m: &Mapping, state: usize) -> &Mutex<Control, RawMutex> {
    m.get::<Mutex<Control>>(state + LOCK_AT).expect("validated layout")
}

/// The futex word receivers sleep on (`which = DATA_WAIT_AT`) or senders (`SPACE_WAIT_AT`).
pub(super) fn wait_word(m: &Mapping, state: usize, which: usize) -> &WaitWord {
    m.get::<WaitWord>(state + which).expect("validated layout")
}
