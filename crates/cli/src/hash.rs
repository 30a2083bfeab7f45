//! `strata hash`: the `h1:` hash of a module zip or of a go.mod file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use strata_core::dirhash;

use crate::{Failure, shown};

/// What kind of file to hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A module zip: the go.sum value of `module version`.
    Zip,
    /// A go.mod file: the go.sum value of `module version/go.mod`.
    Mod,
}

/// Arguments of `strata hash`.
#[derive(Debug, Args)]
pub struct HashArgs {
    /// The zip or go.mod file.
    pub file: PathBuf,
    /// The file's kind [default: a zip if it starts with a zip signature, else a go.mod].
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
}

/// Zip files start with a local file header, or with the end record when they are empty.
fn looks_like_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// Runs `strata hash`.
pub fn run(args: &HashArgs) -> Result<(), Failure> {
    let name = shown(&args.file);
    let fail = |e: &dyn std::fmt::Display| Failure::msg(format!("{name}: {e}"));
    let mut file = File::open(&args.file).map_err(|e| fail(&e))?;
    let kind = match args.kind {
        Some(kind) => kind,
        None => {
            let mut head = [0u8; 4];
            let n = file.read(&mut head).map_err(|e| fail(&e))?;
            if looks_like_zip(&head[..n]) {
                Kind::Zip
            } else {
                Kind::Mod
            }
        }
    };
    let file = File::open(&args.file).map_err(|e| fail(&e))?;
    let hash = match kind {
        Kind::Zip => dirhash::hash_zip(BufReader::new(file)).map_err(|e| fail(&e))?,
        Kind::Mod => {
            let mut data = Vec::new();
            // go.mod files are capped at 16 MiB in module zips; refuse to slurp anything larger.
            let limit = strata_core::zip::MAX_GO_MOD;
            file.take(limit + 1)
                .read_to_end(&mut data)
                .map_err(|e| fail(&e))?;
            if data.len() as u64 > limit {
                return Err(fail(&format!(
                    "go.mod file too large (max size is {limit} bytes)"
                )));
            }
            dirhash::hash_go_mod(&data)
        }
    };
    println!("{hash}");
    Ok(())
}
