//! The host imports of the corelane ABI (module `corelane`); see docs/abi.md.
//!
//! Every import checks each pointer and length it is given against the memory's size before
//! touching it, and fails the call with a [`GuestError`] naming itself when one does not fit.
//! The imports reach the database only through the call in progress (`StoreData::call`): the
//! database's committed state, lent for the call, and the call's own transaction.

use std::ops::Range;

use wasmtime::{Caller, Linker};

use crate::database::wall_clock_us;
use crate::store::{CallState, StoreData};

/// A guest's misuse of a host import; it ends the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GuestError {
    #[error("`{import}` was given {ptr:#x}+{len}, outside the memory of {memory} bytes")]
    BadPointer {
        import: &'static str,
        ptr: u32,
        len: u32,
        memory: u64,
    },
    #[error("`{import}` was called outside a reducer call (from a start function?)")]
    OutsideCall { import: &'static str },
    #[error("`{import}` needs the module to export its memory as `memory`")]
    NoMemory { import: &'static str },
}

/// The range `ptr..ptr+len` of a memory of `size` bytes, if it fits.
pub(crate) fn range(
    import: &'static str,
    ptr: i32,
    len: i32,
    size: usize,
) -> Result<Range<usize>, GuestError> {
    let bad = || GuestError::BadPointer {
        import,
        ptr: ptr as u32,
        len: len as u32,
        memory: size as u64,
    };
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize).ok_or_else(bad)?;
    if end > size {
        return Err(bad());
    }
    Ok(start..end)
}

/// The memory and the call in progress, for an import.
fn parts<'a>(
    caller: &'a mut Caller<'_, StoreData>,
    import: &'static str,
) -> Result<(&'a mut [u8], &'a mut CallState), GuestError> {
    let (bytes, data) = memory_and_data(caller, import)?;
    let call = data
        .call
        .as_mut()
        .ok_or(GuestError::OutsideCall { import })?;
    Ok((bytes, call))
}

/// The guest's memory and the store's data, for an import that needs more than the call.
fn memory_and_data<'a>(
    caller: &'a mut Caller<'_, StoreData>,
    import: &'static str,
) -> Result<(&'a mut [u8], &'a mut StoreData), GuestError> {
    let memory = caller
        .data()
        .memory
        .ok_or(GuestError::NoMemory { import })?;
    Ok(memory.data_and_store_mut(caller))
}

/// Copies as much of `value` as fits in the guest's buffer; returns the full length.
fn copy_out(memory: &mut [u8], out: Range<usize>, value: &[u8]) -> i32 {
    let n = value.len().min(out.len());
    memory[out.start..out.start + n].copy_from_slice(&value[..n]);
    value.len() as i32
}

/// Defines the imports in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "corelane",
        "get",
        |mut caller: Caller<'_, StoreData>, key: i32, key_len: i32, out: i32, out_cap: i32| {
            let (memory, call) = parts(&mut caller, "get")?;
            let key = range("get", key, key_len, memory.len())?;
            let out = range("get", out, out_cap, memory.len())?;
            Ok(match call.tx.get(&call.kv, &memory[key]) {
                None => -1,
                Some(value) => copy_out(memory, out, value),
            })
        },
    )?;

    linker.func_wrap(
        "corelane",
        "put",
        |mut caller: Caller<'_, StoreData>, key: i32, key_len: i32, value: i32, value_len: i32| {
            let (memory, call) = parts(&mut caller, "put")?;
            let key = range("put", key, key_len, memory.len())?;
            let value = range("put", value, value_len, memory.len())?;
            call.tx.put(&memory[key], &memory[value]);
            Ok(())
        },
    )?;

    linker.func_wrap(
        "corelane",
        "delete",
        |mut caller: Caller<'_, StoreData>, key: i32, key_len: i32| {
            let (memory, call) = parts(&mut caller, "delete")?;
            let key = range("delete", key, key_len, memory.len())?;
            Ok(i32::from(call.tx.delete(&call.kv, &memory[key])))
        },
    )?;

    linker.func_wrap(
        "corelane",
        "scan",
        |mut caller: Caller<'_, StoreData>, start: i32, start_len: i32, out: i32, out_cap: i32| {
            let (memory, call) = parts(&mut caller, "scan")?;
            let start = range("scan", start, start_len, memory.len())?;
            let out = range("scan", out, out_cap, memory.len())?;
            Ok(match call.tx.scan_from(&call.kv, &memory[start]) {
                None => -1,
                Some(key) => copy_out(memory, out, key),
            })
        },
    )?;

    linker.func_wrap(
        "corelane",
        "log",
        |mut caller: Caller<'_, StoreData>, level: i32, text: i32, text_len: i32| {
            let (memory, data) = memory_and_data(&mut caller, "log")?;
            if data.call.is_none() {
                return Err(GuestError::OutsideCall { import: "log" }.into());
            }
            let text = range("log", text, text_len, memory.len())?;
            let line = String::from_utf8_lossy(&memory[text]);
            let database = &*data.database;
            match level {
                i32::MIN..=0 => tracing::trace!(target: "corelane::guest", database, "{line}"),
                1 => tracing::debug!(target: "corelane::guest", database, "{line}"),
                2 => tracing::info!(target: "corelane::guest", database, "{line}"),
                3 => tracing::warn!(target: "corelane::guest", database, "{line}"),
                _ => tracing::error!(target: "corelane::guest", database, "{line}"),
            }
            Ok(())
        },
    )?;

    linker.func_wrap("corelane", "now_us", |mut caller: Caller<'_, StoreData>| {
        let (_, call) = parts(&mut caller, "now_us")?;
        Ok(*call.now_us.get_or_init(wall_clock_us))
    })?;

    linker.func_wrap(
        "corelane",
        "fail",
        |mut caller: Caller<'_, StoreData>, text: i32, text_len: i32| {
            let (memory, call) = parts(&mut caller, "fail")?;
            let text = range("fail", text, text_len, memory.len())?;
            call.failure = Some(String::from_utf8_lossy(&memory[text]).into_owned());
            Ok(())
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_outside_memory_are_refused() {
        assert_eq!(range("get", 0, 10, 10), Ok(0..10));
        assert!(range("get", 1, 10, 10).is_err());
        assert!(
            range("get", -1, 1, 10).is_err(),
            "a negative pointer is a huge offset"
        );
        assert!(
            range("get", 5, -1, 10).is_err(),
            "a negative length is a huge length"
        );
        let error = range("put", 8, 4, 10).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`put` was given 0x8+4, outside the memory of 10 bytes"
        );
    }
}
