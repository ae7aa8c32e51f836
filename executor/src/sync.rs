//! The atomics and thread parking used by corelane's lock-free protocols.
//!
//! Built normally, these are std's. Built with `RUSTFLAGS="--cfg loom"`, they are loom's, so
//! that the models in `loom_models.rs` explore every interleaving of the real protocol code
//! (the parking protocol in `park.rs` and the lane state word in `lane/state.rs`). Only those
//! protocols go through this shim; queues and tasks come from crossbeam and async-task.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::thread::{Thread, current as current_thread};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::thread::{Thread, current as current_thread};

/// Blocks the calling thread until it is unparked, or until `timeout` passes.
///
/// Like std's, it may return spuriously; callers re-check their condition. Loom has no timed
/// park, so under loom the timeout is ignored and only an unpark wakes the thread.
pub(crate) fn park(timeout: Option<std::time::Duration>) {
    #[cfg(loom)]
    {
        let _ = timeout;
        loom::thread::park();
    }
    #[cfg(not(loom))]
    match timeout {
        Some(timeout) => std::thread::park_timeout(timeout),
        None => std::thread::park(),
    }
}
