//! Edge configuration: TOML, then `STRATA_EDGE_…` environment overrides
//! ([`EdgeConfig::OVERRIDES`](ServiceConfig::OVERRIDES)), then validation, through the loader
//! every service shares ([`strata_service::config`]).
//! Nothing outside this module reads the environment. Durations are in milliseconds, sizes in
//! bytes; every key has a default except `[[routes]]` and `[[registries]]`.
//! `deploy/config/edge.toml` is a complete example.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use strata_service::config::{self, Override, ServiceConfig};
use strata_service::events::RedisEventsConfig;

mod registry_tls;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Listener settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Which repository each path prefix serves, e.g. `/` → `go`, `/private/` → `private`.
    pub routes: Vec<RouteConfig>,
    /// The central registries, in no particular order (the edge picks by health and latency).
    pub registries: Vec<RegistryEndpoint>,
    /// Timeouts, retries, circuit breaker.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// Public GOPROXYs asked only when no registry answers, for matching modules only.
    #[serde(default)]
    pub fallbacks: Vec<FallbackConfig>,
    /// The memory and disk tiers.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Caching of authorization decisions.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Where change events come from.
    #[serde(default)]
    pub events: EventsConfig,
    /// Reporting read counts to Redis for the sync worker.
    #[serde(default)]
    pub heat: HeatConfig,
    /// `[tracing]`: OpenTelemetry traces (off unless an OTLP endpoint is set).
    #[serde(default)]
    pub tracing: strata_service::trace::TracingConfig,
}

/// `[heat]`: aggregated read counts written to Redis (see [`crate::heat`]). On by default when
/// events come from Redis (the same server), off otherwise unless `redis_url` is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeatConfig {
    /// Report at all. Default true.
    pub enabled: bool,
    /// The Redis to report to. Default: the events' Redis.
    pub redis_url: Option<String>,
    /// Key prefix (`<prefix>:heat:<repo>`, `<prefix>:last-read:<repo>`); the sync worker's
    /// `heat.prefix` must match. Default `strata`.
    pub prefix: String,
    /// How often counts are written. Default 30 s.
    pub flush_ms: u64,
}

impl Default for HeatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            redis_url: None,
            prefix: strata_service::keys::DEFAULT_HEAT_PREFIX.into(),
            flush_ms: 30_000,
        }
    }
}

impl EdgeConfig {
    /// The Redis heat is reported to, if heat is on and there is one.
    pub fn heat_redis(&self) -> Option<String> {
        if !self.heat.enabled {
            return None;
        }
        match (&self.heat.redis_url, &self.events) {
            (Some(url), _) => Some(url.clone()),
            (None, EventsConfig::Redis { url, .. }) => Some(url.clone()),
            _ => None,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address. Default `127.0.0.1:8081`.
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate and key (PEM); HTTP/1.1 and h2 by ALPN.
    pub tls: Option<TlsConfig>,
    /// Requests handled at once (bodies streaming after their headers do not count).
    /// Default 1024.
    pub max_concurrent_requests: usize,
    /// How long open connections may finish after shutdown begins. Default 10 s.
    pub shutdown_grace_ms: u64,
    /// Where `/metrics` and `/readyz` are served (plain HTTP, with `/healthz`), apart from
    /// the GOPROXY port that faces anonymous clients; there they are then 404. Default
    /// `127.0.0.1:9181`; `""` serves them on `listen` instead (the all-in-one `strata up`).
    #[serde(deserialize_with = "admin_address")]
    pub admin_listen: Option<SocketAddr>,
    /// Send large zips from their disk-tier file with `sendfile(2)` on plain-HTTP/1.1
    /// connections, instead of streaming them through the process. Default on; HTTPS and h2
    /// connections always stream.
    pub sendfile: bool,
    /// The smallest body that goes with `sendfile`. Default 16 MiB: on the development
    /// machine (loopback) streaming was faster for 1 and 4 MiB zips, `sendfile` for many
    /// clients of a 64 MiB one.
    pub sendfile_min_bytes: u64,
}

/// The default admin listener: loopback, so nothing outside the host reaches it unless the
/// operator says so (a Kubernetes probe or scraper needs `0.0.0.0:9181`).
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9181);

/// `server.admin_listen`: an address, or `""` for none.
fn admin_address<'de, D>(d: D) -> Result<Option<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim()
        .parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("admin_listen {text:?}: {e}")))
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tls: None,
            max_concurrent_requests: 1024,
            shutdown_grace_ms: 10_000,
            admin_listen: Some(DEFAULT_ADMIN_LISTEN),
            sendfile: true,
            sendfile_min_bytes: 16 << 20,
        }
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix starting and ending with `/`. The longest matching prefix wins.
    pub prefix: String,
    /// The registry repository served under it.
    pub repository: String,
}

