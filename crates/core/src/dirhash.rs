//! `h1:` hashes of file trees (Go's `golang.org/x/mod/sumdb/dirhash`, spec §5): the values in
//! go.sum lines and checksum-database records.
//!
//! `h1:` is the base64 SHA-256 of a summary with one line per file, in byte-wise name order:
//! the lower-case hex SHA-256 of the content, two spaces, the name, a newline. Everything here
//! streams file content through SHA-256; no file is ever held in memory.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::zip::ZipError;

/// Why an `h1:` hash could not be computed.
#[derive(Debug, Error)]
pub enum HashError {
    /// A file name contains `\n`, which would make the summary ambiguous.
    #[error("dirhash: filenames with newlines are not supported")]
    NewlineInName,
    /// A file could not be listed, opened or read.
    #[error("{context}: {source}")]
    Io {
        /// What failed, e.g. `open a/b.go`.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// SHA-256 of everything `r` yields, read in fixed-size chunks.
pub fn file_digest<R: Read>(mut r: R) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

/// Collects `(name, content digest)` pairs in any order and produces their `h1:` hash.
///
/// For callers that hash content as it streams past (checking a zip, extracting it) instead of
/// opening files by name as [`hash1`] does.
#[derive(Debug, Default)]
pub struct Hash1Builder {
    files: Vec<(Vec<u8>, [u8; 32])>,
}

impl Hash1Builder {
    /// An empty builder (its hash is that of the empty tree).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file `name` whose content has SHA-256 `digest`.
    pub fn add(&mut self, name: impl Into<Vec<u8>>, digest: [u8; 32]) {
        self.files.push((name.into(), digest));
    }

    /// The `h1:` hash: lines sorted by name (ties keep insertion order).
    pub fn finish(mut self) -> Result<String, HashError> {
        self.files.sort_by(|a, b| a.0.cmp(&b.0));
        if self.files.iter().any(|(name, _)| name.contains(&b'\n')) {
            return Err(HashError::NewlineInName);
        }
        let mut summary = Sha256::new();
        for (name, digest) in &self.files {
            summary.update(hex::encode(digest));
            summary.update(b"  ");
            summary.update(name);
            summary.update(b"\n");
        }
        Ok(format!("h1:{}", STANDARD.encode(summary.finalize())))
    }
}

/// Go's `dirhash.Hash1`: hashes the files `names`, reading each through `open`.
///
/// Names are sorted byte-wise first; files are opened in that order, and a name containing a
/// newline fails when it is reached, as in Go. A name listed twice is opened twice.
pub fn hash1<N, R, F>(names: &[N], mut open: F) -> Result<String, HashError>
where
    N: AsRef<[u8]>,
    R: Read,
    F: FnMut(&N) -> io::Result<R>,
{
    let mut order: Vec<&N> = names.iter().collect();
    order.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    let mut builder = Hash1Builder::new();
    for name in order {
        let bytes = name.as_ref();
        if bytes.contains(&b'\n') {
            return Err(HashError::NewlineInName);
        }
        let context = || format!("reading {}", String::from_utf8_lossy(bytes));
        let r = open(name).map_err(|source| HashError::Io {
            context: context(),
            source,
        })?;
        let digest = file_digest(r).map_err(|source| HashError::Io {
            context: context(),
            source,
        })?;
        builder.add(bytes, digest);
    }
    builder.finish()
}

/// The go.sum hash of a `.mod` file (`<path> <version>/go.mod h1:…`): [`hash1`] of one file
/// named `go.mod` with these bytes.
pub fn hash_go_mod(go_mod: &[u8]) -> String {
    let mut builder = Hash1Builder::new();
    builder.add(&b"go.mod"[..], Sha256::digest(go_mod).into());
    // A fixed name without a newline: finishing cannot fail.
    builder.finish().unwrap_or_default()
}

/// Go's `dirhash.HashDir`: [`hash1`] over every non-directory below `dir` (symbolic links are
/// not followed while walking but are read through), named `prefix/<relative path>` with
/// forward slashes, cleaned as `filepath.Join` would.
pub fn hash_dir(dir: &Path, prefix: &str) -> Result<String, HashError> {
    let mut files = dir_files(dir, prefix)?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut builder = Hash1Builder::new();
    for f in files {
        if f.name.contains(&b'\n') {
            return Err(HashError::NewlineInName);
        }
        let file = File::open(&f.path).map_err(|e| io_error("open", &f.path, e))?;
        let digest = file_digest(file).map_err(|e| io_error("read", &f.path, e))?;
        builder.add(f.name, digest);
    }
    builder.finish()
}

/// Go's `dirhash.HashZip`: [`hash1`] over every entry of a zip, named exactly as stored, with
/// the decompressed content. Directory entries count as empty files; for a name stored twice,
/// the last entry's content is used for both lines (Go looks entries up by name).
///
/// Like Go's, this applies no size limits (each entry yields at most its declared size, but
/// declared sizes are not bounded): for zips from untrusted sources use
/// [`crate::zip::check_zip`], which returns the same hash after the module-zip limits.
pub fn hash_zip<R: Read + Seek>(zip: R) -> Result<String, ZipError> {
    crate::zip::hash_zip_contents(zip)
}

/// `h1:` of entries given in zip order as `(name, digest)`, with Go's last-entry-wins rule for
/// repeated names.
pub(crate) fn hash_zip_digests(entries: Vec<(Vec<u8>, [u8; 32])>) -> Result<String, HashError> {
    let mut last: HashMap<&[u8], [u8; 32]> = HashMap::new();
    for (name, digest) in &entries {
        last.insert(name, *digest);
    }
    let mut builder = Hash1Builder::new();
    for (name, digest) in &entries {
        builder.add(
            name.clone(),
            last.get(name.as_slice()).copied().unwrap_or(*digest),
        );
    }
    builder.finish()
}

/// A file found by [`dir_files`]: its hashed name and where to read it.
#[derive(Debug)]
struct DirFile {
    name: Vec<u8>,
    path: PathBuf,
}

/// Go's `dirhash.DirFiles`: the non-directories below `dir` in `filepath.Walk` order.
fn dir_files(dir: &Path, prefix: &str) -> Result<Vec<DirFile>, HashError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| io_error("lstat", dir, e))?;
    if !meta.is_dir() {
        let e = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
        return Err(io_error("hashing", dir, e));
    }
    let mut files = Vec::new();
    walk(dir, &[], prefix, &mut files)?;
    Ok(files)
}

