//! What the tests of the crates above the engine need of its internals (feature `test-util`,
//! never in a release build): damage to stored bytes that only storage could cause, for the
//! scrubber and quarantine tests of the registry, the worker and the edge.

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::version::Version;

use crate::error::RegistryError;
use crate::keys::{ArtifactKey, RepoName};
use crate::registry::Registry;
use crate::storage::{body_from_bytes, read_body};

/// Rewrites the stored `kind` artifact of `module@version` in `repo` with its last byte
/// flipped, behind the registry's back: its index still records the old SHA-256, so the next
/// scrub finds it damaged. Fails if the version or that artifact is not stored.
pub async fn flip_last_byte(
    registry: &Registry,
    repo: &str,
    module: &ModulePath,
    version: &Version,
    kind: ArtifactKind,
) -> Result<(), RegistryError> {
    let missing = || RegistryError::NotFound(format!("{module}@{version} {kind:?} in {repo}"));
    let index = registry.version_index(repo, module).await?;
    let entry = index.entry(version).ok_or_else(missing)?;
    let blob = match kind {
        ArtifactKind::Zip => entry.zip.clone(),
        ArtifactKind::Mod => Some(entry.go_mod.clone()),
        ArtifactKind::Info => entry.info.clone(),
    }
    .ok_or_else(missing)?;
    let key = ArtifactKey {
        repo: RepoName::new(repo).map_err(|e| RegistryError::NotFound(e.to_string()))?,
        module: module.clone(),
        version: version.clone(),
        kind,
        digest: blob.sha256,
    }
    .object_key()?;
    let store = registry.store();
    let object = store.get(&key).await?;
    let mut bytes = read_body(object.body, usize::MAX)
        .await
        .map_err(|source| RegistryError::Io {
            context: format!("reading {key}"),
            source,
        })?
        .to_vec();
    let last = bytes.last_mut().ok_or_else(missing)?;
    *last ^= 0x01;
    store.put(&key, body_from_bytes(Bytes::from(bytes))).await?;
    Ok(())
}

/// Stores `zip` (whose `h1:` is `zip_h1`) as the zip of the published `module@version` in
/// `repo` and rewrites its index entry to match, behind the registry's back: what someone
/// holding the bucket could do. The bytes pass the scrubber's own checks; only the checksum
/// database can tell. Fails if the version or its zip is not in the index.
pub async fn swap_zip_and_index(
    store: &std::sync::Arc<dyn crate::storage::ObjectStore>,
    repo: &str,
    module: &ModulePath,
    version: &Version,
    zip: &[u8],
    zip_h1: &str,
) -> Result<(), RegistryError> {
    let repo = RepoName::new(repo).map_err(|e| RegistryError::NotFound(e.to_string()))?;
    let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(zip).into();
    let digest = crate::keys::Digest::from_bytes(&sha);
    let key = ArtifactKey {
        repo: repo.clone(),
        module: module.clone(),
        version: version.clone(),
        kind: ArtifactKind::Zip,
        digest: digest.clone(),
    };
    store
        .put(
            &key.object_key()?,
            body_from_bytes(Bytes::copy_from_slice(zip)),
        )
        .await?;
    crate::index::IndexStore::new(repo, store.clone())
        .update(module, |index| {
            let zip_ref = (index.entry_mut(version))
                .and_then(|entry| entry.zip.as_mut())
                .ok_or_else(|| RegistryError::NotFound(format!("{module}@{version} zip")))?;
            zip_ref.sha256 = digest.clone();
            zip_ref.size = zip.len() as u64;
            zip_ref.h1 = Some(zip_h1.to_owned());
            Ok::<_, RegistryError>(Some(()))
        })
        .await?;
    Ok(())
}
