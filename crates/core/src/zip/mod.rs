//! Module zip files (spec §4, Go's `golang.org/x/mod/zip`): deciding which files belong in a
//! module's zip, creating it, checking and extracting zips from elsewhere.
//!
//! * [`check_files`] / [`create`]: from an explicit file list ([`ModuleFile`]), with the rule
//!   table of §4.2 in Go's order (vendored files, nested modules and `.hg_archival.txt` omitted;
//!   unclean, malformed, colliding and oversized files invalid).
//! * [`check_dir`] / [`create_from_dir`]: from a directory tree, skipping VCS directories,
//!   nested modules and irregular files while walking (§4.3).
//! * [`check_zip`] / [`check_zip_report`] / [`unzip`]: an existing zip (§4.5), validated in one
//!   streaming pass that also yields its `h1:` hash and its `go.mod`; [`infer_module_version`]
//!   reads `<module>@<version>` from the entry names.
//!
//! Reports ([`CheckedFiles`]) and errors ([`ZipError`]) carry x/mod's exact wording. Zips are read
//! and written by this module's own small zip codec (see `read.rs` for why).

mod check;
mod create;
mod dir;
mod entry;
mod error;
mod files;
mod format;
pub(crate) mod names;
mod read;
#[cfg(test)]
mod tests;
mod unzip;
mod vendor;
mod write;

pub use check::{ZipReport, ZipSummary, check_zip, check_zip_report, infer_module_version};
pub use create::{Created, create};
pub use dir::{DirFile, DirListing, check_dir, create_from_dir, list_dir};
pub use error::{
    CheckedFiles, EntryError, FileError, FileErrorList, FileReason, SizeError, ZipError,
};
pub use files::{FileKind, ModuleFile, check_files};
pub use unzip::unzip;
pub use vendor::is_vendored_package;
pub use write::ZipWriter;

pub(crate) use check::hash_zip_contents;
pub(crate) use names::clean as clean_path;

use crate::path::{PathKind, check_path_bytes};
use crate::version::{ModuleError, ModuleVersion, canonical_version};

/// Largest module zip, and largest total uncompressed size of its files: 500 MiB (inclusive).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// Largest `go.mod` in a module zip: 16 MiB (inclusive).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// Largest root `LICENSE` in a module zip: 16 MiB (inclusive).
pub const MAX_LICENSE: u64 = 16 << 20;

/// Builds a [`ModuleVersion`] from raw bytes (Go strings need not be UTF-8), failing as Go's zip
/// functions would on such input: a path that is not UTF-8 is `malformed module path "\xff":
/// invalid UTF-8`; a version that is not UTF-8 is not canonical. The version's form is checked
/// before the path, as in Go.
///
/// The zip functions still make all their module checks on the result.
pub fn module_version_from_bytes(path: &[u8], version: &[u8]) -> Result<ModuleVersion, ZipError> {
    let version = String::from_utf8_lossy(version);
    let canonical = canonical_version(&version);
    if canonical != version {
        let version = version.into_owned();
        return Err(ModuleError::NotCanonical { version, canonical }.into());
    }
    let path = check_path_bytes(path, PathKind::Module).map_err(ModuleError::Path)?;
    Ok(ModuleVersion::new(path, version))
}

/// The module checks every zip function starts with: canonical version, then `module.Check`.
pub(crate) fn check_module(module: &ModuleVersion) -> Result<(), ZipError> {
    Ok(module.check_canonical()?)
}

/// The `<module>@<version>/` prefix of every entry name.
pub(crate) fn zip_prefix(module: &ModuleVersion) -> String {
    format!("{}@{}/", module.path, module.version)
}
