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
//! | `strata_registry_fill_duration_seconds` | `repository`, `artifact` | a remote repository's fill: upstream fetch, verification and storage write, whatever the outcome |
//! | `strata_registry_checksum_verify_duration_seconds` | `repository`, `outcome` | the checksum-database lookup (`ok`, `failed`) that vouches for an artifact before it is stored |
//! | `strata_registry_slowest_fill_seconds` | `repository`, `module`, `version`, `artifact` | the [`SLOWEST_FILLS`] slowest fills of the last 15 to 30 minutes; at most that many series ([`SlowFills`]) |

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

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

/// Labels of the fill duration histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FillLabels {
    /// Remote repository.
    pub repository: String,
    /// `info`, `mod`, `zip`, `list`, `latest`, `query`.
    pub artifact: &'static str,
}

/// Labels of the verification histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerifyLabels {
    /// Remote repository.
    pub repository: String,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// How many of the slowest fills are exported.
pub const SLOWEST_FILLS: usize = 10;

/// How long a fill stays in the slowest list: between one and two of these.
const SLOW_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A "top N slowest modules" view that never puts every module path into a label: the
/// [`SLOWEST_FILLS`] slowest fills seen in the current and the previous 15-minute window,
/// kept in memory (at most twice that many entries) and exported as that many gauge series
/// (`strata_registry_slowest_fill_seconds`), rebuilt at each scrape. A module drops out of the
/// series once it is neither among the slowest nor seen within the last two windows, so the
/// set of series per instance stays small however many modules pass through.
#[derive(Debug)]
pub struct SlowFills {
    inner: Mutex<SlowInner>,
}

#[derive(Debug)]
struct SlowInner {
    window_started: Instant,
    current: Vec<SlowFill>,
    previous: Vec<SlowFill>,
}

/// One fill in the slowest list.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowFill {
    /// Remote repository.
    pub repository: String,
    /// Module path.
    pub module: String,
    /// Version (or query, for metadata).
    pub version: String,
    /// Artifact kind.
    pub artifact: &'static str,
    /// Duration.
    pub seconds: f64,
}

impl SlowFill {
    fn same(&self, other: &SlowFill) -> bool {
        self.repository == other.repository
            && self.module == other.module
            && self.version == other.version
            && self.artifact == other.artifact
    }
}

impl Default for SlowFills {
    fn default() -> Self {
        Self {
            inner: Mutex::new(SlowInner {
                window_started: Instant::now(),
                current: Vec::new(),
                previous: Vec::new(),
            }),
        }
    }
}

impl SlowFills {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlowInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes one fill that took `fill.seconds`.
    pub fn record(&self, fill: SlowFill) {
        self.record_at(fill, Instant::now());
    }

    fn record_at(&self, fill: SlowFill, now: Instant) {
        let mut inner = self.lock();
        inner.rotate(now);
        let list = &mut inner.current;
        if let Some(same) = list.iter_mut().find(|f| f.same(&fill)) {
            if fill.seconds > same.seconds {
                same.seconds = fill.seconds;
            }
            return;
        }
        if list.len() < SLOWEST_FILLS {
            list.push(fill);
            return;
        }
        if let Some((i, fastest)) = list
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds))
            && fill.seconds > fastest.seconds
        {
            list[i] = fill;
        }
    }

    /// The slowest fills of the current and previous window, slowest first, one per
    /// artifact, at most [`SLOWEST_FILLS`].
    pub fn top(&self) -> Vec<SlowFill> {
        self.top_at(Instant::now())
    }

    fn top_at(&self, now: Instant) -> Vec<SlowFill> {
        let mut inner = self.lock();
        inner.rotate(now);
        let mut all: Vec<SlowFill> = Vec::with_capacity(2 * SLOWEST_FILLS);
        for fill in inner.current.iter().chain(inner.previous.iter()) {
            match all.iter_mut().find(|f| f.same(fill)) {
                Some(seen) if fill.seconds > seen.seconds => seen.seconds = fill.seconds,
                Some(_) => {}
                None => all.push(fill.clone()),
            }
        }
        all.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        all.truncate(SLOWEST_FILLS);
        all
    }
}

impl SlowInner {
    fn rotate(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.window_started);
        if age < SLOW_WINDOW {
            return;
        }
        self.previous = if age < 2 * SLOW_WINDOW {
            std::mem::take(&mut self.current)
        } else {
            self.current.clear();
            Vec::new()
        };
        self.window_started = now;
    }
}

