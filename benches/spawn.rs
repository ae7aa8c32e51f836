//! Spawn-and-join and lane dispatch costs on corelane's executor, for profiling.
//!
//! Run with `cargo bench --bench spawn`. Each case reports time per operation:
//!
//! - `task/same_worker`: a task on worker 0 spawns an empty task on worker 0 and awaits it.
//! - `task/from_other_thread`: a thread outside the runtime spawns an empty task and blocks
//!   until it has joined it.
//! - `lane/same_worker`: a task on worker 0 submits an empty job to a lane on worker 0 and
//!   awaits it.
//! - `lane/from_other_thread`: a thread outside the runtime submits an empty job to a lane and
//!   blocks until it has its result.
//!
//! Side-by-side comparisons with other runtimes are the job of the benchmarks issue.

use std::hint::black_box;
use std::time::{Duration, Instant};

use corelane::executor::{Runtime, block_on};
use criterion::{Criterion, criterion_group, criterion_main};

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(2)
        .build()
        .expect("runtime builds")
}

fn tasks(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("task");

    group.bench_function("same_worker", |b| {
        b.iter_custom(|iters| {
            let handle = runtime.handle().clone();
            let timed = runtime
                .spawn_on(0, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let task = handle
                            .spawn_on(0, async { black_box(1) })
                            .expect("worker 0");
                        black_box(task.await.expect("joins"));
                    }
                    start.elapsed()
                })
                .expect("worker 0");
            block_on(timed).expect("off the workers").expect("joins")
        })
    });

    group.bench_function("from_other_thread", |b| {
        b.iter(|| block_on(runtime.spawn(async { black_box(1) })).expect("off the workers"))
    });
    group.finish();
}

fn lanes(c: &mut Criterion) {
    let runtime = runtime();
    let lane = runtime.lane_builder().worker(0).build(0u64).expect("lane");
    let mut group = c.benchmark_group("lane");

    group.bench_function("same_worker", |b| {
        b.iter_custom(|iters| {
            let lane = lane.clone();
            let timed = runtime
                .spawn_on(0, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(lane.submit(async { black_box(1) }).await.expect("job"));
                    }
                    start.elapsed()
                })
                .expect("worker 0");
            block_on(timed).expect("off the workers").expect("joins")
        })
    });

    group.bench_function("from_other_thread", |b| {
        b.iter(|| block_on(lane.submit(async { black_box(1) })).expect("off the workers"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = tasks, lanes
}
criterion_main!(benches);
