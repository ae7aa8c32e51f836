//! The preview1 `filestat` of a descriptor, from the host's metadata of its file.

use std::fs::{self, Metadata};
use std::io;
use std::time::SystemTime;

use super::clock::nanoseconds_since_epoch;
use super::errno::{Errno, errno_from_io};
use super::fds::{Target, filetype};

impl Target {
    pub(super) fn filestat(&self) -> Result<FileStat, Errno> {
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
pub(super) struct FileStat {
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
    pub(super) fn encode(&self) -> [u8; 64] {
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
