//! `Retention`: drops versions a remote repository cached but nobody used for its policy's
//! `max_idle_days`.
//!
//! ```toml
//! [[retention]]
//! repository = "gocache"   # a remote repository
//! max_idle_days = 30
//! ```
//!
//! A version's last use is the latest of
//! - the registry's own record ([`Registry::cached_versions`]: the last day it was read through
//!   the registry, or the day it was stored), and
//! - the edges' reports, when the worker has Redis: `HGET <prefix>:last-read:<name>
//!   <module>@<version>` (Unix seconds) for the repository and every virtual repository that
//!   has it as a member (edges serve through those).
//!
//! Versions idle for `max_idle_days` days or more are the candidates, except versions pinned by
//! a warm-up set (`sync/pins/*.json`, for the repository or a virtual repository over it). A
//! dry run only lists them; a real run forgets exactly those ([`Registry::forget_cached`]) and
//! clears their prefetch completion markers, so that a later warm-up fetches them again. Both
//! write the report `sync/retention/<repo>/last.json` (`GET /api/retention/<repo>`). Local
//! repositories are refused: published versions are never removed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_registry_engine::keys::RepoName;
use strata_registry_engine::registry::{Registry, Repository};
use strata_service::config::ConfigError;
use strata_service::events::redact_url;

use super::{job_error, names_serving};
use crate::registry::{DocError, Write, read_doc, rfc3339, sync_key, unix_now, write_doc};
use crate::runtime::handler::{JobContext, JobError, JobHandler, Outcome};
use crate::runtime::job::Job;
use crate::runtime::queue::JobQueue;

/// Fields per `HMGET`.
const HMGET_CHUNK: usize = 500;

/// One `[[retention]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// The remote repository.
    pub repository: RepoName,
    /// Versions not used for this many days (or more) are removed. At least 1.
    pub max_idle_days: u64,
}

/// Checks the `[[retention]]` entries: one per repository, `max_idle_days` ≥ 1.
pub fn validate_policies(policies: &[RetentionPolicy]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for policy in policies {
        if policy.max_idle_days == 0 {
            return Err(ConfigError::invalid(
                "retention.max_idle_days",
                format!("{}: must be at least 1", policy.repository.as_str()),
            ));
        }
        if !seen.insert(policy.repository.as_str()) {
            return Err(ConfigError::invalid(
                "retention.repository",
                format!("{} has two policies", policy.repository.as_str()),
            ));
        }
    }
    Ok(())
}

/// Where edges report the last read of each version: Redis hashes
/// `<prefix>:last-read:<repo>`, field `<module>@<version>`, value Unix seconds.
#[derive(Clone)]
pub struct LastReads {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for LastReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastReads")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl LastReads {
    /// Reads from the Redis at `url` under `prefix` (the edges' `heat.prefix`, default
    /// `strata`).
    pub fn new(url: &str, prefix: impl Into<String>) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("redis url {:?}: {e}", redact_url(url)))?;
        Ok(Self {
            client,
            prefix: prefix.into(),
            timeout: Duration::from_secs(5),
        })
    }

    /// The key of the hash of `repo`.
    pub fn key(&self, repo: &str) -> String {
        strata_service::keys::last_read_key(&self.prefix, repo)
    }

    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("connecting to redis: {e}"))
    }

    /// The latest edge read (Unix seconds) of each field over the hashes of `repos`.
    pub async fn latest(
        &self,
        repos: &[String],
        fields: &[String],
    ) -> Result<Vec<Option<u64>>, String> {
        let mut latest = vec![None; fields.len()];
        if fields.is_empty() {
            return Ok(latest);
        }
        let mut connection = self.connect().await?;
        for repo in repos {
            let key = self.key(repo);
            for (chunk_no, chunk) in fields.chunks(HMGET_CHUNK).enumerate() {
                let values: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(&key)
                    .arg(chunk)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| format!("HMGET {key}: {e}"))?;
                for (i, value) in values.into_iter().enumerate() {
                    let Some(secs) = value.and_then(|v| v.trim().parse::<u64>().ok()) else {
                        continue;
                    };
                    let slot = &mut latest[chunk_no * HMGET_CHUNK + i];
                    *slot = Some(slot.map_or(secs, |s: u64| s.max(secs)));
                }
            }
        }
        Ok(latest)
    }
}

/// A version retention removes (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The module.
    pub module: String,
    /// The version.
    pub version: String,
    /// Its last use, in days since the Unix epoch.
    pub last_used_day: u64,
    /// Bytes of its stored artifacts.
    pub bytes: u64,
}

/// `sync/retention/<repo>/last.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// The remote repository.
    pub repository: String,
    /// Whether nothing was removed.
    pub dry_run: bool,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// The day it was computed for (days since the Unix epoch).
    pub today: u64,
    /// The policy.
    pub max_idle_days: u64,
    /// Versions cached.
    pub cached_versions: u64,
    /// Idle versions kept because a warm-up set pins them.
    pub kept_pinned: u64,
    /// The idle versions: removed, or with `dry_run` what would be.
    pub candidates: Vec<Candidate>,
    /// Versions removed (0 in a dry run).
    pub removed: u64,
    /// Their bytes.
    pub removed_bytes: u64,
}

