//! Scenarios: what `corelane run` hosts, how hard it drives it, and under which settings.
//!
//! A scenario is a TOML file (the format is documented in `docs/scenarios.md`). Its top-level
//! keys are the run's [`Settings`]; each `[[group]]` table is a [`Group`] of identical tenant
//! databases that run one module under one [`Load`]:
//!
//! ```
//! use corelane::scenario::{Load, Origin, Scenario};
//!
//! let scenario = Scenario::parse(
//!     r#"
//!     fairness = ["epoch", "never"]
//!     duration_s = 5
//!
//!     [[group]]
//!     name = "light"
//!     count = 8
//!     module = "counter"
//!     reducer = "increment"
//!     load = { rate_per_s = 20.0 }
//!     "#,
//!     Origin::Embedded,
//! )?;
//! assert_eq!(scenario.settings.fairness.len(), 2);
//! assert_eq!(scenario.groups[0].load, Load::Open { rate_per_s: 20.0 });
//! # Ok::<(), corelane::scenario::ScenarioError>(())
//! ```
//!
//! Loading checks everything that can be checked without running anything: types, ranges,
//! unknown keys, sample names, and that module files and preopened directories exist. Each
//! [`ScenarioError`] names the file, the key and what was wrong. Whether a reducer exists in
//! its module is left to the runner, which compiles the modules.
//!
//! [`Scenario::embedded_default`] is the scenario of a bare `corelane run`
//! (`scenarios/default.toml`, built into the binary); [`Scenario::apply`] lays the
//! command line's [`Overrides`] over a scenario's settings.

mod error;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corelane_host::Fairness;

pub use error::ScenarioError;

/// The text of the embedded default scenario, `scenarios/default.toml`.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/default.toml");

/// A loaded and checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name (key `name`; default: the file's stem, or `default` for the embedded one).
    pub name: String,
    /// Where it came from, for messages and for resolving relative paths.
    pub origin: Origin,
    /// How the runs are set up.
    pub settings: Settings,
    /// The tenant groups, in the order of the file; never empty.
    pub groups: Vec<Group>,
}

/// Where a scenario came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file, as its path was given.
    File(PathBuf),
    /// The default scenario built into corelane ([`DEFAULT_SCENARIO`]).
    Embedded,
}

/// How the runs of a scenario are set up: the top-level keys of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The number of workers (key `workers`); `None`: one worker per CPU this process may use.
    pub workers: Option<usize>,
    /// Whether each worker is pinned to its CPU (key `pin`, default true).
    pub pin: bool,
    /// The fairness modes to run under (key `fairness`, default `["epoch"]`): the run is
    /// repeated once per mode, in this order. Never empty.
    pub fairness: Vec<Fairness>,
    /// The epoch quantum (key `quantum_us`, default 1 ms, at least 100 us).
    pub quantum: Duration,
    /// The measured time of each run (key `duration_s`, default 10 s).
    pub duration: Duration,
    /// The time before measuring starts in each run (key `warmup_s`, default 1 s).
    pub warmup: Duration,
    /// The seed of the random arrival times (key `seed`, default 0).
    pub seed: u64,
    /// How much the resident memory may grow over the measured window, as a fraction of
    /// its size when the window opens (key `max_rss_growth`, e.g. 0.1); `None`: no limit.
    /// A run past it still writes its report, and the command then fails.
    pub max_rss_growth: Option<f64>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            workers: None,
            pin: true,
            fairness: vec![Fairness::Epoch],
            quantum: Duration::from_millis(1),
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            seed: 0,
            max_rss_growth: None,
        }
    }
}

/// A group of identical tenants: databases that run one module under one load.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Its name, unique in the scenario (key `name`).
    pub name: String,
    /// How many tenants (databases) it has (key `count`, default 1, at least 1).
    pub count: usize,
    /// The module each tenant runs (key `module`).
    pub module: ModuleSource,
    /// The reducer each call runs (key `reducer`); `_start` for WASI commands.
    pub reducer: String,
    /// The arguments of every call (key `args`, `args_hex` or `args_u64`; default none).
    pub args: Vec<u8>,
    /// How calls arrive at each tenant (key `load`).
    pub load: Load,
    /// Each tenant's weight in its worker's fair order (key `weight`, default 100).
    pub weight: u32,
    /// How long one call may run (key `budget_ms`); `None`: the host's default.
    pub budget: Option<Duration>,
    /// A directory preopened read-only as `.` for WASI programs (key `preopen`).
    pub preopen: Option<PathBuf>,
    /// Churn: each tenant's database is replaced by a new one this often, the old one
    /// exiting once its calls have ended (key `recreate_every_s`); `None`: never.
    pub recreate_every: Option<Duration>,
    /// A hostile group (key `hostile`, default false): the scenario also runs without its
    /// hostile groups, so that the report shows the others' latency next to a run without
    /// them.
    pub hostile: bool,
}

