//! [`Fills`]: one download per zip into the disk tier, however many clients want it.
//!
//! The first miss starts a fill: a spawned task that streams the zip from a registry over gRPC
//! into a temp file (meta line first, then the bytes), a [`Spool`] that publishes the bytes
//! written; the fill's own `tokio::sync::watch` ([`FillState`]) publishes the registry's header
//! and the outcome. Every client that wants the zip meanwhile — the first one included —
//! follows the spool as it grows ([`follow`]; the following is [`strata_service::spool`]'s),
//! so memory stays flat whatever the zip's size and the number of clients. Clients hanging up
//! do not affect the task. A client that comes once the fill is done reads the committed
//! disk-tier entry.
//!
//! A client never receives the zip's last byte before the fill is complete, verified (size,
//! SHA-256 = the registry's ETag, `dirhash::hash_zip` = the header's `h1:`) and committed to
//! the disk tier: a corrupt or broken download reaches clients as a body that ends early, which
//! the go command rejects. The size is known from the header, so every other byte goes out as
//! soon as it is written.
//!
//! Fills accept streaming answers (`ZipRequest.accept_streaming`): a zip the registry is still
//! downloading from its upstream arrives at the upstream's pace, with size and `h1:` in the
//! header and the SHA-256 in a trailer at the end (checked if sent; size and `h1:` always are).
//! So two deadlines apply: the header must come within `upstream.request_timeout_ms` (the
//! registry call's deadline), and after it each message within `upstream.zip_idle_timeout_ms`
//! — a slow but steadily progressing download never times out, however long it takes.
//!
//! If the registry stream breaks, the fill resumes from the bytes it has (the `offset` of
//! `ZipRequest`) on whichever registry is best then, checking that size, `h1:` and (where both
//! are known) ETag are the same; a registry serves a resumed zip that it is still downloading
//! from its download spool. A break counts against the registry's health as a failed call
//! would (see [`RegistryPool::call`]): a transport failure or an idle timeout does, the
//! registry's own error answer (say its upstream broke off the download) does not. A stream
//! that ends with DATA_LOSS — the registry found the zip
//! tampered or corrupt, e.g. it failed verification against the checksum database — is not a
//! broken stream: the fill fails as an integrity error at once, without resuming and without
//! counting against the registry's health, and nothing enters the disk tier.
//! Fills run at most `cache.max_fills` at a time; further misses wait for a slot.

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use sha2::{Digest, Sha256};
use strata_core::dirhash::hash_zip;
use strata_service::spool::{Abandoned, Spool, SpoolWriter};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tonic::Code;
use tracing::Instrument;

use crate::cache::disk::DiskTier;
use crate::cache::{EntryKind, Meta, unix_now};
use crate::error::EdgeError;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::proto::zip_response;
use crate::upstream::{RegistryPool, registry_failed};

/// Where a fill is.
#[derive(Debug, Clone)]
pub enum FillState {
    /// Waiting for a slot or for the registry's header.
    Starting,
    /// The bytes are arriving in the temp file (after the meta line).
    Running {
        /// The entry's facts, from the registry's header (the ETag is empty while a streaming
        /// answer has not delivered it).
        meta: Arc<Meta>,
        /// The temp file, as the bytes arrive.
        spool: Arc<Spool<SpoolFailure>>,
    },
    /// Verified and in the disk tier.
    Done(Arc<Meta>),
    /// Failed; the temp file is gone.
    Failed(EdgeError),
}

/// How a failed fill reaches the clients following its spool: as the error's message.
#[derive(Debug, Clone)]
pub struct SpoolFailure(EdgeError);

impl From<SpoolFailure> for io::Error {
    fn from(failure: SpoolFailure) -> Self {
        io::Error::other(failure.0.to_string())
    }
}

impl From<Abandoned> for SpoolFailure {
    fn from(_: Abandoned) -> Self {
        SpoolFailure(ended_without_result())
    }
}

/// What a zip to fill is.
#[derive(Debug, Clone)]
pub struct ZipTarget {
    /// Repository.
    pub repo: String,
    /// Module path (plain).
    pub module: String,
    /// Version.
    pub version: String,
    /// Disk tier path of the entry.
    pub rel: String,
}

