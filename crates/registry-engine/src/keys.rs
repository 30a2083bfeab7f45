//! Where things live in the object store. Every storage key of the registry is built here, from
//! typed parts, by exactly one function per kind of object ([`ArtifactKey::object_key`],
//! [`index_key`]).
//!
//! Layout (module paths and versions case-encoded, so keys are unique on case-insensitive
//! stores):
//!
//! ```text
//! repos/<repo>/index/<module>/@index.json                   the module's version index
//! repos/<repo>/blobs/<module>/@v/<version>/<sha256>.zip     a module zip, content-addressed
//! repos/<repo>/blobs/<module>/@v/<version>/<sha256>.mod     a go.mod, content-addressed
//! repos/<repo>/blobs/<module>/@v/<version>/<sha256>.info    an upstream .info (remote repos)
//! ```
//!
//! Blobs are named by the SHA-256 of their bytes, so two concurrent publishers of the same version
//! with different content never overwrite each other's blobs: the index write decides which one
//! exists, and the loser's blobs stay unreferenced (and invisible).

use std::fmt;

use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::version::Version;

use crate::storage::{KeyPrefix, ObjectKey, StorageError};

/// Repository names live in core, where every tier checks them by the same rule.
pub use strata_core::repo::{RepoName, RepoNameError};

/// A SHA-256 digest of a blob's bytes, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// From raw digest bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(hex::encode(bytes))
    }

    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(format!("invalid sha256 digest {s:?}"))
        }
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored artifact of one module version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactKey {
    /// The repository.
    pub repo: RepoName,
    /// The module.
    pub module: ModulePath,
    /// The version.
    pub version: Version,
    /// Which artifact.
    pub kind: ArtifactKind,
    /// SHA-256 of the artifact's bytes.
    pub digest: Digest,
}

impl ArtifactKey {
    /// The storage key: the only place an artifact's location is spelled out.
    pub fn object_key(&self) -> Result<ObjectKey, StorageError> {
        ObjectKey::new(format!(
            "repos/{}/blobs/{}/@v/{}/{}.{}",
            self.repo,
            self.module.escaped(),
            self.version.escaped(),
            self.digest,
            self.kind.extension()
        ))
    }
}

/// The storage key of a module's version index.
pub fn index_key(repo: &RepoName, module: &ModulePath) -> Result<ObjectKey, StorageError> {
    ObjectKey::new(format!(
        "repos/{repo}/index/{}/@index.json",
        module.escaped()
    ))
}

/// Which piece of a remote module's metadata (kept for a TTL, served stale on upstream failure).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetaName {
    /// `@v/list`.
    List,
    /// `@latest`.
    Latest,
    /// A non-canonical `.info` query (`master`, `v1.2`), named by its SHA-256 in keys.
    Query(String),
}

/// The storage key of a remote module's cached metadata document.
pub fn meta_key(
    repo: &RepoName,
    module: &ModulePath,
    name: &MetaName,
) -> Result<ObjectKey, StorageError> {
    let file = match name {
        MetaName::List => "list.json".to_owned(),
        MetaName::Latest => "latest.json".to_owned(),
        MetaName::Query(q) => {
            use sha2::Digest as _;
            format!(
                "query/{}.json",
                hex::encode(sha2::Sha256::digest(q.as_bytes()))
            )
        }
    };
    ObjectKey::new(format!("repos/{repo}/meta/{}/@{file}", module.escaped()))
}

/// The prefix of every blob of one version (maintenance: forgetting a cached version).
pub fn version_blob_prefix(
    repo: &RepoName,
    module: &ModulePath,
    version: &Version,
) -> Result<KeyPrefix, StorageError> {
    KeyPrefix::new(format!(
        "repos/{repo}/blobs/{}/@v/{}/",
        module.escaped(),
        version.escaped()
    ))
}

/// The prefix of every version index of a repository (maintenance: which modules it has).
pub fn index_prefix(repo: &RepoName) -> Result<KeyPrefix, StorageError> {
    KeyPrefix::new(format!("repos/{repo}/index/"))
}

/// The module of a key under [`index_prefix`] (`repos/<repo>/index/<escaped>/@index.json`).
pub fn module_of_index_key(repo: &RepoName, key: &str) -> Option<ModulePath> {
    let escaped = key
        .strip_prefix(&format!("repos/{repo}/index/"))?
        .strip_suffix("/@index.json")?;
    let path = strata_core::path::unescape_path(escaped).ok()?;
    ModulePath::new(&path).ok()
}

/// Where a blob that failed a scrub is kept for inspection (never served).
pub fn quarantine_key(original: &ObjectKey, unix_secs: u64) -> Result<ObjectKey, StorageError> {
    ObjectKey::new(format!("quarantine/{unix_secs}/{original}"))
}

/// The prefix of every object of a repository (for maintenance listings).
pub fn repo_prefix(repo: &RepoName) -> Result<KeyPrefix, StorageError> {
    KeyPrefix::new(format!("repos/{repo}/"))
}

/// A checksum-database name as storage-key text: bytes outside the key alphabet (and `=`
/// itself) become `=XX`, so distinct names never share a prefix. With `segments`, `/` keeps
/// separating key segments; without, it is escaped too and the name is one segment.
pub(crate) fn escape_db_name(name: &str, segments: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!+@,".contains(&b) || (segments && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_encoded_and_distinct() {
        let repo = RepoName::new("private").unwrap();
        let module = ModulePath::new("example.com/Team/Widget").unwrap();
        let key = ArtifactKey {
            repo: repo.clone(),
            module: module.clone(),
            version: Version::new("v1.0.0-RC1").unwrap(),
            kind: ArtifactKind::Zip,
            digest: Digest::from_bytes(&[0xab; 32]),
        };
        let k = key.object_key().unwrap();
        assert_eq!(
            k.as_path(),
            format!(
                "repos/private/blobs/example.com/!team/!widget/@v/v1.0.0-!r!c1/{}.zip",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            index_key(&repo, &module).unwrap().as_path(),
            "repos/private/index/example.com/!team/!widget/@index.json"
        );
        assert_eq!(
            meta_key(&repo, &module, &MetaName::List).unwrap().as_path(),
            "repos/private/meta/example.com/!team/!widget/@list.json"
        );
        let q = meta_key(&repo, &module, &MetaName::Query("master".into())).unwrap();
        assert!(
            q.as_path()
                .starts_with("repos/private/meta/example.com/!team/!widget/@query/")
        );
    }

    #[test]
    fn repo_names() {
        assert!(RepoName::new("go-private_2.x").is_ok());
        for bad in ["", "Private", "-x", "a/b", "..", &"x".repeat(65)] {
            assert!(RepoName::new(bad).is_err(), "{bad}");
        }
    }
}
