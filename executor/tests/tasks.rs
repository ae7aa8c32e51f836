//! Tasks on the executor: spawning, joining, waking, yielding, panics, aborts, shutdown.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{Gate, PATIENCE, Parked, quietly, thread_blocker, wait_until};
use corelane_executor::{
    BlockOnError, BuildError, Handle, JoinError, MAX_DROP_TIMEOUT, Placement, Runtime, SpawnError,
    block_on, placement::allowed_cpus, yield_now,
};
use parking_lot::Mutex;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime builds")
}

#[test]
fn spawn_and_join_across_workers() {
    let runtime = runtime(2);
    for worker in 0..2 {
        let handle = runtime
            .spawn_on(
                worker,
                async move { (Handle::current_worker(), worker * 10) },
            )
            .unwrap();
        let (ran_on, value) = runtime.block_on(handle).unwrap().unwrap();
        assert_eq!(ran_on, Some(worker));
        assert_eq!(value, worker * 10);
    }

    // A task on worker 0 joins a task on worker 1.
    let inner = runtime.handle().clone();
    let outer = runtime
        .spawn_on(0, async move {
            let task = inner
                .spawn_on(1, async { Handle::current_worker() })
                .unwrap();
            task.await.unwrap()
        })
        .unwrap();
    assert_eq!(runtime.block_on(outer).unwrap().unwrap(), Some(1));
}

#[test]
fn spawn_on_a_missing_worker_is_a_typed_error() {
    let runtime = runtime(2);
    let error = runtime.spawn_on(7, async {}).unwrap_err();
    assert_eq!(
        error,
        SpawnError::NoSuchWorker {
            worker: 7,
            workers: 2
        }
    );
    assert!(error.to_string().contains("no worker 7"));
}

#[test]
fn hundred_thousand_tasks_all_complete() {
    let runtime = runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..100_000)
        .map(|i| {
            let done = Arc::clone(&done);
            runtime.spawn(async move {
                done.fetch_add(1, Ordering::Relaxed);
                i
            })
        })
        .collect();
    let mut sum = 0u64;
    for handle in handles {
        sum += runtime.block_on(handle).unwrap().unwrap() as u64;
    }
    assert_eq!(done.load(Ordering::Relaxed), 100_000);
    assert_eq!(sum, (0..100_000u64).sum());
    let stats = runtime.stats();
    let spawned: u64 = stats
        .workers
        .iter()
        .map(|worker| worker.tasks_spawned)
        .sum();
    assert_eq!(spawned, 100_000);
    // Least-loaded placement used both workers.
    assert!(
        stats.workers.iter().all(|worker| worker.tasks_spawned > 0),
        "{stats:?}"
    );
}

/// Something a test does during a task's first poll, with the task's waker.
type FirstPollHook = Box<dyn FnOnce(&Waker) + Send>;

/// Counts the polls of a task that stores its waker and waits twice, then finishes. Waiting
/// a second time lets a test see a spurious extra poll after the wake-ups under test.
struct WaitTwice {
    polls: Arc<AtomicUsize>,
    slot: Arc<Mutex<Option<Waker>>>,
    /// Called during the first poll, before it returns Pending.
    during_first_poll: Option<FirstPollHook>,
}

impl WaitTwice {
    fn new(during_first_poll: Option<FirstPollHook>) -> (WaitTwice, Arc<AtomicUsize>, WakerSlot) {
        let polls = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(Mutex::new(None));
        let future = WaitTwice {
            polls: Arc::clone(&polls),
            slot: Arc::clone(&slot),
            during_first_poll,
        };
        (future, polls, slot)
    }
}

type WakerSlot = Arc<Mutex<Option<Waker>>>;

impl Future for WaitTwice {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let polls = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if polls > 2 {
            return Poll::Ready(polls);
        }
        *self.slot.lock() = Some(cx.waker().clone());
        if let Some(hook) = self.during_first_poll.take() {
            hook(cx.waker());
        }
        Poll::Pending
    }
}

