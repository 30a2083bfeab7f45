//! The job runtime against a real `redis-server`: worker processes sharing a queue (one of them
//! SIGKILLed mid-run), retries with backoff, dead letters, idempotent skips, unreadable
//! entries and a Redis restart.
//!
//! Separate worker processes are this test binary run again on the ignored test
//! `worker_process`, configured through `STRATA_SYNC_TEST_*` variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use strata_central_registry::keys::RepoName;
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_sync_worker::runtime::backoff::RetryPolicy;
use strata_sync_worker::runtime::metrics::Metrics;
use strata_sync_worker::runtime::queue::redis::{RedisQueue, RedisQueueSettings};
use strata_sync_worker::runtime::queue::{Broker, Settled, Settlement};
use strata_sync_worker::runtime::worker::WorkerSettings;
use strata_sync_worker::{
    Job, JobContext, JobError, JobHandler, JobQueue, NewJob, Outcome, QueueStats, Worker,
    WorkerReport,
};
use strata_testkit::redis_server;
use support::{HANG_GUARD, until};
use tokio_util::sync::CancellationToken;

const ENV_URL: &str = "STRATA_SYNC_TEST_REDIS_URL";
const ENV_STREAM: &str = "STRATA_SYNC_TEST_STREAM";
const ENV_CONSUMER: &str = "STRATA_SYNC_TEST_CONSUMER";
const ENV_HANG_AFTER: &str = "STRATA_SYNC_TEST_HANG_AFTER";
const REPORT_PREFIX: &str = "WORKER-REPORT ";

fn queue_settings(url: &str, stream: &str, consumer: &str) -> RedisQueueSettings {
    RedisQueueSettings {
        url: url.to_owned(),
        stream: stream.to_owned(),
        group: "workers".to_owned(),
        consumer: consumer.to_owned(),
        max_backlog: 100_000,
        dead_letter_maxlen: 1_000,
        completed_log_maxlen: 100_000,
        completed_ttl: Duration::from_secs(3600),
        visibility_timeout: Duration::from_millis(1500),
        block: Duration::from_millis(200),
        command_timeout: Duration::from_secs(10),
    }
}

fn worker_settings(concurrency: usize, max_deliveries: u32) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        max_deliveries,
        retry: RetryPolicy::new(Duration::from_millis(20), Duration::from_millis(100)),
        reconnect: RetryPolicy::new(Duration::from_millis(20), Duration::from_millis(200)),
        shutdown_grace: Duration::from_secs(30),
    }
}

fn prefetch(i: usize) -> NewJob {
    NewJob::new(
        Job::prefetch(
            RepoName::new("gocache").unwrap(),
            ModulePath::new(&format!("example.com/m{i}")).unwrap(),
            Version::new("v1.0.0").unwrap(),
            false,
        )
        .unwrap(),
    )
}

async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn query<T: redis::FromRedisValue>(
    connection: &mut MultiplexedConnection,
    command: &mut redis::Cmd,
) -> T {
    command.query_async(connection).await.unwrap()
}

/// The completion log as (key, consumer) pairs.
async fn completion_log(
    connection: &mut MultiplexedConnection,
    queue: &RedisQueue,
) -> Vec<(String, String)> {
    let range: redis::streams::StreamRangeReply = query(
        connection,
        redis::cmd("XRANGE")
            .arg(queue.completed_log_key())
            .arg("-")
            .arg("+"),
    )
    .await;
    range
        .ids
        .iter()
        .map(|e| {
            (
                e.get::<String>("key").unwrap(),
                e.get::<String>("consumer").unwrap(),
            )
        })
        .collect()
}

/// The worker process: `INCR <stream>:test:runs:<key>` per run, a few ms of work, and after
/// `STRATA_SYNC_TEST_HANG_AFTER` runs every further job hangs (recorded in
/// `<stream>:test:hung`) so the process dies holding pending deliveries. Stops when
/// `<stream>:test:stop` exists and prints its report.
struct ProcessHandler {
    connection: MultiplexedConnection,
    stream: String,
    hang_after: Option<u64>,
    started: AtomicU64,
}

