//! The strata sync worker: background work as jobs that any number of worker processes share.
//!
//! Modules by role; each uses only those listed before it (no cycles, doc links included):
//! - [`registry`]: the embedded central registry (the engine over the registry's storage) and
//!   the worker's own documents there, under `sync/`;
//! - [`runtime`]: jobs, their envelope, handlers, the queue (Redis or in-process), the worker
//!   loop with its retry backoff, and the runtime's metrics; it uses nothing else here;
//! - [`jobs`]: what the registry-backed jobs do (prefetch, refresh, scrub, retention) and the
//!   warm-up sets and pins they read;
//! - [`api`]: the HTTP layer: operational endpoints, the warm-up, pin and retention API, and the
//!   replies every endpoint uses;
//! - [`producers`]: where jobs come from besides the API: the index feed follower, webhooks,
//!   heat-driven refresh and schedules (the webhook endpoint answers with the API's replies);
//! - [`config`]: the whole configuration, made of the sections the modules above define;
//! - [`cli`]: the `strata-sync` binary, which starts through the services' shared bootstrap.
//!
//! Every service starts through one `run(config, shutdown)`: here [`run`]. [`Builder`] starts a
//! worker with what its caller already has open (`strata up` hands over its registry; tests
//! their queue or a handler), [`Builder::start`] returning once it listens.

pub mod api;
pub mod cli;
pub mod config;
pub mod jobs;
pub mod producers;
pub mod registry;
pub mod runtime;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use strata_registry_engine::registry::Registry;
use strata_service::bootstrap::Failure;
use strata_service::config::ConfigError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::api::ops::OpsState;
use crate::config::{JobsConfig, WorkerConfig};
use crate::jobs::retention::{LastReads, RetentionHandler};
use crate::jobs::scrub::{ScrubHandler, ScrubMetrics};
use crate::jobs::{prefetch, refresh, scrub};
use crate::producers::Producers;
use crate::registry::{EmbeddedRegistry, OpenError};
use crate::runtime::metrics::Metrics;

pub use runtime::envelope::{Envelope, JobId};
pub use runtime::handler::{Handlers, JobContext, JobError, JobHandler, Outcome};
pub use runtime::job::{Job, JobKind};
pub use runtime::queue::{Broker, JobQueue, NewJob, QueueError, QueueStats};
pub use runtime::worker::{Worker, WorkerReport};

/// Why a worker could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A setting only checked when the worker starts (a webhook's `secret_env` not set).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The embedded registry could not be opened.
    #[error(transparent)]
    Registry(#[from] OpenError),
    /// A part of the configuration does not fit the registry (a retention policy for a
    /// local repository, a feed into a repository without an upstream, …).
    #[error("{0}")]
    Setup(String),
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
    /// The HTTP server (or the worker loop's task) failed while running.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// 64 for what the configuration gets wrong (the registry's configuration included), 1
/// otherwise.
impl Failure for RunError {
    fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) | RunError::Registry(OpenError::Config(_)) | RunError::Setup(_) => {
                64
            }
            _ => 1,
        }
    }
}

/// A running worker.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTP endpoints listen (`/healthz`, `/readyz`, `/metrics`, the API, webhooks).
    pub http_addr: SocketAddr,
    /// The queue, for producers in the same process.
    pub queue: Arc<dyn JobQueue>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Finishes once the worker has drained and the HTTP server stopped.
    pub done: JoinHandle<Result<WorkerReport, RunError>>,
}

/// Runs the worker `config` describes until `shutdown` is cancelled and it has drained: what
/// the `strata-sync` binary runs (see [`cli`]).
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), RunError> {
    let running = Builder::new(config).start(shutdown).await?;
    let report = running
        .done
        .await
        .map_err(|e| RunError::Serve(std::io::Error::other(e)))??;
    tracing::info!(?report, "sync worker stopped");
    Ok(())
}

