//! The shared part of a lane: its queue, its ready slot, its state word and its counters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;

use async_task::Runnable;
use crossbeam_utils::atomic::AtomicCell;
use parking_lot::Mutex;

use super::state::LaneState;
use crate::body::End;
use crate::panic::drop_contained;
use crate::worker::{self, WorkerShared};

/// What async-task stores beside each job.
pub(crate) struct JobMeta {
    /// When the job was submitted, on the runtime's clock.
    pub(crate) submitted_ns: u64,
    /// When it began its first poll (`preempt.rs`). Kept with the job, not the lane, so
    /// that an idle lane does not carry it.
    pub(crate) started_ns: AtomicU64,
}

pub(crate) type JobRunnable = Runnable<JobMeta>;

/// A lane's shared state. Reached from the lane's handles, from its jobs' wakers, and from
/// the run queue of the worker that runs it.
pub(crate) struct LaneCore {
    pub(crate) id: u64,
    pub(crate) state: LaneState,
    /// Jobs accepted and not started, in submission order. One consumer: the worker running
    /// the lane's turn (invariant S3).
    pub(crate) queue: JobQueue,
    /// The started job, when it was woken and waits to be polled again.
    pub(crate) ready: AtomicCell<Option<JobRunnable>>,
    /// The index of the worker the lane lives on.
    pub(crate) home: AtomicUsize,
    /// Every worker of the runtime, to reach the home worker.
    pub(crate) workers: Arc<[Arc<WorkerShared>]>,
    /// The lane's share of its worker's time, relative to other lanes' weights.
    pub(crate) weight: AtomicU32,
    /// Placed or moved by hand: automatic balancing leaves it where it is.
    pub(crate) pinned: AtomicBool,
    pub(crate) sched: Sched,
    /// The waker of the started job, once it has waited; abort and shutdown wake it.
    pub(crate) job_waker: Mutex<Option<Waker>>,
    /// Jobs accepted, ever; `u64::MAX` until the lane closes.
    pub(crate) accepted_at_close: AtomicU64,
    pub(crate) counters: LaneCounters,
    pub(crate) drain: Drain,
}

/// Scheduling data. Only the worker running the lane's turn, or holding its run queue entry,
/// touches these (invariants S2 and S3), and the state word's AcqRel transitions order each
/// worker's accesses after the previous one's; so Relaxed is enough for every field.
pub(crate) struct Sched {
    /// Weighted run time, on the scale of `vruntime_worker`'s run queue.
    pub(crate) vruntime: AtomicU64,
    /// The worker whose run queue `vruntime` is measured against.
    pub(crate) vruntime_worker: AtomicUsize,
    /// A job was taken from the queue and has not ended.
    pub(crate) in_progress: AtomicBool,
    /// Jobs taken from the queue (run or dropped), ever.
    pub(crate) started: AtomicU64,
}

/// Counters for [`crate::LaneStats`]. Only the holder of the lane's run queue entry writes
/// them (S2, S3), with a load and a store, except `refused`, which submitters count. Relaxed
/// throughout: they are statistics. Submissions are counted by the state word.
#[derive(Default)]
pub(crate) struct LaneCounters {
    pub(crate) refused: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) run_ns: AtomicU64,
    /// When the turn in progress began, on the runtime's clock; `u64::MAX` between turns.
    pub(crate) turn_started_ns: AtomicU64,
    pub(crate) wait_ns: AtomicU64,
    pub(crate) max_wait_ns: AtomicU64,
    pub(crate) turns: AtomicU64,
    pub(crate) yields: AtomicU64,
    pub(crate) migrations: AtomicU64,
    /// When the lane last moved, on the runtime's clock; for the balancer.
    pub(crate) moved_at_ns: AtomicU64,
}

impl LaneCounters {
    pub(crate) fn ended(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
            + self.panicked.load(Ordering::Relaxed)
            + self.cancelled.load(Ordering::Relaxed)
    }
}

