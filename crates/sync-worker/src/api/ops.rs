//! The operational endpoints: `/healthz` (the process is up), `/readyz` (the job queue
//! answers: Redis `PING`), `/metrics` (Prometheus text, queue gauges refreshed per scrape).
//! The worker serves them whether or not it has a registry (and so the `/api/` routes).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use super::reply::text;
use crate::runtime::metrics::Metrics;
use crate::runtime::queue::JobQueue;

/// How long a probe or scrape waits for the queue.
const QUEUE_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the endpoints read.
#[derive(Clone)]
pub struct OpsState {
    /// The queue.
    pub queue: Arc<dyn JobQueue>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for OpsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsState").finish_non_exhaustive()
    }
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn routes(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

async fn readyz(State(state): State<OpsState>) -> Response {
    match tokio::time::timeout(QUEUE_PROBE_TIMEOUT, state.queue.check_ready()).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready"),
        Ok(Err(error)) => text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "job queue unavailable: no answer in time",
        ),
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    match tokio::time::timeout(QUEUE_PROBE_TIMEOUT, state.queue.stats()).await {
        Ok(Ok(stats)) => state.metrics.set_queue(&stats),
        // The gauges keep their last values; the error counter tells the scrape apart.
        Ok(Err(error)) => {
            state.metrics.queue_error("stats");
            tracing::warn!(%error, "reading queue statistics for /metrics failed");
        }
        Err(_) => state.metrics.queue_error("stats"),
    }
    let mut response = Response::new(axum::body::Body::from(state.metrics.encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
