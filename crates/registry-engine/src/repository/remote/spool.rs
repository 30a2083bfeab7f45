//! Where a remote repository spools its zip downloads: a directory of its own,
//! `<spool_dir>/strata-fills-<repo>-<random>/`, locked (`flock` on its `lock` file) for as
//! long as the repository lives and removed when it is dropped.
//!
//! A crash leaves the directory behind with its partial downloads; the lock dies with the
//! process. So at start every `strata-fills-*` directory whose lock can be taken is a leftover
//! and is removed, whatever its age, while the directories of live registries sharing the spool
//! directory (their locks held) are left alone. Spool files of versions before this layout
//! (`strata-fill-*` directly in the spool directory) carry no lock and are removed once
//! untouched for [`LEGACY_STALE`].

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Prefix of the per-repository download directories.
const DIR_PREFIX: &str = "strata-fills-";
/// The lock file inside one.
const LOCK: &str = "lock";
/// Prefix of the spool files of the old layout.
const LEGACY_PREFIX: &str = "strata-fill-";
/// Age past which an old-layout spool file is surely no longer written.
const LEGACY_STALE: Duration = Duration::from_secs(3600);
/// A directory without its lock file yet may be one being created right now; only one older
/// than this is a leftover.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);
/// Attempts at creating a directory that a concurrent sweep removed under us.
const ATTEMPTS: usize = 5;

/// A repository's download directory, locked while this value lives.
#[derive(Debug)]
pub(crate) struct FillDir {
    // Field order is drop order: the directory is removed before the lock is released.
    dir: tempfile::TempDir,
    _lock: fd_lock::RwLock<File>,
}

impl FillDir {
    /// Removes what crashed registries left in `spool_dir`, then creates and locks the download
    /// directory of repository `repo` there.
    pub(crate) fn create(spool_dir: &Path, repo: &str) -> io::Result<FillDir> {
        std::fs::create_dir_all(spool_dir)?;
        let removed = sweep(spool_dir)?;
        if removed > 0 {
            tracing::info!(
                spool_dir = %spool_dir.display(), removed,
                "removed downloads left behind by a registry that stopped mid-download"
            );
        }
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match Self::try_create(spool_dir, repo) {
                Ok(Some(dir)) => return Ok(dir),
                Ok(None) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::other("the download directory kept being removed while it was created")
        }))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `None` when a concurrent sweep removed the new directory before it was locked.
    fn try_create(spool_dir: &Path, repo: &str) -> io::Result<Option<FillDir>> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{repo}-"))
            .tempdir_in(spool_dir)?;
        let lock_path = dir.path().join(LOCK);
        let file = match File::create(&lock_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut lock = fd_lock::RwLock::new(file);
        match lock.try_write() {
            // The lock is released when the file is closed (when `FillDir` drops), not when
            // the guard does: the guard borrows the lock, which `FillDir` must own.
            Ok(guard) => std::mem::forget(guard),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
        // A sweep that took the lock first may have removed the file before we locked it.
        if !lock_path.exists() {
            return Ok(None);
        }
        Ok(Some(FillDir { dir, _lock: lock }))
    }
}

/// Removes download directories nobody holds the lock of, and old-layout spool files untouched
/// for [`LEGACY_STALE`]. Returns how many were removed.
fn sweep(spool_dir: &Path) -> io::Result<usize> {
    let now = SystemTime::now();
    let age = |path: &Path| -> Option<Duration> {
        let modified = std::fs::metadata(path).ok()?.modified().ok()?;
        now.duration_since(modified).ok()
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(spool_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        let path = entry.path();
        if name.starts_with(DIR_PREFIX.as_bytes()) && entry.file_type()?.is_dir() {
            if remove_if_unlocked(&path, age(&path))? {
                removed += 1;
            }
        } else if name.starts_with(LEGACY_PREFIX.as_bytes())
            && age(&path).is_some_and(|a| a >= LEGACY_STALE)
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

fn remove_if_unlocked(dir: &Path, age: Option<Duration>) -> io::Result<bool> {
    let file = match File::options().write(true).open(dir.join(LOCK)) {
        Ok(file) => file,
        // Not locked yet: being created now, or a crash right after the directory was made.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if age.is_some_and(|a| a >= UNLOCKED_GRACE) {
                return Ok(remove_dir(dir));
            }
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let mut lock = fd_lock::RwLock::new(file);
    let removed = match lock.try_write() {
        // Hold the lock while removing, so a creator that opened the file meanwhile cannot
        // take it and believe the directory is its own.
        Ok(_guard) => remove_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => return Err(e),
    };
    Ok(removed)
}

fn remove_dir(dir: &Path) -> bool {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a stale download directory");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The download directories under `spool_dir`.
    fn fill_dirs(spool_dir: &Path) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(spool_dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| {
                e.file_name()
                    .as_encoded_bytes()
                    .starts_with(DIR_PREFIX.as_bytes())
            })
            .map(|e| e.path())
            .collect();
        dirs.sort();
        dirs
    }

    #[test]
    fn leftovers_of_a_crash_go_and_live_directories_stay() {
        let spool = tempfile::tempdir().unwrap();
        // A live repository (lock held) with a download in progress.
        let live = FillDir::create(spool.path(), "live").unwrap();
        std::fs::write(live.path().join("strata-fill-live"), b"partial").unwrap();
        // What a crash leaves: the directory, its unlocked lock file, a partial download.
        let crashed = spool.path().join("strata-fills-gocache-crashed");
        std::fs::create_dir(&crashed).unwrap();
        std::fs::write(crashed.join(LOCK), b"").unwrap();
        std::fs::write(crashed.join("strata-fill-abc"), b"partial zip").unwrap();
        // A directory being created this instant (no lock file yet) is not touched.
        let creating = spool.path().join("strata-fills-gocache-creating");
        std::fs::create_dir(&creating).unwrap();
        // An old-layout spool file, recent: it may still be written by an older registry.
        let legacy = spool.path().join("strata-fill-legacy");
        std::fs::write(&legacy, b"partial").unwrap();
        // Unrelated files stay.
        let upload = spool.path().join("strata-upload-x");
        std::fs::write(&upload, b"upload").unwrap();

        let next = FillDir::create(spool.path(), "gocache").unwrap();
        assert!(
            !crashed.exists(),
            "the crashed registry's downloads are removed"
        );
        assert!(live.path().join("strata-fill-live").exists());
        assert!(creating.exists() && legacy.exists() && upload.exists());
        assert_eq!(fill_dirs(spool.path()), {
            let mut v = vec![
                live.path().to_owned(),
                next.path().to_owned(),
                creating.clone(),
            ];
            v.sort();
            v
        });

        // Dropping a repository's directory removes it and its lock.
        let next_path = next.path().to_owned();
        drop(next);
        assert!(!next_path.exists());
        drop(live);
        let _again = FillDir::create(spool.path(), "again").unwrap();
        assert_eq!(
            fill_dirs(spool.path()).len(),
            2,
            "the new one and `creating`"
        );
    }

    #[test]
    fn old_leftovers_without_a_lock_file_go() {
        let spool = tempfile::tempdir().unwrap();
        let legacy = spool.path().join("strata-fill-legacy");
        std::fs::write(&legacy, b"partial").unwrap();
        let orphan = spool.path().join("strata-fills-gocache-orphan");
        std::fs::create_dir(&orphan).unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
        for path in [&legacy, &orphan] {
            File::options()
                .write(true)
                .open(path)
                .or_else(|_| File::open(path))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert_eq!(sweep(spool.path()).unwrap(), 2);
        assert!(!legacy.exists() && !orphan.exists());
    }
}
