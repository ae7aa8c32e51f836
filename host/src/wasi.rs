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
//!   relative opens, within the same bounds. The check resolves the path and then opens what it resolved to, so
//!   it assumes nobody swaps the directory's entries for symbolic links during the run: the
//!   directory is host data, not something a tenant can write to. A run holds at most 64
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, FuncType, Linker, Val, ValType};

/// The import module of WASI preview1.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

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

/// Defines every `wasi_snapshot_preview1` function, and `bench.start`/`bench.end`, in `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
) -> wasmtime::Result<()> {
    // Sightglass's timing markers: the host measures runs itself.
    linker.func_wrap("bench", "start", || {})?;
    linker.func_wrap("bench", "end", || {})?;

    linker.func_wrap(
        WASI_MODULE,
        "args_sizes_get",
        move |mut caller: Caller<'_, T>, count_out: u32, size_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                write_list_sizes(memory, &wasi.arguments, count_out, size_out)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "args_get",
        move |mut caller: Caller<'_, T>, pointers: u32, buffer: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                write_list(memory, &wasi.arguments, pointers, buffer)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "environ_sizes_get",
        move |mut caller: Caller<'_, T>, count_out: u32, size_out: u32| {
            with_guest(&mut caller, get, |_, memory| {
                write_list_sizes(memory, &[], count_out, size_out)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "environ_get",
        move |mut caller: Caller<'_, T>, pointers: u32, buffer: u32| {
            with_guest(&mut caller, get, |_, memory| {
                write_list(memory, &[], pointers, buffer)
            })
        },
    )?;

    linker.func_wrap(
        WASI_MODULE,
        "clock_res_get",
        move |mut caller: Caller<'_, T>, clock: u32, resolution_out: u32| {
            with_guest(&mut caller, get, |_, memory| {
                let resolution = clock_resolution(clock)?;
                memory.write_u64(resolution_out, resolution)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "clock_time_get",
        move |mut caller: Caller<'_, T>, clock: u32, _precision: u64, time_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let now = wasi.clock_now(clock)?;
                memory.write_u64(time_out, now)
            })
        },
    )?;

    linker.func_wrap(
        WASI_MODULE,
        "fd_write",
        move |mut caller: Caller<'_, T>, fd: u32, iovs: u32, iovs_len: u32, written_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                wasi.fd_write(memory, fd, (iovs, iovs_len), written_out)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_read",
        move |mut caller: Caller<'_, T>, fd: u32, iovs: u32, iovs_len: u32, read_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                wasi.fd_read(memory, fd, (iovs, iovs_len), read_out)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_close",
        move |mut caller: Caller<'_, T>, fd: u32| {
            let wasi = get(caller.data_mut());
            errno_code(wasi.descriptors.remove(&fd).map(|_| ()).ok_or(Errno::BADF))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_seek",
        move |mut caller: Caller<'_, T>, fd: u32, offset: i64, whence: u32, position_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let target = match whence {
                    0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::INVAL)?),
                    1 => SeekFrom::Current(offset),
                    2 => SeekFrom::End(offset),
                    _ => return Err(Errno::INVAL),
                };
                memory.range(position_out, 8)?;
                let position = wasi
                    .seekable_file(fd)?
                    .seek(target)
                    .map_err(errno_from_io)?;
                memory.write_u64(position_out, position)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_tell",
        move |mut caller: Caller<'_, T>, fd: u32, position_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let file = wasi.seekable_file(fd)?;
                let position = file.stream_position().map_err(errno_from_io)?;
                memory.write_u64(position_out, position)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_fdstat_get",
        move |mut caller: Caller<'_, T>, fd: u32, stat_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let descriptor = wasi.descriptor(fd)?;
                memory.write_bytes(stat_out, &descriptor.encode_fdstat())
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_fdstat_set_flags",
        move |mut caller: Caller<'_, T>, fd: u32, flags: u32| {
            let wasi = get(caller.data_mut());
            errno_code(wasi.fd_fdstat_set_flags(fd, flags))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_filestat_get",
        move |mut caller: Caller<'_, T>, fd: u32, stat_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let stat = wasi.descriptor(fd)?.target.filestat()?;
                memory.write_bytes(stat_out, &stat.encode())
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_prestat_get",
        move |mut caller: Caller<'_, T>, fd: u32, prestat_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let name = wasi.preopen_name(fd)?;
                let name_len = u32::try_from(name.len()).map_err(|_| Errno::NAMETOOLONG)?;

                // A prestat is a tagged union: tag 0 (a directory) at offset 0, the length of
                // its name at offset 4.
                let mut prestat = [0; 8];
                prestat[4..].copy_from_slice(&name_len.to_le_bytes());
                memory.write_bytes(prestat_out, &prestat)
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_prestat_dir_name",
        move |mut caller: Caller<'_, T>, fd: u32, name_out: u32, name_capacity: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let name = wasi.preopen_name(fd)?;
                if (name_capacity as usize) < name.len() {
                    return Err(Errno::NAMETOOLONG);
                }
                memory.write_bytes(name_out, name.as_bytes())
            })
        },
    )?;

    linker.func_wrap(
        WASI_MODULE,
        "path_open",
        move |mut caller: Caller<'_, T>,
              fd: u32,
              lookup_flags: u32,
              path: u32,
              path_len: u32,
              open_flags: u32,
              rights_base: u64,
              _rights_inheriting: u64,
              fd_flags: u32,
              opened_out: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let request = OpenRequest {
                    lookup_flags,
                    open_flags,
                    rights_base,
                    fd_flags,
                };
                wasi.path_open(memory, fd, (path, path_len), request, opened_out)
            })
        },
    )?;

    linker.func_wrap(
        WASI_MODULE,
        "random_get",
        move |mut caller: Caller<'_, T>, buffer: u32, buffer_len: u32| {
            with_guest(&mut caller, get, |wasi, memory| {
                let range = memory.range(buffer, buffer_len)?;
                wasi.random.fill(&mut memory.bytes[range]);
                Ok(())
            })
        },
    )?;
    linker.func_wrap(WASI_MODULE, "sched_yield", || Errno::SUCCESS.code())?;
    linker.func_wrap(
        WASI_MODULE,
        "proc_exit",
        |status: i32| -> wasmtime::Result<()> { Err(wasmtime::Error::new(ProcExit(status))) },
    )?;

    for (name, params) in UNSUPPORTED {
        let params = params.iter().map(|param| param.val_type());
        let signature = FuncType::new(linker.engine(), params, [ValType::I32]);
        linker.func_new(WASI_MODULE, name, signature, |_, _, results| {
            results[0] = Val::I32(Errno::NOSYS.code());
            Ok(())
        })?;
    }
    Ok(())
}

