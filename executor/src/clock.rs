//! The runtime's clock: the system's monotonic clock, or a manual clock for tests.
//!
//! Workers read the clock to charge lanes for the time they ran (weighted fair shares), to end
//! a lane's slice when its time budget is spent, and to count busy time. Tests that check
//! shares deterministically install a [`Clock::manual`] clock and advance it from their jobs,
//! so that every scheduling decision depends only on what the test did.
//!
//! The system clock is read on every lane turn, twice for a turn of one job, so it must be
//! cheap: it reads the CPU's time-stamp counter through `quanta` where the counter is
//! invariant (about 10 ns here, against about 28 ns for `Instant::now`, see
//! docs/performance.md), and falls back to the OS's monotonic clock where it is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of monotonic time in nanoseconds since the clock was created.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// A counter, and its reading when the clock was created.
    System(quanta::Clock, u64),
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system's monotonic clock (the default).
    pub fn system() -> Clock {
        let counter = quanta::Clock::new();
        let origin = counter.raw();
        Clock {
            source: Source::System(counter, origin),
        }
    }

    /// A clock that stands still until [`Clock::advance`] moves it; for deterministic tests.
    pub fn manual() -> Clock {
        Clock {
            source: Source::Manual(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Nanoseconds since the clock was created.
    pub fn now_ns(&self) -> u64 {
        match &self.source {
            // Zero, not a wrap, should two CPUs' counters disagree slightly.
            Source::System(counter, origin) => counter.delta_as_nanos(*origin, counter.raw()),
            // Relaxed: the value carries no other data; callers only compare readings.
            Source::Manual(now) => now.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock forward by `by`, stopping at the end of its range (about 584
    /// years) rather than wrapping. Returns false, and does nothing, on the system clock,
    /// which cannot be moved.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.source {
            Source::System(..) => false,
            Source::Manual(now) => {
                let by = saturating_nanos(by);
                // Relaxed: see `now_ns`.
                let _ = now.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                    Some(now.saturating_add(by))
                });
                true
            }
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
