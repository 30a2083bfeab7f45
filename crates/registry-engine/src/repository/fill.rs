//! A [`ZipFill`]: one download of a remote zip into a spool file, shared by every caller that
//! asks for the zip while it runs (pingora's cache lock, athens' stasher).
//!
//! The download runs in its own task, so it finishes (and the zip gets stored) even when the
//! caller that started it hangs up. Readers stream the spool file with flat memory; a reader
//! may start early and follow the file as it grows, but the last byte is held back until the
//! whole zip has been verified against the checksum database, so no reader ever receives a
//! complete unverified zip, and on a mismatch its stream ends with an error that carries the
//! [`RegistryError`] (so a gRPC stream ends with its code, DATA_LOSS for an integrity
//! violation). The following and holding back is [`strata_service::spool`]'s; the size is not
//! known to it up front, so readers stay one byte behind the download until verification.
//!
//! Once the download task knows the zip's size (the upstream's Content-Length) and its `h1:`
//! (the checksum database's), it [announces](FillWriter::announce) them: from then on a caller
//! that can report a late failure (a gRPC `Zip` stream that accepts streaming) starts its
//! answer at once ([`ZipFill::started`]). Other answers — the HTTP API, where a failure after
//! a 200 would be a truncated body — wait for verification ([`ZipFill::finished`]).

use std::io;
use std::sync::Arc;

use futures::StreamExt;
use sha2::Digest as _;
use strata_service::spool::{Abandoned, Spool, SpoolWriter};
use tokio::sync::watch;

use crate::error::RegistryError;
use crate::storage::ByteStream;

/// Where a fill is (the bytes written are the spool's to track).
#[derive(Debug, Clone)]
pub(crate) enum FillState {
    /// Downloading; `announced` once the size and expected `h1:` are known before the end.
    Running { announced: Option<Announced> },
    /// Downloaded and verified: every reader may have all `size` bytes.
    Verified {
        size: u64,
        sha256: [u8; 32],
        h1: String,
    },
    /// Failed; readers end with this error.
    Failed(Arc<RegistryError>),
}

/// What a download knows up front: the size the upstream announced and the `h1:` the checksum
/// database expects. The download fails unless the zip turns out to be exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced {
    pub(crate) size: u64,
    pub(crate) h1: String,
}

/// How an answer may start (see [`ZipFill::started`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Started {
    /// Still downloading, with this size and `h1:` announced: stream it.
    Streaming(Announced),
    /// Downloaded and verified.
    Verified,
}

/// How a failed download reaches the spool's readers: the error itself travels in their I/O
/// error, so that whoever serves the stream can answer with its kind.
#[derive(Debug, Clone)]
pub(crate) struct SpoolFailure(Arc<RegistryError>);

impl From<SpoolFailure> for io::Error {
    fn from(failure: SpoolFailure) -> Self {
        io::Error::other(RegistryError::Shared(failure.0))
    }
}

impl From<Abandoned> for SpoolFailure {
    fn from(_: Abandoned) -> Self {
        SpoolFailure(Arc::new(abandoned()))
    }
}

/// A zip being downloaded. It keeps the spool file's name (for verifying and storing the
/// zip); readers hold the [`Spool`], which keeps its bytes.
#[derive(Debug)]
pub(crate) struct ZipFill {
    path: tempfile::TempPath,
    spool: Arc<Spool<SpoolFailure>>,
    state: watch::Sender<FillState>,
}

/// The writing end, owned by the download task.
#[derive(Debug)]
pub(crate) struct FillWriter {
    // Dropped first: the spool has failed its readers by the time `fill` fails its callers.
    spool: SpoolWriter<SpoolFailure>,
    fill: Unsettled,
    hasher: sha2::Sha256,
}

/// A fill whose download has no outcome yet: dropped without one (a panic, a cancelled task),
/// it fails the fill, so no caller waits forever.
#[derive(Debug)]
struct Unsettled(Arc<ZipFill>);

