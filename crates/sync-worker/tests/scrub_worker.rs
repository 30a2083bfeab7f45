//! The scrubber through the worker (Redis queue, Redis events — the production topology):
//! a flipped byte in a cached remote zip is quarantined and fetched again (the bytes are right
//! afterwards), a flipped byte in a published local go.mod is quarantined and reported; both
//! show up as `integrity_violation` events on the registry's bus and in the worker's metrics.
//! Each quarantine also writes its `strata::audit` line (`event.action` `quarantine`, `user.name`
//! `system`). Also: a scrub resumes from its cursor, stops at a safe point on shutdown, and the schedule
//! enqueues each interval once however many workers look.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;

use strata_central_registry::events::{EventKind, StartFrom};
use strata_central_registry::keys::RepoName;
use strata_core::protocol::ArtifactKind;
use strata_sync_worker::jobs::scrub::{
    self, ScrubCursor, ScrubHandler, ScrubMetrics, cursor_key, schedule_tick,
};
use strata_sync_worker::registry::{EmbeddedRegistry, Write, write_doc};
use strata_sync_worker::runtime::queue::memory::MemoryQueue;
use strata_sync_worker::{Job, JobContext, JobError, JobHandler, JobId, JobQueue, NewJob};
use strata_testkit::{FixtureModule, dependency_graph};
use support::{Stack, flip_last_byte, metric, mv, redis, redis_jobs, until, worker_toml};
use tokio_util::sync::CancellationToken;

