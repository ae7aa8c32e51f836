//! `add_to_linker`: each preview1 function, and Sightglass's markers, defined in a
//! `wasmtime::Linker` on top of the `WasiCtx` methods; the functions not provided return
//! `ENOSYS`.

use std::io::{Seek, SeekFrom};

use wasmtime::{Caller, Extern, FuncType, Linker, Val, ValType};

use super::clock::clock_resolution;
use super::errno::{Errno, errno_code, errno_from_io};
use super::fds::OpenRequest;
use super::memory::{GuestMemory, write_list, write_list_sizes};
use super::{ProcExit, WasiCtx};

/// The import module of WASI preview1.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

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
