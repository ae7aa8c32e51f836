//! Jobs: what a lane runs, the handle that awaits one, and the ways one can fail.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};

use async_task::Builder;
use parking_lot::{ArcMutexGuard, Mutex, RawMutex};

use super::core::{JobMeta, LaneCore};
use crate::body::{End, Guarded, Hooks, Outcome};
use crate::panic::Panic;
use crate::task::Completion;
use crate::worker;

/// Why a job gave no value.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Polling the job panicked. The lane went on with its next job.
    #[error("the job panicked: {0}")]
    Panicked(Panic),
    /// The job was dropped before it finished: its lane was aborted, the job was aborted
    /// through its handle, or the runtime shut down.
    #[error("the job was cancelled before it finished")]
    Cancelled,
    /// The lane was closed (or the runtime was shutting down) when the job was submitted; the
    /// job never ran.
    #[error("the lane is closed; the job was not accepted")]
    Closed,
    /// The job's handle was awaited by a job of the same lane. That job holds the lane, so
    /// the awaited job could never start: awaiting it would wait forever.
    #[error("a job awaited another job of its own lane, which cannot start until it ends")]
    Reentrant,
    /// The lane's state was still locked when the job started: an earlier job moved its
    /// [`LaneGuard`] somewhere that outlived it (a spawned task, a static).
    #[error("the lane's state is held by a guard that outlived its job")]
    StateHeld,
}

impl JobError {
    /// Whether the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JobError::Panicked(_))
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JobError::Cancelled)
    }
}

/// Exclusive access to a lane's state for one job's whole run, across its suspensions.
///
/// The lane runs one job at a time, so the lock behind it is never contended.
pub struct LaneGuard<S>(ArcMutexGuard<RawMutex, S>);

impl<S> Deref for LaneGuard<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S> DerefMut for LaneGuard<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0
    }
}

impl<S: fmt::Debug> fmt::Debug for LaneGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LaneGuard").field(&*self.0).finish()
    }
}

/// Locks the lane's state for a job that starts now.
pub(crate) fn lock_state<S>(state: &Arc<Mutex<S>>) -> Result<LaneGuard<S>, JobError> {
    state
        .try_lock_arc()
        .map(LaneGuard)
        .ok_or(JobError::StateHeld)
}

/// An owned permission to await a job's value.
///
/// A future resolving to `Ok(value)` or a [`JobError`]. Dropping it leaves the job to run;
/// [`JobHandle::abort`] cancels it. Polled again after it resolved, it reports
/// [`JobError::Cancelled`].
#[must_use = "dropping a JobHandle leaves the job to run unobserved"]
pub struct JobHandle<T> {
    lane: u64,
    refused: Option<JobError>,
    completion: Completion<Result<T, JobError>, JobMeta>,
}

impl<T: Send + 'static> JobHandle<T> {
    pub(crate) fn refused(lane: u64, error: JobError) -> JobHandle<T> {
        JobHandle {
            lane,
            refused: Some(error),
            completion: Completion::Ended,
        }
    }

    /// Cancels the job: a queued job is dropped when its turn comes, a started one at its next
    /// poll. Awaiting the handle then gives [`JobError::Cancelled`], unless the job had
    /// already finished, in which case it gives the job's result.
    pub fn abort(&mut self) {
        self.completion.abort();
    }

    /// Whether the job has ended (or was aborted or refused).
    pub fn is_finished(&self) -> bool {
        self.refused.is_some() || self.completion.is_finished()
    }
}

// The handle never pins its output in place; it only moves it out.
impl<T> Unpin for JobHandle<T> {}

impl<T: Send + 'static> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(error) = self.refused.take() {
            return Poll::Ready(Err(error));
        }
        // Lane protocol step 7: a job of this lane awaiting a job of this lane. A finished
        // job gives its result whoever awaits it, so only an unfinished one needs the check.
        if !self.completion.is_finished() {
            let running = worker::with_any_local(|local| local.running_lane_id()).flatten();
            if running == Some(self.lane) {
                return Poll::Ready(Err(JobError::Reentrant));
            }
        }
        self.completion
            .poll_outcome(cx)
            .map(|outcome| match outcome {
                Outcome::Value(result) => result,
                Outcome::Panicked(panic) => Err(JobError::Panicked(panic)),
                Outcome::Cancelled => Err(JobError::Cancelled),
            })
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("lane", &self.lane)
            .finish_non_exhaustive()
    }
}

/// Creates a job on `lane` and queues it. The caller has already admitted it (S1).
pub(crate) fn queue_job<F, T>(lane: &Arc<LaneCore>, submitted_ns: u64, job: F) -> JobHandle<T>
where
    F: Future<Output = Result<T, JobError>> + Send + 'static,
    T: Send + 'static,
{
    let hooks = JobHooks {
        lane: lane.id,
        waited: false,
        end: None,
    };
    let body = Guarded::new(job, hooks);
    let woken = Arc::clone(lane);
    let (runnable, task) = Builder::new()
        .metadata(JobMeta {
            submitted_ns,
            started_ns: AtomicU64::new(0),
        })
        .spawn(move |_| body, move |runnable| woken.job_woken(runnable));

    // Lane protocol step 1: queue, then activate.
    lane.queue.push(runnable);
    lane.activate();
    JobHandle {
        lane: lane.id,
        refused: None,
        completion: Completion::attached(task.fallible()),
    }
}

/// The hooks of a job. They reach the lane through the worker that runs the lane's turn, and
/// tell that worker how the job ended (lane protocol step 4).
struct JobHooks {
    /// The id of the job's lane.
    lane: u64,
    /// Returned `Pending` at least once: its waker is in the lane's `job_waker`.
    waited: bool,
    end: Option<End>,
}

/// How a job ended, as its hooks tell the worker.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobEnd {
    pub(crate) end: End,
    /// The job had left its waker in the lane's `job_waker`, which is to be cleared.
    pub(crate) waited: bool,
}

impl Hooks for JobHooks {
    fn cancel_requested(&mut self) -> bool {
        worker::with_any_local(|local| local.running_lane_is_aborted()).unwrap_or(false)
    }

    fn pending(&mut self, cx: &Context<'_>) {
        if !self.waited {
            self.waited = true;
            worker::with_any_local(|local| local.keep_job_waker(cx.waker()));
        }
    }

    fn finished(&mut self, end: End) {
        self.end = Some(end);
    }
}

impl Drop for JobHooks {
    fn drop(&mut self) {
        let end = JobEnd {
            end: self.end.unwrap_or(End::Cancelled),
            waited: self.waited,
        };
        // Off its lane's turn (dropped by `cancel_contents`, or after shutdown), whoever
        // dropped the job counts it.
        worker::with_any_local(|local| local.job_ended(self.lane, end));
    }
}
