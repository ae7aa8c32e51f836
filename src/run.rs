//! The scenario runner: hosts a scenario's databases, drives load at them, and measures.
//!
//! A run, once per fairness mode of the scenario, in steps:
//!
//! 1. Build a host for the mode (workers, pinning, quantum; fuel when the mode needs it),
//!    compile each group's module once, check its reducer, and create one database per
//!    tenant.
//! 2. Drive load. Open-loop tenants get Poisson arrivals at their rate, submitted by one
//!    driver thread at their intended times; a call's latency counts from its intended time,
//!    so a late driver or a slow server cannot hide delay. Closed-loop tenants keep
//!    `in_flight` calls each, every one resubmitted when it ends, by tasks on the runtime.
//! 3. Measure only the window after the warm-up: calls intended (open loop) or started
//!    (closed loop) inside it are counted, in `submitted` and then as ok or failed. CPU time
//!    per tenant, yields and worker busy time are differences of counters taken at the
//!    window's two ends.
//! 4. After the window, stop submitting and wait for every counted call to end (up to the
//!    longest budget plus a margin); one still running then counts as failed, `Unfinished`.
//!    So `submitted` always equals ok plus failed.
//! 5. Shut the host down and return the samples for the report (`report.rs`).
//!
//! A stop request (Ctrl-C) ends the window early; steps 4 and 5 still run, and the report
//! covers what ran.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corelane_executor::Runtime;
use corelane_host::{
    Call, CallError, Database, DatabaseOptions, Fairness, Host, Module, ModuleKind, Timed,
};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::report::{GroupSamples, RunSamples};
use crate::scenario::{Group, Load, ModuleSource, Scenario};

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The host could not be built, or a database created.
    #[error("{scenario}: {context}: {source}")]
    Host {
        /// The scenario's file (or the embedded default).
        scenario: String,
        /// What was being done.
        context: String,
        /// What the host said.
        source: Box<corelane_host::HostError>,
    },
    /// A group's module cannot be used.
    #[error("{scenario}: {key}: {message}")]
    Group {
        /// The scenario's file (or the embedded default).
        scenario: String,
        /// The key at fault, e.g. `group[1].reducer`.
        key: String,
        /// What was wrong.
        message: String,
    },
}

/// How a run shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A live progress bar (on a terminal).
    Bar,
    /// A plain line every second (when output is not a terminal).
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// A bar if standard error is a terminal, else plain lines.
    pub fn detect() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

/// Options of a run that are not part of the scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How to show progress.
    pub progress: Progress,
    /// Set (by Ctrl-C) to end the measured window early.
    pub stop: Arc<AtomicBool>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            progress: Progress::Quiet,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What a run of a scenario produced.
#[derive(Debug)]
pub struct Outcome {
    /// One set of samples per fairness mode that ran.
    pub runs: Vec<RunSamples>,
    /// Whether a stop request cut the run short.
    pub interrupted: bool,
    /// Things the reader of the report should know (load not delivered, for instance).
    pub warnings: Vec<String>,
}

/// Runs `scenario` once per fairness mode; see the module documentation. Every mode is
/// checked before the first one runs, so that a bad one does not waste the others.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Outcome, RunError> {
    for &fairness in &scenario.settings.fairness {
        fairness.compiled_in().map_err(|reason| RunError::Group {
            scenario: origin(scenario),
            key: "fairness".to_owned(),
            message: format!("mode {fairness} is not available: {reason}"),
        })?;
    }
    let mut outcome = Outcome {
        runs: Vec::new(),
        interrupted: false,
        warnings: Vec::new(),
    };
    // A scenario with hostile groups also runs without them, right after each full run.
    let without_hostile = scenario
        .groups
        .iter()
        .any(|group| group.hostile)
        .then(|| Scenario {
            name: format!("{} without hostile", scenario.name),
            groups: scenario
                .groups
                .iter()
                .filter(|group| !group.hostile)
                .cloned()
                .collect(),
            ..scenario.clone()
        });
    let variants: Vec<&Scenario> = match &without_hostile {
        Some(without) if !without.groups.is_empty() => vec![scenario, without],
        _ => vec![scenario],
    };
    for &fairness in &scenario.settings.fairness {
        for &variant in &variants {
            if options.stop.load(Ordering::Relaxed) {
                break;
            }
            let run = run_mode(variant, fairness, options)?;
            outcome.warnings.extend(run.churn_errors.iter().cloned());
            if let Some(warning) = undelivered_load(variant, fairness, &run) {
                outcome.warnings.push(warning);
            }
            outcome.runs.push(run.samples);
        }
    }
    outcome.interrupted = options.stop.load(Ordering::Relaxed);
    Ok(outcome)
}

