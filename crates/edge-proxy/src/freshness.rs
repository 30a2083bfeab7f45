//! Freshness of mutable answers (`list`, `@latest`, queries). The edge's consumer of the
//! registry's change events reports each one here ([`Freshness::invalidate`]).
//!
//! A mutable answer in memory is fresh while it is younger than `cache.metadata_ttl_ms` *and*
//! no change event for its module arrived since its fetch started. The second condition is
//! kept with sequence numbers rather than by deleting entries, because a query's cache key
//! cannot be derived from an event (any string may be a query) and because an event that
//! lands while a fetch is in flight must win over the answer that fetch brings back:
//! every event takes the next number and records it for its (repository, module); every fetch
//! notes the current number when it starts; an entry is fresh only if its number is at least
//! its module's last event's. The record of an event can be forgotten after one TTL, when every
//! entry older than it is stale anyway.
//!
//! Answers read back from disk carry no number: they are never fresh, and are served only as
//! stale answers when no registry answers. Stale answers are never thrown away by events, so
//! an edge cut off from its registries keeps serving the last `list` it saw.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::cache::MemEntry;

/// Invalidation sequence numbers per (repository, module).
#[derive(Debug)]
pub struct Freshness {
    seq: AtomicU64,
    invalidated: Cache<(String, String), u64>,
    ttl: Duration,
}

impl Freshness {
    /// Mutable answers live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            seq: AtomicU64::new(0),
            invalidated: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(ttl + Duration::from_secs(1))
                .build(),
            ttl,
        }
    }

    /// The number a fetch starting now records.
    pub fn current(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// A change to `module` in `repo`: every answer fetched before now is stale.
    pub fn invalidate(&self, repo: &str, module: &str) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.invalidated
            .insert((repo.to_owned(), module.to_owned()), n);
    }

    /// Whether a mutable entry of `module` in `repo` may be served without asking.
    pub fn is_fresh(&self, repo: &str, module: &str, entry: &MemEntry) -> bool {
        let Some(started) = entry.seq else {
            return false;
        };
        if entry.stored.elapsed() >= self.ttl {
            return false;
        }
        let key = (repo.to_owned(), module.to_owned());
        started >= self.invalidated.get(&key).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cache::{EntryKind, Meta};
    use std::time::Instant;

    fn entry(seq: Option<u64>) -> MemEntry {
        MemEntry {
            meta: Meta::of(EntryKind::List, b"", None, None),
            body: bytes::Bytes::new(),
            stored: Instant::now(),
            seq,
        }
    }

    #[test]
    fn events_make_earlier_fetches_stale() {
        let f = Freshness::new(Duration::from_secs(3600));
        let before = entry(Some(f.current()));
        assert!(f.is_fresh("r", "m", &before));
        f.invalidate("r", "m");
        assert!(!f.is_fresh("r", "m", &before));
        assert!(f.is_fresh("r", "other", &before));
        assert!(f.is_fresh("r", "m", &entry(Some(f.current()))));
        assert!(!f.is_fresh("r", "m", &entry(None)));
    }
}