/// Where a group's module comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleSource {
    /// One of corelane's sample modules, by name (see [`corelane_modules`]).
    Sample(String),
    /// A `.wasm` or `.wat` file; the path is resolved and known to exist.
    File(PathBuf),
}

/// How calls arrive at each tenant of a group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Open loop: calls arrive at random (Poisson) times, `rate_per_s` a second on average,
    /// whether or not earlier ones have finished.
    Open {
        /// The mean arrival rate per tenant, in calls per second (finite, above 0).
        rate_per_s: f64,
    },
    /// Closed loop: `in_flight` calls are outstanding per tenant at all times; each is
    /// submitted again as soon as it completes.
    Closed {
        /// The number of outstanding calls per tenant (at least 1).
        in_flight: usize,
    },
}

/// Settings given on the command line, which replace the scenario's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Replaces [`Settings::duration`].
    pub duration: Option<Duration>,
    /// Replaces the list [`Settings::fairness`] with this one mode.
    pub fairness: Option<Fairness>,
    /// Replaces [`Settings::quantum`].
    pub quantum: Option<Duration>,
    /// Replaces [`Settings::workers`].
    pub workers: Option<usize>,
    /// Replaces [`Settings::pin`].
    pub pin: Option<bool>,
    /// Replaces [`Settings::seed`].
    pub seed: Option<u64>,
}

impl Scenario {
    /// Reads and checks the scenario file at `path`. Relative paths in it are resolved from
    /// the file's directory.
    ///
    /// # Errors
    ///
    /// A [`ScenarioError`] if the file cannot be read, is not valid TOML, or breaks a rule of
    /// the format (docs/scenarios.md).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let origin = Origin::File(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|error| {
            ScenarioError::new(
                origin.clone(),
                None,
                format!("cannot read the file: {error}"),
            )
        })?;
        Scenario::parse(&text, origin)
    }

    /// Checks the scenario text `text`, which came from `origin`. Relative paths in it are
    /// resolved from the directory of an [`Origin::File`], or from the current directory for
    /// [`Origin::Embedded`].
    ///
    /// # Errors
    ///
    /// A [`ScenarioError`] if the text is not valid TOML or breaks a rule of the format.
    pub fn parse(text: &str, origin: Origin) -> Result<Scenario, ScenarioError> {
        parse::scenario(text, origin)
    }

    /// The default scenario, built into corelane from `scenarios/default.toml`.
    pub fn embedded_default() -> Scenario {
        Scenario::parse(DEFAULT_SCENARIO, Origin::Embedded)
            .expect("the embedded default scenario is valid (unit test `embedded_default_parses`)")
    }

    /// Lays command-line overrides over the settings: each one given replaces the file's
    /// value. A fairness override replaces the list of modes with that one mode.
    pub fn apply(&mut self, overrides: &Overrides) {
        let settings = &mut self.settings;
        if let Some(duration) = overrides.duration {
            settings.duration = duration;
        }
        if let Some(fairness) = overrides.fairness {
            settings.fairness = vec![fairness];
        }
        if let Some(quantum) = overrides.quantum {
            settings.quantum = quantum;
        }
        if let Some(workers) = overrides.workers {
            settings.workers = Some(workers);
        }
        if let Some(pin) = overrides.pin {
            settings.pin = pin;
        }
        if let Some(seed) = overrides.seed {
            settings.seed = seed;
        }
    }
}

impl Origin {
    /// The file's path, or `None` for the embedded scenario.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Origin::File(path) => Some(path),
            Origin::Embedded => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Embedded => f.write_str("the embedded default scenario"),
        }
    }
}

impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleSource::Sample(name) => write!(f, "sample {name}"),
            ModuleSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Load::Open { rate_per_s } => write!(f, "open loop, {rate_per_s} calls/s"),
            Load::Closed { in_flight } => write!(f, "closed loop, {in_flight} in flight"),
        }
    }
}
