//! WASI preview1: the Sightglass command programs print what Sightglass expects, every preview1
//! function links with its witx signature, and the error paths answer with the right errno.

use std::fs;
use std::path::{Path, PathBuf};

use corelane_host::wasi::{self, WasiCtx};
use wasmtime::{Engine, Instance, Linker, Module, Store, Val, ValType};

/// The state of a test store: WASI alone.
struct Run {
    wasi: WasiCtx,
}

fn linker(engine: &Engine) -> Linker<Run> {
    let mut linker = Linker::new(engine);
    wasi::add_to_linker(&mut linker, |run: &mut Run| &mut run.wasi).expect("WASI links");
    linker
}

// ---- The Sightglass programs ----

/// The folder of real programs, or `None`, with the reason printed, when it is absent and
/// this is not CI.
fn realwasm() -> Option<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realwasm");
    if folder.is_dir() {
        return Some(folder);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is absent, and CI needs it",
        folder.display()
    );
    eprintln!("skipped: {} is absent", folder.display());
    None
}

/// What one run of a command ended with.
struct Outcome {
    status: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// How a test enters the program.
#[derive(Clone, Copy, PartialEq)]
enum Entry {
    Call,
    CallAsync,
}

/// Runs `_start` of the command at `path` in a fresh instance, with the command's own folder
/// preopened as "." if `preopen` says so.
fn run_command(path: &Path, preopen: bool, entry: Entry) -> Outcome {
    let engine = Engine::default();
    let module = Module::from_file(&engine, path).expect("the program compiles");
    let name = path.file_stem().unwrap().to_string_lossy();
    let mut wasi = WasiCtx::new(&name);
    if preopen {
        wasi.preopen_dir(path.parent().unwrap(), ".")
            .expect("the folder preopens");
    }
    let mut store = Store::new(&engine, Run { wasi });
    let linker = linker(&engine);
    let ended = match entry {
        Entry::Call => {
            let instance = linker
                .instantiate(&mut store, &module)
                .expect("every import links");
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start");
            start
                .expect("a command exports _start")
                .call(&mut store, ())
        }
        Entry::CallAsync => corelane_executor::block_on(async {
            let instance = linker
                .instantiate_async(&mut store, &module)
                .await
                .expect("every import links");
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start");
            start
                .expect("a command exports _start")
                .call_async(&mut store, ())
                .await
        })
        .expect("block_on runs the call"),
    };
    let status = match ended {
        Ok(()) => 0,
        Err(error) => wasi::exit_status(&error)
            .unwrap_or_else(|| panic!("{} failed: {error:?}", path.display())),
    };
    let (stdout, stderr) = store.data_mut().wasi.take_output();
    Outcome {
        status,
        stdout,
        stderr,
    }
}

/// Runs the program at `relative` (under the realwasm folder) and compares its output with
/// the `.stdout.expected` and `.stderr.expected` files beside it.
fn assert_prints_expected_output(relative: &str, preopen: bool, entry: Entry) {
    let Some(realwasm) = realwasm() else {
        return;
    };
    let path = realwasm.join(relative);
    let outcome = run_command(&path, preopen, entry);
    assert_eq!(outcome.status, 0, "{relative} exited with a failure status");

    let expected_stdout = fs::read(path.with_extension("stdout.expected")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        String::from_utf8_lossy(&expected_stdout),
        "stdout of {relative}"
    );
    if let Ok(expected_stderr) = fs::read(path.with_extension("stderr.expected")) {
        assert_eq!(
            String::from_utf8_lossy(&outcome.stderr),
            String::from_utf8_lossy(&expected_stderr),
            "stderr of {relative}"
        );
    }
}

#[test]
fn shootout_gimli_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-gimli.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_keccak_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-keccak.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_xchacha20_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-xchacha20.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_memmove_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-memmove.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_sieve_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-sieve.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_fib2_prints_expected_output() {
    assert_prints_expected_output("sightglass/shootout/shootout-fib2.wasm", false, Entry::Call);
}

#[test]
fn shootout_heapsort_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-heapsort.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_ed25519_prints_expected_output() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-ed25519.wasm",
        false,
        Entry::Call,
    );
}

#[test]
fn shootout_ackermann_reads_its_inputs_through_the_preopen() {
    assert_prints_expected_output(
        "sightglass/shootout/shootout-ackermann.wasm",
        true,
        Entry::Call,
    );
}

