//! A lane's turn on its worker, and the worker's run queue of lanes.
//!
//! The run queue orders lanes by weighted virtual runtime, as CFS orders threads and glommio
//! its task queues: a lane that ran for `t` nanoseconds with weight `w` advances by
//! `t * DEFAULT_WEIGHT / w`, and the lane furthest behind goes next. Equal weights share time
//! equally; weights 1:2:4 get 1/7, 2/7 and 4/7 of the busy time. A lane that was idle comes
//! back no further behind than the queue's minimum less half a slice, so sleeping earns it a
//! quick turn but no burst; a lane that arrives from another worker starts at the minimum.
//!
//! Virtual runtimes are compared in grains of an eighth of a slice, and lanes in the same
//! grain go first come, first served. Lanes whose short jobs have cost them nearly the same
//! time then run in the order they were activated, which is the order their submitters sent
//! the jobs: ordered by exact run time instead, a batch of jobs over a thousand lanes ends in
//! a shuffled order, and a submitter waiting for them in turn parks again and again (it
//! cost a third of the throughput over 1,000 lanes, and 40% over 10,000). A grain is
//! a quarter of the credit a waking lane gets, so a lane that wakes still goes ahead of a
//! busy lane that has run its last slice.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::task::Waker;

use super::DEFAULT_WEIGHT;
use super::core::{LaneCore, add};
use super::job::JobEnd;
use crate::worker::{self, Local};

/// The lanes of one worker that have work, furthest behind first.
pub(crate) struct LaneQueue {
    heap: BinaryHeap<Entry>,
    /// Never decreases: the largest virtual runtime of a lane that started a turn.
    min_vruntime: u64,
    /// Breaks ties first come, first served.
    next_seq: u64,
    /// How far below the minimum a waking lane's virtual runtime may be.
    wake_credit_ns: u64,
    /// The grain in which virtual runtimes are compared; at least 1.
    grain_ns: u64,
}

struct Entry {
    /// The lane's virtual runtime, in grains.
    grain: u64,
    vruntime: u64,
    seq: u64,
    lane: Arc<LaneCore>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.grain, self.seq) == (other.grain, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so that the max-heap yields the smallest virtual runtime.
    fn cmp(&self, other: &Entry) -> CmpOrdering {
        (other.grain, other.seq).cmp(&(self.grain, self.seq))
    }
}

impl LaneQueue {
    /// An empty run queue for a worker whose slices last `slice_ns`.
    pub(crate) fn new(slice_ns: u64) -> LaneQueue {
        let wake_credit_ns = slice_ns / 2;
        LaneQueue {
            heap: BinaryHeap::new(),
            min_vruntime: 0,
            next_seq: 0,
            wake_credit_ns,
            grain_ns: (wake_credit_ns / 4).max(1),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Queues a lane on worker `worker`; see the module documentation for its position.
    pub(crate) fn insert(&mut self, lane: Arc<LaneCore>, worker: usize) {
        // Relaxed: scheduling data, ordered by the state word (see `Sched`).
        let sched = &lane.sched;
        // A load and a store, not a swap: only the holder of the entry writes it (S2).
        let vruntime = if sched.vruntime_worker.load(Ordering::Relaxed) == worker {
            let floor = self.min_vruntime.saturating_sub(self.wake_credit_ns);
            sched.vruntime.load(Ordering::Relaxed).max(floor)
        } else {
            sched.vruntime_worker.store(worker, Ordering::Relaxed);
            self.min_vruntime
        };
        sched.vruntime.store(vruntime, Ordering::Relaxed);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            grain: vruntime / self.grain_ns,
            vruntime,
            seq,
            lane,
        });
    }

    pub(crate) fn pop(&mut self) -> Option<Arc<LaneCore>> {
        let entry = self.heap.pop()?;
        self.min_vruntime = self.min_vruntime.max(entry.vruntime);
        Some(entry.lane)
    }
}

/// Why a turn ended.
enum TurnEnd {
    /// The started job waits (or yielded); the lane keeps it and leaves the CPU.
    JobPending,
    /// Nothing left to start.
    Empty,
    /// The slice's job count or time budget is spent, or the worker is stopping.
    Budget,
}

impl Local {
    /// Moves lanes activated from other threads into the run queue.
    fn take_remote_lanes(&self) {
        while let Some(lane) = worker::steal(&self.shared.lane_injector) {
            self.lanes.borrow_mut().insert(lane, self.index());
        }
    }

