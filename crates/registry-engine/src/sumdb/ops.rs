//! [`StoreOps`]: the I/O of one checksum database's verifier. Remote reads go to the database
//! through [`Upstream`]; the latest signed tree head lives in the object store, replaced by
//! compare-and-swap so registries sharing a store share one timeline and a restart keeps it;
//! authenticated tiles and verified lookups are cached in memory and in the store (both are
//! immutable, so the store copy saves database round trips after a restart).
//!
//! The core client's [`ClientOps`] is synchronous: its methods run on a blocking thread (the
//! client is only ever driven from `spawn_blocking`) and wait for the async work with
//! `Handle::block_on`. The async methods here serve the proxy directly.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::sumdb::{ClientOps, OpsError, WriteConfigError};
use tokio::runtime::Handle;

use super::cache::MemoryCache;
use crate::storage::{ETag, ObjectKey, ObjectStore, StorageError, body_from_bytes, read_body};
use crate::upstream::{Upstream, UpstreamError};

/// Largest database response or stored file read (a height-8 tile is 8 KiB, a lookup < 4 KiB).
pub(super) const MAX_FILE_BYTES: usize = 4 << 20;

/// Memory for cached tiles and lookups of one database.
const MEMORY_CACHE_BYTES: usize = 32 << 20;

/// The verifier's I/O for database `name`.
#[derive(Debug)]
pub(super) struct StoreOps {
    name: String,
    /// `sumdb/<escaped name>`: every object of this database lives below it.
    key_prefix: String,
    upstream: Upstream,
    store: Arc<dyn ObjectStore>,
    memory: MemoryCache,
}

impl StoreOps {
    /// Ops for database `name`; fails if the name cannot be part of a storage key.
    pub(super) fn new(
        name: &str,
        upstream: Upstream,
        store: Arc<dyn ObjectStore>,
    ) -> Result<Self, String> {
        let ops = Self {
            name: name.to_owned(),
            key_prefix: format!("sumdb/{}", escape_key_segment(name)),
            upstream,
            store,
            memory: MemoryCache::new(MEMORY_CACHE_BYTES),
        };
        ops.object_key(&ops.file("latest")).ok_or_else(|| {
            format!("sumdb name {name:?} cannot be stored (use a host name such as sum.golang.org)")
        })?;
        Ok(ops)
    }

    /// The database name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The client's file name for `rest` (`latest`, `tile/…`, `lookup/…`): `<name>/<rest>`.
    pub(super) fn file(&self, rest: &str) -> String {
        format!("{}/{rest}", self.name)
    }

    /// The one place a client file becomes a storage key: `<name>/<rest>` →
    /// `sumdb/<escaped name>/<rest>`. `None` for a file outside this database or a `rest`
    /// that is no valid key (too long): such files are only cached in memory.
    pub(super) fn object_key(&self, file: &str) -> Option<ObjectKey> {
        let rest = file.strip_prefix(&self.name)?.strip_prefix('/')?;
        ObjectKey::new(format!("{}/{rest}", self.key_prefix)).ok()
    }

    /// GETs `path` (`/latest`, `/lookup/…`, `/tile/…`) from the database.
    pub(super) async fn fetch(&self, path: &str, limit: usize) -> Result<Bytes, UpstreamError> {
        self.upstream.get_bytes(path, limit).await
    }

    /// A cached file: memory, then the store (remembered in memory). Storage failures count as
    /// misses: the file is fetched again and verified again.
    pub(super) async fn cached(&self, file: &str) -> Option<Bytes> {
        if let Some(data) = self.memory.get(file) {
            return Some(data);
        }
        let key = self.object_key(file)?;
        match self.read_stored(&key).await {
            Ok(Some((data, _))) => {
                self.memory.insert(file, data.clone());
                Some(data)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(db = %self.name, %key, error = %e, "reading the sumdb cache failed");
                None
            }
        }
    }

