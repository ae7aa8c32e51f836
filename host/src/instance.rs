//! Instances, and one call through one.
//!
//! [`Instance`] is a plain enum with a variant per engine. A Wasm instance owns its own
//! Wasmtime store, configured once for its database's fairness mode (see `configure`); a
//! native instance is the module itself. A call lends the instance the database's state for
//! its whole run (`StoreData::call`), and the state comes back with the call's writes still
//! apart, to commit or to drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::{Store, Trap, TypedFunc, UpdateDeadline};

use crate::abi::{self, GuestError};
use crate::database::Settings;
use crate::error::CallError;
use crate::fairness::Fairness;
use crate::module::WasmModule;
use crate::native::{NativeCtx, NativeModule};
use crate::pool::Lease;
use crate::store::{CallState, LimitHit, StoreData, StoreLimits};
use crate::wasi::{self, WasiCtx};

/// An instance of a module, ready for calls.
pub enum Instance {
    /// A WebAssembly instance in its own store.
    Wasm(Box<WasmInstance>),
    /// A native module's reducers.
    Native(Arc<NativeModule>),
}

/// A WebAssembly instance, its store, and its exports resolved once.
pub struct WasmInstance {
    store: Store<StoreData>,
    alloc: Option<TypedFunc<i32, i32>>,
    /// By the module's reducer index.
    reducers: Vec<Option<TypedFunc<(i32, i32), i64>>>,
    start: Option<TypedFunc<(), ()>>,
    /// Counts the instance as live in its database's pool until it is dropped.
    _lease: Option<Lease>,
}

/// How a call ended, and whether its instance may serve another call.
pub(crate) struct Ended {
    pub(crate) result: Result<Vec<u8>, CallError>,
    /// The database's state, with the call's writes apart (to commit if `result` is `Ok`).
    pub(crate) state: Option<CallState>,
    /// No trap, interruption, fuel exhaustion or broken promise: the instance is reusable.
    pub(crate) healthy: bool,
    /// In `Fuel` mode, the fuel the call used, however it ended; else 0.
    pub(crate) fuel_used: u64,
}

/// Configures a new store for a fairness mode, once.
///
/// Every move of the epoch reaches the store's callback: the ticker's, once a quantum, and
/// the runtime's preemption requests, when another lane arrives behind a long call (`preempt`
/// in `host.rs`). Only the ticker's moves count against the budget, one quantum each, and a
/// preemption request makes a call give way only once it has run into a quantum. Past
/// its budget the call is interrupted (`Timeout`);
/// otherwise it yields (`Epoch`) or goes on (`Never`, `Fuel`; Fuel yields on its fuel
/// interval instead).
fn configure(store: &mut Store<StoreData>, settings: &Settings) -> wasmtime::Result<()> {
    store.limiter(|data| &mut data.limits);
    // With fuel on in the engine, every store starts empty; only Fuel mode meters it.
    if settings.fuel_enabled {
        store.set_fuel(u64::MAX)?;
    }
    if settings.fairness == Fairness::Fuel {
        store.fuel_async_yield_interval(Some(settings.fuel_yield_interval))?;
    }
    let yields = settings.fairness == Fairness::Epoch;
    let quanta = settings.quanta.clone();
    store.epoch_deadline_callback(move |mut cx| {
        let data = cx.data_mut();
        let quantum = quanta.now();
        if quantum != data.last_quantum {
            // However many ticks passed (the thread may have lost its CPU), one counts: the
            // budget is quanta this call saw itself run in.
            data.last_quantum = quantum;
            data.ticks += 1;
            if data.ticks >= data.budget_ticks {
                return Ok(UpdateDeadline::Interrupt);
            }
        } else if data.ticks == 0 {
            // A preemption request, to a call that has not yet run into a quantum: it is
            // short or just begun, and ends or meets the ticker soon. Yielding here would
            // leave it holding its instance while the newcomer, and the next, make theirs.
            return Ok(UpdateDeadline::Continue(1));
        }
        Ok(if yields {
            UpdateDeadline::Yield(1)
        } else {
            UpdateDeadline::Continue(1)
        })
    });
    Ok(())
}

/// Arms the budget (and the fuel) for the next entry into Wasm.
fn arm(store: &mut Store<StoreData>, settings: &Settings) -> wasmtime::Result<()> {
    let data = store.data_mut();
    data.limits.hit = None;
    data.ticks = 0;
    data.budget_ticks = settings.budget_ticks;
    data.last_quantum = settings.quanta.now();
    store.set_epoch_deadline(1);
    if settings.fairness == Fairness::Fuel {
        store.set_fuel(settings.fuel_limit)?;
    }
    Ok(())
}

