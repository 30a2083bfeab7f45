//! Publishing through the registry with change events on a real Redis: while Redis is down a
//! publish still answers 201, the backlog shows up in `/metrics` and `/readyz` says why it is not
//! ready; once Redis is back the backlog drains and a subscriber sees the `version_published`
//! event with the hashes the publish returned.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use strata_central_registry::events::EventKind;
use strata_testkit::redis_server;
use support::config::{CI_TOKEN, RegistryToml, Repo, Token};
use support::registry::TestRegistry;

fn module_zip(version: &str) -> Vec<u8> {
    let files: [(&str, &[u8]); 2] = [
        ("go.mod", b"module example.com/events\n"),
        ("e.go", b"package events\n"),
    ];
    support::zip::module_zip("example.com/events", version, &files).0
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_succeeds_while_redis_is_down_and_events_follow() {
    if redis_server::skipped() {
        eprintln!("skipped: STRATA_SKIP_REDIS=1");
        return;
    }
    let mut redis = redis_server::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let toml = RegistryToml::new()
        .events(format!(
            "{{ kind = \"redis\", url = \"{}\", retry_initial_ms = 20, retry_max_ms = 200 }}",
            redis.url()
        ))
        .repo(Repo::local("private"))
        .token(Token::new("ci", CI_TOKEN).grant("private", &["read", "deploy"]));
    let reg = TestRegistry::start(toml).await;
    let running = &reg.running;
    let base = reg.url("");
    let client = reqwest::Client::new();
    let mut subscription = reg.events().await;

    redis.stop();
    let r = client
        .put(format!("{base}/api/repos/private/upload"))
        .bearer_auth(CI_TOKEN)
        .body(module_zip("v1.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "publish must not depend on Redis");
    let go_sum = r.text().await.unwrap();

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let backlog_line = metrics
        .lines()
        .find(|l| l.starts_with("strata_registry_event_outbox_backlog "))
        .unwrap();
    let backlog: u64 = backlog_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(backlog >= 1, "backlog while Redis is down: {backlog_line}");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("events unavailable"));

    redis.restart().unwrap();
    wait_until("the outbox to drain", || {
        let events = running.events.clone();
        async move { events.backlog() == 0 }
    })
    .await;
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let mut published = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while published.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (_, event) = tokio::time::timeout(left, subscription.next())
            .await
            .expect("event in time")
            .expect("stream open");
        if event.kind == EventKind::VersionPublished {
            published = Some(event);
        }
    }
    let event = published.unwrap();
    assert_eq!(
        (event.repository.as_str(), event.module.as_str()),
        ("private", "example.com/events")
    );
    assert_eq!(event.version.as_deref(), Some("v1.0.0"));
    let zip_h1 = event.zip_h1.unwrap();
    assert!(
        go_sum.lines().next().unwrap().ends_with(&zip_h1),
        "{go_sum} vs {zip_h1}"
    );

    reg.stop().await;
}
