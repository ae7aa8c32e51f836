//! Empty jobs: same-worker dispatch, the cross-thread round trip, and pipelined throughput
//! over many databases.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use corelane::executor::{Lane, Runtime};
use futures_lite::future::block_on;

use crate::measure::{Better, Case, Settings, System, alternate, ns_per, quantile};
use crate::systems::{DbThread, ExecutorPerCore, SerialDb, TokioPerCore, cpus, pin};

/// Workers of every worker-per-core system.
const WORKERS: usize = 2;
/// Threads submitting in the throughput workload.
const SUBMITTERS: usize = 4;
/// Jobs each submitter submits before it waits for them, in the throughput workload.
const WINDOW: usize = 128;
/// The stack of each database thread in the throughput workload (its jobs are empty).
const SMALL_STACK: usize = 64 << 10;

fn corelane_runtime() -> Runtime {
    Runtime::builder()
        .workers(WORKERS)
        .build()
        .expect("the runtime builds")
}

/// Item 3: a task on worker 0 submits an empty job to a database on worker 0 and awaits it.
pub fn same_worker(settings: &Settings) -> Vec<Case> {
    let jobs: u64 = settings.pick(300_000, 2_000);
    let corelane = corelane_runtime();
    let lane = corelane.lane_builder().worker(0).build(()).expect("a lane");
    let tokio = TokioPerCore::start(&cpus(WORKERS));
    let executors = ExecutorPerCore::start(&cpus(WORKERS));
    let db = SerialDb::new(0, ());

    let [per_job] = alternate(settings.rounds, |system| {
        let elapsed = match system {
            System::Corelane => {
                let lane = lane.clone();
                let timed = corelane.spawn_on(0, async move {
                    let start = Instant::now();
                    for _ in 0..jobs {
                        black_box(lane.submit(async { black_box(1) }).await.expect("a job"));
                    }
                    start.elapsed()
                });
                block_on(timed.expect("worker 0")).expect("the task ends")
            }
            System::TokioPerCore => {
                let handle = tokio.handle(0).clone();
                let db = db.clone();
                let timed = tokio.handle(0).spawn(async move {
                    let start = Instant::now();
                    for _ in 0..jobs {
                        let job = handle.spawn(db.job(|_| black_box(1)));
                        black_box(job.await.expect("a job"));
                    }
                    start.elapsed()
                });
                block_on(timed).expect("the task ends")
            }
            System::AsyncExecutor => {
                let executor = executors.executor(0).clone();
                let db = db.clone();
                let timed = executors.executor(0).spawn(async move {
                    let start = Instant::now();
                    for _ in 0..jobs {
                        black_box(executor.spawn(db.job(|_| black_box(1))).await);
                    }
                    start.elapsed()
                });
                block_on(timed)
            }
            // A database thread's jobs always come from another thread.
            System::ThreadPerDb => return None,
        };
        Some([ns_per(elapsed, jobs)])
    });
    vec![
        Case::new(
            "same-worker dispatch, submit and await",
            "ns/job",
            Better::Lower,
        )
        .values(per_job),
    ]
}

/// Item 4: a thread outside the system submits an empty job to a database and waits for it
/// with `futures_lite::future::block_on`, the same waiting for every system.
///
/// The submitting thread is pinned to the last worker's CPU, away from worker 0's, for every
/// system. Left to the kernel, it sometimes shared worker 0's CPU, and each trip then paid
/// two context switches on that CPU whatever the system did: corelane's median moved between
/// 0.6 and 31 us from one run to the next. The systems are started on the calling thread,
/// not on the pinned one: threads take their CPUs from the thread that starts them, and
/// corelane keeps the CPUs of the first thread that asks as the ones it may use.
pub fn round_trip(settings: &Settings) -> Vec<Case> {
    let trips: usize = settings.pick(20_000, 300);
    let corelane = corelane_runtime();
    let lane = corelane.lane_builder().worker(0).build(()).expect("a lane");
    let tokio = TokioPerCore::start(&cpus(WORKERS));
    let executors = ExecutorPerCore::start(&cpus(WORKERS));
    let db = SerialDb::new(0, ());
    let thread = DbThread::start(None, None, || ()).expect("a database thread");
    let submitter_cpu = cpus(WORKERS).last().copied();

    let [p50, p99] = std::thread::scope(|scope| {
        let submitter = scope.spawn(|| {
            pin(submitter_cpu);
            let mut latencies = Vec::with_capacity(trips);
            alternate(settings.rounds, |system| {
                latencies.clear();
                for _ in 0..trips {
                    let start = Instant::now();
                    match system {
                        System::Corelane => {
                            block_on(lane.submit(async {})).expect("a job");
                        }
                        System::TokioPerCore => block_on(tokio.submit(&db, |_| ())),
                        System::AsyncExecutor => block_on(executors.submit(&db, |_| ())),
                        System::ThreadPerDb => block_on(thread.submit(|_| ())),
                    }
                    latencies.push(start.elapsed().as_nanos() as f64 / 1_000.0);
                }
                latencies.sort_by(f64::total_cmp);
                Some([quantile(&latencies, 0.50), quantile(&latencies, 0.99)])
            })
        });
        submitter.join().expect("the submitting thread")
    });
    vec![
        Case::new("cross-thread round trip, p50", "us", Better::Lower).values(p50),
        Case::new("cross-thread round trip, p99", "us", Better::Lower).values(p99),
    ]
}

