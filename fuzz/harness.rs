//! The reducer fuzz harness, shared by the cargo-fuzz target (`fuzz/fuzz_targets/reducers.rs`)
//! and the seeded smoke test in the normal test suite (`host/tests/smith.rs`); both include
//! this file by path.
//!
//! One input becomes one module and one database:
//!
//! 1. The first bytes choose the fairness mode and the arguments; wasm-smith turns the rest
//!    into a valid module shaped like a reducer module (docs/abi.md): it exports `memory`,
//!    `corelane_alloc` and two reducers, and may import any of the host's ABI functions, so
//!    that random code calls them with random pointers.
//! 2. The host inspects and compiles it. A refusal must be a `ModuleError`, and never
//!    `InvalidBytes`: wasm-smith makes only valid modules.
//! 3. A database runs it under tight limits (a short budget, little memory, a small table, a
//!    fuel limit in Fuel mode), and each reducer is called with no arguments and with the
//!    chosen ones.
//! 4. The property: every call ends, within a generous deadline, with a result or a typed
//!    error that a module can cause; the host never panics (a panic reaches the caller as
//!    `CallError::Panicked`), never aborts and never hangs. A light neighbour database on
//!    the same worker still counts correctly after each input.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use arbitrary::Unstructured;
use corelane_executor::{Runtime, block_on};
use corelane_host::{CallError, Database, DatabaseOptions, Fairness, Host, HostError, ModuleError};

/// The host functions a generated module may import: the whole ABI.
const HOST_IMPORTS: &str = r#"(module
  (import "corelane" "get" (func (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "put" (func (param i32 i32 i32 i32)))
  (import "corelane" "delete" (func (param i32 i32) (result i32)))
  (import "corelane" "scan" (func (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "log" (func (param i32 i32 i32)))
  (import "corelane" "now_us" (func (result i64)))
  (import "corelane" "fail" (func (param i32 i32))))"#;

/// The exports every generated module has, with their types; the bodies are random.
const ABI_EXPORTS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "corelane_alloc") (param i32) (result i32) unreachable)
  (func (export "reduce") (param i32 i32) (result i64) unreachable)
  (func (export "reduce_again") (param i32 i32) (result i64) unreachable))"#;

/// How long a call may take before the harness calls it a hang. Budgets are milliseconds;
/// this leaves room for a machine that is very busy.
const PATIENCE: Duration = Duration::from_secs(120);

/// The most argument bytes an input passes to a reducer.
const MAX_ARGS: usize = 64;

/// What one input came to.
#[derive(Debug)]
pub enum Outcome {
    /// The input was too short to make a module of.
    Skipped,
    /// The host refused the module, with this error.
    Refused(ModuleError),
    /// The module ran: each call's result, in the order made.
    Ran(Vec<Result<Vec<u8>, CallError>>),
}

/// A host with one worker, a neighbour database on it, and the module generator's settings.
pub struct Harness {
    host: Host,
    config: wasm_smith::Config,
    modes: Vec<Fairness>,
    neighbour: Database,
    /// Increments the neighbour has answered; inputs run one at a time.
    neighbour_count: AtomicU64,
    /// Numbers the databases, whose names must be unique.
    databases: AtomicU64,
}

impl Harness {
    /// Builds the host (with fuel when the Fuel mode is compiled in) and the neighbour.
    pub fn new() -> Harness {
        let modes: Vec<Fairness> = Fairness::ALL
            .into_iter()
            .filter(|mode| mode.compiled_in().is_ok())
            .collect();
        let host = Host::builder()
            .runtime(Runtime::builder().workers(1))
            .fuel(modes.contains(&Fairness::Fuel))
            .build()
            .expect("the host builds");
        let counter = corelane_modules::wasm("counter").expect("the counter sample");
        let counter = host
            .compile("counter", &counter)
            .expect("the neighbour's module compiles");
        let neighbour = host
            .create_database("neighbour", &counter, DatabaseOptions::default())
            .expect("the neighbour's database");
        Harness {
            host,
            config: config(),
            modes,
            neighbour,
            neighbour_count: AtomicU64::new(0),
            databases: AtomicU64::new(0),
        }
    }

