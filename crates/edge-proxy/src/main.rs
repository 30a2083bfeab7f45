//! `strata-edge`: the edge proxy as its own process.
//!
//! Usage: `strata-edge --config edge.toml` (or `STRATA_EDGE_CONFIG`). Exits 64 on an invalid
//! configuration, 1 when it cannot start.

use std::process::ExitCode;

fn main() -> ExitCode {
    strata_edge_proxy::cli::main()
}
