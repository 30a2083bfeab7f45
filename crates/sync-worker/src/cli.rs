//! The `strata-sync` command line: `strata-sync --config worker.toml` (or `STRATA_SYNC_CONFIG`),
//! through the services' shared bootstrap ([`strata_service::bootstrap`]): exits 64 on usage
//! errors and configurations that cannot be used, 1 when the worker cannot start or fails, 0
//! after a clean drain on SIGINT/SIGTERM.

use std::process::ExitCode;

use crate::config::WorkerConfig;

/// Runs the binary.
pub fn main() -> ExitCode {
    strata_service::bootstrap::main::<WorkerConfig, _, _, _>("strata-sync", crate::run)
}