#[test]
fn host_functions_also_serve_call_async() {
    // Synchronous host functions run inside an async call too; ackermann uses the preopen.
    assert_prints_expected_output(
        "sightglass/shootout/shootout-sieve.wasm",
        false,
        Entry::CallAsync,
    );
    assert_prints_expected_output(
        "sightglass/shootout/shootout-ackermann.wasm",
        true,
        Entry::CallAsync,
    );
}

#[test]
fn noop_benchmark_prints_expected_output() {
    assert_prints_expected_output("sightglass/noop/benchmark.wasm", false, Entry::Call);
}

// ---- Every function, called one by one from a small guest ----

/// Every preview1 function with its core-wasm parameters and results, written from the witx
/// (WebAssembly/WASI, legacy/preview1/witx/wasi_snapshot_preview1.witx), apart from the host's
/// own table, so that a mistake in either shows up as a link failure.
const PREVIEW1: &[(&str, &str, &str)] = &[
    ("args_get", "i32 i32", "i32"),
    ("args_sizes_get", "i32 i32", "i32"),
    ("environ_get", "i32 i32", "i32"),
    ("environ_sizes_get", "i32 i32", "i32"),
    ("clock_res_get", "i32 i32", "i32"),
    ("clock_time_get", "i32 i64 i32", "i32"),
    ("fd_advise", "i32 i64 i64 i32", "i32"),
    ("fd_allocate", "i32 i64 i64", "i32"),
    ("fd_close", "i32", "i32"),
    ("fd_datasync", "i32", "i32"),
    ("fd_fdstat_get", "i32 i32", "i32"),
    ("fd_fdstat_set_flags", "i32 i32", "i32"),
    ("fd_fdstat_set_rights", "i32 i64 i64", "i32"),
    ("fd_filestat_get", "i32 i32", "i32"),
    ("fd_filestat_set_size", "i32 i64", "i32"),
    ("fd_filestat_set_times", "i32 i64 i64 i32", "i32"),
    ("fd_pread", "i32 i32 i32 i64 i32", "i32"),
    ("fd_prestat_get", "i32 i32", "i32"),
    ("fd_prestat_dir_name", "i32 i32 i32", "i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32", "i32"),
    ("fd_read", "i32 i32 i32 i32", "i32"),
    ("fd_readdir", "i32 i32 i32 i64 i32", "i32"),
    ("fd_renumber", "i32 i32", "i32"),
    ("fd_seek", "i32 i64 i32 i32", "i32"),
    ("fd_sync", "i32", "i32"),
    ("fd_tell", "i32 i32", "i32"),
    ("fd_write", "i32 i32 i32 i32", "i32"),
    ("path_create_directory", "i32 i32 i32", "i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32", "i32"),
    (
        "path_filestat_set_times",
        "i32 i32 i32 i32 i64 i64 i32",
        "i32",
    ),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32", "i32"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", "i32"),
    ("path_readlink", "i32 i32 i32 i32 i32 i32", "i32"),
    ("path_remove_directory", "i32 i32 i32", "i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32", "i32"),
    ("path_symlink", "i32 i32 i32 i32 i32", "i32"),
    ("path_unlink_file", "i32 i32 i32", "i32"),
    ("poll_oneoff", "i32 i32 i32 i32", "i32"),
    ("proc_exit", "i32", ""),
    ("proc_raise", "i32", "i32"),
    ("sched_yield", "", "i32"),
    ("random_get", "i32 i32", "i32"),
    ("sock_accept", "i32 i32 i32", "i32"),
    ("sock_recv", "i32 i32 i32 i32 i32 i32", "i32"),
    ("sock_send", "i32 i32 i32 i32 i32", "i32"),
    ("sock_shutdown", "i32 i32", "i32"),
];

