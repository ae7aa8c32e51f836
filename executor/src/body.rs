//! The body that every task and job runs: the tenant's future, guarded.
//!
//! A [`Guarded`] body polls the tenant's future inside `catch_unwind`, drops it in place
//! (contained) as soon as it has finished, panicked or been cancelled, and tells its [`Hooks`]
//! what happened. It holds the tenant's future once, in place, so that async-task keeps the
//! body, the future and the output in its one allocation per task without a second copy of
//! the future beside it; the pinning is projected by `pin-project-lite`, so all of it is safe
//! code.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

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

impl<T> Outcome<T> {
    fn end(&self) -> End {
        match self {
            Outcome::Value(_) => End::Completed,
            Outcome::Panicked(_) => End::Panicked,
            Outcome::Cancelled => End::Cancelled,
        }
    }
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

pin_project! {
    /// A tenant's future run to its end under hooks; see the module documentation.
    ///
    /// Dropped before it finished (a cancelled task, a job of an aborted lane), it drops the
    /// future first, contained, and then the hooks, which mark the end as cancelled.
    pub(crate) struct Guarded<F, H> {
        #[pin]
        future: Option<F>,
        // `None` once the body has finished: the hooks are dropped at that moment.
        hooks: Option<H>,
    }

    impl<F, H> PinnedDrop for Guarded<F, H> {
        fn drop(this: Pin<&mut Self>) {
            clear(this.project().future);
        }
    }
}

impl<F: Future, H: Hooks> Guarded<F, H> {
    pub(crate) fn new(future: F, hooks: H) -> Guarded<F, H> {
        Guarded {
            future: Some(future),
            hooks: Some(hooks),
        }
    }
}

impl<F: Future, H: Hooks> Future for Guarded<F, H> {
    type Output = Contained<Outcome<F::Output>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let outcome = {
            // async-task never polls a finished body; answer as if cancelled all the same.
            let Some(hooks) = this.hooks.as_mut() else {
                return Poll::Ready(Contained::new(Outcome::Cancelled));
            };
            match this.future.as_mut().as_pin_mut() {
                _ if hooks.cancel_requested() => Outcome::Cancelled,
                None => Outcome::Cancelled,
                Some(future) => match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Ready(value)) => Outcome::Value(value),
                    Ok(Poll::Pending) => {
                        hooks.pending(cx);
                        return Poll::Pending;
                    }
                    Err(payload) => Outcome::Panicked(Panic::new(payload)),
                },
            }
        };

        // Drop the finished future now, so that its drop runs here, contained, before the
        // output is handed over; then tell the hooks and drop them, which marks the end.
        clear(this.future);
        if let Some(mut hooks) = this.hooks.take() {
            hooks.finished(outcome.end());
        }
        Poll::Ready(Contained::new(outcome))
    }
}

/// Drops the future in `slot`, if still there, catching a panic from its drop.
fn clear<F>(mut slot: Pin<&mut Option<F>>) {
    if slot.is_none() {
        return;
    }
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| slot.set(None))) {
        tracing::warn!("a future panicked while being dropped; the panic was contained");
        // A payload whose own drop panics must not escape either: leak it.
        std::mem::forget(payload);
    }
}
