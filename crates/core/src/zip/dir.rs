//! Module zips from a directory tree (Go's `CheckDir`, `CreateFromDir` and `listFilesInDir`,
//! spec §4.3).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::create::{Created, create};
use super::error::{CheckedFiles, FileError, FileReason, ZipError};
use super::files::{FileKind, ModuleFile, go_language_version, select};
use super::vendor::is_vendored_package;
use super::{MAX_GO_MOD, names};
use crate::dirhash::{WalkEntry, walk_entries};
use crate::version::ModuleVersion;

/// A file found by [`list_dir`]: its module-relative path, where it is on disk, and its kind as
/// `lstat` saw it during the walk.
#[derive(Debug, Clone)]
pub struct DirFile {
    path: Vec<u8>,
    fs_path: PathBuf,
    kind: FileKind,
}

impl DirFile {
    /// Where the file is on disk.
    pub fn fs_path(&self) -> &Path {
        &self.fs_path
    }
}

impl ModuleFile for DirFile {
    fn path(&self) -> &[u8] {
        &self.path
    }

    fn kind(&self) -> io::Result<FileKind> {
        Ok(self.kind)
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(&self.fs_path)?))
    }
}

/// The regular files of a module tree and what the walk itself left out.
#[derive(Debug, Clone)]
pub struct DirListing {
    /// Regular files, in walk order, for [`super::check_files`] / [`super::create`].
    pub files: Vec<DirFile>,
    /// Vendored paths, VCS directories, nested-module directories and irregular files, with
    /// paths relative to the root.
    pub omitted: Vec<FileError>,
}

/// Walks `dir` as the go command does (Go's `listFilesInDir`): entries in byte-wise name order,
/// symbolic links not followed. Vendored paths are omitted (the walk continues below them),
/// `.bzr`/`.git`/`.hg`/`.svn` directories and directories holding a `go.mod` are omitted and
/// skipped, and anything but a regular file is omitted.
pub fn list_dir(dir: &Path) -> Result<DirListing, ZipError> {
    // The root go.mod (read through a symlink, as os.ReadFile does) selects the vendor rule.
    let go_version = File::open(dir.join("go.mod"))
        .and_then(|f| {
            let mut data = Vec::new();
            f.take(MAX_GO_MOD + 1).read_to_end(&mut data)?;
            Ok(data)
        })
        .ok()
        .and_then(|data| go_language_version(&data))
        .unwrap_or_default();
    let mut listing = DirListing {
        files: Vec::new(),
        omitted: Vec::new(),
    };
    let root = fs::symlink_metadata(dir).map_err(|e| io_error("lstat", dir, e))?;
    if root.is_dir() {
        walk(dir, &[], &go_version, &mut listing)?;
    } else {
        // Go walks a root that is not a directory as a single entry named ".".
        visit_file(dir, b".", &root, &go_version, &mut listing);
    }
    Ok(listing)
}

fn walk(path: &Path, rel: &[u8], go_version: &str, out: &mut DirListing) -> Result<(), ZipError> {
    let entries = walk_entries(path, rel).map_err(|e| io_error(e.context, &e.path, e.source))?;
    for WalkEntry {
        path: child,
        rel: child_rel,
        meta,
    } in entries
    {
        if !meta.is_dir() {
            visit_file(&child, &child_rel, &meta, go_version, out);
            continue;
        }
        if is_vendored_package(&child_rel, go_version) {
            omit(out, &child_rel, FileReason::Vendored);
            walk(&child, &child_rel, go_version, out)?;
            continue;
        }
        let name = child_rel
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or(&child_rel);
        if matches!(name, b".bzr" | b".git" | b".hg" | b".svn") {
            omit(out, &child_rel, FileReason::VersionControl);
            continue;
        }
        let nested = fs::symlink_metadata(child.join("go.mod")).is_ok_and(|m| !m.is_dir());
        if nested {
            omit(out, &child_rel, FileReason::DirectoryInAnotherModule);
            continue;
        }
        walk(&child, &child_rel, go_version, out)?;
    }
    Ok(())
}

fn visit_file(
    path: &Path,
    rel: &[u8],
    meta: &fs::Metadata,
    go_version: &str,
    out: &mut DirListing,
) {
    if is_vendored_package(rel, go_version) {
        omit(out, rel, FileReason::Vendored);
    } else if !meta.is_file() {
        omit(out, rel, FileReason::NotRegular);
    } else {
        out.files.push(DirFile {
            path: rel.to_vec(),
            fs_path: path.to_path_buf(),
            kind: FileKind::Regular { size: meta.len() },
        });
    }
}

fn omit(out: &mut DirListing, rel: &[u8], reason: FileReason) {
    out.omitted.push(FileError {
        path: String::from_utf8_lossy(rel).into_owned(),
        reason,
    });
}

fn io_error(what: &str, path: &Path, e: io::Error) -> ZipError {
    ZipError::io(format!("{what} {}", path.display()), e)
}

/// Checks the module tree in `dir` (Go's `CheckDir`): [`super::check_files`] over the walked
/// files, then the walk's own omissions. Paths in the report are file-system paths
/// (`dir` joined with the relative path, cleaned).
///
/// `Err` is an I/O error while walking; the verdict on the tree is [`CheckedFiles::err`].
pub fn check_dir(dir: &Path) -> Result<CheckedFiles, ZipError> {
    let listing = list_dir(dir)?;
    let mut report = select(&listing.files).report;
    report.omitted.extend(listing.omitted);
    let join = |rel: &str| {
        let mut joined = dir.as_os_str().as_encoded_bytes().to_vec();
        joined.push(b'/');
        joined.extend_from_slice(rel.as_bytes());
        String::from_utf8_lossy(&names::clean(&joined)).into_owned()
    };
    for path in &mut report.valid {
        *path = join(path);
    }
    for e in report.omitted.iter_mut().chain(report.invalid.iter_mut()) {
        e.path = join(&e.path);
    }
    Ok(report)
}

/// Creates the module zip of `module` from the tree in `dir` (Go's `CreateFromDir`): the files
/// of [`list_dir`] through [`create`]. The returned report's `omitted` list has the file-list
/// omissions followed by the walk's, with paths relative to `dir`.
pub fn create_from_dir<W: Write>(
    out: W,
    module: &ModuleVersion,
    dir: &Path,
) -> Result<Created, ZipError> {
    let listing = list_dir(dir)?;
    let mut created = create(out, module, &listing.files)?;
    created.files.omitted.extend(listing.omitted);
    Ok(created)
}
