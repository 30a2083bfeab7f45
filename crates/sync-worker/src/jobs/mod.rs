//! The job handlers that drive the embedded central registry:
//! - [`prefetch`]: `Prefetch` → [`Registry::warm`];
//! - [`refresh`]: `RefreshMetadata` → [`Registry::refresh_metadata`], then prefetches of the
//!   newest listed versions that are not cached yet;
//! - [`scrub`]: `Scrub` → [`Registry::scrub_version`] over every stored version, rate-limited
//!   and resumable, plus the scheduler that enqueues scrubs;
//! - [`retention`]: `Retention` → [`Registry::forget_cached`] of versions idle for longer than
//!   the repository's policy (never pinned ones, never local repositories, see [`warmup`]);
//! - [`warmup`]: the warm-up sets and pins those prefetches and retention go by, stored under
//!   `sync/`.
//!
//! Jobs use the runtime and the registry only; the HTTP API reads and writes their documents
//! through here, never the other way round.

pub mod prefetch;
pub mod refresh;
pub mod retention;
pub mod scrub;
pub mod warmup;

use strata_core::protocol::ErrorKind;
use strata_registry_engine::error::RegistryError;
use strata_registry_engine::registry::{Registry, Repository};

use crate::runtime::handler::{JobContext, JobError};
use crate::runtime::queue::QueueError;

/// Maps a registry failure to a job failure: what will fail the same way again (the module
/// does not exist, the repository refuses it, the upstream's bytes do not match the checksum
/// database) is permanent; upstream and storage trouble is retried.
///
/// The upstream client already honours `Retry-After` in its own retries; what reaches a
/// handler carries no delay hint, so the worker's backoff applies.
pub fn job_error(context: &str, error: &RegistryError) -> JobError {
    let message = format!("{context}: {error}");
    match error.kind() {
        ErrorKind::NotFound
        | ErrorKind::BadPath
        | ErrorKind::InvalidInput
        | ErrorKind::Unauthenticated
        | ErrorKind::Forbidden
        | ErrorKind::TooLarge
        | ErrorKind::IntegrityViolation => JobError::permanent(message),
        ErrorKind::Conflict
        | ErrorKind::UpstreamUnavailable
        | ErrorKind::UpstreamTimeout
        | ErrorKind::UpstreamFallThrough
        | ErrorKind::Unavailable
        | ErrorKind::Internal => JobError::retryable(message),
    }
}

/// A queue failure met while running a job: always worth a retry (a full queue drains).
pub(crate) fn queue_job_error(context: &str, error: &QueueError) -> JobError {
    JobError::retryable(format!("{context}: {error}"))
}

/// Whether this failure is the job's last: a permanent one, or a retryable one on its last
/// allowed delivery (the worker dead-letters it next).
pub(crate) fn is_final(error: &JobError, context: &JobContext) -> bool {
    match error {
        JobError::Permanent(_) => true,
        JobError::Retryable { .. } => context.delivery >= context.max_deliveries,
    }
}

/// The names of `repo` and of every virtual repository that has `repo` as a member: the
/// names under which a remote's versions are warmed, read at edges and pinned.
pub fn names_serving(registry: &Registry, repo: &str) -> Vec<String> {
    let mut names = vec![repo.to_owned()];
    for entry in registry.repositories() {
        if let Repository::Virtual(_) = entry.repo {
            let name = entry.config.name().as_str();
            let serves = registry
                .remotes_of(name)
                .map(|remotes| remotes.iter().any(|r| r.name().as_str() == repo))
                .unwrap_or(false);
            if serves && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_registry_engine::upstream::UpstreamError;

    #[test]
    fn registry_failures_map_to_retryable_or_permanent() {
        let permanent = [
            RegistryError::NotFound("example.com/m@v1.0.0".into()),
            RegistryError::NoSuchRepository("nope".into()),
            RegistryError::Unsupported("local".into()),
            RegistryError::Integrity("h1 mismatch".into()),
        ];
        for error in &permanent {
            assert!(
                matches!(job_error("prefetch", error), JobError::Permanent(_)),
                "{error}"
            );
        }
        let retryable = [
            RegistryError::Upstream(UpstreamError::Timeout {
                url: "http://upstream/x".into(),
            }),
            RegistryError::Upstream(UpstreamError::Status {
                url: "http://upstream/x".into(),
                status: 503,
                body: String::new(),
            }),
            RegistryError::Internal("zip could not be stored".into()),
            RegistryError::FallThrough("upstream down".into()),
        ];
        for error in &retryable {
            assert!(
                matches!(job_error("prefetch", error), JobError::Retryable { .. }),
                "{error}"
            );
        }
        let JobError::Permanent(message) =
            job_error("prefetch gocache example.com/m@v1.0.0", &permanent[0])
        else {
            unreachable!("checked above");
        };
        assert_eq!(
            message,
            "prefetch gocache example.com/m@v1.0.0: example.com/m@v1.0.0: not found"
        );
    }
}
