//! Retention through the worker's API and queue (Redis for jobs and for the edges' last-read
//! reports): cached versions are placed in the past by giving the retention handler a "today"
//! ten days ahead, with a policy of five idle days. The dry run lists exactly the idle, unpinned
//! versions; the real run removes exactly those and clears their prefetch completion markers,
//! and leaves the pinned one, the one an edge read recently and the local one servable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_central_registry::keys::RepoName;
use strata_service::bootstrap::Failure;
use strata_service::config::ServiceConfig as _;
use strata_sync_worker::config::WorkerConfig;
use strata_sync_worker::jobs::retention::{self, LastReads, RetentionHandler};
use strata_sync_worker::registry::EmbeddedRegistry;
use strata_sync_worker::{Builder, Job, JobKind, JobQueue, NewJob};
use strata_testkit::{FixtureModule, dependency_graph};
use support::{ADMIN_TOKEN, CI_TOKEN, Stack, Worker, mv, redis, redis_jobs, until, worker_toml};
use tokio_util::sync::CancellationToken;

const POLICY: &str = "[[retention]]\nrepository = \"gocache\"\nmax_idle_days = 5\n";

/// A worker whose retention handler thinks it is `today`.
async fn worker_at(
    stack: &Stack,
    worker_toml: &str,
    today: u64,
    redis_url: Option<&str>,
) -> Worker {
    let config = WorkerConfig::from_toml(worker_toml, "worker.toml", &[]).unwrap();
    let shutdown = CancellationToken::new();
    let embedded = EmbeddedRegistry::from_config(&stack.registry_config(), shutdown.clone())
        .await
        .unwrap();
    let broker = config.open_queue().unwrap();
    let queue: Arc<dyn JobQueue> = broker.clone();
    let last_reads = redis_url.map(|url| LastReads::new(url, "strata").unwrap());
    let retention = RetentionHandler::new(
        embedded.registry.clone(),
        queue,
        config.retention.clone(),
        last_reads,
    )
    .unwrap()
    .with_today(move || today);
    let running = Builder::new(config)
        .registry(embedded.clone())
        .queue(broker)
        .handler(JobKind::Retention, Arc::new(retention))
        .start(shutdown.clone())
        .await
        .unwrap();
    Worker::new(running, embedded, shutdown)
}

/// Runs retention through the API and returns its report.
async fn run_retention(worker: &Worker, dry_run: bool) -> retention::RetentionReport {
    let (status, text) = worker
        .post(
            &format!("/api/retention/gocache?dry_run={dry_run}"),
            Some(ADMIN_TOKEN),
            "",
        )
        .await;
    assert_eq!(status, 202, "{text}");
    let accepted: serde_json::Value = serde_json::from_str(&text).unwrap();
    worker.completed(accepted["key"].as_str().unwrap()).await;
    let report = worker.get_json("/api/retention/gocache", CI_TOKEN).await;
    serde_json::from_value(report).unwrap()
}

