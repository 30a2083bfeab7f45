//! Change events over a real Redis Stream: the registry publishes through its outbox, the edge
//! reads the stream from its last id. With Redis down the edge keeps serving by TTL, and once
//! Redis is back it catches up and drops the stale `list`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use strata_edge_proxy::metrics::KindLabels;
use strata_testkit::modules::FixtureModule;
use strata_testkit::redis_server;
use support::{EdgeOptions, TestEdge, TestRegistry, endpoints, get};

/// Polls `url` until its body is `want` (bounded), returning the last body.
async fn wait_for_body(url: &str, want: &[u8], attempts: usize) -> Vec<u8> {
    let mut last = Vec::new();
    for _ in 0..attempts {
        last = get(url, None).await.2;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_events_refresh_lists_and_catch_up_after_an_outage() {
    if redis_server::skipped() {
        eprintln!("skipping: STRATA_SKIP_REDIS=1");
        return;
    }
    let mut redis = redis_server::RedisServer::start().unwrap();
    let registry = TestRegistry::start_with_redis(&redis.url(), "edge-test").await;
    let module = "example.com/streamed";
    registry
        .publish("go", &FixtureModule::new(module, "v1.0.0", &[]))
        .await;
    let cache = tempfile::tempdir().unwrap();
    let options = EdgeOptions::redis_events(&redis.url(), "edge-test");
    let edge = TestEdge::start(&[endpoints(&registry)], cache.path(), &options, None).await;
    let list = edge.url(&format!("{module}/@v/list"));
    assert_eq!(get(&list, None).await.2, b"v1.0.0\n");

    registry
        .publish("go", &FixtureModule::new(module, "v1.1.0", &[]))
        .await;
    let seen = wait_for_body(&list, b"v1.0.0\nv1.1.0\n", 300).await;
    assert_eq!(String::from_utf8_lossy(&seen), "v1.0.0\nv1.1.0\n");

    // Each publish emits `version_published` then `list_changed`: let both land, then cache
    // the list once more, so nothing is in flight when Redis goes.
    let events = &edge.running.edge.metrics.events;
    let list_changed = KindLabels {
        kind: "list_changed",
    };
    for _ in 0..300 {
        if events.get_or_create(&list_changed).get() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(events.get_or_create(&list_changed).get() >= 1);
    assert_eq!(get(&list, None).await.2, b"v1.0.0\nv1.1.0\n");

    // Redis down: the publish succeeds (outbox), the edge serves its cached list (TTL 1 h).
    redis.stop();
    registry
        .publish("go", &FixtureModule::new(module, "v1.2.0", &[]))
        .await;
    let (status, _, body) = get(&list, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body, b"v1.0.0\nv1.1.0\n",
        "cached list while no event can arrive"
    );

    // Redis back: the outbox drains, the edge's subscriber reconnects and catches up.
    redis.restart().unwrap();
    let seen = wait_for_body(&list, b"v1.0.0\nv1.1.0\nv1.2.0\n", 600).await;
    assert_eq!(String::from_utf8_lossy(&seen), "v1.0.0\nv1.1.0\nv1.2.0\n");
    let metrics = edge.running.edge.metrics.encode();
    assert!(
        metrics.contains("strata_edge_events_total{kind=\"version_published\"}"),
        "{metrics}"
    );
    edge.stop().await;
}