/// Runs `call` with the WASI state and the memory of the instance calling in, and turns its
/// outcome into the errno the guest receives.
fn with_guest<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: fn(&mut T) -> &mut WasiCtx,
    call: impl FnOnce(&mut WasiCtx, &mut GuestMemory<'_>) -> Result<(), Errno>,
) -> i32 {
    // Without a memory no pointer can be valid.
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return Errno::FAULT.code();
    };
    let (bytes, data) = memory.data_and_store_mut(caller);
    errno_code(call(get(data), &mut GuestMemory { bytes }))
}

/// Every preview1 function not implemented here, with its core-wasm parameters; each returns
/// an errno. The witx types lower as: descriptors, sizes, pointers, and enums and flags of up
/// to 32 bits to `i32`; 64-bit values (file sizes and offsets, timestamps, rights, directory
/// cookies) to `i64`; a string to a pointer and a length; each result but the errno to a
/// pointer where the host stores it.
const UNSUPPORTED: &[(&str, &[CoreType])] = {
    use CoreType::{I32, I64};
    &[
        ("fd_advise", &[I32, I64, I64, I32]),
        ("fd_allocate", &[I32, I64, I64]),
        ("fd_datasync", &[I32]),
        ("fd_fdstat_set_rights", &[I32, I64, I64]),
        ("fd_filestat_set_size", &[I32, I64]),
        ("fd_filestat_set_times", &[I32, I64, I64, I32]),
        ("fd_pread", &[I32, I32, I32, I64, I32]),
        ("fd_pwrite", &[I32, I32, I32, I64, I32]),
        ("fd_readdir", &[I32, I32, I32, I64, I32]),
        ("fd_renumber", &[I32, I32]),
        ("fd_sync", &[I32]),
        ("path_create_directory", &[I32, I32, I32]),
        ("path_filestat_get", &[I32, I32, I32, I32, I32]),
        (
            "path_filestat_set_times",
            &[I32, I32, I32, I32, I64, I64, I32],
        ),
        ("path_link", &[I32, I32, I32, I32, I32, I32, I32]),
        ("path_readlink", &[I32, I32, I32, I32, I32, I32]),
        ("path_remove_directory", &[I32, I32, I32]),
        ("path_rename", &[I32, I32, I32, I32, I32, I32]),
        ("path_symlink", &[I32, I32, I32, I32, I32]),
        ("path_unlink_file", &[I32, I32, I32]),
        ("poll_oneoff", &[I32, I32, I32, I32]),
        ("proc_raise", &[I32]),
        ("sock_accept", &[I32, I32, I32]),
        ("sock_recv", &[I32, I32, I32, I32, I32, I32]),
        ("sock_send", &[I32, I32, I32, I32, I32]),
        ("sock_shutdown", &[I32, I32]),
    ]
};

