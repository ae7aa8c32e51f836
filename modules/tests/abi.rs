//! Every sample follows the ABI of `docs/abi.md`, checked on its binary: it validates as
//! WebAssembly 2.0, exports `memory`, `corelane_alloc` and exactly its listed reducers with the
//! ABI's types, imports only the host functions of module `corelane` with their exact types,
//! and keeps its constant data below the heap.

use std::collections::BTreeSet;

use corelane_modules::{Sample, all};
use wasmparser::{
    DataKind, ExternalKind, FuncType, KnownCustom, Name, Operator, OperatorsReader, Parser,
    Payload, TypeRef, ValType, Validator, WasmFeatures, types::Types,
};

use ValType::{I32, I64};

/// The host imports of `docs/abi.md`: name, parameters, results.
const HOST_IMPORTS: &[(&str, &[ValType], &[ValType])] = &[
    ("get", &[I32, I32, I32, I32], &[I32]),
    ("put", &[I32, I32, I32, I32], &[]),
    ("delete", &[I32, I32], &[I32]),
    ("scan", &[I32, I32, I32, I32], &[I32]),
    ("log", &[I32, I32, I32], &[]),
    ("now_us", &[], &[I64]),
    ("fail", &[I32, I32], &[]),
];

/// A sample's binary, validated, with the type information the checks need.
struct Checked {
    name: &'static str,
    bytes: Vec<u8>,
    types: Types,
}

impl Checked {
    fn new(sample: &Sample) -> Checked {
        let bytes = sample.wasm();

        // Plain WebAssembly 2.0, which every engine corelane may use supports.
        let types = Validator::new_with_features(WasmFeatures::WASM2)
            .validate_all(&bytes)
            .unwrap_or_else(|error| panic!("sample `{}` is invalid: {error}", sample.name));
        Checked {
            name: sample.name,
            bytes,
            types,
        }
    }

    fn function_type(&self, index: u32) -> &FuncType {
        let types = self.types.as_ref();
        self.types[types.core_function_at(index)].unwrap_func()
    }

    fn payloads(&self) -> impl Iterator<Item = Payload<'_>> {
        Parser::new(0)
            .parse_all(&self.bytes)
            .map(|payload| payload.expect("a validated module parses"))
    }
}

fn signature(ty: &FuncType) -> (&[ValType], &[ValType]) {
    (ty.params(), ty.results())
}

#[test]
fn every_sample_parses_and_validates() {
    for sample in all() {
        let checked = Checked::new(sample);
        assert!(checked.bytes.starts_with(b"\0asm"), "{}", checked.name);
    }
}

#[test]
fn exports_are_memory_alloc_and_exactly_the_listed_reducers() {
    for sample in all() {
        let checked = Checked::new(sample);
        let mut reducers = BTreeSet::new();
        let mut has_memory = false;
        let mut has_alloc = false;

        for payload in checked.payloads() {
            let Payload::ExportSection(exports) = payload else {
                continue;
            };
            for export in exports {
                let export = export.unwrap();
                match export.kind {
                    ExternalKind::Memory if export.name == "memory" => has_memory = true,
                    ExternalKind::Func => {
                        let ty = signature(checked.function_type(export.index));
                        if export.name == "corelane_alloc" {
                            assert_eq!(ty, (&[I32][..], &[I32][..]), "{}", checked.name);
                            has_alloc = true;
                        } else {
                            // Any other exported function is meant as a reducer.
                            assert_eq!(
                                ty,
                                (&[I32, I32][..], &[I64][..]),
                                "{}: export `{}`",
                                checked.name,
                                export.name
                            );
                            assert!(!export.name.starts_with("corelane_"), "{}", export.name);
                            reducers.insert(export.name);
                        }
                    }
                    kind => panic!("{}: unexpected export {kind:?}", checked.name),
                }
            }
        }

        assert!(has_memory, "{} does not export `memory`", checked.name);
        assert!(
            has_alloc,
            "{} does not export `corelane_alloc`",
            checked.name
        );
        let listed: BTreeSet<&str> = sample.reducers.iter().copied().collect();
        assert_eq!(
            listed.len(),
            sample.reducers.len(),
            "{} lists one twice",
            checked.name
        );
        assert_eq!(reducers, listed, "{}", checked.name);
    }
}