fn listed(report: &retention::RetentionReport) -> Vec<String> {
    report
        .candidates
        .iter()
        .map(|c| format!("{}@{}", c.module, c.version))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_exactly_what_the_real_run_removes() {
    let redis = redis();
    let jobs = redis
        .as_ref()
        .map(|r| redis_jobs(&r.url(), "strata:jobs:retention"))
        .unwrap_or_default();
    let public = dependency_graph(5);
    let stack = Stack::start(&public).await;
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let later = today + 10;
    let worker = worker_at(
        &stack,
        &worker_toml(&jobs, POLICY),
        later,
        redis.as_ref().map(|r| r.url()).as_deref(),
    )
    .await;
    let at = |i: usize| format!("{}@v1.0.0", public[i].path);

    // Cached today (ten days before the handler's "today"): 0 and 1 plainly, 2 pinned by a
    // warm-up set, 3 read at an edge yesterday (by the handler's clock); 4 is never cached.
    let plain = format!("{}\n{}\n{}\n", at(0), at(1), at(3));
    assert_eq!(worker.warm("gocache", None, &plain).await["completed"], 3);
    let pinned = worker
        .warm("go", Some("release-7"), &format!("{}\n", at(2)))
        .await;
    assert_eq!(pinned["completed"], 1, "{pinned:#}");
    let private = FixtureModule::new("example.com/private/kept", "v1.0.0", &[]);
    stack.publish("private", &private).await;
    let mut expected = vec![at(0), at(1)];
    if let Some(redis) = &redis {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        // Edges report under the repository they serve: `go`, the virtual one over gocache.
        let _: () = redis::cmd("HSET")
            .arg("strata:last-read:go")
            .arg(at(3))
            .arg((later - 1) * 86_400 + 3600)
            .query_async(&mut connection)
            .await
            .unwrap();
    } else {
        // Without Redis there are no edge reports: version 3 is idle too.
        expected.push(at(3));
    }
    expected.sort();

    // Dry run: exactly the idle, unpinned versions; nothing removed.
    let dry = run_retention(&worker, true).await;
    assert!(dry.dry_run);
    assert_eq!(listed(&dry), expected);
    assert_eq!(
        (dry.cached_versions, dry.kept_pinned, dry.removed),
        (4, 1, 0)
    );
    assert_eq!(dry.today, later);
    assert!(
        dry.candidates
            .iter()
            .all(|c| c.last_used_day == today || c.last_used_day == today + 1)
    );
    for (i, m) in public.iter().enumerate().take(4) {
        let (module, version) = mv(&m.path, "v1.0.0");
        let index = worker
            .registry()
            .version_index("gocache", &module)
            .await
            .unwrap();
        assert!(index.entry(&version).is_some(), "{} still cached", at(i));
    }

    // The real run removes exactly that list.
    let real = run_retention(&worker, false).await;
    assert!(!real.dry_run);
    assert_eq!(listed(&real), expected);
    assert_eq!(real.removed, expected.len() as u64);
    assert_eq!(
        real.removed_bytes,
        real.candidates.iter().map(|c| c.bytes).sum::<u64>()
    );
    for (i, m) in public.iter().enumerate().take(4) {
        let (module, version) = mv(&m.path, "v1.0.0");
        let index = worker
            .registry()
            .version_index("gocache", &module)
            .await
            .unwrap();
        let removed = expected.contains(&at(i));
        assert_eq!(index.entry(&version).is_none(), removed, "{}", at(i));
        // Their completion markers are gone too, so a later warm-up fetches them again.
        let warmed_through = if i == 2 { "go" } else { "gocache" };
        let key = format!("prefetch/{warmed_through}/{}", at(i));
        assert_eq!(
            worker.running.queue.is_completed(&key).await.unwrap(),
            !removed,
            "{key}"
        );
    }
    // What was kept is served without asking the upstream; the local version too.
    stack.upstream.clear_requests();
    let kept: Vec<usize> = (0..4).filter(|i| !expected.contains(&at(*i))).collect();
    for i in &kept {
        let (module, _) = mv(&public[*i].path, "v1.0.0");
        let (status, zip) = stack
            .fetch("gocache", &format!("{}/@v/v1.0.0.zip", module.escaped()))
            .await;
        assert_eq!((status, zip == public[*i].zip()), (200, true), "{}", at(*i));
    }
    let (status, _) = stack
        .fetch("private", "example.com/private/kept/@v/v1.0.0.mod")
        .await;
    assert_eq!(status, 200);
    assert!(
        stack.upstream.requests().is_empty(),
        "{:?}",
        stack.upstream.requests()
    );
    // A removed version comes back on demand, fetched (and verified) again.
    let again = worker.warm("gocache", None, &format!("{}\n", at(0))).await;
    assert_eq!(again["completed"], 1);
    let (module, _) = mv(&public[0].path, "v1.0.0");
    assert_eq!(
        stack
            .upstream
            .request_count(&format!("/{}/@v/v1.0.0.zip", module.escaped())),
        1
    );

    // Unpinning needs admin permission; afterwards the formerly pinned version is idle too.
    let (status, text) = worker
        .send(
            reqwest::Method::DELETE,
            "/api/pins/release-7",
            Some(CI_TOKEN),
            "",
        )
        .await
        .into_status_text();
    assert_eq!(status, 403, "{text}");
    let (status, text) = worker
        .send(
            reqwest::Method::DELETE,
            "/api/pins/release-7",
            Some(ADMIN_TOKEN),
            "",
        )
        .await
        .into_status_text();
    assert_eq!(status, 200, "{text}");
    let after = run_retention(&worker, true).await;
    assert!(listed(&after).contains(&at(2)), "{:?}", listed(&after));
    assert_eq!(after.kept_pinned, 0);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_unconfigured_repositories_are_refused() {
    let stack = Stack::start(&dependency_graph(1)).await;
    let worker = stack.worker(&worker_toml("", POLICY)).await;
    // Through the API: local repositories and repositories without a policy.
    for (path, want) in [
        ("/api/retention/private?dry_run=false", "remote"),
        ("/api/retention/go?dry_run=true", "remote"),
        ("/api/retention/gocache?dry_run=maybe", "true or false"),
    ] {
        let (status, text) = worker.post(path, Some(ADMIN_TOKEN), "").await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(want), "{path}: {text}");
    }
    let (status, _) = worker
        .post("/api/retention/gocache", Some(CI_TOKEN), "")
        .await;
    assert_eq!(status, 403, "retention needs admin permission");
    let (status, _) = worker.get("/api/retention/gocache", Some(CI_TOKEN)).await;
    assert_eq!(status, 404, "no report yet");
    // A job naming a local repository is dead-lettered at once, naming why.
    worker
        .running
        .queue
        .enqueue(NewJob::new(Job::Retention {
            repository: RepoName::new("private").unwrap(),
            dry_run: false,
        }))
        .await
        .unwrap();
    until("the dead letter", || async {
        worker.running.queue.stats().await.unwrap().dead == 1
    })
    .await;
    let dead = worker.running.queue.dead_letters(1).await.unwrap();
    assert!(
        dead[0]
            .reason
            .contains("local repository; published versions are never removed"),
        "{}",
        dead[0].reason
    );
    // A policy for a local repository is a configuration error at start.
    let config = WorkerConfig::from_toml(
        &worker_toml(
            "",
            "[[retention]]\nrepository = \"private\"\nmax_idle_days = 5\n",
        ),
        "worker.toml",
        &[],
    )
    .unwrap();
    let error = Builder::new(config)
        .registry(worker.embedded.clone())
        .start(CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), 64, "{error}");
    assert!(
        error.to_string().contains("not a remote repository"),
        "{error}"
    );
    worker.stop().await;
}

trait StatusText {
    fn into_status_text(self) -> (u16, String);
}

impl StatusText for (u16, String, String) {
    fn into_status_text(self) -> (u16, String) {
        (self.0, self.2)
    }
}
