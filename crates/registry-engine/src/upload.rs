//! Turning an uploaded module zip into a [`ValidatedModule`]: spool the body to a temporary file
//! (bounded by the size limit, hashing as it goes), then check it with the go command's rules in
//! one streaming pass on a blocking thread. Nothing is written to storage until the upload has
//! passed every check.
//!
//! A body that ends in an error (the client dropped the connection mid-upload, or sent less
//! than its `Content-Length`) is the client's failure, answered as a 400-class error
//! ([`aborted`]), never as a 500; the partial spool file is removed.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use strata_core::dirhash::hash_go_mod;
use strata_core::gomod::GoMod;
use strata_core::path::ModulePath;
use strata_core::version::{ModuleVersion, Version};
use strata_core::zip;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use crate::error::RegistryError;
use crate::keys::Digest;

/// Removes spooled uploads (`strata-upload-*` in `dir`) untouched for `older_than`: what a crashed
/// registry left behind. Returns how many were removed.
pub fn sweep_stale_spool(
    dir: &std::path::Path,
    older_than: std::time::Duration,
) -> std::io::Result<usize> {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(b"strata-upload-")
        {
            continue;
        }
        let stale = entry
            .metadata()?
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= older_than);
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// An upload body spooled to a temporary file (removed when dropped).
#[derive(Debug)]
pub struct SpooledUpload {
    file: NamedTempFile,
    size: u64,
    sha256: Digest,
}

impl SpooledUpload {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// SHA-256 of the bytes.
    pub fn sha256(&self) -> &Digest {
        &self.sha256
    }

    /// A fresh reader over the bytes.
    pub fn reopen(&self) -> Result<File, RegistryError> {
        self.file
            .reopen()
            .map_err(|e| RegistryError::io("reopening spooled upload", e))
    }
}

/// Writes `body` to a temporary file in `dir`, failing with [`RegistryError::TooLarge`] as soon
/// as it passes `limit` bytes (the partial file is removed).
pub async fn spool<S, E>(
    mut body: S,
    dir: &std::path::Path,
    limit: u64,
) -> Result<SpooledUpload, RegistryError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let temp = tempfile::Builder::new()
        .prefix("strata-upload-")
        .tempfile_in(dir)
        .map_err(|e| RegistryError::io(format!("creating upload file in {}", dir.display()), e))?;
    let std_file = temp
        .reopen()
        .map_err(|e| RegistryError::io("opening upload file", e))?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(std_file));
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(aborted)?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(RegistryError::TooLarge { limit });
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| RegistryError::io("writing upload file", e))?;
    }
    out.flush()
        .await
        .map_err(|e| RegistryError::io("writing upload file", e))?;
    let sha256 = Digest::from_bytes(&hasher.finalize().into());
    Ok(SpooledUpload {
        file: temp,
        size,
        sha256,
    })
}

