//! The `strata-edge` command line: the shared service bootstrap ([`strata_service::bootstrap`])
//! around [`run`]. `src/main.rs` only calls [`main`], so other packages (the end-to-end tests)
//! can build binaries that run exactly this code.
//!
//! Usage: `strata-edge [--check-config] --config FILE` (or `STRATA_EDGE_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::process::ExitCode;

use strata_service::bootstrap::{self, Failure};
use tokio_util::sync::CancellationToken;

use crate::StartError;
use crate::config::EdgeConfig;

/// Runs the command with the process's arguments and environment; returns its exit status.
pub fn main() -> ExitCode {
    bootstrap::main::<EdgeConfig, _, _, _>("strata-edge", run)
}

/// Runs the edge until `shutdown` is cancelled, then until its server has drained.
pub async fn run(config: EdgeConfig, shutdown: CancellationToken) -> Result<(), StartError> {
    let running = crate::start(config, shutdown.clone()).await?;
    shutdown.cancelled().await;
    let _ = running.done.await;
    Ok(())
}

impl Failure for StartError {}