/// Once the task under test has been polled a second time: checks that no third poll is on
/// its way (a spawned task queued after every earlier wake-up has run first), then wakes it
/// for its last poll and expects exactly three.
fn expect_no_extra_poll(
    runtime: &Runtime,
    task: corelane_executor::JoinHandle<usize>,
    polls: &AtomicUsize,
    slot: &Mutex<Option<Waker>>,
) {
    wait_until("the second poll", || polls.load(Ordering::SeqCst) == 2);
    runtime.block_on(runtime.spawn(async {})).unwrap().unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 2, "polled once too often");
    let waker = slot.lock().take().unwrap();
    waker.wake();
    assert_eq!(runtime.block_on(task).unwrap().unwrap(), 3);
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

#[test]
fn foreign_wake_of_an_idle_task_polls_it_once_more() {
    let runtime = runtime(1);
    let (future, polls, slot) = WaitTwice::new(None);
    let task = runtime.spawn(future);
    wait_until("the first poll", || slot.lock().is_some());
    let waker = slot.lock().take().unwrap();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    expect_no_extra_poll(&runtime, task, &polls, &slot);
}

#[test]
fn foreign_wake_while_running_polls_once_more() {
    let runtime = runtime(1);
    // During its first poll, the task has another thread wake it, twice, and waits for that.
    let (future, polls, slot) = WaitTwice::new(Some(Box::new(|waker: &Waker| {
        let waker = waker.clone();
        std::thread::spawn(move || {
            waker.wake_by_ref();
            waker.wake();
        })
        .join()
        .unwrap();
    })));
    let task = runtime.spawn(future);
    expect_no_extra_poll(&runtime, task, &polls, &slot);
}

#[test]
fn foreign_wake_while_queued_polls_once_more() {
    let runtime = runtime(1);
    let (future, polls, slot) = WaitTwice::new(None);
    let task = runtime.spawn(future);
    wait_until("the first poll", || slot.lock().is_some());

    // Hold the worker, then wake the task twice while it sits in the queue behind the blocker.
    let (blocker, release, blocking) = thread_blocker();
    let blocker = runtime.spawn(blocker);
    wait_until("the worker to block", || {
        blocking.load(Ordering::SeqCst) == 1
    });
    let waker = slot.lock().take().unwrap();
    std::thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "polled while the worker was blocked"
    );
    release();

    runtime.block_on(blocker).unwrap().unwrap();
    expect_no_extra_poll(&runtime, task, &polls, &slot);
}

#[test]
fn yield_now_lets_every_ready_task_run_first() {
    let runtime = runtime(1);
    let log = Arc::new(Mutex::new(Vec::new()));

    let (blocker, release, blocking) = thread_blocker();
    let blocker = runtime.spawn(blocker);
    wait_until("the worker to block", || {
        blocking.load(Ordering::SeqCst) == 1
    });

    // Queued behind the blocker, from this (foreign) thread: the yielder, then five others.
    let yielder = {
        let log = Arc::clone(&log);
        let handle = runtime.handle().clone();
        runtime.spawn(async move {
            log.lock().push("yielder starts".to_string());
            // A task spawned locally right before the yield also runs first.
            let local = {
                let log = Arc::clone(&log);
                handle
                    .spawn_on(0, async move { log.lock().push("local".to_string()) })
                    .unwrap()
            };
            yield_now().await;
            log.lock().push("yielder resumes".to_string());
            local.await.unwrap();
        })
    };
    let others: Vec<_> = (0..5)
        .map(|i| {
            let log = Arc::clone(&log);
            runtime.spawn(async move { log.lock().push(format!("other {i}")) })
        })
        .collect();
    release();
    runtime.block_on(blocker).unwrap().unwrap();
    runtime.block_on(yielder).unwrap().unwrap();
    for other in others {
        runtime.block_on(other).unwrap().unwrap();
    }

    let log = log.lock().clone();
    let resumed = log
        .iter()
        .position(|entry| entry == "yielder resumes")
        .unwrap();
    for i in 0..5 {
        let other = log
            .iter()
            .position(|entry| *entry == format!("other {i}"))
            .unwrap();
        assert!(other < resumed, "{log:?}");
    }
    let local = log.iter().position(|entry| entry == "local").unwrap();
    assert!(local < resumed, "{log:?}");
}

