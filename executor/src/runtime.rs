//! The runtime: building it, handing out handles, and shutting it down.
//!
//! # Shutdown, in steps
//!
//! 1. Stop accepting: new tasks are cancelled at once, new lanes refused, and every lane is
//!    closed (under the lane registry's lock, so a lane being created is either closed here or
//!    refused). Work already accepted goes on.
//! 2. Wait until no task or job is left, or until the timeout. Workers going idle signal the
//!    waiting thread, which also looks again every few milliseconds.
//! 3. Stop: every lane is aborted (a waiting started job is woken so that it can be dropped),
//!    and every worker is told to stop. Each worker wakes its waiting tasks and drops every
//!    runnable it holds, so each remaining handle reports cancelled (worker invariant W3).
//! 4. Join the workers, waiting at most a grace period: a worker stuck in a task that never
//!    returns is left behind, detached, with a warning, so that shutdown never hangs.
//! 5. Every lane's drained signal fires, and the registry forgets the lanes.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::balance::{self, Balance, BalanceError};
use crate::block_on::{BlockOnError, block_on};
use crate::clock::{Clock, saturating_nanos};
use crate::lane::core::LaneCore;
use crate::lane::registry::Registry;
use crate::lane::{Lane, LaneBuilder, LaneError, LaneId};
use crate::placement::{self, Placement, PlacementError};
use crate::preempt::{Hook, Preempt};
use crate::stats::{RuntimeStats, WorkerStats};
use crate::task::{self, JoinHandle};
use crate::worker::{self, WorkerShared};

const ACCEPTING: u8 = 0;
const DRAINING: u8 = 1;
const STOPPED: u8 = 2;

/// How long shutdown waits for workers to exit once told to stop (step 4).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The longest a dropped runtime waits for its work before it cancels what is left.
pub const MAX_DROP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The placement cannot be used.
    #[error("bad placement: {0}")]
    Placement(#[from] PlacementError),
    /// A lane slice must allow at least one job.
    #[error("a lane slice must allow at least one job")]
    ZeroSliceJobs,
    /// A lane slice must last some time.
    #[error("a lane slice must last longer than zero")]
    ZeroSliceTime,
    /// The balancing settings cannot be used.
    #[error("bad balancing settings: {0}")]
    Balance(#[from] BalanceError),
    /// A thread name prefix with a NUL byte, which no thread name may hold.
    #[error("thread name prefix {0:?} contains a NUL byte")]
    ThreadName(String),
    /// The operating system refused to start a worker thread.
    #[error("could not start worker thread {worker}: {source}")]
    Spawn {
        /// The worker whose thread failed to start.
        worker: usize,
        /// What the system said.
        source: std::io::Error,
    },
    /// The operating system refused to start the balancer thread.
    #[error("could not start the balancer thread: {0}")]
    BalancerSpawn(std::io::Error),
}

/// Why a task could not be spawned where asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// A worker index that the runtime does not have.
    #[error("there is no worker {worker}: the runtime has {workers} (numbered from 0)")]
    NoSuchWorker {
        /// The index given.
        worker: usize,
        /// How many workers the runtime has.
        workers: usize,
    },
}

/// Settings the workers read.
pub(crate) struct Config {
    pub(crate) slice_jobs: u32,
    pub(crate) slice_time_ns: u64,
    pub(crate) spin_ns: u64,
    pub(crate) clock: Clock,
    pub(crate) shutdown_timeout: Duration,
}

/// Builds a [`Runtime`]; from [`Runtime::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    placement: Placement,
    pin: bool,
    slice_jobs: u32,
    slice_time: Duration,
    spin: Duration,
    clock: Clock,
    shutdown_timeout: Duration,
    balance: Option<Balance>,
    thread_name: String,
    preempt: Option<Hook>,
    preempt_after: Duration,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            placement: Placement::AllowedCpus,
            pin: true,
            slice_jobs: 64,
            slice_time: Duration::from_millis(1),
            spin: Duration::from_micros(10),
            clock: Clock::system(),
            shutdown_timeout: Duration::from_secs(5),
            balance: None,
            thread_name: "corelane-worker".to_owned(),
            preempt: None,
            preempt_after: Duration::from_micros(100),
        }
    }
}

