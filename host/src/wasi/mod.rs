//! WASI preview1 (`wasi_snapshot_preview1`) for command programs, written for corelane.
//!
//! A command program is a module that exports `_start` and imports its system interface from
//! `wasi_snapshot_preview1`, as the Sightglass programs do. [`add_to_linker`] defines that
//! interface in a [`wasmtime::Linker`] with synchronous host functions only, so the same linker
//! serves `call` and `call_async`. The state of one run lives in a [`WasiCtx`]; each run gets
//! a fresh one, as each run gets a fresh instance. (The `wasmtime-wasi` crate would do this
//! too, but it depends on Tokio and drives a Tokio runtime for its host calls.)
//!
//! What a program sees:
//!
//! - Arguments and environment: `argv` holds the program's name alone; the environment is
//!   empty (`args_sizes_get`, `args_get`, `environ_sizes_get`, `environ_get`).
//! - Standard streams (`fd_write`, `fd_read`): what the program writes to descriptors 1 and 2
//!   is appended to buffers in the [`WasiCtx`], which the host takes after the run; each
//!   stream keeps at most 64 MiB, and a write past that fails with `ENOSPC`. Standard input
//!   is empty: reading it gives end of file. `fd_fdstat_get` reports the three as character
//!   devices, which C and Rust runtimes ask before they write.
//! - Files: [`WasiCtx::preopen_dir`] lends the program a host directory, read-only. The
//!   program finds it with `fd_prestat_get` and `fd_prestat_dir_name`, and opens files in it
//!   with `path_open`, which takes relative paths only. A path that is absolute, climbs out
//!   with `..`, or reaches outside through a symbolic link is refused with `ENOTCAPABLE`, as
//!   is any request to create, truncate or write (the `creat`, `excl` and `trunc` open flags,
//!   the `append` descriptor flag, or the write rights). Opened files can be read (`fd_read`),
//!   moved in (`fd_seek`, `fd_tell`), inspected (`fd_filestat_get`, `fd_fdstat_get`) and
//!   closed (`fd_close`). A directory inside opens too, and serves as the base of further
//!   relative opens, within the same bounds. The check resolves the path and then opens what
//!   it resolved to, so it assumes nobody swaps the directory's entries for symbolic links
//!   during the run: the directory is host data, not something a tenant can write to. A run
//!   holds at most 64
//!   descriptors (`EMFILE` past that), so a tenant cannot exhaust the host's files.
//! - `fd_fdstat_set_flags` records the flags and reports them back; nothing depends on them,
//!   and `append` is refused on opened files, which are read-only.
//! - Clocks (`clock_time_get`, `clock_res_get`): `realtime` is the host's system clock;
//!   `monotonic` counts from the creation of the [`WasiCtx`]. Both report a 1 ns resolution.
//!   The CPU-time clocks are not provided (`EINVAL`).
//! - `random_get` is deterministic: a SplitMix64 generator with a fixed seed, so every run
//!   receives the same bytes. That keeps benchmark runs reproducible; it is no source of
//!   secrets.
//! - `sched_yield` returns at once: the executor takes turns at its own boundaries.
//! - `proc_exit(n)` ends the run: the call into the program fails with [`ProcExit`]`(n)`, and
//!   [`exit_status`] finds the status in that error. Returning from `_start` is status 0.
//! - `bench.start` and `bench.end`, Sightglass's timing markers, do nothing.
//!
//! Every other preview1 function (`fd_pread`, `fd_readdir`, `path_filestat_get`,
//! `poll_oneoff`, the socket calls and the rest of the writing calls) is defined with its exact
//! signature and returns `ENOSYS` (52), so that programs which import them without calling them
//! still instantiate.
//!
//! Guest memory is the caller's `memory` export. Every pointer and length from the guest is
//! checked against the memory's size before use, and a range outside it gives `EFAULT` (21);
//! a module without a `memory` export gets `EFAULT` from every call that takes a pointer.
//! `fd_write` captures nothing when it fails.

mod clock;
mod errno;
mod fds;
mod filestat;
mod linker;
mod memory;
mod random;
mod streams;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::time::Instant;

use fds::{Descriptor, Directory, Target};
use random::SplitMix64;

pub use linker::add_to_linker;

