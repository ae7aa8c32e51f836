//! Fairness modes: how a database's reducers share their worker with other databases.

use std::fmt;
use std::str::FromStr;

/// How a database's calls share the CPU with the other databases on their worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fairness {
    /// Calls run to their end without yielding: the cheapest path. The budget still holds.
    Never,
    /// Calls yield to other databases at every epoch quantum (cargo feature
    /// `fairness-epoch`, on by default).
    Epoch,
    /// Calls yield every so many units of fuel and fail past a fuel limit (cargo feature
    /// `fairness-fuel`, and fuel switched on for the host).
    Fuel,
}

impl Fairness {
    /// Every mode, compiled in or not.
    pub const ALL: [Fairness; 3] = [Fairness::Never, Fairness::Epoch, Fairness::Fuel];

    /// Whether this build has the mode, and if not, why.
    pub fn compiled_in(self) -> Result<(), &'static str> {
        match self {
            Fairness::Never => Ok(()),
            Fairness::Epoch if cfg!(feature = "fairness-epoch") => Ok(()),
            Fairness::Epoch => Err("corelane-host was built without the `fairness-epoch` feature"),
            Fairness::Fuel if cfg!(feature = "fairness-fuel") => Ok(()),
            Fairness::Fuel => Err("corelane-host was built without the `fairness-fuel` feature"),
        }
    }

    /// Whether calls in this mode go through Wasmtime's async entry points.
    pub(crate) fn is_async(self) -> bool {
        !matches!(self, Fairness::Never)
    }
}

impl fmt::Display for Fairness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fairness::Never => "never",
            Fairness::Epoch => "epoch",
            Fairness::Fuel => "fuel",
        })
    }
}

/// A fairness mode name that is not one of `never`, `epoch`, `fuel`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fairness mode {0:?}: expected never, epoch or fuel")]
pub struct UnknownFairness(pub String);

impl FromStr for Fairness {
    type Err = UnknownFairness;

    fn from_str(name: &str) -> Result<Fairness, UnknownFairness> {
        match name {
            "never" => Ok(Fairness::Never),
            "epoch" => Ok(Fairness::Epoch),
            "fuel" => Ok(Fairness::Fuel),
            other => Err(UnknownFairness(other.to_owned())),
        }
    }
}