impl Builder {
    /// Where the workers run (default: one per CPU this process may run on).
    pub fn placement(mut self, placement: Placement) -> Builder {
        self.placement = placement;
        self
    }

    /// Runs `count` workers, laid over the allowed CPUs in turn.
    pub fn workers(self, count: usize) -> Builder {
        self.placement(Placement::Count(count))
    }

    /// Runs one worker per listed CPU.
    pub fn cpus(self, cpus: impl IntoIterator<Item = usize>) -> Builder {
        self.placement(Placement::Cpus(cpus.into_iter().collect()))
    }

    /// Whether to pin each worker to its CPU (default: yes).
    pub fn pin(mut self, pin: bool) -> Builder {
        self.pin = pin;
        self
    }

    /// The most jobs one lane turn runs (default 64); see the lane protocol, step 5.
    pub fn slice_jobs(mut self, jobs: u32) -> Builder {
        self.slice_jobs = jobs;
        self
    }

    /// How long one lane turn keeps starting jobs (default 1 ms); see the lane protocol.
    pub fn slice_time(mut self, time: Duration) -> Builder {
        self.slice_time = time;
        self
    }

    /// How long an idle worker spins before it parks (default 10 us). A longer spin answers a
    /// burst of remote work sooner, but takes CPU from other threads on the same core: with
    /// submitters on the workers' cores, 50 us cost a third of the pipelined throughput in
    /// `cargo bench --bench compare`, 10 us kept the round trip under a microsecond. While
    /// other threads wait for the worker's CPU (on Linux, where the kernel counts that wait),
    /// the worker parks at once instead.
    pub fn spin(mut self, spin: Duration) -> Builder {
        self.spin = spin;
        self
    }

    /// The clock workers charge lanes by (default: the system's); see [`Clock::manual`].
    pub fn clock(mut self, clock: Clock) -> Builder {
        self.clock = clock;
        self
    }

    /// The timeout that dropping the runtime uses for its shutdown (default 5 s), at most
    /// [`MAX_DROP_TIMEOUT`]: a drop never waits for ever. [`Runtime::shutdown`] takes any
    /// timeout, `Duration::MAX` included.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Switches on load-aware balancing of lanes between workers.
    pub fn balance(mut self, balance: Balance) -> Builder {
        self.balance = Some(balance);
        self
    }

    /// A hook that makes a worker's running job yield soon, such as advancing a Wasmtime
    /// engine's epoch. The runtime calls it, with the worker's index and on the thread that
    /// gave that worker new work (a lane to run, a task), when the job the worker is running
    /// has run for [`Builder::preempt_after`] or longer since it started (its earlier turns
    /// included); at most once per turn. A turn that was asked also ends its slice at the
    /// next job boundary. So work that arrives behind a long job, or behind a flood of short
    /// ones, does not wait for a timer or a whole slice. See `preempt.rs`.
    pub fn preempt(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Builder {
        self.preempt = Some(Hook(Arc::new(hook)));
        self
    }

    /// How long a job runs before new work on its worker calls the preemption hook
    /// (default 100 us). Shorter answers arrivals sooner; every request costs the running job
    /// a yield.
    pub fn preempt_after(mut self, after: Duration) -> Builder {
        self.preempt_after = after;
        self
    }

    /// The prefix of worker thread names (default `corelane-worker`); the index follows.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name = prefix.into();
        self
    }

