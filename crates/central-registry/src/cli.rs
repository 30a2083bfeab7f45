//! The `strata-registry` command line: the shared service bootstrap
//! ([`strata_service::bootstrap`]) around [`server::run`]. `src/main.rs` only calls [`main`], so
//! other packages (the end-to-end tests) can build binaries that run exactly this code.
//!
//! Usage: `strata-registry [--check-config] --config FILE` (or `STRATA_REGISTRY_CONFIG`; the old `STRATA_CONFIG`
//! still works, with a warning). Exits 64 on an invalid configuration, 1 when it cannot start.

use std::process::ExitCode;

use strata_service::bootstrap::{self, Failure};

use crate::config::RegistryConfig;
use crate::server::{self, StartError};

/// Runs the command with the process's arguments and environment; returns its exit status.
pub fn main() -> ExitCode {
    bootstrap::main::<RegistryConfig, _, _, _>("strata-registry", server::run)
}

impl Failure for StartError {}
