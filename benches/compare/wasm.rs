//! WebAssembly: the cost of a trivial reducer call (item 6), the epoch tax (item 8), and the
//! direct Wasmtime instances the baselines run reducers with.

use std::future::Future;
use std::time::{Duration, Instant};

use corelane::executor::Runtime;
use corelane::host::{Call, Database, DatabaseOptions, Fairness, Host, Module};
use futures_lite::future::block_on;
use wasmtime::{Config, Engine, InstancePre, Linker, Memory, OptLevel, Store, TypedFunc};

use crate::measure::{Better, Case, Settings, System, alternate, median, ns_per};
use crate::systems::{ExecutorPerCore, SerialDb, TokioPerCore, cpus};

/// The sample modules, compiled and linked for direct calls.
#[derive(Clone)]
pub struct Direct {
    echo: InstancePre<()>,
    compute: InstancePre<()>,
}

impl Direct {
    /// An engine set up as corelane's host sets up its own (epoch interruption on, the same
    /// stack limits and optimisation level), so that both run the same machine code.
    pub fn new() -> Direct {
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            .async_stack_size((512 << 10) + (1 << 20))
            .cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).expect("an engine");
        let link = |name: &str| {
            let wasm = corelane::modules::wasm(name).expect("a sample module");
            let module = wasmtime::Module::new(&engine, wasm).expect("compiles");
            // The reducers measured never call their imports (`log`, `fail`).
            let mut linker = Linker::new(&engine);
            linker
                .define_unknown_imports_as_traps(&module)
                .expect("stubs");
            linker.instantiate_pre(&module).expect("links")
        };
        Direct {
            echo: link("echo"),
            compute: link("compute"),
        }
    }

    /// An instance of `echo` for calls to `len`.
    pub fn echo(&self, fairness: Fairness) -> DirectInstance {
        DirectInstance::new(&self.echo, "len", fairness)
    }

    /// An instance of `compute` for calls to `spin`.
    pub fn compute(&self, fairness: Fairness) -> DirectInstance {
        DirectInstance::new(&self.compute, "spin", fairness)
    }
}

/// One instance in its own store, and one of its reducers, called straight through Wasmtime.
pub struct DirectInstance {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    reducer: TypedFunc<(i32, i32), i64>,
}

impl DirectInstance {
    /// `Never`: synchronous calls. `Epoch`: async calls with a callback that would yield at
    /// every tick (nothing ticks this engine, so the trivial calls measured never do).
    fn new(pre: &InstancePre<()>, reducer: &str, fairness: Fairness) -> DirectInstance {
        let mut store = Store::new(pre.module().engine(), ());
        let instance = if fairness == Fairness::Never {
            store.epoch_deadline_trap();
            store.set_epoch_deadline(1 << 40);
            pre.instantiate(&mut store)
        } else {
            store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
            store.set_epoch_deadline(1);
            block_on(pre.instantiate_async(&mut store))
        }
        .expect("instantiates");
        DirectInstance {
            memory: instance.get_memory(&mut store, "memory").expect("memory"),
            alloc: instance
                .get_typed_func(&mut store, "corelane_alloc")
                .expect("corelane_alloc"),
            reducer: instance
                .get_typed_func(&mut store, reducer)
                .expect("the reducer"),
            store,
        }
    }

    /// The reducer with no arguments, synchronously.
    pub fn call_empty(&mut self) -> i64 {
        self.reducer.call(&mut self.store, (0, 0)).expect("a call")
    }

    /// The reducer with no arguments, through Wasmtime's async entry point.
    pub async fn call_empty_async(&mut self) -> i64 {
        let call = self.reducer.call_async(&mut self.store, (0, 0));
        call.await.expect("a call")
    }

    /// `compute.spin(iterations)`, synchronously: the arguments written through
    /// `corelane_alloc`, the checksum read back, as the host does.
    pub fn spin(&mut self, iterations: u64) -> u64 {
        let ptr = self.alloc.call(&mut self.store, 8).expect("alloc");
        let at = usize::try_from(ptr).expect("a positive pointer");
        self.memory
            .write(&mut self.store, at, &iterations.to_le_bytes())
            .expect("in memory");
        let packed = self.reducer.call(&mut self.store, (ptr, 8)).expect("spin");
        let mut checksum = [0; 8];
        let result = usize::try_from(packed >> 32).expect("a result pointer");
        self.memory
            .read(&self.store, result, &mut checksum)
            .expect("in memory");
        u64::from_le_bytes(checksum)
    }
}

