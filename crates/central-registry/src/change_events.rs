//! Turns registry changes into change events on the [`EventBus`].

use strata_core::path::ModulePath;
use strata_core::version::Version;

use crate::events::{Event, EventBus, EventKind};
use crate::keys::RepoName;
use crate::registry::{Change, ChangeKind, ChangeListener};

/// Emits a `version_published` / `version_deleted` event and a `list_changed` event for every
/// published or deleted version; `version_cached` for a version newly cached by a remote
/// repository; `list_changed` when a remote module's upstream list changed; and
/// `integrity_violation` for upstream bytes that failed verification.
#[derive(Debug, Clone)]
pub struct EventEmitter {
    bus: EventBus,
}

impl EventEmitter {
    /// Emits on `bus`.
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }
}

#[async_trait::async_trait]
impl ChangeListener for EventEmitter {
    async fn changed(&self, change: &Change, kind: ChangeKind) {
        let (kind, lists_changed) = match kind {
            ChangeKind::Published => (EventKind::VersionPublished, true),
            ChangeKind::Deleted => (EventKind::VersionDeleted, true),
            // Caching does not change what `list` says (that comes from the upstream).
            ChangeKind::Cached => (EventKind::VersionCached, false),
        };
        let entry = &change.entry;
        let mut event = Event::new(kind, change.repo.as_str(), change.module.as_str())
            .with_version(&entry.version);
        if let (Some(zip), Some(m)) = (
            entry.zip.as_ref().and_then(|z| z.h1.as_ref()),
            &entry.go_mod.h1,
        ) {
            event = event.with_hashes(zip, m);
        }
        self.bus.emit(event).await;
        if !lists_changed {
            return;
        }
        // `list` and `@latest` of the module changed too; edges drop those entries on this.
        let listed = Event::new(
            EventKind::ListChanged,
            change.repo.as_str(),
            change.module.as_str(),
        )
        .with_version(&entry.version);
        self.bus.emit(listed).await;
    }

    async fn list_changed(&self, repo: &RepoName, module: &ModulePath) {
        let event = Event::new(EventKind::ListChanged, repo.as_str(), module.as_str());
        self.bus.emit(event).await;
    }

    async fn integrity_violation(
        &self,
        repo: &RepoName,
        module: &ModulePath,
        version: &Version,
        detail: &str,
    ) {
        let event = Event::new(
            EventKind::IntegrityViolation,
            repo.as_str(),
            module.as_str(),
        )
        .with_version(version.as_str())
        .with_detail(detail);
        self.bus.emit(event).await;
    }
}
