//! Freshness and failure: change events refresh `list` at once despite a long TTL; with the
//! registry gone, cached artifacts (and stale metadata) are still served and uncached ones fail
//! fast; with one of two registries failing, requests go to the other; private artifacts are
//! never served from cache to clients the registry refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use strata_testkit::modules::FixtureModule;
use support::{
    CI_TOKEN, EdgeOptions, OUTSIDER_TOKEN, TestEdge, TestRegistry, cache_of, endpoints, get,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_event_refreshes_list_despite_an_hour_ttl() {
    let registry = TestRegistry::start().await;
    registry
        .publish(
            "go",
            &FixtureModule::new("example.com/evolving", "v1.0.0", &[]),
        )
        .await;
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let list = edge.url("example.com/evolving/@v/list");
    let latest = edge.url("example.com/evolving/@latest");
    assert_eq!(get(&list, None).await.2, b"v1.0.0\n");
    assert!(String::from_utf8_lossy(&get(&latest, None).await.2).contains("v1.0.0"));
    let (_, headers, _) = get(&list, None).await;
    assert_eq!(cache_of(&headers), "hit-memory", "fresh within the TTL");

    registry
        .publish(
            "go",
            &FixtureModule::new("example.com/evolving", "v1.1.0", &[]),
        )
        .await;
    // The event is delivered asynchronously: poll, bounded.
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = get(&list, None).await.2;
        if seen == b"v1.0.0\nv1.1.0\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(String::from_utf8_lossy(&seen), "v1.0.0\nv1.1.0\n");
    assert!(String::from_utf8_lossy(&get(&latest, None).await.2).contains("v1.1.0"));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_registry_gone_cached_content_is_served_and_the_rest_fails_fast() {
    let registry = TestRegistry::start().await;
    let m = FixtureModule::new("example.com/survivor", "v1.0.0", &[]);
    registry.publish("go", &m).await;
    registry
        .publish(
            "go",
            &FixtureModule::new("example.com/survivor", "v1.1.0", &[]),
        )
        .await;
    let cache = tempfile::tempdir().unwrap();
    let options = EdgeOptions {
        metadata_ttl_ms: 1,
        ..EdgeOptions::default()
    };
    let edge = TestEdge::for_registry(&registry, cache.path(), &options).await;
    let zip = edge.url("example.com/survivor/@v/v1.0.0.zip");
    let list = edge.url("example.com/survivor/@v/list");
    assert_eq!(get(&zip, None).await.2, m.zip());
    assert_eq!(get(&list, None).await.0, 200);

    registry.stop().await;

    let (status, headers, body) = get(&zip, None).await;
    assert_eq!(status, 200);
    assert!(cache_of(&headers).starts_with("hit-"));
    assert_eq!(body, m.zip());
    // The list is past its TTL: served stale, and marked so.
    let (status, headers, body) = get(&list, None).await;
    assert_eq!(status, 200);
    assert_eq!(cache_of(&headers), "stale");
    assert!(headers.contains_key("warning"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body, b"v1.0.0\nv1.1.0\n");
    // Never fetched: fails at once, saying why.
    let started = Instant::now();
    let (status, headers, body) = get(&edge.url("example.com/survivor/@v/v1.1.0.zip"), None).await;
    let text = String::from_utf8_lossy(&body);
    assert!(status == 502 || status == 504, "{status}: {text}");
    assert!(text.contains("no registry"), "{text}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_two_registries_failing_is_routed_around() {
    let good = TestRegistry::start().await;
    let m = FixtureModule::new("example.com/failover", "v1.0.0", &[]);
    good.publish("go", &m).await;
    // A registry that is gone: its ports refuse connections.
    let dead = TestRegistry::start().await;
    let dead_endpoints = endpoints(&dead);
    dead.stop().await;
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(
        &[dead_endpoints, endpoints(&good)],
        cache.path(),
        &EdgeOptions::default(),
        Some(good.running.events.clone()),
    )
    .await;
    for path in [
        "@v/list",
        "@latest",
        "@v/v1.0.0.info",
        "@v/v1.0.0.mod",
        "@v/v1.0.0.zip",
    ] {
        let (status, _, body) = get(&edge.url(&format!("example.com/failover/{path}")), None).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(
        get(&edge.url("example.com/failover/@v/v1.0.0.zip"), None)
            .await
            .2,
        m.zip()
    );
    let pool = &edge.running.edge.pool;
    let [r0, r1] = pool.upstreams() else { panic!() };
    assert!(!r0.health.is_closed(), "the dead registry's circuit opened");
    assert!(r1.health.is_closed());
    let metrics = edge.running.edge.metrics.encode();
    assert!(
        metrics.contains("strata_edge_registry_healthy{registry=\"r0\"} 0"),
        "{metrics}"
    );
    let (_, _, ready) = get(&edge.url("readyz"), None).await;
    assert!(String::from_utf8_lossy(&ready).contains("r0: circuit open"));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_artifacts_are_served_only_to_admitted_clients() {
    let registry = TestRegistry::start().await;
    let m = FixtureModule::new("example.com/secret", "v1.0.0", &[]);
    registry.publish("private", &m).await;
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    for path in ["@v/v1.0.0.zip", "@v/v1.0.0.mod", "@v/list"] {
        let url = edge.url(&format!("private/example.com/secret/{path}"));
        let (status, headers, _) = get(&url, None).await;
        assert_eq!(status, 401, "{path}: anonymous before");
        assert!(headers.contains_key("www-authenticate"));
        let (status, _, body) = get(&url, Some(CI_TOKEN)).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let (status, headers, _) = get(&url, Some(CI_TOKEN)).await;
        assert_eq!(status, 200);
        assert!(
            cache_of(&headers).starts_with("hit-"),
            "{path}: cached for admitted clients"
        );
        // Cached now, and still refused to the anonymous and to a token without access.
        assert_eq!(get(&url, None).await.0, 401, "{path}: anonymous after");
        assert_eq!(
            get(&url, Some(OUTSIDER_TOKEN)).await.0,
            403,
            "{path}: outsider"
        );
        assert_eq!(
            get(&url, Some("Bearer-nonsense")).await.0,
            401,
            "{path}: bad token"
        );
    }
    assert_eq!(
        get(
            &edge.url("private/example.com/secret/@v/v1.0.0.zip"),
            Some(CI_TOKEN)
        )
        .await
        .2,
        m.zip()
    );
    // The public repository is readable anonymously (the registry says so).
    registry
        .publish("go", &FixtureModule::new("example.com/open", "v1.0.0", &[]))
        .await;
    assert_eq!(
        get(&edge.url("example.com/open/@v/list"), None).await.0,
        200
    );
    assert_eq!(
        get(&edge.url("example.com/open/@v/list"), Some(OUTSIDER_TOKEN))
            .await
            .0,
        200
    );
    edge.stop().await;
}
