//! Where the workers run: which CPUs, and whether each worker is pinned to its CPU.
//!
//! The set of CPUs this process may run on is read once, the first time any runtime is built
//! in the process, from the building thread's affinity. corelane pins only its own worker
//! threads, never the caller's, so a later runtime sees the same set rather than one shrunk
//! by an earlier pin. Pinning that fails (a CPU outside a restricted cpuset, a container)
//! leaves that worker unpinned with one warning; it never stops the runtime from starting.

use std::sync::OnceLock;

/// The highest CPU number plus one that a pin can name (the kernel's `CPU_SETSIZE`).
pub const MAX_CPUS: usize = 1024;

/// Which CPUs the runtime's workers run on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Placement {
    /// One worker per CPU in the set this process may run on (the default).
    #[default]
    AllowedCpus,
    /// One worker per listed CPU, in the order given.
    Cpus(Vec<usize>),
    /// This many workers, laid over the allowed CPUs in turn.
    Count(usize),
}

/// Why a placement cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// `Placement::Count(0)` or an empty CPU list.
    #[error("a runtime needs at least one worker")]
    NoWorkers,
    /// A CPU number no pin can name.
    #[error("cpu {cpu} is out of range: cpu numbers must be below {MAX_CPUS}")]
    CpuOutOfRange {
        /// The CPU number given.
        cpu: usize,
    },
    /// The same CPU named twice in an explicit list.
    #[error("cpu {cpu} is listed twice; use Placement::Count to run several workers per CPU")]
    DuplicateCpu {
        /// The CPU number given twice.
        cpu: usize,
    },
    /// More workers than the runtime supports.
    #[error("{requested} workers requested; at most {MAX_CPUS} are supported")]
    TooManyWorkers {
        /// The number asked for.
        requested: usize,
    },
}

/// The CPUs this process may run on, read once per process (see the module documentation).
/// Empty when the platform cannot tell.
pub fn allowed_cpus() -> &'static [usize] {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        let mut cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|core| core.id)
            .collect();
        cpus.sort_unstable();
        cpus.dedup();
        cpus
    })
}

/// Decides the CPU of each worker: `Some(cpu)` to pin there, `None` to run unpinned.
pub(crate) fn plan(placement: &Placement, pin: bool) -> Result<Vec<Option<usize>>, PlacementError> {
    let allowed = allowed_cpus();
    let fallback_count = || std::thread::available_parallelism().map_or(1, |n| n.get());

    let cpus: Vec<Option<usize>> = match placement {
        Placement::AllowedCpus if allowed.is_empty() => vec![None; fallback_count()],
        Placement::AllowedCpus => allowed.iter().copied().map(Some).collect(),
        Placement::Cpus(list) => {
            if list.is_empty() {
                return Err(PlacementError::NoWorkers);
            }
            let mut seen = vec![false; MAX_CPUS];
            for &cpu in list {
                if cpu >= MAX_CPUS {
                    return Err(PlacementError::CpuOutOfRange { cpu });
                }
                if std::mem::replace(&mut seen[cpu], true) {
                    return Err(PlacementError::DuplicateCpu { cpu });
                }
            }
            list.iter().copied().map(Some).collect()
        }
        Placement::Count(0) => return Err(PlacementError::NoWorkers),
        Placement::Count(n) if *n > MAX_CPUS => {
            return Err(PlacementError::TooManyWorkers { requested: *n });
        }
        Placement::Count(n) if allowed.is_empty() => vec![None; *n],
        // Round-robin over the allowed set: workers share a CPU only when there are more
        // workers than CPUs, and never all stack on one.
        Placement::Count(n) => (0..*n).map(|i| Some(allowed[i % allowed.len()])).collect(),
    };

    Ok(if pin { cpus } else { vec![None; cpus.len()] })
}

/// Pins the calling thread to `cpu`. Returns false when the system refused.
pub(crate) fn pin_current_thread(cpu: usize) -> bool {
    cpu < MAX_CPUS && core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_spreads_workers_over_allowed_cpus() {
        let allowed = allowed_cpus();
        if allowed.is_empty() {
            return;
        }
        let cpus = plan(&Placement::Count(allowed.len() * 2), true).unwrap();
        for (i, cpu) in cpus.iter().enumerate() {
            assert_eq!(*cpu, Some(allowed[i % allowed.len()]));
        }
    }

    #[test]
    fn bad_placements_are_typed_errors() {
        assert_eq!(
            plan(&Placement::Count(0), true),
            Err(PlacementError::NoWorkers)
        );
        assert_eq!(
            plan(&Placement::Cpus(vec![]), true),
            Err(PlacementError::NoWorkers)
        );
        assert_eq!(
            plan(&Placement::Cpus(vec![0, 0]), true),
            Err(PlacementError::DuplicateCpu { cpu: 0 })
        );
        assert_eq!(
            plan(&Placement::Cpus(vec![MAX_CPUS]), true),
            Err(PlacementError::CpuOutOfRange { cpu: MAX_CPUS })
        );
    }

    #[test]
    fn unpinned_plan_names_no_cpu() {
        let cpus = plan(&Placement::Cpus(vec![0, 1]), false).unwrap();
        assert_eq!(cpus, vec![None, None]);
    }
}
