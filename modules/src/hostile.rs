//! The hostile modules: one per way a tenant's module may attack the host, each with the
//! typed error the host must answer it with.

use std::path::PathBuf;

/// A hostile module: text in `modules/hostile/`, what it does, and how the host must refuse
/// it.
///
/// Each file opens with a comment that says what the module does and which error the host
/// gives it. Two cases are too large to store as text (`huge_data`, `too_large`): their file
/// is the module without its bulk, and [`Hostile::wasm`] adds the bulk to the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hostile {
    /// Its name, also the name of its file in `modules/hostile/`.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The text of its file.
    pub wat: &'static str,
    /// When the host refuses it, and with which error.
    pub expected: Expected,
    /// What [`Hostile::wasm`] appends to the file's binary.
    bulk: Bulk,
}

/// When the host refuses a hostile module, and with which error.
///
/// Errors are named by their variant in `corelane_host`: `ModuleError` when the module is
/// created, `CallError` when a reducer is called. The host's tests check each against the
/// error the host really gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Creating the module fails with this `ModuleError` variant.
    AtCreation {
        /// The variant's name, such as `"TooLarge"`.
        error: &'static str,
    },
    /// The module is created, and every call of `reducer` fails with this `CallError`
    /// variant (in the host's default fairness mode).
    AtCall {
        /// The reducer to call.
        reducer: &'static str,
        /// The variant's name, such as `"Timeout"`.
        error: &'static str,
    },
}

/// Bytes appended to a hostile module's binary, for the cases too large to store as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    /// Nothing: the file is the whole module.
    None,
    /// A data section with one active segment of this many bytes at offset 0 of memory 0.
    DataSegment(usize),
    /// A custom section named `padding` with this many zero bytes.
    Padding(usize),
}

/// The size of `huge_data`'s segment: 1.5 MiB, under the host's default limit on modules.
const HUGE_DATA_BYTES: usize = 3 << 19;

/// The padding of `too_large`: 2 MiB, which puts the module just over the host's default
/// limit of 2 MiB.
const TOO_LARGE_PADDING: usize = 2 << 20;

