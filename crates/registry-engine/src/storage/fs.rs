//! The filesystem backend, the embedded default: objects as files under a root directory.
//!
//! Layout under the root:
//! - `objects/<key>`: one file per object, a small header carrying the content's SHA-256 (the
//!   etag) followed by the content ([`format`]);
//! - `tmp/`: writes in progress, published into `objects/` by `rename`/`link`;
//! - `locks/00`…`locks/ff`: `flock` stripes serialising mutations of a key across tasks and
//!   processes ([`commit`] explains the atomicity and compare-and-swap argument).
//!
//! Reads take no lock and run on tokio's async file API; the short locked commits run on the
//! blocking pool. A key cannot be both an object and a prefix of another key (`a/b` and `a/b/c`)
//! because prefixes are directories; key schemes should put objects under `@`-segments, which no
//! Go module path element contains.

mod commit;
mod format;
mod list;

use std::{
    io::{self, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use futures::{StreamExt, stream::BoxStream};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use self::commit::{CommitError, Layout};
use crate::storage::{
    ByteRange, ByteStream, GetObject, KeyPrefix, ObjectKey, ObjectMeta, ObjectStore, Operation,
    PutCondition, StorageError, Stored, body_from_reader,
};

/// Configuration of the fs backend (`storage = { kind = "fs", root = "./data" }`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// The directory holding the store; created if missing. Must be on a local filesystem
    /// (`flock` must work across processes).
    pub root: PathBuf,
}

/// Objects as files under a root directory; see the module documentation.
#[derive(Clone, Debug)]
pub struct FsStore {
    layout: Arc<Layout>,
}

impl FsStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let layout = Layout::new(root.as_ref());
        layout.create().map_err(|e| {
            StorageError::io(
                Operation::Open,
                root.as_ref().display(),
                "create store directories",
                e,
            )
        })?;
        Ok(Self {
            layout: Arc::new(layout),
        })
    }

    /// Removes temp files of writes that have not progressed for `older_than`: leftovers of a
    /// crashed process. Safe while the store is in use as long as `older_than` exceeds the
    /// longest pause of a live upload. Returns how many were removed.
    pub async fn remove_stale_temp_files(
        &self,
        older_than: Duration,
    ) -> Result<usize, StorageError> {
        let tmp = self.layout.tmp.clone();
        blocking(Operation::Open, "tmp", "sweep temp files", move || {
            let now = SystemTime::now();
            let mut removed = 0;
            for entry in std::fs::read_dir(&tmp)? {
                let entry = entry?;
                let modified = entry.metadata()?.modified()?;
                if now
                    .duration_since(modified)
                    .is_ok_and(|age| age >= older_than)
                {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    /// Opens the object file and reads its metadata; the returned file is positioned at the
    /// start of the content.
    async fn open_object(
        &self,
        op: Operation,
        key: &ObjectKey,
    ) -> Result<(tokio::fs::File, ObjectMeta), StorageError> {
        let io_err = |context, e| StorageError::io(op, key, context, e);
        let path = self.layout.object_path(key);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if commit::is_absent(&e) => return Err(StorageError::not_found(op, key)),
            Err(e) => return Err(io_err("open object file", e)),
        };
        let metadata = file
            .metadata()
            .await
            .map_err(|e| io_err("stat object file", e))?;
        if !metadata.is_file() {
            return Err(StorageError::not_found(op, key));
        }
        let mut header = [0u8; format::HEADER_LEN as usize];
        file.read_exact(&mut header)
            .await
            .map_err(|e| io_err("read object header", e))?;
        let etag = format::decode_header(&header).map_err(|e| io_err("read object header", e))?;
        let meta = ObjectMeta {
            key: key.clone(),
            size: metadata.len().saturating_sub(format::HEADER_LEN),
            etag,
            last_modified: metadata.modified().map_err(|e| io_err("read mtime", e))?,
        };
        Ok((file, meta))
    }
}

#[async_trait]
impl ObjectStore for FsStore {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        Ok(self.open_object(Operation::Head, key).await?.1)
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetObject, StorageError> {
        let (file, meta) = self.open_object(Operation::Get, key).await?;
        let range = 0..meta.size;
        Ok(GetObject {
            body: body_from_reader(file.take(meta.size)),
            meta,
            range,
        })
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<GetObject, StorageError> {
        let op = Operation::GetRange;
        let (mut file, meta) = self.open_object(op, key).await?;
        let Some(range) = range.resolve(meta.size) else {
            return Err(StorageError::RangeNotSatisfiable {
                op,
                key: key.to_string(),
                size: meta.size,
            });
        };
        file.seek(SeekFrom::Start(format::HEADER_LEN + range.start))
            .await
            .map_err(|e| StorageError::io(op, key, "seek", e))?;
        let body = body_from_reader(file.take(range.end - range.start));
        Ok(GetObject { meta, range, body })
    }

    async fn put_with(
        &self,
        key: &ObjectKey,
        mut body: ByteStream,
        condition: PutCondition,
    ) -> Result<Stored, StorageError> {
        let op = Operation::Put;
        let io_err = |context, e| StorageError::io(op, key, context, e);
        // A create-only write to a taken key fails without writing and fsyncing a temp file
        // first (the `link` in the commit still decides races; this only saves the I/O).
        if matches!(condition, PutCondition::IfAbsent)
            && tokio::fs::metadata(self.layout.object_path(key))
                .await
                .is_ok_and(|m| m.is_file())
        {
            return Err(StorageError::conflict(op, key));
        }
        let layout = self.layout.clone();
        let (file, temp) =
            blocking(op, key, "create temp file", move || layout.temp_file()).await?;
        // From here until the commit, dropping `temp` (on error or cancellation) deletes the
        // temp file: a failed write leaves nothing behind.
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = format::ContentHasher::default();
        file.write_all(&format::placeholder_header())
            .await
            .map_err(|e| io_err("write temp file", e))?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::body(op, key, e))?;
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| io_err("write temp file", e))?;
        }
        let size = hasher.len();
        let etag = hasher.finish();
        file.flush()
            .await
            .map_err(|e| io_err("write temp file", e))?;
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(|e| io_err("seek temp file", e))?;
        file.write_all(&format::encode_header(&etag))
            .await
            .map_err(|e| io_err("write header", e))?;
        file.flush().await.map_err(|e| io_err("write header", e))?;
        // The content must be durable before the rename makes it visible.
        file.sync_all()
            .await
            .map_err(|e| io_err("fsync temp file", e))?;
        drop(file);

        let layout = self.layout.clone();
        let owned_key = key.clone();
        let committed =
            tokio::task::spawn_blocking(move || layout.commit(&owned_key, temp, &condition)).await;
        settle(op, key, committed)?;
        Ok(Stored { etag, size })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let layout = self.layout.clone();
        let owned_key = key.clone();
        let removed = tokio::task::spawn_blocking(move || layout.remove(&owned_key)).await;
        settle(Operation::Delete, key, removed)
    }

    fn list(&self, prefix: &KeyPrefix) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        list::list(self.layout.clone(), prefix.clone())
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<Stored, StorageError> {
        let layout = self.layout.clone();
        let (owned_from, owned_to) = (from.clone(), to.clone());
        let copied = tokio::task::spawn_blocking(move || layout.copy(&owned_from, &owned_to)).await;
        match copied {
            Ok(Err(CommitError::SourceMissing)) => {
                Err(StorageError::not_found(Operation::Copy, from))
            }
            other => settle(Operation::Copy, to, other).map(|(etag, size)| Stored { etag, size }),
        }
    }
}

/// Turns the outcome of a blocking commit into the operation's result.
fn settle<T>(
    op: Operation,
    key: &ObjectKey,
    outcome: Result<Result<T, CommitError>, tokio::task::JoinError>,
) -> Result<T, StorageError> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(CommitError::Conflict)) => Err(StorageError::conflict(op, key)),
        Ok(Err(CommitError::SourceMissing)) => Err(StorageError::not_found(op, key)),
        Ok(Err(CommitError::Io(context, e))) => Err(StorageError::io(op, key, context, e)),
        Err(join) => Err(StorageError::io(
            op,
            key,
            "blocking task failed",
            io::Error::other(join),
        )),
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    op: Operation,
    key: impl std::fmt::Display,
    context: &'static str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| StorageError::io(op, key, context, e)),
        Err(join) => Err(StorageError::io(op, key, context, io::Error::other(join))),
    }
}
