//! The benchmark scenarios. Each module measures ipckit next to its peers.

mod mq;
mod mutex;
mod sem_pingpong;

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
            name: "mq-rtt-64",
            about: "round trip of a 64-byte message between two processes: ipckit MessageQueue vs SysV, POSIX mq, pipe, socket, polling ring",
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
