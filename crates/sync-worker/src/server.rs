//! Starting the worker: open the job queue the config names, bind the HTTP listener, run the
//! worker loop until the shutdown token is cancelled. Tests and `strata up` start it
//! in-process through [`start`] / [`start_with`] on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::ops::{self, OpsState};
use crate::config::{JobsConfig, WorkerConfig};
use crate::runtime::handler::JobHandler;
use crate::runtime::metrics::Metrics;
use crate::runtime::queue::memory::MemoryQueue;
use crate::runtime::queue::redis::RedisQueue;
use crate::runtime::queue::{Broker, JobQueue, QueueError};
use crate::runtime::worker::{Worker, WorkerReport};

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The job queue could not be set up.
    #[error("job queue: {0}")]
    Queue(#[from] QueueError),
    /// The HTTP listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// A running worker.
#[derive(Debug)]
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub http_addr: SocketAddr,
    /// The queue, for producers in the same process.
    pub queue: Arc<dyn JobQueue>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Finishes once the worker has drained and the HTTP server stopped.
    pub done: JoinHandle<Result<WorkerReport, StartError>>,
}

/// The queue `config.jobs` names: Redis (connects lazily) or in-process.
pub fn open_broker(config: &WorkerConfig) -> Result<Arc<dyn Broker>, StartError> {
    Ok(match (&config.jobs, config.redis_settings()) {
        (JobsConfig::Redis(_), Some(settings)) => Arc::new(RedisQueue::new(settings)?),
        _ => Arc::new(MemoryQueue::new(config.memory_settings())),
    })
}

/// Starts the worker on the queue `config` names, with only the operational routes.
pub async fn start(
    config: &WorkerConfig,
    handler: Arc<dyn JobHandler>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let broker = open_broker(config)?;
    start_with(config, broker, handler, Router::new(), shutdown).await
}

/// Starts the worker on `broker`, serving `routes` next to `/healthz`, `/readyz` and
/// `/metrics`. Returns once the listener is bound.
pub async fn start_with(
    config: &WorkerConfig,
    broker: Arc<dyn Broker>,
    handler: Arc<dyn JobHandler>,
    routes: Router,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::new());
    start_with_metrics(config, broker, handler, routes, metrics, shutdown).await
}

/// [`start_with`], exposing `metrics` at `/metrics`: built with [`Metrics::with_extra`] when
/// handlers register their own families.
pub async fn start_with_metrics(
    config: &WorkerConfig,
    broker: Arc<dyn Broker>,
    handler: Arc<dyn JobHandler>,
    routes: Router,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let queue: Arc<dyn JobQueue> = broker.clone();
    let addr = config.server.http;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let http_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let router = routes.merge(ops::routes(OpsState {
        queue: queue.clone(),
        metrics: metrics.clone(),
    }));
    // A failing HTTP server stops the worker too: a worker nobody can probe or scrape would
    // mislead its orchestrator.
    let stop = shutdown.child_token();
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(server_stop.clone().cancelled_owned())
            .await;
        server_stop.cancel();
        served
    });
    let worker = Worker::new(broker, handler, config.worker_settings(), metrics.clone());
    let worker = tokio::spawn(worker.run(stop));
    let done = tokio::spawn(async move {
        let report = worker.await;
        let served = server.await;
        match (report, served) {
            (Ok(report), Ok(Ok(()))) => Ok(report),
            (_, Ok(Err(e))) => Err(StartError::Serve(e)),
            (Err(e), _) | (_, Err(e)) => Err(StartError::Serve(std::io::Error::other(e))),
        }
    });
    tracing::info!(%http_addr, "sync worker listening");
    Ok(Running {
        http_addr,
        queue,
        metrics,
        done,
    })
}

/// Runs the worker until `shutdown` is cancelled and it has drained.
pub async fn run(
    config: &WorkerConfig,
    handler: Arc<dyn JobHandler>,
    shutdown: CancellationToken,
) -> Result<WorkerReport, StartError> {
    let running = start(config, handler, shutdown).await?;
    match running.done.await {
        Ok(result) => result,
        Err(e) => Err(StartError::Serve(std::io::Error::other(e))),
    }
}
