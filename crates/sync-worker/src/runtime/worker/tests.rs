//! The worker loop over the in-process queue: retries with backoff, dead letters, idempotent
//! skips, bounded concurrency, panics, and both ways a drain can end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::runtime::backoff::RetryPolicy;
use crate::runtime::handler::Outcome;
use crate::runtime::job::Job;
use crate::runtime::queue::memory::{MemoryQueue, MemoryQueueSettings};
use crate::runtime::queue::{JobQueue, NewJob, QueueStats};
use async_trait::async_trait;

/// Hang protection only: nothing here waits for a time to pass.
const HANG_GUARD: Duration = Duration::from_secs(60);

type Behaviour = dyn Fn(&JobContext, u32) -> Result<Outcome, JobError> + Send + Sync;

/// Records every run (key, delivery, last error) and answers with `behaviour(context, run
/// number for that key)`.
struct Recording {
    runs: Mutex<Vec<(String, u32, Option<String>)>>,
    behaviour: Box<Behaviour>,
}

impl Recording {
    fn new(
        behaviour: impl Fn(&JobContext, u32) -> Result<Outcome, JobError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            runs: Mutex::new(Vec::new()),
            behaviour: Box::new(behaviour),
        })
    }

    fn runs(&self) -> Vec<(String, u32, Option<String>)> {
        self.runs.lock().unwrap().clone()
    }
}

#[async_trait]
impl JobHandler for Recording {
    async fn run(&self, _job: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        let run = {
            let mut runs = self.runs.lock().unwrap();
            runs.push((
                context.key.clone(),
                context.delivery,
                context.last_error.clone(),
            ));
            runs.iter().filter(|(k, ..)| *k == context.key).count() as u32
        };
        (self.behaviour)(context, run)
    }
}

fn settings(concurrency: usize, max_deliveries: u32) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        max_deliveries,
        retry: RetryPolicy::new(Duration::from_millis(1), Duration::from_millis(5)),
        reconnect: RetryPolicy::new(Duration::from_millis(1), Duration::from_millis(5)),
        shutdown_grace: Duration::from_secs(30),
    }
}

fn job(name: &str) -> NewJob {
    NewJob::new(Job::IndexPoll { feed: name.into() }).with_key(name)
}

struct Running {
    queue: Arc<MemoryQueue>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<WorkerReport>,
}

fn start(handler: Arc<dyn JobHandler>, settings: WorkerSettings) -> Running {
    let queue = Arc::new(MemoryQueue::new(MemoryQueueSettings::default()));
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let worker = Worker::new(queue.clone(), handler, settings, metrics.clone());
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    Running {
        queue,
        metrics,
        shutdown,
        handle,
    }
}

impl Running {
    async fn stop(self) -> (WorkerReport, QueueStats) {
        self.shutdown.cancel();
        let report = tokio::time::timeout(HANG_GUARD, self.handle)
            .await
            .expect("worker did not stop")
            .unwrap();
        (report, self.queue.stats().await.unwrap())
    }
}

/// Polls `condition` until it holds (bounded by the hang guard).
async fn until<F: std::future::Future<Output = bool>>(what: &str, condition: impl Fn() -> F) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_job_failing_twice_is_retried_then_completes() {
    let handler = Recording::new(|_, run| {
        if run <= 2 {
            Err(JobError::retryable(format!("upstream timeout #{run}")))
        } else {
            Ok(Outcome::with_detail("fetched"))
        }
    });
    let running = start(handler.clone(), settings(4, 5));
    let queued = running.queue.enqueue(job("flaky")).await.unwrap();
    until("completion", || async {
        running.queue.is_completed(&queued.key).await.unwrap()
    })
    .await;
    let metrics = running.metrics.clone();
    let (report, stats) = running.stop().await;

    let runs = handler.runs();
    assert_eq!(
        runs,
        [
            ("flaky".into(), 1, None),
            ("flaky".into(), 2, Some("upstream timeout #1".into())),
            ("flaky".into(), 3, Some("upstream timeout #2".into())),
        ]
    );
    assert_eq!((report.completed, report.retried), (1, 2));
    assert_eq!(stats, QueueStats::default());
    let text = metrics.encode();
    assert!(
        text.contains(r#"strata_sync_jobs_total{kind="index_poll",outcome="retried"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_job_always_failing_is_dead_lettered_after_max_deliveries() {
    let handler = Recording::new(|_, _| Err(JobError::retryable("connection refused")));
    let running = start(handler.clone(), settings(2, 3));
    running.queue.enqueue(job("broken")).await.unwrap();
    until("the dead letter", || async {
        running.queue.stats().await.unwrap().dead == 1
    })
    .await;
    let dead = running.queue.dead_letters(10).await.unwrap();
    let (report, stats) = running.stop().await;

    assert_eq!(handler.runs().len(), 3);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].deliveries, 3);
    assert_eq!(
        dead[0].reason,
        "failed 3 times; last error: connection refused"
    );
    assert_eq!(dead[0].envelope().unwrap().key, "broken");
    assert_eq!((report.retried, report.dead_lettered), (2, 1));
    assert_eq!(stats.dead, 1);
    assert_eq!((stats.waiting, stats.pending, stats.delayed), (0, 0, 0));
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_at_once() {
    let handler = Recording::new(|_, _| Err(JobError::permanent("no such module")));
    let running = start(handler.clone(), settings(2, 5));
    running.queue.enqueue(job("missing")).await.unwrap();
    until("the dead letter", || async {
        running.queue.stats().await.unwrap().dead == 1
    })
    .await;
    let dead = running.queue.dead_letters(1).await.unwrap();
    running.stop().await;
    assert_eq!(handler.runs().len(), 1);
    assert_eq!(dead[0].reason, "permanent failure: no such module");
}

#[tokio::test]
async fn a_completed_key_is_acknowledged_without_running() {
    let handler = Recording::new(|_, _| Ok(Outcome::done()));
    let running = start(handler.clone(), settings(1, 5));
    let first = running.queue.enqueue(job("once")).await.unwrap();
    until("completion", || async {
        running.queue.is_completed(&first.key).await.unwrap()
    })
    .await;
    let second = running.queue.enqueue(job("once")).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(first.key, second.key);
    until("the skip", || async {
        running.queue.stats().await.unwrap() == QueueStats::default()
    })
    .await;
    let (report, _) = running.stop().await;
    assert_eq!(handler.runs().len(), 1);
    assert_eq!((report.completed, report.skipped), (1, 1));
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let running_now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    struct Counting {
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }
    #[async_trait]
    impl JobHandler for Counting {
        async fn run(&self, _: &Job, _: &JobContext) -> Result<Outcome, JobError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(Outcome::done())
        }
    }
    let handler = Arc::new(Counting {
        now: running_now.clone(),
        most: most.clone(),
    });
    let running = start(handler, settings(3, 5));
    let jobs = (0..30).map(|i| job(&format!("j{i}"))).collect();
    running.queue.enqueue_batch(jobs).await.unwrap();
    until("all jobs", || async {
        running.queue.stats().await.unwrap() == QueueStats::default()
    })
    .await;
    let (report, _) = running.stop().await;
    assert_eq!(report.completed, 30);
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "{most} jobs ran at once");
}

