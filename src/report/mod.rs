//! Reports: what `corelane run` prints and writes once its measured window has closed.
//!
//! The runner fills one [`RunSamples`] per scenario and fairness mode. This module turns them
//! into three outputs:
//!
//! - [`summarize`] makes a [`Report`], the stable summary that `report.json` holds: counts,
//!   throughput, latency and wait percentiles, CPU shares, Jain's fairness index and the busy
//!   fraction of every worker. Other tools read that file, so its fields are fixed.
//! - [`print_table`] writes a table for people: one block per run and, when there are several,
//!   each group's p99 latency side by side across the runs, so that the effect of preemption
//!   shows at a glance.
//! - [`write_outputs`] writes `report.json` and `latency.svg`, a plot of each group's latency
//!   distribution (a CDF on a logarithmic axis).
//!
//! # What the runner must provide
//!
//! 1. Histograms of microseconds, made with
//!    `Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)` in the runner: values up to an
//!    hour at three significant digits. Any bounds work (a value of 0 is drawn at the plot's left edge), but
//!    percentiles are only as precise as the histogram; auto-resizing histograms are fine.
//! 2. One `tenant_cpu` entry per tenant of the group, `Duration::ZERO` for a tenant that never
//!    ran, or Jain's index counts the wrong tenants.
//! 3. `submitted` equal to the sum over groups of `ok` plus every failure count, and CPU times
//!    and busy fractions measured over the same window as `duration`. The report does not
//!    check these; with them, the groups' CPU shares sum to at most 1.

mod format;
mod summary;
mod svg;
mod table;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corelane_host::Fairness;
use hdrhistogram::Histogram;

pub use summary::{GroupReport, LatencyPercentiles, Report, WaitPercentiles, summarize};
pub use table::print_table;

/// The file name of the JSON summary that [`write_outputs`] writes.
pub const REPORT_FILE: &str = "report.json";

/// The file name of the latency plot that [`write_outputs`] writes.
pub const PLOT_FILE: &str = "latency.svg";

/// What the runner measured for one group of tenants during the measured window.
#[derive(Debug, Clone)]
pub struct GroupSamples {
    /// The group's name, as the scenario gives it (e.g. "light").
    pub name: String,
    /// How many tenants (databases) the group has.
    pub tenants: usize,
    /// End-to-end latency of each call, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Time from submission to the call's start on its worker, in microseconds.
    pub wait_us: Histogram<u64>,
    /// Time from start to end of each call, suspensions included, in microseconds.
    pub run_us: Histogram<u64>,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed, by error kind (e.g. "Timeout", "Trap").
    pub failed: BTreeMap<String, u64>,
    /// Each tenant's CPU time in the window (its lane's run time), one entry per tenant.
    pub tenant_cpu: Vec<Duration>,
    /// How many times the group's tenants yielded in the window.
    pub yields: u64,
}

impl GroupSamples {
    /// Calls that failed, of every kind.
    pub fn jobs_failed(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Calls that ended, successfully or not.
    pub fn jobs_ended(&self) -> u64 {
        self.ok + self.jobs_failed()
    }
}

/// One run of a scenario in one fairness mode.
#[derive(Debug, Clone)]
pub struct RunSamples {
    /// The scenario's name.
    pub scenario: String,
    /// The fairness mode every database of the run used.
    pub fairness: Fairness,
    /// The epoch quantum of the host.
    pub quantum: Duration,
    /// How many worker threads the runtime had.
    pub workers: usize,
    /// The measured window.
    pub duration: Duration,
    /// Calls submitted in the window: the sum over groups of `ok` and every failure.
    pub submitted: u64,
    /// What each group of tenants measured.
    pub groups: Vec<GroupSamples>,
    /// The busy fraction of each worker over the window, from 0 to 1.
    pub worker_busy: Vec<f64>,
    /// The process's resident memory when the window opened, in MB (None: unknown).
    pub rss_start_mb: Option<f64>,
    /// The process's resident memory when the window closed, in MB (None: unknown).
    pub rss_end_mb: Option<f64>,
}

/// Writes [`REPORT_FILE`] and [`PLOT_FILE`] into `dir`, creating it if missing, and returns
/// their paths in that order.
///
/// `report.json` holds one [`Report`] object for one run and an array of them otherwise.
/// `latency.svg` plots the latency CDF of every group of every run.
///
/// # Errors
///
/// Fails if `dir` cannot be created or either file cannot be written; the plot's errors
/// come as [`io::ErrorKind::Other`] with plotters' message.
pub fn write_outputs(dir: &Path, runs: &[RunSamples]) -> io::Result<(PathBuf, PathBuf)> {
    write_outputs_shaped(dir, runs, runs.len() != 1)
}

/// [`write_outputs`], choosing the shape of report.json: an array, or (for exactly one run)
/// an object. A scenario of several modes that was interrupted after one keeps its array.
pub fn write_outputs_shaped(
    dir: &Path,
    runs: &[RunSamples],
    array: bool,
) -> io::Result<(PathBuf, PathBuf)> {
    fs::create_dir_all(dir)?;

    // One run is the common case; an object keeps `jq .groups` working for it.
    let report_path = dir.join(REPORT_FILE);
    let reports: Vec<Report> = runs.iter().map(summarize).collect();
    let mut json = match reports.as_slice() {
        [only] if !array => serde_json::to_string_pretty(only)?,
        all => serde_json::to_string_pretty(all)?,
    };
    json.push('\n');
    fs::write(&report_path, json)?;

    let plot_path = dir.join(PLOT_FILE);
    svg::write_latency_plot(&plot_path, runs)?;

    Ok((report_path, plot_path))
}
