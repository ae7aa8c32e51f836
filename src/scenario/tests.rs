//! Unit tests of the scenario format: defaults, every kind of error, paths and overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use corelane_host::Fairness;

use super::parse::{GROUP_KEYS, LOAD_KEYS, TOP_KEYS};
use super::*;

/// The smallest valid group, to which each test adds or changes keys.
const GROUP: &str = r#"
[[group]]
name = "g"
module = "counter"
reducer = "increment"
load = { rate_per_s = 1.0 }
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, Origin::Embedded)
}

/// The error of `text`, which must not load.
fn error_of(text: &str) -> ScenarioError {
    match parse(text) {
        Ok(scenario) => panic!("loaded, but should not have: {scenario:?}\n{text}"),
        Err(error) => error,
    }
}

/// A folder of its own under the system's temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("corelane-scenario-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn embedded_default_parses() {
    let scenario = Scenario::embedded_default();
    assert_eq!(scenario.name, "default");
    assert_eq!(scenario.origin, Origin::Embedded);

    let settings = &scenario.settings;
    assert_eq!(settings.fairness, [Fairness::Epoch, Fairness::Never]);
    assert_eq!(settings.duration, Duration::from_secs(8));
    assert_eq!(settings.warmup, Duration::from_secs(1));
    assert_eq!(settings.workers, None);

    let names: Vec<&str> = scenario.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["light", "heavy"]);
    let [light, heavy] = &scenario.groups[..] else {
        unreachable!()
    };
    assert_eq!(light.count, 32);
    assert_eq!(light.module, ModuleSource::Sample("counter".into()));
    assert_eq!(light.load, Load::Open { rate_per_s: 20.0 });
    assert_eq!(heavy.count, 2);
    assert_eq!(heavy.module, ModuleSource::Sample("compute".into()));
    assert_eq!(heavy.reducer, "spin");
    assert_eq!(heavy.args.len(), 8);
    assert_eq!(heavy.load, Load::Closed { in_flight: 1 });
    assert_eq!(heavy.budget, Some(Duration::from_secs(10)));
}

#[test]
fn unset_keys_take_their_defaults() {
    let scenario = parse(GROUP).unwrap();
    assert_eq!(scenario.name, "default");
    assert_eq!(scenario.settings, Settings::default());
    assert_eq!(scenario.settings.fairness, [Fairness::Epoch]);
    assert_eq!(scenario.settings.quantum, Duration::from_millis(1));
    assert_eq!(scenario.settings.duration, Duration::from_secs(10));
    assert_eq!(scenario.settings.warmup, Duration::from_secs(1));
    assert!(scenario.settings.pin);

    let group = &scenario.groups[0];
    assert_eq!(group.count, 1);
    assert_eq!(group.weight, 100);
    assert!(group.args.is_empty());
    assert_eq!(group.budget, None);
    assert_eq!(group.preopen, None);
    assert_eq!(group.recreate_every, None);
    assert!(!group.hostile);
    assert_eq!(scenario.settings.max_rss_growth, None);
}

#[test]
fn every_setting_is_read() {
    let text = format!(
        r#"
        name = "mine"
        workers = 3
        pin = false
        fairness = ["never", "fuel", "epoch"]
        quantum_us = 250
        duration_s = 2.5
        warmup_s = 0
        seed = 42
        max_rss_growth = 0.1
        {GROUP}
        count = 7
        weight = 300
        budget_ms = 1500
        recreate_every_s = 0.5
        hostile = true
        "#
    );
    let scenario = parse(&text).unwrap();
    assert_eq!(scenario.name, "mine");
    assert_eq!(
        scenario.settings,
        Settings {
            workers: Some(3),
            pin: false,
            fairness: vec![Fairness::Never, Fairness::Fuel, Fairness::Epoch],
            quantum: Duration::from_micros(250),
            duration: Duration::from_millis(2500),
            warmup: Duration::ZERO,
            seed: 42,
            max_rss_growth: Some(0.1),
        }
    );
    let group = &scenario.groups[0];
    assert_eq!(group.count, 7);
    assert_eq!(group.weight, 300);
    assert_eq!(group.budget, Some(Duration::from_millis(1500)));
    assert_eq!(group.recreate_every, Some(Duration::from_millis(500)));
    assert!(group.hostile);
}

#[test]
fn one_fairness_mode_may_be_a_plain_string() {
    let scenario = parse(&format!("fairness = \"never\"\n{GROUP}")).unwrap();
    assert_eq!(scenario.settings.fairness, [Fairness::Never]);
}

