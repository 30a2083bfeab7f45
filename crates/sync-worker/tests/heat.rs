//! Heat-driven refresh against a real Redis: the hottest modules of a repository's heat set
//! (as edges write it) get `refresh_metadata` jobs, hottest first, keyed by the interval; the
//! set decays once per interval; and workers sharing the Redis produce each interval once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::keys::RepoName;
use strata_central_registry::metrics::Metrics as RegistryMetrics;
use strata_central_registry::registry::{NoListener, Registry};
use strata_central_registry::storage::open_store;
use strata_service::config::ServiceConfig as _;
use strata_sync_worker::config::WorkerConfig;
use strata_sync_worker::producers::Producers;
use strata_sync_worker::producers::heat::{HeatConfig, HeatRefresher, heat_key};
use strata_sync_worker::producers::ticks::{Clock, TickClaims};
use strata_sync_worker::runtime::queue::JobQueue;
use strata_sync_worker::{Envelope, Job};
use strata_testkit::redis_server::{self, RedisServer};
use strata_testkit::{FixtureUpstream, TestSumDb};
use support::{Stack, until};
use tokio_util::sync::CancellationToken;

fn redis() -> Option<RedisServer> {
    if redis_server::skipped() {
        eprintln!("STRATA_SKIP_REDIS=1: skipped");
        return None;
    }
    Some(RedisServer::start().unwrap())
}

async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn worker_config(url: &str, extra: &str) -> WorkerConfig {
    let text = format!(
        "jobs = {{ kind = \"redis\", url = \"{url}\", stream = \"heat-test:jobs\", block_ms = 200 }}\n\
         [server]\nhttp = \"127.0.0.1:0\"\n{extra}"
    );
    WorkerConfig::from_toml(&text, "worker.toml", &[]).unwrap()
}

/// Every job in the stream, oldest first: (key, job).
async fn stream_jobs(connection: &mut MultiplexedConnection) -> Vec<(String, Job)> {
    let range: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("heat-test:jobs")
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .unwrap();
    range
        .ids
        .iter()
        .map(|entry| {
            let envelope = Envelope::decode(&entry.get::<String>("job").unwrap()).unwrap();
            (envelope.key, envelope.job)
        })
        .collect()
}

