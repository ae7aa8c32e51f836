//! The host: one Wasmtime engine, its linker and epoch ticker, a runtime, and databases by
//! name.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use corelane_executor::{Handle, Runtime, ShutdownReport};
use parking_lot::Mutex;
use wasmtime::{Config, Engine, ExternType, Linker, OptLevel, Store};

use crate::abi;
use crate::database::{Database, DatabaseOptions, Settings};
use crate::error::{HostError, ModuleError};
use crate::fairness::Fairness;
use crate::instance::budget_ticks;
use crate::kv::Kv;
use crate::module::{self, Module};
use crate::pool::{Census, Pool};
use crate::store::{StoreData, StoreLimits};
use crate::ticker::{Quanta, Ticker};
use crate::wasi::{self, WasiCtx};

/// The shortest quantum the ticker supports.
pub const MIN_QUANTUM: Duration = Duration::from_micros(100);

/// A function that adds host functions of the embedder's to the linker.
type Definition = Box<dyn FnOnce(&mut Linker<StoreData>) -> wasmtime::Result<()> + Send>;

/// Builds a [`Host`]; from [`Host::builder`].
pub struct HostBuilder {
    runtime: corelane_executor::Builder,
    quantum: Duration,
    fuel: bool,
    fairness: Fairness,
    defaults: DatabaseOptions,
    max_wasm_stack: usize,
    max_module_bytes: usize,
    max_live_instances: usize,
    max_idle_instances: usize,
    definitions: Vec<Definition>,
}

impl fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuilder")
            .field("runtime", &self.runtime)
            .field("quantum", &self.quantum)
            .field("fuel", &self.fuel)
            .field("fairness", &self.fairness)
            .finish_non_exhaustive()
    }
}

impl Default for HostBuilder {
    fn default() -> HostBuilder {
        let fairness = if cfg!(feature = "fairness-epoch") {
            Fairness::Epoch
        } else {
            Fairness::Never
        };
        HostBuilder {
            runtime: Runtime::builder(),
            quantum: Duration::from_millis(1),
            fuel: false,
            fairness,
            defaults: DatabaseOptions::default(),
            max_wasm_stack: 512 << 10,
            max_module_bytes: 2 << 20,
            max_live_instances: 10_000,
            max_idle_instances: 4_096,
            definitions: Vec::new(),
        }
    }
}

impl HostBuilder {
    /// The runtime's settings (workers, pinning, slices; default: the runtime's defaults).
    pub fn runtime(mut self, runtime: corelane_executor::Builder) -> HostBuilder {
        self.runtime = runtime;
        self
    }

    /// The epoch quantum (default 1 ms, at least [`MIN_QUANTUM`]).
    pub fn quantum(mut self, quantum: Duration) -> HostBuilder {
        self.quantum = quantum;
        self
    }

    /// Whether the engine meters fuel, which `Fairness::Fuel` needs (default: no; metering
    /// slows every module a little).
    pub fn fuel(mut self, fuel: bool) -> HostBuilder {
        self.fuel = fuel;
        self
    }

    /// The fairness mode of databases that do not choose one (default: `Epoch` when built
    /// with `fairness-epoch`, else `Never`).
    pub fn fairness(mut self, fairness: Fairness) -> HostBuilder {
        self.fairness = fairness;
        self
    }

    /// Options new databases start from.
    pub fn database_defaults(mut self, defaults: DatabaseOptions) -> HostBuilder {
        self.defaults = defaults;
        self
    }

    /// The most stack WebAssembly may use, in bytes (default 512 KiB).
    pub fn max_wasm_stack(mut self, bytes: usize) -> HostBuilder {
        self.max_wasm_stack = bytes;
        self
    }

    /// The largest module accepted, in bytes (default 2 MiB).
    pub fn max_module_bytes(mut self, bytes: usize) -> HostBuilder {
        self.max_module_bytes = bytes;
        self
    }

    /// The most Wasm instances alive at once over all databases, in use or idle (default
    /// 10,000). Past it a call fails with `CallError::HostInstanceLimit`. Each instance
    /// reserves address space for its memory and, once it has made an async call, several
    /// memory mappings: the kernel's default limit of 65,530 mappings is reached near 13,000.
    pub fn max_live_instances(mut self, instances: usize) -> HostBuilder {
        self.max_live_instances = instances.max(1);
        self
    }

    /// How many live instances the host may have over all databases and still keep one
    /// idle after its call (default 4,096); past it, a healthy instance is dropped after its
    /// call, whatever its database's own cap.
    pub fn max_idle_instances(mut self, instances: usize) -> HostBuilder {
        self.max_idle_instances = instances;
        self
    }

    /// Adds host functions of the embedder's. They must be synchronous (`func_wrap`) so that
    /// every fairness mode can call them.
    pub fn define(
        mut self,
        define: impl FnOnce(&mut Linker<StoreData>) -> wasmtime::Result<()> + Send + 'static,
    ) -> HostBuilder {
        self.definitions.push(Box::new(define));
        self
    }

