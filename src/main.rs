//! The `corelane` command: runs multi-tenant scenarios, single calls, WASI programs, and
//! inspects modules. `corelane --help` and `corelane <command> --help` explain every flag.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use corelane::report;
use corelane::run::{self, Progress, RunOptions};
use corelane::scenario::{ModuleSource, Overrides, Scenario};
use corelane_executor::Runtime;
use corelane_host::{DatabaseOptions, Fairness, Host, ImportLink, ModuleKind};

/// corelane hosts many tenant databases on one machine and runs their WebAssembly reducers as
/// jobs on a thread-per-core runtime.
#[derive(Parser, Debug)]
#[command(name = "corelane", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a scenario: hosts its databases, drives load at them, and reports latency,
    /// fairness and CPU share. Without a file, runs the embedded default scenario.
    Run(RunArgs),
    /// Calls one reducer of a module on a fresh database and prints the result or the error.
    Call(CallArgs),
    /// Runs a WASI command program once and prints its output, then its exit status.
    Wasi(WasiArgs),
    /// Shows a module's imports and exports, its kind, and what the host would link for it.
    Inspect(InspectArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The scenario file (TOML; see docs/scenarios.md). Default: the embedded default.
    scenario: Option<PathBuf>,
    /// Measured seconds per fairness mode, replacing the scenario's `duration_s`.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Where to write report.json and latency.svg. Default: target/corelane/<scenario>-<time>.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run only this fairness mode (never, epoch or fuel), replacing the scenario's list.
    #[arg(long, value_name = "MODE")]
    fairness: Option<Fairness>,
    /// The epoch quantum in microseconds (100 to 1000000), replacing `quantum_us`.
    #[arg(long, value_name = "MICROSECONDS", allow_negative_numbers = true)]
    quantum: Option<u64>,
    /// How many workers (1 to 1024), replacing `workers` (default: one per allowed CPU).
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    workers: Option<u16>,
    /// Pin workers to their CPUs (the default).
    #[arg(long, conflicts_with = "no_pin")]
    pin: bool,
    /// Do not pin workers to CPUs.
    #[arg(long = "no-pin")]
    no_pin: bool,
    /// The seed of the open-loop arrival times, replacing `seed`.
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// Show no progress while running.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct CallArgs {
    /// A built-in sample's name (see `corelane inspect --samples`) or a .wat or .wasm file.
    module: String,
    /// The reducer to call (`_start` for a WASI command).
    reducer: String,
    /// The arguments, as text (UTF-8 bytes); with --hex, as hexadecimal bytes.
    args: Option<String>,
    /// Read ARGS as hexadecimal (e.g. 0a00000000000000).
    #[arg(long)]
    hex: bool,
    /// Pass ARGS as a little-endian u64 (e.g. --u64 1000 for compute.spin).
    #[arg(long, value_name = "N", allow_negative_numbers = true, conflicts_with_all = ["args", "hex"])]
    u64: Option<u64>,
    /// The fairness mode of the database (never, epoch or fuel).
    #[arg(long, value_name = "MODE", default_value = "epoch")]
    fairness: Fairness,
    /// The call's budget in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = 10_000, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    budget_ms: u64,
}

#[derive(clap::Args, Debug)]
struct WasiArgs {
    /// The program: a WASI preview1 command module (.wasm or .wat).
    program: PathBuf,
    /// A directory to preopen read-only as `.` for the program's input files.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The run's budget in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = 600_000, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    budget_ms: u64,
}

#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// A built-in sample's name or a .wat or .wasm file.
    #[arg(required_unless_present = "samples")]
    module: Option<String>,
    /// List the built-in samples instead.
    #[arg(long, conflicts_with = "module")]
    samples: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run_scenario(args),
        Command::Call(args) => call(args),
        Command::Wasi(args) => wasi(args),
        Command::Inspect(args) => inspect(args),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status after a run cut short by Ctrl-C (128 + SIGINT), once its report is written.
const INTERRUPTED: u8 = 130;

