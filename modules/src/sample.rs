//! One sample module: its name, its WAT text and its reducers.

/// A sample module: hand-written WebAssembly text that follows corelane's ABI.
///
/// The text of each sample lives in `modules/wat/<name>.wat` (`modules/hostile/` for the
/// adversarial ones that are also hostile modules), and its opening comment documents
/// the reducers: their argument and result bytes, and their failure codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The name it is loaded by, also the name of its file.
    pub name: &'static str,
    /// One line on what it is for.
    pub summary: &'static str,
    /// The module in the WebAssembly text format.
    pub wat: &'static str,
    /// The names of its reducers: exactly its exports of type `(i32, i32) -> i64`.
    pub reducers: &'static [&'static str],
}

impl Sample {
    /// The module as binary WebAssembly.
    ///
    /// The text is compiled on every call; the result starts with the `\0asm` magic.
    pub fn wasm(&self) -> Vec<u8> {
        // The text is fixed at build time, and the test `every_sample_parses_and_validates`
        // parses every sample, so a failure here is a bug in this crate, not a condition for
        // callers to handle.
        wat::parse_str(self.wat)
            .unwrap_or_else(|error| panic!("sample `{}` does not parse: {error}", self.name))
    }
}
