//! System V style message queues in user space: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.
//!
//! A message queue is a linked list of typed messages in FIFO order. Processes append to it
//! ([`MessageQueue::send`]) and take from it ([`MessageQueue::recv`]), choosing by type
//! ([`Selector`]); the queue and its messages outlive the processes that made them, until
//! [`MessageQueue::remove`] (`IPC_RMID`). The System V interface dates from Columbus UNIX
//! (1983) and is in every operating-systems course; ipckit keeps its semantics (including
//! Linux's limits: `MSGMNB` = 16 384 bytes per queue, `MSGMAX` = 8192 bytes per message) and
//! implements it in a file of the [namespace](crate::ns) mapped by every user, with no system
//! call on the fast path.
//!
//! ## Layout of the file
//!
//! | part | what |
//! |---|---|
//! | [`Header`](crate::ns::Header) | magic, kind, key, id, `removed` flag |
//! | geometry | capacity, number of blocks, maximum message size, layout version: fixed at creation, checked at open |
//! | tail lock + senders' state | robust mutex; the last message, the allocation hint, cumulative messages and bytes sent, `max_bytes`, last sender and times |
//! | head lock + receivers' state | robust mutex; the dummy (see below), last receiver and time, takes not yet published; an unlocked copy of the dummy |
//! | receive counters | cumulative messages and bytes taken, as published to senders |
//! | `data` wait word | the [`EventCount`] receivers sleep on: a futex word with a sequence number and "watched"/"slept on" flags |
//! | `space` wait word | the same for senders waiting for room |
//! | links | per block, the next block of the same message (used only by scattered messages) |
//! | bitmap | one bit per block: in use |
//! | blocks | 64-byte blocks; a message is a 16-byte header (type, length, next message) and its bytes, over a chain of blocks |
//!
//! Each lock, its state and each wait word have cache lines of their own.
//!
//! ## Two locks
//!
//! The list is Michael and Scott's two-lock queue (PODC 1996) on the block arena: senders
//! hold the tail lock, receivers the head lock, so a sender and a receiver never wait for
//! each other, and each writes mostly its own cache lines. The list starts at a *dummy*:
//! the header block of the last message taken from the front (the rest of its blocks are
//! freed); the first message in the queue is the dummy's `next`. A sender writes a message
//! into free blocks and links it after the tail with one store; a receiver taking the first
//! message copies it out and makes it the new dummy with one store. Only receivers (under
//! the head lock) take messages out and senders only append, so a receiver walks the list
//! and unlinks a message from its middle with the head lock alone; it takes the tail lock
//! too (always after the head lock) only to unlink the last message, whose `next` a sender
//! may be writing.
//!
//! Counts are cumulative: the queue holds the messages and bytes sent (written by senders)
//! minus those taken (by receivers). Receivers count their takes under the head lock and
//! publish them to the receive counters in batches (every `max_bytes / 8`, or at once when a
//! sender waits); senders re-read those counters only when their last reading says the
//! queue is full, and a sender that still finds it full publishes the receivers' pending
//! takes itself under the head lock before it believes the counts: `try_send` never says
//! `Full` while there is room.
//!
//! Blocks are found next-fit from a moving hint within a region a few times `max_bytes`
//! (falling back to the rest of the arena, which is sized for the worst case of `max_bytes`
//! empty messages), so a queue used in FIFO order gets each message in one contiguous run,
//! copies it with one `memcpy`, and cycles through memory that stays in the caches; a
//! fragmented arena falls back to scattered blocks chained through the links. The arena
//! has room for any content the Linux rule admits (at most `max_bytes` bytes in at most
//! `max_bytes` messages), so "full" means exactly what it means on Linux and never
//! "fragmented".
//!
//! ## Crash safety
//!
//! Every change to the list is one store made under a robust
//! [`Mutex`]: a sender's link (after the message is complete: a release
//! store), a receiver's new dummy or unlink (after the copy out). A process killed at any
//! instruction therefore leaves every message either wholly in the list or wholly out of
//! it; what it leaves behind is derived data (the tail, the counts, the allocation bitmap).
//! When either lock's owner died, the next locker rebuilds all of it by walking the list
//! from the dummy (validating every index), holding both locks: a receiver finding the head
//! lock's owner dead takes the tail lock too; a sender finding the tail lock's owner dead
//! marks its state dirty, unlocks, and takes both locks in order (a receiver holding the
//! head lock may be waiting for the tail lock). A sender that finds the queue full also
//! takes the head lock (to publish pending takes), so a receiver that died holding it is
//! found even when nobody else receives.
//!
//! ## Waiting
//!
//! A receiver that finds no eligible message spins, without a lock, on the `next` of the
//! last message it saw: the sender's link itself ends the spin. (Its first look is made
//! without the lock too, from an unlocked copy of the dummy, so that a receiver that finds
//! nothing does not take the head lock from one about to take a message.) A sender waiting
//! for room spins on the receive counters. Spinning adapts per thread (`sync`'s
//! `spin_until`); when it does not pay — the peer shares our CPU — the waiter yields the CPU
//! once, which runs the peer at once. Only then does the waiter register on the wait
//! word, an [`EventCount`]: it watches the word, looks at the queue again under the lock,
//! and sleeps on the word. A changer advances the word after its change — a plain read
//! while nobody watches — and calls `futex_wake` only if someone sleeps, after unlocking.
//! So while the peer keeps up, nobody writes a wait word and nobody makes a system call. Sleeps last at most 100 ms before re-checking, so a
//! process that dies between changing the queue and waking anyone strands nobody.
//! [`MessageQueue::remove`] sets the `removed` flag, bumps both words and wakes everyone,
//! who then return [`RecvError::Removed`] / [`SendError::Removed`] (`EIDRM`).
//!
//! ```
//! use ipckit::mq::{MessageQueue, Selector};
//! use ipckit::ns::{Key, Namespace};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let ns = Namespace::at(dir.path()).unwrap();
//! let q = MessageQueue::create(&ns, Key(42), 0o600).unwrap();
//! q.send(2, b"second kind").unwrap();
//! q.send(1, b"first kind").unwrap();
//! let m = q.recv(Selector::Type(1), 100).unwrap();
//! assert_eq!((m.mtype, &m.data[..]), (1, &b"first kind"[..]));
//! assert_eq!(q.recv(Selector::Any, 100).unwrap().data, b"second kind");
//! assert!(matches!(q.try_recv(Selector::Any, 100), Err(ipckit::mq::RecvError::NoMessage)));
//! q.remove().unwrap();
//! ```

#![allow(unsafe_code)] // SAFETY obligations are documented at each block (only ShmSafe impls).

mod arena;
mod endpoint;

pub use endpoint::QueueEndpoint;

