//! Keeping a tenant's panic inside the job that raised it.
//!
//! A panic while polling a task or a job is caught and handed to whoever awaits it, as a
//! [`Panic`]. A panic while dropping a future or an output (in a `Drop` impl of the tenant's)
//! is caught where the drop happens and logged at warn: it never unwinds into the worker, into
//! async-task (which would abort the process for a panicking output drop), or into an
//! unrelated caller that happened to drop a handle or wake a waker.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The payload of a panic caught at a task or job boundary.
pub struct Panic(Box<dyn Any + Send + 'static>);

impl Panic {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> Panic {
        Panic(payload)
    }

    /// The panic message, when the payload is a string (as `panic!` with a message makes it).
    pub fn message(&self) -> Option<&str> {
        if let Some(message) = self.0.downcast_ref::<&'static str>() {
            Some(message)
        } else {
            self.0.downcast_ref::<String>().map(String::as_str)
        }
    }

    /// The raw payload, for `std::panic::resume_unwind`.
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.0
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Panic")
            .field(&self.message().unwrap_or("<non-string payload>"))
            .finish()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("<non-string payload>"))
    }
}

/// Drops `value`, catching a panic from its `Drop` so that it goes no further.
pub(crate) fn drop_contained<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        let panic = Panic(payload);
        tracing::warn!(
            message = panic.message().unwrap_or("<non-string payload>"),
            "a task's value panicked while being dropped; the panic was contained"
        );
        // A payload whose own drop panics must not escape either: leak it.
        std::mem::forget(panic);
    }
}

/// A value whose drop is contained (see [`drop_contained`]) wherever it happens.
///
/// Task outputs travel in one: async-task drops an output that nobody collects on whatever
/// thread finishes or drops the task, and aborts the process if that drop panics.
pub(crate) struct Contained<T>(Option<T>);

impl<T> Contained<T> {
    pub(crate) fn new(value: T) -> Contained<T> {
        Contained(Some(value))
    }

    /// Takes the value out; `None` only if it was already taken.
    pub(crate) fn take(mut self) -> Option<T> {
        self.0.take()
    }
}

impl<T> Drop for Contained<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            drop_contained(value);
        }
    }
}
