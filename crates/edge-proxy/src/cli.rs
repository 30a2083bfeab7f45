//! The `strata-edge` command line: read the configuration, start telemetry, run until SIGINT or
//! SIGTERM. `src/main.rs` only calls [`main`], so other packages (the end-to-end tests) can build
//! binaries that run exactly this code.
//!
//! Usage: `strata-edge --config FILE` (or `STRATA_EDGE_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::process::ExitCode;

use strata_service::telemetry;

use crate::config::EdgeConfig;

/// Runs the command with the process's arguments and environment; returns its exit status.
pub fn main() -> ExitCode {
    let Some(path) = telemetry::config_path("STRATA_EDGE_CONFIG") else {
        eprintln!("usage: strata-edge --config FILE (or set STRATA_EDGE_CONFIG)");
        return ExitCode::from(64);
    };
    let config = match EdgeConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-edge: {e}");
            return ExitCode::from(64);
        }
    };
    telemetry::run_service("strata-edge", |shutdown| async move {
        let running = match crate::start(config, shutdown.clone()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("strata-edge: {e}");
                return ExitCode::from(1);
            }
        };
        shutdown.cancelled().await;
        let _ = running.done.await;
        ExitCode::SUCCESS
    })
}