/// A warning if the open-loop driver fell more than 10% short of the load the scenario
/// offers.
fn undelivered_load(scenario: &Scenario, fairness: Fairness, run: &ModeRun) -> Option<String> {
    let (samples, open_loop_submitted) = (&run.samples, run.open_loop_submitted);
    {
        let offered: f64 = scenario
            .groups
            .iter()
            .filter_map(|group| match group.load {
                Load::Open { rate_per_s } => Some(rate_per_s * group.count as f64),
                Load::Closed { .. } => None,
            })
            .sum::<f64>()
            * samples.duration.as_secs_f64();
        (offered >= 100.0 && (open_loop_submitted as f64) < 0.9 * offered).then(|| {
            format!(
                "{fairness}: the driver submitted {open_loop_submitted} open-loop calls of the \
                 {offered:.0} the scenario offers; the load was not delivered in full"
            )
        })
    }
}

/// The runs whose resident memory grew more over the window than the scenario's
/// `max_rss_growth` allows, each as a message; empty when none did or there is no limit.
pub fn rss_growth_violations(scenario: &Scenario, runs: &[RunSamples]) -> Vec<String> {
    let Some(limit) = scenario.settings.max_rss_growth else {
        return Vec::new();
    };
    runs.iter()
        .filter_map(|run| {
            let (start, end) = (run.rss_start_mb?, run.rss_end_mb?);
            (end > start * (1.0 + limit)).then(|| {
                format!(
                    "{} ({}): resident memory grew from {start:.1} MB to {end:.1} MB over the \
                     window (+{:.1}%), more than max_rss_growth allows ({:.1}%)",
                    run.scenario,
                    run.fairness,
                    (end / start - 1.0) * 100.0,
                    limit * 100.0
                )
            })
        })
        .collect()
}

/// This process's resident memory in MB, from /proc (None where it cannot be read).
fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The scenario's name for error messages: its file, or the embedded default.
fn origin(scenario: &Scenario) -> String {
    scenario.origin.to_string()
}