/// Nanoseconds per `compute.spin` iteration through Wasmtime on this machine.
pub fn spin_ns_per_iteration(direct: &Direct) -> f64 {
    let mut instance = direct.compute(Fairness::Never);
    let probe = 20_000_000;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        std::hint::black_box(instance.spin(probe));
        best = best.min(start.elapsed());
    }
    ns_per(best, probe)
}

/// Item 6: `echo.len` with no arguments, called and awaited from a task on the database's
/// worker, against the same export called directly on the bench thread.
pub fn call_cost(settings: &Settings, direct: &Direct) -> Vec<Case> {
    let calls: u64 = settings.pick(200_000, 1_000);
    let host = Host::builder()
        .runtime(Runtime::builder().workers(2))
        .build()
        .expect("a host");
    let module = host
        .compile("echo", &corelane::modules::wasm("echo").expect("a sample"))
        .expect("compiles");
    let tokio = TokioPerCore::start(&cpus(2));
    let executors = ExecutorPerCore::start(&cpus(2));

    let mut cases = Vec::new();
    for fairness in [Fairness::Never, Fairness::Epoch] {
        let options = DatabaseOptions {
            fairness: Some(fairness),
            worker: Some(0),
            ..DatabaseOptions::default()
        };
        let db = host
            .create_database(&format!("echo-{fairness}"), &module, options)
            .expect("a database");
        let tokio_db = SerialDb::new(0, direct.echo(fairness));
        let executor_db = SerialDb::new(0, direct.echo(fairness));
        let mut reference = direct.echo(fairness);

        let mut direct_samples = Vec::new();
        let [per_call] = alternate(settings.rounds, |system| {
            let elapsed = match system {
                System::Corelane => {
                    direct_samples.push(time_direct(&mut reference, fairness, calls));
                    corelane_calls(&host, &db, calls)
                }
                System::TokioPerCore => {
                    let (handle, db) = (tokio.handle(0).clone(), tokio_db.clone());
                    let timed = tokio.handle(0).spawn(async move {
                        let start = Instant::now();
                        for _ in 0..calls {
                            let job = handle.spawn(call_job(&db, fairness));
                            std::hint::black_box(job.await.expect("a job"));
                        }
                        start.elapsed()
                    });
                    block_on(timed).expect("the task ends")
                }
                System::AsyncExecutor => {
                    let (executor, db) = (executors.executor(0).clone(), executor_db.clone());
                    block_on(executors.executor(0).spawn(async move {
                        let start = Instant::now();
                        for _ in 0..calls {
                            std::hint::black_box(executor.spawn(call_job(&db, fairness)).await);
                        }
                        start.elapsed()
                    }))
                }
                // A database thread's calls always come from another thread.
                System::ThreadPerDb => return None,
            };
            Some([ns_per(elapsed, calls)])
        });

        let floor = median(&mut direct_samples).unwrap_or(f64::NAN);
        let overhead = per_call.map(|value| value.map(|value| value - floor));
        cases.push(
            Case::new(
                format!("wasm call {fairness}, end to end"),
                "ns/call",
                Better::Lower,
            )
            .values(per_call)
            .reference("direct_wasmtime_ns", floor),
        );
        cases.push(
            Case::new(
                format!("wasm call {fairness}, overhead over direct"),
                "ns/call",
                Better::Lower,
            )
            .values(overhead)
            .reference("direct_wasmtime_ns", floor),
        );
    }
    cases
}

/// A baseline's call job: the export through the database's own instance.
fn call_job(
    db: &SerialDb<DirectInstance>,
    fairness: Fairness,
) -> impl Future<Output = i64> + Send + 'static {
    db.job_async(move |mut instance| async move {
        if fairness == Fairness::Never {
            instance.call_empty()
        } else {
            instance.call_empty_async().await
        }
    })
}

