//! Lanes: one job at a time, in order, fair shares, moves, close, abort and drain.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Gate, PATIENCE, Parked, quietly, thread_blocker, wait_until};
use corelane_executor::{
    Balance, Clock, Handle, JobError, Lane, LaneError, Runtime, block_on, yield_now,
};
use parking_lot::Mutex;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime builds")
}

/// Holds worker `worker` still until the returned opener runs, so jobs can be lined up.
fn hold_worker(runtime: &Runtime, worker: usize) -> impl FnOnce() + use<> {
    let (blocker, release, blocking) = thread_blocker();
    drop(runtime.spawn_on(worker, blocker).unwrap());
    wait_until("the worker to block", || {
        blocking.load(Ordering::SeqCst) == 1
    });
    release
}

#[test]
fn lane_runs_one_job_at_a_time_under_submits_from_many_threads() {
    let runtime = runtime(2);
    let lane = runtime.lane(Vec::<(usize, usize)>::new()).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));

    let submitters: Vec<_> = (0..8)
        .map(|thread| {
            let lane = lane.clone();
            let running = Arc::clone(&running);
            let overlaps = Arc::clone(&overlaps);
            std::thread::spawn(move || {
                let jobs: Vec<_> = (0..500)
                    .map(|seq| {
                        let running = Arc::clone(&running);
                        let overlaps = Arc::clone(&overlaps);
                        lane.submit_with(move |mut log| async move {
                            if running.fetch_add(1, Ordering::SeqCst) != 0 {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            log.push((thread, seq));
                            // Suspend now and then: the job keeps the lane while it waits.
                            if seq % 7 == 0 {
                                yield_now().await;
                            }
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                    })
                    .collect();
                for job in jobs {
                    block_on(job).unwrap().unwrap();
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two jobs of one lane overlapped"
    );
    let log = runtime
        .block_on(lane.call(|log| log.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(log.len(), 8 * 500);
    // Jobs from one submitter started in the order it submitted them.
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (thread, seq) in log {
        if let Some(previous) = last.insert(thread, seq) {
            assert!(
                seq > previous,
                "thread {thread}: job {seq} started after {previous}"
            );
        }
    }
    let stats = lane.stats();
    assert_eq!(stats.submitted, 8 * 500 + 1);
    assert_eq!(stats.completed, 8 * 500 + 1);
}

#[test]
fn jobs_start_in_submission_order() {
    let runtime = runtime(2);
    let lane = runtime.lane(Vec::new()).unwrap();
    let jobs: Vec<_> = (0..1000)
        .map(|i| lane.call(move |order: &mut Vec<i32>| order.push(i)))
        .collect();
    for job in jobs {
        runtime.block_on(job).unwrap().unwrap();
    }
    let order = runtime
        .block_on(lane.call(|order| order.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(order, (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_yielding_job_keeps_its_lane_while_another_lane_progresses() {
    let runtime = runtime(1);
    let flag = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = runtime.lane(()).unwrap();
    let b = runtime.lane(()).unwrap();

    let first = {
        let (flag, log) = (Arc::clone(&flag), Arc::clone(&log));
        a.submit(async move {
            log.lock().push("a1 starts");
            let mut yields = 0;
            while !flag.load(Ordering::SeqCst) {
                yields += 1;
                yield_now().await;
            }
            log.lock().push("a1 ends");
            yields
        })
    };
    let second = {
        let log = Arc::clone(&log);
        a.submit(async move { log.lock().push("a2 runs") })
    };
    let other = {
        let (flag, log) = (Arc::clone(&flag), Arc::clone(&log));
        b.submit(async move {
            log.lock().push("b runs");
            flag.store(true, Ordering::SeqCst);
        })
    };
    runtime.block_on(other).unwrap().unwrap();
    let yields = runtime.block_on(first).unwrap().unwrap();
    runtime.block_on(second).unwrap().unwrap();

    assert!(yields >= 1);
    assert_eq!(
        *log.lock(),
        vec!["a1 starts", "b runs", "a1 ends", "a2 runs"]
    );
    assert!(a.stats().yields >= 1);
}

#[test]
fn a_panicking_job_does_not_stop_its_lane() {
    let runtime = runtime(1);
    let lane = runtime.lane(0u32).unwrap();
    quietly(|| {
        let bad = lane.call(|_| -> u32 { panic!("job panicked on purpose") });
        let good = lane.call(|count| {
            *count += 1;
            *count
        });
        let error = runtime.block_on(bad).unwrap().unwrap_err();
        match error {
            JobError::Panicked(panic) => {
                assert_eq!(panic.message(), Some("job panicked on purpose"))
            }
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(runtime.block_on(good).unwrap().unwrap(), 1);
    });
    let stats = lane.stats();
    assert_eq!((stats.panicked, stats.completed), (1, 1));
}

#[test]
fn close_refuses_new_jobs_and_runs_queued_ones() {
    let runtime = runtime(1);
    let release = hold_worker(&runtime, 0);
    let lane = runtime.lane(0u32).unwrap();
    let queued: Vec<_> = (0..10).map(|_| lane.call(|count| *count += 1)).collect();
    lane.close();
    let refused = lane.call(|count| *count += 100);
    release();

    assert!(matches!(
        runtime.block_on(refused).unwrap(),
        Err(JobError::Closed)
    ));
    for job in queued {
        runtime.block_on(job).unwrap().unwrap();
    }
    runtime.block_on(lane.drained()).unwrap();
    let stats = lane.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.refused),
        (10, 10, 1)
    );
    assert!(stats.closed && stats.drained);
    assert!(
        runtime.lanes_on(0).is_empty(),
        "a drained lane leaves its worker"
    );
}

#[test]
fn abort_cancels_queued_jobs_and_a_waiting_started_one() {
    let runtime = runtime(1);
    let lane = runtime.lane(()).unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let waiting = {
        let started = Arc::clone(&started);
        lane.submit(async move {
            started.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await
        })
    };
    wait_until("the first job to start", || started.load(Ordering::SeqCst));
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let ran = Arc::clone(&ran);
            lane.submit(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    lane.abort();

    assert!(
        runtime
            .block_on(waiting)
            .unwrap()
            .unwrap_err()
            .is_cancelled()
    );
    for job in queued {
        assert!(runtime.block_on(job).unwrap().unwrap_err().is_cancelled());
    }
    runtime.block_on(lane.drained()).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(lane.stats().cancelled, 6);
    assert!(matches!(
        runtime.block_on(lane.submit(async {})).unwrap(),
        Err(JobError::Closed)
    ));
}

#[test]
fn dropping_every_handle_drains_the_lane_without_cancelling() {
    let runtime = runtime(1);
    let release = hold_worker(&runtime, 0);
    let ran = Arc::new(AtomicUsize::new(0));
    let lane = runtime.lane(()).unwrap();
    let id = lane.id();
    for _ in 0..50 {
        let ran = Arc::clone(&ran);
        drop(lane.submit(async move {
            ran.fetch_add(1, Ordering::SeqCst);
        }));
    }
    drop(lane);
    assert_eq!(runtime.lanes_on(0), vec![id]);
    release();
    wait_until("the queued jobs to run", || {
        ran.load(Ordering::SeqCst) == 50
    });
    wait_until("the lane to leave its worker", || {
        runtime.lanes_on(0).is_empty()
    });
}

#[test]
fn a_job_awaiting_a_job_of_its_own_lane_gets_an_error_not_a_hang() {
    let runtime = runtime(1);
    let lane = runtime.lane(0u32).unwrap();
    let same = lane.clone();
    let outer = lane.submit(async move {
        let inner = same.call(|count| {
            *count += 1;
            *count
        });
        inner.await
    });
    let result = runtime.block_on(outer).unwrap().unwrap();
    assert!(matches!(result, Err(JobError::Reentrant)), "{result:?}");
    // The inner job was accepted, and runs once the outer one has ended.
    assert_eq!(
        runtime
            .block_on(lane.call(|count| *count))
            .unwrap()
            .unwrap(),
        1
    );

    // Awaiting a job of another lane from a job is fine.
    let other = runtime.lane(()).unwrap();
    let nested = lane.submit(async move { other.submit(async { 5 }).await });
    assert_eq!(runtime.block_on(nested).unwrap().unwrap().unwrap(), 5);
}

#[test]
fn a_guard_that_outlives_its_job_makes_the_next_job_fail_clearly() {
    let runtime = runtime(1);
    let lane = runtime.lane(0u32).unwrap();
    let handle = runtime.handle().clone();
    let gate = Gate::default();
    let wait = gate.wait();
    let leak = lane.submit_with(move |guard| async move {
        // Moves the guard into a task that outlives the job.
        drop(handle.spawn(async move {
            wait.await;
            drop(guard);
        }));
    });
    runtime.block_on(leak).unwrap().unwrap();
    let next = runtime.block_on(lane.call(|count| *count)).unwrap();
    assert!(matches!(next, Err(JobError::StateHeld)), "{next:?}");
    gate.open();
    wait_until("the guard to be released", || {
        runtime.block_on(lane.call(|count| *count)).unwrap().is_ok()
    });
}

/// Fills lanes with jobs that each advance a manual clock by `cost`, and counts how many of
/// each lane's jobs had run when `total` jobs had run in all.
fn shares(weights: &[u32], total: usize) -> Vec<usize> {
    let clock = Clock::manual();
    let runtime = Runtime::builder()
        .workers(1)
        .clock(clock.clone())
        .slice_jobs(1000)
        .slice_time(Duration::from_millis(1))
        .build()
        .unwrap();
    let release = hold_worker(&runtime, 0);
    let done = Arc::new(AtomicUsize::new(0));
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(weights.iter().map(|_| AtomicUsize::new(0)).collect());
    let snapshot = Arc::new(Mutex::new(None));
    let lanes: Vec<Lane> = weights
        .iter()
        .map(|&weight| runtime.lane_builder().weight(weight).build(()).unwrap())
        .collect();
    for (index, lane) in lanes.iter().enumerate() {
        for _ in 0..total {
            let (clock, done, counts, snapshot) = (
                clock.clone(),
                Arc::clone(&done),
                Arc::clone(&counts),
                Arc::clone(&snapshot),
            );
            drop(lane.submit(async move {
                clock.advance(Duration::from_micros(100));
                counts[index].fetch_add(1, Ordering::SeqCst);
                if done.fetch_add(1, Ordering::SeqCst) + 1 == total {
                    let taken: Vec<usize> =
                        counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
                    *snapshot.lock() = Some(taken);
                }
            }));
        }
    }
    release();
    wait_until("the measured jobs", || snapshot.lock().is_some());
    lanes.iter().for_each(Lane::abort);
    snapshot.lock().take().unwrap()
}

#[test]
fn weights_one_two_four_get_one_two_four_sevenths() {
    let counts = shares(&[1, 2, 4], 1400);
    // One turn is 10 jobs (1 ms of 100 us jobs): the counts are exact to within a turn.
    for (count, expected) in counts.iter().zip([200, 400, 800]) {
        assert!(count.abs_diff(expected) <= 10, "{counts:?}");
    }
}

#[test]
fn equal_weights_get_equal_shares() {
    let counts = shares(&[100, 100, 100, 100], 1200);
    for count in &counts {
        assert!(count.abs_diff(300) <= 10, "{counts:?}");
    }
}

#[test]
fn a_flood_on_one_lane_delays_another_by_one_slice_at_most() {
    let runtime = Runtime::builder()
        .workers(1)
        .slice_jobs(16)
        .build()
        .unwrap();
    let release = hold_worker(&runtime, 0);
    let flood = runtime.lane(()).unwrap();
    let light = runtime.lane(()).unwrap();
    let flooded = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let flooded = Arc::clone(&flooded);
        drop(flood.submit(async move {
            flooded.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let seen = Arc::clone(&flooded);
    let light_job = light.submit(async move { seen.load(Ordering::SeqCst) });
    release();
    let before_light = runtime.block_on(light_job).unwrap().unwrap();
    assert!(
        before_light <= 16,
        "the light job waited behind {before_light} flood jobs"
    );
}

#[test]
fn a_move_carries_queued_and_suspended_jobs_in_order() {
    let runtime = runtime(2);
    let lane = runtime.lane_builder().worker(0).build(Vec::new()).unwrap();
    let gate = Gate::default();
    let wait = gate.wait();
    let suspended = lane.submit_with(move |mut log| async move {
        log.push(("suspended starts", Handle::current_worker()));
        wait.await;
        log.push(("suspended resumes", Handle::current_worker()));
    });
    wait_until("the first job to start", || {
        lane.stats().queued == 0 && lane.stats().turns > 0
    });
    let queued: Vec<_> = (0..20)
        .map(|_| {
            lane.call(|log: &mut Vec<(&str, Option<usize>)>| {
                log.push(("queued", Handle::current_worker()))
            })
        })
        .collect();

    lane.move_to(1).unwrap();
    assert_eq!(lane.worker(), 1);
    gate.open();
    runtime.block_on(suspended).unwrap().unwrap();
    for job in queued {
        runtime.block_on(job).unwrap().unwrap();
    }
    let log = runtime
        .block_on(lane.call(|log| log.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(log[0], ("suspended starts", Some(0)));
    assert_eq!(log[1], ("suspended resumes", Some(1)));
    assert_eq!(log.len(), 22);
    assert!(
        log[2..].iter().all(|entry| *entry == ("queued", Some(1))),
        "{log:?}"
    );
    assert_eq!(lane.stats().migrations, 1);
    assert_eq!(runtime.lanes_on(1), vec![lane.id()]);
}

#[test]
fn moves_racing_submits_lose_and_overlap_nothing() {
    let runtime = runtime(2);
    let lane = runtime.lane(0u64).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mover = {
        let (lane, stop) = (lane.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut moves = 0;
            while !stop.load(Ordering::SeqCst) {
                lane.move_to(moves % 2).unwrap();
                moves += 1;
                std::thread::yield_now();
            }
            moves
        })
    };
    let jobs: Vec<_> = (0..20_000)
        .map(|i| {
            let (running, overlaps) = (Arc::clone(&running), Arc::clone(&overlaps));
            lane.submit_with(move |mut count| async move {
                if running.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                assert_eq!(*count, i, "jobs ran out of order");
                *count += 1;
                if i % 5 == 0 {
                    yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for job in jobs {
        runtime.block_on(job).unwrap().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(mover.join().unwrap() > 0);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(
        runtime
            .block_on(lane.call(|count| *count))
            .unwrap()
            .unwrap(),
        20_000
    );
}

#[test]
fn lane_counts_stay_within_one_under_random_creates_and_closes() {
    let runtime = runtime(3);
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut lanes: Vec<Lane> = Vec::new();
    for step in 0..400 {
        if lanes.is_empty() || next() % 3 != 0 {
            lanes.push(runtime.lane(()).unwrap());
        } else {
            let lane = lanes.swap_remove(next() % lanes.len());
            lane.close();
            runtime.block_on(lane.drained()).unwrap();
        }
        let counts: Vec<usize> = (0..3)
            .map(|worker| runtime.lanes_on(worker).len())
            .collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 1, "step {step}: {counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), lanes.len());
    }
}

#[test]
fn bad_lane_options_are_typed_errors() {
    let runtime = runtime(2);
    assert_eq!(
        runtime.lane_builder().worker(9).build(()).unwrap_err(),
        LaneError::NoSuchWorker {
            worker: 9,
            workers: 2
        }
    );
    assert_eq!(
        runtime.lane_builder().weight(0).build(()).unwrap_err(),
        LaneError::BadWeight { weight: 0 }
    );
    let lane = runtime.lane(()).unwrap();
    assert_eq!(
        lane.move_to(5),
        Err(LaneError::NoSuchWorker {
            worker: 5,
            workers: 2
        })
    );
    assert_eq!(lane.set_weight(0), Err(LaneError::BadWeight { weight: 0 }));
    lane.close();
    runtime.block_on(lane.drained()).unwrap();
    assert_eq!(lane.move_to(0), Err(LaneError::Drained));
}

#[test]
fn runtime_shutdown_cancels_queued_jobs_and_refuses_new_ones() {
    let runtime = runtime(2);
    // A task waiting for ever on worker 1 makes the timeout pass, and its drop says the
    // runtime has begun to stop: only then is worker 0, which holds the queued jobs, let go.
    let (parked, _slot, _polls, dropped) = Parked::new();
    let waiting = runtime.spawn_on(1, parked).unwrap();
    let release = hold_worker(&runtime, 0);
    let lane = runtime.lane_builder().worker(0).build(()).unwrap();
    let queued: Vec<_> = (0..10).map(|_| lane.submit(async {})).collect();
    let releaser = std::thread::spawn(move || {
        wait_until("the stop to begin", || dropped.load(Ordering::SeqCst) == 1);
        release();
    });
    let handle = runtime.handle().clone();
    let report = runtime.shutdown(Duration::from_millis(5));
    releaser.join().unwrap();
    assert!(!report.finished_in_time);
    assert!(report.stuck_workers.is_empty(), "{report:?}");
    assert!(block_on(waiting).unwrap().unwrap_err().is_cancelled());
    for job in queued {
        assert!(block_on(job).unwrap().unwrap_err().is_cancelled());
    }
    assert!(matches!(
        block_on(lane.submit(async {})).unwrap(),
        Err(JobError::Closed)
    ));
    block_on(lane.drained()).unwrap();
    assert_eq!(handle.lane(()).unwrap_err(), LaneError::ShuttingDown);
}

#[test]
fn load_aware_balancing_moves_a_busy_lane_to_the_idle_worker() {
    let runtime = Runtime::builder()
        .workers(2)
        .balance(Balance {
            period: Duration::from_millis(20),
            threshold: 0.3,
            min_interval: Duration::from_millis(200),
        })
        .build()
        .unwrap();
    // Four lanes: 0 and 2 on worker 0, 1 and 3 on worker 1. Make both of worker 0's busy.
    let lanes: Vec<Lane> = (0..4).map(|_| runtime.lane(()).unwrap()).collect();
    let busy: Vec<&Lane> = lanes.iter().filter(|lane| lane.worker() == 0).collect();
    assert_eq!(busy.len(), 2);
    let stop = Arc::new(AtomicBool::new(false));
    let feeders: Vec<_> = busy
        .iter()
        .map(|lane| {
            let (lane, stop) = ((*lane).clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let job = lane.submit(async {
                        let until = std::time::Instant::now() + Duration::from_micros(500);
                        while std::time::Instant::now() < until {
                            std::hint::spin_loop();
                        }
                    });
                    let _ = block_on(job);
                }
            })
        })
        .collect();

    wait_until("a busy lane to move", || {
        busy.iter().any(|lane| lane.worker() == 1)
    });
    stop.store(true, Ordering::SeqCst);
    for feeder in feeders {
        feeder.join().unwrap();
    }
    // The move kept lane counts even: an idle lane went the other way.
    let counts: Vec<usize> = (0..2)
        .map(|worker| runtime.lanes_on(worker).len())
        .collect();
    assert_eq!(counts, vec![2, 2]);
    let _ = PATIENCE;
}

/// A waker that panics when woken.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("waker panicked on purpose");
    }
}

#[test]
fn a_panicking_waker_on_drained_does_not_kill_the_worker() {
    let runtime = runtime(1);
    let lane = runtime.lane(()).unwrap();
    let waker = std::task::Waker::from(Arc::new(PanickingWaker));
    let mut drained = lane.drained();
    let pending =
        std::pin::Pin::new(&mut drained).poll(&mut std::task::Context::from_waker(&waker));
    assert!(pending.is_pending());
    common::quietly(|| {
        lane.close();
        wait_until("the lane to drain", || lane.stats().drained);
    });
    // The worker that fired the signal is still there.
    let other = runtime.lane(0u32).unwrap();
    assert_eq!(
        runtime
            .block_on(other.call(|count| *count + 1))
            .unwrap()
            .unwrap(),
        1
    );
}

#[test]
fn a_huge_jump_of_a_manual_clock_breaks_nothing() {
    let clock = Clock::manual();
    let runtime = Runtime::builder()
        .workers(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let lane = runtime.lane(()).unwrap();
    let jump = clock.clone();
    runtime
        .block_on(lane.submit(async move { jump.advance(Duration::MAX) }))
        .unwrap()
        .unwrap();
    runtime
        .block_on(lane.submit(async move { clock.advance(Duration::MAX) }))
        .unwrap()
        .unwrap();
    assert_eq!(
        runtime.block_on(lane.submit(async { 7 })).unwrap().unwrap(),
        7
    );
}

#[test]
fn a_job_awaiting_a_job_of_another_runtime_is_not_reentrant() {
    let first = runtime(1);
    let second = runtime(1);
    let a = first.lane(()).unwrap();
    let b = second.lane(()).unwrap();
    let job = a.submit(async move { b.submit(async { 3 }).await });
    assert_eq!(first.block_on(job).unwrap().unwrap().unwrap(), 3);
}

#[test]
fn shutdown_ends_a_started_job_that_was_woken_while_its_worker_was_busy() {
    // The stop races the worker's turn of the lane; repeat so that both orders happen. Before
    // the fix, a turn cut short by the stop left the woken job in the lane's ready slot and
    // its handle waited for ever.
    for _ in 0..200 {
        let runtime = runtime(1);
        let lane = runtime.lane(()).unwrap();
        let gate = Gate::default();
        let started = Arc::new(AtomicBool::new(false));
        let waiting = {
            let started = Arc::clone(&started);
            let gate = gate.wait();
            lane.submit(async move {
                started.store(true, Ordering::SeqCst);
                gate.await;
            })
        };
        wait_until("the job to start", || started.load(Ordering::SeqCst));
        lane.close();
        let release = hold_worker(&runtime, 0);
        gate.open();
        release();
        runtime.shutdown(Duration::ZERO);
        let outcome = common::block_on_within("the woken job", waiting);
        assert!(
            matches!(outcome, Ok(()) | Err(JobError::Cancelled)),
            "{outcome:?}"
        );
    }
}

#[test]
fn work_arriving_behind_a_long_job_asks_it_to_yield() {
    let asked = Arc::new(AtomicUsize::new(0));
    let hook_asked = Arc::clone(&asked);
    let runtime = Runtime::builder()
        .workers(1)
        .preempt(move |_worker| {
            hook_asked.fetch_add(1, Ordering::SeqCst);
        })
        .preempt_after(Duration::ZERO)
        .build()
        .unwrap();
    let heavy = runtime.lane(()).unwrap();
    let light = runtime.lane(()).unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let light_ran = Arc::new(AtomicBool::new(false));

    // The heavy job yields only when the hook asks it to, and ends once the light job ran
    // (or, if nothing ever asks, after PATIENCE, which fails the test below).
    let job = heavy.submit({
        let (asked, started, light_ran) = (asked.clone(), started.clone(), light_ran.clone());
        async move {
            started.store(true, Ordering::SeqCst);
            let give_up = std::time::Instant::now() + PATIENCE;
            let (mut seen, mut yields) = (0, 0);
            while !light_ran.load(Ordering::SeqCst) && std::time::Instant::now() < give_up {
                let now = asked.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    yields += 1;
                    yield_now().await;
                }
                std::hint::spin_loop();
            }
            (yields, light_ran.load(Ordering::SeqCst))
        }
    });
    wait_until("the heavy job to start", || started.load(Ordering::SeqCst));

    // Submitted from this thread, the light job reaches the busy worker through its
    // injector, which is where a preemption request comes from.
    let ran = light_ran.clone();
    block_on(light.call(move |_| ran.store(true, Ordering::SeqCst)))
        .unwrap()
        .unwrap();
    let (yields, light_ran_first) = block_on(job).unwrap().unwrap();
    assert!(light_ran_first, "the light job waited for the heavy one");
    assert!(yields >= 1);
    assert!(asked.load(Ordering::SeqCst) >= 1);
}

#[test]
fn preemption_asks_a_job_by_its_age_not_its_turns() {
    let clock = Clock::manual();
    let asked = Arc::new(AtomicUsize::new(0));
    let hook_asked = Arc::clone(&asked);
    let runtime = Runtime::builder()
        .workers(1)
        .clock(clock.clone())
        .preempt(move |_worker| {
            hook_asked.fetch_add(1, Ordering::SeqCst);
        })
        .preempt_after(Duration::from_millis(1))
        .build()
        .unwrap();
    let heavy = runtime.lane(()).unwrap();
    let lights: Vec<_> = (0..3).map(|_| runtime.lane(()).unwrap()).collect();
    let (started, resumed, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    // Yields whenever the hook is called, having run 100 us by the clock (so that its lane
    // is charged, as a real job's is), and counts its resumptions.
    let job = heavy.submit({
        let (asked, started, resumed, stop) = (
            asked.clone(),
            started.clone(),
            resumed.clone(),
            stop.clone(),
        );
        let clock = clock.clone();
        async move {
            started.store(true, Ordering::SeqCst);
            // Past PATIENCE it gives up, so that a failure shows as one, not as a hang.
            let give_up = std::time::Instant::now() + PATIENCE;
            let mut seen = 0;
            while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < give_up {
                let now = asked.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    clock.advance(Duration::from_micros(100));
                    yield_now().await;
                    resumed.fetch_add(1, Ordering::SeqCst);
                }
                std::hint::spin_loop();
            }
        }
    });
    wait_until("the heavy job to start", || started.load(Ordering::SeqCst));

    // The request is made inside `call`, on this thread. A job younger than `preempt_after`
    // is left alone...
    let first = lights[0].call(|_| ());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    // ...one older is asked, and the lights run once it yields.
    clock.advance(Duration::from_millis(2));
    let second = lights[1].call(|_| ());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    block_on(first).unwrap().unwrap();
    block_on(second).unwrap().unwrap();

    // Resumed in a new turn, the job keeps its age: the next arrival asks at once.
    wait_until("the heavy job to resume", || {
        resumed.load(Ordering::SeqCst) == 1
    });
    let third = lights[2].call(|_| ());
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    block_on(third).unwrap().unwrap();
    stop.store(true, Ordering::SeqCst);
    block_on(job).unwrap().unwrap();
}
