//! Snapshots of the runtime's counters: per worker and per lane.
//!
//! A snapshot reads relaxed atomic counters, so its fields are each exact but may be read at
//! slightly different moments. Taking one costs a few loads per worker or lane.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::lane::core::LaneCore;
use crate::lane::{LaneId, nanos};
use crate::worker::{PIN_PINNED, WorkerShared};

/// A snapshot of one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStats {
    /// The worker's index.
    pub index: usize,
    /// The CPU the worker was to be pinned to, if pinning was asked for.
    pub cpu: Option<usize>,
    /// Whether the worker is pinned to `cpu`.
    pub pinned: bool,
    /// Tasks spawned onto the worker.
    pub tasks_spawned: u64,
    /// Tasks that ended on the worker.
    pub tasks_finished: u64,
    /// Task polls.
    pub polls: u64,
    /// Lane turns.
    pub lane_turns: u64,
    /// Time spent running tasks and lanes (not spinning or parked).
    pub busy: Duration,
    /// Times the worker parked.
    pub parks: u64,
    /// Tasks waiting in the worker's queues.
    pub queue_depth: usize,
    /// Lanes living on the worker.
    pub lanes: usize,
}

impl WorkerStats {
    pub(crate) fn of(worker: &WorkerShared, lanes: usize, now_ns: u64) -> WorkerStats {
        let counters = &worker.counters;
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        WorkerStats {
            index: worker.index,
            cpu: worker.cpu,
            pinned: worker.pin.load(Ordering::Relaxed) == PIN_PINNED,
            tasks_spawned: load(&counters.spawned),
            tasks_finished: load(&counters.finished),
            polls: load(&counters.polled),
            lane_turns: load(&counters.lane_turns),
            busy: Duration::from_nanos(worker.busy_ns(now_ns)),
            parks: load(&counters.parks),
            queue_depth: counters.local_depth.load(Ordering::Relaxed) + worker.injector.len(),
            lanes,
        }
    }
}

/// A snapshot of the whole runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeStats {
    /// One entry per worker, by index.
    pub workers: Vec<WorkerStats>,
}

/// A snapshot of one lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneStats {
    /// The lane's id.
    pub id: LaneId,
    /// The worker it lives on.
    pub worker: usize,
    /// Its weight.
    pub weight: u32,
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs refused because the lane was closed.
    pub refused: u64,
    /// Jobs that returned a value.
    pub completed: u64,
    /// Jobs whose poll panicked.
    pub panicked: u64,
    /// Jobs cancelled before they finished.
    pub cancelled: u64,
    /// Jobs accepted and not yet started.
    pub queued: u64,
    /// Time the lane's turns took, the turn in progress included.
    pub run_time: Duration,
    /// Total time jobs waited between submission and start.
    pub wait_time: Duration,
    /// The longest a job waited between submission and start.
    pub max_wait: Duration,
    /// Turns the lane had.
    pub turns: u64,
    /// Turns that ended because the started job yielded.
    pub yields: u64,
    /// Times the lane moved to another worker.
    pub migrations: u64,
    /// Whether the lane is closed.
    pub closed: bool,
    /// Whether the lane is drained.
    pub drained: bool,
}

impl LaneStats {
    /// Jobs that ended without a value: panicked or cancelled.
    pub fn failed(&self) -> u64 {
        self.panicked + self.cancelled
    }

    pub(crate) fn of(lane: &LaneCore, now_ns: u64) -> LaneStats {
        let counters = &lane.counters;
        let started = counters.turn_started_ns.load(Ordering::Relaxed);
        let current = if started == u64::MAX {
            0
        } else {
            now_ns.saturating_sub(started)
        };
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let refused = load(&counters.refused);
        let submitted = lane.state.load().submissions().saturating_sub(refused);
        LaneStats {
            id: LaneId(lane.id),
            worker: lane.home(),
            weight: lane.weight.load(Ordering::Relaxed),
            submitted,
            refused,
            completed: load(&counters.completed),
            panicked: load(&counters.panicked),
            cancelled: load(&counters.cancelled),
            queued: submitted.saturating_sub(load(&lane.sched.started)),
            run_time: nanos(load(&counters.run_ns).saturating_add(current)),
            wait_time: nanos(load(&counters.wait_ns)),
            max_wait: nanos(load(&counters.max_wait_ns)),
            turns: load(&counters.turns),
            yields: load(&counters.yields),
            migrations: load(&counters.migrations),
            closed: lane.state.load().is_closed(),
            drained: lane.drain.is_done(),
        }
    }
}