/// Reads and compiles a group's module.
pub fn load_module(host: &Host, source: &ModuleSource) -> Result<Module, String> {
    let (name, bytes) = match source {
        ModuleSource::Sample(name) => (
            name.clone(),
            corelane_modules::wasm(name).map_err(|error| error.to_string())?,
        ),
        ModuleSource::File(path) => {
            let bytes = std::fs::read(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            let name = path
                .file_stem()
                .map_or_else(|| "module".to_owned(), |s| s.to_string_lossy().into_owned());
            (name, bytes)
        }
    };
    host.compile(&name, &bytes)
        .map_err(|error| error.to_string())
}

/// One group's tenants and measurements.
struct GroupRun {
    group: Group,
    module: Module,
    options: DatabaseOptions,
    tenants: Vec<Arc<Tenant>>,
    recorder: Arc<Recorder>,
}

/// One tenant: its database of the moment, which churn replaces (`recreate_every_s`).
struct Tenant {
    database: Mutex<Database>,
    /// Lane run time and yields of the databases churn has retired, so that the tenant's
    /// CPU time spans all of them.
    retired: Mutex<(Duration, u64)>,
    /// Databases the tenant has had; names the next one.
    generation: AtomicU64,
}

impl Tenant {
    fn new(database: Database) -> Arc<Tenant> {
        Arc::new(Tenant {
            database: Mutex::new(database),
            retired: Mutex::new((Duration::ZERO, 0)),
            generation: AtomicU64::new(0),
        })
    }

    /// Submits a call to the tenant's database of the moment. Submitting under the lock
    /// that churn swaps the database under means the call reaches the old database before
    /// it exits (and runs there, as an exit lets queued calls finish) or the new one, never
    /// an exited one. Also gives the worker of that database.
    fn call_timed(&self, reducer: &str, args: Vec<u8>) -> (Call<Timed>, usize) {
        let database = self.database.lock();
        (database.call_timed(reducer, args), database.lane().worker())
    }

    /// Lane run time and yields over every database the tenant has had.
    fn cpu_and_yields(&self) -> (Duration, u64) {
        let retired = *self.retired.lock();
        let stats = self.database.lock().lane().stats();
        (retired.0 + stats.run_time, retired.1 + stats.yields)
    }
}

impl GroupRun {
    /// Churn: gives tenant `index` a new database, and lets the old one exit once its calls
    /// have ended. Calls made meanwhile go to one or the other, never to neither.
    fn replace(&self, host: &Host, index: usize) -> Result<(), corelane_host::HostError> {
        let tenant = &self.tenants[index];
        // Relaxed: only the churn thread counts generations.
        let generation = tenant.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("{}-{index}.{generation}", self.group.name);
        let new = host.create_database(&name, &self.module, self.options.clone())?;
        let old = std::mem::replace(&mut *tenant.database.lock(), new);
        let stats = old.lane().stats();
        {
            let mut retired = tenant.retired.lock();
            retired.0 += stats.run_time;
            retired.1 += stats.yields;
        }
        old.exit();
        Ok(())
    }
}

/// Measurements of one group, filled from any thread.
struct Recorder {
    inner: Mutex<Recorded>,
}

struct Recorded {
    latency_us: Histogram<u64>,
    wait_us: Histogram<u64>,
    run_us: Histogram<u64>,
    ok: u64,
    failed: BTreeMap<String, u64>,
    /// Counted calls that have not ended.
    in_flight: u64,
    /// Set at step 4's deadline: calls ending later are already counted as unfinished.
    finalized: bool,
}

/// The largest latency recorded, in microseconds (an hour); longer ones are clamped.
const MAX_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds this wide with 3 significant digits are always valid.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            inner: Mutex::new(Recorded {
                latency_us: histogram(),
                wait_us: histogram(),
                run_us: histogram(),
                ok: 0,
                failed: BTreeMap::new(),
                in_flight: 0,
                finalized: false,
            }),
        })
    }

    /// A counted call was submitted.
    fn begin(&self) {
        self.inner.lock().in_flight += 1;
    }

    /// A counted call ended. `latency` counts from the call's intended start.
    fn end(&self, outcome: Result<Timed, CallError>, latency: Duration) {
        let micros = |d: Duration| (d.as_micros().min(u128::from(MAX_US)) as u64).max(1);
        let mut inner = self.inner.lock();
        if inner.finalized {
            return;
        }
        inner.in_flight -= 1;
        let result = match outcome {
            Ok(timed) => {
                let _ = inner.wait_us.record(micros(timed.timing.waited));
                let _ = inner.run_us.record(micros(timed.timing.ran));
                timed.result
            }
            Err(error) => Err(error),
        };
        let _ = inner.latency_us.record(micros(latency));
        match result {
            Ok(_) => inner.ok += 1,
            Err(error) => *inner.failed.entry(kind(&error).to_owned()).or_default() += 1,
        }
    }

    fn in_flight(&self) -> u64 {
        self.inner.lock().in_flight
    }

    /// Step 4's deadline: counted calls still running become failures, `Unfinished`.
    fn finalize(&self) {
        let mut inner = self.inner.lock();
        inner.finalized = true;
        let unfinished = std::mem::take(&mut inner.in_flight);
        if unfinished > 0 {
            *inner.failed.entry("Unfinished".to_owned()).or_default() += unfinished;
        }
    }
}

