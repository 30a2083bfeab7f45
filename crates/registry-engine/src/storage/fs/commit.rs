//! The blocking half of the fs backend: the directory layout, per-key lock stripes, and the
//! locked critical sections that publish, replace, copy and remove object files.
//!
//! ## Why writes are atomic and CAS is safe
//! Content is first written to a temp file under `tmp/` (same filesystem as `objects/`), hashed
//! on the way, and fsynced. Publishing it is then a single step: `rename` (overwrite, CAS) or
//! `link` (create-only: `link` fails with `EEXIST` instead of replacing), followed by an fsync of
//! the parent directory. A crash before that step leaves only a temp file; after it, the whole
//! object. Never a partial file under the final name.
//!
//! Every mutation of a key (put of any kind, delete, copy onto it) runs inside an exclusive
//! `flock` on the key's lock stripe, `locks/NN` with `NN` the first byte of the SHA-256 of the
//! key. `flock` locks belong to the open file description, so they exclude other tasks of this
//! process (each opens the stripe anew) as well as other processes sharing the root, and the
//! kernel drops them if a holder dies. Under the lock the CAS reads the current etag, compares,
//! and renames, so no two writers can both succeed from the same etag. Readers take no lock:
//! `rename` swaps the file whole, and an open file stays the old content. 256 stripes bound the
//! number of lock files; unrelated keys that share a stripe only wait out a rename.
//! Requires a local filesystem with working `flock` (not NFS).

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tempfile::TempPath;

use super::format;
use crate::storage::{ETag, ObjectKey, PutCondition};

/// Where things live under an fs store's root.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Object files, at their key's path.
    pub(crate) objects: PathBuf,
    /// Writes in progress; anything here is garbage once its writer is gone.
    pub(crate) tmp: PathBuf,
    /// The lock stripes.
    pub(crate) locks: PathBuf,
}

/// How a locked commit failed.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// The write condition did not hold; nothing changed.
    Conflict,
    /// The source of a copy does not exist.
    SourceMissing,
    /// An I/O step failed; nothing changed under the key.
    Io(&'static str, io::Error),
}

type CommitResult<T> = Result<T, CommitError>;

fn step<T>(context: &'static str, result: io::Result<T>) -> CommitResult<T> {
    result.map_err(|e| CommitError::Io(context, e))
}

