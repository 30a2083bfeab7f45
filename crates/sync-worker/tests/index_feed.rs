//! The index follower end to end: a fixture index feed and a fixture upstream (with its test
//! checksum database), a central registry, and sync workers started as the binary starts them.
//! New versions listed by the feed end up cached in the remote repository (verified), the lag
//! gauge is exposed on `/metrics`, and a restarted worker resumes from the saved cursor without
//! fetching anything twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use strata_central_registry::registry::Registry;
use strata_sync_worker::producers::index_feed::cursor::{Cursor, CursorStore};
use strata_testkit::FixtureModule;
use strata_testkit::index_feed::FeedServer;
use support::{Stack, artifact_paths, cached, until, worker_toml};

const T1: &str = "2025-06-01T00:00:01.000001Z";
const T2: &str = "2025-06-01T00:00:02.000002Z";
const T3: &str = "2025-06-01T00:00:03.000003Z";
const T4: &str = "2025-06-01T00:00:04.000004Z";

fn feed_toml(url: &str) -> String {
    // Pages of 2 so that the follower pages through the feed; one poll per hour, so that each
    // worker polls once at start and then only follows full pages.
    format!(
        r#"
[[feeds]]
name = "fixture"
url = "{url}"
repository = "gocache"
include = ["example.com/feed"]
limit = 2
poll_interval_ms = 3600000
"#
    )
}

async fn saved_cursor(registry: &Registry) -> Cursor {
    CursorStore::new(registry.store().clone(), "fixture")
        .unwrap()
        .load()
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_versions_are_cached_and_a_restart_resumes_from_the_cursor() {
    let modules = [
        FixtureModule::new("example.com/feed/a", "v1.0.0", &[]),
        FixtureModule::new("example.com/feed/a", "v1.1.0", &[]),
        FixtureModule::new("example.com/feed/b", "v0.1.0", &[]),
        FixtureModule::new("example.com/feed/b", "v0.2.0", &[]),
        FixtureModule::new("example.com/other/c", "v1.0.0", &[]),
    ];
    // The versions are read back anonymously from the registry.
    let stack = Stack::builder(&modules).anonymous_gocache().start().await;
    let feed = FeedServer::start().await;
    feed.push("example.com/feed/a", "v1.0.0", T1);
    feed.push("example.com/other/c", "v1.0.0", T2);
    // Two entries share a timestamp: the cursor must remember both.
    feed.push("example.com/feed/b", "v0.1.0", T3);
    feed.push("example.com/feed/a", "v1.1.0", T3);

    // First worker: follows the feed from its beginning.
    let worker = stack
        .worker(&worker_toml("", &feed_toml(&feed.url())))
        .await;
    let registry = worker.registry().clone();
    let first_run = [
        ("example.com/feed/a", "v1.0.0"),
        ("example.com/feed/b", "v0.1.0"),
        ("example.com/feed/a", "v1.1.0"),
    ];
    until("the feed's versions to be cached", || async {
        for (m, v) in first_run {
            if !cached(&registry, "gocache", m, v).await {
                return false;
            }
        }
        true
    })
    .await;
    worker.idle().await;
    assert!(
        !cached(&registry, "gocache", "example.com/other/c", "v1.0.0").await,
        "excluded by the include pattern"
    );
    for path in artifact_paths("example.com/other/c", "v1.0.0") {
        assert_eq!(stack.upstream.request_count(&path), 0, "{path}");
    }
    // The versions are served by the registry from its cache.
    let served = reqwest::get(format!(
        "http://{}/go/gocache/example.com/feed/a/@v/v1.1.0.mod",
        stack.registry.http_addr
    ))
    .await
    .unwrap();
    assert_eq!(served.status().as_u16(), 200);

    let asked = feed.asked();
    assert_eq!(asked[0].since, None, "a new feed starts at its beginning");
    assert_eq!(asked[0].limit, 2);
    assert!(
        asked.len() >= 3,
        "full pages are followed at once: {asked:?}"
    );
    assert!(asked.iter().skip(1).all(|a| a.since.is_some()), "{asked:?}");
    let cursor = saved_cursor(&registry).await;
    assert_eq!(cursor.since.as_deref(), Some(T3));
    assert_eq!(cursor.entries, 4, "a, c (filtered), b, a: {cursor:?}");
    assert_eq!(
        cursor.seen.iter().map(String::as_str).collect::<Vec<_>>(),
        ["example.com/feed/a@v1.1.0", "example.com/feed/b@v0.1.0"]
    );

    let (status, metrics) = worker.get("/metrics", None).await;
    assert_eq!(status, 200);
    let lag_line = metrics
        .lines()
        .find(|l| l.starts_with(r#"strata_sync_index_lag_seconds{feed="fixture"}"#))
        .unwrap_or_else(|| panic!("no lag gauge in\n{metrics}"));
    let lag: f64 = lag_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(lag > 0.0, "{lag_line}");
    for line in [
        r#"strata_sync_index_entries_total{feed="fixture",result="enqueued"} 3"#,
        r#"strata_sync_index_entries_total{feed="fixture",result="filtered"} 1"#,
        r#"strata_sync_jobs_total{kind="prefetch",outcome="completed"} 3"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    worker.stop().await;

    // The feed moves on while no worker runs; a new worker resumes where the first stopped.
    feed.push("example.com/feed/b", "v0.2.0", T4);
    feed.clear_log();
    let before_restart = stack.upstream.requests();
    stack.upstream.clear_requests();
    let worker = stack
        .worker(&worker_toml("", &feed_toml(&feed.url())))
        .await;
    let registry = worker.registry().clone();
    until("the new version to be cached", || async {
        cached(&registry, "gocache", "example.com/feed/b", "v0.2.0").await
    })
    .await;
    worker.idle().await;
    let asked = feed.asked();
    assert_eq!(
        asked[0].since.as_deref(),
        Some(T3),
        "the restarted worker asked from the saved cursor: {asked:?}"
    );
    let after_restart = stack.upstream.requests();
    for (m, v) in first_run {
        for path in artifact_paths(m, v) {
            assert_eq!(
                before_restart.iter().filter(|p| **p == path).count(),
                1,
                "{path} fetched once before the restart"
            );
            assert!(
                !after_restart.contains(&path),
                "{path} fetched again after the restart: {after_restart:?}"
            );
        }
    }
    let [_, _, zip] = artifact_paths("example.com/feed/b", "v0.2.0");
    assert_eq!(stack.upstream.request_count(&zip), 1);
    let (_, metrics) = worker.get("/metrics", None).await;
    for line in [
        r#"strata_sync_index_entries_total{feed="fixture",result="enqueued"} 1"#,
        r#"strata_sync_index_entries_total{feed="fixture",result="duplicate"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    let cursor = saved_cursor(&registry).await;
    assert_eq!(cursor.since.as_deref(), Some(T4));
    assert_eq!(cursor.entries, 5);
    worker.stop().await;
}
