//! Loom models of corelane's lock-free protocols, run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p corelane-executor --release --lib loom_models
//! ```
//!
//! Each model drives the real protocol code (`Sleeper` from `park.rs`, `LaneState` from
//! `lane/state.rs`) through the shim in `sync.rs`. The queues around them are loom mutexes
//! holding a `VecDeque`: the lane's job queue is built that way in the runtime too (with
//! parking_lot's mutex), while the workers' injectors, from crossbeam, are stood in for; the
//! lane's ready slot, a crossbeam `AtomicCell`, is stood in for by a loom mutex holding a
//! flag. The models are small (two or three threads, one or two items each), and bounded to
//! three preemptions per execution (most concurrency bugs need fewer), so that each runs in
//! seconds.

use std::collections::VecDeque;

use loom::sync::Arc;
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use crate::lane::state::LaneState;
use crate::park::Sleeper;

/// Runs a model with at most three preemptions per execution; see the module documentation.
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(3, f);
}

/// Runs a model with at most `preemptions` preemptions per execution.
fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}

/// A queue as the lane's job queue is built, standing in for the injectors too.
struct Queue<T>(Mutex<VecDeque<T>>);

impl<T> Queue<T> {
    fn new() -> Queue<T> {
        Queue(Mutex::new(VecDeque::new()))
    }

    fn push(&self, item: T) {
        self.0.lock().unwrap().push_back(item);
    }

    fn pop(&self) -> Option<T> {
        self.0.lock().unwrap().pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }

    /// As `JobQueue::pop_for_turn`: the next item and whether another is behind it, without
    /// waiting for the lock; `(None, false)` while a pusher holds it.
    fn pop_for_turn(&self) -> (Option<T>, bool) {
        match self.0.try_lock() {
            Ok(mut queue) => {
                let next = queue.pop_front();
                (next, !queue.is_empty())
            }
            Err(_) => (None, false),
        }
    }
}

/// Park protocol, invariant 1: a worker that goes to sleep while two other threads give it
/// work is always woken, so it consumes everything and ends.
#[test]
fn loom_models_parking_loses_no_wake_up() {
    model(|| {
        // The queue is a count of items: only whether work is there matters here.
        let queue = Arc::new(AtomicUsize::new(0));
        let sleeper = Arc::new(Sleeper::new());
        let ready = Arc::new(AtomicBool::new(false));

        let worker = {
            let (queue, sleeper, ready) = (queue.clone(), sleeper.clone(), ready.clone());
            thread::spawn(move || {
                sleeper.register();
                ready.store(true, Ordering::SeqCst);
                let mut consumed = 0;
                while consumed < 2 {
                    if queue.load(Ordering::Acquire) > consumed {
                        consumed += 1;
                        continue;
                    }
                    // Steps 1 to 3 of the park protocol.
                    sleeper.prepare();
                    if queue.load(Ordering::Relaxed) > consumed {
                        sleeper.cancel();
                        continue;
                    }
                    sleeper.park(None);
                }
            })
        };

        let pushers: Vec<_> = (0..2)
            .map(|_| {
                let (queue, sleeper) = (queue.clone(), sleeper.clone());
                thread::spawn(move || {
                    // Step 4: publish, then notify.
                    queue.fetch_add(1, Ordering::Release);
                    sleeper.notify();
                })
            })
            .collect();
        for pusher in pushers {
            pusher.join().unwrap();
        }
        worker.join().unwrap();
        assert!(ready.load(Ordering::SeqCst));
    });
}

