//! A lane's turn on its worker, and the worker's run queue of lanes.
//!
//! The run queue orders lanes by weighted virtual runtime, as CFS orders threads and glommio
//! its task queues: a lane that ran for `t` nanoseconds with weight `w` advances by
//! `t * DEFAULT_WEIGHT / w`, and the lane furthest behind goes next. Equal weights share time
//! equally; weights 1:2:4 get 1/7, 2/7 and 4/7 of the busy time. A lane that was idle comes
//! back no further behind than the queue's minimum less half a slice, so sleeping earns it a
//! quick turn but no burst; a lane that arrives from another worker starts at the minimum.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::DEFAULT_WEIGHT;
use super::core::LaneCore;
use super::job::enter_lane;
use crate::worker::{self, Local};

/// The lanes of one worker that have work, furthest behind first.
#[derive(Default)]
pub(crate) struct LaneQueue {
    heap: BinaryHeap<Entry>,
    /// Never decreases: the virtual runtime of the last lane to start a turn.
    min_vruntime: u64,
    /// Breaks ties first come, first served.
    next_seq: u64,
}

struct Entry {
    vruntime: u64,
    seq: u64,
    lane: Arc<LaneCore>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.vruntime, self.seq) == (other.vruntime, other.seq)
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
        (other.vruntime, other.seq).cmp(&(self.vruntime, self.seq))
    }
}

impl LaneQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Queues a lane on worker `worker`; see the module documentation for its position.
    pub(crate) fn insert(&mut self, lane: Arc<LaneCore>, worker: usize, wake_credit_ns: u64) {
        // Relaxed: scheduling data, ordered by the state word (see `Sched`).
        let sched = &lane.sched;
        let vruntime = if sched.vruntime_worker.swap(worker, Ordering::Relaxed) == worker {
            let floor = self.min_vruntime.saturating_sub(wake_credit_ns);
            sched.vruntime.load(Ordering::Relaxed).max(floor)
        } else {
            self.min_vruntime
        };
        sched.vruntime.store(vruntime, Ordering::Relaxed);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
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
    /// The slice's job count or time budget is spent.
    Budget,
}

impl Local {
    /// Moves lanes activated from other threads into the run queue.
    fn take_remote_lanes(&self) {
        while let Some(lane) = worker::steal(&self.shared.lane_injector) {
            self.lanes
                .borrow_mut()
                .insert(lane, self.index(), self.wake_credit_ns);
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
        self.run_turn(lane);
        true
    }

    /// Lane protocol step 3: runs the lane's jobs, one at a time, until one waits, none is
    /// left, or the slice is spent; then charges the lane and queues it again if needed.
    fn run_turn(&self, lane: Arc<LaneCore>) {
        let config = &self.runtime.config;
        let clock = &config.clock;
        let start = self.fresh_now();
        let aborted = lane.state.load().is_aborted();
        let sched = &lane.sched;
        let counters = &lane.counters;

        let mut jobs = 0u32;
        let mut now = start;
        let mut now_is_fresh = true;
        let end = loop {
            // A stop request ends the turn: the jobs left are cancelled, not run.
            if self.shared.is_stopped() {
                break TurnEnd::Budget;
            }
            let runnable = match lane.ready.take() {
                Some(runnable) => runnable,
                // Relaxed: only the turn's holder touches the scheduling data (S3).
                None if sched.in_progress.load(Ordering::Relaxed) => break TurnEnd::JobPending,
                None => match lane.queue.pop() {
                    None => break TurnEnd::Empty,
                    Some(runnable) => {
                        sched.started.fetch_add(1, Ordering::Relaxed);
                        if aborted {
                            // Dropping a queued job cancels it (its hooks count it).
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
                        runnable
                    }
                },
            };

            // Lane protocol step 4: poll the started job.
            let ends_before = counters.ended();
            let yielded = {
                let _entered = enter_lane(lane.id);
                runnable.run()
            };
            if counters.ended() == ends_before {
                if yielded {
                    add(&counters.yields, 1);
                }
                now_is_fresh = false;
                break TurnEnd::JobPending;
            }
            sched.in_progress.store(false, Ordering::Relaxed);
            jobs += 1;

            // Lane protocol step 5: the slice's bounds.
            now = clock.now_ns();
            if jobs >= config.slice_jobs || now.saturating_sub(start) >= config.slice_time_ns {
                break TurnEnd::Budget;
            }
        };

        let end_ns = if now_is_fresh { now } else { clock.now_ns() };
        self.now_ns.set(end_ns);
        self.now_stale.set(false);
        let ran = end_ns.saturating_sub(start);
        let weight = u64::from(lane.weight.load(Ordering::Relaxed).max(1));
        add(&sched.vruntime, ran * u64::from(DEFAULT_WEIGHT) / weight);
        add(&counters.run_ns, ran);
        add(&counters.turns, 1);
        add(&self.shared.counters.lane_turns, 1);

        let more = matches!(end, TurnEnd::Budget) && !lane.queue.is_empty();
        if lane.is_drained_now() {
            self.runtime.lane_drained(&lane);
        }
        // Lane protocol step 3, end: invariant S4.
        if lane.state.end_turn(more) {
            worker::enqueue_lane(lane);
        }
    }
}

/// Adds to a counter that only the current turn's holder writes (S3): a load and a store,
/// no read-modify-write. Relaxed, as for all scheduling data.
fn add(counter: &std::sync::atomic::AtomicU64, amount: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(amount),
        Ordering::Relaxed,
    );
}