impl Layout {
    /// The layout under `root`.
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            objects: root.join("objects"),
            tmp: root.join("tmp"),
            locks: root.join("locks"),
        }
    }

    /// Creates the directories of the layout.
    pub(crate) fn create(&self) -> io::Result<()> {
        for dir in [&self.objects, &self.tmp, &self.locks] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    /// The file holding the object named `key`. The key's path (its only mapping to a name, see
    /// [`ObjectKey::as_path`]) is validated to stay inside `objects/`.
    pub(crate) fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.objects.join(key.as_path())
    }

    /// A new temp file for a write, removed when the returned path is dropped.
    pub(crate) fn temp_file(&self) -> io::Result<(File, TempPath)> {
        let file = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(&self.tmp)?;
        Ok(file.into_parts())
    }

    fn stripe_path(&self, key: &ObjectKey) -> PathBuf {
        let digest = Sha256::digest(key.as_path().as_bytes());
        self.locks.join(format!("{:02x}", digest[0]))
    }

    /// Runs `f` holding the exclusive lock of `key`'s stripe; the lock is released when the
    /// file closes at the end, or by the kernel if the process dies.
    fn locked<T>(&self, key: &ObjectKey, f: impl FnOnce() -> CommitResult<T>) -> CommitResult<T> {
        let file = step(
            "open lock stripe",
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.stripe_path(key)),
        )?;
        let mut lock = fd_lock::RwLock::new(file);
        let _guard = step("lock key", lock.write())?;
        f()
    }

    /// Publishes the fully written, fsynced `temp` as `key` if `condition` holds.
    pub(crate) fn commit(
        &self,
        key: &ObjectKey,
        temp: TempPath,
        condition: &PutCondition,
    ) -> CommitResult<()> {
        let path = self.object_path(key);
        self.locked(key, || {
            self.create_parents(&path)?;
            match condition {
                PutCondition::Overwrite => {}
                PutCondition::IfAbsent => {
                    // `link` never replaces: EEXIST is the create-only check, made by the kernel.
                    return match std::fs::hard_link(&temp, &path) {
                        Ok(()) => sync_parent(&path),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            Err(CommitError::Conflict)
                        }
                        Err(e) => Err(CommitError::Io(placement_context(&e), e)),
                    };
                }
                PutCondition::IfMatch(expected) => {
                    if current_etag(&path)?.as_ref() != Some(expected) {
                        return Err(CommitError::Conflict);
                    }
                }
            }
            temp.persist(&path)
                .map_err(|e| CommitError::Io(placement_context(&e.error), e.error))?;
            sync_parent(&path)
        })
    }

    /// Removes `key`'s object if there is one.
    pub(crate) fn remove(&self, key: &ObjectKey) -> CommitResult<()> {
        let path = self.object_path(key);
        self.locked(key, || match std::fs::remove_file(&path) {
            Ok(()) => sync_parent(&path),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(CommitError::Io("remove object file", e)),
        })
    }

    /// Copies `from` to `to` byte for byte (header included, so the etag carries over) and
    /// publishes the copy as `to`. Returns the etag and content size.
    pub(crate) fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> CommitResult<(ETag, u64)> {
        let mut source = match open_object_file(&self.object_path(from)) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(CommitError::SourceMissing),
            Err(e) => return Err(CommitError::Io("open source object", e)),
        };
        let etag = step("read source header", format::read_header(&mut source))?;
        let (mut file, temp) = step("create temp file", self.temp_file())?;
        step(
            "write temp file",
            file.write_all(&format::encode_header(&etag)),
        )?;
        let size = step("copy content", io::copy(&mut source, &mut file))?;
        step("fsync temp file", file.sync_all())?;
        drop(file);
        self.commit(to, temp, &PutCondition::Overwrite)?;
        Ok((etag, size))
    }

    /// Creates the missing directories between `objects/` and `path`, fsyncing each new one's
    /// parent so the entries survive a crash.
    fn create_parents(&self, path: &Path) -> CommitResult<()> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if parent.is_dir() {
            return Ok(());
        }
        let relative = parent.strip_prefix(&self.objects).unwrap_or(parent);
        let mut dir = self.objects.clone();
        for component in relative.components() {
            let next = dir.join(component);
            match std::fs::create_dir(&next) {
                Ok(()) => step("fsync directory", sync_dir(&dir))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(CommitError::Io(placement_context(&e), e)),
            }
            dir = next;
        }
        Ok(())
    }
}

/// The etag of the object file at `path`, `None` if there is none.
fn current_etag(path: &Path) -> CommitResult<Option<ETag>> {
    match open_object_file(path) {
        Ok(Some(mut file)) => step("read object header", format::read_header(&mut file)).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(CommitError::Io("open object file", e)),
    }
}

/// Opens the object file at `path`; `None` if no object is there (missing, or a directory
/// because the path is only a prefix of other keys).
pub(crate) fn open_object_file(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) if file.metadata()?.is_file() => Ok(Some(file)),
        Ok(_) => Ok(None),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an error opening or removing a path means "no object there".
pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

/// fs stores a key as a file and its prefixes as directories, so `a/b` and `a/b/c` cannot both
/// exist; say so instead of a bare `ENOTDIR`.
fn placement_context(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => {
            "place object file (a key cannot also be a prefix of another key in the fs backend)"
        }
        _ => "place object file",
    }
}

fn sync_parent(path: &Path) -> CommitResult<()> {
    match path.parent() {
        Some(parent) => step("fsync directory", sync_dir(parent)),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
