//! How an idle worker goes to sleep without losing a wake-up.
//!
//! A worker is woken by other threads that give it work: a task scheduled from another thread,
//! a lane activated from another thread, or a request to stop. The protocol, in steps:
//!
//! 1. A worker that found nothing to run spins for a while, re-checking its queues. Then it
//!    calls [`Sleeper::prepare`]: the state becomes `SLEEPY`, followed by a `SeqCst` fence.
//! 2. It checks, once more, every queue that another thread can fill and its stop flag. If it
//!    finds anything, it calls [`Sleeper::cancel`] and goes back to work.
//! 3. Otherwise it calls [`Sleeper::park`], which blocks until the state is `NOTIFIED`, and
//!    leaves the state `AWAKE`.
//! 4. A thread that gives the worker work first publishes it (pushes to the queue, sets the
//!    flag), then calls [`Sleeper::notify`]: a `SeqCst` fence, then a load of the state. Only
//!    on `SLEEPY` does it try to swap in `NOTIFIED`, and only the thread that wins that swap
//!    unparks the worker: one system call per sleep, however many threads notify.
//!
//! Invariant 1 (no lost wake-up): the fences of steps 1 and 4 order the worker's store of
//! `SLEEPY` against the notifier's load of the state, and the notifier's push against the
//! worker's check. So either step 2 sees the work, or step 4 sees `SLEEPY` and wakes it.
//!
//! Invariant 2 (no system call for a busy worker): a worker that is running, or spinning, is
//! `AWAKE`, and step 4 costs a notifier one fence and one load.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sync::{AtomicU8, Ordering, Thread, current_thread, fence};

const AWAKE: u8 = 0;
const SLEEPY: u8 = 1;
const NOTIFIED: u8 = 2;

/// The parking state of one worker thread.
pub(crate) struct Sleeper {
    /// `AWAKE`, `SLEEPY` or `NOTIFIED`; see the module documentation.
    state: AtomicU8,
    /// The worker's thread, set by [`Sleeper::register`] before the worker first sleeps.
    thread: OnceLock<Thread>,
}

impl Sleeper {
    pub(crate) fn new() -> Sleeper {
        Sleeper {
            state: AtomicU8::new(AWAKE),
            thread: OnceLock::new(),
        }
    }

    /// Records the calling thread as the one to unpark. Called once, by the worker itself,
    /// before its first [`Sleeper::prepare`].
    pub(crate) fn register(&self) {
        let _ = self.thread.set(current_thread());
    }

    /// Step 1: announce that the worker is about to sleep.
    pub(crate) fn prepare(&self) {
        // SeqCst store and fence: pairs with the fence in `notify` (invariant 1).
        self.state.store(SLEEPY, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Step 2, when work turned up: the worker stays awake.
    pub(crate) fn cancel(&self) {
        // Relaxed: the state only tells notifiers whether to unpark. A notifier that still
        // reads SLEEPY makes one spare unpark, and the next park returns at once; harmless.
        self.state.store(AWAKE, Ordering::Relaxed);
    }

    /// Step 3: blocks until notified, or until `timeout` has passed. Returns whether a
    /// notification arrived.
    pub(crate) fn park(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let notified = loop {
            // Acquire: pairs with the AcqRel swap in `notify`, so the worker sees what the
            // notifier published before it.
            if self.state.load(Ordering::Acquire) == NOTIFIED {
                break true;
            }
            let left = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break false,
                },
            };
            crate::sync::park(left);
        };
        // Relaxed: as in `cancel`.
        self.state.store(AWAKE, Ordering::Relaxed);
        notified
    }

    /// Step 4: wakes the worker if it is asleep or about to sleep. The caller must already have
    /// published the work. Returns whether this call unparked the thread.
    pub(crate) fn notify(&self) -> bool {
        // SeqCst fence: pairs with the fence in `prepare` (invariant 1).
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders this load; a busy worker costs no more (invariant 2).
        if self.state.load(Ordering::Relaxed) != SLEEPY {
            return false;
        }
        // AcqRel: the release half pairs with the Acquire load in `park`.
        if self
            .state
            .compare_exchange(SLEEPY, NOTIFIED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        true
    }
}
