//! Chaos: a thousand databases on every worker take a seeded random mix of work from several
//! threads at once, with load-aware balancing on, and the host shuts down with calls still in
//! flight.
//!
//! The mix: counter increments, Wasm reducers that trap, native reducers that panic, calls that
//! spin past their budget, reducers that refuse with a failure code, reads, forced moves,
//! weight changes, and database exits followed by a new database of the same name. The
//! interleaving differs from run to run; what is checked does not:
//!
//! 1. Every submission ends with exactly one outcome, and of a kind its reducer allows (an
//!    increment never traps, a trap is never reported as a timeout, nothing is cancelled before
//!    the shutdown).
//! 2. Each database's count equals its successful increments: the values its increments
//!    returned are exactly 1..=k for each incarnation of the database (a lost write repeats a
//!    value, a doubled or partial one skips a value), and a live database reads k.
//! 3. Every worker still runs tasks just before the shutdown, and none is stuck at it.
//! 4. No instance that trapped or was interrupted served another call: the Wasm tenant marks
//!    an instance as poisoned before it traps or spins, and a poisoned instance answers every
//!    later call with code -99.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use corelane::executor::{Balance, Handle, LaneError, Runtime};
use corelane::host::{
    Call, CallError, Database, DatabaseOptions, Host, Module, NativeFailure, NativeModule,
};
use futures_lite::future::block_on;

const DATABASES: usize = 1_000;
const THREADS: u64 = 4;
const OPS_PER_THREAD: usize = 25_000;
/// Calls a thread keeps in flight before it waits for them.
const IN_FLIGHT: usize = 32;
/// Calls each thread leaves in flight when the host shuts down.
const LAST_FLIGHT: usize = 500;
const SEED: u64 = 0x00c0_4e1a_4e5e_ed00;
/// Far longer than the test takes on a busy machine; past it the test is stuck, not slow.
const STUCK_AFTER: Duration = Duration::from_secs(600);
/// The count the faulty reducers scribble before they fail; it must never be read back.
const SCRIBBLE: u64 = 0x7777;

#[test]
fn chaos_loses_nothing_doubles_nothing_and_reuses_no_broken_instance() {
    let _watchdog = common::watchdog("chaos", STUCK_AFTER);
    silence_intended_panics();

    let host = Host::builder()
        .runtime(Runtime::builder().pin(false).balance(Balance {
            period: Duration::from_millis(20),
            threshold: 0.1,
            min_interval: Duration::from_millis(100),
        }))
        .build()
        .expect("the host builds");
    let world = World::new(&host);

    // The storm: every thread submits its share of the mix, IN_FLIGHT calls at a time.
    let tallies: Vec<Tally> = thread::scope(|scope| {
        let storms: Vec<_> = (0..THREADS)
            .map(|thread| {
                let world = &world;
                scope.spawn(move || world.storm(thread))
            })
            .collect();
        storms
            .into_iter()
            .map(|storm| storm.join().expect("a storm thread"))
            .collect()
    });
    let mut tally = Tally::merge(tallies);
    tally.report("storm");
    tally.assert_clean();
    assert!(
        tally.count(Action::Increment, "ok") > 30_000,
        "too few increments succeeded"
    );
    assert!(tally.count(Action::Fault, "trap") > 0 && tally.count(Action::Fault, "panicked") > 0);
    assert!(
        tally.count(Action::Spin, "timeout") > 0,
        "no call ran past its budget"
    );
    assert!(tally.moves > 0 && tally.weights > 0 && tally.exits > 0);

    // Quiet now: counts, lane counters and exited databases can be checked exactly.
    world.check_counts(&tally);
    for old in &tally.exited {
        assert!(old.is_exited());
        block_on(old.exited());
    }
    probe_every_worker(host.runtime());

    // The last flight: calls left in flight from every thread while the host shuts down.
    let last: Vec<Submitted> = thread::scope(|scope| {
        let flights: Vec<_> = (0..THREADS)
            .map(|thread| {
                let world = &world;
                scope.spawn(move || world.last_flight(thread))
            })
            .collect();
        flights
            .into_iter()
            .flat_map(|flight| flight.join().expect("a flight thread"))
            .collect()
    });
    drop(world);
    let report = host.shutdown(Duration::from_millis(5));
    assert!(report.stuck_workers.is_empty(), "stuck workers: {report:?}");

    let mut after = Tally::default();
    for submitted in last {
        after.record(block_on(submitted.settle()), Phase::Shutdown);
    }
    after.report("last flight");
    after.assert_clean();
    for (key, values) in after.values {
        tally.values.entry(key).or_default().extend(values);
    }
    assert_contiguous(&tally.values);
}

