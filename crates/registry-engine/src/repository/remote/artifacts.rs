//! `.mod` and `.info` of canonical versions in a remote repository: fetched once, the go.mod
//! verified against the checksum database, stored content-addressed and recorded in the
//! module's version index (provenance `cached`), then served from storage forever.
//!
//! A version's index entry is created by its go.mod (every later artifact hangs off it), so
//! `.info` and `.zip` make sure the go.mod is cached first; the go command asks for it right
//! after anyway.

use std::sync::Arc;

use bytes::Bytes;
use strata_core::dirhash::hash_go_mod;
use strata_core::gomod::GoMod;
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::version::Version;

use super::meta::parse_info;
use super::{FillTiming, Inner, RemoteRepository, coalesced};
use crate::error::RegistryError;
use crate::index::{BlobRef, Provenance, VersionEntry, VersionState};
use crate::keys::{ArtifactKey, Digest};
use crate::repository::{Artifact, InfoDoc};
use crate::storage::{ByteRange, body_from_bytes, read_body};

/// Largest go.mod accepted (Go's limit).
const MAX_GO_MOD: usize = 16 << 20;
/// Largest `.info` accepted.
const MAX_INFO: usize = 1 << 20;

impl RemoteRepository {
    /// `.info` of a canonical version: the upstream's bytes, kept verbatim.
    pub async fn info(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<InfoDoc, RegistryError> {
        let entry = self.inner.clone().ensure_info(module, version).await?;
        let Some(info) = &entry.info else {
            return Err(RegistryError::Internal(format!(
                "{module}@{version}: cached without .info"
            )));
        };
        let bytes = self
            .inner
            .read_blob(module, version, ArtifactKind::Info, info)
            .await?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| RegistryError::Internal(format!("{module}@{version}: .info not UTF-8")))?;
        parse_info(module, &text, Some(version.as_str()))
    }

