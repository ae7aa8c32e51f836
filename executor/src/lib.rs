//! corelane's thread-per-core executor: workers, tasks and lanes.
//!
//! A [`Runtime`] runs one worker thread per chosen CPU, each a single-threaded executor. Tasks
//! are futures spawned onto a worker; they stay there, run in FIFO order, and report their
//! value, a panic or a cancellation through a [`JoinHandle`]:
//!
//! ```
//! use corelane_executor::Runtime;
//!
//! let runtime = Runtime::builder().workers(2).build()?;
//! let task = runtime.spawn(async { 1 + 2 });
//! assert_eq!(runtime.block_on(task)??, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Lane`] is a database's serial run queue on one worker: its jobs run one at a time, in
//! the order they were submitted, with the lane's state to themselves, while the lanes of a
//! worker share its time by weight:
//!
//! ```
//! use corelane_executor::Runtime;
//!
//! let runtime = Runtime::builder().workers(2).build()?;
//! let counter = runtime.lane(0u64)?;
//! let jobs: Vec<_> = (0..100).map(|_| counter.call(|count| *count += 1)).collect();
//! for job in jobs {
//!     runtime.block_on(job)??;
//! }
//! assert_eq!(runtime.block_on(counter.call(|count| *count))??, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A job that waits keeps its lane while other lanes run; [`yield_now`] lets them run too:
//!
//! ```
//! use corelane_executor::{Runtime, yield_now};
//!
//! let runtime = Runtime::builder().workers(1).build()?;
//! let lane = runtime.lane(Vec::new())?;
//! let job = lane.submit_with(|mut log| async move {
//!     log.push("before");
//!     yield_now().await; // other lanes of this worker run here; this lane waits
//!     log.push("after");
//!     log.len()
//! });
//! assert_eq!(runtime.block_on(job)??, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The protocols are written down where they live: the worker loop in `worker.rs`, parking
//! in `park.rs`, the lane protocol in [`lane`], shutdown in `runtime.rs`. `docs/architecture.md`
//! in the repository is the overview.

#![forbid(unsafe_code)]

mod balance;
mod block_on;
mod body;
mod clock;
mod contention;
pub mod lane;
mod panic;
mod park;
pub mod placement;
mod preempt;
mod runtime;
mod stats;
mod sync;
mod task;
mod worker;

#[cfg(all(test, loom))]
mod loom_models;

pub use balance::{Balance, BalanceError};
pub use block_on::{BlockOnError, block_on};
pub use clock::Clock;
pub use lane::{Drained, JobError, JobHandle, Lane, LaneBuilder, LaneError, LaneGuard, LaneId};
pub use panic::Panic;
pub use placement::Placement;
pub use runtime::{
    BuildError, Builder, Handle, MAX_DROP_TIMEOUT, Runtime, ShutdownReport, SpawnError,
};
pub use stats::{LaneStats, RuntimeStats, WorkerStats};
pub use task::{JoinError, JoinHandle, yield_now};
