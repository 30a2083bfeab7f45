//! The `strata-registry` command line: read the configuration, start telemetry, run until
//! SIGINT or SIGTERM. `src/main.rs` only calls [`main`], so other packages (the end-to-end tests)
//! can build binaries that run exactly this code.
//!
//! Usage: `strata-registry --config FILE` (or `STRATA_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::RegistryConfig;
use crate::server;

/// Runs the command with the process's arguments and environment; returns its exit status.
pub fn main() -> ExitCode {
    let Some(path) = config_path() else {
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
    crate::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("strata-registry: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            crate::telemetry::shutdown_signal().await;
            on_signal.cancel();
        });
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

/// `--config FILE`, `--config=FILE`, or `STRATA_CONFIG`.
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
    std::env::var_os("STRATA_CONFIG").map(PathBuf::from)
}