    /// Starts the workers.
    pub fn build(self) -> Result<Runtime, BuildError> {
        if self.slice_jobs == 0 {
            return Err(BuildError::ZeroSliceJobs);
        }
        if self.slice_time.is_zero() {
            return Err(BuildError::ZeroSliceTime);
        }
        if let Some(balance) = &self.balance {
            balance.check()?;
        }
        if self.thread_name.contains('\0') {
            return Err(BuildError::ThreadName(self.thread_name));
        }
        let cpus = placement::plan(&self.placement, self.pin)?;
        let preempt = self.preempt.map(|Hook(hook)| {
            let after_ns = saturating_nanos(self.preempt_after);
            Arc::new(Preempt::new(hook, after_ns, self.clock.clone()))
        });
        let workers: Arc<[Arc<WorkerShared>]> = cpus
            .iter()
            .enumerate()
            .map(|(index, cpu)| Arc::new(WorkerShared::new(index, *cpu, preempt.clone())))
            .collect();

        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(RuntimeShared {
            // Relaxed: only uniqueness matters.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lanes: Registry::new(workers.len()),
            workers,
            config: Config {
                slice_jobs: self.slice_jobs,
                slice_time_ns: saturating_nanos(self.slice_time),
                spin_ns: saturating_nanos(self.spin),
                clock: self.clock,
                shutdown_timeout: self.shutdown_timeout,
            },
            phase: AtomicU8::new(ACCEPTING),
            exited: Mutex::new(0),
            exit_signal: Condvar::new(),
            idle_signal: Condvar::new(),
            idle_lock: Mutex::new(()),
            balancer_stopped: Mutex::new(false),
            balancer_signal: Condvar::new(),
        });

        let mut runtime = Runtime {
            handle: Handle {
                shared: Arc::clone(&shared),
            },
            threads: Vec::with_capacity(cpus.len()),
            balancer: None,
            shut_down: false,
        };
        for index in 0..cpus.len() {
            let worker_shared = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("{}-{index}", self.thread_name))
                .spawn(move || worker::main(worker_shared, index));
            match spawned {
                Ok(thread) => runtime.threads.push(Some(thread)),
                Err(source) => {
                    // Dropping the runtime stops the workers already started.
                    return Err(BuildError::Spawn {
                        worker: index,
                        source,
                    });
                }
            }
        }
        if let Some(balance) = self.balance {
            let balancer =
                balance::start(Arc::clone(&shared), balance).map_err(BuildError::BalancerSpawn)?;
            runtime.balancer = Some(balancer);
        }
        Ok(runtime)
    }
}

/// What every handle and worker of one runtime shares.
pub(crate) struct RuntimeShared {
    pub(crate) id: u64,
    pub(crate) workers: Arc<[Arc<WorkerShared>]>,
    pub(crate) config: Config,
    phase: AtomicU8,
    pub(crate) lanes: Registry,
    /// Workers that have exited, and the signal for shutdown step 4.
    exited: Mutex<usize>,
    exit_signal: Condvar,
    /// Workers going idle while draining signal shutdown step 2.
    idle_signal: Condvar,
    idle_lock: Mutex<()>,
    /// Tells the balancer thread to exit.
    balancer_stopped: Mutex<bool>,
    balancer_signal: Condvar,
}

impl RuntimeShared {
    pub(crate) fn is_accepting(&self) -> bool {
        // Acquire: pairs with the Release stores in `shutdown`.
        self.phase.load(Ordering::Acquire) == ACCEPTING
    }

    pub(crate) fn is_draining(&self) -> bool {
        // Acquire: as in `is_accepting`.
        self.phase.load(Ordering::Acquire) == DRAINING
    }

    /// A worker that goes idle while the runtime drains tells the shutdown (step 2).
    pub(crate) fn worker_idle(&self) {
        if self.is_draining() {
            let _guard = self.idle_lock.lock();
            self.idle_signal.notify_all();
        }
    }

    /// Waits one balancing period; false once the balancer is to stop.
    pub(crate) fn balancer_wait(&self, period: Duration) -> bool {
        let mut stopped = self.balancer_stopped.lock();
        if !*stopped {
            self.balancer_signal.wait_for(&mut stopped, period);
        }
        !*stopped
    }

    pub(crate) fn balancer_stop(&self) {
        *self.balancer_stopped.lock() = true;
        self.balancer_signal.notify_all();
    }

    pub(crate) fn worker_exited(&self, index: usize) {
        self.workers[index].exited.store(true, Ordering::Release);
        let mut exited = self.exited.lock();
        *exited += 1;
        self.exit_signal.notify_all();
    }

    /// A lane reached the end of lane protocol step 8.
    pub(crate) fn lane_drained(&self, lane: &Arc<LaneCore>) {
        if lane.drain.is_done() {
            return;
        }
        // Leave the worker first, so that whoever sees the signal sees the lane gone (R1).
        self.lanes.remove(lane, self.config.clock.now_ns());
        lane.drain.finish();
    }