    /// Runs one input (steps 1 to 4), panicking if the host breaks the property.
    pub fn run(&self, data: &[u8]) -> Outcome {
        let mut input = Unstructured::new(data);
        let Some((fairness, args, bytes)) = self.generate(&mut input) else {
            return Outcome::Skipped;
        };
        let name = format!("smith-{}", self.databases.fetch_add(1, Ordering::Relaxed));

        // Step 2. Inspection must agree with compilation on bytes the host cannot compile.
        let inspected = self.host.inspect(&name, &bytes);
        let module = match self.host.compile(&name, &bytes) {
            Ok(module) => module,
            Err(error) => {
                assert!(
                    !matches!(error, ModuleError::InvalidBytes { .. }),
                    "wasm-smith made a module the host calls invalid: {error}"
                );
                if let Err(inspect_error) = inspected {
                    assert_eq!(inspect_error, error);
                }
                return Outcome::Refused(error);
            }
        };

        // Step 3.
        let options = DatabaseOptions {
            fairness: Some(fairness),
            budget: Duration::from_millis(20),
            fuel_limit: 20_000_000,
            fuel_yield_interval: 200_000,
            memory_limit: 8 << 20,
            table_limit: 10_000,
            max_instances: 2,
            ..DatabaseOptions::default()
        };
        let db = match self.host.create_database(&name, &module, options) {
            Ok(db) => db,
            Err(HostError::Module(error)) => return Outcome::Refused(error),
            Err(error) => panic!("cannot create database {name}: {error}"),
        };
        let mut calls = Vec::new();
        for reducer in module.reducers() {
            for args in [&[][..], &args[..]] {
                let result = wait(db.call(&reducer, args.to_vec()));
                if let Err(error) = &result {
                    // Step 4: only errors a module can cause.
                    assert!(caused_by_module(error), "{reducer} on {name}: {error:?}");
                }
                calls.push(result);
            }
        }
        db.exit();
        wait(db.exited());

        // Step 4: the neighbour saw nothing of it.
        let expected = self.neighbour_count.fetch_add(1, Ordering::Relaxed) + 1;
        let count = wait(self.neighbour.call("increment", []))
            .unwrap_or_else(|error| panic!("the neighbour failed after {name}: {error}"));
        assert_eq!(count, expected.to_le_bytes(), "the neighbour after {name}");

        Outcome::Ran(calls)
    }

    /// Step 1: the mode, the arguments and the module's bytes, unless the input is too short
    /// to make a module of.
    fn generate(&self, input: &mut Unstructured<'_>) -> Option<(Fairness, Vec<u8>, Vec<u8>)> {
        let fairness = *input.choose(&self.modes).ok()?;
        let len = input.int_in_range(1..=MAX_ARGS).ok()?;
        let args = input.bytes(len).ok()?.to_vec();
        let module = wasm_smith::Module::new(self.config.clone(), input).ok()?;
        Some((fairness, args, module.to_bytes()))
    }
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

/// Small modules that use only what the host supports, shaped by the ABI. Loops are not
/// made to terminate: ending them is the host's job.
fn config() -> wasm_smith::Config {
    let mut config = wasm_smith::Config {
        available_imports: Some(wat::parse_str(HOST_IMPORTS).expect("the imports parse")),
        exports: Some(wat::parse_str(ABI_EXPORTS).expect("the exports parse")),
        max_funcs: 8,
        max_instructions: 200,
        max_globals: 8,
        max_data_segments: 4,
        max_element_segments: 4,
        max_elements: 64,
        max_memories: 1,
        max_memory32_bytes: 1 << 20,
        max_tables: 2,
        max_table_elements: 1_000,
        max_types: 16,
        allow_start_export: true,
        ..wasm_smith::Config::default()
    };
    // Proposals the host's engine leaves off, or that wasm-smith knows and it does not.
    // Wasmtime without its `gc` feature refuses `externref`, which wasm-smith puts almost
    // everywhere once reference types are on; table growth is left to the hostile modules.
    config.reference_types_enabled = false;
    config.compact_imports_enabled = false;
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.gc_enabled = false;
    config.exceptions_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.memory64_enabled = false;
    config.wide_arithmetic_enabled = false;
    config
}

/// Whether a reducer module can bring this error on itself. The others mean the host went
/// wrong: a panic, a cancellation nobody asked for, a leaked instance, a lost database.
fn caused_by_module(error: &CallError) -> bool {
    matches!(
        error,
        CallError::Trap { .. }
            | CallError::Timeout { .. }
            | CallError::OutOfFuel { .. }
            | CallError::MemoryLimit { .. }
            | CallError::TableLimit { .. }
            | CallError::StackOverflow
            | CallError::BadArguments { .. }
            | CallError::BadResult { .. }
            | CallError::BadPointer { .. }
            | CallError::Failed { .. }
    )
}

/// Waits for a future on another thread, panicking if it has not ended within [`PATIENCE`].
fn wait<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(block_on(future).expect("not on a worker"));
    });
    receiver
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("not done within {PATIENCE:?}: the host hangs"))
}