/// Reads a small upload body (`.mod`, `.info`) into memory: [`RegistryError::TooLarge`] past
/// `limit` bytes, [`aborted`] when the body fails.
pub async fn read_small<S, E>(mut body: S, limit: usize) -> Result<Bytes, RegistryError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(aborted)?;
        if out.len() + chunk.len() > limit {
            return Err(RegistryError::TooLarge {
                limit: limit as u64,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// The error for an upload body that failed while it was read: the client hung up or sent
/// less than it announced. Invalid input (400), not a server failure; logged at info level.
pub fn aborted(cause: impl std::fmt::Display) -> RegistryError {
    let reason = format!("upload aborted by the client ({cause}); nothing was stored");
    tracing::info!(%reason, "upload aborted");
    RegistryError::Aborted(reason)
}

/// A module zip that passed every check, ready to be stored.
#[derive(Debug)]
pub struct ValidatedModule {
    /// The module.
    pub module: ModulePath,
    /// The version.
    pub version: Version,
    /// The zip bytes.
    pub zip: SpooledUpload,
    /// The zip's `h1:`.
    pub zip_h1: String,
    /// The go.mod served as `.mod`: the zip's own, or the synthesized one.
    pub go_mod: Bytes,
    /// The go.mod's `h1:`.
    pub mod_h1: String,
}

impl ValidatedModule {
    /// The two go.sum lines of this version.
    pub fn go_sum_lines(&self) -> String {
        strata_core::gosum::format_module_lines(
            self.module.as_str(),
            self.version.as_str(),
            &self.zip_h1,
            &self.mod_h1,
        )
    }
}

/// Checks a spooled zip: module and version from `expected` or from the zip's root prefix; the
/// go command's zip rules; a go.mod that names the module. Every violation is reported.
pub async fn validate(
    upload: SpooledUpload,
    expected: Option<ModuleVersion>,
) -> Result<ValidatedModule, RegistryError> {
    tokio::task::spawn_blocking(move || validate_blocking(upload, expected))
        .await
        .map_err(|e| RegistryError::Internal(format!("zip validation task failed: {e}")))?
}

fn validate_blocking(
    upload: SpooledUpload,
    expected: Option<ModuleVersion>,
) -> Result<ValidatedModule, RegistryError> {
    let invalid = |msg: String| RegistryError::InvalidModule(vec![msg]);
    let mut reader = BufReader::new(upload.reopen()?);
    let module = match expected {
        Some(m) => m,
        None => zip::infer_module_version(&mut reader).map_err(|e| invalid(e.to_string()))?,
    };
    module
        .check_canonical()
        .map_err(|e| invalid(e.to_string()))?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| RegistryError::io("rewinding upload", e))?;
    let report = zip::check_zip_report(&module, reader).map_err(|e| invalid(e.to_string()))?;
    let mut problems = report.violations();
    let go_mod = match report.go_mod {
        Some(data) => {
            if let Err(e) = GoMod::parse_for(&data, &module.path) {
                problems.push(format!("{module}/go.mod: {e}"));
            }
            data
        }
        None => GoMod::synthesized(&module.path),
    };
    let zip_h1 = match (report.hash, problems.is_empty()) {
        (Some(h1), true) => h1,
        _ => {
            if problems.is_empty() {
                problems.push("zip content could not be hashed".into());
            }
            return Err(RegistryError::InvalidModule(problems));
        }
    };
    let path = ModulePath::new(&module.path).map_err(|e| invalid(e.to_string()))?;
    let version = Version::new(&module.version).map_err(|e| invalid(e.to_string()))?;
    let mod_h1 = hash_go_mod(&go_mod);
    Ok(ValidatedModule {
        module: path,
        version,
        zip: upload,
        zip_h1,
        go_mod: Bytes::from(go_mod),
        mod_h1,
    })
}

#[cfg(test)]
mod tests {
    use strata_core::protocol::ErrorKind;

    use super::*;

    /// A body that sends `good` and then fails, as a dropped connection does.
    fn broken_body(good: &'static [u8]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures::stream::iter(vec![
            Ok(Bytes::from_static(good)),
            Err("connection closed before message completed".to_owned()),
        ])
    }

    fn spool_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[tokio::test]
    async fn an_aborted_upload_is_a_client_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = spool(broken_body(b"PK\x03\x04 partial"), dir.path(), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.kind().http_status(), 400);
        let message = e.to_string();
        assert!(
            message.contains("upload aborted by the client")
                && message.contains("connection closed"),
            "{message}"
        );
        assert_eq!(spool_files(dir.path()), Vec::<std::path::PathBuf>::new());

        let e = read_small(broken_body(b"module x"), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = read_small(broken_body(b"module x"), 3).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
        let ok = read_small(
            futures::stream::iter(vec![Ok::<_, String>(Bytes::from_static(b"ab"))]),
            2,
        )
        .await
        .unwrap();
        assert_eq!(&ok[..], b"ab");
    }
}