/// The preview1 functions the host leaves out; each must answer ENOSYS.
const UNIMPLEMENTED: &[&str] = &[
    "fd_advise",
    "fd_allocate",
    "fd_datasync",
    "fd_fdstat_set_rights",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_pwrite",
    "fd_readdir",
    "fd_renumber",
    "fd_sync",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_raise",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EISDIR: i32 = 31;
const ELOOP: i32 = 32;
const ENOENT: i32 = 44;
const ENOSYS: i32 = 52;
const ENOTDIR: i32 = 54;
const ESPIPE: i32 = 70;
const ENOTCAPABLE: i32 = 76;

const RIGHT_FD_READ: i64 = 1 << 1;
const RIGHT_FD_WRITE: i64 = 1 << 6;
const OPEN_CREATE: i64 = 1;
const OPEN_DIRECTORY: i64 = 2;
const OPEN_TRUNCATE: i64 = 8;
const FD_APPEND: i64 = 1;
const LOOKUP_SYMLINK_FOLLOW: i64 = 1;

/// The descriptor of the first preopen.
const PREOPEN: i64 = 3;

/// The text of a module that imports every preview1 function, the two bench markers and
/// exports a one-page memory and, under each function's own name, a function that forwards
/// to it: the host sees a Wasm caller with a memory, as it does in a real program.
fn forwarding_module() -> String {
    let signature = |params: &str, results: &str| {
        let mut signature = String::new();
        if !params.is_empty() {
            signature += &format!("(param {params}) ");
        }
        if !results.is_empty() {
            signature += &format!("(result {results})");
        }
        signature
    };

    let mut wat = String::from("(module\n");
    wat += "(import \"bench\" \"start\" (func))\n(import \"bench\" \"end\" (func))\n";
    for (name, params, results) in PREVIEW1 {
        let signature = signature(params, results);
        wat +=
            &format!("(import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} {signature}))\n");
    }
    wat += "(memory (export \"memory\") 1)\n";
    for (name, params, results) in PREVIEW1 {
        let signature = signature(params, results);
        let arguments: String = (0..params.split_whitespace().count())
            .map(|index| format!("(local.get {index}) "))
            .collect();
        wat += &format!("(func (export \"{name}\") {signature} (call ${name} {arguments}))\n");
    }
    wat + ")"
}

/// An instance of the forwarding module, and the store it lives in.
struct Guest {
    store: Store<Run>,
    instance: Instance,
}

impl Guest {
    fn new(wasi: WasiCtx) -> Guest {
        let engine = Engine::default();
        let module = Module::new(&engine, forwarding_module()).expect("the guest compiles");
        let mut store = Store::new(&engine, Run { wasi });
        let instance = linker(&engine)
            .instantiate(&mut store, &module)
            .expect("every preview1 function links with its witx signature");
        Guest { store, instance }
    }

    /// Calls the preview1 function `name` with `arguments`, each cast to its parameter type;
    /// returns its errno (0 for `proc_exit`, which has none).
    fn call(&mut self, name: &str, arguments: &[i64]) -> wasmtime::Result<i32> {
        let function = self.instance.get_func(&mut self.store, name).unwrap();
        let signature = function.ty(&self.store);
        assert_eq!(signature.params().len(), arguments.len(), "arity of {name}");
        let params: Vec<Val> = signature
            .params()
            .zip(arguments)
            .map(|(param, &argument)| match param {
                ValType::I64 => Val::I64(argument),
                _ => Val::I32(argument as i32),
            })
            .collect();
        let mut results = vec![Val::I32(0); signature.results().len()];
        function.call(&mut self.store, &params, &mut results)?;
        Ok(results.first().map_or(0, |result| result.unwrap_i32()))
    }

    /// Calls `name` and returns its errno; the call must not fail.
    fn errno(&mut self, name: &str, arguments: &[i64]) -> i32 {
        self.call(name, arguments)
            .unwrap_or_else(|error| panic!("{name} failed: {error:?}"))
    }

    fn memory(&mut self) -> wasmtime::Memory {
        self.instance.get_memory(&mut self.store, "memory").unwrap()
    }

    fn write(&mut self, address: usize, bytes: &[u8]) {
        let memory = self.memory();
        memory.write(&mut self.store, address, bytes).unwrap();
    }

    fn read(&mut self, address: usize, len: usize) -> Vec<u8> {
        let memory = self.memory();
        memory.data(&self.store)[address..address + len].to_vec()
    }

    fn read_u32(&mut self, address: usize) -> u32 {
        u32::from_le_bytes(self.read(address, 4).try_into().unwrap())
    }

    fn read_u64(&mut self, address: usize) -> u64 {
        u64::from_le_bytes(self.read(address, 8).try_into().unwrap())
    }

    /// Writes an `iovec` (pointer, length) at `address`.
    fn write_io_vector(&mut self, address: usize, buffer: u32, len: u32) {
        let mut entry = buffer.to_le_bytes().to_vec();
        entry.extend_from_slice(&len.to_le_bytes());
        self.write(address, &entry);
    }

    /// Opens `path` through the preopen with read rights, following symbolic links; returns
    /// the errno and, on success, the new descriptor.
    fn open(&mut self, path: &str, open_flags: i64, rights: i64, fd_flags: i64) -> (i32, i64) {
        const PATH: usize = 1024;
        const OPENED: usize = 2048;
        self.write(PATH, path.as_bytes());
        let errno = self.errno(
            "path_open",
            &[
                PREOPEN,
                LOOKUP_SYMLINK_FOLLOW,
                PATH as i64,
                path.len() as i64,
                open_flags,
                rights,
                rights,
                fd_flags,
                OPENED as i64,
            ],
        );
        (errno, i64::from(self.read_u32(OPENED)))
    }

    fn wasi(&mut self) -> &mut WasiCtx {
        &mut self.store.data_mut().wasi
    }
}

/// A fresh, empty directory for one test, under the system's temporary directory.
fn scratch_directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("corelane-wasi-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).unwrap();
    directory
}

/// A guest with `directory` preopened as "." and, inside it, `inside.txt` holding "inside
/// text" and an empty folder `sub`.
fn guest_with_preopen(directory: &Path) -> Guest {
    fs::write(directory.join("inside.txt"), "inside text").unwrap();
    fs::create_dir_all(directory.join("sub")).unwrap();
    let mut wasi = WasiCtx::new("guest");
    wasi.preopen_dir(directory, ".").unwrap();
    Guest::new(wasi)
}

#[test]
fn every_preview1_function_links_with_its_witx_signature() {
    // Instantiating checks each import's type; a wrong signature fails here.
    let mut guest = Guest::new(WasiCtx::default());
    assert_eq!(guest.errno("sched_yield", &[]), ESUCCESS);
}

#[test]
fn unimplemented_functions_return_enosys() {
    let mut guest = Guest::new(WasiCtx::default());
    for name in UNIMPLEMENTED {
        let (_, params, _) = PREVIEW1.iter().find(|(known, ..)| known == name).unwrap();
        let arguments = vec![0; params.split_whitespace().count()];
        assert_eq!(guest.errno(name, &arguments), ENOSYS, "{name}");
    }
}

#[test]
fn out_of_range_pointers_give_efault() {
    let mut guest = Guest::new(WasiCtx::default());
    let page = 65536;

    // An iovec array that runs past the end of memory.
    assert_eq!(guest.errno("fd_write", &[1, page - 4, 1, 0]), EFAULT);
    // A buffer that runs past the end, and one whose end wraps around 2^32.
    guest.write_io_vector(0, 65530, 100);
    assert_eq!(guest.errno("fd_write", &[1, 0, 1, 16]), EFAULT);
    guest.write_io_vector(0, 0xffff_fff0, 0x20);
    assert_eq!(guest.errno("fd_write", &[1, 0, 1, 16]), EFAULT);
    // A good buffer, but nowhere to store the count: nothing is captured.
    guest.write(32, b"hello");
    guest.write_io_vector(0, 32, 5);
    assert_eq!(guest.errno("fd_write", &[1, 0, 1, page]), EFAULT);
    assert_eq!(guest.wasi().stdout(), b"");

    assert_eq!(guest.errno("args_sizes_get", &[page - 2, 0]), EFAULT);
    assert_eq!(guest.errno("args_get", &[0, page]), EFAULT);
    assert_eq!(guest.errno("random_get", &[page - 10, 11]), EFAULT);
    assert_eq!(guest.errno("clock_time_get", &[0, 0, page - 7]), EFAULT);
    assert_eq!(guest.errno("fd_fdstat_get", &[1, 0xffff_ffff]), EFAULT);
    assert_eq!(guest.errno("fd_filestat_get", &[1, page - 63]), EFAULT);

    // The same write with good pointers goes through.
    assert_eq!(guest.errno("fd_write", &[1, 0, 1, 16]), ESUCCESS);
    assert_eq!(guest.read_u32(16), 5);
    assert_eq!(guest.wasi().stdout(), b"hello");
}

#[test]
fn writes_are_captured_per_stream_and_other_descriptors_refuse_them() {
    let mut guest = Guest::new(WasiCtx::default());
    guest.write(100, b"out!err!");
    guest.write_io_vector(0, 100, 3);
    guest.write_io_vector(8, 103, 1);
    guest.write_io_vector(16, 104, 4);

    assert_eq!(guest.errno("fd_write", &[1, 0, 2, 64]), ESUCCESS);
    assert_eq!(guest.read_u32(64), 4);
    assert_eq!(guest.errno("fd_write", &[2, 16, 1, 64]), ESUCCESS);
    assert_eq!(guest.errno("fd_write", &[0, 0, 1, 64]), EBADF);
    assert_eq!(guest.errno("fd_write", &[7, 0, 1, 64]), EBADF);

    assert_eq!(
        guest.wasi().take_output(),
        (b"out!".to_vec(), b"err!".to_vec())
    );
    assert_eq!(guest.wasi().stdout(), b"");
}

#[test]
fn proc_exit_ends_the_run_with_its_status() {
    let mut guest = Guest::new(WasiCtx::default());
    let error = guest.call("proc_exit", &[3]).unwrap_err();
    assert_eq!(wasi::exit_status(&error), Some(3));
    assert_eq!(wasi::exit_status(&wasmtime::Error::msg("a trap")), None);
}

#[test]
fn arguments_hold_the_program_name_and_the_environment_is_empty() {
    let mut guest = Guest::new(WasiCtx::new("fib2"));
    assert_eq!(guest.errno("args_sizes_get", &[0, 4]), ESUCCESS);
    assert_eq!((guest.read_u32(0), guest.read_u32(4)), (1, 5));
    assert_eq!(guest.errno("args_get", &[16, 32]), ESUCCESS);
    assert_eq!(guest.read_u32(16), 32);
    assert_eq!(guest.read(32, 5), b"fib2\0");

    assert_eq!(guest.errno("environ_sizes_get", &[0, 4]), ESUCCESS);
    assert_eq!((guest.read_u32(0), guest.read_u32(4)), (0, 0));
    assert_eq!(guest.errno("environ_get", &[16, 32]), ESUCCESS);
}

#[test]
fn clocks_advance_and_cpu_time_clocks_are_refused() {
    let mut guest = Guest::new(WasiCtx::default());
    assert_eq!(guest.errno("clock_time_get", &[1, 0, 0]), ESUCCESS);
    let first = guest.read_u64(0);
    std::thread::sleep(std::time::Duration::from_millis(2));
    assert_eq!(guest.errno("clock_time_get", &[1, 0, 0]), ESUCCESS);
    assert!(guest.read_u64(0) >= first + 2_000_000);

    // Realtime counts from 1970: later than 2020-01-01.
    assert_eq!(guest.errno("clock_time_get", &[0, 0, 0]), ESUCCESS);
    assert!(guest.read_u64(0) > 1_577_836_800 * 1_000_000_000);

    assert_eq!(guest.errno("clock_res_get", &[1, 8]), ESUCCESS);
    assert!(guest.read_u64(8) > 0);
    assert_eq!(guest.errno("clock_time_get", &[2, 0, 0]), EINVAL);
    assert_eq!(guest.errno("clock_res_get", &[3, 0]), EINVAL);
}

#[test]
fn random_bytes_are_the_same_in_every_run() {
    let mut draws = Vec::new();
    for _ in 0..2 {
        let mut guest = Guest::new(WasiCtx::default());
        assert_eq!(guest.errno("random_get", &[0, 37]), ESUCCESS);
        draws.push(guest.read(0, 37));
    }
    assert_eq!(draws[0], draws[1]);
    assert!(draws[0].iter().any(|&byte| byte != 0));
}

#[test]
fn standard_streams_and_preopens_describe_themselves() {
    let directory = scratch_directory("describe");
    let mut guest = guest_with_preopen(&directory);

    // fdstat: the filetype is the first byte; 2 is a character device, 3 a directory.
    assert_eq!(guest.errno("fd_fdstat_get", &[1, 0]), ESUCCESS);
    assert_eq!(guest.read(0, 1), [2]);
    assert_eq!(guest.errno("fd_fdstat_get", &[PREOPEN, 0]), ESUCCESS);
    assert_eq!(guest.read(0, 1), [3]);
    assert_eq!(guest.errno("fd_fdstat_get", &[9, 0]), EBADF);
    assert_eq!(guest.errno("fd_fdstat_set_flags", &[1, 4]), ESUCCESS);
    assert_eq!(guest.errno("fd_fdstat_get", &[1, 0]), ESUCCESS);
    assert_eq!(guest.read(2, 2), [4, 0]);

    // The preopen is found by enumerating from 3 until EBADF.
    assert_eq!(guest.errno("fd_prestat_get", &[PREOPEN, 0]), ESUCCESS);
    assert_eq!(guest.read(0, 1), [0]);
    assert_eq!(guest.read_u32(4), 1);
    assert_eq!(
        guest.errno("fd_prestat_dir_name", &[PREOPEN, 16, 1]),
        ESUCCESS
    );
    assert_eq!(guest.read(16, 1), b".");
    assert_eq!(guest.errno("fd_prestat_get", &[PREOPEN + 1, 0]), EBADF);
    assert_eq!(guest.errno("fd_prestat_get", &[1, 0]), EBADF);

    // Standard input is empty.
    guest.write_io_vector(0, 64, 16);
    assert_eq!(guest.errno("fd_read", &[0, 0, 1, 8]), ESUCCESS);
    assert_eq!(guest.read_u32(8), 0);
    assert_eq!(guest.errno("fd_seek", &[1, 0, 0, 8]), ESPIPE);
    let _ = fs::remove_dir_all(&directory);
}

#[test]
fn path_open_refuses_paths_that_leave_the_preopen() {
    let directory = scratch_directory("escape");
    let mut guest = guest_with_preopen(&directory);

    for path in ["../x", "/etc/passwd", "sub/../../x", "./sub/../.."] {
        assert_eq!(
            guest.open(path, 0, RIGHT_FD_READ, 0).0,
            ENOTCAPABLE,
            "{path}"
        );
    }

    // Symbolic links that lead out are refused, and one that stays in is followed.
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("/etc", directory.join("etc")).unwrap();
        symlink("../../..", directory.join("sub/up")).unwrap();
        symlink("inside.txt", directory.join("alias.txt")).unwrap();
        for path in ["etc/passwd", "etc", "sub/up"] {
            assert_eq!(
                guest.open(path, 0, RIGHT_FD_READ, 0).0,
                ENOTCAPABLE,
                "{path}"
            );
        }
        assert_eq!(guest.open("alias.txt", 0, RIGHT_FD_READ, 0).0, ESUCCESS);
    }

    // Inside, missing and present files answer as a file system does.
    assert_eq!(guest.open("missing.txt", 0, RIGHT_FD_READ, 0).0, ENOENT);
    assert_eq!(
        guest.open("sub/../inside.txt", 0, RIGHT_FD_READ, 0).0,
        ESUCCESS
    );
    assert_eq!(guest.open("inside.txt", OPEN_DIRECTORY, 0, 0).0, ENOTDIR);
    let _ = fs::remove_dir_all(&directory);
}

