//! Turns registry changes into change events on the [`EventBus`].

use std::collections::HashMap;

use strata_core::path::ModulePath;
use strata_core::version::Version;

use crate::change::{Change, ChangeKind, ChangeListener};
use crate::config::{RegistryConfig, RepositoryConfig};
use crate::events::{Event, EventBus, EventKind};
use crate::keys::RepoName;

/// Emits a `version_published` / `version_deleted` event and a `list_changed` event for every
/// published or deleted version; `version_cached` for a version newly cached by a remote
/// repository; `list_changed` when a remote module's upstream list changed; and
/// `integrity_violation` for upstream bytes that failed verification.
///
/// Every event names, in [`Event::visible_in`], the virtual repositories of `config` that have
/// the changed repository as a member, so that consumers caching per route (edges) drop what
/// those routes show as well.
#[derive(Debug, Clone)]
pub struct EventEmitter {
    bus: EventBus,
    /// Member repository → the virtual repositories that contain it.
    virtuals: HashMap<String, Vec<String>>,
}

impl EventEmitter {
    /// Emits on `bus`, with the virtual-repository membership of `config`.
    pub fn new(bus: EventBus, config: &RegistryConfig) -> Self {
        let mut virtuals: HashMap<String, Vec<String>> = HashMap::new();
        for repo in &config.repositories {
            if let RepositoryConfig::Virtual(v) = repo {
                for member in &v.members {
                    let list = virtuals
                        .entry(member.repository.as_str().to_owned())
                        .or_default();
                    if !list.iter().any(|n| n == v.name.as_str()) {
                        list.push(v.name.as_str().to_owned());
                    }
                }
            }
        }
        Self { bus, virtuals }
    }

    async fn emit(&self, mut event: Event) {
        if let Some(v) = self.virtuals.get(&event.repository) {
            event.visible_in = v.clone();
        }
        self.bus.emit(event).await;
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
        self.emit(event).await;
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
        self.emit(listed).await;
    }

    async fn list_changed(&self, repo: &RepoName, module: &ModulePath) {
        let event = Event::new(EventKind::ListChanged, repo.as_str(), module.as_str());
        self.emit(event).await;
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
        self.emit(event).await;
    }
}
