//! Modules: compiled once, checked against the ABI and the host's imports, linked once.
//!
//! [`Module`] is a plain enum with a variant per engine: `Wasm` for WebAssembly compiled by
//! Wasmtime, `Native` for reducers written in Rust. Creating a Wasm module validates it,
//! compiles it, classifies it (reducer module or WASI command), checks every import against
//! what the host offers, and prepares it for instantiation; every failure is a
//! [`ModuleError`] naming what was wrong. Instances are made from the prepared module.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use wasmtime::{ExternType, FuncType, InstancePre, ValType};

use crate::error::ModuleError;
use crate::host::HostInner;
use crate::native::NativeModule;
use crate::store::StoreData;

/// A module the host can run: WebAssembly, or reducers written in Rust.
#[derive(Clone)]
pub enum Module {
    /// A WebAssembly module.
    Wasm(Arc<WasmModule>),
    /// Reducers written in Rust.
    Native(Arc<NativeModule>),
}

/// What a module is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// Exports reducers (see docs/abi.md).
    Reducers,
    /// A WASI preview1 command: exports `_start`.
    Command,
}

/// A compiled, checked and linked WebAssembly module.
pub struct WasmModule {
    pub(crate) name: String,
    pub(crate) module: wasmtime::Module,
    pub(crate) pre: InstancePre<StoreData>,
    pub(crate) kind: ModuleKind,
    /// Reducer names, in export order; an instance resolves them once, by index.
    pub(crate) reducers: Vec<String>,
    pub(crate) reducer_index: HashMap<String, usize>,
    /// The initial size of its memory in bytes (defined or imported), if it has one.
    pub(crate) initial_memory: Option<u64>,
}

impl WasmModule {
    /// The index of the reducer called `name`. Every call looks its reducer up: a few names
    /// are compared in place, faster than hashing one; many go through the map.
    pub(crate) fn reducer_index(&self, name: &str) -> Option<usize> {
        if self.reducers.len() <= LINEAR_LOOKUP {
            self.reducers.iter().position(|reducer| reducer == name)
        } else {
            self.reducer_index.get(name).copied()
        }
    }
}

/// Up to this many reducers, a lookup compares names instead of hashing.
const LINEAR_LOOKUP: usize = 8;

impl Module {
    /// A module of reducers written in Rust.
    pub fn native(module: NativeModule) -> Module {
        Module::Native(Arc::new(module))
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        match self {
            Module::Wasm(wasm) => &wasm.name,
            Module::Native(native) => native.name(),
        }
    }

    /// What the module is for.
    pub fn kind(&self) -> ModuleKind {
        match self {
            Module::Wasm(wasm) => wasm.kind,
            Module::Native(_) => ModuleKind::Reducers,
        }
    }

    /// The reducers' names.
    pub fn reducers(&self) -> Vec<String> {
        match self {
            Module::Wasm(wasm) => wasm.reducers.clone(),
            Module::Native(native) => native.reducers().map(str::to_owned).collect(),
        }
    }

    /// Whether the module has a reducer of this name.
    pub fn has_reducer(&self, name: &str) -> bool {
        match self {
            Module::Wasm(wasm) => wasm.reducer_index(name).is_some(),
            Module::Native(native) => native.get(name).is_some(),
        }
    }

    /// The module's imports, as `module::name: type`, for inspection.
    pub fn imports(&self) -> Vec<String> {
        match self {
            Module::Wasm(wasm) => wasm
                .module
                .imports()
                .map(|import| {
                    format!(
                        "{}::{}: {}",
                        import.module(),
                        import.name(),
                        describe(&import.ty())
                    )
                })
                .collect(),
            Module::Native(_) => Vec::new(),
        }
    }

    /// The module's exports, as `name: type`, for inspection.
    pub fn exports(&self) -> Vec<String> {
        match self {
            Module::Wasm(wasm) => wasm
                .module
                .exports()
                .map(|export| format!("{}: {}", export.name(), describe(&export.ty())))
                .collect(),
            Module::Native(native) => native
                .reducers()
                .map(|name| format!("{name}: native reducer"))
                .collect(),
        }
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("reducers", &self.reducers())
            .finish()
    }
}

