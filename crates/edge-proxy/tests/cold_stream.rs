//! Cold zips stream from the upstream through the registry to the edge's clients: an edge in
//! front of a registry (real gRPC) whose remote repository `gocache` proxies a fixture upstream
//! that sends zips at 2 MB/s, read through the route users have — `/`, the virtual repository
//! `go` over a local member and `gocache`, as in `make run` — with a metadata deadline (`request_timeout_ms`) far below the
//! time the whole download takes.
//!
//! - A genuine zip of several MB: the client's first bytes arrive while the upstream is still
//!   sending, the download completes byte-identical with its `h1:`, and the registry is still
//!   healthy (a circuit that one failure would open is closed, no failed or timed-out calls).
//! - A tampered zip (valid archive, one content byte flipped, so only the `h1:` check at the end
//!   can catch it): the client's body ends early, nothing is stored by the registry or enters
//!   the edge's disk tier, and the registry is still healthy (an integrity failure is no
//!   transport failure).
//! - The registry's side of the contract, over gRPC: a streaming answer (no ETag in the header,
//!   the SHA-256 in the trailer), a resumed download of a zip still downloading served from
//!   the download spool, and a caller that does not accept streaming answered as before.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::grpc::proto::{ZipHeader, ZipRequest, zip_response};
use strata_central_registry::server::{self, Running as RegistryRunning};
use strata_edge_proxy::Running as EdgeRunning;
use strata_edge_proxy::config::EdgeConfig;
use strata_service::config::ServiceConfig as _;
use strata_testkit::registry_toml::{ANY_LOOPBACK_PORT, RegistryToml, Repo};
use strata_testkit::{FixtureModule, FixtureUpstream, Tamper, TestSumDb};
use tokio_util::sync::CancellationToken;

/// The fixture upstream's pace.
const RATE: u64 = 2_000_000;
/// The edge's deadline for a registry's first answer (a zip stream's header).
const REQUEST_TIMEOUT_MS: u64 = 1_500;
/// Size of the incompressible file in the zips: about 4 s at [`RATE`].
const BLOB: usize = 8 << 20;

const GOOD: &str = "example.com/cold/good";
const BAD: &str = "example.com/cold/bad";
const VERSION: &str = "v1.0.0";

