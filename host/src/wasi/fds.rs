//! The guest's descriptor table: standard streams, the preopened directory and the files
//! opened in it, with the checks that keep every open inside the directory and read-only.

use std::fs::{self, File};
use std::path::{Component, Path, PathBuf};

use super::errno::{Errno, errno_from_io};
use super::memory::GuestMemory;
use super::{MAX_DESCRIPTORS, WasiCtx};

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
pub(super) mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SYMBOLIC_LINK: u8 = 7;
}

/// One open descriptor of the guest.
#[derive(Debug)]
pub(super) struct Descriptor {
    /// What it refers to.
    pub(super) target: Target,
    /// The `fdflags` it was opened or last set with; reported back, nothing depends on them.
    pub(super) flags: u16,
}

#[derive(Debug)]
pub(super) enum Target {
    Stdin,
    Stdout,
    Stderr,
    Directory(Directory),
    File(File),
}

#[derive(Debug)]
pub(super) struct Directory {
    /// The directory's canonical host path; nothing outside it may be opened through it.
    pub(super) host_path: PathBuf,
    /// For a preopen, the name the guest knows it by; `None` for a directory the guest opened.
    pub(super) preopen_name: Option<String>,
}

impl Descriptor {
    /// The 24-byte `fdstat`: filetype at 0, flags at 2, base rights at 8, inheriting at 16.
    pub(super) fn encode_fdstat(&self) -> [u8; 24] {
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

/// The `path_open` arguments that say how to open, as the guest passed them.
pub(super) struct OpenRequest {
    pub(super) lookup_flags: u32,
    pub(super) open_flags: u32,
    pub(super) rights_base: u64,
    pub(super) fd_flags: u32,
}

impl WasiCtx {
    pub(super) fn descriptor(&self, fd: u32) -> Result<&Descriptor, Errno> {
        self.descriptors.get(&fd).ok_or(Errno::BADF)
    }

    /// Puts `target` at the lowest free descriptor number, as POSIX `open` does.
    pub(super) fn insert(&mut self, target: Target, flags: u16) -> Result<u32, Errno> {
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

    pub(super) fn preopen_name(&self, fd: u32) -> Result<&str, Errno> {
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

    pub(super) fn seekable_file(&mut self, fd: u32) -> Result<&mut File, Errno> {
        match &mut self.descriptors.get_mut(&fd).ok_or(Errno::BADF)?.target {
            Target::File(file) => Ok(file),
            Target::Stdin | Target::Stdout | Target::Stderr => Err(Errno::SPIPE),
            Target::Directory(_) => Err(Errno::BADF),
        }
    }
}

impl WasiCtx {
    pub(super) fn fd_fdstat_set_flags(&mut self, fd: u32, flags: u32) -> Result<(), Errno> {
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

    pub(super) fn path_open(
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