static HOSTILE: &[Hostile] = &[
    Hostile {
        name: "forever",
        summary: "an infinite loop in a reducer",
        wat: include_str!("../hostile/forever.wat"),
        expected: Expected::AtCall {
            reducer: "spin",
            error: "Timeout",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "forever_start",
        summary: "an infinite loop in the start function",
        wat: include_str!("../hostile/forever_start.wat"),
        expected: Expected::AtCall {
            reducer: "noop",
            error: "Timeout",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "memory_bomb",
        summary: "memory.grow to the maximum",
        wat: include_str!("../hostile/memory_bomb.wat"),
        expected: Expected::AtCall {
            reducer: "grow",
            error: "MemoryLimit",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "table_bomb",
        summary: "table.grow to the maximum",
        wat: include_str!("../hostile/table_bomb.wat"),
        expected: Expected::AtCall {
            reducer: "grow",
            error: "TableLimit",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "recursion",
        summary: "recursion without a base case",
        wat: include_str!("../hostile/recursion.wat"),
        expected: Expected::AtCall {
            reducer: "recurse",
            error: "StackOverflow",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "huge_data",
        summary: "a data segment of 1.5 MiB for a memory of 64 KiB",
        wat: include_str!("../hostile/huge_data.wat"),
        expected: Expected::AtCall {
            reducer: "noop",
            error: "Trap",
        },
        bulk: Bulk::DataSegment(HUGE_DATA_BYTES),
    },
    Hostile {
        name: "too_large",
        summary: "a module of more than 2 MiB",
        wat: include_str!("../hostile/too_large.wat"),
        expected: Expected::AtCreation { error: "TooLarge" },
        bulk: Bulk::Padding(TOO_LARGE_PADDING),
    },
    Hostile {
        name: "unsupported_proposal",
        summary: "a shared memory and atomics, from the threads proposal",
        wat: include_str!("../hostile/unsupported_proposal.wat"),
        expected: Expected::AtCreation {
            error: "UnsupportedProposal",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "wrong_import",
        summary: "imports `corelane::put` with the wrong type",
        wat: include_str!("../hostile/wrong_import.wat"),
        expected: Expected::AtCreation {
            error: "ImportTypeMismatch",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "invalid_bytes",
        summary: "a type section that claims 2^32 - 1 types and holds none",
        wat: include_str!("../hostile/invalid_bytes.wat"),
        expected: Expected::AtCreation {
            error: "InvalidBytes",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "missing_export",
        summary: "a reducer module that does not export `memory`",
        wat: include_str!("../hostile/missing_export.wat"),
        expected: Expected::AtCreation {
            error: "MissingExport",
        },
        bulk: Bulk::None,
    },
    Hostile {
        name: "bad_result",
        summary: "reducers that return a result range outside their memory",
        wat: include_str!("../hostile/bad_result.wat"),
        expected: Expected::AtCall {
            reducer: "far",
            error: "BadResult",
        },
        bulk: Bulk::None,
    },
];

/// Every hostile module, those refused at call time first.
pub fn hostile() -> &'static [Hostile] {
    HOSTILE
}

impl Hostile {
    /// The module as binary WebAssembly: its file's text compiled, plus its bulk.
    ///
    /// The text is compiled on every call; `too_large` makes a binary of just over 2 MiB.
    pub fn wasm(&self) -> Vec<u8> {
        // The text is fixed at build time, and the crate's tests compile every file, so a
        // failure here is a bug in this crate.
        let mut binary = wat::parse_str(self.wat).unwrap_or_else(|error| {
            panic!("hostile module `{}` does not parse: {error}", self.name)
        });
        match self.bulk {
            Bulk::None => {}
            Bulk::DataSegment(len) => {
                // One segment: flags 0 (active, memory 0), offset `i32.const 0; end`, bytes.
                let mut contents = vec![1, 0x00, 0x41, 0x00, 0x0b];
                push_leb128(&mut contents, len);
                contents.resize(contents.len() + len, 0xaa);
                push_section(&mut binary, 11, &contents);
            }
            Bulk::Padding(len) => {
                let mut contents = Vec::with_capacity(len + 16);
                push_leb128(&mut contents, "padding".len());
                contents.extend_from_slice(b"padding");
                contents.resize(contents.len() + len, 0);
                push_section(&mut binary, 0, &contents);
            }
        }
        binary
    }

    /// The file's path, `modules/hostile/<name>.wat` in the source tree this crate was built
    /// from; for tools and scenarios that load modules from files.
    pub fn path(&self) -> PathBuf {
        [
            env!("CARGO_MANIFEST_DIR"),
            "hostile",
            &format!("{}.wat", self.name),
        ]
        .iter()
        .collect()
    }
}

/// Appends a section: its id, its length, its contents.
fn push_section(binary: &mut Vec<u8>, id: u8, contents: &[u8]) {
    binary.push(id);
    push_leb128(binary, contents.len());
    binary.extend_from_slice(contents);
}

/// Appends `value` as unsigned LEB128, as the binary format writes lengths and counts.
fn push_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_matches_the_binary_format() {
        let encode = |value| {
            let mut out = Vec::new();
            push_leb128(&mut out, value);
            out
        };
        assert_eq!(encode(0), [0]);
        assert_eq!(encode(127), [0x7f]);
        assert_eq!(encode(128), [0x80, 0x01]);
        assert_eq!(encode(624_485), [0xe5, 0x8e, 0x26]);
    }

    #[test]
    fn hostile_names_are_unique_and_match_their_files() {
        let all = hostile();
        for (index, module) in all.iter().enumerate() {
            let later = &all[index + 1..];
            assert!(
                later.iter().all(|other| other.name != module.name),
                "{}",
                module.name
            );
            let opening = format!(";; {}: ", module.name);
            assert!(
                module.wat.starts_with(&opening),
                "{} opens otherwise",
                module.name
            );
            let on_disk = std::fs::read_to_string(module.path()).expect("the file exists");
            assert_eq!(on_disk, module.wat, "{}", module.name);
        }
    }

    #[test]
    fn every_header_names_the_expected_error() {
        for module in hostile() {
            let error = match module.expected {
                Expected::AtCreation { error } => format!("ModuleError::{error}"),
                Expected::AtCall { error, .. } => format!("CallError::{error}"),
            };
            assert!(module.wat.contains(&error), "{} lacks {error}", module.name);
        }
    }
}
