//! Sharing a core: light databases beside heavy ones (item 7), and CPU shares by weight and
//! between equal weights (item 9).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corelane::executor::{Lane, Runtime};
use corelane::host::{Database, DatabaseOptions, Fairness, Host};
use futures_lite::future::block_on;

use crate::measure::{
    Better, Case, Random, Settings, System, alternate, burn, calibrate_burn, median, quantile,
    sleep_until,
};
use crate::systems::{DbThread, ExecutorPerCore, SerialDb, TokioPerCore, cpus, pin};
use crate::wasm::{Direct, DirectInstance, compute_module};

const HEAVY: usize = 2;
const LIGHT: usize = 32;
/// Jobs each share feeder keeps queued: enough that a database never runs dry while its
/// feeder waits to be woken.
const IN_FLIGHT: usize = 32;
/// Calls per second to each light database, at Poisson times.
const LIGHT_RATE: f64 = 20.0;
/// Iterations of a light call to `compute.spin`: about a microsecond.
const LIGHT_ITERATIONS: u64 = 1_000;

/// Item 7. Two heavy databases, one per worker, each always running a 200 ms
/// `compute.spin`; 32 light databases called at Poisson times with a short `compute.spin`.
/// A light call's latency runs from its submission to its job's end. The driver that submits
/// shares the two cores with what it measures, so it is often late by milliseconds, for
/// every system alike (the kernel's scheduler decides); the latency from the intended
/// arrival, which includes that lateness, is reported apart, as its p99.
pub fn light_beside_heavy(settings: &Settings, direct: &Direct, spin_ns: f64) -> Vec<Case> {
    let heavy_iterations = (200e6 / spin_ns) as u64;
    let warmup = settings.duration(500, 100);
    let window = settings.duration(4_000, 500);

    // corelane: epoch preemption, a 1 ms quantum, heavy databases pinned one per worker.
    let host = Host::builder()
        .runtime(Runtime::builder().workers(2))
        .quantum(Duration::from_millis(1))
        .fairness(Fairness::Epoch)
        .build()
        .expect("a host");
    let module = compute_module(&host);
    let database = |name: String, worker: usize| -> Database {
        let options = DatabaseOptions {
            worker: Some(worker),
            ..DatabaseOptions::default()
        };
        host.create_database(&name, &module, options)
            .expect("a database")
    };
    let heavy: Vec<Database> = (0..HEAVY)
        .map(|index| database(format!("heavy-{index}"), index % 2))
        .collect();
    let light: Vec<Database> = (0..LIGHT)
        .map(|index| database(format!("light-{index}"), index % 2))
        .collect();

    // The baselines run the same module through Wasmtime directly, without preemption.
    let tokio = TokioPerCore::start(&cpus(2));
    let tokio_heavy: Vec<_> = (0..HEAVY)
        .map(|index| SerialDb::new(index % 2, direct.compute(Fairness::Never)))
        .collect();
    let tokio_light: Vec<_> = (0..LIGHT)
        .map(|index| SerialDb::new(index % 2, direct.compute(Fairness::Never)))
        .collect();
    let thread = |_| {
        let direct = direct.clone();
        DbThread::start(None, None, move || direct.compute(Fairness::Never)).expect("a thread")
    };
    let threads_heavy: Vec<DbThread<DirectInstance>> = (0..HEAVY).map(thread).collect();
    let threads_light: Vec<DbThread<DirectInstance>> = (0..LIGHT).map(thread).collect();

    let heavy_args = heavy_iterations.to_le_bytes();
    let light_args = LIGHT_ITERATIONS.to_le_bytes();
    let run = Run { warmup, window };
    let [p50, p99, p999, max, p99_intended, heavy_rate] = alternate(settings.rounds, |system| {
        Some(match system {
            System::Corelane => run.measure(
                |index| {
                    let call = heavy[index].call("spin", heavy_args);
                    async move { call.await.map(drop).expect("a heavy call") }
                },
                |index| {
                    let submitted = Instant::now();
                    let call = light[index].call_timed("spin", light_args);
                    async move {
                        let timed = call.await.expect("a light call");
                        timed.result.expect("a light call");
                        submitted + timed.timing.waited + timed.timing.ran
                    }
                },
            ),
            System::TokioPerCore => run.measure(
                |index| {
                    tokio.submit(&tokio_heavy[index], move |instance| {
                        instance.spin(heavy_iterations);
                    })
                },
                |index| {
                    tokio.submit(&tokio_light[index], |instance| {
                        instance.spin(LIGHT_ITERATIONS);
                        Instant::now()
                    })
                },
            ),
            System::ThreadPerDb => run.measure(
                |index| {
                    threads_heavy[index].submit(move |instance| {
                        instance.spin(heavy_iterations);
                    })
                },
                |index| {
                    threads_light[index].submit(|instance| {
                        instance.spin(LIGHT_ITERATIONS);
                        Instant::now()
                    })
                },
            ),
            // The same design as tokio_per_core here: a light job waits behind a whole heavy
            // reducer on its worker; measured once is enough.
            System::AsyncExecutor => return None,
        })
    });
    vec![
        Case::new("light beside heavy: light p50", "ms", Better::Lower).values(p50),
        Case::new("light beside heavy: light p99", "ms", Better::Lower).values(p99),
        Case::new("light beside heavy: light p99.9", "ms", Better::Lower).values(p999),
        Case::new("light beside heavy: light max", "ms", Better::Lower).values(max),
        Case::new(
            "light beside heavy: light p99 from intended arrival",
            "ms",
            Better::Lower,
        )
        .values(p99_intended),
        Case::new(
            "light beside heavy: heavy throughput",
            "calls/s",
            Better::Higher,
        )
        .values(heavy_rate),
    ]
}