/// A core-wasm parameter type, spelled out in [`UNSUPPORTED`].
#[derive(Clone, Copy)]
enum CoreType {
    I32,
    I64,
}

impl CoreType {
    fn val_type(self) -> ValType {
        match self {
            CoreType::I32 => ValType::I32,
            CoreType::I64 => ValType::I64,
        }
    }
}

/// A WASI error number, returned to the guest as the `i32` result of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Errno(u16);

impl Errno {
    const SUCCESS: Errno = Errno(0);
    const ACCES: Errno = Errno(2);
    const BADF: Errno = Errno(8);
    const FAULT: Errno = Errno(21);
    const ILSEQ: Errno = Errno(25);
    const INVAL: Errno = Errno(28);
    const IO: Errno = Errno(29);
    const ISDIR: Errno = Errno(31);
    const LOOP: Errno = Errno(32);
    const MFILE: Errno = Errno(33);
    const NAMETOOLONG: Errno = Errno(37);
    const NOENT: Errno = Errno(44);
    const NOSPC: Errno = Errno(51);
    const NOSYS: Errno = Errno(52);
    const NOTDIR: Errno = Errno(54);
    const SPIPE: Errno = Errno(70);
    const NOTCAPABLE: Errno = Errno(76);

    fn code(self) -> i32 {
        i32::from(self.0)
    }
}

fn errno_code(outcome: Result<(), Errno>) -> i32 {
    outcome.err().unwrap_or(Errno::SUCCESS).code()
}

fn errno_from_io(error: io::Error) -> Errno {
    match error.kind() {
        io::ErrorKind::NotFound => Errno::NOENT,
        io::ErrorKind::PermissionDenied => Errno::ACCES,
        io::ErrorKind::NotADirectory => Errno::NOTDIR,
        io::ErrorKind::IsADirectory => Errno::ISDIR,
        io::ErrorKind::InvalidInput => Errno::INVAL,
        _ => Errno::IO,
    }
}

/// Bits of the preview1 `rights` flags.
mod rights {
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_SEEK: u64 = 1 << 2;
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    pub const FD_TELL: u64 = 1 << 5;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_ALLOCATE: u64 = 1 << 8;
    pub const PATH_OPEN: u64 = 1 << 13;
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;

