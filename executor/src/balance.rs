//! Load-aware balancing: moving lanes from the busiest worker to the idlest.
//!
//! When switched on ([`crate::Builder::balance`]), a thread named `corelane-balancer` wakes
//! every period and, in steps:
//!
//! 1. Reads each worker's busy time and keeps a moving average of its load (the busy
//!    fraction of the period, averaged half-and-half with the previous value).
//! 2. Compares the busiest worker with the idlest. Past `threshold`, the runtime counts as
//!    imbalanced, and stays so until the gap falls under half the threshold (hysteresis).
//! 3. While imbalanced, moves at most one lane per period from the busiest to the idlest: an
//!    unpinned lane that has not moved within `min_interval`, whose own recent load is below
//!    the gap (so the move narrows it rather than flipping it), the one closest to half the
//!    gap. If the move would leave lane counts more than one apart (registry invariant R1),
//!    the idlest worker's lightest movable lane goes the other way.
//!
//! Every move goes through the registry and the lane protocol's step 6, so a lane moves
//! with its queued and started jobs, without loss or overlap.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::lane::core::LaneCore;
use crate::runtime::RuntimeShared;

/// Settings for load-aware balancing.
#[derive(Clone, Debug, PartialEq)]
pub struct Balance {
    /// How often loads are compared (default 100 ms).
    pub period: Duration,
    /// The gap in busy fraction (0 to 1) between the busiest and the idlest worker past which
    /// lanes move (default 0.25).
    pub threshold: f64,
    /// The least time between two automatic moves of one lane (default 1 s).
    pub min_interval: Duration,
}

impl Default for Balance {
    fn default() -> Balance {
        Balance {
            period: Duration::from_millis(100),
            threshold: 0.25,
            min_interval: Duration::from_secs(1),
        }
    }
}

/// Why balancing settings cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BalanceError {
    /// A period of zero.
    #[error("the balancing period must be longer than zero")]
    ZeroPeriod,
    /// A threshold outside (0, 1].
    #[error("threshold {0} is out of range: it must be more than 0 and at most 1")]
    Threshold(f64),
}

impl Balance {
    pub(crate) fn check(&self) -> Result<(), BalanceError> {
        if self.period.is_zero() {
            return Err(BalanceError::ZeroPeriod);
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(BalanceError::Threshold(self.threshold));
        }
        Ok(())
    }
}

/// Starts the balancer thread.
pub(crate) fn start(
    runtime: Arc<RuntimeShared>,
    balance: Balance,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("corelane-balancer".to_owned())
        .spawn(move || {
            let mut balancer = Balancer::new(&runtime, balance);
            while runtime.balancer_wait(balancer.config.period) {
                balancer.step(&runtime);
            }
        })
}

/// Tells the balancer thread to exit.
pub(crate) fn stop(runtime: &RuntimeShared) {
    runtime.balancer_stop();
}

struct Balancer {
    config: Balance,
    /// Moving average of each worker's busy fraction.
    loads: Vec<f64>,
    /// Each worker's busy time at the previous step.
    last_busy: Vec<u64>,
    /// Each lane's run time at the previous step.
    last_run: HashMap<u64, u64>,
    imbalanced: bool,
    last_ns: u64,
}

impl Balancer {
    fn new(runtime: &RuntimeShared, config: Balance) -> Balancer {
        let now = runtime.config.clock.now_ns();
        Balancer {
            config,
            loads: vec![0.0; runtime.workers.len()],
            last_busy: runtime
                .workers
                .iter()
                .map(|worker| worker.busy_ns(now))
                .collect(),
            last_run: HashMap::new(),
            imbalanced: false,
            last_ns: now,
        }
    }