/// Bytes that deflate cannot shrink (xorshift), so the zip is about as large as the file.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Fixture upstream, registry and edge, stopped when dropped.
struct Stack {
    upstream: FixtureUpstream,
    registry: RegistryRunning,
    edge: EdgeRunning,
    registry_dir: tempfile::TempDir,
    edge_dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Stack {
    async fn start(module: FixtureModule) -> Self {
        let db = Arc::new(TestSumDb::new("sum.strata.test"));
        let upstream = FixtureUpstream::start(&[module], Some(db.clone())).await;
        upstream.set_rate(Some(RATE));
        let registry_dir = tempfile::tempdir().unwrap();
        let edge_dir = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let registry = server::start(
            registry_config(registry_dir.path(), &upstream, &db),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let edge =
            strata_edge_proxy::start(edge_config(edge_dir.path(), &registry), shutdown.clone())
                .await
                .unwrap();
        Stack {
            upstream,
            registry,
            edge,
            registry_dir,
            edge_dir,
            shutdown,
        }
    }

    fn zip_url(&self, module: &str) -> String {
        format!("http://{}/{module}/@v/{VERSION}.zip", self.edge.addr)
    }

    /// The registry is still trusted: its circuit (which one failure opens) is closed and no
    /// call failed or timed out.
    fn assert_registry_healthy(&self) {
        let pool = &self.edge.edge.pool;
        assert!(
            pool.upstreams().iter().all(|u| u.health.is_closed()),
            "the registry was marked unhealthy"
        );
        let metrics = self.edge.edge.metrics.encode();
        for line in metrics.lines() {
            if line.starts_with("strata_edge_upstream_calls_total{") {
                assert!(
                    !line.contains(r#"outcome="failed""#) && !line.contains(r#"outcome="timeout""#),
                    "{line}"
                );
            }
        }
    }
}

fn registry_config(dir: &Path, upstream: &FixtureUpstream, db: &TestSumDb) -> RegistryConfig {
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let url = upstream.url();
    let text = RegistryToml::new()
        .repo(
            Repo::remote("gocache")
                .anonymous_read()
                .upstream(&url, 10_000, 1)
                .checksum_db(&url, db, 10_000),
        )
        // What `make run` serves at `/`: a virtual repository over a local and the remote one.
        .repo(Repo::local("private"))
        .repo(Repo::virtual_of("go", &["private", "gocache"]).anonymous_read())
        .text(&dir.join("data"), &spool, ANY_LOOPBACK_PORT);
    RegistryConfig::from_toml(&text, "cold-stream", &[]).unwrap()
}

fn edge_config(dir: &Path, registry: &RegistryRunning) -> EdgeConfig {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_ms = 2000
admin_listen = ""

[[routes]]
prefix = "/"
repository = "go"

[upstream]
request_timeout_ms = {REQUEST_TIMEOUT_MS}
zip_idle_timeout_ms = 10000
failure_threshold = 1
cooldown_ms = 3600000

[cache]
dir = {dir:?}
memory_zip_max_bytes = 0

[[registries]]
name = "r0"
grpc = "http://{grpc}"
http = "http://{http}"
"#,
        dir = dir.join("cache"),
        grpc = registry.grpc_addr,
        http = registry.http_addr,
    );
    EdgeConfig::from_toml(&text, "cold-stream", &[]).unwrap()
}

/// Every file under `dir` whose path contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.display().to_string().contains(needle) {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// What a client saw of a zip download.
struct Download {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    /// Bytes the upstream had sent when the client's first body bytes arrived.
    upstream_sent_at_first_byte: Option<u64>,
    /// Whether the body ended with an error (cut short).
    failed: bool,
}

async fn download(stack: &Stack, module: &str) -> Download {
    let mut response = reqwest::get(stack.zip_url(module)).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut upstream_sent_at_first_byte = None;
    let failed = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if upstream_sent_at_first_byte.is_none() && !chunk.is_empty() {
                    upstream_sent_at_first_byte = Some(stack.upstream.zip_bytes_sent());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    Download {
        status,
        headers,
        body,
        upstream_sent_at_first_byte,
        failed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_zip_streams_while_the_upstream_sends_it() {
    let module = FixtureModule::new(GOOD, VERSION, &[]).with_file("blob.bin", noise(BLOB, 7));
    let stack = Stack::start(module).await;
    let built = stack.upstream.module(GOOD, VERSION).unwrap();
    let size = built.zip.len() as u64;
    let full_download = Duration::from_millis(size * 1000 / RATE);
    assert!(
        full_download > Duration::from_millis(2 * REQUEST_TIMEOUT_MS),
        "the zip must take longer than the metadata deadline to prove streaming"
    );

    let started = Instant::now();
    let got = download(&stack, GOOD).await;
    let took = started.elapsed();
    assert_eq!(got.status, 200);
    assert!(!got.failed, "the body was cut short");
    assert_eq!(got.body.len() as u64, size);
    assert!(got.body == built.zip, "the client got other bytes");
    assert_eq!(got.headers["x-go-checksum"], built.zip_hash.as_str());
    // Its SHA-256 was not known when the answer started: no ETag rather than an empty one.
    assert!(
        got.headers.get("etag").is_none(),
        "{:?}",
        got.headers.get("etag")
    );
    // The first bytes came while most of the zip was still to be sent by the upstream.
    let sent = got.upstream_sent_at_first_byte.unwrap();
    assert!(
        sent < size / 2,
        "the first byte came after the upstream had sent {sent} of {size} bytes"
    );
    // The whole download outlasted the metadata deadline without being cut by it.
    assert!(took > Duration::from_millis(REQUEST_TIMEOUT_MS), "{took:?}");
    stack.assert_registry_healthy();
    let m = &stack.edge.edge.metrics;
    assert_eq!((m.fill_count("ok"), m.fill_count("failed")), (1, 0));

    // The verified zip is in the disk tier with its SHA-256 as ETag (written once the trailer
    // or the bytes told it), and is served from there.
    let again = download(&stack, GOOD).await;
    assert_eq!(again.status, 200);
    assert!(again.body == built.zip);
    assert_eq!(again.headers["x-strata-cache"], "hit-disk");
    let sha = hex::encode(Sha256::digest(&built.zip));
    assert_eq!(again.headers["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(
        stack
            .upstream
            .request_count(&format!("/{GOOD}/@v/{VERSION}.zip")),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_cold_zip_is_cut_short_and_stored_nowhere() {
    let module = FixtureModule::new(BAD, VERSION, &[]).with_file("blob.bin", noise(BLOB, 11));
    let stack = Stack::start(module).await;
    stack.upstream.set_tampered(BAD, Some(Tamper::Content));
    let tampered = stack
        .upstream
        .module(BAD, VERSION)
        .unwrap()
        .tampered_zip
        .clone();

    let got = download(&stack, BAD).await;
    // The answer started before the tampering could be known (streaming), so the client sees
    // it as a body that ends early, which the go command rejects.
    assert_eq!(got.status, 200);
    assert!(got.failed, "the body of a tampered zip ended normally");
    assert!(
        (got.body.len() as u64) < tampered.len() as u64,
        "the client got all {} bytes of a tampered zip",
        got.body.len()
    );
    let sent = got.upstream_sent_at_first_byte.unwrap();
    assert!(sent < tampered.len() as u64 / 2, "{sent}");

    let m = &stack.edge.edge.metrics;
    assert_eq!((m.fill_count("integrity"), m.fill_count("ok")), (1, 0));
    stack.assert_registry_healthy();
    // Nothing in the edge's disk tier (nor a temp file left behind)...
    assert_eq!(
        files_containing(stack.edge_dir.path(), "cold/bad"),
        Vec::<String>::new()
    );
    assert_eq!(
        files_containing(stack.edge_dir.path(), ".part"),
        Vec::<String>::new()
    );
    // ...nor in the registry's storage.
    let stored = files_containing(&stack.registry_dir.path().join("data"), ".zip");
    assert!(stored.is_empty(), "{stored:#?}");
}

/// A `Zip` call straight to the registry: the header, the data and the trailer's ETag.
async fn registry_zip(
    stack: &Stack,
    module: &str,
    offset: u64,
    accept_streaming: bool,
) -> (ZipHeader, Vec<u8>, Option<String>) {
    let mut client = RegistryClient::connect(format!("http://{}", stack.registry.grpc_addr))
        .await
        .unwrap();
    let request = ZipRequest {
        repository: "gocache".into(),
        module: module.into(),
        version: VERSION.into(),
        offset,
        length: 0,
        accept_streaming,
    };
    let mut stream = client.zip(request).await.unwrap().into_inner();
    let Some(zip_response::Part::Header(header)) = stream.message().await.unwrap().unwrap().part
    else {
        panic!("the first message is not the header");
    };
    let mut data = Vec::new();
    let mut trailer = None;
    while let Some(message) = stream.message().await.unwrap() {
        match message.part {
            Some(zip_response::Part::Data(chunk)) => {
                assert!(trailer.is_none(), "data after the trailer");
                data.extend_from_slice(&chunk);
            }
            Some(zip_response::Part::Trailer(t)) => trailer = Some(t.etag),
            other => panic!("unexpected message {other:?}"),
        }
    }
    (header, data, trailer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_streams_resumes_from_its_spool_and_keeps_the_old_answer() {
    let module = FixtureModule::new(GOOD, VERSION, &[]).with_file("blob.bin", noise(3 << 20, 3));
    let stack = Stack::start(module).await;
    let built = stack.upstream.module(GOOD, VERSION).unwrap();
    let size = built.zip.len() as u64;
    let sha = hex::encode(Sha256::digest(&built.zip));

    // Three callers of one download: from the start and resumed from the middle (both
    // streaming), and one that does not accept streaming.
    let resume_at = size / 2;
    let (whole, resumed, waited) = tokio::join!(
        registry_zip(&stack, GOOD, 0, true),
        registry_zip(&stack, GOOD, resume_at, true),
        registry_zip(&stack, GOOD, 0, false),
    );
    let (header, data, trailer) = whole;
    assert!(header.streaming);
    assert_eq!((header.size, header.offset, header.length), (size, 0, size));
    assert_eq!(header.h1, built.zip_hash);
    assert_eq!(header.etag, "");
    assert!(data == built.zip);
    assert_eq!(trailer.as_deref(), Some(sha.as_str()));

    let (header, data, trailer) = resumed;
    assert!(header.streaming);
    assert_eq!((header.size, header.offset), (size, resume_at));
    assert_eq!(header.length, size - resume_at);
    assert!(data == built.zip[resume_at as usize..]);
    assert_eq!(trailer.as_deref(), Some(sha.as_str()));

    let (header, data, trailer) = waited;
    assert!(!header.streaming);
    assert_eq!(header.etag, sha);
    assert!(data == built.zip);
    assert_eq!(trailer, None);

    assert_eq!(
        stack
            .upstream
            .request_count(&format!("/{GOOD}/@v/{VERSION}.zip")),
        1
    );
}
