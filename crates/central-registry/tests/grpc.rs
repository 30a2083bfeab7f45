//! Round trips through the registry's gRPC API against a real server on `127.0.0.1:0`: publish
//! as a client stream, read back with every call and compare with the HTTP API and with
//! `strata_core::dirhash`; error codes; the health service; and a 100 MiB zip streamed both ways
//! with the test process's peak memory reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Cursor;
use std::time::Instant;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use strata_central_registry::grpc::MAX_ZIP_CHUNK;
use strata_central_registry::grpc::proto::{
    PublishHeader, PublishRequest, VersionState, publish_request,
};
use strata_core::dirhash::{hash_go_mod, hash_zip};
use tokio::sync::RwLock;
use tonic::Code;

use support::big_module;
use support::config::{self, CI_TOKEN, OPEN, PRIVATE, READ_TOKEN};
use support::grpc::{Api, authed, code, publish_messages};
use support::registry::TestRegistry;
use support::zip::module_zip;

/// The large test takes this exclusively so that its memory figures are its own; the others
/// share it.
static MEMORY: RwLock<()> = RwLock::const_new(());

const MODULE: &str = "example.com/Team/Widget";
const ESCAPED: &str = "example.com/!team/!widget";
const GO_MOD: &str = "module example.com/Team/Widget\n\ngo 1.21\n";

