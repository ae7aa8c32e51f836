//! The WASI error numbers the host calls return, and how host errors map to them.

use std::io;

/// A WASI error number, returned to the guest as the `i32` result of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Errno(u16);

impl Errno {
    pub(super) const SUCCESS: Errno = Errno(0);
    pub(super) const ACCES: Errno = Errno(2);
    pub(super) const BADF: Errno = Errno(8);
    pub(super) const FAULT: Errno = Errno(21);
    pub(super) const ILSEQ: Errno = Errno(25);
    pub(super) const INVAL: Errno = Errno(28);
    pub(super) const IO: Errno = Errno(29);
    pub(super) const ISDIR: Errno = Errno(31);
    pub(super) const LOOP: Errno = Errno(32);
    pub(super) const MFILE: Errno = Errno(33);
    pub(super) const NAMETOOLONG: Errno = Errno(37);
    pub(super) const NOENT: Errno = Errno(44);
    pub(super) const NOSPC: Errno = Errno(51);
    pub(super) const NOSYS: Errno = Errno(52);
    pub(super) const NOTDIR: Errno = Errno(54);
    pub(super) const SPIPE: Errno = Errno(70);
    pub(super) const NOTCAPABLE: Errno = Errno(76);

    pub(super) fn code(self) -> i32 {
        i32::from(self.0)
    }
}

pub(super) fn errno_code(outcome: Result<(), Errno>) -> i32 {
    outcome.err().unwrap_or(Errno::SUCCESS).code()
}

pub(super) fn errno_from_io(error: io::Error) -> Errno {
    match error.kind() {
        io::ErrorKind::NotFound => Errno::NOENT,
        io::ErrorKind::PermissionDenied => Errno::ACCES,
        io::ErrorKind::NotADirectory => Errno::NOTDIR,
        io::ErrorKind::IsADirectory => Errno::ISDIR,
        io::ErrorKind::InvalidInput => Errno::INVAL,
        _ => Errno::IO,
    }
}