/// Turns an error out of Wasm into the call's error.
fn classify(error: wasmtime::Error, data: &StoreData, settings: &Settings) -> CallError {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt => {
                return CallError::Timeout {
                    budget: settings.budget,
                };
            }
            Trap::OutOfFuel => {
                return CallError::OutOfFuel {
                    limit: settings.fuel_limit,
                };
            }
            Trap::StackOverflow => return CallError::StackOverflow,
            _ => {}
        }
    }
    match data.limits.hit {
        Some(LimitHit::Memory) => {
            return CallError::MemoryLimit {
                limit: data.limits.memory_bytes,
            };
        }
        Some(LimitHit::Table) => {
            return CallError::TableLimit {
                limit: data.limits.table_elements,
            };
        }
        None => {}
    }
    if let Some(guest) = error.downcast_ref::<GuestError>() {
        return match guest {
            GuestError::BadPointer {
                import,
                ptr,
                len,
                memory,
            } => CallError::BadPointer {
                import,
                ptr: *ptr,
                len: *len,
                memory: *memory,
            },
            other => CallError::Trap {
                code: None,
                message: other.to_string(),
            },
        };
    }
    let code = error.downcast_ref::<Trap>().copied();
    let message = match code {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    CallError::Trap { code, message }
}

impl WasmInstance {
    /// Instantiates `module` in a new store set up for `settings` (fairness `Never`), running
    /// its start function under the call budget. In `Fuel` mode the fuel the start function
    /// used, whether or not it returned, is added to `fuel_used`.
    pub(crate) fn new_blocking(
        module: &WasmModule,
        settings: &Settings,
        wasi: WasiCtx,
        lease: Option<Lease>,
        fuel_used: &AtomicU64,
    ) -> Result<WasmInstance, CallError> {
        let mut store = new_store(module, settings, wasi)?;
        let instantiated = module.pre.instantiate(&mut store);
        WasmInstance::resolve(module, store, instantiated, settings, lease, fuel_used)
    }

    /// [`WasmInstance::new_blocking`] for the modes that suspend (`Epoch`, `Fuel`): the start
    /// function yields like a call.
    pub(crate) async fn new_suspending(
        module: &WasmModule,
        settings: &Settings,
        wasi: WasiCtx,
        lease: Option<Lease>,
        fuel_used: &AtomicU64,
    ) -> Result<WasmInstance, CallError> {
        let mut store = new_store(module, settings, wasi)?;
        let instantiated = module.pre.instantiate_async(&mut store).await;
        WasmInstance::resolve(module, store, instantiated, settings, lease, fuel_used)
    }

