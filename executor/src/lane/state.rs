//! The lane state word: one atomic `u64` that admits jobs and schedules the lane.
//!
//! Bits 0 to 3 are flags; bits 8 and up count submissions.
//!
//! - `SCHEDULED`: the lane sits in (or is on its way into) exactly one worker's run queue, or
//!   it was activated while running and must be queued again when its turn ends.
//! - `RUNNING`: a worker is running the lane's turn.
//! - `CLOSED`: submissions are refused; the count of submissions at the moment of closing is
//!   the number of jobs the lane accepted, ever.
//! - `ABORTED`: queued jobs are cancelled instead of run, and the running one at its next poll.
//!
//! Invariants that the lane protocol (`lane/mod.rs`) cites:
//!
//! - S1. A submission is accepted exactly when its increment of the count came before the
//!   closing `fetch_or` in the word's modification order. Both are read-modify-writes of one
//!   word, so every submission is either accepted (and will run or be cancelled) or refused
//!   (and told so), never both and never neither.
//! - S2. `activate` returns true for exactly one caller per idle period, the one that moved
//!   the lane from idle to `SCHEDULED`, and only that caller puts the lane in a run queue. So
//!   a lane is in at most one run queue.
//! - S3. `begin_turn` takes `SCHEDULED` to `RUNNING`, and only the holder of the lane's run
//!   queue entry calls it. So at most one worker runs a lane's turn at any time.
//! - S4. `end_turn` clears `RUNNING` and reports `SCHEDULED` if anyone activated the lane
//!   during the turn. An activation that came after the turn stopped looking for work is
//!   therefore never lost: either the turn saw the work, or `end_turn` sees the activation.

use crate::sync::{AtomicU64, Ordering};

const SCHEDULED: u64 = 1 << 0;
const RUNNING: u64 = 1 << 1;
const CLOSED: u64 = 1 << 2;
const ABORTED: u64 = 1 << 3;
const COUNT_SHIFT: u32 = 8;
const COUNT_ONE: u64 = 1 << COUNT_SHIFT;

/// The state word of one lane.
pub(crate) struct LaneState(AtomicU64);

/// A reading of the state word.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    pub(crate) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    pub(crate) fn is_aborted(self) -> bool {
        self.0 & ABORTED != 0
    }

    pub(crate) fn is_scheduled(self) -> bool {
        self.0 & SCHEDULED != 0
    }

    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }

    /// Submissions counted so far, refused ones included.
    pub(crate) fn submissions(self) -> u64 {
        self.0 >> COUNT_SHIFT
    }
}

impl LaneState {
    pub(crate) fn new() -> LaneState {
        LaneState(AtomicU64::new(0))
    }

    pub(crate) fn load(&self) -> Snapshot {
        // Acquire: pairs with the AcqRel read-modify-writes below.
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// Counts a submission; true if it is accepted (S1).
    pub(crate) fn admit(&self) -> bool {
        // AcqRel: totally ordered with `close` on this word (S1).
        self.0.fetch_add(COUNT_ONE, Ordering::AcqRel) & CLOSED == 0
    }

    /// Closes the lane. The first close returns the number of jobs accepted, ever (S1).
    pub(crate) fn close(&self) -> Option<u64> {
        let before = Snapshot(self.0.fetch_or(CLOSED, Ordering::AcqRel));
        (!before.is_closed()).then(|| before.submissions())
    }

    /// Closes and aborts the lane. Returns what `close` returns.
    pub(crate) fn abort(&self) -> Option<u64> {
        let before = Snapshot(self.0.fetch_or(CLOSED | ABORTED, Ordering::AcqRel));
        (!before.is_closed()).then(|| before.submissions())
    }

    /// Marks the lane as having work. True if the caller must put it in a run queue (S2).
    pub(crate) fn activate(&self) -> bool {
        // AcqRel: the release half publishes the caller's job (pushed before this call) to
        // the worker that will see SCHEDULED; the acquire half pairs with `end_turn`.
        let before = self.0.fetch_or(SCHEDULED, Ordering::AcqRel);
        before & (SCHEDULED | RUNNING) == 0
    }

    /// The worker holding the lane's run queue entry starts its turn (S3).
    pub(crate) fn begin_turn(&self) -> Snapshot {
        // AcqRel: acquire pairs with `activate` (the jobs it published) and with the previous
        // `end_turn` (the scheduling data the previous worker left).
        let before = Snapshot(self.0.fetch_xor(SCHEDULED | RUNNING, Ordering::AcqRel));
        debug_assert!(
            before.is_scheduled() && !before.is_running(),
            "bad begin {before:?}"
        );
        Snapshot(before.0 ^ (SCHEDULED | RUNNING))
    }

    /// Ends the lane's turn. `more` says the turn stopped with work left. True if the caller
    /// must put the lane in a run queue again (S4).
    pub(crate) fn end_turn(&self, more: bool) -> bool {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let again = more || current & SCHEDULED != 0;
            let next = (current & !RUNNING) | if again { SCHEDULED } else { 0 };
            // AcqRel: release publishes the scheduling data to the next worker's
            // `begin_turn`; acquire pairs with an `activate` that set SCHEDULED.
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return again,
                Err(actual) => current = actual,
            }
        }
    }
}
