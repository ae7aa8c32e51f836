//! What every workload shares: the systems, the cases they report, alternating rounds,
//! percentiles, and the bench's settings.

use std::time::{Duration, Instant};

/// The systems compared, in the order of the table's columns and the JSON fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Corelane,
    TokioPerCore,
    ThreadPerDb,
    AsyncExecutor,
}

impl System {
    pub const ALL: [System; 4] = [
        System::Corelane,
        System::TokioPerCore,
        System::ThreadPerDb,
        System::AsyncExecutor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            System::Corelane => "corelane",
            System::TokioPerCore => "tokio_per_core",
            System::ThreadPerDb => "thread_per_db",
            System::AsyncExecutor => "async_executor",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this run measures the system (all, unless `--systems=a,b` named some).
    pub fn selected(self) -> bool {
        SELECTED
            .get()
            .is_none_or(|names| names.iter().any(|name| name == self.name()))
    }
}

/// The systems named by `--systems=`, if any: for profiling one system at a time.
pub static SELECTED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Which way a number is better, so that the table can say how corelane compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// Neither: a share or an index judged against a target, not against the others.
    Target,
}

/// One row of the table and one object of compare.json.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub unit: &'static str,
    pub better: Better,
    /// One median per system, by [`System::index`]; `None` where the system does not apply.
    pub values: [Option<f64>; 4],
    /// A figure the row is read against (the direct Wasmtime call, a target share).
    pub reference: Option<(&'static str, f64)>,
}

impl Case {
    pub fn new(name: impl Into<String>, unit: &'static str, better: Better) -> Case {
        Case {
            name: name.into(),
            unit,
            better,
            values: [None; 4],
            reference: None,
        }
    }

    pub fn values(mut self, values: [Option<f64>; 4]) -> Case {
        self.values = values;
        self
    }

    pub fn reference(mut self, name: &'static str, value: f64) -> Case {
        self.reference = Some((name, value));
        self
    }

    /// How many times better corelane is than `system` (above 1: corelane is better).
    pub fn advantage(&self, system: System) -> Option<f64> {
        let ours = self.values[System::Corelane.index()]?;
        let theirs = self.values[system.index()]?;
        match self.better {
            Better::Lower if ours > 0.0 => Some(theirs / ours),
            Better::Higher if theirs > 0.0 => Some(ours / theirs),
            _ => None,
        }
    }
}

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub quick: bool,
    /// Rounds per case; each round measures every system once, in turn.
    pub rounds: usize,
}

impl Settings {
    /// `full` in a full run, `quick` in a quick one.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    pub fn duration(&self, full_ms: u64, quick_ms: u64) -> Duration {
        Duration::from_millis(self.pick(full_ms, quick_ms))
    }
}

/// Runs `measure` for every system, in turn, `rounds` times, starting each round with the next
/// system so that no system always goes first; gives per metric and per system the median of
/// the rounds. `measure` returns `None` for a system that does not apply.
pub fn alternate<const M: usize>(
    rounds: usize,
    mut measure: impl FnMut(System) -> Option<[f64; M]>,
) -> [[Option<f64>; 4]; M] {
    let mut samples: Vec<[Vec<f64>; M]> = System::ALL
        .iter()
        .map(|_| std::array::from_fn(|_| Vec::new()))
        .collect();
    for round in 0..rounds {
        for turn in 0..System::ALL.len() {
            let system = System::ALL[(round + turn) % System::ALL.len()];
            if !system.selected() {
                continue;
            }
            if let Some(metrics) = measure(system) {
                for (metric, value) in metrics.into_iter().enumerate() {
                    samples[system.index()][metric].push(value);
                }
            }
        }
    }
    std::array::from_fn(|metric| std::array::from_fn(|system| median(&mut samples[system][metric])))
}

/// The median, or `None` for no samples.
pub fn median(samples: &mut [f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let middle = samples.len() / 2;
    Some(if samples.len() % 2 == 1 {
        samples[middle]
    } else {
        (samples[middle - 1] + samples[middle]) / 2.0
    })
}

/// The `q`-quantile (0 to 1) of sorted samples, by the nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds per operation.
pub fn ns_per(elapsed: Duration, operations: u64) -> f64 {
    elapsed.as_nanos() as f64 / operations.max(1) as f64
}

/// Sleeps until `at`, then spins the last stretch: the kernel wakes a sleeper tens of
/// microseconds late, which an open-loop driver must not add to the latency it measures.
pub fn sleep_until(at: Instant) {
    const SPIN: Duration = Duration::from_micros(60);
    let now = Instant::now();
    if at > now + SPIN {
        std::thread::sleep(at - now - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

/// A small deterministic random source (SplitMix64) for arrival gaps.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An exponential gap with the given mean: Poisson arrivals.
    pub fn exponential(&mut self, mean: Duration) -> Duration {
        let uniform = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        mean.mul_f64(-uniform.ln())
    }
}

/// A CPU-bound loop whose cost is proportional to `iterations` and that the compiler cannot
/// remove: the unit of work of the share workloads.
pub fn burn(iterations: u64) -> u64 {
    let mut x = 0u64;
    for _ in 0..iterations {
        x = std::hint::black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
    x
}

/// How many [`burn`] iterations take about `target` on this machine.
pub fn calibrate_burn(target: Duration) -> u64 {
    let probe = 2_000_000;
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        std::hint::black_box(burn(probe));
        best = best.min(start.elapsed());
    }
    ((probe as f64) * target.as_secs_f64() / best.as_secs_f64()).max(1.0) as u64
}
