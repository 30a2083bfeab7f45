//! The worker loop, one for both queues: receive deliveries while permits of the concurrency
//! semaphore are free, run each in its own task, settle it (complete, skip, retry with
//! backoff, dead-letter), keep running deliveries alive, and on shutdown drain.
//!
//! Drain order: stop receiving; let running jobs finish for up to the grace period (their
//! handlers see `JobContext::shutdown` cancelled and may stop early with a retryable error);
//! then abort what is left and leave it to other workers (Redis: pending, claimed after the
//! visibility timeout; memory: back in the queue). Keep-alives continue during the drain so
//! that finishing jobs are not claimed under them.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::runtime::backoff::RetryPolicy;
use crate::runtime::handler::{JobContext, JobError, JobHandler};
use crate::runtime::metrics::{KindLabels, Metrics};
use crate::runtime::queue::{Broker, Delivery, QueueError, Settled, Settlement};

/// Attempts at telling the queue how a delivery ended before leaving it to be redelivered.
const SETTLE_ATTEMPTS: u32 = 6;

/// Settings of the worker loop, as typed values (built from the worker configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u32,
    /// Delays between deliveries of a failing job.
    pub retry: RetryPolicy,
    /// Delays between attempts to reach a queue that failed.
    pub reconnect: RetryPolicy,
    /// How long running jobs may finish on shutdown.
    pub shutdown_grace: Duration,
}

/// Runs jobs from a [`Broker`] with a [`JobHandler`].
pub struct Worker {
    shared: Arc<Shared>,
}

struct Shared {
    broker: Arc<dyn Broker>,
    handler: Arc<dyn JobHandler>,
    settings: WorkerSettings,
    metrics: Arc<Metrics>,
    report: Counts,
    in_flight: Mutex<HashMap<String, Delivery>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("consumer", &self.shared.broker.consumer())
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// What one run of [`Worker::run`] did (the metrics hold the same, by kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerReport {
    /// Deliveries that completed their key.
    pub completed: u64,
    /// Deliveries that ran but found their key completed by another delivery.
    pub duplicates: u64,
    /// Deliveries not run because their key had completed.
    pub skipped: u64,
    /// Failed deliveries scheduled for a retry.
    pub retried: u64,
    /// Jobs moved to the dead-letter list.
    pub dead_lettered: u64,
    /// Deliveries another worker took over meanwhile.
    pub superseded: u64,
    /// Deliveries still running when the grace period ended.
    pub interrupted: u64,
    /// Deliveries received during shutdown and given back unstarted.
    pub released: u64,
    /// Deliveries whose end could not be recorded (they will be redelivered).
    pub unsettled: u64,
    /// Deliveries claimed from workers that stopped.
    pub reclaimed: u64,
}

#[derive(Default)]
struct Counts([AtomicU64; 10]);

impl Counts {
    fn add(&self, outcome: &'static str) {
        let index = match outcome {
            "completed" => 0,
            "duplicate" => 1,
            "skipped" => 2,
            "retried" => 3,
            "dead_lettered" => 4,
            "superseded" => 5,
            "interrupted" => 6,
            "released" => 7,
            "unsettled" => 8,
            _ => 9,
        };
        self.0[index].fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) -> WorkerReport {
        let n = |i: usize| self.0[i].load(Ordering::Relaxed);
        WorkerReport {
            completed: n(0),
            duplicates: n(1),
            skipped: n(2),
            retried: n(3),
            dead_lettered: n(4),
            superseded: n(5),
            interrupted: n(6),
            released: n(7),
            unsettled: n(8),
            reclaimed: n(9),
        }
    }
}