    /// Builds the engine, the linker, the runtime and the ticker.
    pub fn build(self) -> Result<Host, HostError> {
        if self.quantum < MIN_QUANTUM {
            return Err(HostError::Setting(format!(
                "quantum {:?} is below the minimum of {MIN_QUANTUM:?}",
                self.quantum
            )));
        }
        check_fairness(self.fairness, self.fuel)?;

        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(self.fuel)
            .max_wasm_stack(self.max_wasm_stack)
            .async_stack_size(self.max_wasm_stack + (1 << 20))
            .cranelift_opt_level(OptLevel::Speed);
        let engine =
            Engine::new(&config).map_err(|error| HostError::Engine(format!("{error:#}")))?;

        let mut linker = Linker::new(&engine);
        let linked = abi::add_to_linker(&mut linker)
            .and_then(|()| wasi::add_to_linker(&mut linker, |data: &mut StoreData| &mut data.wasi));
        linked.map_err(|error| HostError::Engine(format!("{error:#}")))?;
        for define in self.definitions {
            define(&mut linker).map_err(|error| HostError::Engine(format!("{error:#}")))?;
        }

        // What the linker offers, by name, to check modules' imports against.
        let limits = StoreLimits {
            memory_bytes: 0,
            table_elements: 0,
            hit: None,
        };
        let data = StoreData::new(limits, WasiCtx::default(), Arc::from(""));
        let mut store = Store::new(&engine, data);
        let offered: HashMap<(String, String), ExternType> = linker
            .iter(&mut store)
            .map(|(module, name, item)| ((module.to_owned(), name.to_owned()), item))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(key, item)| (key, item.ty(&store)))
            .collect();

        // Work that arrives behind a long call makes it yield now, not at the next tick: the
        // ticker's thread may not get a CPU in time while every core runs a worker. Every
        // running call sees the tick; only one whose lane is behind in its worker's fair
        // order loses the CPU, and such a tick counts nothing against a budget: budgets count
        // the ticker's quanta only.
        let preempted = engine.clone();
        let runtime = self
            .runtime
            .preempt(move |_worker| preempted.increment_epoch())
            .build()?;
        let inner = Arc::new(HostInner {
            engine: engine.clone(),
            linker,
            offered,
            config: HostConfig {
                quantum: self.quantum,
                fuel: self.fuel,
                fairness: self.fairness,
                defaults: self.defaults,
                max_module_bytes: self.max_module_bytes,
            },
            databases: Mutex::new(HashMap::new()),
            runtime: runtime.handle().clone(),
            quanta: Quanta::default(),
            census: Census::new(self.max_live_instances, self.max_idle_instances),
        });
        let weak = Arc::downgrade(&inner);
        let ticker = Ticker::start(engine, self.quantum, inner.quanta.clone(), move || {
            sweep(&weak)
        })
        .map_err(HostError::Ticker)?;
        Ok(Host {
            inner,
            runtime: Some(runtime),
            ticker: Some(ticker),
        })
    }
}

fn check_fairness(fairness: Fairness, fuel: bool) -> Result<(), HostError> {
    fairness
        .compiled_in()
        .map_err(|reason| HostError::FairnessUnavailable {
            mode: fairness,
            reason,
        })?;
    if fairness == Fairness::Fuel && !fuel {
        return Err(HostError::FairnessUnavailable {
            mode: fairness,
            reason: "the host was built without fuel; use HostBuilder::fuel(true)",
        });
    }
    Ok(())
}

/// Drops instances idle past their timeout, in every database.
fn sweep(host: &Weak<HostInner>) {
    let Some(host) = host.upgrade() else { return };
    let databases: Vec<Database> = host.databases.lock().values().cloned().collect();
    let dropped: usize = databases.iter().map(Database::pool_sweep).sum();
    if dropped > 0 {
        tracing::trace!(dropped, "dropped idle instances");
    }
}

pub(crate) struct HostConfig {
    pub(crate) quantum: Duration,
    pub(crate) fuel: bool,
    pub(crate) fairness: Fairness,
    pub(crate) defaults: DatabaseOptions,
    pub(crate) max_module_bytes: usize,
}

/// What the host's databases and modules share.
pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreData>,
    /// Every item the linker defines, with its type.
    pub(crate) offered: HashMap<(String, String), ExternType>,
    pub(crate) config: HostConfig,
    databases: Mutex<HashMap<String, Database>>,
    runtime: Handle,
    /// The ticker's count of quanta, which budgets are measured in.
    quanta: Quanta,
    /// Live and idle instances over every database.
    census: Arc<Census>,
}

impl HostInner {
    /// Forgets an exited database, so that its name can be used again.
    pub(crate) fn forget_database(&self, database: &Database) {
        let mut databases = self.databases.lock();
        if databases
            .get(database.name())
            .is_some_and(|known| known.same(database))
        {
            databases.remove(database.name());
        }
    }
}

