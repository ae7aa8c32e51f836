//! Databases: a module, an instance pool, a lane, and the lane's state.
//!
//! A call, in steps:
//!
//! 1. On the caller's thread: an exited database, or an unknown reducer, fails at once. The
//!    call is then submitted to the database's lane, which fixes its place in the database's
//!    order: calls see each other's writes in submission order.
//! 2. On the database's worker, when the call's turn comes: the job holds the database's
//!    state for its whole run. It takes an idle instance from the pool, or makes one.
//! 3. The instance runs the reducer with the state lent to it (`instance.rs`), under the
//!    database's fairness mode and budget.
//! 4. If the reducer succeeded, its writes commit; otherwise they are dropped. A healthy
//!    instance goes back to the pool.
//! 5. The result, or a [`CallError`], reaches the caller's [`Call`] future.
//!
//! Exiting a database flips its `exited` flag (later calls fail with `NoSuchModule`), closes
//! its lane (queued calls still run), and drops its idle instances; [`Database::exited`]
//! resolves once the last queued call has ended.

use std::cell::OnceCell;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corelane_executor::{
    Clock, Drained, JobError, JobHandle, Lane, LaneGuard, LaneStats, block_on,
};

use crate::error::CallError;
use crate::fairness::Fairness;
use crate::host::HostInner;
use crate::instance::{self, Ended, Instance, WasmInstance, call_native};
use crate::kv::{Kv, Transaction};
use crate::module::{Module, ModuleKind, WasmModule};
use crate::pool::Pool;
use crate::store::CallState;
use crate::ticker::Quanta;
use crate::wasi::WasiCtx;

/// Options for a new database. Unset ones take the host's defaults.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// Its lane's weight: its share of its worker's time (default 100).
    pub weight: u32,
    /// Its fairness mode (default: the host's).
    pub fairness: Option<Fairness>,
    /// How long one call may run (default 10 s). See docs/abi.md for what counts.
    pub budget: Duration,
    /// In `Fuel` mode: the fuel one call may use (default 10 billion units).
    pub fuel_limit: u64,
    /// In `Fuel` mode: the fuel between two yields (default 1 million units).
    pub fuel_yield_interval: u64,
    /// The most memory one instance may have, in bytes (default 256 MiB).
    pub memory_limit: u64,
    /// The most elements one table may have (default 100,000).
    pub table_limit: u64,
    /// The most live instances (in use or idle) at once (default 4).
    pub max_instances: usize,
    /// The most idle instances kept for later calls (default 1).
    pub max_idle_instances: usize,
    /// How long an idle instance is kept (default 10 s).
    pub idle_timeout: Duration,
    /// The worker to place the database on, pinned (default: the one with fewest lanes).
    pub worker: Option<usize>,
    /// For WASI commands: a directory preopened read-only as `.` (default: none).
    pub preopen: Option<PathBuf>,
}

impl Default for DatabaseOptions {
    fn default() -> DatabaseOptions {
        DatabaseOptions {
            weight: corelane_executor::lane::DEFAULT_WEIGHT,
            fairness: None,
            budget: Duration::from_secs(10),
            fuel_limit: 10_000_000_000,
            fuel_yield_interval: 1_000_000,
            memory_limit: 256 << 20,
            table_limit: 100_000,
            max_instances: 4,
            max_idle_instances: 1,
            idle_timeout: Duration::from_secs(10),
            worker: None,
            preopen: None,
        }
    }
}

/// Settings a call reads, resolved once per database.
pub(crate) struct Settings {
    /// The database's name, which each instance's store keeps for the imports' messages.
    pub(crate) database: Arc<str>,
    pub(crate) fairness: Fairness,
    pub(crate) budget: Duration,
    pub(crate) budget_ticks: u64,
    /// The ticker's count, to tell its ticks from preemption requests.
    pub(crate) quanta: Quanta,
    pub(crate) fuel_enabled: bool,
    pub(crate) fuel_limit: u64,
    pub(crate) fuel_yield_interval: u64,
    pub(crate) memory_limit: u64,
    pub(crate) table_limit: u64,
    pub(crate) preopen: Option<PathBuf>,
}

/// A database: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

struct DbInner {
    name: Arc<str>,
    module: Module,
    lane: Lane<Kv>,
    pool: Arc<Pool>,
    settings: Settings,
    exited: AtomicBool,
    host: Weak<HostInner>,
    /// The runtime's clock (cheap to read), for the timing of timed calls.
    clock: Clock,
    /// Fuel used by the database's guest code: start functions, calls and commands that have
    /// ended (`DatabaseStats::fuel_used`).
    fuel_used: AtomicU64,
}

