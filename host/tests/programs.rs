//! Real WASI command programs from `../shared/realwasm`, run as jobs on databases.

use std::path::{Path, PathBuf};

use corelane_executor::{Runtime, block_on};
use corelane_host::{CallError, DatabaseOptions, Host, ModuleKind};

/// The shared folder of real modules, or `None` (with the reason printed) when it is absent
/// outside CI. Under CI its absence is a failure.
fn realwasm() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realwasm");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} is missing",
        dir.display()
    );
    eprintln!(
        "skipped: {} is absent (the shared real modules are not installed here)",
        dir.display()
    );
    None
}

fn host() -> Host {
    Host::builder()
        .runtime(Runtime::builder().workers(2))
        .build()
        .expect("host builds")
}

fn run_program(host: &Host, dir: &Path, name: &str, preopen: bool) {
    let path = dir.join("sightglass/shootout").join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap();
    let module = host.compile(name, &bytes).unwrap();
    assert_eq!(module.kind(), ModuleKind::Command);
    let options = DatabaseOptions {
        preopen: preopen.then(|| dir.join("sightglass/shootout")),
        ..DatabaseOptions::default()
    };
    let db = host.create_database(name, &module, options).unwrap();
    let output = block_on(db.run()).unwrap().unwrap();
    assert_eq!(
        output.status,
        0,
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = std::fs::read(
        dir.join("sightglass/shootout")
            .join(format!("{name}.stdout.expected")),
    )
    .unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&expected),
        "{name}: standard output differs"
    );
    // Through `call`, `_start` gives standard output too, and a fresh instance each run.
    assert_eq!(db.call_blocking("_start", []).unwrap(), output.stdout);
    assert_eq!(db.stats().instances_live, 0, "commands are never pooled");
}

#[test]
fn shootout_programs_print_their_expected_output_as_database_jobs() {
    let Some(dir) = realwasm() else { return };
    let host = host();
    for name in [
        "shootout-gimli",
        "shootout-xchacha20",
        "shootout-keccak",
        "shootout-sieve",
    ] {
        run_program(&host, &dir, name, false);
    }
    run_program(&host, &dir, "shootout-ackermann", true);
}

#[test]
fn a_reducer_call_on_a_command_is_a_typed_error() {
    let Some(dir) = realwasm() else { return };
    let host = host();
    let bytes = std::fs::read(dir.join("sightglass/noop/benchmark.wasm")).unwrap();
    let module = host.compile("noop", &bytes).unwrap();
    let db = host
        .create_database("noop", &module, DatabaseOptions::default())
        .unwrap();
    assert!(matches!(
        db.call_blocking("run", []).unwrap_err(),
        CallError::NoSuchReducer { .. }
    ));
    assert_eq!(block_on(db.run()).unwrap().unwrap().status, 0);
}
