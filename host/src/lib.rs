//! The WebAssembly host of corelane: databases whose reducers run as jobs on corelane's
//! thread-per-core runtime.
//!
//! A [`Host`] owns one Wasmtime engine, its epoch ticker and a runtime. A [`Module`] is
//! compiled once and checked against the ABI (docs/abi.md); a [`Database`] runs one module
//! with its own state, instance pool and lane, and its reducers are atomic: their writes
//! apply only if they succeed.
//!
//! ```
//! use corelane_host::{DatabaseOptions, Host};
//!
//! let host = Host::builder()
//!     .runtime(corelane_executor::Runtime::builder().workers(1))
//!     .build()?;
//! let module = host.compile("counter", br#"
//!     (module
//!       (import "corelane" "get" (func $get (param i32 i32 i32 i32) (result i32)))
//!       (import "corelane" "put" (func $put (param i32 i32 i32 i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 0) "count")
//!       (func (export "increment") (param i32 i32) (result i64)
//!         ;; read the 8-byte counter at key "count" into offset 16, add one, write it back
//!         (drop (call $get (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8)))
//!         (i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (i64.const 1)))
//!         (call $put (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8))
//!         ;; result: 8 bytes at offset 16
//!         (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 8))))
//! "#)?;
//! let db = host.create_database("clicks", &module, DatabaseOptions::default())?;
//! db.call_blocking("increment", [])?;
//! let count = db.call_blocking("increment", [])?;
//! assert_eq!(u64::from_le_bytes(count.try_into().unwrap()), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod abi;
mod database;
mod error;
mod fairness;
mod host;
mod instance;
mod kv;
mod module;
mod native;
mod pool;
mod store;
mod ticker;
pub mod wasi;

pub use database::{Call, CommandOutput, Database, DatabaseOptions, DatabaseStats, Timed, Timing};
pub use error::{CallError, HostError, ModuleError, TrapCode};
pub use fairness::{Fairness, UnknownFairness};
pub use host::{Host, HostBuilder, MIN_QUANTUM};
pub use instance::{Instance, WasmInstance};
pub use kv::{Kv, Transaction};
pub use module::{
    ImportDescription, ImportLink, Module, ModuleDescription, ModuleKind, WasmModule,
};
pub use native::{NativeCtx, NativeFailure, NativeModule, NativeReducer};
pub use store::StoreData;
