//! Heat-driven refresh: the modules edges read most get their `list` and `@latest` refreshed
//! (and new versions prefetched, by the `refresh_metadata` handler) before their TTL runs out.
//!
//! Edges add their read counts to `ZINCRBY <prefix>:heat:<repo> <reads> <module>` (see the
//! edge's `heat` module). Every `interval_ms` one worker (the period is claimed in the same
//! Redis, `<prefix>:heat-refresh:tick:heat/<period>`) does, per repository with an upstream:
//! 1. `ZREVRANGE <prefix>:heat:<repo> 0 <top-1>`: the hottest modules, hottest first;
//! 2. one `refresh_metadata` job each, keyed `refresh/<repo>/<module>/<period>`, in that order;
//! 3. `ZUNIONSTORE key 1 key WEIGHTS <decay>` and `ZREMRANGEBYSCORE key -inf (<floor>` in one
//!    `MULTI`: every score is multiplied by `decay` and what falls below `floor` is dropped,
//!    so heat fades unless reads keep coming.
//!
//! ```toml
//! [heat]
//! enabled = true          # default; heat needs a Redis: `redis_url` or the jobs' Redis
//! redis_url = "redis://127.0.0.1:6379"  # default: jobs.url when jobs are in Redis
//! prefix = "strata"       # must match the edges' heat.prefix
//! top = 100
//! interval_ms = 300000
//! decay = 0.5
//! floor = 0.5
//! repositories = []       # default: every repository with an upstream (remote or virtual)
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use strata_core::path::ModulePath;
use strata_registry_engine::keys::RepoName;
use strata_service::config::ConfigError;
use strata_service::events::redact_url;

use super::ticks::{Periodic, RedisLink, TickClaims, claim_ttl_for, next_period_start, period_of};
use crate::runtime::job::Job;
use crate::runtime::queue::JobsConfig;
use crate::runtime::queue::{JobQueue, NewJob};

/// The `[heat]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeatConfig {
    /// Refresh hot modules at all. Default true (it still needs a Redis).
    pub enabled: bool,
    /// The Redis edges report heat to. Default: the jobs' Redis, if jobs are in Redis.
    pub redis_url: Option<String>,
    /// Key prefix; must match the edges' `heat.prefix`. Default `strata`.
    pub prefix: String,
    /// Modules refreshed per repository and interval. Default 100.
    pub top: usize,
    /// Interval in milliseconds. Default 300000 (5 minutes).
    pub interval_ms: u64,
    /// Factor applied to every score after each interval, in (0, 1]. Default 0.5.
    pub decay: f64,
    /// Members whose decayed score falls below this are dropped. Default 0.5.
    pub floor: f64,
    /// Repositories to refresh. Default: every repository with an upstream.
    pub repositories: Vec<RepoName>,
    /// Redis connect and command timeout. Default 5000 ms.
    pub command_timeout_ms: u64,
}

// Validation rejects NaN, so the floats compare reflexively.
impl Eq for HeatConfig {}

impl Default for HeatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            redis_url: None,
            prefix: strata_service::keys::DEFAULT_HEAT_PREFIX.into(),
            top: 100,
            interval_ms: 300_000,
            decay: 0.5,
            floor: 0.5,
            repositories: Vec::new(),
            command_timeout_ms: 5_000,
        }
    }
}

impl HeatConfig {
    /// The Redis to read heat from, if heat is on and there is one.
    pub fn redis(&self, jobs: &JobsConfig) -> Option<String> {
        if !self.enabled {
            return None;
        }
        match (&self.redis_url, jobs) {
            (Some(url), _) => Some(url.clone()),
            (None, JobsConfig::Redis(redis)) => Some(redis.url.clone()),
            (None, JobsConfig::Memory(_)) => None,
        }
    }

    /// Checks the values serde cannot.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::invalid(key, reason));
        if self.prefix.is_empty() || self.prefix.chars().any(char::is_whitespace) {
            return invalid("heat.prefix", "must be non-empty without spaces");
        }
        if !(1..=10_000).contains(&self.top) {
            return invalid("heat.top", "must be between 1 and 10000");
        }
        if self.interval_ms < 1000 {
            return invalid("heat.interval_ms", "must be at least 1000");
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return invalid("heat.decay", "must be in (0, 1]");
        }
        if !(self.floor.is_finite() && self.floor >= 0.0) {
            return invalid("heat.floor", "must be a finite number, at least 0");
        }
        if self.command_timeout_ms == 0 {
            return invalid("heat.command_timeout_ms", "must be at least 1");
        }
        if let Some(url) = &self.redis_url
            && let Err(e) = redis::Client::open(url.as_str())
        {
            return invalid("heat.redis_url", &format!("{:?}: {e}", redact_url(url)));
        }
        Ok(())
    }
}