/// A lane's queued jobs: a short lock around the oldest job and a ring buffer of the rest.
///
/// The lock is honest here: it is held for one push or one pop, by the lane's submitters and
/// the one worker running its turn, so it is almost never contended. A lock-free segment
/// queue (crossbeam's `SegQueue`, used before) puts its head and its tail on two padded lines
/// and allocates a block every 31 jobs: with a job per lane at a time over thousands of lanes,
/// those were three cold lines per job and an eighth of the throughput profile.
///
/// The oldest job sits beside the lock, in the lane's own memory; only jobs queued behind it
/// go to the ring buffer, which is allocated the first time two jobs wait at once and kept.
/// A lane that holds one job at a time, as most do when there are thousands, then never
/// touches the buffer: a submitter on one core and the worker on another share the lane's
/// lines and nothing else, one cache line fewer per job than a ring alone.
///
/// The worker never waits for the lock. A submitter that holds it may have been preempted
/// mid-push, and a worker blocked behind it would stall every lane it runs. Every submitter
/// activates the lane after its push (lane protocol step 1), so a worker that finds the lock
/// taken can end the turn as if the queue were empty: the activation queues the lane again
/// (S4), and the job runs at the lane's next turn.
#[derive(Default)]
pub(crate) struct JobQueue(Mutex<Queued>);

#[derive(Default)]
pub(crate) struct Queued {
    /// The oldest job; `None` only when `rest` is empty too.
    first: Option<JobRunnable>,
    /// The jobs behind `first`, oldest first.
    rest: VecDeque<JobRunnable>,
}

impl Queued {
    fn push(&mut self, runnable: JobRunnable) {
        if self.first.is_none() {
            self.first = Some(runnable);
        } else {
            self.rest.push_back(runnable);
        }
    }

    /// The oldest job, and whether another one is queued behind it.
    fn pop(&mut self) -> (Option<JobRunnable>, bool) {
        let next = self.first.take();
        self.first = self.rest.pop_front();
        (next, self.first.is_some())
    }
}

impl JobQueue {
    pub(crate) fn push(&self, runnable: JobRunnable) {
        self.0.lock().push(runnable);
    }

    /// For the turn: the next job, and whether another one is queued behind it. `(None,
    /// false)` if the queue is empty or a submitter holds the lock (see the type's docs).
    pub(crate) fn pop_for_turn(&self) -> (Option<JobRunnable>, bool) {
        match self.0.try_lock() {
            Some(mut queued) => queued.pop(),
            None => (None, false),
        }
    }

    /// For the turn: whether a job may be queued; true if a submitter holds the lock.
    pub(crate) fn may_have_jobs(&self) -> bool {
        self.0
            .try_lock()
            .is_none_or(|queued| queued.first.is_some())
    }

    /// Takes the next job, waiting for the lock: for emptying the queue once its worker has
    /// stopped, when no activation will bring the lane back.
    pub(crate) fn pop(&self) -> Option<JobRunnable> {
        self.0.lock().pop().0
    }
}

/// The "drained" signal: set once, when a closed lane has no job left.
#[derive(Default)]
pub(crate) struct Drain {
    done: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Drain {
    pub(crate) fn is_done(&self) -> bool {
        // Acquire: pairs with the Release in `finish`.
        self.done.load(Ordering::Acquire)
    }

    /// Registers `waker` unless the lane is drained already; true if drained.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut waiters = self.waiters.lock();
        if self.is_done() {
            return true;
        }
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        false
    }

    /// Sets the signal; true for the first call.
    pub(crate) fn finish(&self) -> bool {
        let waiters = {
            let mut waiters = self.waiters.lock();
            // Release: pairs with the Acquire in `is_done`.
            if self.done.swap(true, Ordering::Release) {
                return false;
            }
            std::mem::take(&mut *waiters)
        };
        // A tenant's waker that panics must not take the worker down with it.
        for waker in waiters {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake())).is_err() {
                tracing::warn!(
                    "a waker of a lane's drained signal panicked; the panic was contained"
                );
            }
        }
        true
    }
}

