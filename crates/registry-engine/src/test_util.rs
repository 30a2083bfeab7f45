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