    /// What an opened file can do here.
    pub const FILE: u64 = FD_READ | FD_SEEK | FD_TELL | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET;
    /// What a directory can do here.
    pub const DIRECTORY: u64 = PATH_OPEN | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET;
    /// The rights that ask to change a file, which `path_open` refuses.
    pub const WRITE: u64 = FD_WRITE | FD_ALLOCATE | FD_FILESTAT_SET_SIZE;
    /// What a directory reports its files may inherit. It includes `WRITE`, which no file
    /// gets, because wasi-libc masks the rights it requests by this set: advertising them
    /// makes an open for writing ask for them, and so fail at `path_open` with `ENOTCAPABLE`
    /// instead of yielding a descriptor that fails at its first write.
    pub const DIRECTORY_INHERITING: u64 = DIRECTORY | FILE | WRITE;
    /// A standard input stream.
    pub const STDIN: u64 = FD_READ | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET;
    /// A standard output stream.
    pub const STDOUT: u64 = FD_WRITE | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET;
}

/// Bits of the preview1 `oflags`, `fdflags` and `lookupflags`.
mod flags {
    pub const OPEN_CREATE: u32 = 1 << 0;
    pub const OPEN_DIRECTORY: u32 = 1 << 1;
    pub const OPEN_EXCLUSIVE: u32 = 1 << 2;
    pub const OPEN_TRUNCATE: u32 = 1 << 3;
    pub const FD_APPEND: u32 = 1 << 0;
    /// All five `fdflags`: append, dsync, nonblock, rsync, sync.
    pub const FD_ALL: u32 = 0b1_1111;
    pub const LOOKUP_SYMLINK_FOLLOW: u32 = 1 << 0;
}

/// The preview1 `filetype` values used here.
mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SYMBOLIC_LINK: u8 = 7;
}

/// One open descriptor of the guest.
#[derive(Debug)]
struct Descriptor {
    /// What it refers to.
    target: Target,
    /// The `fdflags` it was opened or last set with; reported back, nothing depends on them.
    flags: u16,
}

#[derive(Debug)]
enum Target {
    Stdin,
    Stdout,
    Stderr,
    Directory(Directory),
    File(File),
}

#[derive(Debug)]
struct Directory {
    /// The directory's canonical host path; nothing outside it may be opened through it.
    host_path: PathBuf,
    /// For a preopen, the name the guest knows it by; `None` for a directory the guest opened.
    preopen_name: Option<String>,
}

impl Descriptor {
    /// The 24-byte `fdstat`: filetype at 0, flags at 2, base rights at 8, inheriting at 16.
    fn encode_fdstat(&self) -> [u8; 24] {
        let (filetype, base, inheriting) = match &self.target {
            Target::Stdin => (filetype::CHARACTER_DEVICE, rights::STDIN, 0),
            Target::Stdout | Target::Stderr => (filetype::CHARACTER_DEVICE, rights::STDOUT, 0),
            Target::Directory(_) => (
                filetype::DIRECTORY,
                rights::DIRECTORY,
                rights::DIRECTORY_INHERITING,
            ),
            Target::File(_) => (filetype::REGULAR_FILE, rights::FILE, 0),
        };
        let mut fdstat = [0; 24];
        fdstat[0] = filetype;
        fdstat[2..4].copy_from_slice(&self.flags.to_le_bytes());
        fdstat[8..16].copy_from_slice(&base.to_le_bytes());
        fdstat[16..24].copy_from_slice(&inheriting.to_le_bytes());
        fdstat
    }
}

impl Target {
    fn filestat(&self) -> Result<FileStat, Errno> {
        let metadata = match self {
            // Streams have no file behind them: a character device with zero times.
            Target::Stdin | Target::Stdout | Target::Stderr => {
                return Ok(FileStat {
                    filetype: filetype::CHARACTER_DEVICE,
                    ..FileStat::default()
                });
            }
            Target::Directory(directory) => fs::metadata(&directory.host_path),
            Target::File(file) => file.metadata(),
        };
        metadata
            .map(|metadata| FileStat::of(&metadata))
            .map_err(errno_from_io)
    }
}