#[test]
fn a_flood_of_local_tasks_does_not_starve_the_injector() {
    let runtime = runtime(1);
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));

    // A task that keeps the local queue full: it yields forever until told to stop.
    let flooder = {
        let stop = Arc::clone(&stop);
        let rounds = Arc::clone(&rounds);
        runtime.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                rounds.fetch_add(1, Ordering::SeqCst);
                yield_now().await;
            }
        })
    };
    wait_until("the flood to start", || rounds.load(Ordering::SeqCst) > 100);

    // A task sent from this thread still runs, and it is the one that stops the flood,
    // within a bounded number of the flood's polls: the worker looks at its injector at
    // least every 16 picks (asserted with room to spare, for the rounds that ran while this
    // thread was between its push and its reading of the count).
    let (at_stop, stopper) = {
        let (stop, seen) = (Arc::clone(&stop), Arc::clone(&rounds));
        let stopper = runtime.spawn(async move {
            stop.store(true, Ordering::SeqCst);
            seen.load(Ordering::SeqCst)
        });
        (rounds.load(Ordering::SeqCst), stopper)
    };
    let stopped_at = runtime.block_on(stopper).unwrap().unwrap();
    runtime.block_on(flooder).unwrap().unwrap();
    let waited = stopped_at.saturating_sub(at_stop);
    assert!(
        waited <= 64,
        "the injected task waited {waited} local polls"
    );
}

#[test]
fn a_flood_from_other_threads_does_not_starve_local_tasks() {
    let runtime = runtime(1);
    let stop = Arc::new(AtomicBool::new(false));

    // Another thread keeps the injector full.
    let flood = {
        let handle = runtime.handle().clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let tasks: Vec<_> = (0..64).map(|_| handle.spawn(async {})).collect();
                drop(tasks);
            }
        })
    };

    // A chain of tasks, each spawned locally by the previous one, still runs to its end.
    let handle = runtime.handle().clone();
    let chain = runtime.spawn(async move {
        let mut links = 0;
        for _ in 0..1000 {
            let link = handle.spawn_on(0, async { 1 }).unwrap();
            links += link.await.unwrap();
        }
        links
    });
    assert_eq!(runtime.block_on(chain).unwrap().unwrap(), 1000);
    stop.store(true, Ordering::SeqCst);
    flood.join().unwrap();
}

#[test]
fn a_panicking_task_on_every_worker_leaves_the_workers_running() {
    let runtime = runtime(2);
    let threads_before: Vec<_> = (0..2)
        .map(|w| {
            runtime.block_on(
                runtime
                    .spawn_on(w, async { std::thread::current().id() })
                    .unwrap(),
            )
        })
        .map(|id| id.unwrap().unwrap())
        .collect();

    quietly(|| {
        for worker in 0..2 {
            let task = runtime
                .spawn_on(worker, async move {
                    if worker < 100 {
                        panic!("task panicked on purpose on worker {worker}");
                    }
                })
                .unwrap();
            let error = runtime.block_on(task).unwrap().unwrap_err();
            assert!(error.is_panic());
            let panic = error.into_panic().unwrap();
            assert_eq!(
                panic.message(),
                Some(format!("task panicked on purpose on worker {worker}").as_str())
            );
        }
    });

    for (worker, before) in threads_before.iter().enumerate() {
        let task = runtime
            .spawn_on(worker, async { std::thread::current().id() })
            .unwrap();
        let after = runtime.block_on(task).unwrap().unwrap();
        assert_eq!(&after, before, "worker {worker}'s thread was replaced");
    }
}

