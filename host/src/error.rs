//! Every way creating a module, creating a database, or calling a reducer can fail.

use std::time::Duration;

pub use wasmtime::Trap as TrapCode;

/// Why a module could not be created. Each variant names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// The bytes are neither valid WebAssembly nor valid WAT text.
    #[error("module {module}: invalid WebAssembly: {message}")]
    InvalidBytes {
        /// The module's name.
        module: String,
        /// What the validator said.
        message: String,
    },
    /// Valid WebAssembly that needs a proposal this host does not support.
    #[error("module {module}: uses a WebAssembly feature this host does not support: {message}")]
    UnsupportedProposal {
        /// The module's name.
        module: String,
        /// What the compiler said.
        message: String,
    },
    /// Larger than the host accepts.
    #[error("module {module}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The module's name.
        module: String,
        /// Its size in bytes.
        size: usize,
        /// The host's limit.
        limit: usize,
    },
    /// An export the ABI requires is missing (see docs/abi.md).
    #[error("module {module}: missing export: {what}")]
    MissingExport {
        /// The module's name.
        module: String,
        /// Which export, and why it is needed.
        what: String,
    },
    /// An import the host does not offer.
    #[error(
        "module {module}: unknown import `{import_module}::{name}` ({wanted}); the host offers no such item"
    )]
    UnknownImport {
        /// The module's name.
        module: String,
        /// The import's module.
        import_module: String,
        /// The import's name.
        name: String,
        /// The type the module wants.
        wanted: String,
    },
    /// An import the host offers with another type.
    #[error(
        "module {module}: import `{import_module}::{name}` has the wrong type: the module wants {wanted}, the host offers {offered}"
    )]
    ImportTypeMismatch {
        /// The module's name.
        module: String,
        /// The import's module.
        import_module: String,
        /// The import's name.
        name: String,
        /// The type the module wants.
        wanted: String,
        /// The type the host offers.
        offered: String,
    },
    /// The module's initial memory is over the database's memory limit.
    #[error(
        "module {module}: initial memory of {initial} bytes is over the limit of {limit} bytes"
    )]
    MemoryTooLarge {
        /// The module's name.
        module: String,
        /// The initial size in bytes.
        initial: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The host could not prepare the module for instantiation.
    #[error("module {module}: cannot be linked: {message}")]
    Link {
        /// The module's name.
        module: String,
        /// What the linker said.
        message: String,
    },
}

/// Why a host or a database could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The runtime could not be built.
    #[error("cannot build the runtime: {0}")]
    Runtime(#[from] corelane_executor::BuildError),
    /// The engine refused the configuration.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// A setting is out of range.
    #[error("bad setting: {0}")]
    Setting(String),
    /// A fairness mode this build or this host does not have.
    #[error("fairness mode {mode} is not available: {reason}")]
    FairnessUnavailable {
        /// The mode asked for.
        mode: crate::Fairness,
        /// Why not.
        reason: &'static str,
    },
    /// A database with this name exists already.
    #[error("a database named {0:?} exists already")]
    DatabaseExists(String),
    /// The module cannot be used with these options.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The lane could not be created.
    #[error("cannot create the database's lane: {0}")]
    Lane(#[from] corelane_executor::LaneError),
    /// The ticker thread could not start.
    #[error("cannot start the epoch ticker: {0}")]
    Ticker(std::io::Error),
    /// A preopened directory cannot be used.
    #[error("cannot preopen {path}: {source}")]
    Preopen {
        /// The directory.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Why a call gave no result. Each variant is one kind of failure; a call that fails leaves
/// no write of its own visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The database has exited (or the host shut down), or never existed.
    #[error("no such module: database {database:?} has exited")]
    NoSuchModule {
        /// The database's name.
        database: String,
    },
    /// The module has no reducer of that name.
    #[error("database {database:?} has no reducer {reducer:?}")]
    NoSuchReducer {
        /// The database's name.
        database: String,
        /// The name asked for.
        reducer: String,
    },
    /// The arguments could not be passed.
    #[error("bad arguments: {reason}")]
    BadArguments {
        /// Why.
        reason: String,
    },
    /// The reducer's result could not be read.
    #[error("bad result: {reason}")]
    BadResult {
        /// Why.
        reason: String,
    },
    /// The reducer passed a range outside its memory to a host import.
    #[error(
        "bad pointer passed to `{import}`: {ptr:#x}+{len} is outside the memory of {memory} bytes"
    )]
    BadPointer {
        /// The import.
        import: &'static str,
        /// The pointer.
        ptr: u32,
        /// The length.
        len: u32,
        /// The memory's size in bytes.
        memory: u64,
    },
    /// The reducer returned a failure code.
    #[error("the reducer failed with code {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Failed {
        /// The code, negative.
        code: i64,
        /// The message it set with `fail`, if any.
        message: Option<String>,
    },
    /// The WebAssembly code trapped.
    #[error("trap: {message}")]
    Trap {
        /// The trap's code, when it is one of the standard ones.
        code: Option<TrapCode>,
        /// What happened.
        message: String,
    },
    /// The call ran past its budget.
    #[error("timeout: the call ran past its budget of {budget:?}")]
    Timeout {
        /// The budget.
        budget: Duration,
    },
    /// The call used up its fuel.
    #[error("out of fuel: the call used up its limit of {limit} units")]
    OutOfFuel {
        /// The limit.
        limit: u64,
    },
    /// The call tried to grow its memory past the limit.
    #[error("memory limit: the call tried to grow its memory past {limit} bytes")]
    MemoryLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The call tried to grow a table past the limit.
    #[error("table limit: the call tried to grow a table past {limit} elements")]
    TableLimit {
        /// The limit in elements.
        limit: u64,
    },
    /// The database already has as many live instances as allowed.
    #[error("instance limit: the database has {limit} live instances already")]
    InstanceLimit {
        /// The limit.
        limit: usize,
    },
    /// The host already has as many live instances, over all its databases, as allowed
    /// ([`crate::HostBuilder::max_live_instances`]).
    #[error("host instance limit: the host has {limit} live instances already")]
    HostInstanceLimit {
        /// The limit.
        limit: usize,
    },
    /// The WebAssembly stack overflowed.
    #[error("stack overflow: the call exhausted the WebAssembly stack")]
    StackOverflow,
    /// A WASI command ended with a non-zero status.
    #[error("the program exited with status {status}")]
    Exited {
        /// The status.
        status: i32,
        /// What it wrote to standard error.
        stderr: Vec<u8>,
    },
    /// The call is not of the module's kind (a reducer on a command, or the reverse).
    #[error("{reason}")]
    WrongKind {
        /// What was wrong.
        reason: String,
    },
    /// A panic in the host or a native reducer; the database goes on.
    #[error("panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The call was cancelled before it finished (the database was aborted, or the host shut
    /// down); nothing of it is visible.
    #[error("the call was cancelled before it finished")]
    Cancelled,
    /// A reducer awaited a call of its own database, which could never start.
    #[error("a call awaited another call of its own database")]
    Reentrant,
    /// `call_blocking` was used on a worker thread, where it would stall the worker.
    #[error("call_blocking was used on worker {worker}; await the call instead")]
    OnWorker {
        /// The worker.
        worker: usize,
    },
}
