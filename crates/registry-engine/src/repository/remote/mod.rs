//! A `remote` repository: a caching proxy of an upstream GOPROXY (proxy.golang.org, another
//! corporate proxy), fetched natively over HTTP.
//!
//! - Artifacts of canonical versions (`.info`, `.mod`, `.zip`) are fetched once, verified against
//!   the checksum database (unless the module matches the repository's `no_sum` patterns),
//!   stored content-addressed like local ones, recorded in the module's version index with
//!   provenance `cached`, and kept forever. Bytes that fail verification are never stored or
//!   served ([`artifacts`], [`zip`]).
//! - `list`, `@latest` and non-canonical queries are kept for `metadata_ttl_secs` and served
//!   stale when the upstream fails ([`meta`]).
//! - With the registry's checksum database on ([`crate::ledger`]), every version is recorded
//!   there before it is stored: with the hashes the upstream database verified, or — for
//!   `no_sum` modules — with the hashes of what the first fetch of its zip found (trust on first
//!   use). A version is never served before its record is signed ([`ledger`]).
//! - Concurrent misses share one upstream fetch that outlives the callers ([`Coalescer`],
//!   [`ZipFill`](super::fill::ZipFill)); "not found" answers are cached for
//!   `negative_ttl_secs`; `offline` serves only what is stored; with `fall_through`, upstream
//!   failures are answered as not found (`no-store`) so clients try their next `GOPROXY` entry.

mod access;
mod artifacts;
mod ledger;
mod maintenance;
mod meta;
mod negative;
mod spool;
mod zip;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_core::path::ModulePath;
use strata_core::pattern::match_prefix_patterns;
use strata_core::version::Version;

use self::negative::NegativeCache;
use self::spool::FillDir;
use super::fill::ZipFill;
use crate::change::ChangeListener;
use crate::config::RemoteConfig;
use crate::error::RegistryError;
use crate::index::{IndexStore, VersionEntry, VersionIndex};
use crate::keys::{MetaName, RepoName};
use crate::ledger::Ledger;
use crate::metrics::{FetchLabels, FillLabels, Metrics, RepositoryLabels, SlowFill};
use crate::storage::ObjectStore;
use crate::upstream::{Upstream, UpstreamError};
use strata_service::coalesce::Coalescer;

pub use maintenance::Warmed;
pub use meta::Freshness;

/// The go.sum hashes the checksum database records for a module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSums {
    /// `h1:` of the zip.
    pub zip: String,
    /// `h1:` of the go.mod.
    pub go_mod: String,
}

