//! Prometheus metrics of the worker, served at `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `strata_sync_jobs_total` | `kind`, `outcome` | deliveries by how they ended: `completed`, `duplicate` (ran, but the key had completed through another delivery), `skipped` (key already completed, not run), `retried`, `dead_lettered`, `superseded` (taken over by another worker meanwhile), `interrupted` (shutdown), `released` (received during shutdown, given back), `unsettled` (the queue could not be told; the job will be redelivered) |
//! | `strata_sync_job_duration_seconds` | `kind` | handler run time |
//! | `strata_sync_jobs_reclaimed_total` | – | deliveries taken over from workers that stopped (visibility timeout) |
//! | `strata_sync_jobs_in_flight` | – | jobs this process is running |
//! | `strata_sync_queue_depth` | – | jobs enqueued and not yet delivered (all workers) |
//! | `strata_sync_jobs_pending` | – | jobs delivered and not yet acknowledged (all workers) |
//! | `strata_sync_jobs_delayed` | – | failed jobs waiting for their retry |
//! | `strata_sync_dead_letters` | – | jobs in the dead-letter list |
//! | `strata_sync_queue_errors_total` | `operation` | failed queue operations (`receive`, `settle`, `keep_alive`, `stats`) |

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::runtime::queue::QueueStats;

/// Labels of the jobs counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The job kind (`prefetch`, …, `unknown` for unreadable entries).
    pub kind: &'static str,
    /// How the delivery ended.
    pub outcome: &'static str,
}

/// Labels with just a job kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The job kind.
    pub kind: &'static str,
}

/// Labels with just a queue operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The operation.
    pub operation: &'static str,
}

fn duration_histogram() -> Histogram {
    // 1 ms … ~9 min: from a skipped prefetch to a scrub of a large repository.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

type U64Gauge = Gauge<u64, AtomicU64>;

/// Every metric family, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Deliveries by kind and outcome.
    pub jobs: Family<JobLabels, Counter>,
    /// Handler run time by kind.
    pub duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// Deliveries claimed from stopped workers.
    pub reclaimed: Counter,
    /// Jobs running in this process.
    pub in_flight: U64Gauge,
    /// Queue depth (waiting).
    pub depth: U64Gauge,
    /// Delivered, unacknowledged.
    pub pending: U64Gauge,
    /// Waiting for a retry.
    pub delayed: U64Gauge,
    /// In the dead-letter list.
    pub dead_letters: U64Gauge,
    /// Failed queue operations.
    pub queue_errors: Family<OperationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("strata_sync");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register("jobs", "Job deliveries by kind and outcome", jobs.clone());
        let duration = Family::<KindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "job_duration_seconds",
            "Job handler run time",
            duration.clone(),
        );
        let reclaimed = Counter::default();
        registry.register(
            "jobs_reclaimed",
            "Deliveries taken over from workers that stopped acknowledging them",
            reclaimed.clone(),
        );
        let in_flight = U64Gauge::default();
        registry.register(
            "jobs_in_flight",
            "Jobs running in this process",
            in_flight.clone(),
        );
        let depth = U64Gauge::default();
        registry.register(
            "queue_depth",
            "Jobs enqueued and not yet delivered",
            depth.clone(),
        );
        let pending = U64Gauge::default();
        registry.register(
            "jobs_pending",
            "Jobs delivered to a worker and not yet acknowledged",
            pending.clone(),
        );
        let delayed = U64Gauge::default();
        registry.register(
            "jobs_delayed",
            "Failed jobs waiting for their retry",
            delayed.clone(),
        );
        let dead_letters = U64Gauge::default();
        registry.register(
            "dead_letters",
            "Jobs in the dead-letter list",
            dead_letters.clone(),
        );
        let queue_errors = Family::<OperationLabels, Counter>::default();
        registry.register(
            "queue_errors",
            "Failed job queue operations",
            queue_errors.clone(),
        );
        Self {
            registry,
            jobs,
            duration,
            reclaimed,
            in_flight,
            depth,
            pending,
            delayed,
            dead_letters,
            queue_errors,
        }
    }

    /// The families above plus the ones `extra` registers in the same registry (under the
    /// `strata_sync` prefix): the handlers' own metrics (scrubber, index follower, …).
    pub fn with_extra(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut metrics = Self::new();
        extra(&mut metrics.registry);
        metrics
    }

    /// Counts one delivery's end.
    pub fn job(&self, kind: &'static str, outcome: &'static str) {
        self.jobs.get_or_create(&JobLabels { kind, outcome }).inc();
    }

    /// Counts a failed queue operation.
    pub fn queue_error(&self, operation: &'static str) {
        self.queue_errors
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    /// Sets the queue gauges from a snapshot.
    pub fn set_queue(&self, stats: &QueueStats) {
        self.depth.set(stats.waiting);
        self.pending.set(stats.pending);
        self.delayed.set(stats.delayed);
        self.dead_letters.set(stats.dead);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_exposed_with_their_names() {
        let metrics = Metrics::new();
        metrics.job("prefetch", "completed");
        metrics.job("prefetch", "completed");
        metrics.queue_error("receive");
        metrics.set_queue(&QueueStats {
            waiting: 7,
            pending: 2,
            delayed: 1,
            dead: 3,
        });
        let text = metrics.encode();
        for line in [
            r#"strata_sync_jobs_total{kind="prefetch",outcome="completed"} 2"#,
            r#"strata_sync_queue_errors_total{operation="receive"} 1"#,
            "strata_sync_queue_depth 7",
            "strata_sync_jobs_pending 2",
            "strata_sync_jobs_delayed 1",
            "strata_sync_dead_letters 3",
            "strata_sync_jobs_reclaimed_total 0",
            "strata_sync_jobs_in_flight 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