/// A WebAssembly host: databases that run reducers as jobs on corelane's runtime.
///
/// Dropping it shuts it down with the runtime's shutdown timeout.
pub struct Host {
    inner: Arc<HostInner>,
    runtime: Option<Runtime>,
    ticker: Option<Ticker>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("quantum", &self.inner.config.quantum)
            .field("fairness", &self.inner.config.fairness)
            .field("databases", &self.inner.databases.lock().len())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Options for a new host.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// A host with default options.
    pub fn new() -> Result<Host, HostError> {
        HostBuilder::default().build()
    }

    /// The runtime the databases run on.
    pub fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// The epoch quantum.
    pub fn quantum(&self) -> Duration {
        self.inner.config.quantum
    }

    /// The fairness mode of databases that do not choose one.
    pub fn fairness(&self) -> Fairness {
        self.inner.config.fairness
    }

    /// Creates a module from binary WebAssembly or WAT text; see [`ModuleError`] for what
    /// can be wrong.
    pub fn compile(&self, name: &str, bytes: &[u8]) -> Result<Module, ModuleError> {
        module::compile(&self.inner, name, bytes)
    }

    /// Describes a module (its kind, imports with what the host would link for each, and
    /// exports) without requiring that the host can run it.
    pub fn inspect(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<module::ModuleDescription, ModuleError> {
        module::inspect(&self.inner, name, bytes)
    }

    /// Creates a database named `name` running `module`.
    pub fn create_database(
        &self,
        name: &str,
        module: &Module,
        options: DatabaseOptions,
    ) -> Result<Database, HostError> {
        let inner = &self.inner;
        let fairness = options.fairness.unwrap_or(inner.config.fairness);
        check_fairness(fairness, inner.config.fuel)?;
        if options.weight == 0 {
            return Err(HostError::Setting(
                "a database's weight must be at least 1".into(),
            ));
        }
        if let Module::Wasm(wasm) = module
            && let Some(initial) = wasm.initial_memory
            && initial > options.memory_limit
        {
            return Err(ModuleError::MemoryTooLarge {
                module: wasm.name.clone(),
                initial,
                limit: options.memory_limit,
            }
            .into());
        }
        if let Some(dir) = &options.preopen
            && !dir.is_dir()
        {
            return Err(HostError::Preopen {
                path: dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            });
        }

        let mut databases = inner.databases.lock();
        if databases.contains_key(name) {
            return Err(HostError::DatabaseExists(name.to_owned()));
        }
        let mut lane = inner.runtime.lane_builder().weight(options.weight);
        if let Some(worker) = options.worker {
            lane = lane.worker(worker);
        }
        let lane = lane.build(Kv::default())?;
        let name: Arc<str> = name.into();
        let settings = Settings {
            database: Arc::clone(&name),
            fairness,
            budget: options.budget,
            budget_ticks: budget_ticks(options.budget, inner.config.quantum),
            quanta: inner.quanta.clone(),
            fuel_enabled: inner.config.fuel,
            fuel_limit: options.fuel_limit,
            fuel_yield_interval: options.fuel_yield_interval.max(1),
            memory_limit: options.memory_limit,
            table_limit: options.table_limit,
            preopen: options.preopen.clone(),
        };
        let clock = inner.runtime.clock().clone();
        let pool = Pool::new(
            options.max_idle_instances,
            options.max_instances.max(1),
            options.idle_timeout,
            clock.clone(),
            Arc::clone(&inner.census),
        );
        let database = Database::new(
            Arc::clone(&name),
            module.clone(),
            lane,
            pool,
            settings,
            Arc::downgrade(&self.inner),
            clock,
        );
        databases.insert(name.to_string(), database.clone());
        Ok(database)
    }

    /// The options databases start from (the builder's `database_defaults`).
    pub fn database_defaults(&self) -> DatabaseOptions {
        self.inner.config.defaults.clone()
    }

    /// The database named `name`, unless it has exited.
    pub fn database(&self, name: &str) -> Option<Database> {
        self.inner.databases.lock().get(name).cloned()
    }

    /// The names of the databases that have not exited.
    pub fn database_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.databases.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Exits every database and shuts the runtime down, letting calls finish for up to
    /// `timeout` (see `corelane_executor::Runtime::shutdown`); then stops the ticker.
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.shutdown_now(timeout)
    }

    fn shutdown_now(&mut self, timeout: Duration) -> ShutdownReport {
        let databases: Vec<Database> = self.inner.databases.lock().values().cloned().collect();
        databases.iter().for_each(Database::exit);
        let report = match self.runtime.take() {
            Some(runtime) => runtime.shutdown(timeout),
            None => ShutdownReport {
                finished_in_time: true,
                stuck_workers: Vec::new(),
                from_own_worker: false,
            },
        };
        if let Some(mut ticker) = self.ticker.take() {
            ticker.stop();
        }
        report
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            self.shutdown_now(Duration::from_secs(5));
        }
    }
}
