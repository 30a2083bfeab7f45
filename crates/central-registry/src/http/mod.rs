//! The registry's HTTP front end: the GOPROXY protocol per repository (`/go/{repo}/…`), the
//! publish API, and health and metrics endpoints.
//!
//! | route | handler |
//! |---|---|
//! | `GET/HEAD /go/{repo}/{module}/@v/list`, `…/@latest`, `…/@v/{version}.{info,mod,zip}` | [`goproxy`] |
//! | `PUT /api/repos/{repo}/upload` (body: module zip) | [`publish`] |
//! | `PUT /api/go/{repo}/{module}/@v/{version}.{zip,mod,info}` (Artifactory style) | [`publish`] |
//! | `DELETE /api/go/{repo}/{module}/@v/{version}.zip` | [`publish`] |
//! | `GET /healthz`, `/readyz`, `/metrics` | [`ops`] |

mod access;
pub mod goproxy;
pub mod ops;
pub mod publish;
mod reply;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, put};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::registry::Registry;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The change-event bus (its backlog is exported as a metric).
    pub events: crate::events::EventBus,
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/go/{repo}/{*path}", get(goproxy::handle))
        .route("/api/repos/{repo}/upload", put(publish::upload))
        .route(
            "/api/go/{repo}/{*path}",
            put(publish::artifactory_put).delete(publish::artifactory_delete),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            access::log,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    reply::text(
        axum::http::StatusCode::NOT_FOUND,
        strata_core::protocol::CacheClass::NotFound,
        format!(
            "no such endpoint: {} (modules are served under /go/{{repo}}/, the publish API under /api/)",
            uri.path()
        ),
    )
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    reply::text(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        strata_core::protocol::CacheClass::UpstreamFailure,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// The peer address of a connection, for the access log (`client.address`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is set) until `shutdown` is cancelled, then
/// drains open requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<ClientAddr>(),
            )
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        }
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)?;
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<ClientAddr>(),
            )
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        }
    }
}
