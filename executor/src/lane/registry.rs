//! Which lanes live on which worker, and keeping their counts even.
//!
//! A new lane goes to the worker with the fewest lanes (the lowest index among equals), so
//! that lane counts never differ by more than one (invariant R1). When a lane drains and
//! leaves, one unpinned lane moves from a fullest worker to the emptiest if R1 would break.
//! Lanes placed or moved by hand are pinned and never moved automatically, so with pinned
//! lanes R1 holds only as far as the unpinned ones allow.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::LaneError;
use super::core::LaneCore;

pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Lanes by worker, by id.
    per_worker: Vec<BTreeMap<u64, Arc<LaneCore>>>,
    /// Set when the runtime begins to shut down: no lane is placed after it.
    closed: bool,
}

impl Registry {
    pub(crate) fn new(workers: usize) -> Registry {
        Registry {
            inner: Mutex::new(Inner {
                per_worker: vec![BTreeMap::new(); workers],
                closed: false,
            }),
        }
    }

    /// Places a new lane, made by `create` for its worker: `requested` (pinned there), or the
    /// emptiest worker (R1).
    pub(crate) fn place(
        &self,
        requested: Option<usize>,
        create: impl FnOnce(usize) -> LaneCore,
    ) -> Result<Arc<LaneCore>, LaneError> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(LaneError::ShuttingDown);
        }
        let workers = inner.per_worker.len();
        let worker = match requested {
            Some(worker) if worker >= workers => {
                return Err(LaneError::NoSuchWorker { worker, workers });
            }
            Some(worker) => worker,
            None => emptiest(&inner.per_worker),
        };
        let lane = Arc::new(create(worker));
        lane.pinned.store(requested.is_some(), Ordering::Relaxed);
        inner.per_worker[worker].insert(lane.id, Arc::clone(&lane));
        Ok(lane)
    }

    /// Removes a drained lane, then restores R1 with at most one move.
    pub(crate) fn remove(&self, lane: &LaneCore, now_ns: u64) {
        let mut inner = self.inner.lock();
        let home = lane.home();
        if inner.per_worker[home].remove(&lane.id).is_none() {
            return;
        }
        let fullest = fullest(&inner.per_worker);
        let emptiest = emptiest(&inner.per_worker);
        if inner.per_worker[fullest].len() <= inner.per_worker[emptiest].len() + 1 {
            return;
        }
        let movable = inner.per_worker[fullest]
            .values()
            .find(|lane| !lane.pinned.load(Ordering::Relaxed))
            .cloned();
        if let Some(lane) = movable {
            relocate(&mut inner, &lane, emptiest, now_ns);
        }
    }

    /// Moves `lane` to `to`. `pin` keeps it there against automatic moves.
    pub(crate) fn move_lane(
        &self,
        lane: &Arc<LaneCore>,
        to: usize,
        pin: bool,
        now_ns: u64,
    ) -> Result<(), LaneError> {
        let mut inner = self.inner.lock();
        let workers = inner.per_worker.len();
        if to >= workers {
            return Err(LaneError::NoSuchWorker {
                worker: to,
                workers,
            });
        }
        if !inner.per_worker[lane.home()].contains_key(&lane.id) {
            return Err(LaneError::Drained);
        }
        if pin {
            lane.pinned.store(true, Ordering::Relaxed);
        }
        relocate(&mut inner, lane, to, now_ns);
        Ok(())
    }

    /// Refuses new lanes and closes every lane (shutdown phase 1).
    pub(crate) fn close_all(&self) {
        let mut inner = self.inner.lock();
        inner.closed = true;
        inner
            .per_worker
            .iter()
            .flat_map(BTreeMap::values)
            .for_each(LaneCore::close);
    }

    /// Aborts every lane (shutdown phase 3).
    pub(crate) fn abort_all(&self) {
        let inner = self.inner.lock();
        inner
            .per_worker
            .iter()
            .flat_map(BTreeMap::values)
            .for_each(LaneCore::abort);
    }

    /// Forgets every lane and returns them (shutdown phase 5).
    pub(crate) fn take_all(&self) -> Vec<Arc<LaneCore>> {
        let mut inner = self.inner.lock();
        inner
            .per_worker
            .iter_mut()
            .flat_map(std::mem::take)
            .map(|(_, lane)| lane)
            .collect()
    }

    /// Jobs accepted by closed lanes and not yet ended.
    pub(crate) fn live_jobs(&self) -> u64 {
        let inner = self.inner.lock();
        inner
            .per_worker
            .iter()
            .flat_map(BTreeMap::values)
            .map(|lane| {
                // Acquire: pairs with the Release in `LaneCore::close`.
                let accepted = lane.accepted_at_close.load(Ordering::Acquire);
                let accepted = if accepted == u64::MAX {
                    lane.state.load().submissions()
                } else {
                    accepted
                };
                accepted.saturating_sub(lane.counters.ended())
            })
            .sum()
    }

    pub(crate) fn counts(&self) -> Vec<usize> {
        self.inner
            .lock()
            .per_worker
            .iter()
            .map(BTreeMap::len)
            .collect()
    }

    pub(crate) fn lanes_on(&self, worker: usize) -> Vec<Arc<LaneCore>> {
        let inner = self.inner.lock();
        inner
            .per_worker
            .get(worker)
            .map(|lanes| lanes.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn emptiest(per_worker: &[BTreeMap<u64, Arc<LaneCore>>]) -> usize {
    (0..per_worker.len())
        .min_by_key(|&i| (per_worker[i].len(), i))
        .unwrap_or(0)
}

fn fullest(per_worker: &[BTreeMap<u64, Arc<LaneCore>>]) -> usize {
    (0..per_worker.len())
        .max_by_key(|&i| (per_worker[i].len(), usize::MAX - i))
        .unwrap_or(0)
}

fn relocate(inner: &mut Inner, lane: &Arc<LaneCore>, to: usize, now_ns: u64) {
    let from = lane.home();
    if from == to {
        return;
    }
    if let Some(lane) = inner.per_worker[from].remove(&lane.id) {
        inner.per_worker[to].insert(lane.id, lane);
    }
    lane.set_home(to, now_ns);
}
