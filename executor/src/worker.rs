//! The worker: one OS thread running one single-threaded executor.
//!
//! Each worker owns a local FIFO of task runnables, filled from its own thread, and a
//! lock-free injector that any other thread fills; likewise for lanes, a run queue ordered by
//! weighted virtual runtime (`lane/turn.rs`) and an injector of lanes activated elsewhere.
//!
//! The loop, in steps:
//!
//! 1. Run a batch of at most [`TASK_BATCH`] tasks, taking from the local queue first but
//!    from the injector first every [`INJECTOR_INTERVAL`] picks, so neither starves (W1).
//! 2. Give one lane a turn (`lane/turn.rs`): a bounded slice of its jobs.
//! 3. With nothing done in steps 1 and 2, spin for a while, then park (`park.rs`). The spin
//!    is skipped while other threads wait for the worker's CPU (`contention.rs`).
//! 4. Once its runtime asks it to stop, cancel everything it holds (see [`Local::cancel_all`]).
//!
//! Invariants:
//!
//! - W1. Neither queue starves: the injector is looked at first every `INJECTOR_INTERVAL`
//!   picks, and the local queue is looked at first otherwise; lanes get a turn after every
//!   task batch, and tasks a batch after every lane turn.
//! - W2. A task goes only to the worker it was spawned on; a yielding task goes to the back of
//!   the local queue, after everything ready in either queue (there is no LIFO slot).
//! - W3. After a worker has stopped, nothing stays in its queues: a remote push re-checks the
//!   stop flag after pushing and drains the queue itself if the worker stopped meanwhile.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Waker};

use async_task::{Runnable, ScheduleInfo};
use crossbeam_deque::{Injector, Steal};
use crossbeam_utils::CachePadded;
use slab::Slab;

use crate::contention::Contention;
use crate::lane::core::LaneCore;
use crate::lane::job::JobEnd;
use crate::lane::turn::LaneQueue;
use crate::park::Sleeper;
use crate::preempt::Preempt;
use crate::runtime::RuntimeShared;

/// Tasks run in a row before a lane gets a turn.
pub(crate) const TASK_BATCH: usize = 32;
/// Picks after which the injector is looked at before the local queue.
pub(crate) const INJECTOR_INTERVAL: u32 = 16;

/// Pinning outcome, for the stats.
pub(crate) const PIN_PENDING: u8 = 0;
pub(crate) const PIN_PINNED: u8 = 1;
pub(crate) const PIN_UNPINNED: u8 = 2;

/// The part of a worker that other threads reach.
pub(crate) struct WorkerShared {
    /// Unique in the process, so that a task of one runtime never mistakes another runtime's
    /// worker for its own.
    pub(crate) uid: u64,
    pub(crate) index: usize,
    /// The CPU this worker is to be pinned to, if any.
    pub(crate) cpu: Option<usize>,
    pub(crate) pin: AtomicU8,
    /// Tasks scheduled from other threads.
    pub(crate) injector: Injector<Runnable>,
    /// Lanes activated from other threads.
    pub(crate) lane_injector: Injector<Arc<LaneCore>>,
    pub(crate) sleeper: Sleeper,
    /// Set by the runtime to make the worker cancel everything and exit (W3).
    pub(crate) stopped: AtomicBool,
    /// Set by the worker as its thread ends.
    pub(crate) exited: AtomicBool,
    // The worker writes the next three at every turn or task batch. Each has cache lines of
    // its own, so that those writes do not take away from other threads the line that holds
    // `stopped` and the sleeper's state, which every thread that gives this worker work reads
    // (false sharing cost each remote push two cache misses, and the worker two at each turn).
    /// Since when the lane turn in progress has been running its job, on the runtime's
    /// clock; `u64::MAX` between turns (`preempt.rs`, step 1).
    pub(crate) running_since_ns: CachePadded<AtomicU64>,
    /// A preemption was asked for during the turn in progress (`preempt.rs`, step 2).
    pub(crate) preempt_asked: CachePadded<AtomicBool>,
    pub(crate) counters: CachePadded<WorkerCounters>,
    /// The runtime's preemption hook, if it has one.
    preempt: Option<Arc<Preempt>>,
}

/// Counters for [`crate::WorkerStats`]; written by the worker (stores of its own running
/// totals) or by spawners (`spawned`). Relaxed: statistics, and a load estimate.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) spawned: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) polled: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) local_depth: AtomicUsize,
    pub(crate) lane_turns: AtomicU64,
    /// When the current busy period began, or `u64::MAX` while idle.
    pub(crate) busy_since_ns: AtomicU64,
}

