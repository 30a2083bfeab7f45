//! `strata-sync`: the sync worker as its own process (see [`strata_sync_worker::cli`]).

fn main() -> std::process::ExitCode {
    strata_sync_worker::cli::main()
}