#[async_trait]
impl JobHandler for ProcessHandler {
    async fn run(&self, _job: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        let mut connection = self.connection.clone();
        let run = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let runs_key = format!("{}:test:runs:{}", self.stream, context.key);
        redis::cmd("INCR")
            .arg(&runs_key)
            .query_async::<u64>(&mut connection)
            .await
            .map_err(JobError::retryable)?;
        if self.hang_after.is_some_and(|n| run > n) {
            redis::cmd("SADD")
                .arg(format!("{}:test:hung", self.stream))
                .arg(&context.key)
                .query_async::<u64>(&mut connection)
                .await
                .map_err(JobError::retryable)?;
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(Outcome::done())
    }
}

#[test]
#[ignore = "a worker process started by two_worker_processes_share_500_jobs_and_survive_a_sigkill"]
fn worker_process() {
    let (Ok(url), Ok(stream), Ok(consumer)) = (
        std::env::var(ENV_URL),
        std::env::var(ENV_STREAM),
        std::env::var(ENV_CONSUMER),
    ) else {
        eprintln!("worker_process runs only as a child of the shared-queue test");
        return;
    };
    let hang_after = std::env::var(ENV_HANG_AFTER)
        .ok()
        .map(|n| n.parse().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let queue = Arc::new(RedisQueue::new(queue_settings(&url, &stream, &consumer)).unwrap());
        let handler = Arc::new(ProcessHandler {
            connection: connect(&url).await,
            stream: stream.clone(),
            hang_after,
            started: AtomicU64::new(0),
        });
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let mut connection = connect(&url).await;
        tokio::spawn(async move {
            let key = format!("{stream}:test:stop");
            loop {
                let stopped: bool = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .unwrap_or(false);
                if stopped {
                    stop.cancel();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let worker = Worker::new(
            queue,
            handler,
            worker_settings(4, 5),
            Arc::new(Metrics::new()),
        );
        let report = worker.run(shutdown).await;
        println!("{REPORT_PREFIX}{}", serde_json::to_string(&report).unwrap());
    });
}

fn spawn_worker(url: &str, stream: &str, consumer: &str, hang_after: Option<u64>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "worker_process", "--ignored", "--nocapture"])
        .env(ENV_URL, url)
        .env(ENV_STREAM, stream)
        .env(ENV_CONSUMER, consumer)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(n) = hang_after {
        command.env(ENV_HANG_AFTER, n.to_string());
    }
    command.spawn().unwrap()
}

/// Waits (within the hang guard) for the child to exit and returns its report.
async fn finish(mut child: Child) -> WorkerReport {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker process failed: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "worker process did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(REPORT_PREFIX))
        .unwrap_or_else(|| panic!("no report in the worker's output:\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_500_jobs_and_survive_a_sigkill() {
    if redis_server::skipped() {
        eprintln!("skipping: STRATA_SKIP_REDIS=1");
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let url = redis.url();
    let stream = "jobs-shared";
    let producer = RedisQueue::new(queue_settings(&url, stream, "producer")).unwrap();
    let jobs: Vec<NewJob> = (0..500).map(prefetch).collect();
    let keys: HashSet<String> = producer
        .enqueue_batch(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys.len(), 500);

    // A hangs after 100 runs: it dies holding 4 pending deliveries that only B can finish.
    let mut victim = spawn_worker(&url, stream, "worker-a", Some(100));
    let survivor = spawn_worker(&url, stream, "worker-b", None);
    let mut connection = connect(&url).await;
    let hung_key = format!("{stream}:test:hung");
    until("worker A to hold 4 hung jobs", || {
        let mut connection = connection.clone();
        let hung_key = hung_key.clone();
        async move { query::<u64>(&mut connection, redis::cmd("SCARD").arg(&hung_key)).await == 4 }
    })
    .await;
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();

    until("all 500 completions", || {
        let mut connection = connection.clone();
        let log = producer.completed_log_key().to_owned();
        async move { query::<u64>(&mut connection, redis::cmd("XLEN").arg(&log)).await >= 500 }
    })
    .await;
    query::<()>(
        &mut connection,
        redis::cmd("SET").arg(format!("{stream}:test:stop")).arg(1),
    )
    .await;
    let report = finish(survivor).await;

    // Exactly once to completion: every key in the completion log once, and nothing else.
    let log = completion_log(&mut connection, &producer).await;
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for (key, _) in &log {
        *per_key.entry(key.as_str()).or_default() += 1;
    }
    assert_eq!(log.len(), 500, "completions recorded");
    assert!(per_key.values().all(|n| *n == 1), "a key completed twice");
    assert_eq!(
        per_key
            .keys()
            .map(|k| k.to_string())
            .collect::<HashSet<_>>(),
        keys
    );
    for key in &keys {
        assert!(
            producer.is_completed(key).await.unwrap(),
            "{key} not marked"
        );
    }
    // Shared: both processes completed jobs.
    let by_a = log.iter().filter(|(_, c)| c == "worker-a").count();
    let by_b = log.iter().filter(|(_, c)| c == "worker-b").count();
    assert_eq!(by_a + by_b, 500);
    assert!(by_a >= 90 && by_b > 0, "A completed {by_a}, B {by_b}");
    assert_eq!(report.completed as usize, by_b);

    // The hung jobs ran on A, then were claimed and finished by B.
    let hung: Vec<String> = query(&mut connection, redis::cmd("SMEMBERS").arg(&hung_key)).await;
    assert_eq!(hung.len(), 4);
    for key in &hung {
        let runs: u64 = query(
            &mut connection,
            redis::cmd("GET").arg(format!("{stream}:test:runs:{key}")),
        )
        .await;
        assert!(runs >= 2, "{key} ran {runs} times");
        assert!(log.contains(&(key.clone(), "worker-b".to_owned())), "{key}");
    }
    assert!(report.reclaimed >= 4, "{report:?}");
    assert_eq!(report.dead_lettered, 0, "{report:?}");

    // None lost, nothing left behind.
    assert_eq!(producer.stats().await.unwrap(), QueueStats::default());
    assert!(producer.dead_letters(10).await.unwrap().is_empty());
    let stream_len: u64 = query(&mut connection, redis::cmd("XLEN").arg(stream)).await;
    assert_eq!(stream_len, 0);
}

/// Records each run's (key, delivery, last error); answers with `behaviour(run number)`.
struct Scripted {
    runs: Mutex<Vec<(String, u32, Option<String>)>>,
    behaviour: fn(u32) -> Result<Outcome, JobError>,
}

#[async_trait]
impl JobHandler for Scripted {
    async fn run(&self, _: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        let run = {
            let mut runs = self.runs.lock().unwrap();
            runs.push((
                context.key.clone(),
                context.delivery,
                context.last_error.clone(),
            ));
            runs.len() as u32
        };
        (self.behaviour)(run)
    }
}

struct InProcess {
    queue: Arc<RedisQueue>,
    handler: Arc<Scripted>,
    shutdown: CancellationToken,
    worker: tokio::task::JoinHandle<WorkerReport>,
    connection: MultiplexedConnection,
}

async fn in_process(
    url: &str,
    stream: &str,
    max_deliveries: u32,
    behaviour: fn(u32) -> Result<Outcome, JobError>,
) -> InProcess {
    let queue = Arc::new(RedisQueue::new(queue_settings(url, stream, "solo")).unwrap());
    let handler = Arc::new(Scripted {
        runs: Mutex::new(Vec::new()),
        behaviour,
    });
    let shutdown = CancellationToken::new();
    let worker = Worker::new(
        queue.clone(),
        handler.clone(),
        worker_settings(2, max_deliveries),
        Arc::new(Metrics::new()),
    );
    let worker = tokio::spawn(worker.run(shutdown.clone()));
    InProcess {
        queue,
        handler,
        shutdown,
        worker,
        connection: connect(url).await,
    }
}

impl InProcess {
    async fn stop(self) -> (WorkerReport, Vec<(String, u32, Option<String>)>) {
        self.shutdown.cancel();
        let report = tokio::time::timeout(HANG_GUARD, self.worker)
            .await
            .unwrap()
            .unwrap();
        let runs = self.handler.runs.lock().unwrap().clone();
        (report, runs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_twice_is_retried_with_backoff_and_completes() {
    if redis_server::skipped() {
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let mut w = in_process(&redis.url(), "jobs-retry", 5, |run| {
        if run <= 2 {
            Err(JobError::retryable(format!("upstream 503 #{run}")))
        } else {
            Ok(Outcome::with_detail("fetched"))
        }
    })
    .await;
    let queued = w.queue.enqueue(prefetch(1)).await.unwrap();
    until("completion", || async {
        w.queue.is_completed(&queued.key).await.unwrap()
    })
    .await;
    let marker: String = query(
        &mut w.connection,
        redis::cmd("GET").arg(w.queue.marker_key(&queued.key)),
    )
    .await;
    let marker: serde_json::Value = serde_json::from_str(&marker).unwrap();
    assert_eq!(marker["deliveries"], 3);
    assert_eq!(marker["detail"], "fetched");
    assert_eq!(marker["id"], queued.id.as_str());
    let log = completion_log(&mut w.connection, &w.queue).await;
    assert_eq!(log, [(queued.key.clone(), "solo".to_owned())]);
    let queue = w.queue.clone();
    let (report, runs) = w.stop().await;
    assert_eq!(
        runs,
        [
            (queued.key.clone(), 1, None),
            (queued.key.clone(), 2, Some("upstream 503 #1".into())),
            (queued.key.clone(), 3, Some("upstream 503 #2".into())),
        ]
    );
    assert_eq!((report.retried, report.completed), (2, 1));
    assert_eq!(queue.stats().await.unwrap(), QueueStats::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_unreadable_jobs_land_in_the_dead_letter_stream() {
    if redis_server::skipped() {
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let stream = "jobs-dead";
    let mut w = in_process(&redis.url(), stream, 3, |_| {
        Err(JobError::retryable("connection reset"))
    })
    .await;
    let queued = w.queue.enqueue(prefetch(2)).await.unwrap();
    // An entry no worker can read (a newer producer's kind, or garbage).
    let newer = r#"{"v":1,"id":"x1","key":"reindex/all","kind":"reindex","payload":{}}"#;
    query::<String>(
        &mut w.connection,
        redis::cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("job")
            .arg(newer),
    )
    .await;
    until("two dead letters", || async {
        w.queue.stats().await.unwrap().dead == 2
    })
    .await;
    let dead = w.queue.dead_letters(10).await.unwrap();
    let queue = w.queue.clone();
    let (report, runs) = w.stop().await;

    assert_eq!(runs.len(), 3, "{runs:?}");
    let failed = dead
        .iter()
        .find(|d| d.document.contains(&queued.key))
        .unwrap();
    assert_eq!(failed.deliveries, 3);
    assert_eq!(
        failed.reason,
        "failed 3 times; last error: connection reset"
    );
    assert_eq!(failed.consumer, "solo");
    let envelope = failed.envelope().unwrap();
    assert_eq!((envelope.id, envelope.attempts), (queued.id, 3));
    let unreadable = dead.iter().find(|d| d.document == newer).unwrap();
    assert!(
        unreadable.reason.starts_with("unreadable job entry")
            && unreadable.reason.contains("reindex"),
        "{}",
        unreadable.reason
    );
    assert_eq!((report.retried, report.dead_lettered), (2, 2));
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.waiting, stats.pending, stats.delayed, stats.dead),
        (0, 0, 0, 2)
    );
    assert!(!queue.is_completed(&queued.key).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_key_is_acknowledged_without_running_again() {
    if redis_server::skipped() {
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let w = in_process(&redis.url(), "jobs-idem", 5, |_| Ok(Outcome::done())).await;
    let first = w.queue.enqueue(prefetch(3)).await.unwrap();
    until("completion", || async {
        w.queue.is_completed(&first.key).await.unwrap()
    })
    .await;
    let second = w.queue.enqueue(prefetch(3)).await.unwrap();
    assert_eq!(second.key, first.key);
    until("the second job to be acknowledged", || async {
        w.queue.stats().await.unwrap() == QueueStats::default()
    })
    .await;
    let (report, runs) = w.stop().await;
    assert_eq!(runs.len(), 1);
    assert_eq!((report.completed, report.skipped), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_taken_over_from_a_stalled_worker_completes_once() {
    if redis_server::skipped() {
        return;
    }
    let redis = redis_server::RedisServer::start().unwrap();
    let stream = "jobs-stall";
    // A worker that received the job and then stalled (no keep-alives: a long pause, a
    // network partition) while it still believes it runs the job.
    let stalled = RedisQueue::new(queue_settings(&redis.url(), stream, "stalled")).unwrap();
    let queued = stalled.enqueue(prefetch(6)).await.unwrap();
    let never = CancellationToken::new();
    let held = loop {
        let mut got = stalled.receive(1, &never).await.unwrap();
        if let Some(delivery) = got.pop() {
            break delivery;
        }
    };
    assert_eq!((held.deliveries, held.reclaimed), (1, false));

    // A live worker claims it once idle past the visibility timeout, and completes it.
    let mut w = in_process(&redis.url(), stream, 5, |_| Ok(Outcome::done())).await;
    until("the takeover's completion", || async {
        w.queue.is_completed(&queued.key).await.unwrap()
    })
    .await;

    // The stalled worker finishing too does not complete the key a second time, and its
    // failure would not count either.
    let late = Settlement::Complete { detail: None };
    assert_eq!(
        stalled.settle(&held, late).await.unwrap(),
        Settled::AlreadyCompleted
    );
    let retry = Settlement::Retry {
        delay: Duration::ZERO,
        error: "late failure".into(),
    };
    assert_eq!(
        stalled.settle(&held, retry).await.unwrap(),
        Settled::Superseded
    );
    let log = completion_log(&mut w.connection, &w.queue).await;
    assert_eq!(log, [(queued.key.clone(), "solo".to_owned())]);
    let queue = w.queue.clone();
    let (report, runs) = w.stop().await;
    assert_eq!(runs, [(queued.key.clone(), 2, None)]);
    assert_eq!((report.reclaimed, report.completed), (1, 1));
    assert_eq!(queue.stats().await.unwrap(), QueueStats::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reconnects_after_redis_restarts() {
    if redis_server::skipped() {
        return;
    }
    let mut redis = redis_server::RedisServer::start().unwrap();
    let w = in_process(&redis.url(), "jobs-restart", 5, |_| Ok(Outcome::done())).await;
    let before = w.queue.enqueue(prefetch(4)).await.unwrap();
    until("the first completion", || async {
        w.queue.is_completed(&before.key).await.unwrap()
    })
    .await;
    // Down, then back empty (no persistence): the stream and group are gone.
    redis.stop();
    assert!(w.queue.check_ready().await.is_err());
    redis.restart().unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    let enqueued = loop {
        match w.queue.enqueue(prefetch(5)).await {
            Ok(enqueued) => break Some(enqueued),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("enqueue after the restart: {error}"),
        }
    };
    let after = enqueued.unwrap();
    until("the completion after the restart", || async {
        w.queue.is_completed(&after.key).await.unwrap_or(false)
    })
    .await;
    let (report, runs) = w.stop().await;
    assert_eq!(runs.len(), 2);
    assert_eq!(report.completed, 2);
}
