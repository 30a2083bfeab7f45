//! `Scrub`: re-hashes every stored artifact of every available version against its recorded
//! SHA-256, size and `h1:` ([`Registry::scrub_version`]). A damaged remote-cache artifact is
//! quarantined and fetched again; a damaged local one is quarantined and the version stops
//! being served (it cannot be fetched again). The registry reports both with an
//! `integrity_violation` event on its bus.
//!
//! - **Scope**: one repository (a virtual one means its local and remote members), or every
//!   local and remote repository.
//! - **Rate limit**: `scrub.bytes_per_sec` through a token bucket (one second of burst); the
//!   bytes of a version are paid after it is read, so the average stays at the rate.
//! - **Resumable**: the walk goes through the modules in path order and keeps a cursor,
//!   `sync/scrub/<repo>.json`, in the registry storage (saved every few seconds, at shutdown
//!   and at the end of the pass). A scrub that was killed resumes after the last module it
//!   finished; a finished pass is kept as the last report until the next scrub starts afresh.
//! - **Shutdown**: the walk stops between versions when the worker drains, saves the cursor
//!   and fails retryably, so that another delivery resumes it.
//! - **Schedule**: [`spawn_schedule`] enqueues one scrub per repository every
//!   `scrub.every_hours`, keyed `scrub/<repo>/<interval index>`; the interval is claimed with
//!   compare-and-swap on `sync/scrub/schedule/<repo>.json`, so however many workers run, each
//!   interval is enqueued once.
//!
//! Metrics: `strata_sync_scrub_bytes_total{repository}`,
//! `strata_sync_scrub_versions_total{repository,outcome}` (`intact`, `repaired`,
//! `quarantined`, `repair_failed`) and `strata_sync_scrub_progress_ratio{repository}` (modules done /
//! total of the current pass).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use strata_core::protocol::ErrorKind;
use strata_core::version::Version;
use strata_registry_engine::config::RepositoryConfig;
use strata_registry_engine::maintenance::ScrubOutcome;
use strata_registry_engine::registry::{Registry, Repository};
use strata_service::config::ConfigError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{job_error, queue_job_error};
use crate::registry::{DocError, Write, read_doc, rfc3339, sync_key, unix_now, write_doc};
use crate::runtime::handler::{JobContext, JobError, JobHandler, Outcome};
use crate::runtime::job::Job;
use crate::runtime::queue::{Enqueued, JobQueue, NewJob};

/// How often the cursor is saved during a walk (and always at its end or interruption).
const SAVE_EVERY: Duration = Duration::from_secs(2);
/// Problems kept in the cursor document.
const MAX_PROBLEMS: usize = 100;
/// How often the schedule looks whether a new interval has begun.
const SCHEDULE_TICK: Duration = Duration::from_secs(60);

/// The `[scrub]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    /// Bytes read per second at most (token bucket); 0 = unlimited. Default 32 MiB/s.
    #[serde(default = "default_bytes_per_sec")]
    pub bytes_per_sec: u64,
    /// Scrub every local and remote repository this often; 0 = only when asked. Default 24.
    #[serde(default = "default_every_hours")]
    pub every_hours: u64,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        Self {
            bytes_per_sec: default_bytes_per_sec(),
            every_hours: default_every_hours(),
        }
    }
}

fn default_bytes_per_sec() -> u64 {
    32 << 20
}
fn default_every_hours() -> u64 {
    24
}

impl ScrubConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.every_hours > 24 * 366 {
            return Err(ConfigError::invalid(
                "scrub.every_hours",
                "must be at most a year (8784)",
            ));
        }
        Ok(())
    }
}

/// Labels with a repository.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryLabels {
    /// The repository.
    pub repository: String,
}

/// Labels of scrubbed versions.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScrubLabels {
    /// The repository.
    pub repository: String,
    /// `intact`, `repaired`, `quarantined`, `repair_failed`.
    pub outcome: &'static str,
}