/// Where a remote repository gets the verified hashes of what it fetches: the checksum
/// database (see [`crate::sumdb`]), or a fake in tests.
#[async_trait::async_trait]
pub trait SumVerifier: Send + Sync + std::fmt::Debug {
    /// The verified hashes of `module@version`.
    async fn expected(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ExpectedSums, RegistryError>;
}

/// A remote repository.
#[derive(Debug, Clone)]
pub struct RemoteRepository {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: RepoName,
    config: RemoteConfig,
    store: Arc<dyn ObjectStore>,
    index: IndexStore,
    upstream: Upstream,
    verifier: Arc<dyn SumVerifier>,
    sumdb_name: String,
    /// The registry's own checksum database, when it has one.
    ledger: Option<Arc<Ledger>>,
    /// Where zip downloads spool: the path of `_fill_dir`.
    spool_dir: PathBuf,
    /// This repository's own download directory, locked while it lives ([`spool`]).
    _fill_dir: FillDir,
    listener: Arc<dyn ChangeListener>,
    metrics: Arc<Metrics>,
    negative: NegativeCache,
    /// Reads of cached versions not yet written to their access documents.
    access: access::AccessLog,
    /// `list`/`@latest`/query fetches in flight.
    metadata: Shared<(ModulePath, MetaName), meta::MetaDoc>,
    /// `.mod`/`.info` fetches in flight (by module, version and extension).
    small: Shared<(ModulePath, Version, &'static str), VersionEntry>,
    /// Zip downloads in flight.
    zips: Mutex<HashMap<(ModulePath, Version), Arc<ZipFill>>>,
}

impl RemoteRepository {
    /// The remote repository `config`, verifying with `verifier` and recording what it stores
    /// in `ledger` (the registry's own checksum database, if it has one).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &RemoteConfig,
        store: Arc<dyn ObjectStore>,
        verifier: Arc<dyn SumVerifier>,
        ledger: Option<Arc<Ledger>>,
        spool_dir: PathBuf,
        listener: Arc<dyn ChangeListener>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RegistryError> {
        let upstream = Upstream::new(&config.upstream).map_err(|e| {
            RegistryError::Internal(format!("repository {:?}: {e}", config.name.as_str()))
        })?;
        let fill_dir = FillDir::create(&spool_dir, config.name.as_str()).map_err(|e| {
            RegistryError::io(
                format!(
                    "repository {:?}: preparing the download spool in {}",
                    config.name.as_str(),
                    spool_dir.display()
                ),
                e,
            )
        })?;
        // Counted from zero at start, so that `increase()` sees the first violation.
        let _ = metrics
            .integrity_violations
            .get_or_create(&RepositoryLabels {
                repository: config.name.to_string(),
            });
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                index: IndexStore::new(config.name.clone(), store.clone()),
                negative: NegativeCache::new(Duration::from_secs(config.negative_ttl_secs)),
                access: access::AccessLog::default(),
                config: config.clone(),
                store,
                upstream,
                verifier,
                ledger,
                // The database name is the verifier key's first field.
                sumdb_name: config
                    .checksum_db
                    .key
                    .trim()
                    .split('+')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                spool_dir: fill_dir.path().to_owned(),
                _fill_dir: fill_dir,
                listener,
                metrics,
                metadata: Shared::default(),
                small: Shared::default(),
                zips: Mutex::default(),
            }),
        })
    }

    /// The repository's name.
    pub fn name(&self) -> &RepoName {
        &self.inner.name
    }

    /// The name of the checksum database the repository verifies with.
    pub fn sumdb_name(&self) -> &str {
        &self.inner.sumdb_name
    }

    /// The upstream's base URL.
    pub fn upstream_url(&self) -> &str {
        self.inner.upstream.base()
    }

    /// The module's index of cached versions.
    pub async fn load_index(&self, module: &ModulePath) -> Result<VersionIndex, RegistryError> {
        Ok(self.inner.index.load(module).await?.index)
    }

    /// The index entry of a cached version (nothing is fetched).
    pub async fn stat(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<VersionEntry, RegistryError> {
        let index = self.inner.index.load(module).await?.index;
        index
            .entry(version)
            .filter(|e| e.is_available())
            .cloned()
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "{module}@{version} (not cached in remote repository {:?})",
                    self.inner.name.as_str()
                ))
            })
    }

    /// Upstream fetches in flight (for tests and metrics).
    pub fn fetches_in_flight(&self) -> usize {
        let zips = self
            .inner
            .zips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        zips + self.inner.small.in_flight() + self.inner.metadata.in_flight()
    }
}

impl Inner {
    /// Whether `module` skips checksum-database verification.
    fn no_sum(&self, module: &ModulePath) -> bool {
        self.config
            .no_sum
            .iter()
            .any(|p| match_prefix_patterns(p, module.as_str()))
    }

    /// The error for something not stored while `offline` is set.
    fn offline(&self, what: &str) -> RegistryError {
        RegistryError::NotFound(format!(
            "{what} (remote repository {:?} is offline and has not cached it)",
            self.name.as_str()
        ))
    }

    /// Maps an upstream failure to what the client sees, remembering "not found" answers.
    fn upstream_error(&self, path: &str, e: UpstreamError) -> RegistryError {
        if e.is_not_found() {
            self.negative.insert(path, e.to_string());
            return RegistryError::Upstream(e);
        }
        if self.config.fall_through {
            RegistryError::FallThrough(e.to_string())
        } else {
            RegistryError::Upstream(e)
        }
    }

    /// The cached "not found" for `path`, if any.
    fn negative(&self, path: &str) -> Option<RegistryError> {
        self.negative
            .get(path)
            .map(|message| RegistryError::NotFound(format!("{message} (cached upstream answer)")))
    }

    /// Counts one finished fill of `artifact` by outcome, and times it (the duration
    /// histogram and the slowest-fills list, see [`crate::metrics::SlowFills`]).
    fn count_fetch(&self, artifact: &'static str, outcome: &'static str, fill: &FillTiming<'_>) {
        self.metrics
            .upstream_fetches
            .get_or_create(&FetchLabels {
                repository: self.name.to_string(),
                artifact,
                outcome,
            })
            .inc();
        let seconds = fill.started.elapsed().as_secs_f64();
        self.metrics
            .fill_duration
            .get_or_create(&FillLabels {
                repository: self.name.to_string(),
                artifact,
            })
            .observe(seconds);
        self.metrics.slowest_fills.record(SlowFill {
            repository: self.name.to_string(),
            module: fill.module.as_str().to_owned(),
            version: fill.version.to_owned(),
            artifact,
            seconds,
        });
    }

