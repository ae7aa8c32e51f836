//! Every scenario file in `scenarios/` loads, and the embedded default is the file it was
//! built from.

use std::path::{Path, PathBuf};

use corelane::scenario::{ModuleSource, Origin, Scenario};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.toml` file in `scenarios/`, sorted by name.
fn scenario_files() -> Vec<PathBuf> {
    let folder = repository().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    files.sort();
    files
}

/// Whether `../shared/realwasm`, which some scenarios read programs from, is here. Under CI
/// it must be.
fn realwasm_present() -> bool {
    let present = repository().join("../shared/realwasm").is_dir();
    assert!(
        present || std::env::var_os("CI").is_none(),
        "CI is set but ../shared/realwasm is missing"
    );
    present
}

#[test]
fn every_scenario_file_loads() {
    let files = scenario_files();
    assert!(files.len() >= 3, "too few scenario files: {files:?}");

    let mut loaded = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let needs_realwasm = text.contains("shared/realwasm");
        if needs_realwasm && !realwasm_present() {
            eprintln!(
                "skipped {}: ../shared/realwasm is absent (the shared real modules are not \
                 installed here)",
                path.display()
            );
            continue;
        }

        let scenario = Scenario::load(path).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(scenario.origin, Origin::File(path.clone()));

        // The runner checks reducers when it compiles the modules; the shipped files must
        // pass that check too, as far as it can be made here.
        for group in &scenario.groups {
            match &group.module {
                ModuleSource::Sample(name) => {
                    let sample = corelane::modules::get(name).unwrap();
                    assert!(
                        sample.reducers.contains(&group.reducer.as_str()),
                        "{}: group {}: sample {name} has no reducer {}",
                        path.display(),
                        group.name,
                        group.reducer
                    );
                }
                ModuleSource::File(module) => assert!(module.is_file(), "{}", module.display()),
            }
        }
        loaded += 1;
    }
    eprintln!("loaded {loaded} of {} scenario files", files.len());
}

#[test]
fn embedded_default_is_scenarios_default_toml() {
    let embedded = Scenario::embedded_default();
    let file = Scenario::load(&repository().join("scenarios/default.toml")).unwrap();
    assert_eq!(embedded.origin, Origin::Embedded);
    assert_eq!(embedded.name, file.name);
    assert_eq!(embedded.settings, file.settings);
    assert_eq!(embedded.groups, file.groups);
}

#[test]
fn sightglass_scenario_reads_the_shared_programs() {
    if !realwasm_present() {
        eprintln!("skipped: ../shared/realwasm is absent");
        return;
    }
    let path = repository().join("scenarios/sightglass.toml");
    let scenario = Scenario::load(&path).unwrap();
    let files = scenario
        .groups
        .iter()
        .filter(|group| matches!(group.module, ModuleSource::File(_)))
        .inspect(|group| assert_eq!(group.reducer, "_start", "{}", group.name))
        .count();
    assert_eq!(files, 4);
}
