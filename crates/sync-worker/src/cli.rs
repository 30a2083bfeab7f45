//! The `strata-sync` command line: `strata-sync --config worker.toml` (or
//! `STRATA_SYNC_CONFIG`). Exits 64 on usage errors and invalid configurations, 1 when the
//! worker cannot start or fails, 0 after a clean drain on SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use tokio_util::sync::CancellationToken;

use strata_registry_engine::registry::Registry;

use crate::api::{self, ApiState};
use crate::config::{JobsConfig, WorkerConfig};
use crate::jobs::retention::{self, LastReads};
use crate::jobs::scrub::{self, ScrubMetrics};
use crate::jobs::{prefetch, refresh};
use crate::producers::Producers;
use crate::registry::{EmbeddedRegistry, OpenError};
use crate::runtime::handler::Handlers;
use crate::runtime::job::JobKind;
use crate::runtime::metrics::Metrics;
use crate::runtime::queue::JobQueue;
use crate::server::{self, Running, StartError};

const USAGE: &str = "usage: strata-sync --config FILE (or set STRATA_SYNC_CONFIG)";

/// Runs the binary.
pub fn main() -> ExitCode {
    let path = match config_path(std::env::args().skip(1)) {
        Ok(Some(path)) => path,
        Ok(None) => match std::env::var_os("STRATA_SYNC_CONFIG") {
            Some(path) => PathBuf::from(path),
            None => {
                eprintln!("{USAGE}");
                return ExitCode::from(64);
            }
        },
        Err(message) => {
            eprintln!("strata-sync: {message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let config = match WorkerConfig::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("strata-sync: {e}");
            return ExitCode::from(64);
        }
    };
    strata_service::telemetry::run_service("strata-sync", |shutdown| async move {
        let config_dir = path.parent().map(Path::to_path_buf);
        let running = match start(&config, config_dir.as_deref(), None, shutdown).await {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(error = %e, "sync worker could not start");
                eprintln!("strata-sync: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        match running.done.await {
            Ok(Ok(report)) => {
                tracing::info!(?report, "sync worker stopped");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "sync worker failed");
                eprintln!("strata-sync: {e}");
                ExitCode::from(1)
            }
            Err(e) => {
                tracing::error!(error = %e, "sync worker task failed");
                eprintln!("strata-sync: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// A failure to start the whole worker.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The embedded registry could not be opened.
    #[error(transparent)]
    Registry(#[from] OpenError),
    /// A part of the configuration does not fit the registry (a retention policy for a
    /// local repository, a feed into a repository without an upstream, …).
    #[error("{0}")]
    Setup(String),
    /// The queue or the HTTP listener.
    #[error(transparent)]
    Start(#[from] StartError),
}

impl RunError {
    /// 64 for configuration problems, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Registry(OpenError::Config(_)) | RunError::Setup(_) => 64,
            _ => 1,
        }
    }
}

/// Starts the whole worker and returns once it listens:
/// - the embedded registry: `registry` if given (`strata up` hands over its own), otherwise
///   the one `config.registry` names (a relative path is taken from `config_dir`);
/// - the job handlers (prefetch, refresh, scrub, retention, index polls), the HTTP API
///   (warm-up, pins, retention, webhooks) and the metrics of all of them;
/// - the periodic producers (scrub schedule, index feeds, heat, schedules), stopped by
///   `shutdown`.
///
/// Without a registry the worker runs with no handlers: every job is dead-lettered with
/// "no handler", never lost.
pub async fn start(
    config: &WorkerConfig,
    config_dir: Option<&Path>,
    registry: Option<EmbeddedRegistry>,
    shutdown: CancellationToken,
) -> Result<Running, RunError> {
    let broker = server::open_broker(config)?;
    let queue: Arc<dyn JobQueue> = broker.clone();
    let registry = match (registry, &config.registry) {
        (Some(registry), _) => Some(registry),
        (None, Some(section)) => {
            Some(EmbeddedRegistry::open(section, config_dir, shutdown.clone()).await?)
        }
        (None, None) => None,
    };
    let scrub_metrics = Arc::new(ScrubMetrics::default());
    let mut handlers = Handlers::new();
    let mut routes = Router::new();
    let mut producers = None;
    match &registry {
        Some(embedded) => {
            let registry = &embedded.registry;
            handlers = registry_handlers(
                registry,
                &queue,
                config,
                last_reads(config)?,
                scrub_metrics.clone(),
            )
            .map_err(RunError::Setup)?;
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
            "no [registry] section (or STRATA_SYNC_REGISTRY_CONFIG): this worker has no job \
             handlers, every job is dead-lettered"
        ),
    }
    let metrics = Arc::new(Metrics::with_extra(|r| {
        scrub_metrics.register(r);
        if let Some(producers) = &producers {
            producers.register_metrics(r);
        }
    }));
    let running = server::start_with_metrics(
        config,
        broker,
        Arc::new(handlers),
        routes,
        metrics,
        shutdown.clone(),
    )
    .await?;
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
    Ok(running)
}

/// The handlers of the four registry-backed job kinds, configured from `config`.
///
/// `last_reads` is where edges report reads (Redis), for retention; `scrub_metrics` is
/// registered with the worker's `/metrics` by the caller.
pub fn registry_handlers(
    registry: &Arc<Registry>,
    queue: &Arc<dyn JobQueue>,
    config: &WorkerConfig,
    last_reads: Option<retention::LastReads>,
    scrub_metrics: Arc<scrub::ScrubMetrics>,
) -> Result<Handlers, String> {
    let retention = retention::RetentionHandler::new(
        registry.clone(),
        queue.clone(),
        config.retention.clone(),
        last_reads,
    )?;
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
            Arc::new(scrub::ScrubHandler::new(
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

/// `--config FILE` or `--config=FILE`; `Ok(None)` when absent.
fn config_path(args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, String> {
    let mut args = args;
    let mut path = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let value = args.next().ok_or("--config needs a file")?;
            path = Some(PathBuf::from(value));
        } else if let Some(value) = arg.strip_prefix("--config=") {
            path = Some(PathBuf::from(value));
        } else {
            return Err(format!("unknown argument {arg:?}"));
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<PathBuf>, String> {
        config_path(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_the_config_flag() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&["--config", "w.toml"]).unwrap(),
            Some("w.toml".into())
        );
        assert_eq!(parse(&["--config=w.toml"]).unwrap(), Some("w.toml".into()));
        assert!(parse(&["--config"]).unwrap_err().contains("needs a file"));
        assert!(parse(&["--verbose"]).unwrap_err().contains("--verbose"));
    }
}
