//! How the table and the plot write times and name runs and groups.

use std::time::Duration;

use super::{GroupSamples, RunSamples};

/// Writes a time in microseconds with three significant digits in the largest unit that
/// keeps it at least 1: "850 us", "12.3 ms", "1.20 s".
pub(super) fn micros(us: f64) -> String {
    if !us.is_finite() || us < 0.0 {
        return "-".to_owned();
    }

    // The thresholds sit half a unit of the last digit below each boundary, so that a value
    // that rounds up to 1000 is written in the next unit.
    if us < 999.5 {
        format!("{us:.0} us")
    } else if us < 999_500.0 {
        three_digits(us / 1e3, "ms")
    } else {
        three_digits(us / 1e6, "s")
    }
}

/// Like [`micros`] but without trailing zeros ("1 ms", "2.5 ms"), for axis labels.
pub(super) fn micros_compact(us: f64) -> String {
    let text = micros(us);
    let Some((number, unit)) = text.split_once(' ') else {
        return text;
    };
    if !number.contains('.') {
        return text;
    }
    let number = number.trim_end_matches('0').trim_end_matches('.');
    format!("{number} {unit}")
}

/// Writes a duration as [`micros`] does.
pub(super) fn duration(duration: Duration) -> String {
    micros(duration.as_secs_f64() * 1e6)
}

fn three_digits(value: f64, unit: &str) -> String {
    if value < 9.995 {
        format!("{value:.2} {unit}")
    } else if value < 99.95 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// A short name for each run: its fairness mode, after its scenario's name when the runs come
/// from more than one scenario (a scenario with hostile groups and its run without them),
/// then its quantum if another run of the same scenario has the same mode, then its position
/// if that is not enough.
pub(super) fn run_labels(runs: &[RunSamples]) -> Vec<String> {
    let clashes = |labels: &[String], index: usize| {
        (0..runs.len()).any(|other| {
            other != index
                && runs[other].scenario == runs[index].scenario
                && labels[other] == labels[index]
        })
    };

    let one_scenario = runs.iter().all(|run| run.scenario == runs[0].scenario);
    let modes: Vec<String> = runs
        .iter()
        .map(|run| {
            if one_scenario {
                run.fairness.to_string()
            } else {
                format!("{} {}", run.scenario, run.fairness)
            }
        })
        .collect();
    let with_quantum: Vec<String> = (0..runs.len())
        .map(|index| {
            if clashes(&modes, index) {
                format!("{} q={}", modes[index], duration(runs[index].quantum))
            } else {
                modes[index].clone()
            }
        })
        .collect();
    (0..runs.len())
        .map(|index| {
            if clashes(&with_quantum, index) {
                format!("{} #{}", with_quantum[index], index + 1)
            } else {
                with_quantum[index].clone()
            }
        })
        .collect()
}

/// The name a group goes by across `runs`: its own, so that a group of a scenario and of
/// the same scenario's run without its hostile groups line up in one row.
pub(super) fn group_name(group: &GroupSamples) -> String {
    group.name.clone()
}

#[cfg(test)]
mod tests {
    use corelane_host::Fairness;

    use super::*;

    #[test]
    fn micros_keeps_three_significant_digits_in_the_largest_unit() {
        assert_eq!(micros(0.0), "0 us");
        assert_eq!(micros(850.0), "850 us");
        assert_eq!(micros(999.0), "999 us");
        assert_eq!(micros(1_000.0), "1.00 ms");
        assert_eq!(micros(2_100.0), "2.10 ms");
        assert_eq!(micros(9_999.0), "10.0 ms");
        assert_eq!(micros(12_345.0), "12.3 ms");
        assert_eq!(micros(183_000.0), "183 ms");
        assert_eq!(micros(999_700.0), "1.00 s");
        assert_eq!(micros(1_200_000.0), "1.20 s");
        assert_eq!(micros(3_600_000_000.0), "3600 s");
        assert_eq!(micros(f64::NAN), "-");
    }

    #[test]
    fn micros_compact_drops_trailing_zeros() {
        assert_eq!(micros_compact(1_000.0), "1 ms");
        assert_eq!(micros_compact(2_500.0), "2.5 ms");
        assert_eq!(micros_compact(100.0), "100 us");
        assert_eq!(micros_compact(10_000_000.0), "10 s");
    }

    fn run(scenario: &str, fairness: Fairness, quantum_us: u64) -> RunSamples {
        RunSamples {
            scenario: scenario.to_owned(),
            fairness,
            quantum: Duration::from_micros(quantum_us),
            workers: 1,
            duration: Duration::from_secs(1),
            submitted: 0,
            groups: Vec::new(),
            worker_busy: Vec::new(),
            rss_start_mb: None,
            rss_end_mb: None,
        }
    }

    #[test]
    fn run_labels_add_the_quantum_and_the_position_only_when_needed() {
        let modes = [
            run("a", Fairness::Epoch, 1_000),
            run("a", Fairness::Never, 1_000),
        ];
        assert_eq!(run_labels(&modes), ["epoch", "never"]);

        let quanta = [
            run("a", Fairness::Epoch, 1_000),
            run("a", Fairness::Epoch, 100),
            run("a", Fairness::Never, 1_000),
        ];
        assert_eq!(
            run_labels(&quanta),
            ["epoch q=1.00 ms", "epoch q=100 us", "never"]
        );

        let repeats = [
            run("a", Fairness::Fuel, 1_000),
            run("a", Fairness::Fuel, 1_000),
        ];
        assert_eq!(
            run_labels(&repeats),
            ["fuel q=1.00 ms #1", "fuel q=1.00 ms #2"]
        );

        let scenarios = [
            run("a", Fairness::Epoch, 1_000),
            run("b", Fairness::Epoch, 100),
        ];
        assert_eq!(run_labels(&scenarios), ["a epoch", "b epoch"]);
    }

    #[test]
    fn duration_writes_sub_millisecond_quanta_in_microseconds() {
        assert_eq!(duration(Duration::from_micros(500)), "500 us");
        assert_eq!(duration(Duration::from_millis(1)), "1.00 ms");
        assert_eq!(duration(Duration::from_secs(10)), "10.0 s");
    }
}
