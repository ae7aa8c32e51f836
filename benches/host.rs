//! Costs of the WebAssembly host, for profiling and for the record in docs/performance.md.
//!
//! Run with `cargo bench --bench host`. Each case reports time per call:
//!
//! - `call/{never,epoch}`: a trivial reducer (`counter.get`) through a database, from a thread
//!   outside the runtime, with a warm instance pool.
//! - `call/cold_on_worker`: the same with no idle instance kept, so every call instantiates
//!   the module on the database's worker first (what a pool miss costs the worker).
//! - `instantiate/caller_thread`: instantiating the same module with Wasmtime directly on the
//!   bench thread (what creating instances on callers' threads would cost each caller).
//! - `wasmtime/direct_sync`: the same export called directly through Wasmtime, synchronously,
//!   on the bench thread: the floor the host's overhead is measured from.

use std::hint::black_box;
use std::time::Duration;

use corelane::executor::Runtime;
use corelane::host::{DatabaseOptions, Fairness, Host};
use criterion::{Criterion, criterion_group, criterion_main};

fn host_calls(c: &mut Criterion) {
    let host = Host::builder()
        .runtime(Runtime::builder().workers(2))
        .build()
        .expect("host");
    let wasm = corelane::modules::wasm("counter").expect("sample");
    let module = host.compile("counter", &wasm).expect("compiles");
    let mut group = c.benchmark_group("call");

    for fairness in [Fairness::Never, Fairness::Epoch] {
        let options = DatabaseOptions {
            fairness: Some(fairness),
            ..DatabaseOptions::default()
        };
        let db = host
            .create_database(&format!("warm-{fairness}"), &module, options)
            .expect("db");
        group.bench_function(fairness.to_string(), |b| {
            b.iter(|| black_box(db.call_blocking("get", []).expect("call")))
        });
    }

    let options = DatabaseOptions {
        max_idle_instances: 0,
        ..DatabaseOptions::default()
    };
    let cold = host.create_database("cold", &module, options).expect("db");
    group.bench_function("cold_on_worker", |b| {
        b.iter(|| black_box(cold.call_blocking("get", []).expect("call")))
    });
    group.finish();
}

/// The same module straight through Wasmtime, with a do-nothing `corelane` import set.
fn wasmtime_direct(c: &mut Criterion) {
    let engine = wasmtime::Engine::default();
    let wasm = corelane::modules::wasm("counter").expect("sample");
    let module = wasmtime::Module::new(&engine, &wasm).expect("compiles");
    let mut linker = wasmtime::Linker::new(&engine);
    linker
        .func_wrap("corelane", "get", |_: i32, _: i32, _: i32, _: i32| -1i32)
        .expect("get");
    linker
        .func_wrap("corelane", "put", |_: i32, _: i32, _: i32, _: i32| {})
        .expect("put");
    linker
        .define_unknown_imports_as_traps(&module)
        .expect("stubs");
    let pre = linker.instantiate_pre(&module).expect("links");

    let mut group = c.benchmark_group("instantiate");
    group.bench_function("caller_thread", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&engine, ());
            black_box(pre.instantiate(&mut store).expect("instantiates"));
        })
    });
    group.finish();

    let mut store = wasmtime::Store::new(&engine, ());
    let instance = pre.instantiate(&mut store).expect("instantiates");
    let get = instance
        .get_typed_func::<(i32, i32), i64>(&mut store, "get")
        .expect("export");
    let mut group = c.benchmark_group("wasmtime");
    group.bench_function("direct_sync", |b| {
        b.iter(|| black_box(get.call(&mut store, (0, 0)).expect("call")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = host_calls, wasmtime_direct
}
criterion_main!(benches);
