//! How every service binary starts: the same command line, the same configuration loading, the
//! same logging and the same shutdown, then the service's one `run(config, shutdown)`.
//!
//! `strata-registry`, `strata-edge` and `strata-sync` each call [`main`] from their `cli`
//! module. The command line is `--config FILE` (or `--config=FILE`), else the file named by
//! `STRATA_<SERVICE>_CONFIG` (see [`crate::config`]); `--check-config` validates the
//! configuration and exits without starting anything (for CI pipelines and init containers).
//! Exit statuses: 64 for a usage error or a
//! configuration that cannot be used, the [`Failure::exit_code`] of a failed run (1 unless the
//! service says otherwise), 0 after a clean shutdown on SIGINT or SIGTERM.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{self, ServiceConfig};
use crate::telemetry;

/// A service run that failed, and the exit status that failure means.
pub trait Failure: std::fmt::Display {
    /// The process's exit status for this failure.
    fn exit_code(&self) -> u8 {
        1
    }
}

/// Runs a service binary named `binary` with the process's arguments and environment: reads
/// the configuration `C`, installs logging (then logs the configuration's warnings), builds the
/// runtime, and runs `run` with a token that SIGINT or SIGTERM cancels.
pub fn main<C, F, Fut, E>(binary: &str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Failure,
{
    let env = config::config_env(C::SERVICE);
    let usage = format!("usage: {binary} [--check-config] --config FILE (or set {env})");
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{binary}: {message}\n{usage}");
            return ExitCode::from(64);
        }
    };
    let path = match args.config {
        Some(path) => path,
        None => match from_env::<C>(&env) {
            Some(path) => path,
            None => {
                eprintln!("{usage}");
                return ExitCode::from(64);
            }
        },
    };
    let loaded = match config::load::<C>(&path) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{binary}: {e}");
            return ExitCode::from(64);
        }
    };
    let traces = match crate::trace::TraceSettings::from_env(loaded.config.tracing(), C::BINARY) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("{binary}: tracing: {e}");
            return ExitCode::from(64);
        }
    };
    if let Err(e) = loaded.config.check_references() {
        eprintln!("{binary}: {e}");
        return ExitCode::from(64);
    }
    if args.check_config {
        for warning in &loaded.warnings {
            eprintln!("{binary}: warning: {warning}");
        }
        println!("{binary}: configuration {} is valid", path.display());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{binary}: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The OTLP exporter's gRPC channel lives on the runtime; the guard flushes it at the end.
    let _traces = match runtime.block_on(async { telemetry::init_with_traces(traces.as_ref()) }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{binary}: tracing: {e}");
            return ExitCode::from(64);
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!(config = %path.display(), "{warning}");
    }
    if C::CONFIG_WAS
        .iter()
        .any(|old| std::env::var_os(old).is_some())
        && std::env::var_os(&env).is_none()
    {
        tracing::warn!("{} is deprecated: use {env}", C::CONFIG_WAS.join(" / "));
    }
    let config = loaded.config;
    let status = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        // Installed before the service starts: a SIGTERM right after "listening" drains it.
        let signal = telemetry::shutdown_signal();
        tokio::spawn(async move {
            signal.await;
            tracing::info!("shutdown requested");
            on_signal.cancel();
        });
        match run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "{binary} failed");
                eprintln!("{binary}: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    });
    telemetry::flush();
    status
}

/// The file named by `env`, else by one of the service's old names for it.
fn from_env<C: ServiceConfig>(env: &str) -> Option<PathBuf> {
    std::iter::once(env)
        .chain(C::CONFIG_WAS.iter().copied())
        .find_map(std::env::var_os)
        .map(PathBuf::from)
}

/// The command line of a service binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `--config FILE` or `--config=FILE`.
    pub config: Option<PathBuf>,
    /// `--check-config`: load and validate the configuration (file, overrides, named
    /// variables, tracing settings), say so, and exit 0 — or 64 with the reason — without
    /// starting anything.
    pub check_config: bool,
}

/// Parses `args`: `--config FILE` (or `--config=FILE`) and `--check-config`; an error for any
/// other argument.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = args;
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let value = args.next().ok_or("--config needs a file")?;
            parsed.config = Some(PathBuf::from(value));
        } else if let Some(value) = arg.strip_prefix("--config=") {
            parsed.config = Some(PathBuf::from(value));
        } else if arg == "--check-config" {
            parsed.check_config = true;
        } else {
            return Err(format!("unknown argument {arg:?}"));
        }
    }
    Ok(parsed)
}

/// `--config FILE` among `args` (see [`parse_args`]).
pub fn config_path(args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, String> {
    parse_args(args).map(|a| a.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<PathBuf>, String> {
        config_path(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_the_check_flag() {
        let args = parse_args(
            ["--check-config", "--config=w.toml"]
                .iter()
                .map(|s| (*s).to_owned()),
        )
        .unwrap();
        assert_eq!(
            args,
            Args {
                config: Some("w.toml".into()),
                check_config: true
            }
        );
        assert!(!parse_args(std::iter::empty()).unwrap().check_config);
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
