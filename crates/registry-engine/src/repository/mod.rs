//! Repositories, as in Artifactory: `local` (hosted, written through the publish API); `remote`
//! (a verified caching proxy of an upstream GOPROXY) and `virtual` (an ordered aggregation,
//! implemented by the registry over its members).

mod fill;
mod local;
pub mod remote;
mod virtual_repo;

pub(crate) use local::now_rfc3339;
pub use local::{LocalRepository, Published};
pub use remote::{ExpectedSums, Freshness, RemoteRepository, SumVerifier, Warmed};
pub use virtual_repo::{Member, MemberRepo, VirtualRepository};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::GetObject;

/// The JSON a proxy serves for `.info` and `@latest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoDoc {
    /// The canonical version.
    #[serde(rename = "Version")]
    pub version: String,
    /// The version's time, RFC 3339.
    #[serde(rename = "Time")]
    pub time: String,
    /// The upstream's own bytes (remote repositories serve `.info` byte-identical, `Origin`
    /// and all); `None` for documents strata writes itself.
    #[serde(skip)]
    pub raw: Option<Bytes>,
}

impl InfoDoc {
    /// The JSON body.
    pub fn to_json(&self) -> Bytes {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        // Serializing two strings cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A stored artifact being served: its identity for caching plus the (possibly ranged) body.
#[derive(Debug)]
pub struct Artifact {
    /// A strong validator: the SHA-256 of the bytes. `None` while a remote artifact is still
    /// being fetched (streamed to its first callers before its digest is known).
    pub etag: Option<String>,
    /// The go.sum `h1:` of the artifact, for `.zip` and `.mod`.
    pub h1: Option<String>,
    /// The object and its body stream.
    pub object: GetObject,
}