use crate::ns::{
    CreateMode, Entry, Key, Namespace, ObjectError, ObjectFile, ObjectKind, OpenAccess,
};
use crate::sync::{EventCount, LockError, Mutex, MutexGuard, Ticket};
use crate::sys;
use arena::{Arena, Fault, Geometry, HeadState, NIL, RecvCounters, TailState};
use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Default bytes a queue may hold (`MSGMNB` on Linux).
pub const DEFAULT_MAX_BYTES: u64 = 16_384;
/// Default largest message (`MSGMAX` on Linux).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 8192;
/// Default capacity: how far `max_bytes` may later be raised ([`MessageQueue::set_max_bytes`]).
pub const DEFAULT_CAPACITY: u64 = 65_536;
/// The largest capacity a queue may be created with (its file needs 80 bytes per byte of
/// capacity, most of them never touched unless the queue fills with tiny messages).
pub const MAX_CAPACITY: u64 = 16 << 20;

/// How long a sleeper sleeps at most before re-checking the queue.
const SLEEP_SLICE: Duration = Duration::from_millis(100);
/// How long a waiter spins before it sleeps.
const SPIN: Duration = Duration::from_micros(30);

/// Where a receive puts the bytes.
enum Out<'b> {
    /// A growable buffer, resized to the message.
    Vec(&'b mut Vec<u8>),
    /// The caller's slice, at least as long as the message (or truncation was asked for).
    Slice(&'b mut [u8]),
}

/// How [`MessageQueue::sleep`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// The sequence changed (or the queue was removed): look again.
    Changed,
    /// A whole sleep slice passed without a change.
    Slept,
    /// The deadline passed.
    Expired,
}

/// What [`MessageQueue::select`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    /// The message (and the message or dummy before it).
    Found((u32, u32)),
    /// Nothing eligible; `last` is the last message seen (or the dummy): the list grows
    /// after it.
    NotFound { last: u32 },
}

/// How [`MessageQueue::append`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    /// Linked; `wake`: a receiver sleeps and must be woken after unlocking.
    Linked { wake: bool },
    /// No free blocks although the counts say there is room (a receiver died mid-receive).
    NoBlocks,
}

/// Parameters of a new queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Bytes the queue may hold (`msg_qbytes`); also the most messages it may hold.
    pub max_bytes: u64,
    /// The largest message (`MSGMAX`).
    pub max_message_size: u32,
    /// The most `max_bytes` may ever be raised to; at least `max_bytes`.
    pub capacity: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl QueueConfig {
    /// The default configuration with `max_bytes` set (capacity raised to fit).
    pub fn with_max_bytes(max_bytes: u64) -> QueueConfig {
        let d = QueueConfig::default();
        QueueConfig { max_bytes, capacity: d.capacity.max(max_bytes), ..d }
    }

    fn validate(&self) -> Result<(), ObjectError> {
        if self.max_bytes == 0 || self.max_bytes > self.capacity {
            return Err(ObjectError::InvalidArgument(format!(
                "max_bytes {} must be in 1..={}",
                self.max_bytes, self.capacity
            )));
        }
        if self.capacity > MAX_CAPACITY {
            return Err(ObjectError::InvalidArgument(format!(
                "capacity {} exceeds {MAX_CAPACITY}",
                self.capacity
            )));
        }
        if self.max_message_size as u64 > self.capacity {
            return Err(ObjectError::InvalidArgument(format!(
                "max_message_size {} exceeds the capacity {}",
                self.max_message_size, self.capacity
            )));
        }
        Ok(())
    }
}

/// Which message [`MessageQueue::recv`] takes (`msgtyp` and `MSG_EXCEPT` of `msgrcv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// The first message (`msgtyp == 0`): the head of the queue, O(1).
    Any,
    /// The first message of this type (`msgtyp > 0`).
    Type(i64),
    /// The first message of any type but this one (`msgtyp > 0` with `MSG_EXCEPT`).
    Except(i64),
    /// The first message of the lowest type at most this (`msgtyp < 0`, as `-t`).
    UpTo(i64),
}

impl Selector {
    fn validate(self) -> Result<(), i64> {
        match self {
            Selector::Any => Ok(()),
            Selector::Type(t) | Selector::Except(t) | Selector::UpTo(t) if t >= 1 => Ok(()),
            Selector::Type(t) | Selector::Except(t) | Selector::UpTo(t) => Err(t),
        }
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its type (>= 1).
    pub mtype: i64,
    /// Its bytes (the first `max_len` only, when truncation was asked for).
    pub data: Vec<u8>,
}

/// How long an operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Until it can proceed (or the queue is removed).
    Block,
    /// Not at all (`IPC_NOWAIT`).
    NoWait,
    /// At most this long.
    Timeout(Duration),
}

impl Wait {
    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Timeout(d) => Some(Instant::now() + d),
            _ => None,
        }
    }
}

/// Why [`MessageQueue::send`] and friends did not send. `Full` and `TimedOut` hand the
/// message back.
#[derive(thiserror::Error)]
pub enum SendError<M> {
    /// `try_send`: the queue is full (`EAGAIN`): the bytes in it plus this message would
    /// exceed `max_bytes`, or it holds `max_bytes` messages already.
    #[error("the message queue is full (EAGAIN)")]
    Full(M),
    /// `send_timeout`: still full when the time ran out (`EAGAIN`).
    #[error("timed out waiting for room in the message queue (EAGAIN)")]
    TimedOut(M),
    /// The type is below 1 (`EINVAL`).
    #[error("invalid message type {0}: types start at 1 (EINVAL)")]
    InvalidType(i64),
    /// The message is longer than the queue's maximum message size or its `max_bytes`
    /// (`EINVAL` on Linux).
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooBig {
        /// The message's length.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The queue was removed, before or while waiting (`EIDRM`).
    #[error("the message queue was removed (EIDRM)")]
    Removed,
    /// The queue was opened read-only (`EACCES`).
    #[error("the message queue was opened read-only (EACCES)")]
    PermissionDenied,
    /// The file's state is not valid (damaged by something other than ipckit).
    #[error("the message queue is corrupt: {0}")]
    Corrupt(String),
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::TimedOut(_) => f.write_str("TimedOut(..)"),
            SendError::InvalidType(t) => write!(f, "InvalidType({t})"),
            SendError::TooBig { len, max } => write!(f, "TooBig {{ len: {len}, max: {max} }}"),
            SendError::Removed => f.write_str("Removed"),
            SendError::PermissionDenied => f.write_str("PermissionDenied"),
            SendError::Corrupt(s) => write!(f, "Corrupt({s:?})"),
        }
    }
}

impl<M> SendError<M> {
    /// The message, when the error hands it back (`Full`, `TimedOut`).
    pub fn into_message(self) -> Option<M> {
        match self {
            SendError::Full(m) | SendError::TimedOut(m) => Some(m),
            _ => None,
        }
    }
}

