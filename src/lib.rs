//! corelane: a thread-per-core runtime that hosts many tenant databases on one machine.
//!
//! This facade re-exports the public API of the workspace crates:
//!
//! - [`executor`]: the runtime, its workers and tasks ([`corelane_executor`]).
//! - [`host`]: the WebAssembly host ([`corelane_host`]).
//! - [`modules`]: the sample modules shipped with corelane ([`corelane_modules`]).
//!
//! ```
//! let runtime = corelane::Runtime::builder().workers(1).build()?;
//! let answer = runtime.block_on(runtime.spawn(async { 6 * 7 }))??;
//! assert_eq!(answer, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod report;
pub mod run;
pub mod scenario;

pub use corelane_executor as executor;
pub use corelane_host as host;
pub use corelane_modules as modules;

pub use corelane_executor::{Builder, Handle, JoinError, JoinHandle, Runtime};

/// The README's examples, compiled and run as doc tests so that the quick start stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