/// A value whose drop panics.
struct PanicOnDrop(Arc<AtomicUsize>);

/// A future that is ready at once and whose own drop panics (outside any poll).
struct ReadyThenPanicOnDrop(#[allow(dead_code)] PanicOnDrop);

impl Future for ReadyThenPanicOnDrop {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(7)
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("dropped on purpose");
    }
}

#[test]
fn panics_while_dropping_futures_and_outputs_are_contained() {
    let runtime = runtime(1);
    let drops = Arc::new(AtomicUsize::new(0));
    quietly(|| {
        // The future's drop panics after it finished: the value still arrives.
        let task = runtime.spawn(ReadyThenPanicOnDrop(PanicOnDrop(Arc::clone(&drops))));
        assert_eq!(runtime.block_on(task).unwrap().unwrap(), 7);

        // A panic while an async block drops its locals happens inside a poll: a panic.
        let guard = PanicOnDrop(Arc::clone(&drops));
        let task = runtime.spawn(async move {
            let _guard = guard;
            7
        });
        assert!(runtime.block_on(task).unwrap().unwrap_err().is_panic());

        // The output's drop panics after a detached task finished: on the worker.
        let output = PanicOnDrop(Arc::clone(&drops));
        drop(runtime.spawn(async move { output }));

        // The output's drop panics when this thread drops a finished task's handle.
        let output = PanicOnDrop(Arc::clone(&drops));
        let task = runtime.spawn(async move { output });
        wait_until("the task to finish", || task.is_finished());
        drop(task);

        // The future's drop panics when an abort drops it on the worker.
        let guard = PanicOnDrop(Arc::clone(&drops));
        let mut task = runtime.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        task.abort();
        assert!(runtime.block_on(task).unwrap().unwrap_err().is_cancelled());
    });
    wait_until("all five drops", || drops.load(Ordering::SeqCst) == 5);

    // The worker is still there.
    assert_eq!(
        runtime
            .block_on(runtime.spawn(async { 1 }))
            .unwrap()
            .unwrap(),
        1
    );
}