impl WorkerShared {
    pub(crate) fn new(
        index: usize,
        cpu: Option<usize>,
        preempt: Option<Arc<Preempt>>,
    ) -> WorkerShared {
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        let counters = WorkerCounters::default();
        // Relaxed: nothing else is published yet; the worker thread starts after this.
        counters.busy_since_ns.store(u64::MAX, Ordering::Relaxed);
        WorkerShared {
            // Relaxed: only uniqueness matters.
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            index,
            cpu,
            pin: AtomicU8::new(PIN_PENDING),
            injector: Injector::new(),
            lane_injector: Injector::new(),
            sleeper: Sleeper::new(),
            stopped: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            running_since_ns: CachePadded::new(AtomicU64::new(u64::MAX)),
            preempt_asked: CachePadded::new(AtomicBool::new(false)),
            counters: CachePadded::new(counters),
            preempt,
        }
    }

    /// Busy time so far, the current busy period included.
    pub(crate) fn busy_ns(&self, now_ns: u64) -> u64 {
        let counters = &self.counters;
        let since = counters.busy_since_ns.load(Ordering::Relaxed);
        let current = if since == u64::MAX {
            0
        } else {
            now_ns.saturating_sub(since)
        };
        counters.busy_ns.load(Ordering::Relaxed) + current
    }

    /// Tasks spawned here and not yet ended.
    pub(crate) fn live_tasks(&self) -> u64 {
        let spawned = self.counters.spawned.load(Ordering::Relaxed);
        spawned.saturating_sub(self.counters.finished.load(Ordering::Relaxed))
    }

    pub(crate) fn is_stopped(&self) -> bool {
        // Acquire: pairs with the SeqCst store in `stop`.
        self.stopped.load(Ordering::Acquire)
    }

    /// Asks the worker to cancel everything and exit.
    pub(crate) fn stop(&self) {
        // SeqCst: ordered against the fence of a concurrent remote push (W3).
        self.stopped.store(true, Ordering::SeqCst);
        self.sleeper.notify();
    }

    /// Sends a task from another thread.
    fn push_remote_task(&self, runnable: Runnable) {
        if self.is_stopped() {
            // Dropping the runnable cancels the task; its drop is contained (`body.rs`).
            drop(runnable);
            return;
        }
        self.injector.push(runnable);
        self.sleeper.notify();
        // W3. The fence in `notify` orders the push before this load.
        if self.stopped.load(Ordering::Relaxed) {
            while let Some(runnable) = steal(&self.injector) {
                drop(runnable);
            }
            return;
        }
        self.ask_preemption();
    }

    /// Sends a lane from another thread. The caller holds the lane's run queue entry (S2).
    pub(crate) fn push_remote_lane(&self, lane: Arc<LaneCore>) {
        if self.is_stopped() {
            lane.cancel_contents();
            return;
        }
        self.lane_injector.push(lane);
        self.sleeper.notify();
        // W3, as in `push_remote_task`.
        if self.stopped.load(Ordering::Relaxed) {
            while let Some(lane) = steal(&self.lane_injector) {
                lane.cancel_contents();
            }
            return;
        }
        self.ask_preemption();
    }

    /// New work waits behind the lane turn in progress: ask that turn to end early if it has
    /// run long enough (`preempt.rs`, step 2).
    fn ask_preemption(&self) {
        if let Some(preempt) = &self.preempt {
            preempt.ask_if_due(self);
        }
    }

    fn has_remote_work(&self) -> bool {
        !self.injector.is_empty() || !self.lane_injector.is_empty()
    }
}

