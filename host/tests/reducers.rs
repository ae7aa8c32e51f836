//! The host, end to end: reducers on databases, atomicity, preemption, limits, bad modules.

use std::thread;
use std::time::Duration;

use corelane_executor::{Runtime, block_on};
use corelane_host::{
    CallError, Database, DatabaseOptions, Fairness, Host, HostError, Module, ModuleError,
    NativeFailure, NativeModule,
};

fn host(workers: usize) -> Host {
    Host::builder()
        .runtime(Runtime::builder().workers(workers))
        .build()
        .expect("host builds")
}

/// A one-worker host whose engine meters fuel.
fn fuel_host() -> Host {
    Host::builder()
        .runtime(Runtime::builder().workers(1))
        .fuel(true)
        .build()
        .expect("host builds")
}

fn sample(host: &Host, name: &str) -> Module {
    let bytes = corelane_modules::wasm(name).expect("sample exists");
    host.compile(name, &bytes).expect("sample compiles")
}

fn database(host: &Host, sample_name: &str, db: &str, options: DatabaseOptions) -> Database {
    let module = sample(host, sample_name);
    host.create_database(db, &module, options)
        .expect("database")
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn named(name: &str) -> Vec<u8> {
    let mut args = (name.len() as u32).to_le_bytes().to_vec();
    args.extend_from_slice(name.as_bytes());
    args
}

#[test]
fn many_threads_counting_on_one_database_get_an_exact_count() {
    let host = host(2);
    let db = database(&host, "counter", "counts", DatabaseOptions::default());
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            thread::spawn(move || {
                let calls: Vec<_> = (0..250).map(|_| db.call("increment", [])).collect();
                for call in calls {
                    block_on(call).unwrap().unwrap();
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
    assert_eq!(le_u64(&db.call_blocking("get", []).unwrap()), 2000);
    let stats = db.stats();
    assert_eq!(stats.lane.completed, 2001);
    assert_eq!(
        stats.instances_live, 1,
        "a serial database needs one instance"
    );
}

#[test]
fn every_fairness_mode_runs_reducers() {
    let host = fuel_host();
    let module = sample(&host, "counter");
    for fairness in Fairness::ALL {
        if fairness.compiled_in().is_err() {
            continue;
        }
        let options = DatabaseOptions {
            fairness: Some(fairness),
            ..DatabaseOptions::default()
        };
        let db = host
            .create_database(&format!("count-{fairness}"), &module, options)
            .unwrap();
        db.call_blocking("increment", []).unwrap();
        let count = db.call_blocking("increment", []).unwrap();
        assert_eq!(le_u64(&count), 2, "mode {fairness}");
        assert_eq!(db.fairness(), fairness);
    }
}

#[test]
fn transfers_under_preemption_keep_the_total() {
    let host = Host::builder()
        .runtime(Runtime::builder().workers(1))
        .quantum(Duration::from_micros(200))
        .build()
        .unwrap();
    let bank = database(&host, "bank", "bank", DatabaseOptions::default());
    // A neighbour that computes keeps the worker busy, so quanta pass during transfers.
    let neighbour = database(&host, "compute", "busy", DatabaseOptions::default());
    for account in ["a", "b", "c"] {
        let mut args = named(account);
        args.extend_from_slice(&1000u64.to_le_bytes());
        bank.call_blocking("deposit", args).unwrap();
    }
    let busy: Vec<_> = (0..20)
        .map(|_| neighbour.call("spin", 2_000_000u64.to_le_bytes()))
        .collect();
    let transfers: Vec<_> = (0..300u64)
        .map(|i| {
            let (from, to) = [("a", "b"), ("b", "c"), ("c", "a")][i as usize % 3];
            let mut args = named(from);
            args.extend_from_slice(&named(to));
            args.extend_from_slice(&(i % 700).to_le_bytes());
            bank.call("transfer", args)
        })
        .collect();
    let mut refused = 0;
    for transfer in transfers {
        match block_on(transfer).unwrap() {
            Ok(_) => {}
            Err(CallError::Failed { code: -2, .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    for call in busy {
        block_on(call).unwrap().unwrap();
    }
    assert_eq!(
        le_u64(&bank.call_blocking("total", []).unwrap()),
        3000,
        "{refused} refused"
    );
}

/// Moves 1 from account `a` to `b`, computing for about 2 ms between the debit and the
/// credit, so that quanta end half-way; `move_then_trap` traps there instead of crediting.
const SLOW_TRANSFER: &str = r#"(module
    (import "corelane" "get" (func $get (param i32 i32 i32 i32) (result i32)))
    (import "corelane" "put" (func $put (param i32 i32 i32 i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "ab")
    (func $add (param $key i32) (param $delta i64)
        (i64.store (i32.const 16) (i64.const 0))
        (drop (call $get (local.get $key) (i32.const 1) (i32.const 16) (i32.const 8)))
        (i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (local.get $delta)))
        (call $put (local.get $key) (i32.const 1) (i32.const 16) (i32.const 8)))
    (func $spin
        (local $left i32)
        (local.set $left (i32.const 2000000))
        (loop $again
            (local.set $left (i32.sub (local.get $left) (i32.const 1)))
            (br_if $again (local.get $left))))
    (func (export "fund") (param i32 i32) (result i64)
        (call $add (i32.const 0) (i64.const 1000))
        (i64.const 0))
    (func (export "move") (param i32 i32) (result i64)
        (call $add (i32.const 0) (i64.const -1))
        (call $spin)
        (call $add (i32.const 1) (i64.const 1))
        (i64.const 0))
    (func (export "move_then_trap") (param i32 i32) (result i64)
        (call $add (i32.const 0) (i64.const -1))
        (call $spin)
        unreachable)
    (func (export "balances") (param i32 i32) (result i64)
        (i64.store (i32.const 32) (i64.const 0))
        (i64.store (i32.const 40) (i64.const 0))
        (drop (call $get (i32.const 0) (i32.const 1) (i32.const 32) (i32.const 8)))
        (drop (call $get (i32.const 1) (i32.const 1) (i32.const 40) (i32.const 8)))
        ;; The 16 bytes at 32: a, then b.
        (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 16))))"#;

#[test]
fn transfers_suspended_half_way_stay_atomic() {
    let host = Host::builder()
        .runtime(Runtime::builder().workers(1))
        .quantum(Duration::from_micros(200))
        .build()
        .unwrap();
    let module = host
        .compile("slow-transfer", SLOW_TRANSFER.as_bytes())
        .unwrap();
    let options = DatabaseOptions {
        fairness: Some(Fairness::Epoch),
        ..DatabaseOptions::default()
    };
    let bank = host.create_database("slow-bank", &module, options).unwrap();
    let neighbour = database(&host, "counter", "neighbour", DatabaseOptions::default());
    bank.call_blocking("fund", []).unwrap();

    // Calls of the neighbour run while a transfer is suspended between debit and credit.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let reducer = if i % 4 == 3 { "move_then_trap" } else { "move" };
            (bank.call(reducer, []), neighbour.call("increment", []))
        })
        .collect();
    let (mut moved, mut trapped) = (0u64, 0u64);
    for (transfer, increment) in calls {
        match block_on(transfer).unwrap() {
            Ok(_) => moved += 1,
            Err(CallError::Trap { .. }) => trapped += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
        block_on(increment).unwrap().unwrap();
    }
    assert_eq!((moved, trapped), (15, 5));
    assert!(bank.stats().lane.yields > 0, "no transfer was suspended");
    let balances = bank.call_blocking("balances", []).unwrap();
    let (a, b) = (le_u64(&balances[..8]), le_u64(&balances[8..]));
    // The trapped transfers' debits are gone with them; the others moved exactly 1 each.
    assert_eq!((a, b), (1000 - moved, moved));
}

#[test]
fn a_trap_leaves_no_writes_and_the_next_call_gets_a_fresh_instance() {
    let host = host(1);
    let module = host
        .compile(
            "write-then-trap",
            br#"(module
              (import "corelane" "put" (func $put (param i32 i32 i32 i32)))
              (import "corelane" "get" (func $get (param i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (global $calls (mut i32) (i32.const 0))
              (data (i32.const 0) "key" "value")
              (func (export "write_then_trap") (param i32 i32) (result i64)
                (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
                (call $put (i32.const 0) (i32.const 3) (i32.const 3) (i32.const 5))
                unreachable)
              ;; The value's length plus one as the result's length: 0 (empty) when absent.
              (func (export "read") (param i32 i32) (result i64)
                (i64.extend_i32_s (i32.add (i32.const 1)
                  (call $get (i32.const 0) (i32.const 3) (i32.const 64) (i32.const 8)))))
              (func (export "calls") (param i32 i32) (result i64)
                (i64.extend_i32_u (global.get $calls))))"#,
        )
        .unwrap();
    let db = host
        .create_database("traps", &module, DatabaseOptions::default())
        .unwrap();
    let error = db.call_blocking("write_then_trap", []).unwrap_err();
    assert!(
        matches!(
            &error,
            CallError::Trap {
                code: Some(corelane_host::TrapCode::UnreachableCodeReached),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        db.call_blocking("read", []),
        Ok(Vec::new()),
        "the write of the trapped call is not visible"
    );
    let reads = db.call("read", []);
    let _ = block_on(reads);
    // The trapped instance was dropped: a fresh one has never run `write_then_trap`.
    let calls = db.call("calls", []);
    assert_eq!(block_on(calls).unwrap(), Ok(Vec::new()));
    assert_eq!(db.stats().instances_live, 1);
}

#[test]
fn an_endless_loop_times_out_without_stopping_its_neighbours() {
    let host = Host::builder()
        .runtime(Runtime::builder().workers(1))
        .build()
        .unwrap();
    let options = DatabaseOptions {
        budget: Duration::from_millis(200),
        ..DatabaseOptions::default()
    };
    let forever = database(&host, "forever", "forever", options);
    let counter = database(&host, "counter", "counter", DatabaseOptions::default());
    assert_eq!(forever.lane().worker(), counter.lane().worker());

    let looping = forever.call("spin", []);
    // While the loop runs on the same worker, the neighbour's calls complete.
    for expected in 1..=20u64 {
        assert_eq!(
            le_u64(&counter.call_blocking("increment", []).unwrap()),
            expected
        );
    }
    let error = block_on(looping).unwrap().unwrap_err();
    assert_eq!(
        error,
        CallError::Timeout {
            budget: Duration::from_millis(200)
        }
    );
    assert!(
        forever.stats().lane.yields > 0,
        "the loop yielded at quantum boundaries"
    );
}

#[test]
fn never_mode_keeps_the_budget() {
    let host = host(1);
    let options = DatabaseOptions {
        fairness: Some(Fairness::Never),
        budget: Duration::from_millis(50),
        ..DatabaseOptions::default()
    };
    let forever = database(&host, "forever", "forever", options);
    let error = forever.call_blocking("spin", []).unwrap_err();
    assert_eq!(
        error,
        CallError::Timeout {
            budget: Duration::from_millis(50)
        }
    );
    assert_eq!(forever.stats().lane.yields, 0, "Never mode does not yield");
}

#[test]
fn an_endless_start_function_times_out() {
    let host = host(1);
    let options = DatabaseOptions {
        budget: Duration::from_millis(50),
        ..DatabaseOptions::default()
    };
    let db = database(&host, "forever_start", "start", options);
    let reducer = db.module().reducers()[0].clone();
    assert_eq!(
        db.call_blocking(&reducer, []).unwrap_err(),
        CallError::Timeout {
            budget: Duration::from_millis(50)
        }
    );
}

#[cfg(feature = "fairness-fuel")]
#[test]
fn fuel_mode_yields_and_runs_out() {
    let host = fuel_host();
    let options = DatabaseOptions {
        fairness: Some(Fairness::Fuel),
        fuel_limit: 50_000_000,
        fuel_yield_interval: 100_000,
        ..DatabaseOptions::default()
    };
    let db = database(&host, "compute", "fuel", options);
    db.call_blocking("spin", 100_000u64.to_le_bytes()).unwrap();
    assert!(db.stats().lane.yields > 0);
    let error = db
        .call_blocking("spin", 100_000_000u64.to_le_bytes())
        .unwrap_err();
    assert_eq!(error, CallError::OutOfFuel { limit: 50_000_000 });
    // Both calls are charged, the one that ran out with its whole limit.
    assert!(db.stats().fuel_used > 50_000_000, "{:?}", db.stats());
}

#[cfg(feature = "fairness-fuel")]
#[test]
fn fuel_used_before_a_trap_is_charged() {
    let host = fuel_host();
    // A million turns of a loop, then a trap.
    let wat = r#"(module
        (memory (export "memory") 1)
        (func (export "burn") (param i32 i32) (result i64)
            (local $left i32)
            (local.set $left (i32.const 1000000))
            (loop $again
                (local.set $left (i32.sub (local.get $left) (i32.const 1)))
                (br_if $again (local.get $left)))
            unreachable))"#;
    let module = host.compile("burn", wat.as_bytes()).unwrap();
    let options = DatabaseOptions {
        fairness: Some(Fairness::Fuel),
        ..DatabaseOptions::default()
    };
    let db = host.create_database("burner", &module, options).unwrap();
    assert_eq!(db.stats().fuel_used, 0);
    let error = db.call_blocking("burn", []).unwrap_err();
    assert!(matches!(error, CallError::Trap { .. }), "{error:?}");
    let charged = db.stats().fuel_used;
    assert!(charged >= 1_000_000, "charged {charged}");
    db.call_blocking("burn", []).unwrap_err();
    assert!(db.stats().fuel_used >= charged + 1_000_000);
}

#[cfg(feature = "fairness-fuel")]
#[test]
fn start_functions_and_commands_are_charged_their_fuel() {
    let host = fuel_host();
    let options = || DatabaseOptions {
        fairness: Some(Fairness::Fuel),
        fuel_limit: 10_000_000,
        ..DatabaseOptions::default()
    };
    // A loop of a million turns, run by the start function of each instance, by `_start`,
    // or for ever.
    let burn = |entry: &str| {
        format!(
            r#"(module
            (memory (export "memory") 1)
            (func $burn
                (local $left i32)
                (local.set $left (i32.const 1000000))
                (loop $again
                    (local.set $left (i32.sub (local.get $left) (i32.const 1)))
                    (br_if $again (local.get $left))))
            (func $forever (loop $again (br $again)))
            (func (export "nothing") (param i32 i32) (result i64) (i64.const 0))
            {entry})"#
        )
    };

    let module = host
        .compile("start_burns", burn("(start $burn)").as_bytes())
        .unwrap();
    let db = host
        .create_database("start_burns", &module, options())
        .unwrap();
    db.call_blocking("nothing", []).unwrap();
    let first = db.stats().fuel_used;
    assert!(first >= 1_000_000, "the start function is charged: {first}");
    // The instance is kept: the second call runs no start function.
    db.call_blocking("nothing", []).unwrap();
    let second = db.stats().fuel_used - first;
    assert!(second < 1_000, "a call alone costs little: {second}");

    let module = host
        .compile("start_forever", burn("(start $forever)").as_bytes())
        .unwrap();
    let db = host
        .create_database("start_forever", &module, options())
        .unwrap();
    let error = db.call_blocking("nothing", []).unwrap_err();
    assert_eq!(error, CallError::OutOfFuel { limit: 10_000_000 });
    assert!(db.stats().fuel_used >= 10_000_000, "{:?}", db.stats());

    let module = host
        .compile(
            "command",
            burn(r#"(export "_start" (func $burn))"#).as_bytes(),
        )
        .unwrap();
    let db = host.create_database("command", &module, options()).unwrap();
    let output = block_on(db.run()).unwrap().unwrap();
    assert_eq!(output.status, 0);
    let used = db.stats().fuel_used;
    assert!(used >= 1_000_000, "the command is charged: {used}");
}

#[test]
fn hostile_modules_get_their_typed_errors() {
    let host = host(1);
    let options = DatabaseOptions {
        memory_limit: 16 << 20,
        ..DatabaseOptions::default()
    };
    let bomb = database(&host, "memory_bomb", "bomb", options);
    assert_eq!(
        bomb.call_blocking("grow", []).unwrap_err(),
        CallError::MemoryLimit { limit: 16 << 20 }
    );

    let deep = database(&host, "recursion", "deep", DatabaseOptions::default());
    assert_eq!(
        deep.call_blocking("recurse", []).unwrap_err(),
        CallError::StackOverflow
    );

    let trap = database(&host, "trap", "trap", DatabaseOptions::default());
    assert_eq!(
        trap.call_blocking("divide", 8u32.to_le_bytes()).unwrap(),
        125_000u32.to_le_bytes()
    );
    let error = trap
        .call_blocking("divide", 0u32.to_le_bytes())
        .unwrap_err();
    assert!(matches!(
        error,
        CallError::Trap {
            code: Some(corelane_host::TrapCode::IntegerDivisionByZero),
            ..
        }
    ));
    let error = trap.call_blocking("oob", []).unwrap_err();
    assert!(matches!(
        error,
        CallError::Trap {
            code: Some(corelane_host::TrapCode::MemoryOutOfBounds),
            ..
        }
    ));

    // The hostile databases harmed nobody: a fresh counter still counts.
    let counter = database(&host, "counter", "counter", DatabaseOptions::default());
    assert_eq!(le_u64(&counter.call_blocking("increment", []).unwrap()), 1);
}

#[test]
fn reducer_failures_carry_their_code_and_message_and_roll_back() {
    let host = host(1);
    let bank = database(&host, "bank", "bank", DatabaseOptions::default());
    let mut deposit = named("alice");
    deposit.extend_from_slice(&10u64.to_le_bytes());
    bank.call_blocking("deposit", deposit).unwrap();
    let mut transfer = named("alice");
    transfer.extend_from_slice(&named("bob"));
    transfer.extend_from_slice(&50u64.to_le_bytes());
    match bank.call_blocking("transfer", transfer).unwrap_err() {
        CallError::Failed { code: -2, message } => assert!(message.is_some()),
        other => panic!("{other:?}"),
    }
    // The debit the reducer wrote before failing was rolled back.
    assert_eq!(
        le_u64(&bank.call_blocking("balance", *b"alice").unwrap()),
        10
    );
}

#[test]
fn bad_calls_are_typed_errors() {
    let host = host(1);
    let counter = database(&host, "counter", "counter", DatabaseOptions::default());
    assert_eq!(
        counter.call_blocking("nope", []).unwrap_err(),
        CallError::NoSuchReducer {
            database: "counter".into(),
            reducer: "nope".into()
        }
    );

    let no_alloc = host
        .compile(
            "no-alloc",
            br#"(module (memory (export "memory") 1)
                (func (export "r") (param i32 i32) (result i64) (i64.const 0)))"#,
        )
        .unwrap();
    let db = host
        .create_database("no-alloc", &no_alloc, DatabaseOptions::default())
        .unwrap();
    assert_eq!(db.call_blocking("r", []), Ok(Vec::new()));
    assert!(matches!(
        db.call_blocking("r", [1, 2, 3]).unwrap_err(),
        CallError::BadArguments { .. }
    ));

    let wild = host
        .compile(
            "wild",
            br#"(module
                (import "corelane" "put" (func $put (param i32 i32 i32 i32)))
                (memory (export "memory") 1)
                (func (export "bad_result") (param i32 i32) (result i64)
                  (i64.or (i64.shl (i64.const 0x20000) (i64.const 32)) (i64.const 16)))
                (func (export "bad_pointer") (param i32 i32) (result i64)
                  (call $put (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 0))
                  (i64.const 0)))"#,
        )
        .unwrap();
    let db = host
        .create_database("wild", &wild, DatabaseOptions::default())
        .unwrap();
    assert!(matches!(
        db.call_blocking("bad_result", []).unwrap_err(),
        CallError::BadResult { .. }
    ));
    assert_eq!(
        db.call_blocking("bad_pointer", []).unwrap_err(),
        CallError::BadPointer {
            import: "put",
            ptr: 65530,
            len: 100,
            memory: 65536
        }
    );
}

#[test]
fn bad_modules_fail_at_creation_with_errors_that_name_the_problem() {
    let host = host(1);
    let error = host.compile("junk", b"\0asm\x01\0\0\0\x99").unwrap_err();
    assert!(matches!(error, ModuleError::InvalidBytes { .. }), "{error}");
    assert!(matches!(
        host.compile("text", b"(module (func $f").unwrap_err(),
        ModuleError::InvalidBytes { .. }
    ));

    let error = host
        .compile(
            "wrong-import",
            br#"(module (import "corelane" "get" (func (param i32) (result i32))))"#,
        )
        .unwrap_err();
    match &error {
        ModuleError::ImportTypeMismatch {
            import_module,
            name,
            wanted,
            offered,
            ..
        } => {
            assert_eq!((import_module.as_str(), name.as_str()), ("corelane", "get"));
            assert!(wanted.contains("i32"), "{wanted}");
            assert!(offered.contains("i32 i32 i32 i32"), "{offered}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("corelane::get"), "{error}");

    let error = host
        .compile(
            "unknown-import",
            br#"(module (import "env" "clock_ms" (func (result i32))))"#,
        )
        .unwrap_err();
    assert!(
        matches!(&error, ModuleError::UnknownImport { name, .. } if name == "clock_ms"),
        "{error}"
    );

    let error = host
        .compile(
            "no-memory",
            br#"(module (func (export "r") (param i32 i32) (result i64) (i64.const 0)))"#,
        )
        .unwrap_err();
    assert!(
        matches!(&error, ModuleError::MissingExport { what, .. } if what.contains("memory")),
        "{error}"
    );
    let error = host.compile("nothing", b"(module)").unwrap_err();
    assert!(matches!(error, ModuleError::MissingExport { .. }));

    let error = host
        .compile(
            "shared",
            br#"(module (memory (export "memory") 1 1 shared))"#,
        )
        .unwrap_err();
    assert!(
        matches!(error, ModuleError::UnsupportedProposal { .. }),
        "{error}"
    );

    let big = vec![0u8; 3 << 20];
    assert!(matches!(
        host.compile("big", &big).unwrap_err(),
        ModuleError::TooLarge { .. }
    ));

    let module = host
        .compile(
            "fat",
            br#"(module (memory (export "memory") 100)
                (func (export "r") (param i32 i32) (result i64) (i64.const 0)))"#,
        )
        .unwrap();
    let options = DatabaseOptions {
        memory_limit: 1 << 20,
        ..DatabaseOptions::default()
    };
    let error = host.create_database("fat", &module, options).unwrap_err();
    assert!(
        matches!(error, HostError::Module(ModuleError::MemoryTooLarge { .. })),
        "{error}"
    );
}

#[test]
fn embedders_add_host_functions_of_their_own() {
    let host = Host::builder()
        .runtime(Runtime::builder().workers(1))
        .define(|linker| {
            linker.func_wrap("env", "clock_ms", || 42i32)?;
            Ok(())
        })
        .build()
        .unwrap();
    let module = host
        .compile(
            "clock",
            br#"(module (import "env" "clock_ms" (func $clock (result i32)))
                (memory (export "memory") 1)
                (func (export "now") (param i32 i32) (result i64) (i64.extend_i32_u (call $clock))))"#,
        )
        .unwrap();
    let db = host
        .create_database("clock", &module, DatabaseOptions::default())
        .unwrap();
    // The result's length is what the embedder's function returned.
    assert_eq!(db.call_blocking("now", []).unwrap().len(), 42);
}

#[test]
fn after_exit_calls_fail_with_no_such_module() {
    let host = host(1);
    let db = database(&host, "counter", "gone", DatabaseOptions::default());
    let queued: Vec<_> = (0..50).map(|_| db.call("increment", [])).collect();
    db.exit();
    assert_eq!(
        db.call_blocking("increment", []).unwrap_err(),
        CallError::NoSuchModule {
            database: "gone".into()
        }
    );
    for call in queued {
        block_on(call).unwrap().unwrap();
    }
    block_on(db.exited()).unwrap();
    assert!(host.database("gone").is_none());
    // The name is free again.
    let again = database(&host, "counter", "gone", DatabaseOptions::default());
    assert_eq!(le_u64(&again.call_blocking("increment", []).unwrap()), 1);
}

#[test]
fn a_handle_that_outlives_its_host_gets_no_such_module() {
    let host = host(1);
    let db = database(&host, "counter", "orphan", DatabaseOptions::default());
    drop(host);
    assert_eq!(
        db.call_blocking("increment", []).unwrap_err(),
        CallError::NoSuchModule {
            database: "orphan".into()
        }
    );
}

#[test]
fn a_native_reducer_knows_its_database_name() {
    let host = host(1);
    let module = Module::native(
        NativeModule::new("introspect")
            .reducer("whoami", |cx, _| Ok(cx.database().as_bytes().to_vec())),
    );
    for name in ["first", "second"] {
        let db = host
            .create_database(name, &module, DatabaseOptions::default())
            .unwrap();
        assert_eq!(db.call_blocking("whoami", []).unwrap(), name.as_bytes());
        assert_eq!(
            db.call_blocking("missing", []).unwrap_err(),
            CallError::NoSuchReducer {
                database: name.into(),
                reducer: "missing".into()
            }
        );
    }
}

#[test]
fn native_reducers_are_atomic_too() {
    let host = host(1);
    let module = Module::native(
        NativeModule::new("native-bank")
            .reducer("set", |cx, args| {
                cx.put(b"x", args);
                Ok(Vec::new())
            })
            .reducer("set_then_fail", |cx, args| {
                cx.put(b"x", args);
                Err(NativeFailure::new(-7, "refused"))
            })
            .reducer("set_then_panic", |cx, args| {
                cx.put(b"x", args);
                panic!("native reducer panicked on purpose")
            })
            .reducer("get", |cx, _| Ok(cx.get(b"x").unwrap_or_default().to_vec())),
    );
    let db = host
        .create_database("native", &module, DatabaseOptions::default())
        .unwrap();
    db.call_blocking("set", *b"one").unwrap();
    assert_eq!(
        db.call_blocking("set_then_fail", *b"two").unwrap_err(),
        CallError::Failed {
            code: -7,
            message: Some("refused".into())
        }
    );
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = db.call_blocking("set_then_panic", *b"three").unwrap_err();
    std::panic::set_hook(hook);
    assert!(
        matches!(panicked, CallError::Panicked { .. }),
        "{panicked:?}"
    );
    assert_eq!(db.call_blocking("get", []).unwrap(), b"one");
    assert_eq!(
        block_on(db.get(b"x")).unwrap().unwrap(),
        Some(b"one".to_vec())
    );
}

#[test]
fn idle_instances_are_dropped_after_their_timeout() {
    let host = host(1);
    let options = DatabaseOptions {
        idle_timeout: Duration::from_millis(100),
        ..DatabaseOptions::default()
    };
    let db = database(&host, "counter", "idle", options);
    db.call_blocking("increment", []).unwrap();
    assert_eq!(db.stats().instances_idle, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while db.stats().instances_live > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle instance was never dropped"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // A later call makes a new one.
    assert_eq!(le_u64(&db.call_blocking("increment", []).unwrap()), 2);
}

#[test]
fn an_aborted_call_leaves_nothing_and_reports_cancelled() {
    let host = host(1);
    let options = DatabaseOptions {
        budget: Duration::from_secs(60),
        ..DatabaseOptions::default()
    };
    let forever = database(&host, "forever", "forever", options);
    let looping = forever.call("spin", []);
    while forever.stats().lane.yields == 0 {
        thread::yield_now();
    }
    forever.lane().abort();
    assert_eq!(
        block_on(looping).unwrap().unwrap_err(),
        CallError::Cancelled
    );
    assert_eq!(
        forever.stats().instances_live,
        0,
        "the interrupted instance was dropped"
    );
}

#[test]
fn a_table_that_grows_past_its_limit_is_a_typed_error() {
    let host = host(1);
    let module = host
        .compile(
            "table-bomb",
            br#"(module (memory (export "memory") 1) (table $t 1 funcref)
                (func (export "grow") (param i32 i32) (result i64)
                  (if (i32.eq (table.grow $t (ref.null func) (i32.const 1000000)) (i32.const -1))
                    (then unreachable))
                  (i64.const 0)))"#,
        )
        .unwrap();
    let options = DatabaseOptions {
        table_limit: 10_000,
        ..DatabaseOptions::default()
    };
    let db = host
        .create_database("table-bomb", &module, options)
        .unwrap();
    assert_eq!(
        db.call_blocking("grow", []).unwrap_err(),
        CallError::TableLimit { limit: 10_000 }
    );
}
