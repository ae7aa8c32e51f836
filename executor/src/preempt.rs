//! Asking a long lane turn to end early, when another lane arrives on its worker.
//!
//! A worker runs one lane turn at a time, and a job ends its turn only when it returns
//! `Pending`. A job that yields on a timer (a Wasm call under epoch interruption) gives the
//! worker back once per quantum, but only if the timer's thread gets a CPU in time: on a
//! machine whose cores are all busy running workers, a tick can come milliseconds late, and a
//! light job that arrived meanwhile waits that long behind a heavy one.
//!
//! So the thread that gives a worker new work checks whether that worker's running job has
//! run for [`Builder::preempt_after`](crate::Builder::preempt_after) or longer, and if so
//! calls the runtime's preemption hook, which makes the running job yield at once (the host
//! advances its Wasmtime engine's epoch). The steps:
//!
//! 1. A worker beginning a lane turn clears `preempt_asked` and stores in `running_since_ns`
//!    when the job it resumes first started (a job that yielded keeps its age across turns,
//!    so a long job is asked again at the next arrival, not only after another
//!    `preempt_after`), or the turn's start if it starts a new one. Ending the turn, it
//!    stores `u64::MAX` there.
//! 2. A thread that pushes a task or a lane to the worker's injector, once it has pushed and
//!    notified, reads `running_since_ns`. If the job has run long enough, the first such
//!    thread to swap `preempt_asked` to true calls the hook: at most one request per turn.
//! 3. The hook makes the running job return `Pending` soon; between two jobs, the turn sees
//!    `preempt_asked` and ends its slice. Either way the lane goes back into the worker's
//!    fair order, and the arrival, being further behind in virtual runtime than a lane that
//!    has just run, runs next.
//!
//! Every access is Relaxed: a stale reading asks once too often or once too few, and the
//! job's own timer still bounds the wait. Nothing else is published through these fields.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::clock::Clock;
use crate::worker::WorkerShared;

/// The preemption hook and when to call it; shared by a runtime's workers.
pub(crate) struct Preempt {
    /// Called with the worker's index.
    hook: Arc<dyn Fn(usize) + Send + Sync>,
    after_ns: u64,
    clock: Clock,
}

impl Preempt {
    pub(crate) fn new(
        hook: Arc<dyn Fn(usize) + Send + Sync>,
        after_ns: u64,
        clock: Clock,
    ) -> Preempt {
        Preempt {
            hook,
            after_ns,
            clock,
        }
    }

    /// Step 2: asks `worker`'s running job to yield if its turn has run long enough.
    pub(crate) fn ask_if_due(&self, worker: &WorkerShared) {
        // Relaxed: see the module documentation.
        let started = worker.running_since_ns.load(Ordering::Relaxed);
        if started == u64::MAX || self.clock.now_ns().saturating_sub(started) < self.after_ns {
            return;
        }
        if worker.preempt_asked.swap(true, Ordering::Relaxed) {
            return;
        }
        (self.hook)(worker.index);
    }
}

/// The hook as the builder keeps it.
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<dyn Fn(usize) + Send + Sync>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook(..)")
    }
}