/// What a WASI command run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    /// Its exit status: 0 when `_start` returned, else what it passed to `proc_exit`.
    pub status: i32,
    /// What it wrote to standard output.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error.
    pub stderr: Vec<u8>,
    /// How long the run took, instantiation included.
    pub duration: Duration,
    /// Why the program stopped before it reached an exit status (a trap, its budget), if it
    /// did; `status` is then -1. What it wrote until then is in `stdout` and `stderr`.
    pub error: Option<CallError>,
}

/// How long a call waited for its turn and then took ([`Database::call_timed`]; zeros for
/// calls that were not timed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// From submission until the call's job started on the database's worker.
    pub waited: Duration,
    /// From the job's start until its end, suspensions included (in Epoch mode a call that
    /// yields stays started while other databases run).
    pub ran: Duration,
}

/// A call's result with its timing; see [`Database::call_timed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// The reducer's result or error.
    pub result: Result<Vec<u8>, CallError>,
    /// How long the call waited and ran.
    pub timing: Timing,
}

/// A snapshot of a database's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseStats {
    /// Its lane's counters.
    pub lane: LaneStats,
    /// Instances that exist, in use or idle.
    pub instances_live: usize,
    /// Idle instances in the pool.
    pub instances_idle: usize,
    /// In `Fuel` mode, the fuel its guest code has used, ever: its reducer calls, the start
    /// functions of its instances and its WASI command runs. What trapped, ran out of fuel or
    /// failed is charged what it used too.
    pub fuel_used: u64,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.inner.name)
            .field("module", &self.inner.module.name())
            .field("fairness", &self.inner.settings.fairness)
            .finish_non_exhaustive()
    }
}

