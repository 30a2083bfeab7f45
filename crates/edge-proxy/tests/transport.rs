//! The HTTP front end itself: HTTPS with h2 and HTTP/1.1 by ALPN, h2 in clear text (prior
//! knowledge), methods, and the operational endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use strata_testkit::modules::FixtureModule;
use support::{EdgeOptions, TestEdge, TestRegistry, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_with_h2_and_http1_and_cleartext_h2() {
    let registry = TestRegistry::start().await;
    let m = FixtureModule::new("example.com/wire", "v1.0.0", &[]);
    registry.publish("go", &m).await;
    let certs = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();

    let cache = tempfile::tempdir().unwrap();
    let options = EdgeOptions {
        server_extra: format!(
            "tls = {{ cert = \"{}\", key = \"{}\" }}",
            cert.display(),
            key.display()
        ),
        ..EdgeOptions::default()
    };
    let edge = TestEdge::for_registry(&registry, cache.path(), &options).await;
    let url = format!(
        "https://{}/example.com/wire/@v/v1.0.0.zip",
        edge.running.addr
    );
    let root = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap();
    for (h2, version) in [
        (true, reqwest::Version::HTTP_2),
        (false, reqwest::Version::HTTP_11),
    ] {
        let mut builder = reqwest::Client::builder().add_root_certificate(root.clone());
        if !h2 {
            builder = builder.http1_only();
        }
        let response = builder.build().unwrap().get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.version(), version);
        assert_eq!(response.bytes().await.unwrap().to_vec(), m.zip());
    }
    edge.stop().await;

    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2c
        .get(edge.url("example.com/wire/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.bytes().await.unwrap().to_vec(), b"v1.0.0\n");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn methods_and_operational_endpoints() {
    let registry = TestRegistry::start().await;
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let (status, _, body) = get(&edge.url("healthz"), None).await;
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
    let (status, _, body) = get(&edge.url("readyz"), None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("disk cache: ok"));
    let _ = get(&edge.url("example.com/none/@v/v1.0.0.info"), None).await;
    let (status, _, body) = get(&edge.url("metrics"), None).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    for name in [
        "strata_edge_requests_total",
        "strata_edge_cache_lookups_total",
        "strata_edge_upstream_duration_seconds",
        "strata_edge_fills_in_flight",
        "strata_edge_disk_bytes",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let response = reqwest::Client::new()
        .post(edge.url("example.com/x/@v/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let (status, _, body) = get(&edge.url("nothing-here"), None).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("not a module proxy path"));
    edge.stop().await;
}

#[test]
fn the_binary_exits_64_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\nlistne = 1\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata-edge"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listne"), "{stderr}");
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_strata-edge"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(64));
}
