//! corelane's own sample modules, hand-written in the WebAssembly text format and loaded by
//! name.
//!
//! Each sample is one file in `modules/wat/`, embedded in this crate, and follows the ABI of
//! `docs/abi.md`: it exports `memory`, `corelane_alloc` and its reducers, each of type
//! `(i32 args_ptr, i32 args_len) -> i64`, and imports only functions of module `corelane`.
//! The text is compiled to binary at run time by the `wat` crate, so building the samples needs
//! nothing but cargo.
//!
//! Load one by name, and hand its binary to the host:
//!
//! ```
//! let counter = corelane_modules::get("counter").expect("counter is a sample");
//! assert_eq!(counter.reducers, ["increment", "add", "get"]);
//! assert!(counter.wasm().starts_with(b"\0asm"));
//!
//! // The shortcut, whose error lists the samples there are.
//! assert!(corelane_modules::wasm("kv")?.starts_with(b"\0asm"));
//! let error = corelane_modules::wasm("counters").unwrap_err();
//! assert!(error.to_string().contains("counter, kv, echo"));
//! # Ok::<(), corelane_modules::UnknownSample>(())
//! ```
//!
//! # The samples
//!
//! Well-behaved ones, for the host's tests and examples:
//!
//! | name | reducers |
//! |---|---|
//! | `counter` | `increment`, `add`, `get`: a u64 under the key `"count"` |
//! | `kv` | `put`, `get`, `delete`, `scan`: keys and values as bytes |
//! | `echo` | `echo`, `len`, `log`: the arguments back, their length, a log line |
//! | `bank` | `deposit`, `balance`, `transfer`, `total`: u64 balances, and a rollback |
//! | `compute` | `spin`: an arithmetic loop of a chosen number of iterations |
//!
//! Adversarial ones, for limits and preemption:
//!
//! | name | reducers |
//! |---|---|
//! | `forever` | `spin`: loops forever |
//! | `forever_start` | `noop`, never reached: the start function loops forever |
//! | `memory_bomb` | `grow`: grows memory until refused, then traps |
//! | `recursion` | `recurse`: recurses until the stack overflows |
//! | `trap` | `unreachable`, `divide` (by zero), `oob` (an out-of-bounds load) |
//!
//! The opening comment of each file gives the byte layout of every reducer's arguments and
//! result (integers little-endian) and its failure codes. The codes mean the same in every
//! sample: -1 a key is absent, -2 a balance is insufficient, -3 the arguments are malformed,
//! -4 a u64 would overflow, -5 a stored value has the wrong length.
//!
//! # Memory
//!
//! Every sample keeps `[0, 1024)` for constant data (keys, failure messages) and runs a bump
//! allocator above it, written out at the heap section of each file. `corelane_alloc` starts a
//! fresh heap for the call's arguments, and each reducer first moves the heap to just past its
//! arguments, so an instance reused from the pool keeps nothing of earlier calls and never
//! overwrites the constants. The heap stops short of 2 GiB, so that a result pointer always
//! fits in the 31 bits that keep a packed success result non-negative.

#![forbid(unsafe_code)]

mod catalog;
mod sample;

pub use catalog::{UnknownSample, all, get, wasm};
pub use sample::Sample;