    /// Resolves the exports of a new instance, once.
    fn resolve(
        module: &WasmModule,
        mut store: Store<StoreData>,
        instantiated: wasmtime::Result<wasmtime::Instance>,
        settings: &Settings,
        lease: Option<Lease>,
        fuel_used: &AtomicU64,
    ) -> Result<WasmInstance, CallError> {
        charge(fuel_used, fuel_spent(&store, settings));
        let instance = instantiated.map_err(|error| classify(error, store.data(), settings))?;
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "corelane_alloc")
            .ok();
        let reducers = module
            .reducers
            .iter()
            .map(|name| {
                instance
                    .get_typed_func::<(i32, i32), i64>(&mut store, name)
                    .ok()
            })
            .collect();
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start").ok();
        Ok(WasmInstance {
            store,
            alloc,
            reducers,
            start,
            _lease: lease,
        })
    }

    /// Calls reducer `index` with `args`, with the database's state lent in `state`, through
    /// Wasmtime's synchronous entry points (fairness `Never`). A database in this mode builds
    /// its calls' jobs on this, so that they are small futures that never suspend.
    pub(crate) fn call_blocking(
        &mut self,
        index: usize,
        args: &[u8],
        state: CallState,
        settings: &Settings,
    ) -> Ended {
        self.store.data_mut().call = Some(state);
        let result = self.invoke_blocking(index, args, settings);
        self.ended(result, settings)
    }

    /// [`WasmInstance::call_blocking`] through Wasmtime's async entry points (`Epoch`, `Fuel`),
    /// whose futures return `Pending` at every quantum or fuel interval.
    pub(crate) async fn call_suspending(
        &mut self,
        index: usize,
        args: &[u8],
        state: CallState,
        settings: &Settings,
    ) -> Ended {
        self.store.data_mut().call = Some(state);
        let result = self.invoke_suspending(index, args, settings).await;
        self.ended(result, settings)
    }

    /// Takes the state back after a call; the instance is healthy unless the call broke.
    fn ended(&mut self, result: Result<Vec<u8>, CallError>, settings: &Settings) -> Ended {
        let state = self.store.data_mut().call.take();
        let fuel_used = fuel_spent(&self.store, settings);
        let healthy = match &result {
            Ok(_) | Err(CallError::Failed { .. }) => true,
            Err(_) => false,
        };
        Ended {
            result,
            state,
            healthy,
            fuel_used,
        }
    }

    /// Steps 2 to 4 of a call (docs/abi.md), synchronously.
    fn invoke_blocking(
        &mut self,
        index: usize,
        args: &[u8],
        settings: &Settings,
    ) -> Result<Vec<u8>, CallError> {
        let reducer = reducer(&self.reducers, index)?;
        let store = &mut self.store;
        arm(store, settings).map_err(|error| classify(error, store.data(), settings))?;
        let params = match argument_length(args, self.alloc.as_ref())? {
            None => (0, 0),
            Some((alloc, len)) => {
                let ptr = alloc.call(&mut *store, len);
                write_arguments(store, ptr, args, settings)?
            }
        };
        let returned = reducer.call(&mut *store, params);
        read_result(store, returned, settings)
    }

    /// Steps 2 to 4 of a call, through the async entry points.
    async fn invoke_suspending(
        &mut self,
        index: usize,
        args: &[u8],
        settings: &Settings,
    ) -> Result<Vec<u8>, CallError> {
        let reducer = reducer(&self.reducers, index)?;
        let store = &mut self.store;
        arm(store, settings).map_err(|error| classify(error, store.data(), settings))?;
        let params = match argument_length(args, self.alloc.as_ref())? {
            None => (0, 0),
            Some((alloc, len)) => {
                let ptr = alloc.call_async(&mut *store, len).await;
                write_arguments(store, ptr, args, settings)?
            }
        };
        let returned = reducer.call_async(&mut *store, params).await;
        read_result(store, returned, settings)
    }

    /// Runs a WASI command's `_start` to its end, once: its exit status (or why it did not
    /// reach one), and what it wrote either way. The fuel it used is added to `fuel_used`.
    pub(crate) async fn run_command(
        &mut self,
        settings: &Settings,
        fuel_used: &AtomicU64,
    ) -> (Result<i32, CallError>, Vec<u8>, Vec<u8>) {
        let Some(start) = &self.start else {
            let wrong = CallError::WrongKind {
                reason: "the module is not a WASI command".into(),
            };
            return (Err(wrong), Vec::new(), Vec::new());
        };
        let store = &mut self.store;
        let status = match arm(store, settings) {
            Err(error) => Err(classify(error, store.data(), settings)),
            Ok(()) => {
                let returned = if settings.fairness.is_async() {
                    start.call_async(&mut *store, ()).await
                } else {
                    start.call(&mut *store, ())
                };
                match returned {
                    Ok(()) => Ok(0),
                    Err(error) => match wasi::exit_status(&error) {
                        Some(status) => Ok(status),
                        None => Err(classify(error, store.data(), settings)),
                    },
                }
            }
        };
        charge(fuel_used, fuel_spent(store, settings));
        let (stdout, stderr) = store.data_mut().wasi.take_output();
        (status, stdout, stderr)
    }
}

/// In `Fuel` mode, the fuel used since `arm` filled the tank, however the run ended; else 0.
fn fuel_spent(store: &Store<StoreData>, settings: &Settings) -> u64 {
    if settings.fairness != Fairness::Fuel {
        return 0;
    }
    let left = store.get_fuel().unwrap_or(settings.fuel_limit);
    settings.fuel_limit.saturating_sub(left)
}

/// Adds `spent` to a database's count of fuel used.
pub(crate) fn charge(fuel_used: &AtomicU64, spent: u64) {
    if spent > 0 {
        // Relaxed: a counter for stats.
        fuel_used.fetch_add(spent, Ordering::Relaxed);
    }
}

/// A new store for `module`, configured and armed for `settings`.
fn new_store(
    module: &WasmModule,
    settings: &Settings,
    wasi: WasiCtx,
) -> Result<Store<StoreData>, CallError> {
    let limits = StoreLimits {
        memory_bytes: settings.memory_limit,
        table_elements: settings.table_limit,
        hit: None,
    };
    let data = StoreData::new(limits, wasi, Arc::clone(&settings.database));
    let mut store = Store::new(module.module.engine(), data);
    let setup = configure(&mut store, settings).and_then(|()| arm(&mut store, settings));
    setup.map_err(|error| CallError::Trap {
        code: None,
        message: format!("{error:#}"),
    })?;
    Ok(store)
}

type Reducer = TypedFunc<(i32, i32), i64>;
type Alloc = TypedFunc<i32, i32>;

