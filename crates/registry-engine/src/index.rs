//! The per-module version index: the one object that says which versions of a module exist in a
//! repository, with their hashes, blobs and state. `list` and `@latest` read it; nothing on a
//! request path lists the bucket.
//!
//! Updates are compare-and-swap writes ([`ObjectStore::put_if_match`] /
//! [`ObjectStore::put_if_absent`]) in a retry loop, so concurrent publishers of one module cannot
//! lose each other's versions. A version becomes visible only when its entry is written, after
//! its blobs: a crash at any point leaves the whole version or none of it.
//!
//! Entries are never removed: a deleted version keeps its hashes as a tombstone, so the version
//! can never come back with different bytes.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::semver;
use strata_core::version::Version;

use crate::keys::{Digest, RepoName, index_key};
use crate::storage::{ETag, ObjectStore, StorageError, body_from_bytes, read_body};

/// Current index document schema.
const SCHEMA: u32 = 1;
/// Largest index document read (about 100k versions).
const MAX_INDEX_BYTES: usize = 64 << 20;
/// Compare-and-swap attempts before giving up with a conflict.
const MAX_ATTEMPTS: u32 = 64;

/// A stored blob: where it is (by digest) and what it hashes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// SHA-256 of the bytes (names the blob).
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
    /// The go.sum `h1:` hash (of the zip's content, or of the go.mod). Absent for `.info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h1: Option<String>,
}

/// Whether a version can be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VersionState {
    /// Served.
    Available,
    /// Deleted at the given time (RFC 3339); kept as a tombstone.
    Deleted {
        /// When it was deleted.
        deleted_at: String,
    },
    /// Its stored bytes failed a scrub (they no longer hash to what was recorded) and were
    /// moved to quarantine; not served. Publishing the version again with identical content
    /// (the recorded hashes) restores it.
    Quarantined {
        /// When it was quarantined.
        quarantined_at: String,
        /// What the scrubber found.
        reason: String,
    },
}

/// How a version came to be in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Published through the publish API (local repositories).
    Published,
    /// Cached from an upstream and verified (remote repositories).
    Cached,
}

/// One version of the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEntry {
    /// The canonical version.
    pub version: String,
    /// The module zip. Always present in local repositories; a remote repository may have cached
    /// only the go.mod of a version (the go command fetches go.mod files of the whole build
    /// graph but zips only of the modules it builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<BlobRef>,
    /// The go.mod served as `.mod`.
    #[serde(rename = "mod")]
    pub go_mod: BlobRef,
    /// The upstream's `.info`, when it was kept verbatim (remote repositories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<BlobRef>,
    /// The version's time for `.info` (publish time for local repositories), RFC 3339; empty
    /// when unknown (a remote cache entry whose `.info` was never asked for).
    #[serde(default)]
    pub time: String,
    /// Whether `go_mod` is the synthesized `module <path>` line (the version has no go.mod of
    /// its own), which `@latest` needs for the `+incompatible` rule.
    #[serde(default)]
    pub synthesized_mod: bool,
    /// Published or cached.
    pub provenance: Provenance,
    /// Available or deleted.
    #[serde(flatten)]
    pub state: VersionState,
}

impl VersionEntry {
    /// Whether the version is served.
    pub fn is_available(&self) -> bool {
        self.state == VersionState::Available
    }
}

/// The index document of one module in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionIndex {
    /// Document schema, for future migrations.
    pub schema: u32,
    /// The module path.
    pub module: String,
    /// Every version ever stored, sorted by semver.
    pub versions: Vec<VersionEntry>,
}

impl VersionIndex {
    /// An empty index for `module`.
    pub fn new(module: &ModulePath) -> Self {
        Self {
            schema: SCHEMA,
            module: module.to_string(),
            versions: Vec::new(),
        }
    }

    /// The entry of `version`, deleted or not.
    pub fn entry(&self, version: &Version) -> Option<&VersionEntry> {
        self.versions.iter().find(|e| e.version == version.as_str())
    }

    /// Mutable access to the entry of `version`.
    pub fn entry_mut(&mut self, version: &Version) -> Option<&mut VersionEntry> {
        self.versions
            .iter_mut()
            .find(|e| e.version == version.as_str())
    }

    /// Adds or replaces the entry of its version, keeping the list sorted.
    pub fn upsert(&mut self, entry: VersionEntry) {
        self.versions.retain(|e| e.version != entry.version);
        self.versions.push(entry);
        self.versions.sort_by(|a, b| {
            semver::compare(&a.version, &b.version).then_with(|| a.version.cmp(&b.version))
        });
    }