impl Worker {
    /// A worker taking jobs from `broker` and running them with `handler`.
    pub fn new(
        broker: Arc<dyn Broker>,
        handler: Arc<dyn JobHandler>,
        settings: WorkerSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                broker,
                handler,
                settings,
                metrics,
                report: Counts::default(),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Runs until `shutdown` is cancelled, then drains (see the module docs).
    pub async fn run(self, shutdown: CancellationToken) -> WorkerReport {
        let shared = self.shared;
        let concurrency = shared.settings.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut tasks = JoinSet::new();
        let stop_keep_alive = CancellationToken::new();
        let keep_alive = shared
            .broker
            .keep_alive_interval()
            .map(|every| tokio::spawn(keep_alive(shared.clone(), every, stop_keep_alive.clone())));
        let mut backoff = shared.settings.reconnect.backoff();
        tracing::info!(
            consumer = shared.broker.consumer(),
            concurrency,
            "job worker started"
        );

        loop {
            while let Some(finished) = tasks.try_join_next() {
                log_join(finished);
            }
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = shutdown.cancelled() => break,
            };
            if shutdown.is_cancelled() {
                break;
            }
            let free = permits.available_permits() + 1;
            let batch = match shared.broker.receive(free, &shutdown).await {
                Ok(batch) => {
                    backoff.reset();
                    batch
                }
                Err(error) => {
                    drop(permit);
                    shared.metrics.queue_error("receive");
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "receiving jobs failed");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            let mut first = Some(permit);
            for delivery in batch {
                if delivery.reclaimed {
                    shared.metrics.reclaimed.inc();
                    shared.report.add("reclaimed");
                    tracing::info!(entry = %delivery.tag, deliveries = delivery.deliveries,
                        "took over a job from a stopped worker");
                }
                if shutdown.is_cancelled() {
                    end(&shared, &delivery, Settlement::Release, "released").await;
                    continue;
                }
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match permits.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let guard = InFlight::enter(&shared, delivery.clone());
                let job_shutdown = shutdown.clone();
                tasks.spawn(async move {
                    let shared = guard.shared.clone();
                    process(&shared, &guard.delivery, &job_shutdown).await;
                    drop(guard);
                    drop(permit);
                });
            }
        }

        // Drain.
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, grace = ?shared.settings.shutdown_grace,
                "draining running jobs");
        }
        let drained = tokio::time::timeout(shared.settings.shutdown_grace, async {
            while let Some(finished) = tasks.join_next().await {
                log_join(finished);
            }
        })
        .await;
        if drained.is_err() {
            let left: Vec<Delivery> = shared.lock_in_flight().values().cloned().collect();
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            for delivery in &left {
                end(&shared, delivery, Settlement::Interrupt, "interrupted").await;
            }
            tracing::warn!(
                interrupted = left.len(),
                "shutdown grace period ended; unfinished jobs are left to other workers"
            );
        }
        stop_keep_alive.cancel();
        if let Some(handle) = keep_alive {
            let _ = handle.await;
        }
        let report = shared.report.report();
        tracing::info!(?report, "job worker stopped");
        report
    }
}

