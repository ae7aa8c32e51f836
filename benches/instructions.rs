//! Loops for counting instructions, which, unlike time, do not move with the neighbours of a
//! shared VM.
//!
//! Each case runs `jobs` of one operation from a task on worker 0 and exits. Run it twice
//! under callgrind with different counts and divide the difference on the busiest thread by
//! the difference in jobs, which cancels the start-up:
//!
//! ```text
//! cargo bench --bench instructions --no-run     # prints the binary's path
//! valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/ic10 BINARY lane 10000
//! valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/ic60 BINARY lane 60000
//! grep -H summary /tmp/ic10-* /tmp/ic60-*
//! ```
//!
//! `BINARY` is the path that `--no-run` printed (under `target/release/deps/`, or under
//! `CARGO_TARGET_DIR` if set; not the `.d` file beside it). Each thread gets its own output
//! file, `-01` the main thread and the next ones the workers; the busiest worker's `summary`
//! line is its instruction count, so (its count at 60,000 less at 10,000) / 50,000 is the
//! cost of one job.
//!
//! Atomic read-modify-writes, each tens of cycles however idle the rest of the core, are
//! counted the same way by `benches/count_atomics.py` (its header gives the commands).
//!
//! Cases: `lane` submits an empty job to a lane on worker 0 and awaits it; `never` and
//! `epoch` call `echo.len` on a database on worker 0 in that fairness mode. With no arguments
//! (as `cargo bench` runs it) every case runs briefly, which checks that it still runs.

use std::hint::black_box;

use corelane::executor::{Runtime, block_on};
use corelane::host::{DatabaseOptions, Fairness, Host};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let jobs = args
        .get(1)
        .and_then(|jobs| jobs.parse().ok())
        .unwrap_or(1_000);
    match args.first().map(String::as_str) {
        Some("lane") => lane(jobs),
        Some("never") => call(Fairness::Never, jobs),
        Some("epoch") => call(Fairness::Epoch, jobs),
        Some(other) => {
            eprintln!("unknown case {other:?}: the cases are lane, never and epoch");
            std::process::exit(2);
        }
        None => {
            lane(jobs);
            call(Fairness::Never, jobs);
            call(Fairness::Epoch, jobs);
        }
    }
}

fn lane(jobs: u64) {
    let runtime = Runtime::builder().workers(2).build().expect("a runtime");
    let lane = runtime.lane_builder().worker(0).build(()).expect("a lane");
    let looped = runtime.spawn_on(0, async move {
        for _ in 0..jobs {
            black_box(lane.submit(async { black_box(1) }).await.expect("a job"));
        }
    });
    block_on(looped.expect("worker 0"))
        .expect("off the workers")
        .expect("the loop ends");
}

fn call(fairness: Fairness, jobs: u64) {
    let host = Host::builder()
        .runtime(Runtime::builder().workers(2))
        .build()
        .expect("a host");
    let wasm = corelane::modules::wasm("echo").expect("a sample");
    let module = host.compile("echo", &wasm).expect("compiles");
    let options = DatabaseOptions {
        fairness: Some(fairness),
        worker: Some(0),
        ..DatabaseOptions::default()
    };
    let db = host
        .create_database("echo", &module, options)
        .expect("a database");
    let looped = host.runtime().spawn_on(0, async move {
        for _ in 0..jobs {
            black_box(db.call("len", []).await.expect("a call"));
        }
    });
    block_on(looped.expect("worker 0"))
        .expect("off the workers")
        .expect("the loop ends");
}
