//! Hostile modules (`modules/hostile/`, listed by `corelane_modules::hostile()`): each gets
//! its exact typed error, and a light neighbour on the same worker still answers correctly
//! after each one. No test measures time: calls are awaited with a generous deadline, past
//! which the host is taken to hang.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use corelane_executor::{Runtime, block_on};
use corelane_host::{
    Call, CallError, Database, DatabaseOptions, Fairness, Host, ImportLink, Module, ModuleError,
    TrapCode,
};
use corelane_modules::{Expected, Hostile};

/// A call's budget: short, so that loops end soon even on a busy machine.
const BUDGET: Duration = Duration::from_millis(100);

/// The memory limit of the hostile databases.
const MEMORY_LIMIT: u64 = 16 << 20;

/// The table limit of the hostile databases.
const TABLE_LIMIT: u64 = 10_000;

/// How long a call may take before the test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// A host with one worker, so that every database shares it, with fuel metered when this
/// build has the Fuel mode.
fn host() -> Host {
    Host::builder()
        .runtime(Runtime::builder().workers(1))
        .fuel(Fairness::Fuel.compiled_in().is_ok())
        .build()
        .expect("host builds")
}

/// The fairness modes this build has.
fn modes() -> impl Iterator<Item = Fairness> {
    Fairness::ALL
        .into_iter()
        .filter(|mode| mode.compiled_in().is_ok())
}

fn options(fairness: Fairness) -> DatabaseOptions {
    DatabaseOptions {
        fairness: Some(fairness),
        budget: BUDGET,
        memory_limit: MEMORY_LIMIT,
        table_limit: TABLE_LIMIT,
        ..DatabaseOptions::default()
    }
}

fn hostile(name: &str) -> &'static Hostile {
    corelane_modules::hostile()
        .iter()
        .find(|hostile| hostile.name == name)
        .unwrap_or_else(|| panic!("no hostile module is named {name}"))
}

fn compile(host: &Host, name: &str) -> Module {
    host.compile(name, &hostile(name).wasm())
        .unwrap_or_else(|error| panic!("{name} compiles: {error}"))
}

fn refused(host: &Host, name: &str) -> ModuleError {
    match host.compile(name, &hostile(name).wasm()) {
        Ok(_) => panic!("{name} was accepted"),
        Err(error) => error,
    }
}

/// A database of the hostile module `name` in `fairness` mode, next to `neighbour`.
fn database(host: &Host, name: &str, fairness: Fairness, neighbour: &Neighbour) -> Database {
    let db_name = format!("{name}-{fairness}");
    let db = host
        .create_database(&db_name, &compile(host, name), options(fairness))
        .expect("database");
    assert_eq!(db.lane().worker(), neighbour.db.lane().worker());
    db
}

/// Waits for a call, failing the test if it has not ended within [`PATIENCE`].
fn wait<T: Send + 'static>(call: Call<T>) -> Result<T, CallError> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(block_on(call).expect("not on a worker"));
    });
    receiver
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("a call did not end within {PATIENCE:?}: the host hangs"))
}

/// The variant name of an error, from its `Debug` form (`Timeout { budget: .. }`).
fn variant(error: &impl std::fmt::Debug) -> String {
    let debug = format!("{error:?}");
    let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
    debug[..end].to_owned()
}

/// A light database on the same worker, counting with the `counter` sample.
struct Neighbour {
    db: Database,
    count: u64,
}

impl Neighbour {
    fn new(host: &Host) -> Neighbour {
        let module = host
            .compile("counter", &corelane_modules::wasm("counter").unwrap())
            .unwrap();
        let db = host
            .create_database("neighbour", &module, DatabaseOptions::default())
            .unwrap();
        Neighbour { db, count: 0 }
    }

    /// One increment, which must see every earlier one.
    fn answers(&mut self) {
        self.count += 1;
        let count = wait(self.db.call("increment", [])).expect("the neighbour answers");
        assert_eq!(u64::from_le_bytes(count.try_into().unwrap()), self.count);
    }
}

#[test]
fn every_hostile_module_gets_the_error_its_catalogue_names() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for hostile in corelane_modules::hostile() {
        let compiled = host.compile(hostile.name, &hostile.wasm());
        match hostile.expected {
            Expected::AtCreation { error } => {
                let got = compiled.expect_err(hostile.name);
                assert_eq!(variant(&got), error, "{}: {got}", hostile.name);
            }
            Expected::AtCall { reducer, error } => {
                let module = compiled.unwrap_or_else(|e| panic!("{}: {e}", hostile.name));
                let options = options(host.fairness());
                let db = host
                    .create_database(hostile.name, &module, options)
                    .unwrap();
                let got = wait(db.call(reducer, [])).expect_err(hostile.name);
                assert_eq!(variant(&got), error, "{}: {got}", hostile.name);
            }
        }
        neighbour.answers();
    }
}

