//! The three baselines, built the way a user would build them, each keeping corelane's rule
//! of one job at a time per database.
//!
//! - [`TokioPerCore`]: one current-thread Tokio runtime per worker thread. A database lives
//!   on one worker; its jobs are spawned through that runtime's handle and awaited.
//! - [`ExecutorPerCore`]: the same with one `async_executor::Executor` per worker thread.
//! - [`DbThread`]: one OS thread per database, fed jobs by a channel, replying through a
//!   oneshot channel.
//!
//! The two per-core baselines serialise a database's jobs with a [`SerialDb`]: every job
//! takes the database's FIFO async mutex first and holds it to its end, across any
//! suspension. Both executors run spawned tasks in FIFO order and the mutex queues waiters
//! in FIFO order, so jobs also start in submission order.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// The CPUs a worker-per-core system pins its threads to, in worker order.
pub fn cpus(workers: usize) -> Vec<core_affinity::CoreId> {
    let all = core_affinity::get_core_ids().unwrap_or_default();
    (0..workers)
        .filter_map(|worker| all.get(worker % all.len().max(1)).copied())
        .collect()
}

/// Pins the calling thread to `cpu`, if there is one (best effort, as corelane does).
pub fn pin(cpu: Option<core_affinity::CoreId>) {
    if let Some(cpu) = cpu {
        core_affinity::set_for_current(cpu);
    }
}

/// A database of a per-core async baseline: the worker it lives on, and the lock that lets
/// one job at a time have its state.
pub struct SerialDb<S> {
    /// The worker (runtime or executor index) the database's jobs are spawned on.
    pub worker: usize,
    state: Arc<Mutex<S>>,
}

impl<S> Clone for SerialDb<S> {
    fn clone(&self) -> SerialDb<S> {
        SerialDb {
            worker: self.worker,
            state: Arc::clone(&self.state),
        }
    }
}

impl<S: Send + 'static> SerialDb<S> {
    pub fn new(worker: usize, state: S) -> SerialDb<S> {
        SerialDb {
            worker,
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// A job that runs `f` with the database's state, once every earlier job has ended.
    pub fn job<T, F>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        let state = Arc::clone(&self.state);
        async move {
            let mut guard = state.lock_owned().await;
            f(&mut guard)
        }
    }

    /// A job whose future has the database's state to itself for its whole run.
    pub fn job_async<T, F, Fut>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce(OwnedMutexGuard<S>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let state = Arc::clone(&self.state);
        async move { f(state.lock_owned().await).await }
    }
}

/// One current-thread Tokio runtime per worker thread, each thread pinned to its CPU.
pub struct TokioPerCore {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl TokioPerCore {
    pub fn start(cpus: &[core_affinity::CoreId]) -> TokioPerCore {
        let mut system = TokioPerCore {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for (worker, &cpu) in cpus.iter().enumerate() {
            let (stop, stopped) = oneshot::channel::<()>();
            let (handle_sender, handle) = mpsc::channel();
            let thread = thread::Builder::new()
                .name(format!("tokio-per-core-{worker}"))
                .spawn(move || {
                    pin(Some(cpu));
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("a current-thread runtime builds");
                    handle_sender
                        .send(runtime.handle().clone())
                        .expect("the starter waits for the handle");
                    // The runtime runs its spawned tasks while this thread drives it.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })
                .expect("a worker thread starts");
            system
                .handles
                .push(handle.recv().expect("the worker sends its handle"));
            system.stops.push(stop);
            system.threads.push(thread);
        }
        system
    }

    pub fn handle(&self, worker: usize) -> &tokio::runtime::Handle {
        &self.handles[worker]
    }

    /// Spawns a job of `db` on its runtime; the handle resolves when the job has ended.
    pub fn submit<S, T, F>(&self, db: &SerialDb<S>, f: F) -> impl Future<Output = T> + use<S, T, F>
    where
        S: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = self.handles[db.worker].spawn(db.job(f));
        async move { task.await.expect("baseline jobs do not panic") }
    }
}

impl Drop for TokioPerCore {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One `async_executor::Executor` per worker thread, each thread pinned to its CPU.
pub struct ExecutorPerCore {
    executors: Vec<Arc<async_executor::Executor<'static>>>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ExecutorPerCore {
    pub fn start(cpus: &[core_affinity::CoreId]) -> ExecutorPerCore {
        let mut system = ExecutorPerCore {
            executors: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for (worker, &cpu) in cpus.iter().enumerate() {
            let executor = Arc::new(async_executor::Executor::new());
            let (stop, stopped) = oneshot::channel::<()>();
            let running = Arc::clone(&executor);
            let thread = thread::Builder::new()
                .name(format!("async-executor-{worker}"))
                .spawn(move || {
                    pin(Some(cpu));
                    futures_lite::future::block_on(running.run(async {
                        let _ = stopped.await;
                    }));
                })
                .expect("a worker thread starts");
            system.executors.push(executor);
            system.stops.push(stop);
            system.threads.push(thread);
        }
        system
    }

    pub fn executor(&self, worker: usize) -> &Arc<async_executor::Executor<'static>> {
        &self.executors[worker]
    }

    /// Spawns a job of `db` on its executor; the task resolves when the job has ended.
    pub fn submit<S, T, F>(&self, db: &SerialDb<S>, f: F) -> async_executor::Task<T>
    where
        S: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.executors[db.worker].spawn(db.job(f))
    }
}

impl Drop for ExecutorPerCore {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

type ThreadJob<S> = Box<dyn FnOnce(&mut S) + Send>;

/// One OS thread per database: it owns the database's state and runs the jobs its channel
/// brings, one at a time, in the order they were sent.
pub struct DbThread<S> {
    jobs: Option<mpsc::Sender<ThreadJob<S>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<S: 'static> DbThread<S> {
    /// Starts the thread, with `stack` bytes of stack if given and pinned to `cpu` if given;
    /// `make` builds the database's state on it.
    pub fn start(
        stack: Option<usize>,
        cpu: Option<core_affinity::CoreId>,
        make: impl FnOnce() -> S + Send + 'static,
    ) -> std::io::Result<DbThread<S>> {
        let (jobs, incoming) = mpsc::channel::<ThreadJob<S>>();
        let mut builder = thread::Builder::new().name("db-thread".into());
        if let Some(stack) = stack {
            builder = builder.stack_size(stack);
        }
        let thread = builder.spawn(move || {
            pin(cpu);
            let mut state = make();
            while let Ok(job) = incoming.recv() {
                job(&mut state);
            }
        })?;
        Ok(DbThread {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Sends a job; the returned future resolves to its value once it has run.
    pub fn submit<T, F>(&self, f: F) -> impl Future<Output = T> + use<S, T, F>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (reply, replied) = oneshot::channel();
        let job: ThreadJob<S> = Box::new(move |state| {
            let _ = reply.send(f(state));
        });
        self.jobs
            .as_ref()
            .expect("the sender lives until drop")
            .send(job)
            .expect("the database thread runs until dropped");
        async move { replied.await.expect("database threads do not panic") }
    }
}

impl<S> Drop for DbThread<S> {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queued jobs have run.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
