//! A lane against a model of a lane: proptest drives random sequences of submit, close,
//! abort, move, gate and run steps, then a shutdown or a drain, and checks every job's one
//! outcome, the order jobs started in, and the lane's counters against what the model says.
//!
//! To make the outcomes predictable, both workers are held still (each runs a task that
//! blocks) except during a `Run` step, which lets the lane go as far as it can and then
//! holds the workers again. The model then knows exactly which jobs ran: all queued ones up
//! to the first that waits on a gate still closed, which starts and keeps the lane.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Gate, block_on_within, quietly, thread_blocker, wait_until};
use corelane_executor::{JobError, JobHandle, Lane, LaneError, Runtime, yield_now};
use parking_lot::Mutex;
use proptest::prelude::*;

const WORKERS: usize = 2;

/// What a submitted job does when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    /// Returns its id at once.
    Value,
    /// Panics.
    Panic,
    /// Yields this many times, keeping the lane, then returns its id.
    Yield(u8),
    /// Waits on the gate, keeping the lane, then returns its id.
    Wait,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Submit(Job),
    Close,
    Abort,
    Move(usize),
    OpenGate,
    /// Lets the workers run until the lane can go no further.
    Run,
}

/// How a sequence ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// The runtime shuts down at once, with whatever is left in flight.
    Shutdown,
    /// The gate opens, the handle is dropped, and the lane drains.
    Drain,
}

/// The one outcome the model expects of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Queued,
    /// Started and waiting on the gate, holding the lane.
    Waiting,
    Value,
    Panicked,
    Cancelled,
    Closed,
}

fn job_strategy() -> impl Strategy<Value = Job> {
    prop_oneof![
        4 => Just(Job::Value),
        1 => Just(Job::Panic),
        2 => (1u8..4).prop_map(Job::Yield),
        1 => Just(Job::Wait),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => job_strategy().prop_map(Step::Submit),
        1 => Just(Step::Close),
        1 => Just(Step::Abort),
        2 => (0..WORKERS).prop_map(Step::Move),
        1 => Just(Step::OpenGate),
        3 => Just(Step::Run),
    ]
}

fn end_strategy() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Shutdown), Just(End::Drain)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_lane_behaves_as_its_model_under_random_steps(
        steps in prop::collection::vec(step_strategy(), 1..24),
        end in end_strategy(),
    ) {
        quietly(|| check(&steps, end));
    }
}

/// The real lane, its jobs, and the model, side by side.
struct Harness {
    runtime: Option<Runtime>,
    lane: Lane<()>,
    gate: Gate,
    /// Ids of jobs in the order they started.
    started: Arc<Mutex<Vec<usize>>>,
    /// Jobs running or suspended right now; more than one at a time breaks the lane's rule.
    running: Arc<AtomicUsize>,
    overlaps: Arc<AtomicUsize>,
    jobs: Vec<(Job, Expect, Option<JobHandle<usize>>)>,
    /// Releases the workers held still.
    release: Vec<Box<dyn FnOnce()>>,
    closed: bool,
    gate_open: bool,
}

fn check(steps: &[Step], end: End) {
    let runtime = Runtime::builder()
        .workers(WORKERS)
        .pin(false)
        .build()
        .expect("the runtime builds");
    let lane = runtime.lane_builder().worker(0).build(()).expect("a lane");
    let mut harness = Harness {
        runtime: Some(runtime),
        lane,
        gate: Gate::default(),
        started: Arc::default(),
        running: Arc::default(),
        overlaps: Arc::default(),
        jobs: Vec::new(),
        release: Vec::new(),
        closed: false,
        gate_open: false,
    };
    harness.hold_workers();
    for step in steps {
        harness.step(*step);
    }
    match end {
        End::Shutdown => harness.shut_down(),
        End::Drain => harness.drain(),
    }
}