/// The Redis key of a repository's heat (the name edges write to).
pub use strata_service::keys::heat_key;

/// What one tick did in one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoTick {
    /// The repository.
    pub repository: RepoName,
    /// The modules refreshed, hottest first, with their scores before the decay.
    pub refreshed: Vec<(ModulePath, f64)>,
    /// Members that are not module paths (skipped; they decay away like the rest).
    pub invalid: usize,
}

/// Reads heat and enqueues refreshes (see the module docs).
#[derive(Debug)]
pub struct HeatRefresher {
    config: HeatConfig,
    link: RedisLink,
    repositories: Vec<RepoName>,
    queue: Arc<dyn JobQueue>,
    /// The period being fired and the repositories already done in it, so that a retried
    /// tick does not decay a repository twice.
    progress: Mutex<(u64, HashSet<RepoName>)>,
}

impl HeatRefresher {
    /// A refresher reading the Redis at `redis_url` for `repositories`, enqueuing into `queue`.
    pub fn new(
        config: &HeatConfig,
        redis_url: &str,
        repositories: Vec<RepoName>,
        queue: Arc<dyn JobQueue>,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            link: RedisLink::new(redis_url, Duration::from_millis(config.command_timeout_ms))?,
            repositories,
            queue,
            progress: Mutex::new((u64::MAX, HashSet::new())),
        })
    }

    /// The claims that make one worker per interval do the tick: `SET … NX` in the heat Redis.
    pub fn claims(&self, redis_url: &str) -> Result<TickClaims, String> {
        TickClaims::redis(
            redis_url,
            &format!("{}:heat-refresh", self.config.prefix),
            Duration::from_millis(self.config.command_timeout_ms),
        )
    }

    /// The repositories refreshed.
    pub fn repositories(&self) -> &[RepoName] {
        &self.repositories
    }

    /// Runs the tick of `period` in every repository (once per repository and period, even
    /// when called again after a failure).
    pub async fn tick(&self, period: u64) -> Result<Vec<RepoTick>, String> {
        let mut report = Vec::new();
        let mut first_error = None;
        for repo in &self.repositories {
            if self.already_done(period, repo) {
                continue;
            }
            match self.tick_repo(repo, period).await {
                Ok(done) => {
                    self.mark_done(period, repo);
                    report.push(done);
                }
                Err(e) => {
                    tracing::warn!(repository = repo.as_str(), error = %e, "heat refresh failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn already_done(&self, period: u64, repo: &RepoName) -> bool {
        let progress = self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        progress.0 == period && progress.1.contains(repo)
    }

    fn mark_done(&self, period: u64, repo: &RepoName) {
        let mut progress = self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if progress.0 != period {
            *progress = (period, HashSet::new());
        }
        progress.1.insert(repo.clone());
    }

    async fn tick_repo(&self, repo: &RepoName, period: u64) -> Result<RepoTick, String> {
        let key = heat_key(&self.config.prefix, repo.as_str());
        let redis_error = |what: &str, e: &redis::RedisError| format!("{what} {key}: {e}");
        let mut connection = self
            .link
            .connection()
            .await
            .map_err(|e| format!("connecting to redis at {}: {e}", self.link.url()))?;
        let stop = i64::try_from(self.config.top).unwrap_or(i64::MAX) - 1;
        let flat: Vec<String> = match redis::cmd("ZREVRANGE")
            .arg(&key)
            .arg(0)
            .arg(stop)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
        {
            Ok(flat) => flat,
            Err(e) => {
                self.link.failed(&e).await;
                return Err(redis_error("reading", &e));
            }
        };
        let mut refreshed = Vec::new();
        let mut invalid = 0;
        for pair in flat.chunks(2) {
            let [member, score] = pair else { continue };
            let score: f64 = score.parse().unwrap_or(0.0);
            match ModulePath::new(member) {
                Ok(module) => refreshed.push((module, score)),
                Err(e) => {
                    invalid += 1;
                    tracing::warn!(%key, member, error = %e, "heat: a member is not a module path");
                }
            }
        }
        let jobs: Vec<NewJob> = refreshed
            .iter()
            .map(|(module, _)| {
                NewJob::new(Job::RefreshMetadata {
                    repository: repo.clone(),
                    module: module.clone(),
                })
                .with_key(format!("refresh/{}/{module}/{period}", repo.as_str()))
            })
            .collect();
        if !jobs.is_empty() {
            self.queue
                .enqueue_batch(jobs)
                .await
                .map_err(|e| format!("enqueuing refreshes of {}: {e}", repo.as_str()))?;
        }
        // Decay after enqueuing: a failed enqueue is retried with the same heat.
        let decayed: Result<(), redis::RedisError> = redis::pipe()
            .atomic()
            .cmd("ZUNIONSTORE")
            .arg(&key)
            .arg(1)
            .arg(&key)
            .arg("WEIGHTS")
            .arg(self.config.decay)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({}", self.config.floor))
            .ignore()
            .query_async(&mut connection)
            .await;
        if let Err(e) = decayed {
            self.link.failed(&e).await;
            return Err(redis_error("decaying", &e));
        }
        Ok(RepoTick {
            repository: repo.clone(),
            refreshed,
            invalid,
        })
    }
}

#[async_trait]
impl Periodic for HeatRefresher {
    fn describe(&self) -> String {
        format!("heat refresh of {} repositories", self.repositories.len())
    }

    fn due(&self, now_ms: u64) -> Option<u64> {
        Some(period_of(now_ms, self.config.interval_ms))
    }

    fn next_check(&self, now_ms: u64) -> u64 {
        next_period_start(now_ms, self.config.interval_ms)
    }

    fn claim_key(&self, period: u64) -> String {
        format!("heat/{period}")
    }

    fn claim_ttl(&self) -> Duration {
        claim_ttl_for(self.config.interval_ms)
    }

    async fn fire(&self, period: u64) -> Result<String, String> {
        let report = self.tick(period).await?;
        let modules: usize = report.iter().map(|r| r.refreshed.len()).sum();
        Ok(format!(
            "{modules} refreshes in {} repositories",
            report.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::runtime::queue::RedisJobsConfig;

    #[test]
    fn heat_needs_a_redis_and_sane_numbers() {
        let memory = JobsConfig::default();
        let redis = JobsConfig::Redis(RedisJobsConfig::with_url("redis://10.0.0.1:6379"));
        let config = HeatConfig::default();
        assert_eq!(config.redis(&memory), None, "the in-process queue: off");
        assert_eq!(
            config.redis(&redis).as_deref(),
            Some("redis://10.0.0.1:6379")
        );
        let own = HeatConfig {
            redis_url: Some("redis://heat:6379".into()),
            ..HeatConfig::default()
        };
        assert_eq!(own.redis(&memory).as_deref(), Some("redis://heat:6379"));
        let off = HeatConfig {
            enabled: false,
            ..own
        };
        assert_eq!(off.redis(&redis), None);
        assert!(HeatConfig::default().validate().is_ok());
        for (bad, key) in [
            (
                HeatConfig {
                    decay: 0.0,
                    ..HeatConfig::default()
                },
                "heat.decay",
            ),
            (
                HeatConfig {
                    decay: f64::NAN,
                    ..HeatConfig::default()
                },
                "heat.decay",
            ),
            (
                HeatConfig {
                    decay: 1.5,
                    ..HeatConfig::default()
                },
                "heat.decay",
            ),
            (
                HeatConfig {
                    floor: -1.0,
                    ..HeatConfig::default()
                },
                "heat.floor",
            ),
            (
                HeatConfig {
                    top: 0,
                    ..HeatConfig::default()
                },
                "heat.top",
            ),
            (
                HeatConfig {
                    interval_ms: 10,
                    ..HeatConfig::default()
                },
                "heat.interval_ms",
            ),
            (
                HeatConfig {
                    prefix: String::new(),
                    ..HeatConfig::default()
                },
                "heat.prefix",
            ),
            (
                HeatConfig {
                    redis_url: Some("http://nope".into()),
                    ..HeatConfig::default()
                },
                "heat.redis_url",
            ),
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains(key), "{key}: {error}");
        }
    }
}