#[test]
fn arguments_come_from_text_hex_or_a_little_endian_u64() {
    let args = |line: &str| {
        parse(&format!("{GROUP}{line}\n")).unwrap().groups[0]
            .args
            .clone()
    };
    assert_eq!(args("args = \"héllo\""), "héllo".as_bytes());
    assert_eq!(args("args_hex = \"00ff10Ab\""), [0x00, 0xff, 0x10, 0xab]);
    assert_eq!(args("args_hex = \"\""), [0u8; 0]);
    assert_eq!(args("args_u64 = 258"), 258u64.to_le_bytes());
}

#[test]
fn both_load_models_are_read() {
    let load = |table: &str| {
        let text = GROUP.replace("load = { rate_per_s = 1.0 }", &format!("load = {table}"));
        parse(&text).unwrap().groups[0].load
    };
    assert_eq!(load("{ rate_per_s = 2.5 }"), Load::Open { rate_per_s: 2.5 });
    assert_eq!(load("{ rate_per_s = 3 }"), Load::Open { rate_per_s: 3.0 });
    assert_eq!(load("{ in_flight = 4 }"), Load::Closed { in_flight: 4 });
}

// The case tables below keep one case per line (`rustfmt::skip`): rustfmt would spread each
// case over five lines, and a table is easier to scan and extend.