/// What a thread does in one step of the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Action {
    Increment,
    /// A Wasm trap or a native panic, after a scribbled write.
    Fault,
    /// A Wasm loop past the budget (an increment on a native database, which cannot spin).
    Spin,
    /// A failure code after a scribbled write.
    Refuse,
    Read,
}

impl Action {
    fn pick(rng: &mut Rng) -> Action {
        match rng.below(100) {
            0..70 => Action::Increment,
            70..80 => Action::Fault,
            80..83 => Action::Spin,
            83..90 => Action::Refuse,
            _ => Action::Read,
        }
    }

    fn reducer(self, native: bool) -> &'static str {
        match (self, native) {
            (Action::Increment, _) | (Action::Spin, true) => "increment",
            (Action::Fault, false) => "trap",
            (Action::Fault, true) => "panic",
            (Action::Spin, false) => "spin",
            (Action::Refuse, _) => "refuse",
            (Action::Read, _) => unreachable!("a read is not a reducer call"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Storm,
    Shutdown,
}

/// The live incarnation of the database named `chaos-{index}`.
struct Slot {
    db: Database,
    incarnation: u32,
    native: bool,
}

struct World<'h> {
    host: &'h Host,
    wasm: Module,
    native: Module,
    options: DatabaseOptions,
    slots: Vec<Mutex<Slot>>,
}

impl<'h> World<'h> {
    fn new(host: &'h Host) -> World<'h> {
        let wasm = host
            .compile("poison-counter", include_bytes!("chaos/poison_counter.wat"))
            .expect("the chaos module compiles");
        let native = Module::native(native_counter());
        let options = DatabaseOptions {
            budget: Duration::from_millis(3),
            ..host.database_defaults()
        };
        let mut world = World {
            host,
            wasm,
            native,
            options,
            slots: Vec::with_capacity(DATABASES),
        };
        for index in 0..DATABASES {
            // One database in four runs native reducers.
            let native = index % 4 == 3;
            let db = world.create(index, native);
            world.slots.push(Mutex::new(Slot {
                db,
                incarnation: 0,
                native,
            }));
        }
        world
    }

    fn create(&self, index: usize, native: bool) -> Database {
        let module = if native { &self.native } else { &self.wasm };
        self.host
            .create_database(&format!("chaos-{index}"), module, self.options.clone())
            .expect("a chaos database is created")
    }

    fn slot(&self, index: usize) -> MutexGuard<'_, Slot> {
        self.slots[index]
            .lock()
            .expect("no thread panics holding a slot")
    }