/// The most bytes kept per captured stream (stdout, stderr) of one run.
const OUTPUT_LIMIT: usize = 64 << 20;

/// The most descriptors (standard streams, preopens and opened files) one run may hold.
const MAX_DESCRIPTORS: usize = 64;

/// Where `random_get` starts: "corelane" in ASCII, so every run draws the same bytes.
const RANDOM_SEED: u64 = 0x636f_7265_6c61_6e65;

/// Per-run WASI state: arguments, captured output, the preopened directory, open files.
pub struct WasiCtx {
    /// The program's arguments, `argv[0]` first, without their terminating NULs.
    arguments: Vec<String>,
    /// Everything the program wrote to descriptor 1.
    stdout: Vec<u8>,
    /// Everything the program wrote to descriptor 2.
    stderr: Vec<u8>,
    /// The guest's open descriptors by number: the standard streams at 0-2, then preopens and
    /// opened files, each at the lowest free number.
    descriptors: BTreeMap<u32, Descriptor>,
    /// The source of `random_get`'s bytes.
    random: SplitMix64,
    /// The zero of the monotonic clock.
    monotonic_origin: Instant,
}

impl WasiCtx {
    /// `argv` is `[program_name]`; the environment is empty and nothing is preopened.
    pub fn new(program_name: &str) -> WasiCtx {
        let descriptors = [Target::Stdin, Target::Stdout, Target::Stderr]
            .into_iter()
            .zip(0..)
            .map(|(target, fd)| (fd, Descriptor { target, flags: 0 }))
            .collect();
        WasiCtx {
            arguments: vec![program_name.to_owned()],
            stdout: Vec::new(),
            stderr: Vec::new(),
            descriptors,
            random: SplitMix64 { state: RANDOM_SEED },
            monotonic_origin: Instant::now(),
        }
    }

    /// Preopens `host_dir` read-only as guest directory `guest_name` (usually ".").
    /// Errors if it is not a readable directory.
    pub fn preopen_dir(&mut self, host_dir: &Path, guest_name: &str) -> io::Result<()> {
        // Canonical, so that `path_open` can tell whether a resolved path stays inside.
        let host_path = fs::canonicalize(host_dir)?;
        if !fs::metadata(&host_path)?.is_dir() {
            let message = format!("{} is not a directory", host_dir.display());
            return Err(io::Error::new(io::ErrorKind::NotADirectory, message));
        }

        // Listing it proves it is readable now rather than at the program's first open.
        fs::read_dir(&host_path)?;

        let directory = Directory {
            host_path,
            preopen_name: Some(guest_name.to_owned()),
        };
        self.insert(Target::Directory(directory), 0)
            .map(|_| ())
            .map_err(|_| io::Error::other("too many descriptors for one run"))
    }

    /// What the program wrote to standard output so far.
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// What the program wrote to standard error so far.
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// Takes the captured (stdout, stderr), leaving them empty.
    pub fn take_output(&mut self) -> (Vec<u8>, Vec<u8>) {
        (
            std::mem::take(&mut self.stdout),
            std::mem::take(&mut self.stderr),
        )
    }
}

impl Default for WasiCtx {
    fn default() -> WasiCtx {
        WasiCtx::new("program")
    }
}

impl fmt::Debug for WasiCtx {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The captured output can be megabytes: show its size, not its bytes.
        formatter
            .debug_struct("WasiCtx")
            .field("arguments", &self.arguments)
            .field("stdout_len", &self.stdout.len())
            .field("stderr_len", &self.stderr.len())
            .field("descriptors", &self.descriptors)
            .finish_non_exhaustive()
    }
}

/// The error `proc_exit` raises to end the run; the caller finds it with `exit_status`.
#[derive(Debug)]
pub struct ProcExit(pub i32);

impl fmt::Display for ProcExit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "the program exited with status {}", self.0)
    }
}

impl std::error::Error for ProcExit {}

/// If `error` (from a Wasm call) is a `proc_exit`, the status it carried.
pub fn exit_status(error: &wasmtime::Error) -> Option<i32> {
    // Wasmtime wraps a host function's error with context (the Wasm backtrace);
    // `downcast_ref` looks through the whole chain.
    error.downcast_ref::<ProcExit>().map(|exit| exit.0)
}
