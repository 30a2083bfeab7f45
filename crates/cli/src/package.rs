//! `strata zip`: packaging a source tree as a module zip (x/mod's `CreateFromDir` rules), plus
//! the module's go.mod checks that the go command would apply when it uses the zip.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use strata_core::dirhash::hash_go_mod;
use strata_core::gomod::GoMod;
use strata_core::gosum::format_module_lines;
use strata_core::version::ModuleVersion;
use strata_core::zip::{self, FileError};

use crate::{Failure, default_zip_name, shown};

/// Arguments of `strata zip`.
#[derive(Debug, Args)]
pub struct ZipArgs {
    /// The module's root directory (the one holding go.mod).
    pub dir: PathBuf,
    /// The module path, e.g. example.com/Team/mymodule.
    #[arg(long)]
    pub module: String,
    /// The canonical version, e.g. v1.2.0.
    #[arg(long)]
    pub version: String,
    /// Where to write the zip [default: <last path element>@<version>.zip].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Do not list the omitted files.
    #[arg(short, long)]
    pub quiet: bool,
}

/// A module zip written by [`package_dir`].
#[derive(Debug)]
pub struct Packaged {
    /// The module and version.
    pub module: ModuleVersion,
    /// The zip's h1 (go.sum value without `/go.mod`).
    pub zip_hash: String,
    /// The go.mod served for this version: the tree's own, or the synthesized one.
    pub go_mod: Vec<u8>,
    /// Whether [`Self::go_mod`] is the synthesized one (the tree has no go.mod file).
    pub go_mod_synthesized: bool,
    /// Files left out, with reasons.
    pub omitted: Vec<FileError>,
}

impl Packaged {
    /// The two go.sum lines for this version.
    pub fn go_sum_lines(&self) -> String {
        format_module_lines(
            &self.module.path,
            &self.module.version,
            &self.zip_hash,
            &hash_go_mod(&self.go_mod),
        )
    }
}

/// Checks `dir` as the module `module` and writes its zip into `out` (a file that the caller
/// persists only on success). Every violation is collected before anything is written.
pub fn package_dir(
    dir: &Path,
    module: &ModuleVersion,
    out: &mut File,
) -> Result<Packaged, Failure> {
    module
        .check_canonical()
        .map_err(|e| Failure::msg(e.to_string()))?;
    if !dir.is_dir() {
        return Err(Failure::msg(format!("{}: not a directory", shown(dir))));
    }
    let mut problems = Vec::new();
    let go_mod_path = dir.join("go.mod");
    let (go_mod, go_mod_synthesized) = match root_go_mod(&go_mod_path) {
        Ok(Some(data)) => {
            if let Err(e) = GoMod::parse_for(&data, &module.path) {
                problems.push(format!("go.mod: {e}"));
            }
            (data, false)
        }
        Ok(None) => (GoMod::synthesized(&module.path), true),
        Err(e) => return Err(Failure::msg(format!("{}: {e}", shown(&go_mod_path)))),
    };
    let report = zip::check_dir(dir).map_err(|e| Failure::msg(e.to_string()))?;
    problems.extend(report.size_error.iter().map(ToString::to_string));
    problems.extend(report.invalid.iter().map(ToString::to_string));
    if !problems.is_empty() {
        problems.push(format!("{module}: refusing to write an invalid module zip"));
        return Err(Failure(problems));
    }
    let mut writer = BufWriter::new(out);
    let created =
        zip::create_from_dir(&mut writer, module, dir).map_err(|e| Failure::msg(e.to_string()))?;
    writer
        .flush()
        .map_err(|e| Failure::msg(format!("writing zip: {e}")))?;
    Ok(Packaged {
        module: module.clone(),
        zip_hash: created.hash,
        go_mod,
        go_mod_synthesized,
        omitted: report.omitted,
    })
}

/// The module's own go.mod: `dir/go.mod` if it is a regular file, the only kind the zip rules
/// put into the zip. A `go.mod` that is a directory is just a directory (x/mod's `go_mod_dir`
/// vector), and a symbolic link is omitted like any other; either way the zip has no go.mod and
/// the version's .mod is synthesized, as for a tree without one.
fn root_go_mod(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => std::fs::read(path).map(Some),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `strata zip`.
pub fn run(args: &ZipArgs) -> Result<(), Failure> {
    let module = ModuleVersion::new(&args.module, &args.version);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_zip_name(&args.module, &args.version));
    // Write next to the destination and rename at the end: a refused or failed run leaves no
    // partial zip behind.
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".strata-zip-")
        .tempfile_in(&parent)
        .map_err(|e| Failure::msg(format!("{}: {e}", shown(&parent))))?;
    let packaged = package_dir(&args.dir, &module, temp.as_file_mut())?;
    temp.persist(&output)
        .map_err(|e| Failure::msg(format!("{}: {}", shown(&output), e.error)))?;
    let go_mod_path = args.dir.join("go.mod");
    if std::fs::symlink_metadata(&go_mod_path).is_ok_and(|m| m.is_dir()) {
        // The go command reads the extracted module's go.mod for its go version (cmd/go's
        // modfetch.Download) and fails on a directory, though the zip and both hashes are
        // valid.
        eprintln!(
            "warning: {} is a directory: it is zipped as an ordinary directory (x/mod's rules), \
             but the go command cannot use the extracted module (reading its go.mod fails)",
            shown(&go_mod_path)
        );
    }
    if !args.quiet {
        for omitted in &packaged.omitted {
            eprintln!("omitted {omitted}");
        }
        if packaged.go_mod_synthesized {
            eprintln!(
                "note: no go.mod file in {}; the version's .mod is synthesized",
                shown(&args.dir)
            );
        }
    }
    eprintln!("wrote {}", shown(&output));
    print!("{}", packaged.go_sum_lines());
    Ok(())
}