    /// One thread's share of the storm.
    fn storm(&self, thread: u64) -> Tally {
        let mut rng = Rng(SEED ^ thread.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let workers = self.host.runtime().workers();
        let mut tally = Tally::default();
        let mut in_flight = Vec::with_capacity(IN_FLIGHT);

        for _ in 0..OPS_PER_THREAD {
            let index = rng.below(DATABASES as u64) as usize;
            match rng.below(100) {
                0..90 => in_flight.push(self.submit(index, Action::pick(&mut rng))),
                90..95 => {
                    let worker = rng.below(workers as u64) as usize;
                    let moved = self.slot(index).db.lane().move_to(worker);
                    tally.lane_change("move", moved);
                }
                95..99 => {
                    let weight = 1 + rng.below(8) as u32;
                    let changed = self.slot(index).db.lane().set_weight(weight);
                    tally.lane_change("weight", changed);
                }
                _ => tally.exited.push(self.recreate(index)),
            }

            if in_flight.len() == IN_FLIGHT {
                tally.settle_all(&mut in_flight);
            }
        }
        tally.settle_all(&mut in_flight);
        tally.moves = tally.lane_changes.get("move").copied().unwrap_or(0);
        tally.weights = tally.lane_changes.get("weight").copied().unwrap_or(0);
        tally.exits = tally.exited.len() as u64;
        tally
    }

    /// Calls submitted and left in flight, for the shutdown.
    fn last_flight(&self, thread: u64) -> Vec<Submitted> {
        let mut rng = Rng(!SEED ^ thread);
        (0..LAST_FLIGHT)
            .map(|_| {
                let index = rng.below(DATABASES as u64) as usize;
                self.submit(index, Action::pick(&mut rng))
            })
            .collect()
    }

    fn submit(&self, index: usize, action: Action) -> Submitted {
        // The slot's lock covers reading the incarnation, not the call: another thread may
        // exit this incarnation before the call is queued, and it then fails NoSuchModule.
        let (db, incarnation, native) = {
            let slot = self.slot(index);
            (slot.db.clone(), slot.incarnation, slot.native)
        };
        let call = match action {
            Action::Read => Pending::Read(db.get(b"n")),
            _ => Pending::Bytes(db.call(action.reducer(native), Vec::new())),
        };
        Submitted {
            key: (index, incarnation),
            action,
            native,
            call,
        }
    }

    /// Exits the database in `index` and creates a new one of the same name; returns the old.
    fn recreate(&self, index: usize) -> Database {
        let mut slot = self.slot(index);
        slot.db.exit();
        let new = self.create(index, slot.native);
        slot.incarnation += 1;
        std::mem::replace(&mut slot.db, new)
    }

    /// Every live database reads exactly its successful increments, and its lane accounts
    /// for every job it took.
    fn check_counts(&self, tally: &Tally) {
        for index in 0..DATABASES {
            let (db, incarnation) = {
                let slot = self.slot(index);
                (slot.db.clone(), slot.incarnation)
            };
            let stored = block_on(db.get(b"n")).expect("a live database reads");
            let count = stored.map_or(0, |bytes| decode_count(&bytes));
            let increments = tally.values.get(&(index, incarnation)).map_or(0, Vec::len);
            assert_eq!(
                count, increments as u64,
                "chaos-{index} (incarnation {incarnation}) counts {count} \
                 after {increments} successful increments"
            );

            let lane = db.stats().lane;
            assert_eq!(lane.queued, 0, "chaos-{index} is quiet");
            assert_eq!(
                lane.cancelled, 0,
                "chaos-{index} had a job cancelled before shutdown"
            );
            assert_eq!(
                lane.submitted,
                lane.completed + lane.panicked,
                "chaos-{index}: every job it took ended once: {lane:?}"
            );
        }
        assert_contiguous(&tally.values);
    }
}

/// The native tenant: the same counter and faults as the Wasm one, in Rust.
fn native_counter() -> NativeModule {
    NativeModule::new("native-counter")
        .reducer("increment", |cx, _| {
            let count = cx.get(b"n").map_or(0, decode_count) + 1;
            cx.put(b"n", &count.to_le_bytes());
            Ok(count.to_le_bytes().to_vec())
        })
        .reducer("panic", |cx, _| {
            cx.put(b"n", &SCRIBBLE.to_le_bytes());
            panic!("chaos: a native reducer panics on purpose")
        })
        .reducer("refuse", |cx, _| {
            cx.put(b"n", &SCRIBBLE.to_le_bytes());
            Err(NativeFailure::new(-7, "chaos: refused on purpose"))
        })
}

fn decode_count(bytes: &[u8]) -> u64 {
    let bytes: [u8; 8] = bytes.try_into().expect("a count is 8 bytes");
    let count = u64::from_le_bytes(bytes);
    assert_ne!(count, SCRIBBLE, "a failed call's write became visible");
    count
}

enum Pending {
    Bytes(Call<Vec<u8>>),
    Read(Call<Option<Vec<u8>>>),
}

/// A call in flight and what it was.
struct Submitted {
    /// The database's index and incarnation.
    key: (usize, u32),
    action: Action,
    native: bool,
    call: Pending,
}

/// A call's one outcome.
struct Ended {
    key: (usize, u32),
    action: Action,
    native: bool,
    result: Result<Option<Vec<u8>>, CallError>,
}

impl Submitted {
    async fn settle(self) -> Ended {
        let result = match self.call {
            Pending::Bytes(call) => call.await.map(Some),
            Pending::Read(call) => call.await.map(|_| None),
        };
        Ended {
            key: self.key,
            action: self.action,
            native: self.native,
            result,
        }
    }
}

/// What a set of calls ended with.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<(Action, &'static str), u64>,
    /// The values successful increments returned, per database incarnation.
    values: HashMap<(usize, u32), Vec<u64>>,
    /// Outcomes that broke a promise.
    broken: Vec<String>,
    lane_changes: BTreeMap<&'static str, u64>,
    moves: u64,
    weights: u64,
    exits: u64,
    exited: Vec<Database>,
}

impl Tally {
    fn merge(tallies: Vec<Tally>) -> Tally {
        let mut all = Tally::default();
        for tally in tallies {
            for (key, count) in tally.outcomes {
                *all.outcomes.entry(key).or_default() += count;
            }
            for (key, values) in tally.values {
                all.values.entry(key).or_default().extend(values);
            }
            all.broken.extend(tally.broken);
            all.moves += tally.moves;
            all.weights += tally.weights;
            all.exits += tally.exits;
            all.exited.extend(tally.exited);
        }
        all
    }

