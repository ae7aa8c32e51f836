//! Driving a future to completion on the calling thread.

use std::future::Future;

use crate::worker;

/// Why [`block_on`] refused to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockOnError {
    /// Called on a worker thread. Blocking a worker stops everything queued on it, possibly
    /// the very task being waited for; `.await` the future instead.
    #[error(
        "block_on was called on worker {worker}, which would stall it; await the future instead"
    )]
    OnWorker {
        /// The worker's index in its runtime.
        worker: usize,
    },
}

/// Runs `future` to completion on the calling thread, parking it while the future waits.
///
/// Meant for threads outside any runtime, such as `main` or a test. On a worker thread it
/// returns [`BlockOnError::OnWorker`] instead of deadlocking.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, BlockOnError> {
    if let Some(worker) = worker::with_any_local(|local| local.index()) {
        return Err(BlockOnError::OnWorker { worker });
    }
    Ok(futures_lite::future::block_on(future))
}
