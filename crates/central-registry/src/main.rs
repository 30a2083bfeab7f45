//! `strata-registry`: the central registry as its own process.
//!
//! Usage: `strata-registry --config registry.toml` (or `STRATA_REGISTRY_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::process::ExitCode;

fn main() -> ExitCode {
    strata_central_registry::cli::main()
}