#[test]
fn abort_cancels_a_waiting_task_and_a_queued_one() {
    let runtime = runtime(1);

    // A task that waits forever.
    let (parked, slot, polls, drops) = Parked::new();
    let mut task = runtime.spawn(parked);
    wait_until("the first poll", || slot.lock().is_some());
    task.abort();
    assert!(matches!(
        runtime.block_on(task).unwrap(),
        Err(JoinError::Cancelled)
    ));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(polls.load(Ordering::SeqCst), 1);

    // A task aborted before it ever ran is never polled.
    let (blocker, release, blocking) = thread_blocker();
    let blocker = runtime.spawn(blocker);
    wait_until("the worker to block", || {
        blocking.load(Ordering::SeqCst) == 1
    });
    let (parked, _slot, polls, drops) = Parked::new();
    let mut queued = runtime.spawn(parked);
    queued.abort();
    release();
    runtime.block_on(blocker).unwrap().unwrap();
    assert!(
        runtime
            .block_on(queued)
            .unwrap()
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Aborting a finished task keeps its output.
    let mut done = runtime.spawn(async { 5 });
    wait_until("the task to finish", || done.is_finished());
    done.abort();
    assert_eq!(runtime.block_on(done).unwrap().unwrap(), 5);
}

#[test]
fn block_on_from_a_worker_is_an_error_not_a_deadlock() {
    let runtime = runtime(1);
    let task = runtime.spawn(async { block_on(async { 1 }) });
    let result = runtime.block_on(task).unwrap().unwrap();
    assert_eq!(result, Err(BlockOnError::OnWorker { worker: 0 }));
    assert!(result.unwrap_err().to_string().contains("worker 0"));
}

#[test]
fn shutdown_cancels_waiting_tasks_and_late_wakers_do_no_harm() {
    let runtime = runtime(2);
    let mut slots = Vec::new();
    let mut drops = Vec::new();
    let mut handles = Vec::new();
    // Waiting tasks on both workers; those of worker 1, dropped when it stops, tell the
    // releaser below that the timeout has passed.
    for index in 0..10 {
        let (parked, slot, _polls, dropped) = Parked::new();
        handles.push(runtime.spawn_on(index % 2, parked).unwrap());
        slots.push(slot);
        drops.push(dropped);
    }
    // Tasks that never ran, queued behind a blocked worker, are cancelled too.
    let (blocker, release, blocking) = thread_blocker();
    let _blocker = runtime.spawn_on(0, blocker).unwrap();
    wait_until("the worker to block", || {
        blocking.load(Ordering::SeqCst) == 1
    });
    let never_ran: Vec<_> = (0..10)
        .map(|_| runtime.spawn_on(0, async { 1 }).unwrap())
        .collect();
    wait_until("the waiting tasks' first polls", || {
        slots.iter().all(|slot| slot.lock().is_some())
    });

    // Other threads hold the wakers, and keep waking them through and after the shutdown.
    let wakers: Vec<Waker> = slots
        .iter()
        .map(|slot| slot.lock().clone().unwrap())
        .collect();
    let stop_waking = Arc::new(AtomicBool::new(false));
    let waking = {
        let stop = Arc::clone(&stop_waking);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                wakers.iter().for_each(Waker::wake_by_ref);
                std::thread::yield_now();
            }
            wakers
        })
    };

    let on_worker_1: Vec<_> = drops.iter().skip(1).step_by(2).cloned().collect();
    let releaser = std::thread::spawn(move || {
        wait_until("the stop to begin", || {
            on_worker_1
                .iter()
                .any(|dropped| dropped.load(Ordering::SeqCst) == 1)
        });
        release();
    });
    let report = runtime.shutdown(Duration::from_millis(10));
    releaser.join().unwrap();
    assert!(!report.finished_in_time);
    assert!(report.stuck_workers.is_empty(), "{report:?}");

    for handle in handles {
        assert!(block_on(handle).unwrap().unwrap_err().is_cancelled());
    }
    for handle in never_ran {
        assert!(block_on(handle).unwrap().unwrap_err().is_cancelled());
    }
    for dropped in &drops {
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
    stop_waking.store(true, Ordering::SeqCst);
    let wakers = waking.join().unwrap();
    // Waking after the runtime is gone does nothing harmful.
    wakers.into_iter().for_each(Waker::wake);
}

#[test]
fn shutdown_lets_running_work_finish_within_the_timeout() {
    let runtime = runtime(2);
    let gate = Gate::default();
    let finished = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let wait = gate.wait();
            let finished = Arc::clone(&finished);
            runtime.spawn(async move {
                wait.await;
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            gate.open();
        })
    };
    let report = runtime.shutdown(PATIENCE);
    opener.join().unwrap();
    assert!(report.finished_in_time, "{report:?}");
    assert_eq!(finished.load(Ordering::SeqCst), 20);
    for handle in handles {
        block_on(handle).unwrap().unwrap();
    }
}

#[test]
fn spawning_after_shutdown_began_gives_cancelled_handles() {
    let runtime = runtime(1);
    let handle = runtime.handle().clone();
    drop(runtime);
    assert!(handle.is_shutting_down());
    assert!(
        block_on(handle.spawn(async { 1 }))
            .unwrap()
            .unwrap_err()
            .is_cancelled()
    );
    assert!(
        block_on(handle.spawn_on(0, async { 1 }).unwrap())
            .unwrap()
            .unwrap_err()
            .is_cancelled()
    );
}

