//! Zips of a remote repository. A miss starts one [`ZipFill`] per version, whatever the number
//! of callers: the download runs in its own task, streams to every caller while it spools,
//! is verified against the checksum database (the whole zip's `h1:`), and only then is the
//! last byte released and the zip stored and recorded in the index. A mismatch is reported
//! as an integrity violation and nothing is stored.
//!
//! When an answer starts depends on who asks:
//! - By default (the HTTP API, gRPC callers that do not accept streaming) it waits for the
//!   verified zip, so that a tampered zip is a clear error status (502 / DATA_LOSS) rather
//!   than a truncated 200.
//! - Inside [`RemoteRepository::streaming_zips`] (the gRPC `Zip` call of an edge, which keeps
//!   the held-back-last-byte rule towards its own clients) it starts as soon as the download
//!   has announced its size (the upstream's Content-Length) and `h1:` (the checksum
//!   database's): the artifact has no ETag yet, its body follows the spool file with the last
//!   byte held back until verification and ends with the error if verification fails, and
//!   the caller receives a future of the verified SHA-256 for the end of its answer. Without
//!   a Content-Length, or for a `no_sum` module (no `h1:` known up front), it waits as above.
//!   A byte range of a zip still downloading is served from the spool the same way.
//!
//! The opt-in is a task-local around the read rather than a parameter, because the read goes
//! through the registry and, for virtual repositories, through their members; how an answer
//! may fail is a property of the transport, not of the repositories in between.