/// The `strata::audit` JSON lines this test binary's code wrote (a process-wide subscriber,
/// installed by the first caller; other targets are filtered out).
fn audit_lines() -> Vec<serde_json::Value> {
    use std::sync::{Mutex, OnceLock};
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(Arc::clone(&lines));
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("strata::audit=info"))
            .with_writer(move || sink.clone())
            .try_init();
        lines
    });
    String::from_utf8_lossy(&lines.lock().unwrap())
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn scrub_job(repo: Option<&str>) -> NewJob {
    NewJob::new(Job::Scrub {
        repository: repo.map(|r| RepoName::new(r).unwrap()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_are_repaired_in_the_cache_and_quarantined_when_published() {
    let redis = redis();
    let events = redis
        .as_ref()
        .map(|r| {
            format!(
                r#"{{ kind = "redis", url = "{}", stream = "strata:events:scrub" }}"#,
                r.url()
            )
        })
        .unwrap_or_default();
    let jobs = redis
        .as_ref()
        .map(|r| redis_jobs(&r.url(), "strata:jobs:scrub"))
        .unwrap_or_default();
    audit_lines(); // installs the capture before anything is audited
    let public = dependency_graph(3);
    let stack = Stack::builder(&public).events(&events).start().await;
    // Rate-limited (1 MiB/s is far above these fixtures, so it only paces).
    let worker = stack
        .worker(&worker_toml(
            &jobs,
            "[scrub]\nevery_hours = 0\nbytes_per_sec = 1048576\n",
        ))
        .await;
    let registry = worker.registry().clone();

    let body: String = public
        .iter()
        .map(|m| format!("{}@v1.0.0\n", m.path))
        .collect();
    let warmed = worker.warm("gocache", None, &body).await;
    assert_eq!(warmed["completed"], 3, "{warmed:#}");
    let private = FixtureModule::new("example.com/private/scrubbed", "v1.0.0", &[]);
    stack.publish("private", &private).await;

    // A clean scrub first: everything intact.
    let clean = worker.running.queue.enqueue(scrub_job(None)).await.unwrap();
    worker.completed(&clean.key).await;
    let gocache = scrub::cursor(&registry, "gocache").await.unwrap().unwrap();
    assert_eq!(gocache.outcomes.get("intact"), Some(&3), "{gocache:?}");
    assert!(gocache.finished_at.is_some());

    // Storage-level corruption: one cached zip, one published go.mod.
    let (m0, v) = mv(&public[0].path, "v1.0.0");
    let (pm, pv) = mv(&private.path, "v1.0.0");
    flip_last_byte(&registry, "gocache", &m0, &v, ArtifactKind::Zip)
        .await
        .unwrap();
    flip_last_byte(&registry, "private", &pm, &pv, ArtifactKind::Mod)
        .await
        .unwrap();
    // With Redis the worker's events reach the registry's bus; in-process, only its own.
    let bus = if redis.is_some() {
        stack.registry.events.clone()
    } else {
        worker.embedded.events.clone().unwrap()
    };
    let mut events = bus.subscribe(StartFrom::New).await;
    stack.upstream.clear_requests();

    let scrub = worker.running.queue.enqueue(scrub_job(None)).await.unwrap();
    worker.completed(&scrub.key).await;

    // Remote: quarantined and fetched again (once), and the bytes are right again.
    let gocache = scrub::cursor(&registry, "gocache").await.unwrap().unwrap();
    assert_eq!(gocache.outcomes.get("repaired"), Some(&1), "{gocache:?}");
    assert_eq!(gocache.outcomes.get("intact"), Some(&2), "{gocache:?}");
    assert!(gocache.problems[0].contains("zip: sha256"), "{gocache:?}");
    let zip_path = format!("/{}/@v/v1.0.0.zip", m0.escaped());
    assert_eq!(stack.upstream.request_count(&zip_path), 1);
    let (status, zip) = stack
        .fetch("gocache", &format!("{}/@v/v1.0.0.zip", m0.escaped()))
        .await;
    assert_eq!((status, zip == public[0].zip()), (200, true));
    // Local: quarantined, reported, no longer served.
    let local = scrub::cursor(&registry, "private").await.unwrap().unwrap();
    assert_eq!(local.outcomes.get("quarantined"), Some(&1), "{local:?}");
    let (status, body) = stack
        .fetch("private", "example.com/private/scrubbed/@v/v1.0.0.mod")
        .await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("quarantined"));

    // Both reached the registry's event bus (through Redis when available).
    let mut violations = Vec::new();
    tokio::time::timeout(support::HANG_GUARD, async {
        while violations.len() < 2 {
            let (_, event) = events.next().await.expect("event stream open");
            if event.kind == EventKind::IntegrityViolation {
                violations.push(event);
            }
        }
    })
    .await
    .expect("two integrity_violation events");
    violations.sort_by(|a, b| a.repository.cmp(&b.repository));
    assert_eq!(violations[0].repository, "gocache");
    assert_eq!(violations[0].module, m0.as_str());
    assert!(
        violations[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("fetched again"),
        "{:?}",
        violations[0]
    );
    assert_eq!(violations[1].repository, "private");
    assert!(
        violations[1]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("quarantined"),
        "{:?}",
        violations[1]
    );

    // Each quarantine is an audit line: the scrubber (`system`) moved the damaged bytes aside.
    let quarantines: Vec<(String, String, String)> = audit_lines()
        .iter()
        .map(|l| &l["fields"])
        .filter(|f| f["event.action"] == "quarantine")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            assert!(s("reason").contains("quarantine/"), "{f}");
            (s("repository"), s("module"), s("user.name"))
        })
        .collect();
    for (repo, module) in [("gocache", m0.as_str()), ("private", pm.as_str())] {
        assert!(
            quarantines.contains(&(repo.to_owned(), module.to_owned(), "system".to_owned())),
            "no quarantine audit line for {repo} {module}: {quarantines:?}"
        );
    }

    // And in the worker's metrics.
    let text = worker.metrics().await;
    for (series, value) in [
        (
            r#"strata_sync_scrub_versions_total{repository="gocache",outcome="repaired"}"#,
            1.0,
        ),
        (
            r#"strata_sync_scrub_versions_total{repository="gocache",outcome="intact"}"#,
            5.0,
        ),
        (
            r#"strata_sync_scrub_versions_total{repository="private",outcome="quarantined"}"#,
            1.0,
        ),
        (
            r#"strata_sync_scrub_progress_ratio{repository="gocache"}"#,
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, series), Some(value), "{series} in\n{text}");
    }
    let bytes = metric(
        &text,
        r#"strata_sync_scrub_bytes_total{repository="gocache"}"#,
    )
    .unwrap();
    let one_pass: usize = public
        .iter()
        .map(|m| m.zip().len() + m.go_mod().len() + m.info().len())
        .sum();
    assert!(bytes >= 2.0 * one_pass as f64, "{bytes} < 2 × {one_pass}");
    worker.stop().await;
}

fn context(shutdown: CancellationToken) -> JobContext {
    JobContext {
        id: JobId::generate(),
        key: "scrub/test".into(),
        delivery: 1,
        max_deliveries: 3,
        enqueued_at: SystemTime::now(),
        last_error: None,
        shutdown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrubs_resume_from_their_cursor_and_stop_for_shutdown() {
    let public = dependency_graph(3);
    let stack = Stack::start(&public).await;
    let embedded = EmbeddedRegistry::from_config(&stack.registry_config(), stack.shutdown.clone())
        .await
        .unwrap();
    let registry = embedded.registry.clone();
    for m in &public {
        let (module, version) = mv(&m.path, &m.version);
        registry
            .warm("gocache", &module, &version, false)
            .await
            .unwrap();
    }
    let mut modules: Vec<String> = public.iter().map(|m| m.path.clone()).collect();
    modules.sort();

    // A pass that was killed after the second module (in path order).
    let killed = ScrubCursor {
        repository: "gocache".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        updated_at: "2025-01-01T00:00:10Z".into(),
        last_module: Some(modules[1].clone()),
        modules_done: 2,
        modules_total: 3,
        versions: 2,
        ..ScrubCursor::default()
    };
    write_doc(
        registry.store(),
        &cursor_key("gocache").unwrap(),
        &killed,
        Write::Overwrite,
    )
    .await
    .unwrap();
    // Damage before and after the cursor: only the one after it is found by the resumed pass.
    for path in [&modules[0], &modules[2]] {
        let (module, version) = mv(path, "v1.0.0");
        flip_last_byte(&registry, "gocache", &module, &version, ArtifactKind::Mod)
            .await
            .unwrap();
    }
    let metrics = Arc::new(ScrubMetrics::default());
    let handler = ScrubHandler::new(registry.clone(), 0, metrics.clone());
    let job = Job::Scrub {
        repository: Some(RepoName::new("gocache").unwrap()),
    };
    handler
        .run(&job, &context(CancellationToken::new()))
        .await
        .unwrap();
    let resumed = scrub::cursor(&registry, "gocache").await.unwrap().unwrap();
    assert_eq!(resumed.started_at, killed.started_at, "the same pass");
    assert_eq!(resumed.versions, 3, "two before the kill and one after");
    assert_eq!(resumed.outcomes.get("repaired"), Some(&1));
    assert!(resumed.problems[0].starts_with(&modules[2]), "{resumed:?}");
    assert!(resumed.finished_at.is_some());
    // The next scrub is a new pass from the start: it finds the first module's damage.
    handler
        .run(&job, &context(CancellationToken::new()))
        .await
        .unwrap();
    let fresh = scrub::cursor(&registry, "gocache").await.unwrap().unwrap();
    assert_ne!(fresh.started_at, killed.started_at);
    assert_eq!(fresh.versions, 3);
    assert_eq!(fresh.outcomes.get("repaired"), Some(&1));
    assert!(fresh.problems[0].starts_with(&modules[0]), "{fresh:?}");

    // Shutdown while the rate limit makes the scrub wait (1 byte/s): it stops between
    // versions with a retryable error and saves where it was; the next run finishes the pass.
    let slow = Arc::new(ScrubHandler::new(registry.clone(), 1, metrics.clone()));
    let intact = || {
        metrics
            .versions
            .get_or_create(&scrub::ScrubLabels {
                repository: "gocache".into(),
                outcome: "intact",
            })
            .get()
    };
    let before = intact();
    let shutdown = CancellationToken::new();
    let task = {
        let (slow, job, shutdown) = (slow.clone(), job.clone(), shutdown.clone());
        tokio::spawn(async move { slow.run(&job, &context(shutdown)).await })
    };
    until("the first version of the slow pass", || async {
        intact() > before
    })
    .await;
    shutdown.cancel();
    let stopped = tokio::time::timeout(support::HANG_GUARD, task)
        .await
        .unwrap()
        .unwrap();
    let Err(JobError::Retryable { message, .. }) = stopped else {
        panic!("{stopped:?}");
    };
    assert!(message.contains("stopped for shutdown"), "{message}");
    let saved = scrub::cursor(&registry, "gocache").await.unwrap().unwrap();
    assert!(saved.finished_at.is_none(), "{saved:?}");
    assert!(saved.versions >= 1 && saved.versions < 3, "{saved:?}");
    handler
        .run(&job, &context(CancellationToken::new()))
        .await
        .unwrap();
    let finished = scrub::cursor(&registry, "gocache").await.unwrap().unwrap();
    assert_eq!(
        finished.started_at, saved.started_at,
        "the interrupted pass finished"
    );
    assert!(finished.finished_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_enqueues_each_interval_once_across_workers() {
    let stack = Stack::start(&dependency_graph(1)).await;
    let open = || async {
        EmbeddedRegistry::from_config(&stack.registry_config(), stack.shutdown.clone())
            .await
            .unwrap()
    };
    let (a, b) = (open().await, open().await);
    let queue = MemoryQueue::default();
    let hour = 3600;
    let now = 1_750_000_000;
    let first = schedule_tick(&a.registry, &queue, hour, now).await.unwrap();
    let mut keys: Vec<String> = first.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    let index = now / hour;
    assert_eq!(
        keys,
        [
            format!("scrub/corp/{index}"),
            format!("scrub/gocache/{index}"),
            format!("scrub/private/{index}"),
        ],
        "every local and remote repository, not the virtual one"
    );
    // Another worker (another registry over the same storage), later in the same interval.
    assert!(
        schedule_tick(&b.registry, &queue, hour, now + 60)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        schedule_tick(&a.registry, &queue, hour, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue.stats().await.unwrap().waiting, 3);
    // The next interval: once more.
    let next = schedule_tick(&b.registry, &queue, hour, now + hour)
        .await
        .unwrap();
    assert_eq!(next.len(), 3);
    assert!(
        next.iter()
            .all(|e| e.key.ends_with(&format!("/{}", index + 1)))
    );
}
