//! Shared by the index follower, webhook and heat tests: a central registry started in-process
//! over a fixture upstream and a test checksum database (strata-testkit), and sync workers
//! started through `Builder::start` (what the binary runs) whose embedded registry is a
//! second `Registry` over the same storage, built from the same configuration.
//!
//! Repositories: `gocache` (remote of the fixture upstream, verified against the test
//! database) and `go` (virtual over `gocache`).
//!
//! Included with `#[path = "support_b/mod.rs"] mod support;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod feed;

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_central_registry::config::RegistryConfig;
use strata_central_registry::registry::Registry;
use strata_central_registry::server::{self as registry_server, Running as RegistryRunning};
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_sync_worker::config::WorkerConfig;
use strata_sync_worker::registry::EmbeddedRegistry;
use strata_sync_worker::{Builder, Running};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio_util::sync::CancellationToken;

/// The test checksum database's name.
pub const DB_NAME: &str = "sum.strata.test";

/// Hang protection only; nothing asserts on durations.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// Polls `condition` every 20 ms until it holds (panics after [`HANG_GUARD`]).
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, condition: impl Fn() -> F) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The registry configuration text.
pub fn registry_toml(root: &std::path::Path, upstream: &FixtureUpstream, db: &TestSumDb) -> String {
    let data = root.join("data");
    let spool = root.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    format!(
        r#"
storage = {{ kind = "fs", root = {data:?} }}

[server]
http = "127.0.0.1:0"
grpc = "127.0.0.1:0"
spool_dir = {spool:?}

[[repositories]]
name = "gocache"
kind = "remote"
anonymous_read = true
metadata_ttl_secs = 600
upstream = {{ url = "{url}", read_timeout_ms = 5000, retry_initial_ms = 5, attempts = 2 }}
checksum_db = {{ key = "{key}", url = "{url}/sumdb/{DB_NAME}", tile_height = {th}, read_timeout_ms = 5000, attempts = 2 }}

[[repositories]]
name = "go"
kind = "virtual"
anonymous_read = true
members = [{{ repository = "gocache" }}]
"#,
        url = upstream.url(),
        key = db.verifier_key(),
        th = db.tile_height(),
    )
}

/// A registry over a fixture upstream.
pub struct Stack {
    pub upstream: FixtureUpstream,
    pub db: Arc<TestSumDb>,
    pub root: tempfile::TempDir,
    pub registry: RegistryRunning,
    pub registry_toml: String,
    pub shutdown: CancellationToken,
}

impl Stack {
    /// Starts the upstream serving `modules` (all in a new test database) and a registry.
    pub async fn start(modules: &[FixtureModule]) -> Self {
        let db = Arc::new(TestSumDb::new(DB_NAME));
        let upstream = FixtureUpstream::start(modules, Some(db.clone())).await;
        let root = tempfile::tempdir().unwrap();
        let registry_toml = registry_toml(root.path(), &upstream, &db);
        let config = RegistryConfig::from_toml(&registry_toml, "registry.toml", &[]).unwrap();
        let shutdown = CancellationToken::new();
        let registry = registry_server::start(config, shutdown.clone())
            .await
            .unwrap();
        Self {
            upstream,
            db,
            root,
            registry,
            registry_toml,
            shutdown,
        }
    }

    /// A worker started as the binary starts one: `worker_toml` is its configuration, `env`
    /// its environment; its registry is a new `Registry` over the registry's storage.
    pub async fn worker(&self, worker_toml: &str, env: &[(&str, &str)]) -> Worker {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = WorkerConfig::from_toml(worker_toml, "worker.toml", &env).unwrap();
        let shutdown = CancellationToken::new();
        let registry_config =
            RegistryConfig::from_toml(&self.registry_toml, "registry.toml", &[]).unwrap();
        let embedded = EmbeddedRegistry::from_config(&registry_config, shutdown.clone())
            .await
            .unwrap();
        let running = Builder::new(config)
            .registry(embedded.clone())
            .start(shutdown.clone())
            .await
            .unwrap();
        Worker {
            base: format!("http://{}", running.http_addr),
            running,
            embedded,
            shutdown,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A worker configuration: fast retries, the scrub schedule off, `[server]` on a free port,
/// then `extra` (sections).
pub fn worker_toml(extra: &str) -> String {
    format!(
        "retry_initial_ms = 50\nretry_max_ms = 500\nmax_deliveries = 3\nshutdown_grace_ms = 5000\n\n[server]\nhttp = \"127.0.0.1:0\"\n\n[scrub]\nevery_hours = 0\nbytes_per_sec = 0\n\n{extra}\n"
    )
}

/// A running worker and its embedded registry.
pub struct Worker {
    pub running: Running,
    pub embedded: EmbeddedRegistry,
    pub shutdown: CancellationToken,
    pub base: String,
}

impl Worker {
    /// The embedded registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.embedded.registry
    }

    /// GET on the worker's HTTP server: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Waits until nothing is waiting, running or delayed.
    pub async fn idle(&self) {
        until("the queue to drain", || async {
            let stats = self.running.queue.stats().await.unwrap();
            stats.waiting == 0 && stats.pending == 0 && stats.delayed == 0
        })
        .await;
    }

    /// Stops the worker and waits for its drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(HANG_GUARD, self.running.done)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

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