    /// Step 2 of the worker loop: gives the lane furthest behind one turn. Returns whether
    /// there was a lane to look at.
    pub(crate) fn run_lane_turn(&self) -> bool {
        self.take_remote_lanes();
        let next = self.lanes.borrow_mut().pop();
        let Some(lane) = next else { return false };

        // Lane protocol step 6: a lane that moved away begins its turns on its new home.
        if lane.home() != self.index() {
            worker::enqueue_lane(lane);
            return true;
        }
        lane.state.begin_turn();

        // The lane is lent to the jobs' hooks for the turn (they borrow it shared).
        *self.running_lane.borrow_mut() = Some(lane);
        let more = match self.running_lane.borrow().as_ref() {
            Some(lane) => self.run_turn(lane),
            None => false,
        };
        let lane = self.running_lane.borrow_mut().take();
        if let Some(lane) = lane {
            // A stop request ended the turn and no later turn will come: what the lane still
            // holds is cancelled now (W3), a woken started job in its ready slot included.
            // The lane is no longer lent, so the jobs' hooks do not count these ends twice.
            if self.shared.is_stopped() {
                lane.cancel_contents();
            }
            self.finish_turn(lane, more);
        }
        true
    }

    /// Lane protocol steps 3 to 5: runs the lane's jobs, one at a time, until one waits, none
    /// is left, or the slice is spent; charges the lane. Returns whether work is left.
    fn run_turn(&self, lane: &LaneCore) -> bool {
        let config = &self.runtime.config;
        let clock = &config.clock;
        let start = self.fresh_now();
        let aborted = lane.state.load().is_aborted();
        let sched = &lane.sched;
        let counters = &lane.counters;
        // Relaxed: read by stats, which count the turn in progress too.
        counters.turn_started_ns.store(start, Ordering::Relaxed);
        // Preemption step 1 (`preempt.rs`); Relaxed, as that module says. The turn's first
        // job tells since when it has run (below).
        self.shared.preempt_asked.store(false, Ordering::Relaxed);
        let mut first_job = true;

        let mut jobs = 0u32;
        // Whether the queue may hold a job: the last pop saw another behind it.
        let mut queued_more = true;
        let mut now = start;
        let mut now_is_fresh = true;
        let end = loop {
            // A stop request ends the turn: the jobs left are cancelled, not run.
            if self.shared.is_stopped() {
                break TurnEnd::Budget;
            }
            // Relaxed: only the turn's holder touches the scheduling data (S3).
            let runnable = if sched.in_progress.load(Ordering::Relaxed) {
                // Step 4: only the started job can be woken, and only it may run.
                match lane.ready.take() {
                    Some(runnable) => runnable,
                    None => break TurnEnd::JobPending,
                }
            } else {
                // The last pop left the queue empty. A job queued since was followed by an
                // activation, which set SCHEDULED during the turn (S4): a load tells, where
                // another pop would take the queue's lock.
                if !queued_more && !lane.state.load().is_scheduled() {
                    break TurnEnd::Empty;
                }
                let (next, more) = lane.queue.pop_for_turn();
                queued_more = more;
                match next {
                    None => break TurnEnd::Empty,
                    Some(runnable) => {
                        add(&sched.started, 1);
                        if aborted {
                            // Step 8: a queued job of an aborted lane is dropped, cancelled
                            // (its hooks count it).
                            drop(runnable);
                            jobs += 1;
                            continue;
                        }
                        let wait = now.saturating_sub(runnable.metadata().submitted_ns);
                        add(&counters.wait_ns, wait);
                        let max_wait = counters.max_wait_ns.load(Ordering::Relaxed);
                        counters
                            .max_wait_ns
                            .store(max_wait.max(wait), Ordering::Relaxed);
                        sched.in_progress.store(true, Ordering::Relaxed);
                        runnable.metadata().started_ns.store(now, Ordering::Relaxed);
                        runnable
                    }
                }
            };

            if first_job {
                // A job resumed by this turn has run since it started, not since the turn
                // began: a long job is asked again at the next arrival.
                first_job = false;
                let since = runnable.metadata().started_ns.load(Ordering::Relaxed);
                self.shared.running_since_ns.store(since, Ordering::Relaxed);
            }

            // Poll the started job; its hooks tell us if it ended.
            self.job_end.set(None);
            let yielded = runnable.run();
            let Some(ended) = self.job_end.take() else {
                if yielded {
                    add(&counters.yields, 1);
                }
                now_is_fresh = false;
                break TurnEnd::JobPending;
            };
            sched.in_progress.store(false, Ordering::Relaxed);
            if ended.waited {
                *lane.job_waker.lock() = None;
            }
            jobs += 1;

            // Step 5: the slice's bounds. A preemption request ends the slice too: work
            // has arrived behind it (`preempt.rs`, step 3).
            if self.shared.preempt_asked.load(Ordering::Relaxed) {
                now_is_fresh = false;
                break TurnEnd::Budget;
            }
            now = clock.now_ns();
            if jobs >= config.slice_jobs || now.saturating_sub(start) >= config.slice_time_ns {
                break TurnEnd::Budget;
            }
        };

        let end_ns = if now_is_fresh { now } else { clock.now_ns() };
        self.now_ns.set(end_ns);
        self.now_stale.set(false);
        self.shared
            .running_since_ns
            .store(u64::MAX, Ordering::Relaxed);
        let ran = end_ns.saturating_sub(start);
        let weight = u64::from(lane.weight.load(Ordering::Relaxed).max(1));
        // Saturating: a manual clock can make `ran` as large as it likes.
        let charge = ran.saturating_mul(u64::from(DEFAULT_WEIGHT)) / weight;
        add(&sched.vruntime, charge);
        add(&counters.run_ns, ran);
        counters.turn_started_ns.store(u64::MAX, Ordering::Relaxed);
        add(&counters.turns, 1);
        add(&self.shared.counters.lane_turns, 1);
        matches!(end, TurnEnd::Budget) && lane.queue.may_have_jobs()
    }