#[tokio::test]
async fn a_panicking_handler_counts_as_a_retryable_failure() {
    let handler = Recording::new(|_, run| {
        assert!(run > 1, "boom on the first run");
        Ok(Outcome::done())
    });
    let running = start(handler.clone(), settings(1, 5));
    let queued = running.queue.enqueue(job("panics")).await.unwrap();
    until("completion", || async {
        running.queue.is_completed(&queued.key).await.unwrap()
    })
    .await;
    let (report, _) = running.stop().await;
    let runs = handler.runs();
    assert_eq!(runs.len(), 2);
    let error = runs[1].2.clone().unwrap();
    assert!(
        error.contains("panicked") && error.contains("boom"),
        "{error}"
    );
    assert_eq!((report.retried, report.completed), (1, 1));
}

/// A handler that signals when it starts and finishes only when released (or, if
/// `cooperative`, when the worker shuts down, with a retryable error).
struct Gate {
    started: AtomicUsize,
    release: CancellationToken,
    cooperative: bool,
}

#[async_trait]
impl JobHandler for Gate {
    async fn run(&self, _: &Job, context: &JobContext) -> Result<Outcome, JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        if self.cooperative {
            context.shutdown.cancelled().await;
            return Err(JobError::retryable("stopped for shutdown"));
        }
        self.release.cancelled().await;
        Ok(Outcome::done())
    }
}

fn gate(cooperative: bool) -> Arc<Gate> {
    Arc::new(Gate {
        started: AtomicUsize::new(0),
        release: CancellationToken::new(),
        cooperative,
    })
}

#[tokio::test]
async fn drain_lets_running_jobs_finish_and_reads_nothing_new() {
    let handler = gate(false);
    let running = start(handler.clone(), settings(2, 5));
    let jobs = (0..4).map(|i| job(&format!("d{i}"))).collect();
    running.queue.enqueue_batch(jobs).await.unwrap();
    until("two running jobs", || async {
        handler.started.load(Ordering::SeqCst) == 2
    })
    .await;
    running.shutdown.cancel();
    // Both running jobs may finish now; the worker must wait for them.
    handler.release.cancel();
    let (report, stats) = running.stop().await;
    assert_eq!(report.completed, 2);
    assert_eq!(handler.started.load(Ordering::SeqCst), 2);
    assert_eq!(
        stats,
        QueueStats {
            waiting: 2,
            ..QueueStats::default()
        }
    );
}

#[tokio::test]
async fn drain_past_the_grace_period_gives_unfinished_jobs_back() {
    let handler = gate(false);
    let mut settings = settings(2, 5);
    settings.shutdown_grace = Duration::from_millis(20);
    let running = start(handler.clone(), settings);
    let jobs = (0..3).map(|i| job(&format!("s{i}"))).collect();
    running.queue.enqueue_batch(jobs).await.unwrap();
    until("two running jobs", || async {
        handler.started.load(Ordering::SeqCst) == 2
    })
    .await;
    let queue = running.queue.clone();
    let (report, stats) = running.stop().await;
    assert_eq!((report.completed, report.interrupted), (0, 2));
    assert_eq!(
        stats,
        QueueStats {
            waiting: 3,
            ..QueueStats::default()
        }
    );
    // The interrupted deliveries count: they come back as second deliveries.
    let shutdown = CancellationToken::new();
    let back = queue.receive(3, &shutdown).await.unwrap();
    let mut deliveries: Vec<u32> = back.iter().map(|d| d.deliveries).collect();
    deliveries.sort_unstable();
    assert_eq!(deliveries, [1, 2, 2]);
}

#[tokio::test]
async fn handlers_see_the_shutdown_and_can_hand_their_job_back() {
    let handler = gate(true);
    let running = start(handler.clone(), settings(1, 5));
    running.queue.enqueue(job("long")).await.unwrap();
    until("the running job", || async {
        handler.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let (report, stats) = running.stop().await;
    assert_eq!(report.retried, 1);
    assert_eq!(stats.delayed, 1);
}
