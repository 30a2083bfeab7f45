//! Remote repositories against the fixture upstream and the test checksum database: verified,
//! byte-identical caching; one upstream fetch for concurrent misses (HTTP and gRPC callers),
//! surviving the caller hanging up; tampered zips refused; stale metadata and error statuses
//! when the upstream is down; negative caching, `offline`, `fall_through`, `no_sum`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use strata_central_registry::events::EventKind;
use strata_testkit::{FixtureModule, Tamper};
use support::config::RemoteOptions;
use support::registry::{TestRegistry, next_event};

const MODULE: &str = "example.com/Public/lib";

fn modules() -> Vec<FixtureModule> {
    vec![
        FixtureModule::new(MODULE, "v1.0.0", &[]),
        FixtureModule::new(MODULE, "v1.1.0", &[]),
        FixtureModule::new("example.com/other", "v0.1.0", &[]),
    ]
}

const ESCAPED: &str = "example.com/!public/lib";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_verified_artifacts_byte_identical() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let mut events = h.events().await;
    let built = h.upstream().module(MODULE, "v1.1.0").unwrap().clone();

    let (status, headers, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.1.0.zip"))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, built.zip);
    assert_eq!(headers["x-go-checksum"], built.zip_hash.as_str());
    assert!(headers.contains_key("etag"));
    let cached = next_event(&mut events, |e| e.kind == EventKind::VersionCached).await;
    assert_eq!(cached.module, MODULE);
    assert_eq!(cached.zip_h1.as_deref(), Some(built.zip_hash.as_str()));

    for (path, want) in [
        (format!("{ESCAPED}/@v/v1.1.0.mod"), built.go_mod.clone()),
        (format!("{ESCAPED}/@v/v1.1.0.info"), built.info.clone()),
        (format!("{ESCAPED}/@v/list"), b"v1.0.0\nv1.1.0\n".to_vec()),
    ] {
        let (status, _, body) = h.fetch("gocache", &path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, want, "{path}");
    }
    let (status, _, latest) = h.fetch("gocache", &format!("{ESCAPED}/@latest")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&latest).contains("v1.1.0"));

    // Everything again: no new upstream request (immutable artifacts and fresh metadata).
    let before = h.upstream().requests().len();
    for suffix in [
        "@v/v1.1.0.zip",
        "@v/v1.1.0.mod",
        "@v/v1.1.0.info",
        "@v/list",
        "@latest",
    ] {
        let (status, _, _) = h.fetch("gocache", &format!("{ESCAPED}/{suffix}")).await;
        assert_eq!(status, 200, "{suffix}");
    }
    assert_eq!(
        h.upstream().requests().len(),
        before,
        "{:#?}",
        h.upstream().requests()
    );
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{ESCAPED}/@v/v1.1.0.zip")),
        1
    );

    // The index records the version as cached, with the database's hashes.
    let stored = h.stored_keys("gocache");
    assert!(stored.iter().any(|k| k.ends_with(".zip")), "{stored:#?}");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(r#"strata_registry_upstream_fetches_total{repository="gocache",artifact="zip",outcome="ok"} 1"#),
        "{metrics}"
    );

    // Ranges of a cached zip, and 304 on its etag.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/{ESCAPED}/@v/v1.1.0.zip",
            h.proxy_url("gocache")
        ))
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), built.zip[..10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_cold_requests_make_one_upstream_fetch() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    h.upstream().set_delay(Some(Duration::from_millis(300)));
    let built = h.upstream().module(MODULE, "v1.0.0").unwrap().clone();
    let url = format!("{}/{ESCAPED}/@v/v1.0.0.zip", h.proxy_url("gocache"));
    let grpc_addr = h.running.grpc_addr;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..100 {
        if i % 2 == 0 {
            let (http, url) = (http.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let r = http.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap().to_vec()
            }));
        } else {
            tasks.push(tokio::spawn(async move {
                let channel =
                    tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
                        .unwrap()
                        .connect()
                        .await
                        .unwrap();
                let client =
                    strata_central_registry::grpc::proto::registry_client::RegistryClient::new(
                        channel,
                    );
                let mut api = support::grpc::Api::new(client, None);
                let (_, bytes) = api.zip("gocache", MODULE, "v1.0.0", (0, 0)).await.unwrap();
                bytes
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), built.zip);
    }
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{ESCAPED}/@v/v1.0.0.zip")),
        1
    );
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{ESCAPED}/@v/v1.0.0.mod")),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetch_survives_the_first_caller_hanging_up() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let mut events = h.events().await;
    h.upstream().set_delay(Some(Duration::from_millis(300)));
    let url = format!("{}/{ESCAPED}/@v/v1.0.0.zip", h.proxy_url("gocache"));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    assert!(
        impatient.get(&url).send().await.is_err(),
        "the caller gives up"
    );
    // The download goes on and the zip gets stored without any other request.
    next_event(&mut events, |e| e.kind == EventKind::VersionCached).await;
    h.upstream().set_delay(None);
    let (status, _, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, h.upstream().module(MODULE, "v1.0.0").unwrap().zip);
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{ESCAPED}/@v/v1.0.0.zip")),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_zips_are_refused_and_never_stored() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let mut events = h.events().await;
    // Bomb: the first entry declares 600 MiB; refused from the declared sizes, before any
    // inflating (a real bomb would cost unbounded CPU to hash).
    for tamper in [Tamper::Content, Tamper::RawByte, Tamper::Bomb] {
        h.upstream().set_tampered(MODULE, Some(tamper));
        let (status, headers, body) = h
            .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
            .await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 502, "{tamper:?}: {text}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            text.contains("SECURITY ERROR") || text.contains("checksum"),
            "{text}"
        );
        assert!(text.contains("example.com/Public/lib@v1.0.0"), "{text}");
        if matches!(tamper, Tamper::Bomb) {
            assert!(
                text.contains("total uncompressed size of module contents too large"),
                "{text}"
            );
        }
        let event = next_event(&mut events, |e| e.kind == EventKind::IntegrityViolation).await;
        assert_eq!(event.module, MODULE);
        assert_eq!(event.version.as_deref(), Some("v1.0.0"));
    }
    let stored = h.stored_keys("gocache");
    assert!(!stored.iter().any(|k| k.ends_with(".zip")), "{stored:#?}");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(r#"strata_registry_integrity_violations_total{repository="gocache"} 3"#),
        "{metrics}"
    );
    // The genuine zip is accepted once the upstream serves it again.
    h.upstream().set_tampered(MODULE, None);
    let (status, _, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, h.upstream().module(MODULE, "v1.0.0").unwrap().zip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_serves_what_is_stored_and_stale_metadata() {
    let options = RemoteOptions {
        metadata_ttl_secs: 0,
        read_timeout_ms: 300,
        ..RemoteOptions::default()
    };
    let h = TestRegistry::remote(&modules(), options).await;
    for suffix in ["@v/v1.0.0.zip", "@v/v1.0.0.info", "@v/list", "@latest"] {
        let (status, headers, _) = h.fetch("gocache", &format!("{ESCAPED}/{suffix}")).await;
        assert_eq!(status, 200, "{suffix}");
        assert!(!headers.contains_key("x-strata-stale"), "{suffix}");
    }
    h.upstream().set_fail_status(Some(503));
    let (status, _, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, h.upstream().module(MODULE, "v1.0.0").unwrap().zip);
    for suffix in ["@v/list", "@latest"] {
        let (status, headers, body) = h.fetch("gocache", &format!("{ESCAPED}/{suffix}")).await;
        assert_eq!(status, 200, "{suffix}");
        assert_eq!(headers["x-strata-stale"], "true", "{suffix}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            String::from_utf8_lossy(&body).contains("v1.1.0"),
            "{suffix}"
        );
    }
    // Not cached: 502 with the upstream's reason, never cached.
    let (status, headers, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.1.0.zip"))
        .await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["cache-control"], "no-store");
    assert!(String::from_utf8_lossy(&body).contains("503"));
    // A hanging upstream: 504.
    h.upstream().set_fail_status(None);
    h.upstream().set_hang(true);
    let (status, _, body) = h.fetch("gocache", "example.com/other/@v/v0.1.0.mod").await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    h.upstream().set_hang(false);
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"result="stale""#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fall_through_answers_404_no_store() {
    let options = RemoteOptions {
        fall_through: true,
        ..RemoteOptions::default()
    };
    let h = TestRegistry::remote(&modules(), options).await;
    h.upstream().set_fail_status(Some(500));
    let (status, headers, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.mod"))
        .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["cache-control"], "no-store");
    assert!(String::from_utf8_lossy(&body).contains("falling through"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_are_negatively_cached_and_offline_serves_only_what_is_stored() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    for _ in 0..3 {
        let (status, _, _) = h.fetch("gocache", "example.com/missing/@v/list").await;
        assert_eq!(status, 404);
        let (status, _, _) = h
            .fetch("gocache", "example.com/missing/@v/v1.0.0.mod")
            .await;
        assert_eq!(status, 404);
    }
    assert_eq!(
        h.upstream().request_count("/example.com/missing/@v/list"),
        1
    );
    assert_eq!(
        h.upstream()
            .request_count("/example.com/missing/@v/v1.0.0.mod"),
        1
    );

    let (status, _, _) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
        .await;
    assert_eq!(status, 200);
    // The client has every byte once the zip is verified; storing it finishes in the download
    // task. Restart only once it is recorded, or the restart would race the store.
    let module = strata_core::path::ModulePath::new("example.com/Public/lib").unwrap();
    let version = strata_core::version::Version::new("v1.0.0").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stored = h
            .running
            .registry
            .version_index("gocache", &module)
            .await
            .ok()
            .and_then(|index| index.entry(&version).map(|e| e.zip.is_some()))
            .unwrap_or(false);
        if stored {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the zip was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut h = h;
    h.restart(RemoteOptions {
        offline: true,
        ..RemoteOptions::default()
    })
    .await;
    h.upstream().clear_requests();
    let (status, _, _) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.1.0.zip"))
        .await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("offline"));
    assert!(
        h.upstream().requests().is_empty(),
        "{:#?}",
        h.upstream().requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sum_modules_skip_the_database() {
    let options = RemoteOptions {
        no_sum: vec!["example.com/other".into()],
        ..RemoteOptions::default()
    };
    let h = TestRegistry::remote(&modules(), options).await;
    let (status, _, body) = h.fetch("gocache", "example.com/other/@v/v0.1.0.zip").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let lookups: Vec<String> = h
        .upstream()
        .requests()
        .into_iter()
        .filter(|p| p.contains("/lookup/"))
        .collect();
    assert!(lookups.is_empty(), "{lookups:#?}");
    // Others are still verified.
    let (status, _, _) = h
        .fetch("gocache", &format!("{ESCAPED}/@v/v1.0.0.zip"))
        .await;
    assert_eq!(status, 200);
    assert!(
        h.upstream()
            .requests()
            .iter()
            .any(|p| p.contains("/lookup/"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_repositories_refuse_publishes() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    // The token may deploy to `gocache`: the refusal comes from the repository's kind.
    let zip = FixtureModule::new("example.com/mine", "v1.0.0", &[]).zip();
    let (status, body) = h.publish("gocache", zip).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("only local repositories"), "{body}");
    assert!(h.stored_keys("gocache").is_empty());
}
