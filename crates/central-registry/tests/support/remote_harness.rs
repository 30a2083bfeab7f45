//! A registry with remote and virtual repositories over a fixture upstream and a test checksum
//! database (strata-testkit), for `remote.rs`, `virtual_repo.rs` and `go_virtual.rs`.
//!
//! Repositories: `private` (local, token to read, holds whatever tests publish, even public
//! paths: `allow_shadowing = true`), `corp` (local,
//! claims `corp.example.com` by its include pattern), `gocache` (remote of the fixture upstream,
//! verified against the test database), and `go` (virtual: `private`, `corp`, `gocache`, in
//! that order, anonymous read). Options switch the remote's TTLs, `offline` and
//! `fall_through`.
//!
//! Included with `#[path = "support/remote_harness.rs"] mod harness;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::events::{Event, StartFrom, Subscription};
use strata_central_registry::server::{self, Running};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio_util::sync::CancellationToken;

/// The test checksum database's name.
pub const DB_NAME: &str = "sum.strata.test";
/// May read everywhere and deploy to the local repositories.
pub const CI_TOKEN: &str = "strata-test-ci";

/// Knobs of the remote repository.
#[derive(Debug, Clone)]
pub struct Options {
    /// `metadata_ttl_secs`.
    pub metadata_ttl_secs: u64,
    /// `negative_ttl_secs`.
    pub negative_ttl_secs: u64,
    /// `offline`.
    pub offline: bool,
    /// `fall_through`.
    pub fall_through: bool,
    /// `no_sum` patterns.
    pub no_sum: Vec<String>,
    /// The upstream's `read_timeout_ms`.
    pub read_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metadata_ttl_secs: 600,
            negative_ttl_secs: 60,
            offline: false,
            fall_through: false,
            no_sum: Vec::new(),
            read_timeout_ms: 2_000,
        }
    }
}

/// A running registry with its fixture upstream and database.
pub struct Harness {
    pub registry: Running,
    pub upstream: FixtureUpstream,
    pub db: Arc<TestSumDb>,
    pub root: tempfile::TempDir,
    pub options: Options,
    shutdown: CancellationToken,
    http: reqwest::Client,
}

impl Harness {
    /// Starts the fixture upstream serving `modules` (all recorded in a new test database) and
    /// a registry in front of it.
    pub async fn start(modules: &[FixtureModule], options: Options) -> Self {
        let db = Arc::new(TestSumDb::new(DB_NAME));
        let upstream = FixtureUpstream::start(modules, Some(db.clone())).await;
        let root = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let (registry, _) = start_registry(&root, &upstream, &db, &options, shutdown.clone()).await;
        Harness {
            registry,
            upstream,
            db,
            root,
            options,
            shutdown,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the registry and starts a new one over the same storage with `options`.
    pub async fn restart(&mut self, options: Options) {
        self.shutdown.cancel();
        let token = CancellationToken::new();
        let (registry, _) = start_registry(
            &self.root,
            &self.upstream,
            &self.db,
            &options,
            token.clone(),
        )
        .await;
        self.registry = registry;
        self.shutdown = token;
        self.options = options;
    }

    /// `http://127.0.0.1:PORT/go/{repo}`.
    pub fn proxy_url(&self, repo: &str) -> String {
        format!("http://{}/go/{repo}", self.registry.http_addr)
    }

    /// GET `/go/{repo}/{path}` (anonymous unless `token`).
    pub async fn get(&self, repo: &str, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}/{path}", self.proxy_url(repo)));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// GET with the CI token, returning status, headers and body.
    pub async fn fetch(
        &self,
        repo: &str,
        path: &str,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let r = self.get(repo, path, Some(CI_TOKEN)).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, headers, body)
    }

    /// Publishes a module zip to a local repository with the CI token.
    pub async fn publish(&self, repo: &str, zip: Vec<u8>) -> (u16, String) {
        let r = self
            .http
            .put(format!(
                "http://{}/api/repos/{repo}/upload",
                self.registry.http_addr
            ))
            .bearer_auth(CI_TOKEN)
            .body(zip)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// Subscribes to change events.
    pub async fn events(&self) -> Subscription {
        self.registry.events.subscribe(StartFrom::New).await
    }

    /// The metrics text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("http://{}/metrics", self.registry.http_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Every object key under `repos/{repo}/`.
    pub fn stored_keys(&self, repo: &str) -> Vec<String> {
        let base = self
            .root
            .path()
            .join("data")
            .join("objects")
            .join("repos")
            .join(repo);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&base) {
                    out.push(rel.display().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start_registry(
    root: &tempfile::TempDir,
    upstream: &FixtureUpstream,
    db: &TestSumDb,
    options: &Options,
    token: CancellationToken,
) -> (Running, SocketAddr) {
    let toml = config_toml(root, upstream, db, options);
    let config = RegistryConfig::from_toml(&toml, "remote-harness", &[]).unwrap();
    let running = server::start(config, token).await.unwrap();
    let addr = running.http_addr;
    (running, addr)
}

/// The configuration text.
pub fn config_toml(
    root: &tempfile::TempDir,
    upstream: &FixtureUpstream,
    db: &TestSumDb,
    o: &Options,
) -> String {
    let data = root.path().join("data");
    let spool = root.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let hash = strata_central_registry::auth::hash_token(CI_TOKEN);
    let no_sum: Vec<String> = o.no_sum.iter().map(|p| format!("{p:?}")).collect();
    format!(
        r#"
storage = {{ kind = "fs", root = {data:?} }}

[server]
http = "127.0.0.1:0"
grpc = "127.0.0.1:0"
spool_dir = {spool:?}

[[repositories]]
name = "private"
kind = "local"
# Tests publish public paths here on purpose (dependency-confusion cases); `shadowing.rs`
# removes this line to test the default policy.
allow_shadowing = true

[[repositories]]
name = "corp"
kind = "local"
include = ["corp.example.com"]

[[repositories]]
name = "gocache"
kind = "remote"
anonymous_read = true
no_sum = [{no_sum}]
metadata_ttl_secs = {ttl}
negative_ttl_secs = {neg}
offline = {offline}
fall_through = {fall}
upstream = {{ url = "{url}", read_timeout_ms = {rt}, retry_initial_ms = 5, attempts = 2 }}
checksum_db = {{ key = "{key}", url = "{url}/sumdb/{DB_NAME}", tile_height = {th}, read_timeout_ms = {rt}, attempts = 2 }}

[[repositories]]
name = "go"
kind = "virtual"
anonymous_read = true
members = [
  {{ repository = "private" }},
  {{ repository = "corp" }},
  {{ repository = "gocache" }},
]

[[tokens]]
name = "ci"
sha256 = "{hash}"
permissions = {{ private = ["read", "deploy"], corp = ["read", "deploy"], gocache = ["read", "deploy"], go = ["read"] }}
"#,
        no_sum = no_sum.join(", "),
        ttl = o.metadata_ttl_secs,
        neg = o.negative_ttl_secs,
        offline = o.offline,
        fall = o.fall_through,
        url = upstream.url(),
        rt = o.read_timeout_ms,
        key = db.verifier_key(),
        th = db.tile_height(),
    )
}

/// Waits (bounded) for the next event matching `pred`.
pub async fn next_event(sub: &mut Subscription, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = std::time::Duration::from_secs(10);
    tokio::time::timeout(deadline, async {
        loop {
            match sub.next().await {
                Some((_, event)) if pred(&event) => return event,
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await
    .expect("event within 10 s")
}
