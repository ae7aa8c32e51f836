//! Sample and adversarial WebAssembly modules shipped with corelane, loaded by name.
//!
//! This crate is being built; see the project's issues for its plan.
