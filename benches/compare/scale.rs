//! Item 10: memory per idle database, measured in a fresh child process per sample so that
//! memory freed by an earlier workload cannot hide what a new one takes.

use std::process::Command;
use std::time::Duration;

use corelane::executor::{Lane, Runtime};
use corelane::host::{Database, DatabaseOptions, Host};

use crate::measure::{Better, Case, Settings, System, alternate, median};
use crate::systems::{DbThread, ExecutorPerCore, SerialDb, TokioPerCore, cpus};

/// The flag that turns the bench binary into a scale child: `--scale-child WHAT COUNT`.
pub const CHILD_FLAG: &str = "--scale-child";

/// The bytes of memory resident now, from `/proc/self/statm` (pages of 4 KiB, as on x86-64
/// Linux); `None` where there is no such file.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs one child and reads the bytes per item it prints.
fn child(what: &str, count: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let output = Command::new(exe)
        .args([CHILD_FLAG, what, &count.to_string()])
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "scale child {what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// The parent's side: idle lanes (each system's per-database serialiser) and idle corelane
/// databases whose instances were dropped.
pub fn memory(settings: &Settings) -> Vec<Case> {
    let lanes = settings.pick(10_000, 500);
    let databases = settings.pick(2_000, 50);
    let [per_lane] = alternate(settings.rounds, |system| {
        let what = match system {
            System::Corelane => "corelane-lanes",
            System::TokioPerCore => "tokio-dbs",
            System::ThreadPerDb => "db-threads",
            System::AsyncExecutor => "executor-dbs",
        };
        child(what, lanes).map(|bytes| [bytes])
    });
    let mut per_database = Vec::new();
    for _ in 0..settings.rounds {
        per_database.extend(child("corelane-databases", databases));
    }
    vec![
        Case::new(
            format!("memory per idle lane ({lanes} lanes)"),
            "bytes",
            Better::Lower,
        )
        .values(per_lane),
        Case::new(
            format!("memory per idle database, instances dropped ({databases})"),
            "bytes",
            Better::Lower,
        )
        .values([median(&mut per_database), None, None, None]),
    ]
}

/// The child's side: builds the system, then `count` idle items, and prints the resident
/// bytes they added per item.
pub fn run_child(what: &str, count: usize) -> Result<(), String> {
    let settle = || std::thread::sleep(Duration::from_millis(100));
    let measure = |before: u64| -> Result<f64, String> {
        settle();
        let after = resident_bytes().ok_or("no /proc/self/statm")?;
        Ok(after.saturating_sub(before) as f64 / count as f64)
    };
    let baseline = || -> Result<u64, String> {
        settle();
        resident_bytes().ok_or_else(|| "no /proc/self/statm".to_owned())
    };

    let bytes = match what {
        "corelane-lanes" => {
            let runtime = Runtime::builder()
                .workers(2)
                .build()
                .map_err(|error| error.to_string())?;
            let before = baseline()?;
            let lanes: Vec<Lane<()>> = (0..count)
                .map(|_| runtime.lane(()))
                .collect::<Result<_, _>>()
                .map_err(|error| error.to_string())?;
            let bytes = measure(before)?;
            drop(lanes);
            bytes
        }
        "tokio-dbs" | "executor-dbs" => {
            // The per-core baselines' databases are the same: a worker index and a lock.
            let tokio = (what == "tokio-dbs").then(|| TokioPerCore::start(&cpus(2)));
            let executors = (what == "executor-dbs").then(|| ExecutorPerCore::start(&cpus(2)));
            let before = baseline()?;
            let dbs: Vec<SerialDb<()>> = (0..count)
                .map(|index| SerialDb::new(index % 2, ()))
                .collect();
            let bytes = measure(before)?;
            drop((dbs, tokio, executors));
            bytes
        }
        "db-threads" => {
            let before = baseline()?;
            let threads: Vec<DbThread<()>> = (0..count)
                .map(|_| DbThread::start(Some(64 << 10), None, || ()))
                .collect::<Result<_, _>>()
                .map_err(|error| error.to_string())?;
            let bytes = measure(before)?;
            drop(threads);
            bytes
        }
        "corelane-databases" => {
            let host = Host::builder()
                .runtime(Runtime::builder().workers(2))
                .build()
                .map_err(|error| error.to_string())?;
            let wasm = corelane::modules::wasm("echo").map_err(|error| error.to_string())?;
            let module = host
                .compile("echo", &wasm)
                .map_err(|error| error.to_string())?;
            let options = DatabaseOptions {
                max_idle_instances: 0,
                ..DatabaseOptions::default()
            };
            let create = |name: String| -> Result<Database, String> {
                let db = host
                    .create_database(&name, &module, options.clone())
                    .map_err(|error| error.to_string())?;
                // One call makes an instance, which the pool drops at its end.
                db.call_blocking("len", [])
                    .map_err(|error| error.to_string())?;
                Ok(db)
            };
            let warm = create("warm".into())?;
            let before = baseline()?;
            let dbs: Vec<Database> = (0..count)
                .map(|index| create(format!("db-{index}")))
                .collect::<Result<_, _>>()?;
            let bytes = measure(before)?;
            drop((dbs, warm));
            bytes
        }
        other => return Err(format!("unknown scale child {other:?}")),
    };
    println!("{bytes}");
    Ok(())
}