async fn scores(connection: &mut MultiplexedConnection, key: &str) -> Vec<(String, f64)> {
    redis::cmd("ZREVRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(connection)
        .await
        .unwrap()
}

async fn seed(connection: &mut MultiplexedConnection, key: &str, members: &[(&str, f64)]) {
    for (member, score) in members {
        let () = redis::cmd("ZADD")
            .arg(key)
            .arg(*score)
            .arg(*member)
            .query_async(connection)
            .await
            .unwrap();
    }
}

fn refreshes(jobs: &[(String, Job)]) -> Vec<(String, String)> {
    jobs.iter()
        .map(|(key, job)| match job {
            Job::RefreshMetadata { repository, module } => {
                assert_eq!(repository.as_str(), "gocache");
                (key.clone(), module.to_string())
            }
            other => panic!("unexpected job {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_refreshes_the_hottest_modules_in_order_and_decays_the_set() {
    let Some(server) = redis() else { return };
    let url = server.url();
    let mut connection = connect(&url).await;
    let key = heat_key("strata", "gocache");
    seed(
        &mut connection,
        &key,
        &[
            ("example.com/m1", 100.0),
            ("example.com/m2", 50.0),
            ("not a module path", 20.0),
            ("example.com/m3", 10.0),
            ("example.com/m4", 3.0),
            ("example.com/m5", 0.8),
        ],
    )
    .await;
    let config = worker_config(&url, "");
    let queue: Arc<dyn JobQueue> = config.open_queue().unwrap();
    let heat = HeatConfig {
        top: 4,
        ..HeatConfig::default()
    };
    let refresher = HeatRefresher::new(
        &heat,
        &url,
        vec![RepoName::new("gocache").unwrap()],
        queue.clone(),
    )
    .unwrap();

    let report = refresher.tick(7).await.unwrap();
    assert_eq!(report.len(), 1);
    let refreshed: Vec<(String, f64)> = report[0]
        .refreshed
        .iter()
        .map(|(m, s)| (m.to_string(), *s))
        .collect();
    assert_eq!(
        refreshed,
        [
            ("example.com/m1".to_owned(), 100.0),
            ("example.com/m2".to_owned(), 50.0),
            ("example.com/m3".to_owned(), 10.0)
        ],
        "the top 4, hottest first, without the member that is no module path"
    );
    assert_eq!(report[0].invalid, 1);
    assert_eq!(
        refreshes(&stream_jobs(&mut connection).await),
        [
            (
                "refresh/gocache/example.com/m1/7".to_owned(),
                "example.com/m1".to_owned()
            ),
            (
                "refresh/gocache/example.com/m2/7".to_owned(),
                "example.com/m2".to_owned()
            ),
            (
                "refresh/gocache/example.com/m3/7".to_owned(),
                "example.com/m3".to_owned()
            ),
        ]
    );
    let decayed = [
        ("example.com/m1".to_owned(), 50.0),
        ("example.com/m2".to_owned(), 25.0),
        ("not a module path".to_owned(), 10.0),
        ("example.com/m3".to_owned(), 5.0),
        ("example.com/m4".to_owned(), 1.5),
    ];
    assert_eq!(
        scores(&mut connection, &key).await,
        decayed,
        "halved; m5 fell below the floor (0.4 < 0.5) and was dropped"
    );

    // The same interval again (a retried tick): nothing enqueued, nothing decayed twice.
    assert!(refresher.tick(7).await.unwrap().is_empty());
    assert_eq!(stream_jobs(&mut connection).await.len(), 3);
    assert_eq!(scores(&mut connection, &key).await, decayed);

    // The next interval: keyed by it, decayed again.
    let report = refresher.tick(8).await.unwrap();
    assert_eq!(report[0].refreshed.len(), 3);
    let jobs = refreshes(&stream_jobs(&mut connection).await);
    assert_eq!(jobs.len(), 6);
    assert_eq!(jobs[3].0, "refresh/gocache/example.com/m1/8");
    assert_eq!(
        scores(&mut connection, &key).await[0],
        ("example.com/m1".to_owned(), 25.0)
    );
}

/// A registry with one remote repository; nothing is fetched in these tests.
async fn registry(root: &tempfile::TempDir) -> (Arc<Registry>, FixtureUpstream) {
    let db = Arc::new(TestSumDb::new(support::DB_NAME));
    let upstream = FixtureUpstream::start(&[], Some(db.clone())).await;
    let text = Stack::builder(&[])
        .anonymous_gocache()
        .registry_toml(root.path(), &upstream, &db);
    let config = RegistryConfig::from_toml(&text, "registry.toml", &[]).unwrap();
    let store = open_store(&config.storage).await.unwrap();
    let registry = Registry::new(
        &config,
        store,
        Arc::new(NoListener),
        Arc::new(RegistryMetrics::new()),
    )
    .unwrap();
    (Arc::new(registry), upstream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_refreshes_each_interval_once_across_workers() {
    let Some(server) = redis() else { return };
    let url = server.url();
    let mut connection = connect(&url).await;
    let root = tempfile::tempdir().unwrap();
    let (registry, _upstream) = registry(&root).await;
    // The worker reads the heat of every repository with an upstream: `gocache` and the
    // virtual `go` (where edges serving `go` count their reads).
    seed(
        &mut connection,
        &heat_key("strata", "go"),
        &[("example.com/hot", 8.0), ("example.com/warm", 2.0)],
    )
    .await;
    let config = worker_config(&url, "[heat]\ntop = 10\ninterval_ms = 60000\n");
    let queue: Arc<dyn JobQueue> = config.open_queue().unwrap();
    let producers = Producers::new(config.producers(), &registry, queue.clone()).unwrap();
    let heat = producers.heat().expect("heat runs with a Redis");
    assert_eq!(
        heat.repositories()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
        ["gocache", "go"]
    );
    // A clock standing still in interval 1000 (of 60 s).
    let at = UNIX_EPOCH + Duration::from_millis(1000 * 60_000 + 5_000);
    let clock: Clock = Arc::new(move || at);
    let shutdown = CancellationToken::new();
    let tasks = producers.spawn_with_clock(&clock, &shutdown);
    until("the interval's refreshes", || async {
        let mut c = connect(&url).await;
        stream_jobs(&mut c).await.len() >= 2
    })
    .await;
    until("the decay", || async {
        let mut c = connect(&url).await;
        scores(&mut c, &heat_key("strata", "go")).await.first()
            == Some(&("example.com/hot".to_owned(), 4.0))
    })
    .await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    let jobs = stream_jobs(&mut connection).await;
    let keys: Vec<&str> = jobs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "refresh/go/example.com/hot/1000",
            "refresh/go/example.com/warm/1000"
        ]
    );
    // The interval is claimed in Redis: another worker's loop would not produce it again.
    let claims = TickClaims::redis(&url, "strata:heat-refresh", Duration::from_secs(5)).unwrap();
    assert!(
        !claims
            .claim("heat/1000", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        claims
            .claim("heat/1001", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !claims
            .claim("heat/1001", Duration::from_secs(60))
            .await
            .unwrap()
    );

    // A second worker over the same Redis and clock: it finds the interval claimed, so the
    // set is not decayed again and nothing more is enqueued.
    let second = Producers::new(config.producers(), &registry, queue.clone()).unwrap();
    let shutdown = CancellationToken::new();
    // The loop reads the clock, claims the interval, then reads the clock again to sleep:
    // two readings mean its claim has been answered.
    let readings = Arc::new(AtomicU64::new(0));
    let counted = readings.clone();
    let counting: Clock = Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        at
    });
    let tasks = second.spawn_with_clock(&counting, &shutdown);
    until("the second worker's claim", || async {
        readings.load(Ordering::SeqCst) >= 2
    })
    .await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(stream_jobs(&mut connection).await.len(), 2);
    assert_eq!(
        scores(&mut connection, &heat_key("strata", "go")).await,
        [
            ("example.com/hot".to_owned(), 4.0),
            ("example.com/warm".to_owned(), 1.0)
        ]
    );
}

#[test]
fn heat_is_off_without_a_redis() {
    let config = WorkerConfig::from_toml("[heat]\ntop = 5", "worker.toml", &[]).unwrap();
    assert_eq!(config.heat.redis(&config.jobs), None);
    let error = WorkerConfig::from_toml("[heat]\ndecay = 2.0", "worker.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("heat.decay"), "{error}");
}
