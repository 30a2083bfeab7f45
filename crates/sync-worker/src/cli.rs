//! The `strata-sync` command line: `strata-sync --config worker.toml` (or
//! `STRATA_SYNC_CONFIG`). Exits 64 on usage errors and invalid configurations, 1 when the
//! worker cannot start or fails, 0 after a clean drain on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::handler::Handlers;
use crate::server;

const USAGE: &str = "usage: strata-sync --config FILE (or set STRATA_SYNC_CONFIG)";

/// Runs the binary.
pub fn main() -> ExitCode {
    let path = match config_path(std::env::args().skip(1)) {
        Ok(Some(path)) => path,
        Ok(None) => match std::env::var_os("STRATA_SYNC_CONFIG") {
            Some(path) => PathBuf::from(path),
            None => {
                eprintln!("{USAGE}");
                return ExitCode::from(64);
            }
        },
        Err(message) => {
            eprintln!("strata-sync: {message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let config = match WorkerConfig::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("strata-sync: {e}");
            return ExitCode::from(64);
        }
    };
    strata_central_registry::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("strata-sync: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            strata_central_registry::telemetry::shutdown_signal().await;
            tracing::info!("shutdown requested; draining");
            on_signal.cancel();
        });
        // The job handlers arrive with the registry integration; until then every job kind
        // is dead-lettered with "no handler", never lost.
        let handlers = Arc::new(Handlers::new());
        match server::run(&config, handlers, shutdown).await {
            Ok(report) => {
                tracing::info!(?report, "sync worker stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "sync worker failed");
                eprintln!("strata-sync: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// `--config FILE` or `--config=FILE`; `Ok(None)` when absent.
fn config_path(args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, String> {
    let mut args = args;
    let mut path = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let value = args.next().ok_or("--config needs a file")?;
            path = Some(PathBuf::from(value));
        } else if let Some(value) = arg.strip_prefix("--config=") {
            path = Some(PathBuf::from(value));
        } else {
            return Err(format!("unknown argument {arg:?}"));
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<PathBuf>, String> {
        config_path(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_the_config_flag() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&["--config", "w.toml"]).unwrap(),
            Some("w.toml".into())
        );
        assert_eq!(parse(&["--config=w.toml"]).unwrap(), Some("w.toml".into()));
        assert!(parse(&["--config"]).unwrap_err().contains("needs a file"));
        assert!(parse(&["--verbose"]).unwrap_err().contains("--verbose"));
    }
}
