//! Lanes: per-database serial run queues with fair shares, moves and balancing.
//!
//! A lane is a database's run queue. It lives on one worker, runs at most one of its jobs at
//! a time, in submission order, and shares its worker's time with the other lanes there in
//! proportion to its weight. Jobs are futures or closures, submitted from any thread through
//! a cheap [`Lane`] handle; each gives a [`JobHandle`] that resolves to the job's value or a
//! [`JobError`].
//!
//! # The lane protocol
//!
//! The code cites these steps; the invariants S1 to S4 are those of the state word
//! (`lane/state.rs`), W1 to W3 those of the worker (`worker.rs`), R1 the registry's.
//!
//! 1. **Submit.** The submitter counts the submission in the state word. If the lane was
//!    closed before that count (S1), the job is refused with [`JobError::Closed`] and never
//!    queued. Otherwise it becomes one async-task allocation and goes to the back of the
//!    lane's queue (a lock held for one push or pop over a slot for the oldest job and a ring
//!    buffer for the rest; the worker never waits for it: `lane/core.rs`), and the submitter
//!    activates the lane.
//! 2. **Activate.** Setting `SCHEDULED` on an idle lane makes the caller its only scheduler
//!    (S2): it puts the lane in its home worker's run queue, directly if it runs on that
//!    worker, else through the worker's lane injector and a wake-up (`park.rs`).
//! 3. **Turn.** The worker takes the lane furthest behind in weighted virtual runtime (lanes
//!    within one grain of it first come, first served: `lane/turn.rs`) and begins its turn
//!    (S3). It polls the started job if that job was woken, else starts the next queued job
//!    if no job is started. The turn ends when a job waits or yields (the job keeps the lane:
//!    no other job of the lane starts until it ends), when nothing is left, or when the slice
//!    is spent (step 5). The lane is charged its run time divided by its weight, and ending
//!    the turn (S4) queues it again if it was activated meanwhile or has work left; a lane
//!    whose job yielded thus goes back among the others by virtual runtime.
//! 4. **Wake.** A started job that is woken has its runnable put in the lane's ready slot, and
//!    the lane is activated. Only the started job can be woken: a queued job's runnable sits
//!    in the queue, where wake-ups leave it alone.
//! 5. **Slice.** A turn runs at most `slice_jobs` jobs and stops starting new ones once
//!    `slice_time` has passed, so a flood of short jobs on one lane delays the other lanes of
//!    its worker by one slice at most.
//! 6. **Move.** Moving a lane changes its home worker. Its next turn begins there: a worker
//!    that takes a lane whose home is elsewhere forwards it, and the end of a turn and every
//!    activation queue it on its current home. Queued jobs and a started job move with it, in
//!    order, never overlapping (S3).
//! 7. **Re-entry.** A job that awaits a job of its own lane would wait for ever; its handle
//!    answers [`JobError::Reentrant`] instead. Only this direct case is caught: a cycle through
//!    other lanes (a job of A awaits one of B, which awaits one of A) waits until one of the
//!    lanes is aborted or the runtime shuts down.
//! 8. **Close, abort, drain.** Closing records how many jobs the lane accepted (S1) and
//!    refuses the rest; queued jobs still run. Aborting also drops queued jobs when the lane
//!    next turns (each ends [`JobError::Cancelled`]) and wakes a waiting started job so that it
//!    is cancelled at its next poll. Once every accepted job has been taken and has ended, the
//!    lane is drained: [`Lane::drained`] resolves, and the lane leaves its worker (R1).
//!    Dropping the last [`Lane`] handle closes the lane; its queued jobs still run.

pub(crate) mod core;
pub(crate) mod job;
pub(crate) mod registry;
pub(crate) mod state;
pub(crate) mod turn;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;

use self::core::LaneCore;
pub use self::job::{JobError, JobHandle, LaneGuard};
use crate::runtime::RuntimeShared;
use crate::stats::LaneStats;
use crate::worker;

/// The weight of a lane unless set otherwise: time is shared in proportion to weights.
pub const DEFAULT_WEIGHT: u32 = 100;
/// The largest weight a lane may have.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Identifies a lane within its runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LaneId(pub(crate) u64);

