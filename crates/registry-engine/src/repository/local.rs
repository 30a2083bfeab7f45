//! A `local` repository: hosted modules, written only through the publish API. Versions are
//! immutable: once published, a version's bytes never change, not even after a delete.

use std::sync::Arc;
use std::time::SystemTime;

use strata_core::gomod::GoMod;
use strata_core::latest::{self, VersionFacts};
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::pseudo::Timestamp;
use strata_core::version::Version;
use tokio_util::io::ReaderStream;

use super::{Artifact, InfoDoc};
use crate::error::RegistryError;
use crate::index::{BlobRef, IndexStore, Provenance, VersionEntry, VersionIndex, VersionState};
use crate::keys::{ArtifactKey, Digest, RepoName};
use crate::ledger::Ledger;
use crate::storage::{ByteRange, ObjectStore, body_from_bytes, read_body};
use crate::upload::ValidatedModule;

/// Largest go.mod read back for `@latest` retractions.
const MAX_GO_MOD: usize = 16 << 20;

/// What a successful publish stored.
#[derive(Debug, Clone)]
pub struct Published {
    /// The new index entry.
    pub entry: VersionEntry,
    /// The go.sum lines of the version.
    pub go_sum: String,
}

/// A hosted repository.
#[derive(Debug, Clone)]
pub struct LocalRepository {
    name: RepoName,
    store: Arc<dyn ObjectStore>,
    index: IndexStore,
    /// The registry's checksum database, when it has one: every publish is recorded there
    /// before the version becomes visible.
    ledger: Option<Arc<Ledger>>,
}

impl LocalRepository {
    /// The repository `name` in `store`.
    pub fn new(name: RepoName, store: Arc<dyn ObjectStore>) -> Self {
        let index = IndexStore::new(name.clone(), store.clone());
        Self {
            name,
            store,
            index,
            ledger: None,
        }
    }

    /// The same repository recording every publish in `ledger`.
    pub fn with_ledger(mut self, ledger: Option<Arc<Ledger>>) -> Self {
        self.ledger = ledger;
        self
    }

    /// The repository's name.
    pub fn name(&self) -> &RepoName {
        &self.name
    }

    /// The module's index (for tests and maintenance).
    pub async fn load_index(&self, module: &ModulePath) -> Result<VersionIndex, RegistryError> {
        Ok(self.index.load(module).await?.index)
    }

    /// Available versions in semver order (`@v/list`).
    pub async fn list(&self, module: &ModulePath) -> Result<Vec<String>, RegistryError> {
        let index = self.index.load(module).await?.index;
        Ok(index.available().map(|e| e.version.clone()).collect())
    }

