//! The benchmark scenarios. Each module measures ipckit next to its peers.

mod coord;
mod deadlock;
mod locks;
mod mq;
mod mutex;
mod pipe_vs_socket;
mod sem_pingpong;
mod semop;
mod shm_attach;

use crate::harness::Report;

/// A named benchmark.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&mut Report) -> anyhow::Result<()>,
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "mutex-uncontended",
            about: "lock+unlock, one thread: ipckit Mutex vs std and parking_lot",
            run: mutex::uncontended,
        },
        Scenario {
            name: "mutex-contended",
            about: "2 threads hammering one lock: lock/unlock pairs per second",
            run: mutex::contended,
        },
        Scenario {
            name: "sem-pingpong",
            about: "round trip between two processes: ipckit Semaphore, sem_t, SysV semop, pipes",
            run: sem_pingpong::run,
        },
        Scenario {
            name: "shm-attach",
            about: "segment create+attach+detach, and attach of an existing one, vs System V shm",
            run: shm_attach::run,
        },
        Scenario {
            name: "deadlock-detect",
            about: "matrix detection, 1000x10 / 10000x100 / 100000x10: ipckit vs the textbook rescan",
            run: deadlock::detect_bench,
        },
        Scenario {
            name: "graph-cycles",
            about: "resource-allocation graph with 1,000,000 edges: cycles and deadlocked processes",
            run: deadlock::graph_bench,
        },
        Scenario {
            name: "spin-vs-mutex",
            about: "TAS, TTAS, ticket, MCS vs sleeping mutexes: 1/2 threads, short/long sections",
            run: locks::spin_vs_mutex,
        },
        Scenario {
            name: "rwlock-read-heavy",
            about: "1% writes: each RwLock policy vs std and parking_lot, 1/2 threads",
            run: locks::rwlock_read_heavy,
        },
        Scenario {
            name: "rwlock-write-heavy",
            about: "50% writes: each RwLock policy vs std and parking_lot, 1/2 threads",
            run: locks::rwlock_write_heavy,
        },
        Scenario {
            name: "counter",
            about: "hits++ under a mutex vs an atomic increment, 1/2 threads",
            run: locks::counter,
        },
        Scenario {
            name: "pipe-vs-socket",
            about: "framed messages between two processes: pipe pair, Unix stream, TCP, UDP (64 B round trip, 4 KiB throughput)",
            run: pipe_vs_socket::run,
        },
        Scenario {
            name: "semop-uncontended",
            about: "one process, P then V: ipckit SemaphoreSet::apply vs SysV semop, sem_t",
            run: semop::uncontended,
        },
        Scenario {
            name: "semop-pingpong",
            about: "round trip between two processes: SemaphoreSet::apply vs SysV semop, sem_t",
            run: semop::pingpong,
        },
        Scenario {
            name: "bounded-buffer",
            about: "1->1 and 2->2 threads, 8 B and 4 KiB items: BoundedBuffer, SlotBuffer, crossbeam, mpsc",
            run: coord::bounded_buffer,
        },
        Scenario {
            name: "stm-transfer",
            about: "random transfers among 64 accounts, 2 threads: ipckit STM vs mutex banks",
            run: coord::stm_transfer,
        },
        Scenario {
            name: "mq-rtt-64",
            about: "round trip of a 64-byte message between two processes: ipckit MessageQueue vs SysV, POSIX mq, pipe, socket, iceoryx2, polling ring",
            run: mq::rtt_64,
        },
        Scenario {
            name: "mq-throughput-64",
            about: "one producer, one consumer process, 64-byte messages: messages/s and MB/s",
            run: mq::throughput_64,
        },
        Scenario {
            name: "mq-throughput-4k",
            about: "one producer, one consumer process, 4 KiB messages: messages/s and MB/s",
            run: mq::throughput_4k,
        },
    ]
}
