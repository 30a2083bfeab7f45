//! The file-list rules (spec §4.2, Go's `CheckFiles`): which of a set of files go into a module
//! zip, which are omitted and which make the module invalid, applied in Go's exact order.

use std::collections::HashSet;
use std::io::{self, Read};

use super::error::{CheckedFiles, FileError, FileReason, SizeError};
use super::names::{self, CollisionChecker};
use super::vendor::is_vendored_package;
use super::{MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE};
use crate::path::{PathKind, check_path_bytes};

/// What kind of file a [`ModuleFile`] is, as `lstat` sees it (symbolic links not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file of the given (declared) size in bytes.
    Regular {
        /// Size in bytes; `create` fails if the file yields more.
        size: u64,
    },
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else: device, socket, named pipe.
    Other,
}

/// One file offered for a module zip (Go's `zip.File`): a path, its kind, and its content.
pub trait ModuleFile {
    /// The slash-separated path relative to the module root, as bytes (names on disk and in
    /// zips need not be UTF-8; such names are rejected by the path rules).
    fn path(&self) -> &[u8];
    /// The file's kind and size without following symbolic links.
    fn kind(&self) -> io::Result<FileKind>;
    /// Opens the content of a regular file.
    fn open(&self) -> io::Result<Box<dyn Read + '_>>;
}

/// The result of the rules plus, for `create`, the valid files and their sizes.
pub(crate) struct Selection<'a, F> {
    pub(crate) report: CheckedFiles,
    pub(crate) valid: Vec<(&'a F, u64)>,
}

/// Checks a list of files against the module zip rules (Go's `CheckFiles`).
///
/// Never opens a file except the root `go.mod` (for its `go` directive, which decides the vendor
/// rule). Use [`CheckedFiles::err`] for the overall verdict; `create` may still fail later if a
/// file yields more bytes than its declared size.
pub fn check_files<F: ModuleFile>(files: &[F]) -> CheckedFiles {
    select(files).report
}

/// Implements [`check_files`], also returning the valid files for `create`.
pub(crate) fn select<F: ModuleFile>(files: &[F]) -> Selection<'_, F> {
    let mut report = CheckedFiles::default();
    let mut reported: HashSet<Vec<u8>> = HashSet::new();
    let mut add = |report: &mut CheckedFiles, path: &[u8], omitted: bool, reason: FileReason| {
        if !reported.insert(path.to_vec()) {
            return;
        }
        let e = FileError {
            path: String::from_utf8_lossy(path).into_owned(),
            reason,
        };
        if omitted {
            report.omitted.push(e)
        } else {
            report.invalid.push(e)
        }
    };

    // Directories holding a go.mod (any case) are other modules; the root go.mod's `go`
    // directive selects the vendor rule. Both are needed before any file is judged.
    let mut module_dirs: HashSet<Vec<u8>> = HashSet::new();
    let mut go_version = String::new();
    for f in files {
        let p = f.path();
        let (dir, base) = names::split(p);
        if !names::eq_fold_ascii(base, b"go.mod") {
            continue;
        }
        match f.kind() {
            Err(e) => add(&mut report, p, false, FileReason::Stat(e.to_string())),
            Ok(FileKind::Regular { .. }) => {
                module_dirs.insert(dir.to_vec());
                if p == b"go.mod"
                    && let Some(v) = read_go_version(f)
                {
                    go_version = v;
                }
            }
            Ok(_) => {}
        }
    }
    let in_submodule = |p: &[u8]| {
        let mut p = p;
        loop {
            let (dir, _) = names::split(p);
            if dir.is_empty() {
                return false;
            }
            if module_dirs.contains(dir) {
                return true;
            }
            p = &dir[..dir.len() - 1];
        }
    };

    let mut valid = Vec::new();
    let mut collisions = CollisionChecker::default();
    let mut remaining = MAX_ZIP_FILE;
    for f in files {
        let p = f.path();
        if !names::is_clean(p) {
            add(&mut report, p, false, FileReason::NotClean);
            continue;
        }
        if p.starts_with(b"/") {
            add(&mut report, p, false, FileReason::NotRelative);
            continue;
        }
        if is_vendored_package(p, &go_version) {
            add(&mut report, p, true, FileReason::Vendored);
            continue;
        }
        if in_submodule(p) {
            add(&mut report, p, true, FileReason::InAnotherModule);
            continue;
        }
        if p == b".hg_archival.txt" {
            add(&mut report, p, true, FileReason::HgArchival);
            continue;
        }
        let path = match check_path_bytes(p, PathKind::File) {
            Ok(path) => path,
            Err(e) => {
                add(&mut report, p, false, FileReason::MalformedPath(e));
                continue;
            }
        };
        // Only ASCII lower-cases to "go.mod", so this is Go's `strings.ToLower(p) == "go.mod"`.
        if path.eq_ignore_ascii_case("go.mod") && path != "go.mod" {
            add(&mut report, p, false, FileReason::GoModCase);
            continue;
        }
        let kind = match f.kind() {
            Ok(kind) => kind,
            Err(e) => {
                add(&mut report, p, false, FileReason::Stat(e.to_string()));
                continue;
            }
        };
        if let Err(reason) = collisions.check(path, kind == FileKind::Directory) {
            add(&mut report, p, false, reason);
            continue;
        }
        let size = match kind {
            FileKind::Regular { size } => size,
            FileKind::Symlink => {
                add(&mut report, p, true, FileReason::Symlink);
                continue;
            }
            FileKind::Directory | FileKind::Other => {
                add(&mut report, p, true, FileReason::NotRegular);
                continue;
            }
        };
        // Sizes are counted before the per-file limits, as Go does; a size over i64::MAX is
        // "negative" in Go and fails the same way.
        if size <= remaining {
            remaining -= size;
        } else if report.size_error.is_none() {
            report.size_error = Some(SizeError::SourceTree);
        }
        if path == "go.mod" && size > MAX_GO_MOD {
            add(&mut report, p, false, FileReason::GoModTooLarge);
            continue;
        }
        if path == "LICENSE" && size > MAX_LICENSE {
            add(&mut report, p, false, FileReason::LicenseTooLarge);
            continue;
        }
        report.valid.push(path.to_string());
        valid.push((f, size));
    }
    Selection { report, valid }
}

/// The root go.mod's `go` directive as a language version (`go1.24`), if it can be read.
///
/// Go reads the whole file; this reads at most [`MAX_GO_MOD`] + 1 bytes, which only matters for a
/// go.mod that is invalid for its size anyway.
fn read_go_version<F: ModuleFile>(f: &F) -> Option<String> {
    let mut data = Vec::new();
    f.open()
        .ok()?
        .take(MAX_GO_MOD + 1)
        .read_to_end(&mut data)
        .ok()?;
    go_language_version(&data)
}

/// `"go" + <go directive>` of a go.mod (`go1.24.3`), as the vendor rule compares it; `None` when
/// there is no directive or it is not a valid Go version.
pub(crate) fn go_language_version(go_mod: &[u8]) -> Option<String> {
    let v = crate::gomod::lax_go_version(go_mod)?;
    let v = format!("go{v}");
    super::vendor::go_version_at_least(&v, 0, 0).then_some(v)
}