/// The scrubber's metrics, registered with the worker's by [`ScrubMetrics::register`].
#[derive(Debug, Default)]
pub struct ScrubMetrics {
    /// Bytes read and hashed.
    pub bytes: Family<RepositoryLabels, Counter>,
    /// Versions scrubbed by outcome.
    pub versions: Family<ScrubLabels, Counter>,
    /// Modules done / total of the current pass.
    pub progress: Family<RepositoryLabels, Gauge<f64, AtomicU64>>,
}

impl ScrubMetrics {
    /// Registers the families (`scrub_bytes`, `scrub_versions`, `scrub_progress_ratio`) in the
    /// worker's `strata_sync` registry.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "scrub_bytes",
            "Bytes of stored artifacts re-hashed by the scrubber",
            self.bytes.clone(),
        );
        registry.register(
            "scrub_versions",
            "Versions scrubbed, by outcome",
            self.versions.clone(),
        );
        registry.register(
            "scrub_progress_ratio",
            "Modules scrubbed / modules in the repository, for the current pass",
            self.progress.clone(),
        );
    }

    fn set_progress(&self, repository: &str, done: u64, total: u64) {
        let ratio = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        self.progress
            .get_or_create(&RepositoryLabels {
                repository: repository.to_owned(),
            })
            .set(ratio);
    }
}