impl LaneCore {
    pub(crate) fn new(
        id: u64,
        weight: u32,
        home: usize,
        workers: Arc<[Arc<WorkerShared>]>,
    ) -> LaneCore {
        LaneCore {
            id,
            state: LaneState::new(),
            queue: JobQueue::default(),
            ready: AtomicCell::new(None),
            home: AtomicUsize::new(home),
            workers,
            weight: AtomicU32::new(weight),
            pinned: AtomicBool::new(false),
            sched: Sched {
                vruntime: AtomicU64::new(0),
                vruntime_worker: AtomicUsize::new(usize::MAX),
                in_progress: AtomicBool::new(false),
                started: AtomicU64::new(0),
            },
            job_waker: Mutex::new(None),
            accepted_at_close: AtomicU64::new(u64::MAX),
            counters: LaneCounters {
                turn_started_ns: AtomicU64::new(u64::MAX),
                ..LaneCounters::default()
            },
            drain: Drain::default(),
        }
    }

    pub(crate) fn home(&self) -> usize {
        // Acquire: pairs with the AcqRel swap in `set_home`.
        self.home.load(Ordering::Acquire)
    }

    /// When the lane last moved, on the runtime's clock; `None` if it never did.
    pub(crate) fn last_moved_ns(&self) -> Option<u64> {
        (self.counters.migrations.load(Ordering::Relaxed) > 0)
            .then(|| self.counters.moved_at_ns.load(Ordering::Relaxed))
    }