#[test]
fn path_open_refuses_to_create_truncate_or_write() {
    let directory = scratch_directory("write");
    let mut guest = guest_with_preopen(&directory);

    assert_eq!(
        guest.open("new.txt", OPEN_CREATE, RIGHT_FD_READ, 0).0,
        ENOTCAPABLE
    );
    assert_eq!(
        guest.open("inside.txt", OPEN_TRUNCATE, RIGHT_FD_READ, 0).0,
        ENOTCAPABLE
    );
    assert_eq!(
        guest.open("inside.txt", 0, RIGHT_FD_WRITE, 0).0,
        ENOTCAPABLE
    );
    assert_eq!(
        guest.open("inside.txt", 0, RIGHT_FD_READ, FD_APPEND).0,
        ENOTCAPABLE
    );

    assert!(!directory.join("new.txt").exists());
    assert_eq!(
        fs::read(directory.join("inside.txt")).unwrap(),
        b"inside text"
    );
    let _ = fs::remove_dir_all(&directory);
}

#[test]
fn path_open_without_symlink_follow_refuses_a_final_symbolic_link() {
    let directory = scratch_directory("nofollow");
    let mut guest = guest_with_preopen(&directory);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("inside.txt", directory.join("alias.txt")).unwrap();
        guest.write(1024, b"alias.txt");
        let arguments = [
            PREOPEN,
            0,
            1024,
            9,
            0,
            RIGHT_FD_READ,
            RIGHT_FD_READ,
            0,
            2048,
        ];
        assert_eq!(guest.errno("path_open", &arguments), ELOOP);
    }
    assert_eq!(
        guest.errno("path_open", &[0, 0, 1024, 9, 0, 0, 0, 0, 2048]),
        ENOTDIR
    );
    assert_eq!(
        guest.errno("path_open", &[PREOPEN, 0, 65530, 9, 0, 0, 0, 0, 0]),
        EFAULT
    );
    let _ = fs::remove_dir_all(&directory);
}