/// The key of a repository's last retention report.
pub fn report_key(repository: &str) -> Result<strata_registry_engine::storage::ObjectKey, String> {
    sync_key(&format!("retention/{repository}/last.json")).map_err(|e| e.to_string())
}

/// The last retention report of `repository`.
pub async fn last_report(
    registry: &Registry,
    repository: &str,
) -> Result<Option<RetentionReport>, DocError> {
    let Ok(key) = report_key(repository) else {
        return Ok(None);
    };
    Ok(read_doc(registry.store(), &key).await?.map(|(r, _)| r))
}

/// Today, in days since the Unix epoch.
fn today() -> u64 {
    unix_now() / 86_400
}

/// Runs `Retention` jobs.
pub struct RetentionHandler {
    registry: Arc<Registry>,
    queue: Arc<dyn JobQueue>,
    policies: Vec<RetentionPolicy>,
    last_reads: Option<LastReads>,
    today: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for RetentionHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionHandler")
            .field("policies", &self.policies)
            .field("last_reads", &self.last_reads)
            .finish_non_exhaustive()
    }
}

impl RetentionHandler {
    /// A handler for `policies`; each must name a remote repository of `registry`.
    pub fn new(
        registry: Arc<Registry>,
        queue: Arc<dyn JobQueue>,
        policies: Vec<RetentionPolicy>,
        last_reads: Option<LastReads>,
    ) -> Result<Self, String> {
        for policy in &policies {
            let name = policy.repository.as_str();
            match registry.repo(name).map(|e| &e.repo) {
                Ok(Repository::Remote(_)) => {}
                Ok(_) => {
                    return Err(format!(
                        "retention: repository {name:?} is not a remote repository (only cached \
                         versions are ever removed)"
                    ));
                }
                Err(e) => return Err(format!("retention: {e}")),
            }
        }
        Ok(Self {
            registry,
            queue,
            policies,
            last_reads,
            today: Arc::new(today),
        })
    }

    /// Uses `today` (days since the Unix epoch) instead of the clock: tests place versions in
    /// the past this way.
    #[must_use]
    pub fn with_today(mut self, today: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.today = Arc::new(today);
        self
    }

    /// `module@version` pairs pinned by warm-up sets for `repo` (directly or through a virtual
    /// repository over it).
    async fn pinned(&self, repo: &str) -> Result<HashSet<(String, String)>, JobError> {
        let pins = super::warmup::load_pins(&self.registry)
            .await
            .map_err(|e| JobError::retryable(format!("retention {repo}: reading pins: {e}")))?;
        let mut pinned = HashSet::new();
        for pin in pins {
            // A pin whose repository is gone still pins: never remove what someone pinned.
            let applies = match self.registry.remotes_of(&pin.repository) {
                Ok(remotes) => remotes.iter().any(|r| r.name().as_str() == repo),
                Err(_) => true,
            };
            if applies {
                pinned.extend(pin.items.into_iter().map(|i| (i.module, i.version)));
            }
        }
        Ok(pinned)
    }

    /// The report of what `policy` selects on `today` (nothing removed yet).
    pub async fn plan(
        &self,
        policy: &RetentionPolicy,
        today: u64,
        dry_run: bool,
    ) -> Result<RetentionReport, JobError> {
        let repo = policy.repository.as_str();
        let what = format!("retention {repo}");
        let cached = self
            .registry
            .cached_versions(repo)
            .await
            .map_err(|e| job_error(&what, &e))?;
        let names = names_serving(&self.registry, repo);
        let fields: Vec<String> = cached
            .iter()
            .map(|c| format!("{}@{}", c.module, c.version))
            .collect();
        let edge_reads = match &self.last_reads {
            Some(reads) => reads
                .latest(&names, &fields)
                .await
                .map_err(|e| JobError::retryable(format!("{what}: edge reads: {e}")))?,
            None => vec![None; fields.len()],
        };
        let pinned = self.pinned(repo).await?;
        let mut kept_pinned = 0;
        let mut candidates = Vec::new();
        for (version, edge_read) in cached.iter().zip(edge_reads) {
            let last_used_day = version
                .last_used_day
                .max(edge_read.map_or(0, |secs| secs / 86_400));
            if today.saturating_sub(last_used_day) < policy.max_idle_days {
                continue;
            }
            let key = (version.module.to_string(), version.version.to_string());
            if pinned.contains(&key) {
                kept_pinned += 1;
                continue;
            }
            candidates.push(Candidate {
                module: key.0,
                version: key.1,
                last_used_day,
                bytes: version.bytes,
            });
        }
        candidates.sort_by(|a, b| {
            (a.module.as_str(), a.version.as_str()).cmp(&(b.module.as_str(), b.version.as_str()))
        });
        Ok(RetentionReport {
            repository: repo.to_owned(),
            dry_run,
            generated_at: rfc3339(unix_now()),
            today,
            max_idle_days: policy.max_idle_days,
            cached_versions: cached.len() as u64,
            kept_pinned,
            candidates,
            removed: 0,
            removed_bytes: 0,
        })
    }