/// `corelane run`.
fn run_scenario(args: RunArgs) -> Result<ExitCode, String> {
    // Everything that can be wrong is checked before anything runs: the flags and the file
    // here, the modules and reducers by `run::run` before it starts any load.
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path).map_err(|error| error.to_string())?,
        None => Scenario::embedded_default(),
    };
    let duration = match args.duration {
        None => None,
        Some(seconds) => match Duration::try_from_secs_f64(seconds) {
            Ok(duration) if seconds > 0.0 && duration <= Duration::from_secs(86_400) => {
                Some(duration)
            }
            _ => {
                return Err(format!(
                    "--duration {seconds}: must be more than 0 and at most 86400 seconds"
                ));
            }
        },
    };
    if let Some(quantum) = args.quantum
        && !(100..=1_000_000).contains(&quantum)
    {
        return Err(format!(
            "--quantum {quantum}: must be from 100 to 1000000 microseconds"
        ));
    }
    scenario.apply(&Overrides {
        duration,
        fairness: args.fairness,
        quantum: args.quantum.map(Duration::from_micros),
        workers: args.workers.map(usize::from),
        pin: if args.no_pin {
            Some(false)
        } else if args.pin {
            Some(true)
        } else {
            None
        },
        seed: args.seed,
    });
    let out = match args.out {
        Some(out) if out.exists() && !out.is_dir() => {
            return Err(format!(
                "--out {}: exists and is not a directory",
                out.display()
            ));
        }
        Some(out) => out,
        None => default_out_dir(&scenario.name),
    };
    // Made now, so that an unwritable folder fails before the run; removed again if the run
    // cannot start and leaves it empty.
    let made_out = !out.exists();
    std::fs::create_dir_all(&out)
        .map_err(|error| format!("--out {}: cannot create it: {error}", out.display()))?;

    // Ctrl-C ends the measured window early; the report still covers what ran. A second
    // Ctrl-C exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || {
        if stopping.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\nstopping: finishing the calls in flight, then writing the report");
    });
    let progress = if args.quiet {
        Progress::Quiet
    } else {
        Progress::detect()
    };
    let outcome = run::run(&scenario, &RunOptions { progress, stop }).map_err(|error| {
        if made_out {
            // Only an empty folder goes: `remove_dir` refuses anything else.
            let _ = std::fs::remove_dir(&out);
        }
        error.to_string()
    })?;

    // An array whenever the scenario asks for more than one run, even if Ctrl-C cut it short.
    let several_runs =
        scenario.settings.fairness.len() > 1 || scenario.groups.iter().any(|group| group.hostile);
    let (json, svg) = report::write_outputs_shaped(&out, &outcome.runs, several_runs)
        .map_err(|error| format!("cannot write the report to {}: {error}", out.display()))?;
    let mut printed = Vec::new();
    report::print_table(&outcome.runs, &mut printed).map_err(|error| error.to_string())?;
    for warning in &outcome.warnings {
        printed.extend_from_slice(format!("\nwarning: {warning}").as_bytes());
    }
    if outcome.interrupted {
        printed.extend_from_slice(b"\ninterrupted: the report covers what ran before Ctrl-C");
    }
    printed.extend_from_slice(
        format!(
            "\n\nreport: {}\nlatency: {}\n",
            json.display(),
            svg.display()
        )
        .as_bytes(),
    );
    print_out(&printed);

    let grown = run::rss_growth_violations(&scenario, &outcome.runs);
    for violation in &grown {
        eprintln!("error: {violation}");
    }
    Ok(if outcome.interrupted {
        ExitCode::from(INTERRUPTED)
    } else if !grown.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn print_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
}

/// `target/corelane/<scenario>-<UTC date and time>`, with `-2`, `-3`... if that is taken.
fn default_out_dir(scenario: &str) -> PathBuf {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let stamp = format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    );
    let base = PathBuf::from("target").join("corelane");
    // Two runs started in the same second get folders of their own.
    let mut out = base.join(format!("{scenario}-{stamp}"));
    let mut next = 2;
    while out.exists() {
        out = base.join(format!("{scenario}-{stamp}-{next}"));
        next += 1;
    }
    out
}