/// Item 5: `SUBMITTERS` threads submit batches of `WINDOW` empty jobs over `databases`
/// databases, for a fixed time; jobs per second.
pub fn throughput(settings: &Settings) -> Vec<Case> {
    let duration = settings.duration(1_000, 100);
    let mut cases = Vec::new();
    for databases in [10, 1_000, 10_000] {
        let corelane = corelane_runtime();
        let lanes: Vec<Lane<()>> = (0..databases)
            .map(|_| corelane.lane(()).expect("a lane"))
            .collect();
        let tokio = TokioPerCore::start(&cpus(WORKERS));
        let executors = ExecutorPerCore::start(&cpus(WORKERS));
        let dbs: Vec<SerialDb<()>> = (0..databases)
            .map(|index| SerialDb::new(index % WORKERS, ()))
            .collect();
        let [jobs_per_s] = alternate(settings.rounds, |system| {
            let rate = match system {
                System::Corelane => pipelined(databases, duration, |db| lanes[db].submit(async {})),
                System::TokioPerCore => {
                    pipelined(databases, duration, |db| tokio.submit(&dbs[db], |_| ()))
                }
                System::AsyncExecutor => {
                    pipelined(databases, duration, |db| executors.submit(&dbs[db], |_| ()))
                }
                System::ThreadPerDb => {
                    let threads = database_threads(databases)?;
                    pipelined(databases, duration, |db| threads[db].submit(|_| ()))
                }
            };
            Some([rate / 1e6])
        });
        let name = format!("throughput, {databases} databases, pipelined empty jobs");
        cases.push(Case::new(name, "M jobs/s", Better::Higher).values(jobs_per_s));
    }
    cases
}

/// One thread per database, started for one round of thread_per_db and joined after it.
///
/// Ten thousand parked threads left alive through the other systems' rounds would slow
/// every one of their futex calls: the kernel hashes a process's waiters into a table sized
/// by its CPU count (Linux 6.18 here), and a wake-up walks its bucket. With them alive, corelane and Tokio both
/// measured half their throughput over 10,000 databases. Small stacks: 10,000 threads of the
/// default 2 MiB would reserve 20 GiB. Where the system refuses that many threads, the round
/// reports null.
fn database_threads(databases: usize) -> Option<Vec<DbThread<()>>> {
    (0..databases)
        .map(|_| DbThread::start(Some(SMALL_STACK), None, || ()))
        .collect::<Result<_, _>>()
        .inspect_err(|error| eprintln!("  {databases} database threads: {error}"))
        .ok()
}

/// Jobs per second when `SUBMITTERS` threads each submit batches of `WINDOW` jobs for
/// `duration`, each submitter sweeping over all the databases from its own starting point.
///
/// A submitter waits for a batch newest job first: by the time the newest has ended nearly
/// all the others have too, so it parks about once per batch. Waiting oldest first parks it
/// once per job, and then waking submitters is what every system spends its time on.
fn pipelined<F: Future>(
    databases: usize,
    duration: Duration,
    submit: impl Fn(usize) -> F + Sync,
) -> f64 {
    let start = Instant::now();
    let deadline = start + duration;
    let done: u64 = std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..SUBMITTERS)
            .map(|submitter| {
                let submit = &submit;
                scope.spawn(move || {
                    let mut next = submitter * databases / SUBMITTERS;
                    let mut batch = Vec::with_capacity(WINDOW);
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        for _ in 0..WINDOW {
                            batch.push(submit(next));
                            next = (next + 1) % databases;
                        }
                        while let Some(job) = batch.pop() {
                            block_on(job);
                            done += 1;
                        }
                    }
                    done
                })
            })
            .collect();
        submitters
            .into_iter()
            .map(|submitter| submitter.join().expect("a submitter"))
            .sum()
    });
    done as f64 / start.elapsed().as_secs_f64()
}
