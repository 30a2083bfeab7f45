//! Prometheus metrics of the registry, served at `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `strata_registry_http_requests_total` | `endpoint`, `status` | HTTP requests answered |
//! | `strata_registry_http_request_duration_seconds` | `endpoint` | latency histogram |
//! | `strata_registry_http_response_bytes_total` | `endpoint` | body bytes sent |
//! | `strata_registry_publish_total` | `outcome` | publishes by outcome (`published`, `conflict`, `invalid`, `too_large`, `denied`, `error`) |
//! | `strata_registry_storage_operation_duration_seconds` | `operation` | object store latency |
//! | `strata_registry_event_outbox_backlog` | – | change events not yet delivered |
//! | `strata_registry_upstream_fetches_total` | `repository`, `artifact`, `outcome` | upstream fetches of remote repositories: `ok`, `not_found`, `timeout`, `overloaded` (429/503), `unreachable` (connect/read failed), `integrity_violation`, `failed` (anything else) |
//! | `strata_registry_remote_metadata_total` | `repository`, `result` | remote `list`/`@latest`/query answers (`fresh`, `refreshed`, `stale`, `offline`) |
//! | `strata_registry_integrity_violations_total` | `repository` | upstream bytes that failed checksum-database verification (never stored) |

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strata_core::protocol::ErrorKind;

/// Labels of request metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `list`, `latest`, `info`, `mod`, `zip`, `query`, `upload`, `delete`, …
    pub endpoint: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Labels with just an endpoint.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// The endpoint.
    pub endpoint: &'static str,
}

/// Labels of publish outcomes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outcome.
    pub outcome: &'static str,
}

/// Labels of upstream fetches.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// The remote repository.
    pub repository: String,
    /// `list`, `latest`, `query`, `info`, `mod`, `zip`.
    pub artifact: &'static str,
    /// `ok`, `not_found`, `timeout`, `overloaded`, `unreachable`, `integrity_violation`,
    /// `failed`.
    pub outcome: &'static str,
}

/// Labels of remote metadata answers.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetadataLabels {
    /// The remote repository.
    pub repository: String,
    /// `fresh` (within TTL), `refreshed`, `stale` (upstream failed), `offline`.
    pub result: &'static str,
}

/// Labels with just a repository.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryLabels {
    /// The repository.
    pub repository: String,
}

/// Labels of storage operations.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `get`, `put`, `head`, …
    pub operation: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Every metric family, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by endpoint.
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// Response body bytes by endpoint.
    pub bytes: Family<EndpointLabels, Counter>,
    /// Publish outcomes.
    pub publishes: Family<OutcomeLabels, Counter>,
    /// Storage latency by operation.
    pub storage: Family<OperationLabels, Histogram, fn() -> Histogram>,
    /// Events waiting in the outbox.
    pub outbox_backlog: Gauge<u64, AtomicU64>,
    /// Upstream fetches of remote repositories.
    pub upstream_fetches: Family<FetchLabels, Counter>,
    /// Remote metadata answers by freshness.
    pub remote_metadata: Family<MetadataLabels, Counter>,
    /// Checksum-database verification failures.
    pub integrity_violations: Family<RepositoryLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("strata_registry");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let latency = Family::<EndpointLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        let bytes = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "http_response_bytes",
            "HTTP response body bytes sent",
            bytes.clone(),
        );
        let publishes = Family::<OutcomeLabels, Counter>::default();
        registry.register("publish", "Publish attempts by outcome", publishes.clone());
        let storage = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "storage_operation_duration_seconds",
            "Object store operation latency",
            storage.clone(),
        );
        let outbox_backlog = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "event_outbox_backlog",
            "Change events not yet delivered",
            outbox_backlog.clone(),
        );
        let upstream_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "upstream_fetches",
            "Upstream fetches of remote repositories by outcome",
            upstream_fetches.clone(),
        );
        let remote_metadata = Family::<MetadataLabels, Counter>::default();
        registry.register(
            "remote_metadata",
            "Remote list/@latest/query answers by freshness",
            remote_metadata.clone(),
        );
        let integrity_violations = Family::<RepositoryLabels, Counter>::default();
        registry.register(
            "integrity_violations",
            "Upstream artifacts that failed checksum-database verification",
            integrity_violations.clone(),
        );
        Self {
            upstream_fetches,
            remote_metadata,
            integrity_violations,
            registry,
            requests,
            latency,
            bytes,
            publishes,
            storage,
            outbox_backlog,
        }
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(
        &self,
        endpoint: &'static str,
        status: u16,
        started: std::time::Instant,
    ) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(started.elapsed().as_secs_f64());
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The `outcome` label of the publish metric for a failed publish.
pub fn publish_outcome(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Conflict => "conflict",
        ErrorKind::InvalidInput | ErrorKind::BadPath => "invalid",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::Unauthenticated | ErrorKind::Forbidden => "denied",
        _ => "error",
    }
}
