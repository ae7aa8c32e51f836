//! Shutdown with work in flight: threads outside the runtime keep calling while the host
//! shuts down, some calls are dropped as soon as they are made, some are polled once and
//! kept, with their wakers, past the end of the runtime. Every call ends, nothing panics,
//! nothing hangs, and every thread the host started is gone afterwards.
//!
//! This file holds one test, so that the thread count it checks is its own.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use corelane::executor::{Balance, Runtime};
use corelane::host::{Call, CallError, Database, Host};
use futures_lite::future::block_on;

const DATABASES: usize = 40;
const THREADS: usize = 4;
/// Calls submitted before the shutdown starts, at least.
const BEFORE_SHUTDOWN: u64 = 2_000;
/// Calls each thread makes after it has seen the shutdown; each must be refused at once.
const AFTER_SHUTDOWN: usize = 50;
/// A compute call of this many steps runs for about a millisecond.
const SPIN_STEPS: u64 = 1_000_000;

#[test]
fn shutdown_with_calls_in_flight_ends_every_call_and_leaves_no_thread() {
    let _watchdog = common::watchdog("shutdown", Duration::from_secs(300));
    // Wasmtime compiles on a process-wide pool of threads that starts with the first compile
    // and lives on: start it before counting threads.
    let warm_up = Host::new().expect("a host builds");
    let bytes = corelane::modules::wasm("counter").expect("a sample");
    warm_up
        .compile("counter", &bytes)
        .expect("the sample compiles");
    warm_up.shutdown(Duration::from_secs(1));
    let threads_before = common::thread_names();

    let host = Host::builder()
        .runtime(
            Runtime::builder()
                .workers(2)
                .pin(false)
                .balance(Balance::default()),
        )
        .build()
        .expect("the host builds");
    let databases: Vec<Database> = (0..DATABASES)
        .map(|index| {
            let sample = if index % 2 == 0 { "counter" } else { "compute" };
            let bytes = corelane::modules::wasm(sample).expect("a sample");
            let module = host.compile(sample, &bytes).expect("the sample compiles");
            host.create_database(
                &format!("inflight-{index}"),
                &module,
                host.database_defaults(),
            )
            .expect("a database")
        })
        .collect();

    let submitted = Arc::new(AtomicU64::new(0));
    let shut_down = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let databases = databases.clone();
            let submitted = Arc::clone(&submitted);
            let shut_down = Arc::clone(&shut_down);
            thread::spawn(move || call_through_shutdown(thread, &databases, &submitted, &shut_down))
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    while submitted.load(Ordering::SeqCst) < BEFORE_SHUTDOWN {
        assert!(Instant::now() < deadline, "the callers made too few calls");
        thread::sleep(Duration::from_millis(1));
    }
    let report = host.shutdown(Duration::from_millis(10));
    assert!(report.stuck_workers.is_empty(), "{report:?}");
    shut_down.store(true, Ordering::SeqCst);

    let mut left = Left::default();
    for caller in callers {
        let theirs = caller.join().expect("a caller thread never panics");
        left.kept.extend(theirs.kept);
        left.polled.extend(theirs.polled);
    }
    drop(databases);

    // Every call kept past the shutdown ends, with a value or as ended by the shutdown.
    let kept = left.kept.len();
    for call in left.kept {
        assert_ended_well(block_on(call));
    }
    // A call polled once has its waker with the caller; it ends too, and waking that stale
    // waker after the runtime has gone harms nothing.
    let polled = left.polled.len();
    for (call, counter) in left.polled {
        assert_ended_well(block_on(call));
        Waker::from(counter).wake();
    }
    eprintln!(
        "{} calls before the shutdown; {kept} kept and {polled} polled once past it",
        submitted.load(Ordering::SeqCst)
    );

    // The workers, the balancer and the ticker were joined by the shutdown.
    assert_eq!(
        common::thread_names(),
        threads_before,
        "threads left behind"
    );
}

/// What a caller thread hands back: calls still in flight when it stopped.
#[derive(Default)]
struct Left {
    kept: Vec<Call<Vec<u8>>>,
    /// Polled once with the counter's waker, which the caller keeps.
    polled: Vec<(Call<Vec<u8>>, Arc<WakeCounter>)>,
}

/// Calls databases in turn until the shutdown, and a few times after it. Each call is kept,
/// dropped at once, polled once and kept, or waited for, in turn.
fn call_through_shutdown(
    thread: usize,
    databases: &[Database],
    submitted: &AtomicU64,
    shut_down: &AtomicBool,
) -> Left {
    let mut left = Left::default();
    let mut after = 0;
    let mut step = thread;
    while after < AFTER_SHUTDOWN {
        // Read before the call: once set, every call made after must be refused.
        let refused_for_sure = shut_down.load(Ordering::SeqCst);
        let db = &databases[step % databases.len()];
        let call = if db.name().ends_with(['1', '3', '5', '7', '9']) {
            db.call("spin", SPIN_STEPS.to_le_bytes())
        } else {
            db.call("increment", Vec::new())
        };
        submitted.fetch_add(1, Ordering::SeqCst);

        match step % 4 {
            0 if left.kept.len() < 200 => left.kept.push(call),
            // Dropped mid-call: the call goes on, and nobody waits for it.
            1 => drop(call),
            2 if left.polled.len() < 200 => {
                let mut call = call;
                let counter = Arc::new(WakeCounter::default());
                let waker = Waker::from(Arc::clone(&counter));
                match std::pin::Pin::new(&mut call).poll(&mut Context::from_waker(&waker)) {
                    Poll::Ready(result) => assert_ended_well(result),
                    Poll::Pending => left.polled.push((call, counter)),
                }
            }
            _ => {
                let result = block_on(call);
                if refused_for_sure {
                    assert!(
                        matches!(result, Err(CallError::NoSuchModule { .. })),
                        "a call after the shutdown was not refused: {result:?}"
                    );
                } else {
                    assert_ended_well(result);
                }
            }
        }
        if refused_for_sure {
            after += 1;
        }
        step += 1;
    }
    left
}

/// A call either ran, or was ended by the shutdown with one of the two errors that say so.
fn assert_ended_well(result: Result<Vec<u8>, CallError>) {
    match result {
        Ok(bytes) => assert_eq!(bytes.len(), 8, "both reducers answer 8 bytes"),
        Err(CallError::Cancelled | CallError::NoSuchModule { .. }) => {}
        Err(other) => panic!("a call ended with {other}"),
    }
}

#[derive(Default)]
struct WakeCounter(AtomicUsize);

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
