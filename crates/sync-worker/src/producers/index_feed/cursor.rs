//! Where a feed stands: `sync/feeds/<name>.json` in the registry's storage, shared by every
//! worker and surviving restarts, replaced with compare-and-swap.
//!
//! ```json
//! {"since":"2025-01-02T03:04:05.123456Z","seen":["example.com/m@v1.2.3"],
//!  "entries":1234,"updated_at":"2025-01-02T03:05:00Z"}
//! ```
//!
//! `since` is the timestamp of the last processed entry, exactly as the feed wrote it (the
//! next request repeats it). A feed answers entries *at or after* `since`, so the entries
//! already processed at that very timestamp are listed in `seen` and skipped when they come
//! again. `entries` counts processed entries over the feed's life.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_registry_engine::storage::{ETag, ObjectKey, ObjectStore, StorageError};

use super::entry::FeedTime;
use crate::registry::{DocError, Write, read_doc, sync_key, write_doc};

/// Most `seen` ids kept (entries sharing one timestamp).
pub(super) const MAX_SEEN: usize = 10_000;

/// A feed's saved position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last processed entry's timestamp, as the feed wrote it.
    #[serde(default)]
    pub since: Option<String>,
    /// `module@version` of the entries processed at exactly `since`.
    #[serde(default)]
    pub seen: BTreeSet<String>,
    /// Entries processed so far.
    #[serde(default)]
    pub entries: u64,
    /// When the cursor was written (RFC 3339).
    #[serde(default)]
    pub updated_at: String,
}

impl Cursor {
    /// `since`, parsed.
    pub fn at(&self) -> Option<FeedTime> {
        self.since.as_deref().and_then(|s| FeedTime::parse(s).ok())
    }
}

/// The cursor object of one feed.
#[derive(Debug, Clone)]
pub struct CursorStore {
    store: Arc<dyn ObjectStore>,
    key: ObjectKey,
}

impl CursorStore {
    /// The cursor of feed `name` (a name valid as a key segment).
    pub fn new(store: Arc<dyn ObjectStore>, name: &str) -> Result<Self, StorageError> {
        Ok(Self {
            store,
            key: sync_key(&format!("feeds/{name}.json"))?,
        })
    }

    /// The object key.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// The saved cursor with its etag (`None`: nothing saved yet).
    pub async fn load(&self) -> Result<(Cursor, Option<ETag>), DocError> {
        Ok(match read_doc(&self.store, &self.key).await? {
            Some((cursor, etag)) => (cursor, Some(etag)),
            None => (Cursor::default(), None),
        })
    }

    /// Replaces the cursor loaded with `etag` (`None`: creates it); fails with
    /// [`DocError::Conflict`] if another worker wrote it meanwhile.
    pub async fn save(&self, cursor: &Cursor, etag: Option<ETag>) -> Result<(), DocError> {
        let how = match etag {
            Some(etag) => Write::IfMatch(etag),
            None => Write::IfAbsent,
        };
        write_doc(&self.store, &self.key, cursor, how).await
    }
}