impl LaneId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lane {}", self.0)
    }
}

/// Why a lane could not be created, moved or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The runtime is shutting down and takes no new lanes.
    #[error("the runtime is shutting down and takes no new lanes")]
    ShuttingDown,
    /// A worker index that the runtime does not have.
    #[error("there is no worker {worker}: the runtime has {workers} (numbered from 0)")]
    NoSuchWorker {
        /// The index given.
        worker: usize,
        /// How many workers the runtime has.
        workers: usize,
    },
    /// A weight outside 1 to [`MAX_WEIGHT`].
    #[error("weight {weight} is out of range: a lane's weight must be from 1 to {MAX_WEIGHT}")]
    BadWeight {
        /// The weight given.
        weight: u32,
    },
    /// The lane has drained and left its worker; it cannot move.
    #[error("the lane has drained and no longer lives on a worker")]
    Drained,
}

/// Options for a new lane; see [`crate::Handle::lane_builder`].
#[derive(Clone)]
pub struct LaneBuilder {
    runtime: Arc<RuntimeShared>,
    weight: u32,
    worker: Option<usize>,
}

impl LaneBuilder {
    pub(crate) fn new(runtime: Arc<RuntimeShared>) -> LaneBuilder {
        LaneBuilder {
            runtime,
            weight: DEFAULT_WEIGHT,
            worker: None,
        }
    }

    /// The lane's weight (default [`DEFAULT_WEIGHT`]).
    pub fn weight(mut self, weight: u32) -> LaneBuilder {
        self.weight = weight;
        self
    }

    /// Places the lane on this worker and pins it there, instead of on the worker with the
    /// fewest lanes. Automatic balancing never moves a pinned lane.
    pub fn worker(mut self, worker: usize) -> LaneBuilder {
        self.worker = Some(worker);
        self
    }

    /// Creates the lane, owning `state`, which its jobs reach one at a time.
    pub fn build<S: Send + 'static>(self, state: S) -> Result<Lane<S>, LaneError> {
        check_weight(self.weight)?;
        let runtime = self.runtime;
        // Unique in the process, not just the runtime: a job of one runtime awaiting a job of
        // another must never look re-entrant (step 7). Relaxed: only uniqueness matters.
        static NEXT_LANE_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_LANE_ID.fetch_add(1, Ordering::Relaxed);
        let workers = Arc::clone(&runtime.workers);
        let core = runtime.lanes.place(self.worker, |home| {
            LaneCore::new(id, self.weight, home, workers)
        })?;
        Ok(Lane {
            inner: Arc::new(LaneHandle {
                core,
                state: Arc::new(Mutex::new(state)),
                runtime,
            }),
        })
    }
}

impl fmt::Debug for LaneBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneBuilder")
            .field("weight", &self.weight)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

fn check_weight(weight: u32) -> Result<(), LaneError> {
    if (1..=MAX_WEIGHT).contains(&weight) {
        Ok(())
    } else {
        Err(LaneError::BadWeight { weight })
    }
}

/// A handle to a lane: cheap to clone, and usable from any thread.
///
/// `S` is the lane's state: a job that asks for it ([`Lane::submit_with`], [`Lane::call`])
/// has it to itself for its whole run. Dropping the last handle closes the lane; its queued
/// jobs still run.
pub struct Lane<S = ()> {
    inner: Arc<LaneHandle<S>>,
}

struct LaneHandle<S> {
    core: Arc<LaneCore>,
    state: Arc<Mutex<S>>,
    runtime: Arc<RuntimeShared>,
}

impl<S> Drop for LaneHandle<S> {
    fn drop(&mut self) {
        // Step 8: the last handle closes the lane; queued jobs still run.
        self.core.close();
    }
}

impl<S> Clone for Lane<S> {
    fn clone(&self) -> Lane<S> {
        Lane {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Lane<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("id", &self.inner.core.id)
            .field("worker", &self.inner.core.home())
            .finish_non_exhaustive()
    }
}

impl<S: Send + 'static> Lane<S> {
    /// The lane's id.
    pub fn id(&self) -> LaneId {
        LaneId(self.inner.core.id)
    }

