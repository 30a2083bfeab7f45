//! `strata token new`: a fresh API token and the `[[tokens]]` entry (with its SHA-256) for the
//! registry configuration. The token itself is shown once and stored nowhere.

use base64::Engine as _;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use crate::Failure;

/// `strata token …`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Generate a token; prints it and the configuration entry holding its hash.
    New {
        /// The token's name in the registry configuration and logs.
        #[arg(long, default_value = "ci")]
        name: String,
        /// The repository the entry grants permissions on.
        #[arg(long, default_value = "*")]
        repo: String,
    },
    /// Print the SHA-256 the configuration stores for a token read from stdin.
    Hash,
}

/// Runs `strata token`.
pub fn run(args: &TokenArgs) -> Result<(), Failure> {
    match &args.command {
        TokenCommand::New { name, repo } => {
            let (token, hash) = generate()?;
            println!("token: {token}");
            println!();
            println!("# registry configuration entry (the token itself is not stored):");
            println!("[[tokens]]");
            println!("name = {name:?}");
            println!("sha256 = \"{hash}\"");
            println!("permissions = {{ {:?} = [\"read\", \"deploy\"] }}", repo);
            Ok(())
        }
        TokenCommand::Hash => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .map_err(|e| Failure::msg(format!("reading stdin: {e}")))?;
            let token = token.trim_end_matches(['\n', '\r']);
            if token.is_empty() {
                return Err(Failure::msg("no token on stdin"));
            }
            println!("{}", hex::encode(Sha256::digest(token.as_bytes())));
            Ok(())
        }
    }
}

/// A new random token (`strata_` + 32 random bytes, base64url) and its SHA-256 in hex, the
/// form the registry configuration stores.
pub fn generate() -> Result<(String, String), Failure> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| Failure::msg(format!("no randomness available: {e}")))?;
    let token = format!(
        "strata_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    Ok((token, hash))
}
