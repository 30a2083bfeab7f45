//! `strata verify`: validating a module zip and printing its go.sum lines.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use clap::Args;
use strata_core::dirhash::hash_go_mod;
use strata_core::gomod::GoMod;
use strata_core::gosum::format_module_lines;
use strata_core::version::ModuleVersion;
use strata_core::zip;

use crate::{Failure, shown};

/// Arguments of `strata verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The module zip.
    pub file: PathBuf,
    /// The module path the zip must hold [default: read from the zip's root prefix].
    #[arg(long, requires = "version")]
    pub module: Option<String>,
    /// The version the zip must hold [default: read from the zip's root prefix].
    #[arg(long, requires = "module")]
    pub version: Option<String>,
}

/// Runs `strata verify`.
pub fn run(args: &VerifyArgs) -> Result<(), Failure> {
    let name = shown(&args.file);
    let open = || {
        File::open(&args.file)
            .map(BufReader::new)
            .map_err(|e| Failure::msg(format!("{name}: {e}")))
    };
    let module = match (&args.module, &args.version) {
        (Some(m), Some(v)) => ModuleVersion::new(m, v),
        _ => {
            zip::infer_module_version(open()?).map_err(|e| Failure::msg(format!("{name}: {e}")))?
        }
    };
    let report = zip::check_zip_report(&module, open()?)
        .map_err(|e| Failure::msg(format!("{name}: {e}")))?;
    let mut problems: Vec<String> = report
        .violations()
        .into_iter()
        .map(|v| format!("{name}: {v}"))
        .collect();
    let go_mod = match &report.go_mod {
        Some(data) => {
            if let Err(e) = GoMod::parse_for(data, &module.path) {
                problems.push(format!("{name}: {module}/go.mod: {e}"));
            }
            data.clone()
        }
        None => GoMod::synthesized(&module.path),
    };
    let hash = match (&report.hash, problems.is_empty()) {
        (Some(hash), true) => hash,
        _ => {
            problems.push(format!("{name}: not a valid module zip for {module}"));
            return Err(Failure(problems));
        }
    };
    eprintln!(
        "{name}: valid module zip for {module} ({} bytes)",
        report.zip_size
    );
    print!(
        "{}",
        format_module_lines(&module.path, &module.version, hash, &hash_go_mod(&go_mod))
    );
    Ok(())
}