impl Harness {
    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime is up")
    }

    fn lane(&self) -> &Lane<()> {
        &self.lane
    }

    fn hold_workers(&mut self) {
        for worker in 0..WORKERS {
            let (blocker, release, blocking) = thread_blocker();
            drop(self.runtime().spawn_on(worker, blocker).expect("a worker"));
            wait_until("a worker to be held", || {
                blocking.load(Ordering::SeqCst) == 1
            });
            self.release.push(Box::new(release));
        }
    }

    fn release_workers(&mut self) {
        self.release.drain(..).for_each(|release| release());
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Submit(job) => {
                let id = self.jobs.len();
                let handle = self.lane().submit(self.job(id, job));
                let expect = if self.closed {
                    Expect::Closed
                } else {
                    Expect::Queued
                };
                self.jobs.push((job, expect, Some(handle)));
            }
            Step::Close => {
                self.lane().close();
                self.closed = true;
            }
            Step::Abort => {
                self.lane().abort();
                self.closed = true;
                for (_, expect, _) in &mut self.jobs {
                    if matches!(expect, Expect::Queued | Expect::Waiting) {
                        *expect = Expect::Cancelled;
                    }
                }
            }
            Step::Move(worker) => match self.lane().move_to(worker) {
                Ok(()) => {}
                // Only a closed lane can have drained and left its worker.
                Err(LaneError::Drained) if self.closed => {}
                Err(error) => panic!("an open lane refused to move: {error}"),
            },
            Step::OpenGate => {
                self.gate.open();
                self.gate_open = true;
            }
            Step::Run => self.run(),
        }
    }

    /// Lets the lane run as far as the model says it can, checks each job that ended, and
    /// holds the workers again.
    fn run(&mut self) {
        let gate_open = self.gate_open;
        for (job, expect, _) in &mut self.jobs {
            match (*expect, *job) {
                (Expect::Queued | Expect::Waiting, Job::Wait) if !gate_open => {
                    *expect = Expect::Waiting;
                    break;
                }
                (Expect::Queued | Expect::Waiting, Job::Panic) => *expect = Expect::Panicked,
                (Expect::Queued | Expect::Waiting, _) => *expect = Expect::Value,
                _ => {}
            }
        }

        self.release_workers();
        for id in 0..self.jobs.len() {
            match self.jobs[id].1 {
                Expect::Waiting => {
                    let started = Arc::clone(&self.started);
                    wait_until("a waiting job to start", || started.lock().contains(&id));
                }
                Expect::Value | Expect::Panicked | Expect::Cancelled | Expect::Closed => {
                    self.settle(id, false);
                }
                Expect::Queued => {}
            }
        }
        self.hold_workers();
    }

    /// Awaits job `id` (once) and checks its outcome against the model; at a shutdown, a
    /// job the model left queued or waiting may also have run or been cancelled.
    fn settle(&mut self, id: usize, shutting_down: bool) -> Option<Result<usize, JobError>> {
        let handle = self.jobs[id].2.take()?;
        let outcome = block_on_within(&format!("job {id}"), handle);
        let expect = self.jobs[id].1;
        let fits = match (&outcome, expect) {
            (Ok(value), Expect::Value) => *value == id,
            (Err(JobError::Panicked(_)), Expect::Panicked) => true,
            (Err(JobError::Cancelled), Expect::Cancelled) => true,
            (Err(JobError::Closed), Expect::Closed) => true,
            (_, Expect::Queued | Expect::Waiting) if shutting_down => true,
            _ => false,
        };
        assert!(
            fits,
            "job {id} ({:?}) ended {outcome:?}, the model expected {expect:?}",
            { self.jobs[id].0 }
        );
        Some(outcome)
    }

    /// The runtime shuts down with the workers just released: of what was left, a prefix of
    /// the queue may run, and the rest is cancelled.
    fn shut_down(mut self) {
        self.release_workers();
        let runtime = self.runtime.take().expect("the runtime is up");
        let report = runtime.shutdown(Duration::ZERO);
        assert!(report.stuck_workers.is_empty(), "{report:?}");

        let mut cancelled_one = false;
        for id in 0..self.jobs.len() {
            let left = matches!(self.jobs[id].1, Expect::Queued | Expect::Waiting);
            let Some(outcome) = self.settle(id, true) else {
                continue;
            };
            if !left {
                continue;
            }
            match outcome {
                Err(JobError::Cancelled) => cancelled_one = true,
                Ok(_) | Err(JobError::Panicked(_)) => assert!(
                    !cancelled_one,
                    "job {id} ran after an earlier job of its lane was cancelled"
                ),
                Err(other) => panic!("job {id} was left in flight and ended {other}"),
            }
        }
        self.check_order_and_counts(true);
    }

    /// Everything left runs: the gate opens, the lane closes and drains.
    fn drain(mut self) {
        self.gate.open();
        self.gate_open = true;
        for (job, expect, _) in &mut self.jobs {
            if matches!(expect, Expect::Queued | Expect::Waiting) {
                *expect = if *job == Job::Panic {
                    Expect::Panicked
                } else {
                    Expect::Value
                };
            }
        }
        self.lane().close();
        self.closed = true;
        self.release_workers();

        block_on_within("the lane to drain", self.lane().drained());
        for id in 0..self.jobs.len() {
            self.settle(id, false);
        }
        self.check_order_and_counts(false);
    }

    /// Jobs started one at a time, in submission order, and the counters add up.
    fn check_order_and_counts(&self, shutting_down: bool) {
        assert_eq!(
            self.overlaps.load(Ordering::SeqCst),
            0,
            "two jobs ran at once"
        );
        let started = self.started.lock().clone();
        assert!(
            started.windows(2).all(|pair| pair[0] < pair[1]),
            "jobs started out of order: {started:?}"
        );
        if !shutting_down {
            let expected: Vec<usize> = self
                .jobs
                .iter()
                .enumerate()
                .filter(|(_, (_, expect, _))| matches!(expect, Expect::Value | Expect::Panicked))
                .map(|(id, _)| id)
                .collect();
            let started_and_ended: Vec<usize> = started
                .iter()
                .copied()
                .filter(|id| matches!(self.jobs[*id].1, Expect::Value | Expect::Panicked))
                .collect();
            assert_eq!(started_and_ended, expected, "the jobs that ran");
        }

        let stats = self.lane().stats();
        let refused = self
            .jobs
            .iter()
            .filter(|(_, e, _)| *e == Expect::Closed)
            .count() as u64;
        assert_eq!(stats.refused, refused, "{stats:?}");
        assert_eq!(
            stats.submitted,
            self.jobs.len() as u64 - refused,
            "{stats:?}"
        );
        assert_eq!(
            stats.completed + stats.panicked + stats.cancelled,
            stats.submitted,
            "every job ended once: {stats:?}"
        );
    }

    /// The real job: it notes its start, checks that it runs alone, and does what `job` says.
    fn job(&self, id: usize, job: Job) -> impl Future<Output = usize> + Send + 'static {
        let started = Arc::clone(&self.started);
        let running = Arc::clone(&self.running);
        let overlaps = Arc::clone(&self.overlaps);
        let gate = self.gate.wait();
        async move {
            if running.fetch_add(1, Ordering::SeqCst) != 0 {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            // Counts the job out however it ends: returning, panicking or being dropped.
            let _running = Leaves(running);
            started.lock().push(id);
            match job {
                Job::Value => {}
                Job::Panic => panic!("job {id} panics on purpose"),
                Job::Yield(times) => {
                    for _ in 0..times {
                        yield_now().await;
                    }
                }
                Job::Wait => gate.await,
            }
            id
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A failed check must not leave the workers held for PATIENCE.
        self.release_workers();
    }
}

struct Leaves(Arc<AtomicUsize>);

impl Drop for Leaves {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
