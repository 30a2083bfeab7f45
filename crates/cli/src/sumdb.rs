//! `strata sumdb keygen NAME [--out FILE]`: a new signer key for the registry's own checksum
//! database (`[ledger]`), and the verifier key clients put in `GOSUMDB`. `strata sumdb audit`
//! is in [`crate::sumdb_audit`].
//!
//! With `--out` the signer key goes to FILE (created with mode 0600, never overwritten) and the
//! verifier key alone to stdout, so `GOSUMDB=$(strata sumdb keygen … --out …)` works; without
//! it the signer key goes to stdout and the verifier key to stderr.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::{Failure, shown};

/// `strata sumdb …`.
#[derive(Debug, Args)]
pub struct SumdbArgs {
    #[command(subcommand)]
    command: SumdbCommand,
}

#[derive(Debug, Subcommand)]
enum SumdbCommand {
    /// Generate the signer key of a checksum database named NAME (a host name such as
    /// sum.corp.example) and print its verifier key (the GOSUMDB value).
    Keygen {
        /// The database name: what GOSUMDB and the `[ledger]` table's `name` say.
        name: String,
        /// Write the signer key to this file (mode 0600; an existing file is not replaced).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Audit a checksum database: its signed head is consistent with the one kept from the last
    /// audit (a forked or rewritten log fails loudly); with --records every record is re-read
    /// and re-hashed; with --proxy every recorded version is downloaded and re-verified.
    Audit(crate::sumdb_audit::AuditArgs),
}

/// Runs `strata sumdb`.
pub fn run(args: &SumdbArgs) -> Result<(), Failure> {
    match &args.command {
        SumdbCommand::Audit(audit) => crate::sumdb_audit::run(audit),
        SumdbCommand::Keygen { name, out } => {
            let (signer, verifier) = strata_central_registry::ledger::generate_key(name)
                .map_err(|e| Failure::msg(e.to_string()))?;
            match out {
                Some(path) => {
                    if path.exists() {
                        return Err(Failure::msg(format!(
                            "{} exists; not replacing a key (a new key starts a new log)",
                            shown(path)
                        )));
                    }
                    crate::up::write_private(path, format!("{signer}\n").as_bytes())
                        .map_err(|e| Failure::msg(format!("{}: {e}", shown(path))))?;
                    println!("{verifier}");
                    eprintln!(
                        "signer key written to {} (keep it secret: [ledger] key_file); \
                         clients set GOSUMDB=\"{verifier}\"",
                        shown(path)
                    );
                }
                None => {
                    println!("{signer}");
                    eprintln!("verifier key (clients set GOSUMDB to it): {verifier}");
                }
            }
            Ok(())
        }
    }
}
