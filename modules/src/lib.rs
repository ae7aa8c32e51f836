//! corelane's own sample modules, hand-written in the WebAssembly text format and loaded by
//! name.
//!
//! Each sample is one file in `modules/wat/` (the adversarial ones in `modules/hostile/`),
//! embedded in this crate, and follows the ABI of
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
//! | `memory_bomb` | `grow`, `grow_max`: grow memory until refused, then trap |
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
//!
//! # Hostile modules
//!
//! [`hostile()`] lists one module per way a tenant may attack the host, each with the typed
//! error the host must give it ([`Expected`]): an infinite loop in a reducer or in the start
//! function, memory or a table grown to the maximum, deep recursion, a huge data segment, a
//! module over 2 MiB, an unsupported proposal, an import of the wrong type, invalid bytes, a
//! missing export, and a result outside the memory. Their files are in `modules/hostile/`;
//! the four that follow the ABI and fail only when called are samples too (above).
//!
//! ```
//! use corelane_modules::{Expected, hostile};
//!
//! let bomb = hostile().iter().find(|h| h.name == "memory_bomb").unwrap();
//! assert_eq!(bomb.expected, Expected::AtCall { reducer: "grow", error: "MemoryLimit" });
//! assert!(bomb.path().ends_with("hostile/memory_bomb.wat"));
//!
//! // The one too large to store is built in memory.
//! let large = hostile().iter().find(|h| h.name == "too_large").unwrap();
//! assert!(large.wasm().len() > 2 << 20);
//! ```

#![forbid(unsafe_code)]

mod catalog;
mod hostile;
mod sample;

pub use catalog::{UnknownSample, all, get, wasm};
pub use hostile::{Expected, Hostile, hostile};
pub use sample::Sample;
