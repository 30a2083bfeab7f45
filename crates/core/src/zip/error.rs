//! Reports and errors of the zip rules: why a file is omitted or invalid ([`FileReason`]), the
//! per-file report ([`CheckedFiles`], Go's `CheckedFiles` with its exact text format), and the
//! error every zip operation returns ([`ZipError`]).
//!
//! Messages are x/mod's wording, so tests and users can match them against the go command's.

use std::fmt;
use std::io;

use thiserror::Error;

use super::{MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE};
use crate::path::{PathError, quote};
use crate::version::ModuleError;

/// Why a file was left out of a module zip or makes the module invalid: the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FileReason {
    // Invalid files.
    /// `path.Clean(p) != p`.
    #[error("file path is not clean")]
    NotClean,
    /// An absolute path.
    #[error("file path is not relative")]
    NotRelative,
    /// The path fails `module.CheckFilePath`.
    #[error(transparent)]
    MalformedPath(PathError),
    /// `GO.MOD` and friends at the module root.
    #[error("go.mod files must have lowercase names")]
    GoModCase,
    /// A `go.mod` (any case) below the root of a zip.
    #[error("go.mod file not in module root directory")]
    GoModNotInRoot,
    /// Two names equal under Unicode case folding.
    #[error("case-insensitive file name collision: {} and {}", quote(.first), quote(.second))]
    CaseCollision {
        /// The name seen first.
        first: String,
        /// The name that collided with it.
        second: String,
    },
    /// A name used both for a file and for a directory.
    #[error("entry {} is both a file and a directory", quote(.path))]
    FileAndDirectory {
        /// The name.
        path: String,
    },
    /// The same file listed twice.
    #[error("multiple entries for file {}", quote(.path))]
    DuplicateFile {
        /// The name.
        path: String,
    },
    /// The root `go.mod` is over [`MAX_GO_MOD`].
    #[error("go.mod file too large (max size is {MAX_GO_MOD} bytes)")]
    GoModTooLarge,
    /// The root `LICENSE` is over [`MAX_LICENSE`].
    #[error("LICENSE file too large (max size is {MAX_LICENSE} bytes)")]
    LicenseTooLarge,
    /// A zip entry outside `<module>@<version>/`.
    #[error("path does not have prefix {}", quote(.prefix))]
    MissingPrefix {
        /// The prefix every entry needs.
        prefix: String,
    },
    /// The file's metadata could not be read (Go's `Lstat` error).
    #[error("{0}")]
    Stat(String),
    /// The entry's data is broken (found while reading it; never by Go's `CheckZip`).
    #[error(transparent)]
    Content(#[from] EntryError),

    // Omitted files.
    /// In a vendored package (see [`super::is_vendored_package`]).
    #[error("file is in vendor directory")]
    Vendored,
    /// Below a directory holding another module's `go.mod`.
    #[error("file is in another module")]
    InAnotherModule,
    /// A directory holding another module's `go.mod` (directory walks).
    #[error("directory is in another module")]
    DirectoryInAnotherModule,
    /// `.bzr`, `.git`, `.hg` or `.svn` (directory walks).
    #[error("directory is a version control repository")]
    VersionControl,
    /// The root `.hg_archival.txt`.
    #[error("file is inserted by 'hg archive' and is always omitted")]
    HgArchival,
    /// A symbolic link in a file list.
    #[error("file is a symbolic link")]
    Symlink,
    /// Any other file that is not a regular file (symlinks too, in directory walks).
    #[error("not a regular file")]
    NotRegular,
}

/// A problem with one entry's data, found while decompressing it. Texts start like Go's
/// `archive/zip` errors (`zip: not a valid zip file`, `zip: checksum error`, …).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryError {
    /// The local file header is missing or malformed.
    #[error("zip: not a valid zip file: bad local file header")]
    LocalHeader,
    /// A directory entry (name ending in `/`) declares content.
    #[error("zip: not a valid zip file: directory entry declares {declared} bytes of content")]
    DirectoryWithContent {
        /// The declared uncompressed size.
        declared: u64,
    },
    /// More bytes than the declared uncompressed size (a "size lie").
    #[error("uncompressed size is larger than declared size ({declared} bytes)")]
    LargerThanDeclared {
        /// The declared uncompressed size.
        declared: u64,
    },
    /// Fewer bytes than the declared uncompressed size.
    #[error("unexpected EOF: {actual} bytes instead of the declared size ({declared} bytes)")]
    SmallerThanDeclared {
        /// The declared uncompressed size.
        declared: u64,
        /// What the data really holds.
        actual: u64,
    },
    /// The CRC-32 does not match (entry header or data descriptor).
    #[error("zip: checksum error")]
    Checksum,
    /// A compression method other than Store (0) and Deflate (8).
    #[error("zip: unsupported compression algorithm (method {0})")]
    UnsupportedMethod(u16),
    /// The deflate stream is corrupt.
    #[error("flate: corrupt input: {0}")]
    CorruptDeflate(String),
    /// The compressed data (or the data descriptor) ends before it should.
    #[error("unexpected EOF: compressed data is truncated")]
    Truncated,
}