    /// `.mod` of a canonical version.
    pub async fn go_mod(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Artifact, RegistryError> {
        let entry = self.inner.clone().ensure_entry(module, version).await?;
        self.inner
            .artifact(module, version, ArtifactKind::Mod, &entry.go_mod, None)
            .await
    }
}

impl Inner {
    /// The version's index entry, fetching and verifying its go.mod on a miss.
    pub(super) async fn ensure_entry(
        self: Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<VersionEntry, RegistryError> {
        if let Some(entry) = self.cached_entry(module, version).await? {
            return Ok(entry);
        }
        let path = format!("/{}/@v/{}.mod", module.escaped(), version.escaped());
        if self.config.offline {
            return Err(self.offline(&path));
        }
        if let Some(e) = self.negative(&path) {
            return Err(e);
        }
        let key = (module.clone(), version.clone(), "mod");
        let (m, v, this) = (module.clone(), version.clone(), self.clone());
        coalesced(&self.small, key, async move {
            this.fetch_go_mod(&m, &v, &path).await
        })
        .await
    }

    /// The version's entry with its `.info`, fetching the `.info` on a miss.
    pub(super) async fn ensure_info(
        self: Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<VersionEntry, RegistryError> {
        let entry = self.clone().ensure_entry(module, version).await?;
        if entry.info.is_some() {
            return Ok(entry);
        }
        let path = format!("/{}/@v/{}.info", module.escaped(), version.escaped());
        if self.config.offline {
            return Err(self.offline(&path));
        }
        let key = (module.clone(), version.clone(), "info");
        let (m, v, this) = (module.clone(), version.clone(), self.clone());
        coalesced(&self.small, key, async move {
            this.fetch_info(&m, &v, &path).await
        })
        .await
    }

    pub(super) async fn cached_entry(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<VersionEntry>, RegistryError> {
        let index = self.index.load(module).await?.index;
        Ok(index.entry(version).filter(|e| e.is_available()).cloned())
    }

    async fn fetch_go_mod(
        &self,
        module: &ModulePath,
        version: &Version,
        path: &str,
    ) -> Result<VersionEntry, RegistryError> {
        // Another replica may have cached it since this request looked.
        if let Some(entry) = self.cached_entry(module, version).await? {
            return Ok(entry);
        }
        let timing = FillTiming::start(module, version.as_str());
        // Both at once. The upstream's own answer decides a failure: its failure ends both at
        // once, and a failed checksum lookup waits for it, so a version the upstream does not
        // have is not found whichever of the two answers first.
        let fetch = async {
            self.upstream
                .get_bytes(path, MAX_GO_MOD)
                .await
                .map_err(|e| self.upstream_error(path, e))
        };
        let sums = self.expected_sums(module, version);
        tokio::pin!(fetch, sums);
        let both = tokio::select! {
            go_mod = &mut fetch => match go_mod {
                Ok(go_mod) => sums.await.map(|expected| (expected, go_mod)),
                Err(e) => Err(e),
            },
            expected = &mut sums => match expected {
                Ok(expected) => fetch.await.map(|go_mod| (expected, go_mod)),
                Err(e) => fetch.await.and(Err(e)),
            },
        };
        let (expected, go_mod) = match both {
            Ok(both) => both,
            Err(e) => {
                self.count_error("mod", &e, &timing);
                return Err(e);
            }
        };
        let h1 = hash_go_mod(&go_mod);
        if let Some(sums) = &expected
            && sums.go_mod != h1
        {
            self.count_fetch("mod", "integrity_violation", &timing);
            let detail = format!(
                "{module}@{version}/go.mod from {}: checksum mismatch\n\
                 \tdownloaded: {h1}\n\tchecksum database: {}\n\n\
                 SECURITY ERROR: the upstream served a go.mod that does not match the \
                 checksum database; it was not stored",
                self.upstream.base(),
                sums.go_mod
            );
            return Err(self.integrity_violation(module, version, detail).await);
        }
        // Recorded before it becomes visible; a `no_sum` version is recorded by its first zip.
        if let Some(sums) = &expected {
            self.record(module, version, &sums.zip, &sums.go_mod)
                .await?;
        }
        let digest = sha256(&go_mod);
        let blob = BlobRef {
            sha256: digest.clone(),
            size: go_mod.len() as u64,
            h1: Some(h1),
        };
        let key = self.blob_key(module, version, ArtifactKind::Mod, &digest)?;
        self.store
            .put(&key, body_from_bytes(go_mod.clone()))
            .await?;
        let entry = VersionEntry {
            version: version.to_string(),
            zip: None,
            go_mod: blob,
            info: None,
            time: String::new(),
            synthesized_mod: GoMod::is_synthesized(module.as_str(), &go_mod),
            provenance: Provenance::Cached,
            state: VersionState::Available,
        };
        let stored = self
            .index
            .update(module, |index| {
                if index.entry(version).is_some() {
                    // First writer wins; its go.mod has the same verified hash.
                    return Ok::<_, RegistryError>(None);
                }
                index.upsert(entry.clone());
                Ok(Some(entry.clone()))
            })
            .await?;
        self.count_fetch("mod", "ok", &timing);
        match stored {
            Some(entry) => Ok(entry),
            None => self
                .cached_entry(module, version)
                .await?
                .ok_or_else(|| RegistryError::Internal(format!("{module}@{version}: lost"))),
        }
    }

    async fn fetch_info(
        &self,
        module: &ModulePath,
        version: &Version,
        path: &str,
    ) -> Result<VersionEntry, RegistryError> {
        let timing = FillTiming::start(module, version.as_str());
        let body = match self.upstream.get_bytes(path, MAX_INFO).await {
            Ok(body) => body,
            Err(e) => {
                let e = self.upstream_error(path, e);
                self.count_error("info", &e, &timing);
                return Err(e);
            }
        };
        let text = std::str::from_utf8(&body).map_err(|_| {
            RegistryError::Upstream(crate::upstream::UpstreamError::Status {
                url: self.upstream.url(path),
                status: 200,
                body: ".info is not UTF-8".into(),
            })
        })?;
        let info = parse_info(module, text, Some(version.as_str()))?;
        let digest = sha256(&body);
        let blob = BlobRef {
            sha256: digest.clone(),
            size: body.len() as u64,
            h1: None,
        };
        let key = self.blob_key(module, version, ArtifactKind::Info, &digest)?;
        self.store.put(&key, body_from_bytes(body)).await?;
        let updated = self
            .index
            .update(module, |index| {
                let Some(entry) = index.entry_mut(version) else {
                    return Err(RegistryError::Internal(format!(
                        "{module}@{version}: index entry vanished"
                    )));
                };
                if entry.info.is_some() {
                    return Ok(None);
                }
                entry.info = Some(blob.clone());
                entry.time = info.time.clone();
                Ok(Some(entry.clone()))
            })
            .await?;
        self.count_fetch("info", "ok", &timing);
        match updated {
            Some(entry) => Ok(entry),
            None => self
                .cached_entry(module, version)
                .await?
                .ok_or_else(|| RegistryError::Internal(format!("{module}@{version}: lost"))),
        }
    }

    /// The checksum database's hashes, or `None` for `no_sum` modules.
    pub(super) async fn expected_sums(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<super::ExpectedSums>, RegistryError> {
        if self.no_sum(module) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let expected = self.verifier.expected(module, version).await;
        self.metrics
            .verify_duration
            .get_or_create(&crate::metrics::VerifyLabels {
                repository: self.name.to_string(),
                outcome: if expected.is_ok() { "ok" } else { "failed" },
            })
            .observe(started.elapsed().as_secs_f64());
        expected.map(Some)
    }

    pub(super) fn blob_key(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
        digest: &Digest,
    ) -> Result<crate::storage::ObjectKey, RegistryError> {
        Ok(ArtifactKey {
            repo: self.name.clone(),
            module: module.clone(),
            version: version.clone(),
            kind,
            digest: digest.clone(),
        }
        .object_key()?)
    }

    pub(super) async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
        blob: &BlobRef,
        range: Option<ByteRange>,
    ) -> Result<Artifact, RegistryError> {
        let key = self.blob_key(module, version, kind, &blob.sha256)?;
        if kind != ArtifactKind::Info {
            self.access.touch(module, version);
        }
        let object = match range {
            Some(range) => self.store.get_range(&key, range).await?,
            None => self.store.get(&key).await?,
        };
        Ok(Artifact {
            etag: Some(blob.sha256.to_string()),
            h1: blob.h1.clone(),
            object,
        })
    }

    async fn read_blob(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
        blob: &BlobRef,
    ) -> Result<Bytes, RegistryError> {
        let key = self.blob_key(module, version, kind, &blob.sha256)?;
        let object = self.store.get(&key).await?;
        read_body(object.body, MAX_GO_MOD)
            .await
            .map_err(|e| RegistryError::io(format!("reading {key}"), e))
    }
}

pub(super) fn sha256(data: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest::from_bytes(&sha2::Sha256::digest(data).into())
}