/// Lists `path` (relative name `rel`) in byte-wise name order, descending into directories
/// (not into symbolic links to them) as soon as they come up.
fn walk(path: &Path, rel: &[u8], prefix: &str, out: &mut Vec<DirFile>) -> Result<(), HashError> {
    let entries = walk_entries(path, rel).map_err(|e| io_error(e.context, &e.path, e.source))?;
    for entry in entries {
        if entry.meta.is_dir() {
            walk(&entry.path, &entry.rel, prefix, out)?;
        } else {
            out.push(DirFile {
                name: hashed_name(prefix, &entry.rel),
                path: entry.path,
            });
        }
    }
    Ok(())
}

/// One entry of a directory as the go command's walk (`filepath.Walk`) sees it.
pub(crate) struct WalkEntry {
    /// Its path on disk.
    pub(crate) path: std::path::PathBuf,
    /// Its slash-separated path relative to the walk's root.
    pub(crate) rel: Vec<u8>,
    /// `lstat` metadata (symbolic links not followed).
    pub(crate) meta: fs::Metadata,
}

/// A failure while listing, with what was being done.
pub(crate) struct WalkError {
    pub(crate) context: &'static str,
    pub(crate) path: std::path::PathBuf,
    pub(crate) source: io::Error,
}

/// The entries of `dir` (relative name `rel`) in byte-wise name order, with `lstat` metadata:
/// the order every directory walk of the module rules uses.
pub(crate) fn walk_entries(dir: &Path, rel: &[u8]) -> Result<Vec<WalkEntry>, WalkError> {
    let mut names = fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
        })
        .map_err(|source| WalkError {
            context: "reading directory",
            path: dir.to_path_buf(),
            source,
        })?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let mut child_rel = rel.to_vec();
        if !child_rel.is_empty() {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(name.as_encoded_bytes());
        let meta = fs::symlink_metadata(&path).map_err(|source| WalkError {
            context: "lstat",
            path: path.clone(),
            source,
        })?;
        entries.push(WalkEntry {
            path,
            rel: child_rel,
            meta,
        });
    }
    Ok(entries)
}

/// `filepath.Join(prefix, rel)` with forward slashes.
fn hashed_name(prefix: &str, rel: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        return rel.to_vec();
    }
    let mut joined = prefix.as_bytes().to_vec();
    joined.push(b'/');
    joined.extend_from_slice(rel);
    crate::zip::clean_path(&joined).into_owned()
}

fn io_error(what: &str, path: &Path, source: io::Error) -> HashError {
    HashError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_go_mod() {
        let none: [&str; 0] = [];
        let empty = hash1(&none, |_| Ok(io::empty())).unwrap_or_default();
        assert_eq!(empty, "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(
            hash_go_mod(b""),
            "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
        );
    }

    #[test]
    fn newline_and_open_errors() {
        let names = ["b", "a\nb"];
        assert!(matches!(
            hash1(&names, |_| Ok(io::empty())),
            Err(HashError::NewlineInName)
        ));
        // Sorted order decides which failure is seen first: "a\nb" < "b".
        let fail = |_: &&str| -> io::Result<io::Empty> { Err(io::Error::other("boom")) };
        assert!(matches!(hash1(&names, fail), Err(HashError::NewlineInName)));
        let names = ["a", "b\nc"];
        assert!(matches!(hash1(&names, fail), Err(HashError::Io { .. })));
    }

    #[test]
    fn zip_digests_last_entry_wins() {
        let d = |s: &[u8]| -> [u8; 32] { Sha256::digest(s).into() };
        let dup = vec![(b"x".to_vec(), d(b"one")), (b"x".to_vec(), d(b"two"))];
        let twice = vec![(b"x".to_vec(), d(b"two")), (b"x".to_vec(), d(b"two"))];
        assert_eq!(hash_zip_digests(dup).ok(), hash_zip_digests(twice).ok());
    }

    #[test]
    fn joined_names() {
        assert_eq!(hashed_name("m@v1.0.0/", b"a/b.go"), b"m@v1.0.0/a/b.go");
        assert_eq!(hashed_name("m@v1.0.0", b"go.mod"), b"m@v1.0.0/go.mod");
        assert_eq!(hashed_name("", b"go.mod"), b"go.mod");
    }
}
