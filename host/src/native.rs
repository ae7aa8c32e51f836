//! Native modules: reducers written in Rust, for embedders, and to measure the executor
//! without WebAssembly in the way.
//!
//! A native reducer gets the same view of its database as a Wasm one (a [`NativeCtx`] over the
//! committed state and the call's own transaction), and the same atomicity: its writes apply
//! only if it returns `Ok`. It runs to its end in one poll, whatever the fairness mode, and the
//! budget cannot interrupt it: native code is trusted code.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::kv::{Kv, Transaction};

/// A reducer written in Rust.
pub type NativeReducer =
    Arc<dyn Fn(&mut NativeCtx<'_>, &[u8]) -> Result<Vec<u8>, NativeFailure> + Send + Sync>;

/// A module of reducers written in Rust.
#[derive(Clone, Default)]
pub struct NativeModule {
    name: String,
    reducers: BTreeMap<String, NativeReducer>,
}

impl NativeModule {
    /// An empty module named `name`.
    pub fn new(name: impl Into<String>) -> NativeModule {
        NativeModule {
            name: name.into(),
            reducers: BTreeMap::new(),
        }
    }

    /// Adds a reducer.
    pub fn reducer<F>(mut self, name: impl Into<String>, reducer: F) -> NativeModule
    where
        F: Fn(&mut NativeCtx<'_>, &[u8]) -> Result<Vec<u8>, NativeFailure> + Send + Sync + 'static,
    {
        self.reducers.insert(name.into(), Arc::new(reducer));
        self
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The reducers' names, in order.
    pub fn reducers(&self) -> impl Iterator<Item = &str> {
        self.reducers.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&NativeReducer> {
        self.reducers.get(name)
    }
}

impl fmt::Debug for NativeModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeModule")
            .field("name", &self.name)
            .field("reducers", &self.reducers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A native reducer's failure: the same as a Wasm reducer returning a negative code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeFailure {
    /// The failure code, negative by convention.
    pub code: i64,
    /// What went wrong.
    pub message: Option<String>,
}

impl NativeFailure {
    /// A failure with a code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> NativeFailure {
        NativeFailure {
            code,
            message: Some(message.into()),
        }
    }
}

/// A native reducer's view of its database during one call.
pub struct NativeCtx<'a> {
    pub(crate) kv: &'a Kv,
    pub(crate) tx: &'a mut Transaction,
    pub(crate) now_us: &'a OnceCell<i64>,
    pub(crate) database: &'a str,
}

impl NativeCtx<'_> {
    /// The value of `key`, as this call sees it.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.tx.get(self.kv, key)
    }

    /// Sets `key`; visible to others only if the call succeeds.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.tx.put(key, value);
    }

    /// Deletes `key`; returns whether it was there.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.tx.delete(self.kv, key)
    }

    /// The smallest key at or after `start`.
    pub fn scan_from(&self, start: &[u8]) -> Option<&[u8]> {
        self.tx.scan_from(self.kv, start)
    }

    /// Microseconds since the Unix epoch, read when the call first asks and the same for the
    /// rest of the call.
    pub fn now_us(&self) -> i64 {
        *self.now_us.get_or_init(crate::database::wall_clock_us)
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        self.database
    }
}
