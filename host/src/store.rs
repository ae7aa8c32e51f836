//! What each Wasmtime store carries: the call in progress, limits, budget, WASI state.

use std::cell::OnceCell;
use std::sync::Arc;

use corelane_executor::LaneGuard;
use wasmtime::{Memory, ResourceLimiter};

use crate::kv::{Kv, Transaction};
use crate::wasi::WasiCtx;

/// The data of every store the host makes. Host functions an embedder adds receive it in
/// their `Caller`; it has no public fields.
pub struct StoreData {
    /// The call in progress, holding the database's state for the call's whole run.
    pub(crate) call: Option<CallState>,
    /// The name of the database the instance belongs to.
    pub(crate) database: Arc<str>,
    pub(crate) wasi: WasiCtx,
    pub(crate) limits: StoreLimits,
    /// The instance's exported memory, once it exists.
    pub(crate) memory: Option<Memory>,
    /// Quanta the current call has run, the budget in quanta, and the ticker's count when
    /// the callback last looked.
    pub(crate) ticks: u64,
    pub(crate) budget_ticks: u64,
    pub(crate) last_quantum: u64,
}

impl StoreData {
    pub(crate) fn new(limits: StoreLimits, wasi: WasiCtx, database: Arc<str>) -> StoreData {
        StoreData {
            call: None,
            database,
            wasi,
            limits,
            memory: None,
            ticks: 0,
            budget_ticks: u64::MAX,
            last_quantum: 0,
        }
    }

    /// The WASI state of the run in progress.
    pub fn wasi(&mut self) -> &mut WasiCtx {
        &mut self.wasi
    }
}

/// A call in progress: the database's state, lent for the call, and the call's writes.
pub(crate) struct CallState {
    pub(crate) kv: LaneGuard<Kv>,
    pub(crate) tx: Transaction,
    /// The wall clock for the `now_us` import: read at the call's first use, then fixed.
    pub(crate) now_us: OnceCell<i64>,
    pub(crate) failure: Option<String>,
}

/// Which limit a call ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitHit {
    Memory,
    Table,
}

/// Memory and table limits of one instance. Growth past a limit fails as the spec says (the
/// grow instruction returns -1); the limit is remembered so that a trap that follows is
/// reported as the limit.
pub(crate) struct StoreLimits {
    pub(crate) memory_bytes: u64,
    pub(crate) table_elements: u64,
    pub(crate) hit: Option<LimitHit>,
}

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.hit = Some(LimitHit::Memory);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_elements {
            self.hit = Some(LimitHit::Table);
            return Ok(false);
        }
        Ok(true)
    }
}
