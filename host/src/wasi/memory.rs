//! The guest's linear memory: every pointer and length checked against its size, and the
//! reads and writes built on that check.

use std::ops::Range;

use super::errno::Errno;

/// The guest's linear memory, with every access checked against its size.
pub(super) struct GuestMemory<'a> {
    pub(super) bytes: &'a mut [u8],
}

impl GuestMemory<'_> {
    /// The host range of the guest's `len` bytes at `pointer`, or EFAULT if any lies outside.
    pub(super) fn range(&self, pointer: u32, len: u32) -> Result<Range<usize>, Errno> {
        let start = pointer as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::FAULT)?;
        if end > self.bytes.len() {
            return Err(Errno::FAULT);
        }
        Ok(start..end)
    }

    pub(super) fn bytes(&self, pointer: u32, len: u32) -> Result<&[u8], Errno> {
        Ok(&self.bytes[self.range(pointer, len)?])
    }

    pub(super) fn write_bytes(&mut self, pointer: u32, value: &[u8]) -> Result<(), Errno> {
        let len = u32::try_from(value.len()).map_err(|_| Errno::FAULT)?;
        let range = self.range(pointer, len)?;
        self.bytes[range].copy_from_slice(value);
        Ok(())
    }

    pub(super) fn write_u32(&mut self, pointer: u32, value: u32) -> Result<(), Errno> {
        self.write_bytes(pointer, &value.to_le_bytes())
    }

    pub(super) fn write_u64(&mut self, pointer: u32, value: u64) -> Result<(), Errno> {
        self.write_bytes(pointer, &value.to_le_bytes())
    }

    /// The buffer that entry `index` of an `iovec` array names. An `iovec` is 8 bytes: the
    /// buffer's pointer, then its length.
    pub(super) fn io_vector(&self, array: u32, index: u32) -> Result<Range<usize>, Errno> {
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
    pub(super) fn io_vectors_total(&self, (array, count): (u32, u32)) -> Result<usize, Errno> {
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

/// Stores the count of `list` and the bytes its NUL-terminated strings take.
pub(super) fn write_list_sizes(
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
pub(super) fn write_list(
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
