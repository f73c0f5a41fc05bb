//! The layout of a message-queue file behind its [`Header`](crate::ns::Header), and the
//! block arena that holds the messages.
//!
//! Every function here that follows an index read from the file checks it first: a corrupt or
//! hostile file yields [`Fault::Corrupt`], never an out-of-bounds access.

use crate::shm::{Mapping, ShmSafe};
use crate::sync::{EventCount, Mutex, RawMutex};
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
/// The version of this layout, in the geometry: a file of another version is refused at open.
pub(super) const LAYOUT: u32 = 2;

/// Offsets inside the kind's state (which starts 64-aligned in the mapping). The two locks
/// and each wait word have cache lines of their own, so that a sender and a receiver running
/// at the same time each write only their own lines. The receive counters share the head
/// lock's line: a receiver writes both, and a sender reads the counters only when it finds
/// the queue full by its last reading.
pub(super) const GEOMETRY_AT: usize = 0;
pub(super) const TAIL_AT: usize = 64;
pub(super) const HEAD_AT: usize = 192;
/// A copy of the head state's `dummy`, readable without the head lock (a hint: see
/// `MessageQueue::nothing_eligible`).
pub(super) const DUMMY_HINT_AT: usize = 252;
pub(super) const RECV_AT: usize = 256;
pub(super) const DATA_WAIT_AT: usize = 320;
pub(super) const SPACE_WAIT_AT: usize = 384;
pub(super) const LINKS_AT: usize = 448;

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
    /// [`LAYOUT`].
    pub layout: u32,
    pub _pad: u32,
}

// SAFETY: repr(C) plain integers, any bit pattern is a value (validated at open), no Drop.
unsafe impl ShmSafe for Geometry {}

/// The senders' side, guarded by the tail lock.
///
/// `tail` is the first block of the last message in the list, or the dummy when the list is
/// empty. The counters are cumulative (they wrap): the queue holds `sent - received`
/// messages and bytes, with `received` in [`RecvCounters`]. A repair recomputes `tail` and
/// the sent counters from the list.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct TailState {
    pub tail: u32,
    pub alloc_hint: u32,
    pub sent_messages: u64,
    pub sent_bytes: u64,
    pub max_bytes: u64,
    pub last_send_pid: u32,
    /// 1: a tail-lock owner died; the state must be rebuilt under both locks before use.
    pub dirty: u32,
    pub last_send_time: u64,
    pub change_time: u64,
    /// The receive counters as last read: a sender re-reads them (a line the receiver
    /// writes) only when these say the queue is full.
    pub seen_recv_messages: u64,
    pub seen_recv_bytes: u64,
}

// SAFETY: repr(C) plain integers; every value is validated before it is followed; no Drop.
unsafe impl ShmSafe for TailState {}

/// The receivers' side, guarded by the head lock.
///
/// `dummy` is the block of the list's sentinel: the first block of the last message taken
/// from the head (the rest of its blocks are freed). The first message in the queue is the
/// one the dummy's `next` names. Senders never write the dummy unless it is also the tail.
///
/// Receivers count what they take in `pending_*` and publish it to the [`RecvCounters`]
/// senders read in batches (when `publish_at` bytes or messages have gathered, or a sender
/// waits for room): a sender that finds the queue full by the published counts takes the
/// head lock and publishes the rest itself before it believes them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadState {
    pub dummy: u32,
    pub last_recv_pid: u32,
    pub last_recv_time: u64,
    pub pending_messages: u64,
    pub pending_bytes: u64,
    /// `max_bytes / 8` (at least 1), kept here by whoever sets `max_bytes`.
    pub publish_at: u64,
}

// SAFETY: repr(C) plain integers; `dummy` is range-checked before use; no Drop.
unsafe impl ShmSafe for HeadState {}

