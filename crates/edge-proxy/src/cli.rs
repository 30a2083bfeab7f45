//! The `strata-edge` command line: read the configuration, start telemetry, run until SIGINT or
//! SIGTERM. `src/main.rs` only calls [`main`], so other packages (the end-to-end tests) can build
//! binaries that run exactly this code.
//!
//! Usage: `strata-edge --config FILE` (or `STRATA_EDGE_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::EdgeConfig;

/// Runs the command with the process's arguments and environment; returns its exit status.
pub fn main() -> ExitCode {
    let Some(path) = config_path() else {
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
    strata_central_registry::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("strata-edge: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = match crate::start(config, shutdown.clone()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("strata-edge: {e}");
                return ExitCode::from(1);
            }
        };
        strata_central_registry::telemetry::shutdown_signal().await;
        shutdown.cancel();
        let _ = running.done.await;
        ExitCode::SUCCESS
    })
}

/// `--config FILE`, `--config=FILE`, or `STRATA_EDGE_CONFIG`.
fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("STRATA_EDGE_CONFIG").map(PathBuf::from)
}