impl ZipFill {
    /// A new fill spooling into a temporary file in `dir`.
    pub(crate) fn create(dir: &std::path::Path) -> io::Result<(Arc<ZipFill>, FillWriter)> {
        let file = tempfile::Builder::new()
            .prefix("strata-fill-")
            .tempfile_in(dir)?;
        let (std_file, path) = file.into_parts();
        let (spool, spool_writer) =
            Spool::new(tokio::fs::File::from_std(std_file), &path, 0, None)?;
        let (state, _) = watch::channel(FillState::Running { announced: None });
        let fill = Arc::new(ZipFill { path, spool, state });
        let writer = FillWriter {
            spool: spool_writer,
            fill: Unsettled(fill.clone()),
            hasher: sha2::Sha256::new(),
        };
        Ok((fill, writer))
    }

    /// The spool file (for verification and storing, once complete).
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Waits for the end of the download: the verified size, digest and `h1:`, or the failure.
    pub(crate) async fn finished(&self) -> Result<(u64, [u8; 32], String), RegistryError> {
        let mut rx = self.state.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                FillState::Verified { size, sha256, h1 } => {
                    return Ok((*size, *sha256, h1.clone()));
                }
                FillState::Failed(e) => return Err(RegistryError::Shared(e.clone())),
                FillState::Running { .. } => {}
            }
            if rx.changed().await.is_err() {
                return Err(abandoned());
            }
        }
    }

    /// Waits until an answer can start: the download announced its size and `h1:` (or was
    /// verified before it could), or failed. A download that never announces (no
    /// Content-Length, or a module without checksum-database entry) is waited for to the end.
    pub(crate) async fn started(&self) -> Result<Started, RegistryError> {
        let mut rx = self.state.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                FillState::Running {
                    announced: Some(announced),
                } => return Ok(Started::Streaming(announced.clone())),
                FillState::Verified { .. } => return Ok(Started::Verified),
                FillState::Failed(e) => return Err(RegistryError::Shared(e.clone())),
                FillState::Running { announced: None } => {}
            }
            if rx.changed().await.is_err() {
                return Err(abandoned());
            }
        }
    }

    /// The zip as a stream that follows the download: bytes as they arrive, the last one only
    /// after verification.
    pub(crate) fn reader(&self) -> ByteStream {
        self.range_reader(0..u64::MAX)
    }

    /// Bytes `span` of the zip (cut at its end), following the download like
    /// [`ZipFill::reader`]: the zip's last byte only after verification.
    pub(crate) fn range_reader(&self, span: std::ops::Range<u64>) -> ByteStream {
        self.spool.follow(span).boxed()
    }
}

fn abandoned() -> RegistryError {
    RegistryError::Internal("the download task ended without an outcome".into())
}

