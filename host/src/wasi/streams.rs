//! `fd_write` and `fd_read`: the captured output streams, the empty standard input, and
//! reads from opened files.

use std::io::Read;

use super::errno::{Errno, errno_from_io};
use super::fds::Target;
use super::memory::GuestMemory;
use super::{OUTPUT_LIMIT, WasiCtx};

impl WasiCtx {
    pub(super) fn fd_write(
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

    pub(super) fn fd_read(
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
}