/// Worker invariant W3: a push that races the worker's stop either reaches the worker's final
/// drain or is drained by the pusher itself; nothing stays queued.
#[test]
fn loom_models_a_push_racing_a_stop_leaves_nothing_queued() {
    model(|| {
        let queue = Arc::new(Queue::new());
        let stopped = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));

        let pusher = {
            let (queue, stopped, dropped) = (queue.clone(), stopped.clone(), dropped.clone());
            thread::spawn(move || {
                if stopped.load(Ordering::Acquire) {
                    dropped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                queue.push(1);
                // As in `Sleeper::notify`: the fence before the re-check.
                loom::sync::atomic::fence(Ordering::SeqCst);
                if stopped.load(Ordering::Relaxed) {
                    while queue.pop().is_some() {
                        dropped.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        let worker = {
            let (queue, stopped, dropped) = (queue.clone(), stopped.clone(), dropped.clone());
            thread::spawn(move || {
                // The runtime's stop request, then the worker's cancel phase.
                stopped.store(true, Ordering::SeqCst);
                if stopped.load(Ordering::Acquire) {
                    loom::sync::atomic::fence(Ordering::SeqCst);
                    while queue.pop().is_some() {
                        dropped.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        pusher.join().unwrap();
        worker.join().unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(queue.is_empty());
    });
}

/// Takes one lane token from a run queue (a count of them), if it holds any.
fn take_token(tokens: &AtomicUsize) -> bool {
    let mut count = tokens.load(Ordering::Acquire);
    loop {
        if count == 0 {
            return false;
        }
        match tokens.compare_exchange(count, count - 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(actual) => count = actual,
        }
    }
}

/// A lane and two workers' run queues, for the lane models. A lane token in a run queue is
/// the lane's run queue entry; tokens are interchangeable, so each run queue is a count.
struct Model {
    lane: LaneState,
    jobs: Queue<usize>,
    home: AtomicUsize,
    runs: [AtomicUsize; 2],
    running: AtomicUsize,
    finished: AtomicUsize,
    done: Mutex<Vec<usize>>,
}

impl Model {
    fn new() -> Arc<Model> {
        Arc::new(Model {
            lane: LaneState::new(),
            jobs: Queue::new(),
            home: AtomicUsize::new(0),
            runs: [AtomicUsize::new(0), AtomicUsize::new(0)],
            running: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            done: Mutex::new(Vec::new()),
        })
    }

    fn enqueue(&self) {
        self.runs[self.home.load(Ordering::Acquire)].fetch_add(1, Ordering::AcqRel);
    }

    /// Lane protocol steps 1 and 2.
    fn submit(&self, job: usize) -> bool {
        if !self.lane.admit() {
            return false;
        }
        self.jobs.push(job);
        if self.lane.activate() {
            self.enqueue();
        }
        true
    }

    /// Takes one lane token from worker `me`'s run queue and handles it (steps 3 and 6).
    fn turn(&self, me: usize) -> bool {
        if !take_token(&self.runs[me]) {
            return false;
        }
        if self.home.load(Ordering::Acquire) != me {
            self.enqueue();
            return true;
        }
        self.lane.begin_turn();
        assert_eq!(
            self.running.fetch_add(1, Ordering::SeqCst),
            0,
            "two turns at once"
        );
        // As `run_turn`: no pop once the last one left the queue empty, unless an activation
        // came during the turn; a pop that finds the lock taken ends the turn.
        let mut queued_more = true;
        loop {
            if !queued_more && !self.lane.load().is_scheduled() {
                break;
            }
            let (next, more) = self.jobs.pop_for_turn();
            queued_more = more;
            let Some(job) = next else { break };
            self.done.lock().unwrap().push(job);
            self.finished.fetch_add(1, Ordering::SeqCst);
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.lane.end_turn(false) {
            self.enqueue();
        }
        true
    }

    fn done(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    /// A worker's share of a model: a few tries at a turn, without spinning.
    fn work(&self, me: usize) {
        for _ in 0..3 {
            if !self.turn(me) {
                thread::yield_now();
            }
        }
    }

    /// Once every thread has joined: runs the turns left. A job that is still queued when no
    /// run queue holds the lane's token was lost (its activation went nowhere).
    fn finish(&self, jobs: usize) {
        while self.done() < jobs {
            assert!(
                self.turn(0) || self.turn(1),
                "a job is queued but its lane is in no run queue"
            );
        }
    }
}

/// Invariants S2 to S4: with two submitters racing the lane going idle, every job runs, once,
/// and never two turns at once.
#[test]
fn loom_models_no_job_is_lost_when_a_submit_races_the_lane_going_idle() {
    model(|| {
        let model = Model::new();
        let submitters: Vec<_> = (0..2)
            .map(|job| {
                let model = model.clone();
                thread::spawn(move || assert!(model.submit(job)))
            })
            .collect();
        let worker = {
            let model = model.clone();
            thread::spawn(move || model.work(0))
        };
        for submitter in submitters {
            submitter.join().unwrap();
        }
        worker.join().unwrap();
        model.finish(2);
        let mut done = model.done.lock().unwrap().clone();
        done.sort_unstable();
        assert_eq!(done, vec![0, 1]);
        assert!(!model.lane.load().is_running());
    });
}

/// Lane protocol step 6: a move racing a submit, with two workers, loses no job and never
/// runs two turns at once, and the jobs run in submission order.
#[test]
fn loom_models_a_move_racing_a_submit_loses_and_overlaps_nothing() {
    // Five threads: two preemptions keep the search to minutes.
    model_bounded(2, || {
        let model = Model::new();
        let submitter = {
            let model = model.clone();
            thread::spawn(move || {
                assert!(model.submit(0));
                assert!(model.submit(1));
            })
        };
        let mover = {
            let model = model.clone();
            thread::spawn(move || model.home.store(1, Ordering::Release))
        };
        let workers: Vec<_> = (0..2)
            .map(|me| {
                let model = model.clone();
                thread::spawn(move || model.work(me))
            })
            .collect();
        submitter.join().unwrap();
        mover.join().unwrap();
        for worker in workers {
            worker.join().unwrap();
        }
        model.finish(2);
        assert_eq!(*model.done.lock().unwrap(), vec![0, 1], "jobs reordered");
    });
}

/// Invariant S1: a submission racing a close is either accepted and counted in the number the
/// close reports, or refused; never both, never neither.
#[test]
fn loom_models_close_counts_exactly_the_accepted_jobs() {
    model(|| {
        let model = Model::new();
        let submitter = {
            let model = model.clone();
            thread::spawn(move || usize::from(model.submit(0)) + usize::from(model.submit(1)))
        };
        let closer = {
            let model = model.clone();
            thread::spawn(move || model.lane.close().unwrap())
        };
        let accepted = submitter.join().unwrap();
        let counted = closer.join().unwrap();
        assert_eq!(accepted as u64, counted);
        let mut queued = 0;
        while model.jobs.pop().is_some() {
            queued += 1;
        }
        assert_eq!(queued, accepted);
    });
}

/// A lane with one job that waits once, for the wake-up model: the job's first poll returns
/// Pending and registers its waker; another thread then wakes it, which puts its runnable in
/// the lane's ready slot and activates the lane (`LaneCore::job_woken`), racing the end of the
/// turn that polled it.
struct Waiting {
    lane: LaneState,
    /// The one queued job, until a turn starts it.
    queued: AtomicBool,
    /// A job has started and not ended (only the turn's holder touches it).
    in_progress: AtomicBool,
    /// The ready slot: the started job's runnable, once woken.
    ready: Mutex<bool>,
    /// The job's waker exists: its first poll has happened.
    registered: AtomicBool,
    /// Lane tokens in the worker's run queue.
    tokens: AtomicUsize,
    polls: AtomicUsize,
    running: AtomicUsize,
}

impl Waiting {
    /// Steps 1 and 2 for the one job, before any thread starts.
    fn new() -> Arc<Waiting> {
        let waiting = Waiting {
            lane: LaneState::new(),
            queued: AtomicBool::new(false),
            in_progress: AtomicBool::new(false),
            ready: Mutex::new(false),
            registered: AtomicBool::new(false),
            tokens: AtomicUsize::new(0),
            polls: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        };
        assert!(waiting.lane.admit());
        waiting.queued.store(true, Ordering::Release);
        if waiting.lane.activate() {
            waiting.tokens.fetch_add(1, Ordering::AcqRel);
        }
        Arc::new(waiting)
    }

    /// One turn, as `Local::run_turn` takes it (steps 3 and 4, then S4).
    fn turn(&self) -> bool {
        if !take_token(&self.tokens) {
            return false;
        }
        self.lane.begin_turn();
        assert_eq!(
            self.running.fetch_add(1, Ordering::SeqCst),
            0,
            "two turns at once"
        );
        loop {
            if self.in_progress.load(Ordering::Relaxed) {
                // Step 4: only a woken started job runs; its second poll ends it.
                if !std::mem::take(&mut *self.ready.lock().unwrap()) {
                    break;
                }
                self.polls.fetch_add(1, Ordering::SeqCst);
                self.in_progress.store(false, Ordering::Relaxed);
            } else if self.queued.swap(false, Ordering::AcqRel) {
                // The first poll: the job registers its waker and returns Pending, which
                // ends the turn whether or not the wake-up came during the poll.
                self.polls.fetch_add(1, Ordering::SeqCst);
                self.in_progress.store(true, Ordering::Relaxed);
                self.registered.store(true, Ordering::Release);
                break;
            } else {
                break;
            }
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.lane.end_turn(false) {
            self.tokens.fetch_add(1, Ordering::AcqRel);
        }
        true
    }

    /// `LaneCore::job_woken`, from another thread.
    fn wake(&self) {
        *self.ready.lock().unwrap() = true;
        if self.lane.activate() {
            self.tokens.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Lane protocol step 4 and invariant S4: a wake-up of the started job from another thread,
/// racing the end of the turn that polled it, leads to exactly one more poll, in a turn of
/// its own; the lane is never left out of the run queue with its job woken.
#[test]
fn loom_models_a_wake_racing_the_end_of_its_turn_polls_once_more() {
    model(|| {
        let waiting = Waiting::new();
        let waker = {
            let waiting = waiting.clone();
            thread::spawn(move || {
                while !waiting.registered.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                waiting.wake();
            })
        };
        let worker = {
            let waiting = waiting.clone();
            thread::spawn(move || {
                for _ in 0..3 {
                    if !waiting.turn() {
                        thread::yield_now();
                    }
                }
            })
        };
        waker.join().unwrap();
        worker.join().unwrap();
        while waiting.polls.load(Ordering::SeqCst) < 2 {
            assert!(
                waiting.turn(),
                "the job was woken but its lane is in no run queue"
            );
        }
        assert_eq!(waiting.polls.load(Ordering::SeqCst), 2);
        // Turns left over find nothing to run.
        while waiting.turn() {}
        assert_eq!(waiting.polls.load(Ordering::SeqCst), 2);
        assert!(!waiting.lane.load().is_running());
    });
}
