//! Prometheus metrics of the edge, served at `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `strata_edge_requests_total` | `kind`, `status` | requests answered (`kind`: `list`, `latest`, `query`, `info`, `mod`, `zip`, `sumdb`, `other`) |
//! | `strata_edge_request_duration_seconds` | `kind` | time to the response head |
//! | `strata_edge_cache_lookups_total` | `tier`, `kind`, `result` | lookups: `tier` `memory`/`disk`, `result` `hit`/`miss`/`stale` (stale: served past TTL or after an event because no registry answered) |
//! | `strata_edge_served_bytes_total` | `kind` | response body bytes |
//! | `strata_edge_upstream_duration_seconds` | `registry` | registry call latency (to the first answer) |
//! | `strata_edge_upstream_calls_total` | `registry`, `outcome` | `ok`, `answer` (a definite error such as not found), `failed`, `timeout`, `rejected` (circuit open) |
//! | `strata_edge_registry_healthy` | `registry` | 1 while the circuit is closed |
//! | `strata_edge_fills_total` | `outcome` | zip downloads into the disk tier: `ok`, `failed`, `integrity` |
//! | `strata_edge_fill_duration_seconds` | `outcome` | a zip download into the disk tier from its start (a free download slot) to verified and committed, or failed |
//! | `strata_edge_fills_in_flight` | – | zip downloads running |
//! | `strata_edge_evictions_total` | `tier` | entries evicted for space (`disk`), or invalidated (`event`) |
//! | `strata_edge_disk_bytes` | – | bytes in the disk tier |
//! | `strata_edge_events_total` | `kind` | change events applied |
//! | `strata_edge_event_lag_seconds` | – | age of the last event applied (now − its `at`) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `kind` + `status`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Request kind.
    pub kind: &'static str,
    /// HTTP status.
    pub status: u16,
}

/// `kind`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Request or event kind.
    pub kind: &'static str,
}

/// `tier` + `kind` + `result`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `memory` or `disk`.
    pub tier: &'static str,
    /// Request kind.
    pub kind: &'static str,
    /// `hit`, `miss`, `stale`.
    pub result: &'static str,
}

/// `registry`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryLabels {
    /// Configured registry name.
    pub registry: String,
}

/// `registry` + `outcome`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Configured registry name.
    pub registry: String,
    /// Outcome.
    pub outcome: &'static str,
}

/// `outcome`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Outcome.
    pub outcome: &'static str,
}

/// `tier`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// Tier.
    pub tier: &'static str,
}

/// Every metric of the edge.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to the response head.
    pub request_duration: Family<KindLabels, Histogram>,
    /// Cache lookups.
    pub cache: Family<CacheLabels, Counter>,
    /// Body bytes sent.
    pub bytes_served: Family<KindLabels, Counter>,
    /// Body bytes sent with `sendfile(2)` (a part of `bytes_served`).
    pub sendfile_bytes: Counter,
    /// Registry call latency.
    pub upstream_duration: Family<RegistryLabels, Histogram>,
    /// Registry calls.
    pub upstream_calls: Family<CallLabels, Counter>,
    /// Circuit state per registry.
    pub registry_healthy: Family<RegistryLabels, Gauge>,
    /// Zip fills by outcome.
    pub fills: Family<OutcomeLabels, Counter>,
    /// Zip fills running.
    pub fills_in_flight: Gauge,
    /// Fill durations by outcome.
    pub fill_duration: Family<OutcomeLabels, Histogram>,
    /// Evictions and invalidations.
    pub evictions: Family<TierLabels, Counter>,
    /// Bytes in the disk tier.
    pub disk_bytes: Gauge,
    /// Events applied.
    pub events: Family<KindLabels, Counter>,
    /// Age of the last event applied, in seconds.
    pub event_lag_seconds: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// 1 ms to about 9 minutes: a zip download with its verification.
fn fill_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let cache = Family::<CacheLabels, Counter>::default();
        let bytes_served = Family::<KindLabels, Counter>::default();
        let sendfile_bytes = Counter::default();
        let upstream_duration = Family::<RegistryLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> _,
        );
        let upstream_calls = Family::<CallLabels, Counter>::default();
        let registry_healthy = Family::<RegistryLabels, Gauge>::default();
        let fills = Family::<OutcomeLabels, Counter>::default();
        let fills_in_flight = Gauge::default();
        let fill_duration =
            Family::<OutcomeLabels, Histogram>::new_with_constructor(fill_histogram as fn() -> _);
        let evictions = Family::<TierLabels, Counter>::default();
        // Counted from zero at start, so that `increase()` sees the first eviction.
        for tier in ["disk", "event"] {
            let _ = evictions.get_or_create(&TierLabels { tier });
        }
        let disk_bytes = Gauge::default();
        let events = Family::<KindLabels, Counter>::default();
        let event_lag_seconds = Gauge::default();
        let r = &mut registry;
        r.register(
            "strata_edge_requests",
            "Requests answered",
            requests.clone(),
        );
        r.register(
            "strata_edge_request_duration_seconds",
            "Time to the response head",
            request_duration.clone(),
        );
        r.register("strata_edge_cache_lookups", "Cache lookups", cache.clone());
        r.register(
            "strata_edge_served_bytes",
            "Response body bytes",
            bytes_served.clone(),
        );
        r.register(
            "strata_edge_sendfile_bytes",
            "Response body bytes sent from a disk-tier file with sendfile(2)",
            sendfile_bytes.clone(),
        );
        r.register(
            "strata_edge_upstream_duration_seconds",
            "Registry call latency",
            upstream_duration.clone(),
        );
        r.register(
            "strata_edge_upstream_calls",
            "Registry calls by outcome",
            upstream_calls.clone(),
        );
        r.register(
            "strata_edge_registry_healthy",
            "1 while the registry's circuit is closed",
            registry_healthy.clone(),
        );
        r.register(
            "strata_edge_fills",
            "Zip downloads into the disk tier",
            fills.clone(),
        );
        r.register(
            "strata_edge_fills_in_flight",
            "Zip downloads running",
            fills_in_flight.clone(),
        );
        r.register(
            "strata_edge_fill_duration_seconds",
            "Zip downloads into the disk tier, from start to verified and committed (or failed)",
            fill_duration.clone(),
        );
        r.register(
            "strata_edge_evictions",
            "Entries evicted or invalidated",
            evictions.clone(),
        );
        r.register(
            "strata_edge_disk_bytes",
            "Bytes in the disk tier",
            disk_bytes.clone(),
        );
        r.register(
            "strata_edge_events",
            "Change events applied",
            events.clone(),
        );
        r.register(
            "strata_edge_event_lag_seconds",
            "Age of the last change event applied",
            event_lag_seconds.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            cache,
            bytes_served,
            sendfile_bytes,
            upstream_duration,
            upstream_calls,
            registry_healthy,
            fills,
            fills_in_flight,
            fill_duration,
            evictions,
            disk_bytes,
            events,
            event_lag_seconds,
        }
    }

    /// Counts a cache lookup.
    pub fn cache_result(&self, tier: &'static str, kind: &'static str, result: &'static str) {
        self.cache
            .get_or_create(&CacheLabels { tier, kind, result })
            .inc();
    }

    /// Zip fills that ended with `outcome`.
    pub fn fill_count(&self, outcome: &'static str) -> u64 {
        self.fills.get_or_create(&OutcomeLabels { outcome }).get()
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
