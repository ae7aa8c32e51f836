//! Tasks: spawning a future onto a worker, and the handle that awaits it.
//!
//! A task is one async-task allocation holding the guarded body (see `body.rs`). Its schedule
//! function sends it to the worker it was spawned on, and only there: tasks never migrate.
//! The handle resolves to the task's value, or to a [`JoinError`] when the task panicked or
//! was cancelled (by [`JoinHandle::abort`] or by the runtime's shutdown). Dropping the handle
//! detaches the task, which then runs to its end unobserved.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_task::{Builder, FallibleTask, WithInfo};

use crate::body::{Guarded, Hooks, Outcome};
use crate::panic::{Contained, Panic};
use crate::worker::{self, WorkerShared};

/// Why a task gave no value.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Polling the task panicked. The worker caught the panic and went on running.
    #[error("the task panicked: {0}")]
    Panicked(Panic),
    /// The task was dropped before it finished: aborted, spawned on a runtime that was
    /// shutting down, or cancelled when the runtime shut down.
    #[error("the task was cancelled before it finished")]
    Cancelled,
}

impl JoinError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// The panic, if the task panicked.
    pub fn into_panic(self) -> Option<Panic> {
        match self {
            JoinError::Panicked(panic) => Some(panic),
            JoinError::Cancelled => None,
        }
    }
}

/// The output of a task as async-task stores it.
pub(crate) type Stored<T> = Contained<Outcome<T>>;

/// Awaits a task's outcome; shared by [`JoinHandle`] and the lanes' job handle.
pub(crate) enum Completion<T, M = ()> {
    /// The task is running or done; its handle is attached.
    Attached(Attached<T, M>),
    /// `abort` was called: this resolves once the task's future has been dropped (or to the
    /// output, if the task had already finished).
    Aborting(Pin<Box<dyn Future<Output = Option<Stored<T>>> + Send>>),
    /// Cancelled and already resolved, to this output (if the task had finished first).
    Aborted(Option<Stored<T>>),
    /// Resolved already, or never started: polling gives "cancelled".
    Ended,
}

/// An attached async-task handle that detaches, rather than cancels, when dropped.
pub(crate) struct Attached<T, M>(Option<FallibleTask<Stored<T>, M>>);

impl<T, M> Attached<T, M> {
    pub(crate) fn new(task: FallibleTask<Stored<T>, M>) -> Attached<T, M> {
        Attached(Some(task))
    }
}

impl<T, M> Drop for Attached<T, M> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

impl<T: Send + 'static, M: Send + Sync + 'static> Completion<T, M> {
    pub(crate) fn attached(task: FallibleTask<Stored<T>, M>) -> Completion<T, M> {
        Completion::Attached(Attached::new(task))
    }

    pub(crate) fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let stored = match self {
            Completion::Attached(Attached(Some(task))) => match Pin::new(task).poll(cx) {
                Poll::Ready(stored) => stored,
                Poll::Pending => return Poll::Pending,
            },
            Completion::Aborting(cancel) => match cancel.as_mut().poll(cx) {
                Poll::Ready(stored) => stored,
                Poll::Pending => return Poll::Pending,
            },
            Completion::Aborted(stored) => stored.take(),
            Completion::Attached(Attached(None)) | Completion::Ended => None,
        };
        *self = Completion::Ended;
        Poll::Ready(
            stored
                .and_then(Contained::take)
                .unwrap_or(Outcome::Cancelled),
        )
    }

    pub(crate) fn abort(&mut self) {
        // Only an attached task can be aborted; aborting again keeps what the first abort got.
        let Completion::Attached(attached) = self else {
            return;
        };
        if let Some(task) = attached.0.take() {
            // `cancel` acts at its first poll: poll it now, so the abort takes effect before
            // this returns, whenever (or whether) the handle is awaited.
            let mut cancel = Box::pin(task.cancel());
            let mut cx = Context::from_waker(std::task::Waker::noop());
            *self = match cancel.as_mut().poll(&mut cx) {
                Poll::Ready(stored) => Completion::Aborted(stored),
                Poll::Pending => Completion::Aborting(cancel),
            };
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        match self {
            Completion::Attached(Attached(Some(task))) => task.is_finished(),
            _ => true,
        }
    }
}

/// An owned permission to await a task's output.
///
/// It is a future resolving to `Ok(value)`, or to a [`JoinError`]. Dropping it detaches the
/// task; [`JoinHandle::abort`] cancels it. Polled again after it resolved, it reports
/// [`JoinError::Cancelled`].
#[must_use = "dropping a JoinHandle detaches the task; await it or call `abort`"]
pub struct JoinHandle<T> {
    completion: Completion<T>,
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn cancelled() -> JoinHandle<T> {
        JoinHandle {
            completion: Completion::Ended,
        }
    }

    /// Cancels the task: a task not yet finished is dropped on its worker at its next turn,
    /// and awaiting this handle then gives [`JoinError::Cancelled`]. A task that had already
    /// finished keeps its output, which awaiting still returns.
    pub fn abort(&mut self) {
        self.completion.abort();
    }

    /// Whether the task has finished (or was aborted), so that awaiting will not wait long.
    pub fn is_finished(&self) -> bool {
        self.completion.is_finished()
    }
}

// The handle never pins its output in place; it only moves it out.
impl<T> Unpin for JoinHandle<T> {}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.completion
            .poll_outcome(cx)
            .map(|outcome| match outcome {
                Outcome::Value(value) => Ok(value),
                Outcome::Panicked(panic) => Err(JoinError::Panicked(panic)),
                Outcome::Cancelled => Err(JoinError::Cancelled),
            })
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.completion {
            Completion::Attached(_) => "attached",
            Completion::Aborting(_) | Completion::Aborted(_) => "aborting",
            Completion::Ended => "ended",
        };
        f.debug_struct("JoinHandle").field("state", &state).finish()
    }
}

/// Spawns `future` onto `worker`. The caller has checked that the runtime accepts work.
pub(crate) fn spawn_on<F>(worker: &Arc<WorkerShared>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // Relaxed: a statistic and a load estimate; nothing is published through it.
    worker
        .counters
        .spawned
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    let body = Guarded::new(
        future,
        TaskHooks {
            worker: worker.uid,
            registered: None,
        },
    );
    let target = Arc::clone(worker);
    let (runnable, task) = Builder::new().spawn(
        move |()| body,
        WithInfo(move |runnable, info| worker::schedule_task(&target, runnable, info)),
    );
    runnable.schedule();
    JoinHandle {
        completion: Completion::attached(task.fallible()),
    }
}

/// The hooks of a plain task: it registers its waker with its worker once it first waits, so
/// that shutdown can reach it, and counts itself finished when it ends.
struct TaskHooks {
    /// The unique id of the worker the task belongs to.
    worker: u64,
    /// The task's entry in its worker's waker registry, once it has waited.
    registered: Option<usize>,
}

impl Hooks for TaskHooks {
    fn pending(&mut self, cx: &Context<'_>) {
        if self.registered.is_none() {
            self.registered = worker::with_local(self.worker, |local| local.register_waker(cx));
        }
    }
}

impl Drop for TaskHooks {
    fn drop(&mut self) {
        let registered = self.registered;
        // Off its worker, a task ends only after that worker stopped; nothing to count then.
        worker::with_local(self.worker, |local| local.task_finished(registered));
    }
}

/// Yields to the worker: the calling task goes to the back of its worker's queue, and every
/// other task that was ready, local or sent from another thread, runs before it resumes.
///
/// On a lane, the job keeps its lane; the lane goes back into its worker's fair order, and
/// other lanes whose turn it is run first.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
