//! What a write changed, and who is told: the [`ChangeListener`] every repository reports its
//! stored changes to (the registry's event emitter, or [`NoListener`]). A layer below the
//! repositories and the registry, so that both can name it.

use strata_core::path::ModulePath;
use strata_core::version::Version;

use crate::index::VersionEntry;
use crate::keys::RepoName;

/// What happened in a write, for the caller to report (events, metrics).
#[derive(Debug, Clone)]
pub struct Change {
    /// The repository.
    pub repo: RepoName,
    /// The module.
    pub module: ModulePath,
    /// The version's index entry after the change.
    pub entry: VersionEntry,
}

/// What kind of change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new version became available.
    Published,
    /// A version was deleted.
    Deleted,
    /// A version was newly cached from an upstream (remote repositories).
    Cached,
}

/// Told about every change after it is stored, before the client gets its answer (so a change
/// event is durable by the time a publisher sees 201).
#[async_trait::async_trait]
pub trait ChangeListener: Send + Sync + std::fmt::Debug {
    /// Reports one change.
    async fn changed(&self, change: &Change, kind: ChangeKind);

    /// Reports that a remote module's `list` changed upstream.
    async fn list_changed(&self, _repo: &RepoName, _module: &ModulePath) {}

    /// Reports upstream bytes that failed checksum verification (never stored).
    async fn integrity_violation(
        &self,
        _repo: &RepoName,
        _module: &ModulePath,
        _version: &Version,
        _detail: &str,
    ) {
    }
}

/// A listener that does nothing (for tools and tests that need no events).
#[derive(Debug, Default)]
pub struct NoListener;

#[async_trait::async_trait]
impl ChangeListener for NoListener {
    async fn changed(&self, _: &Change, _: ChangeKind) {}
}
