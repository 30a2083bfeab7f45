//! The job queue: [`JobQueue`] is what producers use (the warm-up API, the index follower,
//! schedulers), [`Broker`] is the consumer side that the
//! [`Worker`](crate::runtime::worker::Worker) loop drives. Two implementations with the same
//! semantics, chosen by the `jobs` configuration section ([`JobsConfig`]):
//! - [`redis::RedisQueue`]: a Redis Stream and consumer group shared by any number of worker
//!   processes (production);
//! - [`memory::MemoryQueue`]: in-process, for `strata up` and tests.
//!
//! Semantics (both): a job is delivered at least once; it *completes* at most once per
//! idempotency key (a completion marker is set only if absent, atomically with the
//! acknowledgement); a delivery whose key already completed is acknowledged without running;
//! a failed delivery is retried after a backoff until `max_deliveries`, then dead-lettered
//! with its reason.

mod config;
pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::runtime::envelope::{DecodeError, Envelope, JobId};
use crate::runtime::job::Job;

pub use self::config::{JobsConfig, MemoryJobsConfig, RedisJobsConfig};

/// A job to enqueue, with an optional idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The job.
    pub job: Job,
    /// The key; `None` = the job's natural key, or one unique to this enqueue
    /// (see [`Job::natural_key`]).
    pub key: Option<String>,
}

impl NewJob {
    /// `job` under its default key.
    pub fn new(job: Job) -> Self {
        Self { job, key: None }
    }

    /// `job` under `key`: jobs enqueued with the same key complete once (e.g. a scheduler
    /// names its tick: `refresh/gocache/example.com/m@2025-01-01T10:00`).
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Validates and wraps the job for its first delivery.
    pub(crate) fn into_envelope(self) -> Result<Envelope, QueueError> {
        self.job.validate().map_err(QueueError::InvalidJob)?;
        if self.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(QueueError::InvalidJob(
                "the idempotency key is empty".into(),
            ));
        }
        Ok(Envelope::new(self.job, self.key))
    }
}

impl From<Job> for NewJob {
    fn from(job: Job) -> Self {
        Self::new(job)
    }
}

/// What [`JobQueue::enqueue`] accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id.
    pub id: JobId,
    /// Its idempotency key (what [`JobQueue::is_completed`] takes).
    pub key: String,
}

/// A snapshot of the queue, over every worker sharing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Enqueued and not yet delivered (the queue depth).
    pub waiting: u64,
    /// Delivered to a worker and not yet acknowledged.
    pub pending: u64,
    /// Failed deliveries waiting for their retry time.
    pub delayed: u64,
    /// Jobs in the dead-letter list.
    pub dead: u64,
}

/// A job that will not be retried, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The envelope document as it was last delivered (with the attempt count).
    pub document: String,
    /// Why it was given up.
    pub reason: String,
    /// Deliveries it had.
    pub deliveries: u32,
    /// The worker that gave it up.
    pub consumer: String,
}

impl DeadLetter {
    /// The envelope, if the document is one.
    pub fn envelope(&self) -> Result<Envelope, DecodeError> {
        Envelope::decode(&self.document)
    }
}

/// A queue operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The backing store did not answer or refused the command (Redis down, timeout).
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
    /// The backlog bound was reached; the producer should retry later (HTTP 503).
    #[error("job queue full: {backlog} jobs waiting, the limit is {limit}")]
    Full {
        /// Jobs waiting or pending now.
        backlog: u64,
        /// The configured bound.
        limit: u64,
    },
    /// The job does not validate.
    #[error("invalid job: {0}")]
    InvalidJob(String),
}

/// The producer side of a job queue.
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Adds one job.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError>;

    /// Adds several jobs at once: all are accepted or none (on [`QueueError::Full`] or an
    /// invalid job).
    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>;

    /// Whether a job with idempotency key `key` has completed (within the marker TTL).
    async fn is_completed(&self, key: &str) -> Result<bool, QueueError>;

    /// Removes the completion marker of `key`, so that a job with that key runs again (the
    /// artifacts a prefetch stored were removed by retention). Returns whether there was one.
    async fn forget_completed(&self, key: &str) -> Result<bool, QueueError>;

    /// Depth, pending, delayed and dead counts.
    async fn stats(&self) -> Result<QueueStats, QueueError>;

    /// The oldest `limit` dead letters.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError>;

    /// Whether the backing store answers (readiness).
    async fn check_ready(&self) -> Result<(), QueueError>;
}