/// A label value in the text format: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    /// Remote fills by repository and artifact.
    pub fill_duration: Family<FillLabels, Histogram, fn() -> Histogram>,
    /// Checksum-database lookups that vouch for fetched artifacts.
    pub verify_duration: Family<VerifyLabels, Histogram, fn() -> Histogram>,
    /// The slowest fills lately.
    pub slowest_fills: SlowFills,
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
        let fill_duration =
            Family::<FillLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "fill_duration_seconds",
            "Remote repository fills (upstream fetch, verification, storage write)",
            fill_duration.clone(),
        );
        let verify_duration =
            Family::<VerifyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "checksum_verify_duration_seconds",
            "Checksum-database lookups vouching for fetched artifacts",
            verify_duration.clone(),
        );
        Self {
            fill_duration,
            verify_duration,
            slowest_fills: SlowFills::default(),
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
        // The slowest fills are rebuilt at each scrape (a family would keep every module it
        // ever saw), in front of the OpenMetrics end marker.
        let end = out.rfind("# EOF").unwrap_or(out.len());
        let mut slowest = String::from(
            "# HELP strata_registry_slowest_fill_seconds The slowest remote fills of the last 15 to 30 minutes (at most 10 series).\n\
             # TYPE strata_registry_slowest_fill_seconds gauge\n",
        );
        for fill in self.slowest_fills.top() {
            slowest += &format!(
                "strata_registry_slowest_fill_seconds{{repository=\"{}\",module=\"{}\",version=\"{}\",artifact=\"{}\"}} {}\n",
                escape_label(&fill.repository),
                escape_label(&fill.module),
                escape_label(&fill.version),
                fill.artifact,
                fill.seconds
            );
        }
        out.insert_str(end, &slowest);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fill(module: &str, seconds: f64) -> SlowFill {
        SlowFill {
            repository: "gocache".into(),
            module: module.into(),
            version: "v1.0.0".into(),
            artifact: "zip",
            seconds,
        }
    }

    #[test]
    fn the_slowest_list_is_bounded_and_keeps_the_slowest() {
        let slow = SlowFills::default();
        let now = Instant::now();
        for i in 0..1000 {
            slow.record_at(fill(&format!("example.com/m{i}"), f64::from(i % 97)), now);
        }
        let top = slow.top_at(now);
        assert_eq!(top.len(), SLOWEST_FILLS);
        assert!(top.iter().all(|f| f.seconds >= 87.0), "{top:?}");
        assert!(top.windows(2).all(|w| w[0].seconds >= w[1].seconds));
        assert!(slow.lock().current.len() <= SLOWEST_FILLS);
    }

    #[test]
    fn a_module_is_listed_once_with_its_slowest_fill() {
        let slow = SlowFills::default();
        let now = Instant::now();
        slow.record_at(fill("example.com/a", 2.0), now);
        slow.record_at(fill("example.com/a", 5.0), now);
        slow.record_at(fill("example.com/a", 1.0), now);
        assert_eq!(slow.top_at(now), vec![fill("example.com/a", 5.0)]);
    }

    #[test]
    fn old_fills_age_out_after_two_windows() {
        let slow = SlowFills::default();
        let start = Instant::now();
        slow.record_at(fill("example.com/old", 9.0), start);
        let later = start + SLOW_WINDOW + Duration::from_secs(1);
        slow.record_at(fill("example.com/new", 1.0), later);
        let names = |v: Vec<SlowFill>| v.into_iter().map(|f| f.module).collect::<Vec<_>>();
        assert_eq!(
            names(slow.top_at(later)),
            ["example.com/old", "example.com/new"]
        );
        let much_later = later + SLOW_WINDOW + Duration::from_secs(1);
        assert_eq!(names(slow.top_at(much_later)), ["example.com/new"]);
        assert!(slow.top_at(much_later + 2 * SLOW_WINDOW).is_empty());
    }

    #[test]
    fn the_slowest_fills_are_in_the_exposition_before_the_end_marker() {
        let metrics = Metrics::new();
        metrics.slowest_fills.record(SlowFill {
            module: "example.com/q\"x".into(),
            ..fill("", 1.5)
        });
        let text = metrics.encode();
        let line = "strata_registry_slowest_fill_seconds{repository=\"gocache\",module=\"example.com/q\\\"x\",version=\"v1.0.0\",artifact=\"zip\"} 1.5";
        assert!(text.contains(line), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert!(text.contains("# TYPE strata_registry_slowest_fill_seconds gauge"));
    }
}