    /// Forgets one candidate and clears the completion markers of its prefetches.
    async fn remove(
        &self,
        repo: &str,
        names: &[String],
        c: &Candidate,
    ) -> Result<Option<u64>, JobError> {
        let what = format!("retention {repo} {}@{}", c.module, c.version);
        let (Ok(module), Ok(version)) = (ModulePath::new(&c.module), Version::new(&c.version))
        else {
            return Err(JobError::permanent(format!("{what}: not a module version")));
        };
        let freed = self
            .registry
            .forget_cached(repo, &module, &version)
            .await
            .map_err(|e| job_error(&what, &e))?;
        for name in names {
            let Ok(repository) = RepoName::new(name) else {
                continue;
            };
            for mod_only in [false, true] {
                let job = Job::Prefetch {
                    repository: repository.clone(),
                    module: module.clone(),
                    version: version.clone(),
                    mod_only,
                };
                if let Some(key) = job.natural_key() {
                    self.queue
                        .forget_completed(&key)
                        .await
                        .map_err(|e| JobError::retryable(format!("{what}: clearing {key}: {e}")))?;
                }
            }
        }
        Ok(freed)
    }
}

#[async_trait]
impl JobHandler for RetentionHandler {
    async fn run(&self, job: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        let Job::Retention {
            repository,
            dry_run,
        } = job
        else {
            return Err(JobError::permanent(format!(
                "the retention handler cannot run {} jobs",
                job.kind()
            )));
        };
        let repo = repository.as_str();
        let entry = self
            .registry
            .repo(repo)
            .map_err(|e| job_error("retention", &e))?;
        match entry.repo {
            Repository::Remote(_) => {}
            Repository::Local(_) => {
                return Err(JobError::permanent(format!(
                    "retention: {repo:?} is a local repository; published versions are never \
                     removed"
                )));
            }
            Repository::Virtual(_) => {
                return Err(JobError::permanent(format!(
                    "retention: {repo:?} is a virtual repository; it stores nothing itself (name \
                     its remote member)"
                )));
            }
        }
        let Some(policy) = self.policies.iter().find(|p| p.repository == *repository) else {
            return Err(JobError::permanent(format!(
                "retention: no [[retention]] policy for repository {repo:?}"
            )));
        };
        let mut report = self.plan(policy, (self.today)(), *dry_run).await?;
        if !*dry_run {
            let names = names_serving(&self.registry, repo);
            for candidate in &report.candidates {
                if context.shutdown.is_cancelled() {
                    return Err(JobError::retryable(format!(
                        "retention {repo}: stopped for shutdown after removing {} of {} versions",
                        report.removed,
                        report.candidates.len()
                    )));
                }
                if let Some(bytes) = self.remove(repo, &names, candidate).await? {
                    report.removed += 1;
                    report.removed_bytes += bytes;
                }
            }
        }
        let key = report_key(repo).map_err(JobError::permanent)?;
        write_doc(self.registry.store(), &key, &report, Write::Overwrite)
            .await
            .map_err(|e| {
                JobError::retryable(format!("retention {repo}: writing the report: {e}"))
            })?;
        let bytes: u64 = report.candidates.iter().map(|c| c.bytes).sum();
        Ok(Outcome::with_detail(if *dry_run {
            format!(
                "dry run: {} of {} cached versions ({bytes} bytes) idle for {}+ days would be \
                 removed; {} pinned kept",
                report.candidates.len(),
                report.cached_versions,
                policy.max_idle_days,
                report.kept_pinned
            )
        } else {
            format!(
                "removed {} of {} cached versions ({} bytes) idle for {}+ days; {} pinned kept",
                report.removed,
                report.cached_versions,
                report.removed_bytes,
                policy.max_idle_days,
                report.kept_pinned
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(repo: &str, days: u64) -> RetentionPolicy {
        RetentionPolicy {
            repository: RepoName::new(repo).unwrap(),
            max_idle_days: days,
        }
    }

    #[test]
    fn policies_are_validated() {
        assert!(validate_policies(&[policy("gocache", 30), policy("other", 1)]).is_ok());
        let zero = validate_policies(&[policy("gocache", 0)]).unwrap_err();
        assert!(
            zero.to_string().contains("retention.max_idle_days"),
            "{zero}"
        );
        let twice = validate_policies(&[policy("gocache", 3), policy("gocache", 5)]).unwrap_err();
        assert!(twice.to_string().contains("two policies"), "{twice}");
    }

    #[test]
    fn last_read_keys_follow_the_edges() {
        let reads = LastReads::new("redis://127.0.0.1:1", "strata").unwrap();
        assert_eq!(reads.key("go"), "strata:last-read:go");
        assert!(LastReads::new("not a url", "strata").is_err());
    }
}
