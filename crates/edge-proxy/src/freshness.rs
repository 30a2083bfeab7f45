//! Freshness of mutable answers (`list`, `@latest`, queries) and the change-event listener.
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

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use moka::sync::Cache;
use strata_central_registry::events::{Event, EventKind, Subscription};
use strata_core::path::ModulePath;
use strata_core::protocol::ProxyRequest;
use strata_core::pseudo::Timestamp;
use strata_core::version::Version;
use tokio_util::sync::CancellationToken;

use crate::cache::MemEntry;
use crate::edge::Edge;
use crate::metrics::{KindLabels, TierLabels};

/// Event ids remembered for de-duplication (delivery is at-least-once).
const SEEN_IDS: usize = 4096;

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

/// Applies events from `subscription` to `edge` until `shutdown`.
pub async fn listen(edge: Arc<Edge>, mut subscription: Subscription, shutdown: CancellationToken) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut order: VecDeque<String> = VecDeque::new();
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = subscription.next() => next,
        };
        let Some((stream_id, event)) = next else {
            tracing::warn!(
                "change-event subscription ended; mutable answers now rely on their TTL"
            );
            return;
        };
        if !seen.insert(event.id.clone()) {
            continue;
        }
        order.push_back(event.id.clone());
        if order.len() > SEEN_IDS
            && let Some(old) = order.pop_front()
        {
            seen.remove(&old);
        }
        tracing::debug!(%stream_id, kind = ?event.kind, module = %event.module, "change event");
        apply(&edge, &event).await;
    }
}

/// What one event does to the caches.
pub async fn apply(edge: &Edge, event: &Event) {
    edge.freshness.invalidate(&event.repository, &event.module);
    let kind = match event.kind {
        EventKind::VersionPublished => "version_published",
        EventKind::VersionCached => "version_cached",
        EventKind::VersionDeleted => "version_deleted",
        EventKind::ListChanged => "list_changed",
        EventKind::IntegrityViolation => "integrity_violation",
    };
    // A deleted version, or one whose stored bytes are in doubt, must not outlive the event in
    // any tier.
    if matches!(
        event.kind,
        EventKind::VersionDeleted | EventKind::IntegrityViolation
    ) && let (Ok(module), Some(Ok(version))) = (
        ModulePath::new(&event.module),
        event.version.as_deref().map(Version::new),
    ) {
        for request in [
            ProxyRequest::Info(module.clone(), version.clone()),
            ProxyRequest::Mod(module.clone(), version.clone()),
            ProxyRequest::Zip(module.clone(), version.clone()),
        ] {
            edge.drop_entry(&event.repository, &request).await;
        }
        edge.metrics
            .evictions
            .get_or_create(&TierLabels { tier: "event" })
            .inc();
    }
    edge.metrics
        .events
        .get_or_create(&KindLabels { kind })
        .inc();
    if let Some(at) = parse_rfc3339(&event.at) {
        let lag = crate::cache::unix_now().saturating_sub(at);
        edge.metrics
            .event_lag_seconds
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
    }
}

/// `2006-01-02T15:04:05Z` as Unix seconds.
fn parse_rfc3339(at: &str) -> Option<u64> {
    let compact: String = at
        .trim_end_matches('Z')
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    let t = Timestamp::parse_compact(&compact)?;
    u64::try_from(t.unix_seconds()).ok()
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

    #[test]
    fn parses_event_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
