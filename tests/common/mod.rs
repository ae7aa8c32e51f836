//! Helpers shared by the integration tests across crates.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// Ends the process with a message if the test is still running after `limit`, so that a
/// stuck test fails instead of hanging CI. Dropping the returned sender stops the watchdog.
pub fn watchdog(what: &'static str, limit: Duration) -> mpsc::Sender<()> {
    let (done, wait) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
            eprintln!("{what}: still running after {limit:?}; something is stuck");
            std::process::exit(101);
        }
    });
    done
}

/// The threads of this process, by name (from /proc), for leak checks.
pub fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task lists this process's threads")
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect();
    names.sort();
    names
}
