//! The WebAssembly host of corelane: databases, modules, instances and reducers.
//!
//! This crate is being built; see the project's issues for its plan.