    /// Tasks and jobs accepted and not yet ended.
    fn live_work(&self) -> u64 {
        let tasks: u64 = self.workers.iter().map(|worker| worker.live_tasks()).sum();
        tasks + self.lanes.live_jobs()
    }
}

/// A handle to a runtime: cheap to clone, usable from any thread, and valid after the runtime
/// is gone (it then spawns nothing: tasks are cancelled, lanes refused).
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<RuntimeShared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("runtime", &self.shared.id)
            .field("workers", &self.shared.workers.len())
            .finish()
    }
}

impl Handle {
    /// The handle of the runtime whose worker is the calling thread, if any.
    pub fn current() -> Option<Handle> {
        worker::with_any_local(|local| Handle {
            shared: Arc::clone(&local.runtime),
        })
    }

    /// The index of the worker that is the calling thread, if any.
    pub fn current_worker() -> Option<usize> {
        worker::with_any_local(|local| local.index())
    }

    /// How many workers the runtime has.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// The runtime's clock.
    pub fn clock(&self) -> &Clock {
        &self.shared.config.clock
    }

    /// Whether the runtime has begun to shut down.
    pub fn is_shutting_down(&self) -> bool {
        !self.shared.is_accepting()
    }

    /// Spawns a task on the least loaded worker (fewest live tasks; ties go round). Once the
    /// runtime has begun to shut down, the handle reports [`crate::JoinError::Cancelled`].
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if !self.shared.is_accepting() {
            return JoinHandle::cancelled();
        }
        task::spawn_on(self.least_loaded(), future)
    }

    /// Spawns a task on worker `worker`. Once the runtime has begun to shut down, the handle
    /// reports [`crate::JoinError::Cancelled`].
    pub fn spawn_on<F>(&self, worker: usize, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let workers = self.shared.workers.len();
        let Some(target) = self.shared.workers.get(worker) else {
            return Err(SpawnError::NoSuchWorker { worker, workers });
        };
        if !self.shared.is_accepting() {
            return Ok(JoinHandle::cancelled());
        }
        Ok(task::spawn_on(target, future))
    }

    /// Runs `future` on the calling thread until it completes; see [`block_on`].
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, BlockOnError> {
        block_on(future)
    }

    /// Creates a lane with default options, owning `state`.
    pub fn lane<S: Send + 'static>(&self, state: S) -> Result<Lane<S>, LaneError> {
        self.lane_builder().build(state)
    }

    /// Options for a new lane.
    pub fn lane_builder(&self) -> LaneBuilder {
        LaneBuilder::new(Arc::clone(&self.shared))
    }

    /// The lanes living on worker `worker` now.
    pub fn lanes_on(&self, worker: usize) -> Vec<LaneId> {
        self.shared
            .lanes
            .lanes_on(worker)
            .iter()
            .map(|lane| LaneId(lane.id))
            .collect()
    }

    /// A snapshot of every worker's counters.
    pub fn stats(&self) -> RuntimeStats {
        let lanes = self.shared.lanes.counts();
        let now = self.shared.config.clock.now_ns();
        let workers = self
            .shared
            .workers
            .iter()
            .zip(lanes)
            .map(|(worker, lanes)| WorkerStats::of(worker, lanes, now))
            .collect();
        RuntimeStats { workers }
    }

    fn least_loaded(&self) -> &Arc<WorkerShared> {
        thread_local! {
            static ROTATION: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        let workers = &self.shared.workers;
        let start = ROTATION.with(|rotation| {
            let start = rotation.get();
            rotation.set(start.wrapping_add(1));
            start
        });
        let count = workers.len();
        (0..count)
            .map(|offset| &workers[(start + offset) % count])
            .min_by_key(|worker| worker.live_tasks())
            .unwrap_or(&workers[0])
    }
}

/// The runtime: owns the worker threads. Dropping it shuts it down with the builder's
/// shutdown timeout.
///
/// It dereferences to its [`Handle`], so `runtime.spawn(...)` works.
pub struct Runtime {
    handle: Handle,
    threads: Vec<Option<thread::JoinHandle<()>>>,
    balancer: Option<thread::JoinHandle<()>>,
    shut_down: bool,
}

