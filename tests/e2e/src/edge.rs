//! [`EdgeProcess`]: `strata-edge` (the `e2e-edge` binary) as its own process, with a
//! configuration written to the test's directory: routes `/` → `go` and `/private/` →
//! `private`, the given registries, Redis events, the disk tier in the test's directory, and
//! optionally TLS (for the go command, which sends `.netrc` credentials only over https) and
//! fallback GOPROXYs.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::process::{Service, log_field};
use crate::registry::RedisTarget;
use crate::tls::TestCert;

/// One `[[registries]]` entry.
#[derive(Debug, Clone)]
pub struct RegistryRef {
    /// The name the edge reports it under in metrics.
    pub name: String,
    /// `http://host:port` of its gRPC listener (or of something in front of it).
    pub grpc: String,
    /// `http://host:port` of its HTTP listener (the checksum-database forward).
    pub http: String,
}

/// What an edge's configuration says.
#[derive(Debug, Clone)]
pub struct EdgeSpec {
    /// Name of the process (logs, config file, cache directory).
    pub name: String,
    /// Registries, in configuration order.
    pub registries: Vec<RegistryRef>,
    /// Change events.
    pub redis: Option<RedisTarget>,
    /// `cache.metadata_ttl_ms`.
    pub metadata_ttl_ms: u64,
    /// `[[fallbacks]]`: `(url, module patterns)`.
    pub fallbacks: Vec<(String, Vec<String>)>,
    /// Serve HTTPS with this certificate.
    pub tls: Option<TestCert>,
    /// More TOML appended to the configuration (whole `[section]`s).
    pub extra: String,
    /// Environment variables of the process (besides `RUST_LOG=info`).
    pub env: Vec<(String, String)>,
}

impl EdgeSpec {
    /// An edge named `name` in front of `registries`, with `redis` events, the default
    /// metadata TTL (60 s), no TLS and no fallbacks.
    pub fn new(name: &str, registries: Vec<RegistryRef>, redis: Option<RedisTarget>) -> Self {
        Self {
            name: name.to_owned(),
            registries,
            redis,
            metadata_ttl_ms: 60_000,
            fallbacks: Vec::new(),
            tls: None,
            extra: String::new(),
            env: Vec::new(),
        }
    }

    /// The configuration text, caching in `cache_dir`.
    pub fn toml(&self, cache_dir: &Path) -> String {
        let mut text = String::from("# Written by the strata end-to-end tests.\n");
        if let Some(redis) = &self.redis {
            let _ = writeln!(
                text,
                "events = {{ kind = \"redis\", url = \"{}\", stream = \"{}\" }}",
                redis.url, redis.stream
            );
        }
        text.push_str(
            "\n[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\nadmin_listen = \"\"\n",
        );
        if let Some(tls) = &self.tls {
            let _ = writeln!(
                text,
                "tls = {{ cert = {:?}, key = {:?} }}",
                tls.cert.display().to_string(),
                tls.key.display().to_string()
            );
        }
        text.push_str(
            "\n[[routes]]\nprefix = \"/\"\nrepository = \"go\"\n\n\
             [[routes]]\nprefix = \"/private/\"\nrepository = \"private\"\n",
        );
        for r in &self.registries {
            let _ = write!(
                text,
                "\n[[registries]]\nname = \"{}\"\ngrpc = \"{}\"\nhttp = \"{}\"\n",
                r.name, r.grpc, r.http
            );
        }
        for (url, modules) in &self.fallbacks {
            let patterns: Vec<String> = modules.iter().map(|m| format!("{m:?}")).collect();
            let _ = write!(
                text,
                "\n[[fallbacks]]\nurl = \"{url}\"\nmodules = [{}]\n",
                patterns.join(", ")
            );
        }
        let _ = write!(
            text,
            "\n[upstream]\nrequest_timeout_ms = 10000\nconnect_timeout_ms = 1000\n\n\
             [cache]\ndir = {:?}\nmetadata_ttl_ms = {}\n",
            cache_dir.display().to_string(),
            self.metadata_ttl_ms
        );
        text.push_str(&self.extra);
        text
    }
}

/// A running edge process (`binary` is `e2e-edge`, see [`crate::Binaries`]).
#[derive(Debug)]
pub struct EdgeProcess {
    /// The process.
    pub service: Service,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://…` or `https://…`, no trailing slash.
    base: String,
    client: reqwest::Client,
}

impl EdgeProcess {
    /// Writes the configuration under `dir`, starts the process, waits for its listening line
    /// and for `/readyz` to answer 200.
    pub async fn start(binary: &Path, dir: &Path, spec: &EdgeSpec) -> Self {
        let cache_dir = dir.join(format!("{}-cache", spec.name));
        let config = dir.join(format!("{}.toml", spec.name));
        std::fs::write(&config, spec.toml(&cache_dir)).expect("write the edge config");
        let log = dir.join(format!("{}.log", spec.name));
        let mut service = Service::spawn(
            &spec.name,
            binary,
            &["--config", &config.display().to_string()],
            &crate::process::with_log_level(&spec.env),
            &log,
        );
        let base = service
            .wait_for_line(|line| log_field(line, "edge proxy listening", "listen"))
            .await;
        let addr = base
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| service.fail(&format!("listening on {base:?}?")));
        let client = match &spec.tls {
            Some(cert) => cert.client(),
            None => reqwest::Client::new(),
        };
        let edge = Self {
            service,
            addr,
            base,
            client,
        };
        edge.wait_ready().await;
        edge
    }

    /// Polls `/readyz` until 200 (hang guard: one minute).
    async fn wait_ready(&self) {
        let url = self.url("readyz");
        self.service.wait_ready(&self.client, &url).await;
    }

    /// The URL of `path` on the edge (`""` is the root, i.e. the `go` repository's GOPROXY).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// A client that trusts the edge's certificate (if it has one).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A scrape of `/metrics`.
    pub async fn metrics(&self) -> Metrics {
        let text = self.metrics_text().await;
        Metrics::parse(&text).unwrap_or_else(|e| self.service.fail(&e))
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let url = self.url("metrics");
        match self.client.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => self.service.fail(&format!("GET {url}: {e}")),
        }
    }

    /// Scrapes `/metrics` until the sum of `name` over `labels` is at least `at_least`, and
    /// returns it; fails after `within` (hang protection, not a timing assertion).
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        at_least: f64,
        within: Duration,
    ) -> f64 {
        let deadline = std::time::Instant::now() + within;
        loop {
            let value = self.metrics().await.sum(name, labels);
            if value >= at_least {
                return value;
            }
            if std::time::Instant::now() > deadline {
                self.service.fail(&format!(
                    "{name}{labels:?} is {value}, not {at_least}, after {within:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