    /// Caches an authenticated tile or a verified lookup, in memory and (once) in the store.
    pub(super) async fn cache(&self, file: &str, data: Bytes) {
        if self.memory.contains(file) {
            return;
        }
        self.memory.insert(file, data.clone());
        let Some(key) = self.object_key(file) else {
            return;
        };
        match self.store.put_if_absent(&key, body_from_bytes(data)).await {
            Ok(_) => {}
            // Same content by construction: the file is immutable.
            Err(e) if e.is_conflict() => {}
            Err(e) => {
                tracing::warn!(db = %self.name, %key, error = %e, "writing the sumdb cache failed");
            }
        }
    }

    /// The stored object and its etag, `None` if absent.
    async fn read_stored(&self, key: &ObjectKey) -> Result<Option<(Bytes, ETag)>, StorageError> {
        let object = match self.store.get(key).await {
            Ok(object) => object,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = object.meta.etag.clone();
        let data = read_body(object.body, MAX_FILE_BYTES)
            .await
            .map_err(|source| StorageError::Body {
                op: crate::storage::Operation::Get,
                key: key.to_string(),
                source,
            })?;
        Ok(Some((data, etag)))
    }

    /// The persisted configuration file (the latest signed tree head), empty if none.
    async fn read_config_async(&self, file: &str) -> Result<Vec<u8>, OpsError> {
        let key = self.config_key(file)?;
        Ok(self
            .read_stored(&key)
            .await?
            .map(|(data, _)| data.to_vec())
            .unwrap_or_default())
    }

    /// Replaces the configuration file's content `old` by `new` if it still is `old`.
    async fn write_config_async(
        &self,
        file: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<(), WriteConfigError> {
        let key = self.config_key(file).map_err(WriteConfigError::Failed)?;
        let failed = |e: StorageError| WriteConfigError::Failed(Box::new(e));
        let current = self.read_stored(&key).await.map_err(failed)?;
        let body = body_from_bytes(Bytes::copy_from_slice(new));
        let written = match current {
            None if old.is_empty() => self.store.put_if_absent(&key, body).await,
            Some((data, etag)) if data.as_ref() == old => {
                self.store.put_if_match(&key, &etag, body).await
            }
            _ => return Err(WriteConfigError::Conflict),
        };
        match written {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Err(WriteConfigError::Conflict),
            Err(e) => Err(failed(e)),
        }
    }

    fn config_key(&self, file: &str) -> Result<ObjectKey, OpsError> {
        self.object_key(file)
            .ok_or_else(|| format!("sumdb config file {file:?} has no storage key").into())
    }
}

impl ClientOps for StoreOps {
    fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError> {
        // `?` boxes the UpstreamError itself, so `error::from_ops` can downcast it.
        Ok(block_on(self.fetch(path, MAX_FILE_BYTES))??.to_vec())
    }

    fn read_config(&self, file: &str) -> Result<Vec<u8>, OpsError> {
        block_on(self.read_config_async(file))?
    }

    fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError> {
        block_on(self.write_config_async(file, old, new)).map_err(WriteConfigError::Failed)?
    }

    fn read_cache(&self, file: &str) -> Option<Vec<u8>> {
        block_on(self.cached(file)).ok()?.map(|data| data.to_vec())
    }

    fn write_cache(&self, file: &str, data: &[u8]) {
        let _ = block_on(self.cache(file, Bytes::copy_from_slice(data)));
    }

    fn security_error(&self, report: &str) {
        tracing::error!(db = %self.name, "checksum database fork detected:\n{report}");
    }
}

/// Runs `future` to completion from the verifier's blocking thread.
fn block_on<F: Future>(future: F) -> Result<F::Output, OpsError> {
    let handle = Handle::try_current()
        .map_err(|e| format!("the checksum-database verifier needs a Tokio runtime: {e}"))?;
    Ok(handle.block_on(future))
}

/// `name` as storage-key segments (`/` keeps separating them).
fn escape_key_segment(name: &str) -> String {
    crate::keys::escape_db_name(name, true)
}

#[cfg(test)]
mod tests {
    use super::escape_key_segment;

    #[test]
    fn escapes_names_into_keys() {
        assert_eq!(escape_key_segment("sum.golang.org"), "sum.golang.org");
        assert_eq!(escape_key_segment("h:8443/db=x"), "h=3A8443/db=3Dx");
    }
}