/// What a shutdown did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every task and job ended before the timeout, so nothing was cancelled.
    pub finished_in_time: bool,
    /// Workers that did not exit within the grace period after being told to stop (stuck in
    /// a task that never returns); their threads were left running, detached.
    pub stuck_workers: Vec<usize>,
    /// Whether the shutdown ran on one of the runtime's own workers, which therefore could
    /// not be waited for.
    pub from_own_worker: bool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Deref for Runtime {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Runtime {
    /// Options for a new runtime.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A runtime with default options: one pinned worker per allowed CPU.
    pub fn new() -> Result<Runtime, BuildError> {
        Builder::default().build()
    }

    /// A handle to this runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Shuts the runtime down, letting work finish for up to `timeout`; see the module
    /// documentation for the steps.
    ///
    /// Called on one of the runtime's own workers, it cannot wait for work (that worker's
    /// work included) without deadlocking: it cancels at once, returns without joining, and
    /// says so in [`ShutdownReport::from_own_worker`].
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.shutdown_now(timeout)
    }

    fn shutdown_now(&mut self, timeout: Duration) -> ShutdownReport {
        self.shut_down = true;
        let shared = Arc::clone(&self.handle.shared);
        let from_own_worker =
            worker::with_any_local(|local| Arc::ptr_eq(&local.runtime, &shared)).unwrap_or(false);

        // Step 1. Release: pairs with the Acquire in `is_accepting`.
        shared.phase.store(DRAINING, Ordering::Release);
        shared.lanes.close_all();

        // Step 2. A worker cannot wait for itself. A timeout past the end of time waits for
        // ever (`checked_add` gives no deadline).
        let timeout = if from_own_worker {
            Duration::ZERO
        } else {
            timeout
        };
        let deadline = Instant::now().checked_add(timeout);
        let finished_in_time = loop {
            if shared.live_work() == 0 {
                break true;
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(deadline) if now >= deadline => break false,
                Some(deadline) => (deadline - now).min(Duration::from_millis(5)),
                None => Duration::from_millis(5),
            };
            let mut guard = shared.idle_lock.lock();
            shared.idle_signal.wait_for(&mut guard, wait);
        };

        // Step 3.
        shared.phase.store(STOPPED, Ordering::Release);
        shared.lanes.abort_all();
        for worker in shared.workers.iter() {
            worker.stop();
        }
        if let Some(balancer) = self.balancer.take() {
            balance::stop(&shared);
            if !from_own_worker {
                let _ = balancer.join();
            }
        }

        // Step 4. Only threads that started can exit (a build that failed part-way has
        // fewer).
        let mut stuck_workers = Vec::new();
        if !from_own_worker {
            let started = self
                .threads
                .iter()
                .filter(|thread| thread.is_some())
                .count();
            let grace = Instant::now() + STOP_GRACE;
            let mut exited = shared.exited.lock();
            while *exited < started && Instant::now() < grace {
                shared.exit_signal.wait_until(&mut exited, grace);
            }
            drop(exited);
            for (index, slot) in self.threads.iter_mut().enumerate() {
                // Acquire: pairs with the Release in `worker_exited`; such a thread is at the
                // end of its function, so joining it does not wait long.
                let exited = shared.workers[index].exited.load(Ordering::Acquire);
                match slot.take() {
                    Some(thread) if exited => {
                        let _ = thread.join();
                    }
                    Some(_) => {
                        tracing::warn!(
                            worker = index,
                            "worker did not stop in time; left detached"
                        );
                        stuck_workers.push(index);
                    }
                    None => {}
                }
            }
        }

        // Step 5.
        for lane in shared.lanes.take_all() {
            lane.drain.finish();
        }
        ShutdownReport {
            finished_in_time,
            stuck_workers,
            from_own_worker,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.shut_down {
            let timeout = self.handle.shared.config.shutdown_timeout;
            self.shutdown_now(timeout.min(MAX_DROP_TIMEOUT));
        }
    }
}
