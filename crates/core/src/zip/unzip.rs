//! Extracting a module zip (Go's `zip.Unzip`), hashing it in the same pass.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::check::{ZipSummary, check_names, open};
use super::entry::{EntryReader, ReadFailure};
use super::error::ZipError;
use super::zip_prefix;
use crate::dirhash::hash_zip_digests;
use crate::version::ModuleVersion;

/// Extracts the module zip `zip` of `module` into `dir` (Go's `zip.Unzip`).
///
/// `dir` must be empty or absent (it is created with its parents). All name and size rules are
/// checked before anything is written; then files are written in zip order as read-only files,
/// directory entries skipped. As in Go, an entry whose data turns out to be broken (larger than
/// declared, bad CRC) fails the extraction with the files written so far left in place.
///
/// Returns the zip's `h1:` hash and `go.mod`, computed while extracting.
pub fn unzip<R: Read + Seek>(
    dir: &Path,
    module: &ModuleVersion,
    mut zip: R,
) -> Result<ZipSummary, ZipError> {
    if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ZipError::DirectoryNotEmpty {
            dir: dir.display().to_string(),
        });
    }
    let archive = match open(module, &mut zip)? {
        Ok(archive) => archive,
        Err(report) => {
            return Err(report
                .err()
                .err()
                .unwrap_or(ZipError::Format("zip too large")));
        }
    };
    let prefix = zip_prefix(module);
    let names = check_names(&archive.entries, &prefix);
    names.files.err()?;

    let io = |what: &str, path: &Path, e| ZipError::io(format!("{what} {}", path.display()), e);
    fs::create_dir_all(dir).map_err(|e| io("mkdir", dir, e))?;
    let mut reader = EntryReader::new();
    let mut digests = Vec::with_capacity(archive.entries.len());
    let mut go_mod = None;
    for (i, e) in archive.entries.iter().enumerate() {
        let name = String::from_utf8_lossy(&e.name[prefix.len()..]).into_owned();
        let mut sha = Sha256::new();
        let mut keep = (names.go_mod == Some(i)).then(Vec::new);
        let mut out = if name.is_empty() || name.ends_with('/') {
            None
        } else {
            let dst = dir.join(&name);
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(|e| io("mkdir", parent, e))?;
            }
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dst)
                .map_err(|e| io("create", &dst, e))?;
            Some((file, dst))
        };
        let result = reader.stream(&mut zip, archive.size, e, &mut |chunk| {
            sha.update(chunk);
            if let Some(buf) = keep.as_mut() {
                buf.extend_from_slice(chunk);
            }
            match out.as_mut() {
                Some((file, _)) => file.write_all(chunk),
                None => Ok(()),
            }
        });
        let full_name = || String::from_utf8_lossy(&e.name).into_owned();
        match result {
            Ok(_) => {}
            Err(ReadFailure::Entry(error)) => {
                return Err(ZipError::Entry {
                    name: full_name(),
                    error,
                });
            }
            Err(ReadFailure::Io(err)) => return Err(ZipError::io("reading zip", err)),
            Err(ReadFailure::Sink(err)) => {
                return Err(ZipError::io(format!("writing {name}"), err));
            }
        }
        if let Some((file, dst)) = out {
            finish_file(file, &dst).map_err(|e| io("closing", &dst, e))?;
        }
        if keep.is_some() {
            go_mod = keep;
        }
        digests.push((e.name.clone(), sha.finalize().into()));
    }
    Ok(ZipSummary {
        module: module.clone(),
        hash: hash_zip_digests(digests)?,
        go_mod,
        files: names.files.valid,
        zip_size: archive.size,
    })
}

/// Closes an extracted file and makes it read-only, as the module cache keeps them.
fn finish_file(file: File, path: &Path) -> std::io::Result<()> {
    let mut perms = file.metadata()?.permissions();
    perms.set_readonly(true);
    drop(file);
    fs::set_permissions(path, perms)
}