/// Takes one item from an injector, retrying while it reports a race.
pub(crate) fn steal<T>(injector: &Injector<T>) -> Option<T> {
    // Two loads; a steal from an empty injector costs several times more.
    if injector.is_empty() {
        return None;
    }
    loop {
        match injector.steal() {
            Steal::Success(item) => return Some(item),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

thread_local! {
    /// The worker running on this thread, if this is a worker thread.
    static CURRENT: OnceCell<Rc<Local>> = const { OnceCell::new() };
}

/// Calls `f` with this thread's worker, if this thread is the worker with unique id `uid`.
pub(crate) fn with_local<R>(uid: u64, f: impl FnOnce(&Local) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| match current.get() {
            Some(local) if local.shared.uid == uid => Some(f(local)),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Calls `f` with this thread's worker, if this is a worker thread.
pub(crate) fn with_any_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.get().map(|local| f(local)))
        .ok()
        .flatten()
}

/// The schedule function of every task (W2).
pub(crate) fn schedule_task(target: &Arc<WorkerShared>, runnable: Runnable, info: ScheduleInfo) {
    let mut runnable = Some(runnable);
    with_local(target.uid, |local| {
        if let Some(runnable) = runnable.take() {
            local.push_task(runnable, info.woken_while_running);
        }
    });
    if let Some(runnable) = runnable {
        target.push_remote_task(runnable);
    }
}

/// Puts a lane, whose run queue entry the caller holds (S2), in its home worker's run queue.
pub(crate) fn enqueue_lane(lane: Arc<LaneCore>) {
    let home = lane.home();
    let uid = lane.workers[home].uid;
    let mut lane = Some(lane);
    with_local(uid, |local| {
        if let Some(lane) = lane.take() {
            local.lanes.borrow_mut().insert(lane, local.shared.index);
        }
    });
    if let Some(lane) = lane {
        // The lane holds the runtime's workers: no clone of the target is needed.
        let workers = Arc::clone(&lane.workers);
        workers[home].push_remote_lane(lane);
    }
}

/// The worker's own state, reached only from its thread.
pub(crate) struct Local {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) runtime: Arc<RuntimeShared>,
    /// Tasks scheduled from this thread.
    queue: RefCell<VecDeque<Runnable>>,
    /// Lanes with work, in weighted fair order.
    pub(crate) lanes: RefCell<LaneQueue>,
    /// Wakers of tasks that wait, so that shutdown can reach them.
    wakers: RefCell<Slab<Waker>>,
    /// Picks so far, for the injector interval (W1).
    tick: Cell<u32>,
    finished: Cell<u64>,
    polled: Cell<u64>,
    /// The last clock reading, and whether work ran since (so it is stale).
    pub(crate) now_ns: Cell<u64>,
    pub(crate) now_stale: Cell<bool>,
    /// The lane whose turn is running, lent to its jobs' hooks.
    pub(crate) running_lane: RefCell<Option<Arc<LaneCore>>>,
    /// How the job just polled ended, if it did; set by its hooks.
    pub(crate) job_end: Cell<Option<JobEnd>>,
    /// Whether other threads wait for this worker's CPU, which makes spinning a loss.
    contention: RefCell<Contention>,
}

impl Local {
    fn new(shared: Arc<WorkerShared>, runtime: Arc<RuntimeShared>) -> Local {
        let now = runtime.config.clock.now_ns();
        shared.counters.busy_since_ns.store(now, Ordering::Relaxed);
        let lanes = LaneQueue::new(runtime.config.slice_time_ns);
        Local {
            shared,
            runtime,
            queue: RefCell::new(VecDeque::with_capacity(256)),
            lanes: RefCell::new(lanes),
            wakers: RefCell::new(Slab::new()),
            tick: Cell::new(0),
            finished: Cell::new(0),
            polled: Cell::new(0),
            now_ns: Cell::new(now),
            now_stale: Cell::new(false),
            running_lane: RefCell::new(None),
            job_end: Cell::new(None),
            contention: RefCell::new(Contention::for_current_thread(now)),
        }
    }

    pub(crate) fn index(&self) -> usize {
        self.shared.index
    }

    /// The clock, read again only if work ran since the last reading.
    pub(crate) fn fresh_now(&self) -> u64 {
        if self.now_stale.get() {
            self.now_ns.set(self.runtime.config.clock.now_ns());
            self.now_stale.set(false);
        }
        self.now_ns.get()
    }

    /// The last clock reading, however stale; for stamping submissions cheaply.
    pub(crate) fn recent_now(&self) -> u64 {
        self.now_ns.get()
    }

    fn push_task(&self, runnable: Runnable, yielded: bool) {
        let mut queue = self.queue.borrow_mut();
        if yielded {
            // W2: everything ready elsewhere runs before the task that yielded.
            while let Some(remote) = steal(&self.shared.injector) {
                queue.push_back(remote);
            }
        }
        queue.push_back(runnable);
    }

    /// Keeps the waker of a task that waits; returns its registry key.
    pub(crate) fn register_waker(&self, cx: &Context<'_>) -> usize {
        self.wakers.borrow_mut().insert(cx.waker().clone())
    }

    /// Counts a task as ended and forgets its waker.
    pub(crate) fn task_finished(&self, registered: Option<usize>) {
        if let Some(key) = registered {
            let waker = self.wakers.borrow_mut().try_remove(key);
            drop(waker);
        }
        let finished = self.finished.get() + 1;
        self.finished.set(finished);
        // Release: the shutdown count of live tasks reads it (with Acquire).
        self.shared
            .counters
            .finished
            .store(finished, Ordering::Release);
    }

    fn next_task(&self) -> Option<Runnable> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        // W1: every INJECTOR_INTERVAL picks, the injector goes first.
        if tick.is_multiple_of(INJECTOR_INTERVAL)
            && let Some(runnable) = steal(&self.shared.injector)
        {
            return Some(runnable);
        }
        let local = self.queue.borrow_mut().pop_front();
        local.or_else(|| steal(&self.shared.injector))
    }

    /// Step 1: runs up to [`TASK_BATCH`] tasks; returns how many ran.
    fn run_task_batch(&self) -> usize {
        let mut ran = 0;
        // A stop request ends the batch: what is left is cancelled, not run.
        while ran < TASK_BATCH && !self.shared.is_stopped() {
            let Some(runnable) = self.next_task() else {
                break;
            };
            runnable.run();
            ran += 1;
        }
        if ran > 0 {
            self.now_stale.set(true);
            let polled = self.polled.get() + ran as u64;
            self.polled.set(polled);
            let counters = &self.shared.counters;
            counters.polled.store(polled, Ordering::Relaxed);
            counters
                .local_depth
                .store(self.queue.borrow().len(), Ordering::Relaxed);
        }
        ran
    }

    fn has_local_work(&self) -> bool {
        !self.queue.borrow().is_empty() || !self.lanes.borrow().is_empty()
    }

    /// Step 3: spins, then parks, until there may be work.
    fn idle(&self) {
        let clock = &self.runtime.config.clock;
        let idle_at = clock.now_ns();
        let counters = &self.shared.counters;
        let since = counters.busy_since_ns.swap(u64::MAX, Ordering::Relaxed);
        counters
            .busy_ns
            .fetch_add(idle_at.saturating_sub(since), Ordering::Relaxed);
        counters.local_depth.store(0, Ordering::Relaxed);
        self.runtime.worker_idle();

        let found_work =
            || self.has_local_work() || self.shared.has_remote_work() || self.shared.is_stopped();
        // Spinning on a CPU that other threads wait for takes their time (`contention.rs`).
        let spin_ns = if self.contention.borrow_mut().is_contended(idle_at) {
            0
        } else {
            self.runtime.config.spin_ns
        };
        let spin_until = idle_at.saturating_add(spin_ns);
        let mut spins = 0u32;
        while !found_work() {
            spins = spins.wrapping_add(1);
            // A manual clock stands still: park without spinning on it.
            let may_park = spin_ns == 0 || spins.is_multiple_of(64);
            if may_park && (clock.is_manual() || clock.now_ns() >= spin_until) {
                // Park protocol steps 1 to 3.
                self.shared.sleeper.prepare();
                if found_work() {
                    self.shared.sleeper.cancel();
                } else {
                    counters.parks.fetch_add(1, Ordering::Relaxed);
                    self.shared.sleeper.park(None);
                }
                break;
            }
            std::hint::spin_loop();
        }

        let now = clock.now_ns();
        self.now_ns.set(now);
        self.now_stale.set(false);
        counters.busy_since_ns.store(now, Ordering::Relaxed);
    }

    /// The worker's loop (steps 1 to 4).
    fn run(&self) {
        while !self.shared.is_stopped() {
            let tasks = self.run_task_batch();
            let lane_ran = self.run_lane_turn();
            if tasks == 0 && !lane_ran {
                self.idle();
            }
        }
        self.cancel_all();
    }

    /// Step 4: cancels everything this worker holds. Tasks that wait are woken so that their
    /// runnables come here and are dropped; lanes drop their jobs; the queues end empty (W3).
    fn cancel_all(&self) {
        // Pairs with the fence of a remote push (W3).
        std::sync::atomic::fence(Ordering::SeqCst);

        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for (_, waker) in wakers {
            waker.wake();
        }
        loop {
            let mut dropped_any = false;
            loop {
                // Take the runnable out before dropping it: its drop may schedule another task
                // here, which borrows the queue again.
                let next = self.queue.borrow_mut().pop_front();
                let Some(runnable) = next.or_else(|| steal(&self.shared.injector)) else {
                    break;
                };
                drop(runnable);
                dropped_any = true;
            }
            loop {
                let next = self.lanes.borrow_mut().pop();
                let Some(lane) = next.or_else(|| steal(&self.shared.lane_injector)) else {
                    break;
                };
                lane.cancel_contents();
                dropped_any = true;
            }
            if !dropped_any {
                break;
            }
        }
        self.shared.counters.local_depth.store(0, Ordering::Relaxed);
    }
}

/// The body of a worker thread.
pub(crate) fn main(runtime: Arc<RuntimeShared>, index: usize) {
    let shared = Arc::clone(&runtime.workers[index]);
    if let Some(cpu) = shared.cpu {
        let pinned = crate::placement::pin_current_thread(cpu);
        if !pinned {
            tracing::warn!(
                worker = index,
                cpu,
                "could not pin the worker to its CPU; it runs unpinned"
            );
        }
        let outcome = if pinned { PIN_PINNED } else { PIN_UNPINNED };
        shared.pin.store(outcome, Ordering::Relaxed);
    } else {
        shared.pin.store(PIN_UNPINNED, Ordering::Relaxed);
    }
    shared.sleeper.register();

    let local = Rc::new(Local::new(shared, Arc::clone(&runtime)));
    CURRENT.with(|current| {
        let _ = current.set(Rc::clone(&local));
    });
    local.run();
    runtime.worker_exited(index);
}