    /// Available versions, in semver order.
    pub fn available(&self) -> impl Iterator<Item = &VersionEntry> {
        self.versions.iter().filter(|e| e.is_available())
    }
}

/// An index read from storage, with the etag its update must match.
#[derive(Debug, Clone)]
pub struct LoadedIndex {
    /// The document.
    pub index: VersionIndex,
    /// Its etag; `None` when the module has no index yet.
    pub etag: Option<ETag>,
}

/// Failures of index reads and updates.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The stored document is unreadable.
    #[error("version index of {module} in {repo} is corrupt: {reason}")]
    Corrupt {
        /// Repository.
        repo: RepoName,
        /// Module.
        module: String,
        /// What is wrong.
        reason: String,
    },
    /// Too many concurrent writers: the compare-and-swap kept losing.
    #[error("version index of {module} in {repo} is changing too fast; try again")]
    Contended {
        /// Repository.
        repo: RepoName,
        /// Module.
        module: String,
    },
}

/// Reads and updates version indexes in one repository's store.
#[derive(Debug, Clone)]
pub struct IndexStore {
    repo: RepoName,
    store: Arc<dyn ObjectStore>,
}

impl IndexStore {
    /// Indexes of `repo` in `store`.
    pub fn new(repo: RepoName, store: Arc<dyn ObjectStore>) -> Self {
        Self { repo, store }
    }

    /// Reads the index of `module` (an empty one if the module has none).
    pub async fn load(&self, module: &ModulePath) -> Result<LoadedIndex, IndexError> {
        let key = index_key(&self.repo, module)?;
        let object = match self.store.get(&key).await {
            Ok(object) => object,
            Err(e) if e.is_not_found() => {
                return Ok(LoadedIndex {
                    index: VersionIndex::new(module),
                    etag: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let etag = object.meta.etag.clone();
        let bytes = read_body(object.body, MAX_INDEX_BYTES)
            .await
            .map_err(|e| self.corrupt(module, e.to_string()))?;
        let index: VersionIndex =
            serde_json::from_slice(&bytes).map_err(|e| self.corrupt(module, e.to_string()))?;
        if index.schema != SCHEMA {
            return Err(self.corrupt(module, format!("unknown schema {}", index.schema)));
        }
        if index.module != module.as_str() {
            return Err(self.corrupt(module, format!("document is for module {:?}", index.module)));
        }
        Ok(LoadedIndex {
            index,
            etag: Some(etag),
        })
    }

    /// Applies `change` to the current index and writes it back with compare-and-swap, retrying
    /// on concurrent updates. `change` sees the freshest document on each attempt and decides:
    /// `Ok(Some(r))` writes and returns `r`, `Ok(None)` returns without writing (nothing to do),
    /// `Err(e)` aborts with `e`.
    pub async fn update<R, E>(
        &self,
        module: &ModulePath,
        mut change: impl FnMut(&mut VersionIndex) -> Result<Option<R>, E>,
    ) -> Result<Option<R>, E>
    where
        E: From<IndexError>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let LoadedIndex { mut index, etag } = self.load(module).await?;
            let Some(result) = change(&mut index)? else {
                return Ok(None);
            };
            let body =
                serde_json::to_vec(&index).map_err(|e| self.corrupt(module, e.to_string()))?;
            let key = index_key(&self.repo, module).map_err(IndexError::from)?;
            let written = match &etag {
                Some(etag) => {
                    self.store
                        .put_if_match(&key, etag, body_from_bytes(body))
                        .await
                }
                None => self.store.put_if_absent(&key, body_from_bytes(body)).await,
            };
            match written {
                Ok(_) => return Ok(Some(result)),
                Err(e) if e.is_conflict() => {
                    // Someone else wrote in between: back off a little (more with each loss, with
                    // jitter from the clock) and re-apply the change to their version.
                    let jitter = u64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.subsec_nanos())
                            .unwrap_or(0)
                            % 1000,
                    );
                    let wait = Duration::from_micros(u64::from(attempt.min(10)) * 500 + jitter);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(IndexError::from(e).into()),
            }
        }
        Err(IndexError::Contended {
            repo: self.repo.clone(),
            module: module.to_string(),
        }
        .into())
    }

    fn corrupt(&self, module: &ModulePath, reason: String) -> IndexError {
        IndexError::Corrupt {
            repo: self.repo.clone(),
            module: module.to_string(),
            reason,
        }
    }
}
