//! The edge persists the stream id of the last change event it applied and, restarted, resumes
//! after it: an event emitted while the edge was down (here an integrity violation of a zip
//! the edge holds on disk) still reaches it, and the doubted zip is dropped and fetched again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use strata_central_registry::events::{Event, EventKind};
use strata_edge_proxy::metrics::KindLabels;
use strata_testkit::modules::FixtureModule;
use strata_testkit::redis_server;
use support::{EdgeOptions, TestEdge, TestRegistry, cache_of, endpoints, get};

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_edge_resumes_events_after_its_saved_cursor() {
    if redis_server::skipped() {
        eprintln!("skipping: STRATA_SKIP_REDIS=1");
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let stream = "edge-cursor-test";
    let registry = TestRegistry::start_with_redis(&redis.url(), stream).await;
    let module = "example.com/cursor/zipped";
    registry
        .publish("go", &FixtureModule::new(module, "v1.0.0", &[]))
        .await;
    let cache = tempfile::tempdir().unwrap();
    let options = EdgeOptions::redis_events(&redis.url(), stream);
    let cursor_file = cache.path().join("events.cursor");
    let zip = format!("{module}/@v/v1.0.0.zip");

    let edge = TestEdge::start(&[endpoints(&registry)], cache.path(), &options, None).await;
    let (status, headers, first) = get(&edge.url(&zip), None).await;
    assert_eq!(status, 200);
    assert_eq!(cache_of(&headers), "miss");
    let (_, headers, _) = get(&edge.url(&zip), None).await;
    assert_ne!(cache_of(&headers), "miss", "the zip is cached now");
    // An event the edge applies while running, so it has a position to save.
    registry
        .publish(
            "go",
            &FixtureModule::new("example.com/cursor/other", "v1.0.0", &[]),
        )
        .await;
    let published = KindLabels {
        kind: "version_published",
    };
    let metrics = edge.running.edge.metrics.clone();
    eventually("the edge to apply the publish event", || {
        metrics.events.get_or_create(&published).get() >= 1
    })
    .await;
    edge.stop().await;
    eventually("the cursor file", || cursor_file.exists()).await;
    let saved = std::fs::read_to_string(&cursor_file).unwrap();
    assert!(saved.trim().contains('-'), "a stream id: {saved:?}");

    // While the edge is down, the stored zip is found corrupt and reported.
    registry
        .running
        .events
        .emit(
            Event::new(EventKind::IntegrityViolation, "go", module)
                .with_version("v1.0.0")
                .with_detail("test: stored zip no longer matches its h1"),
        )
        .await;

    // Restarted on the same cache: the event reaches it although it came before the start,
    // the zip is dropped from disk and fetched again from the registry.
    let edge = TestEdge::start(&[endpoints(&registry)], cache.path(), &options, None).await;
    let violation = KindLabels {
        kind: "integrity_violation",
    };
    let metrics = edge.running.edge.metrics.clone();
    eventually("the edge to apply the missed event", || {
        metrics.events.get_or_create(&violation).get() >= 1
    })
    .await;
    let (status, headers, again) = get(&edge.url(&zip), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        cache_of(&headers),
        "miss",
        "the zip was dropped by the event and fetched again"
    );
    assert_eq!(again, first);
    edge.stop().await;
    eventually("the cursor to move past the missed event", || {
        std::fs::read_to_string(&cursor_file).unwrap_or_default() != saved
    })
    .await;
}