    /// The end of a turn: the drain check (step 8), then invariant S4.
    fn finish_turn(&self, lane: Arc<LaneCore>, more: bool) {
        if lane.is_drained_now() {
            self.runtime.lane_drained(&lane);
        }
        if lane.state.end_turn(more) {
            worker::enqueue_lane(lane);
        }
    }

    /// A job of lane `lane` ended on this thread. If it is the running lane's, count it (before
    /// its output reaches its handle) and tell the turn.
    pub(crate) fn job_ended(&self, lane: u64, end: JobEnd) {
        let Ok(running) = self.running_lane.try_borrow() else {
            return;
        };
        if let Some(running) = running.as_ref()
            && running.id == lane
        {
            running.count_end(end.end);
            self.job_end.set(Some(end));
        }
    }

    /// The id of the lane whose turn this worker is running, if any.
    pub(crate) fn running_lane_id(&self) -> Option<u64> {
        self.running_lane
            .try_borrow()
            .ok()?
            .as_ref()
            .map(|lane| lane.id)
    }

    /// Whether the lane whose turn this worker is running has been aborted.
    pub(crate) fn running_lane_is_aborted(&self) -> bool {
        let Ok(running) = self.running_lane.try_borrow() else {
            return false;
        };
        running
            .as_ref()
            .is_some_and(|lane| lane.state.load().is_aborted())
    }

    /// Keeps the waker of the running lane's started job, which has begun to wait, so that an
    /// abort or a shutdown can wake it (step 8).
    pub(crate) fn keep_job_waker(&self, waker: &Waker) {
        let Ok(running) = self.running_lane.try_borrow() else {
            return;
        };
        let Some(lane) = running.as_ref() else { return };
        *lane.job_waker.lock() = Some(waker.clone());
        // An abort that came while this poll ran found no waker to wake: wake the job, so that
        // its next poll sees the abort.
        if lane.state.load().is_aborted() {
            waker.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::LaneQueue;
    use crate::lane::core::LaneCore;
    use crate::worker::WorkerShared;

    const SLICE_NS: u64 = 1_000_000;
    const US: u64 = 1_000;

    /// Lanes on worker 0 whose virtual runtimes, measured there, are `vruntimes`.
    fn lanes(vruntimes: &[u64]) -> Vec<Arc<LaneCore>> {
        let workers: Arc<[Arc<WorkerShared>]> =
            Arc::from(vec![Arc::new(WorkerShared::new(0, None, None))]);
        let lanes: Vec<Arc<LaneCore>> = vruntimes
            .iter()
            .zip(1..)
            .map(|(&vruntime, id)| {
                let lane = LaneCore::new(id, 100, 0, Arc::clone(&workers));
                lane.sched.vruntime_worker.store(0, Ordering::Relaxed);
                lane.sched.vruntime.store(vruntime, Ordering::Relaxed);
                Arc::new(lane)
            })
            .collect();
        lanes
    }

    fn pop_ids(queue: &mut LaneQueue) -> Vec<u64> {
        std::iter::from_fn(|| queue.pop().map(|lane| lane.id)).collect()
    }

    #[test]
    fn lanes_within_one_grain_leave_in_the_order_they_came() {
        let mut queue = LaneQueue::new(SLICE_NS);
        // The grain is 125 us: these three differ by less, and came furthest behind last.
        for lane in lanes(&[20 * US, 10 * US, 0]) {
            queue.insert(lane, 0);
        }
        assert_eq!(pop_ids(&mut queue), [1, 2, 3]);
    }

    #[test]
    fn a_lane_a_grain_behind_goes_first() {
        let mut queue = LaneQueue::new(SLICE_NS);
        for lane in lanes(&[300 * US, 0]) {
            queue.insert(lane, 0);
        }
        assert_eq!(pop_ids(&mut queue), [2, 1]);
    }

    #[test]
    fn a_waking_lane_goes_ahead_of_a_busy_lane_whatever_their_order() {
        let mut queue = LaneQueue::new(SLICE_NS);
        let mut made = lanes(&[10 * SLICE_NS, 0]).into_iter();
        let (busy, waking) = (made.next().unwrap(), made.next().unwrap());

        // The busy lane takes a turn, which sets the queue's minimum to its virtual runtime,
        // and comes back uncharged (the least it can be), before the waking lane arrives.
        queue.insert(Arc::clone(&busy), 0);
        assert_eq!(queue.pop().map(|lane| lane.id), Some(busy.id));
        queue.insert(busy, 0);
        queue.insert(waking, 0);
        assert_eq!(pop_ids(&mut queue), [2, 1]);
    }
}
