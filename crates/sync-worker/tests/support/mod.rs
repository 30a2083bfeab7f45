//! Shared by the worker's integration tests (`mod support;`): a central registry started
//! in-process over a fixture upstream and a test checksum database (strata-testkit), built with
//! [`Stack::builder`], and sync workers started through `Builder::start` (what the binary runs)
//! whose embedded registry is a second `Registry` over the same storage, built from the same
//! configuration — exactly what a worker process does. Also [`until`], the one polling helper.
//! The fixture index feed is `strata_testkit::index_feed`.
//!
//! Repositories: `private` (local), `corp` (local, claims `corp.example.com`), `gocache`
//! (remote of the fixture upstream, verified against the test database; anonymous read only
//! with [`StackBuilder::anonymous_gocache`]), `go` (virtual: private, corp, gocache; anonymous
//! read). Tokens: `ci` (read everywhere, deploy to the local ones), `admin` (admin everywhere),
//! `outsider` (read on `private` only).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_central_registry::config::RegistryConfig;
use strata_central_registry::registry::Registry;
use strata_central_registry::server::{self as registry_server, Running as RegistryRunning};
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_service::config::ServiceConfig as _;
use strata_sync_worker::config::WorkerConfig;
use strata_sync_worker::registry::EmbeddedRegistry;
use strata_sync_worker::{Builder, Running};
use strata_testkit::registry_toml::{ANY_LOOPBACK_PORT, RegistryToml, Repo, Token};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio_util::sync::CancellationToken;

/// The test checksum database's name.
pub const DB_NAME: &str = "sum.strata.test";
/// Reads everywhere, deploys to the local repositories.
pub const CI_TOKEN: &str = "strata-test-ci";
/// Admin everywhere.
pub const ADMIN_TOKEN: &str = "strata-test-admin";
/// Reads `private` only.
pub const OUTSIDER_TOKEN: &str = "strata-test-outsider";

/// Hang protection only; nothing asserts on durations.
pub const HANG_GUARD: Duration = Duration::from_secs(180);