    /// Moves the lane's home. The lane's next turn begins there (lane protocol step 6).
    pub(crate) fn set_home(&self, worker: usize, now_ns: u64) {
        // AcqRel: publishes the move to the worker that reads `home` in `enqueue`.
        if self.home.swap(worker, Ordering::AcqRel) != worker {
            self.counters.migrations.fetch_add(1, Ordering::Relaxed);
            self.counters.moved_at_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// Puts the lane in its home worker's run queue if it was idle (lane protocol step 2).
    pub(crate) fn activate(self: &Arc<Self>) {
        if self.state.activate() {
            worker::enqueue_lane(Arc::clone(self));
        }
    }

    /// The schedule function of the lane's jobs: only the started job is ever woken, since a
    /// queued job's runnable sits in the queue (lane protocol step 4).
    pub(crate) fn job_woken(self: &Arc<Self>, runnable: JobRunnable) {
        if let Some(stale) = self.ready.swap(Some(runnable)) {
            // Two started jobs would break the lane's one-at-a-time rule; never expected.
            debug_assert!(false, "lane {} had two ready jobs", self.id);
            drop_contained(stale);
        }
        self.activate();
    }

    /// Closes the lane: later submissions are refused, queued jobs still run.
    pub(crate) fn close(self: &Arc<Self>) {
        if let Some(accepted) = self.state.close() {
            // Release: pairs with the Acquire in `is_drained_now`.
            self.accepted_at_close.store(accepted, Ordering::Release);
        }
        // Let the worker notice the close (and the drain, if the lane is empty).
        self.activate();
    }

    /// Closes the lane and cancels its queued jobs and, at its next poll, its started one.
    pub(crate) fn abort(self: &Arc<Self>) {
        if let Some(accepted) = self.state.abort() {
            // Release: as in `close`.
            self.accepted_at_close.store(accepted, Ordering::Release);
        }
        // A started job that waits is woken, so that it sees the abort at its next poll.
        let waker = self.job_waker.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
        self.activate();
    }

    /// Whether the lane is closed and every job it accepted has been taken and ended.
    pub(crate) fn is_drained_now(&self) -> bool {
        // Acquire: pairs with the Release in `close` and `abort`.
        let accepted = self.accepted_at_close.load(Ordering::Acquire);
        accepted != u64::MAX
            && !self.sched.in_progress.load(Ordering::Relaxed)
            && self.sched.started.load(Ordering::Relaxed) == accepted
    }

    /// Drops every job the lane holds, each ending as cancelled. Used only once the lane's
    /// worker has stopped, by whoever holds the lane's run queue entry (S2).
    pub(crate) fn cancel_contents(&self) {
        if let Some(runnable) = self.ready.take() {
            drop(runnable);
            self.count_end(End::Cancelled);
        }
        while let Some(runnable) = self.queue.pop() {
            add(&self.sched.started, 1);
            drop(runnable);
            self.count_end(End::Cancelled);
        }
        if self.sched.in_progress.swap(false, Ordering::Relaxed) {
            // A started job that nobody woke: its waker is all that holds it.
            let waker = self.job_waker.lock().take();
            drop(waker);
        }
    }

    /// Counts a job's end; by the holder of the lane's run queue entry only.
    pub(crate) fn count_end(&self, end: End) {
        let counter = match end {
            End::Completed => &self.counters.completed,
            End::Panicked => &self.counters.panicked,
            End::Cancelled => &self.counters.cancelled,
        };
        add(counter, 1);
    }
}

/// Adds to a counter that only the holder of the lane's run queue entry writes (S2, S3): a
/// load and a store, no read-modify-write. Relaxed, as for all scheduling data.
pub(crate) fn add(counter: &AtomicU64, amount: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).saturating_add(amount),
        Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    use super::{JobMeta, JobQueue, JobRunnable};
    use crate::{Runtime, block_on};

    /// A runnable that is never run, told apart by its submission time.
    fn job(submitted_ns: u64) -> JobRunnable {
        let meta = JobMeta {
            submitted_ns,
            started_ns: AtomicU64::new(0),
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn(|_| async {}, |_| {});
        task.detach();
        runnable
    }

    fn submitted(popped: (Option<JobRunnable>, bool)) -> (Option<u64>, bool) {
        let (runnable, more) = popped;
        (
            runnable.map(|runnable| runnable.metadata().submitted_ns),
            more,
        )
    }

    #[test]
    fn the_job_queue_keeps_submission_order_across_its_inline_slot_and_its_ring() {
        let queue = JobQueue::default();
        assert_eq!(submitted(queue.pop_for_turn()), (None, false));

        // One job at a time: it comes back alone, with nothing behind it.
        queue.push(job(1));
        assert!(queue.may_have_jobs());
        assert_eq!(submitted(queue.pop_for_turn()), (Some(1), false));
        assert!(!queue.may_have_jobs());

        // Several, pushed around pops: first in, first out, and `more` says what is left.
        queue.push(job(2));
        queue.push(job(3));
        queue.push(job(4));
        assert_eq!(submitted(queue.pop_for_turn()), (Some(2), true));
        queue.push(job(5));
        assert_eq!(submitted(queue.pop_for_turn()), (Some(3), true));
        assert_eq!(submitted(queue.pop_for_turn()), (Some(4), true));
        assert_eq!(queue.pop().map(|job| job.metadata().submitted_ns), Some(5));
        assert_eq!(submitted(queue.pop_for_turn()), (None, false));
        assert!(queue.pop().is_none());
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A submitter preempted in the middle of its push holds the lane's queue lock. The
    /// worker must not wait for it: its turn of that lane ends, other work runs, and the job
    /// runs once the submitter has pushed it and activated the lane (`JobQueue`).
    #[test]
    fn a_turn_that_finds_the_queue_locked_moves_on_and_the_job_runs_after_its_push() {
        let runtime = Runtime::builder().workers(1).build().expect("a runtime");
        let lane = runtime.lane(()).expect("a lane");
        let core = Arc::clone(&lane.inner.core);

        // Stand in for the submitter mid-push, then give the lane a turn to look at it.
        let held = core.queue.0.lock();
        core.activate();
        wait_until("the lane's turn", || lane.stats().turns >= 1);

        // The worker did not wait at the lock: a task on it runs to its end.
        let task = runtime.spawn_on(0, async { 7 }).expect("worker 0");
        wait_until("a task on the worker", || task.is_finished());
        assert_eq!(block_on(task).expect("off the workers").expect("joins"), 7);

        // A real submitter queues behind the lock; once the lock is free its push and its
        // activation go through, and the job runs exactly once.
        let submitter = {
            let lane = lane.clone();
            std::thread::spawn(move || block_on(lane.call(|()| 11)).expect("off the workers"))
        };
        wait_until("the submission to be counted", || {
            core.state.load().submissions() >= 1
        });
        drop(held);
        let value = submitter.join().expect("the submitter").expect("the job");
        assert_eq!(value, 11);
        wait_until("the job's end to be counted", || {
            lane.stats().completed == 1
        });
        assert_eq!(lane.stats().completed, 1);
    }
}