    /// The entry of an available version.
    pub async fn stat(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<VersionEntry, RegistryError> {
        let index = self.index.load(module).await?.index;
        let entry = index
            .entry(version)
            .ok_or_else(|| not_found(module, Some(version)))?;
        match &entry.state {
            VersionState::Available => Ok(entry.clone()),
            VersionState::Deleted { .. } => {
                Err(RegistryError::Deleted(format!("{module}@{version}")))
            }
            VersionState::Quarantined { reason, .. } => Err(RegistryError::Deleted(format!(
                "{module}@{version} is quarantined: {reason}; publish it again with identical \
                 content to restore it"
            ))),
        }
    }

    /// `.info` of an available version.
    pub async fn info(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<InfoDoc, RegistryError> {
        let entry = self.stat(module, version).await?;
        Ok(InfoDoc {
            version: entry.version,
            time: entry.time,
            raw: None,
        })
    }

    /// `@latest`: the go command's choice among available versions, with the retractions of
    /// the latest version's go.mod applied.
    pub async fn latest(&self, module: &ModulePath) -> Result<InfoDoc, RegistryError> {
        let index = self.index.load(module).await?.index;
        let entries: Vec<&VersionEntry> = index.available().collect();
        let versions: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
        let facts = EntryFacts {
            entries: &entries,
            retractions: None,
        };
        let Some(newest) = latest::latest_ignoring_retractions(&versions, &facts) else {
            return Err(not_found(module, None));
        };
        let retractions = match entries.iter().find(|e| e.version == newest) {
            Some(entry) => self
                .read_go_mod(module, entry)
                .await
                .ok()
                .and_then(|m| GoMod::parse_lax(&m).ok()),
            None => None,
        };
        let facts = EntryFacts {
            entries: &entries,
            retractions: retractions.as_ref(),
        };
        let chosen =
            latest::select_latest(&versions, &facts).ok_or_else(|| not_found(module, None))?;
        let entry = entries
            .iter()
            .find(|e| e.version == chosen)
            .ok_or_else(|| not_found(module, None))?;
        Ok(InfoDoc {
            version: entry.version.clone(),
            time: entry.time.clone(),
            raw: None,
        })
    }

    /// `.mod` of an available version.
    pub async fn go_mod(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Artifact, RegistryError> {
        let entry = self.stat(module, version).await?;
        self.artifact(module, version, ArtifactKind::Mod, &entry.go_mod, None)
            .await
    }

    /// `.zip` of an available version, optionally a byte range of it.
    pub async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<Artifact, RegistryError> {
        let entry = self.stat(module, version).await?;
        let zip = entry
            .zip
            .as_ref()
            .ok_or_else(|| not_found(module, Some(version)))?;
        self.artifact(module, version, ArtifactKind::Zip, zip, range)
            .await
    }

    async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
        blob: &BlobRef,
        range: Option<ByteRange>,
    ) -> Result<Artifact, RegistryError> {
        let key = self
            .blob_key(module, version, kind, &blob.sha256)
            .object_key()?;
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

    async fn read_go_mod(
        &self,
        module: &ModulePath,
        entry: &VersionEntry,
    ) -> Result<bytes::Bytes, RegistryError> {
        let version =
            Version::new(&entry.version).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let key = self
            .blob_key(module, &version, ArtifactKind::Mod, &entry.go_mod.sha256)
            .object_key()?;
        let object = self.store.get(&key).await?;
        read_body(object.body, MAX_GO_MOD)
            .await
            .map_err(|e| RegistryError::io(format!("reading {key}"), e))
    }

    fn blob_key(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
        digest: &Digest,
    ) -> ArtifactKey {
        ArtifactKey {
            repo: self.name.clone(),
            module: module.clone(),
            version: version.clone(),
            kind,
            digest: digest.clone(),
        }
    }

    /// Stores a validated module version: its blobs (content-addressed, so concurrent
    /// publishers never clobber each other) and, at the same time, its record in the ledger
    /// (when the registry has one), then the index entry with compare-and-swap. Exactly one of any number of
    /// concurrent publishers of one version wins; the others get [`RegistryError::Conflict`].
    ///
    /// The ledger comes before the index so that a version is never visible before a signed
    /// tree head proves its hashes: a ledger conflict (the version was recorded with other
    /// hashes, even if it was deleted since) or failure refuses the publish with nothing
    /// visible. A publish that fails after its record was written (a blob that could not be
    /// stored, a lost index race) stays recorded; publishing the same bytes again succeeds.
    pub async fn publish(&self, upload: ValidatedModule) -> Result<Published, RegistryError> {
        let (module, version) = (&upload.module, &upload.version);
        // Refuse early, before uploading anything, when the version is already taken. The
        // ledger's look-ahead (is the version recorded?) is read at the same time, so that its
        // append below is, as a rule, only the head's write.
        let load = async { self.index.load(module).await.map_err(RegistryError::from) };
        let ahead = async {
            match &self.ledger {
                Some(ledger) => ledger
                    .look_ahead(module, version)
                    .await
                    .map(Some)
                    .map_err(RegistryError::from),
                None => Ok(None),
            }
        };
        let (loaded, ahead) = tokio::try_join!(load, ahead)?;
        let current = loaded.index;
        check_free(&current, &upload)?;

        let zip_ref = BlobRef {
            sha256: upload.zip.sha256().clone(),
            size: upload.zip.size(),
            h1: Some(upload.zip_h1.clone()),
        };
        let mod_digest = Digest::from_bytes(&sha256(&upload.go_mod));
        let mod_ref = BlobRef {
            sha256: mod_digest,
            size: upload.go_mod.len() as u64,
            h1: Some(upload.mod_h1.clone()),
        };

        let zip_key = self
            .blob_key(module, version, ArtifactKind::Zip, &zip_ref.sha256)
            .object_key()?;
        let mod_key = self
            .blob_key(module, version, ArtifactKind::Mod, &mod_ref.sha256)
            .object_key()?;
        let file = tokio::fs::File::from_std(upload.zip.reopen()?);
        // The blobs and the record are independent writes (the record needs only the hashes,
        // already computed from the validated upload): made at once, and all of them done
        // before the index entry makes the version visible.
        let zip = async {
            self.store
                .put(&zip_key, Box::pin(ReaderStream::new(file)))
                .await
                .map_err(RegistryError::from)
        };
        let go_mod = async {
            self.store
                .put(&mod_key, body_from_bytes(upload.go_mod.clone()))
                .await
                .map_err(RegistryError::from)
        };
        let record = async {
            match (&self.ledger, ahead) {
                (Some(ledger), Some(ahead)) => ledger
                    .append_with(ahead, module, version, &upload.zip_h1, &upload.mod_h1)
                    .await
                    .map(drop)
                    .map_err(RegistryError::from),
                _ => Ok(()),
            }
        };
        tokio::try_join!(zip, go_mod, record)?;

        let entry = VersionEntry {
            version: version.to_string(),
            zip: Some(zip_ref),
            go_mod: mod_ref,
            info: None,
            time: now_rfc3339(),
            synthesized_mod: GoMod::is_synthesized(module.as_str(), &upload.go_mod),
            provenance: Provenance::Published,
            state: VersionState::Available,
        };
        let stored = entry.clone();
        self.index
            .update(module, |index| {
                check_free(index, &upload)?;
                index.upsert(stored.clone());
                Ok::<_, RegistryError>(Some(()))
            })
            .await?;
        Ok(Published {
            entry,
            go_sum: upload.go_sum_lines(),
        })
    }

    /// Marks a version deleted. Its hashes stay in the index as a tombstone so that it can only
    /// ever come back with the same bytes.
    pub async fn delete(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<VersionEntry, RegistryError> {
        let deleted = self
            .index
            .update(module, |index| {
                let entry = index
                    .entry_mut(version)
                    .ok_or_else(|| not_found(module, Some(version)))?;
                if !entry.is_available() {
                    return Err(RegistryError::Deleted(format!("{module}@{version}")));
                }
                entry.state = VersionState::Deleted {
                    deleted_at: now_rfc3339(),
                };
                Ok(Some(entry.clone()))
            })
            .await?;
        deleted.ok_or_else(|| not_found(module, Some(version)))
    }
}

/// Whether `upload` may take its version: not available already, and not a deleted version
/// whose recorded bytes differ.
fn check_free(index: &VersionIndex, upload: &ValidatedModule) -> Result<(), RegistryError> {
    let Some(existing) = index.entry(&upload.version) else {
        return Ok(());
    };
    let name = format!("{}@{}", upload.module, upload.version);
    match &existing.state {
        VersionState::Available => Err(RegistryError::Conflict(format!(
            "{name} already exists; versions are immutable"
        ))),
        VersionState::Deleted { .. } | VersionState::Quarantined { .. }
            if existing.zip.as_ref().and_then(|z| z.h1.as_deref())
                != Some(upload.zip_h1.as_str())
                || existing.go_mod.h1.as_deref() != Some(upload.mod_h1.as_str()) =>
        {
            Err(RegistryError::Conflict(format!(
                "{name} was deleted; it can only be published again with identical content ({})",
                existing
                    .zip
                    .as_ref()
                    .and_then(|z| z.h1.as_deref())
                    .unwrap_or("unknown hash")
            )))
        }
        VersionState::Deleted { .. } | VersionState::Quarantined { .. } => Ok(()),
    }
}

/// The `+incompatible` and retraction facts of a module's entries.
struct EntryFacts<'a> {
    entries: &'a [&'a VersionEntry],
    retractions: Option<&'a GoMod>,
}

impl VersionFacts for EntryFacts<'_> {
    fn is_retracted(&self, version: &str) -> bool {
        self.retractions.is_some_and(|m| m.retracts(version))
    }

    fn has_go_mod(&self, version: &str) -> bool {
        self.entries
            .iter()
            .find(|e| e.version == version)
            .is_some_and(|e| !e.synthesized_mod)
    }
}

fn not_found(module: &ModulePath, version: Option<&Version>) -> RegistryError {
    match version {
        Some(v) => RegistryError::NotFound(format!("{module}@{v}")),
        None => RegistryError::NotFound(module.to_string()),
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// The current time as RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX)).to_string()
}