/// Reducer `index` of an instance.
fn reducer(reducers: &[Option<Reducer>], index: usize) -> Result<&Reducer, CallError> {
    match reducers.get(index) {
        Some(Some(reducer)) => Ok(reducer),
        _ => Err(CallError::BadArguments {
            reason: format!("reducer #{index} is not exported"),
        }),
    }
}

/// Step 2 of a call, its first half: `None` for no arguments, else `corelane_alloc` and the
/// length to ask it for.
fn argument_length<'a>(
    args: &[u8],
    alloc: Option<&'a Alloc>,
) -> Result<Option<(&'a Alloc, i32)>, CallError> {
    if args.is_empty() {
        return Ok(None);
    }
    let Some(alloc) = alloc else {
        return Err(CallError::BadArguments {
            reason: "the module takes no arguments: it does not export `corelane_alloc`".into(),
        });
    };
    let len = i32::try_from(args.len()).map_err(|_| CallError::BadArguments {
        reason: format!(
            "{} bytes of arguments is more than a 32-bit memory holds",
            args.len()
        ),
    })?;
    Ok(Some((alloc, len)))
}

/// Step 2, its second half: copies the arguments to where `corelane_alloc` said.
fn write_arguments(
    store: &mut Store<StoreData>,
    ptr: wasmtime::Result<i32>,
    args: &[u8],
    settings: &Settings,
) -> Result<(i32, i32), CallError> {
    let ptr = ptr.map_err(|error| classify(error, store.data(), settings))?;
    let len = args.len() as i32;
    let memory = store.data().memory.ok_or_else(|| CallError::BadArguments {
        reason: "the module does not export its memory as `memory`".into(),
    })?;
    let size = memory.data_size(&*store);
    let range =
        abi::range("corelane_alloc", ptr, len, size).map_err(|_| CallError::BadArguments {
            reason: format!(
                "`corelane_alloc({len})` returned {ptr:#x}, outside the memory of {size} bytes"
            ),
        })?;
    memory.data_mut(&mut *store)[range].copy_from_slice(args);
    Ok((ptr, len))
}

/// Steps 3 and 4 after the reducer returned: the result bytes, or the failure code.
fn read_result(
    store: &mut Store<StoreData>,
    returned: wasmtime::Result<i64>,
    settings: &Settings,
) -> Result<Vec<u8>, CallError> {
    let returned = returned.map_err(|error| classify(error, store.data(), settings))?;
    if returned < 0 {
        let message = store
            .data_mut()
            .call
            .as_mut()
            .and_then(|call| call.failure.take());
        return Err(CallError::Failed {
            code: returned,
            message,
        });
    }
    // `0` is the empty result (docs/abi.md). Any other empty range must still lie in the
    // memory, like every range.
    if returned == 0 {
        return Ok(Vec::new());
    }
    let (ptr, len) = ((returned >> 32) as u32, returned as u32);
    let memory = store.data().memory.ok_or_else(|| CallError::BadResult {
        reason: "the module does not export its memory as `memory`".into(),
    })?;
    let size = memory.data_size(&*store);
    let range = abi::range("the result", ptr as i32, len as i32, size).map_err(|_| {
        CallError::BadResult {
            reason: format!(
                "the reducer returned {ptr:#x}+{len}, outside the memory of {size} bytes"
            ),
        }
    })?;
    Ok(memory.data(&*store)[range].to_vec())
}

/// Calls a native reducer of database `database`, with its state lent in `state`.
pub(crate) fn call_native(
    module: &NativeModule,
    reducer: &str,
    args: &[u8],
    database: &str,
    mut state: CallState,
) -> Ended {
    let Some(reducer) = module.get(reducer) else {
        let result = Err(CallError::NoSuchReducer {
            database: database.to_owned(),
            reducer: reducer.to_owned(),
        });
        return Ended {
            result,
            state: Some(state),
            healthy: true,
            fuel_used: 0,
        };
    };
    let result = {
        let CallState { kv, tx, now_us, .. } = &mut state;
        let mut cx = NativeCtx {
            kv,
            tx,
            now_us,
            database,
        };
        reducer(&mut cx, args)
    };
    let result = result.map_err(|failure| CallError::Failed {
        code: failure.code,
        message: failure.message,
    });
    Ended {
        result,
        state: Some(state),
        healthy: true,
        fuel_used: 0,
    }
}

/// A budget in whole quanta, at least one.
pub(crate) fn budget_ticks(budget: Duration, quantum: Duration) -> u64 {
    let quanta = budget.as_nanos().div_ceil(quantum.as_nanos().max(1));
    u64::try_from(quanta).unwrap_or(u64::MAX).max(1)
}
