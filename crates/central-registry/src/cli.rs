//! The `strata-registry` command line: read the configuration, start telemetry, run until
//! SIGINT or SIGTERM. `src/main.rs` only calls [`main`], so other packages (the end-to-end tests)
//! can build binaries that run exactly this code.
//!
//! Usage: `strata-registry --config FILE` (or `STRATA_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::process::ExitCode;

use crate::config::RegistryConfig;
use strata_service::telemetry;

use crate::server;

/// Runs the command with the process's arguments and environment; returns its exit status.
pub fn main() -> ExitCode {
    let Some(path) = telemetry::config_path("STRATA_CONFIG") else {
        eprintln!("usage: strata-registry --config FILE (or set STRATA_CONFIG)");
        return ExitCode::from(64);
    };
    let config = match RegistryConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-registry: {e}");
            return ExitCode::from(64);
        }
    };
    telemetry::run_service("strata-registry", |shutdown| async move {
        match server::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "registry failed");
                eprintln!("strata-registry: {e}");
                ExitCode::from(1)
            }
        }
    })
}
