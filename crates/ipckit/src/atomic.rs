//! The one place atomics come from: `std`'s normally, loom's under `--cfg loom`, so that the
//! loom models check the very code that ships.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// `std::hint::spin_loop`, or a yield to loom's scheduler under loom.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// The store-then-load ("Dekker") point between a waker and a sleeper: each side writes its
/// word with a sequentially consistent operation and then reads the other's, so at least one
/// sees the other. In real builds the surrounding `SeqCst` operations already give that total
/// order (on x86 they are locked instructions), so this is a no-op. Loom models `SeqCst`
/// loads and stores only as acquire/release (tokio-rs/loom#180) but does model `SeqCst`
/// fences, so under loom this is `fence(SeqCst)` and the models check the intended algorithm.
#[inline(always)]
pub(crate) fn dekker_point() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}
