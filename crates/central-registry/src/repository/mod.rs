//! Repositories, as in Artifactory: `local` (hosted, written through the publish API); `remote`
//! and `virtual` come next and serve through the same [`Repository`] read interface.

mod local;

pub use local::{LocalRepository, Published};

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
}

impl InfoDoc {
    /// The JSON body.
    pub fn to_json(&self) -> Bytes {
        // Serializing two strings cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A stored artifact being served: its identity for caching plus the (possibly ranged) body.
#[derive(Debug)]
pub struct Artifact {
    /// A strong validator: the SHA-256 of the bytes.
    pub etag: String,
    /// The go.sum `h1:` of the artifact, for `.zip` and `.mod`.
    pub h1: Option<String>,
    /// The object and its body stream.
    pub object: GetObject,
}