/// One `[[registries]]` entry: a central registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEndpoint {
    /// Name in metrics and logs. Default: the gRPC URL.
    #[serde(default)]
    pub name: String,
    /// gRPC endpoint, `http://host:port`, or `https://host:port` for TLS.
    pub grpc: String,
    /// HTTP base URL (for the checksum-database forward), `http://host:port`.
    pub http: String,
    /// With an `https://` gRPC URL: CA certificates (PEM) to trust for the registry's
    /// certificate, instead of the system's roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// With an `https://` gRPC URL: a client certificate chain (PEM) to present, for a
    /// registry that requires mutual TLS. Needs `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// With an `https://` gRPC URL: the name the registry's certificate must carry, when it
    /// is not the URL's host (a registry reached by IP address or through a tunnel).
    #[serde(default)]
    pub domain: Option<String>,
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Deadline of one unary call (and of a zip stream's header). Default 10 s.
    pub request_timeout_ms: u64,
    /// Longest wait for the next chunk of a zip stream. Default 30 s.
    pub zip_idle_timeout_ms: u64,
    /// TCP connect timeout. Default 2 s.
    pub connect_timeout_ms: u64,
    /// Registries tried per request (each at most once). Default 3.
    pub max_attempts: usize,
    /// Consecutive failures that open a registry's circuit. Default 5.
    pub failure_threshold: u32,
    /// How long an open circuit waits before one probe request. Default 10 s.
    pub cooldown_ms: u64,
    /// A registry whose latency average exceeds this multiple of the best one's is tried only
    /// after the others (outlier ejection). Default 3.0.
    pub outlier_factor: f64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 10_000,
            zip_idle_timeout_ms: 30_000,
            connect_timeout_ms: 2_000,
            max_attempts: 3,
            failure_threshold: 5,
            cooldown_ms: 10_000,
            outlier_factor: 3.0,
        }
    }
}

impl UpstreamConfig {
    /// Deadline of one unary call.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    /// Idle timeout of zip streams.
    pub fn zip_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.zip_idle_timeout_ms)
    }
}

/// One `[[fallbacks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    /// GOPROXY base URL, e.g. `https://proxy.golang.org`.
    pub url: String,
    /// GOPRIVATE-style globs of the module paths it may answer for (`github.com/*`).
    pub modules: Vec<String>,
}

/// `[cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// The disk tier's directory. Default `./edge-cache`.
    pub dir: PathBuf,
    /// Bound of the memory tier. Default 256 MiB.
    pub memory_bytes: u64,
    /// Zips up to this size are also kept in memory. Default 1 MiB.
    pub memory_zip_max_bytes: u64,
    /// Bound of the disk tier. Default 10 GiB.
    pub disk_bytes: u64,
    /// How long `list`, `@latest` and queries count as fresh without a change event.
    /// Default 60 s.
    pub metadata_ttl_ms: u64,
    /// Zip downloads from registries at once; more misses wait. Default 64.
    pub max_fills: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./edge-cache"),
            memory_bytes: 256 << 20,
            memory_zip_max_bytes: 1 << 20,
            disk_bytes: 10 << 30,
            metadata_ttl_ms: 60_000,
            max_fills: 64,
        }
    }
}

impl CacheConfig {
    /// Freshness of mutable answers.
    pub fn metadata_ttl(&self) -> Duration {
        Duration::from_millis(self.metadata_ttl_ms)
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a registry's "yes" for (credentials, repository) is reused. Default 30 s.
    pub decision_ttl_ms: u64,
    /// With every registry unreachable, how old a "yes" may be and still admit the client to
    /// cached content. 0 refuses everything the registry cannot confirm. Default 10 min.
    pub offline_grace_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            decision_ttl_ms: 30_000,
            offline_grace_ms: 600_000,
        }
    }
}

/// `events = { kind = … }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum EventsConfig {
    /// No events: mutable answers live for their TTL (the default).
    #[default]
    None,
    /// The registry's in-process bus, handed to [`crate::start_with_events`].
    Memory,
    /// A Redis Stream, read from the last seen id.
    Redis {
        /// `redis://host:port`. Default `redis://127.0.0.1:6379`.
        #[serde(default = "default_redis_url")]
        url: String,
        /// Stream key. Default `strata:events`.
        #[serde(default = "default_stream")]
        stream: String,
    },
}

impl EventsConfig {
    /// The registry crate's subscriber settings for the Redis variant.
    pub fn redis(&self) -> Option<RedisEventsConfig> {
        match self {
            EventsConfig::Redis { url, stream } => {
                let mut config = RedisEventsConfig::with_url(url.clone());
                config.stream = stream.clone();
                Some(config)
            }
            _ => None,
        }
    }
}

fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn default_stream() -> String {
    strata_service::keys::DEFAULT_EVENT_STREAM.into()
}