/// A file and the reason it was omitted or is invalid; displays as `path: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file's path: relative to the module root (`check_files`), a file-system path
    /// (`check_dir`) or the entry name (`check_zip`). Invalid UTF-8 is shown as U+FFFD.
    pub path: String,
    /// The rule it broke.
    pub reason: FileReason,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// A size limit of [`MAX_ZIP_FILE`] broken by the whole module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SizeError {
    /// The files offered to `check_files`/`create` add up to more than the limit.
    #[error("module source tree too large (max size is {MAX_ZIP_FILE} bytes)")]
    SourceTree,
    /// The zip file itself is larger than the limit.
    #[error("module zip file is too large ({size} bytes; limit is {MAX_ZIP_FILE} bytes)")]
    ZipFile {
        /// The zip file's size.
        size: u64,
    },
    /// The declared uncompressed sizes of a zip's files add up to more than the limit.
    #[error(
        "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
    )]
    Contents,
}

/// Which files belong in a module zip (Go's `CheckedFiles`): every file checked lands in exactly
/// one of `valid`, `omitted` and `invalid` (except repeated invalid paths, reported once).
///
/// `Display` renders Go's test format: `valid:\n` + one path per line, `\nomitted:\n` +
/// `path: reason` lines, `\ninvalid:\n` + `path: reason` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedFiles {
    /// Paths that go into the zip, in input order.
    pub valid: Vec<String>,
    /// Files left out on purpose (vendored, nested modules, VCS directories, symlinks, …).
    pub omitted: Vec<FileError>,
    /// Files that make the module invalid.
    pub invalid: Vec<FileError>,
    /// A broken whole-module size limit, if any.
    pub size_error: Option<SizeError>,
}

impl CheckedFiles {
    /// Go's `CheckedFiles.Err`: the size error if any, else all invalid files.
    pub fn err(&self) -> Result<(), ZipError> {
        if let Some(size) = self.size_error {
            return Err(ZipError::Size(size));
        }
        if !self.invalid.is_empty() {
            return Err(ZipError::InvalidFiles(FileErrorList(self.invalid.clone())));
        }
        Ok(())
    }
}

impl fmt::Display for CheckedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "valid:")?;
        for path in &self.valid {
            writeln!(f, "{path}")?;
        }
        writeln!(f, "\nomitted:")?;
        for e in &self.omitted {
            writeln!(f, "{e}")?;
        }
        writeln!(f, "\ninvalid:")?;
        for e in &self.invalid {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Invalid files; displays as their `path: reason` lines joined by newlines (Go's
/// `FileErrorList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileErrorList(pub Vec<FileError>);

impl fmt::Display for FileErrorList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong creating, checking or extracting a module zip.
#[derive(Debug, Error)]
pub enum ZipError {
    /// The module path or version is not acceptable for a zip (not canonical, bad path, major
    /// version mismatch).
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// A whole-module size limit.
    #[error(transparent)]
    Size(SizeError),
    /// Files that break the name, layout or per-file size rules.
    #[error("{0}")]
    InvalidFiles(FileErrorList),
    /// `create`: a file yielded more bytes than its declared size.
    #[error("file {} is larger than declared size", quote(.path))]
    FileLargerThanDeclared {
        /// The file's path in the module.
        path: String,
    },
    /// The zip's structure (end record, central directory) is unreadable.
    #[error("zip: not a valid zip file: {0}")]
    Format(&'static str),
    /// The end-of-central-directory comment runs past the end of the file.
    #[error("zip: invalid comment length")]
    CommentLength,
    /// One entry's data is broken.
    #[error("{}", entry_message(.name, .error))]
    Entry {
        /// The entry name as stored.
        name: String,
        /// What is wrong with its data.
        error: EntryError,
    },
    /// `unzip`: the target directory has files in it.
    #[error("target directory {dir} exists and is not empty")]
    DirectoryNotEmpty {
        /// The target directory.
        dir: String,
    },
    /// A zip's entries do not share one `<module>@<version>/` prefix.
    #[error("cannot infer module and version from zip: {0}")]
    Infer(String),
    /// A file name with a newline, which `h1:` cannot hash.
    #[error(transparent)]
    Hash(#[from] crate::dirhash::HashError),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What failed, e.g. `reading zip` or `open /x/go.mod`.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

fn entry_message(name: &str, error: &EntryError) -> String {
    match error {
        EntryError::LargerThanDeclared { declared } => format!(
            "uncompressed size of file {name} is larger than declared size ({declared} bytes)"
        ),
        other => format!("{name}: {other}"),
    }
}

impl ZipError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ZipError::Io {
            context: context.into(),
            source,
        }
    }
}