/// The calendar date of a day counted from 1970-01-01 (the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A module given on the command line, by the scenario files' rule: a path if it contains a
/// `/` or ends in `.wat` or `.wasm`, else a built-in sample's name.
fn module_source(text: &str) -> ModuleSource {
    if text.contains('/') || text.ends_with(".wat") || text.ends_with(".wasm") {
        ModuleSource::File(PathBuf::from(text))
    } else {
        ModuleSource::Sample(text.to_owned())
    }
}

fn small_host(fairness: Fairness) -> Result<Host, String> {
    Host::builder()
        .runtime(Runtime::builder().workers(1))
        .fuel(fairness == Fairness::Fuel)
        .fairness(fairness)
        .build()
        .map_err(|error| error.to_string())
}

/// `corelane call`.
fn call(args: CallArgs) -> Result<ExitCode, String> {
    let bytes = match (&args.args, args.u64) {
        (_, Some(n)) => n.to_le_bytes().to_vec(),
        (Some(text), None) if args.hex => parse_hex(text)?,
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, None) if args.hex => {
            return Err("--hex reads ARGS as hexadecimal, but no ARGS were given".into());
        }
        (None, None) => Vec::new(),
    };
    let host = small_host(args.fairness)?;
    let source = module_source(&args.module);
    let module =
        run::load_module(&host, &source).map_err(|error| format!("{}: {error}", args.module))?;
    let options = DatabaseOptions {
        budget: Duration::from_millis(args.budget_ms),
        fairness: Some(args.fairness),
        ..DatabaseOptions::default()
    };
    let db = host
        .create_database(module.name(), &module, options)
        .map_err(|error| error.to_string())?;
    let started = Instant::now();
    let result = db.call_blocking(&args.reducer, bytes);
    let took = started.elapsed();
    match result {
        Ok(bytes) => {
            print_out(format!("ok: {}\n", describe_bytes(&bytes)).as_bytes());
            eprintln!("took {}", human(took));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {}: {error}", run::kind(&error));
            if let corelane_host::CallError::NoSuchReducer { .. } = error {
                eprintln!("the module's reducers: {}", module.reducers().join(", "));
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = text
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if let Some(bad) = digits.iter().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("--hex {text:?}: {bad:?} is not a hex digit"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("--hex {text:?}: an odd number of hex digits"));
    }
    Ok(digits
        .chunks(2)
        .map(|pair| {
            // Every digit was checked above.
            let digit = |c: char| c.to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) << 4 | digit(pair[1])
        })
        .collect())
}

/// Result bytes as text when they are printable, else hex; an 8-byte result also as a u64.
fn describe_bytes(bytes: &[u8]) -> String {
    let unit = if bytes.len() == 1 { "byte" } else { "bytes" };
    let mut out = format!("{} {unit}", bytes.len());
    if bytes.is_empty() {
        return out;
    }
    match std::str::from_utf8(bytes) {
        Ok(text)
            if text
                .chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t') =>
        {
            out.push_str(&format!(": {text:?}"));
        }
        _ => {
            let hex: Vec<String> = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(
                ": {}{}",
                hex.join(" "),
                if bytes.len() > 64 { " ..." } else { "" }
            ));
        }
    }
    if let Ok(eight) = <[u8; 8]>::try_from(bytes) {
        out.push_str(&format!(" (u64 {})", u64::from_le_bytes(eight)));
    }
    out
}

