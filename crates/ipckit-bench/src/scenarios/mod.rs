//! The benchmark scenarios. Each module measures ipckit next to its peers.

mod coord;
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
            name: "bounded-buffer",
            about: "1->1 and 2->2 threads, 8 B and 4 KiB items: BoundedBuffer, SlotBuffer, crossbeam, mpsc",
            run: coord::bounded_buffer,
        },
        Scenario {
            name: "stm-transfer",
            about: "random transfers among 64 accounts, 2 threads: ipckit STM vs mutex banks",
            run: coord::stm_transfer,
        },
    ]
}