/// A worker to start: its configuration, and what the caller already has open instead of what
/// the configuration names.
pub struct Builder {
    config: WorkerConfig,
    registry: Option<EmbeddedRegistry>,
    queue: Option<Arc<dyn Broker>>,
    handlers: Vec<(JobKind, Arc<dyn JobHandler>)>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("registry", &self.registry)
            .field(
                "queue",
                &self.queue.as_ref().map(|q| q.consumer().to_owned()),
            )
            .field(
                "handlers",
                &self.handlers.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Builder {
    /// The worker `config` describes.
    pub fn new(config: WorkerConfig) -> Self {
        Self {
            config,
            registry: None,
            queue: None,
            handlers: Vec::new(),
        }
    }

    /// Drives `registry`, already open (`strata up` hands over its own), instead of opening the
    /// one `[registry]` names.
    #[must_use]
    pub fn registry(mut self, registry: EmbeddedRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Takes jobs from `queue` instead of the one `jobs` names.
    #[must_use]
    pub fn queue(mut self, queue: Arc<dyn Broker>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Runs `kind`'s jobs with `handler`, in place of the handler the worker would have for it.
    #[must_use]
    pub fn handler(mut self, kind: JobKind, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.push((kind, handler));
        self
    }

    /// Starts the whole worker and returns once it listens:
    /// - the embedded registry, unless one was handed over: the one `[registry]` names;
    /// - the job handlers (prefetch, refresh, scrub, retention, index polls), the HTTP API
    ///   (warm-up, pins, retention, webhooks) and the metrics of all of them;
    /// - the worker loop and the HTTP server;
    /// - the periodic producers (scrub schedule, index feeds, heat, schedules).
    ///
    /// Everything stops on `shutdown`. Without a registry the worker has no registry-backed
    /// handlers: their jobs are dead-lettered with "no handler", never lost. A webhook
    /// `secret_env` not taken yet ([`WorkerConfig::resolve_secrets`]) is read from the process
    /// environment here.
    pub async fn start(self, shutdown: CancellationToken) -> Result<Running, RunError> {
        let mut config = self.config;
        config.resolve_secrets(&std::env::vars().collect::<Vec<_>>())?;
        let broker = match self.queue {
            Some(queue) => queue,
            None => config.open_queue()?,
        };
        let queue: Arc<dyn JobQueue> = broker.clone();
        let registry = match (self.registry, &config.registry) {
            (Some(registry), _) => Some(registry),
            (None, Some(section)) => Some(EmbeddedRegistry::open(section, shutdown.clone()).await?),
            (None, None) => None,
        };
        let scrub_metrics = Arc::new(ScrubMetrics::default());
        let mut handlers = Handlers::new();
        let mut routes = Router::new();
        let mut producers = None;
        match &registry {
            Some(embedded) => {
                let registry = &embedded.registry;
                handlers = registry_handlers(registry, &queue, &config, scrub_metrics.clone())?;
                routes = routes.merge(api::routes(ApiState {
                    registry: registry.clone(),
                    queue: queue.clone(),
                    retention: Arc::new(config.retention.clone()),
                }));
                let built = Producers::new(config.producers(), registry, queue.clone())
                    .map_err(RunError::Setup)?;
                handlers = built.handlers(handlers);
                routes = routes.merge(built.routes());
                producers = Some(built);
            }
            None => tracing::warn!(
                "no [registry] section (or STRATA_SYNC_REGISTRY_CONFIG): this worker has no \
                 registry job handlers, their jobs are dead-lettered"
            ),
        }
        for (kind, handler) in self.handlers {
            handlers = handlers.with(kind, handler);
        }
        let metrics = Arc::new(Metrics::with_extra(|r| {
            scrub_metrics.register(r);
            if let Some(producers) = &producers {
                producers.register_metrics(r);
            }
        }));

        let addr = config.server.http;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Bind { addr, source })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| RunError::Bind { addr, source })?;
        let router = routes
            .merge(api::ops::routes(OpsState {
                queue: queue.clone(),
                metrics: metrics.clone(),
            }))
            .layer(axum::middleware::from_fn(api::trace_request));
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
        let worker = Worker::new(
            broker,
            Arc::new(handlers),
            config.worker_settings(),
            metrics.clone(),
        );
        let worker = tokio::spawn(worker.run(stop));
        let done = tokio::spawn(async move {
            let report = worker.await;
            let served = server.await;
            match (report, served) {
                (Ok(report), Ok(Ok(()))) => Ok(report),
                (_, Ok(Err(e))) => Err(RunError::Serve(e)),
                (Err(e), _) | (_, Err(e)) => Err(RunError::Serve(std::io::Error::other(e))),
            }
        });
        tracing::info!(%http_addr, "sync worker listening");

        if let Some(embedded) = &registry {
            scrub::spawn_schedule(
                embedded.registry.clone(),
                queue.clone(),
                config.scrub.every_hours,
                shutdown.clone(),
            );
        }
        if let Some(producers) = &producers {
            producers.spawn(&shutdown);
        }
        Ok(Running {
            http_addr,
            queue,
            metrics,
            done,
        })
    }
}

/// The handlers of the four registry-backed job kinds, configured from `config`;
/// `scrub_metrics` is registered with `/metrics` by the caller.
fn registry_handlers(
    registry: &Arc<Registry>,
    queue: &Arc<dyn JobQueue>,
    config: &WorkerConfig,
    scrub_metrics: Arc<ScrubMetrics>,
) -> Result<Handlers, RunError> {
    let retention = RetentionHandler::new(
        registry.clone(),
        queue.clone(),
        config.retention.clone(),
        last_reads(config)?,
    )
    .map_err(RunError::Setup)?;
    Ok(Handlers::new()
        .with(
            JobKind::Prefetch,
            Arc::new(prefetch::PrefetchHandler::new(registry.clone())),
        )
        .with(
            JobKind::RefreshMetadata,
            Arc::new(refresh::RefreshHandler::new(
                registry.clone(),
                queue.clone(),
                config.refresh.prefetch_newest,
            )),
        )
        .with(
            JobKind::Scrub,
            Arc::new(ScrubHandler::new(
                registry.clone(),
                config.scrub.bytes_per_sec,
                scrub_metrics,
            )),
        )
        .with(JobKind::Retention, Arc::new(retention)))
}

/// Where edges report reads, for retention: the `[heat]` Redis (by default the jobs' Redis)
/// under the heat prefix; none with the in-process queue and no `heat.redis_url`.
fn last_reads(config: &WorkerConfig) -> Result<Option<LastReads>, RunError> {
    let url = match (&config.heat.redis_url, &config.jobs) {
        (Some(url), _) => url.clone(),
        (None, JobsConfig::Redis(redis)) => redis.url.clone(),
        (None, JobsConfig::Memory(_)) => return Ok(None),
    };
    LastReads::new(&url, config.heat.prefix.clone())
        .map(Some)
        .map_err(RunError::Setup)
}
