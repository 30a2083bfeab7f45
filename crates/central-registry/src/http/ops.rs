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

/// Readiness: the object store answers (a missing probe object counts as an answer).
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let probe = match ObjectKey::new("readyz/probe") {
        Ok(k) => k,
        Err(e) => {
            return reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                CacheClass::UpstreamFailure,
                e.to_string(),
            );
        }
    };
    match state.registry.store().head(&probe).await {
        Ok(_) => reply::text(StatusCode::OK, CacheClass::UpstreamFailure, "ready"),
        Err(e) if e.is_not_found() => {
            reply::text(StatusCode::OK, CacheClass::UpstreamFailure, "ready")
        }
        Err(e) => reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            CacheClass::UpstreamFailure,
            format!("storage unavailable: {e}"),
        ),
    }
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
