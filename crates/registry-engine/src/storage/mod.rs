//! Object storage: the [`ObjectStore`] trait every backend implements, and the backends.
//!
//! Two backends: [`fs::FsStore`] (the embedded default, a directory tree) and [`s3::S3Store`]
//! (any S3-compatible store). Both pass the same conformance suite
//! (`tests/storage_conformance.rs`).
//!
//! The contract the rest of the registry builds on:
//! - **Writes are atomic.** A reader sees the old object, the new object or none, never a part.
//!   A write that fails, is cancelled or crashes leaves nothing visible under its key.
//! - **Conditional writes are linearizable per key.** [`ObjectStore::put_if_absent`] and
//!   [`ObjectStore::put_if_match`] either take effect or fail with
//!   [`StorageError::Conflict`]; of N concurrent compare-and-swaps from the same etag exactly one
//!   wins. The per-module version index relies on this instead of a lock service.
//! - **Reads are snapshots.** A body yields the content as of the start of the read even if the
//!   object is replaced or deleted meanwhile.
//! - **Listing is for maintenance.** [`ObjectStore::list`] walks the store; nothing on a request
//!   path may call it (`list`/`@latest` read the version index instead).

mod config;
mod error;
pub mod fs;
mod key;
mod object;
pub mod s3;
mod timed;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use config::{StorageConfig, open_store};
pub use error::{BoxError, Operation, StorageError};
pub use key::{KeyPrefix, MAX_KEY_LEN, MAX_SEGMENT_LEN, ObjectKey};
pub use object::{
    ByteRange, ByteStream, ETag, GetObject, ObjectMeta, PutCondition, Stored, body_from_bytes,
    body_from_reader, read_body,
};
pub use timed::TimedStore;

/// A store of immutable-per-write objects under validated keys. Object-safe: the registry holds
/// an `Arc<dyn ObjectStore>` chosen by configuration.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Metadata of the object, without its content.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StorageError>;

    /// The whole object, streamed.
    async fn get(&self, key: &ObjectKey) -> Result<GetObject, StorageError>;

    /// Part of the object, streamed. [`GetObject::range`] says which bytes the body carries;
    /// a range that selects nothing fails with [`StorageError::RangeNotSatisfiable`].
    async fn get_range(&self, key: &ObjectKey, range: ByteRange)
    -> Result<GetObject, StorageError>;

    /// Writes `body` (of any length, streamed with bounded memory) under `key` if `condition`
    /// holds when the write commits. On any error, including a failing `body` and a lost
    /// condition, nothing is visible under `key` that was not there before.
    async fn put_with(
        &self,
        key: &ObjectKey,
        body: ByteStream,
        condition: PutCondition,
    ) -> Result<Stored, StorageError>;

    /// Removes the object. Removing a missing object succeeds (deletes are idempotent, as in S3).
    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError>;

    /// Every object whose key starts with `prefix`, in no particular order. For maintenance jobs
    /// only (retention, scrubbing): never call it on a request path.
    fn list(&self, prefix: &KeyPrefix) -> BoxStream<'static, Result<ObjectMeta, StorageError>>;

    /// Copies the object at `from` to `to` (replacing `to`), e.g. to quarantine an artifact.
    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<Stored, StorageError>;

    /// Creates or replaces the object: [`ObjectStore::put_with`] with
    /// [`PutCondition::Overwrite`].
    async fn put(&self, key: &ObjectKey, body: ByteStream) -> Result<Stored, StorageError> {
        self.put_with(key, body, PutCondition::Overwrite).await
    }

    /// Creates the object only if the key is free; [`StorageError::Conflict`] if it exists.
    async fn put_if_absent(
        &self,
        key: &ObjectKey,
        body: ByteStream,
    ) -> Result<Stored, StorageError> {
        self.put_with(key, body, PutCondition::IfAbsent).await
    }

    /// Replaces the object only if its etag is still `expected` (compare-and-swap);
    /// [`StorageError::Conflict`] if it changed or was deleted.
    async fn put_if_match(
        &self,
        key: &ObjectKey,
        expected: &ETag,
        body: ByteStream,
    ) -> Result<Stored, StorageError> {
        self.put_with(key, body, PutCondition::IfMatch(expected.clone()))
            .await
    }
}
