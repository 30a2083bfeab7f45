//! Heat reports: reads served by the edge (from any tier) reach Redis in aggregate — the
//! module's score in `strata:heat:<repo>` and each version's last read in
//! `strata:last-read:<repo>` — where the sync worker picks them up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use strata_testkit::modules::FixtureModule;
use strata_testkit::redis_server;
use support::{EdgeOptions, TestEdge, TestRegistry, endpoints, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_reported_to_redis_in_aggregate() {
    if redis_server::skipped() {
        eprintln!("skipping: STRATA_SKIP_REDIS=1");
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let registry = TestRegistry::start().await;
    let module = "example.com/heat/hot";
    registry
        .publish("go", &FixtureModule::new(module, "v1.0.0", &[]))
        .await;
    let cache = tempfile::tempdir().unwrap();
    let options = EdgeOptions {
        extra: "[heat]\nflush_ms = 100\nprefix = \"heat-test\"\n".into(),
        events: format!(
            "{{ kind = \"redis\", url = \"{}\", stream = \"heat-events\" }}",
            redis.url()
        ),
        ..EdgeOptions::default()
    };
    let edge = TestEdge::start(&[endpoints(&registry)], cache.path(), &options, None).await;
    for path in [
        format!("{module}/@v/list"),
        format!("{module}/@v/v1.0.0.mod"),
        format!("{module}/@v/v1.0.0.zip"),
        format!("{module}/@v/v1.0.0.zip"),
        format!("{module}/@v/v1.0.0.zip"),
    ] {
        assert_eq!(get(&edge.url(&path), None).await.0, 200, "{path}");
    }
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut score: Option<f64> = None;
    for _ in 0..200 {
        score = redis::cmd("ZSCORE")
            .arg("heat-test:heat:go")
            .arg(module)
            .query_async(&mut conn)
            .await
            .unwrap();
        if score == Some(5.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(score, Some(5.0), "every read counted once");
    let last: Option<u64> = redis::cmd("HGET")
        .arg("heat-test:last-read:go")
        .arg(format!("{module}@v1.0.0"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let last = last.expect("the version's last read is recorded");
    assert!(last <= now && now - last < 600, "{last} vs {now}");
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg("heat-test:last-read:go")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        fields,
        vec![format!("{module}@v1.0.0")],
        "list reads name no version"
    );
}
