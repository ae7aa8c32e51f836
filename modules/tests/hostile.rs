//! The hostile modules are what their headers say, checked on their binaries with the
//! validator Wasmtime uses: the ones refused at call time are valid WebAssembly 2.0, the
//! one that needs a proposal is valid only with it, and the invalid bytes are invalid with
//! every proposal on.

use corelane_modules::{Expected, Hostile, hostile};
use wasmparser::{Validator, WasmFeatures};

fn named(name: &str) -> &'static Hostile {
    hostile()
        .iter()
        .find(|hostile| hostile.name == name)
        .unwrap()
}

fn validate(features: WasmFeatures, bytes: &[u8]) -> Result<(), String> {
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

#[test]
fn modules_refused_at_call_time_are_valid_webassembly_2() {
    for hostile in hostile() {
        if let Expected::AtCall { .. } = hostile.expected {
            let bytes = hostile.wasm();
            assert_eq!(
                validate(WasmFeatures::WASM2, &bytes),
                Ok(()),
                "{}",
                hostile.name
            );
        }
    }
}

#[test]
fn the_huge_segment_is_appended_and_the_module_stays_under_2_mib() {
    let huge = named("huge_data");
    let plain = wat::parse_str(huge.wat).unwrap();
    let bytes = huge.wasm();
    assert!(bytes.starts_with(&plain));
    assert!(bytes.len() > plain.len() + (1 << 20));
    assert!(bytes.len() < 2 << 20);
}

#[test]
fn the_large_module_is_valid_and_just_over_2_mib() {
    let bytes = named("too_large").wasm();
    assert!(bytes.len() > 2 << 20);
    assert!(bytes.len() < (2 << 20) + 1024);
    assert_eq!(validate(WasmFeatures::WASM2, &bytes), Ok(()));
}

#[test]
fn the_unsupported_proposal_is_threads_and_nothing_else() {
    let bytes = named("unsupported_proposal").wasm();
    assert!(validate(WasmFeatures::WASM2, &bytes).is_err());
    assert_eq!(
        validate(WasmFeatures::WASM2 | WasmFeatures::THREADS, &bytes),
        Ok(())
    );
}

#[test]
fn the_invalid_bytes_are_invalid_with_every_proposal() {
    let bytes = named("invalid_bytes").wasm();
    assert!(bytes.starts_with(b"\0asm\x01\0\0\0"));
    assert!(bytes.len() < 16);
    assert!(validate(WasmFeatures::all(), &bytes).is_err());
}

#[test]
fn modules_refused_at_creation_for_their_shape_are_otherwise_valid() {
    for name in ["wrong_import", "missing_export"] {
        assert_eq!(
            validate(WasmFeatures::WASM2, &named(name).wasm()),
            Ok(()),
            "{name}"
        );
    }
}
