//! Maintenance operations the sync worker drives through the registry library (no HTTP, no
//! permission checks: the worker is part of the platform, configured with the registry's own
//! storage): warming versions, refreshing metadata ahead of its TTL, listing what a repository
//! holds, scrubbing stored bytes against their recorded hashes, and forgetting cached versions
//! (retention).

use std::io::Write as _;
use std::time::UNIX_EPOCH;

use futures::StreamExt;
use sha2::Digest as _;
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::version::Version;

use crate::error::RegistryError;
use crate::index::{BlobRef, IndexStore, VersionEntry, VersionIndex, VersionState};
use crate::keys::{ArtifactKey, RepoName, index_prefix, module_of_index_key, quarantine_key};
use crate::registry::{Registry, Repository};
use crate::repository::MemberRepo;
use crate::repository::remote::{RemoteRepository, Warmed};

/// What a scrub of one version found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrubOutcome {
    /// Every stored artifact hashes to what was recorded.
    Intact,
    /// Remote cache: the damaged artifacts were quarantined and the version fetched again
    /// (verified against the checksum database).
    Repaired {
        /// What was wrong.
        problems: Vec<String>,
    },
    /// Local repository: the damaged artifacts were quarantined and the version is no longer
    /// served until it is published again with identical content.
    Quarantined {
        /// What was wrong.
        problems: Vec<String>,
    },
    /// Remote cache: quarantined, but fetching it again failed; the next request (or scrub)
    /// fetches it.
    RepairFailed {
        /// What was wrong.
        problems: Vec<String>,
        /// Why the fetch failed.
        error: String,
    },
}

/// The scrub of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubReport {
    /// Bytes read and hashed.
    pub bytes: u64,
    /// The result.
    pub outcome: ScrubOutcome,
}

/// A version cached by a remote repository, for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedVersion {
    /// The module.
    pub module: ModulePath,
    /// The version.
    pub version: Version,
    /// Days since the Unix epoch: the later of the last read and the day it was stored.
    pub last_used_day: u64,
    /// The last recorded read, if any.
    pub last_read_day: Option<u64>,
    /// Bytes of its stored artifacts.
    pub bytes: u64,
}

impl Registry {
    /// Makes sure `module@version` is stored in repository `repo` (see
    /// [`RemoteRepository::warm`]); through a virtual repository, the first member that has it
    /// or may fetch it (never a remote for a path a local member claims). A local repository
    /// can only confirm it has the version.
    pub async fn warm(
        &self,
        repo: &str,
        module: &ModulePath,
        version: &Version,
        mod_only: bool,
    ) -> Result<Warmed, RegistryError> {
        let entry = self.repo(repo)?;
        if !entry.config.accepts(module.as_str()) {
            return Err(RegistryError::NotFound(format!(
                "{module}: not served by repository {repo:?}"
            )));
        }
        match &entry.repo {
            Repository::Local(r) => r.stat(module, version).await.map(|_| Warmed::Local),
            Repository::Remote(r) => r.warm(module, version, mod_only).await,
            Repository::Virtual(v) => {
                for member in v.eligible(module).await? {
                    let result = match &member.repo {
                        MemberRepo::Local(r) => {
                            r.stat(module, version).await.map(|_| Warmed::Local)
                        }
                        MemberRepo::Remote(r) => r.warm(module, version, mod_only).await,
                    };
                    match result {
                        Err(e) if e.kind() == strata_core::protocol::ErrorKind::NotFound => {}
                        other => return other,
                    }
                }
                Err(RegistryError::NotFound(format!(
                    "{module}@{version}: no member of {repo:?} has it"
                )))
            }
        }
    }

    /// Fetches `list` and `@latest` of `module` from the upstream now (remote repositories, or
    /// every remote member of a virtual one); returns the versions listed.
    pub async fn refresh_metadata(
        &self,
        repo: &str,
        module: &ModulePath,
    ) -> Result<Vec<String>, RegistryError> {
        let remotes = self.remotes_of(repo)?;
        if remotes.is_empty() {
            return Err(RegistryError::Unsupported(format!(
                "repository {repo:?} has no upstream to refresh from"
            )));
        }
        let mut versions = Vec::new();
        for remote in remotes {
            for v in remote.refresh_metadata(module).await? {
                if !versions.contains(&v) {
                    versions.push(v);
                }
            }
        }
        versions.sort_by(|a, b| strata_core::semver::compare(a, b));
        Ok(versions)
    }