use std::future::Future;
use std::io::{Seek, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use futures::StreamExt;
use futures::future::BoxFuture;
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::version::{ModuleVersion, Version};
use strata_core::zip::{MAX_ZIP_FILE, check_zip_report};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use super::{ExpectedSums, Inner, RemoteRepository};
use crate::change::{Change, ChangeKind};
use crate::error::RegistryError;
use crate::index::BlobRef;
use crate::keys::Digest;
use crate::repository::Artifact;
use crate::repository::fill::{Announced, FillWriter, Started, ZipFill};
use crate::storage::{
    ByteRange, ETag, GetObject, ObjectKey, ObjectMeta, Operation, StorageError, body_from_reader,
};

/// Resolves, once a streamed zip was verified, to its lower-case hex SHA-256 (or to the error
/// its stream also ended with).
pub type ZipCompletion = BoxFuture<'static, Result<String, RegistryError>>;

/// Where a streaming zip answer leaves its [`ZipCompletion`] for the caller of
/// [`RemoteRepository::streaming_zips`].
#[derive(Clone, Default)]
struct StreamingSlot(Arc<Mutex<Option<ZipCompletion>>>);

tokio::task_local! {
    /// Set around a read whose caller can report a failure after its answer started.
    static STREAMING: StreamingSlot;
}

impl RemoteRepository {
    /// Runs `read` (a registry read of one `.zip`) so that a remote repository may answer a
    /// zip it is still downloading (see the module comment). Returns what `read` returned and,
    /// if that is such a streaming answer, the future of its SHA-256.
    pub async fn streaming_zips<F: Future>(read: F) -> (F::Output, Option<ZipCompletion>) {
        let slot = StreamingSlot::default();
        let output = STREAMING.scope(slot.clone(), read).await;
        let completion = slot.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        (output, completion)
    }

    /// `.zip` of a canonical version, optionally a byte range of it.
    pub async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<Artifact, RegistryError> {
        let inner = &self.inner;
        if let Some(entry) = inner.cached_entry(module, version).await?
            && let Some(zip) = &entry.zip
        {
            return inner
                .artifact(module, version, ArtifactKind::Zip, zip, range)
                .await;
        }
        let path = format!("/{}/@v/{}.zip", module.escaped(), version.escaped());
        if inner.config.offline {
            return Err(inner.offline(&path));
        }
        if let Some(e) = inner.negative(&path) {
            return Err(e);
        }
        // Everything from here on runs in the download task, so that it completes (and the
        // zip gets stored) even if this caller hangs up.
        let fill = inner.start_fill(module, version, path)?;
        let key = ObjectKey::new(format!(
            "repos/{}/fills/{}/@v/{}.zip",
            inner.name,
            module.escaped(),
            version.escaped()
        ))?;
        if let Ok(slot) = STREAMING.try_with(StreamingSlot::clone)
            && let Started::Streaming(announced) = fill.started().await?
        {
            return streaming_answer(&fill, key, announced, range, &slot);
        }
        // Nothing goes out before the whole zip is verified: a tampered zip gets a clear
        // error (502 / DATA_LOSS) instead of a truncated 200. The verified zip is then
        // streamed from the spool file while the download task uploads it to storage.
        let (size, sha, h1) = fill.finished().await?;
        let h1 = Some(h1);
        if let Some(range) = range {
            return spooled_range(&fill, key, size, range, h1).await;
        }
        let body = fill.reader();
        let etag = Some(hex::encode(sha));
        Ok(Artifact {
            etag,
            h1,
            object: GetObject {
                meta: ObjectMeta {
                    key,
                    size,
                    etag: ETag::new(""),
                    last_modified: SystemTime::now(),
                },
                range: 0..size,
                body,
            },
        })
    }
}

impl Inner {
    /// The download of `module@version` in flight, or a new one.
    fn start_fill(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        path: String,
    ) -> Result<Arc<ZipFill>, RegistryError> {
        let mut zips = self
            .zips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (module.clone(), version.clone());
        if let Some(fill) = zips.get(&key) {
            return Ok(fill.clone());
        }
        let (fill, writer) = ZipFill::create(&self.spool_dir)
            .map_err(|e| RegistryError::io("creating a download spool file", e))?;
        zips.insert(key.clone(), fill.clone());
        let this = self.clone();
        let entry = super::FillEntry {
            inner: self.clone(),
            key: key.clone(),
            fill: fill.clone(),
        };
        // The fill outlives the request that started it, but belongs to its trace.
        let span = strata_service::span!(
            "remote.fill",
            otel.name = "fill zip",
            module = key.0.as_str(),
            version = key.1.as_str(),
        );
        tokio::spawn(
            async move {
                // Leaves the map when the task ends, however it ends.
                let _entry = entry;
                let (module, version) = key;
                this.run_fill(&module, &version, &path, writer).await;
            }
            .instrument(span),
        );
        Ok(fill)
    }

    async fn run_fill(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        path: &str,
        mut writer: FillWriter,
    ) {
        let timing = super::FillTiming::start(module, version.as_str());
        let outcome = self.fill(module, version, path, &mut writer).await;
        match outcome {
            Ok((size, sha, h1)) => {
                let fill = writer.fill().clone();
                writer.verified(size, sha, h1.clone());
                if let Err(e) = self.store_zip(module, version, &fill, size, sha, h1).await {
                    tracing::warn!(
                        repository = %self.name, %module, %version, error = %e,
                        "verified zip served but not stored; the next request fetches it again"
                    );
                }
                // Counted once stored: the fill's duration includes the storage write.
                self.count_fetch("zip", "ok", &timing);
            }
            Err(e) => {
                self.count_error("zip", &e, &timing);
                writer.failed(Arc::new(e));
            }
        }
    }

    /// The go.mod first (it creates the version's index entry), the expected hashes, then the
    /// zip itself.
    async fn fill(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        path: &str,
        writer: &mut FillWriter,
    ) -> Result<(u64, [u8; 32], String), RegistryError> {
        let entry = self.clone().ensure_entry(module, version).await?;
        let expected = self.expected_sums(module, version).await?;
        // A verified version is recorded before a byte of its zip is served (its go.mod
        // recorded it already, unless it was cached before the ledger was turned on).
        if let Some(sums) = &expected {
            self.record(module, version, &sums.zip, &sums.go_mod)
                .await?;
        }
        let (size, sha, h1) = self
            .download(module, version, expected.as_ref(), path, writer)
            .await?;
        if expected.is_none() {
            // `no_sum`: nothing vouches for the bytes, so the first zip fetched is recorded
            // (trust on first use); an upstream that changes it later is refused.
            let mod_h1 = entry.go_mod.h1.as_deref().ok_or_else(|| {
                RegistryError::Internal(format!("{module}@{version}: cached go.mod without h1"))
            })?;
            self.record(module, version, &h1, mod_h1).await?;
        }
        Ok((size, sha, h1))
    }

    /// Streams the zip into the spool and verifies it: `(size, sha256, h1)`.
    async fn download(
        &self,
        module: &ModulePath,
        version: &Version,
        expected: Option<&ExpectedSums>,
        path: &str,
        writer: &mut FillWriter,
    ) -> Result<(u64, [u8; 32], String), RegistryError> {
        let mut body = self
            .upstream
            .get_stream(path)
            .await
            .map_err(|e| self.upstream_error(path, e))?;
        let too_large = || {
            RegistryError::Upstream(crate::upstream::UpstreamError::TooLarge {
                url: self.upstream.url(path),
                limit: usize::try_from(MAX_ZIP_FILE).unwrap_or(usize::MAX),
            })
        };
        if body.content_length.is_some_and(|n| n > MAX_ZIP_FILE) {
            return Err(too_large());
        }
        // Size and h1 known: streaming answers may start (the checks below hold the download
        // to both).
        if let (Some(size @ 1..), Some(expected)) = (body.content_length, expected) {
            writer.announce(Announced {
                size,
                h1: expected.zip.clone(),
            });
        }
        while let Some(chunk) = body.stream.next().await {
            let chunk = chunk.map_err(|e| self.upstream_error(path, e))?;
            let total = writer.written() + chunk.len() as u64;
            if total > MAX_ZIP_FILE {
                return Err(too_large());
            }
            if let Some(announced) = body.content_length
                && total > announced
            {
                return Err(RegistryError::Upstream(
                    crate::upstream::UpstreamError::Transport {
                        url: self.upstream.url(path),
                        message: format!("body is longer than its Content-Length {announced}"),
                    },
                ));
            }
            writer
                .write(&chunk)
                .await
                .map_err(|e| RegistryError::io("writing the download spool", e))?;
        }
        if let Some(total) = body.content_length
            && writer.written() != total
        {
            return Err(RegistryError::Upstream(
                crate::upstream::UpstreamError::Transport {
                    url: self.upstream.url(path),
                    message: format!("body ended after {} of {total} bytes", writer.written()),
                },
            ));
        }
        let (size, sha) = writer
            .complete()
            .await
            .map_err(|e| RegistryError::io("flushing the download spool", e))?;
        let spool = writer.fill().path().to_owned();
        let mv = ModuleVersion::new(module.as_str(), version.as_str());
        let hashed = tokio::task::spawn_blocking(move || -> Result<String, String> {
            let file = std::fs::File::open(&spool).map_err(|e| e.to_string())?;
            // The module-zip rules and size limits come first, verified or not: entries that
            // declare more than the limit are refused before a byte is inflated, so an upstream
            // zip bomb costs bounded CPU; and a zip the go command would refuse is not stored.
            let report = check_zip_report(&mv, file).map_err(|e| e.to_string())?;
            let violations = report.violations();
            if !violations.is_empty() {
                return Err(format!("invalid module zip: {}", violations.join("; ")));
            }
            report
                .hash
                .ok_or_else(|| "zip could not be hashed".to_owned())
        })
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))?;
        let h1 = match hashed {
            Ok(h1) => h1,
            Err(reason) => {
                let detail = match expected {
                    Some(expected) => format!(
                        "{module}@{version}: checksum mismatch: the zip from {} cannot be \
                         hashed ({reason})\n\tchecksum database: {}\n\nSECURITY ERROR: the \
                         upstream served a corrupt or tampered zip; it was not stored",
                        self.upstream.base(),
                        expected.zip
                    ),
                    None => format!(
                        "{module}@{version}: zip from {} is unusable: {reason}; it was not \
                         stored",
                        self.upstream.base()
                    ),
                };
                return Err(match expected {
                    // A zip that the checksum database vouches for must hash; one that
                    // does not is tampered or corrupt.
                    Some(_) => self.integrity_violation(module, version, detail).await,
                    None => RegistryError::Upstream(crate::upstream::UpstreamError::Status {
                        url: self.upstream.url(path),
                        status: 200,
                        body: detail,
                    }),
                });
            }
        };
        if let Some(expected) = expected
            && expected.zip != h1
        {
            let detail = format!(
                "{module}@{version}: checksum mismatch\n\tdownloaded: {h1}\n\
                 \tchecksum database: {}\n\nSECURITY ERROR: the zip served by {} does not \
                 match the checksum database; it was not stored",
                expected.zip,
                self.upstream.base()
            );
            return Err(self.integrity_violation(module, version, detail).await);
        }
        Ok((size, sha, h1))
    }

    async fn store_zip(
        &self,
        module: &ModulePath,
        version: &Version,
        fill: &ZipFill,
        size: u64,
        sha: [u8; 32],
        h1: String,
    ) -> Result<(), RegistryError> {
        let digest = Digest::from_bytes(&sha);
        let key = self.blob_key(module, version, ArtifactKind::Zip, &digest)?;
        let file = tokio::fs::File::open(fill.path())
            .await
            .map_err(|e| RegistryError::io("reopening the download spool", e))?;
        self.store
            .put(&key, body_from_reader(file.take(size)))
            .await?;
        let blob = BlobRef {
            sha256: digest,
            size,
            h1: Some(h1),
        };
        let updated = self
            .index
            .update(module, |index| {
                let Some(entry) = index.entry_mut(version) else {
                    return Err(RegistryError::Internal(format!(
                        "{module}@{version}: index entry vanished"
                    )));
                };
                if entry.zip.is_some() {
                    return Ok(None);
                }
                entry.zip = Some(blob.clone());
                Ok(Some(entry.clone()))
            })
            .await?;
        if let Some(entry) = updated {
            let change = Change {
                repo: self.name.clone(),
                module: module.clone(),
                entry,
            };
            self.listener.changed(&change, ChangeKind::Cached).await;
        }
        Ok(())
    }
}

