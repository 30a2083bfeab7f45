//! Test harness: a real central registry started in-process (fs storage in a temp dir,
//! `127.0.0.1:0`, in-process or Redis events) with a public repository `go` (anonymous read)
//! and a private one `private`, configured with `strata_testkit::registry_toml`, modules
//! published through its HTTP upload API, and edges started in-process in front of one or more
//! registries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use strata_central_registry::config::RegistryConfig;
use strata_central_registry::server::{self, Running as RegistryRunning};
use strata_edge_proxy::Running;
use strata_edge_proxy::config::EdgeConfig;
use strata_service::config::ServiceConfig as _;
use strata_testkit::modules::FixtureModule;
use strata_testkit::registry_toml::{ANY_LOOPBACK_PORT, RegistryToml, Repo, Token};
use tokio_util::sync::CancellationToken;

/// May read and deploy everywhere.
pub const CI_TOKEN: &str = "strata_edge-test-ci";
/// May read `go` only (not `private`).
pub const OUTSIDER_TOKEN: &str = "strata_edge-test-outsider";

/// A running registry; stopped when dropped.
pub struct TestRegistry {
    pub running: RegistryRunning,
    pub shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir).await
    }

    /// A registry over the storage in `dir` (a second registry can share it).
    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        Self::start_with_events(dir, "").await
    }

    /// A registry whose `events` setting is `events` (TOML value; empty: in-process).
    pub async fn start_with_events(dir: tempfile::TempDir, events: &str) -> Self {
        let config = registry_config(dir.path(), events);
        let shutdown = CancellationToken::new();
        let running = server::start(config, shutdown.clone()).await.unwrap();
        Self {
            running,
            shutdown,
            _dir: dir,
        }
    }

    /// A registry (storage in a fresh temp dir) publishing its events to `stream` on the Redis
    /// server at `url`, with fast retries and short blocking reads.
    pub async fn start_with_redis(url: &str, stream: &str) -> Self {
        let events = format!(
            "{{ kind = \"redis\", url = \"{url}\", stream = \"{stream}\", retry_initial_ms = 50, retry_max_ms = 500, block_ms = 200 }}"
        );
        Self::start_with_events(tempfile::tempdir().unwrap(), &events).await
    }

    /// Publishes a module zip to `repo` through the HTTP upload API.
    pub async fn publish(&self, repo: &str, module: &FixtureModule) {
        let url = format!("http://{}/api/repos/{repo}/upload", self.running.http_addr);
        let response = reqwest::Client::new()
            .put(url)
            .bearer_auth(CI_TOKEN)
            .body(module.zip())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status.as_u16(), 201, "publish {}: {text}", module.path);
    }

    /// Stops it (its listeners close; the storage stays).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.running.done).await;
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn registry_config(dir: &Path, events: &str) -> RegistryConfig {
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mut toml = RegistryToml::new()
        .repo(Repo::local("go").anonymous_read())
        .repo(Repo::local("private"))
        .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy"]))
        .token(Token::new("outsider", OUTSIDER_TOKEN).grant("go", &["read"]));
    if !events.is_empty() {
        toml = toml.events(events);
    }
    let text = toml.text(&dir.join("data"), &spool, ANY_LOOPBACK_PORT);
    RegistryConfig::from_toml(&text, "edge-test", &[]).unwrap()
}

/// Edge settings a test may change.
#[derive(Clone)]
pub struct EdgeOptions {
    pub metadata_ttl_ms: u64,
    pub memory_zip_max_bytes: u64,
    pub extra: String,
    /// The top-level `events` value (TOML); empty for none.
    pub events: String,
    /// Extra lines in `[server]`.
    pub server_extra: String,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            metadata_ttl_ms: 3_600_000,
            memory_zip_max_bytes: 0,
            extra: String::new(),
            events: String::new(),
            server_extra: String::new(),
        }
    }
}

impl EdgeOptions {
    /// The defaults, following `stream` on the Redis server at `url`.
    pub fn redis_events(url: &str, stream: &str) -> Self {
        Self {
            events: format!("{{ kind = \"redis\", url = \"{url}\", stream = \"{stream}\" }}"),
            ..Self::default()
        }
    }
}

/// A running edge; stopped when dropped.
pub struct TestEdge {
    pub running: Running,
    pub shutdown: CancellationToken,
}

impl TestEdge {
    /// An edge in front of `registries` (gRPC and HTTP addresses), caching in `cache_dir`,
    /// following `bus` if given.
    pub async fn start(
        registries: &[(String, String)],
        cache_dir: &Path,
        options: &EdgeOptions,
        bus: Option<strata_central_registry::events::EventBus>,
    ) -> Self {
        let mut text = if options.events.is_empty() {
            String::new()
        } else {
            format!("events = {}\n", options.events)
        };
        text += &format!(
            r#"
            [server]
            listen = "127.0.0.1:0"
            shutdown_grace_ms = 2000
            admin_listen = ""
            {server_extra}
            [[routes]]
            prefix = "/"
            repository = "go"
            [[routes]]
            prefix = "/private/"
            repository = "private"
            [upstream]
            request_timeout_ms = 5000
            failure_threshold = 2
            cooldown_ms = 3600000
            [cache]
            dir = "{dir}"
            metadata_ttl_ms = {ttl}
            memory_zip_max_bytes = {zmax}
            {extra}
            "#,
            dir = cache_dir.display(),
            ttl = options.metadata_ttl_ms,
            zmax = options.memory_zip_max_bytes,
            extra = options.extra,
            server_extra = options.server_extra,
        );
        for (i, (grpc, http)) in registries.iter().enumerate() {
            text.push_str(&format!(
                "[[registries]]\nname = \"r{i}\"\ngrpc = \"{grpc}\"\nhttp = \"{http}\"\n"
            ));
        }
        let config = EdgeConfig::from_toml(&text, "edge-test", &[]).unwrap();
        let shutdown = CancellationToken::new();
        let running = strata_edge_proxy::start_with_events(config, bus, shutdown.clone())
            .await
            .unwrap();
        Self { running, shutdown }
    }

    /// An edge in front of one registry, following its events.
    pub async fn for_registry(
        registry: &TestRegistry,
        cache_dir: &Path,
        options: &EdgeOptions,
    ) -> Self {
        Self::start(
            &[endpoints(registry)],
            cache_dir,
            options,
            Some(registry.running.events.clone()),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}/{}",
            self.running.addr,
            path.trim_start_matches('/')
        )
    }

    /// Zip fills that reached the registry (any outcome).
    pub fn fills(&self) -> u64 {
        let m = &self.running.edge.metrics;
        m.fill_count("ok") + m.fill_count("failed") + m.fill_count("integrity")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.running.done).await;
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The `(grpc, http)` URLs of a registry.
pub fn endpoints(registry: &TestRegistry) -> (String, String) {
    (
        format!("http://{}", registry.running.grpc_addr),
        format!("http://{}", registry.running.http_addr),
    )
}

/// GET with optional bearer token: (status, headers, body).
pub async fn get(url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// The `X-Strata-Cache` header.
pub fn cache_of(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-strata-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