#[test]
fn hostile_files_load_as_text_with_the_same_error() {
    // Scenarios load the files by path; the host accepts WAT text as it is. The two cases
    // whose bulk is added in memory are harmless as files, as their headers say.
    let host = host();
    for hostile in corelane_modules::hostile() {
        let text = std::fs::read(hostile.path()).unwrap();
        let from_text = host.compile(hostile.name, &text).map(|_| ());
        let from_binary = host.compile(hostile.name, &hostile.wasm()).map(|_| ());
        match hostile.name {
            "too_large" | "huge_data" => assert_eq!(from_text, Ok(()), "{}", hostile.name),
            _ => assert_eq!(
                from_text.map_err(|error| variant(&error)),
                from_binary.map_err(|error| variant(&error)),
                "{}",
                hostile.name
            ),
        }
    }
}

#[test]
fn an_infinite_loop_in_a_reducer_times_out_in_every_mode_while_its_neighbour_answers() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for fairness in modes() {
        let forever = database(&host, "forever", fairness, &neighbour);
        let looping = forever.call("spin", []);
        if fairness != Fairness::Never {
            // The loop yields at quantum boundaries, so the neighbour runs meanwhile.
            for _ in 0..5 {
                neighbour.answers();
            }
        }
        assert_eq!(
            wait(looping).unwrap_err(),
            CallError::Timeout { budget: BUDGET },
            "{fairness}"
        );
        assert_eq!(
            forever.stats().instances_live,
            0,
            "{fairness}: the interrupted instance was dropped"
        );
        neighbour.answers();
    }
}

#[cfg(feature = "fairness-fuel")]
#[test]
fn an_infinite_loop_runs_out_of_fuel_before_its_budget_with_a_small_fuel_limit() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    let options = DatabaseOptions {
        fuel_limit: 5_000_000,
        fuel_yield_interval: 100_000,
        budget: Duration::from_secs(600),
        ..options(Fairness::Fuel)
    };
    let forever = host
        .create_database("forever", &compile(&host, "forever"), options)
        .unwrap();
    assert_eq!(
        wait(forever.call("spin", [])).unwrap_err(),
        CallError::OutOfFuel { limit: 5_000_000 }
    );
    neighbour.answers();
}

#[test]
fn an_infinite_start_function_times_out_and_never_makes_an_instance() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for fairness in modes() {
        let db = database(&host, "forever_start", fairness, &neighbour);
        // Twice: the first attempt's instance must not count against the instance limit.
        for _ in 0..2 {
            assert_eq!(
                wait(db.call("noop", [])).unwrap_err(),
                CallError::Timeout { budget: BUDGET },
                "{fairness}"
            );
            assert_eq!(db.stats().instances_live, 0, "{fairness}");
            neighbour.answers();
        }
    }
}

#[test]
fn memory_grown_to_the_maximum_hits_the_memory_limit() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for fairness in modes() {
        let db = database(&host, "memory_bomb", fairness, &neighbour);
        for reducer in ["grow", "grow_max"] {
            assert_eq!(
                wait(db.call(reducer, [])).unwrap_err(),
                CallError::MemoryLimit {
                    limit: MEMORY_LIMIT
                },
                "{fairness} {reducer}"
            );
            neighbour.answers();
        }
    }
}

#[test]
fn a_table_grown_to_the_maximum_hits_the_table_limit() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for fairness in modes() {
        let db = database(&host, "table_bomb", fairness, &neighbour);
        for reducer in ["grow", "grow_max"] {
            assert_eq!(
                wait(db.call(reducer, [])).unwrap_err(),
                CallError::TableLimit { limit: TABLE_LIMIT },
                "{fairness} {reducer}"
            );
            neighbour.answers();
        }
    }
}

#[test]
fn deep_recursion_overflows_the_stack_in_every_mode() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for fairness in modes() {
        let db = database(&host, "recursion", fairness, &neighbour);
        assert_eq!(
            wait(db.call("recurse", [])).unwrap_err(),
            CallError::StackOverflow,
            "{fairness}"
        );
        neighbour.answers();
    }
}

#[test]
fn a_data_segment_larger_than_its_memory_traps_when_an_instance_is_made() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    assert!(hostile("huge_data").wasm().len() > 1 << 20);
    for fairness in modes() {
        let db = database(&host, "huge_data", fairness, &neighbour);
        for _ in 0..2 {
            match wait(db.call("noop", [])).unwrap_err() {
                CallError::Trap {
                    code: Some(TrapCode::MemoryOutOfBounds),
                    ..
                } => {}
                other => panic!("{fairness}: {other:?}"),
            }
            assert_eq!(db.stats().instances_live, 0, "{fairness}");
            neighbour.answers();
        }
    }
}

