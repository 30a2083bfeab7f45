//! `strata-sync`, built as a binary of the end-to-end test package (see Cargo.toml).

fn main() -> std::process::ExitCode {
    strata_sync_worker::cli::main()
}
