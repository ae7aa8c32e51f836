//! Reading a scenario's TOML into checked values, naming the key of every mistake.
//!
//! The text is first parsed into a plain TOML table, whose syntax errors carry the parser's
//! line and column. The table is then read key by key through [`Fields`], which knows the key
//! path of the table it reads (`group[1].load`), so that every type, range or unknown-key
//! error can name the exact key. Groups are counted from 0.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corelane_executor::lane::{DEFAULT_WEIGHT, MAX_WEIGHT};
use corelane_host::{Fairness, MIN_QUANTUM};
use toml::{Table, Value};

use super::{Group, Load, ModuleSource, Origin, Scenario, ScenarioError, Settings};

/// The keys of the top level: the settings, the name, and the groups.
pub(super) const TOP_KEYS: &[&str] = &[
    "name",
    "workers",
    "pin",
    "fairness",
    "quantum_us",
    "duration_s",
    "warmup_s",
    "seed",
    "max_rss_growth",
    "group",
];

/// The keys of a `[[group]]` table.
pub(super) const GROUP_KEYS: &[&str] = &[
    "name",
    "count",
    "module",
    "reducer",
    "args",
    "args_hex",
    "args_u64",
    "load",
    "weight",
    "budget_ms",
    "preopen",
    "recreate_every_s",
    "hostile",
];

/// The keys of a group's `load` table, of which exactly one is given.
pub(super) const LOAD_KEYS: &[&str] = &["rate_per_s", "in_flight"];

/// The keys that give a group's arguments, of which at most one is given.
const ARGUMENT_KEYS: [&str; 3] = ["args", "args_hex", "args_u64"];

/// Parses and checks a whole scenario.
pub(super) fn scenario(text: &str, origin: Origin) -> Result<Scenario, ScenarioError> {
    let source = Source::new(origin);

    // Syntax first; the parser's message already says where, with the line quoted.
    let table: Table = text.parse().map_err(|error: toml::de::Error| {
        let message = format!("invalid TOML: {}", error.to_string().trim_end());
        ScenarioError::new(source.origin.clone(), None, message)
    })?;
    let top = Fields::open(&source, &table, String::new(), TOP_KEYS, "the top level")?;

    let name = match top.string("name")? {
        Some(name) => scenario_name(&top, name)?,
        None => source.default_name(),
    };
    let settings = settings(&top)?;
    let groups = groups(&top)?;
    Ok(Scenario {
        name,
        origin: source.origin,
        settings,
        groups,
    })
}

/// Where the text came from, and the directory its relative paths start from.
struct Source {
    origin: Origin,
    /// The scenario file's directory; empty (the current directory) for the embedded one.
    base: PathBuf,
}

impl Source {
    fn new(origin: Origin) -> Source {
        let base = match &origin {
            Origin::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Origin::Embedded => PathBuf::new(),
        };
        Source { origin, base }
    }

    /// The name of a scenario that gives none: its file's stem, or `default`.
    fn default_name(&self) -> String {
        match &self.origin {
            Origin::File(path) => match path.file_stem() {
                Some(stem) => stem.to_string_lossy().into_owned(),
                None => "scenario".to_owned(),
            },
            Origin::Embedded => "default".to_owned(),
        }
    }

    /// Where relative paths start from, in words, for messages.
    fn base_in_words(&self) -> &'static str {
        match self.origin {
            Origin::File(_) => "relative to the scenario file's folder",
            Origin::Embedded => "relative to the current directory",
        }
    }
}

/// A TOML table being read, and its key path in the file (empty for the top level).
struct Fields<'a> {
    source: &'a Source,
    table: &'a Table,
    path: String,
}