/// One round of item 7.
struct Run {
    warmup: Duration,
    window: Duration,
}

impl Run {
    /// Runs the heavy databases in a closed loop and the light ones in an open loop; gives
    /// the light latency's p50, p99, p99.9 and max in ms from submission, its p99 from the
    /// intended arrival, and the heavy calls per second.
    fn measure<H, L>(
        &self,
        heavy: impl Fn(usize) -> H + Sync,
        light: impl Fn(usize) -> L + Sync,
    ) -> [f64; 6]
    where
        H: Future<Output = ()>,
        L: Future<Output = Instant> + Send,
    {
        let start = Instant::now();
        let (opens, closes) = (start + self.warmup, start + self.warmup + self.window);
        let stop = AtomicBool::new(false);
        let (arrivals, arrived) = mpsc::channel::<(Instant, Instant, L)>();

        let ((latencies, mut from_intended), heavy_rate) = std::thread::scope(|scope| {
            // Each heavy database always has one call in flight; its throughput is the
            // inverse of the mean length of the calls that ran inside the window.
            let feeders: Vec<_> = (0..HEAVY)
                .map(|index| {
                    let (heavy, stop) = (&heavy, &stop);
                    scope.spawn(move || {
                        let (mut calls, mut busy) = (0u32, Duration::ZERO);
                        while !stop.load(Ordering::Relaxed) {
                            let began = Instant::now();
                            block_on(heavy(index));
                            let ended = Instant::now();
                            if began >= opens && ended <= closes {
                                calls += 1;
                                busy += ended - began;
                            }
                        }
                        if calls == 0 {
                            0.0
                        } else {
                            f64::from(calls) / busy.as_secs_f64()
                        }
                    })
                })
                .collect();

            // The collector waits for each light call in turn; each reports its own end.
            let collector = scope.spawn(move || {
                let (mut latencies, mut from_intended) = (Vec::new(), Vec::new());
                for (intended, submitted, call) in arrived {
                    let ended = block_on(call);
                    if intended >= opens {
                        latencies.push(ended.saturating_duration_since(submitted).as_secs_f64());
                        from_intended.push(ended.saturating_duration_since(intended).as_secs_f64());
                    }
                }
                (latencies, from_intended)
            });

            // The driver: Poisson arrivals over the light databases, in turn.
            let mut random = Random::new(7);
            let gap = Duration::from_secs_f64(1.0 / (LIGHT_RATE * LIGHT as f64));
            let mut intended = start;
            let mut next = 0;
            while intended < closes {
                sleep_until(intended);
                let submitted = Instant::now();
                let call = light(next);
                arrivals
                    .send((intended, submitted, call))
                    .expect("the collector runs");
                next = (next + 1) % LIGHT;
                intended += random.exponential(gap);
            }
            drop(arrivals);
            stop.store(true, Ordering::Relaxed);

            let heavy_rate: f64 = feeders
                .into_iter()
                .map(|feeder| feeder.join().expect("a feeder"))
                .sum();
            (collector.join().expect("the collector"), heavy_rate)
        });

        let mut sorted = latencies;
        sorted.sort_by(f64::total_cmp);
        from_intended.sort_by(f64::total_cmp);
        let ms = |q: f64| quantile(&sorted, q) * 1e3;
        let p99_intended = quantile(&from_intended, 0.99) * 1e3;
        [
            ms(0.50),
            ms(0.99),
            ms(0.999),
            ms(1.0),
            p99_intended,
            heavy_rate,
        ]
    }
}

/// A unit of work with its counter: what a share workload's job runs.
type Work = Box<dyn FnOnce() + Send>;

