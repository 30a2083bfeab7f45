//! What the sync worker does to a remote repository: fetch versions ahead of demand (warm-up,
//! index following, webhooks), and forget cached versions (retention, and before re-fetching
//! one whose stored bytes failed a scrub).
//!
//! Forgetting removes the version's index entry and its blobs. Unlike a deleted local version,
//! a remote cache entry needs no tombstone: whatever is fetched again is verified against the
//! checksum database, so it can only come back with the same bytes.

use std::time::Duration;

use futures::StreamExt;
use strata_core::path::ModulePath;
use strata_core::version::Version;

use super::RemoteRepository;
use crate::error::RegistryError;
use crate::index::VersionEntry;
use crate::keys::version_blob_prefix;

/// Longest wait for a verified zip to reach storage after its download finished.
const STORE_WAIT: Duration = Duration::from_secs(120);

/// What a warm-up of one version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// Everything asked for was stored already: no upstream request.
    AlreadyStored,
    /// Fetched from the upstream, verified and stored now.
    Fetched,
    /// A local repository holds it (through a virtual repository): nothing to fetch.
    Local,
}

impl RemoteRepository {
    /// Makes sure `module@version` is stored: its `.mod`, and unless `mod_only` its `.info` and
    /// `.zip` too (what `go mod download` asks for), each verified against the checksum
    /// database before it is stored. Returns once everything is in storage.
    pub async fn warm(
        &self,
        module: &ModulePath,
        version: &Version,
        mod_only: bool,
    ) -> Result<Warmed, RegistryError> {
        let inner = &self.inner;
        let complete = |e: &VersionEntry| mod_only || (e.info.is_some() && e.zip.is_some());
        if let Some(entry) = inner.cached_entry(module, version).await?
            && complete(&entry)
        {
            return Ok(Warmed::AlreadyStored);
        }
        if mod_only {
            inner.clone().ensure_entry(module, version).await?;
            return Ok(Warmed::Fetched);
        }
        inner.clone().ensure_info(module, version).await?;
        let artifact = self.zip(module, version, None).await?;
        let mut body = artifact.object.body;
        while let Some(chunk) = body.next().await {
            chunk.map_err(|e| RegistryError::io("reading the fetched zip", e))?;
        }
        // The download task stores the verified zip after streaming it; wait for that, so that
        // "warmed" means "in storage" (a later request makes no upstream call).
        let deadline = tokio::time::Instant::now() + STORE_WAIT;
        loop {
            if let Some(entry) = inner.cached_entry(module, version).await?
                && entry.zip.is_some()
            {
                return Ok(Warmed::Fetched);
            }
            if !inner.fill_in_flight(module, version) || tokio::time::Instant::now() > deadline {
                return Err(RegistryError::Internal(format!(
                    "{module}@{version}: the verified zip was served but could not be stored"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Forgets a cached version: removes its index entry, then its blobs. Returns the entry
    /// that was removed (`None` if it was not cached).
    pub async fn forget(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<VersionEntry>, RegistryError> {
        let inner = &self.inner;
        let removed = inner
            .index
            .update(module, |index| {
                let Some(position) = index
                    .versions
                    .iter()
                    .position(|e| e.version == version.as_str())
                else {
                    return Ok::<_, RegistryError>(None);
                };
                Ok(Some(index.versions.remove(position)))
            })
            .await?;
        if removed.is_some() {
            self.forget_access(module, version).await?;
            // Blobs only after the entry: a reader never finds an entry without its bytes.
            let prefix = version_blob_prefix(&inner.name, module, version)?;
            let keys: Vec<_> = inner.store.list(&prefix).collect().await;
            for meta in keys {
                let meta = meta?;
                inner.store.delete(&meta.key).await?;
            }
        }
        Ok(removed)
    }
}

impl super::Inner {
    /// Whether a zip download of `module@version` is running.
    fn fill_in_flight(&self, module: &ModulePath, version: &Version) -> bool {
        self.zips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&(module.clone(), version.clone()))
    }
}
