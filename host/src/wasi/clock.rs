//! The clocks a program can read: the host's system clock and a per-run monotonic clock.

use std::time::{SystemTime, UNIX_EPOCH};

use super::WasiCtx;
use super::errno::Errno;

/// The preview1 `clockid` of the system clock; 1 is the monotonic clock.
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;

/// The resolution of `clock`, or EINVAL for the CPU-time clocks, which are not provided.
pub(super) fn clock_resolution(clock: u32) -> Result<u64, Errno> {
    match clock {
        CLOCK_REALTIME | CLOCK_MONOTONIC => Ok(1),
        _ => Err(Errno::INVAL),
    }
}

impl WasiCtx {
    pub(super) fn clock_now(&self, clock: u32) -> Result<u64, Errno> {
        match clock {
            CLOCK_REALTIME => Ok(nanoseconds_since_epoch(SystemTime::now())),
            CLOCK_MONOTONIC => {
                let elapsed = self.monotonic_origin.elapsed().as_nanos();
                Ok(u64::try_from(elapsed).unwrap_or(u64::MAX))
            }
            _ => Err(Errno::INVAL),
        }
    }
}

pub(super) fn nanoseconds_since_epoch(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}