/// Polls `condition` every 20 ms until it holds (panics after [`HANG_GUARD`]).
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, condition: impl Fn() -> F) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis for the test, unless `STRATA_SKIP_REDIS=1` (then `None`: the test runs on the
/// in-process queue and event bus instead).
pub fn redis() -> Option<strata_testkit::redis_server::RedisServer> {
    if strata_testkit::redis_server::skipped() {
        eprintln!("STRATA_SKIP_REDIS=1: running on the in-process queue");
        return None;
    }
    Some(strata_testkit::redis_server::RedisServer::start().unwrap())
}

/// How a [`Stack`] starts: the upstream's modules, the registry's event bus, who reads
/// `gocache` and how long it waits for its upstream.
pub struct StackBuilder {
    modules: Vec<FixtureModule>,
    events: String,
    anonymous_gocache: bool,
    upstream_timeout_ms: u64,
}

impl StackBuilder {
    /// `events` is a TOML value for the registry's `events` key (default: the in-process bus).
    pub fn events(mut self, events: &str) -> Self {
        events.clone_into(&mut self.events);
        self
    }

    /// `gocache` readable without a token (default: tokens only).
    pub fn anonymous_gocache(mut self) -> Self {
        self.anonymous_gocache = true;
        self
    }

    /// How long `gocache` waits for an upstream answer (default 5000 ms).
    pub fn upstream_timeout_ms(mut self, ms: u64) -> Self {
        self.upstream_timeout_ms = ms;
        self
    }

    /// The registry configuration text, with its data under `root`.
    pub fn registry_toml(
        &self,
        root: &std::path::Path,
        upstream: &FixtureUpstream,
        db: &TestSumDb,
    ) -> String {
        let spool = root.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let url = upstream.url();
        let mut gocache = Repo::remote("gocache");
        if self.anonymous_gocache {
            gocache = gocache.anonymous_read();
        }
        let mut toml = RegistryToml::new()
            .repo(Repo::local("private"))
            .repo(Repo::local("corp").include(&["corp.example.com"]))
            .repo(
                gocache
                    .set("metadata_ttl_secs", "600")
                    .upstream(&url, self.upstream_timeout_ms, 2)
                    .checksum_db(&url, db, 5000),
            )
            .repo(Repo::virtual_of("go", &["private", "corp", "gocache"]).anonymous_read())
            .token(
                Token::new("ci", CI_TOKEN)
                    .grant("private", &["read", "deploy"])
                    .grant("corp", &["read", "deploy"])
                    .grant("gocache", &["read"])
                    .grant("go", &["read"]),
            )
            .token(Token::new("admin", ADMIN_TOKEN).grant("*", &["admin"]))
            .token(Token::new("outsider", OUTSIDER_TOKEN).grant("private", &["read"]));
        if !self.events.is_empty() {
            toml = toml.events(self.events.clone());
        }
        toml.text(&root.join("data"), &spool, ANY_LOOPBACK_PORT)
    }

    /// Starts the upstream serving the modules (all in a new test database) and a registry.
    pub async fn start(self) -> Stack {
        let db = Arc::new(TestSumDb::new(DB_NAME));
        let upstream = FixtureUpstream::start(&self.modules, Some(db.clone())).await;
        let root = tempfile::tempdir().unwrap();
        let registry_toml = self.registry_toml(root.path(), &upstream, &db);
        let config = RegistryConfig::from_toml(&registry_toml, "registry.toml", &[]).unwrap();
        let shutdown = CancellationToken::new();
        let registry = registry_server::start(config, shutdown.clone())
            .await
            .unwrap();
        Stack {
            upstream,
            db,
            root,
            registry,
            registry_toml,
            shutdown,
            http: reqwest::Client::new(),
        }
    }
}

/// A registry over a fixture upstream.
pub struct Stack {
    pub upstream: FixtureUpstream,
    pub db: Arc<TestSumDb>,
    pub root: tempfile::TempDir,
    pub registry: RegistryRunning,
    pub registry_toml: String,
    pub shutdown: CancellationToken,
    http: reqwest::Client,
}

impl Stack {
    /// A stack over an upstream serving `modules`, to configure and start.
    pub fn builder(modules: &[FixtureModule]) -> StackBuilder {
        StackBuilder {
            modules: modules.to_vec(),
            events: String::new(),
            anonymous_gocache: false,
            upstream_timeout_ms: 5000,
        }
    }

    /// The default stack over an upstream serving `modules`.
    pub async fn start(modules: &[FixtureModule]) -> Self {
        Self::builder(modules).start().await
    }

    /// The registry configuration, parsed again (what a worker loads).
    pub fn registry_config(&self) -> RegistryConfig {
        RegistryConfig::from_toml(&self.registry_toml, "registry.toml", &[]).unwrap()
    }

    /// A worker: `worker_toml` is its configuration (see [`worker_toml`]); its registry is
    /// opened from the registry's configuration.
    pub async fn worker(&self, worker_toml: &str) -> Worker {
        self.worker_with_env(worker_toml, &[]).await
    }

    /// [`Stack::worker`] with `env` as its environment (overrides, webhook secrets).
    pub async fn worker_with_env(&self, worker_toml: &str, env: &[(&str, &str)]) -> Worker {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = WorkerConfig::from_toml(worker_toml, "worker.toml", &env).unwrap();
        let shutdown = CancellationToken::new();
        let embedded = EmbeddedRegistry::from_config(&self.registry_config(), shutdown.clone())
            .await
            .unwrap();
        let running = Builder::new(config)
            .registry(embedded.clone())
            .start(shutdown.clone())
            .await
            .unwrap();
        Worker::new(running, embedded, shutdown)
    }

    /// GET `/go/{repo}/{path}` with the CI token: status and body.
    pub async fn fetch(&self, repo: &str, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(format!(
                "http://{}/go/{repo}/{path}",
                self.registry.http_addr
            ))
            .bearer_auth(CI_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    /// Publishes a module to a local repository with the CI token.
    pub async fn publish(&self, repo: &str, module: &FixtureModule) {
        let response = self
            .http
            .put(format!(
                "http://{}/api/repos/{repo}/upload",
                self.registry.http_addr
            ))
            .bearer_auth(CI_TOKEN)
            .body(module.zip())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "publishing {}",
            module.path
        );
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A worker configuration: `jobs` is a TOML value for `jobs` (empty: in-process), `extra` is
/// appended (sections). The scrub schedule is off unless `extra` sets it.
pub fn worker_toml(jobs: &str, extra: &str) -> String {
    let jobs = if jobs.is_empty() {
        String::new()
    } else {
        format!("jobs = {jobs}\n")
    };
    let scrub = if extra.contains("[scrub]") {
        ""
    } else {
        "[scrub]\nevery_hours = 0\nbytes_per_sec = 0\n"
    };
    format!(
        "retry_initial_ms = 50\nretry_max_ms = 500\nmax_deliveries = 3\nshutdown_grace_ms = 5000\n{jobs}\n[server]\nhttp = \"127.0.0.1:0\"\n{scrub}{extra}\n"
    )
}

/// `jobs` on a Redis stream of its own.
pub fn redis_jobs(url: &str, stream: &str) -> String {
    format!(r#"{{ kind = "redis", url = "{url}", stream = "{stream}", block_ms = 200 }}"#)
}

/// A running worker and its embedded registry.
pub struct Worker {
    pub running: Running,
    pub embedded: EmbeddedRegistry,
    pub shutdown: CancellationToken,
    pub base: String,
    http: reqwest::Client,
}

impl Worker {
    pub fn new(running: Running, embedded: EmbeddedRegistry, shutdown: CancellationToken) -> Self {
        let base = format!("http://{}", running.http_addr);
        Self {
            running,
            embedded,
            shutdown,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// The embedded registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.embedded.registry
    }

    /// Sends a request to the worker's HTTP API: status, content type and body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    /// POST with a body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let (status, _, text) = self.send(reqwest::Method::POST, path, token, body).await;
        (status, text)
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let (status, _, text) = self.send(reqwest::Method::GET, path, token, "").await;
        (status, text)
    }

    /// GET as JSON (asserting 200).
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let (status, text) = self.get(path, Some(token)).await;
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// `/metrics`.
    pub async fn metrics(&self) -> String {
        self.get("/metrics", None).await.1
    }

    /// Posts a warm-up and waits until its progress says done; returns the final progress.
    pub async fn warm(&self, repo: &str, pin: Option<&str>, body: &str) -> serde_json::Value {
        let path = match pin {
            Some(pin) => format!("/api/warm?repository={repo}&pin={pin}"),
            None => format!("/api/warm?repository={repo}"),
        };
        let (status, text) = self.post(&path, Some(CI_TOKEN), body).await;
        assert_eq!(status, 202, "{text}");
        let accepted: serde_json::Value = serde_json::from_str(&text).unwrap();
        let progress = accepted["progress"].as_str().unwrap().to_owned();
        let last = std::sync::Mutex::new(serde_json::Value::Null);
        until(&format!("warm-up {progress}"), || async {
            let now = self.get_json(&progress, CI_TOKEN).await;
            let done = now["done"] == true;
            *last.lock().unwrap() = now;
            done
        })
        .await;
        last.into_inner().unwrap()
    }

    /// Waits until nothing is waiting, running or delayed.
    pub async fn idle(&self) {
        until("the queue to drain", || async {
            let stats = self.running.queue.stats().await.unwrap();
            stats.waiting == 0 && stats.pending == 0 && stats.delayed == 0
        })
        .await;
    }

    /// Waits until a job key has completed.
    pub async fn completed(&self, key: &str) {
        until(&format!("job {key}"), || async {
            self.running.queue.is_completed(key).await.unwrap()
        })
        .await;
    }

    /// Stops the worker and waits for its drain, which must succeed.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(HANG_GUARD, self.running.done)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// `(module, version)` parsed.
pub fn mv(path: &str, version: &str) -> (ModulePath, Version) {
    (
        ModulePath::new(path).unwrap(),
        Version::new(version).unwrap(),
    )
}

/// Storage-level corruption, for the scrubber's tests.
#[allow(unused_imports)]
pub use strata_registry_engine::test_util::flip_last_byte;

/// Whether `module@version` is stored with its zip in `repo` (looked up in `registry`'s
/// version index).
pub async fn cached(registry: &Registry, repo: &str, module: &str, version: &str) -> bool {
    let module = ModulePath::new(module).unwrap();
    let version = Version::new(version).unwrap();
    registry
        .version_index(repo, &module)
        .await
        .is_ok_and(|index| {
            index
                .entry(&version)
                .is_some_and(|e| e.is_available() && e.zip.is_some())
        })
}

/// The upstream paths of `module@version`'s artifacts (`.info`, `.mod`, `.zip`).
pub fn artifact_paths(module: &str, version: &str) -> [String; 3] {
    let escaped = strata_core::path::escape_path(module).unwrap();
    ["info", "mod", "zip"].map(|ext| format!("/{escaped}/@v/{version}.{ext}"))
}

/// The value of a metric line (`name{labels}`) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}