impl FillWriter {
    /// Appends a chunk and lets readers see it.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.spool.write(chunk).await?;
        self.hasher.update(chunk);
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.spool.written()
    }

    /// Lets callers that can report a late failure start their answers now (see
    /// [`ZipFill::started`]): the download promises to end as `announced` or fail.
    pub(crate) fn announce(&mut self, announced: Announced) {
        self.fill.0.state.send_replace(FillState::Running {
            announced: Some(announced),
        });
    }

    /// Flushes the file and hands back its size and SHA-256; readers still wait for
    /// [`FillWriter::verified`].
    pub(crate) async fn complete(&mut self) -> io::Result<(u64, [u8; 32])> {
        self.spool.file_mut().sync_data().await?;
        let sha = std::mem::take(&mut self.hasher).finalize().into();
        Ok((self.spool.written(), sha))
    }

    /// Releases the whole zip to readers.
    pub(crate) fn verified(self, size: u64, sha256: [u8; 32], h1: String) {
        let FillWriter { spool, fill, .. } = self;
        spool.done();
        fill.0
            .state
            .send_replace(FillState::Verified { size, sha256, h1 });
    }

    /// Ends every reader with `error`.
    pub(crate) fn failed(self, error: Arc<RegistryError>) {
        let FillWriter { spool, fill, .. } = self;
        spool.failed(SpoolFailure(error.clone()));
        fill.0.state.send_replace(FillState::Failed(error));
    }

    /// The fill this writer feeds.
    pub(crate) fn fill(&self) -> &Arc<ZipFill> {
        &self.fill.0
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        if matches!(&*self.0.state.borrow(), FillState::Running { .. }) {
            self.0
                .state
                .send_replace(FillState::Failed(Arc::new(abandoned())));
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::TryStreamExt;

    use super::*;

    #[tokio::test]
    async fn readers_follow_and_get_the_tail_only_when_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (fill, mut writer) = ZipFill::create(dir.path()).unwrap();
        let early = fill.reader();
        writer.write(b"abc").await.unwrap();
        let mut follow = fill.reader();
        // Two of three bytes are out; the third waits for more or for verification.
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"ab");
        writer.write(b"def").await.unwrap();
        let (size, sha) = writer.complete().await.unwrap();
        // Everything but the last byte is out before verification…
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"cde");
        let tail = tokio::spawn(async move { follow.try_next().await.unwrap().unwrap() });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // …and nothing can wake the reader until the zip is verified.
        assert!(
            !tail.is_finished(),
            "the last byte went out before verification"
        );
        writer.verified(size, sha, "h1:x".into());
        assert_eq!(&tail.await.unwrap()[..], b"f");
        let all: Vec<Bytes> = early.try_collect().await.unwrap();
        assert_eq!(all.concat(), b"abcdef");
        assert_eq!(fill.finished().await.unwrap().0, 6);
        // A reader that starts after the end reads everything from the spool file.
        let late: Vec<Bytes> = fill.reader().try_collect().await.unwrap();
        assert_eq!(late.concat(), b"abcdef");
    }

    #[tokio::test]
    async fn failure_ends_readers_with_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (fill, mut writer) = ZipFill::create(dir.path()).unwrap();
        writer.write(b"abcdef").await.unwrap();
        let reader = fill.reader();
        writer.failed(Arc::new(RegistryError::NotFound("x".into())));
        let got: Result<Vec<Bytes>, io::Error> = reader.try_collect().await;
        assert!(got.unwrap_err().to_string().contains("x: not found"));
        assert!(fill.finished().await.is_err());
    }

    #[tokio::test]
    async fn answers_start_once_size_and_h1_are_announced() {
        let dir = tempfile::tempdir().unwrap();
        let (fill, mut writer) = ZipFill::create(dir.path()).unwrap();
        let started = {
            let fill = fill.clone();
            tokio::spawn(async move { fill.started().await })
        };
        writer.write(b"abc").await.unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!started.is_finished(), "started before the announcement");
        let announced = Announced {
            size: 6,
            h1: "h1:x".into(),
        };
        writer.announce(announced.clone());
        assert_eq!(
            started.await.unwrap().unwrap(),
            Started::Streaming(announced.clone())
        );
        // A range from the middle follows the download, holding back the zip's last byte.
        let mut tail = fill.range_reader(2..6);
        writer.write(b"def").await.unwrap();
        assert_eq!(&tail.try_next().await.unwrap().unwrap()[..], b"cde");
        let (size, sha) = writer.complete().await.unwrap();
        // The announcement stays while the download runs.
        assert_eq!(fill.started().await.unwrap(), Started::Streaming(announced));
        writer.verified(size, sha, "h1:x".into());
        let rest: Vec<Bytes> = tail.try_collect().await.unwrap();
        assert_eq!(rest.concat(), b"f");
        assert_eq!(fill.started().await.unwrap(), Started::Verified);
        let inner: Vec<Bytes> = fill.range_reader(1..3).try_collect().await.unwrap();
        assert_eq!(inner.concat(), b"bc");
    }

    #[tokio::test]
    async fn failed_readers_carry_the_registry_error() {
        let dir = tempfile::tempdir().unwrap();
        let (fill, mut writer) = ZipFill::create(dir.path()).unwrap();
        writer.write(b"abcdef").await.unwrap();
        let reader = fill.reader();
        writer.failed(Arc::new(RegistryError::Integrity("tampered".into())));
        let e = reader.try_collect::<Vec<Bytes>>().await.unwrap_err();
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<RegistryError>())
            .unwrap();
        assert_eq!(
            inner.kind(),
            strata_core::protocol::ErrorKind::IntegrityViolation
        );
    }

    #[tokio::test]
    async fn a_dropped_writer_fails_readers() {
        let dir = tempfile::tempdir().unwrap();
        let (fill, writer) = ZipFill::create(dir.path()).unwrap();
        drop(writer);
        let got: Result<Vec<Bytes>, io::Error> = fill.reader().try_collect().await;
        assert!(got.is_err());
    }
}