/// Why [`MessageQueue::recv`] and friends returned no message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// `try_recv`: no eligible message (`ENOMSG`).
    #[error("no message of the requested type (ENOMSG)")]
    NoMessage,
    /// `recv_timeout`: none arrived in time.
    #[error("timed out waiting for a message")]
    TimedOut,
    /// The selected message is longer than `max_len` and truncation was not asked for
    /// (`E2BIG`); it stays in the queue.
    #[error("the message has {len} bytes, more than the {max} asked for (E2BIG)")]
    TooBig {
        /// The message's length.
        len: usize,
        /// `max_len`.
        max: usize,
    },
    /// The selector's type is below 1 (`EINVAL`).
    #[error("invalid message type {0} in the selector: types start at 1 (EINVAL)")]
    InvalidType(i64),
    /// The queue was removed, before or while waiting (`EIDRM`).
    #[error("the message queue was removed (EIDRM)")]
    Removed,
    /// The queue was opened read-only (`EACCES`).
    #[error("the message queue was opened read-only (EACCES)")]
    PermissionDenied,
    /// The file's state is not valid (damaged by something other than ipckit).
    #[error("the message queue is corrupt: {0}")]
    Corrupt(String),
}

/// What `msgctl(IPC_STAT)` tells (`struct msqid_ds`), plus the queue's limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageQueueStat {
    /// Key.
    pub key: Key,
    /// Id.
    pub id: i32,
    /// Owner's user id (the file's owner).
    pub owner_uid: u32,
    /// Creator's user id.
    pub creator_uid: u32,
    /// Creator's process id.
    pub creator_pid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Messages in the queue (`msg_qnum`).
    pub messages: u64,
    /// Bytes of message data in the queue (`msg_cbytes`).
    pub used_bytes: u64,
    /// Bytes the queue may hold (`msg_qbytes`).
    pub max_bytes: u64,
    /// The largest message.
    pub max_message_size: u32,
    /// The most `max_bytes` may be raised to.
    pub capacity: u64,
    /// Process that sent last (`msg_lspid`), 0 if none.
    pub last_send_pid: u32,
    /// Process that received last (`msg_lrpid`), 0 if none.
    pub last_recv_pid: u32,
    /// Time of the last send (`msg_stime`), seconds since the epoch, 0 if none.
    pub last_send_time: u64,
    /// Time of the last receive (`msg_rtime`).
    pub last_recv_time: u64,
    /// Time of creation or the last `set_max_bytes` (`msg_ctime`).
    pub change_time: u64,
    /// True once removed.
    pub removed: bool,
}

/// A System V style message queue (see the [module docs](self)).
#[derive(Debug)]
pub struct MessageQueue {
    obj: ObjectFile,
    arena: Arena,
}

impl MessageQueue {
    /// Creates a queue with the default limits; `AlreadyExists` if `key` is taken
    /// (`msgget(key, IPC_CREAT | IPC_EXCL | mode)`). [`Key::PRIVATE`] always creates.
    pub fn create(ns: &Namespace, key: Key, mode: u32) -> Result<MessageQueue, ObjectError> {
        Self::obtain(ns, key, CreateMode::CreateExclusive, mode, QueueConfig::default())
            .map(|(q, _)| q)
    }

    /// Opens the existing queue with `key` (`msgget(key, 0)`): `NotFound` if there is none,
    /// `PermissionDenied` if its mode does not allow reading and writing.
    pub fn open(ns: &Namespace, key: Key) -> Result<MessageQueue, ObjectError> {
        Self::from_object(ObjectFile::open(ns, ObjectKind::Mq, key, OpenAccess::ReadWrite)?)
    }

    /// Opens the queue with `key`, creating it with the default limits if absent
    /// (`msgget(key, IPC_CREAT | mode)`).
    pub fn open_or_create(
        ns: &Namespace,
        key: Key,
        mode: u32,
    ) -> Result<MessageQueue, ObjectError> {
        Self::obtain(ns, key, CreateMode::OpenOrCreate, mode, QueueConfig::default())
            .map(|(q, _)| q)
    }

    /// The general form of `msgget`: returns the queue and whether this call created it
    /// (with `config`; an existing queue keeps its own limits).
    pub fn obtain(
        ns: &Namespace,
        key: Key,
        how: CreateMode,
        mode: u32,
        config: QueueConfig,
    ) -> Result<(MessageQueue, bool), ObjectError> {
        config.validate()?;
        let nblocks = arena::arena_blocks(config.capacity);
        let nblocks = u32::try_from(nblocks)
            .ok()
            .filter(|&n| n < NIL)
            .ok_or_else(|| ObjectError::InvalidArgument("capacity too large".into()))?;
        let (_, _, size) = arena::layout(nblocks);
        let (obj, created) =
            ObjectFile::obtain(ns, ObjectKind::Mq, key, how, mode, size, |m, state| {
                // Zeroed memory: write the geometry as plain bytes.
                let geometry = Geometry {
                    capacity: config.capacity,
                    nblocks,
                    max_message: config.max_message_size,
                    layout: arena::LAYOUT,
                    _pad: 0,
                };
                let bytes: [u8; size_of::<Geometry>()] = geometry_bytes(geometry);
                m.write(state + arena::GEOMETRY_AT, &bytes).map_err(corrupt_init)?;
                let arena = Arena::new(state, geometry);
                arena.init(m);
                let mut h = arena::head(m, state).lock().map_err(|_| corrupt_init("fresh lock"))?;
                h.publish_at = (config.max_bytes / 8).max(1);
                drop(h);
                let mut t = arena::tail(m, state).lock().map_err(|_| corrupt_init("fresh lock"))?;
                *t = TailState {
                    tail: 0,
                    alloc_hint: 1,
                    sent_messages: 0,
                    sent_bytes: 0,
                    max_bytes: config.max_bytes,
                    last_send_pid: 0,
                    dirty: 0,
                    last_send_time: 0,
                    change_time: sys::unix_time_secs_coarse(),
                    seen_recv_messages: 0,
                    seen_recv_bytes: 0,
                };
                Ok(())
            })?;
        Ok((Self::from_object(obj)?, created))
    }

    /// Opens the queue with id `id`.
    pub fn open_id(ns: &Namespace, id: i32) -> Result<MessageQueue, ObjectError> {
        Self::from_object(ObjectFile::open_id(ns, ObjectKind::Mq, id, OpenAccess::ReadWrite)?)
    }

    /// Opens the queue file at `path` read-write (for `ipckit rm` and friends).
    pub fn open_path(path: &Path) -> Result<MessageQueue, ObjectError> {
        Self::from_object(ObjectFile::open_path(path, ObjectKind::Mq, OpenAccess::ReadWrite)?)
    }