#[test]
fn imports_are_host_functions_with_their_exact_types() {
    for sample in all() {
        let checked = Checked::new(sample);
        for payload in checked.payloads() {
            let Payload::ImportSection(imports) = payload else {
                continue;
            };
            for import in imports.into_imports() {
                let import = import.unwrap();
                assert_eq!(import.module, "corelane", "{}", checked.name);
                let TypeRef::Func(type_index) = import.ty else {
                    panic!(
                        "{}: import `{}` is not a function",
                        checked.name, import.name
                    );
                };
                let (_, params, results) = HOST_IMPORTS
                    .iter()
                    .find(|(name, _, _)| *name == import.name)
                    .unwrap_or_else(|| {
                        panic!("{}: unknown import `{}`", checked.name, import.name)
                    });
                let id = checked.types.as_ref().core_type_at_in_module(type_index);
                let ty = checked.types[id].unwrap_func();
                assert_eq!(
                    signature(ty),
                    (*params, *results),
                    "{}: import `{}`",
                    checked.name,
                    import.name
                );
            }
        }
    }
}

#[test]
fn constant_data_lies_below_the_heap() {
    for sample in all() {
        let checked = Checked::new(sample);
        let mut data_ends = Vec::new();
        let mut global_initial_values = Vec::new();
        let mut heap_base_index = None;

        for payload in checked.payloads() {
            match payload {
                Payload::DataSection(segments) => {
                    for segment in segments {
                        let segment = segment.unwrap();
                        let DataKind::Active { offset_expr, .. } = segment.kind else {
                            panic!("{}: a passive data segment", checked.name);
                        };
                        let offset = i32_constant(offset_expr.get_operators_reader());
                        data_ends.push(offset + segment.data.len() as u64);
                    }
                }
                Payload::GlobalSection(globals) => {
                    for global in globals {
                        let global = global.unwrap();
                        let value = i32_constant(global.init_expr.get_operators_reader());
                        global_initial_values.push(value);
                    }
                }
                Payload::CustomSection(section) => {
                    let KnownCustom::Name(names) = section.as_known() else {
                        continue;
                    };
                    for subsection in names {
                        let Name::Global(map) = subsection.unwrap() else {
                            continue;
                        };
                        for naming in map {
                            let naming = naming.unwrap();
                            if naming.name == "heap_base" {
                                heap_base_index = Some(naming.index as usize);
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        // The name section carries the WAT's `$heap_base`; no sample imports a global.
        let index = heap_base_index
            .unwrap_or_else(|| panic!("{} has no global named heap_base", checked.name));
        let heap_base = global_initial_values[index];
        assert_eq!(heap_base, 1024, "{}: the documented layout", checked.name);
        for end in data_ends {
            assert!(end <= heap_base, "{}: data up to {end}", checked.name);
        }
    }
}

#[test]
fn only_forever_start_has_a_start_function() {
    for sample in all() {
        let checked = Checked::new(sample);
        let has_start = checked
            .payloads()
            .any(|payload| matches!(payload, Payload::StartSection { .. }));
        assert_eq!(
            has_start,
            checked.name == "forever_start",
            "{}",
            checked.name
        );
    }
}

/// The value of a constant expression that is a single `i32.const`.
fn i32_constant(mut operators: OperatorsReader<'_>) -> u64 {
    match operators.read().unwrap() {
        Operator::I32Const { value } => u64::from(value as u32),
        other => panic!("not an i32.const: {other:?}"),
    }
}
