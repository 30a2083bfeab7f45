//! The edge's consumer of change events: it follows the registry's event stream (the
//! in-process bus of an all-in-one process, or Redis Streams), applies each event to the tiers
//! under every route that shows the changed repository ([`apply`]), and keeps the stream id of
//! the last applied event in `<cache.dir>/events.cursor` ([`EventCursor`]) so a restarted edge
//! resumes after it.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use strata_core::path::ModulePath;
use strata_core::protocol::ProxyRequest;
use strata_core::pseudo::Timestamp;
use strata_core::version::Version;
use strata_service::clock::unix_now;
use strata_service::events::{Event, EventKind, Subscription};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::edge::Edge;
use crate::metrics::{KindLabels, TierLabels};

/// Event ids remembered for de-duplication (delivery is at-least-once).
const SEEN_IDS: usize = 4096;

/// Applies events from `subscription` to `edge` until `shutdown`; with a `cursor`, the stream
/// id of each applied event is persisted there (at most once a second, and at shutdown), so a
/// restarted edge resumes after it and misses nothing that happened while it was down.
pub async fn listen(
    edge: Arc<Edge>,
    mut subscription: Subscription,
    shutdown: CancellationToken,
    cursor: Option<EventCursor>,
) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut order: VecDeque<String> = VecDeque::new();
    let saver = cursor.map(|c| c.spawn_saver(shutdown.clone()));
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = subscription.next() => next,
        };
        let Some((stream_id, event)) = next else {
            tracing::warn!(
                "change-event subscription ended; mutable answers now rely on their TTL"
            );
            break;
        };
        if seen.insert(event.id.clone()) {
            order.push_back(event.id.clone());
            if order.len() > SEEN_IDS
                && let Some(old) = order.pop_front()
            {
                seen.remove(&old);
            }
            tracing::debug!(%stream_id, kind = ?event.kind, module = %event.module, "change event");
            apply(&edge, &event).await;
        }
        if let Some((position, _)) = &saver {
            position.send_replace(Some(stream_id));
        }
    }
    if let Some((position, task)) = saver {
        drop(position);
        let _ = task.await;
    }
}

/// Where the edge keeps the stream id of the last event it applied (`<cache.dir>/events.cursor`).
#[derive(Debug, Clone)]
pub struct EventCursor {
    path: PathBuf,
}

impl EventCursor {
    /// A cursor file at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The saved id, if there is a valid one (`<ms>-<seq>`); an unreadable or malformed file is
    /// logged and ignored (the edge then starts with new events, relying on TTLs for the gap).
    pub fn load(&self) -> Option<String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(%error, path = %self.path.display(), "cannot read the event cursor");
                return None;
            }
        };
        let id = text.trim();
        if is_stream_id(id) {
            Some(id.to_owned())
        } else {
            tracing::warn!(path = %self.path.display(), "ignoring a malformed event cursor");
            None
        }
    }

    /// Writes `id` atomically (temp file + rename).
    pub fn save(&self, id: &str) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(".events.cursor.tmp");
        std::fs::write(&tmp, format!("{id}\n"))?;
        std::fs::rename(&tmp, &self.path)
    }

    /// A task saving the latest id sent on the returned channel, at most once a second; it
    /// saves the last one and ends when the sender is dropped or at shutdown.
    fn spawn_saver(
        self,
        shutdown: CancellationToken,
    ) -> (watch::Sender<Option<String>>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = watch::channel::<Option<String>>(None);
        let task = tokio::spawn(async move {
            let mut saved: Option<String> = None;
            loop {
                let open = tokio::select! {
                    changed = rx.changed() => changed.is_ok(),
                    () = shutdown.cancelled() => false,
                };
                let latest = rx.borrow_and_update().clone();
                if let Some(id) = latest
                    && saved.as_ref() != Some(&id)
                {
                    let cursor = self.clone();
                    let to_save = id.clone();
                    match tokio::task::spawn_blocking(move || cursor.save(&to_save)).await {
                        Ok(Ok(())) => saved = Some(id),
                        Ok(Err(error)) => {
                            tracing::warn!(%error, path = %self.path.display(), "cannot save the event cursor")
                        }
                        Err(error) => tracing::warn!(%error, "event cursor task failed"),
                    }
                }
                if !open {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(CURSOR_SAVE_INTERVAL) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        });
        (tx, task)
    }
}

/// How often the event cursor is written at most.
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// A Redis stream id: `<milliseconds>-<sequence>`.
fn is_stream_id(id: &str) -> bool {
    let Some((ms, seq)) = id.split_once('-') else {
        return false;
    };
    !ms.is_empty()
        && !seq.is_empty()
        && ms.len() <= 20
        && seq.len() <= 20
        && ms.bytes().all(|b| b.is_ascii_digit())
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// What one event does to the caches, under every route that shows the changed repository:
/// its own and those of the virtual repositories the event names in `visible_in` (the
/// registry knows the membership and puts it in the event).
pub async fn apply(edge: &Edge, event: &Event) {
    let kind = match event.kind {
        EventKind::VersionPublished => "version_published",
        EventKind::VersionCached => "version_cached",
        EventKind::VersionDeleted => "version_deleted",
        EventKind::ListChanged => "list_changed",
        EventKind::IntegrityViolation => "integrity_violation",
    };
    // A deleted version, or one whose stored bytes are in doubt (a failed scrub quarantines
    // it), must not outlive the event in any tier under any route.
    let doomed = match (
        &event.kind,
        ModulePath::new(&event.module),
        event.version.as_deref().map(Version::new),
    ) {
        (
            EventKind::VersionDeleted | EventKind::IntegrityViolation,
            Ok(module),
            Some(Ok(version)),
        ) => Some((module, version)),
        _ => None,
    };
    for repo in event.affected_repositories() {
        edge.freshness.invalidate(repo, &event.module);
        if let Some((module, version)) = &doomed {
            for request in [
                ProxyRequest::Info(module.clone(), version.clone()),
                ProxyRequest::Mod(module.clone(), version.clone()),
                ProxyRequest::Zip(module.clone(), version.clone()),
            ] {
                edge.drop_entry(repo, &request).await;
            }
            edge.metrics
                .evictions
                .get_or_create(&TierLabels { tier: "event" })
                .inc();
        }
    }
    edge.metrics
        .events
        .get_or_create(&KindLabels { kind })
        .inc();
    if let Some(at) = parse_rfc3339(&event.at) {
        let lag = unix_now().saturating_sub(at);
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

    #[test]
    fn the_event_cursor_round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = EventCursor::new(dir.path().join("events.cursor"));
        assert_eq!(cursor.load(), None, "no file: start with new events");
        cursor.save("1732230000000-7").unwrap();
        assert_eq!(cursor.load().as_deref(), Some("1732230000000-7"));
        for bad in ["", "0", "12-", "-3", "12-x", "1-2-3", "$", "12 -3"] {
            std::fs::write(dir.path().join("events.cursor"), bad).unwrap();
            assert_eq!(cursor.load(), None, "{bad:?} is not a stream id");
        }
    }

    #[tokio::test]
    async fn the_saver_writes_the_last_id_when_it_stops() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = EventCursor::new(dir.path().join("events.cursor"));
        let (tx, task) = cursor.clone().spawn_saver(CancellationToken::new());
        for n in 1..=50 {
            tx.send_replace(Some(format!("100-{n}")));
        }
        drop(tx);
        task.await.unwrap();
        assert_eq!(cursor.load().as_deref(), Some("100-50"));
    }

    #[test]
    fn parses_event_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