#[test]
fn dropping_the_runtime_with_work_in_flight_does_not_hang() {
    let runtime = Runtime::builder()
        .workers(2)
        .shutdown_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| runtime.spawn(std::future::pending::<()>()))
        .collect();
    drop(runtime);
    for handle in handles {
        assert!(block_on(handle).unwrap().unwrap_err().is_cancelled());
    }
}

/// Slow (a minute): `.ci/run` runs it with `--ignored`.
#[test]
#[ignore = "waits out MAX_DROP_TIMEOUT, a minute"]
fn a_drop_gives_up_after_max_drop_timeout_even_when_told_to_wait_for_ever() {
    let runtime = Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::MAX)
        .build()
        .unwrap();
    let (parked, _slot, _polls, drops) = Parked::new();
    let handle = runtime.spawn(parked);
    let (dropped, drop_returned) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = dropped.send(());
    });
    // Without the cap the drop would wait for ever and this would fail after the wait.
    drop_returned
        .recv_timeout(MAX_DROP_TIMEOUT + 2 * PATIENCE)
        .expect("the drop returns once MAX_DROP_TIMEOUT has passed");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the waiting task was dropped"
    );
    assert!(block_on(handle).unwrap().unwrap_err().is_cancelled());
}

#[test]
fn shutdown_from_a_task_of_the_runtime_does_not_deadlock() {
    let runtime = runtime(2);
    let (sender, receiver) = std::sync::mpsc::channel();
    let holder = Arc::new(Mutex::new(Some(runtime)));
    let inside = Arc::clone(&holder);
    let handle = holder.lock().as_ref().unwrap().handle().clone();
    drop(handle.spawn(async move {
        let runtime = inside.lock().take().unwrap();
        let report = runtime.shutdown(Duration::from_secs(1));
        let _ = sender.send(report);
    }));
    let report = receiver.recv_timeout(PATIENCE).expect("shutdown returned");
    assert!(report.from_own_worker);
}

/// The CPUs the kernel lets this process run on, read from `/proc/self/status` (a list such
/// as `0-3,8`), independently of the runtime's own reading; `None` off Linux.
fn cpus_allowed_by_the_kernel() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (low, high) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(low.parse::<usize>().ok()?..=high.parse::<usize>().ok()?);
    }
    Some(cpus)
}

#[test]
fn default_placement_pins_one_worker_to_each_cpu_the_kernel_allows() {
    let Some(allowed) = cpus_allowed_by_the_kernel() else {
        eprintln!("skipped: no /proc/self/status here");
        return;
    };
    let runtime = Runtime::new().unwrap();
    let mut pinned: Vec<usize> = runtime
        .stats()
        .workers
        .iter()
        .filter_map(|worker| worker.cpu)
        .collect();
    pinned.sort_unstable();
    assert_eq!(pinned, allowed);
    // Under a narrower mask than the machine's, this same test (run again below, in a child
    // process limited to one CPU) must find a single worker, not one per CPU of the machine.
    if std::env::var_os("CORELANE_PLACEMENT_CHILD").is_some() || allowed.len() < 2 {
        return;
    }
    let only = allowed[allowed.len() - 1];
    let child = std::process::Command::new("taskset")
        .args(["-c", &only.to_string()])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "default_placement_pins_one_worker_to_each_cpu_the_kernel_allows",
            "--nocapture",
        ])
        .env("CORELANE_PLACEMENT_CHILD", "1")
        .output();
    match child {
        Ok(output) => assert!(
            output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "the child under taskset failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but taskset fails: {error}"
            );
            eprintln!("skipped the narrower mask: taskset: {error}");
        }
    }
}

#[test]
fn more_workers_than_cpus_share_them_in_turn() {
    let runtime = Runtime::builder().workers(5).build().unwrap();
    let allowed = allowed_cpus();
    let stats = runtime.stats();
    assert_eq!(stats.workers.len(), 5);
    for worker in &stats.workers {
        assert_eq!(worker.cpu, Some(allowed[worker.index % allowed.len()]));
    }
}