/// The preview1 `filestat` of a file.
#[derive(Default)]
struct FileStat {
    device: u64,
    inode: u64,
    filetype: u8,
    links: u64,
    size: u64,
    accessed_ns: u64,
    modified_ns: u64,
    changed_ns: u64,
}

impl FileStat {
    fn of(metadata: &Metadata) -> FileStat {
        let file_type = metadata.file_type();
        let filetype = if file_type.is_file() {
            filetype::REGULAR_FILE
        } else if file_type.is_dir() {
            filetype::DIRECTORY
        } else if file_type.is_symlink() {
            filetype::SYMBOLIC_LINK
        } else {
            filetype::UNKNOWN
        };
        let since_epoch_ns = |time: io::Result<SystemTime>| time.map(nanoseconds_since_epoch);
        let modified_ns = since_epoch_ns(metadata.modified()).unwrap_or(0);
        let identity = HostIdentity::of(metadata);
        FileStat {
            device: identity.device,
            inode: identity.inode,
            filetype,
            links: identity.links,
            size: metadata.len(),
            accessed_ns: since_epoch_ns(metadata.accessed()).unwrap_or(0),
            modified_ns,
            changed_ns: identity.changed_ns.unwrap_or(modified_ns),
        }
    }

    /// The 64-byte layout: eight 8-byte fields, the filetype in the low byte of the third.
    fn encode(&self) -> [u8; 64] {
        let fields = [
            self.device,
            self.inode,
            u64::from(self.filetype),
            self.links,
            self.size,
            self.accessed_ns,
            self.modified_ns,
            self.changed_ns,
        ];
        let mut filestat = [0; 64];
        for (slot, field) in filestat.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&field.to_le_bytes());
        }
        filestat
    }
}

/// What only some hosts tell about a file: where it lives, its links, its status change time.
struct HostIdentity {
    device: u64,
    inode: u64,
    links: u64,
    changed_ns: Option<u64>,
}

impl HostIdentity {
    #[cfg(unix)]
    fn of(metadata: &Metadata) -> HostIdentity {
        use std::os::unix::fs::MetadataExt;
        let changed_ns = u64::try_from(metadata.ctime()).ok().map(|seconds| {
            let nanoseconds = u64::try_from(metadata.ctime_nsec()).unwrap_or(0);
            seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(nanoseconds)
        });
        HostIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
            links: metadata.nlink(),
            changed_ns,
        }
    }

    #[cfg(not(unix))]
    fn of(_metadata: &Metadata) -> HostIdentity {
        HostIdentity {
            device: 0,
            inode: 0,
            links: 1,
            changed_ns: None,
        }
    }
}