    fn count(&self, action: Action, kind: &'static str) -> u64 {
        self.outcomes.get(&(action, kind)).copied().unwrap_or(0)
    }

    fn settle_all(&mut self, in_flight: &mut Vec<Submitted>) {
        for submitted in in_flight.drain(..) {
            self.record(block_on(submitted.settle()), Phase::Storm);
        }
    }

    fn lane_change(&mut self, what: &'static str, result: Result<(), LaneError>) {
        match result {
            // The database exited under us: its lane drained and left its worker.
            Ok(()) | Err(LaneError::Drained) => *self.lane_changes.entry(what).or_default() += 1,
            Err(other) => self.broken.push(format!("{what} failed: {other}")),
        }
    }

    /// Files one outcome under its kind, or as broken if its reducer cannot end that way.
    fn record(&mut self, ended: Ended, phase: Phase) {
        let kind = match (&ended.result, ended.action, ended.native) {
            (Err(CallError::NoSuchModule { .. }), _, _) => "exited",
            (Err(CallError::Cancelled), _, _) if phase == Phase::Shutdown => "cancelled",
            (Ok(Some(bytes)), Action::Increment, _) | (Ok(Some(bytes)), Action::Spin, true) => {
                let count = decode_count(bytes);
                self.values.entry(ended.key).or_default().push(count);
                "ok"
            }
            (Ok(None), Action::Read, _) => "ok",
            (Err(CallError::Trap { .. }), Action::Fault, false) => "trap",
            (Err(CallError::Panicked { .. }), Action::Fault, true) => "panicked",
            (Err(CallError::Timeout { .. }), Action::Spin, false) => "timeout",
            (Err(CallError::Failed { code: -7, .. }), Action::Refuse, _) => "refused",
            (result, action, native) => {
                let poisoned = matches!(result, Err(CallError::Failed { code: -99, .. }));
                let what = if poisoned {
                    "a trapped or interrupted instance served another call"
                } else {
                    "unexpected outcome"
                };
                self.broken.push(format!(
                    "{what}: {action:?} (native: {native}) on {:?} ended {result:?}",
                    ended.key
                ));
                "broken"
            }
        };
        *self.outcomes.entry((ended.action, kind)).or_default() += 1;
    }

    fn report(&self, phase: &str) {
        eprintln!("chaos, {phase}:");
        for ((action, kind), count) in &self.outcomes {
            eprintln!("  {action:?} {kind}: {count}");
        }
        eprintln!(
            "  moves {}, weight changes {}, exits {}",
            self.moves, self.weights, self.exits
        );
    }

    fn assert_clean(&self) {
        assert!(
            self.broken.is_empty(),
            "{} broken promises, the first ones:\n{}",
            self.broken.len(),
            self.broken
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The values each incarnation's successful increments returned are exactly 1..=k.
fn assert_contiguous(values: &HashMap<(usize, u32), Vec<u64>>) {
    for ((index, incarnation), values) in values {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let expected: Vec<u64> = (1..=sorted.len() as u64).collect();
        assert_eq!(
            sorted, expected,
            "chaos-{index} (incarnation {incarnation}): increments returned a value twice or \
             skipped one"
        );
    }
}

/// Each worker runs one more task and says who it is.
fn probe_every_worker(handle: &Handle) {
    for worker in 0..handle.workers() {
        let probe = handle
            .spawn_on(worker, async { Handle::current_worker() })
            .expect("a live worker takes a task");
        let ran_on = block_on(probe).expect("the probe task completes");
        assert_eq!(ran_on, Some(worker), "worker {worker} answered");
    }
}

/// Native reducers here panic on purpose thousands of times; keep those out of the output.
fn silence_intended_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
        if !message.is_some_and(|message| message.starts_with("chaos:")) {
            default(info);
        }
    }));
}

/// SplitMix64: a small seeded generator, so every run draws the same mix.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}
