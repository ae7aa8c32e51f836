//! Whether other threads wait for a worker's CPU, so that an idle worker spins only when its
//! spin takes time from nobody.
//!
//! An idle worker spins before it parks (worker loop step 3): work that comes within the spin
//! finds the worker awake and costs no wake-up. That pays while the CPU would otherwise idle.
//! When more threads want to run than there are CPUs (the submitters of a busy host, say),
//! the spin takes the CPU from one of them, which is often the very thread whose work the
//! worker waits for. Four pipelined submitters beside two workers on two cores did about a
//! sixth more jobs per second over ten databases with workers that parked at once, as many
//! over a thousand, and a few percent fewer over ten thousand, within the noise of the runs
//! (`docs/performance.md`).
//!
//! Linux counts, for each thread, the time it spent runnable but waiting for a CPU (the
//! second field of `/proc/thread-self/schedstat`, in nanoseconds). A worker reads its own
//! count when it goes idle, at most once per [`CHECK_INTERVAL_NS`]; if the count grew by more
//! than an eighth of the time since the last reading, its CPU is contended, and it parks
//! without spinning until a later reading says otherwise. Where the count cannot be read
//! (another system, a kernel without scheduler statistics), the worker always spins.

use std::fs::File;

/// The least time between two readings of the count.
pub(crate) const CHECK_INTERVAL_NS: u64 = 1_000_000;

/// The share of the time between readings that the worker may have waited for its CPU, as
/// `1 / WAITED_DIVISOR`, before its CPU counts as contended.
const WAITED_DIVISOR: u64 = 8;

/// One worker's view of its CPU. Made and used on the worker's own thread only.
pub(crate) struct Contention {
    /// The worker thread's `schedstat`, if it could be opened.
    schedstat: Option<File>,
    /// When the count was last read, on the runtime's clock.
    checked_at_ns: u64,
    /// The count at that reading.
    waited_ns: u64,
    contended: bool,
}

impl Contention {
    /// Opens the calling thread's count; the caller is the worker thread itself.
    pub(crate) fn for_current_thread(now_ns: u64) -> Contention {
        let schedstat = File::open("/proc/thread-self/schedstat").ok();
        let mut contention = Contention {
            schedstat,
            checked_at_ns: now_ns,
            waited_ns: 0,
            contended: false,
        };
        match contention.read_waited_ns() {
            Some(waited) => contention.waited_ns = waited,
            None => contention.schedstat = None,
        }
        contention
    }

    /// Whether other threads waited for this worker's CPU lately; reads the count again if
    /// the last reading is [`CHECK_INTERVAL_NS`] old.
    pub(crate) fn is_contended(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.checked_at_ns);
        if self.schedstat.is_none() || elapsed < CHECK_INTERVAL_NS {
            return self.contended;
        }
        if let Some(waited) = self.read_waited_ns() {
            self.contended = waited_too_long(waited.saturating_sub(self.waited_ns), elapsed);
            self.waited_ns = waited;
        }
        self.checked_at_ns = now_ns;
        self.contended
    }

    /// Reads the count afresh: a positioned read at the start regenerates the file's text.
    #[cfg(unix)]
    fn read_waited_ns(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut text = [0u8; 96];
        let read = self.schedstat.as_ref()?.read_at(&mut text, 0).ok()?;
        parse_waited_ns(&text[..read])
    }

    #[cfg(not(unix))]
    fn read_waited_ns(&self) -> Option<u64> {
        None
    }
}

/// Whether waiting `waited_ns` for the CPU over `elapsed_ns` of wall time means contention.
fn waited_too_long(waited_ns: u64, elapsed_ns: u64) -> bool {
    waited_ns.saturating_mul(WAITED_DIVISOR) > elapsed_ns
}

/// The second of the three numbers in a `schedstat` file: time spent waiting on a run queue.
fn parse_waited_ns(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_second_field_of_schedstat() {
        assert_eq!(parse_waited_ns(b"53217769 320336 26\n"), Some(320_336));
        assert_eq!(parse_waited_ns(b"53217769\n"), None);
        assert_eq!(parse_waited_ns(b"a b c"), None);
        assert_eq!(parse_waited_ns(b""), None);
    }

    #[test]
    fn waiting_over_an_eighth_of_the_time_is_contention() {
        assert!(!waited_too_long(0, CHECK_INTERVAL_NS));
        assert!(!waited_too_long(CHECK_INTERVAL_NS / 8, CHECK_INTERVAL_NS));
        assert!(waited_too_long(
            CHECK_INTERVAL_NS / 8 + 1,
            CHECK_INTERVAL_NS
        ));
        assert!(waited_too_long(u64::MAX, CHECK_INTERVAL_NS));
    }

    #[test]
    fn a_reading_comes_at_most_once_an_interval() {
        let mut contention = Contention {
            schedstat: None,
            checked_at_ns: 0,
            waited_ns: 0,
            contended: true,
        };
        // Without a count to read, the last verdict stands.
        assert!(contention.is_contended(10 * CHECK_INTERVAL_NS));

        let mut contention = Contention::for_current_thread(0);
        if cfg!(target_os = "linux") {
            assert!(
                contention.schedstat.is_some(),
                "Linux has /proc/thread-self/schedstat"
            );
        }
        // Within the interval nothing is read: the starting verdict stands.
        contention.contended = true;
        assert!(contention.is_contended(CHECK_INTERVAL_NS - 1));
        // After it, a reading decides; this test thread has barely waited over 10 s.
        if contention.schedstat.is_some() {
            assert!(!contention.is_contended(10_000 * CHECK_INTERVAL_NS));
            assert_eq!(contention.checked_at_ns, 10_000 * CHECK_INTERVAL_NS);
        }
    }
}
