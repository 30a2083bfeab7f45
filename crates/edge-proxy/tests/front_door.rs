//! The edge as the front door anonymous clients reach: a running edge over real gRPC to a
//! registry with local (private and anonymous), remote (fixture upstream + test checksum
//! database) and virtual repositories, driven with crafted raw HTTP requests.
//!
//! - Every crafted request gets a 4xx with a plain-text reason (or a correct 200/206/304),
//!   never a 5xx, never an answer of a registry route other than the GOPROXY and checksum
//!   database ones; afterwards the registry is still healthy and an uncached module downloads.
//! - No checksum-database-route trick unlocks a cached private artifact for an anonymous client.
//! - Publishes, deletes and quarantines reach the virtual repository's route (`/`) at once,
//!   with list TTLs of an hour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_central_registry::config::RegistryConfig;
use strata_central_registry::maintenance::ScrubOutcome;
use strata_central_registry::server::{self, Running as RegistryRunning};
use strata_core::path::ModulePath;
use strata_core::protocol::ArtifactKind;
use strata_core::version::Version;
use strata_edge_proxy::config::EdgeConfig;
use strata_registry_engine::test_util::flip_last_byte;
use strata_service::config::ServiceConfig as _;
use strata_testkit::raw_http::{self, Reply};
use strata_testkit::registry_toml::{ANY_LOOPBACK_PORT, RegistryToml, Repo, Token};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio_util::sync::CancellationToken;

const CI_TOKEN: &str = "strata_front-door-ci";
const DB_NAME: &str = "sum.strata.test";
const SECRET: &str = "corp.example.com/secret";
const SECRET_CONTENT: &str = "package secret // TOP-SECRET-MARKER\n";

/// A registry (private + pub local, gocache remote, go virtual) and an edge in front of it.
struct Stack {
    registry: RegistryRunning,
    edge: strata_edge_proxy::Running,
    upstream: FixtureUpstream,
    db: Arc<TestSumDb>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Stack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(TestSumDb::new(DB_NAME));
        let upstream = FixtureUpstream::start(
            &[
                FixtureModule::new("example.com/public", "v1.0.0", &[]),
                FixtureModule::new("example.com/later", "v1.0.0", &[]),
            ],
            Some(db.clone()),
        )
        .await;
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let url = upstream.url();
        let toml = RegistryToml::new()
            .repo(Repo::local("private").include(&["corp.example.com"]))
            .repo(
                Repo::local("pub")
                    .anonymous_read()
                    .include(&["corp.example.com"]),
            )
            .repo(
                Repo::remote("gocache")
                    .anonymous_read()
                    .upstream(&url, 5000, 2)
                    .checksum_db(&url, &db, 5000),
            )
            .repo(Repo::virtual_of("go", &["pub", "gocache"]).anonymous_read())
            .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy", "delete"]))
            .text(&dir.path().join("data"), &spool, ANY_LOOPBACK_PORT);
        let config = RegistryConfig::from_toml(&toml, "front-door", &[]).unwrap();
        let shutdown = CancellationToken::new();
        let registry = server::start(config, shutdown.clone()).await.unwrap();
        let edge_toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace_ms = 1000

[[routes]]
prefix = "/"
repository = "go"
[[routes]]
prefix = "/private/"
repository = "private"
[[routes]]
prefix = "/pub/"
repository = "pub"
[[routes]]
prefix = "/gocache/"
repository = "gocache"

[[registries]]
name = "r0"
grpc = "http://{grpc}"
http = "http://{http}"

[upstream]
request_timeout_ms = 5000
failure_threshold = 2
cooldown_ms = 3600000

[cache]
dir = {cache:?}
metadata_ttl_ms = 3600000
"#,
            grpc = registry.grpc_addr,
            http = registry.http_addr,
            cache = dir.path().join("edge-cache").display().to_string(),
        );
        let config = EdgeConfig::from_toml(&edge_toml, "front-door-edge", &[]).unwrap();
        let edge = strata_edge_proxy::start_with_events(
            config,
            Some(registry.events.clone()),
            shutdown.clone(),
        )
        .await
        .unwrap();
        Self {
            registry,
            edge,
            upstream,
            db,
            shutdown,
            _dir: dir,
        }
    }

    /// Publishes `module` to `repo` through the registry's upload API.
    async fn publish(&self, repo: &str, module: &FixtureModule) {
        let url = format!("http://{}/api/repos/{repo}/upload", self.registry.http_addr);
        let response = reqwest::Client::new()
            .put(url)
            .bearer_auth(CI_TOKEN)
            .body(module.zip())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, 201, "publish: {}", response.text().await.unwrap());
    }

    fn edge_addr(&self) -> SocketAddr {
        self.edge.addr
    }

    fn admin_addr(&self) -> SocketAddr {
        self.edge
            .admin_addr
            .expect("the test edge has an admin listener")
    }

    /// `GET path` on the edge with optional bearer token, via raw HTTP.
    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        raw_http::exchange(
            self.edge_addr(),
            format!("GET {path} HTTP/1.1\r\nHost: edge\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
    }
}