/// A readable description of an import's or export's type.
pub(crate) fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(func) => func.to_string(),
        ExternType::Memory(memory) => format!(
            "memory (min {} pages{})",
            memory.minimum(),
            memory
                .maximum()
                .map(|max| format!(", max {max}"))
                .unwrap_or_default()
        ),
        ExternType::Table(table) => format!("table (min {})", table.minimum()),
        ExternType::Global(global) => format!("global {}", global.content()),
        other => format!("{other:?}"),
    }
}

/// Whether `func` is a reducer's type: `(i32, i32) -> i64`.
fn is_reducer_type(func: &FuncType) -> bool {
    let params: Vec<ValType> = func.params().collect();
    let results: Vec<ValType> = func.results().collect();
    matches!(params.as_slice(), [ValType::I32, ValType::I32])
        && matches!(results.as_slice(), [ValType::I64])
}

/// Checks a module's size, turns WAT text into binary, validates it and compiles it.
fn decode(host: &HostInner, name: &str, bytes: &[u8]) -> Result<wasmtime::Module, ModuleError> {
    let module_name = name.to_owned();
    let limit = host.config.max_module_bytes;
    let too_large = |size| ModuleError::TooLarge {
        module: name.to_owned(),
        size,
        limit,
    };
    if bytes.len() > limit {
        return Err(too_large(bytes.len()));
    }
    let invalid = |message: String| ModuleError::InvalidBytes {
        module: name.to_owned(),
        message,
    };

    // Binary starts with the `\0asm` magic; anything else must be WAT text.
    let binary = if bytes.starts_with(b"\0asm") {
        std::borrow::Cow::Borrowed(bytes)
    } else if std::str::from_utf8(bytes).is_err() {
        return Err(invalid(
            "neither binary WebAssembly (no `\\0asm` header) nor WAT text (not UTF-8)".into(),
        ));
    } else {
        wat::parse_bytes(bytes).map_err(|mut error| {
            error.set_path(name);
            invalid(format!(
                "not binary WebAssembly (no `\\0asm` header), and not valid WAT text: {error}"
            ))
        })?
    };
    if binary.len() > limit {
        return Err(too_large(binary.len()));
    }

    // Invalid even with every proposal switched on: bad bytes. Valid then, but refused by the
    // engine: a proposal this host does not support.
    let mut validator = wasmtime::wasmparser::Validator::new_with_features(
        wasmtime::wasmparser::WasmFeatures::all(),
    );
    if let Err(error) = validator.validate_all(&binary) {
        return Err(invalid(error.to_string()));
    }
    wasmtime::Module::new(&host.engine, &binary).map_err(|error| ModuleError::UnsupportedProposal {
        module: module_name,
        message: format!("{error:#}"),
    })
}

/// The initial size in bytes of a module's memory, defined or imported.
fn initial_memory(module: &wasmtime::Module) -> Option<u64> {
    module
        .imports()
        .map(|import| import.ty())
        .chain(module.exports().map(|export| export.ty()))
        .find_map(|ty| {
            ty.memory()
                .map(|memory| memory.minimum() * memory.page_size())
        })
}

/// Creates a Wasm module from binary WebAssembly or WAT text.
pub(crate) fn compile(host: &HostInner, name: &str, bytes: &[u8]) -> Result<Module, ModuleError> {
    let module_name = name.to_owned();
    let module = decode(host, name, bytes)?;
    check_imports(host, &module_name, &module)?;
    let (kind, reducers) = classify(&module_name, &module)?;
    let initial_memory = initial_memory(&module);

    let pre = host
        .linker
        .instantiate_pre(&module)
        .map_err(|error| ModuleError::Link {
            module: module_name.clone(),
            message: format!("{error:#}"),
        })?;
    let reducer_index = reducers
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), i))
        .collect();
    Ok(Module::Wasm(Arc::new(WasmModule {
        name: module_name,
        module,
        pre,
        kind,
        reducers,
        reducer_index,
        initial_memory,
    })))
}

/// What the host would link for one import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportLink {
    /// The host offers it with the right type.
    Linked,
    /// The host offers nothing by that name.
    Missing,
    /// The host offers it with another type.
    WrongType {
        /// The type the host offers.
        offered: String,
    },
}

/// One import of a module, as [`crate::Host::inspect`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportDescription {
    /// The import's module.
    pub module: String,
    /// The import's name.
    pub name: String,
    /// The type the module wants.
    pub wanted: String,
    /// What the host would link for it.
    pub link: ImportLink,
}