impl Shared {
    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Delivery>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Registers a running delivery (for keep-alives and the drain) until dropped, whether the
/// task finishes, panics or is aborted.
struct InFlight {
    shared: Arc<Shared>,
    delivery: Delivery,
}

impl InFlight {
    fn enter(shared: &Arc<Shared>, delivery: Delivery) -> Self {
        let mut map = shared.lock_in_flight();
        map.insert(delivery.tag.clone(), delivery.clone());
        shared.metrics.in_flight.set(map.len() as u64);
        drop(map);
        Self {
            shared: shared.clone(),
            delivery,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self.shared.lock_in_flight();
        map.remove(&self.delivery.tag);
        self.shared.metrics.in_flight.set(map.len() as u64);
    }
}

fn log_join(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished
        && error.is_panic()
    {
        tracing::error!(%error, "a job task panicked outside its handler");
    }
}

/// Every `every`, tells the broker which deliveries this process still runs.
async fn keep_alive(shared: Arc<Shared>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        let tags: Vec<String> = shared.lock_in_flight().keys().cloned().collect();
        if let Err(error) = shared.broker.keep_alive(&tags).await {
            shared.metrics.queue_error("keep_alive");
            tracing::warn!(%error, jobs = tags.len(), "keeping running jobs alive failed");
        }
    }
}

/// Runs one delivery and settles it.
async fn process(shared: &Shared, delivery: &Delivery, shutdown: &CancellationToken) {
    let (settlement, outcome) = decide(shared, delivery, shutdown).await;
    end(shared, delivery, settlement, outcome).await;
}

/// What to do with a delivery, running the handler if it should run.
async fn decide(
    shared: &Shared,
    delivery: &Delivery,
    shutdown: &CancellationToken,
) -> (Settlement, &'static str) {
    let envelope = match &delivery.envelope {
        Ok(envelope) => envelope,
        Err(reason) => {
            let reason = format!("unreadable job entry: {reason}");
            return (Settlement::DeadLetter { reason }, "dead_lettered");
        }
    };
    let max = shared.settings.max_deliveries;
    if delivery.deliveries > max {
        // Earlier deliveries never reported back: their workers died or hung (or the job
        // kills its worker); running it again would only repeat that.
        let reason = format!(
            "delivered {} times without finishing (max_deliveries = {max}); last error: {}",
            delivery.deliveries,
            envelope
                .last_error
                .as_deref()
                .unwrap_or("none: the workers stopped")
        );
        return (Settlement::DeadLetter { reason }, "dead_lettered");
    }
    match shared.broker.is_completed(&envelope.key).await {
        Ok(true) => return (Settlement::Skip, "skipped"),
        Ok(false) => {}
        Err(error) => {
            // Run anyway: completion is still recorded at most once.
            shared.metrics.queue_error("settle");
            tracing::warn!(%error, key = %envelope.key, "could not check the completion marker");
        }
    }
    let context = JobContext {
        id: envelope.id.clone(),
        key: envelope.key.clone(),
        delivery: delivery.deliveries,
        max_deliveries: max,
        enqueued_at: envelope.enqueued_at(),
        last_error: envelope.last_error.clone(),
        shutdown: shutdown.clone(),
    };
    // With tracing on, the run continues the trace of whoever enqueued the job.
    let span = strata_service::span!(
        "sync.job",
        otel.name = %format!("job {}", envelope.job.kind()),
        job.kind = %envelope.job.kind(),
        job.id = envelope.id.as_str(),
        job.key = envelope.key.as_str(),
        job.delivery = delivery.deliveries,
    );
    if let Some(traceparent) = &envelope.traceparent {
        strata_service::trace::set_parent_from_traceparent(&span, traceparent);
    }
    let started = Instant::now();
    let result = AssertUnwindSafe(shared.handler.run(&envelope.job, &context))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    if !matches!(result, Ok(Ok(_))) {
        strata_service::trace::set_error(&span, "the job did not complete");
    }
    shared
        .metrics
        .duration
        .get_or_create(&KindLabels {
            kind: delivery.kind_label(),
        })
        .observe(started.elapsed().as_secs_f64());
    let (message, hint) = match result {
        Ok(Ok(outcome)) => {
            return (
                Settlement::Complete {
                    detail: outcome.detail,
                },
                "completed",
            );
        }
        Ok(Err(JobError::Permanent(message))) => {
            let reason = format!("permanent failure: {message}");
            return (Settlement::DeadLetter { reason }, "dead_lettered");
        }
        Ok(Err(JobError::Retryable {
            message,
            retry_after,
        })) => (message, retry_after),
        Err(panic) => (
            format!("the handler panicked: {}", panic_message(&panic)),
            None,
        ),
    };
    if delivery.deliveries >= max {
        let reason = format!(
            "failed {} times; last error: {message}",
            delivery.deliveries
        );
        return (Settlement::DeadLetter { reason }, "dead_lettered");
    }
    let delay = shared.settings.retry.delay(delivery.deliveries, hint);
    let settlement = Settlement::Retry {
        delay,
        error: message,
    };
    (settlement, "retried")
}

/// Settles `delivery`, retrying while the queue is unavailable, and counts the outcome.
async fn end(shared: &Shared, delivery: &Delivery, settlement: Settlement, planned: &'static str) {
    let kind = delivery.kind_label();
    let mut backoff = shared.settings.reconnect.backoff();
    let mut attempt = 0;
    let settled = loop {
        attempt += 1;
        match shared.broker.settle(delivery, settlement.clone()).await {
            Ok(settled) => break Some(settled),
            Err(error) => {
                shared.metrics.queue_error("settle");
                let retry =
                    matches!(error, QueueError::Unavailable(_)) && attempt < SETTLE_ATTEMPTS;
                tracing::warn!(%error, entry = %delivery.tag, attempt, retry,
                    "recording a job's end failed");
                if !retry {
                    break None;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    };
    let outcome = match settled {
        Some(Settled::Completed | Settled::Done) => planned,
        Some(Settled::AlreadyCompleted) => "duplicate",
        Some(Settled::Superseded) => "superseded",
        None => "unsettled",
    };
    shared.metrics.job(kind, outcome);
    shared.report.add(outcome);
    let key = delivery.envelope.as_ref().map_or("?", |e| e.key.as_str());
    match (&settlement, outcome) {
        (Settlement::DeadLetter { reason }, "dead_lettered") => {
            tracing::warn!(%key, kind, deliveries = delivery.deliveries, %reason,
                "job dead-lettered");
        }
        (Settlement::Retry { delay, error }, "retried") => {
            tracing::info!(%key, kind, deliveries = delivery.deliveries, retry_in = ?delay,
                %error, "job failed; retrying");
        }
        _ => tracing::debug!(%key, kind, deliveries = delivery.deliveries, outcome, "job ended"),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests;