/// The answer for a zip still downloading (see the module comment): `range` of it (the whole
/// zip without one) following the spool file, with the verified SHA-256 left in `slot`.
fn streaming_answer(
    fill: &Arc<ZipFill>,
    key: ObjectKey,
    announced: Announced,
    range: Option<ByteRange>,
    slot: &StreamingSlot,
) -> Result<Artifact, RegistryError> {
    let Announced { size, h1 } = announced;
    let span = match range {
        None => 0..size,
        Some(range) => range.resolve(size).ok_or_else(|| {
            RegistryError::Storage(StorageError::RangeNotSatisfiable {
                op: Operation::GetRange,
                key: key.to_string(),
                size,
            })
        })?,
    };
    let body = fill.range_reader(span.clone());
    let done = fill.clone();
    let completion: ZipCompletion =
        Box::pin(async move { done.finished().await.map(|(_, sha, _)| hex::encode(sha)) });
    *slot.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(completion);
    Ok(Artifact {
        etag: None,
        h1: Some(h1),
        object: GetObject {
            meta: ObjectMeta {
                key,
                size,
                etag: ETag::new(""),
                last_modified: SystemTime::now(),
            },
            range: span,
            body,
        },
    })
}

/// A byte range of a finished download, read from its spool file.
async fn spooled_range(
    fill: &Arc<ZipFill>,
    key: ObjectKey,
    size: u64,
    range: ByteRange,
    h1: Option<String>,
) -> Result<Artifact, RegistryError> {
    let Some(span) = range.resolve(size) else {
        return Err(RegistryError::Storage(StorageError::RangeNotSatisfiable {
            op: Operation::GetRange,
            key: key.to_string(),
            size,
        }));
    };
    let mut file = std::fs::File::open(fill.path())
        .map_err(|e| RegistryError::io("reading the download spool", e))?;
    file.seek(SeekFrom::Start(span.start))
        .map_err(|e| RegistryError::io("reading the download spool", e))?;
    let file = tokio::fs::File::from_std(file);
    let body = body_from_reader(file.take(span.end - span.start));
    // Keep the spool file for as long as the body is read.
    let keep = fill.clone();
    let body = body
        .map(move |chunk| {
            let _keep = &keep;
            chunk
        })
        .boxed();
    Ok(Artifact {
        etag: None,
        h1,
        object: GetObject {
            meta: ObjectMeta {
                key,
                size,
                etag: ETag::new(""),
                last_modified: SystemTime::now(),
            },
            range: span,
            body,
        },
    })
}