/// Top-level lines, each added to a valid scenario, with the key its error must name and a
/// piece of the message.
#[rustfmt::skip]
const SETTING_ERRORS: &[(&str, &str, &str)] = &[
    ("duraton_s = 1", "duraton_s", "keys of the top level are: name, workers"),
    (r#"name = """#, "name", "must not be empty"),
    (r#"name = "a/b""#, "name", "path separator"),
    ("workers = 0", "workers", "at least 1, found 0"),
    (r#"pin = "yes""#, "pin", "expected true or false, found a string"),
    (r#"fairness = "fast""#, "fairness", r#"unknown fairness mode "fast""#),
    (r#"fairness = ["epoch", 3]"#, "fairness[1]", "found an integer (3)"),
    (r#"fairness = ["never", "fst"]"#, "fairness[1]", "never, epoch or fuel"),
    ("fairness = []", "fairness", "at least one mode"),
    ("quantum_us = 99", "quantum_us", "at least 100, found 99"),
    ("duration_s = 0", "duration_s", "at most 86400, found 0"),
    ("duration_s = -1.5", "duration_s", "at most 86400, found -1.5"),
    ("duration_s = inf", "duration_s", "at most 86400, found inf"),
    ("duration_s = 1e300", "duration_s", "at most 86400"),
    ("duration_s = 100000", "duration_s", "at most 86400"),
    ("warmup_s = -0.5", "warmup_s", "from 0 to 86400, found -0.5"),
    ("seed = -1", "seed", "at least 0"),
];

/// Lines added to the group of a valid scenario, as above.
#[rustfmt::skip]
const GROUP_ERRORS: &[(&str, &str, &str)] = &[
    (r#"modul = "x""#, "group[0].modul", "keys of a group are: name, count"),
    ("count = 0", "group[0].count", "at least 1, found 0"),
    (r#"count = "3""#, "group[0].count", r#"expected an integer, found a string ("3")"#),
    ("weight = 0", "group[0].weight", "at least 1, found 0"),
    ("weight = 1_000_001", "group[0].weight", "at most 1000000"),
    ("budget_ms = 0", "group[0].budget_ms", "at least 1"),
    ("args = \"a\"\nargs_u64 = 1", "group[0].args_u64", "at most one of args"),
    (r#"args_hex = "0g""#, "group[0].args_hex", "'g' at position 1 is not a hex digit"),
    (r#"args_hex = "abc""#, "group[0].args_hex", "odd number"),
    ("args_u64 = -1", "group[0].args_u64", "at least 0"),
    (r#"preopen = "no/such/folder""#, "group[0].preopen", "does not exist"),
];

/// Replacements in the group of a valid scenario (what, by what), as above.
#[rustfmt::skip]
const REPLACED_ERRORS: &[(&str, &str, &str, &str)] = &[
    ("name = \"g\"\n", "", "group[0].name", "missing"),
    ("reducer = \"increment\"\n", "", "group[0].reducer", "missing"),
    (r#""increment""#, r#""""#, "group[0].reducer", "must not be empty"),
    (r#""counter""#, r#""countr""#, "group[0].module", "the samples are: counter, kv"),
    (r#""counter""#, "7", "group[0].module", "expected a string, found an integer"),
    ("load = { rate_per_s = 1.0 }\n", "", "group[0].load", "missing"),
    ("{ rate_per_s = 1.0 }", "5", "group[0].load", "expected a table with one key"),
    ("{ rate_per_s = 1.0 }", "{}", "group[0].load", "is empty"),
    ("1.0 }", "1.0, in_flight = 1 }", "group[0].load", "not both"),
    ("rate_per_s = 1.0", "rps = 1.0", "group[0].load.rps", "keys of a load are: rate_per_s"),
    ("rate_per_s = 1.0", "rate_per_s = 0.0", "group[0].load.rate_per_s", "at most 1000000, found 0"),
    ("rate_per_s = 1.0", "rate_per_s = -5", "group[0].load.rate_per_s", "at most 1000000, found -5"),
    ("rate_per_s = 1.0", "rate_per_s = 1e12", "group[0].load.rate_per_s", "at most 1000000, found 1000000000000"),
    ("rate_per_s = 1.0", "rate_per_s = nan", "group[0].load.rate_per_s", "at most 1000000, found NaN"),
    ("rate_per_s = 1.0", "rate_per_s = inf", "group[0].load.rate_per_s", "at most 1000000, found inf"),
    ("rate_per_s = 1.0", "in_flight = 0", "group[0].load.in_flight", "at least 1, found 0"),
];

/// Whole scenarios whose groups are wrong, as above.
#[rustfmt::skip]
const GROUPS_ERRORS: &[(&str, &str, &str)] = &[
    ("name = \"x\"\n", "group", "at least one [[group]]"),
    ("group = []\n", "group", "at least one [[group]]"),
    ("[group]\nname = \"g\"\n", "group", "expected an array of tables"),
    ("group = [1]\n", "group[0]", "expected a table, found an integer"),
];

/// Checks that `text` fails to load with an error that names `key` and says `fragment`.
fn assert_error(text: &str, key: &str, fragment: &str) {
    let error = error_of(text);
    assert_eq!(error.key(), Some(key), "{error}\n{text}");
    let message = error.message();
    assert!(
        message.contains(fragment),
        "{error}\nlacks: {fragment}\n{text}"
    );
    let shown = format!("the embedded default scenario: {key}: {message}");
    assert_eq!(error.to_string(), shown);
}

#[test]
fn every_error_names_its_key() {
    for (line, key, fragment) in SETTING_ERRORS {
        assert_error(&format!("{line}\n{GROUP}"), key, fragment);
    }
    for (line, key, fragment) in GROUP_ERRORS {
        assert_error(&format!("{GROUP}{line}\n"), key, fragment);
    }
    for (from, to, key, fragment) in REPLACED_ERRORS {
        assert!(GROUP.contains(from), "{from}");
        assert_error(&GROUP.replacen(from, to, 1), key, fragment);
    }
    for (text, key, fragment) in GROUPS_ERRORS {
        assert_error(text, key, fragment);
    }
}

#[test]
fn group_names_are_unique() {
    let text = format!("{GROUP}{GROUP}");
    assert_error(
        &text,
        "group[1].name",
        r#""g" is already the name of group[0]"#,
    );
}

#[test]
fn later_groups_are_named_by_their_index() {
    let text = format!(
        "{GROUP}{}",
        GROUP.replace("\"g\"", "\"h\"").replace("1.0", "-1.0")
    );
    assert_eq!(error_of(&text).key(), Some("group[1].load.rate_per_s"));
}

#[test]
fn syntax_errors_keep_the_line_and_column() {
    let error = error_of("name = \"x\"\nduration_s = = 3\n");
    assert_eq!(error.key(), None);
    let shown = error.to_string();
    assert!(
        shown.starts_with("the embedded default scenario: invalid TOML"),
        "{shown}"
    );
    assert!(shown.contains("line 2"), "{shown}");
}

#[test]
fn errors_name_the_file() {
    let dir = TempDir::new("errors-name-the-file");
    let path = dir.write("broken.toml", &format!("{GROUP}count = 0\n"));
    let error = Scenario::load(&path).unwrap_err();
    assert_eq!(error.file(), Some(path.as_path()));
    assert_eq!(
        error.to_string(),
        format!(
            "{}: group[0].count: must be at least 1, found 0",
            path.display()
        )
    );

    let missing = dir.0.join("missing.toml");
    let error = Scenario::load(&missing).unwrap_err();
    assert_eq!(error.key(), None);
    assert!(
        error.message().starts_with("cannot read the file"),
        "{error}"
    );
}

#[test]
fn name_defaults_to_the_file_stem() {
    let dir = TempDir::new("name-defaults-to-the-file-stem");
    let path = dir.write("busy-night.toml", GROUP);
    let scenario = Scenario::load(&path).unwrap();
    assert_eq!(scenario.name, "busy-night");
    assert_eq!(scenario.origin, Origin::File(path));
}

#[test]
fn paths_resolve_from_the_scenario_files_folder() {
    let dir = TempDir::new("paths-resolve-from-the-file");
    let module = dir.write("modules/app.wasm", "not checked here");
    dir.write("data/input.txt", "");
    let group = GROUP
        .replace("\"counter\"", "\"../modules/app.wasm\"")
        .replace("\"increment\"", "\"_start\"");
    let path = dir.write(
        "scenarios/app.toml",
        &format!("{group}preopen = \"../data\"\n"),
    );

    let scenario = Scenario::load(&path).unwrap();
    let group = &scenario.groups[0];
    let canonical = |path: &Path| std::fs::canonicalize(path).unwrap();
    assert_eq!(group.module, ModuleSource::File(canonical(&module)));
    assert_eq!(group.preopen, Some(canonical(&dir.0.join("data"))));
}

#[test]
fn a_missing_module_file_shows_the_path_as_written_and_as_resolved() {
    let dir = TempDir::new("missing-module-file");
    let group = GROUP.replace("\"counter\"", "\"gone.wasm\"");
    let path = dir.write("scenario.toml", &group);

    let error = Scenario::load(&path).unwrap_err();
    assert_eq!(error.key(), Some("group[0].module"));
    let resolved = std::path::absolute(dir.0.join("gone.wasm")).unwrap();
    let message = error.message();
    assert!(message.contains("\"gone.wasm\""), "{message}");
    assert!(
        message.contains(&resolved.display().to_string()),
        "{message}"
    );
    assert!(
        message.starts_with("\"gone.wasm\" does not exist (resolved"),
        "{message}"
    );
}

#[test]
fn module_must_be_a_file_and_preopen_a_directory() {
    let dir = TempDir::new("file-or-directory");
    dir.write("folder.wasm/inside", "");
    dir.write("plain", "");
    let path = dir.write(
        "scenario.toml",
        &GROUP.replace("\"counter\"", "\"folder.wasm\""),
    );
    let error = Scenario::load(&path).unwrap_err();
    assert_eq!(error.key(), Some("group[0].module"));
    assert!(
        error.message().contains("\"folder.wasm\" is not a file"),
        "{error}"
    );

    std::fs::write(&path, format!("{GROUP}preopen = \"plain\"\n")).unwrap();
    let error = Scenario::load(&path).unwrap_err();
    assert_eq!(error.key(), Some("group[0].preopen"));
    assert!(
        error.message().contains("\"plain\" is not a directory"),
        "{error}"
    );
}

#[test]
fn embedded_paths_resolve_from_the_current_directory() {
    // Tests run in the package's folder, which holds src/lib.rs.
    let group = GROUP.replace("\"counter\"", "\"src/lib.rs\"");
    let scenario = parse(&group).unwrap();
    let expected = std::fs::canonicalize("src/lib.rs").unwrap();
    assert_eq!(scenario.groups[0].module, ModuleSource::File(expected));

    let error = error_of(&GROUP.replace("\"counter\"", "\"nowhere/app.wat\""));
    assert!(
        error
            .message()
            .contains("relative to the current directory"),
        "{error}"
    );
}

#[test]
fn overrides_replace_only_what_they_give() {
    let mut scenario = Scenario::embedded_default();
    let before = scenario.clone();
    scenario.apply(&Overrides::default());
    assert_eq!(scenario, before);

    scenario.apply(&Overrides {
        duration: Some(Duration::from_secs(2)),
        fairness: Some(Fairness::Fuel),
        quantum: Some(Duration::from_micros(500)),
        workers: Some(4),
        pin: Some(false),
        seed: Some(9),
    });
    assert_eq!(
        scenario.settings,
        Settings {
            workers: Some(4),
            pin: false,
            fairness: vec![Fairness::Fuel],
            quantum: Duration::from_micros(500),
            duration: Duration::from_secs(2),
            warmup: before.settings.warmup,
            seed: 9,
            max_rss_growth: None,
        }
    );
    assert_eq!(scenario.groups, before.groups);
}

#[test]
fn the_documentation_describes_every_key() {
    let docs = include_str!("../../docs/scenarios.md");
    for key in TOP_KEYS.iter().chain(GROUP_KEYS).chain(LOAD_KEYS) {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/scenarios.md lacks `{key}`"
        );
    }
}
