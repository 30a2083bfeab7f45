//! `RefreshMetadata`: fetches a module's `list` and `@latest` from the upstream now
//! ([`Registry::refresh_metadata`], whatever their TTL), then enqueues `Prefetch` jobs for the
//! newest listed versions that the repository has not cached yet — at most
//! `refresh.prefetch_newest` of them (default 3). Heat-driven refresh, schedules and webhooks
//! enqueue these jobs; this is how "refresh the hottest modules and prefetch their new
//! versions" happens.
//!
//! ```toml
//! [refresh]
//! prefetch_newest = 3   # 0: refresh metadata only
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_registry_engine::registry::Registry;
use strata_service::config::ConfigError;

use super::{job_error, queue_job_error};
use crate::runtime::handler::{JobContext, JobError, JobHandler, Outcome};
use crate::runtime::job::Job;
use crate::runtime::queue::{JobQueue, NewJob};

/// The `[refresh]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RefreshConfig {
    /// How many of the newest listed versions are prefetched when not cached. Default 3.
    #[serde(default = "default_prefetch_newest")]
    pub prefetch_newest: usize,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            prefetch_newest: default_prefetch_newest(),
        }
    }
}

fn default_prefetch_newest() -> usize {
    3
}

impl RefreshConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.prefetch_newest > 1000 {
            return Err(ConfigError::invalid(
                "refresh.prefetch_newest",
                "must be at most 1000",
            ));
        }
        Ok(())
    }
}

/// Runs `RefreshMetadata` jobs.
#[derive(Debug)]
pub struct RefreshHandler {
    registry: Arc<Registry>,
    queue: Arc<dyn JobQueue>,
    prefetch_newest: usize,
}

impl RefreshHandler {
    /// A handler refreshing through `registry` and enqueueing prefetches on `queue`.
    pub fn new(registry: Arc<Registry>, queue: Arc<dyn JobQueue>, prefetch_newest: usize) -> Self {
        Self {
            registry,
            queue,
            prefetch_newest,
        }
    }

    /// The versions of `module` that the stored repositories behind `repo` hold.
    async fn cached(&self, repo: &str, module: &ModulePath) -> Result<HashSet<String>, JobError> {
        let context = format!("refresh {repo} {module}");
        let remotes = self
            .registry
            .remotes_of(repo)
            .map_err(|e| job_error(&context, &e))?;
        let mut cached = HashSet::new();
        for remote in remotes {
            let index = self
                .registry
                .version_index(remote.name().as_str(), module)
                .await
                .map_err(|e| job_error(&context, &e))?;
            cached.extend(index.available().map(|e| e.version.clone()));
        }
        Ok(cached)
    }
}

/// The newest `n` of `listed` (semver-sorted, oldest first) that are not in `cached` and are
/// valid versions of `module`, newest first.
pub fn new_versions(
    module: &ModulePath,
    listed: &[String],
    cached: &HashSet<String>,
    n: usize,
) -> Vec<Version> {
    listed
        .iter()
        .rev()
        .take(n)
        .filter(|v| !cached.contains(v.as_str()))
        .filter_map(|v| Version::new(v).ok())
        .filter(|v| strata_core::version::check(module.as_str(), v.as_str()).is_ok())
        .collect()
}

#[async_trait]
impl JobHandler for RefreshHandler {
    async fn run(&self, job: &Job, _context: &JobContext) -> Result<Outcome, JobError> {
        let Job::RefreshMetadata { repository, module } = job else {
            return Err(JobError::permanent(format!(
                "the refresh handler cannot run {} jobs",
                job.kind()
            )));
        };
        let repo = repository.as_str();
        let listed = self
            .registry
            .refresh_metadata(repo, module)
            .await
            .map_err(|e| job_error(&format!("refresh {repo} {module}"), &e))?;
        if self.prefetch_newest == 0 {
            return Ok(Outcome::with_detail(format!(
                "listed {} versions",
                listed.len()
            )));
        }
        let cached = self.cached(repo, module).await?;
        let fresh = new_versions(module, &listed, &cached, self.prefetch_newest);
        if fresh.is_empty() {
            return Ok(Outcome::with_detail(format!(
                "listed {} versions; the newest are cached",
                listed.len()
            )));
        }
        let mut jobs = Vec::with_capacity(fresh.len());
        for version in &fresh {
            let job = Job::prefetch(repository.clone(), module.clone(), version.clone(), false)
                .map_err(JobError::permanent)?;
            jobs.push(NewJob::new(job));
        }
        self.queue
            .enqueue_batch(jobs)
            .await
            .map_err(|e| queue_job_error(&format!("refresh {repo} {module}"), &e))?;
        let names: Vec<&str> = fresh.iter().map(Version::as_str).collect();
        Ok(Outcome::with_detail(format!(
            "listed {} versions; prefetching {}",
            listed.len(),
            names.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn picks_the_newest_uncached_versions() {
        let module = ModulePath::new("example.com/m").unwrap();
        let listed: Vec<String> = ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0-rc.1", "v1.3.0"]
            .map(String::from)
            .to_vec();
        let cached: HashSet<String> = ["v1.3.0".to_owned(), "v1.0.0".to_owned()].into();
        let picked = new_versions(&module, &listed, &cached, 3);
        assert_eq!(
            picked.iter().map(Version::as_str).collect::<Vec<_>>(),
            ["v1.3.0-rc.1", "v1.2.0"],
            "the newest three, minus the cached one"
        );
        assert!(new_versions(&module, &listed, &cached, 0).is_empty());
        // A listing that does not fit the module's major version is skipped.
        let v2 = ModulePath::new("example.com/m/v2").unwrap();
        let mixed: Vec<String> = ["v1.9.0", "v2.0.0"].map(String::from).to_vec();
        let picked = new_versions(&v2, &mixed, &HashSet::new(), 5);
        assert_eq!(
            picked.iter().map(Version::as_str).collect::<Vec<_>>(),
            ["v2.0.0"]
        );
    }
}
