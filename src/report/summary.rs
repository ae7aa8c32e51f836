//! The summary of a run: what `report.json` holds.
//!
//! The field names are an interface: other tools read them, so they change only with those
//! tools. Every time is an integer number of microseconds, every rate a float per second.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{GroupSamples, RunSamples};

/// The summary of one run of a scenario in one fairness mode.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The fairness mode: "never", "epoch" or "fuel".
    pub fairness: String,
    /// The epoch quantum, in microseconds.
    pub quantum_us: u64,
    /// How many worker threads the runtime had.
    pub workers: usize,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// Calls submitted in the window.
    pub submitted: u64,
    /// One summary per group of tenants, in the scenario's order.
    pub groups: Vec<GroupReport>,
    /// Jain's fairness index of the tenants' CPU times within each group, the lowest over the
    /// groups of two tenants or more; 1.0 when there are none. 1.0 is perfectly fair; `1/n`
    /// means one of `n` tenants had all the CPU.
    pub jain_index: f64,
    /// The busy fraction of each worker over the window, from 0 to 1.
    pub worker_busy: Vec<f64>,
    /// The process's resident memory when the window opened, in MB; null if unknown.
    pub rss_start_mb: Option<f64>,
    /// The process's resident memory when the window closed, in MB; null if unknown.
    pub rss_end_mb: Option<f64>,
}

/// The summary of one group of tenants.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// The group's name.
    pub name: String,
    /// How many tenants the group has.
    pub tenants: usize,
    /// Calls that succeeded.
    pub jobs_ok: u64,
    /// Calls that failed, of every kind.
    pub jobs_failed: u64,
    /// Successful calls per second of the window.
    pub throughput_per_s: f64,
    /// End-to-end latency of the group's calls.
    pub latency_us: LatencyPercentiles,
    /// Time from submission to start on a worker.
    pub wait_us: WaitPercentiles,
    /// The group's CPU time as a fraction of all the workers' time in the window.
    pub cpu_share: f64,
}

/// Latency percentiles in microseconds; all 0 when nothing was recorded.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyPercentiles {
    /// The median.
    pub p50: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// The largest value recorded.
    pub max: u64,
}

/// Wait percentiles in microseconds; all 0 when nothing was recorded.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPercentiles {
    /// The median.
    pub p50: u64,
    /// The 99th percentile.
    pub p99: u64,
}

/// Summarizes one run.
///
/// A window of zero length gives throughputs and CPU shares of 0 rather than infinities, and
/// busy fractions that are not finite are written as 0: JSON has no NaN.
pub fn summarize(run: &RunSamples) -> Report {
    let duration_s = run.duration.as_secs_f64();
    let groups = run
        .groups
        .iter()
        .map(|group| summarize_group(group, duration_s, run.workers))
        .collect();

    // Only groups that can be unfair count; a group whose tenants all sat idle was fair.
    let jain_index = run
        .groups
        .iter()
        .filter(|group| group.tenant_cpu.len() >= 2)
        .map(|group| jain_index(&group.tenant_cpu))
        .fold(1.0, f64::min);

    Report {
        scenario: run.scenario.clone(),
        fairness: run.fairness.to_string(),
        quantum_us: saturating_micros(run.quantum),
        workers: run.workers,
        duration_s,
        submitted: run.submitted,
        groups,
        jain_index,
        worker_busy: run
            .worker_busy
            .iter()
            .map(|&busy| finite_or_zero(busy))
            .collect(),
        rss_start_mb: run.rss_start_mb,
        rss_end_mb: run.rss_end_mb,
    }
}

fn summarize_group(group: &GroupSamples, duration_s: f64, workers: usize) -> GroupReport {
    let cpu_s: f64 = group.tenant_cpu.iter().map(Duration::as_secs_f64).sum();
    let worker_seconds = duration_s * workers as f64;

    GroupReport {
        name: group.name.clone(),
        tenants: group.tenants,
        jobs_ok: group.ok,
        jobs_failed: group.jobs_failed(),
        throughput_per_s: ratio(group.ok as f64, duration_s),
        latency_us: LatencyPercentiles {
            p50: quantile(&group.latency_us, 0.5),
            p99: quantile(&group.latency_us, 0.99),
            p999: quantile(&group.latency_us, 0.999),
            max: group.latency_us.max(),
        },
        wait_us: WaitPercentiles {
            p50: quantile(&group.wait_us, 0.5),
            p99: quantile(&group.wait_us, 0.99),
        },
        cpu_share: ratio(cpu_s, worker_seconds),
    }
}

/// The histogram's value at `quantile`, or 0 if it is empty.
pub(super) fn quantile(histogram: &Histogram<u64>, quantile: f64) -> u64 {
    if histogram.is_empty() {
        0
    } else {
        histogram.value_at_quantile(quantile)
    }
}

/// Jain's fairness index `(Σx)² / (n·Σx²)` of the tenants' CPU times: 1.0 when all are
/// equal, `1/n` when one has it all. Tenants that all used no CPU count as fair.
pub(super) fn jain_index(cpu: &[Duration]) -> f64 {
    let sum: f64 = cpu.iter().map(Duration::as_secs_f64).sum();
    let sum_of_squares: f64 = cpu.iter().map(|time| time.as_secs_f64().powi(2)).sum();
    if cpu.is_empty() || sum_of_squares == 0.0 {
        return 1.0;
    }
    sum * sum / (cpu.len() as f64 * sum_of_squares)
}

/// `numerator / denominator`, or 0 when that is not a finite number.
fn ratio(numerator: f64, denominator: f64) -> f64 {
    finite_or_zero(numerator / denominator)
}

fn finite_or_zero(value: f64) -> f64 {
    if value.is_finite() { value } else { 0.0 }
}

fn saturating_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_index_is_one_for_equal_shares() {
        let cpu = [Duration::from_millis(250); 4];
        assert!((jain_index(&cpu) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn jain_index_is_one_over_n_when_one_tenant_does_all_the_work() {
        let mut cpu = [Duration::ZERO; 5];
        cpu[2] = Duration::from_secs(3);
        assert!((jain_index(&cpu) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn jain_index_counts_idle_tenants_as_fair() {
        assert_eq!(jain_index(&[Duration::ZERO; 3]), 1.0);
        assert_eq!(jain_index(&[]), 1.0);
    }

    #[test]
    fn jain_index_of_two_to_one_shares() {
        // (2 + 1)² / (2 · (4 + 1)) = 0.9
        let cpu = [Duration::from_secs(2), Duration::from_secs(1)];
        assert!((jain_index(&cpu) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn quantile_of_an_empty_histogram_is_zero() {
        let histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        assert_eq!(quantile(&histogram, 0.99), 0);
        assert_eq!(histogram.max(), 0);
    }
}