/// One delivery of one stream entry to this worker.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Identifies the delivery to the broker (the Redis stream entry id).
    pub tag: String,
    /// Which delivery of the job this is, from 1, counting earlier failed entries and
    /// deliveries to workers that died.
    pub deliveries: u32,
    /// Taken over from another worker that stopped acknowledging it.
    pub reclaimed: bool,
    /// The envelope, or why the entry cannot be read.
    pub envelope: Result<Envelope, String>,
    /// The entry's document as stored (what a dead letter keeps when it cannot be read).
    pub document: String,
}

impl Delivery {
    /// The kind label for metrics.
    pub fn kind_label(&self) -> &'static str {
        match &self.envelope {
            Ok(envelope) => envelope.job.kind().as_str(),
            Err(_) => "unknown",
        }
    }
}

/// How a delivery ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The job ran to completion: set the completion marker (if absent) and acknowledge.
    Complete {
        /// Kept with the marker.
        detail: Option<String>,
    },
    /// The key had already completed; the job did not run: acknowledge.
    Skip,
    /// The job failed; deliver it again after `delay` (`error` is kept in the envelope).
    Retry {
        /// How long to wait.
        delay: Duration,
        /// Why it failed.
        error: String,
    },
    /// Give up: move it to the dead-letter list with `reason`.
    DeadLetter {
        /// Why.
        reason: String,
    },
    /// Received while shutting down and never started: back to the queue at once, not
    /// counted as a delivery.
    Release,
    /// Started but not finished within the shutdown grace period. Redis: left pending, so
    /// another worker claims it once the visibility timeout passes. Memory: back to the queue.
    Interrupt,
}

/// What settling did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// This delivery set the completion marker.
    Completed,
    /// The key had completed through another delivery: acknowledged, nothing else recorded.
    AlreadyCompleted,
    /// Retried, dead-lettered, released, skipped or left pending as asked.
    Done,
    /// Another worker had taken the delivery over (it was idle past the visibility timeout);
    /// this worker's failure is not recorded, the new owner's result counts.
    Superseded,
}

/// The consumer side, driven by the worker loop.
#[async_trait]
pub trait Broker: JobQueue {
    /// Up to `max` deliveries: due retries are moved back into the queue, entries left by
    /// dead workers are claimed, then new entries are read. Waits a bounded time (Redis:
    /// `block_ms`) for something to arrive; returns early, possibly empty, once `shutdown`
    /// is cancelled where that is safe.
    async fn receive(
        &self,
        max: usize,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Ends a delivery (see [`Settlement`]).
    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<Settled, QueueError>;

    /// Tells the queue these deliveries are still being worked on, so that they are not
    /// claimed by another worker (Redis: resets their idle time). Called every third of the
    /// visibility timeout.
    async fn keep_alive(&self, tags: &[String]) -> Result<(), QueueError>;

    /// How often [`Broker::keep_alive`] must run, if the broker reclaims idle deliveries.
    fn keep_alive_interval(&self) -> Option<Duration>;

    /// This worker's consumer name.
    fn consumer(&self) -> &str;
}

/// Validates and wraps a batch, all or nothing.
pub(crate) fn envelopes(jobs: Vec<NewJob>) -> Result<Vec<Envelope>, QueueError> {
    jobs.into_iter().map(NewJob::into_envelope).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn new_jobs_are_validated() {
        let feed = |name: &str| NewJob::new(Job::IndexPoll { feed: name.into() });
        assert!(matches!(
            feed(" ").into_envelope(),
            Err(QueueError::InvalidJob(_))
        ));
        assert!(matches!(
            feed("golang").with_key(" ").into_envelope(),
            Err(QueueError::InvalidJob(_))
        ));
        let envelope = feed("golang")
            .with_key("poll/golang/1")
            .into_envelope()
            .unwrap();
        assert_eq!(envelope.key, "poll/golang/1");
        assert!(envelopes(vec![feed("a"), feed("")]).is_err());
        assert_eq!(envelopes(vec![feed("a"), feed("b")]).unwrap().len(), 2);
    }
}
