//! corelane side by side with what a user would otherwise pick, in one process, on the same
//! machine, in the same run.
//!
//! Run with `cargo bench --bench compare` (about four minutes), or `-- --quick` for a brief
//! pass over every case that checks nothing about time (CI runs it). A bare word after `--`
//! runs only the workloads whose name contains it (`-- fairness`), and `--systems=corelane`
//! (a comma-separated list) only those systems, for profiling. The table of medians is
//! printed, and `target/corelane-bench/compare.json` (under `CARGO_TARGET_DIR` if set) gets
//! one object per case: `name`, `unit`, and one value per system (`corelane`,
//! `tokio_per_core`, `thread_per_db`, `async_executor`; `null` where a system does not apply),
//! plus, on some cases, the figure the row is read against (`direct_wasmtime_ns`,
//! `target_percent`).
//!
//! # The systems
//!
//! Every worker-per-core system runs two workers, one pinned to each of the first two CPUs.
//! Each keeps corelane's rule that a database runs one job at a time, in submission order:
//!
//! - `corelane`: a lane per database; the lane protocol runs one job at a time.
//! - `tokio_per_core`: one current-thread Tokio runtime per worker thread (the per-core design
//!   corelane replaces). A database lives on one runtime; each job is spawned through that
//!   runtime's `Handle` and awaited. The job first takes the database's FIFO async mutex
//!   (`tokio::sync::Mutex`) and holds it to its end, across any suspension; the runtime runs
//!   spawned tasks in FIFO order and the mutex queues waiters in FIFO order, so jobs also
//!   start in the order they were submitted.
//! - `async_executor`: one `async_executor::Executor` per worker thread, with the same
//!   per-database mutex.
//! - `thread_per_db`: one OS thread per database (the design before that), unpinned, fed by a
//!   `std::sync::mpsc` channel of closures and replying through a oneshot channel. One thread
//!   runs the jobs in the order the channel delivers them, so there is nothing to add.
//!
//! A thread outside a system always waits for a job the same way, whatever the system: it
//! holds a future that resolves with the job's end (corelane's `JobHandle` or `Call`, Tokio's
//! `JoinHandle`, async-executor's `Task`, the oneshot receiver) and drives it with
//! `futures_lite::future::block_on`, which parks the thread until the future is woken.
//!
//! # The workloads
//!
//! Each case is measured in rounds (five, or one with `--quick`); a round measures every
//! system once, starting with a different system each round, and the table shows the median
//! of the rounds. "x tokio" and the like say how many times better corelane is (above 1:
//! better, whichever way the unit runs).
//!
//! 1. Same-worker dispatch (`dispatch`): a task on worker 0 submits an empty job to a database
//!    on worker 0 and awaits it, 300,000 times. `thread_per_db` is `null`: its jobs always
//!    come from another thread.
//! 2. Cross-thread round trip (`round-trip`): a thread pinned to the last worker's CPU (for
//!    every system) submits an empty job to a database on worker 0 and waits for it, 20,000
//!    times; p50 and p99 of each trip.
//! 3. Throughput (`throughput`): 10, 1,000 and 10,000 databases, spread over the workers; for
//!    one second, four submitter threads each submit batches of 128 empty jobs, sweeping over
//!    all the databases, and wait for each batch newest job first (so that a submitter parks
//!    about once a batch, not once a job). `thread_per_db` runs one thread per database with
//!    64 KiB stacks, started for its own rounds only (left parked through the other
//!    systems' rounds, they made every futex call slower), or reports `null` if the system
//!    refuses that many threads.
//! 4. Wasm call cost (`wasm-call`): `echo.len` with no arguments, called and awaited from a
//!    task on the database's worker, 200,000 times, with fairness `never` and `epoch`; and
//!    the same export called directly through Wasmtime on the bench thread (synchronously, or
//!    through `call_async` driven by `block_on`), on an engine configured as corelane's. The
//!    baselines run the export on their own Wasmtime instance inside a job. `thread_per_db`
//!    is `null`, as in 1.
//! 5. Light beside heavy (`fairness`): on two workers, two heavy databases (one per worker)
//!    always run a `compute.spin` of about 200 ms, and 32 light databases get a
//!    `compute.spin` of about 1 us at Poisson times, 20 per second each. A light call's
//!    latency runs from its submission to its job's end; a separate row gives its p99 from
//!    the intended arrival, which adds the lateness of the driver thread (it shares the two
//!    cores with everything it measures, and the kernel decides when it runs, for every
//!    system alike). corelane uses epoch preemption
//!    with a 1 ms quantum; the baselines run Wasmtime synchronously inside their jobs, as the
//!    design before corelane did. `async_executor` is `null`: its design is tokio_per_core's.
//!    Heavy throughput is each heavy database's calls per second of wall time, summed.
//! 6. Epoch tax (`epoch-tax`): corelane only. Two databases (one per worker) each run fifty
//!    `compute.spin` calls of about 20 ms, two in flight, with fairness `never` and then
//!    `epoch` in alternating rounds; Wasm iterations per second, and the loss.
//! 7. Shares (`shares`): on one worker, three databases each kept busy by a feeder thread
//!    (pinned to another CPU) with 32 CPU-bound jobs in flight; each database's share is its
//!    part of the work done in a two-second window. First weights 1:2:4 with equal jobs
//!    (corelane only: no baseline has weights); then equal weights with jobs of 50, 100 and
//!    200 us, where FIFO scheduling hands out CPU by job length, summed up by Jain's index.
//!    `thread_per_db` pins its three threads to the one CPU.
//! 8. Scale (`scale`): resident memory (`/proc/self/statm`) added per idle lane by 10,000 of
//!    them (a lane in corelane, a database's lock in the per-core baselines, a parked thread
//!    and its channel in `thread_per_db`), and per idle corelane database of `echo` whose
//!    instance was dropped after one call, each sample in a fresh child process.
//!
//! Nothing here asserts anything about time: the marks to beat are judged in
//! `docs/performance.md`.