    /// Opens the queue a namespace listing found, with the given access. A read-only queue
    /// allows [`stat`](Self::stat) (a snapshot taken without the lock) but not send/receive.
    pub fn open_entry(entry: &Entry, access: OpenAccess) -> Result<MessageQueue, ObjectError> {
        Self::from_object(ObjectFile::open_path(&entry.path, ObjectKind::Mq, access)?)
    }

    fn from_object(obj: ObjectFile) -> Result<MessageQueue, ObjectError> {
        let state = obj.state_offset();
        let m = obj.mapping();
        let bad = |reason: String| ObjectError::Corrupt { path: obj.path().to_path_buf(), reason };
        let g: Geometry =
            m.read_value(state + arena::GEOMETRY_AT).map_err(|e| bad(e.to_string()))?;
        if g.layout != arena::LAYOUT {
            return Err(bad(format!(
                "queue layout {} (this ipckit reads layout {})",
                g.layout,
                arena::LAYOUT
            )));
        }
        if g.nblocks == 0 || g.nblocks == NIL || g.capacity > MAX_CAPACITY {
            return Err(bad(format!("invalid geometry {g:?}")));
        }
        if arena::arena_blocks(g.capacity) > g.nblocks as u64 || g.max_message as u64 > g.capacity {
            return Err(bad(format!("inconsistent geometry {g:?}")));
        }
        let (_, _, size) = arena::layout(g.nblocks);
        if state + size != m.len() || state % arena::BLOCK != 0 {
            return Err(bad(format!(
                "a queue of {} blocks needs {} bytes, the file has {}",
                g.nblocks,
                state + size,
                m.len()
            )));
        }
        Ok(MessageQueue { arena: Arena::new(state, g), obj })
    }

    /// The key.
    pub fn key(&self) -> Key {
        self.obj.key()
    }

    /// The id.
    pub fn id(&self) -> i32 {
        self.obj.id()
    }

    /// The queue's file.
    pub fn path(&self) -> &Path {
        self.obj.path()
    }

    /// The largest message this queue accepts.
    pub fn max_message_size(&self) -> usize {
        self.arena.max_message as usize
    }

    fn writable(&self) -> bool {
        self.obj.access() == OpenAccess::ReadWrite
    }

    fn tail_lock(&self) -> &Mutex<TailState> {
        arena::tail(self.obj.mapping(), self.arena.state)
    }

    fn head_lock(&self) -> &Mutex<HeadState> {
        arena::head(self.obj.mapping(), self.arena.state)
    }

    fn recv_counters(&self) -> &RecvCounters {
        arena::recv_counters(self.obj.mapping(), self.arena.state)
    }

    fn data_word(&self) -> &EventCount {
        arena::wait_word(self.obj.mapping(), self.arena.state, arena::DATA_WAIT_AT)
    }

    fn space_word(&self) -> &EventCount {
        arena::wait_word(self.obj.mapping(), self.arena.state, arena::SPACE_WAIT_AT)
    }

    // ----- locks -----------------------------------------------------------------------