/// What a module is, and what the host would make of it; see [`crate::Host::inspect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleDescription {
    /// Its kind, or why it is neither a reducer module nor a WASI command.
    pub kind: Result<ModuleKind, String>,
    /// Its reducers (for a reducer module).
    pub reducers: Vec<String>,
    /// Its imports, each with what the host would link.
    pub imports: Vec<ImportDescription>,
    /// Its exports, as `name: type`.
    pub exports: Vec<String>,
    /// The initial size of its memory in bytes, if it has one.
    pub initial_memory: Option<u64>,
}

/// Describes a module without requiring that the host can run it: only bytes that are not
/// WebAssembly (or use an unsupported proposal, or are too large) fail.
pub(crate) fn inspect(
    host: &HostInner,
    name: &str,
    bytes: &[u8],
) -> Result<ModuleDescription, ModuleError> {
    let module = decode(host, name, bytes)?;
    let imports = module
        .imports()
        .map(|import| {
            let wanted = import.ty();
            let key = (import.module().to_owned(), import.name().to_owned());
            let link = match host.offered.get(&key) {
                None => ImportLink::Missing,
                Some(offered) if type_matches(&wanted, offered) => ImportLink::Linked,
                Some(offered) => ImportLink::WrongType {
                    offered: describe(offered),
                },
            };
            ImportDescription {
                module: key.0,
                name: key.1,
                wanted: describe(&wanted),
                link,
            }
        })
        .collect();
    let classified = classify(name, &module);
    let reducers = classified
        .as_ref()
        .map(|(_, reducers)| reducers.clone())
        .unwrap_or_default();
    Ok(ModuleDescription {
        kind: classified
            .map(|(kind, _)| kind)
            .map_err(|error| error.to_string()),
        reducers,
        imports,
        exports: module
            .exports()
            .map(|export| format!("{}: {}", export.name(), describe(&export.ty())))
            .collect(),
        initial_memory: initial_memory(&module),
    })
}

/// Whether an item the host offers satisfies an import of type `wanted`.
fn type_matches(wanted: &ExternType, offered: &ExternType) -> bool {
    match (wanted, offered) {
        (ExternType::Func(wanted), ExternType::Func(offered)) => offered.matches(wanted),
        _ => false,
    }
}

/// Every import must be offered by the host, with a matching type.
fn check_imports(
    host: &HostInner,
    name: &str,
    module: &wasmtime::Module,
) -> Result<(), ModuleError> {
    for import in module.imports() {
        let wanted = import.ty();
        let key = (import.module().to_owned(), import.name().to_owned());
        let Some(offered) = host.offered.get(&key) else {
            return Err(ModuleError::UnknownImport {
                module: name.to_owned(),
                import_module: key.0,
                name: key.1,
                wanted: describe(&wanted),
            });
        };
        if !type_matches(&wanted, offered) {
            return Err(ModuleError::ImportTypeMismatch {
                module: name.to_owned(),
                import_module: key.0,
                name: key.1,
                wanted: describe(&wanted),
                offered: describe(offered),
            });
        }
    }
    Ok(())
}

/// A command exports `_start`; a reducer module exports `memory` and at least one reducer.
fn classify(
    name: &str,
    module: &wasmtime::Module,
) -> Result<(ModuleKind, Vec<String>), ModuleError> {
    let mut reducers = Vec::new();
    let mut has_memory = false;
    let mut start = None;
    for export in module.exports() {
        match export.ty() {
            ExternType::Memory(_) if export.name() == "memory" => has_memory = true,
            ExternType::Func(func) if export.name() == "_start" => start = Some(func),
            ExternType::Func(func)
                if is_reducer_type(&func) && !export.name().starts_with("corelane_") =>
            {
                reducers.push(export.name().to_owned());
            }
            _ => {}
        }
    }
    let missing = |what: &str| ModuleError::MissingExport {
        module: name.to_owned(),
        what: what.to_owned(),
    };

    if let Some(start) = start {
        if start.params().len() != 0 || start.results().len() != 0 {
            return Err(missing(
                "`_start` of type () -> () (a WASI command's entry point)",
            ));
        }
        return Ok((ModuleKind::Command, Vec::new()));
    }
    if reducers.is_empty() {
        return Err(missing(
            "a reducer, a function of type (i32, i32) -> i64 (or `_start` for a WASI command)",
        ));
    }
    if !has_memory {
        return Err(missing(
            "`memory`, the memory that arguments and results pass through",
        ));
    }
    Ok((ModuleKind::Reducers, reducers))
}
