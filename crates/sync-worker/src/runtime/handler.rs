//! What runs a job: the [`JobHandler`] trait, its result types, and [`Handlers`], which routes
//! each [`JobKind`] to the handler registered for it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::runtime::envelope::JobId;
use crate::runtime::job::{Job, JobKind};

/// Runs jobs. Implementations must tolerate running the same job more than once (delivery is
/// at-least-once: a worker can die after the work and before the acknowledgement); the
/// runtime makes sure only one run *completes* per idempotency key.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Does the work of `job`.
    async fn run(&self, job: &Job, context: &JobContext) -> Result<Outcome, JobError>;
}

/// About the delivery being run.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The job's id (kept across retries).
    pub id: JobId,
    /// Its idempotency key.
    pub key: String,
    /// Which delivery this is, from 1.
    pub delivery: u32,
    /// Deliveries allowed before the job is dead-lettered.
    pub max_deliveries: u32,
    /// When the job was first enqueued.
    pub enqueued_at: SystemTime,
    /// Why the previous delivery failed.
    pub last_error: Option<String>,
    /// Cancelled when the worker starts draining: a long job may stop at a safe point and
    /// return a retryable error so that another worker resumes it.
    pub shutdown: CancellationToken,
}

/// A job that finished. `detail` is kept with the completion marker (e.g. "fetched 3
/// artifacts", "already cached").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// A short human-readable summary.
    pub detail: Option<String>,
}

impl Outcome {
    /// Finished, nothing to add.
    pub fn done() -> Self {
        Self::default()
    }

    /// Finished, with a summary.
    pub fn with_detail(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
        }
    }
}

/// Why a job did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another delivery after a backoff (an upstream timeout, a 5xx, storage briefly
    /// unavailable). After `max_deliveries` deliveries the job is dead-lettered.
    #[error("{message}")]
    Retryable {
        /// What went wrong.
        message: String,
        /// Wait at least this long before the next delivery (an upstream's `Retry-After`),
        /// capped at the retry policy's maximum.
        retry_after: Option<Duration>,
    },
    /// Will fail the same way every time (the module does not exist upstream, the job names
    /// an unknown repository): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A retryable failure.
    pub fn retryable(message: impl fmt::Display) -> Self {
        JobError::Retryable {
            message: message.to_string(),
            retry_after: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(message: impl fmt::Display) -> Self {
        JobError::Permanent(message.to_string())
    }

    /// A retryable failure that should not be retried before `delay`.
    pub fn retry_after(message: impl fmt::Display, delay: Duration) -> Self {
        JobError::Retryable {
            message: message.to_string(),
            retry_after: Some(delay),
        }
    }
}

/// Routes each kind to its handler; a kind without one fails permanently with a message
/// saying so (the job is dead-lettered, not lost, and can be replayed by a worker that has
/// the handler).
#[derive(Clone, Default)]
pub struct Handlers {
    by_kind: BTreeMap<JobKind, Arc<dyn JobHandler>>,
}

impl Handlers {
    /// No handlers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind` (replacing an earlier one).
    #[must_use]
    pub fn with(mut self, kind: JobKind, handler: Arc<dyn JobHandler>) -> Self {
        self.by_kind.insert(kind, handler);
        self
    }

    /// The kinds that have a handler.
    pub fn kinds(&self) -> impl Iterator<Item = JobKind> + '_ {
        self.by_kind.keys().copied()
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("kinds", &self.by_kind.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[async_trait]
impl JobHandler for Handlers {
    async fn run(&self, job: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        match self.by_kind.get(&job.kind()) {
            Some(handler) => handler.run(job, context).await,
            None => Err(JobError::permanent(format!(
                "this worker has no handler for {} jobs",
                job.kind()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    struct Fixed(&'static str);

    #[async_trait]
    impl JobHandler for Fixed {
        async fn run(&self, _: &Job, _: &JobContext) -> Result<Outcome, JobError> {
            Ok(Outcome::with_detail(self.0))
        }
    }

    fn context() -> JobContext {
        JobContext {
            id: JobId::generate(),
            key: "k".into(),
            delivery: 1,
            max_deliveries: 3,
            enqueued_at: SystemTime::now(),
            last_error: None,
            shutdown: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn routes_by_kind_and_refuses_unknown_kinds() {
        let handlers = Handlers::new().with(JobKind::Scrub, Arc::new(Fixed("scrubbed")));
        assert_eq!(handlers.kinds().collect::<Vec<_>>(), [JobKind::Scrub]);
        let scrub = Job::Scrub { repository: None };
        assert_eq!(
            handlers.run(&scrub, &context()).await.unwrap(),
            Outcome::with_detail("scrubbed")
        );
        let poll = Job::IndexPoll {
            feed: "golang".into(),
        };
        let error = handlers.run(&poll, &context()).await.unwrap_err();
        assert_eq!(
            error,
            JobError::permanent("this worker has no handler for index_poll jobs")
        );
        assert!(format!("{handlers:?}").contains("Scrub"));
    }

    #[test]
    fn error_constructors() {
        assert_eq!(
            JobError::retry_after("slow down", Duration::from_secs(3)),
            JobError::Retryable {
                message: "slow down".into(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(JobError::retryable("x").to_string(), "x");
        assert_eq!(Outcome::done().detail, None);
    }
}