impl<'a> Fields<'a> {
    /// Starts reading `table`, refusing any key that is not in `allowed`. `what` names the
    /// table for the message, as in "the keys of <what> are: ...".
    fn open(
        source: &'a Source,
        table: &'a Table,
        path: String,
        allowed: &[&str],
        what: &str,
    ) -> Result<Fields<'a>, ScenarioError> {
        let fields = Fields {
            source,
            table,
            path,
        };
        if let Some(unknown) = table.keys().find(|key| !allowed.contains(&key.as_str())) {
            let message = format!(
                "unknown key; the keys of {what} are: {}",
                allowed.join(", ")
            );
            return Err(fields.error(unknown, message));
        }
        Ok(fields)
    }

    /// The full key path of `key` in this table.
    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::new(
            self.source.origin.clone(),
            Some(self.key(key)),
            message.into(),
        )
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key)
    }

    fn mismatch(&self, key: &str, expected: &str, found: &Value) -> ScenarioError {
        self.error(
            key,
            format!("expected {expected}, found {}", describe(found)),
        )
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.mismatch(key, "a string", other)),
        }
    }

    /// A string that must be given and must not be empty.
    fn required_string(&self, key: &str) -> Result<&'a str, ScenarioError> {
        match self.string(key)? {
            None => Err(self.error(key, "missing; it is required")),
            Some("") => Err(self.error(key, "must not be empty")),
            Some(text) => Ok(text),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Boolean(value)) => Ok(Some(*value)),
            Some(other) => Err(self.mismatch(key, "true or false", other)),
        }
    }

    /// An integer from `min` to `max`.
    fn integer(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ScenarioError> {
        let value = match self.get(key) {
            None => return Ok(None),
            Some(Value::Integer(value)) => *value,
            Some(other) => return Err(self.mismatch(key, "an integer", other)),
        };
        if value < min {
            return Err(self.error(key, format!("must be at least {min}, found {value}")));
        }
        if value > max {
            return Err(self.error(key, format!("must be at most {max}, found {value}")));
        }
        Ok(Some(value))
    }

    /// A positive integer, as a count, at most `max`.
    fn count(&self, key: &str, max: usize) -> Result<Option<usize>, ScenarioError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let count = self.integer(key, 1, max)?;
        Ok(count.map(|count| usize::try_from(count).unwrap_or(usize::MAX)))
    }

    /// A number, written as an integer or a float.
    fn number(&self, key: &str) -> Result<Option<f64>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Float(value)) => Ok(Some(*value)),
            // Precision lost above 2^53 does not matter for rates and seconds.
            Some(Value::Integer(value)) => Ok(Some(*value as f64)),
            Some(other) => Err(self.mismatch(key, "a number", other)),
        }
    }

    /// A number of seconds, above 0 or, if `zero_allowed`, 0 or more.
    fn seconds(&self, key: &str, zero_allowed: bool) -> Result<Option<Duration>, ScenarioError> {
        let Some(seconds) = self.number(key)? else {
            return Ok(None);
        };
        let in_range = if zero_allowed {
            seconds >= 0.0
        } else {
            seconds > 0.0
        };
        if !(in_range && seconds <= MAX_SECONDS) {
            let range = if zero_allowed {
                format!("from 0 to {MAX_SECONDS}")
            } else {
                format!("above 0 and at most {MAX_SECONDS}")
            };
            return Err(self.error(
                key,
                format!("must be a number of seconds {range}, found {seconds}"),
            ));
        }
        // In range, so representable: the fallback is never taken.
        Ok(Some(
            Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO),
        ))
    }

    /// A path to an existing file (or directory, if `directory`), resolved from the scenario's
    /// base. The result is canonical when the platform allows it.
    fn existing_path(
        &self,
        key: &str,
        written: &str,
        directory: bool,
    ) -> Result<PathBuf, ScenarioError> {
        if written.is_empty() {
            return Err(self.error(key, "must not be empty"));
        }
        let joined = self.source.base.join(written);

        // Say where the path led, unless it was written absolute.
        let resolved = if Path::new(written).is_absolute() {
            String::new()
        } else {
            let shown = std::path::absolute(&joined).unwrap_or_else(|_| joined.clone());
            let base = self.source.base_in_words();
            format!(" (resolved {base}: {})", shown.display())
        };
        let fail = |problem: String| self.error(key, format!("{written:?} {problem}{resolved}"));

        let wanted = if directory { "a directory" } else { "a file" };
        match std::fs::metadata(&joined) {
            Ok(metadata) if metadata.is_dir() == directory => {
                Ok(std::fs::canonicalize(&joined).unwrap_or(joined))
            }
            Ok(_) => Err(fail(format!("is not {wanted}"))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(fail("does not exist".to_owned()))
            }
            Err(error) => Err(fail(format!("cannot be read ({error})"))),
        }
    }
}

/// A value's type and, for short scalars, the value, as in "an integer (5)".
fn describe(value: &Value) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    match value {
        Value::Array(_) | Value::Table(_) => format!("{article} {kind}"),
        scalar => format!("{article} {kind} ({scalar})"),
    }
}

/// The scenario's own name, which becomes part of the output folder's name.
fn scenario_name(top: &Fields<'_>, name: &str) -> Result<String, ScenarioError> {
    if name.is_empty() {
        return Err(top.error("name", "must not be empty"));
    }
    if name.contains(['/', '\\']) {
        return Err(top.error(
            "name",
            format!("{name:?} contains a path separator; the name becomes part of a folder name"),
        ));
    }
    Ok(name.to_owned())
}

/// The longest quantum: a second. Longer ones would switch preemption off in effect.
const MAX_QUANTUM_US: i64 = 1_000_000;

/// The most tenants one group may have.
const MAX_TENANTS: usize = 100_000;