    /// Locks the receivers' side. If its previous owner died, takes the senders' side too
    /// (always in this order: head, then tail) and rebuilds.
    fn lock_head(&self) -> Result<MutexGuard<'_, HeadState>, Fault> {
        match self.head_lock().lock() {
            Ok(h) => Ok(h),
            Err(LockError::OwnerDied(mut h)) => {
                drop(self.add_tail(&mut h, true)?);
                h.mark_consistent();
                Ok(h)
            }
            Err(e) => Err(Fault::Corrupt(format!("queue head lock: {e}"))),
        }
    }

    /// With the head lock held: takes the tail lock too, and rebuilds if `repair` is asked
    /// for, or the tail's previous owner died or left it dirty.
    fn add_tail<'q>(
        &'q self,
        h: &mut MutexGuard<'q, HeadState>,
        repair: bool,
    ) -> Result<MutexGuard<'q, TailState>, Fault> {
        let (mut t, died) = match self.tail_lock().lock() {
            Ok(t) => (t, false),
            Err(LockError::OwnerDied(t)) => (t, true),
            Err(e) => return Err(Fault::Corrupt(format!("queue tail lock: {e}"))),
        };
        if repair || died || t.dirty != 0 {
            self.arena.rebuild(self.obj.mapping(), h, &mut t, self.recv_counters());
            if died {
                t.mark_consistent();
            }
        }
        Ok(t)
    }

    /// Both locks, head first (rebuilding if either owner died).
    fn lock_both(&self) -> Result<(MutexGuard<'_, HeadState>, MutexGuard<'_, TailState>), Fault> {
        let mut h = self.lock_head()?;
        let t = self.add_tail(&mut h, false)?;
        Ok((h, t))
    }

    /// Locks the senders' side. If its previous owner died, marks the state dirty and
    /// rebuilds under both locks; it cannot simply take the head lock while holding this
    /// one, since a receiver holding the head lock may be waiting for this one.
    fn lock_tail(&self) -> Result<MutexGuard<'_, TailState>, Fault> {
        let t = match self.tail_lock().lock() {
            Ok(t) => t,
            Err(LockError::OwnerDied(mut t)) => {
                t.dirty = 1;
                t.mark_consistent();
                t
            }
            Err(e) => return Err(Fault::Corrupt(format!("queue tail lock: {e}"))),
        };
        if t.dirty == 0 {
            return Ok(t);
        }
        drop(t);
        let (h, t) = self.lock_both()?;
        drop(h);
        Ok(t)
    }

    // ----- send -----------------------------------------------------------------------

    /// Appends a message of type `mtype` (>= 1), blocking while the queue is full (`msgsnd`).
    ///
    /// Errors: `InvalidType`, `TooBig`, `Removed` (also when removed while waiting),
    /// `PermissionDenied`, `Corrupt`.
    pub fn send<M: AsRef<[u8]>>(&self, mtype: i64, msg: M) -> Result<(), SendError<M>> {
        self.send_with(mtype, msg, Wait::Block)
    }

    /// Appends a message without waiting (`IPC_NOWAIT`): `Full(msg)` if there is no room.
    pub fn try_send<M: AsRef<[u8]>>(&self, mtype: i64, msg: M) -> Result<(), SendError<M>> {
        self.send_with(mtype, msg, Wait::NoWait)
    }

    /// Appends a message, waiting at most `timeout` for room: `TimedOut(msg)` otherwise.
    pub fn send_timeout<M: AsRef<[u8]>>(
        &self,
        mtype: i64,
        msg: M,
        timeout: Duration,
    ) -> Result<(), SendError<M>> {
        self.send_with(mtype, msg, Wait::Timeout(timeout))
    }

    /// The general form of send.
    pub fn send_with<M: AsRef<[u8]>>(
        &self,
        mtype: i64,
        msg: M,
        wait: Wait,
    ) -> Result<(), SendError<M>> {
        if mtype < 1 {
            return Err(SendError::InvalidType(mtype));
        }
        let len = msg.as_ref().len();
        if len > self.arena.max_message as usize {
            return Err(SendError::TooBig { len, max: self.arena.max_message as usize });
        }
        if !self.writable() {
            return Err(SendError::PermissionDenied);
        }
        let deadline = wait.deadline();
        let space = self.space_word();
        // Some(seen): registered as a watcher of the space word, about to sleep.
        let mut watching: Option<Ticket> = None;
        // Whether we published the receivers' uncounted takes since we last found no room.
        let mut helped = false;
        let mut rebuilt = false;
        loop {
            let mut t = self.lock_tail().map_err(send_fault)?;
            if self.obj.is_removed() {
                return Err(SendError::Removed);
            }
            if len as u64 > t.max_bytes {
                return Err(SendError::TooBig { len, max: t.max_bytes as usize });
            }
            if self.has_room(&mut t, len as u64) {
                match self.append(&mut t, mtype, msg.as_ref()).map_err(send_fault)? {
                    Appended::Linked { wake } => {
                        drop(t);
                        if wake {
                            self.data_word().wake_all();
                        }
                        return Ok(());
                    }
                    // The counts say there is room but the blocks are not free: a receiver
                    // died before freeing them. Rebuild (once) and try again.
                    Appended::NoBlocks if !rebuilt => {
                        rebuilt = true;
                        t.dirty = 1;
                        continue;
                    }
                    Appended::NoBlocks => {
                        return Err(SendError::Corrupt(
                            "no free blocks although the queue has room".into(),
                        ));
                    }
                }
            }
            if !helped && (wait == Wait::NoWait || watching.is_some()) {
                // Full by the published counts: receivers may have taken messages they have
                // not published yet. Publish them (head lock first: drop ours) and look again.
                drop(t);
                let mut h = self.lock_head().map_err(send_fault)?;
                self.publish_taken(&mut h);
                drop(h);
                helped = true;
                continue;
            }
            if wait == Wait::NoWait {
                return Err(SendError::Full(msg));
            }
            let taken = t.seen_recv_messages;
            drop(t);
            helped = false;
            match watching.take() {
                None => {
                    // Spin on the receivers' counter, which they write anyway; register (and
                    // look again under the lock) only when that does not pay.
                    let r = self.recv_counters();
                    let removed = || self.obj.is_removed();
                    let moved = || r.messages.load(Ordering::Relaxed) != taken || removed();
                    if !crate::sync::spin_or_yield_until(SPIN, moved) {
                        watching = Some(space.watch());
                    }
                }
                Some(seen) => match self.sleep(space, seen, deadline) {
                    Waited::Changed => {}
                    // A receiver that died holding the head lock may owe us room: taking the
                    // lock finds it dead and repairs.
                    // (Our next look publishes under the head lock, which also finds a dead
                    // receiver there and repairs.)
                    Waited::Slept => {}
                    Waited::Expired => return Err(SendError::TimedOut(msg)),
                },
            }
        }
    }

    /// Under the tail lock: whether a `len`-byte message fits by the Linux rule (the bytes
    /// plus `len` at most `max_bytes`, fewer than `max_bytes` messages). Reads the
    /// receivers' counters (a line they write) only when the last reading says no: those
    /// only grow, so an old reading errs on the side of "full".
    fn has_room(&self, t: &mut TailState, len: u64) -> bool {
        let fits = |t: &TailState| {
            let messages = t.sent_messages.wrapping_sub(t.seen_recv_messages);
            let bytes = t.sent_bytes.wrapping_sub(t.seen_recv_bytes);
            bytes.saturating_add(len) <= t.max_bytes && messages < t.max_bytes
        };
        if fits(t) {
            return true;
        }
        // Messages first: a receiver counts bytes, then messages (SeqCst: the Dekker pair
        // of a waiting sender's `watch`).
        let r = self.recv_counters();
        t.seen_recv_messages = r.messages.load(Ordering::SeqCst);
        t.seen_recv_bytes = r.bytes.load(Ordering::SeqCst);
        fits(t)
    }

    /// Under the tail lock, with room checked: allocates blocks, writes the message and
    /// links it after the tail with one store.
    fn append(&self, t: &mut TailState, mtype: i64, data: &[u8]) -> Result<Appended, Fault> {
        let m = self.obj.mapping();
        let a = &self.arena;
        let len = data.len();
        let region = (a.soft_blocks(t.max_bytes), a.active_blocks(t.max_bytes));
        let mut hint = t.alloc_hint;
        let Some((first, contiguous)) = a.alloc(m, arena::blocks_for(len), region, &mut hint)
        else {
            return Ok(Appended::NoBlocks);
        };
        t.alloc_hint = hint;
        let h = a.header(m, first)?;
        h.mtype.store(mtype, Ordering::Relaxed);
        let flag = if contiguous { 0 } else { arena::SCATTERED };
        h.len.store(len as u32 | flag, Ordering::Relaxed);
        h.next.store(NIL, Ordering::Relaxed);
        a.runs(m, first, len, len, |at, r| {
            m.write(at, &data[r]).expect("runs stay inside the arena");
        })?;
        // The link: everything written to the message is complete before it becomes
        // reachable (release), even to a process that repairs after we die here; and it
        // comes before our look at the data word (SeqCst RMW: the Dekker pair of a
        // receiver's `watch`).
        a.header(m, t.tail)?.next.swap(first, Ordering::SeqCst);
        t.tail = first;
        t.sent_messages = t.sent_messages.wrapping_add(1);
        t.sent_bytes = t.sent_bytes.wrapping_add(len as u64);
        set_if_changed(&mut t.last_send_pid, sys::current_pid());
        set_if_changed(&mut t.last_send_time, sys::unix_time_secs_coarse());
        Ok(Appended::Linked { wake: self.data_word().advance() })
    }

    /// Sleeps until the event count moves from `seen` (or the queue is removed, or the
    /// deadline or a slice passes). The caller registered with [`EventCount::watch`] and
    /// looked at the queue again since.
    fn sleep(&self, w: &EventCount, seen: Ticket, deadline: Option<Instant>) -> Waited {
        if self.obj.is_removed() {
            return Waited::Changed; // `remove` interrupts after setting the flag
        }
        let mut slice = SLEEP_SLICE;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Waited::Expired;
            }
            slice = slice.min(d - now);
        }
        if w.sleep(seen, Some(slice)) {
            Waited::Changed
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Waited::Expired
        } else {
            Waited::Slept
        }
    }

    // ----- receive --------------------------------------------------------------------

    /// Takes the first message `selector` picks, blocking until there is one (`msgrcv`).
    ///
    /// Errors: `TooBig` if it is longer than `max_len` (it stays queued), `InvalidType`,
    /// `Removed` (also when removed while waiting), `PermissionDenied`, `Corrupt`.
    pub fn recv(&self, selector: Selector, max_len: usize) -> Result<Message, RecvError> {
        self.recv_with(selector, max_len, false, Wait::Block)
    }

    /// Takes a message without waiting (`IPC_NOWAIT`): `NoMessage` if none is eligible.
    pub fn try_recv(&self, selector: Selector, max_len: usize) -> Result<Message, RecvError> {
        self.recv_with(selector, max_len, false, Wait::NoWait)
    }

    /// Takes a message, waiting at most `timeout`: `TimedOut` otherwise.
    pub fn recv_timeout(
        &self,
        selector: Selector,
        max_len: usize,
        timeout: Duration,
    ) -> Result<Message, RecvError> {
        self.recv_with(selector, max_len, false, Wait::Timeout(timeout))
    }

    /// The general form of receive. With `truncate` (`MSG_NOERROR`) a message longer than
    /// `max_len` is taken and cut to its first `max_len` bytes instead of failing `TooBig`.
    pub fn recv_with(
        &self,
        selector: Selector,
        max_len: usize,
        truncate: bool,
        wait: Wait,
    ) -> Result<Message, RecvError> {
        let mut data = Vec::new();
        let mtype = self.recv_into(selector, &mut data, max_len, truncate, wait)?;
        Ok(Message { mtype, data })
    }

    /// Like [`recv_with`](Self::recv_with), into `buf` (its allocation reused; on success it
    /// holds exactly the message's bytes, on error its contents are unspecified): returns the
    /// type. For loops that receive many messages.
    pub fn recv_into(
        &self,
        selector: Selector,
        buf: &mut Vec<u8>,
        max_len: usize,
        truncate: bool,
        wait: Wait,
    ) -> Result<i64, RecvError> {
        self.receive(selector, Out::Vec(buf), max_len, truncate, wait).map(|(t, _)| t)
    }

    /// Like [`recv_with`](Self::recv_with) with `max_len = buf.len()`, into the caller's
    /// buffer (as `msgrcv` does): returns the type and the number of bytes written.
    pub fn recv_into_slice(
        &self,
        selector: Selector,
        buf: &mut [u8],
        truncate: bool,
        wait: Wait,
    ) -> Result<(i64, usize), RecvError> {
        let max_len = buf.len();
        self.receive(selector, Out::Slice(buf), max_len, truncate, wait)
    }

    fn receive(
        &self,
        selector: Selector,
        mut out: Out<'_>,
        max_len: usize,
        truncate: bool,
        wait: Wait,
    ) -> Result<(i64, usize), RecvError> {
        selector.validate().map_err(RecvError::InvalidType)?;
        if !self.writable() {
            return Err(RecvError::PermissionDenied);
        }
        let deadline = wait.deadline();
        let data = self.data_word();
        // Some(seen): registered as a watcher of the data word, about to sleep.
        let mut watching: Option<Ticket> = None;
        // A first look without the lock: a receiver that would find nothing does not take the
        // head lock from a receiver about to take a message (in a ping-pong over one queue,
        // the peer's reply is taken right after our own send).
        let mut unlocked_look = wait != Wait::NoWait;
        loop {
            if std::mem::take(&mut unlocked_look)
                && let Some(last) = self.nothing_eligible(selector)
            {
                if !self.wait_for_growth(last)? {
                    watching = Some(data.watch());
                }
                continue;
            }
            let h = self.lock_head().map_err(recv_fault)?;
            if self.obj.is_removed() {
                return Err(RecvError::Removed);
            }
            // After registering, SeqCst loads: the Dekker pair of a sender's link.
            let load = if watching.is_some() { Ordering::SeqCst } else { Ordering::Acquire };
            let last = match self.select(&h, selector, load).map_err(recv_fault)? {
                Selected::Found(found) => return self.take(h, found, &mut out, max_len, truncate),
                Selected::NotFound { last } => last,
            };
            if wait == Wait::NoWait {
                return Err(RecvError::NoMessage);
            }
            drop(h);
            match watching.take() {
                None => {
                    if !self.wait_for_growth(last)? {
                        watching = Some(data.watch());
                    }
                }
                Some(seen) => {
                    if self.sleep(data, seen, deadline) == Waited::Expired {
                        return Err(RecvError::TimedOut);
                    }
                }
            }
        }
    }

    /// Spins (without the lock) until a sender links a message after `last` (the last
    /// message seen, or the dummy): the sender's own store ends the spin; then yields once if
    /// spinning does not pay. Returns whether it saw the list grow (or the queue removed).
    /// `last` may be taken and reused meanwhile: then this is only a spurious look.
    fn wait_for_growth(&self, last: u32) -> Result<bool, RecvError> {
        let next = &self.arena.header(self.obj.mapping(), last).map_err(recv_fault)?.next;
        let removed = || self.obj.is_removed();
        let grown = || next.load(Ordering::Relaxed) != NIL || removed();
        Ok(crate::sync::spin_or_yield_until(SPIN, grown))
    }

    /// A look at the list without the head lock, from the unlocked copy of the dummy: the
    /// last message (or dummy) if `selector` seems to find nothing, `None` if it may find
    /// something (or the list is long, or changed under us). Only a hint: the nodes may be
    /// taken and reused while we read them, so every index is checked, and a wrong answer
    /// only costs a spin before the locked look that decides.
    fn nothing_eligible(&self, selector: Selector) -> Option<u32> {
        let m = self.obj.mapping();
        let a = &self.arena;
        let mut last = arena::dummy_hint(m, a.state).load(Ordering::Relaxed);
        let mut cur = a.header(m, last).ok()?.next.load(Ordering::Acquire);
        for _ in 0..16 {
            if cur == NIL {
                return Some(last);
            }
            let (mtype, _, next) = a.read_header(m, cur).ok()?;
            let eligible = match selector {
                Selector::Any => true,
                Selector::Type(t) => mtype == t,
                Selector::Except(t) => mtype != t,
                Selector::UpTo(t) => mtype <= t,
            };
            if eligible {
                return None;
            }
            last = cur;
            cur = next;
        }
        None
    }

    /// Finds the message `selector` picks, holding the head lock: (the message or dummy
    /// before it, the message). Only head-lock holders take messages out, and senders only
    /// append, so the list walked here holds still but for new messages at its end.
    fn select(&self, h: &HeadState, selector: Selector, load: Ordering) -> Result<Selected, Fault> {
        let m = self.obj.mapping();
        let a = &self.arena;
        let mut prev = h.dummy;
        let mut cur = a.header(m, prev)?.next.load(load);
        let mut best: Option<(u32, u32, i64)> = None;
        let mut steps = 0u32;
        while cur != NIL {
            steps += 1;
            if steps > a.nblocks {
                return Err(Fault::Corrupt("the message list has a cycle".into()));
            }
            let (mtype, _, next) = a.read_header(m, cur)?;
            match selector {
                Selector::Any => return Ok(Selected::Found((prev, cur))),
                Selector::Type(t) if mtype == t => return Ok(Selected::Found((prev, cur))),
                Selector::Except(t) if mtype != t => return Ok(Selected::Found((prev, cur))),
                Selector::UpTo(t) if mtype <= t && best.is_none_or(|(_, _, bt)| mtype < bt) => {
                    best = Some((prev, cur, mtype));
                    if mtype == 1 {
                        break; // nothing can be lower
                    }
                }
                _ => {}
            }
            prev = cur;
            cur = if next == NIL { a.header(m, cur)?.next.load(load) } else { next };
        }
        Ok(match best {
            Some((p, c, _)) => Selected::Found((p, c)),
            None => Selected::NotFound { last: prev },
        })
    }

    /// Takes the selected message `cur` (after `prev`) out of the queue, holding the head
    /// lock: the first message by making it the dummy, another by unlinking it from `prev`;
    /// the tail lock is taken too only when the message is (or may be) the last one, whose
    /// `next` a sender may be writing.
    fn take<'q>(
        &'q self,
        mut h: MutexGuard<'q, HeadState>,
        (prev, cur): (u32, u32),
        out: &mut Out<'_>,
        max_len: usize,
        truncate: bool,
    ) -> Result<(i64, usize), RecvError> {
        let m = self.obj.mapping();
        let a = &self.arena;
        let (mtype, len, next) = a.read_header(m, cur).map_err(recv_fault)?;
        let take = self.copy_out(cur, len, out, max_len, truncate)?;
        if prev == h.dummy {
            // The first message. The commit: one store makes it the dummy. Then the old
            // dummy and all but the first block of the message are freed.
            h.dummy = cur;
            arena::dummy_hint(m, a.state).store(cur, Ordering::Relaxed);
            a.free_block(m, prev).map_err(recv_fault)?;
            a.free_tail(m, cur, len).map_err(recv_fault)?;
            return Ok(self.taken(h, None, len, (mtype, take)));
        }
        let t = if next == NIL {
            let mut t = self.add_tail(&mut h, false).map_err(recv_fault)?;
            // Under both locks: nothing is being linked; `cur` is the tail unless a sender
            // linked after it before we took the lock.
            let next = a.header(m, cur).map_err(recv_fault)?.next.load(Ordering::Acquire);
            a.header(m, prev).map_err(recv_fault)?.next.store(next, Ordering::Release);
            if t.tail == cur {
                t.tail = prev;
            }
            Some(t)
        } else {
            // The commit: one store unlinks it.
            a.header(m, prev).map_err(recv_fault)?.next.store(next, Ordering::Release);
            None
        };
        a.free(m, cur, len).map_err(recv_fault)?;
        Ok(self.taken(h, t, len, (mtype, take)))
    }

    /// After a message of `len` bytes left the queue and its blocks were freed: counts it,
    /// unlocks, and wakes the senders if one sleeps; returns `result`.
    fn taken<T>(
        &self,
        mut h: MutexGuard<'_, HeadState>,
        t: Option<MutexGuard<'_, TailState>>,
        len: usize,
        result: T,
    ) -> T {
        let wake = self.count_taken(&mut h, len);
        drop(t);
        drop(h);
        if wake {
            self.space_word().wake_all();
        }
        result
    }

    /// Checks the length of the message at `first` against `max_len` and copies it (or its
    /// first `max_len` bytes, with `truncate`) into `out`; returns the bytes copied.
    fn copy_out(
        &self,
        first: u32,
        len: usize,
        out: &mut Out<'_>,
        max_len: usize,
        truncate: bool,
    ) -> Result<usize, RecvError> {
        if len > max_len && !truncate {
            return Err(RecvError::TooBig { len, max: max_len });
        }
        let take = len.min(max_len);
        let buf: &mut [u8] = match out {
            // Grows (zero-filling) only past what earlier calls left: a reused buffer is not
            // cleared and refilled on every message.
            Out::Vec(v) => {
                v.resize(take, 0);
                &mut v[..]
            }
            Out::Slice(s) => &mut s[..take],
        };
        let m = self.obj.mapping();
        self.arena
            .runs(m, first, len, take, |at, r| {
                m.read(at, &mut buf[r]).expect("runs stay inside the arena");
            })
            .map_err(recv_fault)?;
        Ok(take)
    }

    /// Under the head lock, after a message left the queue: counts it, and publishes the
    /// counts to senders when a batch has gathered or a sender waits for room. Returns
    /// whether a sleeping sender must be woken.
    fn count_taken(&self, h: &mut HeadState, len: usize) -> bool {
        h.pending_messages += 1;
        h.pending_bytes += len as u64;
        set_if_changed(&mut h.last_recv_pid, sys::current_pid());
        set_if_changed(&mut h.last_recv_time, sys::unix_time_secs_coarse());
        let space = self.space_word();
        // A sender registers before it takes the head lock to publish for itself, so the
        // lock orders its flag before this look.
        if space.is_watched()
            || h.pending_bytes >= h.publish_at
            || h.pending_messages >= h.publish_at
        {
            self.publish_taken(h);
            return space.advance();
        }
        false
    }

    /// Under the head lock: publishes what receivers took to the counters senders read,
    /// bytes first, then messages (SeqCst: the Dekker pair of a waiting sender's `watch`).
    fn publish_taken(&self, h: &mut HeadState) {
        if h.pending_messages == 0 {
            return;
        }
        let r = self.recv_counters();
        r.bytes.fetch_add(std::mem::take(&mut h.pending_bytes), Ordering::Release);
        r.messages.fetch_add(std::mem::take(&mut h.pending_messages), Ordering::SeqCst);
    }

    /// A copy of the message at position `index` (0: the head), left in place (like
    /// `msgrcv` with `MSG_COPY`); `None` if the queue holds fewer messages. Never blocks
    /// except on the locks.
    pub fn peek(&self, index: usize) -> Result<Option<Message>, RecvError> {
        if !self.writable() {
            return Err(RecvError::PermissionDenied);
        }
        let (h, _t) = self.lock_both().map_err(recv_fault)?;
        if self.obj.is_removed() {
            return Err(RecvError::Removed);
        }
        let m = self.obj.mapping();
        let a = &self.arena;
        let mut cur = a.header(m, h.dummy).map_err(recv_fault)?.next.load(Ordering::Acquire);
        let mut i = 0usize;
        while cur != NIL {
            if i > a.nblocks as usize {
                return Err(recv_fault(Fault::Corrupt("the message list has a cycle".into())));
            }
            let (mtype, len, next) = a.read_header(m, cur).map_err(recv_fault)?;
            if i == index {
                let mut data = vec![0u8; len];
                a.runs(m, cur, len, len, |at, r| {
                    m.read(at, &mut data[r]).expect("runs stay inside the arena");
                })
                .map_err(recv_fault)?;
                return Ok(Some(Message { mtype, data }));
            }
            i += 1;
            cur = next;
        }
        Ok(None)
    }

    // ----- control --------------------------------------------------------------------

    /// `msgctl(IPC_STAT)`: counts, limits, last sender and receiver. Takes the locks when the
    /// queue is open read-write; a read-only queue gives an unlocked snapshot.
    pub fn stat(&self) -> Result<MessageQueueStat, ObjectError> {
        let r = self.recv_counters();
        let (h, t): (HeadState, TailState) = if self.writable() {
            let (h, t) = self.lock_both().map_err(|e| self.object_fault(e))?;
            (*h, *t)
        } else {
            let m = self.obj.mapping();
            let inner = |at: usize, align: usize| {
                (at + size_of::<crate::sync::RawMutex>()).next_multiple_of(align)
            };
            let fault =
                |e: crate::shm::MappingError| self.object_fault(Fault::Corrupt(e.to_string()));
            let h = m
                .read_value::<HeadState>(inner(
                    self.arena.state + arena::HEAD_AT,
                    align_of::<HeadState>(),
                ))
                .map_err(fault)?;
            let t = m
                .read_value::<TailState>(inner(
                    self.arena.state + arena::TAIL_AT,
                    align_of::<TailState>(),
                ))
                .map_err(fault)?;
            (h, t)
        };
        let (rm, rb) = (r.messages.load(Ordering::Acquire), r.bytes.load(Ordering::Acquire));
        let meta = self.obj.metadata()?;
        let header = self.obj.header();
        use std::os::unix::fs::MetadataExt;
        Ok(MessageQueueStat {
            key: self.key(),
            id: self.id(),
            owner_uid: meta.uid(),
            creator_uid: header.creator_uid.load(Ordering::Relaxed),
            creator_pid: header.creator_pid.load(Ordering::Relaxed),
            mode: meta.mode() & 0o777,
            messages: t
                .sent_messages
                .wrapping_sub(rm)
                .wrapping_sub(h.pending_messages)
                .min(t.max_bytes),
            used_bytes: t
                .sent_bytes
                .wrapping_sub(rb)
                .wrapping_sub(h.pending_bytes)
                .min(t.max_bytes),
            max_bytes: t.max_bytes,
            max_message_size: self.arena.max_message,
            capacity: self.arena.capacity,
            last_send_pid: t.last_send_pid,
            last_recv_pid: h.last_recv_pid,
            last_send_time: t.last_send_time,
            last_recv_time: h.last_recv_time,
            change_time: t.change_time,
            removed: self.obj.is_removed(),
        })
    }

    /// `msgctl(IPC_SET)` of `msg_qbytes`: sets the bytes the queue may hold, in
    /// `1..=capacity` (`InvalidArgument` otherwise; Linux says `EPERM` above `MSGMNB` for
    /// unprivileged callers). Wakes blocked senders, who re-check against the new limit.
    pub fn set_max_bytes(&self, max_bytes: u64) -> Result<(), ObjectError> {
        if max_bytes == 0 || max_bytes > self.arena.capacity {
            return Err(ObjectError::InvalidArgument(format!(
                "max_bytes {max_bytes} must be in 1..={} (the queue's capacity)",
                self.arena.capacity
            )));
        }
        if !self.writable() {
            return Err(ObjectError::PermissionDenied { path: self.path().to_path_buf() });
        }
        let (mut h, mut t) = self.lock_both().map_err(|e| self.object_fault(e))?;
        if self.obj.is_removed() {
            return Err(ObjectError::Removed);
        }
        t.max_bytes = max_bytes;
        h.publish_at = (max_bytes / 8).max(1);
        t.change_time = sys::unix_time_secs_coarse();
        self.obj.header().touch();
        // A waiting sender registered under the tail lock we now hold: it sees this change.
        let wake = self.space_word().advance();
        drop(t);
        drop(h);
        if wake {
            self.space_word().wake_all();
        }
        Ok(())
    }

    /// `msgctl(IPC_RMID)`: removes the queue. Its key is free at once; every blocked sender
    /// and receiver returns `Removed` (`EIDRM`) promptly, and so does every later operation
    /// through a handle opened before. Errors: `PermissionDenied` (not the owner),
    /// `Removed` (already removed).
    pub fn remove(&self) -> Result<(), ObjectError> {
        self.obj.remove()?;
        if self.writable() {
            // Not under the locks: waiters see `removed` or the new sequence, and sleep in
            // bounded slices that re-check `removed` in any case.
            self.data_word().interrupt();
            self.space_word().interrupt();
        }
        Ok(())
    }

    /// True once the queue was removed (by anyone).
    pub fn is_removed(&self) -> bool {
        self.obj.is_removed()
    }

    fn object_fault(&self, f: Fault) -> ObjectError {
        let Fault::Corrupt(reason) = f;
        ObjectError::Corrupt { path: self.path().to_path_buf(), reason }
    }
}

/// Writes `v` only if it differs: a cache line that both processes only read stays in both
/// caches, where a store (even of the same value) would pull it away from the other core.
#[inline]
fn set_if_changed<T: PartialEq>(slot: &mut T, v: T) {
    if *slot != v {
        *slot = v;
    }
}

fn send_fault<M>(f: Fault) -> SendError<M> {
    let Fault::Corrupt(s) = f;
    SendError::Corrupt(s)
}

fn recv_fault(f: Fault) -> RecvError {
    let Fault::Corrupt(s) = f;
    RecvError::Corrupt(s)
}

fn corrupt_init(e: impl fmt::Display) -> ObjectError {
    ObjectError::InvalidArgument(format!("cannot initialize the queue: {e}"))
}

fn geometry_bytes(g: Geometry) -> [u8; size_of::<Geometry>()] {
    let mut b = [0u8; size_of::<Geometry>()];
    b[0..8].copy_from_slice(&g.capacity.to_ne_bytes());
    b[8..12].copy_from_slice(&g.nblocks.to_ne_bytes());
    b[12..16].copy_from_slice(&g.max_message.to_ne_bytes());
    b[16..20].copy_from_slice(&g.layout.to_ne_bytes());
    b
}

#[cfg(test)]
mod tests;
