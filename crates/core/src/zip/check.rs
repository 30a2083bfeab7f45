//! Checking an existing module zip (Go's `CheckZip`, spec §4.5) in one streaming pass that also
//! computes its `h1:` hash (Go's `HashZip`) and extracts its root `go.mod`.
//!
//! The name and size rules need only the central directory; then every entry's data is read
//! exactly once — inflated, counted against its declared size, CRC-checked, fed to SHA-256 (and,
//! for the root `go.mod`, kept). Peak memory is the directory metadata plus fixed buffers plus at
//! most [`MAX_GO_MOD`] bytes of `go.mod`, whatever the size of the zip.

use std::io::{Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};

use super::entry::{EntryReader, ReadFailure};
use super::error::{CheckedFiles, FileError, FileReason, SizeError, ZipError};
use super::names::{self, CollisionChecker};
use super::read::{Archive, Entry, read_archive};
use super::{MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, check_module, zip_prefix};
use crate::dirhash::hash_zip_digests;
use crate::path::{PathKind, check_path_bytes};
use crate::version::ModuleVersion;

/// What a successful [`check_zip`] learned about a valid module zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// The module and version the zip was checked against.
    pub module: ModuleVersion,
    /// The zip's `h1:` hash (the go.sum value without `/go.mod`).
    pub hash: String,
    /// The root `go.mod`, if the zip has one.
    pub go_mod: Option<Vec<u8>>,
    /// The valid entry names, in zip order (directory entries excluded).
    pub files: Vec<String>,
    /// Size of the zip file in bytes.
    pub zip_size: u64,
}

/// Every violation found in a zip by [`check_zip_report`], plus what could be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipReport {
    /// The name, layout and size rules (Go's `CheckZip` report; paths are entry names).
    pub files: CheckedFiles,
    /// Entries whose data is broken (size lies, CRC errors, corrupt deflate, unsupported
    /// compression), in zip order.
    pub content: Vec<FileError>,
    /// The zip's `h1:` hash; `None` if some entry could not be read, a name has a newline, or
    /// the entries declare more than [`MAX_ZIP_FILE`] bytes in all (then no data is read, so a
    /// zip bomb costs nothing). Each of these is also reported as a violation.
    pub hash: Option<String>,
    /// The root `go.mod` (`<module>@<version>/go.mod`), if present and readable.
    pub go_mod: Option<Vec<u8>>,
    /// Size of the zip file in bytes.
    pub zip_size: u64,
}

impl ZipReport {
    /// The first violation, in Go's precedence: size error, invalid names (all of them, as one
    /// error), then the first broken entry.
    pub fn err(&self) -> Result<(), ZipError> {
        self.files.err()?;
        match self.content.first() {
            Some(FileError {
                path,
                reason: FileReason::Content(error),
            }) => Err(ZipError::Entry {
                name: path.clone(),
                error: error.clone(),
            }),
            Some(other) => Err(ZipError::InvalidFiles(super::FileErrorList(vec![
                other.clone(),
            ]))),
            None => Ok(()),
        }
    }

    /// Every violation as a `path: reason` line (size error first), for printing.
    pub fn violations(&self) -> Vec<String> {
        let size = self.files.size_error.iter().map(ToString::to_string);
        let files = self
            .files
            .invalid
            .iter()
            .chain(&self.content)
            .map(ToString::to_string);
        size.chain(files).collect()
    }
}

/// Checks the zip `zip` against `module` and returns its hash and `go.mod`, failing at the first
/// violation (in [`ZipReport::err`] order).
///
/// Stricter than Go's `CheckZip`, which reads no data: like the go command's extraction, it also
/// rejects entries whose data is larger or smaller than declared, fails its CRC, or uses a
/// compression method other than Store and Deflate.
pub fn check_zip<R: Read + Seek>(module: &ModuleVersion, zip: R) -> Result<ZipSummary, ZipError> {
    let report = run(module, zip, true)?;
    report.err()?;
    let hash = match report.hash {
        Some(hash) => hash,
        None => return Err(ZipError::Format("entry data could not be hashed")),
    };
    Ok(ZipSummary {
        module: module.clone(),
        hash,
        go_mod: report.go_mod,
        files: report.files.valid,
        zip_size: report.zip_size,
    })
}

/// Checks the zip `zip` against `module` and reports every violation, not only the first.
///
/// `Err` only when nothing can be checked: an unacceptable module or version, an I/O error, or
/// a file whose zip structure cannot be read. A zip over [`MAX_ZIP_FILE`] is reported with just
/// that size error, as Go does.
pub fn check_zip_report<R: Read + Seek>(
    module: &ModuleVersion,
    zip: R,
) -> Result<ZipReport, ZipError> {
    run(module, zip, false)
}

