//! The catalogue of samples, and lookup by name.

use crate::Sample;

/// Every sample: first the well-behaved ones, then the adversarial ones.
static SAMPLES: &[Sample] = &[
    Sample {
        name: "counter",
        summary: "a u64 counter under the key \"count\"",
        wat: include_str!("../wat/counter.wat"),
        reducers: &["increment", "add", "get"],
    },
    Sample {
        name: "kv",
        summary: "a key-value store: put, get, delete and scan",
        wat: include_str!("../wat/kv.wat"),
        reducers: &["put", "get", "delete", "scan"],
    },
    Sample {
        name: "echo",
        summary: "hands the arguments back, measures them, or logs them",
        wat: include_str!("../wat/echo.wat"),
        reducers: &["echo", "len", "log"],
    },
    Sample {
        name: "bank",
        summary: "accounts with u64 balances; a failed transfer shows the rollback",
        wat: include_str!("../wat/bank.wat"),
        reducers: &["deposit", "balance", "transfer", "total"],
    },
    Sample {
        name: "compute",
        summary: "an arithmetic loop of a chosen number of iterations",
        wat: include_str!("../wat/compute.wat"),
        reducers: &["spin"],
    },
    Sample {
        name: "forever",
        summary: "a reducer that loops forever",
        wat: include_str!("../hostile/forever.wat"),
        reducers: &["spin"],
    },
    Sample {
        name: "forever_start",
        summary: "a start function that loops forever, so no instance is ever made",
        wat: include_str!("../hostile/forever_start.wat"),
        reducers: &["noop"],
    },
    Sample {
        name: "memory_bomb",
        summary: "grows memory until refused, then traps",
        wat: include_str!("../hostile/memory_bomb.wat"),
        reducers: &["grow", "grow_max"],
    },
    Sample {
        name: "recursion",
        summary: "recurses without bound until the stack overflows",
        wat: include_str!("../hostile/recursion.wat"),
        reducers: &["recurse"],
    },
    Sample {
        name: "trap",
        summary: "traps: unreachable, division by zero, out-of-bounds load",
        wat: include_str!("../wat/trap.wat"),
        reducers: &["unreachable", "divide", "oob"],
    },
];

/// Every sample, well-behaved ones first.
pub fn all() -> &'static [Sample] {
    SAMPLES
}

/// The sample named `name`, if there is one.
pub fn get(name: &str) -> Option<&'static Sample> {
    SAMPLES.iter().find(|sample| sample.name == name)
}

/// Binary WebAssembly of the sample named `name`.
///
/// # Errors
///
/// [`UnknownSample`], naming `name` and listing the samples, if no sample has that name.
pub fn wasm(name: &str) -> Result<Vec<u8>, UnknownSample> {
    match get(name) {
        Some(sample) => Ok(sample.wasm()),
        None => Err(UnknownSample {
            name: name.to_owned(),
            known: SAMPLES.iter().map(|sample| sample.name).collect(),
        }),
    }
}

/// No sample has the name that was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no sample module is named `{name}`; the samples are: {}", .known.join(", "))]
pub struct UnknownSample {
    /// The name that was asked for.
    pub name: String,
    /// The names of every sample, in the order of [`all`].
    pub known: Vec<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_lists_every_sample() {
        assert_eq!(get("no-such-sample"), None);

        let error = wasm("no-such-sample").unwrap_err();
        assert_eq!(error.name, "no-such-sample");
        let message = error.to_string();
        assert!(message.contains("`no-such-sample`"), "{message}");
        for sample in all() {
            assert!(
                message.contains(sample.name),
                "{message} lacks {}",
                sample.name
            );
        }
    }

    #[test]
    fn every_sample_is_found_by_its_name() {
        for sample in all() {
            assert_eq!(get(sample.name), Some(sample));
            assert!(wasm(sample.name).unwrap().starts_with(b"\0asm"));
        }
    }

    #[test]
    fn sample_names_are_unique_and_match_their_files() {
        for (index, sample) in all().iter().enumerate() {
            let later = &all()[index + 1..];
            assert!(
                later.iter().all(|other| other.name != sample.name),
                "{}",
                sample.name
            );

            // Each file opens with a comment that starts with its sample's name.
            let opening = format!(";; {}: ", sample.name);
            assert!(
                sample.wat.starts_with(&opening),
                "{} opens otherwise",
                sample.name
            );
        }
    }
}