impl Database {
    pub(crate) fn new(
        name: Arc<str>,
        module: Module,
        lane: Lane<Kv>,
        pool: Arc<Pool>,
        settings: Settings,
        host: Weak<HostInner>,
        clock: Clock,
    ) -> Database {
        Database {
            inner: Arc::new(DbInner {
                name,
                module,
                lane,
                pool,
                settings,
                exited: AtomicBool::new(false),
                host,
                clock,
                fuel_used: AtomicU64::new(0),
            }),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The database's module.
    pub fn module(&self) -> &Module {
        &self.inner.module
    }

    /// The database's fairness mode.
    pub fn fairness(&self) -> Fairness {
        self.inner.settings.fairness
    }

    /// The database's lane, for its weight, placement and counters. Jobs submitted on it
    /// directly run in order with the database's calls and may read and write its state.
    pub fn lane(&self) -> &Lane<Kv> {
        &self.inner.lane
    }

    /// Calls `reducer` with `args` (steps 1 to 5). The call is submitted now; the returned
    /// future resolves to the reducer's result bytes or a [`CallError`].
    pub fn call(&self, reducer: &str, args: impl Into<Vec<u8>>) -> Call<Vec<u8>> {
        self.submit_reducer(reducer, args.into(), false, |result, _| result)
    }

    /// [`Database::call`], with how long the call waited and ran. A call that fails after it
    /// started still resolves to `Ok(Timed)`, its error in `Timed::result`; only a call that
    /// never ran (an exited database, an unknown reducer, a cancellation) resolves to `Err`.
    pub fn call_timed(&self, reducer: &str, args: impl Into<Vec<u8>>) -> Call<Timed> {
        self.submit_reducer(reducer, args.into(), true, |result, timing| {
            Ok(Timed { result, timing })
        })
    }

    /// Step 1: checks, then submits a call whose outcome `finish` turns into the caller's.
    /// Only a `timed` call reads the clock for its [`Timing`]; others get zeros.
    fn submit_reducer<T, F>(&self, reducer: &str, args: Vec<u8>, timed: bool, finish: F) -> Call<T>
    where
        T: Send + 'static,
        F: FnOnce(Result<Vec<u8>, CallError>, Timing) -> Result<T, CallError> + Send + 'static,
    {
        let db = &self.inner;
        if db.exited.load(Ordering::Acquire) {
            return Call::failed(db.no_such_module());
        }
        let stopwatch = Stopwatch::start(timed.then(|| db.clock.clone()));
        let inner = Arc::clone(db);
        match &db.module {
            Module::Wasm(wasm) if wasm.kind == ModuleKind::Command => {
                if reducer != "_start" {
                    return Call::failed(db.no_such_reducer(reducer));
                }
                // A command through `call`: its standard output on success, else its status.
                let wasm = Arc::clone(wasm);
                let job = db.lane.submit(async move {
                    let stopwatch = stopwatch.started();
                    let result =
                        inner
                            .run_command(&wasm)
                            .await
                            .and_then(|output| match output.error {
                                Some(error) => Err(error),
                                None if output.status == 0 => Ok(output.stdout),
                                None => Err(CallError::Exited {
                                    status: output.status,
                                    stderr: output.stderr,
                                }),
                            });
                    finish(result, stopwatch.timing())
                });
                Call::job(job, db)
            }
            Module::Wasm(wasm) => {
                let Some(index) = wasm.reducer_index(reducer) else {
                    return Call::failed(db.no_such_reducer(reducer));
                };
                // Two kinds of job: a `Never` call never suspends, and its job is a small
                // future that does not carry Wasmtime's async call futures. Each reaches the
                // module through the database, which the job holds anyway.
                let job = if db.settings.fairness.is_async() {
                    db.lane.submit_with(move |kv| async move {
                        let stopwatch = stopwatch.started();
                        let result = inner.call_wasm_suspending(index, &args, kv).await;
                        finish(result, stopwatch.timing())
                    })
                } else {
                    db.lane.submit_with(move |kv| async move {
                        let stopwatch = stopwatch.started();
                        let result = inner.call_wasm_blocking(index, &args, kv);
                        finish(result, stopwatch.timing())
                    })
                };
                Call::job(job, db)
            }
            Module::Native(native) => {
                if native.get(reducer).is_none() {
                    return Call::failed(db.no_such_reducer(reducer));
                }
                let native = Arc::clone(native);
                let reducer = reducer.to_owned();
                let job = db.lane.submit_with(move |kv| async move {
                    let stopwatch = stopwatch.started();
                    let ended =
                        call_native(&native, &reducer, &args, &inner.name, inner.call_state(kv));
                    let result = inner.finish(ended.result, ended.state);
                    finish(result, stopwatch.timing())
                });
                Call::job(job, db)
            }
        }
    }

    /// [`Database::call`], waiting on this thread for the result. On a worker thread it
    /// returns [`CallError::OnWorker`] instead of stalling the worker.
    pub fn call_blocking(
        &self,
        reducer: &str,
        args: impl Into<Vec<u8>>,
    ) -> Result<Vec<u8>, CallError> {
        let call = self.call(reducer, args);
        block_on(call).unwrap_or_else(|corelane_executor::BlockOnError::OnWorker { worker }| {
            Err(CallError::OnWorker { worker })
        })
    }

    /// Runs a WASI command's `_start` once, in a fresh instance, capturing its output.
    pub fn run(&self) -> Call<CommandOutput> {
        let db = &self.inner;
        if db.exited.load(Ordering::Acquire) {
            return Call::failed(db.no_such_module());
        }
        let Module::Wasm(wasm) = &db.module else {
            return Call::failed(CallError::WrongKind {
                reason: "a native module has no `_start`".into(),
            });
        };
        if wasm.kind != ModuleKind::Command {
            return Call::failed(CallError::WrongKind {
                reason: format!(
                    "module {} is a reducer module, not a WASI command",
                    wasm.name
                ),
            });
        }
        let inner = Arc::clone(db);
        let wasm = Arc::clone(wasm);
        let job = db
            .lane
            .submit(async move { inner.run_command(&wasm).await });
        Call::job(job, db)
    }

    /// The committed value of `key`, read in order with the database's calls.
    pub fn get(&self, key: &[u8]) -> Call<Option<Vec<u8>>> {
        let db = &self.inner;
        if db.exited.load(Ordering::Acquire) {
            return Call::failed(db.no_such_module());
        }
        let key = key.to_vec();
        let job = db
            .lane
            .submit_with(move |kv| async move { Ok(kv.get(&key).map(<[u8]>::to_vec)) });
        Call::job(job, db)
    }

    /// Exits the database: later calls fail with `NoSuchModule`, queued calls still run, idle
    /// instances are dropped, and the name is free for a new database.
    pub fn exit(&self) {
        let db = &self.inner;
        if db.exited.swap(true, Ordering::AcqRel) {
            return;
        }
        db.lane.close();
        db.pool.clear();
        if let Some(host) = db.host.upgrade() {
            host.forget_database(self);
        }
    }

    /// Whether the database has exited.
    pub fn is_exited(&self) -> bool {
        self.inner.exited.load(Ordering::Acquire)
    }

    /// Resolves once the database has exited and its last call has ended.
    pub fn exited(&self) -> Drained {
        self.inner.lane.drained()
    }

    /// A snapshot of the database's counters.
    pub fn stats(&self) -> DatabaseStats {
        let (instances_live, instances_idle) = self.inner.pool.counts();
        DatabaseStats {
            lane: self.inner.lane.stats(),
            instances_live,
            instances_idle,
            fuel_used: self.inner.fuel_used.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn pool_sweep(&self) -> usize {
        self.inner.pool.sweep()
    }

    /// Whether `self` and `other` are handles of the same database.
    pub(crate) fn same(&self, other: &Database) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl DbInner {
    fn no_such_module(&self) -> CallError {
        CallError::NoSuchModule {
            database: self.name.to_string(),
        }
    }

    fn no_such_reducer(&self, reducer: &str) -> CallError {
        CallError::NoSuchReducer {
            database: self.name.to_string(),
            reducer: reducer.to_owned(),
        }
    }

    fn call_state(&self, kv: LaneGuard<Kv>) -> CallState {
        CallState {
            kv,
            tx: Transaction::default(),
            now_us: OnceCell::new(),
            failure: None,
        }
    }

    /// The database's WebAssembly module; a native module has no Wasm reducers to call.
    fn wasm(&self) -> Result<&WasmModule, CallError> {
        match &self.module {
            Module::Wasm(wasm) => Ok(wasm),
            Module::Native(_) => Err(CallError::WrongKind {
                reason: "a native module has no WebAssembly reducers".into(),
            }),
        }
    }

    /// Steps 2 to 4 for a Wasm reducer of a database in fairness `Never`: nothing suspends.
    fn call_wasm_blocking(
        &self,
        index: usize,
        args: &[u8],
        kv: LaneGuard<Kv>,
    ) -> Result<Vec<u8>, CallError> {
        let wasm = self.wasm()?;
        let settings = &self.settings;
        let mut instance = match self.pool.take() {
            Some(Instance::Wasm(instance)) => instance,
            _ => {
                let lease = self.pool.lease()?;
                let wasi = WasiCtx::new(&wasm.name);
                Box::new(WasmInstance::new_blocking(
                    wasm,
                    settings,
                    wasi,
                    Some(lease),
                    &self.fuel_used,
                )?)
            }
        };
        let ended = instance.call_blocking(index, args, self.call_state(kv), settings);
        self.end_call(instance, ended)
    }

    /// Steps 2 to 4 for a Wasm reducer of a database in fairness `Epoch` or `Fuel`.
    async fn call_wasm_suspending(
        &self,
        index: usize,
        args: &[u8],
        kv: LaneGuard<Kv>,
    ) -> Result<Vec<u8>, CallError> {
        let wasm = self.wasm()?;
        let settings = &self.settings;
        let mut instance = match self.pool.take() {
            Some(Instance::Wasm(instance)) => instance,
            _ => {
                let lease = self.pool.lease()?;
                let wasi = WasiCtx::new(&wasm.name);
                // Boxed: instantiation is rare, and its future (about 1.2 KB) would otherwise
                // make every call's job that much larger to build and to move.
                let new = WasmInstance::new_suspending(
                    wasm,
                    settings,
                    wasi,
                    Some(lease),
                    &self.fuel_used,
                );
                Box::new(Box::pin(new).await?)
            }
        };
        let ended = instance
            .call_suspending(index, args, self.call_state(kv), settings)
            .await;
        self.end_call(instance, ended)
    }

    /// Step 4: a healthy instance goes back to the pool, and the writes of a call that
    /// succeeded commit.
    fn end_call(&self, instance: Box<WasmInstance>, ended: Ended) -> Result<Vec<u8>, CallError> {
        instance::charge(&self.fuel_used, ended.fuel_used);
        if ended.healthy && !self.exited.load(Ordering::Acquire) {
            self.pool.give_back(Instance::Wasm(instance));
        }
        self.finish(ended.result, ended.state)
    }

    /// Step 4: commits the call's writes if it succeeded.
    fn finish(
        &self,
        result: Result<Vec<u8>, CallError>,
        state: Option<CallState>,
    ) -> Result<Vec<u8>, CallError> {
        if result.is_ok()
            && let Some(CallState { mut kv, tx, .. }) = state
        {
            tx.commit(&mut kv);
        }
        result
    }

    /// Runs a WASI command in a fresh instance.
    async fn run_command(&self, wasm: &WasmModule) -> Result<CommandOutput, CallError> {
        let started = Instant::now();
        let lease = self.pool.lease()?;
        let mut wasi = WasiCtx::new(&wasm.name);
        if let Some(dir) = &self.settings.preopen {
            wasi.preopen_dir(dir, ".")
                .map_err(|error| CallError::BadArguments {
                    reason: format!("cannot preopen {}: {error}", dir.display()),
                })?;
        }
        let mut instance = if self.settings.fairness.is_async() {
            let new = WasmInstance::new_suspending(
                wasm,
                &self.settings,
                wasi,
                Some(lease),
                &self.fuel_used,
            );
            Box::pin(new).await?
        } else {
            WasmInstance::new_blocking(wasm, &self.settings, wasi, Some(lease), &self.fuel_used)?
        };
        let (status, stdout, stderr) = instance.run_command(&self.settings, &self.fuel_used).await;
        let (status, error) = match status {
            Ok(status) => (status, None),
            Err(error) => (-1, Some(error)),
        };
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
            duration: started.elapsed(),
            error,
        })
    }
}

/// Microseconds since the Unix epoch, for the `now_us` import.
pub(crate) fn wall_clock_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

/// The timing of a timed call, on the runtime's clock; a no-op for an untimed one.
struct Stopwatch {
    clock: Option<Clock>,
    submitted_ns: u64,
    started_ns: u64,
}

impl Stopwatch {
    fn start(clock: Option<Clock>) -> Stopwatch {
        let submitted_ns = clock.as_ref().map_or(0, Clock::now_ns);
        Stopwatch {
            clock,
            submitted_ns,
            started_ns: 0,
        }
    }

    /// Marks the job's start, on the database's worker.
    fn started(mut self) -> Stopwatch {
        self.started_ns = self.clock.as_ref().map_or(0, Clock::now_ns);
        self
    }

    /// How long the call waited and ran, until now.
    fn timing(&self) -> Timing {
        let Some(clock) = &self.clock else {
            return Timing::default();
        };
        let ended_ns = clock.now_ns();
        Timing {
            waited: Duration::from_nanos(self.started_ns.saturating_sub(self.submitted_ns)),
            ran: Duration::from_nanos(ended_ns.saturating_sub(self.started_ns)),
        }
    }
}

/// A call in flight: a future resolving to its result or a [`CallError`].
///
/// The call was submitted when it was made; dropping this future does not cancel it.
#[must_use = "the call runs anyway; await it to see its result"]
pub struct Call<T> {
    state: Inner<T>,
}

enum Inner<T> {
    Job {
        job: JobHandle<Result<T, CallError>>,
        /// The database's name, kept only when the lane refused the job (it closed between the
        /// exit check and the submission): `JobError::Closed` comes only from that refusal,
        /// so an accepted call carries no copy of the name.
        refused_by: Option<Arc<str>>,
    },
    Failed(Option<CallError>),
}

impl<T: Send + 'static> Call<T> {
    fn failed(error: CallError) -> Call<T> {
        Call {
            state: Inner::Failed(Some(error)),
        }
    }

    fn job(job: JobHandle<Result<T, CallError>>, db: &DbInner) -> Call<T> {
        Call {
            state: Inner::Job {
                // A refused job's handle is finished at once; an accepted one may be too (it
                // ran already), which costs the copy of the name and nothing else.
                refused_by: job.is_finished().then(|| Arc::clone(&db.name)),
                job,
            },
        }
    }
}

impl<T: Send + 'static> Future for Call<T> {
    type Output = Result<T, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_call(&mut self.state, cx)
    }
}

fn poll_call<T: Send + 'static>(
    state: &mut Inner<T>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, CallError>> {
    match state {
        Inner::Failed(error) => Poll::Ready(Err(error.take().unwrap_or(CallError::Cancelled))),
        Inner::Job { job, refused_by } => Pin::new(job).poll(cx).map(|outcome| match outcome {
            Ok(result) => result,
            Err(JobError::Closed) => Err(CallError::NoSuchModule {
                database: refused_by.as_deref().unwrap_or_default().to_owned(),
            }),
            Err(JobError::Cancelled) => Err(CallError::Cancelled),
            Err(JobError::Reentrant) => Err(CallError::Reentrant),
            Err(JobError::Panicked(panic)) => Err(CallError::Panicked {
                message: panic.to_string(),
            }),
            Err(other) => Err(CallError::Panicked {
                message: other.to_string(),
            }),
        }),
    }
}

// Calls are moved between threads and polled from anywhere; they pin nothing in place.
impl<T> Unpin for Call<T> {}