/// The name of a call error's kind, as reports count them.
pub fn kind(error: &CallError) -> &'static str {
    match error {
        CallError::NoSuchModule { .. } => "NoSuchModule",
        CallError::NoSuchReducer { .. } => "NoSuchReducer",
        CallError::BadArguments { .. } => "BadArguments",
        CallError::BadResult { .. } => "BadResult",
        CallError::BadPointer { .. } => "BadPointer",
        CallError::Failed { .. } => "Failed",
        CallError::Trap { .. } => "Trap",
        CallError::Timeout { .. } => "Timeout",
        CallError::OutOfFuel { .. } => "OutOfFuel",
        CallError::MemoryLimit { .. } => "MemoryLimit",
        CallError::TableLimit { .. } => "TableLimit",
        CallError::InstanceLimit { .. } => "InstanceLimit",
        CallError::HostInstanceLimit { .. } => "HostInstanceLimit",
        CallError::StackOverflow => "StackOverflow",
        CallError::Exited { .. } => "Exited",
        CallError::WrongKind { .. } => "WrongKind",
        CallError::Panicked { .. } => "Panicked",
        CallError::Cancelled => "Cancelled",
        CallError::Reentrant => "Reentrant",
        CallError::OnWorker { .. } => "OnWorker",
        _ => "Other",
    }
}

/// The measured window, shared by the drivers.
struct Window {
    start: Instant,
    /// Moved earlier by a stop request.
    end: Mutex<Instant>,
    /// Calls counted in the window.
    submitted: AtomicU64,
    /// Of those, open-loop calls.
    open_submitted: AtomicU64,
    /// Calls ended so far, counted or not, for the progress display.
    ended: AtomicU64,
    /// Set when the window is over: closed loops stop resubmitting.
    closed: AtomicBool,
}

impl Window {
    /// Whether a call meant to start at `at` counts; if so, it is counted as submitted.
    fn admit(&self, at: Instant, recorder: &Recorder) -> bool {
        let counted = at >= self.start && at < *self.end.lock();
        if counted {
            // Relaxed: read only after every driver has stopped.
            self.submitted.fetch_add(1, Ordering::Relaxed);
            recorder.begin();
        }
        counted
    }
}

