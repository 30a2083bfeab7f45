//! `/healthz` (the process is up), `/readyz` (storage answers), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use strata_core::protocol::CacheClass;

use super::AppState;
use super::reply;
use crate::storage::ObjectKey;

/// Liveness: answers as long as the server runs.
pub async fn healthz() -> Response {
    reply::text(StatusCode::OK, CacheClass::UpstreamFailure, "ok")
}

/// Readiness: the object store answers (a missing probe object counts as an answer) and, when
/// events go to Redis, Redis answers `PING`.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match readiness(&state).await {
        Ok(()) => reply::text(StatusCode::OK, CacheClass::UpstreamFailure, "ready"),
        Err(reason) => reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            CacheClass::UpstreamFailure,
            reason,
        ),
    }
}

/// Whether the registry can serve; `Err` says why not. One check for `/readyz` and for the
/// gRPC health service: a missing probe object is an answer from the store, any other storage
/// failure is not; with Redis events, Redis must answer too.
pub async fn readiness(state: &AppState) -> Result<(), String> {
    let probe = ObjectKey::new("readyz/probe").map_err(|e| e.to_string())?;
    match state.registry.store().head(&probe).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(format!("storage unavailable: {e}")),
    }
    state
        .events
        .check_ready()
        .await
        .map_err(|e| format!("events unavailable: {e}"))
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.outbox_backlog.set(state.events.backlog());
    let mut r = Response::new(axum::body::Body::from(state.metrics.encode()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
