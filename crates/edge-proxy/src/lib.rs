//! The strata edge proxy: the regional GOPROXY every `go build` of a region talks to.
//!
//! Modules, bottom up; each uses only modules listed before it (no cycles, doc links included),
//! the foundations aside in the parentheses:
//! - the foundations, using no other module: [`error`], [`metrics`], [`heat`] (read counts for
//!   the sync worker), [`proto`] (the registry's gRPC types), [`config`] (which only links to
//!   `heat`'s docs);
//! - [`access`]: cached authorization decisions;
//! - [`upstream`]: the central registries over gRPC: health, latency, circuit breakers,
//!   failover;
//! - [`cache`]: the memory and disk tiers and what an entry is;
//! - [`freshness`]: TTLs and invalidation numbers of mutable answers (uses `cache`);
//! - [`fill`]: one streaming download per zip into the disk tier, shared by every client that
//!   wants it (uses `cache`, `upstream`);
//! - [`answer`]: what the edge answers with: an entry's facts, its bytes, their provenance
//!   (uses `cache`, `fill`);
//! - [`fallback`]: public GOPROXYs for when no registry answers (uses `answer`, `cache`);
//! - [`edge`]: the request logic over all of the above; concurrent misses for one small answer
//!   share one fetch through [`strata_service::coalesce`];
//! - two drivers of the [`edge::Edge`], neither using the other: [`http`] (the front end; its
//!   conditional and range requests are [`strata_service::conditional`]'s; uses `access`,
//!   `answer`, `cache`, `fill`, `edge`) and [`events`] (the consumer of the registry's change
//!   events, which it applies to the edge's tiers and freshness; uses `edge`).
//!
//! [`start`] (here) wires them from an [`config::EdgeConfig`]; [`cli`] is the binary's `main`.

pub mod access;
pub mod answer;
pub mod cache;
pub mod cli;
pub mod config;
pub mod edge;
pub mod error;
pub mod events;
pub mod fallback;
pub mod fill;
pub mod freshness;
pub mod heat;
pub mod http;
pub mod metrics;
pub mod proto;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_service::events::{EventSource, StartFrom};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::disk::DiskTier;
use crate::config::{EdgeConfig, EventsConfig};
use crate::edge::Edge;
use crate::events::EventCursor;
use crate::fallback::Fallbacks;
use crate::metrics::Metrics;
use crate::upstream::RegistryPool;

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The disk tier's directory is unusable.
    #[error("cache.dir {dir}: {source}")]
    Cache {
        /// The directory.
        dir: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// TLS files, registry URLs or the events setting cannot be used.
    #[error("{0}")]
    Setup(String),
}

/// A running edge.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the ops endpoints listen (`server.admin_listen`), when apart from `addr`.
    pub admin_addr: Option<SocketAddr>,
    /// Its state (tests read metrics and tiers through it).
    pub edge: Arc<Edge>,
    /// Finishes when the server has drained after shutdown.
    pub done: JoinHandle<()>,
}

/// Starts the edge with the events its configuration names (none or Redis); returns once it
/// accepts connections.
pub async fn start(config: EdgeConfig, shutdown: CancellationToken) -> Result<Running, StartError> {
    start_with_events(config, None::<Arc<dyn EventSource>>, shutdown).await
}

/// Starts the edge; `bus` is the registry's in-process event bus when both run in one process
/// (it is used whatever `events` says).
pub async fn start_with_events<S: EventSource + 'static>(
    config: EdgeConfig,
    bus: Option<S>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::new());
    let disk = DiskTier::open(
        &config.cache.dir,
        config.cache.disk_bytes,
        Arc::clone(&metrics),
    )
    .await
    .map_err(|source| StartError::Cache {
        dir: config.cache.dir.display().to_string(),
        source,
    })?;
    let pool = RegistryPool::new(&config.registries, &config.upstream, Arc::clone(&metrics))
        .map_err(StartError::Setup)?;
    let fallbacks = Fallbacks::new(&config.fallbacks, config.upstream.request_timeout())
        .map_err(StartError::Setup)?;
    let tls = match &config.server.tls {
        Some(t) => Some(http::server::tls_config(&t.cert, &t.key).map_err(StartError::Setup)?),
        None => None,
    };
    let listen = config.server.listen;
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let events = config.events.clone();
    let edge = Arc::new(Edge::new(
        config,
        Arc::new(pool),
        Arc::new(disk),
        metrics,
        fallbacks,
    ));
    subscribe(&edge, &events, bus, &shutdown).await?;
    if let Some(url) = edge.config.heat_redis() {
        Arc::clone(&edge.heat)
            .spawn_reporter(
                url,
                edge.config.heat.prefix.clone(),
                Duration::from_millis(edge.config.heat.flush_ms.max(100)),
                shutdown.clone(),
            )
            .map_err(|e| StartError::Setup(format!("heat.redis_url: {e}")))?;
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let admin_addr = match edge.config.server.admin_listen {
        Some(admin) => {
            let listener = TcpListener::bind(admin)
                .await
                .map_err(|source| StartError::Bind {
                    addr: admin,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| StartError::Bind {
                addr: admin,
                source,
            })?;
            tracing::info!(admin = %bound, "ops endpoints (/metrics, /readyz) listening");
            tokio::spawn(http::server::serve_admin(
                listener,
                Arc::clone(&edge),
                shutdown.clone(),
            ));
            Some(bound)
        }
        None => None,
    };
    tracing::info!(listen = %http::server::describe(addr, tls.is_some()), "edge proxy listening");
    let done = tokio::spawn(http::server::serve(
        listener,
        Arc::clone(&edge),
        tls,
        shutdown,
        grace,
    ));
    Ok(Running {
        addr,
        admin_addr,
        edge,
        done,
    })
}

/// Starts the event listener: on the handed-in bus, or a Redis subscription built from
/// `events` that resumes after the id saved in `<cache.dir>/events.cursor`.
async fn subscribe<S: EventSource + 'static>(
    edge: &Arc<Edge>,
    events: &EventsConfig,
    bus: Option<S>,
    shutdown: &CancellationToken,
) -> Result<(), StartError> {
    // The in-process bus is kept alive by the listener: its subscription ends with the bus.
    let (subscription, cursor, bus) = match (bus, events) {
        (Some(bus), _) => (bus.subscribe(StartFrom::New).await, None, Some(bus)),
        (None, EventsConfig::None) => return Ok(()),
        (None, EventsConfig::Memory) => {
            return Err(StartError::Setup(
                "events.kind = \"memory\" needs the registry's in-process bus (all-in-one only)"
                    .into(),
            ));
        }
        (None, EventsConfig::Redis { .. }) => {
            let redis = events
                .redis()
                .ok_or_else(|| StartError::Setup("events: not redis".into()))?;
            let cursor = EventCursor::new(edge.config.cache.dir.join("events.cursor"));
            let from = match cursor.load() {
                Some(id) => {
                    tracing::info!(after = %id, "resuming change events after the saved cursor");
                    StartFrom::After(id)
                }
                None => StartFrom::New,
            };
            let subscription = strata_service::events::subscribe_redis(redis, from)
                .await
                .map_err(|e| StartError::Setup(e.to_string()))?;
            (subscription, Some(cursor), None)
        }
    };
    let (edge, shutdown) = (Arc::clone(edge), shutdown.clone());
    tokio::spawn(async move {
        events::listen(edge, subscription, shutdown, cursor).await;
        drop(bus);
    });
    Ok(())
}
