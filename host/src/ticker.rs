//! The epoch ticker: one thread per engine that advances the epoch every quantum.
//!
//! Running reducers check the engine's epoch at loop heads and function entries; when it
//! passes their deadline, they yield (Epoch mode) or count a quantum against their budget.
//! The same thread sweeps the databases' instance pools about once a second, dropping
//! instances idle past their timeout. It stops when the host shuts down.
//!
//! The thread sleeps between ticks, so a tick comes a little late (by the kernel's timer
//! slack, about 50 us on Linux); a late tick is not made up for, the next one is planned a
//! full quantum after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// How often the ticker sweeps the instance pools.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts the ticker. `sweep` runs on its thread about once a second.
    pub(crate) fn start(
        engine: Engine,
        quantum: Duration,
        sweep: impl Fn(Instant) + Send + 'static,
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
                    engine.increment_epoch();
                    next_tick = (next_tick + quantum).max(now + quantum / 2);
                    if now >= next_sweep {
                        sweep(now);
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