fn nanoseconds_since_epoch(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// The `path_open` arguments that say how to open, as the guest passed them.
struct OpenRequest {
    lookup_flags: u32,
    open_flags: u32,
    rights_base: u64,
    fd_flags: u32,
}

impl WasiCtx {
    fn descriptor(&self, fd: u32) -> Result<&Descriptor, Errno> {
        self.descriptors.get(&fd).ok_or(Errno::BADF)
    }

    /// Puts `target` at the lowest free descriptor number, as POSIX `open` does.
    fn insert(&mut self, target: Target, flags: u16) -> Result<u32, Errno> {
        if self.descriptors.len() >= MAX_DESCRIPTORS {
            return Err(Errno::MFILE);
        }
        let mut fd = 0;
        for &used in self.descriptors.keys() {
            if used != fd {
                break;
            }
            fd += 1;
        }
        self.descriptors.insert(fd, Descriptor { target, flags });
        Ok(fd)
    }

    fn preopen_name(&self, fd: u32) -> Result<&str, Errno> {
        // Programs enumerate preopens from descriptor 3 up until one fails, so every other
        // descriptor must fail, and with EBADF.
        match &self.descriptor(fd)?.target {
            Target::Directory(Directory {
                preopen_name: Some(name),
                ..
            }) => Ok(name),
            _ => Err(Errno::BADF),
        }
    }

    fn seekable_file(&mut self, fd: u32) -> Result<&mut File, Errno> {
        match &mut self.descriptors.get_mut(&fd).ok_or(Errno::BADF)?.target {
            Target::File(file) => Ok(file),
            Target::Stdin | Target::Stdout | Target::Stderr => Err(Errno::SPIPE),
            Target::Directory(_) => Err(Errno::BADF),
        }
    }

    fn clock_now(&self, clock: u32) -> Result<u64, Errno> {
        match clock {
            CLOCK_REALTIME => Ok(nanoseconds_since_epoch(SystemTime::now())),
            CLOCK_MONOTONIC => {
                let elapsed = self.monotonic_origin.elapsed().as_nanos();
                Ok(u64::try_from(elapsed).unwrap_or(u64::MAX))
            }
            _ => Err(Errno::INVAL),
        }
    }

    fn fd_write(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: u32,
        io_vectors: (u32, u32),
        written_out: u32,
    ) -> Result<(), Errno> {
        let output = match self
            .descriptors
            .get(&fd)
            .map(|descriptor| &descriptor.target)
        {
            Some(Target::Stdout) => &mut self.stdout,
            Some(Target::Stderr) => &mut self.stderr,
            // Opened files are read-only, and input is not for writing.
            _ => return Err(Errno::BADF),
        };

        // Check every range first, so that a bad one leaves the output as it was.
        memory.range(written_out, 4)?;
        let total = memory.io_vectors_total(io_vectors)?;
        if output.len().saturating_add(total) > OUTPUT_LIMIT {
            return Err(Errno::NOSPC);
        }

        for index in 0..io_vectors.1 {
            let range = memory.io_vector(io_vectors.0, index)?;
            output.extend_from_slice(&memory.bytes[range]);
        }
        // `io_vectors_total` keeps the total within u32.
        memory.write_u32(written_out, total as u32)
    }

    fn fd_read(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: u32,
        io_vectors: (u32, u32),
        read_out: u32,
    ) -> Result<(), Errno> {
        let file = match &mut self.descriptors.get_mut(&fd).ok_or(Errno::BADF)?.target {
            Target::File(file) => Some(file),
            // Standard input is empty: always at its end.
            Target::Stdin => None,
            Target::Directory(_) => return Err(Errno::ISDIR),
            Target::Stdout | Target::Stderr => return Err(Errno::BADF),
        };
        memory.range(read_out, 4)?;
        memory.io_vectors_total(io_vectors)?;

        // Like readv: fill the buffers in order, and stop at the first one left short.
        let mut total = 0;
        if let Some(file) = file {
            for index in 0..io_vectors.1 {
                let range = memory.io_vector(io_vectors.0, index)?;
                let wanted = range.len();
                let read = file.read(&mut memory.bytes[range]).map_err(errno_from_io)?;
                total += read;
                if read < wanted {
                    break;
                }
            }
        }
        // At most the checked total of the buffers, which fits in u32.
        memory.write_u32(read_out, total as u32)
    }

    fn fd_fdstat_set_flags(&mut self, fd: u32, flags: u32) -> Result<(), Errno> {
        let descriptor = self.descriptors.get_mut(&fd).ok_or(Errno::BADF)?;
        if flags & !flags::FD_ALL != 0 {
            return Err(Errno::INVAL);
        }
        // Appending changes a file; opened files are read-only.
        if matches!(descriptor.target, Target::File(_)) && flags & flags::FD_APPEND != 0 {
            return Err(Errno::NOTCAPABLE);
        }
        descriptor.flags = flags as u16;
        Ok(())
    }

    fn path_open(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: u32,
        path: (u32, u32),
        request: OpenRequest,
        opened_out: u32,
    ) -> Result<(), Errno> {
        let directory = match &self.descriptor(fd)?.target {
            Target::Directory(directory) => directory,
            _ => return Err(Errno::NOTDIR),
        };
        let path = memory.bytes(path.0, path.1)?;
        let path = std::str::from_utf8(path).map_err(|_| Errno::ILSEQ)?;
        memory.range(opened_out, 4)?;

        // The directory is lent read-only: refuse anything that would change a file.
        let changing_open_flags = flags::OPEN_CREATE | flags::OPEN_EXCLUSIVE | flags::OPEN_TRUNCATE;
        if request.open_flags & changing_open_flags != 0
            || request.rights_base & rights::WRITE != 0
            || request.fd_flags & flags::FD_APPEND != 0
        {
            return Err(Errno::NOTCAPABLE);
        }
        if request.fd_flags & !flags::FD_ALL != 0 {
            return Err(Errno::INVAL);
        }

        let follow_final_symlink = request.lookup_flags & flags::LOOKUP_SYMLINK_FOLLOW != 0;
        let host_path = directory.resolve(path, follow_final_symlink)?;
        let metadata = fs::metadata(&host_path).map_err(errno_from_io)?;
        let target = if metadata.is_dir() {
            Target::Directory(Directory {
                host_path,
                preopen_name: None,
            })
        } else if request.open_flags & flags::OPEN_DIRECTORY != 0 {
            return Err(Errno::NOTDIR);
        } else if metadata.is_file() {
            // Check the limit before opening, so a refused open costs no host file.
            if self.descriptors.len() >= MAX_DESCRIPTORS {
                return Err(Errno::MFILE);
            }
            Target::File(File::open(&host_path).map_err(errno_from_io)?)
        } else {
            // Devices, FIFOs and sockets could block the worker thread or reach outside the
            // sandbox: only regular files and directories are lent.
            return Err(Errno::NOTCAPABLE);
        };

        // The flags were checked against `FD_ALL` above, so they fit in u16.
        let opened = self.insert(target, request.fd_flags as u16)?;
        memory.write_u32(opened_out, opened)
    }
}

impl Directory {
    /// Resolves the guest's `path`, relative to this directory, to a canonical host path
    /// inside it.
    fn resolve(&self, path: &str, follow_final_symlink: bool) -> Result<PathBuf, Errno> {
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        if path.contains('\0') {
            return Err(Errno::INVAL);
        }

        // Refuse by the path's own words first, so that `../x` and `/etc/passwd` are refused
        // whether or not they exist.
        let mut depth = 0_usize;
        for component in Path::new(path).components() {
            match component {
                Component::Prefix(_) | Component::RootDir => return Err(Errno::NOTCAPABLE),
                Component::CurDir => {}
                Component::ParentDir => {
                    depth = depth.checked_sub(1).ok_or(Errno::NOTCAPABLE)?;
                }
                Component::Normal(_) => depth += 1,
            }
        }

        // Then let the host resolve it, symbolic links included, and check where it led.
        let joined = self.host_path.join(path);
        if !follow_final_symlink {
            let metadata = fs::symlink_metadata(&joined).map_err(errno_from_io)?;
            if metadata.file_type().is_symlink() {
                return Err(Errno::LOOP);
            }
        }
        let resolved = fs::canonicalize(&joined).map_err(errno_from_io)?;
        if !resolved.starts_with(&self.host_path) {
            return Err(Errno::NOTCAPABLE);
        }
        Ok(resolved)
    }
}

/// The preview1 `clockid` of the system clock; 1 is the monotonic clock.
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;

/// The resolution of `clock`, or EINVAL for the CPU-time clocks, which are not provided.
fn clock_resolution(clock: u32) -> Result<u64, Errno> {
    match clock {
        CLOCK_REALTIME | CLOCK_MONOTONIC => Ok(1),
        _ => Err(Errno::INVAL),
    }
}

/// Stores the count of `list` and the bytes its NUL-terminated strings take.
fn write_list_sizes(
    memory: &mut GuestMemory<'_>,
    list: &[String],
    count_out: u32,
    size_out: u32,
) -> Result<(), Errno> {
    let size: usize = list.iter().map(|item| item.len() + 1).sum();
    let count = u32::try_from(list.len()).map_err(|_| Errno::INVAL)?;
    let size = u32::try_from(size).map_err(|_| Errno::INVAL)?;
    memory.range(size_out, 4)?;
    memory.write_u32(count_out, count)?;
    memory.write_u32(size_out, size)
}

/// Stores `list` as C does: its strings, NUL-terminated, one after another from `buffer`, and
/// a pointer to each in the array at `pointers`.
fn write_list(
    memory: &mut GuestMemory<'_>,
    list: &[String],
    pointers: u32,
    buffer: u32,
) -> Result<(), Errno> {
    let mut strings = Vec::new();
    let mut addresses = Vec::new();
    for item in list {
        let address = (buffer as usize).checked_add(strings.len());
        let address = address.and_then(|address| u32::try_from(address).ok());
        addresses.extend_from_slice(&address.ok_or(Errno::FAULT)?.to_le_bytes());
        strings.extend_from_slice(item.as_bytes());
        strings.push(0);
    }
    memory.range(pointers, addresses.len() as u32)?;
    memory.write_bytes(buffer, &strings)?;
    memory.write_bytes(pointers, &addresses)
}

/// The guest's linear memory, with every access checked against its size.
struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl GuestMemory<'_> {
    /// The host range of the guest's `len` bytes at `pointer`, or EFAULT if any lies outside.
    fn range(&self, pointer: u32, len: u32) -> Result<Range<usize>, Errno> {
        let start = pointer as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::FAULT)?;
        if end > self.bytes.len() {
            return Err(Errno::FAULT);
        }
        Ok(start..end)
    }

    fn bytes(&self, pointer: u32, len: u32) -> Result<&[u8], Errno> {
        Ok(&self.bytes[self.range(pointer, len)?])
    }

    fn write_bytes(&mut self, pointer: u32, value: &[u8]) -> Result<(), Errno> {
        let len = u32::try_from(value.len()).map_err(|_| Errno::FAULT)?;
        let range = self.range(pointer, len)?;
        self.bytes[range].copy_from_slice(value);
        Ok(())
    }

    fn write_u32(&mut self, pointer: u32, value: u32) -> Result<(), Errno> {
        self.write_bytes(pointer, &value.to_le_bytes())
    }

    fn write_u64(&mut self, pointer: u32, value: u64) -> Result<(), Errno> {
        self.write_bytes(pointer, &value.to_le_bytes())
    }

    /// The buffer that entry `index` of an `iovec` array names. An `iovec` is 8 bytes: the
    /// buffer's pointer, then its length.
    fn io_vector(&self, array: u32, index: u32) -> Result<Range<usize>, Errno> {
        let offset = (index as usize).checked_mul(8);
        let entry = offset.and_then(|offset| (array as usize).checked_add(offset));
        let entry = entry.and_then(|entry| u32::try_from(entry).ok());
        let entry = self.bytes(entry.ok_or(Errno::FAULT)?, 8)?;
        let pointer = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let len = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        self.range(pointer, len)
    }

    /// Checks an `iovec` array of `(pointer, count)` and every buffer it names, and returns
    /// their total length, which must fit the `u32` count that reports it (EINVAL otherwise,
    /// as POSIX `readv` does).
    fn io_vectors_total(&self, (array, count): (u32, u32)) -> Result<usize, Errno> {
        let array_len = count.checked_mul(8).ok_or(Errno::FAULT)?;
        self.range(array, array_len)?;
        let mut total = 0_usize;
        for index in 0..count {
            total += self.io_vector(array, index)?.len();
            if total > u32::MAX as usize {
                return Err(Errno::INVAL);
            }
        }
        Ok(total)
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): small, fast and well mixed; not cryptographic.
#[derive(Debug)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}