#[path = "compare/dispatch.rs"]
mod dispatch;
#[path = "compare/fairness.rs"]
mod fairness;
#[path = "compare/measure.rs"]
mod measure;
#[path = "compare/scale.rs"]
mod scale;
#[path = "compare/systems.rs"]
mod systems;
#[path = "compare/wasm.rs"]
mod wasm;

use std::path::PathBuf;
use std::time::Instant;

use measure::{Case, Settings, System};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|arg| arg == scale::CHILD_FLAG) {
        let what = args.get(at + 1).map_or("", String::as_str);
        let count = args
            .get(at + 2)
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        if let Err(error) = scale::run_child(what, count) {
            eprintln!("{error}");
            std::process::exit(1);
        }
        return;
    }

    // `cargo bench` passes `--bench`; unknown flags are ignored.
    let quick = args.iter().any(|arg| arg == "--quick");
    if let Some(names) = args.iter().find_map(|arg| arg.strip_prefix("--systems=")) {
        let names = names.split(',').map(str::to_owned).collect();
        measure::SELECTED.set(names).expect("set once");
    }
    let filters: Vec<&str> = args
        .iter()
        .filter(|arg| !arg.starts_with('-'))
        .map(String::as_str)
        .collect();
    let settings = Settings {
        quick,
        rounds: if quick { 1 } else { 5 },
    };
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));

    let started = Instant::now();
    let direct = wasm::Direct::new();
    let spin_ns = wasm::spin_ns_per_iteration(&direct);
    println!("compute.spin through Wasmtime: {spin_ns:.3} ns per iteration");

    let mut cases: Vec<Case> = Vec::new();
    let mut run = |name: &str, workload: &mut dyn FnMut() -> Vec<Case>| {
        if selected(name) {
            let began = Instant::now();
            eprintln!("running {name}...");
            cases.extend(workload());
            eprintln!("  {name} took {:.1} s", began.elapsed().as_secs_f64());
        }
    };
    run("dispatch", &mut || dispatch::same_worker(&settings));
    run("round-trip", &mut || dispatch::round_trip(&settings));
    run("throughput", &mut || dispatch::throughput(&settings));
    run("wasm-call", &mut || wasm::call_cost(&settings, &direct));
    run("fairness", &mut || {
        fairness::light_beside_heavy(&settings, &direct, spin_ns)
    });
    run("epoch-tax", &mut || wasm::epoch_tax(&settings, spin_ns));
    run("shares", &mut || fairness::shares(&settings));
    run("scale", &mut || scale::memory(&settings));

    print_table(&cases);
    println!("({:.0} s in all)", started.elapsed().as_secs_f64());
    match write_json(&cases) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(error) => eprintln!("could not write compare.json: {error}"),
    }
}

/// Three significant digits, or `-` where a system does not apply.
fn format_value(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(value) if value.is_nan() => "?".to_owned(),
        Some(value) if value.abs() >= 100.0 => format!("{value:.0}"),
        Some(value) if value.abs() >= 10.0 => format!("{value:.1}"),
        Some(value) if value.abs() >= 1.0 => format!("{value:.2}"),
        Some(value) => format!("{value:.3}"),
    }
}

fn print_table(cases: &[Case]) {
    let width = cases
        .iter()
        .map(|case| case.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let baselines = [
        System::TokioPerCore,
        System::ThreadPerDb,
        System::AsyncExecutor,
    ];
    println!();
    print!("{:width$}  {:>9}", "case", "unit");
    for system in System::ALL {
        print!("  {:>14}", system.name());
    }
    println!("  {:>8}  {:>8}  {:>8}", "x tokio", "x thread", "x async");
    for case in cases {
        print!("{:width$}  {:>9}", case.name, case.unit);
        for value in case.values {
            print!("  {:>14}", format_value(value));
        }
        for system in baselines {
            let advantage = case.advantage(system).map(|x| format!("{x:.2}"));
            print!("  {:>8}", advantage.unwrap_or_else(|| "-".to_owned()));
        }
        println!();
    }
    for case in cases {
        if let Some((name, value)) = case.reference {
            println!("  {}: {name} = {}", case.name, format_value(Some(value)));
        }
    }
}

/// `target/corelane-bench/compare.json`, under `CARGO_TARGET_DIR` if set (relative to the
/// package root if relative).
fn write_json(cases: &[Case]) -> std::io::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let dir = target.join("corelane-bench");
    std::fs::create_dir_all(&dir)?;
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|case| {
            let mut object = serde_json::Map::new();
            object.insert("name".into(), case.name.clone().into());
            object.insert("unit".into(), case.unit.into());
            for system in System::ALL {
                let value = case.values[system.index()]
                    .filter(|value| value.is_finite())
                    .map_or(serde_json::Value::Null, Into::into);
                object.insert(system.name().into(), value);
            }
            if let Some((name, value)) = case.reference {
                object.insert(name.into(), value.into());
            }
            object.into()
        })
        .collect();
    let path = dir.join("compare.json");
    let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}