#[test]
fn a_cpu_that_cannot_be_pinned_leaves_its_worker_unpinned_and_working() {
    // CPU 1000 is a valid number but not one this machine lets us run on.
    let runtime = Runtime::builder().cpus([1000]).build().unwrap();
    let task = runtime.spawn(async { 21 * 2 });
    assert_eq!(runtime.block_on(task).unwrap().unwrap(), 42);
    let stats = runtime.stats();
    assert_eq!(stats.workers[0].cpu, Some(1000));
    assert!(!stats.workers[0].pinned);
}

#[test]
fn pinning_can_be_switched_off() {
    let runtime = Runtime::builder().workers(2).pin(false).build().unwrap();
    assert!(
        runtime
            .stats()
            .workers
            .iter()
            .all(|worker| worker.cpu.is_none() && !worker.pinned)
    );
    assert_eq!(
        runtime
            .block_on(runtime.spawn(async { 1 }))
            .unwrap()
            .unwrap(),
        1
    );
}

#[test]
fn bad_placements_fail_to_build_with_typed_errors() {
    assert!(matches!(
        Runtime::builder().workers(0).build(),
        Err(BuildError::Placement(_))
    ));
    assert!(matches!(
        Runtime::builder().cpus([0, 0]).build(),
        Err(BuildError::Placement(_))
    ));
    let error = Runtime::builder().cpus([5000]).build().unwrap_err();
    assert!(error.to_string().contains("cpu 5000"), "{error}");
    assert!(matches!(
        Runtime::builder()
            .placement(Placement::Cpus(vec![]))
            .build(),
        Err(BuildError::Placement(_))
    ));
    assert!(matches!(
        Runtime::builder().slice_jobs(0).build(),
        Err(BuildError::ZeroSliceJobs)
    ));
}

#[test]
fn stats_count_spawns_polls_and_parks() {
    let runtime = runtime(1);
    for _ in 0..10 {
        runtime
            .block_on(runtime.spawn(async { yield_now().await }))
            .unwrap()
            .unwrap();
    }
    assert_eq!(runtime.stats().workers[0].tasks_spawned, 10);
    // Workers publish their counters after each batch: wait for the last one.
    wait_until("finished count", || {
        runtime.stats().workers[0].tasks_finished == 10
    });
    wait_until("poll count", || runtime.stats().workers[0].polls >= 20);
    wait_until("a park", || runtime.stats().workers[0].parks > 0);
    assert!(runtime.stats().workers[0].busy > Duration::ZERO);
}

#[test]
fn aborting_a_finished_task_twice_keeps_its_output() {
    let runtime = runtime(1);
    let mut done = runtime.spawn(async { 5 });
    wait_until("the task to finish", || done.is_finished());
    done.abort();
    done.abort();
    assert_eq!(runtime.block_on(done).unwrap().unwrap(), 5);
}

#[test]
fn shutdown_with_an_endless_timeout_returns_once_work_is_done() {
    let runtime = runtime(2);
    runtime.block_on(runtime.spawn(async {})).unwrap().unwrap();
    let report = runtime.shutdown(Duration::MAX);
    assert!(report.finished_in_time);
    let runtime = Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::MAX)
        .build()
        .unwrap();
    drop(runtime);
}

#[test]
fn bad_names_and_balance_settings_are_typed_errors() {
    let error = Runtime::builder()
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    assert!(matches!(error, BuildError::ThreadName(_)), "{error}");
    let zero = corelane_executor::Balance {
        period: Duration::ZERO,
        ..Default::default()
    };
    assert!(matches!(
        Runtime::builder().balance(zero).build().unwrap_err(),
        BuildError::Balance(corelane_executor::BalanceError::ZeroPeriod)
    ));
    let nan = corelane_executor::Balance {
        threshold: f64::NAN,
        ..Default::default()
    };
    assert!(matches!(
        Runtime::builder().balance(nan).build().unwrap_err(),
        BuildError::Balance(_)
    ));
}
