//! Serving through the edge: cold and warm reads of every endpoint, HTTP semantics (HEAD,
//! ETag, Range), coalesced fills, fills that outlive their client, the disk tier across
//! restarts (and its corruption check).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use strata_testkit::modules::FixtureModule;
use support::{EdgeOptions, TestEdge, TestRegistry, cache_of, get};

/// A module with `size` bytes of incompressible data, so its zip is about that large.
fn big_module(path: &str, version: &str, size: usize) -> FixtureModule {
    let mut data = Vec::with_capacity(size);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    FixtureModule::new(path, version, &[]).with_file("blob.bin", data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_then_warm_reads_are_byte_identical() {
    let registry = TestRegistry::start().await;
    let v1 = FixtureModule::new("example.com/Alpha/lib", "v1.0.0", &[]);
    let v2 = FixtureModule::new(
        "example.com/Alpha/lib",
        "v1.1.0",
        &[("example.com/beta", "v1.0.0")],
    );
    registry.publish("go", &v1).await;
    registry.publish("go", &v2).await;
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let reg = |p: &str| format!("http://{}/go/go/{p}", registry.running.http_addr);

    let base = "example.com/!alpha/lib/@";
    for (path, want) in [
        ("v/list", b"v1.0.0\nv1.1.0\n".to_vec()),
        ("v/v1.1.0.mod", v2.go_mod()),
        ("v/v1.1.0.zip", v2.zip()),
        ("v/v1.0.0.zip", v1.zip()),
        (
            "v/v1.0.0.info",
            get(&reg(&format!("{base}v/v1.0.0.info")), None).await.2,
        ),
        ("latest", get(&reg(&format!("{base}latest")), None).await.2),
    ] {
        let url = edge.url(&format!("{base}{path}"));
        let (status, headers, cold) = get(&url, None).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&cold));
        assert_eq!(cold, want, "{path} cold");
        assert_eq!(cache_of(&headers), "miss", "{path}");
        let (status, headers, warm) = get(&url, None).await;
        assert_eq!(status, 200);
        assert_eq!(warm, want, "{path} warm");
        assert!(
            cache_of(&headers).starts_with("hit-"),
            "{path}: {headers:?}"
        );
        if path.ends_with(".zip") || path.ends_with(".mod") {
            assert!(headers.contains_key("x-go-checksum"));
            assert_eq!(
                headers["cache-control"],
                "public, max-age=31536000, immutable"
            );
        }
    }
    // Not found is a definite 404 with a reason; a bad path is a 404 with the parser's reason.
    let (status, headers, body) = get(&edge.url("example.com/nope/@v/v1.0.0.info"), None).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["cache-control"], "public, max-age=60");
    let (status, headers, body) = get(&edge.url("example.com/m/@v/v1.2.mod"), None).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(String::from_utf8_lossy(&body).contains("not canonical"));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn head_etag_and_ranges_cold_and_warm() {
    let registry = TestRegistry::start().await;
    let m = big_module("example.com/ranged", "v1.0.0", 300_000);
    registry.publish("go", &m).await;
    let zip = m.zip();
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let url = edge.url("example.com/ranged/@v/v1.0.0.zip");
    let client = reqwest::Client::new();

    // Cold, ranged: served from the fill as it grows.
    for round in ["cold", "warm"] {
        let r = client
            .get(&url)
            .header("range", "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 206, "{round}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes 100-199/{}", zip.len())
        );
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            zip[100..200].to_vec(),
            "{round}"
        );
        let r = client
            .get(&url)
            .header("range", "bytes=-10")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 206);
        assert_eq!(
            r.bytes().await.unwrap().to_vec(),
            zip[zip.len() - 10..].to_vec()
        );
    }
    let r = client
        .get(&url)
        .header("range", format!("bytes={}-", zip.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 416);

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"], zip.len().to_string());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    assert!(head.bytes().await.unwrap().is_empty());

    let r = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = client
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), zip);
    assert_eq!(edge.fills(), 1);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_misses_share_one_fill() {
    let registry = TestRegistry::start().await;
    let m = big_module("example.com/popular", "v1.0.0", 4 << 20);
    registry.publish("go", &m).await;
    let zip = m.zip();
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let url = edge.url("example.com/popular/@v/v1.0.0.zip");
    let client = reqwest::Client::new();
    let downloads = (0..50).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().await.unwrap()
        })
    });
    for body in futures::future::join_all(downloads).await {
        assert!(body.unwrap() == zip, "a client got different bytes");
    }
    assert_eq!(edge.fills(), 1, "exactly one download from the registry");
    assert_eq!(edge.running.edge.metrics.fill_count("ok"), 1);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_hanging_up_does_not_cancel_the_fill() {
    let registry = TestRegistry::start().await;
    let m = big_module("example.com/hangup", "v1.0.0", 16 << 20);
    registry.publish("go", &m).await;
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let url = edge.url("example.com/hangup/@v/v1.0.0.zip");
    let mut response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(response);
    // The fill goes on without any client: wait for it (bounded), then read it from disk.
    let metrics = &edge.running.edge.metrics;
    for _ in 0..600 {
        if metrics.fill_count("ok") + metrics.fill_count("failed") > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(metrics.fill_count("ok"), 1, "the fill completed");
    let (status, headers, body) = get(&url, None).await;
    assert_eq!(status, 200);
    assert_eq!(cache_of(&headers), "hit-disk");
    assert!(body == m.zip());
    assert_eq!(edge.fills(), 1);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_tier_survives_restart_and_corruption_is_refetched() {
    let registry = TestRegistry::start().await;
    let m = big_module("example.com/durable", "v1.0.0", 200_000);
    registry.publish("go", &m).await;
    let cache = tempfile::tempdir().unwrap();
    let options = EdgeOptions::default();
    let zip_path = "example.com/durable/@v/v1.0.0.zip";
    let mod_path = "example.com/durable/@v/v1.0.0.mod";

    let edge = TestEdge::for_registry(&registry, cache.path(), &options).await;
    assert_eq!(get(&edge.url(zip_path), None).await.2, m.zip());
    assert_eq!(get(&edge.url(mod_path), None).await.2, m.go_mod());
    edge.stop().await;

    // Restart: served from disk, nothing fetched.
    let edge = TestEdge::for_registry(&registry, cache.path(), &options).await;
    let (status, headers, body) = get(&edge.url(zip_path), None).await;
    assert_eq!((status, cache_of(&headers).as_str()), (200, "hit-disk"));
    assert!(body == m.zip());
    assert_eq!(edge.fills(), 0);
    edge.stop().await;

    // Flip one byte of the stored zip and of the stored go.mod; restart: detected, refetched.
    for rel in [zip_path, mod_path] {
        let file = cache.path().join("objects/go").join(rel);
        let mut raw = std::fs::read(&file).unwrap();
        let at = raw.len() - 3;
        raw[at] ^= 0x01;
        std::fs::write(&file, raw).unwrap();
    }
    let edge = TestEdge::for_registry(&registry, cache.path(), &options).await;
    let (status, headers, body) = get(&edge.url(zip_path), None).await;
    assert_eq!((status, cache_of(&headers).as_str()), (200, "miss"));
    assert!(body == m.zip(), "refetched bytes are the original ones");
    assert_eq!(edge.fills(), 1);
    let (status, headers, body) = get(&edge.url(mod_path), None).await;
    assert_eq!((status, cache_of(&headers).as_str()), (200, "miss"));
    assert_eq!(body, m.go_mod());
    let (_, headers, _) = get(&edge.url(zip_path), None).await;
    assert_eq!(cache_of(&headers), "hit-disk");
    edge.stop().await;
}

/// Warm disk-tier zips from `server.sendfile_min_bytes` on go from their file to the socket
/// with sendfile on plain HTTP/1.1 — whole and ranged — byte for byte what the registry has;
/// smaller ones, memory-tier ones, and everything with `server.sendfile = false` are streamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_warm_zips_go_with_sendfile_unless_it_is_off() {
    let registry = TestRegistry::start().await;
    // One zip the memory tier keeps (≤ 1 MiB), one the disk tier holds above the sendfile
    // threshold, one below it.
    let small = big_module("example.com/zc/small", "v1.0.0", 300_000);
    let large = big_module("example.com/zc/large", "v1.0.0", 3 << 20);
    let medium = big_module("example.com/zc/medium", "v1.0.0", 1_500_000);
    for m in [&small, &large, &medium] {
        registry.publish("go", m).await;
    }
    for sendfile in [true, false] {
        let cache = tempfile::tempdir().unwrap();
        let options = EdgeOptions {
            memory_zip_max_bytes: 1 << 20,
            server_extra: format!("sendfile = {sendfile}\nsendfile_min_bytes = 2097152"),
            ..EdgeOptions::default()
        };
        let edge = TestEdge::for_registry(&registry, cache.path(), &options).await;
        let metrics = &edge.running.edge.metrics;
        let client = reqwest::Client::new();
        let mut sent = 0u64;
        for (m, tier) in [
            (&small, "hit-memory"),
            (&large, "hit-disk"),
            (&medium, "hit-disk"),
        ] {
            let zip = m.zip();
            let url = edge.url(&format!("{}/@v/v1.0.0.zip", m.path));
            let (status, headers, cold) = get(&url, None).await;
            assert_eq!((status, cache_of(&headers).as_str()), (200, "miss"));
            assert!(cold == zip);
            assert_eq!(
                sendfile_bytes_settled(metrics, sent).await,
                sent,
                "a fill streams, it is not sent from a file"
            );
            let by_sendfile = sendfile && m.path == large.path;
            // Several times on one connection (regions are per connection). The small zip's
            // first warm read comes from disk and puts it in memory.
            for round in 0..3 {
                let r = client.get(&url).send().await.unwrap();
                let source = if round == 0 { "hit-disk" } else { tier };
                assert_eq!(r.headers()["x-strata-cache"], source);
                assert!(r.bytes().await.unwrap() == zip, "{tier}: other bytes");
                if by_sendfile {
                    sent += zip.len() as u64;
                }
            }
            // A range above the threshold, and one below it (streamed).
            for (from, to) in [(70_000, 2_300_000), (70_000, 250_000)] {
                let to = to.min(zip.len() - 1);
                let r = client
                    .get(&url)
                    .header("range", format!("bytes={from}-{to}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 206);
                assert!(r.bytes().await.unwrap() == zip[from..=to], "{tier}: range");
                if by_sendfile && to + 1 - from >= 2 << 20 {
                    sent += (to + 1 - from) as u64;
                }
            }
        }
        assert!(
            !sendfile || sent > 3 * (3 << 20),
            "the large zip went by sendfile"
        );
        assert_eq!(
            sendfile_bytes_settled(metrics, sent).await,
            sent,
            "sendfile = {sendfile}"
        );
        let exposition = metrics.encode();
        assert!(
            exposition.contains(&format!("strata_edge_sendfile_bytes_total {sent}")),
            "{exposition}"
        );
        edge.stop().await;
    }
}

/// The edge's sendfile byte count once it reaches `want` or 2 s have passed: the count goes up
/// just after the bytes went out, so a client can have them a moment before it does.
async fn sendfile_bytes_settled(metrics: &strata_edge_proxy::metrics::Metrics, want: u64) -> u64 {
    for _ in 0..200 {
        if metrics.sendfile_bytes.get() == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    metrics.sendfile_bytes.get()
}