/// The most calls one closed-loop tenant may keep in flight.
const MAX_IN_FLIGHT: usize = 10_000;
/// The most seconds any time in a scenario may be: a day, as for `--duration`.
const MAX_SECONDS: f64 = 86_400.0;
/// The highest open-loop rate of one tenant, in calls a second.
const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// The top-level settings, with defaults for those not given.
fn settings(top: &Fields<'_>) -> Result<Settings, ScenarioError> {
    let defaults = Settings::default();
    let min_quantum_us = i64::try_from(MIN_QUANTUM.as_micros()).expect("the minimum is small");
    let quantum_us = top
        .integer("quantum_us", min_quantum_us, MAX_QUANTUM_US)
        .map_err(|error| {
            let note = "(in microseconds, from 100 to 1000000)";
            top.error("quantum_us", format!("{} {note}", error.message()))
        })?;
    let seed = top.integer("seed", 0, i64::MAX)?;

    Ok(Settings {
        workers: top.count("workers", corelane_executor::placement::MAX_CPUS)?,
        pin: top.boolean("pin")?.unwrap_or(defaults.pin),
        fairness: match top.get("fairness") {
            Some(value) => fairness_modes(top, value)?,
            None => defaults.fairness,
        },
        quantum: quantum_us.map_or(defaults.quantum, |us| Duration::from_micros(us as u64)),
        duration: top
            .seconds("duration_s", false)?
            .unwrap_or(defaults.duration),
        warmup: top.seconds("warmup_s", true)?.unwrap_or(defaults.warmup),
        seed: seed.map_or(defaults.seed, |seed| seed as u64),
        max_rss_growth: max_rss_growth(top)?,
    })
}

/// The `max_rss_growth` key: a fraction from 0 to 10 (0.1 allows 10% growth).
fn max_rss_growth(top: &Fields<'_>) -> Result<Option<f64>, ScenarioError> {
    match top.number("max_rss_growth")? {
        Some(growth) if !(0.0..=10.0).contains(&growth) => Err(top.error(
            "max_rss_growth",
            format!("must be a fraction from 0 to 10 (0.1 allows 10% growth), found {growth}"),
        )),
        growth => Ok(growth),
    }
}

/// The `fairness` key: one mode name, or a non-empty array of them, run in that order.
fn fairness_modes(top: &Fields<'_>, value: &Value) -> Result<Vec<Fairness>, ScenarioError> {
    let mode = |key: String, value: &Value| match value {
        Value::String(name) => name
            .parse::<Fairness>()
            .map_err(|error| top.error(&key, error.to_string())),
        other => Err(top.mismatch(&key, "a mode name (never, epoch or fuel)", other)),
    };
    match value {
        Value::String(_) => Ok(vec![mode("fairness".to_owned(), value)?]),
        Value::Array(names) if names.is_empty() => Err(top.error(
            "fairness",
            "must name at least one mode (never, epoch or fuel)",
        )),
        Value::Array(names) => names
            .iter()
            .enumerate()
            .map(|(index, name)| mode(format!("fairness[{index}]"), name))
            .collect(),
        other => Err(top.mismatch("fairness", "an array of mode names", other)),
    }
}

/// The `[[group]]` tables, at least one, with unique names.
fn groups(top: &Fields<'_>) -> Result<Vec<Group>, ScenarioError> {
    let tables = match top.get("group") {
        Some(Value::Array(tables)) if !tables.is_empty() => tables,
        None | Some(Value::Array(_)) => {
            return Err(top.error("group", "a scenario needs at least one [[group]] table"));
        }
        Some(other) => {
            return Err(top.mismatch("group", "an array of tables (write [[group]])", other));
        }
    };

    let mut groups: Vec<Group> = Vec::with_capacity(tables.len());
    for (index, value) in tables.iter().enumerate() {
        let path = format!("group[{index}]");
        let Value::Table(table) = value else {
            return Err(top.mismatch(&path, "a table", value));
        };
        let fields = Fields::open(top.source, table, path, GROUP_KEYS, "a group")?;
        let group = group(&fields)?;

        // Reports and database names tell groups apart by name.
        if let Some(first) = groups.iter().position(|other| other.name == group.name) {
            let message = format!("{:?} is already the name of group[{first}]", group.name);
            return Err(fields.error("name", message));
        }
        groups.push(group);
    }
    Ok(groups)
}