/// A token bucket over bytes: `rate` per second, one second of burst. Spending more than the
/// bucket holds leaves a debt that is waited off.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `bytes_per_sec`; `None` for 0 (unlimited).
    pub fn new(bytes_per_sec: u64, now: Instant) -> Option<Self> {
        (bytes_per_sec > 0).then_some(Self {
            rate: bytes_per_sec as f64,
            tokens: bytes_per_sec as f64,
            last: now,
        })
    }

    /// Spends `bytes` at `now`; returns how long to wait before reading more.
    pub fn spend(&mut self, bytes: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The progress of a scrub pass over one repository: `sync/scrub/<repo>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubCursor {
    /// The repository.
    pub repository: String,
    /// When the pass started (RFC 3339).
    pub started_at: String,
    /// When the cursor was last saved.
    pub updated_at: String,
    /// When the pass ended; the next scrub starts a new pass.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The last module whose versions were all scrubbed (modules go in path order).
    #[serde(default)]
    pub last_module: Option<String>,
    /// Modules done.
    pub modules_done: u64,
    /// Modules in the repository when last counted.
    pub modules_total: u64,
    /// Versions scrubbed in this pass.
    pub versions: u64,
    /// Bytes read in this pass.
    pub bytes: u64,
    /// Versions by outcome.
    #[serde(default)]
    pub outcomes: BTreeMap<String, u64>,
    /// What was found damaged (`module@version: problems`), the first 100.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// The key of a repository's scrub cursor.
pub fn cursor_key(
    repository: &str,
) -> Result<strata_registry_engine::storage::ObjectKey, JobError> {
    sync_key(&format!("scrub/{repository}.json")).map_err(|e| JobError::permanent(e.to_string()))
}

/// The scrub cursor of `repository`, if a pass ever ran.
pub async fn cursor(registry: &Registry, repository: &str) -> Result<Option<ScrubCursor>, String> {
    let key = cursor_key(repository).map_err(|e| e.to_string())?;
    read_doc(registry.store(), &key)
        .await
        .map(|doc| doc.map(|(c, _)| c))
        .map_err(|e| e.to_string())
}

/// Runs `Scrub` jobs.
#[derive(Debug)]
pub struct ScrubHandler {
    registry: Arc<Registry>,
    bytes_per_sec: u64,
    metrics: Arc<ScrubMetrics>,
}

fn outcome_label(outcome: &ScrubOutcome) -> &'static str {
    match outcome {
        ScrubOutcome::Intact => "intact",
        ScrubOutcome::Repaired { .. } => "repaired",
        ScrubOutcome::Quarantined { .. } => "quarantined",
        ScrubOutcome::RepairFailed { .. } => "repair_failed",
    }
}

fn doc_error(error: DocError) -> JobError {
    match error {
        DocError::Corrupt { .. } => JobError::permanent(error.to_string()),
        _ => JobError::retryable(error.to_string()),
    }
}

impl ScrubHandler {
    /// A scrubber reading at most `bytes_per_sec` (0: unlimited).
    pub fn new(registry: Arc<Registry>, bytes_per_sec: u64, metrics: Arc<ScrubMetrics>) -> Self {
        Self {
            registry,
            bytes_per_sec,
            metrics,
        }
    }

    /// The stored repositories a scrub of `repository` covers.
    fn targets(&self, repository: Option<&str>) -> Result<Vec<String>, JobError> {
        let Some(name) = repository else {
            return Ok(stored_repositories(&self.registry));
        };
        let entry = self
            .registry
            .repo(name)
            .map_err(|e| job_error(&format!("scrub {name}"), &e))?;
        Ok(match &entry.config {
            RepositoryConfig::Virtual(v) => v
                .members
                .iter()
                .map(|m| m.repository.as_str().to_owned())
                .collect(),
            _ => vec![name.to_owned()],
        })
    }

    async fn load_cursor(&self, repo: &str) -> Result<ScrubCursor, JobError> {
        let key = cursor_key(repo)?;
        let now = rfc3339(unix_now());
        Ok(
            match read_doc::<ScrubCursor>(self.registry.store(), &key).await {
                Ok(Some((cursor, _))) if cursor.finished_at.is_none() => cursor,
                Ok(_) => ScrubCursor {
                    repository: repo.to_owned(),
                    started_at: now.clone(),
                    updated_at: now,
                    ..ScrubCursor::default()
                },
                // An unreadable cursor is replaced by a new pass: it only saves work.
                Err(DocError::Corrupt { .. }) => ScrubCursor {
                    repository: repo.to_owned(),
                    started_at: now.clone(),
                    updated_at: now,
                    ..ScrubCursor::default()
                },
                Err(e) => return Err(doc_error(e)),
            },
        )
    }

    async fn save_cursor(&self, cursor: &mut ScrubCursor) -> Result<(), JobError> {
        cursor.updated_at = rfc3339(unix_now());
        let key = cursor_key(&cursor.repository)?;
        write_doc(self.registry.store(), &key, cursor, Write::Overwrite)
            .await
            .map_err(doc_error)
    }

    /// One pass (or the rest of one) over `repo`.
    async fn scrub_repo(
        &self,
        repo: &str,
        bucket: &mut Option<TokenBucket>,
        context: &JobContext,
    ) -> Result<ScrubCursor, JobError> {
        let what = format!("scrub {repo}");
        let mut cursor = self.load_cursor(repo).await?;
        let modules = self
            .registry
            .modules(repo)
            .await
            .map_err(|e| job_error(&what, &e))?;
        let start = match &cursor.last_module {
            Some(last) => modules.partition_point(|m| m.as_str() <= last.as_str()),
            None => 0,
        };
        let total = modules.len() as u64;
        cursor.modules_total = total;
        cursor.modules_done = start as u64;
        self.metrics.set_progress(repo, cursor.modules_done, total);
        let labels = RepositoryLabels {
            repository: repo.to_owned(),
        };
        let mut saved = Instant::now();
        for module in &modules[start..] {
            let index = match self.registry.version_index(repo, module).await {
                Ok(index) => index,
                Err(e) => {
                    self.save_cursor(&mut cursor).await?;
                    return Err(job_error(&format!("{what} {module}"), &e));
                }
            };
            for entry in index.available() {
                if context.shutdown.is_cancelled() {
                    return Err(self.interrupted(&mut cursor).await);
                }
                let Ok(version) = Version::new(&entry.version) else {
                    tracing::warn!(repository = repo, %module, version = %entry.version,
                        "scrub: skipping a non-canonical version in the index");
                    continue;
                };
                let report = match self.registry.scrub_version(repo, module, &version).await {
                    Ok(report) => report,
                    // Deleted or forgotten since the index was read.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => {
                        self.save_cursor(&mut cursor).await?;
                        return Err(job_error(&format!("{what} {module}@{version}"), &e));
                    }
                };
                let outcome = outcome_label(&report.outcome);
                self.metrics
                    .bytes
                    .get_or_create(&labels)
                    .inc_by(report.bytes);
                self.metrics
                    .versions
                    .get_or_create(&ScrubLabels {
                        repository: repo.to_owned(),
                        outcome,
                    })
                    .inc();
                cursor.versions += 1;
                cursor.bytes += report.bytes;
                *cursor.outcomes.entry(outcome.to_owned()).or_default() += 1;
                if let ScrubOutcome::Repaired { problems }
                | ScrubOutcome::Quarantined { problems }
                | ScrubOutcome::RepairFailed { problems, .. } = &report.outcome
                {
                    tracing::error!(repository = repo, %module, %version, outcome,
                        problems = %problems.join("; "), "scrub: damaged artifacts found");
                    if cursor.problems.len() < MAX_PROBLEMS {
                        cursor.problems.push(format!(
                            "{module}@{version}: {outcome}: {}",
                            problems.join("; ")
                        ));
                    }
                }
                if let Some(bucket) = bucket.as_mut() {
                    let wait = bucket.spend(report.bytes, Instant::now());
                    if !wait.is_zero() {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = context.shutdown.cancelled() => {
                                return Err(self.interrupted(&mut cursor).await);
                            }
                        }
                    }
                }
            }
            cursor.last_module = Some(module.as_str().to_owned());
            cursor.modules_done += 1;
            self.metrics.set_progress(repo, cursor.modules_done, total);
            if saved.elapsed() >= SAVE_EVERY {
                self.save_cursor(&mut cursor).await?;
                saved = Instant::now();
            }
        }
        cursor.finished_at = Some(rfc3339(unix_now()));
        self.save_cursor(&mut cursor).await?;
        self.metrics.set_progress(repo, total, total);
        Ok(cursor)
    }

    /// Saves the cursor and says where the next delivery resumes.
    async fn interrupted(&self, cursor: &mut ScrubCursor) -> JobError {
        if let Err(e) = self.save_cursor(cursor).await {
            return e;
        }
        JobError::retryable(format!(
            "scrub of {} stopped for shutdown after {}/{} modules; the next run resumes {}",
            cursor.repository,
            cursor.modules_done,
            cursor.modules_total,
            match &cursor.last_module {
                Some(m) => format!("after {m}"),
                None => "from the start".to_owned(),
            }
        ))
    }
}

/// Every local and remote repository, in configuration order.
pub fn stored_repositories(registry: &Registry) -> Vec<String> {
    registry
        .repositories()
        .iter()
        .filter(|e| !matches!(e.repo, Repository::Virtual(_)))
        .map(|e| e.config.name().as_str().to_owned())
        .collect()
}

fn summary(cursor: &ScrubCursor) -> String {
    let outcomes: Vec<String> = cursor
        .outcomes
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    format!(
        "{}: {} versions in {} modules, {} bytes{}{}",
        cursor.repository,
        cursor.versions,
        cursor.modules_total,
        cursor.bytes,
        if outcomes.is_empty() { "" } else { ": " },
        outcomes.join(", ")
    )
}

#[async_trait]
impl JobHandler for ScrubHandler {
    async fn run(&self, job: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        let Job::Scrub { repository } = job else {
            return Err(JobError::permanent(format!(
                "the scrub handler cannot run {} jobs",
                job.kind()
            )));
        };
        let targets = self.targets(repository.as_ref().map(|r| r.as_str()))?;
        let mut bucket = TokenBucket::new(self.bytes_per_sec, Instant::now());
        let mut done = Vec::with_capacity(targets.len());
        for repo in &targets {
            let cursor = self.scrub_repo(repo, &mut bucket, context).await?;
            done.push(summary(&cursor));
        }
        Ok(Outcome::with_detail(done.join("; ")))
    }
}

/// When a repository was last scheduled: `sync/scrub/schedule/<repo>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScheduleDoc {
    /// The interval index (Unix seconds / interval) last enqueued.
    index: u64,
}

/// One look of the schedule at `now_secs`: for each local and remote repository whose current
/// interval (`now_secs / interval_secs`) has not been claimed yet, claims it (compare-and-swap)
/// and enqueues a scrub keyed `scrub/<repo>/<index>`. Returns what this call enqueued.
pub async fn schedule_tick(
    registry: &Registry,
    queue: &dyn JobQueue,
    interval_secs: u64,
    now_secs: u64,
) -> Result<Vec<Enqueued>, String> {
    let index = now_secs / interval_secs.max(1);
    let mut enqueued = Vec::new();
    for repo in stored_repositories(registry) {
        let key = sync_key(&format!("scrub/schedule/{repo}.json")).map_err(|e| e.to_string())?;
        let current = read_doc::<ScheduleDoc>(registry.store(), &key)
            .await
            .or_else(|e| match e {
                DocError::Corrupt { .. } => Ok(None),
                e => Err(e.to_string()),
            })?;
        let how = match current {
            Some((doc, _)) if doc.index >= index => continue,
            Some((_, etag)) => Write::IfMatch(etag),
            None => Write::IfAbsent,
        };
        match write_doc(registry.store(), &key, &ScheduleDoc { index }, how).await {
            Ok(()) => {}
            // Another worker claimed this interval.
            Err(DocError::Conflict { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        }
        let repository = strata_registry_engine::keys::RepoName::new(&repo)
            .map_err(|e| format!("{repo}: {e}"))?;
        let job = NewJob::new(Job::Scrub {
            repository: Some(repository),
        })
        .with_key(format!("scrub/{repo}/{index}"));
        let queued = queue
            .enqueue(job)
            .await
            .map_err(|e| queue_job_error(&format!("scheduling a scrub of {repo}"), &e))
            .map_err(|e| e.to_string())?;
        tracing::info!(repository = %repo, index, id = %queued.id, "scheduled a scrub");
        enqueued.push(queued);
    }
    Ok(enqueued)
}

/// Enqueues scrubs every `every_hours` (see [`schedule_tick`]) until `shutdown`; `None` when
/// `every_hours` is 0.
pub fn spawn_schedule(
    registry: Arc<Registry>,
    queue: Arc<dyn JobQueue>,
    every_hours: u64,
    shutdown: CancellationToken,
) -> Option<JoinHandle<()>> {
    if every_hours == 0 {
        return None;
    }
    let interval = every_hours * 3600;
    Some(tokio::spawn(async move {
        loop {
            if let Err(error) = schedule_tick(&registry, queue.as_ref(), interval, unix_now()).await
            {
                tracing::warn!(%error, "scrub schedule: will try again");
            }
            tokio::select! {
                () = tokio::time::sleep(SCHEDULE_TICK) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_second_of_burst_then_the_rate() {
        let start = Instant::now();
        assert!(TokenBucket::new(0, start).is_none(), "0 is unlimited");
        let Some(mut bucket) = TokenBucket::new(1000, start) else {
            unreachable!("a positive rate has a bucket");
        };
        // A full bucket pays 1000 bytes at once.
        assert_eq!(bucket.spend(1000, start), Duration::ZERO);
        // The next 500 are a debt of half a second.
        assert_eq!(bucket.spend(500, start), Duration::from_millis(500));
        // After waiting it off, the bucket is empty again: 250 more wait 250 ms.
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.spend(250, later), Duration::from_millis(250));
        // A long idle refills only up to one second's worth.
        let idle = later + Duration::from_secs(60);
        assert_eq!(bucket.spend(1000, idle), Duration::ZERO);
        assert_eq!(bucket.spend(1, idle), Duration::from_millis(1));
    }

    #[test]
    fn summaries_name_outcomes() {
        let cursor = ScrubCursor {
            repository: "gocache".into(),
            versions: 3,
            modules_total: 2,
            bytes: 42,
            outcomes: [("intact".to_owned(), 2), ("repaired".to_owned(), 1)].into(),
            ..ScrubCursor::default()
        };
        assert_eq!(
            summary(&cursor),
            "gocache: 3 versions in 2 modules, 42 bytes: 2 intact, 1 repaired"
        );
    }
}