fn widget_zip(version: &str) -> (Vec<u8>, String) {
    let code = format!("package widget\n\nconst Version = {version:?}\n");
    let files: [(&str, &[u8]); 3] = [
        ("go.mod", GO_MOD.as_bytes()),
        ("widget.go", code.as_bytes()),
        ("LICENSE", b"Apache-2.0\n"),
    ];
    module_zip(MODULE, version, &files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_every_call_round_trips_and_matches_http() {
    let _shared = MEMORY.read().await;
    let registry = TestRegistry::start(config::claimed()).await;
    let mut api = Api::new(registry.grpc_client().await, Some(CI_TOKEN));

    // v1.0.0 with module and version in the header, v1.1.0 taken from the zip's prefix; small
    // chunks so the zip really arrives in pieces.
    let (zip, h1) = widget_zip("v1.0.0");
    let published = api
        .publish(PRIVATE, Some((MODULE, "v1.0.0")), zip.clone(), 1000)
        .await
        .unwrap();
    assert_eq!(published.module, MODULE);
    let mod_h1 = hash_go_mod(GO_MOD.as_bytes());
    let go_sum = format!("{MODULE} v1.0.0 {h1}\n{MODULE} v1.0.0/go.mod {mod_h1}\n");
    assert_eq!(published.go_sum, go_sum);
    let entry = published.entry.unwrap();
    assert_eq!(
        (
            entry.version.as_str(),
            entry.zip.as_ref().unwrap().h1.as_str()
        ),
        ("v1.0.0", h1.as_str())
    );
    let published = api
        .publish(PRIVATE, None, widget_zip("v1.1.0").0, 700)
        .await
        .unwrap();
    assert_eq!(published.entry.unwrap().version, "v1.1.0");

    // List, Latest, Query.
    assert_eq!(
        api.list(PRIVATE, MODULE).await.unwrap(),
        ["v1.0.0", "v1.1.0"]
    );
    let latest = api.latest(PRIVATE, MODULE).await.unwrap();
    assert_eq!(latest.version, "v1.1.0");
    assert_eq!(api.query(PRIVATE, MODULE, "latest").await.unwrap(), latest);
    let (c, message) = code(api.query(PRIVATE, MODULE, "main").await);
    assert_eq!(c, Code::NotFound, "{message}");

    // Info, Mod, Stat of v1.0.0.
    let info = api.info(PRIVATE, MODULE, "v1.0.0").await.unwrap();
    assert_eq!(
        (info.version.as_str(), info.time.as_str()),
        ("v1.0.0", entry.time.as_str())
    );
    let go_mod = api.go_mod(PRIVATE, MODULE, "v1.0.0").await.unwrap();
    assert_eq!(
        (go_mod.content.as_ref(), go_mod.h1.as_str()),
        (GO_MOD.as_bytes(), mod_h1.as_str())
    );
    let stat = api.stat(PRIVATE, MODULE, "v1.0.0").await.unwrap();
    let sha = hex::encode(Sha256::digest(&zip));
    let blob = stat.zip.clone().unwrap();
    let size = zip.len() as u64;
    assert_eq!(
        (blob.size, blob.h1.as_str(), blob.sha256.as_str()),
        (size, h1.as_str(), sha.as_str())
    );
    assert_eq!(stat.r#mod.clone().unwrap().h1, mod_h1);
    assert_eq!(stat.state(), VersionState::Available);
    assert_eq!(stat, entry);

    // Zip: the published bytes, their h1 by dirhash, and ranges.
    let (header, got) = api.zip(PRIVATE, MODULE, "v1.0.0", (0, 0)).await.unwrap();
    assert_eq!(got, zip);
    assert_eq!(hash_zip(Cursor::new(&got)).unwrap(), h1);
    assert_eq!(
        (header.size, header.h1.as_str(), header.etag.as_str()),
        (size, h1.as_str(), sha.as_str())
    );
    let (header, part) = api.zip(PRIVATE, MODULE, "v1.0.0", (10, 100)).await.unwrap();
    assert_eq!(
        (header.offset, header.length, part.as_slice()),
        (10, 100, &zip[10..110])
    );
    let (header, tail) = api
        .zip(PRIVATE, MODULE, "v1.0.0", (size - 5, 0))
        .await
        .unwrap();
    assert_eq!(
        (header.offset, tail.as_slice()),
        (size - 5, &zip[zip.len() - 5..])
    );
    let (header, rest) = api.zip(PRIVATE, MODULE, "v1.0.0", (size, 0)).await.unwrap();
    assert_eq!((header.length, rest.len()), (0, 0), "resuming at the end");
    let (c, message) = code(api.zip(PRIVATE, MODULE, "v1.0.0", (size + 1, 0)).await);
    assert_eq!(c, Code::InvalidArgument, "{message}");

    // The HTTP API serves the same bytes and hashes.
    let http = reqwest::Client::new();
    let get = |file: &str| {
        let url = format!("{}/{ESCAPED}/{file}", registry.proxy_url(PRIVATE));
        http.get(url).bearer_auth(CI_TOKEN).send()
    };
    let response = get("@v/v1.0.0.zip").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-go-checksum"], h1.as_str());
    assert_eq!(response.headers()["etag"], format!("\"{sha}\"").as_str());
    assert_eq!(response.bytes().await.unwrap(), zip);
    let response = get("@v/v1.0.0.mod").await.unwrap();
    assert_eq!(response.headers()["x-go-checksum"], mod_h1.as_str());
    assert_eq!(response.bytes().await.unwrap(), go_mod.content);
    let json: serde_json::Value =
        serde_json::from_slice(&get("@v/v1.0.0.info").await.unwrap().bytes().await.unwrap())
            .unwrap();
    assert_eq!(json["Version"].as_str(), Some("v1.0.0"));
    assert_eq!(json["Time"].as_str(), Some(info.time.as_str()));
    let list = get("@v/list").await.unwrap().text().await.unwrap();
    assert_eq!(list, "v1.0.0\nv1.1.0\n");
    let json: serde_json::Value =
        serde_json::from_slice(&get("@latest").await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(json["Version"].as_str(), Some(latest.version.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_grpc_codes() {
    let _shared = MEMORY.read().await;
    let registry = TestRegistry::start(config::claimed()).await;
    let client = registry.grpc_client().await;
    let mut ci = Api::new(client.clone(), Some(CI_TOKEN));
    let mut anonymous = Api::new(client.clone(), None);
    let mut bogus = Api::new(client.clone(), Some("bogus"));
    let mut reader = Api::new(client.clone(), Some(READ_TOKEN));
    let (zip, _) = widget_zip("v1.0.0");
    ci.publish(PRIVATE, None, zip.clone(), 4096).await.unwrap();

    let mut cases: Vec<(&str, Code, (Code, String))> = Vec::new();
    let mut check = |name, expected, got| cases.push((name, expected, got));
    let r = ci.info(PRIVATE, MODULE, "v1.9.9").await;
    check("unknown version", Code::NotFound, code(r));
    let r = ci.info("nope", MODULE, "v1.0.0").await;
    check("unknown repository", Code::NotFound, code(r));
    let r = ci.zip(PRIVATE, MODULE, "v1.5.0", (0, 0)).await;
    check("zip of an unknown version", Code::NotFound, code(r));
    let r = anonymous.info(PRIVATE, MODULE, "v1.0.0").await;
    check("no token", Code::Unauthenticated, code(r));
    let r = bogus.info(PRIVATE, MODULE, "v1.0.0").await;
    check("invalid token", Code::Unauthenticated, code(r));
    let r = anonymous.publish(OPEN, None, zip.clone(), 4096).await;
    check("anonymous publish", Code::Unauthenticated, code(r));
    let r = reader.publish(PRIVATE, None, zip.clone(), 4096).await;
    check(
        "read-only token publishing",
        Code::PermissionDenied,
        code(r),
    );
    let (outside, _) = module_zip("other.org/x", "v1.0.0", &[("x.go", b"package x\n")]);
    let r = ci.publish(PRIVATE, None, outside, 4096).await;
    check(
        "module outside the repository's patterns",
        Code::PermissionDenied,
        code(r),
    );
    let r = ci.publish(PRIVATE, None, zip.clone(), 4096).await;
    check("re-publish", Code::AlreadyExists, code(r));
    let r = ci
        .publish(PRIVATE, None, b"not a zip at all".to_vec(), 4096)
        .await;
    check("not a zip", Code::InvalidArgument, code(r));
    let r = ci
        .publish(
            PRIVATE,
            Some(("example.com/Bad Path", "v1.0.0")),
            zip.clone(),
            4096,
        )
        .await;
    check("bad module path", Code::InvalidArgument, code(r));
    let r = ci
        .publish(PRIVATE, Some((MODULE, "v1.3.0")), zip.clone(), 4096)
        .await;
    check("zip of another version", Code::InvalidArgument, code(r));
    let r = ci.stat(PRIVATE, MODULE, "v1.0").await;
    check("non-canonical version", Code::InvalidArgument, code(r));
    let r = ci.list(PRIVATE, "example.com/../x").await;
    check("bad module path on read", Code::InvalidArgument, code(r));
    for (name, expected, (got, message)) in cases {
        assert_eq!(got, expected, "{name}: {message}");
        assert!(!message.is_empty(), "{name}: a reason is given");
    }

    // Protocol mistakes in the publish stream.
    let mut client = client;
    let chunk = |data: &[u8]| PublishRequest {
        part: Some(publish_request::Part::Chunk(Bytes::copy_from_slice(data))),
    };
    let chunk_first = futures::stream::iter([chunk(b"PK")]);
    let (c, message) = code(client.publish(authed(chunk_first, Some(CI_TOKEN))).await);
    assert_eq!(c, Code::InvalidArgument, "{message}");
    let header = PublishRequest {
        part: Some(publish_request::Part::Header(PublishHeader {
            repository: PRIVATE.into(),
            module: MODULE.into(),
            version: "v1.2.0".into(),
        })),
    };
    let (zip_v2, _) = widget_zip("v1.2.0");
    let twice = futures::stream::iter([header.clone(), chunk(&zip_v2[..100]), header]);
    let (c, message) = code(client.publish(authed(twice, Some(CI_TOKEN))).await);
    assert_eq!(c, Code::InvalidArgument, "{message}");

    // None of the failed publishes became visible; anonymous read works where it is allowed.
    assert_eq!(ci.list(PRIVATE, MODULE).await.unwrap(), ["v1.0.0"]);
    assert!(anonymous.list(OPEN, MODULE).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let _shared = MEMORY.read().await;
    let registry = TestRegistry::start(config::claimed()).await;
    let mut health = HealthClient::new(registry.channel().await);
    for service in ["strata.registry.v1.Registry", ""] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let response = health.check(request).await.unwrap().into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    let request = HealthCheckRequest {
        service: "no.such.Service".into(),
    };
    assert_eq!(code(health.check(request).await).0, Code::NotFound);
}

/// Publishes a ~100 MiB module zip (incompressible) through the client stream and streams it
/// back, verifying SHA-256 and h1, with nothing held whole in memory on either side. The test
/// process (registry and client) reports its peak resident set; the bound asserted is only a
/// sanity check against whole-buffering (100 MiB above the baseline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_mib_zip_streams_both_ways_with_bounded_memory() {
    const BIG: &str = "example.com/big";
    const SIZE: u64 = 100 << 20;
    let _exclusive = MEMORY.write().await;
    let registry = TestRegistry::start(config::claimed()).await;
    let mut client = registry.grpc_client().await;
    let work = tempfile::tempdir().unwrap();
    let (tree, zip_path) = (work.path().join("tree"), work.path().join("big.zip"));
    let (h1, zip_size, zip_sha) = {
        let (tree, zip_path) = (tree.clone(), zip_path.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&tree).unwrap();
            big_module::write_tree(&tree, BIG, SIZE);
            let h1 = support::zip::module_zip_file(BIG, "v1.0.0", &tree, &zip_path);
            let digest = strata_core::dirhash::file_digest(std::fs::File::open(&zip_path).unwrap());
            (
                h1,
                std::fs::metadata(&zip_path).unwrap().len(),
                hex::encode(digest.unwrap()),
            )
        })
        .await
        .unwrap()
    };
    let reset = big_module::reset_peak_rss();
    let baseline = big_module::peak_rss_kib();

    let started = Instant::now();
    let chunks = big_module::file_chunks(&zip_path, 1 << 20).await;
    let published = client
        .publish(authed(
            publish_messages(PRIVATE, None, chunks),
            Some(CI_TOKEN),
        ))
        .await
        .unwrap()
        .into_inner();
    let publish_time = started.elapsed();
    let after_publish = big_module::peak_rss_kib();
    let zip_blob = published.entry.unwrap().zip.unwrap();
    assert_eq!(
        (zip_blob.size, zip_blob.h1.as_str()),
        (zip_size, h1.as_str())
    );

    let started = Instant::now();
    let out = work.path().join("downloaded.zip");
    let got = big_module::download_zip(&mut client, PRIVATE, BIG, "v1.0.0", &out).await;
    let download_time = started.elapsed();
    let after_download = big_module::peak_rss_kib();
    assert_eq!((got.bytes, got.header.size), (zip_size, zip_size));
    assert_eq!(
        (got.sha256.as_str(), got.header.etag.as_str()),
        (zip_sha.as_str(), zip_sha.as_str())
    );
    assert!(
        got.largest_chunk <= MAX_ZIP_CHUNK,
        "chunk of {}",
        got.largest_chunk
    );
    let downloaded_h1 =
        tokio::task::spawn_blocking(move || hash_zip(std::fs::File::open(out).unwrap()))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        (downloaded_h1.as_str(), got.header.h1.as_str()),
        (h1.as_str(), h1.as_str())
    );

    let mib = |kib: u64| kib as f64 / 1024.0;
    let rate = |secs: f64| zip_size as f64 / (1 << 20) as f64 / secs;
    eprintln!(
        "100 MiB gRPC round trip: zip {:.1} MiB; publish {:.2?} ({:.0} MiB/s), download {:.2?} \
         ({:.0} MiB/s) in {} chunks of <= {} KiB",
        mib(zip_size / 1024),
        publish_time,
        rate(publish_time.as_secs_f64()),
        download_time,
        rate(download_time.as_secs_f64()),
        got.chunks,
        got.largest_chunk / 1024,
    );
    eprintln!(
        "peak RSS (VmHWM) of the test process (registry + client){}: baseline {:.1} MiB, after \
         publish {:.1} MiB (+{:.1}), after download {:.1} MiB (+{:.1}); RSS now {:.1} MiB",
        if reset {
            ", reset before publishing"
        } else {
            ""
        },
        mib(baseline),
        mib(after_publish),
        mib(after_publish.saturating_sub(baseline)),
        mib(after_download),
        mib(after_download.saturating_sub(baseline)),
        mib(big_module::rss_kib()),
    );
    assert!(
        after_download.saturating_sub(baseline) < 100 * 1024,
        "the 100 MiB round trip grew the peak RSS by {:.1} MiB: is something buffering whole zips?",
        mib(after_download.saturating_sub(baseline))
    );
}
