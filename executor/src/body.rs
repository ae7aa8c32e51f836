//! The body that every task and job runs: the tenant's future, guarded.
//!
//! [`guarded`] polls the tenant's future inside `catch_unwind`, drops it in place (contained)
//! as soon as it has finished, panicked or been cancelled, and tells its [`Hooks`] what
//! happened. The body is an `async fn`, so async-task keeps it, the tenant's future and the
//! output in its one allocation per task, and all of it is safe code.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use crate::panic::{Contained, Panic};

/// How a task or job ended, with its value or panic.
pub(crate) enum Outcome<T> {
    /// The future returned this value.
    Value(T),
    /// Polling the future panicked.
    Panicked(Panic),
    /// The future was dropped before it finished.
    Cancelled,
}

/// How a task or job ended, without the value: what the hooks are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Completed,
    Panicked,
    Cancelled,
}

/// What a kind of body does around the tenant's future. Dropping the hooks marks the end of
/// the body, whichever way it ended, even if the body was never polled.
pub(crate) trait Hooks {
    /// Asked before each poll; `true` drops the future and ends the body as cancelled.
    fn cancel_requested(&mut self) -> bool {
        false
    }

    /// The future returned `Pending`.
    fn pending(&mut self, cx: &Context<'_>);

    /// The body is about to return with this ending.
    fn finished(&mut self, end: End) {
        let _ = end;
    }
}

/// Runs `future` to its end under `hooks`; see the module documentation.
pub(crate) async fn guarded<F: Future, H: Hooks>(
    future: Contained<F>,
    mut hooks: H,
) -> Contained<Outcome<F::Output>> {
    let Some(future) = future.take() else {
        hooks.finished(End::Cancelled);
        return Contained::new(Outcome::Cancelled);
    };
    let mut slot = InPlace(pin!(Some(future)));

    let outcome = poll_fn(|cx| {
        if hooks.cancel_requested() {
            return Poll::Ready(Outcome::Cancelled);
        }
        let poll = slot.poll(cx);
        if poll.is_pending() {
            hooks.pending(cx);
        }
        poll
    })
    .await;

    // Drop the finished future now, so that its drop runs here, contained, before the output
    // is handed over.
    slot.clear();
    hooks.finished(match outcome {
        Outcome::Value(_) => End::Completed,
        Outcome::Panicked(_) => End::Panicked,
        Outcome::Cancelled => End::Cancelled,
    });
    Contained::new(outcome)
}

/// A pinned future in an `Option`, so that it can be dropped in place, contained, before the
/// body itself goes away.
struct InPlace<'a, F>(Pin<&'a mut Option<F>>);

impl<F: Future> InPlace<'_, F> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<F::Output>> {
        let Some(future) = self.0.as_mut().as_pin_mut() else {
            return Poll::Ready(Outcome::Cancelled);
        };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Outcome::Value(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                // A future that panicked is not polled again; drop it now.
                self.clear();
                Poll::Ready(Outcome::Panicked(Panic::new(payload)))
            }
        }
    }
}

impl<F> InPlace<'_, F> {
    /// Drops the future, if still there, catching a panic from its drop.
    fn clear(&mut self) {
        if self.0.is_none() {
            return;
        }
        let slot = &mut self.0;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| slot.set(None))) {
            tracing::warn!("a future panicked while being dropped; the panic was contained");
            // A payload whose own drop panics must not escape either: leak it.
            std::mem::forget(payload);
        }
    }
}

impl<F> Drop for InPlace<'_, F> {
    fn drop(&mut self) {
        self.clear();
    }
}
