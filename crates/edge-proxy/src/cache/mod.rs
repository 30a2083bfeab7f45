//! The edge's two cache tiers and what an entry is.
//!
//! - [`memory::MemoryTier`] (L1): `.info`, `.mod`, `list`, `@latest`, queries, tiles and zips
//!   up to `cache.memory_zip_max_bytes`, bounded in bytes, with moka's TinyLFU admission so a
//!   scan of one-off artifacts does not flush the hot set.
//! - [`disk::DiskTier`] (L2): every artifact, bounded in bytes, least recently used evicted
//!   first; its index lives in memory and is rebuilt by a scan at start.
//!
//! Every entry carries a [`Meta`]: kind, size, strong ETag (SHA-256 of the bytes) and, for
//! `.mod` and `.zip`, the `h1:` the registry vouched for. On disk, an entry is one file: the
//! meta as one JSON line, then the bytes, so a single rename publishes both.

pub mod disk;
pub mod key;
pub mod memory;
mod verify;

pub use verify::section;

use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use key::{CacheKey, Item};

/// Longest meta line accepted when reading an entry back.
pub const MAX_META_LINE: usize = 4096;

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// `.info`, `@latest`, query answers (JSON).
    Info,
    /// `.mod`.
    Mod,
    /// `.zip`.
    Zip,
    /// `@v/list`.
    List,
    /// A checksum-database tile.
    Tile,
}

impl EntryKind {
    /// The `Content-Type` the entry is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            EntryKind::Info => "application/json",
            EntryKind::Mod | EntryKind::List => "text/plain; charset=utf-8",
            EntryKind::Zip => "application/zip",
            EntryKind::Tile => "application/octet-stream",
        }
    }
}

/// Facts about an entry, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Schema of this line (1).
    pub v: u32,
    /// What it is.
    pub kind: EntryKind,
    /// Size of the bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes (the ETag).
    pub etag: String,
    /// The `h1:` of `.mod` and `.zip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h1: Option<String>,
    /// When it was fetched, Unix seconds.
    pub fetched: u64,
    /// Which registry (or fallback) it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Meta {
    /// The meta of `bytes` fetched now.
    pub fn of(kind: EntryKind, bytes: &[u8], h1: Option<String>, source: Option<String>) -> Self {
        Self {
            v: 1,
            kind,
            size: bytes.len() as u64,
            etag: hex::encode(Sha256::digest(bytes)),
            h1,
            fetched: unix_now(),
            source,
        }
    }

    /// The JSON line that starts the entry's file, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// An entry held in memory.
#[derive(Debug)]
pub struct MemEntry {
    /// Its facts.
    pub meta: Meta,
    /// Its bytes.
    pub body: Bytes,
    /// When it entered this process (freshness of mutable answers).
    pub stored: Instant,
    /// The invalidation sequence number current when its fetch started, which freshness
    /// compares with its module's last change event's; `None` for entries read back from
    /// disk, which are never fresh.
    pub seq: Option<u64>,
}

/// Seconds since the Unix epoch.
pub use strata_service::clock::unix_now;