/// Cumulative messages and bytes taken, written by receivers (under the head lock) and read
/// by senders without it.
#[repr(C)]
#[derive(Debug)]
pub(super) struct RecvCounters {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

// SAFETY: repr(C), atomics; a wrong value only makes the queue look fuller or emptier until
// the next repair, which rewrites the sent counters against these; no Drop.
unsafe impl ShmSafe for RecvCounters {}

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
const _: () = assert!(size_of::<Geometry>() <= TAIL_AT);
const _: () = assert!(size_of::<Mutex<TailState>>() <= HEAD_AT - TAIL_AT);
const _: () = assert!(size_of::<Mutex<HeadState>>() <= DUMMY_HINT_AT - HEAD_AT);
const _: () = assert!(RECV_AT + size_of::<RecvCounters>() <= DATA_WAIT_AT);

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
/// `(l + 16 + 63) / 64` blocks, so `cap` bytes in `cap` messages take at most `80 cap / 64`;
/// plus the dummy's block, and one more for the old dummy a receiver that died mid-receive
/// may leave until the next repair.
pub(super) fn arena_blocks(cap: u64) -> u64 {
    (cap * 80).div_ceil(BLOCK as u64) + 2
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

    /// Marks blocks `first..first + k` used or free, a word at a time. Atomic RMWs: the
    /// allocating sender and a freeing receiver may work on the same word at once (only a
    /// sender, or a repair holding both locks, ever sets bits).
    fn set_range(&self, m: &Mapping, first: u32, k: usize, used: bool) {
        let (mut b, end) = (first as usize, first as usize + k);
        while b < end {
            let w = b / 64;
            let hi = end.min((w + 1) * 64);
            let bits = if hi - b == 64 { u64::MAX } else { ((1u64 << (hi - b)) - 1) << (b % 64) };
            let word = m.get::<AtomicU64>(self.bitmap + 8 * w).expect("validated layout");
            if used {
                word.fetch_or(bits, Ordering::AcqRel);
            } else {
                // Release: our reads of these blocks happen before their next owner writes.
                word.fetch_and(!bits, Ordering::Release);
            }
            b = hi;
        }
    }

    fn is_free(&self, m: &Mapping, b: u32) -> bool {
        self.bit_word(m, b).load(Ordering::Acquire) & (1 << (b % 64)) == 0
    }

    fn set_used(&self, m: &Mapping, b: u32, used: bool) {
        self.set_range(m, b, 1, used);
    }

    /// Blocks a queue of `max_bytes` allocates from first (see [`alloc`](Self::alloc)):
    /// room for `max_bytes` of messages of 16 bytes or more, and a largest message.
    pub fn soft_blocks(&self, max_bytes: u64) -> u32 {
        let soft = (4 * max_bytes).div_ceil(BLOCK as u64)
            + blocks_for(self.max_message as usize) as u64
            + 2;
        soft.min(self.active_blocks(max_bytes) as u64) as u32
    }

    /// Allocates `k` blocks among the first `active`: a contiguous run when there is one,
    /// else scattered blocks chained through the links. Returns the first block and whether
    /// the run is contiguous, or `None` when fewer than `k` are free.
    ///
    /// Runs are found next-fit from `hint` within the first `soft` blocks, and only then in
    /// the rest: a queue used in FIFO order cycles through a region a few times the size of
    /// its contents (which stays in the caches), not through the whole arena, which is sized
    /// for the worst case of `max_bytes` empty messages.
    pub fn alloc(
        &self,
        m: &Mapping,
        k: usize,
        (soft, active): (u32, u32),
        hint: &mut u32,
    ) -> Option<(u32, bool)> {
        let active = active.min(self.nblocks);
        let soft = soft.min(active);
        let start = if *hint < soft { *hint } else { 0 };
        let run = self
            .find_run(m, k, start, soft)
            .or_else(|| self.find_run(m, k, 0, (start + k as u32).min(soft)))
            .or_else(|| self.find_run(m, k, soft, active));
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
            let word = self.bit_word(m, b).load(Ordering::Acquire);
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

    /// Frees one block (an old dummy's).
    pub fn free_block(&self, m: &Mapping, b: u32) -> Result<(), Fault> {
        self.check(b)?;
        self.set_used(m, b, false);
        Ok(())
    }

    /// Sets up a fresh (zeroed) arena: block 0 is the dummy of an empty list.
    pub fn init(&self, m: &Mapping) {
        self.header(m, 0).expect("block 0 exists").next.store(NIL, Ordering::Relaxed);
        self.set_used(m, 0, true);
    }

    /// Frees every block of the `len`-byte message at `first` but the first: what stays is
    /// the header block, the list's new dummy.
    pub fn free_tail(&self, m: &Mapping, first: u32, len: usize) -> Result<(), Fault> {
        let k = blocks_for(len);
        if k <= 1 {
            return Ok(());
        }
        if self.contiguous(m, first, len)? {
            self.set_range(m, first + 1, k - 1, false);
            return Ok(());
        }
        let mut b = self.link(m, first)?;
        for i in 1..k {
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

    /// Rebuilds everything but the list itself, holding both locks, after an owner died
    /// mid-update: walks from the dummy, keeps every message that is valid and whose blocks
    /// are not shared with an earlier one, cuts the list at the first that is not, and
    /// recomputes the tail, the sent counters (against the received ones) and the allocation
    /// bitmap, so the blocks of half-sent messages and of a receiver's unfreed dummy are free
    /// again. Returns how many messages were dropped from the end (0 or 1: the cut).
    pub fn rebuild(
        &self,
        m: &Mapping,
        h: &mut HeadState,
        t: &mut TailState,
        recv: &RecvCounters,
    ) -> usize {
        for w in 0..(self.nblocks as usize).div_ceil(64) {
            m.get::<AtomicU64>(self.bitmap + 8 * w)
                .expect("validated layout")
                .store(0, Ordering::Relaxed);
        }
        if self.check(h.dummy).is_err() {
            // Nothing is reachable without a dummy: start an empty list at block 0.
            h.dummy = 0;
            self.header(m, 0).expect("block 0 exists").next.store(NIL, Ordering::Relaxed);
        }
        self.set_used(m, h.dummy, true);
        let (mut prev, mut cur) =
            (h.dummy, self.header(m, h.dummy).expect("checked").next.load(Ordering::Acquire));
        let (mut count, mut used) = (0u64, 0u64);
        let mut cut = 0;
        while cur != NIL {
            match self.claim(m, cur) {
                Ok((len, next)) => {
                    count += 1;
                    used += len as u64;
                    prev = cur;
                    cur = next;
                }
                Err(_) => {
                    cut = 1;
                    self.header(m, prev).expect("claimed").next.store(NIL, Ordering::Release);
                    break;
                }
            }
        }
        t.tail = prev;
        // What the receivers took but did not publish is gone from the list: publish it, so
        // the counts below hold (the list is the truth; the counters follow it).
        recv.bytes.fetch_add(std::mem::take(&mut h.pending_bytes), Ordering::Release);
        recv.messages.fetch_add(std::mem::take(&mut h.pending_messages), Ordering::SeqCst);
        h.publish_at = (t.max_bytes / 8).max(1);
        let (rm, rb) = (recv.messages.load(Ordering::Acquire), recv.bytes.load(Ordering::Acquire));
        t.sent_messages = rm.wrapping_add(count);
        t.sent_bytes = rb.wrapping_add(used);
        t.seen_recv_messages = rm;
        t.seen_recv_bytes = rb;
        t.alloc_hint = 0;
        t.dirty = 0;
        cut
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

/// The senders' lock and state.
pub(super) fn tail(m: &Mapping, state: usize) -> &Mutex<TailState, RawMutex> {
    m.get::<Mutex<TailState>>(state + TAIL_AT).expect("validated layout")
}

/// The receivers' lock and state.
pub(super) fn head(m: &Mapping, state: usize) -> &Mutex<HeadState, RawMutex> {
    m.get::<Mutex<HeadState>>(state + HEAD_AT).expect("validated layout")
}

/// The unlocked copy of the dummy's block.
pub(super) fn dummy_hint(m: &Mapping, state: usize) -> &AtomicU32 {
    m.get::<AtomicU32>(state + DUMMY_HINT_AT).expect("validated layout")
}

/// The receive counters.
pub(super) fn recv_counters(m: &Mapping, state: usize) -> &RecvCounters {
    m.get::<RecvCounters>(state + RECV_AT).expect("validated layout")
}

/// The event count receivers wait on (`which = DATA_WAIT_AT`) or senders (`SPACE_WAIT_AT`).
pub(super) fn wait_word(m: &Mapping, state: usize, which: usize) -> &EventCount {
    m.get::<EventCount>(state + which).expect("validated layout")
}
