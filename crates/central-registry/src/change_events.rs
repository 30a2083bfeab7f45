//! Turns registry changes into change events on the [`EventBus`].

use crate::events::{Event, EventBus, EventKind};
use crate::registry::{Change, ChangeKind, ChangeListener};

/// Emits a `version_published` / `version_deleted` event, and a `list_changed` event, for every
/// change.
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
        let kind = match kind {
            ChangeKind::Published => EventKind::VersionPublished,
            ChangeKind::Deleted => EventKind::VersionDeleted,
        };
        let entry = &change.entry;
        let mut event = Event::new(kind, change.repo.as_str(), change.module.as_str())
            .with_version(&entry.version);
        if let (Some(zip), Some(m)) = (&entry.zip.h1, &entry.go_mod.h1) {
            event = event.with_hashes(zip, m);
        }
        self.bus.emit(event).await;
        // `list` and `@latest` of the module changed too; edges drop those entries on this.
        let listed = Event::new(
            EventKind::ListChanged,
            change.repo.as_str(),
            change.module.as_str(),
        )
        .with_version(&entry.version);
        self.bus.emit(listed).await;
    }
}