#[test]
fn a_module_over_the_size_limit_is_refused_and_only_for_its_size() {
    let host = host();
    let bytes = hostile("too_large").wasm();
    assert_eq!(
        refused(&host, "too_large"),
        ModuleError::TooLarge {
            module: "too_large".into(),
            size: bytes.len(),
            limit: 2 << 20,
        }
    );

    // A host that takes larger modules runs it.
    let roomy = Host::builder()
        .runtime(Runtime::builder().workers(1))
        .max_module_bytes(4 << 20)
        .build()
        .unwrap();
    let module = roomy.compile("too_large", &bytes).unwrap();
    let db = roomy
        .create_database("large", &module, DatabaseOptions::default())
        .unwrap();
    assert_eq!(wait(db.call("noop", [])), Ok(Vec::new()));
}

#[test]
fn a_module_that_needs_threads_is_an_unsupported_proposal() {
    let host = host();
    match refused(&host, "unsupported_proposal") {
        ModuleError::UnsupportedProposal { module, message } => {
            assert_eq!(module, "unsupported_proposal");
            assert!(message.contains("shared"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_import_of_the_wrong_type_names_both_types() {
    let host = host();
    assert_eq!(
        refused(&host, "wrong_import"),
        ModuleError::ImportTypeMismatch {
            module: "wrong_import".into(),
            import_module: "corelane".into(),
            name: "put".into(),
            wanted: "(type (func (param i32 i32) (result i32)))".into(),
            offered: "(type (func (param i32 i32 i32 i32)))".into(),
        }
    );
}

#[test]
fn invalid_bytes_are_refused_as_binary_and_as_text() {
    let host = host();
    let invalid = hostile("invalid_bytes");
    for bytes in [invalid.wasm(), invalid.wat.as_bytes().to_vec()] {
        match host.compile("invalid_bytes", &bytes).unwrap_err() {
            ModuleError::InvalidBytes { module, .. } => assert_eq!(module, "invalid_bytes"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_module_that_hides_its_memory_is_missing_an_export() {
    let host = host();
    match refused(&host, "missing_export") {
        ModuleError::MissingExport { module, what } => {
            assert_eq!(module, "missing_export");
            assert!(what.contains("`memory`"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn results_outside_the_memory_are_bad_results() {
    let host = host();
    let mut neighbour = Neighbour::new(&host);
    for fairness in modes() {
        let db = database(&host, "bad_result", fairness, &neighbour);
        for (reducer, range) in [
            ("far", "0x7fff0000+16"),
            ("past_end", "0xfffa+16"),
            ("wrapping", "0x7fffffff+4294967295"),
            ("empty_past_end", "0x10001+0"),
        ] {
            assert_eq!(
                wait(db.call(reducer, [])).unwrap_err(),
                CallError::BadResult {
                    reason: format!(
                        "the reducer returned {range}, outside the memory of 65536 bytes"
                    )
                },
                "{fairness} {reducer}"
            );
            neighbour.answers();
        }
    }

    // The rule is `ptr + len <= memory size`: an empty range right at the end fits.
    let at_end = host
        .compile(
            "at_end",
            br#"(module (memory (export "memory") 1)
                (func (export "empty_at_end") (param i32 i32) (result i64)
                  (i64.shl (i64.const 65536) (i64.const 32))))"#,
        )
        .unwrap();
    let db = host
        .create_database("at_end", &at_end, DatabaseOptions::default())
        .unwrap();
    assert_eq!(wait(db.call("empty_at_end", [])), Ok(Vec::new()));
}

#[test]
fn inspecting_hostile_modules_describes_them_or_names_the_problem() {
    let host = host();
    for hostile in corelane_modules::hostile() {
        let inspected = host.inspect(hostile.name, &hostile.wasm());
        match hostile.name {
            // Bytes the host cannot compile: the same error as creating the module.
            "too_large" | "unsupported_proposal" | "invalid_bytes" => {
                assert_eq!(inspected.unwrap_err(), refused(&host, hostile.name));
            }
            "wrong_import" => {
                let description = inspected.unwrap();
                assert!(
                    matches!(description.imports[0].link, ImportLink::WrongType { .. }),
                    "{description:?}"
                );
            }
            "missing_export" => {
                let kind = inspected.unwrap().kind;
                assert!(kind.is_err_and(|why| why.contains("`memory`")));
            }
            _ => assert!(inspected.unwrap().kind.is_ok(), "{}", hostile.name),
        }
    }
}
