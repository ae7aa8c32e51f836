//! The `corelane` command, end to end: short runs of the shipped scenarios, bad scenario
//! files, and the other commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn corelane() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corelane"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared real modules, or `None` (with the reason printed) when absent outside CI.
fn realwasm() -> Option<PathBuf> {
    let dir = repo().join("../shared/realwasm");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} is missing",
        dir.display()
    );
    eprintln!("skipped: {} is absent", dir.display());
    None
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corelane-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks one report object against the promises of docs/scenarios.md.
fn check_report(report: &Value, workers: u64) {
    let submitted = report["submitted"].as_u64().unwrap();
    let groups = report["groups"].as_array().unwrap();
    let accounted: u64 = groups
        .iter()
        .map(|g| g["jobs_ok"].as_u64().unwrap() + g["jobs_failed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        submitted, accounted,
        "every submitted call is ok or failed: {report}"
    );
    assert!(submitted > 0, "{report}");
    let mut share = 0.0;
    for group in groups {
        let latency = &group["latency_us"];
        let (p50, p99, p999, max) = (
            latency["p50"].as_u64().unwrap(),
            latency["p99"].as_u64().unwrap(),
            latency["p999"].as_u64().unwrap(),
            latency["max"].as_u64().unwrap(),
        );
        assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{group}");
        assert!(
            group["wait_us"]["p50"].as_u64().unwrap() <= group["wait_us"]["p99"].as_u64().unwrap()
        );
        share += group["cpu_share"].as_f64().unwrap();
    }
    // The lanes' counters are read one after another, microseconds apart, while the window's
    // ends are single instants: allow a hair of skew.
    assert!(
        share <= 1.0 + 1e-3,
        "CPU shares sum to at most one per worker: {share}"
    );
    assert_eq!(report["workers"].as_u64().unwrap(), workers);
    assert_eq!(
        report["worker_busy"].as_array().unwrap().len() as u64,
        workers
    );
    let jain = report["jain_index"].as_f64().unwrap();
    assert!(jain > 0.0 && jain <= 1.0 + 1e-9);
}

/// The `report.json` a run wrote to `out`.
fn read_report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn check_svg(path: &Path) {
    let svg = std::fs::read_to_string(path).unwrap();
    let document = roxmltree::Document::parse(&svg)
        .unwrap_or_else(|error| panic!("{}: not well-formed XML: {error}", path.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    assert!(
        document
            .descendants()
            .any(|node| node.has_tag_name("path") || node.has_tag_name("polyline")),
        "{}: no curve drawn",
        path.display()
    );
}

#[test]
fn churn_replaces_databases_without_failing_a_call() {
    // Without pause each tenant's database exits and a new one takes its place, while calls
    // keep arriving: each call reaches the old database before it exits, or the new one.
    let out = scratch("churn");
    let scenario = out.join("churn.toml");
    std::fs::write(
        &scenario,
        r#"name = "churn"
duration_s = 2.0
warmup_s = 0.2

[[group]]
name = "churning"
count = 8
module = "counter"
reducer = "increment"
load = { rate_per_s = 1000.0 }
recreate_every_s = 0.000001
"#,
    )
    .unwrap();
    let output = corelane()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let report: Value = read_report(&out);
    let group = &report["groups"][0];
    assert!(group["jobs_ok"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(group["jobs_failed"].as_u64().unwrap(), 0, "{report}");
}

#[test]
fn the_default_scenario_runs_both_modes_and_reports_them() {
    let out = scratch("default");
    let output = corelane()
        .args(["run", "--duration", "2", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("light") && stdout.contains("heavy"),
        "{}",
        text(&output)
    );

    let report: Value = read_report(&out);
    let runs = report
        .as_array()
        .expect("two modes give an array of two reports");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["fairness"], "epoch");
    assert_eq!(runs[1]["fairness"], "never");
    let workers = runs[0]["workers"].as_u64().unwrap();
    for run in runs {
        check_report(run, workers);
    }
    check_svg(&out.join("latency.svg"));
}

#[test]
fn the_sightglass_scenario_runs_real_programs() {
    if realwasm().is_none() {
        return;
    }
    let out = scratch("sightglass");
    let output = corelane()
        .args(["run"])
        .arg(repo().join("scenarios/sightglass.toml"))
        .args(["--duration", "3", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let report: Value = read_report(&out);
    let workers = report["workers"].as_u64().unwrap();
    check_report(&report, workers);
    check_svg(&out.join("latency.svg"));
}

/// Runs `corelane run` on a scenario text and returns its error output.
fn run_bad(name: &str, scenario: &str) -> String {
    let dir = scratch(name);
    let file = dir.join("bad.toml");
    std::fs::write(&file, scenario).unwrap();
    let output = corelane()
        .args(["run", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a bad scenario must fail: {}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains("bad.toml"),
        "the message names the file: {stderr}"
    );
    stderr
}

#[test]
fn bad_scenario_files_fail_with_messages_naming_file_and_key() {
    let unknown_key = run_bad(
        "unknown-key",
        "duration_s = 1\n[[group]]\nname = \"a\"\nmodule = \"counter\"\nreducer = \"increment\"\nload = { rate_per_s = 1.0 }\nrat = 3\n",
    );
    assert!(unknown_key.contains("rat"), "{unknown_key}");

    let missing_module = run_bad(
        "missing-module",
        "duration_s = 1\n[[group]]\nname = \"a\"\nmodule = \"nothere/x.wasm\"\nreducer = \"r\"\nload = { in_flight = 1 }\n",
    );
    assert!(
        missing_module.contains("module") && missing_module.contains("x.wasm"),
        "{missing_module}"
    );

    // A run that cannot start leaves no output folder behind.
    let dir = scratch("no-empty-out");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "duration_s = 1\n[[group]]\nname = \"a\"\nmodule = \"counter\"\nreducer = \"nope\"\nload = { in_flight = 1 }\n",
    )
    .unwrap();
    let out = dir.join("out");
    let output = corelane()
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    assert!(!out.exists(), "{} was left behind", out.display());

    let unknown_reducer = run_bad(
        "unknown-reducer",
        "duration_s = 1\n[[group]]\nname = \"a\"\nmodule = \"counter\"\nreducer = \"nope\"\nload = { in_flight = 1 }\n",
    );
    assert!(
        unknown_reducer.contains("group[0].reducer") && unknown_reducer.contains("nope"),
        "{unknown_reducer}"
    );
}

#[test]
fn wasi_prints_the_programs_expected_output() {
    let Some(dir) = realwasm() else { return };
    let shootout = dir.join("sightglass/shootout");
    for name in ["shootout-gimli", "shootout-sieve", "shootout-ackermann"] {
        let output = corelane()
            .arg("wasi")
            .arg(shootout.join(format!("{name}.wasm")))
            .arg("--dir")
            .arg(&shootout)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", text(&output));
        let expected_path = shootout.join(format!("{name}.stdout.expected"));
        let expected = std::fs::read(&expected_path)
            .unwrap_or_else(|error| panic!("{}: {error}", expected_path.display()));
        assert_eq!(output.stdout, expected, "{name}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("exit status 0"),
            "{}",
            text(&output)
        );
    }
}

#[test]
fn a_wasi_program_that_traps_prints_what_it_wrote_then_why_and_fails() {
    // Writes "partial\n" to stdout through fd_write, then traps.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "partial\n")
        (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 8))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            unreachable))"#;
    let dir = std::env::temp_dir().join(format!("corelane-cli-trap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("traps.wat");
    std::fs::write(&program, wat).unwrap();
    let output = corelane().arg("wasi").arg(&program).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(output.stdout, b"partial\n", "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("traps.wat") && stderr.contains("Trap"),
        "{}",
        text(&output)
    );
}

#[test]
fn call_and_inspect_work_on_samples_and_report_typed_errors() {
    let output = corelane()
        .args(["call", "counter", "increment"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("u64 1"),
        "{}",
        text(&output)
    );

    let output = corelane()
        .args(["call", "trap", "divide", "--hex", "00000000"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Trap"),
        "{}",
        text(&output)
    );

    let output = corelane().args(["inspect", "bank"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("reducer module") && stdout.contains("corelane::get"),
        "{stdout}"
    );

    let output = corelane()
        .args(["inspect", "no-such-sample"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn every_command_explains_its_flags() {
    for command in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["call", "--help"],
        vec!["wasi", "--help"],
        vec!["inspect", "--help"],
    ] {
        let output = corelane().args(&command).output().unwrap();
        assert!(output.status.success(), "{command:?}: {}", text(&output));
        assert!(!output.stdout.is_empty());
    }
    let output = corelane().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--duration",
        "--out",
        "--fairness",
        "--quantum",
        "--workers",
        "--no-pin",
        "--seed",
    ] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

#[test]
fn ctrl_c_ends_the_run_early_and_still_writes_the_report() {
    use std::io::{BufRead, BufReader};
    let out = scratch("interrupt");
    let mut child = corelane()
        .args(["run", "--duration", "60", "--out"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Without a terminal, progress comes as plain lines: the first one means it is running.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a progress line").unwrap();
    assert!(first.contains("calls"), "{first}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    let report: Value = read_report(&out);
    // The default scenario has two modes: still an array, holding the one that ran.
    let runs = report.as_array().expect("an array");
    assert_eq!(runs.len(), 1);
    check_report(&runs[0], runs[0]["workers"].as_u64().unwrap());
}

#[test]
fn bad_flags_and_unrunnable_modules_are_explained_not_panicked() {
    for args in [
        vec!["run", "--duration", "1e300"],
        vec!["run", "--duration", "-1"],
        vec!["run", "--quantum", "50"],
        vec!["run", "--workers", "0"],
        vec!["call", "counter", "increment", "--budget-ms", "0"],
    ] {
        let output = corelane().args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(if args[0] == "run" && args[1] != "--workers" {
                1
            } else {
                2
            }),
            "{args:?}: {}",
            text(&output)
        );
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("panicked"),
            "{args:?}: {}",
            text(&output)
        );
    }

    let output = corelane()
        .args(["call", "counter", "nope"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("increment"),
        "the reducers are listed: {}",
        text(&output)
    );

    // Negative numbers reach the flag's own check, which names the flag.
    for args in [
        vec!["run", "--seed", "-1"],
        vec!["run", "--quantum", "-5"],
        vec!["run", "--workers", "-1"],
        vec!["call", "counter", "increment", "--budget-ms", "-5"],
        vec!["call", "counter", "increment", "--u64", "-1"],
    ] {
        let output = corelane().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(
            stderr.contains(&format!(
                "invalid value '{}' for '{}",
                args[args.len() - 1],
                args[args.len() - 2]
            )),
            "{args:?}: {stderr}"
        );
    }

    // Hex arguments with a character that is not a hex digit, even one of several bytes.
    let output = corelane()
        .args(["call", "echo", "echo", "aé0", "--hex"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(stderr.contains("'é' is not a hex digit"), "{stderr}");
    let output = corelane()
        .args(["call", "echo", "echo", "--hex"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no ARGS were given"),
        "{}",
        text(&output)
    );

    // Text that is neither binary WebAssembly nor WAT: the parse error names the file.
    let text_file = scratch("not-wat").join("prose.wasm");
    std::fs::write(&text_file, "not wasm at all").unwrap();
    let output = corelane().arg("inspect").arg(&text_file).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("not valid WAT text") && stderr.contains("prose.wasm:1:1"),
        "{stderr}"
    );

    let garbage = scratch("garbage").join("garbage.wasm");
    std::fs::write(&garbage, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let output = corelane().arg("inspect").arg(&garbage).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("neither binary WebAssembly"),
        "{}",
        text(&output)
    );

    if let Some(dir) = realwasm() {
        // CoreMark imports env.clock_ms, which only an embedder provides: inspect says so.
        let output = corelane()
            .arg("inspect")
            .arg(dir.join("coremark/coremark-wasmi.wasm"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("env::clock_ms") && stdout.contains("NOT PROVIDED"),
            "{stdout}"
        );
    }
}
