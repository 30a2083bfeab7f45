//! `strata-registry`: the central registry as its own process.
//!
//! Usage: `strata-registry --config registry.toml` (or `STRATA_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::path::PathBuf;
use std::process::ExitCode;

use strata_central_registry::config::RegistryConfig;
use strata_central_registry::server;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
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
    strata_central_registry::telemetry::init();
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
            strata_central_registry::telemetry::shutdown_signal().await;
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