/// The fills in flight.
#[derive(Debug)]
pub struct Fills {
    inflight: Mutex<HashMap<String, watch::Receiver<FillState>>>,
    slots: Arc<Semaphore>,
    disk: Arc<DiskTier>,
    pool: Arc<RegistryPool>,
    metrics: Arc<Metrics>,
}

impl Fills {
    /// At most `max` fills at once.
    pub fn new(
        max: usize,
        disk: Arc<DiskTier>,
        pool: Arc<RegistryPool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(max)),
            disk,
            pool,
            metrics,
        }
    }

    /// The progress of the fill of `target`: joins one in flight or starts one with `auth`.
    /// `None` if the zip is in the disk tier after all (a fill just finished).
    pub fn join(
        self: &Arc<Self>,
        target: &ZipTarget,
        auth: Option<&str>,
    ) -> Option<watch::Receiver<FillState>> {
        let mut inflight = match self.inflight.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(rx) = inflight.get(&target.rel) {
            return Some(rx.clone());
        }
        // Checked under the lock: a fill commits to the disk tier before leaving the map.
        if self.disk.contains(&target.rel) {
            return None;
        }
        let (tx, rx) = watch::channel(FillState::Starting);
        inflight.insert(target.rel.clone(), rx.clone());
        let fills = Arc::clone(self);
        let target = target.clone();
        let auth = auth.map(str::to_owned);
        // The fill outlives the request that started it, but belongs to its trace.
        tokio::spawn(
            async move { fills.run(target, auth, tx).await }
                .instrument(strata_service::trace::current()),
        );
        Some(rx)
    }

    async fn run(
        self: Arc<Self>,
        target: ZipTarget,
        auth: Option<String>,
        tx: watch::Sender<FillState>,
    ) {
        // Leaves the in-flight map however the task ends (even by a panic), after the
        // entry is committed: joiners then find it on disk.
        let _leave = Leave {
            fills: Arc::clone(&self),
            rel: target.rel.clone(),
        };
        let permit = self.slots.clone().acquire_owned().await;
        self.metrics.fills_in_flight.inc();
        let started = std::time::Instant::now();
        let temp = self.disk.temp_path();
        // The spool's writing end, once the header has come.
        let mut writer = None;
        let result = match permit {
            Ok(_permit) => {
                self.download(&target, auth.as_deref(), &temp, &tx, &mut writer)
                    .await
            }
            Err(_) => Err(EdgeError::Unavailable("shutting down".into())),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(EdgeError::Integrity { .. }) => "integrity",
            Err(_) => "failed",
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        self.metrics
            .fills
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.metrics
            .fill_duration
            .get_or_create(&OutcomeLabels { outcome })
            .observe(started.elapsed().as_secs_f64());
        self.metrics.fills_in_flight.dec();
        match result {
            Ok(meta) => {
                // Verified and committed: the last byte may go out.
                if let Some(writer) = writer {
                    writer.done();
                }
                tx.send_replace(FillState::Done(meta))
            }
            Err(e) => {
                tracing::warn!(zip = %target.rel, error = %e, "zip fill failed");
                if let Some(writer) = writer {
                    writer.failed(SpoolFailure(e.clone()));
                }
                tx.send_replace(FillState::Failed(e))
            }
        };
    }

    async fn download(
        &self,
        t: &ZipTarget,
        auth: Option<&str>,
        temp: &PathBuf,
        tx: &watch::Sender<FillState>,
        writer: &mut Option<SpoolWriter<SpoolFailure>>,
    ) -> Result<Arc<Meta>, EdgeError> {
        let what = format!("{}@{}.zip", t.module, t.version);
        let cache_err = |e: std::io::Error| EdgeError::Cache(format!("writing {what}: {e}"));
        let mut open = self
            .pool
            .open_zip(&t.repo, &t.module, &t.version, 0, auth, None)
            .await?;
        let header = open.header.clone();
        if header.offset != 0 || header.length != header.size {
            return Err(integrity(
                &what,
                "registry sent a partial zip for a full request",
            ));
        }
        // The SHA-256 the bytes must have: the header's, or a streaming answer's trailer's.
        let mut etag = known(&header.etag);
        let meta = Meta {
            v: 1,
            kind: EntryKind::Zip,
            size: header.size,
            etag: header.etag.clone(),
            h1: Some(header.h1.clone()),
            fetched: unix_now(),
            source: Some(open.upstream.name.clone()),
        };
        // Until the SHA-256 is known, the meta line on disk carries 64 zeros in its place (the
        // same length), overwritten with the real digest at the end: the bytes after the line
        // never move.
        let on_disk = Meta {
            etag: UNKNOWN_ETAG.to_owned(),
            ..meta.clone()
        };
        let line = if etag.is_some() {
            meta.line()
        } else {
            on_disk.line()
        };
        let meta = Arc::new(meta);
        let mut file = tokio::fs::File::create(temp).await.map_err(cache_err)?;
        file.write_all(&line).await.map_err(cache_err)?;
        file.flush().await.map_err(cache_err)?;
        let data_offset = line.len() as u64;
        let (spool, spooled) =
            Spool::new(file, temp, data_offset, Some(header.size)).map_err(cache_err)?;
        let out = writer.insert(spooled);
        tx.send_replace(FillState::Running {
            meta: Arc::clone(&meta),
            spool,
        });
        let mut sha = Sha256::new();
        let mut resumes = 0;
        let idle = self.pool.zip_idle_timeout();
        loop {
            // The idle deadline bounds the gap between messages, never the whole download.
            let message = tokio::time::timeout(idle, open.stream.message()).await;
            let broken = match message {
                Ok(Ok(Some(m))) => match m.part {
                    Some(zip_response::Part::Data(chunk)) => {
                        if out.written() + chunk.len() as u64 > header.size {
                            return Err(integrity(
                                &what,
                                "registry sent more bytes than announced",
                            ));
                        }
                        out.write(&chunk).await.map_err(cache_err)?;
                        sha.update(&chunk);
                        continue;
                    }
                    Some(zip_response::Part::Trailer(trailer)) if out.written() == header.size => {
                        agree(&what, &mut etag, &trailer.etag)?;
                        continue;
                    }
                    Some(zip_response::Part::Trailer(_)) => {
                        return Err(integrity(&what, "zip trailer before the last byte"));
                    }
                    _ => return Err(integrity(&what, "unexpected message in the zip stream")),
                },
                Ok(Ok(None)) if out.written() == header.size => break,
                Ok(Ok(None)) => {
                    self.pool.failed(&open.upstream, "failed");
                    "stream ended early".to_owned()
                }
                // The registry's verdict on the bytes (a zip that failed verification), not a
                // transport failure: nothing to resume, nothing against its health.
                Ok(Err(status)) if status.code() == Code::DataLoss => {
                    return Err(integrity(
                        &what,
                        &format!("registry {}: {}", open.upstream.name, status.message()),
                    ));
                }
                Ok(Err(status)) => {
                    // The registry's own answer (e.g. its upstream broke off the download) is
                    // retried like a broken stream but does not count against its health.
                    if registry_failed(&status) {
                        self.pool.failed(&open.upstream, "failed");
                    }
                    status.message().to_owned()
                }
                Err(_) => {
                    self.pool.failed(&open.upstream, "timeout");
                    format!("no data for {idle:?}")
                }
            };
            let written = out.written();
            if written == header.size {
                // Every byte is here, and a registry sends the last one only after verifying
                // the zip: only the trailer is missing, and the checks below do without it.
                break;
            }
            resumes += 1;
            if resumes > 3 {
                return Err(EdgeError::NoUpstream {
                    what,
                    reasons: format!("zip stream broke {resumes} times, last: {broken}"),
                    timeout: false,
                });
            }
            tracing::info!(zip = %t.rel, written, %broken, "zip stream broke; resuming");
            open = self
                .pool
                .open_zip(&t.repo, &t.module, &t.version, written, auth, None)
                .await?;
            let resumed = &open.header;
            if resumed.offset != written || resumed.size != header.size || resumed.h1 != header.h1 {
                return Err(integrity(&what, "resumed stream is of different bytes"));
            }
            agree(&what, &mut etag, &resumed.etag)?;
        }
        let sha = hex::encode(sha.finalize());
        if etag.as_ref().is_some_and(|etag| *etag != sha) {
            return Err(integrity(
                &what,
                "SHA-256 does not match the registry's ETag",
            ));
        }
        let path = temp.clone();
        let size = header.size;
        let h1 = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            let section = crate::cache::section(file, data_offset, size);
            hash_zip(section).map_err(std::io::Error::other)
        })
        .await
        .map_err(|e| EdgeError::Cache(e.to_string()))?
        .map_err(|e| integrity(&what, &format!("not a valid module zip: {e}")))?;
        if h1 != header.h1 {
            return Err(integrity(
                &what,
                &format!("h1 {h1} does not match the registry's {}", header.h1),
            ));
        }
        let meta = if meta.etag == sha {
            meta
        } else {
            let verified = Meta {
                etag: sha,
                ..(*meta).clone()
            };
            let line = verified.line();
            if line.len() as u64 != data_offset {
                return Err(EdgeError::Cache(format!(
                    "writing {what}: the meta line changed length"
                )));
            }
            let file = out.file_mut();
            file.seek(SeekFrom::Start(0)).await.map_err(cache_err)?;
            file.write_all(&line).await.map_err(cache_err)?;
            Arc::new(verified)
        };
        out.file_mut().sync_all().await.map_err(cache_err)?;
        // The spool keeps its bytes for the clients following it, wherever the file goes.
        self.disk.commit(temp, &t.rel).await.map_err(cache_err)?;
        Ok(meta)
    }
}