    fn count_error(&self, artifact: &'static str, e: &RegistryError, fill: &FillTiming<'_>) {
        self.count_fetch(artifact, fetch_outcome(e), fill);
    }

    /// Reports bytes that failed verification: metric, event, log; the caller returns the
    /// error and stores nothing.
    async fn integrity_violation(
        &self,
        module: &ModulePath,
        version: &Version,
        detail: String,
    ) -> RegistryError {
        tracing::error!(
            repository = %self.name, %module, %version, %detail,
            "upstream artifact failed checksum verification; not stored"
        );
        crate::audit::found(
            "integrity_violation",
            crate::audit::Subject {
                repository: self.name.as_str(),
                module: Some(module.as_str()),
                version: Some(version.as_str()),
            },
            &detail,
        );
        self.metrics
            .integrity_violations
            .get_or_create(&RepositoryLabels {
                repository: self.name.to_string(),
            })
            .inc();
        self.listener
            .integrity_violation(&self.name, module, version, &detail)
            .await;
        RegistryError::Integrity(detail)
    }
}

/// The `outcome` label of a failed upstream fetch: the classes users' proxy benchmarks count.
/// `not_found` (400/404/410), `timeout` (no answer in time), `overloaded` (429 or 503),
/// `unreachable` (connecting or reading failed), `integrity_violation` (bytes the checksum
/// database does not vouch for), `failed` (anything else: another status, a body too large, a
/// checksum-database failure).
pub(crate) fn fetch_outcome(e: &RegistryError) -> &'static str {
    use strata_core::protocol::ErrorKind;
    match e {
        RegistryError::Shared(inner) => fetch_outcome(inner),
        RegistryError::Upstream(UpstreamError::Status {
            status: 429 | 503, ..
        }) => "overloaded",
        RegistryError::Upstream(UpstreamError::Transport { .. }) => "unreachable",
        _ => match e.kind() {
            ErrorKind::NotFound => "not_found",
            ErrorKind::IntegrityViolation => "integrity_violation",
            ErrorKind::UpstreamTimeout => "timeout",
            _ => "failed",
        },
    }
}

/// The entry of a zip download in [`Inner::zips`], held by the download task: removed however
/// the task ends (a panic included), so that the next caller starts a new download instead of
/// joining a dead one.
#[derive(Debug)]
struct FillEntry {
    inner: Arc<Inner>,
    key: (ModulePath, Version),
    fill: Arc<ZipFill>,
}

impl Drop for FillEntry {
    fn drop(&mut self) {
        let mut zips = self
            .inner
            .zips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only this download's own entry.
        if zips
            .get(&self.key)
            .is_some_and(|fill| Arc::ptr_eq(fill, &self.fill))
        {
            zips.remove(&self.key);
        }
    }
}

#[async_trait::async_trait]
impl SumVerifier for crate::sumdb::ChecksumDb {
    async fn expected(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ExpectedSums, RegistryError> {
        let sums = self.lookup(module, version).await?;
        Ok(ExpectedSums {
            zip: sums.zip,
            go_mod: sums.go_mod,
        })
    }
}

/// What a fill was for and when it started, for its metrics.
#[derive(Debug, Clone, Copy)]
pub(super) struct FillTiming<'a> {
    pub(super) module: &'a ModulePath,
    /// The version, or the query of a metadata fill (empty for `list` and `latest`).
    pub(super) version: &'a str,
    pub(super) started: Instant,
}

impl<'a> FillTiming<'a> {
    pub(super) fn start(module: &'a ModulePath, version: &'a str) -> Self {
        Self {
            module,
            version,
            started: Instant::now(),
        }
    }
}

/// Upstream fetches in flight by key: one shared outcome for every caller of a key.
type Shared<K, V> = Coalescer<K, Result<V, Arc<RegistryError>>>;

/// The outcome of the fetch for `key` in `fetches`: joins the one in flight, or runs `work` in
/// a task of its own (which finishes, and stores what it fetched, even if every caller hangs
/// up). `work` is dropped unpolled when joining, so building it must be cheap.
async fn coalesced<K, V, F>(fetches: &Shared<K, V>, key: K, work: F) -> Result<V, RegistryError>
where
    K: Eq + std::hash::Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<V, RegistryError>> + Send + 'static,
{
    fetches
        .run(key, move || async move { work.await.map_err(Arc::new) })
        .await
        .map_err(|abandoned| RegistryError::Internal(abandoned.to_string()))?
        .map_err(RegistryError::Shared)
}

#[cfg(test)]
mod tests;