#[test]
fn opened_file_reads_seeks_tells_and_closes() {
    let directory = scratch_directory("read");
    let mut guest = guest_with_preopen(&directory);
    let (errno, file) = guest.open("inside.txt", 0, RIGHT_FD_READ, 0);
    assert_eq!(errno, ESUCCESS);
    assert!(file > PREOPEN);

    // fdstat: a regular file (4); filestat: the size is the fifth 8-byte field.
    assert_eq!(guest.errno("fd_fdstat_get", &[file, 0]), ESUCCESS);
    assert_eq!(guest.read(0, 1), [4]);
    assert_eq!(guest.errno("fd_filestat_get", &[file, 0]), ESUCCESS);
    assert_eq!(guest.read(16, 1), [4]);
    assert_eq!(guest.read_u64(32), 11);

    // Two buffers of 6 and 2 bytes, then a read at the end of the file.
    guest.write_io_vector(0, 100, 6);
    guest.write_io_vector(8, 200, 2);
    assert_eq!(guest.errno("fd_read", &[file, 0, 2, 16]), ESUCCESS);
    assert_eq!(guest.read_u32(16), 8);
    assert_eq!(guest.read(100, 6), b"inside");
    assert_eq!(guest.read(200, 2), b" t");
    assert_eq!(guest.errno("fd_tell", &[file, 16]), ESUCCESS);
    assert_eq!(guest.read_u64(16), 8);
    assert_eq!(guest.errno("fd_read", &[file, 0, 1, 16]), ESUCCESS);
    assert_eq!(guest.read_u32(16), 3);
    assert_eq!(guest.errno("fd_read", &[file, 0, 1, 16]), ESUCCESS);
    assert_eq!(guest.read_u32(16), 0);

    // Seek from the end, then from the start; a negative position is refused.
    assert_eq!(guest.errno("fd_seek", &[file, -4, 2, 16]), ESUCCESS);
    assert_eq!(guest.read_u64(16), 7);
    assert_eq!(guest.errno("fd_seek", &[file, 2, 0, 16]), ESUCCESS);
    assert_eq!(guest.read_u64(16), 2);
    assert_eq!(guest.errno("fd_seek", &[file, -1, 0, 16]), EINVAL);
    assert_eq!(guest.errno("fd_seek", &[file, 0, 3, 16]), EINVAL);
    assert_eq!(guest.errno("fd_write", &[file, 0, 1, 16]), EBADF);

    // A directory opens too, reads as one, and opens what it holds, but nothing above it.
    let (errno, sub) = guest.open("sub", OPEN_DIRECTORY, RIGHT_FD_READ, 0);
    assert_eq!(errno, ESUCCESS);
    assert_eq!(guest.errno("fd_read", &[sub, 0, 1, 16]), EISDIR);
    assert_eq!(guest.errno("fd_prestat_get", &[sub, 0]), EBADF);
    fs::write(directory.join("sub/deeper.txt"), "deeper").unwrap();
    for (path, expected) in [("deeper.txt", ESUCCESS), ("../inside.txt", ENOTCAPABLE)] {
        guest.write(1024, path.as_bytes());
        let arguments = [
            sub,
            1,
            1024,
            path.len() as i64,
            0,
            RIGHT_FD_READ,
            0,
            0,
            2048,
        ];
        assert_eq!(guest.errno("path_open", &arguments), expected, "{path}");
    }

    assert_eq!(guest.errno("fd_close", &[file]), ESUCCESS);
    assert_eq!(guest.errno("fd_close", &[file]), EBADF);
    assert_eq!(guest.errno("fd_read", &[file, 0, 1, 16]), EBADF);
    let _ = fs::remove_dir_all(&directory);
}

#[test]
fn preopen_dir_refuses_what_is_not_a_directory() {
    let directory = scratch_directory("not-a-directory");
    fs::write(directory.join("file"), "x").unwrap();
    let mut wasi = WasiCtx::default();
    assert!(wasi.preopen_dir(&directory.join("file"), ".").is_err());
    assert!(wasi.preopen_dir(&directory.join("missing"), ".").is_err());
    assert!(wasi.preopen_dir(&directory, ".").is_ok());
    let _ = fs::remove_dir_all(&directory);
}