/// The name rules over the central directory (Go's `checkZip` loop).
pub(crate) struct NameCheck {
    pub(crate) files: CheckedFiles,
    /// Index of the valid root `go.mod` entry.
    pub(crate) go_mod: Option<usize>,
}

pub(crate) fn check_names(entries: &[Entry], prefix: &str) -> NameCheck {
    let mut files = CheckedFiles::default();
    let mut go_mod = None;
    let mut collisions = CollisionChecker::default();
    let mut total: u64 = 0;
    for (i, e) in entries.iter().enumerate() {
        let invalid = |files: &mut CheckedFiles, reason| {
            let path = String::from_utf8_lossy(&e.name).into_owned();
            files.invalid.push(FileError { path, reason });
        };
        let Some(name) = e.name.strip_prefix(prefix.as_bytes()) else {
            invalid(
                &mut files,
                FileReason::MissingPrefix {
                    prefix: prefix.to_string(),
                },
            );
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let (name, is_dir) = match name.strip_suffix(b"/") {
            Some(dir) => (dir, true),
            None => (name, false),
        };
        if !names::is_clean(name) {
            invalid(&mut files, FileReason::NotClean);
            continue;
        }
        let name = match check_path_bytes(name, PathKind::File) {
            Ok(name) => name,
            Err(err) => {
                invalid(&mut files, FileReason::MalformedPath(err));
                continue;
            }
        };
        if let Err(reason) = collisions.check(name, is_dir) {
            invalid(&mut files, reason);
            continue;
        }
        if is_dir {
            continue;
        }
        let base = names::base(name.as_bytes());
        if names::eq_fold_ascii(base, b"go.mod") {
            if base != name.as_bytes() {
                invalid(&mut files, FileReason::GoModNotInRoot);
                continue;
            }
            if name != "go.mod" {
                invalid(&mut files, FileReason::GoModCase);
                continue;
            }
        }
        let size = e.uncompressed_size;
        if size <= MAX_ZIP_FILE - total {
            total += size;
        } else if files.size_error.is_none() {
            files.size_error = Some(SizeError::Contents);
        }
        if name == "go.mod" && size > MAX_GO_MOD {
            invalid(&mut files, FileReason::GoModTooLarge);
            continue;
        }
        if name == "LICENSE" && size > MAX_LICENSE {
            invalid(&mut files, FileReason::LicenseTooLarge);
            continue;
        }
        if name == "go.mod" && go_mod.is_none() {
            go_mod = Some(i);
        }
        files
            .valid
            .push(String::from_utf8_lossy(&e.name).into_owned());
    }
    NameCheck { files, go_mod }
}

/// Opens the archive after the module and zip-size checks; `Err(report)` when the zip is too
/// large to be read at all.
pub(crate) fn open<R: Read + Seek>(
    module: &ModuleVersion,
    zip: &mut R,
) -> Result<Result<Archive, ZipReport>, ZipError> {
    check_module(module)?;
    let size = zip
        .seek(SeekFrom::End(0))
        .map_err(|e| ZipError::io("reading zip", e))?;
    if size > MAX_ZIP_FILE {
        let files = CheckedFiles {
            size_error: Some(SizeError::ZipFile { size }),
            ..Default::default()
        };
        return Ok(Err(ZipReport {
            files,
            content: Vec::new(),
            hash: None,
            go_mod: None,
            zip_size: size,
        }));
    }
    Ok(Ok(read_archive(zip, size)?))
}

fn run<R: Read + Seek>(
    module: &ModuleVersion,
    mut zip: R,
    first_only: bool,
) -> Result<ZipReport, ZipError> {
    let archive = match open(module, &mut zip)? {
        Ok(archive) => archive,
        Err(report) => return Ok(report),
    };
    let names = check_names(&archive.entries, &zip_prefix(module));
    let mut report = ZipReport {
        files: names.files,
        content: Vec::new(),
        hash: None,
        go_mod: None,
        zip_size: archive.size,
    };
    if first_only && report.files.err().is_err() {
        return Ok(report);
    }
    // Inflating never yields more than an entry declares, so this bounds the work: a zip bomb
    // with invalid names or oversized entries is not inflated at all. (Directories are never
    // inflated; a valid zip always passes.)
    let declared = archive
        .entries
        .iter()
        .filter(|e| !e.is_dir())
        .fold(0u64, |total, e| total.saturating_add(e.uncompressed_size));
    if declared > MAX_ZIP_FILE {
        return Ok(report);
    }
    let mut reader = EntryReader::new();
    let mut digests = Vec::with_capacity(archive.entries.len());
    for (i, e) in archive.entries.iter().enumerate() {
        let mut sha = Sha256::new();
        let mut go_mod = (names.go_mod == Some(i)).then(Vec::new);
        let result = reader.stream(&mut zip, archive.size, e, &mut |chunk| {
            sha.update(chunk);
            if let Some(buf) = go_mod.as_mut() {
                buf.extend_from_slice(chunk);
            }
            Ok(())
        });
        match result {
            Ok(_) => {
                digests.push((e.name.clone(), sha.finalize().into()));
                if go_mod.is_some() {
                    report.go_mod = go_mod;
                }
            }
            Err(ReadFailure::Entry(error)) => {
                let path = String::from_utf8_lossy(&e.name).into_owned();
                report.content.push(FileError {
                    path,
                    reason: FileReason::Content(error),
                });
                if first_only {
                    return Ok(report);
                }
            }
            Err(ReadFailure::Io(err) | ReadFailure::Sink(err)) => {
                return Err(ZipError::io("reading zip", err));
            }
        }
    }
    if report.content.is_empty() {
        report.hash = hash_zip_digests(digests).ok();
    }
    Ok(report)
}

/// `HashZip` of any zip, without module checks or size limits.
pub(crate) fn hash_zip_contents<R: Read + Seek>(mut zip: R) -> Result<String, ZipError> {
    let size = zip
        .seek(SeekFrom::End(0))
        .map_err(|e| ZipError::io("reading zip", e))?;
    let archive = read_archive(&mut zip, size)?;
    let mut reader = EntryReader::new();
    let mut digests = Vec::with_capacity(archive.entries.len());
    for e in &archive.entries {
        let mut sha = Sha256::new();
        match reader.stream(&mut zip, size, e, &mut |chunk| {
            sha.update(chunk);
            Ok(())
        }) {
            Ok(_) => digests.push((e.name.clone(), sha.finalize().into())),
            Err(ReadFailure::Entry(error)) => {
                let name = String::from_utf8_lossy(&e.name).into_owned();
                return Err(ZipError::Entry { name, error });
            }
            Err(ReadFailure::Io(err) | ReadFailure::Sink(err)) => {
                return Err(ZipError::io("reading zip", err));
            }
        }
    }
    Ok(hash_zip_digests(digests)?)
}

/// Reads `<module>@<version>` from the entry names of a zip: the text of the first entry up to
/// its first `@` is the module path, up to the next `/` the version, and every entry must start
/// with `<module>@<version>/` (or be that directory). The result is not validated: pass it to
/// [`check_zip`].
pub fn infer_module_version<R: Read + Seek>(mut zip: R) -> Result<ModuleVersion, ZipError> {
    let size = zip
        .seek(SeekFrom::End(0))
        .map_err(|e| ZipError::io("reading zip", e))?;
    if size > MAX_ZIP_FILE {
        return Err(ZipError::Size(SizeError::ZipFile { size }));
    }
    let archive = read_archive(&mut zip, size)?;
    let Some(first) = archive.entries.first() else {
        return Err(ZipError::Infer("the zip has no entries".into()));
    };
    let lossy = |name: &[u8]| String::from_utf8_lossy(name).into_owned();
    let Some(at) = first.name.iter().position(|&b| b == b'@') else {
        return Err(ZipError::Infer(format!(
            "entry {:?} has no module@version prefix",
            lossy(&first.name)
        )));
    };
    let end = first.name[at..]
        .iter()
        .position(|&b| b == b'/')
        .map_or(first.name.len(), |i| at + i);
    let root = &first.name[..end];
    let (Ok(path), Ok(version)) = (
        std::str::from_utf8(&root[..at]),
        std::str::from_utf8(&root[at + 1..]),
    ) else {
        return Err(ZipError::Infer(format!(
            "entry {:?} has a prefix that is not UTF-8",
            lossy(&first.name)
        )));
    };
    for e in &archive.entries {
        let under_root = e
            .name
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"));
        if !under_root {
            return Err(ZipError::Infer(format!(
                "entries {:?} and {:?} have different module@version prefixes",
                lossy(&first.name),
                lossy(&e.name)
            )));
        }
    }
    Ok(ModuleVersion::new(path, version))
}
