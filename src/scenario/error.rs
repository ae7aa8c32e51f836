//! The one error of loading a scenario: which file, which key, and what was wrong.

use std::fmt;
use std::path::Path;

use super::Origin;

/// Why a scenario could not be loaded.
///
/// It displays as `<file>: <key>: <what was wrong>`, for example
/// `scenarios/mine.toml: group[1].load.rate_per_s: must be above 0, found -5`. The key is
/// left out when the whole file is at fault (it cannot be read, or is not valid TOML; the TOML
/// parser's message then gives the line and column). Groups are counted from 0, in the order
/// of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    origin: Origin,
    key: Option<String>,
    message: String,
}

impl ScenarioError {
    pub(super) fn new(origin: Origin, key: Option<String>, message: String) -> ScenarioError {
        ScenarioError {
            origin,
            key,
            message,
        }
    }

    /// The scenario file, or `None` for the embedded default scenario.
    pub fn file(&self) -> Option<&Path> {
        self.origin.file()
    }

    /// Where the scenario came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The path of the offending key, such as `group[1].load.rate_per_s`, or `None` when the
    /// whole file is at fault.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}