/// Item 9. Three databases on one worker, each kept busy by a feeder with `IN_FLIGHT` CPU-bound
/// jobs in flight. Weights 1:2:4 with equal jobs (corelane only: no baseline has weights), then
/// equal weights with jobs of 1:2:4 length, where FIFO scheduling gives CPU by job length.
pub fn shares(settings: &Settings) -> Vec<Case> {
    let unit = calibrate_burn(Duration::from_micros(50));
    let share_run = Shares {
        warmup: settings.duration(300, 50),
        window: settings.duration(2_000, 200),
        unit,
    };
    let one_cpu = cpus(1);

    // Weighted: corelane's lanes with weights 100, 200 and 400, equal jobs of two units.
    let weighted = Runtime::builder().workers(1).build().expect("a runtime");
    let lanes: Vec<Lane<()>> = [100, 200, 400]
        .into_iter()
        .map(|weight| {
            weighted
                .lane_builder()
                .weight(weight)
                .build(())
                .expect("a lane")
        })
        .collect();
    let mut weighted_shares: [Vec<f64>; 3] = Default::default();
    for _ in 0..settings.rounds {
        let shares = share_run.measure([2, 2, 2], |db, work| {
            lanes[db].submit(async move { work() })
        });
        for (samples, share) in weighted_shares.iter_mut().zip(shares) {
            samples.push(share * 100.0);
        }
    }
    drop(lanes);
    drop(weighted);

    // Equal weights, jobs of one, two and four units, on every system.
    let corelane = Runtime::builder().workers(1).build().expect("a runtime");
    let lanes: Vec<Lane<()>> = (0..3).map(|_| corelane.lane(()).expect("a lane")).collect();
    let tokio = TokioPerCore::start(&one_cpu);
    let executors = ExecutorPerCore::start(&one_cpu);
    let dbs: Vec<SerialDb<()>> = (0..3).map(|_| SerialDb::new(0, ())).collect();
    let threads: Vec<DbThread<()>> = (0..3)
        .map(|_| DbThread::start(None, one_cpu.first().copied(), || ()).expect("a thread"))
        .collect();
    let costs = [1, 2, 4];
    let [jain] = alternate(settings.rounds, |system| {
        let shares = match system {
            System::Corelane => {
                share_run.measure(costs, |db, work| lanes[db].submit(async move { work() }))
            }
            System::TokioPerCore => {
                share_run.measure(costs, |db, work| tokio.submit(&dbs[db], move |_| work()))
            }
            System::AsyncExecutor => share_run.measure(costs, |db, work| {
                executors.submit(&dbs[db], move |_| work())
            }),
            System::ThreadPerDb => {
                share_run.measure(costs, |db, work| threads[db].submit(move |_| work()))
            }
        };
        Some([jain_index(&shares)])
    });

    let mut cases = Vec::new();
    for (weight, samples) in [1, 2, 4].into_iter().zip(&mut weighted_shares) {
        let target = f64::from(weight) / 7.0 * 100.0;
        let name = format!("shares 1:2:4 on one worker: weight {weight} (target {target:.1}%)");
        cases.push(
            Case::new(name, "% CPU", Better::Target)
                .values([median(samples), None, None, None])
                .reference("target_percent", target),
        );
    }
    cases.push(
        Case::new(
            "equal weights, jobs 1:2:4 long: Jain index",
            "index",
            Better::Higher,
        )
        .values(jain),
    );
    cases
}

/// One round of a share workload.
struct Shares {
    warmup: Duration,
    window: Duration,
    /// Burn iterations per unit of work.
    unit: u64,
}

impl Shares {
    /// Keeps each of three databases busy with jobs of `costs[db]` units for the warm-up and
    /// the window; gives each database's share of the work done inside the window.
    fn measure<F: Future>(
        &self,
        costs: [u64; 3],
        submit: impl Fn(usize, Work) -> F + Sync,
    ) -> [f64; 3] {
        let done: Arc<[AtomicU64; 3]> = Arc::default();
        let stop = AtomicBool::new(false);
        let feeder_cpu = core_affinity::get_core_ids().and_then(|cpus| cpus.last().copied());
        let snapshot =
            |done: &[AtomicU64; 3]| done.each_ref().map(|work| work.load(Ordering::Relaxed));

        let (before, after) = std::thread::scope(|scope| {
            for (db, cost) in costs.into_iter().enumerate() {
                let (submit, stop, done) = (&submit, &stop, &done);
                let iterations = cost * self.unit;
                scope.spawn(move || {
                    // Feeders stay off the measured CPU (the first), as far as pinning allows.
                    pin(feeder_cpu);
                    let job = || -> Work {
                        let done = Arc::clone(done);
                        Box::new(move || {
                            std::hint::black_box(burn(iterations));
                            // Relaxed: read as a total after the window.
                            done[db].fetch_add(cost, Ordering::Relaxed);
                        })
                    };
                    let mut in_flight = std::collections::VecDeque::new();
                    while !stop.load(Ordering::Relaxed) {
                        if in_flight.len() == IN_FLIGHT {
                            block_on(in_flight.pop_front().expect("full"));
                        }
                        in_flight.push_back(submit(db, job()));
                    }
                    for job in in_flight {
                        block_on(job);
                    }
                });
            }
            std::thread::sleep(self.warmup);
            let before = snapshot(&done);
            std::thread::sleep(self.window);
            let after = snapshot(&done);
            stop.store(true, Ordering::Relaxed);
            (before, after)
        });

        let work: Vec<f64> = (0..3).map(|db| (after[db] - before[db]) as f64).collect();
        let total: f64 = work.iter().sum::<f64>().max(1.0);
        [work[0] / total, work[1] / total, work[2] / total]
    }
}

/// Jain's fairness index: 1 when every share is equal, 1/n when one takes everything.
fn jain_index(shares: &[f64]) -> f64 {
    let sum: f64 = shares.iter().sum();
    let squares: f64 = shares.iter().map(|share| share * share).sum();
    sum * sum / (shares.len() as f64 * squares)
}
