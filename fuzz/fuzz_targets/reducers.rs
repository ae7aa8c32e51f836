//! Random valid modules from wasm-smith, run as reducers under tight limits: the host must
//! never panic, abort or hang. The harness is `fuzz/harness.rs`, shared with the seeded
//! smoke test `host/tests/smith.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One host for the whole run: building one per input would cost more than the input.
static HARNESS: OnceLock<harness::Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let _ = HARNESS.get_or_init(harness::Harness::new).run(data);
});
