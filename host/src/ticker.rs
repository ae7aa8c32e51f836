//! The epoch ticker: one thread per engine that advances the epoch every quantum.
//!
//! Running reducers check the engine's epoch at loop heads and function entries; when it
//! passes their deadline, they yield (Epoch mode) and count a quantum against their budget.
//! The epoch also moves when the runtime asks a long call to make way (`preempt` in
//! `host.rs`), so the ticker counts its ticks apart, in [`Quanta`]: only those are quanta.
//! The same thread sweeps the databases' instance pools about once a second, dropping
//! instances idle past their timeout. It stops when the host shuts down.
//!
//! The thread sleeps between ticks, so a tick comes a little late (by the kernel's timer
//! slack, about 50 us on Linux); a late tick is not made up for, the next one is planned a
//! full quantum after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// How often the ticker sweeps the instance pools.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The number of quanta the ticker has ticked, shared with every store's epoch callback.
#[derive(Clone, Default)]
pub(crate) struct Quanta(Arc<AtomicU64>);

impl Quanta {
    /// The current count. A callback that runs on the epoch's move before the count's
    /// (they are two atomics) counts that quantum at its next callback instead.
    pub(crate) fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts the ticker, counting in `quanta`. `sweep` runs on its thread about once a
    /// second.
    pub(crate) fn start(
        engine: Engine,
        quantum: Duration,
        quanta: Quanta,
        sweep: impl Fn() + Send + 'static,
    ) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("corelane-ticker".to_owned())
            .spawn(move || {
                let mut next_tick = Instant::now() + quantum;
                let mut next_sweep = Instant::now() + SWEEP_EVERY;
                // Acquire: pairs with the Release in `stop`.
                while !stopped.load(Ordering::Acquire) {
                    let now = Instant::now();
                    if now < next_tick {
                        thread::park_timeout(next_tick - now);
                        continue;
                    }
                    quanta.0.fetch_add(1, Ordering::Relaxed);
                    engine.increment_epoch();
                    next_tick = (next_tick + quantum).max(now + quantum / 2);
                    if now >= next_sweep {
                        sweep();
                        next_sweep = now + SWEEP_EVERY;
                    }
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        // Release: pairs with the Acquire in the loop.
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}