/// `calls` calls to `echo.len` from a task on the database's worker.
fn corelane_calls(host: &Host, db: &Database, calls: u64) -> Duration {
    let db = db.clone();
    let timed = host.runtime().spawn_on(0, async move {
        let start = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(db.call("len", []).await.expect("a call"));
        }
        start.elapsed()
    });
    block_on(timed.expect("worker 0")).expect("the task ends")
}

/// `calls` direct calls on this thread, in ns per call; async ones driven by `block_on`.
fn time_direct(instance: &mut DirectInstance, fairness: Fairness, calls: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        if fairness == Fairness::Never {
            std::hint::black_box(instance.call_empty());
        } else {
            std::hint::black_box(block_on(instance.call_empty_async()));
        }
    }
    ns_per(start.elapsed(), calls)
}

/// Item 8: a compute-bound reducer (`compute.spin`, about 20 ms a call) on both workers, two
/// calls in flight per database, with fairness `Never` and then `Epoch` in alternating
/// rounds; iterations per second, and how much `Epoch` loses.
pub fn epoch_tax(settings: &Settings, spin_ns: f64) -> Vec<Case> {
    let call_ms = settings.pick(20.0, 5.0);
    let iterations = (call_ms * 1e6 / spin_ns) as u64;
    let calls_per_db: u64 = settings.pick(50, 3);
    let host = Host::builder()
        .runtime(Runtime::builder().workers(2))
        .build()
        .expect("a host");
    let module = compute_module(&host);
    let databases = |fairness: Fairness| -> Vec<Database> {
        (0..2)
            .map(|worker| {
                let options = DatabaseOptions {
                    fairness: Some(fairness),
                    worker: Some(worker),
                    ..DatabaseOptions::default()
                };
                let name = format!("compute-{fairness}-{worker}");
                host.create_database(&name, &module, options)
                    .expect("a database")
            })
            .collect()
    };
    let modes = [
        (Fairness::Never, databases(Fairness::Never)),
        (Fairness::Epoch, databases(Fairness::Epoch)),
    ];

    let (mut never, mut epoch, mut tax) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        let mut rates = [0.0; 2];
        for turn in 0..2 {
            let mode = (round + turn) % 2;
            let (_, dbs) = &modes[mode];
            rates[mode] = spin_rate(dbs, iterations, calls_per_db);
        }
        never.push(rates[0] / 1e9);
        epoch.push(rates[1] / 1e9);
        tax.push((1.0 - rates[1] / rates[0]) * 100.0);
    }
    let only_corelane = |samples: &mut Vec<f64>| [median(samples), None, None, None];
    vec![
        Case::new(
            "compute-bound reducer, fairness never",
            "G iter/s",
            Better::Higher,
        )
        .values(only_corelane(&mut never)),
        Case::new(
            "compute-bound reducer, fairness epoch",
            "G iter/s",
            Better::Higher,
        )
        .values(only_corelane(&mut epoch)),
        Case::new("epoch tax (throughput lost to epoch)", "%", Better::Target)
            .values(only_corelane(&mut tax)),
    ]
}

/// Iterations per second while every database in `dbs` runs `calls` spins, two at a time.
fn spin_rate(dbs: &[Database], iterations: u64, calls: u64) -> f64 {
    let args = iterations.to_le_bytes();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for db in dbs {
            scope.spawn(move || {
                let mut in_flight: std::collections::VecDeque<Call<Vec<u8>>> = Default::default();
                for _ in 0..calls {
                    if in_flight.len() == 2 {
                        block_on(in_flight.pop_front().expect("two")).expect("a spin");
                    }
                    in_flight.push_back(db.call("spin", args));
                }
                for call in in_flight {
                    block_on(call).expect("a spin");
                }
            });
        }
    });
    (dbs.len() as u64 * calls * iterations) as f64 / start.elapsed().as_secs_f64()
}

/// The `compute` sample, compiled on `host`.
pub fn compute_module(host: &Host) -> Module {
    let wasm = corelane::modules::wasm("compute").expect("a sample");
    host.compile("compute", &wasm).expect("compiles")
}
