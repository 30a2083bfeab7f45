//! `strata`: package, check, hash and publish Go modules with the go command's exact rules, and
//! `strata up`: the whole platform in one process.
//!
//! Exit status: 0 on success, 1 when the input is invalid or unreadable (every problem is printed
//! on stderr), 2 on a usage error.

mod hash;
mod netrc;
mod package;
mod probe;
mod publish;
mod sumdb;
mod sumdb_audit;
mod token;
mod up;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// strata: a Go module proxy platform — command-line tools.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the module zip of a source tree, as the go command would build it.
    ///
    /// Version-control directories, nested modules, vendor/ (by the go version of the root
    /// go.mod), symlinks, irregular files and .hg_archival.txt are left out; each omitted path is
    /// listed with the reason. An invalid tree is refused with every reason and nothing is
    /// written. Prints the two go.sum lines of the result.
    Zip(package::ZipArgs),
    /// Validate a module zip and print its go.sum lines.
    ///
    /// Checks the go command's rules (common module@version/ prefix, clean and valid file paths,
    /// case-insensitive collisions, go.mod placement, size limits, declared vs actual sizes) and
    /// that the zip's go.mod names the module. Without --module/--version the module is read
    /// from the zip's root prefix.
    Verify(verify::VerifyArgs),
    /// Print the h1: hash of a module zip or a go.mod file.
    Hash(hash::HashArgs),
    /// Package a module tree and publish it to a strata registry.
    ///
    /// Builds the zip exactly like `strata zip` (refusing invalid trees), uploads it to
    /// REGISTRY/api/repos/REPO/upload with a token from STRATA_TOKEN (Bearer) or from ~/.netrc
    /// (Basic, the same file the go command uses), shows progress on large uploads and prints
    /// the go.sum lines the registry recorded.
    Publish(publish::PublishArgs),
    /// Create API tokens for the registry configuration.
    Token(token::TokenArgs),
    /// Keys of the registry's own checksum database (the `[ledger]` table).
    Sumdb(sumdb::SumdbArgs),
    /// Run every tier in one process with embedded defaults (what `make run` starts).
    ///
    /// The central registry (filesystem storage under --data, in-process events) with a local
    /// repository `private`, a remote repository `gocache` of proxy.golang.org verified against
    /// sum.golang.org, and a virtual repository `go` over both; and an edge in front of it on
    /// --listen, linked over real gRPC. Prints the GOPROXY line, the publish URL and, on the
    /// first start, the admin token (or takes it from STRATA_ADMIN_TOKEN). Stops on Ctrl-C.
    Up(up::UpArgs),
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise (with the status and the answer's
    /// start): the health check of the distroless image, which has no shell or curl.
    Probe(probe::ProbeArgs),
}

/// A failure to report: every line is printed on stderr, then the process exits with status 1.
#[derive(Debug)]
pub struct Failure(pub Vec<String>);

impl Failure {
    /// A failure with a single message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(vec![message.into()])
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Zip(args) => package::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Hash(args) => hash::run(&args),
        Command::Publish(args) => publish::run(&args),
        Command::Token(args) => token::run(&args),
        Command::Sumdb(args) => sumdb::run(&args),
        Command::Up(args) => up::run(&args),
        Command::Probe(args) => probe::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(lines)) => {
            for line in lines {
                eprintln!("strata: {line}");
            }
            ExitCode::from(1)
        }
    }
}

/// Displays a path for messages.
pub(crate) fn shown(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// Default file name for a module zip: `<last path element>@<version>.zip`.
pub(crate) fn default_zip_name(module: &str, version: &str) -> PathBuf {
    let last = module.rsplit('/').next().unwrap_or(module);
    PathBuf::from(format!("{last}@{version}.zip"))
}
