//! The benchmark scenarios. Each module measures ipckit next to its peers.

mod mutex;
mod sem_pingpong;
mod semop;

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
            name: "semop-uncontended",
            about: "one process, P then V: ipckit SemaphoreSet::apply vs SysV semop, sem_t",
            run: semop::uncontended,
        },
        Scenario {
            name: "semop-pingpong",
            about: "round trip between two processes: SemaphoreSet::apply vs SysV semop, sem_t",
            run: semop::pingpong,
        },
    ]
}