/// Steps 1 to 5 for one fairness mode. Returns the samples and how many open-loop calls were
/// counted.
fn run_mode(
    scenario: &Scenario,
    fairness: Fairness,
    options: &RunOptions,
) -> Result<ModeRun, RunError> {
    let settings = &scenario.settings;
    let origin = origin(scenario);

    // Step 1.
    let mut runtime = Runtime::builder().pin(settings.pin);
    if let Some(workers) = settings.workers {
        runtime = runtime.workers(workers);
    }
    let host = Host::builder()
        .runtime(runtime)
        .quantum(settings.quantum)
        .fuel(fairness == Fairness::Fuel)
        .fairness(fairness)
        .build()
        .map_err(|source| RunError::Host {
            scenario: origin.clone(),
            context: format!("building the host ({fairness})"),
            source: Box::new(source),
        })?;
    let groups = create_databases(scenario, &host, fairness, &origin)?;

    // Step 2.
    let now = Instant::now();
    let window = Arc::new(Window {
        start: now + settings.warmup,
        end: Mutex::new(now + settings.warmup + settings.duration),
        submitted: AtomicU64::new(0),
        open_submitted: AtomicU64::new(0),
        ended: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    });
    start_closed_loops(&host, &groups, &window);
    let progress = start_progress(
        options.progress,
        fairness,
        settings.warmup + settings.duration,
        &window,
    );
    let open_loop = open_loop_arrivals(&groups, settings.seed, now);

    // Step 3: counters at the window's two ends. Churn, if any group asks for it, runs on
    // a thread of its own beside the open-loop driver.
    let mut before = None;
    let driven = AtomicBool::new(false);
    let churn_errors = std::thread::scope(|scope| {
        let churn = groups
            .iter()
            .any(|run| run.group.recreate_every.is_some())
            .then(|| scope.spawn(|| churn(&host, &groups, &driven)));
        drive_open_loop(
            host.runtime(),
            &groups,
            open_loop,
            &window,
            &options.stop,
            || {
                before = Some(Counters::take(&host, &groups));
            },
        );
        driven.store(true, Ordering::Release);
        churn.map_or_else(Vec::new, |churn| churn.join().unwrap_or_default())
    });
    let before = before.unwrap_or_else(|| Counters::take(&host, &groups));
    let after = Counters::take(&host, &groups);
    // The window as the counters saw it, so that CPU and busy times and the duration that
    // divides them cover the same span.
    let duration = after.at.saturating_duration_since(before.at);

    // Step 4.
    window.closed.store(true, Ordering::Release);
    let longest_budget = groups.iter().filter_map(|run| run.group.budget).max();
    let longest_budget = longest_budget.unwrap_or(host.database_defaults().budget);
    let deadline = Instant::now() + longest_budget + Duration::from_secs(5);
    while groups.iter().any(|run| run.recorder.in_flight() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    groups.iter().for_each(|run| run.recorder.finalize());
    if let Some(progress) = progress {
        progress.finish();
    }

    // Step 5.
    let samples = collect(
        scenario,
        fairness,
        host.runtime().workers(),
        duration,
        &window,
        &groups,
        &before,
        &after,
    );
    drop(groups);
    host.shutdown(Duration::from_secs(5));
    // Relaxed: every driver has stopped.
    Ok(ModeRun {
        samples,
        open_loop_submitted: window.open_submitted.load(Ordering::Relaxed),
        churn_errors,
    })
}

/// What one run of one mode produced, for [`run`].
struct ModeRun {
    samples: RunSamples,
    open_loop_submitted: u64,
    /// Why churn could not replace a database, if it could not (the first few reasons).
    churn_errors: Vec<String>,
}

/// Churn, on its own thread until `driven` is set: replaces each tenant's database of every
/// group with `recreate_every_s`, tenants spread evenly over the period. Returns the first
/// few errors, if any.
fn churn(host: &Host, groups: &[GroupRun], driven: &AtomicBool) -> Vec<String> {
    let start = Instant::now();
    let mut next = BinaryHeap::new();
    for (group_index, run) in groups.iter().enumerate() {
        let Some(every) = run.group.recreate_every else {
            continue;
        };
        let count = run.tenants.len();
        for tenant in 0..count {
            let offset = every.mul_f64((tenant + 1) as f64 / count as f64);
            next.push(Reverse((start + offset, group_index, tenant)));
        }
    }

    let mut errors = Vec::new();
    // Acquire: pairs with the Release store after the driver returns.
    while !driven.load(Ordering::Acquire) {
        let Some(&Reverse((at, group_index, tenant))) = next.peek() else {
            break;
        };
        let now = Instant::now();
        if at > now {
            std::thread::sleep((at - now).min(Duration::from_millis(50)));
            continue;
        }
        next.pop();
        let run = &groups[group_index];
        if let Err(error) = run.replace(host, tenant)
            && errors.len() < 5
        {
            errors.push(format!(
                "recreating a tenant of group {}: {error}",
                run.group.name
            ));
        }
        if let Some(every) = run.group.recreate_every {
            next.push(Reverse((at + every, group_index, tenant)));
        }
    }
    errors
}

/// Step 1: compiles each group's module once and creates its tenants' databases.
fn create_databases(
    scenario: &Scenario,
    host: &Host,
    fairness: Fairness,
    origin: &str,
) -> Result<Vec<GroupRun>, RunError> {
    let mut groups = Vec::new();
    for (index, group) in scenario.groups.iter().enumerate() {
        let key_error = |key: &str, message: String| RunError::Group {
            scenario: origin.to_owned(),
            key: format!("group[{index}].{key}"),
            message,
        };
        let module =
            load_module(host, &group.module).map_err(|message| key_error("module", message))?;
        check_reducer(&module, group).map_err(|message| key_error("reducer", message))?;

        let mut options = DatabaseOptions {
            weight: group.weight,
            fairness: Some(fairness),
            preopen: group.preopen.clone(),
            ..host.database_defaults()
        };
        if let Some(budget) = group.budget {
            options.budget = budget;
        }
        let mut tenants = Vec::with_capacity(group.count);
        for tenant in 0..group.count {
            let name = format!("{}-{tenant}", group.name);
            let database = host
                .create_database(&name, &module, options.clone())
                .map_err(|source| RunError::Host {
                    scenario: origin.to_owned(),
                    context: format!("creating database {name} of group[{index}]"),
                    source: Box::new(source),
                })?;
            tenants.push(Tenant::new(database));
        }
        groups.push(GroupRun {
            group: group.clone(),
            module,
            options,
            tenants,
            recorder: Recorder::new(),
        });
    }
    Ok(groups)
}

fn check_reducer(module: &Module, group: &Group) -> Result<(), String> {
    match module.kind() {
        ModuleKind::Command if group.reducer == "_start" => Ok(()),
        ModuleKind::Command => Err(format!(
            "module {} is a WASI command: its only entry point is `_start`, not {:?}",
            module.name(),
            group.reducer
        )),
        ModuleKind::Reducers if module.has_reducer(&group.reducer) => Ok(()),
        ModuleKind::Reducers => Err(format!(
            "module {} has no reducer {:?}; it has: {}",
            module.name(),
            group.reducer,
            module.reducers().join(", ")
        )),
    }
}

/// Awaits a call and records it if it counts. `submitted` is when it was submitted and
/// `intended` when it was meant to be; its end is `submitted + waited + ran`.
async fn track(
    call: corelane_host::Call<Timed>,
    recorder: Arc<Recorder>,
    window: Arc<Window>,
    counted: bool,
    intended: Instant,
    submitted: Instant,
) {
    let outcome = call.await;
    if counted {
        let took = match &outcome {
            Ok(timed) => timed.timing.waited + timed.timing.ran,
            Err(_) => submitted.elapsed(),
        };
        recorder.end(
            outcome,
            submitted.saturating_duration_since(intended) + took,
        );
    }
    // Relaxed: a progress display.
    window.ended.fetch_add(1, Ordering::Relaxed);
}

/// Closed-loop tenants: a task per call slot, resubmitting as each call ends.
fn start_closed_loops(host: &Host, groups: &[GroupRun], window: &Arc<Window>) {
    for run in groups {
        let Load::Closed { in_flight } = run.group.load else {
            continue;
        };
        for tenant in &run.tenants {
            for _ in 0..in_flight {
                let tenant = Arc::clone(tenant);
                let recorder = Arc::clone(&run.recorder);
                let window = Arc::clone(window);
                let (reducer, args) = (run.group.reducer.clone(), run.group.args.clone());
                let slot = async move {
                    while !window.closed.load(Ordering::Acquire) {
                        let started = Instant::now();
                        if started >= *window.end.lock() {
                            break;
                        }
                        let counted = window.admit(started, &recorder);
                        let (call, _) = tenant.call_timed(&reducer, args.clone());
                        track(
                            call,
                            Arc::clone(&recorder),
                            Arc::clone(&window),
                            counted,
                            started,
                            started,
                        )
                        .await;
                    }
                };
                drop(host.runtime().spawn(slot));
            }
        }
    }
}

/// A tiny seeded generator (SplitMix64) for arrival times; statistics, not secrets.
struct Arrivals(u64);

impl Arrivals {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 53 random bits, in (0, 1].
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// The gap to the next arrival of a Poisson process of `rate` per second, at most an
    /// hour (a vanishing rate would otherwise overflow a `Duration`).
    fn gap(&mut self, rate: f64) -> Duration {
        const HOUR: Duration = Duration::from_secs(3600);
        Duration::try_from_secs_f64(-self.next_f64().ln() / rate).map_or(HOUR, |gap| gap.min(HOUR))
    }
}

/// The next arrival of every open-loop tenant, soonest first, with their generators.
struct OpenLoop {
    next: BinaryHeap<Reverse<(Instant, usize, usize)>>,
    generators: Vec<Vec<Arrivals>>,
}

fn open_loop_arrivals(groups: &[GroupRun], seed: u64, start: Instant) -> OpenLoop {
    let mut next = BinaryHeap::new();
    let mut generators = Vec::new();
    for (group_index, run) in groups.iter().enumerate() {
        let mut tenants = Vec::new();
        if let Load::Open { rate_per_s } = run.group.load {
            for tenant in 0..run.tenants.len() {
                let mut arrivals = Arrivals(seed ^ ((group_index as u64) << 32) ^ tenant as u64);
                next.push(Reverse((
                    start + arrivals.gap(rate_per_s),
                    group_index,
                    tenant,
                )));
                tenants.push(arrivals);
            }
        }
        generators.push(tenants);
    }
    OpenLoop { next, generators }
}

/// Step 2 for open-loop tenants, on this thread, until the window ends or a stop request
/// moves its end. `at_window_start` runs once, when the window opens.
fn drive_open_loop(
    runtime: &corelane_executor::Handle,
    groups: &[GroupRun],
    mut open: OpenLoop,
    window: &Arc<Window>,
    stop: &AtomicBool,
    mut at_window_start: impl FnMut(),
) {
    let mut window_open = false;
    loop {
        let now = Instant::now();
        if !window_open && now >= window.start {
            at_window_start();
            window_open = true;
        }
        if stop.load(Ordering::Relaxed) {
            *window.end.lock() = now.max(window.start);
            break;
        }
        let end = *window.end.lock();
        if now >= end {
            break;
        }
        // Wake for the next arrival, the window's start, or its end, whichever is first, and
        // at least every 50 ms to notice a stop request.
        let milestone = if window_open { end } else { window.start };
        let next_arrival = open.next.peek().map(|Reverse((at, _, _))| *at);
        match next_arrival {
            Some(at) if at <= now => {}
            other => {
                let wake = other
                    .unwrap_or(milestone)
                    .min(milestone)
                    .min(now + Duration::from_millis(50));
                sleep_until(wake);
                continue;
            }
        }
        let Some(Reverse((intended, group_index, tenant))) = open.next.pop() else {
            continue;
        };
        let run = &groups[group_index];
        let counted = window.admit(intended, &run.recorder);
        if counted {
            // Relaxed: read only after the driver has stopped.
            window.open_submitted.fetch_add(1, Ordering::Relaxed);
        }
        let submitted = Instant::now();
        let (call, worker) =
            run.tenants[tenant].call_timed(&run.group.reducer, run.group.args.clone());
        let tracked = track(
            call,
            Arc::clone(&run.recorder),
            Arc::clone(window),
            counted,
            intended,
            submitted,
        );
        // Awaited on the database's own worker, where the call's end wakes it cheaply.
        if let Ok(task) = runtime.spawn_on(worker, tracked) {
            drop(task);
        }
        if let Load::Open { rate_per_s } = run.group.load {
            let gap = open.generators[group_index][tenant].gap(rate_per_s);
            open.next
                .push(Reverse((intended + gap, group_index, tenant)));
        }
    }
}

/// Sleeps until `at`: a sleep for most of the way (the kernel wakes a sleeper up to about
/// 50 us late), a spin for the last 60 us. The spin costs the driver's CPU, which the workers
/// share on a small machine; lateness past it shows in the measured latency, as it should.
fn sleep_until(at: Instant) {
    const SPIN: Duration = Duration::from_micros(60);
    let now = Instant::now();
    if at <= now {
        return;
    }
    let left = at - now;
    if left > SPIN {
        std::thread::sleep(left - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

/// Counters at one end of the window.
struct Counters {
    /// When they were taken.
    at: Instant,
    /// Per group, per tenant: lane run time and yields.
    lanes: Vec<Vec<(Duration, u64)>>,
    busy: Vec<Duration>,
    /// The process's resident memory, in MB.
    resident_mb: Option<f64>,
}

impl Counters {
    fn take(host: &Host, groups: &[GroupRun]) -> Counters {
        let lanes = groups
            .iter()
            .map(|run| {
                run.tenants
                    .iter()
                    .map(|tenant| tenant.cpu_and_yields())
                    .collect()
            })
            .collect();
        let busy = host
            .runtime()
            .stats()
            .workers
            .iter()
            .map(|worker| worker.busy)
            .collect();
        Counters {
            at: Instant::now(),
            lanes,
            busy,
            resident_mb: resident_mb(),
        }
    }
}

#[allow(clippy::too_many_arguments)] // one call site; the pieces of a finished run
fn collect(
    scenario: &Scenario,
    fairness: Fairness,
    workers: usize,
    duration: Duration,
    window: &Window,
    groups: &[GroupRun],
    before: &Counters,
    after: &Counters,
) -> RunSamples {
    let groups = groups
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let tenants = before.lanes[index].iter().zip(&after.lanes[index]);
            let tenant_cpu = tenants
                .clone()
                .map(|((b, _), (a, _))| a.saturating_sub(*b))
                .collect();
            let yields = tenants.map(|((_, b), (_, a))| a.saturating_sub(*b)).sum();
            let recorded = run.recorder.inner.lock();
            GroupSamples {
                name: run.group.name.clone(),
                tenants: run.tenants.len(),
                latency_us: recorded.latency_us.clone(),
                wait_us: recorded.wait_us.clone(),
                run_us: recorded.run_us.clone(),
                ok: recorded.ok,
                failed: recorded.failed.clone(),
                tenant_cpu,
                yields,
            }
        })
        .collect();
    // An empty window (a stop during the warm-up) has no busy fraction to speak of: 0.
    let span = duration.as_secs_f64();
    let worker_busy = before
        .busy
        .iter()
        .zip(&after.busy)
        .map(|(b, a)| {
            if span > 0.0 {
                (a.saturating_sub(*b).as_secs_f64() / span).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    RunSamples {
        scenario: scenario.name.clone(),
        fairness,
        quantum: scenario.settings.quantum,
        workers,
        duration,
        // Relaxed: every driver has stopped (step 4).
        submitted: window.submitted.load(Ordering::Relaxed),
        groups,
        worker_busy,
        rss_start_mb: before.resident_mb,
        rss_end_mb: after.resident_mb,
    }
}

/// The progress display, on its own thread.
struct ProgressThread {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressThread {
    fn finish(mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start_progress(
    progress: Progress,
    fairness: Fairness,
    total: Duration,
    window: &Arc<Window>,
) -> Option<ProgressThread> {
    if progress == Progress::Quiet {
        return None;
    }
    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::clone(&done);
    let window = Arc::clone(window);
    let thread = std::thread::Builder::new()
        .name("corelane-progress".to_owned())
        .spawn(move || {
            let started = Instant::now();
            let bar = (progress == Progress::Bar).then(|| {
                let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
                let style = indicatif::ProgressStyle::with_template(
                    "{prefix:>7} [{bar:30}] {elapsed:>4} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                bar.set_style(style.progress_chars("=> "));
                bar.set_prefix(fairness.to_string());
                bar
            });
            let mut last = (Instant::now(), 0u64);
            let mut last_line = Instant::now();
            while !finished.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(200));
                let ended = window.ended.load(Ordering::Relaxed);
                let now = Instant::now();
                let rate =
                    (ended - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
                last = (now, ended);
                let message = format!("{ended} calls, {rate:.0}/s");
                match &bar {
                    Some(bar) => {
                        bar.set_position(
                            started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64
                        );
                        bar.set_message(message);
                    }
                    None if now.duration_since(last_line) >= Duration::from_secs(1) => {
                        last_line = now;
                        eprintln!(
                            "[{fairness}] {:.1} s / {:.1} s: {message}",
                            started.elapsed().as_secs_f64(),
                            total.as_secs_f64()
                        );
                    }
                    None => {}
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        })
        .ok()?;
    Some(ProgressThread {
        done,
        thread: Some(thread),
    })
}