/// Removes a fill from the in-flight map when dropped.
struct Leave {
    fills: Arc<Fills>,
    rel: String,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut inflight = match self.fills.inflight.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        inflight.remove(&self.rel);
    }
}

/// The meta line's ETag until a streaming answer's SHA-256 is known: as long as a real one.
const UNKNOWN_ETAG: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `etag` unless empty (a streaming answer's header).
fn known(etag: &str) -> Option<String> {
    (!etag.is_empty()).then(|| etag.to_owned())
}

/// Records `reported` (if any) as the zip's SHA-256, refusing one that differs from an earlier
/// report.
fn agree(what: &str, etag: &mut Option<String>, reported: &str) -> Result<(), EdgeError> {
    match (etag.as_deref(), known(reported)) {
        (_, None) => Ok(()),
        (None, Some(reported)) => {
            *etag = Some(reported);
            Ok(())
        }
        (Some(earlier), Some(reported)) if earlier == reported => Ok(()),
        (Some(_), Some(_)) => Err(integrity(what, "the registry's ETag changed mid-download")),
    }
}

fn integrity(what: &str, detail: &str) -> EdgeError {
    EdgeError::Integrity {
        what: what.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Waits for the fill's header: the entry's meta, or the failure.
pub async fn header(rx: &mut watch::Receiver<FillState>) -> Result<Arc<Meta>, EdgeError> {
    match started(rx).await? {
        FillState::Running { meta, .. } | FillState::Done(meta) => Ok(meta),
        FillState::Failed(e) => Err(e),
        FillState::Starting => Err(EdgeError::Unavailable("zip fill did not start".into())),
    }
}

/// The fill's state once past [`FillState::Starting`].
async fn started(rx: &mut watch::Receiver<FillState>) -> Result<FillState, EdgeError> {
    rx.wait_for(|s| !matches!(s, FillState::Starting))
        .await
        .map(|s| s.clone())
        .map_err(|_| ended_without_result())
}

fn ended_without_result() -> EdgeError {
    EdgeError::Unavailable("zip fill ended without a result".into())
}

/// Bytes `start..end` of a zip being filled, read from its spool as they arrive (the last byte
/// once the fill is done). Once the fill is done, they come from the committed entry instead.
pub fn follow(
    mut rx: watch::Receiver<FillState>,
    start: u64,
    end: u64,
    disk: Arc<DiskTier>,
    rel: String,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
    futures::stream::once(async move {
        let spool = match started(&mut rx).await {
            Ok(FillState::Running { spool, .. }) => spool,
            Ok(FillState::Done(_)) => {
                let entry = disk.get(&rel).await.ok_or_else(|| {
                    io::Error::other("zip left the disk cache while being served")
                })?;
                Spool::<SpoolFailure>::complete(entry.file, entry.data_offset, entry.meta.size)
            }
            Ok(FillState::Failed(e)) | Err(e) => return Err(io::Error::other(e.to_string())),
            Ok(FillState::Starting) => {
                return Err(io::Error::other("zip fill did not start"));
            }
        };
        Ok(spool.follow(start..end))
    })
    .try_flatten()
}