pub use strata_service::config::ConfigError;

impl ServiceConfig for EdgeConfig {
    const SERVICE: &'static str = "EDGE";
    const BINARY: &'static str = "strata-edge";

    fn tracing(&self) -> Option<&strata_service::trace::TracingConfig> {
        Some(&self.tracing)
    }
    const OVERRIDES: &'static [Override] = &[
        Override {
            name: "LISTEN",
            key: "server.listen",
            note: "",
            was: &[],
        },
        Override {
            name: "CACHE_DIR",
            key: "cache.dir",
            note: "",
            was: &[],
        },
        Override {
            name: "MEMORY_BYTES",
            key: "cache.memory_bytes",
            note: "",
            was: &[],
        },
        Override {
            name: "DISK_BYTES",
            key: "cache.disk_bytes",
            note: "",
            was: &[],
        },
        Override {
            name: "REDIS_URL",
            key: "events.url",
            note: "switches `events` to Redis Streams (keeping `events.stream`)",
            was: &[],
        },
    ];

    fn apply_override(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "LISTEN" => self.server.listen = config::parse(value)?,
            "CACHE_DIR" => self.cache.dir = PathBuf::from(value),
            "MEMORY_BYTES" => self.cache.memory_bytes = config::parse(value)?,
            "DISK_BYTES" => self.cache.disk_bytes = config::parse(value)?,
            "REDIS_URL" => {
                let stream = match &self.events {
                    EventsConfig::Redis { stream, .. } => stream.clone(),
                    _ => default_stream(),
                };
                self.events = EventsConfig::Redis {
                    url: value.to_string(),
                    stream,
                };
            }
            other => return Err(format!("{other} is not an edge setting")),
        }
        Ok(())
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        self.check()
    }
}

impl EdgeConfig {
    /// Checks the values together and derives the typed settings.
    fn check(&mut self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.routes.is_empty() {
            return invalid("at least one [[routes]] entry is needed".into());
        }
        for route in &self.routes {
            if !route.prefix.starts_with('/') || !route.prefix.ends_with('/') {
                return invalid(format!(
                    "routes.prefix {:?} must start and end with '/'",
                    route.prefix
                ));
            }
            if !valid_repo_name(&route.repository) {
                return invalid(format!(
                    "routes.repository {:?}: use lower-case letters, digits, '-', '_' and '.'",
                    route.repository
                ));
            }
        }
        for (i, a) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|b| b.prefix == a.prefix) {
                return invalid(format!("routes.prefix {:?} is listed twice", a.prefix));
            }
        }
        if self.registries.is_empty() {
            return invalid("at least one [[registries]] entry is needed".into());
        }
        for r in &mut self.registries {
            for (key, url) in [("grpc", &r.grpc), ("http", &r.http)] {
                if reqwest::Url::parse(url).is_err() || !url.starts_with("http") {
                    return invalid(format!("registries.{key} {url:?} is not an http(s) URL"));
                }
            }
            if r.name.is_empty() {
                r.name = r.grpc.clone();
            }
            r.validate_tls().map_err(ConfigError::Invalid)?;
        }
        for f in &self.fallbacks {
            if reqwest::Url::parse(&f.url).is_err() {
                return invalid(format!("fallbacks.url {:?} is not a URL", f.url));
            }
            if f.modules.is_empty() {
                return invalid(format!("fallbacks.modules of {:?} is empty", f.url));
            }
        }
        let u = &self.upstream;
        if u.max_attempts == 0 || u.failure_threshold == 0 || u.request_timeout_ms == 0 {
            return invalid(
                "upstream.max_attempts, failure_threshold, request_timeout_ms must be positive"
                    .into(),
            );
        }
        if u.outlier_factor < 1.0 || !u.outlier_factor.is_finite() {
            return invalid("upstream.outlier_factor must be at least 1".into());
        }
        let c = &self.cache;
        if c.memory_bytes == 0 || c.disk_bytes == 0 || c.max_fills == 0 {
            return invalid("cache.memory_bytes, disk_bytes and max_fills must be positive".into());
        }
        if let Some(redis) = self.events.redis() {
            redis.validate().map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }

    /// The repository and the rest of the path for a request path: the longest route prefix
    /// that matches.
    pub fn route<'p>(&self, path: &'p str) -> Option<(&str, &'p str)> {
        self.routes
            .iter()
            .filter(|r| path.starts_with(r.prefix.as_str()))
            .max_by_key(|r| r.prefix.len())
            .map(|r| (r.repository.as_str(), &path[r.prefix.len()..]))
    }
}

/// The registry's rule for repository names (`strata_core::repo::RepoName`).
fn valid_repo_name(name: &str) -> bool {
    strata_core::repo::RepoName::new(name).is_ok()
}

#[cfg(test)]
mod tests;