/// One group, with defaults for the keys it does not give.
fn group(fields: &Fields<'_>) -> Result<Group, ScenarioError> {
    let name = fields.required_string("name")?.to_owned();
    let module = module_source(fields, fields.required_string("module")?)?;
    let reducer = fields.required_string("reducer")?.to_owned();
    let weight = fields.integer("weight", 1, i64::from(MAX_WEIGHT))?;
    let budget_ms = fields.integer("budget_ms", 1, i64::MAX)?;
    let preopen = match fields.string("preopen")? {
        Some(written) => Some(fields.existing_path("preopen", written, true)?),
        None => None,
    };

    Ok(Group {
        name,
        count: fields.count("count", MAX_TENANTS)?.unwrap_or(1),
        module,
        reducer,
        args: arguments(fields)?,
        load: load(fields)?,
        weight: weight.map_or(DEFAULT_WEIGHT, |weight| weight as u32),
        budget: budget_ms.map(|ms| Duration::from_millis(ms as u64)),
        preopen,
        recreate_every: fields.seconds("recreate_every_s", false)?,
        hostile: fields.boolean("hostile")?.unwrap_or(false),
    })
}

/// The `module` key: a sample's name, or a path to a `.wasm` or `.wat` file.
///
/// A string without `/` that does not end in `.wasm` or `.wat` is a sample's name.
fn module_source(fields: &Fields<'_>, written: &str) -> Result<ModuleSource, ScenarioError> {
    let names_a_sample =
        !written.contains('/') && !written.ends_with(".wasm") && !written.ends_with(".wat");
    if !names_a_sample {
        return Ok(ModuleSource::File(
            fields.existing_path("module", written, false)?,
        ));
    }
    if corelane_modules::get(written).is_some() {
        return Ok(ModuleSource::Sample(written.to_owned()));
    }

    let known: Vec<&str> = corelane_modules::all().iter().map(|s| s.name).collect();
    let message = format!(
        "no sample module is named {written:?}; the samples are: {} (a path to a module file \
         must contain '/' or end in .wasm or .wat)",
        known.join(", ")
    );
    Err(fields.error("module", message))
}

/// The arguments of every call: from `args`, `args_hex` or `args_u64`, or none.
fn arguments(fields: &Fields<'_>) -> Result<Vec<u8>, ScenarioError> {
    let given: Vec<&str> = ARGUMENT_KEYS
        .into_iter()
        .filter(|key| fields.get(key).is_some())
        .collect();
    if let [first, second, ..] = given[..] {
        let message =
            format!("give at most one of args, args_hex and args_u64 ({first} is given too)");
        return Err(fields.error(second, message));
    }

    if let Some(text) = fields.string("args")? {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(hex) = fields.string("args_hex")? {
        return decode_hex(hex).map_err(|message| fields.error("args_hex", message));
    }
    if let Some(value) = fields.integer("args_u64", 0, i64::MAX)? {
        return Ok((value as u64).to_le_bytes().to_vec());
    }
    Ok(Vec::new())
}

/// Bytes from a string of hex digit pairs, without prefix or separators.
fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if let Some((at, bad)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("{bad:?} at position {at} is not a hex digit"));
    }
    if !hex.len().is_multiple_of(2) {
        return Err(format!(
            "{} hex digits is an odd number; each byte takes two",
            hex.len()
        ));
    }
    let digits = hex.as_bytes();
    let byte = |pair: &[u8]| {
        let text = std::str::from_utf8(pair).expect("hex digits are ASCII");
        u8::from_str_radix(text, 16).expect("checked as hex digits")
    };
    Ok(digits.chunks(2).map(byte).collect())
}

/// The `load` table: `{ rate_per_s = ... }` (open loop) or `{ in_flight = ... }` (closed).
fn load(group: &Fields<'_>) -> Result<Load, ScenarioError> {
    let shape = "a table with one key: { rate_per_s = 20.0 } (open loop) or { in_flight = 1 } \
                 (closed loop)";
    let table = match group.get("load") {
        Some(Value::Table(table)) => table,
        Some(other) => return Err(group.mismatch("load", shape, other)),
        None => return Err(group.error("load", format!("missing; it is required: {shape}"))),
    };
    let fields = Fields::open(group.source, table, group.key("load"), LOAD_KEYS, "a load")?;

    match (
        fields.number("rate_per_s")?,
        fields.count("in_flight", MAX_IN_FLIGHT)?,
    ) {
        (Some(rate_per_s), None) => {
            if !(rate_per_s > 0.0 && rate_per_s <= MAX_RATE_PER_S) {
                let message = format!(
                    "must be a rate above 0 and at most {MAX_RATE_PER_S}, found {rate_per_s}"
                );
                return Err(fields.error("rate_per_s", message));
            }
            Ok(Load::Open { rate_per_s })
        }
        (None, Some(in_flight)) => Ok(Load::Closed { in_flight }),
        (Some(_), Some(_)) => Err(group.error(
            "load",
            "give only one of rate_per_s (open loop) and in_flight (closed loop), not both",
        )),
        (None, None) => Err(group.error("load", format!("is empty; expected {shape}"))),
    }
}