fn human(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} us")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// `corelane wasi`.
fn wasi(args: WasiArgs) -> Result<ExitCode, String> {
    let bytes = std::fs::read(&args.program)
        .map_err(|error| format!("cannot read {}: {error}", args.program.display()))?;
    let host = small_host(Fairness::Epoch)?;
    let name = args.program.file_stem().map_or_else(
        || "program".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    let module = host
        .compile(&name, &bytes)
        .map_err(|error| format!("{}: {error}", args.program.display()))?;
    if module.kind() != ModuleKind::Command {
        return Err(format!(
            "{}: not a WASI command (it exports no `_start`)",
            args.program.display()
        ));
    }
    let options = DatabaseOptions {
        budget: Duration::from_millis(args.budget_ms),
        preopen: args.dir.clone(),
        ..DatabaseOptions::default()
    };
    let db = host
        .create_database(&name, &module, options)
        .map_err(|error| error.to_string())?;
    let output = corelane_executor::block_on(db.run())
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("{}: {error}", args.program.display()))?;
    std::io::stdout()
        .write_all(&output.stdout)
        .map_err(|e| e.to_string())?;
    std::io::stderr()
        .write_all(&output.stderr)
        .map_err(|e| e.to_string())?;
    // A program stopped short of an exit status (a trap, its budget) says why, after what it
    // wrote, and fails.
    if let Some(error) = &output.error {
        eprintln!(
            "{}: {}: {error}, after {}",
            args.program.display(),
            run::kind(error),
            human(output.duration)
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "exit status {}, ran {}",
        output.status,
        human(output.duration)
    );
    Ok(ExitCode::from(u8::try_from(output.status).unwrap_or(1)))
}

/// `corelane inspect`.
fn inspect(args: InspectArgs) -> Result<ExitCode, String> {
    let mut out = String::new();
    if args.samples {
        for sample in corelane_modules::all() {
            out += &format!(
                "{:<14} {}  reducers: {}\n",
                sample.name,
                sample.summary,
                sample.reducers.join(", ")
            );
        }
        print_out(out.as_bytes());
        return Ok(ExitCode::SUCCESS);
    }
    let text = args.module.unwrap_or_default();
    let (name, bytes) = match module_source(&text) {
        ModuleSource::Sample(name) => {
            let bytes =
                corelane_modules::wasm(&name).map_err(|error| format!("{text}: {error}"))?;
            (name, bytes)
        }
        ModuleSource::File(path) => {
            let bytes = std::fs::read(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            (text.clone(), bytes)
        }
    };
    let host = small_host(Fairness::Never)?;
    // The host's error names the module already.
    let description = host
        .inspect(&name, &bytes)
        .map_err(|error| error.to_string())?;

    match &description.kind {
        Ok(ModuleKind::Command) => {
            out += &format!("{text}: a WASI command (entry point `_start`)\n")
        }
        Ok(ModuleKind::Reducers) => {
            out += &format!(
                "{text}: a reducer module; reducers: {}\n",
                description.reducers.join(", ")
            );
        }
        Err(problem) => out += &format!("{text}: cannot be run as it is: {problem}\n"),
    }
    let defaults = DatabaseOptions::default();
    if let Some(initial) = description.initial_memory
        && initial > defaults.memory_limit
    {
        out += &format!(
            "note: its initial memory of {initial} bytes is over the default limit of {} bytes\n",
            defaults.memory_limit
        );
    }
    out += "\nimports, and what the host links for them:\n";
    if description.imports.is_empty() {
        out += "  (none)\n";
    }
    let mut unlinked = 0;
    for import in &description.imports {
        let provider = match (&import.link, import.module.as_str()) {
            (ImportLink::Linked, "corelane") => "the corelane ABI (docs/abi.md)".to_owned(),
            (ImportLink::Linked, "wasi_snapshot_preview1") => {
                "corelane's WASI preview1 subset (host/src/wasi/)".to_owned()
            }
            (ImportLink::Linked, "bench") => "a no-op (Sightglass markers)".to_owned(),
            (ImportLink::Linked, _) => "a host function the embedder added".to_owned(),
            (ImportLink::Missing, _) => {
                unlinked += 1;
                "NOT PROVIDED: the host offers nothing by this name (an embedder can add it)"
                    .to_owned()
            }
            (ImportLink::WrongType { offered }, _) => {
                unlinked += 1;
                format!("WRONG TYPE: the host offers {offered}")
            }
        };
        out += &format!(
            "  {}::{}: {}\n      <- {provider}\n",
            import.module, import.name, import.wanted
        );
    }
    out += "\nexports:\n";
    for export in &description.exports {
        out += &format!("  {export}\n");
    }
    if unlinked > 0 {
        out += &format!("\n{unlinked} import(s) cannot be linked by this host as it is\n");
    }
    print_out(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}