    fn step(&mut self, runtime: &RuntimeShared) {
        let now = runtime.config.clock.now_ns();
        let period = now.saturating_sub(self.last_ns).max(1) as f64;
        self.last_ns = now;

        // Step 1.
        for (index, worker) in runtime.workers.iter().enumerate() {
            let busy = worker.busy_ns(now);
            let sample = (busy.saturating_sub(self.last_busy[index]) as f64 / period).min(1.0);
            self.last_busy[index] = busy;
            self.loads[index] = 0.5 * self.loads[index] + 0.5 * sample;
        }
        let lanes: Vec<Vec<(Arc<LaneCore>, f64)>> = (0..runtime.workers.len())
            .map(|worker| {
                let lanes = runtime.lanes.lanes_on(worker);
                lanes
                    .into_iter()
                    .map(|lane| (Arc::clone(&lane), self.recent_load(&lane, period)))
                    .collect()
            })
            .collect();
        if runtime.workers.len() < 2 {
            return;
        }

        // Step 2.
        let by_load = |a: &usize, b: &usize| self.loads[*a].total_cmp(&self.loads[*b]);
        let workers = 0..runtime.workers.len();
        let (Some(hot), Some(cold)) = (workers.clone().max_by(by_load), workers.min_by(by_load))
        else {
            return;
        };
        let gap = self.loads[hot] - self.loads[cold];
        self.imbalanced = still_imbalanced(self.imbalanced, gap, self.config.threshold);
        if !self.imbalanced || hot == cold {
            return;
        }

        // Step 3.
        let min_interval = crate::clock::saturating_nanos(self.config.min_interval);
        let movable = |lane: &LaneCore| movable(lane, now, min_interval);
        let candidate = lanes[hot]
            .iter()
            .filter(|(lane, load)| movable(lane) && *load > 0.0 && *load < gap)
            .max_by(|(_, a), (_, b)| a.min(gap - a).total_cmp(&b.min(gap - b)));
        let Some((lane, load)) = candidate else {
            return;
        };
        if runtime.lanes.move_lane(lane, cold, false, now).is_err() {
            return;
        }
        self.loads[hot] -= load;
        self.loads[cold] += load;

        if lanes[cold].len() + 1 > lanes[hot].len() {
            let light = lanes[cold]
                .iter()
                .filter(|(lane, _)| movable(lane))
                .min_by(|(_, a), (_, b)| a.total_cmp(b));
            if let Some((light, light_load)) = light
                && runtime.lanes.move_lane(light, hot, false, now).is_ok()
            {
                self.loads[cold] -= light_load;
                self.loads[hot] += light_load;
            }
        }
    }

    /// A lane's busy fraction since the previous step.
    fn recent_load(&mut self, lane: &LaneCore, period: f64) -> f64 {
        let run = lane
            .counters
            .run_ns
            .load(std::sync::atomic::Ordering::Relaxed);
        let last = self.last_run.insert(lane.id, run).unwrap_or(run);
        run.saturating_sub(last) as f64 / period
    }
}

/// Step 2's hysteresis: imbalance begins past `threshold` and lasts until the gap falls under
/// half of it.
fn still_imbalanced(was: bool, gap: f64, threshold: f64) -> bool {
    if was {
        gap >= threshold / 2.0
    } else {
        gap > threshold
    }
}

/// Step 3: whether the balancer may move `lane` at `now_ns`: it is not pinned, and it has not
/// moved within `min_interval_ns`.
fn movable(lane: &LaneCore, now_ns: u64, min_interval_ns: u64) -> bool {
    !lane.pinned.load(std::sync::atomic::Ordering::Relaxed)
        && lane
            .last_moved_ns()
            .is_none_or(|moved| now_ns.saturating_sub(moved) >= min_interval_ns)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Clock, Runtime};

    #[test]
    fn imbalance_begins_past_the_threshold_and_ends_under_half_of_it() {
        let threshold = 0.4;
        assert!(!still_imbalanced(false, 0.4, threshold));
        assert!(still_imbalanced(false, 0.41, threshold));
        // Once imbalanced, a gap between half the threshold and the threshold keeps it so.
        assert!(still_imbalanced(true, 0.3, threshold));
        assert!(still_imbalanced(true, 0.2, threshold));
        assert!(!still_imbalanced(true, 0.19, threshold));
        // And a gap in that band does not begin it.
        assert!(!still_imbalanced(false, 0.3, threshold));
    }

    #[test]
    fn a_lane_that_moved_waits_the_minimum_interval_and_a_pinned_one_never_moves() {
        let runtime = Runtime::builder()
            .workers(2)
            .clock(Clock::manual())
            .build()
            .unwrap();
        let shared = &runtime.handle().shared;
        let free = runtime.lane_builder().build(()).unwrap();
        let pinned = runtime.lane_builder().worker(1).build(()).unwrap();
        let core = |worker: usize| shared.lanes.lanes_on(worker);
        let free_core = core(free.worker())
            .into_iter()
            .find(|lane| !lane.pinned.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap();
        let pinned_core = core(1)
            .into_iter()
            .find(|lane| lane.pinned.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap();
        let interval = 1_000_000;

        assert!(movable(&free_core, 0, interval));
        assert!(!movable(&pinned_core, u64::MAX, interval));
        // An automatic move at 5 ms: not again before 6 ms.
        let to = 1 - free_core.home();
        shared
            .lanes
            .move_lane(&free_core, to, false, 5_000_000)
            .unwrap();
        assert!(!movable(&free_core, 5_999_999, interval));
        assert!(movable(&free_core, 6_000_000, interval));
        drop((free, pinned));
    }
}