    /// The remote repository `repo`, or the remote members of virtual `repo`.
    pub fn remotes_of(&self, repo: &str) -> Result<Vec<&RemoteRepository>, RegistryError> {
        Ok(match &self.repo(repo)?.repo {
            Repository::Local(_) => Vec::new(),
            Repository::Remote(r) => vec![r],
            Repository::Virtual(v) => v.remote_members(),
        })
    }

    /// Every module with a version index in local or remote repository `repo` (a listing of
    /// the store: for background work only, never on a request path).
    pub async fn modules(&self, repo: &str) -> Result<Vec<ModulePath>, RegistryError> {
        let name = self.stored_repo(repo)?;
        let mut listing = self.store().list(&index_prefix(&name)?);
        let mut modules = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            match module_of_index_key(&name, meta.key.as_path()) {
                Some(module) => modules.push(module),
                None => tracing::warn!(key = %meta.key, "unexpected object among version indexes"),
            }
        }
        modules.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(modules)
    }

    /// The version index of `module` in local or remote repository `repo`.
    pub async fn version_index(
        &self,
        repo: &str,
        module: &ModulePath,
    ) -> Result<VersionIndex, RegistryError> {
        let name = self.stored_repo(repo)?;
        Ok(IndexStore::new(name, self.store().clone())
            .load(module)
            .await?
            .index)
    }

    /// Re-hashes every stored artifact of an available `module@version` in local or remote
    /// repository `repo` against its recorded SHA-256, size and `h1:`, and, when the registry
    /// has its own checksum database (`[ledger]`), compares those `h1:`s with the version's
    /// record there (an artifact rewritten together with its index entry). A damaged artifact is
    /// moved to `quarantine/` (kept for inspection, never served) and reported with an
    /// `integrity_violation` event; a remote cache entry is then fetched again, a local version
    /// is marked quarantined (no longer served).
    pub async fn scrub_version(
        &self,
        repo: &str,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ScrubReport, RegistryError> {
        let name = self.stored_repo(repo)?;
        let index = IndexStore::new(name.clone(), self.store().clone());
        let Some(entry) = index
            .load(module)
            .await?
            .index
            .entry(version)
            .filter(|e| e.is_available())
            .cloned()
        else {
            return Err(RegistryError::NotFound(format!(
                "{module}@{version}: not stored in {repo:?}"
            )));
        };
        let key_of = |kind, blob: &BlobRef| {
            ArtifactKey {
                repo: name.clone(),
                module: module.clone(),
                version: version.clone(),
                kind,
                digest: blob.sha256.clone(),
            }
            .object_key()
        };
        let mut bytes = 0;
        let mut problems = Vec::new();
        let mut damaged = Vec::new();
        for (kind, blob) in blobs_of(&entry) {
            let key = key_of(kind, blob)?;
            match self.check_blob(&key, kind, blob).await? {
                (n, None) => bytes += n,
                (n, Some(problem)) => {
                    bytes += n;
                    problems.push(format!("{}: {problem}", kind.extension()));
                    damaged.push(key);
                }
            }
        }
        // With the registry's own checksum database, the index is checked against the log too:
        // bytes and index entry rewritten together pass the check above, not this one.
        if let Some(ledger) = self.ledger()
            && let Some((id, lines)) = ledger.find(module, version).await?
        {
            for (kind, blob) in blobs_of(&entry) {
                let suffix = match kind {
                    ArtifactKind::Zip => "",
                    ArtifactKind::Mod => "/go.mod",
                    ArtifactKind::Info => continue,
                };
                let Some(h1) = &blob.h1 else { continue };
                let logged = lines
                    .iter()
                    .find_map(|l| l.strip_prefix(&format!("{module} {version}{suffix} ")));
                if logged != Some(h1.as_str()) {
                    problems.push(format!(
                        "{}: the index records {h1}, the checksum database (record {id}) {}",
                        kind.extension(),
                        logged.unwrap_or("has no such line"),
                    ));
                    let key = key_of(kind, blob)?;
                    if !damaged.contains(&key) {
                        damaged.push(key);
                    }
                }
            }
        }
        if problems.is_empty() {
            return Ok(ScrubReport {
                bytes,
                outcome: ScrubOutcome::Intact,
            });
        }
        let now = unix_now();
        for key in &damaged {
            let moved = quarantine_key(key, now)?;
            match self.store().copy(key, &moved).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            }
            self.store().delete(key).await?;
            tracing::error!(repository = %name, %module, %version, from = %key, to = %moved,
                "scrub: damaged artifact quarantined");
            crate::audit::found(
                "quarantine",
                crate::audit::Subject {
                    repository: name.as_str(),
                    module: Some(module.as_str()),
                    version: Some(version.as_str()),
                },
                &format!("{}; moved {key} to {moved}", problems.join("; ")),
            );
        }
        let summary = problems.join("; ");
        let outcome = match &self.repo(repo)?.repo {
            Repository::Remote(remote) => {
                remote.forget(module, version).await?;
                let mod_only = entry.zip.is_none();
                match remote.warm(module, version, mod_only).await {
                    Ok(_) => ScrubOutcome::Repaired { problems },
                    Err(e) => ScrubOutcome::RepairFailed {
                        problems,
                        error: e.to_string(),
                    },
                }
            }
            _ => {
                let reason = format!("stored bytes failed verification ({summary})");
                index
                    .update(module, |index| {
                        let Some(e) = index.entry_mut(version) else {
                            return Ok::<_, RegistryError>(None);
                        };
                        if !e.is_available() {
                            return Ok(None);
                        }
                        e.state = VersionState::Quarantined {
                            quarantined_at: crate::repository::now_rfc3339(),
                            reason: reason.clone(),
                        };
                        Ok(Some(()))
                    })
                    .await?;
                self.listener().list_changed(&name, module).await;
                ScrubOutcome::Quarantined { problems }
            }
        };
        let detail = match &outcome {
            ScrubOutcome::Repaired { .. } => {
                format!("scrub: {summary}; quarantined and fetched again")
            }
            ScrubOutcome::RepairFailed { error, .. } => {
                format!("scrub: {summary}; quarantined, fetching again failed: {error}")
            }
            _ => format!(
                "scrub: {summary}; quarantined, not served until published again with identical content"
            ),
        };
        self.listener()
            .integrity_violation(&name, module, version, &detail)
            .await;
        Ok(ScrubReport { bytes, outcome })
    }

    /// Forgets a cached version of remote repository `repo` (retention). Returns the bytes of
    /// its artifacts, or `None` if it was not cached. Local repositories are refused.
    pub async fn forget_cached(
        &self,
        repo: &str,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<u64>, RegistryError> {
        match &self.repo(repo)?.repo {
            Repository::Remote(remote) => Ok(remote
                .forget(module, version)
                .await?
                .map(|e| blobs_of(&e).map(|(_, b)| b.size).sum())),
            _ => Err(RegistryError::Unsupported(format!(
                "repository {repo:?} is not a remote repository: retention never removes \
                 published versions"
            ))),
        }
    }

    /// Writes the reads of cached versions noted since the last flush, in every remote
    /// repository (the server does this every minute and at shutdown). Returns the number of
    /// module documents written.
    pub async fn flush_access(&self) -> Result<usize, RegistryError> {
        let mut written = 0;
        let mut first_error = None;
        for entry in self.repositories() {
            if let Repository::Remote(remote) = &entry.repo {
                match remote.flush_access().await {
                    Ok(n) => written += n,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Every version cached in remote repository `repo` with the last day it was used (days
    /// since the Unix epoch): the later of its last recorded read and the day it was stored.
    /// Retention decides from this which versions to forget.
    pub async fn cached_versions(&self, repo: &str) -> Result<Vec<CachedVersion>, RegistryError> {
        let Repository::Remote(remote) = &self.repo(repo)?.repo else {
            return Err(RegistryError::Unsupported(format!(
                "repository {repo:?} is not a remote repository"
            )));
        };
        let mut out = Vec::new();
        for module in self.modules(repo).await? {
            let index = self.version_index(repo, &module).await?;
            let access = remote.last_access(&module).await?;
            for entry in index.available() {
                let version = Version::new(&entry.version).map_err(|e| {
                    RegistryError::Internal(format!("{module}@{}: {e}", entry.version))
                })?;
                let key = ArtifactKey {
                    repo: remote.name().clone(),
                    module: module.clone(),
                    version: version.clone(),
                    kind: ArtifactKind::Mod,
                    digest: entry.go_mod.sha256.clone(),
                }
                .object_key()?;
                let stored_day = match self.store().head(&key).await {
                    Ok(meta) => meta
                        .last_modified
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs() / 86_400)
                        .unwrap_or(0),
                    // A version whose go.mod is gone is damaged, not idle: the scrubber's job.
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                };
                let read_day = access.get(&entry.version).copied();
                out.push(CachedVersion {
                    module: module.clone(),
                    version,
                    last_used_day: read_day.unwrap_or(0).max(stored_day),
                    last_read_day: read_day,
                    bytes: blobs_of(entry).map(|(_, b)| b.size).sum(),
                });
            }
        }
        Ok(out)
    }

    /// Hashes one stored blob: `(bytes read, problem)`.
    async fn check_blob(
        &self,
        key: &crate::storage::ObjectKey,
        kind: ArtifactKind,
        blob: &BlobRef,
    ) -> Result<(u64, Option<String>), RegistryError> {
        let object = match self.store().get(key).await {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok((0, Some("missing from storage".into()))),
            Err(e) => return Err(e.into()),
        };
        let mut body = object.body;
        let mut sha = sha2::Sha256::new();
        let mut size = 0u64;
        // Zips are hashed from a spool file (h1 needs random access); the rest in memory.
        let mut spool = match kind {
            ArtifactKind::Zip => Some(
                tempfile::tempfile_in(self.spool_dir())
                    .map_err(|e| RegistryError::io("creating a scrub spool file", e))?,
            ),
            _ => None,
        };
        let mut memory = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| RegistryError::io(format!("reading {key}"), e))?;
            size += chunk.len() as u64;
            sha.update(&chunk);
            match &mut spool {
                Some(file) => file
                    .write_all(&chunk)
                    .map_err(|e| RegistryError::io("writing a scrub spool file", e))?,
                None => memory.extend_from_slice(&chunk),
            }
        }
        let digest = hex::encode(sha.finalize());
        if size != blob.size {
            return Ok((size, Some(format!("size {size}, recorded {}", blob.size))));
        }
        if digest != blob.sha256.as_str() {
            return Ok((
                size,
                Some(format!("sha256 {digest}, recorded {}", blob.sha256)),
            ));
        }
        let Some(recorded) = &blob.h1 else {
            return Ok((size, None));
        };
        let h1 = match spool {
            Some(mut file) => tokio::task::spawn_blocking(move || {
                use std::io::Seek as _;
                file.rewind()?;
                strata_core::dirhash::hash_zip(std::io::BufReader::new(file))
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .await
            .map_err(|e| RegistryError::Internal(e.to_string()))?
            .map_err(|e| e.to_string()),
            None => Ok(strata_core::dirhash::hash_go_mod(&memory)),
        };
        Ok(match h1 {
            Ok(h1) if &h1 == recorded => (size, None),
            Ok(h1) => (size, Some(format!("{h1}, recorded {recorded}"))),
            Err(e) => (size, Some(format!("cannot be hashed: {e}"))),
        })
    }

    /// The stored (local or remote) repository `repo`.
    fn stored_repo(&self, repo: &str) -> Result<RepoName, RegistryError> {
        match &self.repo(repo)?.repo {
            Repository::Local(r) => Ok(r.name().clone()),
            Repository::Remote(r) => Ok(r.name().clone()),
            Repository::Virtual(_) => Err(RegistryError::Unsupported(format!(
                "repository {repo:?} is virtual: it stores nothing itself (name a member)"
            ))),
        }
    }
}

/// The blobs of an entry with their kinds.
fn blobs_of(entry: &VersionEntry) -> impl Iterator<Item = (ArtifactKind, &BlobRef)> {
    [
        entry.zip.as_ref().map(|b| (ArtifactKind::Zip, b)),
        Some((ArtifactKind::Mod, &entry.go_mod)),
        entry.info.as_ref().map(|b| (ArtifactKind::Info, b)),
    ]
    .into_iter()
    .flatten()
}

use strata_service::clock::unix_now;