fn secret_module(version: &str) -> FixtureModule {
    FixtureModule::new(SECRET, version, &[]).with_file("secret.go", SECRET_CONTENT)
}

/// How long a change may take to show at `/` before the test fails. A hang guard far below the
/// list TTL of an hour, not a latency requirement: the latencies are printed (`--nocapture`),
/// and measured in milliseconds.
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// Polls `check` for up to `limit`; returns how long it took to pass.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Text a metrics or readiness answer of a registry or the edge would contain.
fn leaks_ops(body: &str) -> bool {
    body.contains("strata_registry_")
        || body.contains("strata_edge_")
        || body.contains("# EOF")
        || body.contains("disk cache:")
        || body.contains("storage:")
}

/// The crafted requests: (request bytes, what they are).
fn crafted(zip_path: &str, etag: &str) -> Vec<(Vec<u8>, String)> {
    let mut paths: Vec<String> = Vec::new();
    let traversals = [
        "../metrics",
        "../../readyz",
        "%2e%2e/metrics",
        "%2E%2E/%2e%2e/readyz",
        ".%2e/metrics",
        "%2e./metrics",
        "..%2fmetrics",
        "%2e%2e%2fmetrics",
        "%252e%252e/metrics",
        "..\\..\\metrics",
        "./metrics",
        "corp.example.com/pub/@v/../../../metrics",
        "corp.example.com/pub/@v/%2e%2e/%2e%2e/metrics",
        "go/private/corp.example.com/secret/@v/list",
        "api/repos/private/upload",
        "api/go/private/corp.example.com/secret/@v/v1.0.0.zip",
    ];
    for prefix in ["/", "/private/", "/pub/", "/gocache/"] {
        for t in traversals {
            paths.push(format!("{prefix}{t}"));
        }
        for t in [
            "sumdb/sum.strata.test/%2e%2e/%2e%2e/%2e%2e/%2e%2e/metrics",
            "sumdb/sum.strata.test/../../../../metrics",
            "sumdb/sum.strata.test/../../../../go/private/corp.example.com/secret/@v/list",
            "sumdb/sum.strata.test/%2e%2e/%2e%2e/%2e%2e/%2e%2e/go/private/corp.example.com/secret/@v/list",
            "sumdb/sum.strata.test/lookup/../../../go/private/corp.example.com/secret/@v/list",
            "sumdb/sum.strata.test/tile/8/0/../../../../metrics",
            "sumdb/..%2fsum.strata.test/latest",
            "sumdb/../sumdb/sum.strata.test/latest",
            "sumdb/sum.strata.test%2f..%2f../latest",
            "sumdb/sum.strata.test/latest/../../../../readyz",
            "sumdb/sum.strata.test/tile/99/0/000",
            "sumdb/sum.strata.test/lookup/corp.example.com/secret@master",
            "sumdb/sum.strata.test/lookup/example.com/LONG@v1.0.0",
        ] {
            // LONG: a lookup whose reason text (echoing the path) would exceed what the edge
            // reads of an answer; refused by the parser, never a mark against the registry.
            paths.push(format!("{prefix}{t}").replace("LONG", &"a".repeat(20_000)));
        }
    }
    let long = "a".repeat(300);
    for i in 0..30 {
        paths.push(format!("/github.com/{long}{i}/@v/list"));
    }
    paths.extend([
        format!("/github.com/x/y/@v/v1.0.0-{long}.info"),
        format!("/github.com/x/y/@v/{long}.info"),
        format!("/example.com/{}/@latest", vec!["abcdefgh"; 80].join("/")),
        "/corp.example.com%2fpub/@v/list".to_owned(),
        "/corp.example.com%2Fpub/@v/list".to_owned(),
        "/corp.example.com/pub%2f@v/list".to_owned(),
        "/%zz/@v/list".to_owned(),
        "/corp.example.com/pub/@v/list%".to_owned(),
        "/corp.example.com/%c3%28/@v/list".to_owned(),
        "/corp.example.com/%00/@v/list".to_owned(),
        "/Corp.Example.com/pub/@v/list".to_owned(),
        "/corp.example.com/pub/@v/v1.0.zip".to_owned(),
        "/corp.example.com/pub/@v/v1.0.0.tar".to_owned(),
        "/corp.example.com/pub/@v/".to_owned(),
        "/corp.example.com/pub/@v/list?../../metrics".to_owned(),
        "/metrics".to_owned(),
        "/readyz".to_owned(),
        "//corp.example.com/pub/@v/list".to_owned(),
        "/example.com/doesnotexist/@v/list".to_owned(),
        "/example.com/doesnotexist/@v/v1.0.0.zip".to_owned(),
        "/example.com/public/@v/v9.9.9.info".to_owned(),
    ]);
    let mut requests: Vec<(Vec<u8>, String)> = paths
        .into_iter()
        .map(|p| {
            (
                format!("GET {p} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n").into_bytes(),
                format!("GET {p}"),
            )
        })
        .collect();
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
        requests.push((
            format!(
                "{method} {zip_path} HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .into_bytes(),
            format!("{method} {zip_path}"),
        ));
    }
    for range in [
        "bytes=0-18446744073709551615",
        "bytes=18446744073709551615-",
        "bytes=5-2",
        "bytes=-0",
        "bytes=-18446744073709551615",
        "bytes=99999999-",
        "bytes=0-1,5-6",
        "bytes=abc",
        "items=0-1",
        "bytes=1-1",
    ] {
        requests.push((
            format!(
                "GET {zip_path} HTTP/1.1\r\nHost: edge\r\nRange: {range}\r\nConnection: close\r\n\r\n"
            )
            .into_bytes(),
            format!("Range: {range}"),
        ));
    }
    requests.push((
        format!(
            "GET {zip_path} HTTP/1.1\r\nHost: edge\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        "If-None-Match".to_owned(),
    ));
    let mut bad_auth =
        format!("GET {zip_path} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer ").into_bytes();
    bad_auth.extend_from_slice(b"\xff\xfe\r\nConnection: close\r\n\r\n");
    requests.push((bad_auth, "unreadable Authorization".to_owned()));
    requests.push((
        format!(
            "GET {zip_path} HTTP/1.1\r\nHost: edge\r\nX-Huge: {}\r\nConnection: close\r\n\r\n",
            "h".repeat(200_000)
        )
        .into_bytes(),
        "a 200 kB header".to_owned(),
    ));
    requests.push((
        format!(
            "GET {zip_path} HTTP/1.1\r\nHost: edge\r\nAuthorization: Basic !!!notbase64\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        "malformed Basic credentials".to_owned(),
    ));
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_requests_are_client_faults_and_leave_the_registry_healthy() {
    let stack = Stack::start().await;
    stack.publish("private", &secret_module("v1.0.0")).await;
    let public = FixtureModule::new("corp.example.com/pub", "v1.0.0", &[]);
    stack.publish("pub", &public).await;
    let zip_path = "/corp.example.com/pub/@v/v1.0.0.zip";
    let warm = stack.get(zip_path, None).await;
    assert_eq!(warm.status, 200, "{}", warm.text());
    assert_eq!(warm.body, public.zip());
    let etag = warm.header("etag").unwrap_or_default().to_owned();
    assert!(!etag.is_empty());

    let requests = crafted(zip_path, &etag);
    assert!(requests.len() >= 60, "{} crafted requests", requests.len());
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (request, what) in &requests {
        let reply = raw_http::exchange(stack.edge_addr(), request).await;
        *statuses.entry(reply.status).or_default() += 1;
        let body = reply.text();
        assert!(reply.status < 500, "{what}: {} {body}", reply.status);
        assert!(!leaks_ops(&body), "{what}: an ops answer leaked: {body}");
        assert!(
            !body.contains("TOP-SECRET-MARKER") && !reply.body.windows(7).any(|w| w == b"secret."),
            "{what}: private content leaked"
        );
        match reply.status {
            200 | 206 => {
                if reply.status == 200 {
                    assert!(
                        reply.body == public.zip() || body == "v1.0.0\n",
                        "{what}: unexpected 200 body"
                    );
                } else {
                    let range = reply.header("content-range").unwrap_or_default();
                    let total = public.zip().len();
                    assert!(range.ends_with(&format!("/{total}")), "{what}: {range}");
                    let (first, last) = range["bytes ".len()..range.find('/').unwrap()]
                        .split_once('-')
                        .unwrap();
                    let (first, last): (usize, usize) =
                        (first.parse().unwrap(), last.parse().unwrap());
                    assert!(first <= last && last < total, "{what}: {range}");
                    assert_eq!(reply.body.len(), last - first + 1, "{what}");
                    assert_eq!(reply.body, public.zip()[first..=last], "{what}");
                }
            }
            304 => assert!(reply.body.is_empty(), "{what}"),
            // hyper refuses an oversized header block before any handler runs.
            431 => assert_eq!(what, "a 200 kB header"),
            _ => {
                assert!(
                    reply
                        .header("content-type")
                        .unwrap_or_default()
                        .starts_with("text/plain"),
                    "{what}: {} without a plain-text reason ({:?})",
                    reply.status,
                    reply.header("content-type").unwrap_or_default()
                );
                assert!(
                    !body.trim().is_empty(),
                    "{what}: {} without a reason",
                    reply.status
                );
            }
        }
    }
    eprintln!("{} crafted requests, statuses {statuses:?}", requests.len());

    // An outage of the public mirror behind the registry is the mirror's failure, not the
    // registry's: clients get 502s with the reason, the registry stays healthy at the edge.
    stack.upstream.set_fail_status(Some(503));
    for i in 0..10 {
        let reply = stack
            .get(&format!("/example.com/outage{i}/@v/v1.0.0.info"), None)
            .await;
        assert!(
            matches!(reply.status, 502 | 504),
            "outage {i}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(
            reply
                .header("content-type")
                .unwrap_or_default()
                .starts_with("text/plain")
        );
    }
    stack.upstream.clear_faults();

    // The ops endpoints live on the admin listener only.
    let admin = raw_http::exchange(
        stack.admin_addr(),
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(admin.status, 200);
    let metrics = admin.text();
    assert!(
        metrics.contains("strata_edge_registry_healthy{registry=\"r0\"} 1"),
        "the registry is still healthy:\n{metrics}"
    );
    assert!(stack.edge.edge.pool.any_healthy());
    let ready = raw_http::exchange(
        stack.admin_addr(),
        b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(
        ready.text().contains("registry r0: healthy"),
        "{}",
        ready.text()
    );

    // An uncached real module still downloads, through the virtual repository and the remote.
    let later = FixtureModule::new("example.com/later", "v1.0.0", &[]);
    let reply = stack.get("/example.com/later/@v/v1.0.0.zip", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, later.zip());
    assert_eq!(
        stack
            .upstream
            .request_count("/example.com/later/@v/v1.0.0.zip"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sumdb_route_tricks_never_unlock_a_cached_private_artifact() {
    let stack = Stack::start().await;
    let secret = secret_module("v1.0.0");
    stack.publish("private", &secret).await;
    let zip = format!("/private/{SECRET}/@v/v1.0.0.zip");
    // An authorized client warms every tier with the private artifacts.
    for path in [
        zip.clone(),
        format!("/private/{SECRET}/@v/v1.0.0.mod"),
        format!("/private/{SECRET}/@v/v1.0.0.info"),
        format!("/private/{SECRET}/@v/list"),
    ] {
        let r = stack.get(&path, Some(CI_TOKEN)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("cache-control")
                .unwrap_or_default()
                .starts_with("private"),
            "{path}: {}",
            r.header("cache-control").unwrap_or_default()
        );
        assert!(
            r.header("vary")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("authorization")
        );
    }
    let warm = stack.get(&zip, Some(CI_TOKEN)).await;
    assert_eq!(warm.body, secret.zip());
    assert!(
        warm.header("x-strata-cache")
            .unwrap_or_default()
            .starts_with("hit"),
        "{:?}",
        warm.headers
    );

    // Every trick on the checksum-database route, anonymously.
    let tricks = [
        "/private/sumdb/sum.strata.test/latest",
        "/private/sumdb/sum.strata.test/supported",
        "/private/sumdb/sum.strata.test/lookup/corp.example.com/secret@v1.0.0",
        "/private/sumdb/sum.strata.test/tile/8/0/000",
        "/private/sumdb/sum.strata.test/%2e%2e/%2e%2e/%2e%2e/%2e%2e/go/private/corp.example.com/secret/@v/list",
        "/private/sumdb/sum.strata.test/../../../../go/private/corp.example.com/secret/@v/v1.0.0.zip",
        "/sumdb/sum.strata.test/../../../../go/private/corp.example.com/secret/@v/list",
        "/sumdb/sum.strata.test/%2e%2e/%2e%2e/%2e%2e/%2e%2e/go/private/corp.example.com/secret/@v/v1.0.0.zip",
        "/sumdb/sum.strata.test/%2e%2e/%2e%2e/%2e%2e/%2e%2e/metrics",
        "/sumdb/sum.strata.test/latest",
        "/sumdb/sum.strata.test/supported",
        "/sumdb/sum.strata.test/lookup/example.com/public@v1.0.0",
        "/pub/sumdb/sum.strata.test/latest",
        "/gocache/sumdb/sum.strata.test/latest",
        "/private/sumdb/../private/corp.example.com/secret/@v/v1.0.0.zip",
        "/private/sumdb/sum.strata.test%2f..%2f..%2fgo%2fprivate/latest",
    ];
    for trick in tricks {
        let r = stack.get(trick, None).await;
        assert!(r.status < 500, "{trick}: {} {}", r.status, r.text());
        assert!(!leaks_ops(&r.text()), "{trick}: {}", r.text());
        assert!(
            r.status != 200 || !trick.contains("secret"),
            "{trick} answered 200: {}",
            r.text()
        );
        assert_ne!(r.body, secret.zip(), "{trick}");
        assert!(!r.text().contains("TOP-SECRET-MARKER"), "{trick}");
        if trick.starts_with("/private/") {
            assert!(
                r.status == 401 || r.status == 404,
                "{trick}: anonymous access to a private repository's route: {} {}",
                r.status,
                r.text()
            );
        }
    }
    // Then the cached private artifacts: refused, never the bytes.
    for path in [
        zip.clone(),
        format!("/private/{SECRET}/@v/v1.0.0.mod"),
        format!("/private/{SECRET}/@v/v1.0.0.info"),
        format!("/private/{SECRET}/@v/list"),
    ] {
        let r = stack.get(&path, None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        assert!(!r.text().contains("TOP-SECRET-MARKER"));
        assert_ne!(r.body, secret.zip());
        assert!(
            r.header("www-authenticate")
                .unwrap_or_default()
                .starts_with("Basic"),
            "{:?}",
            r.headers
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_delete_and_quarantine_reach_the_virtual_route_at_once() {
    let stack = Stack::start().await;
    let list = "/corp.example.com/lib/@v/list";
    let v1 = FixtureModule::new("corp.example.com/lib", "v0.1.0", &[]);
    stack.publish("pub", &v1).await;
    assert_eq!(stack.get(list, None).await.text(), "v0.1.0\n");
    let cached = stack.get(list, None).await;
    assert_eq!(
        cached.header("x-strata-cache").unwrap_or_default(),
        "hit-memory"
    );
    // Warm the artifacts of v0.1.0 through `/` too.
    for ext in ["info", "mod", "zip"] {
        let r = stack
            .get(&format!("/corp.example.com/lib/@v/v0.1.0.{ext}"), None)
            .await;
        assert_eq!(r.status, 200, "{ext}: {}", r.text());
    }

    // Publish: the virtual route lists the new version within a second (TTL: an hour).
    let v2 = FixtureModule::new("corp.example.com/lib", "v0.2.0", &[]);
    stack.publish("pub", &v2).await;
    let took = within(VISIBLE_WITHIN, async || {
        stack.get(list, None).await.text() == "v0.1.0\nv0.2.0\n"
    })
    .await;
    assert!(took.is_some(), "v0.2.0 never listed at /");
    eprintln!("publish visible at / after {took:?}");
    let zip2 = stack.get("/corp.example.com/lib/@v/v0.2.0.zip", None).await;
    assert_eq!(zip2.body, v2.zip());

    // Delete v0.2.0: gone from `/` (list and artifacts) within a second.
    let url = format!(
        "http://{}/api/go/pub/corp.example.com/lib/@v/v0.2.0.zip",
        stack.registry.http_addr
    );
    let deleted = reqwest::Client::new()
        .delete(url)
        .bearer_auth(CI_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        deleted.status().is_success(),
        "{}",
        deleted.text().await.unwrap()
    );
    let took = within(VISIBLE_WITHIN, async || {
        stack.get(list, None).await.text() == "v0.1.0\n"
            && stack
                .get("/corp.example.com/lib/@v/v0.2.0.zip", None)
                .await
                .status
                == 404
    })
    .await;
    assert!(took.is_some(), "the deleted version still served at /");
    eprintln!("delete visible at / after {took:?}");

    // Quarantine v0.1.0 (its stored go.mod damaged, found by a scrub): its cached artifacts
    // stop being served at `/` within a second.
    let registry = &stack.registry.registry;
    let (m, v) = (
        ModulePath::new("corp.example.com/lib").unwrap(),
        Version::new("v0.1.0").unwrap(),
    );
    flip_last_byte(registry, "pub", &m, &v, ArtifactKind::Mod)
        .await
        .unwrap();
    let report = registry.scrub_version("pub", &m, &v).await.unwrap();
    assert!(
        matches!(report.outcome, ScrubOutcome::Quarantined { .. }),
        "{report:?}"
    );
    let took = within(VISIBLE_WITHIN, async || {
        let mut gone = true;
        for ext in ["mod", "zip", "info"] {
            let r = stack
                .get(&format!("/corp.example.com/lib/@v/v0.1.0.{ext}"), None)
                .await;
            gone &= r.status == 404;
        }
        gone
    })
    .await;
    assert!(took.is_some(), "the quarantined version still served at /");
    eprintln!("quarantine visible at / after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_the_registry_cannot_vouch_for_are_passed_on_never_cached() {
    let stack = Stack::start().await;
    // The registry verifies the database's tree head (2 records) and keeps it for its TTL.
    let latest = stack.get("/sumdb/sum.strata.test/latest", None).await;
    assert_eq!(latest.status, 200, "{}", latest.text());
    let verified = stack
        .get("/sumdb/sum.strata.test/tile/8/0/000.p/2", None)
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    assert!(
        verified
            .header("cache-control")
            .unwrap_or_default()
            .contains("immutable")
    );
    // Cached tiles are served to clients the registry admitted on the GOPROXY route (this
    // route grants nothing), as artifacts are.
    let admitted = stack.get("/example.com/public/@v/list", None).await;
    assert_eq!(admitted.status, 200, "{}", admitted.text());
    let again = stack
        .get("/sumdb/sum.strata.test/tile/8/0/000.p/2", None)
        .await;
    assert_eq!(
        again.header("x-strata-cache").unwrap_or_default(),
        "hit-memory",
        "a verified tile is cached"
    );

    // The database grows; a tile of the new size is beyond the registry's verified head, so it
    // is passed through `no-store`, and the edge keeps it nowhere.
    stack.db.add(
        "example.com/newer",
        "v1.0.0",
        "example.com/newer v1.0.0 h1:x=\n",
    );
    let tile = "/sumdb/sum.strata.test/tile/8/0/000.p/3";
    for _ in 0..2 {
        let r = stack.get(tile, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("cache-control").unwrap_or_default(), "no-store");
        assert_eq!(r.header("x-strata-cache").unwrap_or_default(), "miss");
    }
}
