//! Starting the registry: open storage and the event bus, bind the listeners, serve until the
//! shutdown token is cancelled. Tests start it in-process through [`start`] on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::RegistryConfig;
use crate::events::EventBus;
use crate::grpc;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::registry::Registry;

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine (storage, change events, repositories) could not be opened.
    #[error(transparent)]
    Open(#[from] strata_registry_engine::OpenError),
    /// A listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("server.tls: {0}")]
    Tls(String),
    /// The gRPC listener's certificate, key or client CA could not be loaded.
    #[error("server.grpc_tls: {0}")]
    GrpcTls(String),
    /// A server task ended abnormally.
    #[error("{0}")]
    Registry(#[from] crate::error::RegistryError),
}

/// A running registry.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    /// The change-event bus (tests and the all-in-one process subscribe to it).
    pub events: EventBus,
    /// Metrics, shared with the front ends.
    pub metrics: Arc<Metrics>,
    /// The registry itself (the all-in-one process hands it to the sync worker).
    pub registry: Arc<Registry>,
    /// Finishes when the servers have drained after shutdown.
    pub done: JoinHandle<std::io::Result<()>>,
}

/// Starts the registry and returns once it accepts connections.
pub async fn start(
    config: RegistryConfig,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let strata_registry_engine::Opened {
        registry,
        metrics,
        events,
    } = strata_registry_engine::open(&config, shutdown.clone()).await?;
    let spool = config
        .server
        .spool_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    match tokio::task::spawn_blocking(move || {
        crate::upload::sweep_stale_spool(&spool, std::time::Duration::from_secs(3600))
    })
    .await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(removed = n, "removed stale spooled uploads"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not sweep the spool directory"),
        Err(e) => tracing::warn!(error = %e, "spool sweep task failed"),
    }
    if let Some(ledger) = registry.ledger() {
        // Records a crashed appender left unsigned are committed now rather than at the next
        // append; a failure here is retried by that append.
        match ledger.recover().await {
            Ok(size) => tracing::info!(
                name = ledger.name(),
                verifier_key = %ledger.verifier_key(),
                size,
                "checksum database on: clients set GOSUMDB to the verifier key"
            ),
            Err(e) => tracing::warn!(
                name = ledger.name(),
                verifier_key = %ledger.verifier_key(),
                error = %e,
                "checksum database on, but its log could not be checked at start"
            ),
        }
    }
    spawn_access_flush(registry.clone(), shutdown.clone());
    let state = Arc::new(AppState {
        registry: registry.clone(),
        metrics: metrics.clone(),
        events: events.clone(),
    });
    let listener = TcpListener::bind(config.server.http)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.server.http,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.server.http,
        source,
    })?;
    let grpc_listener = TcpListener::bind(config.server.grpc)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.server.grpc,
            source,
        })?;
    let grpc_addr = grpc_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.server.grpc,
            source,
        })?;
    let router = http::router(state.clone());
    let tls = match &config.server.tls {
        Some(t) => Some(http::tls::server_config(&t.cert, &t.key).map_err(StartError::Tls)?),
        None => None,
    };
    let grpc_tls = match &config.server.grpc_tls {
        Some(t) => Some(grpc::tls::server_config(t).map_err(StartError::GrpcTls)?),
        None => None,
    };
    let http = http::serve(listener, router, shutdown.clone(), tls);
    let grpc = grpc::serve(grpc_listener, state, grpc_tls, shutdown);
    // One failing server ends both (and the process), as a half-working registry would
    // mislead its health checks.
    let done = tokio::spawn(async move {
        tokio::try_join!(http, async { grpc.await.map_err(std::io::Error::other) })?;
        Ok(())
    });
    tracing::info!(
        %http_addr,
        %grpc_addr,
        grpc_tls = config.server.grpc_tls.is_some(),
        grpc_mtls = config.server.grpc_tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "central registry listening"
    );
    Ok(Running {
        http_addr,
        grpc_addr,
        events,
        metrics,
        registry,
        done,
    })
}

/// How often reads of cached versions are written to their access documents.
const ACCESS_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Flushes access records every minute and once more at shutdown.
fn spawn_access_flush(registry: Arc<Registry>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let stop = tokio::select! {
                () = tokio::time::sleep(ACCESS_FLUSH_INTERVAL) => false,
                () = shutdown.cancelled() => true,
            };
            if let Err(error) = registry.flush_access().await {
                tracing::warn!(%error, "could not record the last reads of cached versions");
            }
            if stop {
                return;
            }
        }
    });
}

/// Runs the registry until `shutdown` is cancelled.
pub async fn run(config: RegistryConfig, shutdown: CancellationToken) -> Result<(), StartError> {
    let running = start(config, shutdown).await?;
    match running.done.await {
        Ok(result) => result.map_err(|source| StartError::Bind {
            addr: running.http_addr,
            source,
        }),
        Err(e) => Err(StartError::Registry(crate::error::RegistryError::Internal(
            e.to_string(),
        ))),
    }
}
