//! A database's instance pool.
//!
//! A call takes the most recently used idle instance, or creates one on the database's
//! worker, inside the call's job. Because a database's calls run one at a time, the pool
//! rarely needs more than one instance; creating on the worker keeps it that way, where
//! creating on the callers' threads would make one instance per concurrent caller (see
//! docs/architecture.md for the measurements behind this choice).
//!
//! After a call, an instance goes back only if it is healthy: no trap, no interruption, no
//! fuel exhaustion, and its call was not cancelled half-way (a cancelled call drops its
//! instance with it). The pool keeps at most `max_idle` idle instances, and the host's ticker
//! drops those idle longer than `idle_timeout`: each live store that has made an async call
//! holds several memory mappings, and the kernel allows about 65,530 per process.
//!
//! Every Wasm instance holds a [`Lease`] that counts it as live until it is dropped, wherever
//! that happens, so that `max_live` bounds instances in use and idle together.
//!
//! The host counts too, over all its databases ([`Census`]): at most `max_live` instances at
//! once (past it, a call fails with `HostInstanceLimit`), and once more than `max_idle` are
//! live, a healthy instance is dropped after its call rather than kept idle. Only creating
//! and dropping an instance touch the count, not every call. Each instance reserves address
//! space for its memory (4 GiB with Wasmtime's defaults, of the 128 TiB a process has) and
//! several memory mappings once it has made an async call, so tens of thousands of databases
//! that each kept one would exhaust the process; with the census they queue for instances
//! instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use corelane_executor::Clock;
use parking_lot::Mutex;

use crate::error::CallError;
use crate::instance::Instance;

/// The host's count of live and idle instances, over all its databases.
pub(crate) struct Census {
    live: AtomicUsize,
    max_live: usize,
    max_idle: usize,
}

impl Census {
    pub(crate) fn new(max_live: usize, max_idle: usize) -> Arc<Census> {
        Arc::new(Census {
            live: AtomicUsize::new(0),
            max_live,
            max_idle,
        })
    }

    /// Counts one more live instance if that stays within `max_live`.
    fn try_add(&self) -> bool {
        // Relaxed: a counter that publishes nothing; the pools' locks order the rest.
        self.live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                (now < self.max_live).then_some(now + 1)
            })
            .is_ok()
    }

    fn remove(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether an instance may stay idle: the host has no more than `max_idle` live.
    fn keeps_idle(&self) -> bool {
        self.live.load(Ordering::Relaxed) <= self.max_idle
    }

    /// Live instances over the host.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

pub(crate) struct Pool {
    inner: Mutex<PoolInner>,
    census: Arc<Census>,
    max_idle: usize,
    max_live: usize,
    idle_timeout_ns: u64,
    /// The runtime's clock: every call that gives an instance back reads it, so it is the
    /// cheap one.
    clock: Clock,
}

struct PoolInner {
    /// Idle instances with the time they came back (on `clock`), most recent last.
    idle: Vec<(Instance, u64)>,
    /// Instances that exist: idle, in use, or on their way to being dropped.
    live: usize,
}

/// Counts one instance as live while it exists.
pub(crate) struct Lease(Arc<Pool>);

impl Drop for Lease {
    fn drop(&mut self) {
        let mut inner = self.0.inner.lock();
        inner.live = inner.live.saturating_sub(1);
        self.0.census.remove();
    }
}

impl Pool {
    pub(crate) fn new(
        max_idle: usize,
        max_live: usize,
        idle_timeout: Duration,
        clock: Clock,
        census: Arc<Census>,
    ) -> Arc<Pool> {
        Arc::new(Pool {
            inner: Mutex::new(PoolInner {
                idle: Vec::new(),
                live: 0,
            }),
            census,
            max_idle,
            max_live,
            idle_timeout_ns: u64::try_from(idle_timeout.as_nanos()).unwrap_or(u64::MAX),
            clock,
        })
    }

    /// The most recently used idle instance, if any.
    pub(crate) fn take(&self) -> Option<Instance> {
        self.inner.lock().idle.pop().map(|(instance, _)| instance)
    }

    /// Counts a new instance as live, if the limit allows.
    pub(crate) fn lease(self: &Arc<Self>) -> Result<Lease, CallError> {
        let mut inner = self.inner.lock();
        if inner.live >= self.max_live {
            return Err(CallError::InstanceLimit {
                limit: self.max_live,
            });
        }
        if !self.census.try_add() {
            return Err(CallError::HostInstanceLimit {
                limit: self.census.max_live,
            });
        }
        inner.live += 1;
        Ok(Lease(Arc::clone(self)))
    }

    /// Takes back a healthy instance, or drops it if the pool or the host has enough idle.
    pub(crate) fn give_back(&self, instance: Instance) {
        let now = self.clock.now_ns();
        let rejected = {
            let mut inner = self.inner.lock();
            if inner.idle.len() < self.max_idle && self.census.keeps_idle() {
                inner.idle.push((instance, now));
                None
            } else {
                Some(instance)
            }
        };
        // Dropped outside the lock: its lease takes the lock again.
        drop(rejected);
    }

    /// Drops instances idle for `idle_timeout` or longer; returns how many.
    pub(crate) fn sweep(&self) -> usize {
        let now = self.clock.now_ns();
        let stale: Vec<(Instance, u64)> = {
            let mut inner = self.inner.lock();
            let keep = inner
                .idle
                .iter()
                .position(|(_, since)| now.saturating_sub(*since) < self.idle_timeout_ns);
            let keep = keep.unwrap_or(inner.idle.len());
            inner.idle.drain(..keep).collect()
        };
        stale.len()
    }

    /// Drops every idle instance.
    pub(crate) fn clear(&self) {
        let idle = std::mem::take(&mut self.inner.lock().idle);
        drop(idle);
    }

    /// Live instances (in use or idle) and idle ones.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.live, inner.idle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_stop_at_the_instance_limit_and_come_back_when_dropped() {
        let census = Census::new(100, 100);
        let pool = Pool::new(1, 2, Duration::from_secs(10), Clock::manual(), census);
        let first = pool.lease().unwrap();
        let second = pool.lease().unwrap();
        assert_eq!(pool.counts(), (2, 0));
        assert!(matches!(
            pool.lease(),
            Err(CallError::InstanceLimit { limit: 2 })
        ));
        drop(first);
        assert_eq!(pool.counts(), (1, 0));
        let third = pool.lease().unwrap();
        drop((second, third));
        assert_eq!(pool.counts(), (0, 0));
    }

    #[test]
    fn the_host_caps_live_instances_over_all_its_databases() {
        let census = Census::new(3, 1);
        let pools: Vec<_> = (0..2)
            .map(|_| {
                Pool::new(
                    1,
                    2,
                    Duration::from_secs(10),
                    Clock::manual(),
                    census.clone(),
                )
            })
            .collect();
        let leases = [
            pools[0].lease().unwrap(),
            pools[0].lease().unwrap(),
            pools[1].lease().unwrap(),
        ];
        // Each database is within its own limit of 2, but the host has its 3.
        assert!(matches!(
            pools[1].lease(),
            Err(CallError::HostInstanceLimit { limit: 3 })
        ));
        assert_eq!(census.live(), 3);
        drop(leases);
        assert_eq!(census.live(), 0);
        assert!(pools[1].lease().is_ok());
    }
}
