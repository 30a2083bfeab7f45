//! When cached versions were last read, for retention ("drop what nobody used for N days").
//!
//! Reads are noted in memory (a map insert, nothing on the request path touches storage) at day
//! granularity and flushed periodically into one small document per module,
//! `repos/<repo>/access/<module>/@access.json` (`{"versions": {"v1.2.3": <unix day>}}`), merged
//! with compare-and-swap so that several registry replicas keep the latest day of each. A
//! version read again on a day already recorded costs nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::version::Version;

use super::{Inner, RemoteRepository};
use crate::error::RegistryError;
use crate::keys::RepoName;
use crate::storage::{ObjectKey, StorageError, body_from_bytes, read_body};

/// Days already written, remembered to skip rewrites; cleared when it grows past this.
const MAX_REMEMBERED: usize = 1 << 20;
/// Largest access document read.
const MAX_DOC: usize = 16 << 20;
/// Compare-and-swap attempts per module and flush.
const ATTEMPTS: u32 = 16;

/// The access document of one module.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct AccessDoc {
    /// Version → last day (days since the Unix epoch) it was read.
    pub(crate) versions: BTreeMap<String, u64>,
}

/// Reads noted since the last flush.
#[derive(Debug, Default)]
pub(crate) struct AccessLog {
    pending: Mutex<HashMap<(ModulePath, Version), u64>>,
    written: Mutex<HashMap<(ModulePath, Version), u64>>,
}

impl AccessLog {
    /// Notes a read of `module@version` today.
    pub(crate) fn touch(&self, module: &ModulePath, version: &Version) {
        let day = today();
        let key = (module.clone(), version.clone());
        if lock(&self.written).get(&key) == Some(&day) {
            return;
        }
        lock(&self.pending).insert(key, day);
    }

    fn take(&self) -> HashMap<(ModulePath, Version), u64> {
        std::mem::take(&mut *lock(&self.pending))
    }

    fn written(&self, done: impl IntoIterator<Item = ((ModulePath, Version), u64)>) {
        let mut written = lock(&self.written);
        if written.len() > MAX_REMEMBERED {
            written.clear();
        }
        written.extend(done);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Days since the Unix epoch.
pub(crate) fn today() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

/// The key of a module's access document.
fn access_key(repo: &RepoName, module: &ModulePath) -> Result<ObjectKey, StorageError> {
    ObjectKey::new(format!(
        "repos/{repo}/access/{}/@access.json",
        module.escaped()
    ))
}

impl RemoteRepository {
    /// Writes the reads noted since the last flush (one document update per module). Reads
    /// that could not be written are kept for the next flush. Returns the modules written.
    pub async fn flush_access(&self) -> Result<usize, RegistryError> {
        let inner = &self.inner;
        let pending = inner.access.take();
        if pending.is_empty() {
            return Ok(0);
        }
        let mut by_module: HashMap<ModulePath, Vec<(Version, u64)>> = HashMap::new();
        for ((module, version), day) in pending {
            by_module.entry(module).or_default().push((version, day));
        }
        let mut written = 0;
        let mut first_error = None;
        for (module, days) in by_module {
            match inner.merge_access(&module, &days).await {
                Ok(()) => {
                    written += 1;
                    inner
                        .access
                        .written(days.into_iter().map(|(v, d)| ((module.clone(), v), d)));
                }
                Err(e) => {
                    // Keep them for the next flush.
                    for (v, d) in days {
                        lock(&inner.access.pending)
                            .entry((module.clone(), v))
                            .and_modify(|x| *x = (*x).max(d))
                            .or_insert(d);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Version → last day read (days since the Unix epoch), as flushed so far.
    pub async fn last_access(
        &self,
        module: &ModulePath,
    ) -> Result<BTreeMap<String, u64>, RegistryError> {
        let key = access_key(&self.inner.name, module)?;
        Ok(self.inner.read_access(&key).await?.0.versions)
    }

    /// Drops `version` from the module's access document (it was forgotten).
    pub(super) async fn forget_access(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<(), RegistryError> {
        let inner = &self.inner;
        lock(&inner.access.pending).remove(&(module.clone(), version.clone()));
        lock(&inner.access.written).remove(&(module.clone(), version.clone()));
        let key = access_key(&inner.name, module)?;
        for _ in 0..ATTEMPTS {
            let (mut doc, etag) = inner.read_access(&key).await?;
            let Some(etag) = etag else { return Ok(()) };
            if doc.versions.remove(version.as_str()).is_none() {
                return Ok(());
            }
            let body =
                serde_json::to_vec(&doc).map_err(|e| RegistryError::Internal(e.to_string()))?;
            match inner
                .store
                .put_if_match(&key, &etag, body_from_bytes(body))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Internal(format!(
            "access record of {module} is changing too fast"
        )))
    }
}

impl Inner {
    async fn read_access(
        &self,
        key: &ObjectKey,
    ) -> Result<(AccessDoc, Option<crate::storage::ETag>), RegistryError> {
        let object = match self.store.get(key).await {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok((AccessDoc::default(), None)),
            Err(e) => return Err(e.into()),
        };
        let etag = object.meta.etag.clone();
        let bytes = read_body(object.body, MAX_DOC)
            .await
            .map_err(|e| RegistryError::io(format!("reading {key}"), e))?;
        // An unreadable document is replaced: access times are advisory.
        let doc = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok((doc, Some(etag)))
    }

    async fn merge_access(
        &self,
        module: &ModulePath,
        days: &[(Version, u64)],
    ) -> Result<(), RegistryError> {
        let key = access_key(&self.name, module)?;
        for _ in 0..ATTEMPTS {
            let (mut doc, etag) = self.read_access(&key).await?;
            let before = doc.clone();
            for (version, day) in days {
                let slot = doc.versions.entry(version.to_string()).or_insert(0);
                *slot = (*slot).max(*day);
            }
            if doc == before && etag.is_some() {
                return Ok(());
            }
            let body =
                serde_json::to_vec(&doc).map_err(|e| RegistryError::Internal(e.to_string()))?;
            let written = match &etag {
                Some(etag) => {
                    self.store
                        .put_if_match(&key, etag, body_from_bytes(body))
                        .await
                }
                None => self.store.put_if_absent(&key, body_from_bytes(body)).await,
            };
            match written {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Internal(format!(
            "access record of {module} is changing too fast"
        )))
    }
}