    /// The worker the lane lives on now.
    pub fn worker(&self) -> usize {
        self.inner.core.home()
    }

    /// Submits a future as a job (step 1).
    pub fn submit<F>(&self, future: F) -> JobHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.admit() {
            Ok(submitted_ns) => {
                job::queue_job(
                    &self.inner.core,
                    submitted_ns,
                    async move { Ok(future.await) },
                )
            }
            Err(error) => JobHandle::refused(self.inner.core.id, error),
        }
    }

    /// Submits a job that has the lane's state to itself for its whole run, across its
    /// suspensions: `job` receives the state when the job starts, and returns the future to run.
    pub fn submit_with<F, Fut>(&self, job: F) -> JobHandle<Fut::Output>
    where
        F: FnOnce(LaneGuard<S>) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        match self.admit() {
            Ok(submitted_ns) => {
                let state = Arc::clone(&self.inner.state);
                job::queue_job(&self.inner.core, submitted_ns, async move {
                    let guard = job::lock_state(&state)?;
                    Ok(job(guard).await)
                })
            }
            Err(error) => JobHandle::refused(self.inner.core.id, error),
        }
    }

    /// Submits a closure that runs with the lane's state, as one job.
    pub fn call<F, T>(&self, f: F) -> JobHandle<T>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(move |mut state| async move { f(&mut state) })
    }

    /// Step 1, the admission: counts the submission and stamps it.
    fn admit(&self) -> Result<u64, JobError> {
        let core = &self.inner.core;
        if !core.state.admit() {
            // Relaxed: a statistic.
            core.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(JobError::Closed);
        }
        let runtime = &self.inner.runtime;
        let now = worker::with_any_local(|local| {
            Arc::ptr_eq(&local.runtime, runtime).then(|| local.recent_now())
        });
        Ok(now
            .flatten()
            .unwrap_or_else(|| runtime.config.clock.now_ns()))
    }

    /// Closes the lane (step 8): later submissions are refused, queued jobs still run.
    pub fn close(&self) {
        self.inner.core.close();
    }

    /// Aborts the lane (step 8): closes it, cancels its queued jobs, and cancels its started
    /// job at that job's next poll.
    pub fn abort(&self) {
        self.inner.core.abort();
    }

    /// Whether the lane is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.core.state.load().is_closed()
    }

    /// A future that resolves once the lane is closed and every job it accepted has ended,
    /// or once the runtime has shut down (after which no job of the lane will run again; a
    /// job stuck on a worker that never stopped may still be unfinished).
    pub fn drained(&self) -> Drained {
        Drained {
            core: Arc::clone(&self.inner.core),
        }
    }

    /// Moves the lane to `worker` and pins it there (step 6). Its queued jobs and its started
    /// job move with it; its next turn begins on `worker`.
    pub fn move_to(&self, worker: usize) -> Result<(), LaneError> {
        let runtime = &self.inner.runtime;
        let now = runtime.config.clock.now_ns();
        runtime.lanes.move_lane(&self.inner.core, worker, true, now)
    }

    /// Changes the lane's weight; it counts from the lane's next turn.
    pub fn set_weight(&self, weight: u32) -> Result<(), LaneError> {
        check_weight(weight)?;
        // Relaxed: read at the end of each turn; a turn in progress may use either value.
        self.inner.core.weight.store(weight, Ordering::Relaxed);
        Ok(())
    }

    /// A snapshot of the lane's counters.
    pub fn stats(&self) -> LaneStats {
        LaneStats::of(&self.inner.core, self.inner.runtime.config.clock.now_ns())
    }
}

/// Resolves once a lane is drained; see [`Lane::drained`].
#[must_use = "futures do nothing unless awaited"]
pub struct Drained {
    core: Arc<LaneCore>,
}

impl Future for Drained {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.core.drain.register(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for Drained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drained")
            .field("lane", &self.core.id)
            .finish()
    }
}

/// Convenience for stats: a duration from nanoseconds.
pub(crate) fn nanos(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}
