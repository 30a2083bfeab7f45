//! `Prefetch`: makes sure a module version is stored in a remote (or virtual) repository
//! through [`Registry::warm`] — `.mod`, and unless `mod_only` `.info` and `.zip`, each verified
//! against the checksum database. The outcome detail says `already stored`, `fetched` or
//! `local` (a local member of a virtual repository has it).
//!
//! When a prefetch fails for the last time (permanently, or on its last delivery) the handler
//! leaves a failure record, `sync/prefetch-failures/<repo>/<escaped module>/@v/<version>[.mod].json`
//! (`{key, job_id, error, failed_at}`), which warm-up progress reports as failed.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_registry_engine::registry::Registry;
use strata_registry_engine::repository::Warmed;
use strata_registry_engine::storage::{ObjectKey, StorageError};

use super::{is_final, job_error};
use crate::registry::{Write, read_doc, rfc3339, sync_key, unix_now, write_doc};
use crate::runtime::handler::{JobContext, JobError, JobHandler, Outcome};
use crate::runtime::job::Job;

/// Why a prefetch gave up, kept for warm-up progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The job's idempotency key.
    pub key: String,
    /// The job's id (a later job with the same key has another id).
    pub job_id: String,
    /// The last error.
    pub error: String,
    /// When, RFC 3339.
    pub failed_at: String,
}

/// The key of the failure record of a prefetch.
pub fn failure_key(
    repository: &str,
    module: &ModulePath,
    version: &Version,
    mod_only: bool,
) -> Result<ObjectKey, StorageError> {
    sync_key(&format!(
        "prefetch-failures/{repository}/{}/@v/{}{}.json",
        module.escaped(),
        version.escaped(),
        if mod_only { ".mod" } else { "" }
    ))
}

/// The failure record of a prefetch, if it failed for good.
pub async fn failure(
    registry: &Registry,
    repository: &str,
    module: &ModulePath,
    version: &Version,
    mod_only: bool,
) -> Result<Option<FailureRecord>, crate::registry::DocError> {
    let Ok(key) = failure_key(repository, module, version, mod_only) else {
        return Ok(None);
    };
    Ok(read_doc(registry.store(), &key).await?.map(|(doc, _)| doc))
}

/// Runs `Prefetch` jobs.
#[derive(Debug)]
pub struct PrefetchHandler {
    registry: Arc<Registry>,
}

impl PrefetchHandler {
    /// A handler warming through `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    async fn record_failure(
        &self,
        repository: &str,
        module: &ModulePath,
        version: &Version,
        mod_only: bool,
        context: &JobContext,
        error: &JobError,
    ) {
        let record = FailureRecord {
            key: context.key.clone(),
            job_id: context.id.to_string(),
            error: error.to_string(),
            failed_at: rfc3339(unix_now()),
        };
        let written = match failure_key(repository, module, version, mod_only) {
            Ok(key) => write_doc(self.registry.store(), &key, &record, Write::Overwrite)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, key = %context.key, "could not record a prefetch failure");
        }
    }
}

#[async_trait]
impl JobHandler for PrefetchHandler {
    async fn run(&self, job: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        let Job::Prefetch {
            repository,
            module,
            version,
            mod_only,
        } = job
        else {
            return Err(JobError::permanent(format!(
                "the prefetch handler cannot run {} jobs",
                job.kind()
            )));
        };
        let repo = repository.as_str();
        match self.registry.warm(repo, module, version, *mod_only).await {
            Ok(warmed) => Ok(Outcome::with_detail(match warmed {
                Warmed::AlreadyStored => "already stored",
                Warmed::Fetched => "fetched",
                Warmed::Local => "local",
            })),
            Err(e) => {
                let what = if *mod_only { " (go.mod)" } else { "" };
                let error = job_error(&format!("prefetch {repo} {module}@{version}{what}"), &e);
                if is_final(&error, context) {
                    self.record_failure(repo, module, version, *mod_only, context, &error)
                        .await;
                }
                Err(error)
            }
        }
    }
}
